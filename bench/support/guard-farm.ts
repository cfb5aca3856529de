/**
 * A farm of nodes for the guard benchmark, all in this one process: each listens on a port of
 * its own, answers INFO like a Kvrocks replica in a full sync (process_id = this process,
 * slave of the given master, link down, master_sync_in_progress:1), and holds one fetch
 * connection to that master, read with no deadline. When that connection ends (the guard
 * destroyed it), the node opens a new one 100 ms later, as Kvrocks retries its sync.
 *
 *   bun bench/support/guard-farm.ts <nodes> <masterPort>   # prints {"ports":[...]} and runs until SIGTERM
 */
import { connect, listen, type Server } from "../../lib/net/index.ts";
import { bulk, error, RespDecoder } from "../../lib/resp/index.ts";

const n = Number(process.argv[2]);
const masterPort = Number(process.argv[3]);
const info =
  `# Server\r\nprocess_id:${process.pid}\r\n` +
  `# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:${masterPort}\r\nmaster_link_status:down\r\nmaster_sync_in_progress:1\r\n`;

async function fetchForever(): Promise<void> {
  for (;;) {
    try {
      const c = await connect("127.0.0.1", masterPort, { readMs: 0 });
      while ((await c.readChunk()) !== null);
    } catch {
      // destroyed by the guard (or the master went away): retry
    }
    await Bun.sleep(100);
  }
}

const servers: Server[] = [];
for (let i = 0; i < n; i++) {
  const s = await listen(
    "127.0.0.1",
    0,
    (conn) => {
      (async () => {
        const dec = new RespDecoder({ inline: true });
        for (;;) {
          const v = await conn.read(dec);
          const cmd = (Array.isArray(v) && Buffer.isBuffer(v[0]) ? v[0].toString() : "").toUpperCase();
          await conn.write(cmd === "INFO" ? bulk(info) : error("ERR unknown command"));
        }
      })().catch(() => conn.destroy());
    },
    { readMs: 0 },
  );
  servers.push(s);
  void fetchForever();
}
process.on("SIGTERM", () => process.exit(0));
process.stdout.write(JSON.stringify({ ports: servers.map((s) => s.port) }) + "\n");
