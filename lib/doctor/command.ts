/**
 * kvr doctor — a read-only diagnosis of a live Kvrocks cluster: discover the nodes from the seeds,
 * look at each one --samples times under deadlines, report a per-node table and the findings,
 * exit with what was found (see report.ts for the codes).
 */
import type { Output } from "../ui/output.ts";
import { diagnose } from "./findings.ts";
import { doctorConfig } from "./options.ts";
import { nodeRows, printReport, summarize } from "./report.ts";
import { survey } from "./survey.ts";

export async function run(opts: Record<string, unknown>, out: Output): Promise<number> {
  const cfg = await doctorConfig(opts);
  out.debug(`doctor: ${cfg.seeds.length} seed(s), ${cfg.samples} sample(s) ${cfg.intervalMs} ms apart, deadlines ${cfg.connectMs}/${cfg.timeoutMs} ms, ${cfg.concurrency} at once`);
  let lastProgress = 0;
  const result = await survey(cfg, (looks, nodes) => {
    const now = performance.now();
    if (now - lastProgress < 100) return;
    lastProgress = now;
    out.progress(`probing: ${looks} look(s), ${nodes} node(s) known`);
  });
  out.clearProgress();
  if (result.skipped) out.warn(`${result.skipped} listed node(s) were not probed: a run probes at most ${result.nodes.length} nodes`);
  const findings = diagnose(result.nodes, cfg);
  const summary = summarize(result.nodes, findings, { samples: cfg.samples, intervalMs: cfg.intervalMs, skipped: result.skipped, ms: result.ms });
  printReport(out, nodeRows(result.nodes), findings, summary);
  if (summary.exit === 4) out.error(`no seed answered (${cfg.seeds.map((s) => `${s.host}:${s.port}`).join(", ")}): nothing could be discovered; check the addresses, the network and --auth`);
  return summary.exit;
}
