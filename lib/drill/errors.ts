/**
 * A DrillError means the drill itself could not run (ports, permissions, the node under test
 * unreachable): exit 4, never reported as a failure of the replica. A SetupError from the child
 * processes (lib/proc) means the same.
 */
import { SetupError } from "../proc/errors.ts";

export class DrillError extends SetupError {
  constructor(message: string) {
    super(message);
    this.name = "DrillError";
  }
}
