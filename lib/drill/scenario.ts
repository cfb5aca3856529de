/**
 * One drill run, as named phases: start masters A and B, bring up the replica under test, make it
 * a slave of A (SETNODEID + SETNODES), wait until A has served --cut-at of its bytes, cut A, send
 * SETNODES moving the replica away while PINGing it, verify, verdict. A hung SETNODES is cut at
 * --give-up; the cut is then released (A stopped) and the time the node took to answer again is
 * measured. Everything started is registered with the Cleanup.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatNodes, type ClusterNode, type Topology } from "../cluster/index.ts";
import { isNetError, listenNoAccept, type Conn } from "../net/index.ts";
import { replyText, RespError, SimpleString } from "../resp/index.ts";
import { formatBytes, formatMs } from "../ui/units.ts";
import { spawnSelf, waitListening, type Child } from "./children.ts";
import type { Cleanup } from "./cleanup.ts";
import { DrillError } from "./errors.ts";
import { guardReport, startGuard, type GuardReport } from "./guard.ts";
import { createNetns, type Netns } from "./netns.ts";
import { addrText, command, info, openNode, type NodeAddr } from "./node.ts";
import type { DrillConfig } from "./options.ts";
import { abortable, Pinger, type PingStats } from "./pinger.ts";
import { establishedConns, type TcpConn } from "./sys.ts";

export interface Phase {
  name: string;
  /** Start, ms since the run began. */
  atMs: number;
  ms: number;
  detail: string;
}

export interface FetchCheck {
  /** How it was checked: ss on A's port (A's side), ss towards A (the replica's side), INFO, or not at all. */
  method: "ss-master-side" | "ss-replica-side" | "info" | "unchecked";
  /** Fetch connections between the replica and A still ESTABLISHED after SETNODES; null = unknown. */
  open: number | null;
  detail: string;
}

export interface RunResult {
  run: number;
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
  infoBefore: Record<string, string> | null;
  infoAfter: Record<string, string> | null;
  /** --guard: what kvr guard did during the run; null without --guard. */
  guard: GuardReport | null;
}

export interface RunContext {
  cfg: DrillConfig;
  run: number;
  cleanup: Cleanup;
  signal: AbortSignal;
  log: (msg: string) => void;
  /** Called as each phase ends (live human/--json progress). */
  onPhase: (p: Phase) => void;
}

/**
 * After the cut, before SETNODES: data already in flight drains and the replica's fetch workers
 * sit in read, as in the incident.
 */
const SETTLE_MS = 500;

const ALL_SLOTS: Array<[number, number]> = [[0, 16383]];

/** A random 40-character hex node id. */
export function nodeId(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(20))).toString("hex");
}

const num = (v: string | undefined): number | null => (v !== undefined && /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : null);

