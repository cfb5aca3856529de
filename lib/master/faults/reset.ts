/**
 * `reset`: abort the connection with an RST (SO_LINGER 0 through node:net's resetAndDestroy, as
 * Bun implements it); the peer sees ECONNRESET rather than an EOF.
 */
import type { FaultKind } from "./types.ts";

export const reset: FaultKind = {
  kind: "reset",
  summary: "abort the connection with RST",
  params: {},
  scope: "conn",
  start(_p, link) {
    link.kill(true);
    return { release() {} };
  },
};
