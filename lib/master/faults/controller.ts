/**
 * The fault set of one master: faults added at start (--fault) or at run time (KVR FAULT ADD,
 * SIGUSR1), armed on every live and new connection, fired when their triggers hold, and all
 * undone by a clear (KVR FAULT CLEAR, SIGUSR2). A connection fault without a trigger fires on a
 * connection at its first command other than AUTH, so redis-cli can still connect and send
 * KVR FAULT CLEAR while a stall is in force.
 */
import { Link, type LinkOwner } from "./link.ts";
import { parseFault, triggerText, type FaultSpec } from "./spec.ts";
import type { ServerHandle } from "./types.ts";
import type { Conn } from "../../net/index.ts";

export interface FaultEvent {
  conn: number | null;
  peer: string | null;
  kind: string;
  trigger: string;
  offset: number;
  spec: string;
}

interface Fault {
  id: number;
  spec: FaultSpec;
  addedAt: number;
  fired: number;
  serverUndo: (() => Promise<void>) | null;
  serverFired: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

/** A fault without a trigger (on=, after-bytes=, after-files=, after-ms=): it fires "at once". */
function untriggered(s: FaultSpec): boolean {
  const t = s.triggers;
  return t.on === undefined && t.afterBytes === undefined && t.afterFiles === undefined && t.afterMs === undefined;
}

/** Server-scope faults whose triggers need a connection's counters. */
function connTriggered(s: FaultSpec): boolean {
  const t = s.triggers;
  return t.on !== undefined || t.afterBytes !== undefined || t.afterFiles !== undefined;
}

export class FaultController implements LinkOwner {
  private faults: Fault[] = [];
  private readonly links = new Set<Link>();
  private nextId = 1;
  private nextConn = 1;

  constructor(
    private readonly server: ServerHandle,
    private readonly onFire: (e: FaultEvent) => void,
    private readonly onError: (msg: string) => void = () => {},
  ) {}

  /**
   * Specs of the faults in force, as given: a connection fault leaves the list once used up
   * (`once`, `conns=`), though the connections it hit stay hit until a clear; a server fault
   * stays until cleared (its effect on the listener lasts until then).
   */
  list(): string[] {
    return this.inForce().map((f) => f.spec.text);
  }

  private inForce(): Fault[] {
    return this.faults.filter((f) => f.spec.kind.scope === "server" || !this.exhausted(f));
  }

  /** Links of the live connections (tests and diagnostics). */
  liveLinks(): Link[] {
    return [...this.links];
  }

  /** Faults in force (as list() shows them). */
  get count(): number {
    return this.inForce().length;
  }

  /** Add a fault (a spec string or parsed); it applies to live connections too. */
  async add(spec: string | FaultSpec): Promise<void> {
    const s = typeof spec === "string" ? parseFault(spec) : spec;
    const f: Fault = { id: this.nextId++, spec: s, addedAt: performance.now(), fired: 0, serverUndo: null, serverFired: false, timer: null };
    this.faults.push(f);
    if (s.kind.scope === "server" && !connTriggered(s)) {
      const ms = s.triggers.afterMs ?? 0;
      if (ms > 0) f.timer = setTimeout(() => void this.fireServer(f, null), ms);
      else if (!(await this.fireServer(f, null))) {
        this.faults = this.faults.filter((x) => x !== f);
        throw new Error(`fault '${s.text}' could not be applied (see the log)`);
      }
      return;
    }
    for (const l of this.links) this.arm(l, f);
  }

  /** Remove every fault and undo its effects (stalled connections resume, the listener returns). */
  async clear(): Promise<void> {
    const old = this.faults;
    this.faults = [];
    for (const l of this.links) {
      for (const t of l.timers.values()) clearTimeout(t);
      l.timers.clear();
      const effects = l.effects;
      l.effects = [];
      for (const e of effects) e.effect.release();
      l.wake();
    }
    for (const f of old) {
      if (f.timer) clearTimeout(f.timer);
      if (f.serverUndo) {
        try {
          await f.serverUndo();
        } catch (e) {
          this.onError(`could not undo fault '${f.spec.text}': ${(e as Error).message}`);
        }
      }
    }
  }

