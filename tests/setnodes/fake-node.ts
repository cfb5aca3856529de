/**
 * A test RESP server on 127.0.0.1 that answers like a Kvrocks node in cluster mode: CLUSTERX and
 * CLUSTER NODES|INFO (semantics from lib/cluster), PING, INFO server|replication|stats|cluster
 * (text replaceable per section). Built with lib/net listen + lib/resp. It records every command
 * it receives and can be told to misbehave: never reply, reply an error to SETNODES, or answer
 * any command with raw bytes (garbage, an oversized bulk header, a reply cut off by a close).
 */
import {
  clusterCommand,
  clusterSection,
  clusterx,
  encodeReply,
  initialClusterState,
  newServerStats,
  serverSection,
  statsSection,
  type ClusterState,
} from "../../lib/cluster/index.ts";
import { listen, type Conn, type Server } from "../../lib/net/index.ts";
import { bulk, error, OK, RespDecoder, simple } from "../../lib/resp/index.ts";
import { serveCommands } from "../helpers/serve.ts";

export type InfoSection = "server" | "replication" | "stats" | "cluster";

export interface FakeNodeOptions {
  /** Require AUTH with this password. */
  password?: string;
  /** Accept connections, read commands, never reply. */
  silent?: boolean;
  /** Reply this error (with its prefix word) to CLUSTERX SETNODES. */
  setnodesError?: string;
  /** Reply an error to the first n SETNODES, then behave. */
  failFirst?: number;
  /** Reply +OK to SETNODES without applying it (a node that does not converge). */
  ignoreSetnodes?: boolean;
  /** Initial CLUSTERX VERSION. */
  version?: number;
  /** INFO <section> text instead of the default (a kvr-built master in cluster mode). */
  info?: Partial<Record<InfoSection, string>>;
  /** CLUSTER NODES text instead of the one formatted from the CLUSTERX state. */
  clusterNodes?: string;
  /** Answer a command with these bytes instead ("close": close the connection; null: as usual). */
  raw?: (args: string[]) => string | Buffer | "close" | null;
  /** Close the connection right after a raw answer (a reply cut off). */
  closeAfterRaw?: boolean;
}

export interface FakeNode {
  port: number;
  address: string;
  /** Every command received, as strings, in order. */
  commands: string[][];
  /** Connections accepted so far. */
  connections: number;
  state: ClusterState;
  close(): Promise<void>;
}


/** Start a fake node on 127.0.0.1 (a free port). */
export async function startFakeNode(o: FakeNodeOptions = {}): Promise<FakeNode> {
  const node: FakeNode = {
    port: 0,
    address: "",
    commands: [],
    connections: 0,
    state: { ...initialClusterState(), version: o.version ?? -1 },
    close: async () => {},
  };
  let setnodes = 0;
  const startedMs = Date.now();
  const infoText = (section: InfoSection): string => {
    const given = o.info?.[section];
    if (given !== undefined) return given;
    if (section === "server") return serverSection({ cluster: true, port: node.port, startedMs });
    if (section === "stats") return statsSection(newServerStats());
    if (section === "cluster") return clusterSection(true);
    if (section === "replication") return "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n";
    return "";
  };
  /** The reply to one command after AUTH. */
  const reply = (args: string[]): Buffer => {
    const name = args[0].toUpperCase();
    if (name === "PING") return simple("PONG");
    if (name === "INFO") return bulk(infoText((args[1] ?? "").toLowerCase() as InfoSection));
    if (name === "CLUSTER") {
      const r = clusterCommand(node.state, args.slice(1));
      return o.clusterNodes !== undefined && r.type === "bulk" && args[1]?.toUpperCase() === "NODES" ? bulk(o.clusterNodes) : encodeReply(r);
    }
    if (name === "CLUSTERX") {
      if ((args[1] ?? "").toUpperCase() === "SETNODES") {
        setnodes++;
        if (o.setnodesError || setnodes <= (o.failFirst ?? 0)) return error(o.setnodesError ?? "ERR failed to set master-replica replication: test failure");
        if (o.ignoreSetnodes) return OK;
      }
      const r = clusterx(node.state, args.slice(1), { port: node.port, binds: ["127.0.0.1"], current: null });
      node.state = r.state;
      return encodeReply(r.reply);
    }
    return error(`ERR unknown command \`${args[0]}\``);
  };
  /** Answer one command (or the raw bytes the test gave); "stop" once the connection is closed. */
  const answer = async (c: Conn, args: string[]): Promise<"stop" | void> => {
    const raw = o.raw?.(args) ?? null;
    if (raw === "close") {
      c.destroy();
      return "stop";
    }
    await c.write(raw ?? reply(args));
    if (raw !== null && o.closeAfterRaw) {
      c.end();
      return "stop";
    }
  };
  const record = (_cmd: string, args: string[]) => void node.commands.push(args);
  const serve = async (c: Conn) => {
    node.connections++;
    if (!o.silent) return serveCommands(c, o.password, (_cmd, args) => answer(c, args), record);
    // Read and record, never reply (AUTH neither).
    const dec = new RespDecoder({ inline: true });
    try {
      for (;;) {
        const args = ((await c.read(dec)) as Buffer[]).map((b) => b.toString("utf8"));
        record(args[0].toLowerCase(), args);
      }
    } catch {
      c.destroy();
    }
  };
  const srv: Server = await listen("127.0.0.1", 0, (c) => void serve(c), { readMs: 0 });
  node.port = srv.port;
  node.address = `127.0.0.1:${srv.port}`;
  node.close = () => srv.close(50);
  return node;
}

/** The CLUSTERX SETNODES commands a fake node received, in order. */
export const setnodesOf = (n: FakeNode) => n.commands.filter((c) => c[0].toUpperCase() === "CLUSTERX" && c[1]?.toUpperCase() === "SETNODES");

/** Start n fake nodes; `opts(i)` gives the options of the i-th. */
export async function startFakeNodes(n: number, opts: (i: number) => FakeNodeOptions = () => ({})): Promise<FakeNode[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startFakeNode(opts(i))));
}

/** A 40-char node id made from a number. */
export function nodeId(i: number): string {
  return i.toString(16).padStart(40, "0");
}

/** A topology of one master per node (slots split evenly), canonical, "\n"-joined. */
export function mastersTopology(nodes: FakeNode[]): string {
  const per = Math.floor(16384 / nodes.length);
  return nodes
    .map((n, i) => {
      const a = i * per;
      const b = i === nodes.length - 1 ? 16383 : a + per - 1;
      return `${nodeId(i + 1)} 127.0.0.1 ${n.port} master - ${a === b ? a : `${a}-${b}`}`;
    })
    .join("\n");
}
