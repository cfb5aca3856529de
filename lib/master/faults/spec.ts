/**
 * Fault spec grammar: `kind[:key=value,...]`. Keys are the kind's parameters and the triggers
 * after-bytes= (size, per connection, counted over file bytes sent), after-files=, on=<command>,
 * after-ms= (duration), conns=<n>, and the flag `once`. A value may hold commas when the pieces
 * after it are not `key=` forms (so `msg=` can be a sentence).
 */
import { parseDuration, parseIntFlag, parseSize, UsageError } from "../../ui/units.ts";
import { bandwidth } from "./bandwidth.ts";
import { blackholeAccept } from "./blackhole.ts";
import { close } from "./close.ts";
import { delay } from "./delay.ts";
import { error } from "./error.ts";
import { refuse } from "./refuse.ts";
import { reset } from "./reset.ts";
import { stall } from "./stall.ts";
import { trickle } from "./trickle.ts";
import type { FaultKind, Params, ParamType } from "./types.ts";

/** Every fault kind, by name. */
export const KINDS: Record<string, FaultKind> = Object.fromEntries(
  [stall, close, reset, delay, bandwidth, trickle, error, refuse, blackholeAccept].map((k) => [k.kind, k]),
);

export interface Triggers {
  afterBytes?: number;
  afterFiles?: number;
  /** Lower-case command name. */
  on?: string;
  afterMs?: number;
  conns?: number;
  once?: boolean;
}

export interface FaultSpec {
  /** The spec as given. */
  text: string;
  kind: FaultKind;
  params: Params;
  triggers: Triggers;
}

const TRIGGERS: Record<string, ParamType | "flag"> = {
  "after-bytes": "size",
  "after-files": "int",
  on: "string",
  "after-ms": "duration",
  conns: "int",
  once: "flag",
};

function bad(text: string, why: string): UsageError {
  return new UsageError(`--fault: '${text}': ${why}`);
}

function convert(text: string, key: string, type: ParamType, v: string): string | number {
  try {
    switch (type) {
      case "size":
        return parseSize(`fault ${key}`, v);
      case "duration":
        return parseDuration(`fault ${key}`, v);
      case "int":
        return parseIntFlag(`fault ${key}`, v);
      default:
        return v;
    }
  } catch (e) {
    throw bad(text, `${key}=${v}: ${(e as Error).message.replace(/^--fault \S+: /, "")}`);
  }
}

/** Parse one spec; throws UsageError with a message saying what is accepted. */
export function parseFault(text: string): FaultSpec {
  const t = text.trim();
  const colon = t.indexOf(":");
  const name = (colon < 0 ? t : t.slice(0, colon)).toLowerCase();
  const kind = KINDS[name];
  if (!kind) throw bad(t, `unknown fault kind '${name}' (kinds: ${Object.keys(KINDS).join(", ")})`);
  const known = (k: string) => k in TRIGGERS || k in kind.params;
  const pairs: Array<[string, string | null]> = [];
  if (colon >= 0) {
    for (const piece of t.slice(colon + 1).split(",")) {
      const eq = piece.indexOf("=");
      const key = (eq < 0 ? piece : piece.slice(0, eq)).trim().toLowerCase();
      if (known(key) && (eq >= 0 || TRIGGERS[key] === "flag")) pairs.push([key, eq < 0 ? null : piece.slice(eq + 1)]);
      else if (pairs.length && pairs[pairs.length - 1][1] !== null && kind.params[pairs[pairs.length - 1][0]] === "string")
        pairs[pairs.length - 1][1] += "," + piece;
      else {
        const keys = [...Object.keys(kind.params).map((k) => `${k}=`), "after-bytes=", "after-files=", "on=", "after-ms=", "conns=", "once"];
        throw bad(t, `unknown or malformed '${piece}' (${kind.kind} accepts: ${keys.join(", ")})`);
      }
    }
  }
  const params: Params = { ...(kind.defaults ?? {}) };
  const triggers: Triggers = {};
  for (const [key, raw] of pairs) {
    if (key === "once") {
      if (raw !== null && !/^(1|true|yes)$/i.test(raw)) throw bad(t, "once takes no value");
      triggers.once = true;
      continue;
    }
    const v = (raw ?? "").trim();
    if (v === "" && key !== "msg") throw bad(t, `${key}= needs a value`);
    if (key in kind.params) {
      params[key] = convert(t, key, kind.params[key], key === "msg" ? (raw ?? "") : v);
      continue;
    }
    const type = TRIGGERS[key] as ParamType;
    const val = convert(t, key, type, v);
    if (key === "after-bytes") triggers.afterBytes = val as number;
    else if (key === "after-files") triggers.afterFiles = val as number;
    else if (key === "after-ms") triggers.afterMs = val as number;
    else if (key === "on") triggers.on = String(val).toLowerCase();
    else if (key === "conns") {
      if ((val as number) < 1) throw bad(t, "conns= must be at least 1");
      triggers.conns = val as number;
    }
  }
  if (kind.kind === "trickle" && !(Number(params.every) > 0)) throw bad(t, "every= must be above 0");
  if (kind.kind === "bandwidth" && !(Number(params.rate) > 0)) throw bad(t, "rate= must be above 0");
  return { text: t, kind, params, triggers };
}

/** Describe which trigger conditions a spec has, for logs: "after-bytes=1048576,once" or "immediate". */
export function triggerText(tr: Triggers): string {
  const parts: string[] = [];
  if (tr.on !== undefined) parts.push(`on=${tr.on}`);
  if (tr.afterBytes !== undefined) parts.push(`after-bytes=${tr.afterBytes}`);
  if (tr.afterFiles !== undefined) parts.push(`after-files=${tr.afterFiles}`);
  if (tr.afterMs !== undefined) parts.push(`after-ms=${tr.afterMs}`);
  return parts.length ? parts.join(",") : "immediate";
}
