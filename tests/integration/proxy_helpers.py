"""Helpers for the `portico proxy` integration tests (test_proxy.py).

- Origin: an HTTP/1.1 origin in a thread of the test process that counts
  the requests it gets per path and answers from a table of handlers, so
  a test can tell whether a request reached it.
- start_proxy(): `portico proxy` on a free loopback port (through the
  conftest spawn fixture, which kills it by PID at teardown).
- fetch(): one request through the proxy with curl -x, as (status, headers,
  body).
"""
import http.server
import socket
import subprocess
import threading
import time

from conftest import free_port, wait_bound


class Origin:
    """handlers: path -> fn(req) returning (status, [(name, value)], body)
    or None to hang (never answer). req has .method, .path, .headers."""

    def __init__(self, handlers=None):
        self.handlers = dict(handlers or {})
        self.counts = {}
        self.seen = []
        self.lock = threading.Lock()
        origin = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(n) if n else b""
                with origin.lock:
                    origin.counts[self.path] = origin.counts.get(self.path, 0) + 1
                    origin.seen.append((self.command, self.path, dict(self.headers.items())))
                fn = origin.handlers.get(self.path, origin.default)
                res = fn(self)
                if res is None:
                    time.sleep(30)
                    return
                status, fields, body = res
                self.send_response(status)
                names = {k.lower() for k, _ in fields}
                for k, v in fields:
                    self.send_header(k, v)
                if "content-length" not in names and status not in (204, 304) and self.command != "HEAD":
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD" and status not in (204, 304):
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _any

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def default(req):
        return 200, [("Cache-Control", "max-age=60")], f"body of {req.path}".encode()

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def start_proxy(spawn, *args, host="127.0.0.1"):
    for attempt in range(2):
        port = free_port(host)
        p = spawn(["proxy", "--listen", f"{host}:{port}", "--workers", "2", *args])
        if wait_bound(p, port):
            return p, port
        rc = p.wait()
        if attempt == 0 and b"Address already in use" in p.err:
            continue
        raise AssertionError(f"proxy exited with {rc}: {p.err!r}")
    raise AssertionError("unreachable")


def parse_curl(out):
    """curl -i output -> (status, {lower name: value}, body). The last head
    wins (curl prints 1xx heads too)."""
    head, _, body = out.partition(b"\r\n\r\n")
    while body.startswith(b"HTTP/") and head.split(b" ")[1].startswith(b"1"):
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    fields = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        fields.setdefault(k.strip().lower(), v.strip())
    return status, fields, body


def fetch(proxy_port, url, *curl_args, timeout=15):
    r = subprocess.run(["curl", "-s", "-i", "--max-time", str(timeout), "-x",
                        f"http://127.0.0.1:{proxy_port}", *curl_args, url],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout + 5)
    assert r.returncode == 0, f"curl failed ({r.returncode}): {r.stderr!r}"
    return parse_curl(r.stdout)


def raw(port, data, timeout=10):
    """Sends raw bytes to the proxy; returns what comes back until EOF or
    the first complete response (by Content-Length)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            head, sep, body = buf.partition(b"\r\n\r\n")
            if sep:
                for l in head.split(b"\r\n"):
                    if l.lower().startswith(b"content-length:"):
                        if len(body) >= int(l.split(b":")[1]):
                            return buf
        return buf
