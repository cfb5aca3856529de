/**
 * The failover edits of `kvr setnodes`: --promote <id> (with --drop-old) and --remove <id>, applied
 * to the topology read (--from a live node, or a file) before it is validated and pushed.
 * Promotions first, in the order given, then removals.
 */
import { promoteReplica, removeNode, TopologyEditError, type Topology } from "../cluster/index.ts";
import { list, UsageError } from "../ui/units.ts";

/** One edit as applied, for the report. */
export interface Edit {
  edit: "promote" | "remove";
  id: string;
  dropOld?: boolean;
}

/** An edit the topology refuses: the CLI prints `message` and exits 2, sending nothing. */
export class InvalidEdit extends Error {
  constructor(readonly error: TopologyEditError) {
    super(`--${error.edit} ${error.id}: ${error.message}. Nothing was sent.`);
    this.name = "InvalidEdit";
  }
}

/** The edits the options ask for (UsageError for --drop-old without --promote). */
export function editsOf(opts: Record<string, unknown>): Edit[] {
  const promote = list(opts.promote);
  const remove = list(opts.remove);
  const dropOld = !!opts.dropOld;
  if (dropOld && promote.length === 0) throw new UsageError("--drop-old goes with --promote <id>: it drops the promoted replica's old master");
  return [...promote.map((id) => ({ edit: "promote" as const, id, dropOld })), ...remove.map((id) => ({ edit: "remove" as const, id }))];
}

/** Apply `edits` in order; throws InvalidEdit on the first one refused. */
export function applyEdits(t: Topology, edits: Edit[]): Topology {
  let out = t;
  for (const e of edits) {
    try {
      out = e.edit === "promote" ? promoteReplica(out, e.id, { dropOld: e.dropOld }) : removeNode(out, e.id);
    } catch (err) {
      if (err instanceof TopologyEditError) throw new InvalidEdit(err);
      throw err;
    }
  }
  return out;
}
