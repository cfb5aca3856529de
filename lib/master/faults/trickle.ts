/** `trickle:bytes=N,every=D`: send N bytes, wait D, repeat: alive but crawling. */
import { gate, type FaultKind } from "./types.ts";

export const trickle: FaultKind = {
  kind: "trickle",
  summary: "send N bytes every D: alive but crawling",
  params: { bytes: "size", every: "duration" },
  defaults: { bytes: 1, every: 1000 },
  scope: "conn",
  start(p) {
    const n = Math.max(1, Number(p.bytes));
    const every = Number(p.every);
    const g = gate();
    let on = true;
    let last = 0;
    return {
      async pipe(data, next) {
        for (let o = 0; o < data.length; o += n) {
          if (!on) {
            await next(data.subarray(o));
            return;
          }
          const wait = last + every - performance.now();
          if (last > 0 && wait > 0) await Promise.race([Bun.sleep(wait), g.promise]);
          last = performance.now();
          await next(data.subarray(o, Math.min(o + n, data.length)));
        }
      },
      release() {
        on = false;
        g.open();
      },
    };
  },
};
