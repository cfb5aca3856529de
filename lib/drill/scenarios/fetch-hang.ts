/**
 * The fetch-hang scenario (the Kvrocks fetch hang, docs/protocol.md §5), one run as named phases:
 * start masters A and B, bring up the node under test, make it a slave of A (topology-v<N>), wait
 * until A has served --cut-at of its bytes, cut A, send SETNODES moving the node away while
 * PINGing it (setnodes-v<N+1>), verify, recover (the node streams from B, unless --no-recover),
 * and — for a --replica node — put its topology back (restore, the final phase, pass or fail). A
 * hung SETNODES is cut at --give-up; the cut is then released (A stopped) and the time the node
 * took to answer again is measured. Everything started is registered with the run's Cleanup.
 */
import { formatNodes, newNodeId } from "../../cluster/index.ts";
import { isNetError, type Conn } from "../../net/index.ts";
import { replyText, SimpleString } from "../../resp/index.ts";
import type { Output } from "../../ui/output.ts";
import { abortable } from "../../ui/time.ts";
import { formatBytes, formatMs } from "../../ui/units.ts";
import { DrillError } from "../errors.ts";
import { guardLine, guardReport, startGuard, type GuardReport } from "../guard.ts";
import type { DrillConfig } from "../options.ts";
import { waitRecovered, type RecoverResult } from "../recover.ts";
import { aInfoBytes, startMasters, waitForBytes, type Masters } from "../masters.ts";
import { createNetns, type Netns } from "../netns.ts";
import { addrText, command, info, intField, type NodeAddr } from "../node.ts";
import { Phases, type Phase, type RunContext } from "../phases.ts";
import { Pinger, type PingStats } from "../pinger.ts";
import { kept, restoreTopology, type RestoreResult, type SavedTopology } from "../restore.ts";
import { establishedConns, type TcpConn } from "../sys.ts";
import { ALL_SLOTS, joinTopology, master, openTarget, slave, startTarget, topology } from "../target.ts";

export interface FetchCheck {
  /** How it was checked in the kernel's socket table: on A's port (A's side), towards A (the replica's side), or not at all. */
  method: "master-side" | "replica-side" | "unchecked";
  /** Fetch connections between the replica and A still ESTABLISHED after SETNODES; null = unknown. */
  open: number | null;
  detail: string;
}

export interface FetchHangResult {
  run: number;
  scenario: "fetch-hang";
  verdict: "PASS" | "FAIL";
  /** Why a run failed, as observed (empty on PASS). */
  reasons: string[];
  phases: Phase[];
  masterA: { host: string; port: number; files: number; bytes: number; rateMBps: number; pid: number };
  masterB: { kind: "kvr" | "blackhole"; host: string; port: number };
  replica: { kind: "kvr" | "external"; host: string; port: number; nodeId: string };
  versions: { v1: number; v2: number };
  cut: { mode: "stall" | "netns"; method: string; bytesSent: number; totalBytes: number; fraction: number; netns: string | null };
  setnodes: { ms: number; reply: string | null; hung: boolean; withinBudget: boolean };
  ping: PingStats;
  fetchConnections: FetchCheck;
  role: { expected: string; observed: string; ok: boolean };
  /** After a hang: how long after the release (A stopped) the node answered PING again; null = not within --give-up. */
  recovery: { releasedAfterMs: number; answeredAfterMs: number | null } | null;
  /** The recovery phase: the node streaming from B after SETNODES; null when not run (--no-recover, --switch-to master, no OK). */
  recover: RecoverResult | null;
  infoBefore: Record<string, string> | null;
  infoAfter: Record<string, string> | null;
  /** A --replica node's topology put back (or kept, --keep); null for a kvr replica the drill started. */
  restore: RestoreResult | null;
  /** --guard: what kvr guard did during the run; null without --guard. */
  guard: GuardReport | null;
}

/**
 * After the cut, before SETNODES: data already in flight drains and the replica's fetch workers
 * sit in read, as in the incident.
 */
const SETTLE_MS = 500;

const pct = (a: number, b: number) => `${b > 0 ? Math.round((a / b) * 100) : 0}%`;

/** A --replica node the run is about to change or has changed: what restore needs. */
interface Touched {
  addr: NodeAddr;
  saved: SavedTopology | null;
  /** The highest topology version the drill sent. */
  lastVersion: number;
}

