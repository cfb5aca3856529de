/**
 * kvr replica: a Kvrocks-compatible replica. Full sync with deadlines on every connection,
 * instant stop, and an admin port answering CLUSTERX SETNODES, SLAVEOF and INFO.
 */
import { rmdir } from "node:fs/promises";
import type { Output } from "../ui/output.ts";
import { EXIT } from "../ui/output.ts";
import { isNetError } from "../net/index.ts";
import { formatBytes, formatMs, parseDuration, parseHostPort, parseIntFlag, parsePort, parseSize, portInUse, UsageError } from "../ui/units.ts";
import { startAdmin } from "./admin.ts";
import { checkTargetDir } from "./files.ts";
import { createTargetDir } from "./targetdir.ts";
import { ReplicaNode } from "./node.ts";
import type { RunConfig, RunOutcome } from "./replication.ts";
import { progressLine, Status, type HostPort } from "./status.ts";
import type { FsyncPolicy } from "./streamlog.ts";

export interface ReplicaOptions {
  run: RunConfig;
  master: HostPort | null;
  bind: string;
  port: number;
  nodeId: string | null;
  requirepass?: string;
  once: boolean;
}

/** --max-retries when --once is given without it. */
export const ONCE_MAX_RETRIES = 5;

/** Turn the CLI's option values into a checked configuration (UsageError on bad input). */
export function parseOptions(opts: Record<string, unknown>, env: Record<string, string | undefined> = process.env): ReplicaOptions {
  if (typeof opts.dir !== "string" || opts.dir === "") throw new UsageError("--dir <path> is required: the target directory for the checkpoint files");
  const nodeId = opts.nodeId === undefined ? null : String(opts.nodeId);
  if (nodeId !== null && nodeId.length !== 40) throw new UsageError(`--node-id: must be exactly 40 characters (got ${nodeId.length})`);
  const workersText = String(opts.workers ?? "auto");
  const workers = workersText === "auto" ? null : parseIntFlag("workers", workersText, 1, 64);
  const str = (v: unknown) => (v === undefined || v === null || v === "" ? undefined : String(v));
  return {
    run: {
      dir: opts.dir,
      dbName: String(opts.dbName ?? "change.me.db"),
      masterauth: str(opts.masterauth) ?? str(env.KVR_MASTERAUTH),
      connectMs: parseDuration("connect-timeout", opts.connectTimeout ?? "3s"),
      readMs: parseDuration("read-timeout", opts.readTimeout ?? "3s"),
      streamMs: parseDuration("stream-timeout", opts.streamTimeout ?? "10s"),
      maxFileSize: parseSize("max-file-size", opts.maxFileSize ?? "64GiB"),
      workers,
      retryDelayMs: parseDuration("retry-delay", opts.retryDelay ?? "1s"),
      // --once is for scripts: a finite default so a dead master cannot hang them.
      maxRetries: opts.maxRetries === undefined ? (opts.once ? ONCE_MAX_RETRIES : null) : parseIntFlag("max-retries", opts.maxRetries),
      listeningPort: 0,
      follow: !opts.once,
      streamFsync: parseFsync(opts.streamFsync ?? "1s"),
      lagProbe: !!opts.lagProbe,
      // KVR_FETCH_THREAD=0: receive files through Bun's sockets (the portable path), for comparison and tests.
      bulk: env.KVR_FETCH_THREAD !== "0",
    },
    master: opts.master === undefined ? null : parseHostPort("master", opts.master),
    bind: String(opts.bind ?? "127.0.0.1"),
    // --once needs no fixed admin port: two one-shot syncs never collide on it.
    port: parsePort("port", opts.port ?? (opts.once ? "0" : "6667")),
    nodeId,
    requirepass: str(opts.requirepass) ?? str(env.KVR_REQUIREPASS),
    once: !!opts.once,
  };
}

/** --stream-fsync: always | 1s | never. */
export function parseFsync(v: unknown): FsyncPolicy {
  const s = String(v);
  if (s === "always" || s === "1s" || s === "never") return s;
  throw new UsageError(`--stream-fsync: '${s}' is not one of always, 1s, never`);
}

