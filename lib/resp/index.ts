/** lib/resp — RESP2 encoder and incremental decoder; knows nothing of sockets. */
export * from "./encoder.ts";
export * from "./decoder.ts";
export * from "./client.ts";
export * from "./server.ts";
