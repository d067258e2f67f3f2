"""portico proxy: request bodies streamed upstream as they arrive, with
backpressure (the proxy stops reading a client faster than the upstream),
re-chunked where needed, capped by --max-body, and cut cleanly when the
client stalls or the upstream answers early."""
import hashlib
import http.client
import os
import re
import signal
import socket
import threading
import time

import pytest

from conftest import PORTICO, free_port, wait_bound
from proxy_helpers import Origin, start_proxy


@pytest.fixture
def spawn(spawn):
    """conftest's spawn, and at the end no sanitizer report on any stderr
    (make test SAN=1 runs these against the ASan+UBSan build)."""
    procs = []

    def start(args, **kw):
        p = spawn(args, **kw)
        procs.append(p)
        return p

    yield start
    time.sleep(0.2)
    for p in procs:
        assert b"Sanitizer" not in p.err and b"runtime error:" not in p.err, p.err[-2000:]


class RawOrigin:
    """A loopback origin that runs handle(conn, head, rest) per connection
    in a thread and keeps what the handler records in .got."""

    def __init__(self, handle):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.got = []
        self.heads = 0
        self.lock = threading.Lock()
        self.handle = handle
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            c.settimeout(30)
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, _, rest = buf.partition(b"\r\n\r\n")
            with self.lock:
                self.heads += 1
            rec = self.handle(c, head, rest)
            with self.lock:
                self.got.append(rec)
        except OSError as e:
            with self.lock:
                self.got.append({"error": repr(e)})
        finally:
            c.close()

    def wait_for(self, n, timeout=10):
        """Waits until n connections were recorded (a handler records after
        it answered, so after the client may have read the answer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.got) >= n:
                    return True
            time.sleep(0.02)
        return False

    def wait_heads(self, n, timeout=10):
        """Waits until n request heads arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.heads >= n:
                    return True
            time.sleep(0.02)
        return False

    def close(self):
        # shutdown() first: it wakes the thread blocked in accept(), which
        # would otherwise keep the listening socket (and its port) alive.
        try:
            self.ls.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ls.close()


def field(head, name):
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip().decode()
    return None


def read_to_eof(c, have=b""):
    """Reads until EOF; returns (bytes, eof_seen)."""
    buf = bytearray(have)
    while True:
        try:
            d = c.recv(1 << 20)
        except OSError:
            return bytes(buf), False
        if not d:
            return bytes(buf), True
        buf += d


def dechunk(data):
    """Decodes a chunked body: (bytes, complete); a cut one is incomplete."""
    try:
        return _dechunk(data)
    except (ValueError, AssertionError):
        return b"", False


def _dechunk(data):
    out = bytearray()
    pos = 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        pos = end + 2
        if size == 0:
            return bytes(out), data[pos:pos + 2] == b"\r\n"
        out += data[pos:pos + size]
        assert data[pos + size:pos + size + 2] == b"\r\n"
        pos += size + 2


def answer(c, status=200, body=b"ok\n"):
    c.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nCache-Control: no-store\r\n\r\n%s" % (status, len(body), body))


