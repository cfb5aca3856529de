/**
 * A test double of a running Kvrocks master for `kvr drill --scenario slow-replica --master`
 * (docs/protocol.md §1–§4, §7, §8), on real sockets: it stores SET/DEL (in cluster mode only keys
 * in its own slots: others get -MOVED), turns each SET into a WriteBatch of its replication
 * stream, feeds every replica that PSYNCed (a `ping` heartbeat every 2 s when idle), serves a
 * generated checkpoint for full syncs, lists its replicas in INFO replication, and answers
 * CLUSTER NODES. Its feed to one replica blocks on a full send buffer forever, as Kvrocks did
 * before PR #3357 ("blocking", the default), or drops the replica after `sendTimeoutMs` of it.
 * It records the commands it served (name and first argument: the key of a SET).
 */
import { formatSlotRange, keySlot, slotIn } from "../../lib/cluster/index.ts";
import { generatedChunks, generatedFiles, type GenerateSpec } from "../../lib/master/generate.ts";
import { listen, type Conn, type Server } from "../../lib/net/index.ts";
import { bareLine, bulk, error, integer, OK, simple } from "../../lib/resp/index.ts";
import { encodePutBatch } from "../../lib/rocksdb/index.ts";
import { serveCommands } from "../helpers/serve.ts";

export interface KvrocksMasterOptions {
  password?: string;
  /** Cluster mode owning these slots (another master owns the rest); null = standalone. */
  slots?: Array<[number, number]> | null;
  /** Drop a replica whose socket stayed unwritable this long (0 = never: before PR #3357). */
  sendTimeoutMs?: number;
  /** Refuse this PSYNC ("sequence out of range"): the replica full-syncs. */
  refusePsync?: (p: { seq: number; listeningPort: number; remotePort: number }) => boolean;
  /** One feed for all replicas: a write blocked on one replica holds up every other (and, with pingWaits, PING). */
  sharedFeed?: boolean;
  /** PING waits for the shared feed (a master whose blocked feed holds a lock its commands need). */
  pingWaits?: boolean;
}

export interface KvrocksMaster {
  port: number;
  store: Map<string, string>;
  /** [command (lower case), first argument] of every command served. */
  commands: Array<[string, string]>;
  /** PSYNCs refused, and full syncs served (_fetch_meta). */
  counts: { psyncRefused: number; fetchMeta: number; moved: number };
  close(): Promise<void>;
}

const MY_ID = "a".repeat(40);
const OTHER_ID = "b".repeat(40);
const PING = Buffer.from("$4\r\nping\r\n", "latin1");
/** WriteBatches kept for PSYNC. */
const WINDOW = 200_000;

