/**
 * lib/net/sockdiag.ts against this process's own loopback sockets: listing with the kernel-side
 * remote filter (IPv4, IPv6, IPv4-mapped), tcp_info fields (windows, queues), lookup by id, destroy;
 * address text.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { connect, listen, type Conn, type Server } from "../../lib/net/index.ts";
import { canonicalIp, ERRNO, formatIp, openSockDiag, parseIp, remotesBytecode, TCP_STATE } from "../../lib/net/sockdiag.ts";

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const hasV6 = await listen("::1", 0, () => {}).then(
  (s) => s.close(0).then(() => true),
  () => false,
);

describe("address text", () => {
  test("IPv4, IPv6 (RFC 5952), IPv4-mapped IPv6 as IPv4, zone ids dropped; anything else is not an IP", () => {
    expect(canonicalIp("10.0.0.5")).toBe("10.0.0.5");
    expect(canonicalIp("2001:DB8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1");
    expect(canonicalIp("2001:db8::1")).toBe("2001:db8::1");
    expect(canonicalIp("::1")).toBe("::1");
    expect(canonicalIp("::")).toBe("::");
    expect(canonicalIp("[fe80::1%eth0]")).toBe("fe80::1");
    expect(canonicalIp("::ffff:10.1.2.3")).toBe("10.1.2.3");
    expect(canonicalIp("::ffff:a01:203")).toBe("10.1.2.3");
    expect(canonicalIp("1:2:3:4:5:6:7:8")).toBe("1:2:3:4:5:6:7:8");
    for (const bad of ["localhost", "256.1.1.1", "1.2.3", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", ""]) expect(canonicalIp(bad)).toBeNull();
    expect(parseIp("1.2.3.4")).toEqual(Uint8Array.from([1, 2, 3, 4]));
    expect(formatIp(parseIp("0:0:1::")!)).toBe("0:0:1::");
  });

  test("the remote filter: one condition per IP address (names skipped), chained as ss compiles 'dst A or dst B'", () => {
    expect(remotesBytecode([{ host: "localhost", port: 1 }])).toHaveLength(0);
    const one = remotesBytecode([{ host: "10.0.0.1", port: 6666 }]);
    expect(one).toHaveLength(4 + 8 + 4);
    const two = remotesBytecode([
      { host: "10.0.0.1", port: 6666 },
      { host: "::1", port: 7777 },
    ]);
    // cond(16) + jump(4) + cond(4 + 8 + 16)
    expect(two).toHaveLength(16 + 4 + 28);
    expect(two[16]).toBe(1); // INET_DIAG_BC_JMP
  });
});

describe.skipIf(process.platform !== "linux")("the kernel's socket table", () => {
  const diag = openSockDiag();
  const servers: Server[] = [];
  const conns: Conn[] = [];
  afterAll(async () => {
    for (const c of conns) c.destroy();
    for (const s of servers) await s.close(0);
    diag.close();
  });
  /** A connection to a new listener; `paused`: the client stops reading and 8 MiB are sent to it (more than Bun buffers). */
  const pair = async (host: string, paused = false) => {
    const s = await listen(host, 0, (c) => void (paused && setTimeout(() => c.write(Buffer.alloc(8 << 20, 1)).catch(() => {}), 30)), { readMs: 0 });
    servers.push(s);
    const c = await connect(host, s.port, { readMs: 0 });
    if (paused) c.pauseReading();
    conns.push(c);
    return { port: s.port, client: c };
  };

  test("lists exactly the sockets whose remote end is asked for, with tcp_info; lookup by id; LISTEN by local port", async () => {
    const a = await pair("127.0.0.1", true); // unread bytes wait in the receive queue
    const other = await pair("127.0.0.1");
    const b = hasV6 ? await pair("::1") : null;
    await Bun.sleep(250);
    const remotes = [{ host: "127.0.0.1", port: a.port }, ...(b ? [{ host: "::1", port: b.port }] : [])];
    const got = diag.tcp({ remotes });
    expect(got.map((s) => s.local.port).sort()).toEqual([a.client.localPort, ...(b ? [b.client.localPort] : [])].sort());
    expect(got.some((s) => s.local.port === other.client.localPort)).toBe(false);
    const s = got.find((x) => x.local.port === a.client.localPort)!;
    expect(s).toMatchObject({ family: 4, state: TCP_STATE.ESTABLISHED, local: { host: "127.0.0.1" }, remote: { host: "127.0.0.1", port: a.port } });
    expect(s.recvQ).toBeGreaterThan(0);
    expect(s.bytesReceived!).toBeGreaterThanOrEqual(s.recvQ);
    expect(s.inode).toBeGreaterThan(0);
    expect(s.lastRecvMs!).toBeGreaterThanOrEqual(50);
    if (b) expect(got.find((x) => x.local.port === b.client.localPort)).toMatchObject({ family: 6, local: { host: "::1" }, remote: { host: "::1", port: b.port } });
    await Bun.sleep(100);
    const again = diag.get(s)!;
    expect(again.inode).toBe(s.inode);
    expect(again.lastRecvMs!).toBeGreaterThanOrEqual(s.lastRecvMs! + 80);
    const listening = diag.tcp({ states: [TCP_STATE.LISTEN], sport: a.port });
    expect(listening).toHaveLength(1);
    expect(listening[0].state).toBe(TCP_STATE.LISTEN);
  });

  test("a reader that stopped: its receive window closes (rcv_wnd 0, Linux 6.2+), the sender's Send-Q fills and it sees window 0", async () => {
    const a = await pair("127.0.0.1", true);
    await Bun.sleep(300);
    const mine = diag.tcp({ sport: a.client.localPort })[0];
    const theirs = diag.tcp({ sport: a.port, dport: a.client.localPort })[0];
    expect(mine.recvQ).toBeGreaterThan(0);
    expect(mine.sendQ).toBe(0);
    expect(theirs.sendQ).toBeGreaterThan(0);
    expect(theirs.sndWnd).toBe(0);
    expect(mine.sndWnd).toBeGreaterThan(0);
    const [major, minor] = (await Bun.file("/proc/sys/kernel/osrelease").text()).split(".").map(Number);
    if (major > 6 || (major === 6 && minor >= 2)) expect(mine.rcvWnd).toBe(0);
    else expect(mine.rcvWnd === null || mine.rcvWnd === 0).toBe(true);
    // the sender's advertised window is open: it reads
    if (theirs.rcvWnd !== null) expect(theirs.rcvWnd).toBeGreaterThan(0);
  });

  test("an IPv4 remote also matches a v4-mapped IPv6 socket", async () => {
    if (!hasV6) return;
    const s = await listen("::", 0, () => {}, { readMs: 0 }).catch(() => null);
    if (!s) return;
    servers.push(s);
    const c = await connect("::ffff:127.0.0.1", s.port, { readMs: 0 });
    conns.push(c);
    const got = diag.tcp({ remotes: [{ host: "127.0.0.1", port: s.port }] }).filter((x) => x.local.port === c.localPort);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ family: 6, remote: { host: "127.0.0.1", port: s.port } });
  });

  test.skipIf(!isRoot)("destroy: the owner's blocked read fails at once; the socket is gone (lookup null, second destroy ENOENT)", async () => {
    const a = await pair("127.0.0.1");
    const s = diag.tcp({ remotes: [{ host: "127.0.0.1", port: a.port }] })[0];
    const failed = a.client.readChunk().then(
      () => "eof",
      (e: Error) => e.message,
    );
    const t0 = performance.now();
    expect(diag.destroy(s)).toBe(0);
    expect(await failed).toContain("ECONNABORTED");
    expect(performance.now() - t0).toBeLessThan(500);
    expect(diag.get(s)).toBeNull();
    expect(diag.destroy(s)).toBe(ERRNO.ENOENT);
  });
});
