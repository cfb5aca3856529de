/**
 * lib/net — the only module that touches sockets. connect() and listen() give deadline
 * connections (see conn.ts); errors are NetError with a stable `code`.
 */
import net from "node:net";
import { Conn, DEFAULT_CONNECT_MS, type ConnOptions } from "./conn.ts";
import { failures, fromSystemError } from "./errors.ts";

export { Conn, DEFAULT_CONNECT_MS, DEFAULT_READ_MS, DEFAULT_WRITE_MS, HIGH_WATER as DEFAULT_READ_HIGH_WATER } from "./conn.ts";
export type { ConnOptions, FrameParser, Sink } from "./conn.ts";
export { NetError, isNetError, protocolError } from "./errors.ts";
export type { NetErrorCode } from "./errors.ts";
export { listenNoAccept, type NoAcceptListener } from "./noaccept.ts";
export { BulkConn, bulkAvailable, bulkConnect, bulkUnavailableReason } from "./bulk.ts";

export interface ConnectOptions extends ConnOptions {
  /** Deadline for the TCP handshake, in ms (default 3000). 0 disables. */
  connectMs?: number;
}

/** Open a TCP connection under a connect deadline and an optional AbortSignal. */
export function connect(host: string, port: number, opts: ConnectOptions = {}): Promise<Conn> {
  const peer = `${host}:${port}`;
  const connectMs = opts.connectMs ?? DEFAULT_CONNECT_MS;
  const signal = opts.signal;
  if (signal?.aborted) return Promise.reject(failures.abortedConnecting(peer, true));
  return new Promise<Conn>((resolve, reject) => {
    const sock = net.connect({ host, port });
    let timer: ReturnType<typeof setTimeout> | null = null;
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      sock.off("connect", onConnect);
      sock.off("error", onError);
    };
    const onConnect = () => {
      cleanup();
      resolve(new Conn(sock, opts));
    };
    const onError = (e: unknown) => {
      cleanup();
      sock.destroy();
      reject(fromSystemError(e, peer, 0));
    };
    const onAbort = () => {
      cleanup();
      sock.destroy();
      reject(failures.abortedConnecting(peer, false));
    };
    sock.once("connect", onConnect);
    sock.once("error", onError);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (connectMs > 0) {
      timer = setTimeout(() => {
        cleanup();
        sock.destroy();
        reject(failures.connectTimeout(peer, connectMs));
      }, connectMs);
    }
  });
}

export interface Server {
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly host: string;
  /** Live accepted connections. */
  readonly connections: Set<Conn>;
  /** Stop accepting new connections (listener closed: new connects are refused). Live ones stay. */
  stopAccepting(): Promise<void>;
  /** Listen again on the same host and port after stopAccepting(). */
  startAccepting(): Promise<void>;
  /** Stop accepting and end every live connection (FIN, then destroy after `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

export interface ListenOptions extends ConnOptions {
  backlog?: number;
}

/** Listen on host:port; each accepted socket becomes a Conn with the same deadlines. */
export async function listen(host: string, port: number, onConnection: (c: Conn) => void, opts: ListenOptions = {}): Promise<Server> {
  const connections = new Set<Conn>();
  const make = () =>
    net.createServer({ noDelay: true }, (sock) => {
      const c = new Conn(sock, opts);
      connections.add(c);
      c.closed.then(() => connections.delete(c));
      onConnection(c);
    });
  let srv: net.Server | null = make();
  const bind = (s: net.Server, p: number) =>
    new Promise<void>((resolve, reject) => {
      const onBindError = (e: unknown) => reject(fromSystemError(e, `${host}:${p}`, 0));
      s.once("error", onBindError);
      s.listen({ host, port: p, backlog: opts.backlog ?? 511 }, () => {
        s.off("error", onBindError);
        // Errors after the bind (an accept failing with EMFILE, say) concern one connection
        // attempt, not the listener: it keeps accepting, and the error must not crash the process.
        s.on("error", () => {});
        resolve();
      });
    });
  await bind(srv, port);
  const bound = (srv.address() as net.AddressInfo).port;
  const closeListener = async () => {
    const s = srv;
    srv = null;
    // net.Server.close() stops accepting at once; its callback waits for live connections,
    // which stay up here, so it is not awaited.
    if (s) s.close();
  };
  return {
    port: bound,
    host,
    connections,
    stopAccepting: closeListener,
    async startAccepting() {
      if (srv) return;
      const s = make();
      await bind(s, bound);
      srv = s;
    },
    async close(graceMs = 200) {
      const done = closeListener();
      const live = [...connections];
      for (const c of live) c.end();
      await Promise.race([Promise.all(live.map((c) => c.closed)), Bun.sleep(graceMs)]);
      for (const c of connections) c.destroy();
      await Promise.race([done, Bun.sleep(graceMs)]);
    },
  };
}
