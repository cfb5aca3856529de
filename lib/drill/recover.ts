/**
 * fetch-hang's recovery phase: after SETNODES moved the node to master B, did it really recover —
 * streaming from B? It has when its INFO replication shows `master_link_status:up`, B as its
 * master and `slave_repl_offset` at least B's checkpoint sequence (a node that restored B's
 * checkpoint and continued by PSYNC). A Kvrocks node does that after a full sync from B, as kvr
 * replica does (docs/protocol.md §2–§4, §7).
 */
import type { Conn } from "../net/index.ts";
import { formatMs } from "../ui/units.ts";
import type { MasterB } from "./masters.ts";
import { addrText, info, intField, openNode } from "./node.ts";
import type { RunContext } from "./phases.ts";

export interface RecoverResult {
  ok: boolean;
  /** From the SETNODES reply to the first INFO showing the node streaming from B; null when it never did. */
  ms: number | null;
  timeoutMs: number;
  /** B's checkpoint sequence (its master_repl_offset); null when B could not be asked (a blackhole). */
  bSeq: number | null;
  /** What the node's last INFO showed. */
  link: string | null;
  master: string | null;
  offset: number | null;
  /** What the node should show: link up with B, offset at least B's sequence. */
  want: string;
  /** What its last INFO showed (or why there was none). */
  seen: string;
  detail: string;
}

const POLL_MS = 100;

/** B's checkpoint sequence: its INFO master_repl_offset (null for a blackhole or when B does not answer). */
export async function masterSequence(b: MasterB, auth: string | undefined): Promise<number | null> {
  if (b.kind !== "kvr") return null;
  const conn = await openNode(b.addr, "master B", { auth, connectMs: 2000 }).catch(() => null);
  if (!conn) return null;
  try {
    return intField((await info(conn, "replication", 2000, "master B")).master_repl_offset);
  } catch {
    return null;
  } finally {
    conn.destroy();
  }
}

/**
 * Poll the node's INFO replication every 100 ms until it streams from B with an offset of at
 * least B's checkpoint sequence, or --recover-timeout after `since` (performance.now() of the
 * SETNODES reply). `conn` gives a live connection to the node (reopened when one fails).
 */
export async function waitRecovered(ctx: RunContext, conn: () => Promise<Conn>, b: MasterB, since: number): Promise<RecoverResult> {
  const timeoutMs = ctx.cfg.recoverTimeoutMs;
  const bSeq = await masterSequence(b, ctx.cfg.mastersAuth);
  const seqText = bSeq !== null ? `, slave_repl_offset ≥ ${bSeq} (B's checkpoint sequence)` : b.kind === "blackhole" ? " (B is a blackhole: it never answers)" : " (B's checkpoint sequence unknown: offset not checked)";
  const want = `master_link_status:up with B ${addrText(b.addr)}${seqText}`;
  let link: string | null = null;
  let master: string | null = null;
  let offset: number | null = null;
  let lastError = "";
  for (;;) {
    const c = await conn().catch((e) => {
      lastError = (e as Error).message;
      return null;
    });
    const i = c ? await info(c, "replication", 2000, "the node under test").catch((e) => ((lastError = (e as Error).message), c.destroy(), null)) : null;
    if (i) {
      lastError = "";
      link = i.master_link_status ?? null;
      master = i.master_host !== undefined ? `${i.master_host}:${i.master_port ?? "?"}` : null;
      offset = intField(i.slave_repl_offset);
      const fromB = i.role === "slave" && i.master_host === b.addr.host && intField(i.master_port) === b.addr.port;
      if (fromB && link === "up" && offset !== null && (bSeq === null || offset >= bSeq)) {
        const ms = Math.round(performance.now() - since);
        const seen = `master_link_status:up with B ${addrText(b.addr)}, slave_repl_offset ${offset}${bSeq !== null ? ` ≥ ${bSeq} (B's checkpoint sequence)` : ""}`;
        return { ok: true, ms, timeoutMs, bSeq, link, master, offset, want, seen, detail: `recovered in ${formatMs(ms)}: ${seen}` };
      }
    }
    if (performance.now() - since >= timeoutMs) break;
    await Bun.sleep(POLL_MS);
  }
  const seen = link === null && master === null ? `no INFO (${lastError || "no answer"})` : `master_link_status:${link ?? "?"}, master ${master ?? "none"}, slave_repl_offset ${offset ?? "?"}`;
  return { ok: false, ms: null, timeoutMs, bSeq, link, master, offset, want, seen, detail: `not recovered within ${formatMs(timeoutMs)} of the SETNODES reply: INFO shows ${seen}; expected ${want}` };
}