def read_response(s):
    """One response with Content-Length (or to EOF): (status, head, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    n = field(head, b"content-length")
    while n is not None and len(body) < int(n):
        d = s.recv(65536)
        if not d:
            break
        body += d
    return int(head.split(b" ")[1]), head, body


def hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def pattern_block(i, size=1 << 20):
    """A block of bytes that differs per index (a digest catches any
    reordering or loss)."""
    seed = hashlib.sha256(b"%d" % i).digest()
    return (seed * (size // len(seed) + 1))[:size]


def upload(s, request_line, total):
    """Sends a Content-Length request of `total` bytes of pattern blocks;
    returns the body's sha256."""
    digest = hashlib.sha256()
    s.sendall(request_line + b" HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
    for i in range(total >> 20):
        b = pattern_block(i)
        digest.update(b)
        s.sendall(b)
    return digest


@pytest.mark.deadline(120)
def test_put_50mib_to_serve_arrives_whole_in_bounded_memory(spawn, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    sport = free_port()
    serve = spawn(["serve", str(root), "--listen", f"127.0.0.1:{sport}", "--writable", "--quiet",
                   "--max-body", "200m", "--workers", "1"])
    assert wait_bound(serve, sport)
    p, pp = start_proxy(spawn, "--upstream", f"http://127.0.0.1:{sport}", "--workers", "1",
                        "--max-body", "200m")
    base = hwm_kb(p.pid)
    total = 50 << 20
    with socket.create_connection(("127.0.0.1", pp), timeout=60) as s:
        digest = upload(s, b"PUT /big.bin", total)
        st, head, _ = read_response(s)
    assert st in (200, 201, 204), head
    got = hashlib.sha256((root / "big.bin").read_bytes()).hexdigest()
    assert got == digest.hexdigest()
    peak = hwm_kb(p.pid)
    # Buffered whole, the body alone would be 51200 kB.
    assert peak - base < 16 << 10, f"proxy peak RSS grew by {peak - base} kB for a 50 MiB body"


@pytest.mark.deadline(90)
def test_fast_client_slow_upstream_backpressure(spawn):
    """The origin reads slowly: the proxy must stop reading the client, so
    its memory stays near one queue and the client's sends block."""
    total = 24 << 20

    def slow(c, head, rest):
        n = len(rest)
        h = hashlib.sha256(rest)
        want = int(field(head, b"content-length"))
        while n < want:
            time.sleep(0.004)
            d = c.recv(65536)
            if not d:
                break
            n += len(d)
            h.update(d)
        answer(c, 201)
        return {"n": n, "sha": h.hexdigest()}

    o = RawOrigin(slow)
    p, pp = start_proxy(spawn, "--upstream", f"http://127.0.0.1:{o.port}", "--workers", "1",
                        "--max-body", "100m")
    base = hwm_kb(p.pid)
    with socket.create_connection(("127.0.0.1", pp), timeout=60) as s:
        digest = upload(s, b"POST /up", total)
        st, head, body = read_response(s)
    o.close()
    assert st == 201 and body == b"ok\n"
    assert o.wait_for(1)
    assert o.got == [{"n": total, "sha": digest.hexdigest()}]
    peak = hwm_kb(p.pid)
    assert peak - base < 12 << 10, f"proxy peak RSS grew by {peak - base} kB for a 24 MiB body"


def _recording_origin():
    def rec(c, head, rest):
        te = field(head, b"transfer-encoding")
        cl = field(head, b"content-length")
        if te == "chunked":
            data = rest
            while not data.endswith(b"0\r\n\r\n"):
                d = c.recv(65536)
                if not d:
                    break
                data += d
            body, ok = dechunk(data)
        else:
            body = rest
            while len(body) < int(cl or 0):
                d = c.recv(65536)
                if not d:
                    break
                body += d
            ok = True
        answer(c, 200)
        return {"te": te, "cl": cl, "body": body, "ok": ok}
    return RawOrigin(rec)


def test_chunked_upload_reframed_upstream(spawn):
    o = _recording_origin()
    _, pp = start_proxy(spawn, "--upstream", f"http://127.0.0.1:{o.port}")
    big = b"".join(pattern_block(i, 100000) for i in range(3))  # past the 64 KiB buffer
    small = b"small chunked body"
    for body in (big, small):
        with socket.create_connection(("127.0.0.1", pp), timeout=20) as s:
            s.sendall(b"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            # Odd chunk sizes, sent apart: the proxy frames its own chunks.
            pos = 0
            for n in (1, 7000, 65536, 3, 100000, 1 << 20):
                piece = body[pos:pos + n]
                if piece:
                    s.sendall(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
                pos += n
            s.sendall(b"0\r\nX-Trailer: t\r\n\r\n")
            st, _, rb = read_response(s)
        assert (st, rb) == (200, b"ok\n")
    assert o.wait_for(2)
    o.close()
    g_big, g_small = o.got
    # Long: streamed, so re-chunked; short: read whole, so Content-Length.
    assert g_big["te"] == "chunked" and g_big["cl"] is None and g_big["ok"] and g_big["body"] == big
    assert g_small["te"] is None and g_small["cl"] == str(len(small)) and g_small["body"] == small


@pytest.mark.deadline(60)
def test_client_stalling_mid_body_gets_408_and_upstream_is_cut(spawn):
    seen = threading.Event()

    def partial(c, head, rest):
        want = int(field(head, b"content-length"))
        data, eof = read_to_eof(c, rest)
        seen.set()
        return {"n": len(data), "want": want, "eof": eof}

    o = RawOrigin(partial)
    _, pp = start_proxy(spawn, "--upstream", f"http://127.0.0.1:{o.port}", "--header-timeout", "1")
    with socket.create_connection(("127.0.0.1", pp), timeout=30) as s:
        s.sendall(b"PUT /stall HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (1 << 20))
        s.sendall(pattern_block(0, 200000))  # past the buffer: streaming began
        t0 = time.monotonic()
        st, head, body = read_response(s)
        waited = time.monotonic() - t0
    assert st == 408, head
    assert waited < 20
    assert seen.wait(15)
    o.close()
    # The upstream saw the body cut short by a close, never a complete body.
    assert o.wait_for(1)
    assert o.got == [{"n": 200000, "want": 1 << 20, "eof": True}]


def test_body_over_max_body_is_413(spawn):
    o = _recording_origin()
    _, pp = start_proxy(spawn, "--upstream", f"http://127.0.0.1:{o.port}", "--max-body", "100k")
    # Content-Length past the cap: refused before anything goes upstream.
    with socket.create_connection(("127.0.0.1", pp), timeout=20) as s:
        s.sendall(b"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n")
        st, _, _ = read_response(s)
    assert st == 413
    # Chunked past the cap: streaming has begun (past 64 KiB), then 413 and
    # the upstream request is cut, never completed.
    with socket.create_connection(("127.0.0.1", pp), timeout=20) as s:
        s.sendall(b"PUT /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for i in range(4):
                s.sendall(b"%x\r\n%s\r\n" % (50000, pattern_block(i, 50000)))
                if i == 1:  # the upstream request has begun (past 64 KiB)
                    assert o.wait_heads(1)
            s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the proxy may close before all of it went
        st, _, _ = read_response(s)
    assert st == 413
    o.wait_for(1)
    o.close()
    assert len(o.got) == 1 and not o.got[0]["ok"] and len(o.got[0]["body"]) < 200000


def test_upstream_answering_early_is_relayed(spawn):
    """The origin refuses after the head (413) without reading the body:
    the proxy stops sending it and relays the answer at once."""
    def refuse(c, head, rest):
        c.sendall(b"HTTP/1.1 413 Too Big\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n")
        c.shutdown(socket.SHUT_WR)
        data, _ = read_to_eof(c, rest)
        return {"n": len(data)}

    o = RawOrigin(refuse)
    _, pp = start_proxy(spawn, "--upstream", f"http://127.0.0.1:{o.port}", "--max-body", "1g")
    with socket.create_connection(("127.0.0.1", pp), timeout=30) as s:
        s.sendall(b"PUT /early HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (512 << 20))
        s.settimeout(0.5)
        res = b""
        sent = 0
        deadline = time.monotonic() + 20
        # Keep sending (as a real client would) until the answer comes.
        while b"too big\n" not in res and time.monotonic() < deadline:
            try:
                sent += s.send(pattern_block(0, 65536))
            except (socket.timeout, BlockingIOError):
                pass
            except OSError:
                break
            try:
                d = s.recv(65536)
                if not d:
                    break
                res += d
            except socket.timeout:
                pass
    assert res.startswith(b"HTTP/1.1 413") and res.endswith(b"too big\n"), res[:200]
    assert sent < 512 << 20
    o.close()


# ------------------------------------------------------------- collapsing

@pytest.mark.deadline(60)
def test_collapsed_waiters_stream_while_the_origin_sends(spawn):
    """A slow, large, storable response: waiters collapsed behind the
    leader get their first body bytes while the origin is still sending,
    not after it finished; all get the whole body; the origin sees one
    request."""
    total = 2 << 20
    body = b"".join(pattern_block(i, 1 << 18) for i in range(total >> 18))
    marks = {}

    def slow(c, head, rest):
        marks["head"] = time.monotonic()
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nCache-Control: max-age=60\r\n\r\n" % total)
        c.sendall(body[:65536])
        time.sleep(4)
        marks["rest"] = time.monotonic()  # before this, only 64 KiB were out
        c.sendall(body[65536:])
        return {"path": head.split(b" ")[1]}

    o = RawOrigin(slow)
    _, pp = start_proxy(spawn, "--workers", "2")
    url = f"http://127.0.0.1:{o.port}/slow"
    results = []
    lock = threading.Lock()

    def one():
        with socket.create_connection(("127.0.0.1", pp), timeout=30) as s:
            s.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            buf = b""
            first = None
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                buf += d
                if first is None and b"\r\n\r\n" in buf and len(buf.partition(b"\r\n\r\n")[2]) > 0:
                    first = time.monotonic()
        with lock:
            results.append((first, buf))

    leader = threading.Thread(target=one)
    leader.start()
    deadline = time.monotonic() + 10
    while "head" not in marks and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    waiters = [threading.Thread(target=one) for _ in range(10)]
    for t in waiters:
        t.start()
    for t in [leader] + waiters:
        t.join(30)
    o.close()
    assert o.wait_for(1)
    assert len(o.got) == 1
    assert len(results) == 11
    for first, buf in results:
        head, _, got = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and got == body
        # Generous: the origin paused 4 s before its rest.
        assert first is not None and first < marks["rest"], (first, marks)


# -------------------------------------------------------- memory accounting

def memfd_bytes(pid):
    """Bytes in the proxy's memory files (the stored bodies' memfd copies)."""
    total = 0
    d = f"/proc/{pid}/fd"
    for n in os.listdir(d):
        try:
            if os.readlink(f"{d}/{n}").startswith("/memfd:"):
                total += os.stat(f"{d}/{n}").st_size
        except OSError:
            pass
    return total


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.deadline(90)
def test_cache_memory_counts_body_files_and_evicts(spawn):
    """Fill well past --cache-mem with 200 KiB objects, hit each (a hit
    makes the body's memory file): the stored bodies plus their memory
    files stay within --cache-mem, the proxy's RSS stays bounded, and the
    oldest objects are evicted (LRU)."""
    limit = 8 << 20
    size = 200 << 10
    origin = Origin({})
    origin.default = lambda req: (200, [("Cache-Control", "max-age=600")], bytes([len(req.path) % 251]) * size)
    p, pp = start_proxy(spawn, "--workers", "1", "--cache-mem", "8m", "--log-level", "info")
    base = rss_kb(p.pid)
    conn = http.client.HTTPConnection("127.0.0.1", pp, timeout=20)
    peak = 0

    def get(i):
        conn.request("GET", origin.url(f"/o/{i}"))
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200 and len(body) == size
        return r.getheader("X-Cache")

    for i in range(100):
        assert get(i) == "MISS"
        peak = max(peak, rss_kb(p.pid))
    # Hits on what is still stored, newest first (each makes a memory
    # file), down to the first object evicted (LRU: the oldest went).
    hits = 0
    for i in range(99, -1, -1):
        if get(i) != "HIT":
            break
        hits += 1
        peak = max(peak, rss_kb(p.pid))
    assert 0 < hits < 100
    assert get(0) == "MISS" and origin.count("/o/0") == 2
    files = memfd_bytes(p.pid)
    assert files > 0  # hits were sent from memory files
    conn.close()
    os.kill(p.pid, signal.SIGTERM)
    p.wait()
    origin.close()
    m = re.search(rb"cache at exit: (\d+) objects, (\d+) bytes of (\d+) \(--cache-mem\), (\d+) evicted", p.err)
    assert m, p.err[-2000:]
    objects, accounted, evicted = int(m[1]), int(m[2]), int(m[4])
    assert accounted <= limit and evicted > 0
    # Every stored body is in memory once, plus its memory file when it
    # was hit: together within the limit.
    assert objects * size + files <= limit, (objects, files)
    # 20 MB went through; the heap holds what the cache holds, and more.
    # (Not under ASan: its quarantine keeps freed blocks resident.)
    if "/san/" not in PORTICO:
        assert peak - base < 3 * (limit >> 10), f"RSS grew by {peak - base} kB"


def test_streamed_body_on_a_closed_kept_alive_connection_is_an_exact_502(spawn):
    """The origin serves a GET on a kept-alive connection, then drops that
    connection once the next request (a streamed PUT) has begun on it: the
    body cannot be sent again, and the 502 says so."""
    def keep_then_drop(c, head, rest):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nCache-Control: no-store\r\n\r\nok\n")
        buf = rest
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return {"second": None}
            buf += d
        second = buf.split(b" ")[0]
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return {"second": second}  # closed (reset) by _one

    o = RawOrigin(keep_then_drop)
    _, pp = start_proxy(spawn, "--upstream", f"http://127.0.0.1:{o.port}", "--workers", "1")
    with socket.create_connection(("127.0.0.1", pp), timeout=20) as s:
        s.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        st, _, body = read_response(s)
        assert (st, body) == (200, b"ok\n")
        time.sleep(0.2)
        s.sendall(b"PUT /second HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (1 << 20))
        try:
            s.sendall(pattern_block(1, 200000))
        except OSError:
            pass
        st, _, body = read_response(s)
    assert o.wait_for(1)
    o.close()
    assert o.got == [{"second": b"PUT"}]
    assert st == 502, body
    assert b"kept-alive connection; the request body was streamed and cannot be sent again" in body, body


@pytest.mark.deadline(60)
def test_waiters_go_alone_once_the_response_is_known_unstorable(spawn):
    """A slow response that may not be stored (no-store): the waiters do not
    wait for its whole body, they go upstream as soon as its head is known."""
    marks = {}
    lock = threading.Lock()

    def slow(c, head, rest):
        with lock:
            n = marks["n"] = marks.get("n", 0) + 1
            marks.setdefault("first", time.monotonic())
            marks[f"arrived{n}"] = time.monotonic()
        if n == 1:
            time.sleep(1)  # the waiters collapse behind this request meanwhile
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nCache-Control: no-store\r\n\r\nab")
        time.sleep(3)
        c.sendall(b"cdef")
        return {"n": n}

    o = RawOrigin(slow)
    _, pp = start_proxy(spawn, "--workers", "2")
    url = f"http://127.0.0.1:{o.port}/ns"
    bodies = []

    def one():
        with socket.create_connection(("127.0.0.1", pp), timeout=30) as s:
            s.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            bodies.append(read_to_eof(s)[0])

    leader = threading.Thread(target=one)
    leader.start()
    deadline = time.monotonic() + 10
    while "first" not in marks and time.monotonic() < deadline:
        time.sleep(0.01)
    # The waiters join while the leader's request is at the origin (before
    # its head came back, so they are collapsed behind it).
    waiters = [threading.Thread(target=one) for _ in range(3)]
    for t in waiters:
        t.start()
    for t in [leader] + waiters:
        t.join(30)
    assert o.wait_for(4)
    o.close()
    assert len(bodies) == 4 and all(b.endswith(b"\r\n\r\nabcdef") for b in bodies), bodies
    # The leader's head came 1 s after its request, its body's end 3 s
    # later: each waiter reached the origin soon after the head (about
    # 1 s), not after the body (4 s).
    for k in (2, 3, 4):
        assert marks[f"arrived{k}"] - marks["first"] < 3.0, marks


def socket_fds(pid):
    n = 0
    for f in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{f}").startswith("socket:")
        except OSError:
            pass
    return n


@pytest.mark.deadline(60)
def test_client_reset_while_held_back_cuts_the_upstream(spawn):
    """The origin takes no body for a while, so the proxy holds the client
    back; the client then resets its connection: the proxy lets go of both
    connections at once, not when the origin reads again."""
    def sleepy(c, head, rest):
        time.sleep(6)  # the proxy's queue and both socket buffers fill
        c.settimeout(10)
        data, eof = read_to_eof(c, rest)
        return {"eof": eof, "n": len(data)}

    o = RawOrigin(sleepy)
    p, pp = start_proxy(spawn, "--upstream", f"http://127.0.0.1:{o.port}", "--workers", "1",
                        "--max-body", "1g")
    base = socket_fds(p.pid)
    s = socket.create_connection(("127.0.0.1", pp), timeout=5)
    s.sendall(b"PUT /r HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (512 << 20))
    s.setblocking(False)
    sent = 0
    t0 = time.monotonic()
    block = pattern_block(2)
    while time.monotonic() - t0 < 2:
        try:
            sent += s.send(block)
        except BlockingIOError:
            time.sleep(0.01)
    held = socket_fds(p.pid)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # a reset
    time.sleep(1)
    after = socket_fds(p.pid)
    assert sent < 512 << 20
    assert held == base + 2  # the client's connection and the upstream one
    # Both gone while the origin still sleeps.
    assert after == base, (base, held, after)
    assert o.wait_for(1, timeout=20)
    o.close()
    assert o.got[0]["eof"] and o.got[0]["n"] < sent
