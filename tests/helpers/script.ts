/**
 * A test double as a process of its own (bun running a script), so that its sockets belong to
 * its own pid. The script prints one JSON line once it is ready (its port, say) and runs until
 * SIGTERM.
 */

export interface ScriptProcess<T> {
  proc: Bun.Subprocess<"ignore", "pipe", "inherit">;
  /** The script's first line, parsed. */
  hello: T;
  /** True once the process has exited. */
  readonly exited: boolean;
  /** SIGTERM (SIGKILL after 2 s); resolves once it is gone. */
  close(): Promise<void>;
}

/** Run `bun <path> <args>` and wait (up to 10 s) for its first stdout line. */
export async function spawnScript<T>(path: string, args: string[], env: Record<string, string | undefined> = process.env): Promise<ScriptProcess<T>> {
  const clean = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  const proc = Bun.spawn([process.execPath, path, ...args], { stdin: "ignore", stdout: "pipe", stderr: "inherit", env: clean });
  let exited = false;
  proc.exited.then(() => (exited = true));
  const close = async () => {
    if (exited) return;
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 2000);
    await proc.exited;
    clearTimeout(t);
  };
  const reader = proc.stdout.getReader();
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${path} exited before it was ready`);
      text += new TextDecoder().decode(value);
    }
  } catch (e) {
    await close();
    throw e;
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  return {
    proc,
    hello: JSON.parse(text.split("\n")[0]) as T,
    get exited() {
      return exited;
    },
    close,
  };
}
