/**
 * The slow-replica scenario (Kvrocks issue #3356, docs/protocol.md §8): does the master drop a
 * replica that stopped reading? One run as named phases: the master under test (a kvr master
 * child, or --master), the writes that feed its stream (its own --write-rate, or SETs on --master),
 * a healthy kvr replica streaming from it, the drill's own replica attached (attach), then
 * stop-reading: the drill stops reading its socket, keeps it open, and watches — the socket
 * table for its receive window closing (window-closed), the master's INFO replication and both
 * ends of the socket for the drop (dropped, or held at --give-up: the blocked-feed signature),
 * PING on the master every 100 ms, the healthy replica's offset. A held connection is then
 * released (the drill closes it) and the master's recovery timed (release). verify reads INFO
 * after; on --master the drill's keys are deleted at the end (delete-keys, every path).
 */
import type { Conn } from "../../net/index.ts";
import type { Output } from "../../ui/output.ts";
import { formatBytes, formatMs } from "../../ui/units.ts";
import { DrillError } from "../errors.ts";
import { lookHealthy, startHealthy, type Healthy } from "../healthy.ts";
import { describeMaster, startMasterNode } from "../master-node.ts";
import { addrText, info, intField, openNode, slaveLines } from "../node.ts";
import type { DrillConfig } from "../options.ts";
import { Phases, type Phase, type RunContext } from "../phases.ts";
import { Pinger, type PingStats } from "../pinger.ts";
import { SocketWatch } from "../sockwatch.ts";
import { attachStuck, type StuckReplica } from "../stuck.ts";
import { chooseKeys, deleteKeys, KEY_PREFIX, VALUE_BYTES, Writer } from "../writer.ts";

/** PING on the master unanswered this long is a stall (a Kvrocks master answers in well under a millisecond). */
export const PING_STALL_MS = 2000;
/** The healthy replica's offset standing still this long while the master's is ahead is a stall. */
export const HEALTHY_STALL_MS = 5000;
/** How often the watch looks (socket table, the master's INFO, the healthy replica's INFO). */
const LOOK_MS = 100;
/** Without tcpi_rcv_wnd, a Recv-Q that has not moved for this long means the window closed. */
const RECVQ_STILL_MS = 1000;
/** After the drop (or the release), how long the watch goes on before INFO after is read. */
const VERIFY_MS = 1000;

export interface SlowReplicaResult {
  run: number;
  scenario: "slow-replica";
  verdict: "PASS" | "FAIL";
  reasons: string[];
  phases: Phase[];
  master: { kind: "kvr" | "external"; host: string; port: number; pid: number | null; sendTimeoutMs: number | null; mode: "cluster" | "standalone"; version: string | null };
  /** What fed the master's stream: its own batches (kvr), the drill's SETs (--master), or nothing. */
  writes: { kind: "stream" | "set" | "none"; rate: number; keys: string[] | null; sent: number | null; deleted: number | null; error: string | null };
  stuck: {
    host: string;
    /** Its local port, announced as its listening port: the master's INFO lists it so. */
    port: number;
    psyncFrom: number;
    fullSync: { files: number; bytes: number } | null;
    streamBytes: number;
    /** ms since the run began (as phases' atMs). */
    stoppedAtMs: number;
    windowClosedAtMs: number | null;
    /** How the window was seen to close: tcpi_rcv_wnd 0, or a Recv-Q that stopped growing; null = not seen. */
    windowHow: "rcv_wnd" | "recv-q" | null;
    /** Largest Recv-Q of our end, and Send-Q of the master's end (null: not on this host), seen. */
    recvQ: number | null;
    masterSendQ: number | null;
    droppedAtMs: number | null;
    dropAfterStopMs: number | null;
    /** A held connection: how long after it stopped reading the drill gave up (null when dropped). */
    heldForMs: number | null;
    /** From the window closing (from stopping to read when it was not seen). */
    dropAfterWindowMs: number | null;
    droppedHow: string | null;
    /** Still held at --give-up: the blocked-feed signature. */
    held: boolean;
    withinBudget: boolean;
  };
  ping: PingStats;
  healthy: { host: string; port: number; pid: number; offsetBefore: number; offsetAfter: number | null; longestStallMs: number; link: string | null };
  /** After a held connection: the drill closed it; how long until the master let it go and the healthy replica moved. */
  release: { releasedAtMs: number; recoveredAfterMs: number | null } | null;
  infoBefore: Record<string, string> | null;
  /** A held connection: the master's INFO replication at --give-up (the stuck replica's offset frozen, its lag growing). */
  infoHeld: Record<string, string> | null;
  infoAfter: Record<string, string> | null;
}

