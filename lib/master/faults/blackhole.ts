/**
 * `blackhole-accept`: the listener is replaced by one whose accept queue is full and never
 * drained (lib/net listenNoAccept on the same port), so new connects hang until the client's
 * connect deadline. IPv4 bind addresses only.
 */
import type { FaultKind } from "./types.ts";

export const blackholeAccept: FaultKind = {
  kind: "blackhole-accept",
  summary: "accept queue never drained: connects hang",
  params: {},
  scope: "server",
  async startServer(_p, server) {
    return server.blackhole();
  },
};
