/**
 * One replication run against one master, under ONE AbortController. `stop()` aborts every
 * pending connect, read, write and backoff sleep at once and resolves when the run has ended
 * (sockets closed, `.tmp` gone).
 *
 * The state machine (states as Status names them), as a Kvrocks replica runs it:
 *   connecting → [send_auth] → check_db_name → replconf → send_psync
 *     send_psync +OK → connected: follow the stream (batches appended to kvr-stream.log) until
 *       it fails (drop, deadline, sequence gap) → restart later from the last applied sequence + 1
 *     send_psync refused, no checkpoint in the target, or --once (no PSYNC: one full sync)
 *       → fetch_meta → fetch_files → synced
 *       → restore: read the checkpoint's sequence and go back to connecting (a fresh control
 *         connection) for PSYNC <seq + 1>; with --once, or a checkpoint whose sequence cannot be
 *         read, the run ends at synced.
 * The last applied sequence is always derived from the target directory (the checkpoint plus
 * kvr-stream.log), so it survives reconnects and restarts of the replica alike.
 * Restart later = back to connecting after a backoff; a stream that made progress resets it.
 * Give up = state error and the run ends: after --max-retries retries, or at once when the
 * failure cannot fix itself (AUTH refused, NOAUTH, another db name: names.ts UNRECOVERABLE).
 */
import { bulkConnect, connect, type BulkConn, type Conn } from "../net/index.ts";
import type { Output } from "../ui/output.ts";
import { checkpointNextSeq } from "./files.ts";
import { fullSync, SyncTally, type SyncSummary } from "./fullsync.ts";
import { located, retryDelayMs, SyncError, UNRECOVERABLE } from "./names.ts";
import { sleep } from "../ui/time.ts";
import type { HostPort, Status } from "./status.ts";
import { checkDbName, followStream, replconf, sendAuth, sendPsync } from "./steps.ts";
import { recoverStreamLog, StreamLogWriter, type FsyncPolicy } from "./streamlog.ts";
import { startLagProbe } from "./lagprobe.ts";

export interface RunConfig {
  dir: string;
  dbName: string;
  masterauth?: string;
  connectMs: number;
  readMs: number;
  streamMs: number;
  maxFileSize: number;
  workers: number | null;
  retryDelayMs: number;
  /**
   * Retries after a failed attempt before giving up: n allows n + 1 attempts (null = never give
   * up). Failures a retry cannot fix (UNRECOVERABLE) end the run at once whatever it is.
   */
  maxRetries: number | null;
  /** Our admin port, announced with replconf listening-port. */
  listeningPort: number;
  /** Follow the stream after a full sync (false with --once). Default true. */
  follow?: boolean;
  /** fsync policy of kvr-stream.log (default 1s). */
  streamFsync?: FsyncPolicy;
  /** Poll the master's INFO master_repl_offset every second and report the lag. */
  lagProbe?: boolean;
  /**
   * Receive the files of a full sync on lib/net's bulk thread where it can run (default true);
   * false: through Bun's sockets on the main thread (the portable path).
   */
  bulk?: boolean;
}

export type RunOutcome = { kind: "synced"; summary: SyncSummary } | { kind: "failed"; error: SyncError } | { kind: "stopped" };

/** Start replicating from `master`; the returned run's `done` settles when it ends. */
export class ReplicationRun {
  private readonly ac = new AbortController();
  private readonly conns = new Set<Conn | BulkConn>();
  readonly done: Promise<RunOutcome>;
  private ended = false;
  /** Set when the current attempt's stream delivered something (its failure then resets the backoff). */
  private progressed = false;
  /** This run's progress towards its next completed full sync, across attempts. */
  private tally = new SyncTally();

  constructor(
    readonly master: HostPort,
    private readonly cfg: RunConfig,
    private readonly status: Status,
    private readonly out: Output,
    /** Told of each completed full sync (the node announces it). */
    private readonly onSynced: (s: SyncSummary) => void = () => {},
  ) {
    status.masterReplOffset = null;
    // The probe ends with the run, whether stopped or ended on its own (--once, gave up).
    const probeAc = new AbortController();
    this.ac.signal.addEventListener("abort", () => probeAc.abort(), { once: true });
    const probe = cfg.lagProbe ? startLagProbe(master, cfg, status, out, probeAc.signal) : null;
    this.done = this.loop().finally(async () => {
      probeAc.abort();
      await probe;
      this.ended = true;
    });
  }

