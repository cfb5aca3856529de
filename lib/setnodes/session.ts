/**
 * One conversation with one target under deadlines: connect within connectMs, then every command
 * must be answered within timeoutMs (a hard deadline per command, not only an idle one), AUTH
 * first when a password is given. Failures become TargetFailure with a kind the exit code uses.
 */
import { connect, isNetError, type Conn } from "../net/index.ts";
import { call, RespError, type RespValue } from "../resp/index.ts";
import type { Target } from "./plan.ts";

/** error: the target replied an error; timeout: a connect or reply deadline; refused; failed: anything else. */
export type FailureKind = "error" | "timeout" | "refused" | "failed";

/** A step that did not succeed on a target. */
export class TargetFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    /** connect, auth, setnodeid, setnodes, version. */
    readonly phase: string,
    message: string,
  ) {
    super(message);
    this.name = "TargetFailure";
  }
}

export interface SessionOptions {
  connectMs: number;
  timeoutMs: number;
  auth: string | null;
}

export interface Session {
  /** Send one command; resolves with its reply (an error reply throws TargetFailure "error"). */
  command(phase: string, args: string[]): Promise<RespValue>;
  /** Send one command and report how long the reply took (send → reply), in ms. */
  timed(phase: string, args: string[]): Promise<{ reply: RespValue; ms: number }>;
  close(): void;
}

function fromNetError(e: unknown, phase: string, deadlineMs: number, hardDeadline: boolean): TargetFailure {
  if (hardDeadline) return new TargetFailure("timeout", phase, `no reply within ${deadlineMs} ms`);
  if (isNetError(e, "CONNECT_TIMEOUT")) return new TargetFailure("timeout", phase, `could not connect within ${deadlineMs} ms`);
  if (isNetError(e, "READ_TIMEOUT")) return new TargetFailure("timeout", phase, `no reply within ${deadlineMs} ms`);
  if (isNetError(e, "WRITE_TIMEOUT")) return new TargetFailure("timeout", phase, `could not send within ${deadlineMs} ms`);
  if (isNetError(e, "REFUSED")) return new TargetFailure("refused", phase, "connection refused");
  if (isNetError(e)) return new TargetFailure("failed", phase, e.message);
  return new TargetFailure("failed", phase, e instanceof Error ? e.message : String(e));
}

/** What to do about a refused AUTH or a command refused for lack of one ("" for other errors). */
export function authHint(phase: string, reply: RespError): string {
  if (reply.prefix === "NOAUTH") return " (the node needs a password: give --auth or set KVR_AUTH)";
  if (phase === "auth") return " (check --auth / KVR_AUTH)";
  return "";
}

/** Open a session with a target (connect + AUTH). Throws TargetFailure. */
export async function openSession(target: Target, o: SessionOptions): Promise<Session> {
  const ctl = new AbortController();
  let conn: Conn;
  try {
    conn = await connect(target.host, target.port, { connectMs: o.connectMs, readMs: o.timeoutMs, writeMs: o.timeoutMs, signal: ctl.signal });
  } catch (e) {
    throw fromNetError(e, "connect", o.connectMs, false);
  }
  const timed = async (phase: string, args: string[]) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      ctl.abort();
    }, o.timeoutMs);
    const t0 = performance.now();
    let reply: RespValue;
    try {
      reply = await call(conn, args);
    } catch (e) {
      throw fromNetError(e, phase, o.timeoutMs, expired);
    } finally {
      clearTimeout(timer);
    }
    const ms = performance.now() - t0;
    if (reply instanceof RespError) throw new TargetFailure("error", phase, `-${reply.message}${authHint(phase, reply)}`);
    return { reply, ms };
  };
  const session: Session = {
    timed,
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

/** Run `fn` in a session with the target, always closing it. */
export async function withSession<T>(target: Target, o: SessionOptions, fn: (s: Session) => Promise<T>): Promise<T> {
  const s = await openSession(target, o);
  try {
    return await fn(s);
  } finally {
    s.close();
  }
}

