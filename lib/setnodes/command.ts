/**
 * kvr setnodes — validate a topology with Kvrocks' rules and push it (CLUSTERX SETNODES) to every
 * target at once, each under its own connect and reply deadlines; optionally read it from a live
 * node (--from) and edit it (--promote, --remove), bump the version, set node ids first, verify,
 * and retry stragglers with backoff.
 */
import { formatNodes } from "../cluster/index.ts";
import { sessionOptions } from "../client/index.ts";
import { EXIT, type Output } from "../ui/output.ts";
import { backoffMs } from "../ui/time.ts";
import { list, parseHostPort, UsageError } from "../ui/units.ts";
import { applyEdits, editsOf, InvalidEdit } from "./edits.ts";
import { readFromNode, SourceUnavailable, type FromNode } from "./from.ts";
import { InvalidTopology, readTopologyInput, validateTopology, type TopologyInput } from "./input.ts";
import { makePlan, versionAndTargets, type Plan, type Target } from "./plan.ts";
import { bumpFailure, initialResult, pushOne, readVersion, verifyOne, type TargetResult } from "./push.ts";
import { printDryRun, printResults, summarize } from "./report.ts";


/**
 * Read the targets' versions; the highest + 1 (never at or below `floor`, the --from node's
 * version) and the targets that could not be read.
 */
async function bump(plan: Plan, results: Map<string, TargetResult>, out: Output, floor: number | null): Promise<{ version: number | null; answered: Target[] }> {
  const reads = await Promise.all(
    plan.targets.map((t) =>
      readVersion(t, plan).then(
        (v) => ({ t, v, e: null as unknown }),
        (e: unknown) => ({ t, v: null, e }),
      ),
    ),
  );
  const answered: Target[] = [];
  let max = -Infinity;
  for (const r of reads) {
    if (r.v === null) {
      results.set(r.t.address, bumpFailure(results.get(r.t.address)!, r.e));
      continue;
    }
    answered.push(r.t);
    max = Math.max(max, r.v);
  }
  if (answered.length === 0) {
    out.error("--bump: no target answered CLUSTERX VERSION; nothing was pushed");
    return { version: null, answered };
  }
  if (floor !== null) max = Math.max(max, floor);
  const version = max + 1;
  out.event("bump", { highest: max, version, answered: answered.length, targets: plan.targets.length }, `--bump: highest CLUSTERX VERSION is ${max}; pushing version ${version}`);
  return { version, answered };
}

/** Push to `targets` at once (then verify them); every result lands in `results`. */
async function round(plan: Plan, targets: Target[], version: number, results: Map<string, TargetResult>): Promise<void> {
  await Promise.all(
    targets.map(async (t) => {
      let r = await pushOne(t, plan, version, results.get(t.address)!);
      if (plan.verify && r.result === "ok") r = await verifyOne(t, plan, version, r);
      results.set(t.address, r);
    }),
  );
}

/** --from host:port, given once and instead of the other topology sources. */
async function readFrom(opts: Record<string, unknown>, out: Output): Promise<FromNode> {
  if (Array.isArray(opts.from)) throw new UsageError("--from: give it once (one live node is enough: every node holds the whole topology)");
  if (opts.nodesFile !== undefined || opts.nodes !== undefined || list(opts.node).length > 0) {
    throw new UsageError("give the topology one way only: --from, --nodes-file, --nodes or --node");
  }
  const from = await readFromNode(parseHostPort("from", opts.from), sessionOptions(opts));
  out.event("from", { address: from.address, version: from.version, nodes: from.text.split("\n").length }, `read topology version ${from.version} from ${from.address}`);
  return from;
}

export async function run(opts: Record<string, unknown>, out: Output): Promise<number> {
  const t0 = performance.now();
  const edits = editsOf(opts);
  versionAndTargets(opts);
  sessionOptions(opts);
  let input: TopologyInput;
  let from: FromNode | null = null;
  try {
    input = opts.from !== undefined ? (from = await readFrom(opts, out)) : await readTopologyInput(opts);
  } catch (e) {
    if (!(e instanceof SourceUnavailable)) throw e;
    out.error(e.message);
    return EXIT.DRILL_ERROR;
  }
  let topology;
  try {
    topology = validateTopology(input);
    if (edits.length > 0) {
      topology = applyEdits(topology, edits);
      for (const e of edits) out.event("edit", { ...e }, e.edit === "promote" ? `--promote ${e.id}${e.dropOld ? " --drop-old" : ""}` : `--remove ${e.id}`);
      topology = validateTopology({ source: `${input.source} after --${edits.map((e) => e.edit).join(", --")}`, text: formatNodes(topology) });
    }
  } catch (e) {
    if (e instanceof InvalidEdit) {
      const { edit, id, kvrocksMessage, detail } = e.error;
      if (out.json) out.event("invalid-edit", { edit, id, message: kvrocksMessage, detail });
      out.error(e.message);
      return EXIT.USAGE;
    }
    if (!(e instanceof InvalidTopology)) throw e;
    if (out.json) {
      const { kvrocksMessage, line, field, value } = e.error;
      out.event("invalid-topology", { source: e.source, message: kvrocksMessage, line, field: field ?? null, value: value ?? null });
    }
    out.error(`${e.message}. Nothing was sent.`);
    return EXIT.USAGE;
  }
  const plan = makePlan(opts, topology);
  if (plan.dryRun) {
    printDryRun(out, plan);
    return EXIT.OK;
  }

  const results = new Map<string, TargetResult>(plan.targets.map((t) => [t.address, initialResult(t)]));
  let version = plan.version;
  let pending = plan.targets;
  if (plan.bump) {
    const b = await bump(plan, results, out, from?.version ?? null);
    version = b.version;
    pending = b.answered;
  }
  if (version !== null) {
    out.debug(`pushing version ${version} to ${pending.length} target(s)`);
    for (let attempt = 0; ; attempt++) {
      await round(plan, pending, version, results);
      const failed = plan.targets.filter((t) => results.get(t.address)!.result !== "ok");
      if (failed.length === 0 || attempt >= plan.retries) break;
      // Retry round n waits 250 ms doubling, at most 4 s.
      const delayMs = backoffMs(250, attempt + 1, { capMs: 4000 });
      out.event(
        "retry",
        { attempt: attempt + 1, of: plan.retries, delayMs, targets: failed.map((t) => t.address) },
        `retry ${attempt + 1}/${plan.retries} in ${delayMs} ms: ${failed.map((t) => t.address).join(", ")}`,
      );
      await Bun.sleep(delayMs);
      pending = failed;
    }
  }
  const list = plan.targets.map((t) => results.get(t.address)!);
  const summary = summarize(list, version, performance.now() - t0);
  printResults(out, list, summary);
  return summary.exit;
}
