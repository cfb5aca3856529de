/**
 * Raw loopback TCP, no protocol: the network reference of fullsync-throughput.
 *   bun rawtcp.ts recv             → prints its port, then {"ms","bytes"} after the sender's EOF
 *   bun rawtcp.ts recvfile <path>   → as recv, but every received chunk is appended to <path> with an
 *                                     async write (reading paused meanwhile, as kvr's file sink does),
 *                                     fsynced at EOF: receive and write at once, without any protocol
 *   bun rawtcp.ts send <port> <dir> → sends every file of <dir>, read 256 KiB at a time, then FIN
 * Plain node:net on both sides (the API lib/net uses; see bench/socket-api.ts for the choice).
 */
import net from "node:net";
import { closeSync, openSync, readSync, readdirSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";

const CHUNK = 256 * 1024;
const [mode, a, b] = process.argv.slice(2);

if (mode === "recv") {
  const server = net.createServer((s) => {
    const t0 = performance.now();
    let bytes = 0;
    s.on("data", (d) => (bytes += d.length));
    s.on("end", () => {
      const ms = performance.now() - t0;
      process.stdout.write(JSON.stringify({ ms, bytes }) + "\n");
      s.destroy();
      server.close();
      process.exit(0);
    });
  });
  server.listen(0, "127.0.0.1", () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
} else if (mode === "recvfile") {
  const server = net.createServer(async (s) => {
    const t0 = performance.now();
    s.pause();
    const fh = await open(a, "wx", 0o644);
    let bytes = 0;
    let tail: Promise<unknown> = Promise.resolve();
    s.on("data", (d: Buffer) => {
      bytes += d.length;
      s.pause();
      tail = tail.then(() => fh.write(d)).then(() => s.resume());
    });
    s.on("end", async () => {
      await tail;
      await fh.sync();
      await fh.close();
      const ms = performance.now() - t0;
      process.stdout.write(JSON.stringify({ ms, bytes }) + "\n");
      s.destroy();
      server.close();
      process.exit(0);
    });
    s.resume();
  });
  server.listen(0, "127.0.0.1", () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
} else if (mode === "send") {
  const s = net.connect(Number(a), "127.0.0.1");
  s.setNoDelay(true);
  await new Promise<void>((r) => s.once("connect", () => r()));
  for (const name of readdirSync(b)) {
    const fd = openSync(join(b, name), "r");
    try {
      for (;;) {
        // Fresh memory per chunk: the socket may keep it until sent.
        const buf = Buffer.allocUnsafe(CHUNK);
        const n = readSync(fd, buf, 0, CHUNK, null);
        if (n === 0) break;
        if (!s.write(n === CHUNK ? buf : buf.subarray(0, n))) await new Promise((r) => s.once("drain", r));
      }
    } finally {
      closeSync(fd);
    }
  }
  s.end();
  await new Promise((r) => s.once("close", r));
} else {
  process.stderr.write("usage: rawtcp.ts recv | recvfile <path> | send <port> <dir>\n");
  process.exit(2);
}
