/**
 * The stuck connection as the kernel sees it (sock_diag, the same table `ss -tin` prints): our end's
 * receive queue and advertised window — 0 once the buffer is full and the master may send nothing
 * more — and, when the master runs on this host, its end's send queue and state (it leaves
 * ESTABLISHED when the master closes it, even though its FIN waits behind the unsent data).
 */
import { openSockDiag, SockDiagError, TCP_STATE, type SockDiag, type TcpSocket } from "../net/sockdiag.ts";
import type { Conn } from "../net/index.ts";

/** One look at the connection. */
export interface SocketView {
  /** Bytes received and not read (our Recv-Q); null once our socket is gone. */
  recvQ: number | null;
  /** The window our end advertised last (tcpi_rcv_wnd); null when the kernel does not report it. */
  rcvWnd: number | null;
  /** The master's Send-Q to us; null when its end is not on this host. */
  masterSendQ: number | null;
  /** False once the master's end left ESTABLISHED (closed); null when its end is not on this host. */
  masterOpen: boolean | null;
}

/** Watches one connection's two ends; `create` returns an error text where sock_diag cannot run. */
export class SocketWatch {
  private constructor(
    private readonly diag: SockDiag,
    private mine: TcpSocket | null,
    private theirs: TcpSocket | null,
  ) {}

  /** Find both ends of `conn` in the socket table. */
  static create(conn: Conn): SocketWatch | string {
    let diag: SockDiag;
    try {
      diag = openSockDiag();
    } catch (e) {
      return e instanceof SockDiagError ? e.message : String(e);
    }
    try {
      const local = conn.localAddress;
      const remote = conn.remoteAddress;
      const mine = diag.tcp({ sport: conn.localPort, dport: conn.remotePort }).find((s) => s.local.host === local && s.remote.host === remote) ?? null;
      const theirs = diag.tcp({ sport: conn.remotePort, dport: conn.localPort }).find((s) => s.local.host === remote && s.remote.host === local) ?? null;
      if (!mine) {
        diag.close();
        return `the connection ${local}:${conn.localPort} → ${remote}:${conn.remotePort} is not in the socket table`;
      }
      return new SocketWatch(diag, mine, theirs);
    } catch (e) {
      diag.close();
      return (e as Error).message;
    }
  }

  /** True when the master's end is on this host (its send queue and state are seen). */
  get masterLocal(): boolean {
    return this.theirs !== null;
  }

  /** Look at both ends now. */
  sample(): SocketView {
    const mine = this.mine ? this.diag.get(this.mine) : null;
    const theirs = this.theirs ? this.diag.get(this.theirs) : null;
    return {
      recvQ: mine?.recvQ ?? null,
      rcvWnd: mine?.rcvWnd ?? null,
      masterSendQ: this.theirs ? (theirs?.sendQ ?? 0) : null,
      masterOpen: this.theirs ? theirs !== null && theirs.state === TCP_STATE.ESTABLISHED : null,
    };
  }

  close(): void {
    this.mine = this.theirs = null;
    this.diag.close();
  }
}
