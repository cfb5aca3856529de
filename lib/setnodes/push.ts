/**
 * The per-target steps: read CLUSTERX VERSION (for --bump and --verify), and push (optional
 * SETNODEID, then SETNODES). Each returns a result object and never throws, so one slow or
 * broken target never holds up the report of the others.
 */
import { isOk, replyText } from "../resp/index.ts";
import type { Plan, Target } from "./plan.ts";
import { clusterVersion, NodeFailure, withSession, type FailureKind } from "../client/index.ts";

export type ResultKind = "ok" | FailureKind | "diverged";

export interface TargetResult {
  address: string;
  host: string;
  port: number;
  nodeId: string | null;
  role: string | null;
  result: ResultKind;
  /** The step that failed (connect, auth, setnodeid, setnodes, version, verify), or "setnodes" on success. */
  phase: string;
  /** The error reply or what went wrong; "" on success. */
  detail: string;
  /** SETNODES send → reply, in ms (null when it was not answered). */
  latencyMs: number | null;
  /** Wall time of the last push to this target, connect included, in ms. */
  elapsedMs: number | null;
  /** Pushes made to this target. */
  attempts: number;
  /** CLUSTERX VERSION read back with --verify. */
  version?: number;
}

/** A fresh result for a target (before any attempt). */
export function initialResult(t: Target): TargetResult {
  return {
    address: t.address,
    host: t.host,
    port: t.port,
    nodeId: t.node?.id ?? null,
    role: t.node?.role ?? null,
    result: "failed",
    phase: "none",
    detail: "not attempted",
    latencyMs: null,
    elapsedMs: null,
    attempts: 0,
  };
}

function failureFields(e: unknown, phase: string): Pick<TargetResult, "result" | "phase" | "detail"> {
  if (e instanceof NodeFailure) return { result: e.kind, phase: e.phase, detail: e.message };
  return { result: "failed", phase, detail: e instanceof Error ? e.message : String(e) };
}

/** Read a target's CLUSTERX VERSION (a bulk string such as "-1"). Throws NodeFailure. */
export async function readVersion(target: Target, plan: Plan, phase = "version"): Promise<number> {
  return withSession(target, plan, async (s) => {
    const v = await s.command(phase, ["CLUSTERX", "VERSION"]);
    const version = clusterVersion(v);
    if (version === null) throw new NodeFailure("failed", phase, `CLUSTERX VERSION replied ${JSON.stringify(replyText(v).slice(0, 80))}, not a version`);
    return version;
  });
}

/** SETNODEID (with --set-node-id) then SETNODES on one target; the result of this attempt. */
export async function pushOne(target: Target, plan: Plan, version: number, prev: TargetResult): Promise<TargetResult> {
  const t0 = performance.now();
  const base = { ...prev, attempts: prev.attempts + 1, latencyMs: null, version: undefined };
  const elapsed = () => round(performance.now() - t0);
  try {
    const ms = await withSession(target, plan, async (s) => {
      if (plan.setNodeId && target.node) {
        const r = await s.command("setnodeid", ["CLUSTERX", "SETNODEID", target.node.id]);
        if (!isOk(r)) throw new NodeFailure("failed", "setnodeid", `CLUSTERX SETNODEID replied ${JSON.stringify(replyText(r))}`);
      }
      const args = ["CLUSTERX", "SETNODES", plan.nodesBytes, String(version)];
      if (plan.force) args.push("FORCE");
      const { reply, ms } = await s.timed("setnodes", args);
      if (!isOk(reply)) throw new NodeFailure("failed", "setnodes", `CLUSTERX SETNODES replied ${JSON.stringify(replyText(reply))}`);
      return ms;
    });
    return { ...base, result: "ok", phase: "setnodes", detail: "", latencyMs: round(ms), elapsedMs: elapsed() };
  } catch (e) {
    return { ...base, ...failureFields(e, "setnodes"), elapsedMs: elapsed() };
  }
}

/** Read the version back and compare it with the one pushed. */
export async function verifyOne(target: Target, plan: Plan, version: number, prev: TargetResult): Promise<TargetResult> {
  try {
    const got = await readVersion(target, plan, "verify");
    if (got !== version) {
      return { ...prev, result: "diverged", phase: "verify", detail: `CLUSTERX VERSION is ${got}, expected ${version}`, version: got };
    }
    return { ...prev, version: got };
  } catch (e) {
    return { ...prev, ...failureFields(e, "verify") };
  }
}

/** Result of a failed version read during --bump (the target is not pushed to). */
export function bumpFailure(prev: TargetResult, e: unknown): TargetResult {
  return { ...prev, ...failureFields(e, "version") };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
