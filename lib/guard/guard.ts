/**
 * The guard: watches nodes (poller.ts) and destroys, through sock_diag, the established TCP
 * sockets a node's own process holds to that node's master once they received nothing for the
 * read timeout — only while the node was last seen syncing (master_sync_in_progress:1) or has
 * stopped answering, and never while it was last seen streaming (master_link_status:up).
 *
 * A socket is the node's when its inode is among /proc/<pid>/fd of the process_id the node
 * reported, that process holding the node's listening socket (checked once per process, with its
 * start time so a reused pid is never taken for it). Sockets are looked at only for armed nodes:
 * the whole table (one sock_diag dump, filtered in the kernel to the masters' addresses) when a
 * node is armed and then once per read timeout — a socket opened since cannot cross sooner —
 * and in between each known socket is looked up by its id at the moment it would cross, so the
 * destroy comes within milliseconds of the crossing without walking the table every interval.
 */
import { lookup } from "node:dns/promises";
import type { Output } from "../ui/output.ts";
import { untilAborted } from "../ui/time.ts";
import { formatBytes, formatMs } from "../ui/units.ts";
import { addrText } from "../client/index.ts";
import { canonicalIp, errnoName, ERRNO, TCP_STATE, type SockDiag, type TcpSocket } from "../net/sockdiag.ts";
import type { GuardConfig } from "./options.ts";
import { NodeWatch, type Replication, type WatchChange } from "./poller.ts";
import { socketInodes, startTime } from "./proc.ts";
import { destroyRefusal } from "./selftest.ts";

/** Why a node's sockets may be destroyed now; null = they may not. */
export type Armed = "syncing" | "unresponsive" | null;

/**
 * The rule, on what the node last said and whether it answers now. `onlyUnresponsive`: a
 * syncing node that still answers is left alone (no stop is waiting on its fetch).
 */
export function armed(last: Replication | null, responsive: boolean, onlyUnresponsive = false): Armed {
  if (!last || last.role !== "slave" || !last.master || last.linkUp) return null;
  if (!responsive) return "unresponsive";
  return last.syncInProgress && !onlyUnresponsive ? "syncing" : null;
}

/** Shortest wait between two looks at the socket table. */
const MIN_LOOK_MS = 10;

/** One destroyed (or, with --dry-run, spared) socket. */
export interface DestroyRecord {
  node: string;
  pid: number;
  local: string;
  remote: string;
  bytesReceived: number | null;
  idleMs: number;
  why: "syncing" | "unresponsive";
  dryRun: boolean;
  destroyed: boolean;
  error: string | null;
}

interface Guarded {
  watch: NodeWatch;
  /** The process verified to be this node's: pid and start time. */
  proc: { pid: number; start: string } | null;
  /** Why the process could not be verified (said once per pid). */
  procNote: string | null;
  /** The master's addresses as IPs (resolved when master_host is a name). */
  master: { key: string; ips: string[] } | null;
  /** Sockets to the master that belong to another process (skipped from then on). */
  foreign: Set<number>;
  /** --dry-run: sockets already reported. */
  reported: Set<number>;
  /** Why /proc/<pid>/fd could not be read (said once). */
  fdNote: string | null;
}

const hostPort = (h: string, p: number) => addrText({ host: h, port: p });

/** What a guard did, counted (a guard may run for months: no list is kept). */
export interface GuardTotals {
  destroyed: number;
  /** --dry-run: sockets it would have destroyed. */
  wouldDestroy: number;
  /** Destroys the kernel refused. */
  failed: number;
}

