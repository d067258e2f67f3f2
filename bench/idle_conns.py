#!/usr/bin/env python3
"""idle_conns.py - server memory per idle keep-alive connection (bench/http.sh).

    idle_conns.py HOST PORT PATH N PID [SETTLE_SECS]

Reads the VmRSS of process PID (the server), then opens N TCP connections to
HOST:PORT, at most 256 in progress at a time. Each sends one
`GET PATH HTTP/1.1`, reads the whole response (200 with a Content-Length
body) and is then left open and idle. Once all N are idle it waits
SETTLE_SECS (default 1), checks that the server closed none of them, reads
VmRSS again and prints one line:

    conns=N rss_before_kb=X rss_after_kb=Y

then closes every connection and exits 0. Exit status 1 on any error (connect
failure, non-200 response, a connection closed by the server, RLIMIT_NOFILE
too low, more than 120 s to open them all).
"""
import os
import resource
import selectors
import socket
import sys
import time

WINDOW = 256          # connections being set up at once
SETUP_LIMIT = 120.0   # seconds to open all N


def die(msg):
    print(f"idle_conns.py: {msg}", file=sys.stderr)
    sys.exit(1)


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError as e:
        die(f"cannot read /proc/{pid}/status: {e}")
    die(f"no VmRSS for process {pid}")


def main():
    if len(sys.argv) not in (6, 7):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    n, pid = int(sys.argv[4]), int(sys.argv[5])
    settle = float(sys.argv[6]) if len(sys.argv) == 7 else 1.0

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 64
    if hard != resource.RLIM_INFINITY and hard < need:
        die(f"RLIMIT_NOFILE hard limit {hard} is below the {need} this needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    before = rss_kb(pid)

    sel = selectors.DefaultSelector()
    idle = []
    started = inflight = 0
    deadline = time.monotonic() + SETUP_LIMIT
    while len(idle) < n:
        while inflight < WINDOW and started < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((host, port))
            sel.register(s, selectors.EVENT_WRITE, {"sock": s, "buf": b"", "sent": False, "need": None})
            started += 1
            inflight += 1
        if time.monotonic() > deadline:
            die(f"only {len(idle)} of {n} connections set up after {SETUP_LIMIT:.0f} s")
        for key, _ in sel.select(timeout=1.0):
            st = key.data
            s = st["sock"]
            if not st["sent"]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    die(f"connect to {host}:{port} (connection {started}): {os.strerror(err)}")
                s.sendall(req)  # a few dozen bytes: fits the empty send buffer
                st["sent"] = True
                sel.modify(s, selectors.EVENT_READ, st)
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                die(f"recv: {e}")
            if not data:
                die(f"the server closed connection {len(idle) + 1} before its response was complete")
            st["buf"] += data
            buf = st["buf"]
            if st["need"] is None:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    continue
                head = buf[:end].decode("latin-1").split("\r\n")
                status = head[0].split()
                if len(status) < 2 or status[1] != "200":
                    die(f"response {head[0]!r} to GET {path}")
                clen = None
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        clen = int(value.strip())
                if clen is None:
                    die("response without Content-Length")
                st["need"] = end + 4 + clen
            if len(buf) > st["need"]:
                die("more bytes than the response's Content-Length")
            if len(buf) == st["need"]:
                sel.unregister(s)
                st["buf"] = b""
                idle.append(s)
                inflight -= 1

    time.sleep(settle)
    # A connection the server has closed reads as EOF: none may be readable.
    for s in idle:
        sel.register(s, selectors.EVENT_READ)
    ready = sel.select(timeout=0)
    if ready:
        die(f"{len(ready)} of the {n} idle connections were closed or written to by the server")
    after = rss_kb(pid)
    print(f"conns={n} rss_before_kb={before} rss_after_kb={after}", flush=True)
    for s in idle:
        sel.unregister(s)
        s.close()


if __name__ == "__main__":
    main()
