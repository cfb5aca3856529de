/**
 * The topology to push: read from --nodes-file (or stdin), --nodes, or repeated --node, and
 * validated with Kvrocks' own rules before anything is sent.
 */
import { readFileSync } from "node:fs";
import { describeTopologyError, parseNodes, TopologyError, type Topology } from "../cluster/index.ts";
import { list, UsageError } from "../ui/units.ts";

/** A topology Kvrocks would reject: the CLI prints `message` and exits 2, sending nothing. */
export class InvalidTopology extends Error {
  constructor(
    readonly source: string,
    readonly error: TopologyError,
    readonly where: string,
  ) {
    super(`invalid topology (${source}): ${where}`);
    this.name = "InvalidTopology";
  }
}

export interface TopologyInput {
  /** Where it came from, for messages: "--nodes-file cluster.txt", "--nodes", "--node". */
  source: string;
  text: string;
}

/** Pick the one topology source among the options and read its text. */
export async function readTopologyInput(
  opts: Record<string, unknown>,
  readStdin: () => Promise<string> = () => Bun.stdin.text(),
): Promise<TopologyInput> {
  const file = opts.nodesFile;
  const nodes = opts.nodes;
  const lines = list(opts.node);
  const given = [file !== undefined, nodes !== undefined, lines.length > 0].filter(Boolean).length;
  if (given === 0) throw new UsageError("give the topology with --nodes-file <path> ('-' = stdin), --nodes <string> or --node <line> (repeatable)");
  if (given > 1) throw new UsageError("give the topology one way only: --nodes-file, --nodes or --node");
  if (file !== undefined) {
    if (Array.isArray(file)) throw new UsageError("--nodes-file: give it once");
    const path = String(file);
    if (path === "-") return { source: "stdin", text: await readStdin() };
    try {
      return { source: `--nodes-file ${path}`, text: readFileSync(path, "utf8") };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UsageError(`--nodes-file: cannot read '${path}'${code ? ` (${code})` : ""}`);
    }
  }
  if (nodes !== undefined) {
    if (Array.isArray(nodes)) throw new UsageError("--nodes: give it once (or use --node per node)");
    return { source: "--nodes", text: String(nodes).replaceAll("\\n", "\n") };
  }
  return { source: "--node", text: lines.join("\n") };
}

/** Validate with Kvrocks' rules; throws InvalidTopology naming the line (or the n-th --node) and field. */
export function validateTopology(input: TopologyInput): Topology {
  try {
    return parseNodes(input.text);
  } catch (e) {
    if (!(e instanceof TopologyError)) throw e;
    let where = describeTopologyError(e);
    if (input.source === "--node") where = where.replace(/^line (\d+)/, "--node #$1");
    throw new InvalidTopology(input.source, e, where);
  }
}
