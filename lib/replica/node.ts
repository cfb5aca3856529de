/**
 * The replica node: its cluster state, its current master and replication run. Role changes
 * (SETNODES, SLAVEOF, shutdown) run one at a time; each stops the current run first — at once,
 * by abort — and only then starts the next.
 */
import { initialClusterState, type ClusterState } from "../cluster/index.ts";
import type { Output } from "../ui/output.ts";
import { formatBytes, formatMs } from "../ui/units.ts";
import type { SyncSummary } from "./fullsync.ts";
import { ReplicationRun, type RunConfig, type RunOutcome } from "./replication.ts";
import type { HostPort, Status } from "./status.ts";

export class ReplicaNode {
  cluster: ClusterState = initialClusterState();
  lastSummary: SyncSummary | null = null;
  private run: ReplicationRun | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private outcomeListeners = new Set<(o: RunOutcome) => void>();

  constructor(
    readonly cfg: RunConfig,
    readonly status: Status,
    private readonly out: Output,
  ) {}

  /** The master replicated from, or null (this node is a master). */
  get master(): HostPort | null {
    return this.status.master;
  }

  /** Run `fn` after every role change queued before it (SETNODES runs exclusively). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => {});
    return p;
  }

  /** Be told when a run ends on its own (synced, or failed after --max-retries). */
  onOutcome(fn: (o: RunOutcome) => void): () => void {
    this.outcomeListeners.add(fn);
    return () => this.outcomeListeners.delete(fn);
  }

  /**
   * Stop the current run (awaited: its sockets are closed and its `.tmp` files gone), then
   * replicate from `master`, or from nobody when null. Returns the stop's duration in ms.
   * Call inside exclusive().
   */
  async replicateFrom(master: HostPort | null, reason: string): Promise<number> {
    const stopMs = await this.stopRun(reason);
    this.status.master = master;
    this.status.attempt = 0;
    if (!master) {
      this.status.setState("idle");
      return stopMs;
    }
    this.out.info(`replicating from ${master.host}:${master.port} (${reason})`);
    const run = new ReplicationRun(master, this.cfg, this.status, this.out, (s) => {
      if (this.run === run) this.synced(s);
    });
    this.run = run;
    run.done.then((o) => {
      if (this.run !== run) return;
      if (o.kind !== "stopped") for (const fn of this.outcomeListeners) fn(o);
    });
    return stopMs;
  }

  /** Stop replicating (shutdown); resolves once the run has ended. */
  async stopRun(reason: string): Promise<number> {
    const run = this.run;
    this.run = null;
    if (!run) return 0;
    return run.stop(reason);
  }

  private synced(s: SyncSummary): void {
    this.lastSummary = s;
    this.status.setState("synced");
    const rate = s.ms > 0 ? (s.bytes / s.ms) * 1000 : 0;
    this.out.event(
      "done",
      { files: s.files, skipped: s.skipped, fetched: s.fetched, bytes: s.bytes, ms: s.ms, rate: Math.round(rate), attempts: s.attempts },
      `full sync done: ${s.files} files (${s.skipped} skipped, ${s.fetched} fetched), ${formatBytes(s.bytes)} in ${formatMs(s.ms)} (${formatBytes(rate)}/s)` +
        (s.attempts > 1 ? ` over ${s.attempts} attempts` : ""),
    );
  }
}
