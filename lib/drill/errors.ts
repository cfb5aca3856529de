/**
 * A DrillError means the drill itself could not run (ports, permissions, the node under test
 * unreachable): exit 4, never reported as a failure of the replica.
 */
export class DrillError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DrillError";
  }
}