/** Exit code of a run that gave up: 3 when its last failure was a deadline, else 1. */
export function failureExitCode(code: string): number {
  return code === "CONNECT_TIMEOUT" || code === "READ_TIMEOUT" || code === "WRITE_TIMEOUT" ? EXIT.DEADLINE : EXIT.FAIL;
}

/**
 * `kvr replica`: runs until SIGTERM/SIGINT, or with --once until one full sync completed. A run
 * that gives up (--max-retries) ends the process too, unless it was started without --master.
 */
export async function run(rawOpts: Record<string, unknown>, out: Output): Promise<number> {
  const o = parseOptions(rawOpts);
  let created = false;
  try {
    created = await createTargetDir(o.run.dir);
    await checkTargetDir(o.run.dir);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const status = new Status(out);
  const node = new ReplicaNode(o.run, status, out);
  node.cluster = { ...node.cluster, nodeId: o.nodeId };
  if (o.bind !== "127.0.0.1" && o.bind !== "::1" && o.bind !== "localhost" && !o.requirepass) {
    out.warn(`admin port bound to ${o.bind} without a password: anyone who can reach it can move this replica (set --requirepass or KVR_REQUIREPASS)`);
  }
  const server = await startAdmin(node, { host: o.bind, port: o.port, requirepass: o.requirepass }, out).catch(async (e) => {
    // Nothing is left behind: a --dir this run created (still empty) goes again.
    if (created) await rmdir(o.run.dir).catch(() => {});
    throw isNetError(e, "ADDR_IN_USE") ? portInUse("the admin port", `${o.bind}:${o.port}`) : e;
  });
  if (created) out.event("dir-created", { dir: o.run.dir, mode: "0700" }, `created --dir ${o.run.dir} (mode 0700)`);
  o.run.listeningPort = server.port;
  out.event("listening", { host: o.bind, port: server.port }, `listening on ${o.bind}:${server.port}`);

  const ticker = out.tty
    ? setInterval(() => {
        if (status.state === "fetch_files") out.progress(progressLine(status));
      }, 250)
    : null;

  const finished = new Promise<{ kind: "signal"; signal: string } | { kind: "outcome"; outcome: RunOutcome }>((resolve) => {
    const onSignal = (signal: string) => resolve({ kind: "signal", signal });
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
    node.onOutcome((outcome) => {
      if (o.once) resolve({ kind: "outcome", outcome });
      // Gave up (--max-retries exhausted): a replica given --master ends; one started without it
      // is an operator's node (its master came from SETNODES/SLAVEOF) and stays up in state error.
      else if (outcome.kind === "failed" && o.master) resolve({ kind: "outcome", outcome });
    });
  });

  if (o.master) node.exclusive(() => node.replicateFrom(o.master, "--master"));
  else out.info("no --master: waiting for CLUSTERX SETNODES or SLAVEOF");

  const end = await finished;
  if (ticker) clearInterval(ticker);
  out.clearProgress();
  let code: number = EXIT.OK;
  if (end.kind === "signal") {
    const ms = await node.exclusive(() => node.stopRun(end.signal));
    out.info(`${end.signal}: stopped in ${formatMs(ms)}`);
  } else if (end.outcome.kind === "synced") {
    const s = end.outcome.summary;
    const rate = s.ms > 0 ? (s.bytes / s.ms) * 1000 : 0;
    out.result({ ok: true, files: s.files, skipped: s.skipped, fetched: s.fetched, bytes: s.bytes, ms: s.ms, rate: Math.round(rate), attempts: s.attempts });
    out.print(
      `synced ${s.files} files (${s.skipped} skipped, ${s.fetched} fetched), ${formatBytes(s.bytes)} in ${formatMs(s.ms)}, ${formatBytes(rate)}/s` +
        (s.attempts > 1 ? ` (${s.attempts} attempts)` : ""),
    );
  } else if (end.outcome.kind === "failed") {
    const e = end.outcome.error;
    const m = status.master;
    const what = o.once ? "full sync failed" : `replication from ${m ? `${m.host}:${m.port}` : "the master"} gave up`;
    out.error(`${what} after ${status.attempt} attempt(s): ${e.message}`);
    out.result({ ok: false, code: e.code, error: e.message, attempts: status.attempt });
    code = failureExitCode(e.code);
  }
  await node.exclusive(() => node.stopRun("exit"));
  await server.close(100);
  return code;
}
