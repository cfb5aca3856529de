/**
 * A test RESP server on 127.0.0.1 that answers CLUSTERX like a Kvrocks node in cluster mode
 * (semantics from lib/cluster), built with lib/net listen + lib/resp. It records every command it
 * receives and can be told to misbehave: never reply, or reply an error to SETNODES.
 */
import { clusterx, encodeReply, initialClusterState, type ClusterState } from "../../lib/cluster/index.ts";
import { listen, type Conn, type Server } from "../../lib/net/index.ts";
import { error, OK, RespDecoder } from "../../lib/resp/index.ts";

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
  const serve = async (c: Conn) => {
    node.connections++;
    let authed = !o.password;
    try {
      for (;;) {
        const v = await c.read(new RespDecoder({ inline: true }));
        if (!Array.isArray(v)) continue;
        const args = v.map((x) => (Buffer.isBuffer(x) ? x.toString("utf8") : String(x)));
        node.commands.push(args);
        if (o.silent) continue;
        const name = (args[0] ?? "").toUpperCase();
        if (name === "AUTH") {
          if (!o.password) await c.write(error("ERR Client sent AUTH, but no password is set"));
          else if (args[1] === o.password) {
            authed = true;
            await c.write(OK);
          } else await c.write(error("ERR Invalid password"));
          continue;
        }
        if (!authed) {
          await c.write(error("NOAUTH Authentication required."));
          continue;
        }
        if (name === "CLUSTERX") {
          if ((args[1] ?? "").toUpperCase() === "SETNODES") {
            setnodes++;
            if (o.setnodesError || setnodes <= (o.failFirst ?? 0)) {
              await c.write(error(o.setnodesError ?? "ERR failed to set master-replica replication: test failure"));
              continue;
            }
            if (o.ignoreSetnodes) {
              await c.write(OK);
              continue;
            }
          }
          const r = clusterx(node.state, args.slice(1), { port: node.port, binds: ["127.0.0.1"], current: null });
          node.state = r.state;
          await c.write(encodeReply(r.reply));
          continue;
        }
        await c.write(error(`ERR unknown command \`${args[0]}\``));
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
