/** The drill's options, parsed and checked (UsageError → exit 2 before anything starts). */
import { parseDuration, parseHostPort, parseIntFlag, parseSize, UsageError } from "../ui/units.ts";
import type { NodeAddr } from "./node.ts";

export type CutMode = "stall" | "netns";
export type SwitchTo = "replica" | "master";
export type NewMaster = "kvr" | "blackhole";
export type APsync = "refuse" | "accept";

export interface DrillConfig {
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

function single(flag: string, v: unknown): unknown {
  if (Array.isArray(v)) throw new UsageError(`--${flag} was given more than once`);
  return v;
}

/** Parse the cac options of `kvr drill`. */
export function parseDrillOptions(o: Record<string, unknown>): DrillConfig {
  const g = (k: string, flag: string, dflt: string) => String(single(flag, o[k]) ?? dflt);
  const files = parseIntFlag("files", g("files", "files", "64"), 1, 100_000);
  const fileSize = parseSize("file-size", g("fileSize", "file-size", "2MiB"));
  if (fileSize < 1) throw new UsageError("--file-size: must be at least 1 byte");
  const total = files * fileSize;
  let rateMBps: number;
  const rateAuto = o.rate === undefined;
  if (rateAuto) {
    rateMBps = Math.max(0.001, Math.round((total / 2 ** 20 / FULL_SYNC_TARGET_S) * 1000) / 1000);
  } else {
    const s = String(single("rate", o.rate)).trim();
    if (!/^\d+(\.\d+)?$/.test(s) || Number(s) <= 0) throw new UsageError(`--rate: '${s}' is not a positive number of MB/s (example: 12.5)`);
    rateMBps = Number(s);
  }
  const budgetMs = parseDuration("budget", g("budget", "budget", "6s"));
  const giveUpMs = parseDuration("give-up", g("giveUp", "give-up", "30s"));
  if (budgetMs <= 0) throw new UsageError("--budget: must be more than 0");
  if (giveUpMs < budgetMs) throw new UsageError(`--give-up (${giveUpMs} ms) must be at least --budget (${budgetMs} ms)`);
  const replicaRaw = single("replica", o.replica);
  const auth = o.auth !== undefined ? String(single("auth", o.auth)) : process.env.KVR_AUTH || undefined;
  // Clusters normally share one password: the node's masterauth is its requirepass unless told.
  const mastersRaw = o.mastersAuth !== undefined ? String(single("masters-auth", o.mastersAuth)) : process.env.KVR_MASTERS_AUTH || undefined;
  const mastersAuth = mastersRaw === undefined ? auth : mastersRaw || undefined;
  const cut = oneOf("cut", g("cut", "cut", "stall"), ["stall", "netns"] as const);
  const replica = replicaRaw === undefined ? null : parseHostPort("replica", replicaRaw);
  const advertiseHost = g("advertiseHost", "advertise-host", "127.0.0.1").trim();
  if (!advertiseHost) throw new UsageError("--advertise-host: empty");
  const newMaster = oneOf("new-master", g("newMaster", "new-master", "kvr"), ["kvr", "blackhole"] as const);
  if (newMaster === "blackhole" && !/^\d+\.\d+\.\d+\.\d+$/.test(advertiseHost)) {
    throw new UsageError(`--new-master blackhole needs an IPv4 --advertise-host (got '${advertiseHost}')`);
  }
  return {
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
    advertiseHost,
    files,
    fileSize,
    rateMBps,
    rateAuto,
    readTimeoutMs: parseDuration("read-timeout", g("readTimeout", "read-timeout", "3s")),
    repeat: parseIntFlag("repeat", g("repeat", "repeat", "1"), 1, 1000),
    guard: !!o.guard,
  };
}
