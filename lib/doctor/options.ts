/**
 * What `kvr doctor` will probe and how, decided from the options before anything is sent:
 * seeds (--seed, or the nodes of a --nodes-file/--node topology), AUTH, concurrency, deadlines,
 * samples and the thresholds of the findings.
 */
import { sessionOptions, type NodeAddr } from "../client/index.ts";
import { InvalidTopology, readTopologyInput, validateTopology } from "../setnodes/input.ts";
import { list, parseDuration, parseHostPort, parseIntFlag, parsePositiveDuration, single, UsageError } from "../ui/units.ts";

export interface DoctorConfig {
  /** Where discovery starts, in the order given, without repeats. */
  seeds: NodeAddr[];
  auth: string | null;
  /** Probes in flight at once. */
  concurrency: number;
  connectMs: number;
  /** Reply deadline of every command. */
  timeoutMs: number;
  /** Looks at each node, `intervalMs` apart. */
  samples: number;
  intervalMs: number;
  /** A full sync without I/O for this long is stuck. */
  stuckAfterMs: number;
  /** A replica further behind its master than this many sequences lags. */
  maxLag: number;
}


/** Build the configuration from parsed options; throws UsageError naming the flag. */
export async function doctorConfig(opts: Record<string, unknown>, env: Record<string, string | undefined> = process.env): Promise<DoctorConfig> {
  const seeds: NodeAddr[] = [];
  const seen = new Set<string>();
  const add = (a: NodeAddr) => {
    const k = `${a.host}:${a.port}`;
    if (!seen.has(k)) {
      seen.add(k);
      seeds.push(a);
    }
  };
  for (const s of list(opts.seed)) add(parseHostPort("seed", s));
  if (opts.nodesFile !== undefined || list(opts.node).length > 0) {
    let topology;
    try {
      topology = validateTopology(await readTopologyInput(opts));
    } catch (e) {
      if (e instanceof InvalidTopology) throw new UsageError(e.message);
      throw e;
    }
    for (const n of topology.nodes) {
      if (n.port === 0) throw new UsageError(`${opts.nodesFile !== undefined ? "--nodes-file" : "--node"}: node ${n.id} has port 0, which cannot be probed`);
      add({ host: n.host, port: n.port });
    }
  }
  if (seeds.length === 0) throw new UsageError("give where to start: --seed host:port (repeatable), or the nodes of a topology with --nodes-file <path> or --node <line>");
  const { connectMs, timeoutMs, auth } = sessionOptions(opts, env);
  return {
    seeds,
    auth,
    concurrency: parseIntFlag("concurrency", single("concurrency", opts.concurrency) ?? "64", 1, 4096),
    connectMs,
    timeoutMs,
    samples: parseIntFlag("samples", single("samples", opts.samples) ?? "2", 1, 1000),
    intervalMs: parseDuration("interval", single("interval", opts.interval) ?? "2s"),
    stuckAfterMs: parsePositiveDuration("stuck-after", single("stuck-after", opts.stuckAfter) ?? "10s"),
    maxLag: parseIntFlag("max-lag", single("max-lag", opts.maxLag) ?? "100000", 0),
  };
}