/** The slow-replica scenario for the drill's command loop and report (scenarios/index.ts). */
export const slowReplicaScenario = {
  header,
  run: runSlowReplica,
  print: printSlowReplica,
  latency: (r: SlowReplicaResult) => (r.stuck.held ? { ms: r.stuck.heldForMs ?? 0, hung: true } : r.stuck.dropAfterWindowMs !== null ? { ms: r.stuck.dropAfterWindowMs, hung: false } : null),
  stopsRepeat: (_r: SlowReplicaResult): string | null => null,
  timings: (r: SlowReplicaResult) => ({
    stoppedAtMs: r.stuck.stoppedAtMs,
    windowClosedAtMs: r.stuck.windowClosedAtMs,
    droppedAtMs: r.stuck.droppedAtMs,
    dropAfterWindowMs: r.stuck.dropAfterWindowMs,
    held: r.stuck.held,
    longestPingGapMs: r.ping.longestGapMs,
    healthyLongestStallMs: r.healthy.longestStallMs,
    recoveredAfterReleaseMs: r.release?.recoveredAfterMs ?? null,
  }),
  passNote: (_r: SlowReplicaResult) => "",
};

function header(cfg: DrillConfig): string {
  const node = cfg.master
    ? `node ${addrText(cfg.master)}${cfg.writeRate ? ` (SET ${cfg.writeRate}/s of ${formatBytes(VALUE_BYTES)} on ${KEY_PREFIX}* keys)` : " (no writes of the drill's own)"}`
    : `a kvr master (--send-timeout ${cfg.sendTimeoutMs ? formatMs(cfg.sendTimeoutMs) : "0: never drops"}, ${cfg.writeRate} batches/s)`;
  return `slow-replica — ${node}: the drill's replica stops reading; the master must drop it within ${formatMs(cfg.budgetMs)} of its window closing, give up after ${formatMs(cfg.giveUpMs)}`;
}

/** Run the scenario once. Throws DrillError when the drill itself cannot run. */
async function runSlowReplica(ctx: RunContext): Promise<SlowReplicaResult> {
  const phases = new Phases(ctx);
  const w: { writer: Writer | null } = { writer: null };
  let result: SlowReplicaResult | undefined;
  try {
    result = await slowReplica(ctx, phases, w);
  } finally {
    const writer = w.writer;
    // A first SET refused wrote nothing: there are no keys to delete.
    if (writer?.refused) await writer.stop();
    else if (writer) {
      const d = await phases.final(
        "delete-keys",
        async () => {
          await writer.stop();
          return deleteKeys(writer.addr, ctx.cfg.auth, writer.keys);
        },
        (d) =>
          d.error
            ? `could not delete the drill's keys (${d.error}): delete ${KEY_PREFIX}${tokenOf(writer.keys)}:* by hand (e.g. redis-cli --scan --pattern '${KEY_PREFIX}${tokenOf(writer.keys)}:*')`
            : `${writer.sent} SETs written; ${d.deleted} of ${writer.keys.length} keys ${KEY_PREFIX}${tokenOf(writer.keys)}:* deleted`,
      );
      if (result) {
        result.writes = { ...result.writes, sent: writer.sent, deleted: d.deleted, error: d.error ?? writer.error };
        result.phases = phases.list;
      }
    }
  }
  return result!;
}

