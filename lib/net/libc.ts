/**
 * The C library through bun:ffi, for the few socket calls node:net does not offer (a listener
 * that never accepts, sock_diag netlink). glibc first, then musl's names.
 */
import { dlopen, type FFIFunction } from "bun:ffi";

const NAMES = ["libc.so.6", "libc.so", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"];

/** Open the C library with these symbols; throws naming every library tried when none loads. */
export function openLibc<T extends Record<string, FFIFunction>>(symbols: T) {
  let last: unknown;
  for (const name of NAMES) {
    try {
      return dlopen(name, symbols).symbols;
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`cannot load the C library (tried ${NAMES.join(", ")}): ${(last as Error)?.message ?? last}`);
}
