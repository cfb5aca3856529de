/**
 * What `kvr setnodes` will do, decided from the options before anything is sent: version (or
 * bump), targets, deadlines, AUTH, and the optional steps.
 */
import { formatNodes, type ClusterNode, type Topology } from "../cluster/index.ts";
import { sessionOptions } from "../client/index.ts";
import { list, parseHostPort, parseIntFlag, single, UsageError } from "../ui/units.ts";

export interface Target {
  host: string;
  port: number;
  /** "host:port" as given. */
  address: string;
  /** The topology node at this host and port, when there is one. */
  node: ClusterNode | null;
}

export interface Plan {
  topology: Topology;
  /** The canonical nodes string sent with SETNODES. */
  nodesText: string;
  /** The same as bytes, encoded once for every target (a 200-node topology is ~20 KB). */
  nodesBytes: Buffer;
  /** null with --bump (read from the targets) or in a dry run without --version. */
  version: number | null;
  bump: boolean;
  force: boolean;
  targets: Target[];
  connectMs: number;
  timeoutMs: number;
  auth: string | null;
  setNodeId: boolean;
  dryRun: boolean;
  verify: boolean;
  retries: number;
}

/** Find the topology node listening at host:port (exact host string). */
export function nodeAt(t: Topology, host: string, port: number): ClusterNode | null {
  return t.nodes.find((n) => n.host === host && n.port === port) ?? null;
}


/**
 * The version and target options, checked without the topology (so a usage error comes before
 * anything is read from a node); throws UsageError.
 */
export function versionAndTargets(opts: Record<string, unknown>): { dryRun: boolean; bump: boolean; version: number | null; all: boolean; given: string[] } {
  const dryRun = !!opts.dryRun;
  const bump = !!opts.bump;
  const versionOpt = single("version", opts.version);
  if (bump && versionOpt !== undefined) throw new UsageError("give --version <n> or --bump, not both");
  if (!bump && versionOpt === undefined && !dryRun) throw new UsageError("give the topology version: --version <n>, or --bump to use the targets' highest version + 1");
  const version = versionOpt === undefined ? null : parseIntFlag("version", versionOpt, 0, Number.MAX_SAFE_INTEGER);
  const all = !!opts.all;
  const given = list(opts.target);
  if (all && given.length > 0) throw new UsageError("give --target host:port (repeatable) or --all, not both");
  if (!all && given.length === 0 && !dryRun) throw new UsageError("give the nodes to push to: --target host:port (repeatable), or --all for every node of the topology");
  return { dryRun, bump, version, all, given };
}

/** Build the plan from parsed options and the validated topology; throws UsageError. */
export function makePlan(opts: Record<string, unknown>, topology: Topology, env: Record<string, string | undefined> = process.env): Plan {
  const { dryRun, bump, version, all, given } = versionAndTargets(opts);
  const targets: Target[] = [];
  const seen = new Set<string>();
  const add = (host: string, port: number) => {
    const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    if (seen.has(address)) return;
    seen.add(address);
    targets.push({ host, port, address, node: nodeAt(topology, host, port) });
  };
  if (all) {
    for (const n of topology.nodes) {
      if (n.port === 0) throw new UsageError(`--all: node ${n.id} has port 0, which cannot be pushed to; use --target`);
      add(n.host, n.port);
    }
  } else for (const t of given) {
    const { host, port } = parseHostPort("target", t);
    add(host, port);
  }

  const setNodeId = !!opts.setNodeId;
  if (setNodeId) {
    const missing = targets.filter((t) => !t.node);
    if (missing.length > 0) {
      throw new UsageError(`--set-node-id: ${missing.map((t) => t.address).join(", ")} is not a node of the topology (no node with that host and port)`);
    }
  }

  const nodesText = formatNodes(topology);
  return {
    topology,
    nodesText,
    nodesBytes: Buffer.from(nodesText, "utf8"),
    version,
    bump,
    force: !!opts.force,
    targets,
    ...sessionOptions(opts, env),
    setNodeId,
    dryRun,
    verify: !!opts.verify,
    retries: parseIntFlag("retries", single("retries", opts.retries ?? "0"), 0, 100),
  };
}
