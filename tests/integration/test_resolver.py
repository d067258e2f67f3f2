"""`portico resolver` against the offline nsd hierarchy (dns_hierarchy.py):
dig gets the same answers from it as from unbound configured with the same
root hints; negative answers are cached; big answers are truncated over UDP
and whole over TCP; malformed, refused and unsupported requests get the
right RCODE or nothing; --allow; --forward."""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import PORTICO, Proc, free_port
from dns_hierarchy import NSD, Hierarchy, big_txt_strings, unbound_conf

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
DIG = shutil.which("dig") or "/usr/bin/dig"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(os.path.exists(p) for p in (NSD, UNBOUND, DIG)),
    reason="needs root (nsd on port 53), nsd, unbound and dig")


@pytest.fixture(scope="module")
def hier():
    h = Hierarchy().start()
    yield h
    h.stop()


def start_resolver(*args):
    p = Proc(["resolver", "--listen", "127.0.0.1:0", "--workers", "2", *args])
    try:
        m = p.wait_stderr(r"listening on 127\.0\.0\.1:(\d+)", timeout=10)
    except BaseException:
        p.kill()
        raise
    return p, int(m[1])


@pytest.fixture(scope="module")
def resolver(hier):
    p, port = start_resolver("--root-hints", hier.hints, "--timeout", "1000")
    yield port
    p.signal(signal.SIGTERM)
    try:
        assert p.wait(timeout=10) == 0, p.err.decode(errors="replace")[-3000:]
    finally:
        p.kill()


def start_unbound(d, hints):
    """Starts unbound on a free port; a few tries, as the port it was given
    may be taken (over TCP, say) by the time it binds. Returns (proc, port)."""
    logs = ""
    for _ in range(3):
        port = free_port(udp=True)
        conf = os.path.join(d, "unbound.conf")
        with open(conf, "w") as f:
            f.write(unbound_conf(port, d, hints))
        out = open(os.path.join(d, "unbound.out"), "w")
        p = subprocess.Popen([UNBOUND, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                             stdout=out, stderr=subprocess.STDOUT)
        out.close()
        end = time.monotonic() + 15
        while p.poll() is None and dig(port, ".", "NS")[0] is None:
            if time.monotonic() > end:
                stop_proc(p)
                raise AssertionError("unbound does not answer")
            time.sleep(0.1)
        if p.poll() is None:
            return p, port
        for f in ("unbound.out", "unbound.log"):
            if os.path.exists(os.path.join(d, f)):
                logs += open(os.path.join(d, f)).read()
    raise AssertionError(f"unbound exited: {logs}")


def stop_proc(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=5)


@pytest.fixture(scope="module")
def unbound(hier):
    d = tempfile.mkdtemp(prefix="portico-unbound-")
    try:
        p, port = start_unbound(d, hier.hints)
        try:
            yield port
        finally:
            stop_proc(p)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def dig(port, name, qtype="A", *opts):
    """(status, flags, answer records, authority records) without TTLs;
    status None when no answer came."""
    p = subprocess.run([DIG, "@127.0.0.1", "-p", str(port), name, qtype, "+tries=1",
                        "+time=3", "+noall", "+comments", "+answer", "+authority", *opts],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=15, text=True)
    m = re.search(r"status: (\w+)", p.stdout)
    if m is None:
        return None, None, None, None
    flags = re.search(r"flags: ([a-z ]*);", p.stdout)[1].split()
    sections, cur = {"ANSWER": [], "AUTHORITY": []}, None
    for line in p.stdout.splitlines():
        h = re.match(r";; (\w+) SECTION:", line)
        if h:
            cur = h[1]
            continue
        if cur in sections and line and not line.startswith(";"):
            f = line.split(None, 4)
            sections[cur].append((f[0].lower(), f[3], f[4]))
    return m[1], flags, sorted(sections["ANSWER"]), sorted(sections["AUTHORITY"])


QUESTIONS = [
    ("www.example.com", "A"), ("www.example.com", "AAAA"), ("alias.example.com", "A"),
    ("a.example.com", "A"), ("cross.example.com", "A"), ("mail.example.com", "MX"),
    ("txt.example.com", "TXT"), ("nope.example.com", "A"), ("txt.example.com", "MX"),
    ("www.noglue.com", "A"), ("b.example.net", "A"), ("nothing.net", "A"),
]


def test_same_answers_as_unbound(resolver, unbound):
    for name, qtype in QUESTIONS:
        ours = dig(resolver, name, qtype)
        theirs = dig(unbound, name, qtype)
        assert ours[0] == theirs[0], (name, qtype, ours, theirs)
        assert ours[2] == theirs[2], (name, qtype, ours, theirs)
        # Negative answers carry the zone's SOA, as unbound's do.
        if ours[0] == "NXDOMAIN" or not ours[2]:
            assert ours[3] == theirs[3], (name, qtype, ours, theirs)
        assert "ra" in ours[1] and "aa" not in ours[1]


def test_big_answer_tc_over_udp_whole_over_tcp(resolver, unbound):
    status, flags, ans, _ = dig(resolver, "big.example.com", "TXT", "+noedns", "+ignore")
    assert status == "NOERROR" and "tc" in flags and ans == []
    status, flags, ans, _ = dig(resolver, "big.example.com", "TXT", "+tcp")
    assert status == "NOERROR" and "tc" not in flags
    assert sorted(r[2].strip('"') for r in ans) == sorted(big_txt_strings())
    assert ans == dig(unbound, "big.example.com", "TXT", "+tcp")[2]
    # Without +ignore dig retries over TCP by itself.
    assert len(dig(resolver, "big.example.com", "TXT", "+noedns")[2]) == len(big_txt_strings())


def test_negative_answers_cached(resolver):
    # RD clear: only the cache may answer; REFUSED when it cannot.
    assert dig(resolver, "gone.example.com", "A", "+norecurse")[0] == "REFUSED"
    status, _, _, auth = dig(resolver, "gone.example.com", "A")
    assert status == "NXDOMAIN"
    assert auth and auth[0][1] == "SOA" and auth[0][0] == "example.com."
    status, _, _, auth2 = dig(resolver, "gone.example.com", "A", "+norecurse")
    assert status == "NXDOMAIN" and auth2 == auth
    # NODATA too.
    assert dig(resolver, "www.example.com", "TXT", "+norecurse")[0] == "REFUSED"
    assert dig(resolver, "www.example.com", "TXT")[0:3:2] == ("NOERROR", [])
    status, _, ans, auth = dig(resolver, "www.example.com", "TXT", "+norecurse")
    assert status == "NOERROR" and ans == [] and auth[0][1] == "SOA"


def raw(port, payload, tcp=False, timeout=2.0):
    """Sends payload; returns the reply bytes or None."""
    if tcp:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(payload)) + payload)
            try:
                n = struct.unpack("!H", s.recv(2))[0]
                data = b""
                while len(data) < n:
                    chunk = s.recv(n - len(data))
                    if not chunk:
                        break
                    data += chunk
                return data
            except (socket.timeout, struct.error):
                return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, ("127.0.0.1", port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


def query(name, qtype=1, qclass=1, flags=0x0100, qdcount=1, opt=None, qid=0x1234):
    q = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".") if x) + b"\0"
    body = (q + struct.pack("!HH", qtype, qclass)) * qdcount
    ar = 0
    if opt is not None:
        body += b"\0" + struct.pack("!HHIH", 41, 1232, opt << 16, 0)
        ar = 1
    return struct.pack("!HHHHHH", qid, flags, qdcount, 0, 0, ar) + body


