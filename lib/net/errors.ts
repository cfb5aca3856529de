/**
 * Typed network errors. Callers branch on `code`, never on message text.
 */
export type NetErrorCode =
  | "CONNECT_TIMEOUT"
  | "READ_TIMEOUT"
  | "WRITE_TIMEOUT"
  | "ABORTED"
  | "CLOSED"
  | "RESET"
  | "REFUSED"
  | "DNS"
  | "PROTOCOL"
  | "ADDR_IN_USE"
  | "IO";

export class NetError extends Error {
  readonly code: NetErrorCode;
  /** Bytes received on the connection before the error (CLOSED carries it; others when known). */
  readonly bytesRead?: number;
  /** Remote peer "host:port" when known. */
  readonly peer?: string;

  constructor(code: NetErrorCode, message: string, extra: { bytesRead?: number; peer?: string; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "NetError";
    this.code = code;
    this.bytesRead = extra.bytesRead;
    this.peer = extra.peer;
  }
}

/** True when `e` is a NetError, optionally of one of the given codes. */
export function isNetError(e: unknown, ...codes: NetErrorCode[]): e is NetError {
  return e instanceof NetError && (codes.length === 0 || codes.includes(e.code));
}

/** A protocol violation by the peer (bad framing, limits exceeded, unexpected reply). */
export function protocolError(message: string, peer?: string): NetError {
  return new NetError("PROTOCOL", message, { peer });
}

/** Map a Node/Bun socket error to a NetError. */
export function fromSystemError(e: unknown, peer: string, bytesRead: number): NetError {
  if (e instanceof NetError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? "";
  const msg = err?.message ?? String(e);
  switch (code) {
    case "ECONNREFUSED":
      return new NetError("REFUSED", `connection refused by ${peer}`, { peer, cause: e });
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
    case "EAI_FAIL":
      return new NetError("DNS", `cannot resolve host for ${peer}: ${msg}`, { peer, cause: e });
    case "ECONNRESET":
      return new NetError("RESET", `connection reset by ${peer} after ${bytesRead} bytes`, { peer, bytesRead, cause: e });
    case "EPIPE":
      return new NetError("CLOSED", `connection closed by ${peer} (broken pipe) after ${bytesRead} bytes`, {
        peer,
        bytesRead,
        cause: e,
      });
    case "EADDRINUSE":
      return new NetError("ADDR_IN_USE", `${peer} is already in use`, { peer, cause: e });
    default:
      // Bun's messages often start with the errno name already ("ECONNABORTED: software caused …").
      return new NetError("IO", `socket error with ${peer}: ${code && !msg.startsWith(code) ? code + " " : ""}${msg}`, { peer, bytesRead, cause: e });
  }
}

/**
 * The errors every lib/net connection raises for the same events, worded once (Conn and the
 * bulk connections of bulk.ts both use them).
 */
export const failures = {
  connectTimeout: (peer: string, ms: number) => new NetError("CONNECT_TIMEOUT", `could not connect to ${peer} within ${ms} ms`, { peer }),
  abortedConnecting: (peer: string, before: boolean) => new NetError("ABORTED", `aborted ${before ? "before" : "while"} connecting to ${peer}`, { peer }),
  aborted: (peer: string, bytesRead: number) => new NetError("ABORTED", `aborted (connection with ${peer})`, { peer, bytesRead }),
  readTimeout: (peer: string, ms: number, bytesRead: number) =>
    new NetError("READ_TIMEOUT", `no data from ${peer} for ${ms} ms (after ${bytesRead} bytes)`, { peer, bytesRead }),
  writeTimeout: (peer: string, ms: number, bytesRead: number) =>
    new NetError("WRITE_TIMEOUT", `${peer} did not read for ${ms} ms (write stalled)`, { peer, bytesRead }),
  /** The peer closed while `what` ("in the middle of a line", "with 5 of 9 bytes still expected"). */
  closedByPeer: (peer: string, what: string, bytesRead: number) =>
    new NetError("CLOSED", `connection closed by ${peer} ${what} (after ${bytesRead} bytes)`, { peer, bytesRead }),
  closed: (peer: string, bytesRead: number) => new NetError("CLOSED", `connection with ${peer} closed after ${bytesRead} bytes`, { peer, bytesRead }),
  closedLocally: (peer: string, bytesRead: number) => new NetError("CLOSED", `connection with ${peer} closed locally`, { peer, bytesRead }),
  lineTooLong: (peer: string, max: number) => protocolError(`line from ${peer} longer than ${max} bytes`, peer),
  /** Whatever a frame parser threw: the peer broke the protocol. */
  unparsable: (e: unknown, peer: string, bytesRead: number) =>
    e instanceof NetError ? e : new NetError("PROTOCOL", (e as Error)?.message ?? String(e), { peer, bytesRead, cause: e }),
};
