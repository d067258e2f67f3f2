"""Helpers for the `portico serve` integration tests (test_serve.py).

Self-contained on purpose: conftest.py belongs to the nc tests.

- start_serve(): start `portico serve` on a free loopback port, wait until it
  accepts, retry once on "Address already in use".
- Server.stop(): SIGTERM, wait, SIGKILL by PID; returns the exit status.
- Conn: a raw socket with a read buffer and a strict HTTP/1.x response
  reader (Content-Length, chunked or close-delimited bodies).
"""
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PORTICO = os.environ.get("PORTICO") or str(REPO / "build" / "portico")
HOST = "127.0.0.1"
IO_TIMEOUT = 10.0

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")


# ------------------------------------------------------------------ processes

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_accepts(port, timeout=0.2):
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


class Server:
    def __init__(self, proc, port, out_path, err_path):
        self.proc = proc
        self.port = port
        self.out_path = out_path
        self.err_path = err_path

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        try:
            return Path(self.err_path).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout(self):
        try:
            return Path(self.out_path).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def url(self, path="/"):
        return f"http://{HOST}:{self.port}{path}"

    def connect(self, timeout=IO_TIMEOUT):
        return Conn(self.port, timeout)

    def stop(self, wait=8.0):
        """SIGTERM, then SIGKILL if it does not exit in time. Returns the
        exit status (negative: killed by that signal)."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)

    def sanitizer_report(self):
        err = self.stderr()
        return err if any(m in err for m in SANITIZER_MARKS) else ""


def _spawn(args, workdir, tag):
    out_path = Path(workdir) / f"{tag}.stdout"
    err_path = Path(workdir) / f"{tag}.stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([PORTICO, *args], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, close_fds=True)
    return proc, out_path, err_path


def start_serve(docroot, workdir, *extra, port=None, quiet=True, workers=True,
                listen=True, tag="serve"):
    """Starts `portico serve DOCROOT --listen 127.0.0.1:PORT --workers 1
    --quiet EXTRA...` and waits (up to ~5 s) until the port accepts."""
    last_err = ""
    for attempt in range(2):
        p = port if (port is not None and attempt == 0) else free_port()
        args = ["serve"]
        if quiet:
            args.append("--quiet")
        if listen:
            args += ["--listen", f"{HOST}:{p}"]
        if workers:
            args += ["--workers", "1"]
        args += [str(a) for a in extra]
        if docroot is not None:
            args.append(str(docroot))   # last: see test_dir_before_options
        proc, out_path, err_path = _spawn(args, workdir, f"{tag}-{attempt}")
        srv = Server(proc, p, out_path, err_path)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if port_accepts(p):
                return srv
            time.sleep(0.02)
        srv.kill()
        last_err = srv.stderr()
        if "Address already in use" not in last_err:
            break
    raise RuntimeError(f"portico serve did not start: rc={proc.returncode} stderr={last_err!r}")


def run_portico(args, workdir, timeout=10, tag="run"):
    """Runs portico to completion; returns (rc, stdout, stderr) as text."""
    proc, out_path, err_path = _spawn(args, workdir, tag)
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    return (proc.returncode, Path(out_path).read_text(errors="replace"),
            Path(err_path).read_text(errors="replace"))


def established_count(port):
    """Established TCP connections whose local port is `port` (the server
    side of connections to it), from /proc/net/tcp."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            f = line.split()
            local, state = f[1], f[3]
            if int(local.rsplit(":", 1)[1], 16) == port and state == "01":
                n += 1
    return n


# ------------------------------------------------------------------ raw HTTP

def request(method, target, host="x", version="1.1", headers=(), body=b""):
    """A request as bytes. host=None leaves out the Host field."""
    lines = [f"{method} {target} HTTP/{version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{k}: {v}" for k, v in headers]
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("latin-1") + body


