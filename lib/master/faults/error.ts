/**
 * `error:cmd=C,msg=M`: answer command C (any command when cmd is not given) with the error line
 * M instead of running it, e.g. `error:cmd=psync,msg=LOADING kvrocks is restoring the db from
 * backup`. On `_fetch_file` the error line replaces the next size line.
 */
import type { FaultKind } from "./types.ts";

export const error: FaultKind = {
  kind: "error",
  summary: "reply an error line M to command C",
  params: { cmd: "string", msg: "string" },
  defaults: { msg: "ERR injected fault" },
  scope: "conn",
  start(p) {
    const cmd = p.cmd === undefined ? null : String(p.cmd).toLowerCase();
    const msg = String(p.msg).replace(/^-/, "");
    let on = true;
    return {
      onCommand: (c) => (on && (cmd === null || c === cmd) ? msg : null),
      release() {
        on = false;
      },
    };
  },
};