/** The fetch-hang scenario for the drill's command loop and report (scenarios/index.ts). */
export const fetchHangScenario = {
  header,
  run: runFetchHang,
  print: printFetchHang,
  latency: (r: FetchHangResult) => (r.setnodes.hung || r.setnodes.reply !== null ? { ms: r.setnodes.ms, hung: r.setnodes.hung } : null),
  stopsRepeat: (r: FetchHangResult) => (r.setnodes.hung ? "SETNODES hung" : null),
  timings: (r: FetchHangResult) => ({
    setnodesMs: r.setnodes.ms,
    hung: r.setnodes.hung,
    longestPingGapMs: r.ping.longestGapMs,
    bytesAtCut: r.cut.bytesSent,
    recovery: r.recovery,
    recoveredMs: r.recover?.ms ?? null,
  }),
  passNote: (r: FetchHangResult) => guarded(r),
};

function header(cfg: DrillConfig): string {
  const target = cfg.replica ? `node ${cfg.replica.host}:${cfg.replica.port}` : "a kvr replica";
  const to = cfg.switchTo === "master" ? "make it a master" : `move it to master B (${cfg.newMaster === "blackhole" ? "an address that never answers" : "kvr master"})`;
  const recover = cfg.recover && cfg.switchTo === "replica" ? `; recover within ${formatMs(cfg.recoverTimeoutMs)}` : "";
  return (
    `fetch-hang — ${target}: full sync of ${cfg.files} × ${formatBytes(cfg.fileSize)} from A at ${cfg.rateMBps} MB/s, cut (${cfg.cut}) at ${Math.round(cfg.cutAt * 100)}%, ` +
    `then SETNODES to ${to}; budget ${formatMs(cfg.budgetMs)}, give up after ${formatMs(cfg.giveUpMs)}${recover}`
  );
}

/** The human summary of one run (phases were printed live). */
function printFetchHang(out: Output, cfg: DrillConfig, r: FetchHangResult): void {
  const c = out.c;
  out.print(`  bytes at cut:     ${formatBytes(r.cut.bytesSent)} of ${formatBytes(r.cut.totalBytes)} (${Math.round(r.cut.fraction * 100)}%) — ${r.cut.method}`);
  if (r.setnodes.reply !== null || r.setnodes.hung) {
    const lat = r.setnodes.hung ? c.red(`no reply within ${formatMs(cfg.giveUpMs)} (hung)`) : `${formatMs(r.setnodes.ms)} → ${r.setnodes.reply}`;
    out.print(`  ${`SETNODES v${r.versions.v2}:`.padEnd(18)}${lat} (budget ${formatMs(cfg.budgetMs)})`);
    out.print(`  longest PING gap: ${formatMs(r.ping.longestGapMs)} (${r.ping.answered}/${r.ping.sent} answered, every 100 ms)`);
  }
  if (r.recovery) {
    out.print(
      `  after release:    ${r.recovery.answeredAfterMs === null ? c.red(`no answer within ${formatMs(cfg.giveUpMs)} after A was stopped`) : `the node answered again ${formatMs(r.recovery.answeredAfterMs)} after A was stopped`}`,
    );
  }
  if (r.role.expected) out.print(`  INFO after:       ${r.role.observed} ${r.role.ok ? c.green("✓") : c.red(`✗ expected ${r.role.expected}`)}`);
  if (r.fetchConnections.method !== "unchecked" || r.fetchConnections.open !== null) {
    out.print(`  fetch conns to A: ${r.fetchConnections.open ?? "?"} open (${r.fetchConnections.detail})`);
  }
  if (r.recover) out.print(`  recovered:        ${r.recover.ok ? `${c.green("✓")} in ${formatMs(r.recover.ms!)} (streaming from B, offset ${r.recover.offset})` : c.red(`✗ ${r.recover.detail}`)}`);
  if (r.guard) out.print(`  kvr guard:        ${guardLine(r.guard)}`);
  if (r.restore) out.print(`  node topology:    ${r.restore.status === "failed" ? c.yellow(r.restore.detail) : r.restore.detail}`);
}

/** " (with kvr guard: n socket(s) destroyed)" for a run with --guard, else "". */
function guarded(r: FetchHangResult): string {
  return r.guard ? ` (with kvr guard: ${r.guard.actions.filter((a) => a.destroyed).length} socket(s) destroyed)` : "";
}

