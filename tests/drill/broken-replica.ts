/**
 * A test double of a Kvrocks node in cluster mode, by default broken the way Kvrocks was before its fix:
 * it answers PING, INFO, CLUSTER and CLUSTERX (semantics from lib/cluster); SETNODES making it a slave
 * starts a full sync (one fetch connection to the master, reading with no deadline). Then:
 *
 * - "hang": a SETNODES that moves it away waits, holding a lock every command waits on (PING
 *   too), until that fetch socket errors — exactly the incident.
 * - "leak": SETNODES returns at once and INFO shows the new master, but the fetch connection to
 *   the old master is left open.
 * - "good": as Kvrocks after the fix, only faster: the fetch connection is closed at once.
 * - "slow": as Kvrocks after the fix: the stop is noticed at the next receive timeout, so
 *   SETNODES (and every other command) waits 1.5 s, then the fetch connection is closed.
 * - "deaf": answers like "good" but never connects to a master (a node that cannot reach it).
 *
 * With `requirepass`, every command but AUTH needs the password first (-NOAUTH). With
 * `masterauth` (by default the same password, as a cluster shares one) it sends AUTH first on
 * every connection to a master. INFO answers `server` (process_id) and `replication` sections,
 * both by default.
 */
import { clusterCommand, clusterx, encodeReply, initialClusterState, type ClusterState } from "../../lib/cluster/index.ts";
import { connect, listen, type Conn, type Server } from "../../lib/net/index.ts";
import { bulk, encodeCommand, error, simple } from "../../lib/resp/index.ts";
import { serveCommands } from "../helpers/serve.ts";

export type BrokenMode = "hang" | "leak" | "good" | "slow" | "deaf";

export interface BrokenReplica {
  port: number;
  /** Fetch connections to the master opened so far / currently open. */
  fetches: { opened: number; open: number };
  close(): Promise<void>;
}

export async function startBrokenReplica(mode: BrokenMode, requirepass?: string, masterauth = requirepass): Promise<BrokenReplica> {
  let state: ClusterState = initialClusterState();
  let current: { host: string; port: number } | null = null;
  let lock: Promise<void> | null = null;
  let fetchDone: Promise<void> | null = null;
  const fetchConns = new Set<Conn>();
  const fetches = { opened: 0, open: 0 };
  let server: Server | null = null;

  /** Full sync from host:port: _fetch_meta, then one _fetch_file of everything, read until the socket ends. */
  const login = async (c: Conn) => {
    if (masterauth === undefined) return;
    await c.write(encodeCommand(["AUTH", masterauth]));
    const r = await c.readLine();
    if (r !== "+OK") throw new Error(`master refused AUTH: ${r}`);
  };
  const startFetch = (host: string, port: number): Promise<void> =>
    (async () => {
      if (mode === "deaf") return;
      const meta = await connect(host, port, { readMs: 0 });
      fetchConns.add(meta);
      await login(meta);
      await meta.write(encodeCommand(["_fetch_meta"]));
      const names = await meta.readLine();
      meta.destroy();
      fetchConns.delete(meta);
      const c = await connect(host, port, { readMs: 0 });
      fetchConns.add(c);
      fetches.opened++;
      fetches.open++;
      try {
        await login(c);
        await c.write(encodeCommand(["_fetch_file", names]));
        for (;;) {
          const size = Number(await c.readLine());
          await c.readExactly(size, () => {});
        }
      } finally {
        fetches.open--;
        fetchConns.delete(c);
        c.destroy();
      }
    })().catch(() => {});

  const info = (section = "default"): string => {
    const sec = section.toLowerCase();
    const all = ["default", "all", "everything"].includes(sec);
    const server = all || sec === "server" ? `# Server\r\nprocess_id:${process.pid}\r\n` : "";
    if (!all && sec !== "replication") return server;
    const lines = ["# Replication", `role:${current ? "slave" : "master"}`];
    if (current) lines.push(`master_host:${current.host}`, `master_port:${current.port}`, "master_link_status:down", `master_sync_in_progress:${fetches.open > 0 ? 1 : 0}`);
    lines.push("connected_slaves:0", `kvr_fetch_connections:${fetches.open}`, `kvr_fetches_opened:${fetches.opened}`);
    return server + lines.join("\r\n") + "\r\n";
  };

  const execute = async (args: string[]): Promise<Buffer> => {
    const cmd = args[0]?.toLowerCase();
    if (cmd === "ping") return simple("PONG");
    if (cmd === "info") return bulk(info(args[1]));
    if (cmd === "cluster") return encodeReply(clusterCommand(state, args.slice(1)));
    if (cmd !== "clusterx") return error(`ERR unknown command \`${args[0]}\``);
    const r = clusterx(state, args.slice(1), { port: server!.port, binds: ["127.0.0.1"], current });
    const change = r.change;
    if (change.kind !== "none") {
      if (fetchDone && mode === "slow") {
        let release!: () => void;
        lock = new Promise((res) => (release = res));
        await Bun.sleep(1500);
        lock = null;
        release();
      }
      if (fetchDone && (mode === "good" || mode === "slow")) for (const c of fetchConns) c.destroy();
      if (fetchDone && mode === "hang") {
        // Stop the running replication and join it: blocks until the fetch socket errors.
        let release!: () => void;
        lock = new Promise((res) => (release = res));
        await fetchDone;
        lock = null;
        release();
      }
      if (change.kind === "replicate") {
        current = { host: change.host, port: change.port };
        if (!fetchDone) fetchDone = startFetch(change.host, change.port);
      } else current = null;
    }
    state = r.state;
    return encodeReply(r.reply);
  };

  server = await listen(
    "127.0.0.1",
    0,
    (conn) =>
      void serveCommands(conn, requirepass, async (_cmd, args) => {
        // The node's exclusive lock: while SETNODES is stuck, every command waits.
        while (lock) await lock;
        await conn.write(await execute(args));
      }),
    { readMs: 0 },
  );

  return {
    port: server.port,
    fetches,
    async close() {
      for (const c of fetchConns) c.destroy();
      await server?.close(50);
    },
  };
}