/** "<token>" of keys kvr:drill:<token>:<i>. */
const tokenOf = (keys: string[]) => (keys[0] ?? "").slice(KEY_PREFIX.length).replace(/:\d+$/, "");

async function slowReplica(ctx: RunContext, phases: Phases, w: { writer: Writer | null }): Promise<SlowReplicaResult> {
  const { cfg } = ctx;

  // ---- the master under test ----
  const m = await phases.run(cfg.master ? "master" : "start-master", () => startMasterNode(ctx), (v) => describeMaster(v, cfg.sendTimeoutMs, cfg.writeRate));

  // ---- writes on a --master node: SETs on keys in slots it owns ----
  if (m.kind === "external" && cfg.writeRate > 0) {
    await phases.run(
      "start-writes",
      async () => {
        const keys = chooseKeys(`${Date.now().toString(36)}${ctx.run}`, m.slots);
        if (keys.length === 0) throw new DrillError(`the node at ${addrText(m.addr)} owns no slots: the drill's SETs would be refused (MOVED); drill a master that serves slots, or give --write-rate 0`);
        const writer = new Writer(m.addr, cfg.auth, keys, cfg.writeRate);
        w.writer = writer;
        const refused = await writer.start().catch((e) => {
          throw new DrillError(`the drill's writes to ${addrText(m.addr)} could not start: ${(e as Error).message}`);
        });
        if (refused) {
          // A kvr master answers SET as an unknown command; a Kvrocks master's refusal (TRYAGAIN, MOVED, a full disk) speaks for itself.
          const hint = /^ERR unknown command/.test(writer.refused?.message ?? "")
            ? ": drill a Kvrocks master (a kvr master takes no SETs), or leave out --master: the drill then starts a kvr master that writes its own stream"
            : "";
          throw new DrillError(`the master refused the drill's writes: ${refused}${hint}`);
        }
        return writer;
      },
      (wr) => `SET ${formatBytes(VALUE_BYTES)} values at ${wr.rate}/s on ${wr.keys.length} keys ${KEY_PREFIX}${tokenOf(wr.keys)}:*${m.slots ? " (each in a slot the node owns)" : ""}`,
    );
  }

  // ---- the healthy replica, streaming before anything gets stuck ----
  const healthy = await phases.run("start-healthy", () => startHealthy(ctx, m.addr, m.dbName, cfg.giveUpMs), (h) => `kvr replica ${addrText(h.addr)} (pid ${h.child.pid}) streaming from the master at offset ${h.offset}`);

  // ---- the drill's replica: handshake, PSYNC, follow; the master's INFO must list it ----
  const mon = await openNode(m.addr, "the master under test", { auth: cfg.auth, signal: ctx.signal });
  ctx.cleanup.add("closing the watching connection to the master", () => mon.destroy());
  const att = await phases.run(
    "attach",
    async () => {
      const s = await attachStuck(ctx, m.addr, cfg.auth, m.dbName);
      s.conn.pauseReading(); // stop at once: what follows is the stop-reading phase
      const sock = SocketWatch.create(s.conn);
      if (typeof sock !== "string") ctx.cleanup.add("closing the socket table watch", () => sock.close());
      const listed = await waitListed(mon, s.marker, 3000);
      if (!listed.found && (typeof sock === "string" || !sock.masterLocal)) {
        throw new DrillError(
          `the master's INFO replication does not list the drill's replica (port ${s.marker}) and its end of the connection is not on this host: the drill cannot tell when the master drops it`,
        );
      }
      return { s, sock, listed };
    },
    ({ s, listed }) =>
      `replica ${addrText({ host: s.conn.localAddress, port: s.marker })}: ` +
      (s.fullSync ? `full sync of ${s.fullSync.files} files (${formatBytes(s.fullSync.bytes)}), then ` : "") +
      `PSYNC ${s.psyncFrom} accepted; followed ${s.batches} batches (${formatBytes(s.streamBytes)}); ` +
      (listed.found ? `INFO replication lists it (port ${s.marker})` : "not in INFO replication: the drop is seen on the master's end of the socket"),
  );
  const { s: stuck } = att;
  const sock = typeof att.sock === "string" ? null : att.sock;
  if (!sock) ctx.log(`the receive window is not measured: ${att.sock}`);
  const infoBefore = att.listed.info;

  // ---- stop reading: watch the window, the drop, PING, the healthy replica ----
  const pingConn = await openNode(m.addr, "the master under test", { auth: cfg.auth, signal: ctx.signal });
  ctx.cleanup.add("closing the PING connection", () => pingConn.destroy());
  const pinger = new Pinger(pingConn);
  const watch = new Watch(stuck, sock, mon, () => openNode(m.addr, "the master under test", { auth: cfg.auth, connectMs: 2000 }), healthy, w.writer);
  const stoppedAt = performance.now();
  pinger.start();
  watch.start();
  ctx.cleanup.add("stopping the watch", async () => {
    await watch.stop();
    watch.close();
  });
  const giveUpLeft = () => Math.max(0, stoppedAt + cfg.giveUpMs - performance.now());
  await phases.run("stop-reading", async () => stoppedAt, () => `the drill's replica stopped reading; its socket stays open (PING and INFO on the master every ${LOOK_MS} ms)`);

  await phases.run(
    "window-closed",
    () => watch.until(() => watch.windowAt !== null || watch.droppedAt !== null, giveUpLeft()),
    () =>
      watch.error
        ? "not awaited: the run stopped early (the error follows)"
        : watch.windowAt !== null
          ? `receive window 0 after ${formatMs(watch.windowAt - stoppedAt)} (${watch.windowHow === "rcv_wnd" ? "tcpi_rcv_wnd" : "Recv-Q no longer growing"}; Recv-Q ${formatBytes(watch.maxRecvQ ?? 0)}` +
            (watch.maxSendQ !== null ? `; the master's Send-Q ${formatBytes(watch.maxSendQ)}` : "") +
            ")"
          : watch.droppedAt !== null
            ? `dropped before its receive window closed (${watch.droppedHow})`
            : sock
              ? `the receive window did not close within --give-up ${formatMs(cfg.giveUpMs)}`
              : "not measured (no socket table here): the budget counts from stop-reading",
  );
  if (watch.error) throw watch.error;
  if (sock && watch.windowAt === null && watch.droppedAt === null) {
    throw new DrillError(
      `the stuck connection's receive window never closed within --give-up ${formatMs(cfg.giveUpMs)}: the master sent too little to fill its buffers (Recv-Q ${formatBytes(watch.maxRecvQ ?? 0)}); raise --write-rate`,
    );
  }

  const budgetFrom = watch.windowAt ?? stoppedAt;
  let heldForMs: number | null = null;
  let infoHeld: Record<string, string> | null = null;
  const dropped = await phases.run(
    (d) => (d ? "dropped" : "held"),
    async () => {
      const d = await watch.until(() => watch.droppedAt !== null, giveUpLeft());
      if (!d) {
        heldForMs = Math.round(performance.now() - stoppedAt);
        infoHeld = watch.lastInfo;
      }
      return d;
    },
    (d) =>
      d
        ? `the master dropped the stuck replica ${formatMs(watch.droppedAt! - budgetFrom)} after ${watch.windowAt !== null ? "its window closed" : "it stopped reading"} (${watch.droppedHow})`
        : `still held ${formatMs(heldForMs ?? 0)} after it stopped reading (--give-up ${formatMs(cfg.giveUpMs)}): the blocked-feed signature (Kvrocks #3356)`,
  );
  if (watch.error) throw watch.error;

  // ---- held: close the stuck socket, time the master's recovery ----
  let release: SlowReplicaResult["release"] = null;
  if (!dropped) {
    release = await phases.run(
      "release",
      async () => {
        const at = performance.now();
        watch.released = true;
        stuck.conn.destroy();
        const ok = await watch.until(() => watch.recoveredSince(at), cfg.giveUpMs);
        return { releasedAtMs: phases.since(at), recoveredAfterMs: ok ? Math.round(watch.recoveredAt! - at) : null };
      },
      (r) =>
        r.recoveredAfterMs === null
          ? `the drill closed its socket; the master had not recovered within ${formatMs(cfg.giveUpMs)} (stuck replica still listed, or the healthy replica not moving)`
          : `the drill closed its socket; the master recovered ${formatMs(r.recoveredAfterMs)} later (the stuck replica gone from INFO, the healthy replica's offset moving)`,
    );
  }

  // ---- verify: INFO after, the healthy replica still moving ----
  const ver = await phases.run(
    "verify",
    async () => {
      await Bun.sleep(VERIFY_MS);
      await watch.stop();
      const infoAfter = await info(mon, "replication", 5000, "the master under test").catch(() => watch.lastInfo);
      const h = await lookHealthy(healthy);
      return { infoAfter, h, ping: await pinger.stop() };
    },
    (v) =>
      `master: connected_slaves:${v.infoAfter?.connected_slaves ?? "?"}${v.infoAfter ? `, master_repl_offset ${v.infoAfter.master_repl_offset ?? "?"}` : ""}; ` +
      `healthy replica offset ${healthy.offset} → ${v.h.offset ?? "?"} (link ${v.h.link ?? "?"}), longest stall ${formatMs(watch.longestStallMs)}; ` +
      `longest PING gap ${formatMs(v.ping.longestGapMs)}`,
  );
  if (watch.error) throw watch.error;

  // ---- verdict ----
  const dropAfterWindowMs = watch.droppedAt !== null ? Math.round(watch.droppedAt - budgetFrom) : null;
  const withinBudget = dropAfterWindowMs !== null && dropAfterWindowMs <= cfg.budgetMs;
  const reasons: string[] = [];
  if (!dropped) {
    reasons.push(
      `the master still held the stuck replica's connection at --give-up ${formatMs(cfg.giveUpMs)}` +
        (watch.windowAt !== null ? ` (its receive window closed ${formatMs(watch.windowAt - stoppedAt)} after it stopped reading` + (watch.maxSendQ !== null ? `; the master's Send-Q to it ${formatBytes(watch.maxSendQ)})` : ")") : "") +
        `: the blocked-feed signature of Kvrocks #3356 — a master without replication-send-timeout-ms (PR #3357) blocks its feed on a replica that stopped reading` +
        (release?.recoveredAfterMs != null
          ? `; once the drill closed its socket the master recovered in ${formatMs(release.recoveredAfterMs)}`
          : `; the master had not recovered ${formatMs(cfg.giveUpMs)} after the drill closed its socket`),
    );
  } else if (!withinBudget) {
    reasons.push(`the master dropped the stuck replica ${formatMs(dropAfterWindowMs!)} after ${watch.windowAt !== null ? "its window closed" : "it stopped reading"}, over the budget of ${formatMs(cfg.budgetMs)}`);
  }
  if (ver.ping.longestGapMs > PING_STALL_MS || pinger.failure) {
    reasons.push(`PING on the master went unanswered for ${formatMs(ver.ping.longestGapMs)}${pinger.failure ? ` (${pinger.failure.message})` : ""} (a stall: over ${formatMs(PING_STALL_MS)})`);
  }
  if (watch.longestStallMs > HEALTHY_STALL_MS) reasons.push(`the healthy replica's offset stood still for ${formatMs(watch.longestStallMs)} while the master's was ahead (over ${formatMs(HEALTHY_STALL_MS)})`);
  else if (ver.h.link !== "up") reasons.push(`the healthy replica is no longer streaming (master_link_status:${ver.h.link ?? "no answer"})`);

  return {
    run: ctx.run,
    scenario: "slow-replica",
    verdict: reasons.length === 0 ? "PASS" : "FAIL",
    reasons,
    phases: phases.list,
    master: { kind: m.kind, host: m.addr.host, port: m.addr.port, pid: m.child?.pid ?? null, sendTimeoutMs: cfg.sendTimeoutMs, mode: m.slots === null ? "standalone" : "cluster", version: m.version },
    writes:
      m.kind === "kvr"
        ? { kind: cfg.writeRate > 0 ? "stream" : "none", rate: cfg.writeRate, keys: null, sent: null, deleted: null, error: null }
        : { kind: w.writer ? "set" : "none", rate: cfg.writeRate, keys: w.writer?.keys ?? null, sent: w.writer?.sent ?? null, deleted: null, error: w.writer?.error ?? null },
    stuck: {
      host: stuck.conn.localAddress,
      port: stuck.marker,
      psyncFrom: stuck.psyncFrom,
      fullSync: stuck.fullSync,
      streamBytes: stuck.streamBytes,
      stoppedAtMs: phases.since(stoppedAt),
      windowClosedAtMs: watch.windowAt !== null ? phases.since(watch.windowAt) : null,
      windowHow: watch.windowHow,
      recvQ: watch.maxRecvQ,
      masterSendQ: watch.maxSendQ,
      droppedAtMs: watch.droppedAt !== null ? phases.since(watch.droppedAt) : null,
      dropAfterStopMs: watch.droppedAt !== null ? Math.round(watch.droppedAt - stoppedAt) : null,
      heldForMs,
      dropAfterWindowMs,
      droppedHow: watch.droppedHow,
      held: !dropped,
      withinBudget,
    },
    ping: ver.ping,
    healthy: { host: healthy.addr.host, port: healthy.addr.port, pid: healthy.child.pid, offsetBefore: healthy.offset, offsetAfter: ver.h.offset, longestStallMs: watch.longestStallMs, link: ver.h.link },
    release,
    infoBefore,
    infoHeld,
    infoAfter: ver.infoAfter,
  };
}

