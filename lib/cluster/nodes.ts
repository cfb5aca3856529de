/**
 * Reading `CLUSTER NODES` text (docs/protocol.md §6, §8) back into a topology: one line per node,
 * `<id> <host>:<port>@<cport>[,<hostname>] <flags> <master-id>|- <ping-sent> <pong-recv> <epoch> <link> [<slot>…]`.
 * Kvrocks prints its topology version as the epoch of every line. Pure: no sockets.
 */
import { formatNode, formatNodes, NODE_ID_LEN, parseNodes, type ClusterNode, type Topology } from "./topology.ts";

/** One line of CLUSTER NODES. */
export interface ClusterNodesEntry {
  id: string;
  host: string;
  port: number;
  /** The cluster bus port after '@' (Kvrocks: port + 10000); null when absent. */
  busPort: number | null;
  /** The flags as printed: myself, master, slave, fail, … */
  flags: string[];
  myself: boolean;
  role: "master" | "slave" | "unknown";
  /** "-" for a master. */
  masterId: string;
  pingSent: number | null;
  pongRecv: number | null;
  /** Config epoch (Kvrocks: the topology version). */
  epoch: number | null;
  /** "connected" or "disconnected". */
  link: string;
  /** Slot ranges served, in the order printed ([n, n] for one slot); migration markers `[…]` are left out. */
  slots: Array<[number, number]>;
}

/** A parsed CLUSTER NODES reply. */
export interface ClusterNodesView {
  entries: ClusterNodesEntry[];
  /** The line flagged `myself`, if any. */
  myself: ClusterNodesEntry | null;
  /** The epoch printed on the lines when they agree (Kvrocks: the topology version), else null. */
  version: number | null;
}

/** A CLUSTER NODES line that cannot be read: which line and why. */
export class ClusterNodesError extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`CLUSTER NODES line ${line}: ${reason}`);
    this.name = "ClusterNodesError";
  }
}

const num = (s: string): number | null => (/^-?\d{1,18}$/.test(s) ? Number(s) : null);

/** `host:port@cport[,hostname]`; the host may itself hold colons (IPv6). */
function parseAddress(text: string, line: number): { host: string; port: number; busPort: number | null } {
  const noName = text.split(",")[0];
  const at = noName.indexOf("@");
  const hostPort = at >= 0 ? noName.slice(0, at) : noName;
  const busText = at >= 0 ? noName.slice(at + 1) : null;
  const colon = hostPort.lastIndexOf(":");
  if (colon <= 0) throw new ClusterNodesError(line, `address ${JSON.stringify(text)} is not host:port@cport`);
  let host = hostPort.slice(0, colon);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  const port = num(hostPort.slice(colon + 1));
  if (port === null || port < 0 || port > 65535) throw new ClusterNodesError(line, `port in ${JSON.stringify(text)} is not a port number`);
  const busPort = busText === null ? null : num(busText);
  return { host, port, busPort };
}

function parseSlot(field: string, line: number): [number, number] | null {
  if (field.startsWith("[")) return null; // importing / migrating marker
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(field);
  const a = m ? Number(m[1]) : NaN;
  const b = m ? Number(m[2] ?? m[1]) : NaN;
  if (!m || a > b || b > 16383) throw new ClusterNodesError(line, `slot ${JSON.stringify(field)} is not a slot or range within 0-16383`);
  return [a, b];
}

/**
 * Parse CLUSTER NODES text. Lines end in "\n" (a "\r" before it is tolerated); blank lines are
 * skipped. Throws ClusterNodesError naming the first line that is not a node line.
 */
export function parseClusterNodes(text: string): ClusterNodesView {
  const entries: ClusterNodesEntry[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].replace(/\r$/, "");
    if (raw.trim() === "") continue;
    const line = i + 1;
    const f = raw.trim().split(/ +/);
    if (f.length < 8) throw new ClusterNodesError(line, `${f.length} fields, expected at least 8`);
    const [id, address, flagText, masterId, ping, pong, epoch, link] = f;
    if (Buffer.byteLength(id, "utf8") !== NODE_ID_LEN) throw new ClusterNodesError(line, `node id ${JSON.stringify(id.slice(0, 60))} is not ${NODE_ID_LEN} characters`);
    const { host, port, busPort } = parseAddress(address, line);
    const flags = flagText.split(",").filter((x) => x !== "");
    const role = flags.includes("master") ? "master" : flags.includes("slave") || flags.includes("replica") ? "slave" : "unknown";
    if (role === "slave" && Buffer.byteLength(masterId, "utf8") !== NODE_ID_LEN) throw new ClusterNodesError(line, `a slave's master id ${JSON.stringify(masterId)} is not ${NODE_ID_LEN} characters`);
    const slots: Array<[number, number]> = [];
    for (const s of f.slice(8)) {
      const r = parseSlot(s, line);
      if (r) slots.push(r);
    }
    entries.push({ id, host, port, busPort, flags, myself: flags.includes("myself"), role, masterId, pingSent: num(ping), pongRecv: num(pong), epoch: num(epoch), link, slots });
  }
  const epochs = new Set(entries.map((e) => e.epoch));
  return { entries, myself: entries.find((e) => e.myself) ?? null, version: epochs.size === 1 ? [...epochs][0] : null };
}

/** A line of the view as a nodes-string line (`<id> <host> <port> <role> <master|-> [slots]`), the form topologies are compared in. */
export function canonicalLine(e: ClusterNodesEntry): string {
  return formatNode(e);
}

/** The content of a view's entries as sorted nodes-string lines joined by "\n": equal keys = the same topology. */
export function topologyKey(entries: ClusterNodesEntry[]): string {
  return entries.map(canonicalLine).sort().join("\n");
}

/**
 * The topology a CLUSTER NODES reply describes, checked with Kvrocks' SETNODES rules (throws
 * TopologyError when Kvrocks would refuse it, ClusterNodesError when a node has no role).
 */
export function topologyFromClusterNodes(view: ClusterNodesView): Topology {
  const nodes: ClusterNode[] = view.entries.map((e, i) => {
    if (e.role === "unknown") throw new ClusterNodesError(i + 1, `node ${e.id} is neither master nor slave (flags ${e.flags.join(",")})`);
    return { id: e.id, host: e.host, port: e.port, role: e.role, masterId: e.role === "master" ? "-" : e.masterId, slots: e.role === "master" ? e.slots : [] };
  });
  return parseNodes(formatNodes({ nodes }));
}

/**
 * CLUSTER NODES text as a SETNODES nodes string (canonical, see formatNodes): `@cport`,
 * `myself,`, ping/pong times, epoch and link state dropped, slot ranges kept. The way back is
 * formatClusterNodes (topology.ts).
 */
export function nodesTextFromClusterNodes(text: string): string {
  return formatNodes(topologyFromClusterNodes(parseClusterNodes(text)));
}
