/**
 * Child kvr processes (the drill's masters, replicas and guard; the lab's nodes): this same
 * executable run with --json, its NDJSON events read from stdout. Secrets go in the environment,
 * never on the command line. A child that cannot start or does not report in time is a
 * SetupError.
 */
import { readNdjson } from "../ui/ndjson.ts";
import { SetupError } from "./errors.ts";

/** The command line that runs this kvr: the compiled binary itself, or bun + cli.ts from source. */
export function selfCommand(): string[] {
  const main = Bun.main;
  if (/\.(ts|js|mjs)$/.test(main) && !main.startsWith("/$bunfs/") && !main.includes("~BUN")) return [process.execPath, main];
  return [process.execPath];
}

/** One NDJSON event of a child. */
export interface ChildEvent {
  event: string;
  [k: string]: unknown;
}

/** A running kvr child process. */
export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly events: ChildEvent[];
  /** The last lines the child wrote to stderr (for error messages). */
  stderrTail(): string;
  /**
   * Wait for the first event matching `pred`; fails with SetupError when the child exits first or
   * after `ms` ("… within <deadline>": `deadline` names it, e.g. the flag it comes from; default "<ms> ms").
   */
  waitEvent(pred: (e: ChildEvent) => boolean, ms: number, what: string, deadline?: string): Promise<ChildEvent>;
  /** Send a signal (ignored once exited). */
  kill(signal: NodeJS.Signals | number): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone and its output read. */
  stop(graceMs?: number): Promise<void>;
  readonly exited: Promise<number>;
  readonly hasExited: boolean;
}

export interface SpawnOptions {
  /** Prefix the command with these words (e.g. `ip netns exec <ns>`). */
  wrap?: string[];
  env?: Record<string, string>;
  /** Called for each event as it arrives. */
  onEvent?: (e: ChildEvent) => void;
}

/** Start `kvr <args> --json` as a child. */
export function spawnSelf(name: string, args: string[], opts: SpawnOptions = {}): Child {
  const cmd = [...(opts.wrap ?? []), ...selfCommand(), ...args, "--json"];
  let proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  try {
    proc = Bun.spawn(cmd, {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, NO_COLOR: "1", ...(opts.env ?? {}) },
    });
  } catch (e) {
    throw new SetupError(`cannot start ${name} (${cmd[0]}): ${(e as Error).message}`);
  }
  const events: ChildEvent[] = [];
  let stderr = "";
  let exited = false;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const stdoutRead = readNdjson(
    proc.stdout,
    (v) => {
      if (typeof v?.event !== "string") return;
      const e = v as ChildEvent;
      // Keep memory flat: progress events of a long sync are not needed once seen.
      if (events.length < 10_000) events.push(e);
      opts.onEvent?.(e);
    },
    notify,
  ).catch(() => {});
  (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) {
      stderr += dec.decode(chunk, { stream: true });
      if (stderr.length > 16_384) stderr = stderr.slice(-8192);
    }
  })().catch(() => {});
  const exitedP = proc.exited.then((code) => {
    exited = true;
    notify();
    return code;
  });
  const tail = () =>
    stderr
      .trim()
      .split("\n")
      .slice(-5)
      .map((l) => l.replace(/^\S+ +\S+ +/, ""))
      .join(" | ");
  return {
    name,
    pid: proc.pid,
    events,
    stderrTail: tail,
    exited: exitedP,
    get hasExited() {
      return exited;
    },
    waitEvent(pred, ms, what, deadline) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const e = events.find(pred);
          if (e) {
            done();
            resolve(e);
          } else if (exited) {
            done();
            const t = tail();
            reject(new SetupError(`${name} exited (code ${proc.exitCode ?? proc.signalCode}) before ${what}${t ? `: ${t}` : ""}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          const t = tail();
          reject(new SetupError(`${name} did not report ${what} within ${deadline ?? `${ms} ms`}${t ? `: ${t}` : ""}`));
        }, ms);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    kill(signal) {
      if (!exited) {
        try {
          proc.kill(signal);
        } catch {
          /* already gone */
        }
      }
    },
    async stop(graceMs = 1500) {
      if (!exited) {
        let t: ReturnType<typeof setTimeout> | undefined;
        try {
          proc.kill("SIGTERM");
          t = setTimeout(() => {
            try {
              proc.kill("SIGKILL");
            } catch {
              /* gone */
            }
          }, graceMs);
        } catch {
          /* already gone */
        }
        await exitedP;
        clearTimeout(t);
      }
      // Every event it printed before exiting is in `events` once stop() resolves.
      await Promise.race([stdoutRead, Bun.sleep(graceMs)]);
    },
  };
}

/** Wait for a child's `listening` event: its bound port. */
export async function waitListening(child: Child, ms = 10_000): Promise<{ host: string; port: number }> {
  const e = await child.waitEvent((x) => x.event === "listening", ms, "listening");
  const port = Number(e.port);
  if (!Number.isInteger(port) || port <= 0) throw new SetupError(`${child.name} reported a bad listening port: ${JSON.stringify(e)}`);
  return { host: String(e.host ?? ""), port };
}
