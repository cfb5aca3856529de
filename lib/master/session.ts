/**
 * One client connection of kvr master: read commands (RESP or inline, any case), answer them
 * as a Kvrocks master does (docs/protocol.md §1–§4), stream files for `_fetch_file`. Every byte goes
 * out through the connection's fault link.
 */
import { DEFAULT_READ_HIGH_WATER, isNetError, type Conn } from "../net/index.ts";
import { commandRefusal, type CommandArity, MAX_UNAUTHENTICATED_BYTES, NOAUTH, RespDecoder, array, bareLine, bulk, error, OK, requestDecoder, simple } from "../resp/index.ts";
import { UsageError } from "../ui/units.ts";
import type { Link } from "./faults/link.ts";
import { clusterReply, clusterxReply } from "./cluster.ts";
import { infoText } from "./info.ts";
import { chunkFor } from "./ratelimit.ts";
import type { MasterContext } from "./server.ts";
import { refuseName } from "./source.ts";

const PING_BULK = Buffer.from("$4\r\nping\r\n", "latin1");

/** Kvrocks-style arity: n > 0 exactly n tokens, n < 0 at least -n, [min, max] (CommandArity). */
const ARITY: CommandArity = {
  ping: [1, 2],
  auth: 2,
  _db_name: 1,
  replconf: -3,
  psync: -2,
  _fetch_meta: 1,
  _fetch_file: 2,
  info: -1,
  quit: 1,
  kvr: -2,
  clusterx: -2,
  cluster: -2,
};
/** Largest argument (a command takes two, and MAX_UNAUTHENTICATED_BYTES before AUTH): above, -ERR Protocol error and close. */
const MAX_ARG_BYTES = 4 * 1024 * 1024;

interface State {
  authed: boolean;
  listeningPort: number;
  announceIp: string;
}

/** Outcome of a command: keep reading, or stop (the connection was ended or handed over). */
type Next = "continue" | "stop";

/** Serve one accepted connection until it ends. */
export async function serveConnection(conn: Conn, m: MasterContext): Promise<void> {
  const link = m.faults.attach(conn);
  const st: State = { authed: m.checkPassword === null, listeningPort: 0, announceIp: "" };
  const decoder = requestDecoder(MAX_ARG_BYTES, () => st.authed);
  m.out.event("connection", { conn: link.id, peer: conn.peer });
  try {
    while (!link.dead) {
      await link.readable();
      if (link.dead) break;
      conn.readHighWater = st.authed ? DEFAULT_READ_HIGH_WATER : MAX_UNAUTHENTICATED_BYTES;
      const v = await readCommand(conn, link, m, decoder);
      if (v === null) break;
      if (v.length === 0) continue;
      if ((await handle(v, conn, link, st, m)) === "stop") break;
    }
  } catch (e) {
    logEnd(e, conn, link, m);
    // Like Kvrocks and Redis: say why before closing on malformed input.
    if (isNetError(e, "PROTOCOL") && !link.dead) await conn.write(error(`ERR ${e.message}`)).catch(() => {});
  } finally {
    m.slaves.delete(link.id);
    m.faults.detach(link);
    if (!conn.isClosed && !link.dead) conn.end();
    setTimeout(() => conn.destroy(), 1000).unref?.();
  }
}

/** Read one command under the idle timeout (which never fires while a fault holds reads). */
async function readCommand(conn: Conn, link: Link, m: MasterContext, decoder: RespDecoder): Promise<Buffer[] | null> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const idle = m.cfg.idleMs;
  const arm = () => {
    timer = setTimeout(() => {
      if (link.readsHeld()) return arm();
      m.out.debug(`connection ${link.id} ${conn.peer} idle for ${idle} ms: dropped`);
      conn.destroy();
    }, idle);
  };
  if (idle > 0) arm();
  try {
    const v = await conn.read(decoder);
    if (!Array.isArray(v) || v.some((x) => !Buffer.isBuffer(x))) {
      m.out.warn(`connection ${link.id} ${conn.peer}: not a command (expected an array of bulk strings): closed`);
      conn.destroy();
      return null;
    }
    return v as Buffer[];
  } finally {
    if (timer) clearTimeout(timer);
  }
}