  /** Open connections to the master right now. */
  get openConnections(): number {
    return this.conns.size;
  }

  /** Abort everything and wait for the run's end; returns the time it took in ms. */
  async stop(reason: string): Promise<number> {
    const t0 = performance.now();
    if (this.ended) return 0;
    this.ac.abort(new Error(reason));
    await this.done;
    const ms = performance.now() - t0;
    this.out.event("stopped", { reason, ms: Math.round(ms * 100) / 100 }, `replication from ${this.master.host}:${this.master.port} stopped (${reason}) in ${ms.toFixed(1)} ms`);
    return ms;
  }

  private async loop(): Promise<RunOutcome> {
    const { cfg, status: st, out } = this;
    const signal = this.ac.signal;
    let failures = 0;
    while (!signal.aborted) {
      st.attempt = failures + 1;
      const attempt = new AbortController();
      const onStop = () => attempt.abort();
      signal.addEventListener("abort", onStop, { once: true });
      try {
        this.tally.begin();
        const summary = await this.attempt(attempt);
        this.tally = new SyncTally();
        this.onSynced(summary);
        if (cfg.follow === false) return { kind: "synced", summary };
        // Restore: the new checkpoint's sequence is where PSYNC continues, on a fresh connection.
        const next = await checkpointNextSeq(cfg.dir);
        if (next === null) {
          out.warn(`cannot read the sequence of the checkpoint in ${cfg.dir} (CURRENT/MANIFEST): not following the master's stream`);
          return { kind: "synced", summary };
        }
        out.event("restore", { seq: next - 1 }, `checkpoint restored at sequence ${next - 1}: continuing with PSYNC ${next}`);
        failures = 0;
      } catch (e) {
        if (signal.aborted) break;
        if (this.progressed) {
          failures = 0;
          this.tally = new SyncTally();
        }
        this.progressed = false;
        failures++;
        const err = e instanceof SyncError ? e : located(e, "replication");
        st.lastError = err.message;
        out.warn(`attempt ${failures} failed: ${err.code}: ${err.message}`);
        if (UNRECOVERABLE.has(err.code) || (cfg.maxRetries !== null && failures > cfg.maxRetries)) {
          if (UNRECOVERABLE.has(err.code)) out.warn(`${err.code}: a retry cannot fix this; the run ends`);
          st.setState("error");
          return { kind: "failed", error: err };
        }
        const delayMs = retryDelayMs(cfg.retryDelayMs, failures);
        out.event("retry", { reason: err.message, code: err.code, delayMs, attempt: failures + 1 }, `retrying in ${delayMs} ms (attempt ${failures + 1})`);
        await this.closeAll(attempt);
        await sleep(delayMs, signal);
      } finally {
        signal.removeEventListener("abort", onStop);
        await this.closeAll(attempt);
      }
    }
    st.setState("stopped");
    return { kind: "stopped" };
  }

  /**
   * The next sequence to PSYNC from: the target's checkpoint sequence advanced by the batches
   * of kvr-stream.log that continue it (a torn or stray tail is truncated). null = no checkpoint.
   */
  private async resumeSeq(signal: AbortSignal): Promise<number | null> {
    const base = await checkpointNextSeq(this.cfg.dir);
    if (base === null) return null;
    const r = await recoverStreamLog(this.cfg.dir, base - 1, { signal }).catch((e) => {
      throw located(e, `kvr-stream.log in ${this.cfg.dir}`);
    });
    if (r.truncated > 0) this.out.warn(`kvr-stream.log: ${r.reason}; cut ${r.truncated} bytes, resuming after sequence ${r.lastSeq}`);
    return r.lastSeq + 1;
  }

  /**
   * Follow the stream from `nextSeq`: batches are checked (followStream), appended to
   * kvr-stream.log, then counted in slave_repl_offset. Returns only by throwing.
   */
  private async follow(ctl: Conn, nextSeq: number): Promise<never> {
    const st = this.status;
    const log = await StreamLogWriter.open(this.cfg.dir, this.cfg.streamFsync ?? "1s", nextSeq);
    let pending: Buffer[] = [];
    let pendingNext = nextSeq;
    const flush = async () => {
      log.check();
      if (pending.length === 0) return;
      const batches = pending;
      pending = [];
      await log.append(batches);
      st.replOffset = pendingNext - 1;
    };
    try {
      return await followStream(
        ctl,
        nextSeq,
        async (next, batch) => {
          this.progressed = true;
          st.touch();
          pending.push(batch);
          pendingNext = next;
          // Several batches often arrive in one read: written with one call when the read
          // would wait for the master (onIdle), at a heartbeat, or 512 at a time.
          if (pending.length >= 512) await flush();
        },
        async () => {
          this.progressed = true;
          st.touch();
          await flush();
        },
        flush,
      );
    } finally {
      await flush().finally(() => log.close());
    }
  }

