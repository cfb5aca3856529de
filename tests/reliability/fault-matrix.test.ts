/**
 * Fault matrix: every fault kind of kvr master × every phase of a replica's sync, each case its
 * own `kvr master` and `kvr replica` (child processes, free ports). Asserted per case: the
 * expected outcome (the retry's error code, or success on the first attempt), the fault really
 * fired on the master, and — once cleared with SIGUSR2 — a completed sync whose files are
 * byte-identical, with no `.tmp` left and no partial file under a final name at any moment the
 * directory watcher observed.
 */
import { afterAll, expect, test } from "bun:test";
import { replyText } from "../../lib/resp/index.ts";
import { tempDir } from "../helpers/kvr.ts";
import {
  DirWatcher,
  FIXTURE,
  FIXTURE_SEQ,
  command,
  diffDir,
  fixtureExpected,
  generatedExpected,
  limiter,
  seedFixture,
  startKvr,
  until,
  type ExpectedFile,
  type Proc,
} from "./harness.ts";

/** The replica's stream log (not a checkpoint file). */
const STREAM_LOG = "kvr-stream.log";
const PW = "matrix-secret-5b1e";
const SPEC = "2x64KiB";
const LOADING = "LOADING kvrocks is restoring the db from backup";

interface Phase {
  name: string;
  /** The fault's trigger, or "runtime": added with KVR FAULT ADD once the replica streams. */
  trigger: string;
  /** The target starts with a complete checkpoint (the replica sends PSYNC). */
  seeded?: boolean;
  /** Run the replica without --once (a --once replica never sends PSYNC); done = the first full sync. */
  follow?: boolean;
}

const PHASES: Phase[] = [
  { name: "connect", trigger: "" },
  { name: "AUTH", trigger: "on=auth" },
  { name: "_db_name", trigger: "on=_db_name" },
  { name: "replconf", trigger: "on=replconf" },
  { name: "PSYNC", trigger: "on=psync", seeded: true, follow: true },
  { name: "_fetch_meta", trigger: "on=_fetch_meta" },
  { name: "size line", trigger: "on=_fetch_file" },
  // The checkpoint is 2 × 64 KiB SSTs first: byte 100000 is inside the second file.
  { name: "mid-file", trigger: "after-bytes=100000" },
  { name: "between files", trigger: "after-files=1" },
  { name: "stream", trigger: "runtime", seeded: true },
];

/** Fault kinds with parameters chosen so the harmless ones stay under the 1 s read deadline. */
const KINDS: Record<string, (phase: Phase) => string> = {
  stall: () => "stall",
  close: () => "close",
  reset: () => "reset",
  delay: () => "delay:ms=250",
  trickle: () => "trickle:bytes=32KiB,every=250ms",
  bandwidth: () => "bandwidth:rate=256KiB",
  error: (p) => (p.name === "PSYNC" ? `error:msg=${LOADING}` : "error"),
  refuse: () => "refuse",
  "blackhole-accept": () => "blackhole-accept",
};

type Outcome = { ok: true; why: string } | { ok: false; codes: string[]; why: string; ends?: boolean };
const ok = (why: string): Outcome => ({ ok: true, why });
const fail = (why: string, ...codes: string[]): Outcome => ({ ok: false, codes, why });
/** A failure a retry cannot fix: the run ends at once (exit 1), nothing is written. */
const ends = (why: string, code: string): Outcome => ({ ok: false, codes: [code], why, ends: true });

