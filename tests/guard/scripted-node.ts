/**
 * A scripted node for the guard's tests, as a process of its own (its sockets belong to its own
 * pid, as a Kvrocks node's do). It answers INFO with a `# Server` section (process_id) and a
 * `# Replication` section whose fields the test sets, and opens connections of its own on request:
 *
 *   SCRIPT SET <field> <value> [...]   set INFO replication fields (role, master_host, ...)
 *   SCRIPT PID <n>                     report process_id n instead of its own
 *   SCRIPT CONNECT <host> <port> [paused]   open a connection and read it (paused: never read); → its local port
 *   SCRIPT FREEZE <ms>                 for ms, every other command waits (a node frozen behind SETNODES)
 *   SCRIPT CONNS                       → one "localPort open bytesRead" line per connection opened
 *
 *   bun tests/guard/scripted-node.ts    # prints {"port":N,"pid":N}, runs until SIGTERM
 */
import { connect, listen, type Conn } from "../../lib/net/index.ts";
import { bulk, call, error, integer, OK, replyText, type RespValue } from "../../lib/resp/index.ts";
import { spawnScript } from "../helpers/script.ts";
import { serveCommands } from "../helpers/serve.ts";

export interface ScriptedNode {
  port: number;
  pid: number;
  /** One command on a fresh connection (5 s deadline). */
  cmd(...args: string[]): Promise<RespValue>;
  /** The node's own connections: local port → open, bytes read. */
  conns(): Promise<Map<number, { open: boolean; bytes: number }>>;
  close(): Promise<void>;
}

/** Start a scripted node process. */
export async function spawnScriptedNode(): Promise<ScriptedNode> {
  const p = await spawnScript<{ port: number }>(import.meta.path, []);
  const port = p.hello.port;
  const cmd = async (...args: string[]) => {
    const c = await connect("127.0.0.1", port, { connectMs: 2000, readMs: 5000 });
    try {
      return await call(c, args);
    } finally {
      c.destroy();
    }
  };
  return {
    port,
    pid: p.proc.pid,
    cmd,
    async conns() {
      const out = new Map<number, { open: boolean; bytes: number }>();
      for (const line of replyText(await cmd("SCRIPT", "CONNS")).split("\n").filter(Boolean)) {
        const [port, open, bytes] = line.split(" ").map(Number);
        out.set(port, { open: open === 1, bytes });
      }
      return out;
    },
    close: p.close,
  };
}

if (import.meta.main) {
  const fields = new Map<string, string>([["role", "master"]]);
  let pid = process.pid;
  let frozenUntil = 0;
  const opened: Array<{ conn: Conn; open: boolean }> = [];
  const info = (section: string) => {
    const s = section.toLowerCase();
    const all = s === "" || s === "all" || s === "default";
    let text = all || s === "server" ? `# Server\r\nprocess_id:${pid}\r\n` : "";
    if (all || s === "replication") text += ["# Replication", ...[...fields].map(([k, v]) => `${k}:${v}`)].join("\r\n") + "\r\n";
    return text;
  };
  const script = async (args: string[]): Promise<Buffer> => {
    const sub = (args[1] ?? "").toUpperCase();
    if (sub === "SET") {
      for (let i = 2; i + 1 < args.length; i += 2) fields.set(args[i], args[i + 1]);
      return OK;
    }
    if (sub === "PID") {
      pid = Number(args[2]);
      return OK;
    }
    if (sub === "FREEZE") {
      frozenUntil = performance.now() + Number(args[2]);
      return OK;
    }
    if (sub === "CONNECT") {
      const c = await connect(args[2], Number(args[3]), { readMs: 0 });
      const entry = { conn: c, open: true };
      opened.push(entry);
      if (args[4] === "paused") c.pauseReading();
      else {
        (async () => {
          while ((await c.readChunk()) !== null);
        })()
          .catch(() => {})
          .finally(() => (entry.open = false));
      }
      c.closed.then(() => (entry.open = false));
      return integer(c.localPort);
    }
    if (sub === "CONNS") return bulk(opened.map((e) => `${e.conn.localPort} ${e.open && !e.conn.isClosed ? 1 : 0} ${e.conn.bytesRead}`).join("\n"));
    return error("ERR unknown SCRIPT subcommand");
  };
  const server = await listen(
    "127.0.0.1",
    0,
    (conn) =>
      void serveCommands(conn, undefined, async (cmd, args) => {
        if (cmd === "script") {
          await conn.write(await script(args));
          return;
        }
        while (performance.now() < frozenUntil) await Bun.sleep(Math.max(1, frozenUntil - performance.now()));
        if (cmd === "info") await conn.write(bulk(info(args[1] ?? "")));
        else if (cmd === "ping") await conn.write(bulk("PONG"));
        else await conn.write(error(`ERR unknown command '${args[0]}'`));
      }),
    { readMs: 0 },
  );
  const stop = async () => {
    for (const e of opened) e.conn.destroy();
    await server.close(0);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdout.write(JSON.stringify({ port: server.port, pid: process.pid }) + "\n");
}