/** Run the scenario once. Throws DrillError when the drill itself cannot run. */
export async function runFetchHang(ctx: RunContext): Promise<FetchHangResult> {
  const phases = new Phases(ctx);
  const touched: { node: Touched | null } = { node: null };
  let result: Omit<FetchHangResult, "restore"> | undefined;
  let restore: RestoreResult | null = null;
  try {
    result = await fetchHang(ctx, phases, touched);
  } finally {
    if (touched.node) restore = await putBack(ctx, phases, touched.node);
  }
  return { ...result!, restore };
}

/** The final phase: the node's topology back as it was (or --keep). An interrupt does not skip it. */
export function putBack(ctx: RunContext, phases: Phases, t: Touched): Promise<RestoreResult> {
  return phases.final(
    "restore",
    async () => (ctx.cfg.keep || !t.saved ? kept(t.lastVersion) : restoreTopology(t.addr, ctx.cfg.auth, t.saved, t.lastVersion)),
    (r) => r.detail,
  );
}

async function fetchHang(ctx: RunContext, phases: Phases, touched: { node: Touched | null }): Promise<Omit<FetchHangResult, "restore">> {
  const { cfg, log } = ctx;
  const startedAt = Date.now();
  // A node given by address is checked first: unreachable → exit 4 before anything starts.
  const early = cfg.replica ? await openTarget(ctx, cfg.replica, "control") : null;

  // ---- network namespace (kernel-level cut) ----
  let ns: Netns | null = null;
  if (cfg.cut === "netns") {
    ns = await phases.run(
      "netns",
      async () => {
        const n = await createNetns(ctx.run, log);
        ctx.cleanup.add(`removing namespace ${n.name}`, () => n.remove());
        return n;
      },
      (n) => `namespace ${n.name}, veth ${n.hostIf} ${n.hostAddr}/30 ↔ ${n.nsIf} ${n.nsAddr}/30`,
    );
  }
  const total = cfg.files * cfg.fileSize;

  // ---- masters A and B ----
  const m = await phases.run(
    "start-masters",
    () => startMasters(ctx, ns),
    (v) =>
      `A ${addrText(v.aAddr)} (${cfg.files} files, ${formatBytes(total)}, ${cfg.rateMBps} MB/s${cfg.aPsync === "accept" ? ", accepts PSYNC" : ""}), ` +
      `B ${addrText(v.b.addr)} (${v.b.kind === "kvr" ? "kvr master" : "blackhole: never answers"})` +
      (cfg.mastersAuth ? "; both require --masters-auth" : ""),
  );
  const { a, aAddr, b } = m;

  // ---- the node under test ----
  const target = await phases.run("start-replica", () => startTarget(ctx), (r) => (r.kind === "kvr" ? `kvr replica on ${addrText(r.addr)}` : `node under test ${addrText(r.addr)}`));
  const rAddr = target.addr;
  let ctl = early ?? (await openTarget(ctx, rAddr, "control"));

  // ---- --guard: kvr guard watching the node under test until the run ends ----
  const guard = cfg.guard
    ? await phases.run(
        "start-guard",
        () => startGuard(rAddr, cfg.readTimeoutMs, cfg.auth, ctx.cleanup),
        (g) => `kvr guard (pid ${g.child.pid}) watches ${addrText(rAddr)}: destroys its sockets to its master idle for ${formatMs(g.readTimeoutMs)} while it syncs or hangs`,
      )
    : null;
  // The guard is stopped before its report is read: a destroy it printed just before SETNODES
  // returned may still be in its pipe.
  const guarded = async () => (guard ? (await guard.child.stop(), guardReport(guard, startedAt)) : null);

  // ---- node ids and the first topology: a slave of A ----
  const idA = newNodeId();
  const idB = newNodeId();
  const record = target.kind === "external" && !cfg.keep;
  const joined = await phases.run(
    (j) => `topology-v${j.version}`,
    () =>
      joinTopology(ctl, target, idA, aAddr, { id: idB, addr: b.addr }, record, target.kind === "external" && !cfg.replaceData, (saved) => {
        if (target.kind === "external") touched.node = { addr: rAddr, saved, lastVersion: -1 };
      }),
    (j) => `${j.idSet ? "SETNODEID" : "node id"} ${j.nodeId.slice(0, 8)}…, SETNODES version ${j.version}: slave of A`,
  );
  const { nodeId: idR, version: v1 } = joined;
  const v2 = v1 + 1;
  if (touched.node) touched.node.lastVersion = v1;

  // ---- wait until A has served --cut-at of its bytes ----
  const sync = await phases.run(
    "sync",
    () => waitForBytes(m, cfg.cutAt, cfg.giveUpMs),
    (s) =>
      (s.stuck ? `A served ${formatBytes(s.sent)} and then nothing for ${formatMs(cfg.giveUpMs)}` : `A served ${formatBytes(s.sent)} of ${formatBytes(s.total)} (${pct(s.sent, s.total)})`) +
      (m.aWatch.refusedPsync !== null ? `; the node's PSYNC ${m.aWatch.refusedPsync} was refused: a full sync` : ""),
  );
  const infoBefore = await info(ctl, "replication", 5000, "the node under test").catch(() => null);
  const base = {
    run: ctx.run,
    scenario: "fetch-hang" as const,
    masterA: { host: aAddr.host, port: aAddr.port, files: cfg.files, bytes: total, rateMBps: cfg.rateMBps, pid: a.pid },
    masterB: { kind: b.kind, host: b.addr.host, port: b.addr.port },
    replica: { kind: target.kind, host: rAddr.host, port: rAddr.port, nodeId: idR },
    versions: { v1, v2 },
  };
  if (sync.stuck) {
    const observed = infoBefore ? `${infoBefore.role ?? "?"}, ${infoBefore.kvr_state ?? infoBefore.master_link_status ?? ""}` : "no INFO";
    return {
      ...base,
      verdict: "FAIL",
      reasons: [`the replica did not fetch from A: ${formatBytes(sync.sent)} served, then nothing for ${formatMs(cfg.giveUpMs)} (replica: ${observed})`],
      phases: phases.list,
      cut: { mode: cfg.cut, method: "none", bytesSent: sync.sent, totalBytes: sync.total, fraction: sync.sent / Math.max(1, sync.total), netns: ns?.name ?? null },
      setnodes: { ms: 0, reply: null, hung: false, withinBudget: false },
      ping: { sent: 0, answered: 0, longestGapMs: 0, slowestMs: 0 },
      fetchConnections: { method: "unchecked", open: null, detail: "not reached" },
      role: { expected: "", observed: "", ok: false },
      recovery: null,
      recover: null,
      infoBefore,
      infoAfter: null,
      guard: await guarded(),
    };
  }

  const pingConn = await openTarget(ctx, rAddr, "PING");
  const cut = await phases.run("cut", () => cutA(m, ns, sync), (c) => `${c.method}; A had served ${formatBytes(c.sent)} of ${formatBytes(c.total)} (${pct(c.sent, c.total)}); ${SETTLE_MS} ms for data in flight to drain`);

  // ---- SETNODES moving the node away, timed, with PING on a second connection (opened before the cut) ----
  const pinger = new Pinger(pingConn);
  const t2 = topology(
    cfg.switchTo === "master"
      ? [master(idR, rAddr, ALL_SLOTS), master(idA, aAddr, []), master(idB, b.addr, [])]
      : [master(idB, b.addr, ALL_SLOTS), slave(idR, rAddr, idB), master(idA, aAddr, [])],
  );
  if (touched.node) touched.node.lastVersion = v2;
  const sn = await phases.run(
    `setnodes-v${v2}`,
    () => switchAway(ctx, ctl, pinger, formatNodes(t2), v2),
    (s) => (s.hung ? `no reply within --give-up ${formatMs(cfg.giveUpMs)}: HUNG` : `reply ${s.reply} after ${formatMs(s.ms)}`),
  );

  // ---- after a hang: release the cut (stop A) and time the node's first answer ----
  let recovery: FetchHangResult["recovery"] = null;
  if (sn.hung) {
    recovery = await phases.run(
      "release",
      async () => {
        const at = performance.now();
        if (ns) await ns.restore().catch((e) => log((e as Error).message));
        a.kill("SIGKILL");
        await a.exited;
        const pong = await pinger.firstAnswerAfter(at, cfg.giveUpMs);
        return { releasedAfterMs: phases.since(at), answeredAfterMs: pong === null ? null : Math.round(pong - at) };
      },
      (r) => (r.answeredAfterMs === null ? `A stopped; the node did not answer PING within ${formatMs(cfg.giveUpMs)}` : `A stopped; the node answered PING again after ${formatMs(r.answeredAfterMs)}`),
    );
  }
  const ping = await pinger.stop();

  // ---- verify: role in INFO, fetch connections to A closed ----
  const expected = cfg.switchTo === "master" ? "role:master" : `role:slave master ${addrText(b.addr)}`;
  if (ctl.isClosed) ctl = await openTarget(ctx, rAddr, "verify").catch(() => ctl);
  const verify = await phases.run(
    "verify",
    () => verifyMoved(ctx, ctl, b.addr, sn.hung ? null : { ns, aAddr }),
    (v) => `INFO ${v.observed} (${v.ok ? "as expected" : `expected ${expected}`}); fetch connections to A still open: ${v.fetch.open ?? "unknown"} (${v.fetch.detail})`,
  );

  // ---- recover: the node streams from B (link up, offset ≥ B's checkpoint sequence) ----
  const live = async () => (ctl.isClosed ? (ctl = await openTarget(ctx, rAddr, "recover")) : ctl);
  const recover =
    cfg.recover && cfg.switchTo === "replica" && !sn.hung && sn.reply === "OK"
      ? await phases.run("recover", () => waitRecovered(ctx, live, b, sn.repliedAt), (r) => r.detail)
      : null;

  const reasons: string[] = [];
  const withinBudget = !sn.hung && sn.ms <= cfg.budgetMs;
  if (sn.hung) {
    reasons.push(
      `SETNODES hung: no reply within ${formatMs(cfg.giveUpMs)}; PING got no answer for ${formatMs(ping.longestGapMs)}` +
        (recovery?.answeredAfterMs != null ? `; the node answered again ${formatMs(recovery.answeredAfterMs)} after A was stopped` : ""),
    );
  } else if (sn.reply !== "OK") reasons.push(`SETNODES replied ${sn.reply} after ${formatMs(sn.ms)}`);
  else if (!withinBudget) reasons.push(`SETNODES took ${formatMs(sn.ms)}, over the budget of ${formatMs(cfg.budgetMs)}`);
  if (!sn.hung && !verify.ok) reasons.push(`INFO after SETNODES shows ${verify.observed}, expected ${expected}`);
  if (!sn.hung && verify.fetch.open !== null && verify.fetch.open > 0) reasons.push(`${verify.fetch.open} fetch connection(s) from the replica to A still open (${verify.fetch.detail})`);
  if (recover && !recover.ok) {
    reasons.push(`the node did not recover within --recover-timeout ${formatMs(recover.timeoutMs)} of the SETNODES reply: INFO shows ${recover.seen}; expected ${recover.want}`);
  }

  return {
    ...base,
    guard: await guarded(),
    verdict: reasons.length === 0 ? "PASS" : "FAIL",
    reasons,
    phases: phases.list,
    cut: { mode: cfg.cut, method: cut.method, bytesSent: cut.sent, totalBytes: cut.total, fraction: Math.round((cut.sent / cut.total) * 1000) / 1000, netns: ns?.name ?? null },
    setnodes: { ms: sn.ms, reply: sn.reply, hung: sn.hung, withinBudget },
    ping,
    fetchConnections: verify.fetch,
    role: { expected, observed: verify.observed, ok: verify.ok },
    recovery,
    recover,
    infoBefore,
    infoAfter: verify.infoAfter,
  };
}