function logEnd(e: unknown, conn: Conn, link: Link, m: MasterContext): void {
  if (isNetError(e, "WRITE_TIMEOUT")) {
    m.out.event(
      "drop",
      { conn: link.id, peer: conn.peer, reason: "send-timeout", ms: m.cfg.sendTimeoutMs },
      `dropped connection ${link.id} ${conn.peer}: it did not read for ${m.cfg.sendTimeoutMs} ms (--send-timeout)`,
    );
  } else if (isNetError(e, "PROTOCOL")) {
    m.out.warn(`connection ${link.id} ${conn.peer}: ${(e as Error).message}: closed`);
  } else if (isNetError(e)) {
    m.out.debug(`connection ${link.id} ${conn.peer} ended: ${e.code} ${e.message}`);
  } else {
    m.out.warn(`connection ${link.id} ${conn.peer}: ${(e as Error)?.message ?? e}`);
  }
}

const tx = (b: Buffer) => b.toString("utf8");

async function handle(args: Buffer[], conn: Conn, link: Link, st: State, m: MasterContext): Promise<Next> {
  const cmd = tx(args[0]).toLowerCase();
  if (cmd === "host:" || cmd === "post") {
    m.out.warn(`connection ${link.id} ${conn.peer}: an HTTP request on the replication port: closed`);
    conn.destroy();
    return "stop";
  }
  // Kvrocks' checks before a command runs (docs/protocol.md §1).
  const rejected = commandRefusal(ARITY, args.map(tx), st.authed);
  if (rejected !== null) {
    // Still a command: a fault without a trigger fires (and holds the reply) as on any other.
    await link.command(cmd);
    if (link.dead) return "stop";
    if (rejected === NOAUTH) m.out.event("noauth", { conn: link.id, peer: conn.peer, command: cmd }, `connection ${link.id} ${conn.peer}: ${cmd} refused: NOAUTH (no AUTH yet)`);
    await link.write(error(rejected));
    return "continue";
  }
  // A connection that controls faults is never hit by them (redis-cli must get its +OK).
  if (cmd === "kvr") link.control = true;
  const injected = await link.command(cmd);
  if (link.dead) return "stop";
  if (injected !== null) {
    await link.write(error(injected));
    if (cmd === "_fetch_file" || cmd === "_fetch_meta") {
      // These always end the connection on a Kvrocks master.
      conn.end();
      return "stop";
    }
    return "continue";
  }
  m.stats.commandsProcessed++;
  switch (cmd) {
    case "ping":
      await link.write(args.length > 1 ? bulk(args[1]) : simple("PONG"));
      return "continue";
    case "auth": {
      const refusal = !m.checkPassword ? "Client sent AUTH, but no password is set" : m.checkPassword(tx(args[1])) ? null : "Invalid password";
      if (refusal === null) st.authed = true;
      m.out.event(
        "auth",
        { conn: link.id, peer: conn.peer, ok: refusal === null, ...(refusal ? { reason: refusal } : {}) },
        `connection ${link.id} ${conn.peer}: AUTH ${refusal === null ? "ok" : `refused: ${refusal}`}`,
      );
      await link.write(refusal === null ? OK : error(`ERR ${refusal}`));
      return "continue";
    }
    case "quit":
      await link.write(OK);
      conn.end();
      return "stop";
    case "_db_name":
      await link.write(bareLine(m.cfg.dbName));
      return "continue";
    case "replconf":
      return replconf(args, link, st);
    case "psync":
      return psync(args, conn, link, st, m);
    case "_fetch_meta":
      m.stats.syncFull++;
      await link.write(bareLine((m.cfg.source.snapshot?.() ?? m.cfg.source.files).map((f) => f.name).join(",")));
      conn.end();
      return "stop";
    case "_fetch_file":
      await fetchFiles(tx(args[1]).split(","), conn, link, m);
      return "stop";
    case "info":
      await link.write(bulk(infoText(infoState(m), args[1] ? tx(args[1]) : undefined)));
      return "continue";
    case "clusterx":
      await link.write(clusterxReply(m, args.slice(1).map(tx)));
      return "continue";
    case "cluster":
      await link.write(clusterReply(m, args.slice(1).map(tx)));
      return "continue";
    case "kvr":
      return kvr(args, link, m);
  }
  return "continue";
}

