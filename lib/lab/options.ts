/** `kvr lab` options, checked before anything starts (UsageError names the flag). */
import { parseGenerateSpec } from "../master/generate.ts";
import { parseWriteRate } from "../master/command.ts";
import { parseIntFlag, parsePositiveDuration, single, UsageError } from "../ui/units.ts";

export interface LabConfig {
  masters: number;
  replicas: number;
  /** Where the replicas' directories go; null = a fresh temp dir, removed on exit. */
  dir: string | null;
  /** Each master's generated checkpoint, `<count>x<size>` (master i gets seed i unless a seed is given). */
  generate: string;
  /** WriteBatches per second each master streams to its replicas. */
  writeRate: number;
  /** The replicas' idle read deadline (a long one makes them hang like a build without the fetch read deadline). */
  readTimeout: string;
  /** How long start-up (processes, topology, every replica synced) may take. */
  timeoutMs: number;
}

/** Parse `kvr lab` options; throws UsageError. */
export function labConfig(opts: Record<string, unknown>): LabConfig {
  const generate = single("generate", opts.generate) ?? "4x256KiB";
  parseGenerateSpec(generate);
  const readTimeout = single("read-timeout", opts.readTimeout) ?? "3s";
  parsePositiveDuration("read-timeout", readTimeout);
  const timeoutMs = parsePositiveDuration("timeout", single("timeout", opts.timeout) ?? "60s");
  const dir = single("dir", opts.dir);
  if (dir === "") throw new UsageError("--dir: give a path");
  return {
    masters: parseIntFlag("masters", single("masters", opts.masters) ?? "3", 1, 16),
    replicas: parseIntFlag("replicas", single("replicas", opts.replicas) ?? "1", 0, 4),
    dir: dir ?? null,
    generate,
    writeRate: parseWriteRate(single("write-rate", opts.writeRate) ?? "10"),
    readTimeout,
    timeoutMs,
  };
}
