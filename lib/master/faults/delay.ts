/** `delay:ms=N`: wait N ms before each reply or file chunk. */
import { gate, type FaultKind } from "./types.ts";

export const delay: FaultKind = {
  kind: "delay",
  summary: "latency before each reply/chunk",
  params: { ms: "duration" },
  defaults: { ms: 100 },
  scope: "conn",
  start(p) {
    const ms = Number(p.ms);
    const g = gate();
    let on = true;
    return {
      async pipe(data, next) {
        if (on) await Promise.race([Bun.sleep(ms), g.promise]);
        await next(data);
      },
      release() {
        on = false;
        g.open();
      },
    };
  },
};
