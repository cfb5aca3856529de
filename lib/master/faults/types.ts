/**
 * The one interface every fault kind implements (one small module per kind, Toxiproxy style).
 * Connection faults install an Effect between the protocol writer and the socket when they
 * fire; server faults change the listener.
 */
import type { Conn } from "../../net/index.ts";

export type ParamType = "size" | "duration" | "int" | "string";

/** What a fired connection fault does to the connection's traffic. */
export interface Effect {
  /** Transform a write: delay it, split it, hold it; call `next` to pass bytes on toward the socket. */
  pipe?(data: Buffer, next: (d: Buffer) => Promise<void>): Promise<void>;
  /** An error reply (without the leading '-') to send instead of running `command`, or null. */
  onCommand?(command: string): string | null;
  /** True while the connection must not read commands (stall). */
  holdsReads?(): boolean;
  /** Undo: called when the fault is cleared. Pending pipes resume at once. */
  release(): void;
}

/** What a connection fault may do to its connection. */
export interface LinkHandle {
  readonly conn: Conn;
  /** End the connection now: FIN (reset=false) or RST (reset=true); later writes fail. */
  kill(reset: boolean): void;
  /** Called by an effect whose holdsReads() changed to false. */
  wake(): void;
}

/** What a server fault may do to the listener. */
export interface ServerHandle {
  stopAccepting(): Promise<void>;
  startAccepting(): Promise<void>;
  /** Take the port with a listener that never accepts (connects hang); returns its undo. */
  blackhole(): Promise<() => Promise<void>>;
}

export type Params = Record<string, string | number>;

export interface FaultKind {
  readonly kind: string;
  /** One line for --help / errors. */
  readonly summary: string;
  readonly params: Record<string, ParamType>;
  /** Defaults for params not given. */
  readonly defaults?: Params;
  readonly scope: "conn" | "server";
  /** Connection scope: the effect installed when the fault fires on a connection. */
  start?(params: Params, link: LinkHandle): Effect;
  /** Server scope: apply; returns the undo. */
  startServer?(params: Params, server: ServerHandle): Promise<() => Promise<void>>;
}

/** A promise with its resolve, for effects that hold traffic until released. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}