def rcode(reply):
    return struct.unpack("!H", reply[2:4])[0] & 0xf


def test_request_checks(resolver):
    assert raw(resolver, b"\x12\x34\x01", timeout=0.5) is None            # short
    resp = query("www.example.com", flags=0x8100)
    assert raw(resolver, resp, timeout=0.5) is None                        # a response
    r = raw(resolver, query("www.example.com", flags=0x1100))              # opcode 2
    assert r[:2] == b"\x12\x34" and rcode(r) == 4                          # NOTIMP
    assert rcode(raw(resolver, query("www.example.com", qdcount=2))) == 1  # FORMERR
    assert rcode(raw(resolver, query("www.example.com", qdcount=0))) == 1
    r = raw(resolver, query("www.example.com")[:-3])                        # cut question
    assert rcode(r) == 1
    r = raw(resolver, query("www.example.com", opt=1))                      # EDNS version 1
    assert rcode(r) == 0 and r[-11 + 5] == 1                               # BADVERS = 16
    assert rcode(raw(resolver, query("version.bind", qtype=16, qclass=3))) == 5  # CH: REFUSED
    assert rcode(raw(resolver, query("example.com", qtype=252))) == 4     # AXFR: NOTIMP
    assert rcode(raw(resolver, query("example.com", qtype=252), tcp=True)) == 4


def test_survives_malformed_flood(resolver):
    rnd = bytes(range(256)) * 4
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(2000):
            n = (i * 37) % 300
            s.sendto(rnd[i % 256:i % 256 + n], ("127.0.0.1", resolver))
    # The well-formed query after the flood is answered. The flood may have
    # filled the socket's buffer so that the first try is dropped, as on any
    # network: a client tries again, as dig and stub resolvers do.
    r = None
    for _ in range(5):
        r = raw(resolver, query("www.example.com", qid=0x4321), timeout=1)
        if r is not None:
            break
    assert r is not None and r[:2] == b"\x43\x21" and rcode(r) == 0
    assert dig(resolver, "mail.example.com", "MX")[0] == "NOERROR"


