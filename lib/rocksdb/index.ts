/** RocksDB file formats kvr reads and writes: CRC32C, log format, MANIFEST, WriteBatch, checkpoints. */
export * from "./codec.ts";
export * from "./crc32c.ts";
export * from "./log.ts";
export * from "./manifest.ts";
export * from "./writebatch.ts";
export * from "./checkpoint.ts";
export * from "./names.ts";
