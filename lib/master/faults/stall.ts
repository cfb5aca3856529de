/**
 * `stall`: stop sending and stop answering, keep the socket open (no FIN, no RST) until cleared.
 *
 * Bytes the peer sends meanwhile are not consumed as commands, but the socket is not paused
 * either: lib/net keeps receiving them into the connection's own bounded buffer (it stops
 * reading at 1 MiB), after which the peer's writes back up as with a process that stopped
 * reading. Why: a paused socket never sees the peer's FIN behind bytes it has not read, so a
 * peer that sent anything and then gave up would hold the connection, its open file and its
 * counters for as long as the fault lasts. The price: the peer can write a bounded amount more
 * before it blocks (on loopback about 7 MiB instead of 4), never an unbounded amount. Nothing is
 * discarded: after a clear the buffered commands run in order.
 */
import { gate, type FaultKind } from "./types.ts";

export const stall: FaultKind = {
  kind: "stall",
  summary: "stop sending and reading, keep the socket open (no FIN, no RST)",
  params: {},
  scope: "conn",
  start(_p, link) {
    const g = gate();
    let held = true;
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
