/** The drill's options, parsed and checked (UsageError → exit 2 before anything starts). */
import { parseDuration, parseHostPort, parseIntFlag, parsePositiveDuration, parseSize, single, UsageError } from "../ui/units.ts";
import type { NodeAddr } from "./node.ts";

export type CutMode = "stall" | "netns";
export type SwitchTo = "replica" | "master";
export type NewMaster = "kvr" | "blackhole";
export type APsync = "refuse" | "accept";
export type ScenarioName = "fetch-hang" | "slow-replica";

/** Per-scenario defaults of --budget and --give-up (documented in --help and the README). */
export const SCENARIO_DEFAULTS: Record<ScenarioName, { budget: string; giveUp: string }> = {
  // Kvrocks' acceptance test: SETNODES within 6 s.
  "fetch-hang": { budget: "6s", giveUp: "30s" },
  // A master with replication-send-timeout-ms (30 s) drops the replica: 30 s plus margin.
  "slow-replica": { budget: "35s", giveUp: "90s" },
};

/** --write-rate defaults of slow-replica: WriteBatches/s of the kvr master it starts; SETs/s of 1 KiB on a --master node. */
export const WRITE_RATE_DEFAULTS = { kvr: 20_000, node: 2000 } as const;

export interface DrillConfig {
  scenario: ScenarioName;
  cut: CutMode;
  /** Fraction 0 < f ≤ 1 of A's checkpoint bytes served before the cut. */
  cutAt: number;
  switchTo: SwitchTo;
  newMaster: NewMaster;
  budgetMs: number;
  giveUpMs: number;
  /** A running node to drill; null = start a kvr replica. */
  replica: NodeAddr | null;
  /** The node's password (requirepass) for the drill's own connections to it. */
  auth: string | undefined;
  /** The password masters A and B require: what the node sends as its masterauth. */
  mastersAuth: string | undefined;
  /** Master A's answer to the node's PSYNC: refuse (always a full sync) or accept (as Kvrocks). */
  aPsync: APsync;
  /** Leave a --replica node as the drill left it instead of putting its topology back. */
  keep: boolean;
  /** Drill a --replica node that is a master with slots or replicas (its data is replaced). */
  replaceData: boolean;
  advertiseHost: string;
  files: number;
  fileSize: number;
  /** A's rate limit in MB/s as kvr master and Kvrocks count them (MiB/s, like max-replication-mb). */
  rateMBps: number;
  /** True when --rate was not given: chosen so a full sync takes about 10 s. */
  rateAuto: boolean;
  readTimeoutMs: number;
  repeat: number;
  /** Run `kvr guard` on the node under test for the drill's duration (--guard). */
  guard: boolean;
  /** fetch-hang: after SETNODES, wait until the node streams from B (false: --no-recover). */
  recover: boolean;
  recoverTimeoutMs: number;
  /** slow-replica: the master to drill (a running node); null = start a kvr master. */
  master: NodeAddr | null;
  /** slow-replica: the kvr master's --send-timeout (0 = never drop); null with --master (the node's own setting). */
  sendTimeoutMs: number | null;
  /** slow-replica: WriteBatches/s of the kvr master, or SETs/s of 1 KiB on a --master node (0 = none). */
  writeRate: number;
}

/** Target duration of a full sync from A at the default rate. */
export const FULL_SYNC_TARGET_S = 10;

function oneOf<T extends string>(flag: string, v: unknown, allowed: readonly T[]): T {
  const s = String(v);
  if (!(allowed as readonly string[]).includes(s)) throw new UsageError(`--${flag}: '${s}' is not one of ${allowed.join(", ")}`);
  return s as T;
}

/** "30%", "0.3" → 0.3 (0 < f ≤ 1). */
export function parseFraction(flag: string, v: unknown): number {
  const s = String(v).trim();
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(s);
  const f = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!(f > 0 && f <= 1)) throw new UsageError(`--${flag}: '${s}' is not a share between 0 and 100% (examples: 30%, 0.3)`);
  return f;
}

