/**
 * Reference data paths: write a generated checkpoint to a directory (the bytes kvr master
 * serves with --dir) and the plain fsync'd copy of those bytes (the disk limit).
 */
import { closeSync, fsyncSync, openSync, readSync, readdirSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { generatedChunks, generatedFiles, parseGenerateSpec } from "../../lib/master/generate.ts";

const COPY_CHUNK = 1 << 20;

/** Write the files of `--generate <spec>` into `dir`, fsynced (so later runs start clean). */
export function materialize(spec: string, dir: string): { files: number; bytes: number } {
  const s = parseGenerateSpec(spec);
  let bytes = 0;
  const files = generatedFiles(s);
  for (const f of files) {
    const fd = openSync(join(dir, f.name), "w", 0o644);
    try {
      for (const c of generatedChunks(s, f.name, COPY_CHUNK)) {
        let off = 0;
        while (off < c.length) off += writeSync(fd, c, off, c.length - off);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    bytes += f.size;
  }
  fsyncDir(dir);
  return { files: files.length, bytes };
}

/** Total size of the regular files of a directory. */
export function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The disk limit: copy every file of `src` into `dst` with plain read/write of 1 MiB, fsync each
 * file, then the directory. Returns milliseconds.
 */
export function plainCopy(src: string, dst: string): number {
  const buf = Buffer.allocUnsafe(COPY_CHUNK);
  const t0 = performance.now();
  for (const name of readdirSync(src)) {
    const i = openSync(join(src, name), "r");
    const o = openSync(join(dst, name), "wx", 0o644);
    try {
      for (;;) {
        const n = readSync(i, buf, 0, buf.length, null);
        if (n === 0) break;
        let off = 0;
        while (off < n) off += writeSync(o, buf, off, n - off);
      }
      fsyncSync(o);
    } finally {
      closeSync(i);
      closeSync(o);
    }
  }
  fsyncDir(dst);
  return performance.now() - t0;
}
