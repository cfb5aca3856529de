/**
 * A connection's link: the pipeline of fired fault effects between the master's protocol writer
 * and the socket, plus the counters triggers look at (file bytes sent, files sent, commands seen).
 */
import { NetError, type Conn } from "../../net/index.ts";
import type { Effect, LinkHandle } from "./types.ts";

/** The controller side a link reports to (see controller.ts). */
export interface LinkOwner {
  /** Fire what is due; the promise (if any) settles once fired server faults are in place. */
  evaluate(link: Link): Promise<unknown> | undefined;
  /** The next file-byte offset (> link.fileBytes) at which a fault may fire, or Infinity. */
  nextCut(link: Link): number;
}

export class Link implements LinkHandle {
  /** File bytes sent on this connection (the after-bytes counter and the logged offset). */
  fileBytes = 0;
  /** Files completely sent on this connection. */
  files = 0;
  /** Commands received (lower case): the on= trigger. */
  readonly seen = new Set<string>();
  readonly startedAt = performance.now();
  /** Fault ids that fired here, and the effects they installed, in firing order. */
  readonly fired = new Set<number>();
  effects: Array<{ faultId: number; effect: Effect }> = [];
  readonly timers = new Map<number, ReturnType<typeof setTimeout>>();
  dead = false;
  /** A connection that sent KVR FAULT commands: faults never fire on it. */
  control = false;
  /**
   * Set at the first command other than AUTH: untriggered faults fire on a connection only from
   * then on, so a new connection whose first command is KVR (a control connection) is never held.
   */
  started = false;
  private wakers: Array<() => void> = [];
  /** Writes held in the fault pipeline: each is rejected when the socket closes. */
  private readonly holders = new Set<(e: NetError) => void>();
  /** Set once the socket closed (by the peer or locally). */
  private gone: NetError | null = null;

  constructor(
    readonly id: number,
    readonly conn: Conn,
    private readonly owner: LinkOwner,
  ) {
    // One reaction per connection (not one per write) ends every wait a fault holds.
    void conn.closed.then(() => {
      this.gone = new NetError("CLOSED", `connection ${id} with ${conn.peer} closed while a fault held it`, {
        peer: conn.peer,
        bytesRead: conn.bytesRead,
      });
      const hs = [...this.holders];
      this.holders.clear();
      for (const h of hs) h(this.gone);
      this.wake();
    });
  }

  kill(reset: boolean): void {
    if (this.dead) return;
    this.dead = true;
    if (reset) this.conn.destroy(true);
    else {
      this.conn.end();
      setTimeout(() => this.conn.destroy(), 2000).unref?.();
    }
    this.wake();
  }

  wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  /** True while a fired fault (stall) forbids reading commands. */
  readsHeld(): boolean {
    return this.effects.some((e) => e.effect.holdsReads?.() === true);
  }

  /** Wait until no fault holds reads or the link died; rejects (CLOSED) if the socket closes meanwhile. */
  async readable(): Promise<void> {
    while (!this.dead && this.readsHeld()) {
      if (this.gone) throw this.gone;
      await new Promise<void>((r) => this.wakers.push(r));
    }
  }

  /**
   * A command arrived: record it for on= triggers (waiting until a server fault it fires is in
   * place, so the reply cannot race it), then return an injected error reply or null.
   */
  async command(name: string): Promise<string | null> {
    if (!this.started && name !== "auth") {
      this.started = true;
      if (name === "kvr") this.control = true;
    }
    this.seen.add(name);
    await this.owner.evaluate(this);
    return this.errorFor(name);
  }

  /** The error reply an active error fault gives to `name`, or null. */
  errorFor(name: string): string | null {
    for (const { effect } of this.effects) {
      const m = effect.onCommand?.(name);
      if (m != null) return m;
    }
    return null;
  }

  /** A file was completely sent (after-files trigger). */
  fileDone(): void {
    this.files++;
    this.owner.evaluate(this);
  }

  /** Write protocol bytes (replies, size lines) through the fault pipeline. */
  write(data: Buffer | string): Promise<void> {
    return this.send(typeof data === "string" ? Buffer.from(data, "latin1") : data);
  }

  /**
   * Write file bytes: counted for after-bytes triggers, split exactly at a trigger's offset so a
   * fault fires after precisely that many bytes.
   */
  async writeFile(data: Buffer, onSent?: (n: number) => void): Promise<void> {
    let off = 0;
    while (off < data.length) {
      this.owner.evaluate(this);
      if (this.dead) throw this.deadError();
      const cut = this.owner.nextCut(this);
      const n = Math.min(data.length - off, cut - this.fileBytes);
      await this.send(data.subarray(off, off + n));
      this.fileBytes += n;
      off += n;
      onSent?.(n);
    }
    this.owner.evaluate(this);
  }

  private deadError(): NetError {
    return new NetError("CLOSED", `connection ${this.id} closed by an injected fault`, { peer: this.conn.peer });
  }

  /**
   * Pass `data` through the fired effects to the socket. An effect may hold it (stall) for as
   * long as the fault is in force, so the wait is raced against the socket's close: when the
   * peer gives up, the write rejects with CLOSED and the caller's cleanup runs (files closed,
   * counters restored, link detached).
   */
  private send(data: Buffer): Promise<void> {
    if (this.dead) return Promise.reject(this.deadError());
    const chain = this.effects.map((e) => e.effect).filter((e) => e.pipe);
    // Without effects the socket write itself settles on close.
    if (chain.length === 0) return this.conn.write(data);
    if (this.gone) return Promise.reject(this.gone);
    const run = (i: number, d: Buffer): Promise<void> => {
      if (this.dead) return Promise.reject(this.deadError());
      if (i < chain.length) return chain[i].pipe!(d, (x) => run(i + 1, x));
      return this.conn.write(d);
    };
    return new Promise<void>((resolve, reject) => {
      this.holders.add(reject);
      run(0, data)
        .then(resolve, reject)
        .finally(() => this.holders.delete(reject));
    });
  }
}