class Response:
    def __init__(self, version, status, reason, fields, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.fields = fields          # [(name, value)] in order
        self.raw_head = raw_head
        self.body = b""
        self.raw_body = b""           # as on the wire (chunk framing kept)
        self.framing = None           # "length", "chunked", "close", "none"

    def get_all(self, name):
        name = name.lower()
        return [v for k, v in self.fields if k.lower() == name]

    def header(self, name):
        vals = self.get_all(name)
        assert len(vals) <= 1, f"{name} appears {len(vals)} times: {vals}"
        return vals[0] if vals else None

    def names(self):
        return [k.lower() for k, _ in self.fields]

    def __repr__(self):
        return f"<Response {self.status} {self.fields} body={self.body[:80]!r}>"


class ConnClosed(Exception):
    pass


class Conn:
    def __init__(self, port, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _more(self, n=65536):
        d = self.sock.recv(n)
        if not d:
            raise ConnClosed("connection closed by the server")
        self.buf += d

    def _read_line(self):
        while b"\r\n" not in self.buf:
            self._more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._more(max(65536, n - len(self.buf)))
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        text = head.decode("latin-1")
        lines = text.split("\r\n")
        m = re.fullmatch(r"HTTP/(\d\.\d) (\d{3}) (.*)", lines[0])
        assert m, f"bad status line {lines[0]!r}"
        fields = []
        for ln in lines[1:]:
            assert ":" in ln and not ln[0].isspace(), f"bad field line {ln!r}"
            k, v = ln.split(":", 1)
            assert k == k.strip(), f"space in field name {ln!r}"
            fields.append((k, v.strip()))
        return Response(m.group(1), int(m.group(2)), m.group(3), fields, head + b"\r\n\r\n")

    def read_response(self, head_only=False):
        r = self.read_head()
        te = r.header("Transfer-Encoding")
        cl = r.header("Content-Length")
        if head_only or r.status in (204, 304) or 100 <= r.status < 200:
            r.framing = "none"
            return r
        if te is not None:
            assert te.lower() == "chunked", te
            assert cl is None, "both Content-Length and Transfer-Encoding"
            r.framing = "chunked"
            raw = b""
            body = b""
            while True:
                line = self._read_line()
                raw += line + b"\r\n"
                assert re.fullmatch(rb"[0-9a-fA-F]+", line), f"bad chunk size line {line!r}"
                size = int(line, 16)
                if size == 0:
                    break
                data = self._read_exact(size + 2)
                assert data[-2:] == b"\r\n", "chunk not followed by CRLF"
                raw += data
                body += data[:-2]
            while True:  # trailers, then the empty line
                line = self._read_line()
                raw += line + b"\r\n"
                if line == b"":
                    break
            r.raw_body = raw
            r.body = body
        elif cl is not None:
            r.framing = "length"
            r.body = self._read_exact(int(cl))
            r.raw_body = r.body
        else:
            r.framing = "close"
            r.body = self.read_to_eof()
            r.raw_body = r.body
        return r

    def read_to_eof(self):
        """Everything until the server closes (its FIN)."""
        while True:
            d = self.sock.recv(65536)
            if not d:
                break
            self.buf += d
        d, self.buf = self.buf, b""
        return d

    def closed_by_server(self, timeout=5.0):
        """True when the server has closed: recv() gives b"" with nothing
        before it (a reset also counts as closed)."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(IO_TIMEOUT)
        if d:
            self.buf += d
            return False
        return True

    def silent(self, wait=0.3):
        """True when nothing arrives within `wait` seconds and the
        connection is still open."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(IO_TIMEOUT)
        self.buf += d
        return False


def exchange(port, data, head_only=False, timeout=IO_TIMEOUT):
    """One request on a fresh connection; returns (response, conn)."""
    c = Conn(port, timeout)
    c.send(data)
    return c.read_response(head_only=head_only), c


def error_page(status, reason):
    return (f"<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>"
            f"<body><h1>{status} {reason}</h1></body></html>\n").encode()
