/**
 * kvr master's server: listener, shared state (source, stats, replicas, rate limiter, faults),
 * and the server side of the fault interface (refuse, blackhole-accept).
 */
import { listen, listenNoAccept, type Conn, type Server } from "../net/index.ts";
import type { Output } from "../ui/output.ts";
import { FaultController } from "./faults/controller.ts";
import type { FaultSpec } from "./faults/spec.ts";
import type { ServerHandle } from "./faults/types.ts";
import { createRateLimiter, type RateLimiter } from "./ratelimit.ts";
import { serveConnection } from "./session.ts";
import { totalBytes, type CheckpointSource } from "./source.ts";
import { passwordChecker } from "../ui/secrets.ts";
import { WalStream } from "./stream.ts";
import { initialClusterState, newServerStats, type ClusterState, type ServerFacts, type ServerStats } from "../cluster/index.ts";

export interface MasterConfig {
  host: string;
  port: number;
  source: CheckpointSource;
  dbName: string;
  /** null = no password. */
  password: string | null;
  /** Bytes per second shared by all fetch connections (0 = unlimited). */
  rate: number;
  faults: FaultSpec[];
  /** The checkpoint's sequence (≥ 1). */
  seq: number;
  heartbeatMs: number;
  sendTimeoutMs: number;
  /** 0 = never. */
  idleMs: number;
  /** WriteBatches per second for PSYNC streams (default 0: heartbeats only). */
  writeRate?: number;
  /** Batches retained for PSYNC (default 100000). */
  walWindow?: number;
  /** Stop writing after this many batches (default 0 = never). */
  writeTotal?: number;
  /** Seed of the deterministic stream contents (default 1). */
  streamSeed?: number;
  /** "refuse": answer every PSYNC "out of range", so every replica full-syncs (default "accept"). */
  psync?: "accept" | "refuse";
  /** This node's cluster node id: cluster mode (CLUSTERX, CLUSTER NODES); null/absent = standalone. */
  nodeId?: string | null;
}

export interface MasterStats extends ServerStats {
  bytesSent: number;
  filesServed: number;
  fetchConnections: number;
}

/** What a connection's command loop needs from the master. */
export interface MasterContext {
  readonly cfg: MasterConfig;
  readonly out: Output;
  readonly stats: MasterStats;
  readonly limiter: RateLimiter;
  readonly faults: FaultController;
  readonly checkPassword: ((attempt: string) => boolean) | null;
  /** Replicas streaming after PSYNC +OK. */
  readonly slaves: Map<number, { ip: string; port: number; offset: number }>;
  readonly checkpointBytes: number;
  /** The incremental stream (head = master_repl_offset). */
  readonly stream: WalStream;
  /** Cluster state (node id, topology, version); null = standalone (no --node-id). */
  cluster: ClusterState | null;
  /** The actual listening port and start time, for INFO server. */
  readonly server: ServerFacts;
}

export interface Master {
  readonly host: string;
  readonly port: number;
  readonly ctx: MasterContext;
  /** Stop accepting, end every connection, undo faults. */
  close(): Promise<void>;
}

/** Start serving; resolves once listening. */
export async function startMaster(cfg: MasterConfig, out: Output): Promise<Master> {
  let server: Server | null = null;
  let closing = false;
  const live = new Set<Conn>();
  const onConn = (c: Conn) => {
    if (closing) return void c.destroy();
    live.add(c);
    ctx.stats.connectionsReceived++;
    c.closed.then(() => live.delete(c));
    void serveConnection(c, ctx);
  };
  let port = cfg.port;
  const handle: ServerHandle = {
    stopAccepting: async () => server?.stopAccepting(),
    startAccepting: async () => {
      if (!closing) await server?.startAccepting();
    },
    async blackhole() {
      await server?.stopAccepting();
      let hole;
      for (let i = 0; ; i++) {
        try {
          hole = await listenNoAccept(cfg.host, port);
          break;
        } catch (e) {
          if (i >= 25) {
            await server?.startAccepting();
            throw e;
          }
          await Bun.sleep(20);
        }
      }
      return async () => {
        hole.close();
        if (!closing) await server?.startAccepting();
      };
    },
  };
  const faults = new FaultController(
    handle,
    (e) =>
      out.event(
        "fault",
        { conn: e.conn, peer: e.peer, kind: e.kind, trigger: e.trigger, offset: e.offset, spec: e.spec },
        `fault ${e.kind} fired (${e.trigger})${e.conn !== null ? ` on connection ${e.conn} ${e.peer} at file offset ${e.offset}` : ""}`,
      ),
    (m) => out.warn(m),
  );
  const ctx: MasterContext = {
    cfg,
    out,
    stats: { bytesSent: 0, filesServed: 0, fetchConnections: 0, ...newServerStats() },
    limiter: createRateLimiter(cfg.rate),
    faults,
    checkPassword: cfg.password ? passwordChecker(cfg.password) : null,
    slaves: new Map(),
    checkpointBytes: totalBytes(cfg.source),
    stream: new WalStream({ seq: cfg.seq, seed: cfg.streamSeed ?? 1, rate: cfg.writeRate ?? 0, window: cfg.walWindow ?? 100_000, total: cfg.writeTotal ?? 0 }),
    cluster: cfg.nodeId ? { ...initialClusterState(), nodeId: cfg.nodeId } : null,
    server: { cluster: !!cfg.nodeId, port: cfg.port, startedMs: Date.now() },
  };
  // A generated checkpoint's MANIFEST carries the stream's head when it is fetched; full syncs
  // share it while it is within half the WAL window (Kvrocks: half the WAL's retention).
  cfg.source.bindSequence?.(() => ctx.stream.head, Math.floor((cfg.walWindow ?? 100_000) / 2));
  server = await listen(cfg.host, cfg.port, onConn, { readMs: 0, writeMs: cfg.sendTimeoutMs });
  port = server.port;
  ctx.server.port = port;
  for (const f of cfg.faults) await faults.add(f);
  ctx.stream.start();
  return {
    host: cfg.host,
    port,
    ctx,
    async close() {
      closing = true;
      ctx.stream.stop();
      await faults.clear().catch(() => {});
      const s = server;
      server = null;
      if (s) await s.close(200);
      for (const c of live) c.destroy();
    },
  };
}
