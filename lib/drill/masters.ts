/**
 * The drill's masters: A (generated data, rate-limited, the one that is cut) and B (the new
 * master, or an address that never answers), both requiring --masters-auth. A reports every
 * connection, AUTH, NOAUTH refusal and PSYNC it sees (--json events), so the drill can tell a
 * set-up problem (the node cannot log in, never connects, or streams instead of full-syncing:
 * exit 4) from a replica that fails (FAIL), and waits until A has served --cut-at of its bytes.
 */
import { listenNoAccept, type Conn } from "../net/index.ts";
import { formatMs } from "../ui/units.ts";
import { spawnSelf, waitListening, type Child, type ChildEvent } from "../proc/children.ts";
import { DrillError } from "./errors.ts";
import type { Netns } from "./netns.ts";
import { addrText, info, intField, openNode, type NodeAddr } from "./node.ts";
import type { RunContext } from "./phases.ts";

export interface MasterB {
  kind: "kvr" | "blackhole";
  addr: NodeAddr;
}

export interface Masters {
  a: Child;
  aAddr: NodeAddr;
  /** The drill's own connection to A (its INFO, the stall). */
  aConn: Conn;
  /** What A saw of the node. */
  aWatch: AWatch;
  b: MasterB;
}

/** "host:port" as both ends print it. */
const peerKey = (host: string, port: number | string) => `${host}:${port}`;

/**
 * What master A saw, from its --json events: connections, AUTH results, NOAUTH refusals and an
 * accepted PSYNC. The drill's own connections are left out.
 */
export class AWatch {
  private readonly own = new Set<string>();
  private readonly conns: string[] = [];
  private readonly authFailures: Array<{ peer: string; reason: string }> = [];
  private readonly noauth: Array<{ peer: string; command: string }> = [];
  private readonly psyncs: Array<{ peer: string; from: number }> = [];
  private readonly refused: Array<{ peer: string; from: string }> = [];

  /** Feed one of A's events. */
  note(e: ChildEvent): void {
    const peer = typeof e.peer === "string" ? e.peer : "";
    if (e.event === "connection") this.conns.push(peer);
    else if (e.event === "auth" && e.ok === false) this.authFailures.push({ peer, reason: String(e.reason ?? "refused") });
    else if (e.event === "noauth") this.noauth.push({ peer, command: String(e.command ?? "?") });
    else if (e.event === "psync") this.psyncs.push({ peer, from: Number(e.from ?? Number(e.seq) + 1) });
    else if (e.event === "psync-refused") this.refused.push({ peer, from: String(e.from) });
  }

  /** The sequence of the node's first PSYNC that A refused (it then full-synced), or null. */
  get refusedPsync(): string | null {
    return this.node(this.refused)?.from ?? null;
  }

  /** A connection of the drill itself: not the node's. */
  ignore(conn: Conn): void {
    this.own.add(peerKey(conn.localAddress, conn.localPort));
  }

  private node<T extends { peer: string }>(list: T[]): T | undefined {
    return list.find((x) => !this.own.has(x.peer));
  }

  /** Connections A accepted from anyone but the drill. */
  get nodeConnections(): number {
    return this.conns.filter((p) => !this.own.has(p)).length;
  }

  /** A set-up problem A saw (the text of a DrillError), or null. */
  problem(): string | null {
    const ps = this.node(this.psyncs);
    if (ps) {
      return (
        `the node PSYNCed into A's stream at sequence ${ps.from} instead of full-syncing ` +
        `(--a-psync accept: A takes a PSYNC inside its window; without it A refuses every PSYNC)`
      );
    }
    const af = this.node(this.authFailures);
    if (af) {
      const fix = /no password is set/i.test(af.reason)
        ? "the node sends a masterauth but the drill's masters have no password: give --masters-auth (or KVR_MASTERS_AUTH) the node's masterauth"
        : "give --masters-auth (or KVR_MASTERS_AUTH) the node's masterauth; it defaults to --auth";
      return `the node's AUTH to master A failed (${af.reason}): ${fix}`;
    }
    const na = this.node(this.noauth);
    if (na) {
      return (
        `the node sent ${na.command} to master A without AUTH, but A requires a password (--masters-auth, default --auth): ` +
        `if the node has no masterauth, give --masters-auth ''`
      );
    }
    return null;
  }
}