/** Run the guard until `signal` aborts; returns what it did. */
export async function runGuard(cfg: GuardConfig, diag: SockDiag, out: Output, signal: AbortSignal): Promise<GuardTotals> {
  const totals: GuardTotals = { destroyed: 0, wouldDestroy: 0, failed: 0 };
  const nodes: Guarded[] = [];
  const isArmed = (w: NodeWatch) => armed(w.last, w.responsive, cfg.onlyUnresponsive);
  let lookTimer: ReturnType<typeof setTimeout> | null = null;
  let lookAt = Infinity;
  /** Sockets of armed nodes to their masters, with when each would cross the read timeout. */
  const watching = new Map<number, { sock: TcpSocket; g: Guarded; dueAt: number }>();
  /** When the whole table is next listed (performance.now(); 0 = at the next look). */
  let nextFull = 0;
  /** Look at the whole table now (a node was armed, its master or process changed). */
  const wake = () => {
    nextFull = 0;
    schedule(0);
  };

  const schedule = (delayMs: number) => {
    if (signal.aborted) return;
    const at = performance.now() + delayMs;
    if (lookTimer && at >= lookAt) return;
    if (lookTimer) clearTimeout(lookTimer);
    lookAt = at;
    lookTimer = setTimeout(look, Math.max(0, delayMs));
  };

  const onChange = (w: NodeWatch, what: WatchChange) => {
    const g = nodes.find((n) => n.watch === w)!;
    if (what === "pid") verify(g);
    if (what === "state") resolveMaster(g);
    // A new connection's process_id comes just before its first INFO replication, which reports both.
    if (what !== "pid" || w.last !== null) report(g, what);
    if (isArmed(w)) wake();
  };

  for (const addr of cfg.nodes) {
    const watch = new NodeWatch(addr, { timeoutMs: cfg.timeoutMs, auth: cfg.auth, signal, onChange });
    nodes.push({ watch, proc: null, procNote: null, master: null, foreign: new Set(), reported: new Set(), fdNote: null });
  }

  /** Is the process that node says it is really the one listening on its port, here? */
  function verify(g: Guarded): void {
    const pid = g.watch.pid;
    g.proc = null;
    let note: string | null = null;
    if (pid === null) note = "its INFO server has no process_id: its sockets cannot be told from others' and are never touched";
    else {
      const start = startTime(pid);
      const own = socketInodes(pid);
      if (start === null) note = `its process_id ${pid} is not a process here: run the guard on the node's host, in its PID namespace`;
      else if (!own.ok) note = own.reason;
      else {
        let listening: TcpSocket[] = [];
        try {
          listening = diag.tcp({ states: [TCP_STATE.LISTEN], sport: g.watch.addr.port });
        } catch (e) {
          note = `cannot list listening sockets: ${(e as Error).message}`;
        }
        if (listening.some((s) => own.inodes.has(s.inode))) g.proc = { pid, start };
        else note ??= `process ${pid} does not hold a socket listening on port ${g.watch.addr.port} here (another network or PID namespace?): its sockets are never touched`;
      }
    }
    if (note !== null && note !== g.procNote) out.warn(`${g.watch.label}: ${note}`);
    g.procNote = note;
  }

  function resolveMaster(g: Guarded): void {
    const m = g.watch.last?.master;
    if (!m) {
      g.master = null;
      return;
    }
    const key = `${m.host}:${m.port}`;
    if (g.master?.key === key) return;
    const ip = canonicalIp(m.host);
    if (ip) {
      g.master = { key, ips: [ip] };
      return;
    }
    g.master = { key, ips: [] };
    lookup(m.host, { all: true }).then(
      (addrs) => {
        if (g.master?.key !== key) return;
        g.master = { key, ips: addrs.map((a) => canonicalIp(a.address)).filter((x): x is string => x !== null) };
        if (isArmed(g.watch)) wake();
      },
      (e) => out.warn(`${g.watch.label}: cannot resolve its master ${m.host}: ${(e as Error).message}; its sockets are not looked at`),
    );
  }

  /** The nodes whose sockets are looked at now. */
  const targets = () => nodes.filter((g) => g.proc && g.master && g.master.ips.length > 0 && isArmed(g.watch));

  /**
   * One look: the whole table (one dump) once per read timeout or when a node was armed;
   * in between, only the sockets due to cross, each looked up by its id. Schedules the next.
   */
  function look(): void {
    lookTimer = null;
    lookAt = Infinity;
    if (signal.aborted) return;
    const now = performance.now();
    const armedNow = targets();
    if (armedNow.length === 0) {
      watching.clear();
      return;
    }
    const owned = new Map<Guarded, Set<number> | null>();
    if (now >= nextFull - 1) fullLook(armedNow, now, owned);
    else {
      const live = new Set(armedNow);
      for (const [inode, w] of watching) {
        if (!live.has(w.g)) watching.delete(inode);
        else if (w.dueAt <= now + 1) {
          watching.delete(inode);
          let fresh: TcpSocket | null;
          try {
            fresh = diag.get(w.sock);
          } catch (e) {
            out.warn(`cannot look up a socket: ${(e as Error).message}`);
            nextFull = now;
            break;
          }
          if (fresh) consider(w.g, fresh, now, owned);
        }
      }
    }
    let at = nextFull;
    for (const w of watching.values()) at = Math.min(at, w.dueAt);
    schedule(Math.max(MIN_LOOK_MS, at - performance.now()));
  }

  function fullLook(armedNow: Guarded[], now: number, owned: Map<Guarded, Set<number> | null>): void {
    nextFull = now + cfg.readTimeoutMs;
    const remotes = new Map<string, { host: string; port: number }>();
    for (const g of armedNow) for (const ip of g.master!.ips) remotes.set(`${ip} ${g.watch.last!.master!.port}`, { host: ip, port: g.watch.last!.master!.port });
    let socks: TcpSocket[];
    try {
      socks = diag.tcp({ remotes: [...remotes.values()] });
    } catch (e) {
      out.warn(`cannot list sockets: ${(e as Error).message}`);
      nextFull = now + cfg.intervalMs;
      return;
    }
    watching.clear();
    for (const g of armedNow) {
      const port = g.watch.last!.master!.port;
      const mine = socks.filter((s) => s.remote.port === port && g.master!.ips.includes(s.remote.host));
      const seen = new Set(mine.map((s) => s.inode));
      for (const i of g.foreign) if (!seen.has(i)) g.foreign.delete(i);
      for (const i of g.reported) if (!seen.has(i)) g.reported.delete(i);
      for (const s of mine) if (!g.foreign.has(s.inode)) consider(g, s, now, owned);
    }
  }

  /** A socket of an armed node to its master, as seen at `now`: destroy it, or note when it could cross. */
  function consider(g: Guarded, s: TcpSocket, now: number, owned: Map<Guarded, Set<number> | null>): void {
    const idle = s.lastRecvMs ?? 0;
    if (idle < cfg.readTimeoutMs) {
      watching.set(s.inode, { sock: s, g, dueAt: now + cfg.readTimeoutMs - idle });
      return;
    }
    // Bytes waiting to be read: the process is behind, not blocked on a silent master.
    if (s.recvQ > 0) {
      watching.set(s.inode, { sock: s, g, dueAt: now + cfg.intervalMs });
      return;
    }
    const proc = g.proc!;
    let mine = owned.get(g);
    if (mine === undefined) {
      const r = socketInodes(proc.pid);
      if (!r.ok && r.reason !== g.fdNote) out.warn(`${g.watch.label}: ${r.reason}; its sockets are not touched`);
      g.fdNote = r.ok ? null : r.reason;
      mine = r.ok ? r.inodes : null;
      owned.set(g, mine);
    }
    if (mine === null) return;
    if (!mine.has(s.inode)) {
      g.foreign.add(s.inode);
      return;
    }
    if (startTime(proc.pid) !== proc.start) {
      g.proc = null;
      out.warn(`${g.watch.label}: process ${proc.pid} is gone; waiting for the node to report its new process`);
      return;
    }
    act(g, s, isArmed(g.watch)!, proc.pid);
  }

  function act(g: Guarded, s: TcpSocket, why: "syncing" | "unresponsive", pid: number): void {
    if (cfg.dryRun && g.reported.has(s.inode)) return;
    const rec: DestroyRecord = {
      node: g.watch.label,
      pid,
      local: hostPort(s.local.host, s.local.port),
      remote: hostPort(s.remote.host, s.remote.port),
      bytesReceived: s.bytesReceived,
      idleMs: s.lastRecvMs ?? 0,
      why,
      dryRun: cfg.dryRun,
      destroyed: false,
      error: null,
    };
    if (cfg.dryRun) g.reported.add(s.inode);
    else {
      const err = diag.destroy(s);
      if (err === ERRNO.ENOENT) return; // closed meanwhile
      rec.destroyed = err === 0;
      if (err !== 0) rec.error = err === ERRNO.EPERM || err === ERRNO.EOPNOTSUPP ? destroyRefusal(err) : errnoName(err);
    }
    if (rec.dryRun) totals.wouldDestroy++;
    else if (rec.destroyed) totals.destroyed++;
    else totals.failed++;
    const state = why === "syncing" ? "node syncing" : "node not answering";
    const verb = rec.dryRun ? "would destroy" : rec.destroyed ? "destroyed" : `could not destroy (${rec.error})`;
    const text = `${rec.node} (pid ${pid}): ${verb} ${rec.local} → ${rec.remote}: received ${rec.bytesReceived === null ? "?" : formatBytes(rec.bytesReceived)}, nothing for ${formatMs(rec.idleMs)} (${state})`;
    if (rec.error) out.warn(text);
    out.event("destroy", { ...rec }, text);
  }

  function describe(last: Replication | null): string {
    if (!last) return "not seen yet";
    if (last.role !== "slave" || !last.master) return `${last.role}: nothing to guard`;
    const m = addrText(last.master);
    if (last.linkUp) return `slave of ${m}, link up (streaming): never touched`;
    return `slave of ${m}, link down${last.syncInProgress ? ", syncing" : ""}`;
  }

  const view = (last: Replication | null) =>
    last ? { role: last.role, master: last.master ? addrText(last.master) : null, link: last.master ? (last.linkUp ? "up" : "down") : null, syncInProgress: last.syncInProgress } : null;

  function report(g: Guarded, what: WatchChange): void {
    const w = g.watch;
    const now = isArmed(w);
    const arming = now ? ` — armed (${now})` : "";
    if (what === "unresponsive") {
      const ago = w.lastSeenAt === null ? null : Math.round(performance.now() - w.lastSeenAt);
      out.event(
        "node-unresponsive",
        { node: w.label, pid: w.pid, reason: w.reason, lastSeen: view(w.last), lastSeenAgoMs: ago },
        `${w.label} does not answer (${w.reason}); last seen: ${describe(w.last)}${ago === null ? "" : ` ${formatMs(ago)} ago`}${arming}`,
      );
    } else if (what === "recovered") {
      const ms = w.unresponsiveSince === null ? 0 : Math.round(performance.now() - w.unresponsiveSince);
      out.event("node-recovered", { node: w.label, pid: w.pid, unresponsiveMs: ms }, `${w.label} answers again after ${formatMs(ms)}`);
    } else if (what === "error") {
      if (w.reason) out.warn(`${w.label}: ${w.reason}`);
    } else {
      out.event(
        "watch",
        { node: w.label, pid: w.pid, pidVerified: g.proc !== null, ...view(w.last), armed: now },
        `${w.label}${w.pid === null ? "" : ` (pid ${w.pid}${g.proc ? "" : ", not verified"})`}: ${describe(w.last)}${arming}`,
      );
    }
  }

  out.info(
    `watching ${nodes.map((g) => g.watch.label).join(", ")} every ${formatMs(cfg.intervalMs)}: a socket of a node to its master that receives nothing for ${formatMs(cfg.readTimeoutMs)} ${cfg.onlyUnresponsive ? "while the node does not answer (--only-unresponsive: not merely because it syncs)" : "while the node syncs or does not answer"} ${cfg.dryRun ? "is reported (--dry-run: nothing is destroyed)" : "is destroyed"}`,
  );
  const tick = () => {
    for (const g of nodes) g.watch.tick();
  };
  const clock = setInterval(tick, cfg.intervalMs);
  tick();
  await untilAborted(signal);
  clearInterval(clock);
  if (lookTimer) clearTimeout(lookTimer);
  for (const g of nodes) g.watch.close();
  return totals;
}