  /** Abort the attempt's connections and wait (briefly) until their sockets are closed. */
  private async closeAll(attempt: AbortController): Promise<void> {
    attempt.abort();
    const live = [...this.conns];
    for (const c of live) c.destroy();
    await Promise.race([Promise.all(live.map((c) => c.closed)), Bun.sleep(200)]);
  }

  /**
   * One attempt: connect, handshake, PSYNC when the target holds a checkpoint and the run follows
   * the stream, else full sync.
   */
  private async attempt(attempt: AbortController): Promise<SyncSummary> {
    const { cfg, status: st, out, master } = this;
    const signal = attempt.signal;
    const opts = { connectMs: cfg.connectMs, readMs: cfg.readMs, signal };
    const plain = () => connect(master.host, master.port, opts);
    /** Connect with `how`, count the connection while it is open, AUTH unless `auth` is false. */
    const open = async <C extends Conn | BulkConn>(label: string, how: () => Promise<C>, auth = true): Promise<C> => {
      let conn: C;
      try {
        conn = await how();
      } catch (e) {
        throw located(e, `${label} to ${master.host}:${master.port}`);
      }
      this.conns.add(conn);
      st.openConns = this.conns.size;
      conn.closed.then(() => {
        this.conns.delete(conn);
        st.openConns = this.conns.size;
      });
      if (auth && cfg.masterauth) {
        try {
          await sendAuth(conn, cfg.masterauth);
        } catch (e) {
          conn.destroy();
          throw located(e, label);
        }
      }
      return conn;
    };

    st.setState("connecting");
    out.event("connect", { host: master.host, port: master.port, attempt: st.attempt }, `connecting to ${master.host}:${master.port} (attempt ${st.attempt})`);
    const ctl = await open("control connection", plain, false);
    let step = "";
    try {
      if (cfg.masterauth) {
        st.setState((step = "send_auth"));
        await sendAuth(ctl, cfg.masterauth);
      }
      st.setState((step = "check_db_name"));
      await checkDbName(ctl, cfg.dbName);
      st.setState((step = "replconf"));
      const rc = await replconf(ctl, cfg.listeningPort);
      if (!rc.ok) out.debug(`replconf answered ${rc.reply}; going on (older masters lack replconf)`);
      // --once (follow disabled) means one full sync: PSYNC's +OK would follow the stream
      // forever. Files already present are skipped, so a full sync into a complete target is cheap.
      const nextSeq = cfg.follow === false ? null : await this.resumeSeq(signal);
      if (nextSeq !== null) {
        st.replOffset = nextSeq - 1;
        st.setState((step = "send_psync"));
        const p = await sendPsync(ctl, nextSeq, null);
        if (p.kind === "stream") {
          st.setState((step = "connected"));
          out.event("stream", { from: nextSeq }, `PSYNC ${nextSeq} accepted: following the master's stream`);
          ctl.readMs = cfg.streamMs;
          await this.follow(ctl, nextSeq);
        }
        const reply = p.kind === "fullsync" ? p.reply : "?";
        out.event("psync-refused", { seq: nextSeq, reply }, `PSYNC ${nextSeq} refused (${reply}): full sync`);
      }
    } catch (e) {
      throw located(e, `control connection (${step})`);
    } finally {
      ctl.destroy();
    }
    const summary = await fullSync({
      dir: cfg.dir,
      maxFileSize: cfg.maxFileSize,
      workers: cfg.workers,
      status: st,
      out,
      signal,
      abortAttempt: () => attempt.abort(),
      open: (label) => open(label, plain),
      openBulk: cfg.bulk === false ? null : (label) => open(label, () => bulkConnect(master.host, master.port, opts)),
      tally: this.tally,
    });
    // The restored checkpoint's sequence is what a following PSYNC continues from.
    const next = await checkpointNextSeq(cfg.dir);
    if (next !== null) st.replOffset = next - 1;
    return summary;
  }
}