/** What must happen for `kind` in `phase`. */
function expected(kind: string, phase: Phase): Outcome {
  const p = phase.name;
  const late = ["size line", "mid-file", "between files", "stream"].includes(p);
  switch (kind) {
    case "stall":
      return fail("read deadline", "READ_TIMEOUT");
    case "close":
      return fail("EOF", "CLOSED");
    case "reset":
      return fail("RST", "RESET");
    case "delay":
    case "trickle":
    case "bandwidth":
      return ok("gaps stay under the read deadline");
    case "error":
      if (p === "AUTH") return ends("AUTH refused", "AUTH");
      // Untriggered ("at once"): AUTH is spared, the first command after it gets the error.
      if (p === "connect") return fail("a '-' line from the master after AUTH", "MASTER_ERROR");
      if (p === "replconf") return ok("a replconf error is ignored (old masters lack replconf)");
      if (p === "PSYNC") return fail("-LOADING: restart later", "LOADING");
      if (p === "stream") return ok("no commands on a stream: nothing to answer with an error");
      return fail("a '-' line from the master", "MASTER_ERROR");
    case "refuse":
      return late ? ok("live connections keep working; no new connection needed") : fail("next connect refused", "REFUSED");
    case "blackhole-accept":
      if (late) return ok("live connections keep working; no new connection needed");
      // The master swaps in the never-accepting listener (queue already full) before it answers
      // the triggering command, so the next connect cannot race the swap.
      return fail("next connect hangs", "CONNECT_TIMEOUT");
  }
  throw new Error(`no expectation for ${kind}`);
}

const run = limiter(10);
const started: Proc[] = [];
const cleanups: Array<() => void> = [];
afterAll(async () => {
  await Promise.all(started.map((p) => p.stop("SIGKILL")));
  for (const c of cleanups) c();
});

const tally = { cases: 0, failing: 0, ends: 0, ok: 0, settled: 0 };

async function runCase(kind: string, phase: Phase): Promise<void> {
  const want = expected(kind, phase);
  const spec = KINDS[kind](phase);
  const stream = phase.trigger === "runtime";
  const full = phase.trigger === "" ? spec : `${spec}${spec.includes(":") ? "," : ":"}${phase.trigger}`;
  const d = tempDir("kvr-matrix-");
  cleanups.push(d.cleanup);
  if (phase.seeded) seedFixture(d.path);
  const fixture = fixtureExpected();
  const final: ExpectedFile[] = stream ? fixture : generatedExpected(SPEC);

  const masterArgs = stream
    ? ["--dir", FIXTURE, "--seq", String(FIXTURE_SEQ), "--heartbeat", "200ms"]
    : ["--generate", SPEC, ...(full ? ["--fault", full] : [])];
  const master = await startKvr("master", masterArgs, { KVR_REQUIREPASS: PW });
  started.push(master);
  // Following the stream, the replica keeps its own log of received batches next to the checkpoint.
  const follows = stream || !!phase.follow;
  const own = follows ? [STREAM_LOG] : [];
  const watcher = new DirWatcher(d.path, phase.seeded ? [final, fixture] : [final], own);
  const replicaArgs = [
    "--dir", d.path, "--master", `127.0.0.1:${master.port}`,
    "--read-timeout", "1s", "--connect-timeout", "1s", "--stream-timeout", "1s", "--retry-delay", "100ms",
    ...(follows ? [] : ["--once"]),
  ];
  const replica = await startKvr("replica", replicaArgs, { KVR_MASTERAUTH: PW });
  started.push(replica);
  const ev = replica.kvr.events;
  const retries = () => ev.filter((e) => e.event === "retry");
  const connected = () => ev.filter((e) => e.event === "state" && e.state === "connected").length;
  try {
    if (stream) {
      await replica.kvr.waitEvent((e) => e.event === "state" && e.state === "connected", 10_000);
      expect(replyText(await command(master.port, ["KVR", "FAULT", "ADD", spec], PW))).toBe("OK");
    }
    await master.kvr.waitEvent((e) => e.event === "fault" && e.kind === kind, 10_000);
    if (want.ok) {
      if (stream) {
        await Bun.sleep(2500); // more than twice the stream deadline
        expect(retries()).toEqual([]);
        expect(ev.filter((e) => e.event === "state").at(-1)).toMatchObject({ state: "connected" });
        process.kill(master.pid, "SIGUSR2");
      } else if (phase.follow) {
        await replica.kvr.waitEvent((e) => e.event === "done", 15_000);
        expect(retries()).toEqual([]);
        const done = ev.findIndex((e) => e.event === "done");
        expect(ev.slice(0, done).filter((e) => e.event === "connect").length).toBe(1);
      } else {
        expect(await within(replica.kvr.exited, 15_000, () => diag(master, replica))).toBe(0);
        expect(retries()).toEqual([]);
        expect(ev.filter((e) => e.event === "connect").length).toBe(1);
      }
    } else if (want.ends) {
      expect(await within(replica.kvr.exited, 10_000, () => diag(master, replica))).toBe(1);
      expect(retries()).toEqual([]);
      expect(replica.kvr.stderr()).toContain(`attempt 1 failed: ${want.codes[0]}:`);
      expect(diffDir(d.path, [], own)).toEqual([]);
    } else {
      const r = await replica.kvr.waitEvent((e) => e.event === "retry", 10_000);
      expect({ kind, phase: phase.name, code: want.codes.includes(String(r.code)) ? "as expected" : r.code }).toEqual({ kind, phase: phase.name, code: "as expected" });
      expect(String(r.reason).length).toBeGreaterThan(10);
      process.kill(master.pid, "SIGUSR2");
      if (stream) await until(() => connected() >= 2, 10_000, "the stream to come back after the clear");
      else if (phase.follow) await replica.kvr.waitEvent((e) => e.event === "done", 15_000);
      else expect(await within(replica.kvr.exited, 15_000, () => diag(master, replica))).toBe(0);
      expect(retries().length).toBeGreaterThanOrEqual(1);
      if (["mid-file", "between files"].includes(phase.name) && kind !== "reset") {
        // The first file was complete before the fault: the attempt after the clear skips it.
        // (Not after an RST: the kernel drops received bytes the replica had not read yet.)
        const skips = ev.filter((e) => e.event === "skip").map((e) => Number(e.count));
        expect(Math.max(...skips)).toBeGreaterThanOrEqual(1);
      }
    }
    if (follows) expect(await replica.stop()).toBe(0);
    if (!stream && !(!want.ok && want.ends)) expect(ev.some((e) => e.event === "done")).toBe(true);
  } finally {
    await watcher.stop();
    await Promise.all([replica.stop("SIGKILL"), master.stop("SIGKILL")]);
  }
  // Sampling slows down when the machine is loaded; the point is that it looked during the run.
  expect(watcher.samples).toBeGreaterThanOrEqual(2);
  expect(watcher.violations).toEqual([]);
  if (want.ok || !want.ends) expect(diffDir(d.path, final, own)).toEqual([]);
  tally.cases++;
  if (want.ok) tally.ok++;
  else if (want.ends) tally.ends++;
  else tally.failing++;
}

