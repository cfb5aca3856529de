"""The reference replica of fullsync-throughput in Python's standard library (used when no C
compiler is found; see refreplica.c for the same program in C and what it does).

    python3 refreplica.py <port> <dir>   -> prints {"ms": ..., "bytes": ..., "files": ...}
"""
import json
import os
import socket
import sys
import threading
import time

BUF = 1 << 20


def dial(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def command(s, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    s.sendall(out)


class Reader:
    """Bytes received and not yet used, plus the socket."""

    def __init__(self, s):
        self.s = s
        self.rest = b""

    def line(self):
        while b"\n" not in self.rest:
            d = self.s.recv(BUF)
            if not d:
                raise EOFError("connection closed in a line")
            self.rest += d
        line, _, self.rest = self.rest.partition(b"\n")
        return line.rstrip(b"\r").decode()


def fetch_meta(port):
    s = dial(port)
    command(s, "_fetch_meta")
    line = Reader(s).line()
    s.close()
    if line.startswith("-"):
        raise RuntimeError("_fetch_meta refused: " + line)
    return line.split(",")


def fetch_file(port, d, names, counted):
    s = dial(port)
    command(s, "_fetch_file", ",".join(names))
    r = Reader(s)
    buf = bytearray(BUF)
    view = memoryview(buf)
    for name in names:
        line = r.line()
        if line.startswith("-"):
            raise RuntimeError("_fetch_file %s refused: %s" % (name, line))
        left = int(line)
        counted.append(left)
        tmp = os.path.join(d, name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            head = r.rest[:left]
            r.rest = r.rest[left:]
            if head:
                os.write(fd, head)
            left -= len(head)
            while left > 0:
                n = s.recv_into(view, min(left, BUF))
                if n == 0:
                    raise EOFError("connection closed in %s" % name)
                off = 0
                while off < n:
                    off += os.write(fd, view[off:n])
                left -= n
            os.fsync(fd)
        finally:
            os.close(fd)
        if name != "CURRENT":
            os.rename(tmp, os.path.join(d, name))
    s.close()


def fsync_dir(d):
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main():
    port, d = int(sys.argv[1]), sys.argv[2]
    t0 = time.monotonic()
    names = fetch_meta(port)
    w = 1 if len(names) <= 20 else 4
    counted, errors = [], []

    def run(share):
        try:
            fetch_file(port, d, share, counted)
        except Exception as e:  # any worker failing fails the sync
            errors.append(e)

    threads = [threading.Thread(target=run, args=(names[i::w],)) for i in range(w) if names[i::w]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    fsync_dir(d)
    if "CURRENT" in names:
        os.rename(os.path.join(d, "CURRENT.tmp"), os.path.join(d, "CURRENT"))
        fsync_dir(d)
    ms = (time.monotonic() - t0) * 1000
    print(json.dumps({"ms": ms, "bytes": sum(counted), "files": len(names)}))


if __name__ == "__main__":
    main()
