/**
 * One replication run against one master: attempts of the handshake and full sync, retried
 * with backoff, under ONE AbortController. `stop()` aborts every pending connect, read, write
 * and backoff sleep at once and resolves when the run has ended (sockets closed, `.tmp` gone).
 */
import { connect, type Conn } from "../net/index.ts";
import type { Output } from "../ui/output.ts";
import { checkpointNextSeq } from "./files.ts";
import { fullSync, type SyncSummary } from "./fullsync.ts";
import { backoffMs, located, SyncError } from "./names.ts";
import type { HostPort, Status } from "./status.ts";
import { checkDbName, followStream, replconf, sendAuth, sendPsync } from "./steps.ts";

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
  /** Failed attempts tolerated before giving up (null = never give up). */
  maxRetries: number | null;
  /** Our admin port, announced with replconf listening-port. */
  listeningPort: number;
}

export type RunOutcome = { kind: "synced"; summary: SyncSummary } | { kind: "failed"; error: SyncError } | { kind: "stopped" };

/** Start replicating from `master`; the returned run's `done` settles when it ends. */
export class ReplicationRun {
  private readonly ac = new AbortController();
  private readonly conns = new Set<Conn>();
  readonly done: Promise<RunOutcome>;
  private ended = false;

  constructor(
    readonly master: HostPort,
    private readonly cfg: RunConfig,
    private readonly status: Status,
    private readonly out: Output,
  ) {
    this.done = this.loop().finally(() => {
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
        const summary = await this.attempt(attempt);
        return { kind: "synced", summary };
      } catch (e) {
        if (signal.aborted) break;
        failures++;
        const err = e instanceof SyncError ? e : located(e, "replication");
        st.lastError = err.message;
        out.warn(`attempt ${failures} failed: ${err.code}: ${err.message}`);
        if (cfg.maxRetries !== null && failures > cfg.maxRetries) {
          st.setState("error");
          return { kind: "failed", error: err };
        }
        const delayMs = backoffMs(cfg.retryDelayMs, failures);
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

  /** Abort the attempt's connections and wait (briefly) until their sockets are closed. */
  private async closeAll(attempt: AbortController): Promise<void> {
    attempt.abort();
    const live = [...this.conns];
    for (const c of live) c.destroy();
    await Promise.race([Promise.all(live.map((c) => c.closed)), Bun.sleep(200)]);
  }

  /** One attempt: connect, handshake, PSYNC when the target holds a checkpoint, else full sync. */
  private async attempt(attempt: AbortController): Promise<SyncSummary> {
    const { cfg, status: st, out, master } = this;
    const signal = attempt.signal;
    const open = async (label: string, auth = true): Promise<Conn> => {
      let conn: Conn;
      try {
        conn = await connect(master.host, master.port, { connectMs: cfg.connectMs, readMs: cfg.readMs, signal });
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
    const ctl = await open("control connection", false);
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
      const nextSeq = await checkpointNextSeq(cfg.dir);
      if (nextSeq !== null) {
        st.replOffset = nextSeq - 1;
        st.setState((step = "send_psync"));
        const p = await sendPsync(ctl, nextSeq, null);
        if (p.kind === "stream") {
          st.setState((step = "connected"));
          ctl.readMs = cfg.streamMs;
          await followStream(
            ctl,
            nextSeq,
            (next) => {
              st.replOffset = next - 1;
              st.touch();
            },
            () => st.touch(),
          );
        }
        out.info(`PSYNC ${nextSeq} refused (${p.kind === "fullsync" ? p.reply : "?"}): full sync`);
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
      open,
    });
    // The restored checkpoint's sequence is what a following PSYNC continues from.
    const next = await checkpointNextSeq(cfg.dir);
    if (next !== null) st.replOffset = next - 1;
    return summary;
  }
}

/** Sleep that an abort ends at once. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
