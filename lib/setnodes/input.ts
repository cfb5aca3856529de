/**
 * The topology to push: read from --nodes-file (or stdin), --nodes, or repeated --node, and
 * validated with Kvrocks' own rules before anything is sent.
 */
import { open } from "node:fs/promises";
import { describeTopologyError, MAX_NODES_BYTES, parseNodes, TopologyError, type Topology } from "../cluster/index.ts";
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

/** Thrown by a bounded read that found more than it allows. */
class TooLarge extends Error {}

/** Concatenate chunks, failing with TooLarge as soon as they pass `max` bytes in all. */
async function collect(chunks: AsyncIterable<Uint8Array>, max: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const c of chunks) {
    total += c.byteLength;
    if (total > max) throw new TooLarge();
    parts.push(c);
  }
  return Buffer.concat(parts);
}

/** The chunks of an open file, read until EOF (a device or a FIFO has no size to trust). */
async function* fileChunks(path: string): AsyncGenerator<Uint8Array> {
  const fh = await open(path, "r");
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(1 << 20);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/** stdin's chunks; the reader is released when the caller stops early. */
async function* stdinChunks(): AsyncGenerator<Uint8Array> {
  const reader = Bun.stdin.stream().getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

const tooLarge = (what: string) =>
  new UsageError(
    `${what}: more than ${MAX_NODES_BYTES / 1024 / 1024} MiB (${MAX_NODES_BYTES} bytes), the largest topology a node accepts (its largest command argument); stopped reading there, nothing was sent`,
  );

/**
 * Pick the one topology source among the options and read its text. A file or stdin is read
 * to at most MAX_NODES_BYTES: /dev/zero or an endless pipe is a usage error, not a hang.
 */
export async function readTopologyInput(
  opts: Record<string, unknown>,
  stdin: () => AsyncIterable<Uint8Array> = stdinChunks,
): Promise<TopologyInput> {
  const file = opts.nodesFile;
  const nodes = opts.nodes;
  const lines = list(opts.node);
  const given = [file !== undefined, nodes !== undefined, lines.length > 0].filter(Boolean).length;
  if (given === 0) throw new UsageError("give the topology with --from <host:port> (a live node), --nodes-file <path> ('-' = stdin), --nodes <string> or --node <line> (repeatable)");
  if (given > 1) throw new UsageError("give the topology one way only: --nodes-file, --nodes or --node");
  if (file !== undefined) {
    if (Array.isArray(file)) throw new UsageError("--nodes-file: give it once");
    const path = String(file);
    const what = path === "-" ? "--nodes-file - (stdin)" : `--nodes-file ${path}`;
    try {
      const bytes = await collect(path === "-" ? stdin() : fileChunks(path), MAX_NODES_BYTES);
      return { source: path === "-" ? "stdin" : what, text: bytes.toString("utf8") };
    } catch (e) {
      if (e instanceof TooLarge) throw tooLarge(what);
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
