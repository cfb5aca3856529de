/**
 * kvr guard — retrofit the fetch read deadline onto running, unpatched Kvrocks nodes: destroy a
 * node's sockets to its master once they received nothing for --read-timeout while the node
 * syncs or does not answer. Runs in the foreground until SIGINT/SIGTERM (exit 0); exit 2 usage,
 * 4 when this host cannot destroy sockets (the self-test failed) — nothing is watched then.
 */
import { openSockDiag, type SockDiag } from "../net/sockdiag.ts";
import type { Output } from "../ui/output.ts";
import { EXIT } from "../ui/output.ts";
import { stopOnSignals } from "../ui/signals.ts";
import { formatMs } from "../ui/units.ts";
import { runGuard } from "./guard.ts";
import { parseGuardOptions } from "./options.ts";
import { selfTest } from "./selftest.ts";

/** Run `kvr guard` with cac options; returns the exit code. */
export async function run(opts: Record<string, unknown>, out: Output): Promise<number> {
  const cfg = parseGuardOptions(opts);
  let diag: SockDiag;
  try {
    diag = openSockDiag();
  } catch (e) {
    return cannot(out, `kvr guard needs Linux sock_diag netlink: ${(e as Error).message}`);
  }
  const stop = stopOnSignals((sig) => out.info(`${sig}: stopping`));
  try {
    const test = await selfTest(diag);
    if (!test.ok) {
      out.event("self-test", { ok: false, reason: test.reason, dryRun: cfg.dryRun });
      // A dry run destroys nothing: it still shows what it would do, and says what a real run lacks.
      if (!cfg.dryRun) return cannot(out, test.reason);
      out.warn(`self-test: ${test.reason} (a run without --dry-run would stop here, exit 4)`);
    } else {
      out.event("self-test", { ok: true, ms: test.ms, dryRun: cfg.dryRun }, `self-test: destroyed a loopback socket of its own in ${formatMs(test.ms)} (CAP_NET_ADMIN and CONFIG_INET_DIAG_DESTROY are there)`);
    }
    if (stop.signal.aborted) return EXIT.OK;
    const t0 = performance.now();
    const t = await runGuard(cfg, diag, out, stop.signal);
    out.event(
      "summary",
      { ...t, ms: Math.round(performance.now() - t0) },
      cfg.dryRun ? `stopped: ${t.wouldDestroy} socket(s) would have been destroyed` : `stopped: ${t.destroyed} socket(s) destroyed${t.failed ? `, ${t.failed} could not be` : ""}`,
    );
    return EXIT.OK;
  } finally {
    stop.dispose();
    diag.close();
  }
}

function cannot(out: Output, reason: string): number {
  out.error(`kvr guard cannot run: ${reason}`);
  out.result({ command: "guard", exitCode: EXIT.DRILL_ERROR, error: reason });
  return EXIT.DRILL_ERROR;
}
