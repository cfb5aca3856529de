/**
 * The replica's admin port: RESP (and inline) commands answered like a Kvrocks node in cluster
 * mode. SETNODES and SLAVEOF that change the master reply only after the old run has stopped,
 * which never waits on the network (the stop is an abort).
 */
import { clusterCommand, clusterSection, clusterx, encodeReply, infoReply, newServerStats, replicationFailure, serverSection, statsSection } from "../cluster/index.ts";
import { DEFAULT_READ_HIGH_WATER, listen, type Conn, type Server } from "../net/index.ts";
import { array, bulk, commandRefusal, type CommandArity, error, integer, MAX_UNAUTHENTICATED_BYTES, OK, requestDecoder, simple, unknownCommand, WRONG_ARGS } from "../resp/index.ts";
import { passwordChecker } from "../ui/secrets.ts";
import { isHostOrAddress } from "../ui/units.ts";
import type { Output } from "../ui/output.ts";
import { replicationInfo, roleReply } from "./info.ts";
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
 * Kvrocks-style arity of the admin commands (CommandArity: exactly n, at least -n, or [min, max]). A name
 * not here is an unknown command.
 */
const ARITY: CommandArity = {
  ping: [1, 2],
  auth: [2, 3],
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
 * array above 1024 elements (no admin command has more than a handful of arguments); a command
 * takes at most two of them, and MAX_UNAUTHENTICATED_BYTES before AUTH (requestDecoder).
 */
export const MAX_ARG_BYTES = 8 * 1024 * 1024;
/** A reply, or "close": drop the connection without a reply. */
type Answer = Buffer | "close";

/** Start the admin server; the bound port is `server.port`. */
export async function startAdmin(node: ReplicaNode, opts: AdminOptions, out: Output): Promise<Server> {
  const checkPassword = opts.requirepass ? passwordChecker(opts.requirepass) : null;
  // A replica serves no replicas: its sync counters stay 0.
  const stats = newServerStats();
  const facts = { cluster: true, port: opts.port, startedMs: Date.now() };
  const server = await listen(opts.host, opts.port, (c) => void serve(c), { readMs: opts.idleMs ?? 300_000 });
  facts.port = server.port;

  async function serve(conn: Conn): Promise<void> {
    stats.connectionsReceived++;
    const session: Session = { authed: !checkPassword, quit: false };
    const dec = requestDecoder(MAX_ARG_BYTES, () => session.authed);
    try {
      for (;;) {
        conn.readHighWater = session.authed ? DEFAULT_READ_HIGH_WATER : MAX_UNAUTHENTICATED_BYTES;
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
      if (code === "PROTOCOL") {
        // Say why, then close: FIN after the reply, so the client can read it (reset after 1 s).
        await conn.write(error(`ERR ${(e as Error).message}`)).catch(() => {});
        conn.end();
        await Promise.race([conn.closed, Bun.sleep(1000)]);
      }
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
    const refused = commandRefusal(ARITY, args, session.authed);
    if (refused !== null) return error(refused);
    stats.commandsProcessed++;
    switch (cmd) {
      case "auth":
        return auth(args, session);
      case "ping":
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
        return error(unknownCommand(args));
    }
  }

  function auth(args: string[], session: Session): Buffer {
    if (!opts.requirepass) return error("ERR Client sent AUTH, but no password is set");
    if (!checkPassword!(args[args.length - 1])) {
      session.authed = false;
      return error("ERR Invalid password");
    }
    session.authed = true;
    return OK;
  }

  function info(args: string[]): Buffer {
    return bulk(
      infoReply(args[1], {
        server: () => serverSection(facts),
        stats: () => statsSection(stats),
        replication: () => replicationInfo(node),
        cluster: () => clusterSection(true),
      }),
    );
  }

  async function slaveof(args: string[]): Promise<Buffer> {
    if (args.length !== 3) return error(WRONG_ARGS);
    const [host, portText] = [args[1], args[2]];
    if (host.toLowerCase() === "no" && portText.toLowerCase() === "one") {
      await node.exclusive(() => node.replicateFrom(null, "SLAVEOF NO ONE"));
      return OK;
    }
    // A host goes into INFO and the log: CR, LF or spaces there would forge lines.
    if (!isHostOrAddress(host)) return error("ERR Invalid host");
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
      const r = clusterx(node.cluster, args.slice(1), { port: facts.port, binds: [opts.host], current: node.master });
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
    return encodeReply(clusterCommand(node.cluster, args.slice(1)));
  }

  return server;
}


function encodeNested(v: unknown): Buffer {
  if (Array.isArray(v)) return array(v.map(encodeNested));
  if (typeof v === "number") return integer(v);
  return bulk(String(v));
}