/** Poll the master's INFO replication (at most `ms`) until it lists a replica announced on `port`. */
async function waitListed(mon: Conn, port: number, ms: number): Promise<{ found: boolean; info: Record<string, string> | null }> {
  const until = performance.now() + ms;
  let last: Record<string, string> | null = null;
  for (;;) {
    last = await info(mon, "replication", 5000, "the master under test");
    if (slaveLines(last).some((s) => s.port === port)) return { found: true, info: last };
    if (performance.now() > until) return { found: false, info: last };
    await Bun.sleep(50);
  }
}

/**
 * The watch after stop-reading: every LOOK_MS one look at the socket table, the master's INFO
 * replication and the healthy replica's INFO; records when the window closed and when (and how)
 * the master dropped the stuck replica, and the healthy replica's longest stall.
 */
class Watch {
  windowAt: number | null = null;
  windowHow: "rcv_wnd" | "recv-q" | null = null;
  droppedAt: number | null = null;
  droppedHow: string | null = null;
  maxRecvQ: number | null = null;
  maxSendQ: number | null = null;
  longestStallMs = 0;
  lastInfo: Record<string, string> | null = null;
  /** Set by the release: the stuck connection was closed by the drill (not a drop). */
  released = false;
  recoveredAt: number | null = null;
  error: DrillError | null = null;
  private listed: boolean;
  private recvQSince = 0;
  private lastRecvQ: number | null = null;
  private healthyOffset: number | null;
  private healthyChangedAt = performance.now();
  private masterOffset: number | null = null;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private waiters = new Set<() => void>();

