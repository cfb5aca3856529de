/**
 * One conversation with one node under deadlines: connect within connectMs, then every command
 * must be answered within timeoutMs (a hard deadline per command, not only an idle one), AUTH
 * first when a password is given. Failures become NodeFailure with a kind callers branch on
 * (and the lib/net code underneath, when there was one).
 */
import { connect, isNetError, type Conn, type NetErrorCode } from "../net/index.ts";
import { call, encodeCommand, RespDecoder, RespError, type Arg, type RespValue } from "../resp/index.ts";
import { parsePositiveDuration, single } from "../ui/units.ts";
import type { NodeAddr } from "./addr.ts";

/** error: the node replied an error; timeout: a connect or reply deadline; refused; failed: anything else. */
export type FailureKind = "error" | "timeout" | "refused" | "failed";

/** A step that did not succeed on a node. */
export class NodeFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    /** The step: connect, auth, or the caller's name for the command (setnodes, version, ping, …). */
    readonly phase: string,
    message: string,
    /** The lib/net error code behind it (PROTOCOL, CLOSED, RESET, DNS, …); null for error replies. */
    readonly code: NetErrorCode | null = null,
  ) {
    super(message);
    this.name = "NodeFailure";
  }
}

/** Largest reply accepted by default: INFO and CLUSTER NODES of thousands of nodes fit many times over. */
export const DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024;

export interface SessionOptions {
  connectMs: number;
  timeoutMs: number;
  auth: string | null;
  /** A bulk reply announcing more bytes than this is a protocol error (default 16 MiB). */
  maxReplyBytes?: number;
}

export interface Session {
  /** Send one command; resolves with its reply (an error reply throws NodeFailure "error"). */
  command(phase: string, args: string[]): Promise<RespValue>;
  /** Send one command and report how long the reply took (send → reply), in ms. */
  timed(phase: string, args: Arg[]): Promise<{ reply: RespValue; ms: number }>;
  /**
   * Send several commands in one write and read their replies in order, all within one reply
   * deadline (one round trip instead of one per command). Error replies come back as RespError
   * values; anything else that fails throws NodeFailure. `ms[i]`: send → reply i.
   */
  pipeline(phase: string, commands: string[][]): Promise<{ replies: RespValue[]; ms: number[] }>;
  close(): void;
}

function fromNetError(e: unknown, phase: string, deadlineMs: number, hardDeadline: boolean): NodeFailure {
  const code = isNetError(e) ? e.code : null;
  if (hardDeadline) return new NodeFailure("timeout", phase, `no reply within ${deadlineMs} ms`, "READ_TIMEOUT");
  if (isNetError(e, "CONNECT_TIMEOUT")) return new NodeFailure("timeout", phase, `could not connect within ${deadlineMs} ms`, code);
  if (isNetError(e, "READ_TIMEOUT")) return new NodeFailure("timeout", phase, `no reply within ${deadlineMs} ms`, code);
  if (isNetError(e, "WRITE_TIMEOUT")) return new NodeFailure("timeout", phase, `could not send within ${deadlineMs} ms`, code);
  if (isNetError(e, "REFUSED")) return new NodeFailure("refused", phase, "connection refused", code);
  if (isNetError(e)) return new NodeFailure("failed", phase, e.message, code);
  return new NodeFailure("failed", phase, e instanceof Error ? e.message : String(e));
}

/** What to do about a refused AUTH or a command refused for lack of one ("" for other errors). */
export function authHint(phase: string, reply: RespError): string {
  if (reply.prefix === "NOAUTH") return " (the node needs a password: give --auth or set KVR_AUTH)";
  if (phase === "auth") return " (check --auth / KVR_AUTH)";
  return "";
}

/**
 * The session options a command's flags give: --connect-timeout and --timeout (3 s when absent,
 * above 0), --auth or else KVR_AUTH ("" = no password). Throws UsageError naming the flag.
 */
export function sessionOptions(opts: Record<string, unknown>, env: Record<string, string | undefined> = process.env): SessionOptions {
  const auth = single("auth", opts.auth) ?? env.KVR_AUTH ?? null;
  return {
    connectMs: parsePositiveDuration("connect-timeout", single("connect-timeout", opts.connectTimeout) ?? "3s"),
    timeoutMs: parsePositiveDuration("timeout", single("timeout", opts.timeout) ?? "3s"),
    auth: auth === "" ? null : auth,
  };
}

/** Open a session with a node (connect + AUTH). Throws NodeFailure. */
export async function openSession(node: NodeAddr, o: SessionOptions): Promise<Session> {
  const ctl = new AbortController();
  const maxBulk = o.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
  let conn: Conn;
  try {
    conn = await connect(node.host, node.port, { connectMs: o.connectMs, readMs: o.timeoutMs, writeMs: o.timeoutMs, signal: ctl.signal });
  } catch (e) {
    throw fromNetError(e, "connect", o.connectMs, false);
  }
  /** Run `io` under the hard reply deadline: on expiry the connection is aborted. */
  const underDeadline = async <T>(phase: string | (() => string), io: () => Promise<T>): Promise<T> => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      ctl.abort();
    }, o.timeoutMs);
    try {
      return await io();
    } catch (e) {
      throw fromNetError(e, typeof phase === "string" ? phase : phase(), o.timeoutMs, expired);
    } finally {
      clearTimeout(timer);
    }
  };
  const timed = async (phase: string, args: Arg[]) => {
    const t0 = performance.now();
    const reply = await underDeadline(phase, () => call(conn, args, new RespDecoder({ maxBulk })));
    const ms = performance.now() - t0;
    if (reply instanceof RespError) throw new NodeFailure("error", phase, `-${reply.message}${authHint(phase, reply)}`);
    return { reply, ms };
  };
  const pipeline = (phase: string, commands: string[][]) => {
    const replies: RespValue[] = [];
    const ms: number[] = [];
    // A failure names the command whose reply was awaited.
    const current = () => (commands[replies.length] ?? commands[commands.length - 1]).join(" ") || phase;
    return underDeadline(current, async () => {
      const t0 = performance.now();
      await conn.write(Buffer.concat(commands.map((c) => encodeCommand(c))));
      const dec = new RespDecoder({ maxBulk });
      for (let i = 0; i < commands.length; i++) {
        replies.push(await conn.read(dec));
        ms.push(performance.now() - t0);
      }
      return { replies, ms };
    });
  };
  const session: Session = {
    timed,
    pipeline,
    command: async (phase, args) => (await timed(phase, args)).reply,
    close: () => conn.destroy(),
  };
  if (o.auth !== null) {
    try {
      await session.command("auth", ["AUTH", o.auth]);
    } catch (e) {
      session.close();
      throw e;
    }
  }
  return session;
}

/** Run `fn` in a session with the node, always closing it. */
export async function withSession<T>(node: NodeAddr, o: SessionOptions, fn: (s: Session) => Promise<T>): Promise<T> {
  const s = await openSession(node, o);
  try {
    return await fn(s);
  } finally {
    s.close();
  }
}
