/**
 * What a Kvrocks server checks of a request before it runs it (docs/protocol.md §1), shared by
 * kvr master and kvr replica's admin port: the limits of the request decoder, and the refusals
 * in Kvrocks' order — unknown command, wrong number of arguments, authentication.
 */
import { MAX_UNAUTHENTICATED_BYTES, RespDecoder } from "./decoder.ts";

/**
 * The commands a server knows (lower case) and their arity: n > 0 exactly n words, n < 0 at least
 * -n; [min, max] at least min and at most max words — the upper bound is the command's own check
 * (Kvrocks' Parse, e.g. PING takes at most one argument), so it comes after authentication.
 */
export type CommandArity = Readonly<Record<string, number | readonly [number, number]>>;

/** Commands a client may send before AUTH when a password is set. */
const BEFORE_AUTH = new Set(["auth", "quit"]);

/** Kvrocks' reply to an unknown command (every argument, in full). */
export function unknownCommand(args: string[]): string {
  const rest = args
    .slice(1)
    .map((a) => `\`${a}\``)
    .join(", ");
  return `ERR unknown command \`${args[0]}\`, with args beginning with: ${rest}`;
}

export const WRONG_ARGS = "ERR wrong number of arguments";
export const NOAUTH = "NOAUTH Authentication required.";

/** The error (with its prefix word) refusing the command `args` before it runs, or null when it may run. */
export function commandRefusal(arity: CommandArity, args: string[], authed: boolean): string | null {
  const cmd = args[0].toLowerCase();
  const n = arity[cmd];
  if (n === undefined) return unknownCommand(args);
  const [min, max] = typeof n !== "number" ? n : n > 0 ? [n, n] : [-n, Infinity];
  if (args.length < min || (typeof n === "number" && args.length > max)) return WRONG_ARGS;
  if (!authed && !BEFORE_AUTH.has(cmd)) return NOAUTH;
  if (args.length > max) return WRONG_ARGS;
  return null;
}

/**
 * A server's request decoder: inline or RESP arrays of at most 1024 words, each at most `maxArg`
 * bytes and `2 × maxArg` in all — MAX_UNAUTHENTICATED_BYTES while `authed()` is false, so a
 * client that has not authenticated cannot make the server hold more. Above a cap the decoder
 * throws a protocol error (the server replies -ERR and closes).
 */
export function requestDecoder(maxArg: number, authed: () => boolean): RespDecoder {
  return new RespDecoder({ inline: true, maxBulk: maxArg, maxArray: 1024, maxDepth: 1, maxTotal: () => (authed() ? 2 * maxArg : MAX_UNAUTHENTICATED_BYTES) });
}