export async function startKvrocksMaster(opts: KvrocksMasterOptions = {}): Promise<KvrocksMaster> {
  const slots = opts.slots ?? null;
  const store = new Map<string, string>();
  const commands: Array<[string, string]> = [];
  const counts = { psyncRefused: 0, fetchMeta: 0, moved: 0 };
  /** The stream: frames[i] is the batch at sequence first + i (one Put per SET). */
  const frames: Buffer[] = [];
  // A master with some history: its stream continues after sequence 100.
  let first = 101;
  let head = 100;
  let snapshotSeq = head;
  const slaves = new Map<Conn, { ip: string; port: number; offset: number }>();
  const wakers = new Set<() => void>();
  const wake = () => {
    for (const w of [...wakers]) w();
  };
  const spec = (): GenerateSpec => ({ count: 1, size: 64 * 1024, seed: 3, seq: snapshotSeq });
  let server: Server | null = null;
  /** With sharedFeed: the write in progress on any replica (the next one waits for it). */
  let gate: Promise<void> = Promise.resolve();
  const send = async (conn: Conn, data: Buffer) => {
    if (!opts.sharedFeed) return conn.write(data);
    const prev = gate;
    let release!: () => void;
    gate = new Promise((r) => (release = r));
    await prev;
    try {
      await conn.write(data);
    } finally {
      release();
    }
  };

  const otherSlots = (): string => {
    if (!slots) return "";
    const free: Array<[number, number]> = [];
    let next = 0;
    for (const [a, b] of [...slots].sort((x, y) => x[0] - y[0])) {
      if (a > next) free.push([next, a - 1]);
      next = b + 1;
    }
    if (next <= 16383) free.push([next, 16383]);
    return free.map(formatSlotRange).join(" ");
  };
  const info = (section = "all"): string => {
    const sec = section.toLowerCase();
    const all = ["all", "default", "everything"].includes(sec);
    let out = "";
    if (all || sec === "server") out += `# Server\r\nkvrocks_version:2.10.1\r\nredis_mode:${slots ? "cluster" : "standalone"}\r\nprocess_id:${process.pid}\r\n`;
    if (all || sec === "replication") {
      const lines = ["# Replication", "role:master", `connected_slaves:${slaves.size}`];
      [...slaves.values()].forEach((s, i) => lines.push(`slave${i}:ip=${s.ip},port=${s.port},offset=${s.offset},lag=${head - s.offset}`));
      lines.push(`master_repl_offset:${head}`);
      out += lines.join("\r\n") + "\r\n";
    }
    return out;
  };

  /** Feed one replica from `from` until its socket fails (or, with a send timeout, is dropped). */
  const feed = async (conn: Conn, from: number, slave: { offset: number }) => {
    let cursor = from;
    let last = Date.now();
    while (!conn.isClosed) {
      if (cursor <= head) {
        if (cursor < first) return conn.destroy();
        const n = Math.min(head - cursor + 1, 256);
        await send(conn, Buffer.concat(frames.slice(cursor - first, cursor - first + n)));
        cursor += n;
        slave.offset = cursor - 1;
        last = Date.now();
        continue;
      }
      if (Date.now() - last >= 2000) {
        await send(conn, PING);
        last = Date.now();
        continue;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          wakers.delete(done);
          resolve();
        };
        const t = setTimeout(done, 2000 - (Date.now() - last));
        wakers.add(done);
      });
    }
  };

  const serve = (conn: Conn) => {
    let listeningPort = 0;
    return serveCommands(
      conn,
      opts.password,
      async (cmd, args) => {
        switch (cmd) {
          case "ping":
            if (opts.pingWaits) await gate;
            await conn.write(simple("PONG"));
            break;
          case "info":
            await conn.write(bulk(info(args[1])));
            break;
          case "cluster":
            if (!slots) await conn.write(error("ERR Cluster mode is not enabled"));
            else {
              const me = `${MY_ID} 127.0.0.1:${server!.port}@${server!.port + 10000} myself,master - 0 0 1 connected ${slots.map(formatSlotRange).join(" ")}`;
              const other = `${OTHER_ID} 127.0.0.1:1@10001 master - 0 0 1 connected ${otherSlots()}`;
              await conn.write(bulk(`${me}\n${other}\n`));
            }
            break;
          case "set": {
            if (slots && !slotIn(keySlot(args[1]), slots)) {
              counts.moved++;
              await conn.write(error(`MOVED ${keySlot(args[1])} 127.0.0.1:1`));
              break;
            }
            store.set(args[1], args[2]);
            head++;
            const b = encodePutBatch(head, [{ key: args[1], value: args[2] }]);
            frames.push(Buffer.concat([Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n")]));
            if (frames.length > WINDOW) {
              frames.shift();
              first++;
            }
            wake();
            await conn.write(OK);
            break;
          }
          case "del": {
            let n = 0;
            for (const k of args.slice(1)) if (store.delete(k)) n++;
            await conn.write(integer(n));
            break;
          }
          case "_db_name":
            await conn.write(bareLine("change.me.db"));
            break;
          case "replconf":
            listeningPort = Number(args[2]);
            await conn.write(OK);
            break;
          case "psync": {
            const seq = Number(args[args.length - 1]);
            const inWindow = seq === head + 1 || (seq >= first && seq <= head);
            if (!inWindow || opts.refusePsync?.({ seq, listeningPort, remotePort: conn.remotePort })) {
              counts.psyncRefused++;
              await conn.write(error("ERR sequence out of range, please use fullsync"));
              break;
            }
            await conn.write(OK);
            const slave = { ip: conn.remoteAddress, port: listeningPort, offset: seq - 1 };
            slaves.set(conn, slave);
            try {
              await feed(conn, seq, slave);
            } finally {
              slaves.delete(conn);
            }
            return "stop";
          }
          case "_fetch_meta":
            counts.fetchMeta++;
            snapshotSeq = head;
            await conn.write(bareLine(generatedFiles(spec()).map((f) => f.name).join(",")));
            conn.end();
            return "stop";
          case "_fetch_file":
            for (const name of args[1].split(",")) {
              const chunks = [...generatedChunks(spec(), name)];
              await conn.write(`${chunks.reduce((n, c) => n + c.length, 0)}\r\n`);
              for (const c of chunks) await conn.write(c);
            }
            conn.end();
            return "stop";
          default:
            await conn.write(error(`ERR unknown command \`${args[0]}\``));
        }
      },
      (cmd, args) => commands.push([cmd, args[1] ?? ""]),
    );
  };

  server = await listen("127.0.0.1", 0, (c) => void serve(c), { readMs: 0, writeMs: opts.sendTimeoutMs ?? 0 });
  return {
    port: server.port,
    store,
    commands,
    counts,
    async close() {
      for (const c of slaves.keys()) c.destroy();
      wake();
      await server?.close(50);
    },
  };
}