/** Run the scenario once. Throws DrillError when the drill itself cannot run. */
export async function runOnce(ctx: RunContext): Promise<RunResult> {
  const { cfg, cleanup, signal, log } = ctx;
  const t0 = performance.now();
  const startedAt = Date.now();
  const phases: Phase[] = [];
  const rel = () => Math.round(performance.now() - t0);
  async function phase<T>(name: string, fn: () => Promise<T>, detail: (v: T) => string): Promise<T> {
    const at = performance.now();
    const v = await abortable(fn(), signal).catch((e) => {
      if (signal.aborted) throw new DrillError("interrupted");
      throw e;
    });
    const p: Phase = { name, atMs: Math.round(at - t0), ms: Math.round(performance.now() - at), detail: detail(v) };
    phases.push(p);
    ctx.onPhase(p);
    return v;
  }

  const open = async (what: string) => {
    const c = await openNode(rAddr, "the node under test", { auth: cfg.auth, signal });
    cleanup.add(`closing the ${what} connection`, () => c.destroy());
    return c;
  };
  // A node given by address is checked first: unreachable → exit 4 before anything starts.
  let rAddr: NodeAddr = cfg.replica ?? { host: "127.0.0.1", port: 0 };
  const early = cfg.replica ? await open("control") : null;

  // ---- network namespace (kernel-level cut) ----
  let ns: Netns | null = null;
  if (cfg.cut === "netns") {
    ns = await phase(
      "netns",
      async () => {
        const n = await createNetns(ctx.run, log);
        cleanup.add(`removing namespace ${n.name}`, () => n.remove());
        return n;
      },
      (n) => `namespace ${n.name}, veth ${n.hostIf} ${n.hostAddr}/30 ↔ ${n.nsIf} ${n.nsAddr}/30`,
    );
  }
  const aHost = ns ? ns.nsAddr : cfg.advertiseHost;
  const total = cfg.files * cfg.fileSize;

  // ---- masters A and B ----
  const { a, aAddr, b } = await phase(
    "start-masters",
    async () => {
      const startA = async () => {
        const child = spawnSelf("master A", ["master", "--generate", `${cfg.files}x${cfg.fileSize}`, "--rate", String(cfg.rateMBps), "--bind", aHost, "--port", "0"], {
          wrap: ns?.wrap,
        });
        cleanup.add("stopping master A", () => child.stop());
        const l = await waitListening(child);
        return { child, addr: { host: aHost, port: l.port } };
      };
      const startB = async (): Promise<{ kind: "kvr" | "blackhole"; addr: NodeAddr }> => {
        if (cfg.newMaster === "blackhole") {
          const bh = await listenNoAccept(cfg.advertiseHost, 0).catch((e) => {
            throw new DrillError(`cannot open the blackhole address for master B on ${cfg.advertiseHost}: ${(e as Error).message}`);
          });
          cleanup.add("closing the blackhole listener", () => bh.close());
          return { kind: "blackhole", addr: { host: cfg.advertiseHost, port: bh.port } };
        }
        const child = spawnSelf("master B", ["master", "--generate", "1x64KiB", "--bind", cfg.advertiseHost, "--port", "0"]);
        cleanup.add("stopping master B", () => child.stop());
        const l = await waitListening(child);
        return { kind: "kvr", addr: { host: cfg.advertiseHost, port: l.port } };
      };
      const [ra, rb] = await Promise.all([startA(), startB()]);
      return { a: ra.child, aAddr: ra.addr, b: rb };
    },
    (v) =>
      `A ${addrText(v.aAddr)} (${cfg.files} files, ${formatBytes(total)}, ${cfg.rateMBps} MB/s), B ${addrText(v.b.addr)} (${v.b.kind === "kvr" ? "kvr master" : "blackhole: never answers"})`,
  );

  // ---- the replica under test ----
  const replica = await phase(
    "start-replica",
    async () => {
      if (cfg.replica) return { kind: "external" as const, addr: cfg.replica };
      const dir = mkdtempSync(join(tmpdir(), "kvr-drill-replica-"));
      cleanup.add("removing the replica's directory", () => rmSync(dir, { recursive: true, force: true }));
      const env: Record<string, string> = {};
      if (cfg.auth) env.KVR_REQUIREPASS = cfg.auth;
      const child = spawnSelf("replica", ["replica", "--dir", dir, "--bind", "127.0.0.1", "--port", "0", "--read-timeout", `${cfg.readTimeoutMs}ms`], { env });
      cleanup.add("stopping the replica", () => child.stop());
      const l = await waitListening(child);
      return { kind: "kvr" as const, addr: { host: "127.0.0.1", port: l.port }, child };
    },
    (r) => (r.kind === "kvr" ? `kvr replica on ${addrText(r.addr)}` : `node under test ${addrText(r.addr)}`),
  );
  rAddr = replica.addr;
  let ctl = early ?? (await open("control"));

  // ---- --guard: kvr guard watching the node under test until the run ends ----
  const guard = cfg.guard
    ? await phase(
        "start-guard",
        () => startGuard(rAddr, cfg.readTimeoutMs, cfg.auth, cleanup),
        (g) => `kvr guard (pid ${g.child.pid}) watches ${addrText(rAddr)}: destroys its sockets to its master idle for ${formatMs(g.readTimeoutMs)} while it syncs or hangs`,
      )
    : null;

  // ---- node ids and topology version 1: a slave of A ----
  const idA = nodeId();
  const idB = nodeId();
  const { idR, v1 } = await phase(
    "topology-v1",
    async () => {
      const myid = await command(ctl, ["CLUSTERX", "MYID"], 5000).catch((e) => {
        throw new DrillError(`the node under test did not answer CLUSTERX MYID: ${(e as Error).message}`);
      });
      if (myid instanceof RespError) throw new DrillError(`the node under test refused CLUSTERX (${myid.message}): drill a node in cluster mode`);
      let id = Buffer.isBuffer(myid) ? myid.toString("utf8") : "";
      if (id.length !== 40) {
        id = nodeId();
        const r = await command(ctl, ["CLUSTERX", "SETNODEID", id], 5000);
        if (!(r instanceof SimpleString)) throw new DrillError(`the node under test refused CLUSTERX SETNODEID: ${replyText(r)}`);
      }
      const ver = await command(ctl, ["CLUSTERX", "VERSION"], 5000);
      const cur = Buffer.isBuffer(ver) || typeof ver === "number" ? Number(replyText(ver)) : NaN;
      if (!Number.isInteger(cur)) throw new DrillError(`the node under test answered CLUSTERX VERSION with ${replyText(ver)}`);
      const v = Math.max(cur + 1, 1);
      const t = topology([
        master(idA, aAddr, ALL_SLOTS),
        slave(id, rAddr, idA),
        master(idB, b.addr, []),
      ]);
      const r = await command(ctl, ["CLUSTERX", "SETNODES", formatNodes(t), String(v)], 10_000).catch((e) => {
        throw new DrillError(`the node under test did not answer SETNODES version ${v}: ${(e as Error).message}`);
      });
      if (!(r instanceof SimpleString)) throw new DrillError(`the node under test rejected SETNODES version ${v}: ${replyText(r)}`);
      return { idR: id, v1: v };
    },
    (v) => `SETNODEID ${v.idR.slice(0, 8)}…, SETNODES version ${v.v1}: slave of A`,
  );
  const v2 = v1 + 1;

  // ---- wait until A has served --cut-at of its bytes ----
  const aConn = await openNode(aAddr, "master A", { signal }).catch((e) => {
    throw new DrillError((e as Error).message);
  });
  cleanup.add("closing the connection to master A", () => aConn.destroy());
  const sync = await phase(
    "sync",
    () => waitForBytes(aConn, cfg.cutAt, cfg.giveUpMs),
    (s) => (s.stuck ? `A served ${formatBytes(s.sent)} and then nothing for ${formatMs(cfg.giveUpMs)}` : `A served ${formatBytes(s.sent)} of ${formatBytes(s.total)} (${pct(s.sent, s.total)})`),
  );
  const infoBefore = await info(ctl, "replication", 5000, "the node under test").catch(() => null);
  const base = {
    run: ctx.run,
    masterA: { host: aAddr.host, port: aAddr.port, files: cfg.files, bytes: total, rateMBps: cfg.rateMBps, pid: a.pid },
    masterB: { kind: b.kind, host: b.addr.host, port: b.addr.port },
    replica: { kind: replica.kind, host: rAddr.host, port: rAddr.port, nodeId: idR },
    versions: { v1, v2 },
  };
  const guarded = () => (guard ? guardReport(guard, startedAt) : null);
  if (sync.stuck) {
    const observed = infoBefore ? `${infoBefore.role ?? "?"}, ${infoBefore.kvr_state ?? infoBefore.master_link_status ?? ""}` : "no INFO";
    return {
      ...base,
      verdict: "FAIL",
      reasons: [`the replica did not fetch from A: ${formatBytes(sync.sent)} served, then nothing for ${formatMs(cfg.giveUpMs)} (replica: ${observed})`],
      phases,
      cut: { mode: cfg.cut, method: "none", bytesSent: sync.sent, totalBytes: sync.total, fraction: sync.sent / Math.max(1, sync.total), netns: ns?.name ?? null },
      setnodes: { ms: 0, reply: null, hung: false, withinBudget: false },
      ping: { sent: 0, answered: 0, longestGapMs: 0, slowestMs: 0 },
      fetchConnections: { method: "unchecked", open: null, detail: "not reached" },
      role: { expected: "", observed: "", ok: false },
      recovery: null,
      infoBefore,
      infoAfter: null,
      guard: guarded(),
    };
  }

  const pingConn = await open("PING");

  // ---- cut A ----
  const cut = await phase(
    "cut",
    async () => {
      const last = await aInfoBytes(aConn).catch(() => null);
      const cutAt = performance.now();
      const sent = last?.sent ?? sync.sent;
      const total = last?.total ?? sync.total;
      let method: string;
      if (ns) {
        aConn.destroy();
        await ns.cut();
        method = `link ${ns.nsIf} down inside ${ns.name}`;
      } else {
        // A stall applies to every live connection, this one included: +OK or silence both
        // mean it is in force. An error (or a closed connection) falls back to SIGUSR1.
        const r = await command(aConn, ["KVR", "FAULT", "ADD", "stall"], SETTLE_MS).then(
          (v) => v,
          (e) => (isNetError(e, "READ_TIMEOUT") ? "silent" : null),
        );
        if (r instanceof SimpleString || r === "silent") method = "KVR FAULT ADD stall";
        else {
          a.kill("SIGUSR1");
          method = "SIGUSR1 to A (stall all)";
        }
        aConn.destroy();
      }
      const left = SETTLE_MS - (performance.now() - cutAt);
      if (left > 0) await Bun.sleep(left);
      return { sent, total, method };
    },
    (c) => `${c.method}; A had served ${formatBytes(c.sent)} of ${formatBytes(c.total)} (${pct(c.sent, c.total)}); ${SETTLE_MS} ms for data in flight to drain`,
  );

  // ---- SETNODES version 2, timed, with PING on a second connection (opened before the cut) ----
  const pinger = new Pinger(pingConn);
  const t2 = topology(
    cfg.switchTo === "master"
      ? [master(idR, rAddr, ALL_SLOTS), master(idA, aAddr, []), master(idB, b.addr, [])]
      : [master(idB, b.addr, ALL_SLOTS), slave(idR, rAddr, idB), master(idA, aAddr, [])],
  );
  const sn = await phase(
    "setnodes-v2",
    async () => {
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
        const r = await abortable(command(ctl, ["CLUSTERX", "SETNODES", formatNodes(t2), String(v2)], 0), giveUp.signal);
        reply = replyText(r);
      } catch (e) {
        if (signal.aborted) throw new DrillError("interrupted");
        if (giveUp.signal.aborted) hung = true;
        else reply = `(connection failed: ${(e as Error).message})`;
      } finally {
        clearTimeout(timer);
        signal.removeEventListener("abort", onOuter);
      }
      const ms = Math.round((performance.now() - sent) * 10) / 10;
      if (hung) ctl.destroy();
      return { ms, reply, hung };
    },
    (s) => (s.hung ? `no reply within --give-up ${formatMs(cfg.giveUpMs)}: HUNG` : `reply ${s.reply} after ${formatMs(s.ms)}`),
  );

  // ---- after a hang: release the cut (stop A) and time the node's first answer ----
  let recovery: RunResult["recovery"] = null;
  if (sn.hung) {
    recovery = await phase(
      "release",
      async () => {
        const at = performance.now();
        if (ns) await ns.restore().catch((e) => log((e as Error).message));
        a.kill("SIGKILL");
        await a.exited;
        const pong = await pinger.firstAnswerAfter(at, cfg.giveUpMs);
        return { releasedAfterMs: Math.round(at - t0), answeredAfterMs: pong === null ? null : Math.round(pong - at) };
      },
      (r) => (r.answeredAfterMs === null ? `A stopped; the node did not answer PING within ${formatMs(cfg.giveUpMs)}` : `A stopped; the node answered PING again after ${formatMs(r.answeredAfterMs)}`),
    );
  }
  const ping = await pinger.stop();

  // ---- verify: role in INFO, fetch connections to A closed ----
  const expected = cfg.switchTo === "master" ? "role:master" : `role:slave master ${addrText(b.addr)}`;
  const verify = await phase(
    "verify",
    async () => {
      if (ctl.isClosed) ctl = await open("verify").catch(() => ctl);
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
            : infoAfter.role === "slave" && infoAfter.master_host === b.addr.host && num(infoAfter.master_port) === b.addr.port;
        if (ok || performance.now() > until) break;
        await Bun.sleep(50);
      }
      const fetch = sn.hung ? { method: "unchecked" as const, open: null, detail: "A was stopped to release the hang" } : await checkFetchConns(ns, aAddr, infoAfter);
      return { infoAfter, observed, ok, fetch };
    },
    (v) => `INFO ${v.observed} (${v.ok ? "as expected" : `expected ${expected}`}); fetch connections to A still open: ${v.fetch.open ?? "unknown"} (${v.fetch.detail})`,
  );

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

  return {
    ...base,
    guard: guarded(),
    verdict: reasons.length === 0 ? "PASS" : "FAIL",
    reasons,
    phases,
    cut: { mode: cfg.cut, method: cut.method, bytesSent: cut.sent, totalBytes: cut.total, fraction: Math.round((cut.sent / cut.total) * 1000) / 1000, netns: ns?.name ?? null },
    setnodes: { ms: sn.ms, reply: sn.reply, hung: sn.hung, withinBudget },
    ping,
    fetchConnections: verify.fetch,
    role: { expected, observed: verify.observed, ok: verify.ok },
    recovery,
    infoBefore,
    infoAfter: verify.infoAfter,
  };
}

