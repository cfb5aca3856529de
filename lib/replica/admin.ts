/**
 * The replica's admin port: RESP (and inline) commands answered like a Kvrocks node in cluster
 * mode. SETNODES and SLAVEOF that change the master reply only after the old run has stopped,
 * which never waits on the network (the stop is an abort).
 */
import { clusterx, encodeReply, formatClusterNodes, replicationFailure } from "../cluster/index.ts";
import { listen, type Conn, type Server } from "../net/index.ts";
import { array, bulk, error, integer, OK, RespDecoder, simple } from "../resp/index.ts";
import { passwordChecker } from "../ui/secrets.ts";
import type { Output } from "../ui/output.ts";
import { clusterInfo, replicationInfo, roleReply, serverInfo } from "./info.ts";
import type { ReplicaNode } from "./node.ts";

export interface AdminOptions {
  host: string;
  port: number;
  requirepass?: string;
  /** Drop a connection that sends nothing for this long (0 = never). */
  idleMs?: number;
}

interface Session {
  authed: boolean;
  /** Set by QUIT: close after its reply. */
  quit: boolean;
}

/**
 * Kvrocks-style arity of the admin commands: n > 0 exactly n tokens, n < 0 at least -n. A name
 * not here is an unknown command.
 */
const ARITY: Record<string, number> = {
  ping: -1,
  auth: -2,
  quit: 1,
  info: -1,
  role: 1,
  slaveof: 3,
  replicaof: 3,
  clusterx: -2,
  cluster: -2,
};
/**
 * Largest argument accepted: the largest legitimate one is a SETNODES nodes string (a thousand
 * nodes with slot ranges is well under 1 MiB). A longer bulk is refused at its header, as is an
 * array above 1024 elements (no admin command has more than a handful of arguments).
 */
export const MAX_ARG_BYTES = 8 * 1024 * 1024;
/** Commands allowed before AUTH when a password is set. */
const NO_AUTH = new Set(["auth", "quit"]);
/** A reply, or "close": drop the connection without a reply. */
type Answer = Buffer | "close";