/** Start A and B (B: a kvr master, or a listener that never accepts); open the drill's connection to A. */
export async function startMasters(ctx: RunContext, ns: Netns | null): Promise<Masters> {
  const { cfg, cleanup, signal } = ctx;
  const aHost = ns ? ns.nsAddr : cfg.advertiseHost;
  // The password goes in the environment (never the command line); "" = none.
  const env = { KVR_REQUIREPASS: cfg.mastersAuth ?? "" };
  const aWatch = new AWatch();
  const startA = async () => {
    const child = spawnSelf(
      "master A",
      // --psync refuse (the default) rather than a sequence chosen beyond the node's offset: a
      // node's offset cannot always be read (or trusted: it may apply more before it PSYNCs),
      // while a refusal makes any node full-sync from A whatever it holds. B keeps accepting:
      // a node that restored B's checkpoint continues from it by PSYNC.
      ["master", "--generate", `${cfg.files}x${cfg.fileSize}`, "--rate", String(cfg.rateMBps), "--bind", aHost, "--port", "0", "--psync", cfg.aPsync],
      { wrap: ns?.wrap, env, onEvent: (e) => aWatch.note(e) },
    );
    cleanup.add("stopping master A", () => child.stop());
    const l = await waitListening(child);
    return { child, addr: { host: aHost, port: l.port } };
  };
  const startB = async (): Promise<MasterB> => {
    if (cfg.newMaster === "blackhole") {
      const bh = await listenNoAccept(cfg.advertiseHost, 0).catch((e) => {
        throw new DrillError(`cannot open the blackhole address for master B on ${cfg.advertiseHost}: ${(e as Error).message}`);
      });
      cleanup.add("closing the blackhole listener", () => bh.close());
      return { kind: "blackhole", addr: { host: cfg.advertiseHost, port: bh.port } };
    }
    const child = spawnSelf("master B", ["master", "--generate", "1x64KiB", "--bind", cfg.advertiseHost, "--port", "0"], { env });
    cleanup.add("stopping master B", () => child.stop());
    const l = await waitListening(child);
    return { kind: "kvr", addr: { host: cfg.advertiseHost, port: l.port } };
  };
  const [a, b] = await Promise.all([startA(), startB()]);
  const aConn = await openNode(a.addr, "master A", { auth: cfg.mastersAuth, signal }).catch((e) => {
    throw new DrillError((e as Error).message);
  });
  cleanup.add("closing the connection to master A", () => aConn.destroy());
  aWatch.ignore(aConn);
  return { a: a.child, aAddr: a.addr, aConn, aWatch, b };
}

/** A's own count of file bytes sent and its checkpoint size, from its INFO replication (polled every 20 ms while A serves). */
export async function aInfoBytes(conn: Conn): Promise<{ sent: number; total: number }> {
  const i = await info(conn, "replication", 3000, "master A");
  const sent = intField(i.kvr_bytes_sent);
  const total = intField(i.kvr_checkpoint_bytes);
  if (sent === null || total === null) throw new DrillError("master A's INFO has no kvr_bytes_sent / kvr_checkpoint_bytes");
  return { sent, total };
}

/** How long A may see no connection from the node after it was made A's slave. */
export const NO_CONNECTION_MS = 10_000;

/**
 * Poll A's INFO until it has sent `fraction` of its checkpoint bytes. Throws DrillError as soon
 * as A saw a set-up problem (AWatch.problem) or no connection from the node within
 * NO_CONNECTION_MS (at most `idleMs`); `stuck` when the node connected but the count did not
 * grow for `idleMs` (the node is not fetching: its failure, not the drill's).
 */
export async function waitForBytes(m: Masters, fraction: number, idleMs: number): Promise<{ sent: number; total: number; stuck: boolean }> {
  const t0 = performance.now();
  const noConnMs = Math.min(NO_CONNECTION_MS, idleMs);
  let lastSent = -1;
  let lastChange = t0;
  for (;;) {
    const { sent, total } = await aInfoBytes(m.aConn);
    const problem = m.aWatch.problem();
    if (problem) throw new DrillError(problem);
    if (total <= 0) throw new DrillError("master A reports an empty checkpoint (kvr_checkpoint_bytes:0)");
    if (sent >= fraction * total) return { sent, total, stuck: false };
    const now = performance.now();
    if (m.aWatch.nodeConnections === 0 && now - t0 > noConnMs) {
      throw new DrillError(
        `master A saw no connection from the node within ${formatMs(noConnMs)} of being made its master: ` +
          `check that the node can reach A at ${addrText(m.aAddr)} (--advertise-host)`,
      );
    }
    if (sent !== lastSent) {
      lastSent = sent;
      lastChange = now;
    } else if (now - lastChange > idleMs) return { sent, total, stuck: true };
    await Bun.sleep(20);
  }
}
