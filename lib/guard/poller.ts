/**
 * Watching nodes: `INFO server` (process_id) on every new connection, then `INFO replication`
 * at every tick of one shared clock (--interval), each request under a reply deadline. A node
 * that misses the deadline is unresponsive from then on, but its request stays pending on the
 * same connection (a node frozen behind a hung SETNODES gets no pile of new connections) until
 * it answers — recovered — or until HUNG_RECONNECT_MS, when the connection is replaced. What
 * the node last said (master, link, sync, pid) is remembered through all of it: that is when it
 * matters.
 *
 * All nodes are asked at the same tick, so their replies arrive together: one wake-up of the
 * process per tick rather than one per node (the guard's CPU is mostly this).
 */
import { connect, type Conn } from "../net/index.ts";
import { call, replyText } from "../resp/index.ts";
import { formatMs } from "../ui/units.ts";
import { addrText, intField, parseInfo, type NodeAddr } from "../client/index.ts";

/** What the node's INFO replication said. */
export interface Replication {
  role: string;
  /** master_host:master_port of a replica; null for a master. */
  master: NodeAddr | null;
  /** master_link_status:up (streaming). */
  linkUp: boolean;
  /** master_sync_in_progress:1 (fetching the checkpoint). */
  syncInProgress: boolean;
}

/** A waiting request is abandoned, and the connection replaced, after this long. */
export const HUNG_RECONNECT_MS = 30_000;

export type WatchChange = "state" | "pid" | "unresponsive" | "recovered" | "error";

export interface WatchOptions {
  timeoutMs: number;
  auth?: string;
  signal: AbortSignal;
  /** Called after every change of what is known about the node. */
  onChange: (w: NodeWatch, what: WatchChange) => void;
}

/** Parse INFO replication into the fields the guard decides on. */
export function parseReplication(text: string): Replication {
  const i = parseInfo(text);
  const port = intField(i.master_port);
  const master = i.role === "slave" && i.master_host && port !== null && port > 0 ? { host: i.master_host, port } : null;
  return { role: i.role ?? "unknown", master, linkUp: i.master_link_status === "up", syncInProgress: i.master_sync_in_progress === "1" };
}

/** One watched node and what is known about it. */
export class NodeWatch {
  readonly label: string;
  /** The last INFO replication the node answered; null before the first. */
  last: Replication | null = null;
  /** When it was answered (performance.now()). */
  lastSeenAt: number | null = null;
  /** process_id from INFO server; null until known. */
  pid: number | null = null;
  responsive = true;
  /** Since when it has not answered (performance.now()); null while it answers. */
  unresponsiveSince: number | null = null;
  /** Why it is unresponsive, or the error it answered. */
  reason: string | null = null;
  private conn: Conn | null = null;
  /** The request in flight: what, and since when; null when idle. */
  private pending: { what: string; since: number } | null = null;

  constructor(
    readonly addr: NodeAddr,
    private readonly opts: WatchOptions,
  ) {
    this.label = addrText(addr);
  }

  /** One tick of the clock: ask (or open a connection first), or check the deadline of what is in flight. */
  tick(): void {
    if (this.opts.signal.aborted) return;
    const p = this.pending;
    if (p) {
      const waited = performance.now() - p.since;
      if (waited >= HUNG_RECONNECT_MS) this.conn?.destroy();
      else if (waited >= this.opts.timeoutMs) {
        this.unresponsive(p.what === "connect" ? `could not connect within ${formatMs(this.opts.timeoutMs)}` : `no reply to ${p.what} within ${formatMs(this.opts.timeoutMs)}`);
      }
      return;
    }
    this.pending = { what: this.conn ? "INFO replication" : "connect", since: performance.now() };
    this.poll().then(
      () => (this.pending = null),
      (e) => {
        this.pending = null;
        this.conn?.destroy();
        this.conn = null;
        if (!this.opts.signal.aborted) this.unresponsive((e as Error).message);
      },
    );
  }

  /** Close the connection (the guard stops). */
  close(): void {
    this.conn?.destroy();
    this.conn = null;
  }

  private async poll(): Promise<void> {
    if (!this.conn) await this.open();
    const text = await this.ask(["INFO", "replication"]);
    if (text !== null) this.seen(parseReplication(text));
  }

  private async open(): Promise<void> {
    this.conn = await connect(this.addr.host, this.addr.port, { connectMs: this.opts.timeoutMs, readMs: 0, signal: this.opts.signal });
    if (this.opts.auth) await this.ask(["AUTH", this.opts.auth]);
    const server = await this.ask(["INFO", "server"]);
    if (server === null) return;
    const n = intField(parseInfo(server).process_id);
    const pid = n !== null && n > 0 ? n : null;
    if (pid !== this.pid) {
      this.pid = pid;
      this.opts.onChange(this, "pid");
    }
  }

  /** One command: its reply as text, or null when the node answered an error (recorded as `reason`). */
  private async ask(args: string[]): Promise<string | null> {
    const what = args[0] === "AUTH" ? "AUTH" : args.join(" ");
    // The deadline runs from the tick that started the poll (connect, AUTH and INFO server included).
    if (this.pending) this.pending.what = what;
    // No read deadline on the connection: the tick measures the reply deadline.
    const reply = await call(this.conn!, args);
    this.answered();
    if (Buffer.isBuffer(reply)) {
      if (this.reason !== null) {
        this.reason = null;
        this.opts.onChange(this, "error");
      }
      return reply.toString("utf8");
    }
    const err = `answered ${what} with ${replyText(reply)}`;
    if (err !== this.reason) {
      this.reason = err;
      this.opts.onChange(this, "error");
    }
    return null;
  }

  private seen(r: Replication): void {
    const before = this.last;
    this.last = r;
    this.lastSeenAt = performance.now();
    const same =
      before !== null &&
      before.role === r.role &&
      before.linkUp === r.linkUp &&
      before.syncInProgress === r.syncInProgress &&
      before.master?.host === r.master?.host &&
      before.master?.port === r.master?.port;
    if (!same) this.opts.onChange(this, "state");
  }

  private answered(): void {
    if (this.responsive) return;
    this.responsive = true;
    this.opts.onChange(this, "recovered");
    this.unresponsiveSince = null;
    this.reason = null;
  }

  private unresponsive(reason: string): void {
    if (!this.responsive) return;
    this.responsive = false;
    this.unresponsiveSince = performance.now();
    this.reason = reason;
    this.opts.onChange(this, "unresponsive");
  }
}
