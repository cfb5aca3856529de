/** lib/cluster — Kvrocks topology (parse, validate, format) and CLUSTERX semantics; pure, no sockets. */
export * from "./topology.ts";
export * from "./clusterx.ts";
export * from "./nodes.ts";
export * from "./info.ts";
export * from "./edit.ts";
export * from "./slot.ts";
