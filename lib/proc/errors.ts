/**
 * A SetupError means a command's own machinery could not run — a child process that would not
 * start or report, a port it could not take — as opposed to a failure of what it was checking.
 * The drill (DrillError) and the lab turn it into exit 4.
 */
export class SetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SetupError";
  }
}
