/**
 * Helpers for kvr doctor tests: run the compiled binary with --json and split its events; start
 * kvr masters (cluster nodes with --node-id) and kvr replicas, push a topology to them.
 */
import { replyText } from "../../lib/resp/index.ts";
import { cleanupAfterEach, jsonLines, runKvr } from "../helpers/kvr.ts";
import { admin, startMaster, startReplica, until, info, type Master, type Replica } from "../replica/helpers.ts";

export type Obj = Record<string, any>;

export interface DoctorRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Spawn → exit of the doctor, in ms. */
  wallMs: number;
  nodes: Obj[];
  findings: Obj[];
  summary: Obj;
}

/** `kvr doctor <args> --json`; the events split by kind. */
export async function doctor(args: string[], env: Record<string, string> = {}): Promise<DoctorRun> {
  const t0 = performance.now();
  const r = await runKvr(["doctor", ...args, "--json"], { env, timeoutMs: 30_000 });
  const wallMs = performance.now() - t0;
  const events = jsonLines(r.stdout);
  const summary = events.find((e) => e.event === "summary");
  if (!summary) throw new Error(`no summary event (exit ${r.code}); stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return { ...r, wallMs, nodes: events.filter((e) => e.event === "node"), findings: events.filter((e) => e.event === "finding"), summary };
}

/** The findings of one code. */
export const findingsOf = (run: DoctorRun, code: string) => run.findings.filter((f) => f.code === code);

/** The node event of an address. */
export function nodeOf(run: DoctorRun, address: string): Obj {
  const n = run.nodes.find((x) => x.address === address);
  if (!n) throw new Error(`no node event for ${address}: ${JSON.stringify(run.nodes.map((x) => x.address))}`);
  return n;
}

export const id = (c: string) => c.repeat(40);
export const addr = (port: number) => `127.0.0.1:${port}`;

/** Starting kvr processes that are stopped after the test. */
export function lab() {
  const { defer, temp } = cleanupAfterEach();
  return {
    defer,
    temp,
    /** kvr master with small generated data; `nodeId` puts it in cluster mode. */
    async master(nodeId: string | null, args: string[] = []): Promise<Master> {
      const data = args.includes("--generate") ? [] : ["--generate", "4x64KiB"];
      const m = await startMaster([...data, ...(nodeId ? ["--node-id", nodeId] : []), ...args]);
      defer(() => m.stop("SIGKILL"));
      return m;
    },
    /** kvr replica in a fresh directory. */
    async replica(nodeId: string | null, args: string[] = []): Promise<Replica> {
      const r = await startReplica(["--dir", temp(), ...(nodeId ? ["--node-id", nodeId] : []), ...args]);
      defer(() => r.kvr.stop("SIGKILL"));
      return r;
    },
  };
}

/** CLUSTERX SETNODES <lines> <version> on every port; each must reply +OK. */
export async function push(ports: number[], lines: string[], version: number): Promise<void> {
  await Promise.all(
    ports.map(async (p) => {
      const r = replyText(await admin(p, ["CLUSTERX", "SETNODES", lines.join("\n"), String(version)]));
      if (r !== "OK") throw new Error(`SETNODES on ${p}: ${r}`);
    }),
  );
}

/** Wait until the replica on `port` streams from its master (link up). */
export async function linkUp(port: number): Promise<void> {
  await until(async () => (await info(port)).master_link_status === "up", 10_000);
}