/** `p`, or a failure naming what both processes said after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`not done within ${ms} ms\n${what()}`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}

function diag(master: Proc, replica: Proc): string {
  const tail = (p: Proc) => `events: ${JSON.stringify(p.kvr.events.slice(-12))}\nstderr: ${p.kvr.stderr().slice(-1500)}`;
  return `master ${tail(master)}\nreplica ${tail(replica)}`;
}

const ALL: Array<[string, Phase]> = Object.keys(KINDS).flatMap((k) => PHASES.map((p) => [k, p] as [string, Phase]));

for (const [kind, phase] of ALL) {
  const want = expected(kind, phase);
  const what = want.ok
    ? `succeeds on the first attempt (${want.why})`
    : want.ends
      ? `${want.codes[0]} (${want.why}): the run ends at once, exit 1, nothing written`
      : `${want.codes.join("|")} (${want.why}), retried; cleared → identical`;
  test.concurrent(`${kind} × ${phase.name}: ${what}`, () => run(() => runCase(kind, phase)).finally(() => tally.settled++), 90_000);
}

test(`fault matrix summary: ${Object.keys(KINDS).length} kinds × ${PHASES.length} phases = ${ALL.length} cases`, async () => {
  await until(() => tally.settled === ALL.length, 120_000, "every case", 100).catch(() => {});
  console.log(`fault matrix: ${tally.cases}/${ALL.length} cases passed (${tally.failing} fail-then-recover, ${tally.ends} end at once, ${tally.ok} succeed on the first attempt)`);
  expect(tally.cases).toBe(ALL.length);
}, 130_000);
