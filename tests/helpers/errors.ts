/** The error a call throws or a promise rejects with, of an expected class (any other outcome fails the test). */
import { NetError } from "../../lib/net/index.ts";

type ErrorClass<T> = abstract new (...args: never[]) => T;

/** The `cls` error `fn` throws. */
export function thrown<T>(cls: ErrorClass<T>, fn: () => unknown): T {
  try {
    fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw e;
  }
  throw new Error(`expected a ${cls.name}`);
}

/** The `cls` error `p` rejects with. */
export async function rejected<T>(cls: ErrorClass<T>, p: Promise<unknown>): Promise<T> {
  try {
    await p;
  } catch (e) {
    if (e instanceof cls) return e;
    throw e;
  }
  throw new Error(`expected a ${cls.name}`);
}

/** The NetError `p` rejects with, and how long that took in ms. */
export async function failure(p: Promise<unknown>): Promise<{ err: NetError; ms: number }> {
  const t0 = performance.now();
  const err = await rejected(NetError, p);
  return { err, ms: performance.now() - t0 };
}
