/** Starting `kvr lab` (the compiled binary) for tests, and talking to its nodes. */
import { pidAlive } from "../../lib/drill/sys.ts";
import type { ReadyNode } from "../../lib/lab/report.ts";
import { replyText } from "../../lib/resp/index.ts";
import { spawnKvr, type KvrProcess } from "../helpers/kvr.ts";
import { admin, info } from "../replica/helpers.ts";

/** One node of the lab's `ready` event. */
export type LabNode = ReadyNode;

export interface Lab {
  kvr: KvrProcess;
  seed: string;
  dir: string;
  nodesFile: string;
  nodesText: string;
  nodes: LabNode[];
  node(name: string): LabNode;
  /** SIGTERM the lab (SIGKILL after 10 s), then SIGKILL any node still alive; the lab's exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `kvr lab <args> --json`, resolved at its `ready` event. `defer` registers the stop, so every
 * process is gone after the test whatever happens.
 */
export async function startLab(args: string[], defer: (fn: () => unknown) => void, readyMs = 90_000): Promise<Lab> {
  const kvr = spawnKvr(["lab", ...args]);
  let nodes: LabNode[] = [];
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    const code = await kvr.stop(signal, 10_000);
    // The lab stops its nodes; should it not have, they are ended here, by pid.
    for (const n of nodes) if (pidAlive(n.pid)) process.kill(n.pid, "SIGKILL");
    return code;
  };
  defer(() => stop());
  const ready = await kvr.waitEvent((e) => e.event === "ready", readyMs);
  nodes = ready.nodes as LabNode[];
  return {
    kvr,
    seed: String(ready.seed),
    dir: String(ready.dir),
    nodesFile: String(ready.nodesFile),
    nodesText: String(ready.nodesText),
    nodes,
    node(name) {
      const n = nodes.find((x) => x.name === name);
      if (!n) throw new Error(`no lab node ${name}`);
      return n;
    },
    stop,
  };
}

/** A node's CLUSTERX VERSION. */
export async function versionOf(port: number): Promise<number> {
  return Number(replyText(await admin(port, ["CLUSTERX", "VERSION"])));
}

/** INFO replication of a node. */
export const replicationOf = (port: number) => info(port, "replication");
