/** `bandwidth:rate=R`: this connection sends at most R bytes per second (units: 1MiB, 500KB). */
import { createRateLimiter } from "../ratelimit.ts";
import { gate, type FaultKind } from "./types.ts";

export const bandwidth: FaultKind = {
  kind: "bandwidth",
  summary: "per-connection bytes/s",
  params: { rate: "size" },
  defaults: { rate: 1024 * 1024 },
  scope: "conn",
  start(p) {
    const rate = Number(p.rate);
    const limiter = createRateLimiter(rate, 20);
    const piece = Math.max(1024, Math.min(64 * 1024, Math.floor(rate / 20)));
    const g = gate();
    let on = true;
    return {
      async pipe(data, next) {
        for (let o = 0; o < data.length; o += piece) {
          const part = data.subarray(o, Math.min(o + piece, data.length));
          if (!on) {
            await next(data.subarray(o));
            return;
          }
          await Promise.race([limiter.take(part.length), g.promise]);
          await next(part);
        }
      },
      release() {
        on = false;
        g.open();
      },
    };
  },
};