async function replconf(args: Buffer[], link: Link, st: State): Promise<Next> {
  if (args.length % 2 === 0) {
    await link.write(error("ERR wrong number of arguments"));
    return "continue";
  }
  let port = 0;
  let ip = "";
  for (let i = 1; i < args.length; i += 2) {
    const opt = tx(args[i]).toLowerCase();
    const val = tx(args[i + 1]);
    if (opt === "listening-port") {
      if (!/^\d{1,5}$/.test(val) || Number(val) < 1 || Number(val) > 65535) {
        await link.write(error("ERR listening-port should be number or out of range"));
        return "continue";
      }
      port = Number(val);
    } else if (opt === "ip-address") {
      if (val === "") {
        await link.write(error("ERR ip-address should not be empty"));
        return "continue";
      }
      ip = val;
    } else {
      await link.write(error("ERR unknown option"));
      return "continue";
    }
  }
  if (port) st.listeningPort = port;
  if (ip) st.announceIp = ip;
  await link.write(OK);
  return "continue";
}

async function psync(args: Buffer[], conn: Conn, link: Link, st: State, m: MasterContext): Promise<Next> {
  const newForm = args.length === 3;
  const seqText = tx(args[newForm ? 2 : 1]);
  if (!/^\d{1,20}$/.test(seqText) || BigInt(seqText) > 0xffffffffffffffffn) {
    await link.write(error("ERR value is not an unsigned long long or out of range"));
    return "continue";
  }
  if (newForm && args[1].length !== 40) {
    await link.write(error("ERR Wrong replication id length"));
    return "continue";
  }
  const want = BigInt(seqText);
  // --psync refuse: every replica full-syncs, whatever it holds (the drill's master A).
  const why = m.cfg.psync === "refuse" ? "--psync refuse" : want > BigInt(Number.MAX_SAFE_INTEGER) || !m.stream.accept(Number(want)) ? "out of range" : null;
  if (why !== null) {
    m.out.event("psync-refused", { conn: link.id, peer: conn.peer, from: Number(want), reason: why }, `replica ${conn.peer}: PSYNC ${seqText} refused (${why}): it must full-sync`);
    m.stats.syncPartialErr++;
    await link.write(error("ERR sequence out of range, please use fullsync"));
    return "continue";
  }
  const from = Number(want);
  m.stats.syncPartialOk++;
  await link.write(OK);
  const slave = { ip: st.announceIp || conn.remoteAddress, port: st.listeningPort, offset: from - 1 };
  m.slaves.set(link.id, slave);
  m.out.event("psync", { conn: link.id, peer: conn.peer, seq: from - 1, from }, `replica ${conn.peer} streaming from sequence ${from}`);
  await streamTo(from, conn, link, slave, m);
  return "stop";
}

/** Largest write of back-to-back batches. */
const STREAM_WRITE_BYTES = 256 * 1024;

/**
 * Feed one replica: the retained batches from `from` on, several per write, then each new one
 * as it is produced; a `ping` bulk after --heartbeat without anything to send. A replica that
 * fell out of the window is dropped (its next PSYNC is out of range: full sync).
 */
async function streamTo(from: number, conn: Conn, link: Link, slave: { offset: number }, m: MasterContext): Promise<void> {
  let cursor = from;
  let lastWrite = Date.now();
  // A write held by a fault rejects (CLOSED) when the socket closes (Link.send); a wait for
  // the next batch ends at once.
  void conn.closed.then(() => m.stream.notify());
  while (!link.dead && !conn.isClosed) {
    if (cursor <= m.stream.head) {
      const r = m.stream.framesFrom(cursor, STREAM_WRITE_BYTES);
      if (r === null) {
        m.out.warn(`replica ${conn.peer} fell out of the WAL window at sequence ${cursor} (first retained ${m.stream.firstRetained}): dropped`);
        conn.end();
        return;
      }
      await link.write(r.frames.length === 1 ? r.frames[0] : Buffer.concat(r.frames, r.bytes));
      if (link.dead) return;
      cursor = r.next;
      slave.offset = cursor - 1;
      lastWrite = Date.now();
      continue;
    }
    const idle = Date.now() - lastWrite;
    if (idle >= m.cfg.heartbeatMs) {
      await link.write(PING_BULK);
      if (link.dead) return;
      lastWrite = Date.now();
      continue;
    }
    await m.stream.wait(m.cfg.heartbeatMs - idle);
  }
}

