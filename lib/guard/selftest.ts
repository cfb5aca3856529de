/**
 * The guard's self-test: open a loopback connection of its own, destroy the client end through
 * sock_diag and see the blocked read fail. Proves, before anything is watched, that this kernel
 * and these privileges allow SOCK_DESTROY (CAP_NET_ADMIN, CONFIG_INET_DIAG_DESTROY).
 */
import { connect, listen, type Conn } from "../net/index.ts";
import { ERRNO, errnoName, type SockDiag } from "../net/sockdiag.ts";

export type SelfTest = { ok: true; ms: number } | { ok: false; reason: string };

/** What a refused destroy means, naming the requirement. */
export function destroyRefusal(errno: number): string {
  if (errno === ERRNO.EPERM || errno === ERRNO.EACCES) {
    return `the kernel refused SOCK_DESTROY (${errnoName(errno)}): destroying sockets needs CAP_NET_ADMIN — run kvr guard as root or give it the capability (systemd: AmbientCapabilities=CAP_NET_ADMIN); the kernel also needs CONFIG_INET_DIAG_DESTROY`;
  }
  if (errno === ERRNO.EOPNOTSUPP) {
    return `this kernel cannot destroy sockets (${errnoName(errno)}): it was built without CONFIG_INET_DIAG_DESTROY; kvr guard also needs CAP_NET_ADMIN`;
  }
  return `SOCK_DESTROY failed (${errnoName(errno)}); kvr guard needs CAP_NET_ADMIN and a kernel with CONFIG_INET_DIAG_DESTROY`;
}

/** Run the self-test (about a millisecond; at most ~3 s when something hangs). */
export async function selfTest(diag: SockDiag): Promise<SelfTest> {
  let accepted: Conn | null = null;
  let client: Conn | null = null;
  const server = await listen("127.0.0.1", 0, (c) => (accepted = c), { readMs: 0 });
  try {
    client = await connect("127.0.0.1", server.port, { connectMs: 2000, readMs: 0 });
    const mine = diag.tcp({ sport: client.localPort, dport: server.port }).filter((s) => s.local.host === "127.0.0.1" && s.remote.host === "127.0.0.1");
    if (mine.length !== 1) return { ok: false, reason: `sock_diag did not list the self-test's own socket 127.0.0.1:${client.localPort} (found ${mine.length}); kvr guard needs a kernel with CONFIG_INET_DIAG` };
    const blocked = client.readChunk().then(
      () => "ended",
      (e: Error) => e.message,
    );
    const t0 = performance.now();
    const err = diag.destroy(mine[0]);
    if (err !== 0) return { ok: false, reason: destroyRefusal(err) };
    const outcome = await Promise.race([blocked, Bun.sleep(1000).then(() => null)]);
    const ms = Math.round((performance.now() - t0) * 1000) / 1000;
    if (outcome === null) return { ok: false, reason: "SOCK_DESTROY was acknowledged but the self-test's blocked read did not end within 1 s" };
    return { ok: true, ms };
  } catch (e) {
    return { ok: false, reason: `the self-test failed: ${(e as Error).message}` };
  } finally {
    client?.destroy();
    (accepted as Conn | null)?.destroy();
    await server.close(0);
  }
}