/**
 * Cut A: with netns the link inside the namespace goes down; with stall A stops sending and
 * reading on every connection (KVR FAULT ADD stall, or SIGUSR1). Then SETTLE_MS for data in flight.
 */
async function cutA(m: Masters, ns: Netns | null, sync: { sent: number; total: number }): Promise<{ sent: number; total: number; method: string }> {
  const last = await aInfoBytes(m.aConn).catch(() => null);
  const cutAt = performance.now();
  const sent = last?.sent ?? sync.sent;
  const total = last?.total ?? sync.total;
  let method: string;
  if (ns) {
    m.aConn.destroy();
    await ns.cut();
    method = `link ${ns.nsIf} down inside ${ns.name}`;
  } else {
    // A stall applies to every live connection, this one included: +OK or silence both
    // mean it is in force. An error (or a closed connection) falls back to SIGUSR1.
    const r = await command(m.aConn, ["KVR", "FAULT", "ADD", "stall"], SETTLE_MS).then(
      (v) => v,
      (e) => (isNetError(e, "READ_TIMEOUT") ? "silent" : null),
    );
    if (r instanceof SimpleString || r === "silent") method = "KVR FAULT ADD stall";
    else {
      m.a.kill("SIGUSR1");
      method = "SIGUSR1 to A (stall all)";
    }
    m.aConn.destroy();
  }
  const left = SETTLE_MS - (performance.now() - cutAt);
  if (left > 0) await Bun.sleep(left);
  return { sent, total, method };
}

