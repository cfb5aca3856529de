/** `refuse`: close the listener, so new connects are refused (live connections stay). */
import type { FaultKind } from "./types.ts";

export const refuse: FaultKind = {
  kind: "refuse",
  summary: "stop accepting (listener closed: connects refused)",
  params: {},
  scope: "server",
  async startServer(_p, server) {
    await server.stopAccepting();
    return () => server.startAccepting();
  },
};
