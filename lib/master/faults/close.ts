/** `close`: end the connection with a FIN (an orderly close). */
import type { FaultKind } from "./types.ts";

export const close: FaultKind = {
  kind: "close",
  summary: "close the connection with FIN",
  params: {},
  scope: "conn",
  start(_p, link) {
    link.kill(false);
    return { release() {} };
  },
};