/** SETNODES `nodes` `version` on `ctl`, timed, PINGing meanwhile; a reply later than --give-up is a hang. */
async function switchAway(ctx: RunContext, ctl: Conn, pinger: Pinger, nodes: string, version: number): Promise<{ ms: number; reply: string | null; hung: boolean; repliedAt: number }> {
  const { cfg, signal } = ctx;
  const giveUp = new AbortController();
  const onOuter = () => giveUp.abort();
  signal.addEventListener("abort", onOuter, { once: true });
  const timer = setTimeout(() => giveUp.abort(), cfg.giveUpMs);
  pinger.start();
  const sent = performance.now();
  let reply: string | null = null;
  let hung = false;
  try {
    ctl.readMs = 0;
    const r = await abortable(command(ctl, ["CLUSTERX", "SETNODES", nodes, String(version)], 0), giveUp.signal);
    reply = replyText(r);
  } catch (e) {
    if (signal.aborted) throw new DrillError("interrupted");
    if (giveUp.signal.aborted) hung = true;
    else reply = `(connection failed: ${(e as Error).message})`;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onOuter);
  }
  const repliedAt = performance.now();
  const ms = Math.round((repliedAt - sent) * 10) / 10;
  if (hung) ctl.destroy();
  return { ms, reply, hung, repliedAt };
}

