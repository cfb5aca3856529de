/** What `kvr lab` prints once ready: the nodes and where to start (human), or one `ready` event (--json). */
import { tableLines, type Output } from "../ui/output.ts";
import { formatMs } from "../ui/units.ts";

/** One node of a ready lab, as the `ready` event lists it. */
export interface ReadyNode {
  name: string;
  id: string;
  role: "master" | "slave";
  host: string;
  port: number;
  address: string;
  /** "-" for a master, else its master's id. */
  masterId: string;
  /** The master's name, for a replica. */
  master: string | null;
  /** The slot ranges of a master ("0-8191"), null for a replica. */
  slots: string | null;
  pid: number;
  /** A replica's data directory. */
  dir: string | null;
}

export interface Ready {
  /** A node to start from (the first master): --seed / --from / a runbook's SEED. */
  seed: string;
  version: number;
  dir: string;
  /** The topology as a nodes file (kvr setnodes --nodes-file). */
  nodesFile: string;
  nodesText: string;
  nodes: ReadyNode[];
  /** Start-up time. */
  ms: number;
}

/** The ready lab: a table and what to try (human), or one `ready` event (--json). */
export function printReady(out: Output, r: Ready): void {
  if (out.json) {
    out.event("ready", { ...r });
    return;
  }
  const masters = r.nodes.filter((n) => n.role === "master");
  const head = ["NAME", "ROLE", "ADDRESS", "NODE ID", "SLOTS / MASTER", "PID"];
  const rows = r.nodes.map((n) => [n.name, n.role, n.address, n.id, n.role === "master" ? (n.slots ?? "-") : `follows ${n.master}`, String(n.pid)]);
  const [headLine, ...lines] = tableLines(head, rows);
  const m = masters[0];
  out.print(out.c.bold(`kvr lab ready in ${formatMs(r.ms)}: ${r.nodes.length} nodes, topology version ${r.version}`));
  out.print("");
  out.print(out.c.bold(headLine));
  for (const l of lines) out.print(l);
  out.print("");
  out.print(`seed:        ${r.seed}`);
  out.print(`nodes file:  ${r.nodesFile}`);
  out.print(`data:        ${r.dir}`);
  out.print("");
  out.print("Rehearse in another terminal:");
  out.print(`  kvr doctor --seed ${r.seed}`);
  out.print(`  kvr setnodes --from ${r.seed} --dry-run`);
  out.print(`  kill -USR1 ${m.pid}        # stall every connection of ${m.name} (kill -USR2 clears; or redis-cli -p ${m.port} KVR FAULT ADD <spec>)`);
  const other = r.nodes.find((n) => n !== m);
  if (r.nodes.some((n) => n.master === m.name) && other) out.print(`  kill -9 ${m.pid}           # ${m.name} dies; then: runbooks/failover.sh ${other.address} ${m.id}`);
  out.print("Ctrl-C stops the lab and removes everything it started.");
}
