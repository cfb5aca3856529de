/**
 * kvr lab — a local cluster of kvr processes to rehearse runbooks on: kvr masters (generated data,
 * cluster nodes with ids, a light write stream) and kvr replicas on free ports of 127.0.0.1,
 * topology version 1 pushed to every node, every replica synced; then it stays in the foreground
 * until SIGINT/SIGTERM and removes everything it started. Exit 0 when stopped by a signal, 2
 * usage, 4 the lab could not start.
 */
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { formatNodes, formatSlotRange } from "../cluster/index.ts";
import { spawnSelf, waitListening, type Child } from "../proc/children.ts";
import { Cleanup } from "../proc/cleanup.ts";
import { SetupError } from "../proc/errors.ts";
import { createTargetDir } from "../replica/targetdir.ts";
import { makePlan } from "../setnodes/plan.ts";
import { initialResult, pushOne } from "../setnodes/push.ts";
import { EXIT, type Output } from "../ui/output.ts";
import { stopOnSignals } from "../ui/signals.ts";
import { abortable, untilAborted } from "../ui/time.ts";
import { count, formatMs, UsageError } from "../ui/units.ts";
import { labConfig, type LabConfig } from "./options.ts";
import { labNodes, labTopology, type LabNode } from "./plan.ts";
import { printReady, type ReadyNode } from "./report.ts";

/** The lab's data directory: a fresh temp dir, or --dir (new or empty); its removal is registered. */
async function dataDir(cfg: LabConfig, cleanup: Cleanup): Promise<string> {
  if (cfg.dir === null) {
    const d = await mkdtemp(join(tmpdir(), "kvr-lab-"));
    cleanup.add(`remove ${d}`, () => rm(d, { recursive: true, force: true }));
    return d;
  }
  const d = resolve(cfg.dir);
  let created: boolean;
  try {
    created = await createTargetDir(cfg.dir);
    const entries = await readdir(d);
    if (entries.length > 0) throw new Error(`--dir ${cfg.dir} is not empty (it holds ${entries[0]}${entries.length > 1 ? ` and ${entries.length - 1} more` : ""}): give a new or empty directory`);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  // Everything the lab writes there is removed; the directory too when the lab created it.
  cleanup.add(`remove the lab's files in ${d}`, async () => {
    if (created) await rm(d, { recursive: true, force: true });
    else for (const name of await readdir(d)) await rm(join(d, name), { recursive: true, force: true });
  });
  return d;
}

/** Start one kvr child and wait until it listens; its stop is registered. */
async function startNode(name: string, args: string[], children: Map<string, Child>, signal: AbortSignal) {
  // No password anywhere in the lab, whatever the environment says.
  const child = spawnSelf(name, args, { env: { KVR_REQUIREPASS: "", KVR_MASTERAUTH: "", KVR_AUTH: "" } });
  children.set(name, child);
  return abortable(waitListening(child), signal);
}

/** Push topology version 1 to every node; SetupError naming the nodes that did not take it. */
async function pushVersion1(topology: ReturnType<typeof labTopology>): Promise<void> {
  const plan = makePlan({ version: "1", all: true, connectTimeout: "3s", timeout: "5s" }, topology, {});
  const results = await Promise.all(plan.targets.map((t) => pushOne(t, plan, 1, initialResult(t))));
  const failed = results.filter((r) => r.result !== "ok");
  if (failed.length) throw new SetupError(`topology version 1 was not taken by ${failed.map((r) => `${r.address} (${r.phase}: ${r.detail})`).join(", ")}`);
}

export async function run(opts: Record<string, unknown>, out: Output): Promise<number> {
  const cfg = labConfig(opts);
  const t0 = performance.now();
  const cleanup = new Cleanup((m) => out.warn(m));
  const stop = stopOnSignals((sig) => out.info(`${sig}: stopping the lab and removing everything it started`));

  const children = new Map<string, Child>();
  let stopping = false;
  let code: number = EXIT.OK;
  try {
    const dir = await dataDir(cfg, cleanup);
    cleanup.add("stop the lab's processes", async () => {
      stopping = true;
      await Promise.all([...children.values()].map((c) => c.stop(2000)));
    });
    const nodes = labNodes(cfg.masters, cfg.replicas);
    out.info(`starting ${count(cfg.masters, "master")} × ${count(cfg.replicas, "replica")} in ${dir}`);
    const addrs = new Map<string, { host: string; port: number }>();
    const start = async (n: LabNode) => {
      const args =
        n.role === "master"
          ? ["master", "--port", "0", "--node-id", n.id, "--generate", /:seed=/i.test(cfg.generate) ? cfg.generate : `${cfg.generate}:seed=${n.name.slice(1)}`, "--write-rate", String(cfg.writeRate)]
          : ["replica", "--port", "0", "--node-id", n.id, "--dir", join(dir, n.name), "--read-timeout", cfg.readTimeout];
      const a = await startNode(n.name, args, children, stop.signal);
      addrs.set(n.name, { host: "127.0.0.1", port: a.port });
    };
    await Promise.all(nodes.map(start));
    const topology = labTopology(nodes, (n) => addrs.get(n.name)!);
    await abortable(pushVersion1(topology), stop.signal);
    const left = () => Math.max(1, cfg.timeoutMs - (performance.now() - t0));
    await Promise.all(
      nodes
        .filter((n) => n.role === "slave")
        .map((n) => abortable(children.get(n.name)!.waitEvent((e) => e.event === "state" && e.state === "connected", Math.round(left()), "a completed sync (state connected)", `--timeout ${formatMs(cfg.timeoutMs)}`), stop.signal)),
    );
    const nodesFile = join(dir, "nodes.txt");
    const nodesText = formatNodes(topology);
    await writeFile(nodesFile, nodesText + "\n");

    const ready: ReadyNode[] = nodes.map((n, i) => {
      const t = topology.nodes[i];
      const a = addrs.get(n.name)!;
      return {
        name: n.name,
        id: n.id,
        role: n.role,
        host: a.host,
        port: a.port,
        address: `${a.host}:${a.port}`,
        masterId: t.masterId,
        master: n.of,
        slots: t.slots.map(formatSlotRange).join(" ") || null,
        pid: children.get(n.name)!.pid,
        dir: n.role === "slave" ? join(dir, n.name) : null,
      };
    });
    const seed = ready[0].address;
    printReady(out, { seed, version: 1, dir, nodesFile, nodesText, nodes: ready, ms: Math.round(performance.now() - t0) });

    for (const n of ready) {
      const child = children.get(n.name)!;
      void child.exited.then((exit) => {
        if (stopping) return;
        if (out.json) out.event("node-exit", { name: n.name, id: n.id, address: n.address, pid: n.pid, code: exit });
        else out.warn(`${n.name} (${n.address}, pid ${n.pid}) exited with code ${exit}; the lab keeps running`);
      });
    }
    await untilAborted(stop.signal);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if (!stop.signal.aborted) {
      out.error(`the lab could not start: ${e instanceof SetupError ? e.message : `unexpected error: ${(e as Error)?.message ?? String(e)}`}; everything it started is being removed`);
      code = EXIT.DRILL_ERROR;
    }
  } finally {
    await cleanup.run();
    stop.dispose();
  }
  out.event("stopped", { signal: stop.by(), ms: Math.round(performance.now() - t0) }, `lab stopped after ${formatMs(performance.now() - t0)}: every process it started is gone, its files removed`);
  return code;
}
