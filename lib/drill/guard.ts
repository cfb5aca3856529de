/**
 * `kvr drill --guard`: a `kvr guard` child watching the node under test for the drill's
 * duration, and what it did, for the verdict. Proves on staging that the guard rescues a build
 * before it is deployed.
 */
import { spawnSelf, type Child } from "../proc/children.ts";
import type { Cleanup } from "../proc/cleanup.ts";
import { DrillError } from "./errors.ts";
import { addrText, type NodeAddr } from "./node.ts";
import { formatMs } from "../ui/units.ts";

/** One socket the guard destroyed. */
export interface GuardAction {
  local: string;
  remote: string;
  idleMs: number;
  bytesReceived: number | null;
  why: string;
  destroyed: boolean;
  /** When, ms since the run began. */
  atMs: number;
}

/** What the guard did during one run. */
export interface GuardReport {
  pid: number;
  readTimeoutMs: number;
  actions: GuardAction[];
  /** Times it saw the node stop answering. */
  unresponsive: number;
}

/** A running guard child. */
export interface DrillGuard {
  child: Child;
  readTimeoutMs: number;
}

/**
 * Start `kvr guard --node <node>` and wait until it watches the node's verified process. The
 * guard must run on the node's host: a node it cannot match (another host) stops the drill (exit 4).
 */
export async function startGuard(node: NodeAddr, readTimeoutMs: number, auth: string | undefined, cleanup: Cleanup): Promise<DrillGuard> {
  const env: Record<string, string> = {};
  if (auth) env.KVR_AUTH = auth;
  const child = spawnSelf("kvr guard", ["guard", "--node", addrText(node), "--read-timeout", `${readTimeoutMs}ms`], { env });
  cleanup.add("stopping kvr guard", () => child.stop());
  const w = await child.waitEvent((e) => e.event === "watch", 10_000, "watching the node under test");
  if (w.pidVerified !== true) {
    throw new DrillError(`kvr guard cannot tell the node's sockets from others' (run the drill on the node's host): ${child.stderrTail() || "its INFO server has no usable process_id"}`);
  }
  return { child, readTimeoutMs };
}

/** The guard's actions so far, timed from `runStartedAt` (Date.now() at the run's start). */
export function guardReport(g: DrillGuard, runStartedAt: number): GuardReport {
  const actions = g.child.events
    .filter((e) => e.event === "destroy")
    .map((e) => ({
      local: String(e.local),
      remote: String(e.remote),
      idleMs: Number(e.idleMs),
      bytesReceived: typeof e.bytesReceived === "number" ? e.bytesReceived : null,
      why: String(e.why),
      destroyed: e.destroyed === true,
      atMs: Date.parse(String(e.ts)) - runStartedAt,
    }));
  return { pid: g.child.pid, readTimeoutMs: g.readTimeoutMs, actions, unresponsive: g.child.events.filter((e) => e.event === "node-unresponsive").length };
}

/** What kvr guard did in a run, in one line. */
export function guardLine(g: GuardReport): string {
  const done = g.actions.filter((a) => a.destroyed);
  if (g.actions.length === 0) return `destroyed nothing (read timeout ${formatMs(g.readTimeoutMs)})`;
  const each = g.actions.map((a) => `${a.local} → ${a.remote} at +${(a.atMs / 1000).toFixed(2)}s, idle ${formatMs(a.idleMs)}${a.destroyed ? "" : " (failed)"}`);
  const why = [...new Set(g.actions.map((a) => (a.why === "syncing" ? "node syncing" : "node not answering")))].join(", ");
  return `destroyed ${done.length} socket(s) of the node to its master (${why}): ${each.join("; ")}`;
}
