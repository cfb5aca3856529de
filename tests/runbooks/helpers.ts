/**
 * Running the runbooks (runbooks/*.sh) in tests: as executables, with kvr found on PATH or through
 * KVR, and — to show they need nothing but kvr and a base system — with a PATH that holds only
 * kvr, bash and the basic tools they call (no jq).
 */
import { mkdirSync, symlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { KVR_BIN, runProcess } from "../helpers/kvr.ts";

export const RUNBOOKS = resolve(import.meta.dir, "../../runbooks");

/** The tools a runbook may use besides kvr (see runbooks/lib.sh). */
const BASE_TOOLS = ["bash", "grep", "sed", "awk", "head", "tail", "cut", "sort", "tr", "wc", "mktemp", "rm", "cat", "cmp", "mv", "dirname"];

/** A directory of symlinks: kvr (the built binary) and the base tools; no jq, and nothing kvr could call (kvr reads sockets through sock_diag, not ss). */
export function minimalPath(dir: string): string {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  symlinkSync(KVR_BIN, join(bin, "kvr"));
  for (const t of BASE_TOOLS) {
    const p = Bun.which(t);
    if (!p) throw new Error(`${t} is not installed`);
    symlinkSync(p, join(bin, t));
  }
  return bin;
}

export interface ScriptRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Run runbooks/<name> with `args`. `path`: the PATH to give it (default: the test's PATH with
 * KVR set to the built binary).
 */
export async function runbook(name: string, args: string[], o: { path?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<ScriptRun> {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), NO_COLOR: "1", KVR_AUTH: "", ...(o.env ?? {}) };
  if (o.path !== undefined) {
    env.PATH = o.path;
    delete env.KVR;
  } else env.KVR ??= KVR_BIN;
  const t0 = performance.now();
  const r = await runProcess([join(RUNBOOKS, name), ...args], { env, timeoutMs: o.timeoutMs ?? 90_000 });
  return { ...r, ms: performance.now() - t0 };
}