function topology(nodes: ClusterNode[]): Topology {
  return { nodes };
}
function master(id: string, a: NodeAddr, slots: Array<[number, number]>): ClusterNode {
  return { id, host: a.host, port: a.port, role: "master", masterId: "-", slots };
}
function slave(id: string, a: NodeAddr, masterId: string): ClusterNode {
  return { id, host: a.host, port: a.port, role: "slave", masterId, slots: [] };
}
const pct = (a: number, b: number) => `${b > 0 ? Math.round((a / b) * 100) : 0}%`;

/** A's own count of file bytes sent and its checkpoint size, from its INFO. */
async function aInfoBytes(conn: Conn): Promise<{ sent: number; total: number }> {
  const i = await info(conn, null, 3000, "master A");
  const sent = num(i.kvr_bytes_sent);
  const total = num(i.kvr_checkpoint_bytes);
  if (sent === null || total === null) throw new DrillError("master A's INFO has no kvr_bytes_sent / kvr_checkpoint_bytes");
  return { sent, total };
}

/**
 * Poll A's INFO until it has sent `fraction` of its checkpoint bytes. `stuck` when the count did
 * not grow for `idleMs` (the replica is not fetching).
 */
async function waitForBytes(conn: Conn, fraction: number, idleMs: number): Promise<{ sent: number; total: number; stuck: boolean }> {
  let lastSent = -1;
  let lastChange = performance.now();
  for (;;) {
    const { sent, total } = await aInfoBytes(conn);
    if (total <= 0) throw new DrillError("master A reports an empty checkpoint (kvr_checkpoint_bytes:0)");
    if (sent >= fraction * total) return { sent, total, stuck: false };
    const now = performance.now();
    if (sent !== lastSent) {
      lastSent = sent;
      lastChange = now;
    } else if (now - lastChange > idleMs) return { sent, total, stuck: true };
    await Bun.sleep(20);
  }
}

