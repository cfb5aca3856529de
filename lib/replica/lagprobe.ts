/**
 * --lag-probe: poll the master's `INFO replication` over a connection of its own, once a second,
 * for master_repl_offset; the lag is that minus our slave_repl_offset. Shown in INFO
 * (kvr_master_repl_offset, kvr_lag) and as `lag` --json events. Probe failures are logged at
 * debug level and retried the next second; they never disturb replication.
 */
import { connect, type Conn } from "../net/index.ts";
import { call, replyText } from "../resp/index.ts";
import type { Output } from "../ui/output.ts";
import { sleep } from "../ui/time.ts";
import type { RunConfig } from "./replication.ts";
import type { HostPort, Status } from "./status.ts";
import { sendAuth } from "./steps.ts";

export const LAG_PROBE_MS = 1000;

/** master_repl_offset from an INFO reply, or null. */
export function masterReplOffset(info: string): number | null {
  const m = /(?:^|\r?\n)master_repl_offset:(\d+)/.exec(info);
  return m ? Number(m[1]) : null;
}

/** Run the probe until `signal` aborts; the promise settles once its connection is closed. */
export async function startLagProbe(master: HostPort, cfg: RunConfig, st: Status, out: Output, signal: AbortSignal): Promise<void> {
  let conn: Conn | null = null;
  while (!signal.aborted) {
    try {
      if (!conn || conn.isClosed) {
        conn = await connect(master.host, master.port, { connectMs: cfg.connectMs, readMs: cfg.readMs, signal });
        if (cfg.masterauth) await sendAuth(conn, cfg.masterauth);
      }
      const off = masterReplOffset(replyText(await call(conn, ["INFO", "replication"])));
      if (off === null) throw new Error("the master's INFO has no master_repl_offset");
      st.masterReplOffset = off;
      const lag = Math.max(0, off - st.replOffset);
      out.event("lag", { masterOffset: off, offset: st.replOffset, lag, state: st.state });
    } catch (e) {
      if (signal.aborted) break;
      out.debug(`lag probe: ${(e as Error).message}`);
      conn?.destroy();
      conn = null;
    }
    await sleep(LAG_PROBE_MS, signal);
  }
  conn?.destroy();
}