  constructor(
    private readonly stuck: StuckReplica,
    private readonly sock: SocketWatch | null,
    private mon: Conn,
    /** A new watching connection to the master, when the last one failed (a slow INFO ends it). */
    private readonly reopen: () => Promise<Conn>,
    private readonly healthy: Healthy,
    private readonly writer: Writer | null,
  ) {
    this.listed = false;
    this.healthyOffset = healthy.offset;
  }

  start(): void {
    this.healthyChangedAt = performance.now();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** Resolve true as soon as `pred` holds after a look, false after `ms` (or once the watch failed). */
  until(pred: () => boolean, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (pred()) finish(true);
        else if (this.error || this.stopped) finish(false);
      };
      const timer = setTimeout(() => finish(pred()), ms);
      const finish = (v: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(v);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** The master recovered after the release at `since`: the stuck replica gone, the healthy one moving. */
  recoveredSince(since: number): boolean {
    return this.recoveredAt !== null && this.recoveredAt >= since;
  }

  private dropped(how: string, at: number): void {
    if (this.droppedAt !== null || this.released) return;
    this.droppedAt = at;
    this.droppedHow = how;
  }

  private async run(): Promise<void> {
    let releasedHealthyFrom: number | null = null;
    while (!this.stopped) {
      const t = performance.now();
      // our end and (on this host) the master's end of the stuck connection
      if (this.sock) {
        const v = this.sock.sample();
        if (v.recvQ !== null && !this.released) {
          this.maxRecvQ = Math.max(this.maxRecvQ ?? 0, v.recvQ);
          if (v.recvQ !== this.lastRecvQ) {
            this.lastRecvQ = v.recvQ;
            this.recvQSince = t;
          }
          if (this.windowAt === null && this.droppedAt === null) {
            if (v.rcvWnd === 0) {
              this.windowAt = t;
              this.windowHow = "rcv_wnd";
            } else if (v.rcvWnd === null && v.recvQ > 0 && t - this.recvQSince >= RECVQ_STILL_MS) {
              this.windowAt = this.recvQSince;
              this.windowHow = "recv-q";
            }
          }
        }
        if (v.masterSendQ !== null && !this.released) this.maxSendQ = Math.max(this.maxSendQ ?? 0, v.masterSendQ);
        if (v.masterOpen === false) this.dropped("the master closed its end of the connection", t);
      }
      if (this.stuck.conn.isClosed) this.dropped("the connection closed under the drill", t);
      // the master's INFO replication
      if (this.mon.isClosed) {
        const c = await this.reopen().catch(() => null);
        if (c) {
          this.mon.destroy();
          this.mon = c;
        }
      }
      const i = await info(this.mon, "replication", 2000, "the master under test").catch(() => null);
      if (i) {
        this.lastInfo = i;
        this.masterOffset = intField(i.master_repl_offset);
        const listed = slaveLines(i).some((s) => s.port === this.stuck.marker);
        if (listed) this.listed = true;
        else if (this.listed) this.dropped("INFO replication no longer lists it", t);
      }
      // the healthy replica
      const h = await lookHealthy(this.healthy);
      const now = performance.now();
      if (h.offset !== null && h.offset !== this.healthyOffset) {
        this.healthyOffset = h.offset;
        this.healthyChangedAt = now;
      } else if (this.masterOffset !== null && this.healthyOffset !== null && this.masterOffset > this.healthyOffset) {
        this.longestStallMs = Math.max(this.longestStallMs, Math.round(now - this.healthyChangedAt));
      }
      // after the release: the stuck replica gone from INFO (or its end closed) and the healthy one moving
      if (this.released && this.recoveredAt === null) {
        releasedHealthyFrom ??= this.healthyOffset;
        const gone = i ? !slaveLines(i).some((s) => s.port === this.stuck.marker) : false;
        const moving = this.healthyOffset !== releasedHealthyFrom || (this.masterOffset !== null && this.healthyOffset !== null && this.masterOffset <= this.healthyOffset);
        if (gone && moving) this.recoveredAt = now;
      }
      if (this.writer?.error && !this.error) this.error = new DrillError(`the master refused the drill's writes: ${this.writer.error}`);
      for (const w of [...this.waiters]) w();
      const wait = t + LOOK_MS - performance.now();
      if (wait > 0 && !this.stopped) await Bun.sleep(wait);
    }
    for (const w of [...this.waiters]) w();
  }

  /** Close the watching connection (after a reopen it is not the one the run's cleanup knows). */
  close(): void {
    this.mon.destroy();
  }
}

/** The human summary of one run (phases were printed live). */
function printSlowReplica(out: Output, cfg: DrillConfig, r: SlowReplicaResult): void {
  const c = out.c;
  const at = (ms: number | null) => (ms === null ? "?" : `+${(ms / 1000).toFixed(3)}s`);
  const s = r.stuck;
  out.print(`  stopped reading:  ${at(s.stoppedAtMs)}, after ${formatBytes(s.streamBytes)} of the stream (PSYNC ${s.psyncFrom}${s.fullSync ? `, after a full sync` : ""})`);
  out.print(
    `  window closed:    ${
      s.windowClosedAtMs === null
        ? "not seen"
        : `${at(s.windowClosedAtMs)} (Recv-Q ${formatBytes(s.recvQ ?? 0)}${s.masterSendQ !== null ? `; the master's Send-Q up to ${formatBytes(s.masterSendQ)}` : ""})`
    }`,
  );
  if (s.held) out.print(`  dropped:          ${c.red(`no — still held at --give-up ${formatMs(cfg.giveUpMs)} (the #3356 blocked-feed signature)`)}`);
  else
    out.print(
      `  dropped:          ${at(s.droppedAtMs)} — ${formatMs(s.dropAfterWindowMs!)} after ${s.windowClosedAtMs !== null ? "the window closed" : "it stopped reading"} (budget ${formatMs(cfg.budgetMs)}) ${s.withinBudget ? c.green("✓") : c.red("✗")}: ${s.droppedHow}`,
    );
  if (r.release) {
    out.print(
      `  after release:    ${r.release.recoveredAfterMs === null ? c.red(`the master had not recovered within ${formatMs(cfg.giveUpMs)}`) : `the master recovered ${formatMs(r.release.recoveredAfterMs)} after the drill closed its socket`}`,
    );
  }
  out.print(`  longest PING gap: ${formatMs(r.ping.longestGapMs)} (${r.ping.answered}/${r.ping.sent} answered, every 100 ms)`);
  out.print(
    `  healthy replica:  offset ${r.healthy.offsetBefore} → ${r.healthy.offsetAfter ?? "?"}${r.healthy.offsetAfter !== null ? ` (+${r.healthy.offsetAfter - r.healthy.offsetBefore})` : ""}, longest stall ${formatMs(r.healthy.longestStallMs)}`,
  );
  out.print(`  INFO before:      ${infoLine(r.infoBefore)}`);
  if (r.infoHeld) out.print(`  INFO at give-up:  ${infoLine(r.infoHeld)}`);
  out.print(`  INFO after:       ${infoLine(r.infoAfter)}`);
  if (r.writes.kind === "set") {
    out.print(`  writes:           ${r.writes.sent ?? 0} SETs on ${r.writes.keys?.length ?? 0} keys; ${r.writes.deleted ?? 0} deleted${r.writes.error ? c.yellow(` (${r.writes.error})`) : ""}`);
  }
}

/** connected_slaves and the slaveN lines of an INFO replication, on one line. */
function infoLine(i: Record<string, string> | null): string {
  if (!i) return "no INFO";
  const slaves = Object.keys(i)
    .filter((k) => /^slave\d+$/.test(k))
    .map((k) => `${k}:${i[k]}`);
  return [`connected_slaves:${i.connected_slaves ?? "?"}`, ...slaves, `master_repl_offset:${i.master_repl_offset ?? "?"}`].join("; ");
}
