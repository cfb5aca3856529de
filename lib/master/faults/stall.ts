/** `stall`: stop sending and reading, keep the socket open (no FIN, no RST) until cleared. */
import { gate, type FaultKind } from "./types.ts";

export const stall: FaultKind = {
  kind: "stall",
  summary: "stop sending and reading, keep the socket open (no FIN, no RST)",
  params: {},
  scope: "conn",
  start(_p, link) {
    const g = gate();
    let held = true;
    link.pauseReads();
    return {
      async pipe(data, next) {
        if (held) await g.promise;
        await next(data);
      },
      holdsReads: () => held,
      release() {
        held = false;
        g.open();
        link.wake();
      },
    };
  },
};