async function fetchFiles(names: string[], conn: Conn, link: Link, m: MasterContext): Promise<void> {
  for (const n of names) {
    const why = refuseName(n, m.cfg.source);
    if (why) {
      m.out.warn(`connection ${link.id} ${conn.peer}: _fetch_file refused: ${why}`);
      await link.write(error(`ERR refused to serve: ${why}`));
      conn.end();
      return;
    }
  }
  const chunk = chunkFor(m.limiter.rate);
  m.stats.fetchConnections++;
  try {
    for (const name of names) {
      const injected = link.errorFor("_fetch_file");
      if (injected !== null) {
        await link.write(error(injected));
        break;
      }
      let file;
      try {
        file = await m.cfg.source.open(name);
      } catch (e) {
        // As Kvrocks: a file that cannot be opened ends the stream (the replica sees EOF).
        m.out.warn(`cannot open ${name} for ${conn.peer}: ${(e as Error).message}`);
        break;
      }
      try {
        await link.write(`${file.size}\r\n`);
        // A chunk's memory is read into again once the socket no longer refers to it.
        for await (const piece of file.chunks(chunk, () => conn.flushed)) {
          await m.limiter.take(piece.length);
          await link.writeFile(piece, (n) => (m.stats.bytesSent += n));
        }
      } finally {
        await file.close();
      }
      m.stats.filesServed++;
      m.out.event("file-served", { conn: link.id, peer: conn.peer, name, bytes: file.size });
      link.fileDone();
    }
  } finally {
    m.stats.fetchConnections--;
  }
  // As Kvrocks: the master closes after the last file.
  if (!link.dead) {
    await conn.drain().catch(() => {});
    conn.end();
  }
}

async function kvr(args: Buffer[], link: Link, m: MasterContext): Promise<Next> {
  const sub = args.slice(1).map(tx);
  const [a, b] = [sub[0]?.toLowerCase(), sub[1]?.toLowerCase()];
  if (a !== "fault" || !b) {
    await link.write(error("ERR unknown subcommand (try KVR FAULT ADD <spec> | KVR FAULT CLEAR | KVR FAULT LIST)"));
    return "continue";
  }
  if (b === "add" && sub.length >= 3) {
    try {
      await m.faults.add(sub.slice(2).join(" "));
    } catch (e) {
      const msg = e instanceof UsageError ? e.message.replace(/^--fault: /, "") : (e as Error).message;
      await link.write(error(`ERR invalid fault spec: ${msg}`));
      return "continue";
    }
    m.out.info(`fault added at run time: ${sub.slice(2).join(" ")}`);
    await link.write(OK);
  } else if (b === "clear" && sub.length === 2) {
    await m.faults.clear();
    m.out.info("faults cleared at run time");
    await link.write(OK);
  } else if (b === "list" && sub.length === 2) {
    await link.write(array(m.faults.list().map((s) => bulk(s))));
  } else {
    await link.write(error("ERR usage: KVR FAULT ADD <spec> | KVR FAULT CLEAR | KVR FAULT LIST"));
  }
  return "continue";
}

function infoState(m: MasterContext) {
  return {
    seq: m.stream.head,
    walFirst: m.stream.firstRetained,
    walBatches: m.stream.retained,
    batchesProduced: m.stream.produced,
    slaves: [...m.slaves.values()],
    files: m.cfg.source.files.length,
    bytes: m.checkpointBytes,
    bytesSent: m.stats.bytesSent,
    filesServed: m.stats.filesServed,
    fetchConnections: m.stats.fetchConnections,
    activeFaults: m.faults.count,
    server: m.server,
    stats: m.stats,
  };
}