  /** Make a link for a new connection and arm every fault on it. */
  attach(conn: Conn): Link {
    const link = new Link(this.nextConn++, conn, this);
    this.links.add(link);
    for (const f of this.faults) this.arm(link, f);
    return link;
  }

  detach(link: Link): void {
    for (const t of link.timers.values()) clearTimeout(t);
    link.timers.clear();
    this.links.delete(link);
  }

  private arm(link: Link, f: Fault): void {
    const ms = f.spec.triggers.afterMs;
    if (ms !== undefined) {
      const since = Math.max(link.startedAt, f.addedAt);
      const left = since + ms - performance.now();
      if (left > 0) {
        link.timers.set(
          f.id,
          setTimeout(() => {
            link.timers.delete(f.id);
            this.evaluate(link);
          }, left),
        );
      }
    }
    this.evaluate(link);
  }

  private exhausted(f: Fault): boolean {
    const t = f.spec.triggers;
    if (f.spec.kind.scope === "server") return f.serverFired;
    if (t.once && f.fired >= 1) return true;
    return t.conns !== undefined && f.fired >= t.conns;
  }

  private ready(f: Fault, link: Link): boolean {
    if (link.control || link.fired.has(f.id) || this.exhausted(f)) return false;
    // "At once" means at a new connection's first command other than AUTH (a first KVR makes it
    // a control connection instead), and at once on connections already past it.
    if (!link.started && untriggered(f.spec)) return false;
    const t = f.spec.triggers;
    if (t.on !== undefined && !link.seen.has(t.on)) return false;
    if (t.afterBytes !== undefined && link.fileBytes < t.afterBytes) return false;
    if (t.afterFiles !== undefined && link.files < t.afterFiles) return false;
    if (t.afterMs !== undefined && performance.now() - Math.max(link.startedAt, f.addedAt) < t.afterMs - 1) return false;
    return true;
  }

  /**
   * Fire every fault whose trigger is met on `link`. Resolves once the server faults it fired
   * are in place (listener closed or replaced), so a reply sent after it cannot race them.
   */
  evaluate(link: Link): Promise<unknown> | undefined {
    if (link.dead || !this.links.has(link)) return;
    let server: Promise<boolean>[] | undefined;
    for (const f of this.faults) {
      if (!this.ready(f, link)) continue;
      link.fired.add(f.id);
      if (f.spec.kind.scope === "server") {
        (server ??= []).push(this.fireServer(f, link));
        continue;
      }
      f.fired++;
      this.report(f, link);
      const effect = f.spec.kind.start!(f.spec.params, link);
      link.effects.push({ faultId: f.id, effect });
      if (link.dead) break;
    }
    return server && Promise.all(server);
  }

  nextCut(link: Link): number {
    let cut = Infinity;
    for (const f of this.faults) {
      const n = f.spec.triggers.afterBytes;
      if (n !== undefined && n > link.fileBytes && n < cut && !link.fired.has(f.id) && !this.exhausted(f)) cut = n;
    }
    return cut;
  }

  private report(f: Fault, link: Link | null): void {
    this.onFire({
      conn: link?.id ?? null,
      peer: link?.conn.peer ?? null,
      kind: f.spec.kind.kind,
      trigger: triggerText(f.spec.triggers),
      offset: link?.fileBytes ?? 0,
      spec: f.spec.text,
    });
  }

  /** Apply a server fault; false when it could not be applied (logged). */
  private async fireServer(f: Fault, link: Link | null): Promise<boolean> {
    if (f.serverFired || !this.faults.includes(f)) return true;
    f.serverFired = true;
    f.fired++;
    this.report(f, link);
    try {
      f.serverUndo = await f.spec.kind.startServer!(f.spec.params, this.server);
      // Cleared while it was being applied: undo at once.
      if (!this.faults.includes(f)) await f.serverUndo();
      return true;
    } catch (e) {
      this.onError(`fault '${f.spec.text}' could not be applied: ${(e as Error).message}`);
      return false;
    }
  }
}
