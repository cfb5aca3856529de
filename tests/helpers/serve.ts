/**
 * The command loop of the test doubles that play a Kvrocks server (replica/fake-master.ts,
 * drill/kvrocks-master.ts, setnodes/fake-node.ts, stream/scripted-master.ts,
 * guard/scripted-node.ts, …): read commands (RESP or inline) off a connection, answer AUTH and
 * -NOAUTH as Kvrocks does, hand every other command to the double.
 */
import type { Conn } from "../../lib/net/index.ts";
import { error, OK, RespDecoder } from "../../lib/resp/index.ts";

/**
 * Serve `conn` until it fails or `handle` returns "stop" (the connection was handed over or
 * ended). `record` sees every command, AUTH included (name lower-cased, then its arguments).
 */
export async function serveCommands(
  conn: Conn,
  password: string | undefined,
  handle: (cmd: string, args: string[]) => Promise<"stop" | void>,
  record?: (cmd: string, args: string[]) => void,
): Promise<void> {
  const dec = new RespDecoder({ inline: true });
  let authed = !password;
  try {
    for (;;) {
      const v = (await conn.read(dec)) as Buffer[];
      const args = v.map((b) => b.toString("utf8"));
      const cmd = args[0].toLowerCase();
      record?.(cmd, args);
      if (cmd === "auth") {
        if (!password) await conn.write(error("ERR Client sent AUTH, but no password is set"));
        else if (args[1] === password) {
          authed = true;
          await conn.write(OK);
        } else await conn.write(error("ERR Invalid password"));
      } else if (!authed) await conn.write(error("NOAUTH Authentication required."));
      else if ((await handle(cmd, args)) === "stop") return;
    }
  } catch {
    conn.destroy();
  }
}
