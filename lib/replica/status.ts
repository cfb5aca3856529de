/**
 * What the replica is doing, as INFO, ROLE and the --json events show it. One Status per node;
 * the replication run writes it, the admin port reads it.
 */
import type { Output } from "../ui/output.ts";
import { formatBytes, formatMs } from "../ui/units.ts";

/** Replication states, named like Kvrocks' (INFO kvr_state and --json `state` events). */
export type ReplState =
  | "idle"
  | "connecting"
  | "send_auth"
  | "check_db_name"
  | "replconf"
  | "send_psync"
  | "fetch_meta"
  | "fetch_files"
  | "synced"
  | "connected"
  | "stopped"
  | "error";

export interface HostPort {
  host: string;
  port: number;
}

/** A transfer in flight whose bytes are counted elsewhere (the bulk thread's counters): see Status.track. */
export interface Meter {
  /** Bytes received so far. */
  readonly bytes: number;
  /** When the last byte was received (epoch ms). */
  readonly lastIoMs: number;
}

/** Live counters of the node's replication. */
export class Status {
  state: ReplState = "idle";
  master: HostPort | null = null;
  filesDone = 0;
  filesTotal = 0;
  /** bytesDone without the meters being tracked. */
  private doneBase = 0;
  /** lastIoMs without the meters being tracked. */
  private ioBase = Date.now();
  private readonly meters = new Set<Meter>();
  /**
   * Size of this full sync's checkpoint as known so far: files already present plus every size
   * the master announced for the files fetched. Each worker learns a file's size only when it
   * reaches that file, so this grows during the fetch and equals the checkpoint's size (the sum
   * of the master's announced sizes) once every file has been announced.
   */
  bytesTotal = 0;
  /** Bytes of the files already present when this full sync started (skipped). */
  bytesSkipped = 0;
  currentFile = "";
  attempt = 0;
  lastError = "";
  /** Latest applied sequence (0 until a checkpoint's sequence is known). */
  replOffset = 0;
  /** Connections to the master currently open (control, meta and fetch). */
  openConns = 0;
  syncStartMs = 0;
  /** The master's master_repl_offset from the lag probe (null: not probing / not known yet). */
  masterReplOffset: number | null = null;

  constructor(private readonly out: Output) {}

  /**
   * Bytes of this full sync in place: files already present (skipped) plus bytes received,
   * tracked transfers included. Setting it (`+=` too) leaves the tracked transfers' share alone.
   */
  get bytesDone(): number {
    let n = this.doneBase;
    for (const m of this.meters) n += m.bytes;
    return n;
  }

  set bytesDone(n: number) {
    this.doneBase = n - (this.bytesDone - this.doneBase);
  }

  /** When the master last sent something (epoch ms), tracked transfers included. */
  get lastIoMs(): number {
    let t = this.ioBase;
    for (const m of this.meters) if (m.lastIoMs > t) t = m.lastIoMs;
    return t;
  }

  /**
   * Count `m` in bytesDone and lastIoMs while it runs; the returned function stops counting it
   * (add what it received to bytesDone yourself then).
   */
  track(m: Meter): () => void {
    this.meters.add(m);
    return () => {
      if (!this.meters.delete(m)) return;
      if (m.lastIoMs > this.ioBase) this.ioBase = m.lastIoMs;
    };
  }

  /** Enter a state and announce it. */
  setState(s: ReplState): void {
    if (this.state === s) return;
    this.state = s;
    this.out.event("state", { state: s }, `state ${s}`);
  }

  get syncInProgress(): boolean {
    return this.state === "fetch_meta" || this.state === "fetch_files";
  }

  /** Reset the per-full-sync counters. */
  beginSync(): void {
    this.filesDone = 0;
    this.filesTotal = 0;
    this.bytesDone = 0;
    this.bytesTotal = 0;
    this.bytesSkipped = 0;
    this.currentFile = "";
    this.syncStartMs = Date.now();
  }

  touch(): void {
    this.ioBase = Date.now();
  }
}

/** A throttled progress line on a TTY: files, bytes, rate, ETA, current file. */
export function progressLine(s: Status): string {
  const secs = Math.max(0.001, (Date.now() - s.syncStartMs) / 1000);
  // Rate and ETA from what this sync received, not from the files it skipped.
  const rate = (s.bytesDone - s.bytesSkipped) / secs;
  const left = s.filesTotal - s.filesDone;
  const avg = s.filesDone > 0 && s.bytesDone > 0 ? s.bytesDone / Math.max(1, s.filesDone) : 0;
  const eta = rate > 0 && avg > 0 ? formatMs(((left * avg) / rate) * 1000) : "?";
  return `files ${s.filesDone}/${s.filesTotal}  ${formatBytes(s.bytesDone)}  ${formatBytes(rate)}/s  ETA ${eta}  ${s.currentFile}`;
}
