"""Shared helpers and fixtures for the portico integration tests.

PORTICO names the binary under test (default: build/portico of this repo).

Every portico process is started through the `spawn` fixture: its stdout
and stderr are drained by threads (a full pipe never blocks it), its stdin
is always given explicitly, and it is killed by PID when the test ends.
Every test runs under a SIGALRM deadline (pytest-timeout is not needed).
"""
import errno
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PORTICO = os.environ.get("PORTICO") or str(REPO / "build" / "portico")

# Per-test deadline in seconds; a test may ask for another with
# @pytest.mark.deadline(S).
TEST_DEADLINE = 20


def pytest_configure(config):
    config.addinivalue_line("markers", "deadline(seconds): per-test time limit")


class Deadline(Exception):
    pass


@pytest.fixture(autouse=True)
def _deadline(request):
    mark = request.node.get_closest_marker("deadline")
    limit = mark.args[0] if mark else TEST_DEADLINE

    def on_alarm(signum, frame):
        raise Deadline(f"test took longer than {limit} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------ ports

def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host="127.0.0.1", udp=False):
    """A port that was free a moment ago: bind port 0, read it, close."""
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(family_of(host), kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def fmt_addr(host, port):
    """An address as portico prints it: 1.2.3.4:P or [::1]:P."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -------------------------------------------------------------- processes

class Proc:
    """A running portico with its output collected in the background."""

    def __init__(self, args, stdin=subprocess.DEVNULL, preexec_fn=None):
        self.args = [PORTICO, *[str(a) for a in args]]
        self.p = subprocess.Popen(self.args, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, preexec_fn=preexec_fn)
        self.pid = self.p.pid
        self._cv = threading.Condition()
        self._out = bytearray()
        self._err = bytearray()
        self._eof = {"out": False, "err": False}
        self._threads = [
            threading.Thread(target=self._drain, args=(self.p.stdout, self._out, "out"), daemon=True),
            threading.Thread(target=self._drain, args=(self.p.stderr, self._err, "err"), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _drain(self, pipe, acc, name):
        fd = pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._cv:
                if not chunk:
                    self._eof[name] = True
                    self._cv.notify_all()
                    return
                acc += chunk
                self._cv.notify_all()

    # stdin
    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def send_in_thread(self, data, close=True):
        """Writes data to stdin from a thread (data may exceed the pipe)."""
        def run():
            try:
                self.p.stdin.write(data)
                if close:
                    self.p.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    # output
    @property
    def out(self):
        with self._cv:
            return bytes(self._out)

    @property
    def err(self):
        with self._cv:
            return bytes(self._err)

    def err_lines(self):
        return self.err.decode(errors="replace").splitlines()

    def wait_stderr(self, pattern, timeout=5.0):
        """Waits for a stderr line matching the regex; returns the match."""
        rx = re.compile(pattern, re.M)
        end = time.monotonic() + timeout
        with self._cv:
            while True:
                m = rx.search(self._err.decode(errors="replace"))
                if m:
                    return m
                left = end - time.monotonic()
                if left <= 0 or self._eof["err"]:
                    raise AssertionError(
                        f"no stderr line matching {pattern!r} in {timeout} s; "
                        f"rc={self.p.poll()} stderr={bytes(self._err)!r}")
                self._cv.wait(min(left, 0.1))

    def wait(self, timeout=5.0):
        """Waits for exit and for all output; returns the exit code."""
        rc = self.p.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=timeout)
        return rc

    def poll(self):
        return self.p.poll()

    def signal(self, signo):
        os.kill(self.pid, signo)

    def kill(self):
        if self.p.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass


@pytest.fixture
def spawn():
    """spawn(args, stdin=DEVNULL) -> Proc; every Proc is killed at teardown."""
    procs = []

    def start(args, stdin=subprocess.DEVNULL, preexec_fn=None):
        p = Proc(args, stdin=stdin, preexec_fn=preexec_fn)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()


def run_portico(args, stdin=subprocess.DEVNULL, input=None, timeout=10):
    """Runs portico to completion: (returncode, stdout bytes, stderr bytes)."""
    if input is not None:
        stdin = None  # run() makes a pipe for input
    r = subprocess.run([PORTICO, *[str(a) for a in args]], stdin=stdin, input=input,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


# -------------------------------------------------------------- readiness

_PROC_NET_STATE_LISTEN = "0A"


def _socket_inodes(pid):
    inodes = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for n in names:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{n}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def proc_sockets(pid, udp=False):
    """(local port, remote port, state) of each socket the process holds.
    /proc/net/tcp is not a snapshot (a busy table can list a socket twice
    across read chunks), so the rows are keyed by inode."""
    inodes = _socket_inodes(pid)
    found = {}
    for table in (("udp", "udp6") if udp else ("tcp", "tcp6")):
        try:
            with open(f"/proc/net/{table}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[9] not in inodes:
                continue
            lport = int(fields[1].rsplit(":", 1)[1], 16)
            rport = int(fields[2].rsplit(":", 1)[1], 16)
            found[fields[9]] = (lport, rport, fields[3])
    return list(found.values())


def is_bound(pid, port, udp=False):
    """True once the process holds a socket bound to port (TCP: listening)."""
    for lport, _, state in proc_sockets(pid, udp):
        if lport == port and (udp or state == _PROC_NET_STATE_LISTEN):
            return True
    return False


def wait_bound(proc, port, udp=False, timeout=5.0):
    """Waits until proc listens on port, without connecting to it (a
    connection would be the one client of a listener without -k).
    Returns False if the process ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if is_bound(proc.pid, port, udp):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    raise AssertionError(f"portico did not bind port {port} in {timeout} s: stderr={proc.err!r}")


def start_listener(spawn, make_args, host="127.0.0.1", udp=False, stdin=subprocess.DEVNULL):
    """Starts portico on a free port: make_args(port) gives its arguments.
    Retries once with a new port on 'Address already in use'.
    Returns (proc, port) once the port is bound."""
    for attempt in range(2):
        port = free_port(host, udp)
        proc = spawn(make_args(port), stdin=stdin)
        if wait_bound(proc, port, udp):
            return proc, port
        rc = proc.wait()
        if attempt == 0 and b"Address already in use" in proc.err:
            continue
        raise AssertionError(f"listener exited with {rc}: stderr={proc.err!r}")
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- clients

def connect(port, host="127.0.0.1", timeout=5.0):
    s = socket.create_connection((host, port), timeout=timeout)
    return s


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(65536, n - len(buf)))
        if not chunk:
            raise AssertionError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_until_eof(sock):
    buf = bytearray()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return bytes(buf)
        buf += chunk


def echo_roundtrip(port, data, host="127.0.0.1"):
    """Connects, sends data, reads the same number of bytes back."""
    with connect(port, host) as s:
        s.sendall(data)
        return recv_exact(s, len(data))


def assert_refused(port, host="127.0.0.1"):
    with socket.socket(family_of(host), socket.SOCK_STREAM) as s:
        s.settimeout(2)
        err = s.connect_ex((host, port))
    assert err == errno.ECONNREFUSED, f"connect to {host}:{port}: {os.strerror(err) if err else 'succeeded'}"