/**
 * The node's INFO shows the new role (a master, or a slave of B) within 1 s; and, unless
 * `fetch` is null (A was stopped after a hang), its fetch connections to A are closed.
 */
export async function verifyMoved(
  ctx: RunContext,
  ctl: Conn,
  bAddr: NodeAddr,
  fetch: { ns: Netns | null; aAddr: NodeAddr } | null,
): Promise<{ infoAfter: Record<string, string> | null; observed: string; ok: boolean; fetch: FetchCheck }> {
  const { cfg } = ctx;
  let infoAfter: Record<string, string> | null = null;
  let observed = "no INFO";
  let ok = false;
  const until = performance.now() + 1000;
  while (!ctl.isClosed) {
    infoAfter = await info(ctl, "replication", Math.min(cfg.giveUpMs, 5000), "the node under test").catch(() => null);
    if (!infoAfter) break;
    observed = `role:${infoAfter.role ?? "?"}` + (infoAfter.role === "slave" ? ` master ${infoAfter.master_host ?? "?"}:${infoAfter.master_port ?? "?"}` : "");
    ok =
      cfg.switchTo === "master"
        ? infoAfter.role === "master"
        : infoAfter.role === "slave" && infoAfter.master_host === bAddr.host && intField(infoAfter.master_port) === bAddr.port;
    if (ok || performance.now() > until) break;
    await Bun.sleep(50);
  }
  const checked = fetch ? await checkFetchConns(fetch.ns, fetch.aAddr) : { method: "unchecked" as const, open: null, detail: "A was stopped to release the hang" };
  return { infoAfter, observed, ok, fetch: checked };
}

/**
 * Are the replica's fetch connections to A closed? Stall: A's sockets on its port, in the kernel's
 * socket table (a closed peer leaves ESTABLISHED even when A does not read). Netns: the cut hides
 * the replica's FIN from A, so the replica's own sockets towards A are counted. Polls up to 1 s.
 */
async function checkFetchConns(ns: Netns | null, aAddr: NodeAddr): Promise<FetchCheck> {
  const match = (c: TcpConn) => (ns ? c.peer.host === aAddr.host && c.peer.port === aAddr.port : c.local.port === aAddr.port && c.local.host === aAddr.host);
  const until = performance.now() + 1000;
  for (;;) {
    const conns = establishedConns();
    if (conns === null) return { method: "unchecked", open: null, detail: "the kernel's socket table (sock_diag) cannot be read here" };
    const open = conns.filter(match);
    if (open.length === 0 || performance.now() > until) {
      return ns
        ? { method: "replica-side", open: open.length, detail: `ESTABLISHED connections to ${addrText(aAddr)} outside the namespace` }
        : { method: "master-side", open: open.length, detail: `ESTABLISHED connections on A's port ${aAddr.port}` };
    }
    await Bun.sleep(50);
  }
}
