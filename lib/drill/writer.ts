/**
 * slow-replica's writes on a running master (--master): `SET` of 1 KiB values at --write-rate on a
 * small set of keys under the `kvr:drill:` prefix — each key in a slot the node owns (the key hash
 * slot against its CLUSTER NODES; any key in standalone mode), so every SET is the node's own
 * write and feeds its replication stream — and the keys deleted at the end (one DEL per key: keys
 * in different slots cannot share a command in cluster mode).
 */
import { keySlot, slotIn } from "../cluster/index.ts";
import { openSession, type Session } from "../client/index.ts";
import { RespError } from "../resp/index.ts";
import type { NodeAddr } from "./node.ts";

/** Every key the drill writes starts with this. */
export const KEY_PREFIX = "kvr:drill:";
/** Size of each value written. */
export const VALUE_BYTES = 1024;
/** Keys written in turn (each SET overwrites one: the node keeps at most this many of the drill's keys). */
export const KEY_COUNT = 64;
/** Candidate keys tried before giving up on a node that owns very few slots. */
const MAX_TRIES = 2_000_000;
/** A write round every this many ms; each sends what is due, pipelined. */
const TICK_MS = 10;
const SESSION = { connectMs: 3000, timeoutMs: 5000 };

/**
 * `count` keys `kvr:drill:<token>:<i>` whose hash slots lie in `owned` (null: standalone, any
 * key). Fewer when the node owns so few slots that MAX_TRIES candidates do not find them all.
 */
export function chooseKeys(token: string, owned: ReadonlyArray<readonly [number, number]> | null, count = KEY_COUNT): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count && i < MAX_TRIES; i++) {
    const k = `${KEY_PREFIX}${token}:${i}`;
    if (owned === null || slotIn(keySlot(k), owned)) keys.push(k);
  }
  return keys;
}

/** SETs at a steady rate on one connection, until stopped or refused. */
export class Writer {
  /** SETs acknowledged. */
  sent = 0;
  /** The first failure (an error reply or a connection failure), as text; the writes stop there. */
  error: string | null = null;
  /** The first SET's error reply: nothing was written (there is nothing to delete). */
  refused: RespError | null = null;
  private session: Session | null = null;
  private loop: Promise<void> | null = null;
  private stopped = false;
  private readonly value = "x".repeat(VALUE_BYTES);

  constructor(
    readonly addr: NodeAddr,
    private readonly auth: string | undefined,
    readonly keys: string[],
    readonly rate: number,
  ) {}

  /**
   * Open the connection, write one SET and start writing. Resolves with the refusal of that
   * first SET as text (nothing is written then), or null.
   */
  async start(): Promise<string | null> {
    this.session = await openSession(this.addr, { ...SESSION, auth: this.auth ?? null });
    const { replies } = await this.session.pipeline("SET", [["SET", this.keys[0], this.value]]).catch((e: Error) => {
      throw new Error(`the first SET got no reply: ${e.message}`);
    });
    if (replies[0] instanceof RespError) {
      this.stopped = true;
      this.refused = replies[0];
      return (this.error = refusal(this.keys[0], replies[0]));
    }
    this.sent = 1;
    this.loop = this.run();
    return null;
  }

  private async run(): Promise<void> {
    const t0 = performance.now();
    let next = 0;
    while (!this.stopped) {
      const due = Math.min(Math.floor(((performance.now() - t0) * this.rate) / 1000) - this.sent, Math.max(1, Math.ceil(this.rate / 10)));
      if (due > 0) {
        const cmds: string[][] = [];
        for (let i = 0; i < due; i++) cmds.push(["SET", this.keys[next++ % this.keys.length], this.value]);
        try {
          const { replies } = await this.session!.pipeline("SET", cmds);
          const bad = replies.findIndex((r) => r instanceof RespError);
          if (bad >= 0) {
            this.error = refusal(cmds[bad][1], replies[bad] as RespError);
            return;
          }
          this.sent += due;
        } catch (e) {
          if (!this.stopped) this.error = `SET: ${(e as Error).message}`;
          return;
        }
      }
      await Bun.sleep(TICK_MS);
    }
  }

  /** Stop writing (the SETs in flight finish) and close the connection. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.session?.close();
    this.session = null;
  }
}

/** A refused SET as text; the reply is cut short (Kvrocks quotes every argument of an unknown command, the 1 KiB value too). */
function refusal(key: string, r: RespError): string {
  const text = r.message.length > 160 ? `${r.message.slice(0, 160)}…` : r.message;
  return `SET ${key}: -${text}`;
}

/**
 * Delete `keys` (one DEL each, pipelined) on a fresh connection; resolves with how many existed,
 * or the failure as text. Never throws.
 */
export async function deleteKeys(addr: NodeAddr, auth: string | undefined, keys: string[]): Promise<{ deleted: number; error: string | null }> {
  if (keys.length === 0) return { deleted: 0, error: null };
  let s: Session | null = null;
  try {
    s = await openSession(addr, { ...SESSION, auth: auth ?? null });
    const { replies } = await s.pipeline("DEL", keys.map((k) => ["DEL", k]));
    const bad = replies.find((r) => r instanceof RespError) as RespError | undefined;
    const deleted = replies.reduce<number>((n, r) => n + (typeof r === "number" ? r : 0), 0);
    return { deleted, error: bad ? `DEL: -${bad.message}` : null };
  } catch (e) {
    return { deleted: 0, error: (e as Error).message };
  } finally {
    s?.close();
  }
}