/** Start the admin server; the bound port is `server.port`. */
export async function startAdmin(node: ReplicaNode, opts: AdminOptions, out: Output): Promise<Server> {
  const checkPassword = opts.requirepass ? passwordChecker(opts.requirepass) : null;
  let boundPort = opts.port;
  const server = await listen(opts.host, opts.port, (c) => void serve(c), { readMs: opts.idleMs ?? 300_000 });
  boundPort = server.port;

  async function serve(conn: Conn): Promise<void> {
    const session: Session = { authed: !checkPassword, quit: false };
    const dec = new RespDecoder({ inline: true, maxBulk: MAX_ARG_BYTES, maxArray: 1024, maxDepth: 1 });
    try {
      for (;;) {
        const v = await conn.read(dec);
        if (!Array.isArray(v) || v.some((a) => !Buffer.isBuffer(a))) {
          await conn.write(error("ERR Protocol error: expected an array of bulk strings"));
          continue;
        }
        if (v.length === 0) continue;
        const args = (v as Buffer[]).map((b) => b.toString("utf8"));
        const reply = await handle(args, session);
        if (reply === "close") {
          out.warn(`admin connection ${conn.peer}: an HTTP request on the admin port: closed`);
          return;
        }
        await conn.write(reply);
        if (session.quit) {
          conn.end();
          return;
        }
      }
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "PROTOCOL") await conn.write(error(`ERR ${(e as Error).message}`)).catch(() => {});
      out.debug(`admin connection ${conn.peer} ended: ${(e as Error).message}`);
    } finally {
      conn.destroy();
    }
  }

  /**
   * Kvrocks' order (redis_connection.cc ExecuteCommands), as kvr master's session: an HTTP
   * request line closes the connection (cross-protocol guard), then lookup (unknown command),
   * arity (wrong number of arguments), authentication (NOAUTH), and only then the command.
   */
  async function handle(args: string[], session: Session): Promise<Answer> {
    const cmd = args[0].toLowerCase();
    if (cmd === "host:" || cmd === "post") return "close";
    const arity = ARITY[cmd];
    if (arity === undefined) return unknown(args);
    if ((arity > 0 && args.length !== arity) || (arity < 0 && args.length < -arity)) return wrongArgs(cmd);
    if (!session.authed && !NO_AUTH.has(cmd)) return error("NOAUTH Authentication required.");
    switch (cmd) {
      case "auth":
        return auth(args, session);
      case "ping":
        if (args.length > 2) return wrongArgs(cmd);
        return args.length === 2 ? bulk(args[1]) : simple("PONG");
      case "quit":
        session.quit = true;
        return OK;
      case "info":
        return info(args);
      case "role":
        return encodeNested(roleReply(node));
      case "slaveof":
      case "replicaof":
        return slaveof(args);
      case "clusterx":
        return clusterxCmd(args);
      case "cluster":
        return clusterCmd(args);
      default:
        return unknown(args);
    }
  }

  function auth(args: string[], session: Session): Buffer {
    if (args.length < 2 || args.length > 3) return wrongArgs("auth");
    if (!opts.requirepass) return error("ERR Client sent AUTH, but no password is set");
    if (!checkPassword!(args[args.length - 1])) {
      session.authed = false;
      return error("ERR Invalid password");
    }
    session.authed = true;
    return OK;
  }

  function info(args: string[]): Buffer {
    const section = (args[1] ?? "default").toLowerCase();
    const parts: string[] = [];
    const all = ["default", "all", "everything"].includes(section);
    if (all || section === "server") parts.push(serverInfo());
    if (all || section === "replication") parts.push(replicationInfo(node));
    if (all || section === "cluster") parts.push(clusterInfo(node));
    return bulk(parts.join("\r\n"));
  }

  async function slaveof(args: string[]): Promise<Buffer> {
    if (args.length !== 3) return wrongArgs(args[0].toLowerCase());
    const [host, portText] = [args[1], args[2]];
    if (host.toLowerCase() === "no" && portText.toLowerCase() === "one") {
      await node.exclusive(() => node.replicateFrom(null, "SLAVEOF NO ONE"));
      return OK;
    }
    if (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return error("ERR port should be number");
    const port = Number(portText);
    await node.exclusive(async () => {
      const cur = node.master;
      if (cur && cur.host === host && cur.port === port) return 0;
      return node.replicateFrom({ host, port }, `SLAVEOF ${host} ${port}`);
    });
    return OK;
  }

  async function clusterxCmd(args: string[]): Promise<Buffer> {
    return node.exclusive(async () => {
      const r = clusterx(node.cluster, args.slice(1), { port: boundPort, binds: [opts.host], current: node.master });
      node.cluster = r.state;
      try {
        if (r.change.kind === "replicate") {
          await node.replicateFrom({ host: r.change.host, port: r.change.port }, `CLUSTERX SETNODES version ${r.state.version}`);
        } else if (r.change.kind === "master") {
          await node.replicateFrom(null, `CLUSTERX SETNODES version ${r.state.version}: myself is a master`);
        }
      } catch (e) {
        return encodeReply(replicationFailure((e as Error).message));
      }
      return encodeReply(r.reply);
    });
  }

  function clusterCmd(args: string[]): Buffer {
    const sub = (args[1] ?? "").toLowerCase();
    if (sub === "nodes" && args.length === 2) {
      const t = node.cluster.topology;
      if (!t) return error("CLUSTERDOWN The cluster is not initialized");
      return bulk(formatClusterNodes(t, node.cluster.nodeId, node.cluster.version, Date.now()));
    }
    if (sub === "info" && args.length === 2) {
      const ok = node.cluster.topology !== null;
      return bulk(`cluster_state:${ok ? "ok" : "fail"}\r\ncluster_current_epoch:${Math.max(0, node.cluster.version)}\r\ncluster_my_epoch:${Math.max(0, node.cluster.version)}\r\n`);
    }
    return error("ERR CLUSTER command, CLUSTER INFO|NODES|SLOTS|KEYSLOT|RESET|REPLICAS");
  }

  return server;
}

function wrongArgs(_cmd: string): Buffer {
  return error(`ERR wrong number of arguments`);
}

/** Kvrocks' unknown-command message (every argument, in full). */
function unknown(args: string[]): Buffer {
  const rest = args
    .slice(1)
    .map((a) => `\`${a}\``)
    .join(", ");
  return error(`ERR unknown command \`${args[0]}\`, with args beginning with: ${rest}`);
}


function encodeNested(v: unknown): Buffer {
  if (Array.isArray(v)) return array(v.map(encodeNested));
  if (typeof v === "number") return integer(v);
  return bulk(String(v));
}