/** Parse the cac options of `kvr drill`. */
export function parseDrillOptions(o: Record<string, unknown>): DrillConfig {
  const g = (k: string, flag: string, dflt: string) => single(flag, o[k]) ?? dflt;
  const scenario = oneOf("scenario", g("scenario", "scenario", "fetch-hang"), ["fetch-hang", "slow-replica"] as const);
  checkScenarioFlags(o, scenario);
  const files = parseIntFlag("files", g("files", "files", "64"), 1, 100_000);
  const fileSize = parseSize("file-size", g("fileSize", "file-size", "2MiB"));
  if (fileSize < 1) throw new UsageError("--file-size: must be at least 1 byte");
  const total = files * fileSize;
  let rateMBps: number;
  const rateAuto = o.rate === undefined;
  if (rateAuto) {
    rateMBps = Math.max(0.001, Math.round((total / 2 ** 20 / FULL_SYNC_TARGET_S) * 1000) / 1000);
  } else {
    const s = single("rate", o.rate)!.trim();
    if (!/^\d+(\.\d+)?$/.test(s) || Number(s) <= 0) throw new UsageError(`--rate: '${s}' is not a positive number of MB/s (example: 12.5)`);
    rateMBps = Number(s);
  }
  const dflt = SCENARIO_DEFAULTS[scenario];
  const giveUpMs = parseDuration("give-up", g("giveUp", "give-up", dflt.giveUp));
  // A --give-up below the default budget (a short drill) brings the budget down with it.
  const budgetMs = o.budget === undefined ? Math.min(parseDuration("budget", dflt.budget), giveUpMs) : parsePositiveDuration("budget", g("budget", "budget", dflt.budget));
  if (giveUpMs < budgetMs) throw new UsageError(`--give-up (${giveUpMs} ms) must be at least --budget (${budgetMs} ms)`);
  const replicaRaw = single("replica", o.replica);
  const auth = single("auth", o.auth) ?? (process.env.KVR_AUTH || undefined);
  // Clusters normally share one password: the node's masterauth is its requirepass unless told.
  const mastersRaw = single("masters-auth", o.mastersAuth) ?? (process.env.KVR_MASTERS_AUTH || undefined);
  const mastersAuth = mastersRaw === undefined ? auth : mastersRaw || undefined;
  const cut = oneOf("cut", g("cut", "cut", "stall"), ["stall", "netns"] as const);
  const replica = replicaRaw === undefined ? null : parseHostPort("replica", replicaRaw);
  const advertiseHost = g("advertiseHost", "advertise-host", "127.0.0.1").trim();
  if (!advertiseHost) throw new UsageError("--advertise-host: empty");
  const newMaster = oneOf("new-master", g("newMaster", "new-master", "kvr"), ["kvr", "blackhole"] as const);
  if (newMaster === "blackhole" && !/^\d+\.\d+\.\d+\.\d+$/.test(advertiseHost)) {
    throw new UsageError(`--new-master blackhole needs an IPv4 --advertise-host (got '${advertiseHost}')`);
  }
  const masterRaw = single("master", o.master);
  const master = masterRaw === undefined ? null : parseHostPort("master", masterRaw);
  if (master && o.sendTimeout !== undefined) {
    throw new UsageError("--send-timeout sets the kvr master the drill starts; a --master node has its own (Kvrocks: replication-send-timeout-ms)");
  }
  const sendTimeoutMs = master ? null : parseDuration("send-timeout", g("sendTimeout", "send-timeout", "30s"));
  const writeRate =
    o.writeRate === undefined ? (master ? WRITE_RATE_DEFAULTS.node : WRITE_RATE_DEFAULTS.kvr) : parseIntFlag("write-rate", single("write-rate", o.writeRate), 0, 1_000_000);
  const recoverTimeoutMs = parsePositiveDuration("recover-timeout", g("recoverTimeout", "recover-timeout", "60s"));
  return {
    scenario,
    cut,
    cutAt: parseFraction("cut-at", g("cutAt", "cut-at", "30%")),
    switchTo: oneOf("switch-to", g("switchTo", "switch-to", "replica"), ["replica", "master"] as const),
    newMaster,
    budgetMs,
    giveUpMs,
    replica,
    auth,
    mastersAuth,
    aPsync: oneOf("a-psync", g("aPsync", "a-psync", "refuse"), ["refuse", "accept"] as const),
    keep: !!o.keep,
    replaceData: !!o.replaceData,
    advertiseHost,
    files,
    fileSize,
    rateMBps,
    rateAuto,
    readTimeoutMs: parseDuration("read-timeout", g("readTimeout", "read-timeout", "3s")),
    repeat: parseIntFlag("repeat", g("repeat", "repeat", "1"), 1, 1000),
    guard: !!o.guard,
    // A blackhole B can never be recovered to: the phase runs only when asked for by its timeout.
    recover: o.recover !== false && (newMaster !== "blackhole" || o.recoverTimeout !== undefined),
    recoverTimeoutMs,
    master,
    sendTimeoutMs,
    writeRate,
  };
}

/** Flags that only one scenario reads (cac names), with that scenario. */
const SCENARIO_FLAGS: Array<[string, string, ScenarioName]> = [
  ["cut", "--cut", "fetch-hang"],
  ["cutAt", "--cut-at", "fetch-hang"],
  ["switchTo", "--switch-to", "fetch-hang"],
  ["newMaster", "--new-master", "fetch-hang"],
  ["replica", "--replica", "fetch-hang"],
  ["mastersAuth", "--masters-auth", "fetch-hang"],
  ["aPsync", "--a-psync", "fetch-hang"],
  ["keep", "--keep", "fetch-hang"],
  ["replaceData", "--replace-data", "fetch-hang"],
  ["files", "--files", "fetch-hang"],
  ["fileSize", "--file-size", "fetch-hang"],
  ["rate", "--rate", "fetch-hang"],
  ["readTimeout", "--read-timeout", "fetch-hang"],
  ["guard", "--guard", "fetch-hang"],
  ["advertiseHost", "--advertise-host", "fetch-hang"],
  ["recover", "--no-recover", "fetch-hang"],
  ["recoverTimeout", "--recover-timeout", "fetch-hang"],
  ["master", "--master", "slow-replica"],
  ["sendTimeout", "--send-timeout", "slow-replica"],
  ["writeRate", "--write-rate", "slow-replica"],
];

/** A flag of the other scenario is a usage error (it would be silently ignored). */
function checkScenarioFlags(o: Record<string, unknown>, scenario: ScenarioName): void {
  for (const [key, flag, owner] of SCENARIO_FLAGS) {
    const given = key === "recover" ? o.recover === false : o[key] !== undefined;
    if (given && owner !== scenario) throw new UsageError(`${flag} applies to --scenario ${owner}, not ${scenario}`);
  }
}