/**
 * Are the replica's fetch connections to A closed? Stall: A's sockets on its port, seen by `ss`
 * (a closed peer leaves ESTABLISHED even when A does not read). Netns: the cut hides the replica's
 * FIN from A, so the replica's own sockets towards A are counted. Polls up to 1 s.
 */
async function checkFetchConns(ns: Netns | null, aAddr: NodeAddr, infoAfter: Record<string, string> | null): Promise<FetchCheck> {
  const match = (c: TcpConn) => (ns ? c.peer.host === aAddr.host && c.peer.port === aAddr.port : c.local.port === aAddr.port && c.local.host === aAddr.host);
  const until = performance.now() + 1000;
  for (;;) {
    const conns = await establishedConns();
    if (conns === null) break;
    const open = conns.filter(match);
    if (open.length === 0 || performance.now() > until) {
      return ns
        ? { method: "ss-replica-side", open: open.length, detail: `ss: ESTABLISHED connections to ${addrText(aAddr)} outside the namespace` }
        : { method: "ss-master-side", open: open.length, detail: `ss: ESTABLISHED connections on A's port ${aAddr.port}` };
    }
    await Bun.sleep(50);
  }
  const n = num(infoAfter?.kvr_fetch_connections);
  if (n !== null) return { method: "info", open: n, detail: "the replica's INFO kvr_fetch_connections (ss is not available)" };
  return { method: "unchecked", open: null, detail: "ss is not available and the node does not report kvr_fetch_connections" };
}
