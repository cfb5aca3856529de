/** The error a call throws or a promise rejects with, of an expected class (any other outcome fails the test). */

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