def test_allow_list(hier):
    p, port = start_resolver("--root-hints", hier.hints, "--allow", "10.0.0.0/8")
    try:
        status, flags, ans, _ = dig(port, "www.example.com")
        assert status == "REFUSED" and ans == []
    finally:
        p.kill()


def test_forward_mode(hier, resolver):
    p, port = start_resolver("--forward", f"127.0.0.1:{resolver}")
    try:
        for name, qtype in QUESTIONS[:8]:
            assert dig(port, name, qtype)[:3] == dig(resolver, name, qtype)[:3], (name, qtype)
    finally:
        p.kill()


def test_bad_options():
    for args, msg in [
        (["--listen", "nope"], "invalid listen address 'nope'"),
        (["--allow", "10.0.0.0/33"], "invalid --allow range '10.0.0.0/33'"),
        (["--workers", "0"], "invalid workers '0'"),
        (["--forward", "1.2.3.4", "--root-hints", "/x"], "exclude each other"),
        (["extra"], "unexpected argument 'extra'"),
    ]:
        r = subprocess.run([PORTICO, "resolver", *args], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, args
        assert msg in r.stderr, (args, r.stderr)


def test_inflight_cap(tmp_path):
    # A root that never answers keeps the one allowed resolution busy; the
    # next query gets SERVFAIL at once instead of waiting in line.
    hints = tmp_path / "hints"
    hints.write_text(". NS a.root.\na.root. A 127.53.255.254\n")
    p, port = start_resolver("--root-hints", str(hints), "--workers", "1", "--max-inflight", "1",
                             "--timeout", "3000")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
            first.sendto(query("slow.example.com", qid=1), ("127.0.0.1", port))
            time.sleep(0.2)
            t0 = time.monotonic()
            r = raw(port, query("other.example.com", qid=2), timeout=2)
            assert r is not None and r[:2] == b"\x00\x02" and rcode(r) == 2  # SERVFAIL
            assert time.monotonic() - t0 < 1.5
            # The first one ends in SERVFAIL too once its server timed out.
            first.settimeout(8)
            r = first.recv(512)
            assert r[:2] == b"\x00\x01" and rcode(r) == 2
    finally:
        p.kill()


def test_tcp_idle_and_pipelining(resolver, hier):
    p, port = start_resolver("--root-hints", hier.hints, "--tcp-idle", "1")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            # Two queries in one write: two answers on the same connection.
            a, b = query("www.example.com", qid=11), query("mail.example.com", qtype=15, qid=12)
            s.sendall(struct.pack("!H", len(a)) + a + struct.pack("!H", len(b)) + b)
            ids = set()
            buf = b""
            while len(ids) < 2:
                chunk = s.recv(4096)
                assert chunk, "closed before both answers"
                buf += chunk
                while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                    n = struct.unpack("!H", buf[:2])[0]
                    ids.add(struct.unpack("!H", buf[2:4])[0])
                    buf = buf[2 + n:]
            assert ids == {11, 12}
            # Then, idle for more than a second: closed by the server.
            t0 = time.monotonic()
            assert s.recv(1) == b""
            assert 0.5 < time.monotonic() - t0 < 4
    finally:
        p.kill()


def test_identical_questions_share_one_resolution():
    # A slow upstream (answers after 0.5 s, counts what it is asked): five
    # clients asking the same question at once cause one upstream query,
    # and all five get their answer with their own ID.
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.bind(("127.0.0.1", 0))
    up.settimeout(0.1)
    asked = []
    import threading
    done = threading.Event()

    def serve():
        end = time.monotonic() + 6
        while time.monotonic() < end and not done.is_set():
            try:
                q, peer = up.recvfrom(4096)
            except socket.timeout:
                continue
            asked.append(q)
            time.sleep(0.5)
            qend = 12 + q[12:].index(b"\0") + 5
            ans = (q[:2] + b"\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00" + q[12:qend] +
                   b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04\xc0\x00\x02\x05")
            up.sendto(ans, peer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    p, port = start_resolver("--forward", f"127.0.0.1:{up.getsockname()[1]}", "--workers", "1")
    socks = []
    try:
        for i in range(5):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(5)
            s.sendto(query("same.example.com", qid=100 + i), ("127.0.0.1", port))
            socks.append(s)
        for i, s in enumerate(socks):
            r = s.recv(512)
            assert r[:2] == struct.pack("!H", 100 + i) and rcode(r) == 0
            assert r.endswith(b"\xc0\x00\x02\x05")
        assert len(asked) == 1
    finally:
        for s in socks:
            s.close()
        p.kill()
        done.set()
        t.join(timeout=8)
        up.close()
