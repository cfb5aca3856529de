/**
 * Reference data paths: write a generated checkpoint to a directory (the bytes kvr master
 * serves with --dir), the plain fsync'd copy of those bytes (the disk limit), and one raw
 * loopback TCP transfer of them (the network limit, in two child processes like master and
 * replica, see rawtcp.ts).
 */
import { closeSync, fsyncSync, openSync, readSync, readdirSync, statSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { generatedChunks, generatedFiles, parseGenerateSpec } from "../../lib/master/generate.ts";
import { spawnTracked } from "./harness.ts";

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

/**
 * The disk limit, batched: the same plain copy, but every file is fsynced only after all were
 * written (as `cp -r` then `sync`), which lets the kernel write back in parallel. Milliseconds.
 */
export function plainCopyLateSync(src: string, dst: string): number {
  const buf = Buffer.allocUnsafe(COPY_CHUNK);
  const t0 = performance.now();
  const open: number[] = [];
  try {
    for (const name of readdirSync(src)) {
      const i = openSync(join(src, name), "r");
      const o = openSync(join(dst, name), "wx", 0o644);
      open.push(o);
      try {
        for (;;) {
          const n = readSync(i, buf, 0, buf.length, null);
          if (n === 0) break;
          let off = 0;
          while (off < n) off += writeSync(o, buf, off, n - off);
        }
      } finally {
        closeSync(i);
      }
    }
    for (const o of open) fsyncSync(o);
  } finally {
    for (const o of open) closeSync(o);
  }
  fsyncDir(dst);
  return performance.now() - t0;
}

const RAWTCP = resolve(import.meta.dir, "rawtcp.ts");

/**
 * The network limit: the bytes of `src`'s files sent over one loopback TCP connection between
 * two processes, no protocol, discarded by the receiver (or, with `writeTo`, appended to that
 * file and fsynced: network and disk at once). Returns the receiver's milliseconds from accept to
 * EOF and the bytes it counted.
 */
export async function rawTcp(src: string, writeTo?: string): Promise<{ ms: number; bytes: number }> {
  const mode = writeTo ? ["recvfile", writeTo] : ["recv"];
  const recv = spawnTracked(() => Bun.spawn([process.execPath, RAWTCP, ...mode], { stdout: "pipe", stderr: "inherit", stdin: "ignore" }));
  const reader = recv.stdout.getReader();
  const dec = new TextDecoder();
  let text = "";
  const line = async (): Promise<string> => {
    for (;;) {
      const nl = text.indexOf("\n");
      if (nl >= 0) {
        const l = text.slice(0, nl);
        text = text.slice(nl + 1);
        return l;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("raw TCP receiver ended early");
      text += dec.decode(value, { stream: true });
    }
  };
  try {
    const port = Number(await line());
    const send = spawnTracked(() => Bun.spawn([process.execPath, RAWTCP, "send", String(port), src], { stdout: "ignore", stderr: "inherit", stdin: "ignore" }));
    const res = JSON.parse(await line()) as { ms: number; bytes: number };
    await send.exited;
    await recv.exited;
    return res;
  } finally {
    recv.kill("SIGKILL");
  }
}
