/**
 * Build-time rendering of `kvr --help`. cli.ts imports renderedHelp() as a Bun macro
 * (`with { type: "macro" }`): the bundler runs it once and puts the returned text into the build,
 * so `kvr --help` prints without loading the argument parser. The text comes from running cli.ts
 * itself with --help, so it always matches the commands and options defined there.
 */
import { resolve } from "node:path";

/** Set in the environment of the cli.ts run below, which imports this macro again. */
const RENDERING = "KVR_RENDERING_HELP";

/**
 * The global help text exactly as the argument parser prints it (without the final newline), or
 * "" inside the rendering run itself (cli.ts then falls back to the parser).
 */
export function renderedHelp(): string {
  if (process.env[RENDERING]) return "";
  const cli = resolve(import.meta.dir, "../../cli.ts");
  const r = Bun.spawnSync([process.execPath, cli, "--help"], {
    env: { ...process.env, [RENDERING]: "1", NO_COLOR: "1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const text = r.stdout.toString();
  if (r.exitCode !== 0 || !text.includes("Usage:")) throw new Error(`rendering 'kvr --help' failed (exit ${r.exitCode}): ${r.stderr.toString().slice(0, 500)}`);
  return text.endsWith("\n") ? text.slice(0, -1) : text;
}
