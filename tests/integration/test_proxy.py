"""portico proxy: forward (curl -x, python), reverse (--upstream, in front
of portico serve), CONNECT tunnels, the shared cache and the firewall.

Origins are counted: a test that says "a hit never reaches the origin"
checks the origin's count for that path."""
import glob
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import PORTICO, free_port, wait_bound
from proxy_helpers import Origin, fetch, raw, start_proxy


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.close()


# ----------------------------------------------------------------- forwarding

def test_hit_never_reaches_origin(spawn, origin):
    _, pp = start_proxy(spawn)
    st, h, body = fetch(pp, origin.url("/a"))
    assert (st, h["x-cache"], body) == (200, "MISS", b"body of /a")
    assert "portico" in h["via"]
    for _ in range(3):
        st, h, body = fetch(pp, origin.url("/a"))
        assert (st, h["x-cache"], body) == (200, "HIT", b"body of /a")
        assert int(h["age"]) >= 0
    assert origin.count("/a") == 1


def test_python_client_and_head_from_get(spawn, origin):
    _, pp = start_proxy(spawn)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{pp}"}))
    with opener.open(origin.url("/py"), timeout=10) as r:
        assert r.read() == b"body of /py"
        assert r.headers["X-Cache"] == "MISS"
    req = urllib.request.Request(origin.url("/py"), method="HEAD")
    with opener.open(req, timeout=10) as r:
        assert r.headers["X-Cache"] == "HIT"
        assert r.headers["Content-Length"] == str(len(b"body of /py"))
        assert r.read() == b""
    assert origin.count("/py") == 1


def test_reverse_proxy_in_front_of_serve(spawn, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "old.txt").write_bytes(b"old file\n" * 100)
    (site / "new.txt").write_bytes(b"new file\n")
    day_ago = time.time() - 86400
    os.utime(site / "old.txt", (day_ago, day_ago))
    sport = free_port()
    serve = spawn(["serve", str(site), "--listen", f"127.0.0.1:{sport}", "--quiet", "--access-log", "-"])
    assert wait_bound(serve, sport)
    _, pp = start_proxy(spawn, "--upstream", f"http://127.0.0.1:{sport}")
    url = f"http://127.0.0.1:{pp}/old.txt"
    for want in ("MISS", "HIT"):
        r = subprocess.run(["curl", "-s", "-i", url], stdout=subprocess.PIPE, timeout=10)
        from proxy_helpers import parse_curl
        st, h, body = parse_curl(r.stdout)
        assert (st, h["x-cache"], body) == (200, want, b"old file\n" * 100)
    # A file just written has no heuristic freshness: the second request is
    # revalidated (If-None-Match / If-Modified-Since -> 304 merged).
    url = f"http://127.0.0.1:{pp}/new.txt"
    r = subprocess.run(["curl", "-s", "-i", url], stdout=subprocess.PIPE, timeout=10)
    r = subprocess.run(["curl", "-s", "-i", url], stdout=subprocess.PIPE, timeout=10)
    st, h, body = parse_curl(r.stdout)
    assert (st, body) == (200, b"new file\n")
    assert h["x-cache"] in ("REVALIDATED", "HIT")
    time.sleep(1.5)  # the access log is flushed every second
    log = serve.out.decode()
    assert log.count("GET /old.txt") == 1
    if h["x-cache"] == "REVALIDATED":
        assert '"GET /new.txt HTTP/1.1" 304' in log


def test_portico_get_through_proxy(spawn, origin):
    rc = subprocess.run([PORTICO, "get", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if rc.returncode != 0 or b"proxy" not in rc.stdout + rc.stderr:
        pytest.skip("portico get with proxy support is not in this build")
    _, pp = start_proxy(spawn)
    env = dict(os.environ, http_proxy=f"http://127.0.0.1:{pp}")
    for _ in range(2):
        r = subprocess.run([PORTICO, "get", origin.url("/g")], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=15)
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"body of /g"
    assert origin.count("/g") == 1


# ------------------------------------------------------------------ RFC 9111

def test_not_stored(spawn, origin):
    for path, cc in (("/ns", "no-store"), ("/pv", "private, max-age=60")):
        origin.handlers[path] = lambda req, cc=cc: (200, [("Cache-Control", cc)], b"x")
    _, pp = start_proxy(spawn)
    for path in ("/ns", "/pv"):
        for _ in range(2):
            st, h, _ = fetch(pp, origin.url(path))
            assert (st, h["x-cache"]) == (200, "MISS")
        assert origin.count(path) == 2
    # Authorization makes a response unstorable unless it says public.
    for _ in range(2):
        fetch(pp, origin.url("/auth"), "-H", "Authorization: Basic Zm9vOmJhcg==")
    assert origin.count("/auth") == 2
    # POST is forwarded every time, never stored.
    for _ in range(2):
        st, h, _ = fetch(pp, origin.url("/p"), "-d", "data")
        assert st == 200
    assert origin.count("/p") == 2


def test_request_directives(spawn, origin):
    _, pp = start_proxy(spawn)
    st, _, body = fetch(pp, origin.url("/oic"), "-H", "Cache-Control: only-if-cached")
    assert st == 504 and b"only-if-cached" in body
    assert origin.count("/oic") == 0
    fetch(pp, origin.url("/oic"))
    st, h, _ = fetch(pp, origin.url("/oic"), "-H", "Cache-Control: only-if-cached")
    assert (st, h["x-cache"]) == (200, "HIT")
    # no-cache and max-age=0 from the client go to the origin.
    st, h, _ = fetch(pp, origin.url("/oic"), "-H", "Cache-Control: no-cache")
    assert st == 200 and h["x-cache"] in ("MISS", "REVALIDATED")
    st, h, _ = fetch(pp, origin.url("/oic"), "-H", "Pragma: no-cache")
    assert origin.count("/oic") == 3
    # min-fresh beyond what is left.
    fetch(pp, origin.url("/oic"), "-H", "Cache-Control: min-fresh=3600")
    assert origin.count("/oic") == 4


def test_revalidation_304_merge(spawn, origin):
    def h(req):
        if req.headers.get("If-None-Match") == '"v1"':
            return 304, [("ETag", '"v1"'), ("Cache-Control", "max-age=0"), ("X-Fresh", "new")], b""
        return 200, [("ETag", '"v1"'), ("Cache-Control", "max-age=0"), ("X-Fresh", "old"),
                     ("Content-Type", "text/x-test")], b"the body"
    origin.handlers["/rv"] = h
    _, pp = start_proxy(spawn)
    st, hd, body = fetch(pp, origin.url("/rv"))
    assert (hd["x-cache"], hd["x-fresh"], body) == ("MISS", "old", b"the body")
    st, hd, body = fetch(pp, origin.url("/rv"))
    assert (st, hd["x-cache"], body) == (200, "REVALIDATED", b"the body")
    assert hd["x-fresh"] == "new"
    assert hd["content-type"] == "text/x-test"
    assert origin.seen[-1][2].get("If-None-Match") == '"v1"'


def test_vary(spawn, origin):
    origin.handlers["/v"] = lambda req: (200, [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")],
                                         ("lang=" + str(req.headers.get("Accept-Language"))).encode())
    _, pp = start_proxy(spawn)
    for _ in range(2):
        for lang in ("en", "fr"):
            st, h, body = fetch(pp, origin.url("/v"), "-H", f"Accept-Language: {lang}")
            assert body == f"lang={lang}".encode()
    assert origin.count("/v") == 2
    st, h, body = fetch(pp, origin.url("/v"), "-H", "Accept-Language: en")
    assert h["x-cache"] == "HIT"


def test_invalidation_after_unsafe_method(spawn, origin):
    origin.handlers["/inv"] = lambda req: (
        (201, [("Location", "/other")], b"made") if req.command == "POST"
        else (200, [("Cache-Control", "max-age=60")], b"doc"))
    origin.handlers["/other"] = Origin.default
    _, pp = start_proxy(spawn)
    fetch(pp, origin.url("/inv"))
    fetch(pp, origin.url("/other"))
    assert fetch(pp, origin.url("/inv"))[1]["x-cache"] == "HIT"
    st, _, _ = fetch(pp, origin.url("/inv"), "-d", "x")
    assert st == 201
    assert fetch(pp, origin.url("/inv"))[1]["x-cache"] == "MISS"
    assert fetch(pp, origin.url("/other"))[1]["x-cache"] == "MISS"
    assert origin.count("/other") == 2


def test_stale_while_revalidate(spawn, origin):
    # The first copy is fresh for 1 s; the refreshed one for a minute.
    origin.handlers["/swr"] = lambda req: (200, [("Cache-Control", "max-age=%d, stale-while-revalidate=60"
                                                  % (1 if origin.count("/swr") == 1 else 60))], b"swr")
    _, pp = start_proxy(spawn)
    fetch(pp, origin.url("/swr"))
    time.sleep(2.2)
    st, h, body = fetch(pp, origin.url("/swr"))
    assert (st, h["x-cache"], body) == (200, "STALE", b"swr")
    end = time.monotonic() + 10
    while origin.count("/swr") < 2 and time.monotonic() < end:
        time.sleep(0.05)
    assert origin.count("/swr") == 2  # the refresh happened behind the client
    time.sleep(0.3)
    assert fetch(pp, origin.url("/swr"))[1]["x-cache"] == "HIT"


def test_stale_if_error(spawn, origin):
    state = {"fail": False}
    origin.handlers["/sie"] = lambda req: ((500, [], b"broken") if state["fail"] else
                                           (200, [("Cache-Control", "max-age=1, stale-if-error=60")], b"good"))
    origin.handlers["/nosie"] = lambda req: ((500, [], b"broken") if state["fail"] else
                                             (200, [("Cache-Control", "max-age=1")], b"good"))
    _, pp = start_proxy(spawn)
    fetch(pp, origin.url("/sie"))
    fetch(pp, origin.url("/nosie"))
    time.sleep(2.2)
    state["fail"] = True
    st, h, body = fetch(pp, origin.url("/sie"))
    assert (st, h["x-cache"], body) == (200, "STALE", b"good")
    st, h, body = fetch(pp, origin.url("/nosie"))
    assert (st, body) == (500, b"broken")


def test_collapsing_100_misses_one_upstream_request(spawn, origin):
    def slow(req):
        time.sleep(1.0)
        return 200, [("Cache-Control", "max-age=60")], b"slow body"
    origin.handlers["/slow"] = slow
    _, pp = start_proxy(spawn)
    results = []
    lock = threading.Lock()

    def one():
        try:
            with socket.create_connection(("127.0.0.1", pp), timeout=15) as s:
                s.sendall(f"GET {origin.url('/slow')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                buf = b""
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    buf += c
            with lock:
                results.append(buf)
        except OSError as e:
            with lock:
                results.append(repr(e).encode())

    threads = [threading.Thread(target=one) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == 100
    assert all(r.startswith(b"HTTP/1.1 200") and r.endswith(b"slow body") for r in results), results[:3]
    assert origin.count("/slow") == 1


# ------------------------------------------------------------------ the disk

def test_restart_keeps_disk_cache_and_torn_entry_is_not_served(spawn, origin, tmp_path):
    cache = tmp_path / "cache"
    p, pp = start_proxy(spawn, "--cache-dir", cache)
    fetch(pp, origin.url("/d1"))
    fetch(pp, origin.url("/d2"))
    p.signal(signal.SIGTERM)
    assert p.wait(10) == 0
    files = sorted(glob.glob(str(cache / "*.pce")))
    assert len(files) == 2
    assert not glob.glob(str(cache / "*.part"))

    p, pp = start_proxy(spawn, "--cache-dir", cache)
    p.wait_stderr(r"2 objects loaded, 0 bad files removed")
    for path in ("/d1", "/d2"):
        st, h, body = fetch(pp, origin.url(path))
        assert (st, h["x-cache"], body) == (200, "HIT", f"body of {path}".encode())
    assert origin.count("/d1") == origin.count("/d2") == 1
    p.signal(signal.SIGTERM)
    assert p.wait(10) == 0

    # Tear one file: cut its last bytes, as a crash during a write would.
    torn = None
    for f in glob.glob(str(cache / "*.pce")):
        if b"/d2" in open(f, "rb").read():
            torn = f
    size = os.path.getsize(torn)
    with open(torn, "r+b") as fh:
        fh.truncate(size - 3)
    p, pp = start_proxy(spawn, "--cache-dir", cache)
    p.wait_stderr(r"1 objects loaded, 1 bad files removed")
    st, h, body = fetch(pp, origin.url("/d2"))
    assert (st, h["x-cache"], body) == (200, "MISS", b"body of /d2")
    assert origin.count("/d2") == 2
    assert fetch(pp, origin.url("/d1"))[1]["x-cache"] == "HIT"


def test_purge(spawn, origin):
    _, pp = start_proxy(spawn)
    fetch(pp, origin.url("/pg"))
    st, _, body = fetch(pp, origin.url("/pg"), "-X", "PURGE")
    assert st == 200 and b"purged 1" in body
    st, _, _ = fetch(pp, origin.url("/pg"), "-X", "PURGE")
    assert st == 404
    assert fetch(pp, origin.url("/pg"))[1]["x-cache"] == "MISS"
    assert origin.count("/pg") == 2


# ------------------------------------------------------------------ messages

def test_hop_by_hop_removed_and_via_forwarded(spawn, origin):
    _, pp = start_proxy(spawn, "--x-forwarded-for")
    fetch(pp, origin.url("/hdr"), "-H", "Connection: X-Secret", "-H", "X-Secret: 1",
          "-H", "Proxy-Authorization: Basic eDp5", "-H", "Keep-Alive: 5", "-H", "X-Kept: yes",
          "-H", "TE: trailers")
    got = {k.lower(): v for k, v in origin.seen[-1][2].items()}
    for gone in ("x-secret", "proxy-authorization", "keep-alive", "te", "proxy-connection"):
        assert gone not in got, gone
    assert got["x-kept"] == "yes"
    assert got["via"].endswith("1.1 portico")
    assert got["forwarded"].startswith("for=127.0.0.1;host=")
    assert got["x-forwarded-for"] == "127.0.0.1"
    assert origin.seen[-1][1] == "/hdr"  # origin-form upstream


def test_response_hop_by_hop_removed(spawn, origin):
    origin.handlers["/rh"] = lambda req: (200, [("Connection", "X-Private"), ("X-Private", "1"),
                                                ("Proxy-Authenticate", "Basic"), ("X-Public", "2")], b"ok")
    _, pp = start_proxy(spawn)
    st, h, body = fetch(pp, origin.url("/rh"))
    assert (st, body) == (200, b"ok")
    assert "x-private" not in h and "proxy-authenticate" not in h
    assert h["x-public"] == "2"


def test_max_forwards(spawn, origin):
    _, pp = start_proxy(spawn)
    out = raw(pp, f"TRACE {origin.url('/t')} HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 200") and b"message/http" in out
    assert origin.count("/t") == 0
    out = raw(pp, f"OPTIONS {origin.url('/t')} HTTP/1.1\r\nHost: x\r\nMax-Forwards: 2\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 200")
    assert origin.seen[-1][2].get("Max-Forwards") == "1"


def test_smuggling_never_reaches_upstream(spawn, origin):
    _, pp = start_proxy(spawn)
    out = raw(pp, (f"POST {origin.url('/sm')} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /evil HTTP/1.1\r\nHost: x\r\n\r\n").encode())
    assert out.startswith(b"HTTP/1.1 400")
    out = raw(pp, f"GET {origin.url('/sm')} HTTP/1.1\r\nHost: x\r\nBad Field: 1\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 400")
    time.sleep(0.2)
    assert origin.count("/sm") == 0 and origin.count("/evil") == 0


def test_upstream_failures(spawn, origin):
    origin.handlers["/hang"] = lambda req: None
    _, pp = start_proxy(spawn, "--upstream-timeout", "1")
    st, _, body = fetch(pp, f"http://127.0.0.1:{free_port()}/x")
    assert st == 502 and b"upstream" in body
    st, _, _ = fetch(pp, origin.url("/hang"))
    assert st == 504
    # Garbage instead of a response.
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()

    def garbage():
        c, _ = ls.accept()
        c.recv(4096)
        c.sendall(b"HTTP/1.1 2OO OK\r\nbroken\r\n\r\n")
        c.close()
    t = threading.Thread(target=garbage, daemon=True)
    t.start()
    st, _, _ = fetch(pp, f"http://127.0.0.1:{ls.getsockname()[1]}/g")
    assert st == 502
    ls.close()


def test_origin_form_to_forward_proxy_and_https_target(spawn):
    _, pp = start_proxy(spawn)
    out = raw(pp, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400") and b"absolute URL" in out
    out = raw(pp, b"GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 501")


def test_request_to_the_proxy_itself_is_refused(spawn):
    _, pp = start_proxy(spawn)
    st, _, body = fetch(pp, f"http://127.0.0.1:{pp}/loop")
    assert st == 403 and b"this proxy itself" in body


def test_name_resolving_to_the_proxy_itself_is_refused(spawn, origin):
    """A name (not an IP literal) whose address is a listening one of the
    proxy is refused after the lookup, before any connection is made: the
    proxy never forwards to itself. "localhost." (with the root dot) is not
    caught by the literal check, it goes through the resolver and
    /etc/hosts."""
    _, pp = start_proxy(spawn)
    out = raw(pp, f"GET http://localhost.:{pp}/loop HTTP/1.1\r\nHost: localhost.:{pp}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 403") and b"resolves to this proxy itself" in out, out
    # Another port of the same name is not the proxy: forwarded as usual.
    out = raw(pp, f"GET http://localhost.:{origin.port}/named HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"body of /named"), out


# ------------------------------------------------------------------ CONNECT

def echo_server():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()

    def run():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            def serve(c=c):
                while True:
                    d = c.recv(65536)
                    if not d:
                        c.shutdown(socket.SHUT_WR)
                        c.close()
                        return
                    c.sendall(d)
            threading.Thread(target=serve, daemon=True).start()
    threading.Thread(target=run, daemon=True).start()
    return ls


def test_connect_allowed_and_denied_port(spawn):
    ls = echo_server()
    eport = ls.getsockname()[1]
    p, pp = start_proxy(spawn, "--connect-port", eport)
    with socket.create_connection(("127.0.0.1", pp), timeout=10) as s:
        s.sendall(f"CONNECT 127.0.0.1:{eport} HTTP/1.1\r\nHost: 127.0.0.1:{eport}\r\n\r\nearly".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        assert head.startswith(b"HTTP/1.1 200")
        got = b""
        while len(got) < 5:
            got += s.recv(100)
        assert got == b"early"
        big = os.urandom(1 << 20)  # bigger than the tunnel buffers: backpressure
        t = threading.Thread(target=s.sendall, args=(big,))
        t.start()
        back = b""
        while len(back) < len(big):
            back += s.recv(1 << 16)
        t.join()
        assert back == big
        s.shutdown(socket.SHUT_WR)  # half-close goes through, and back
        assert s.recv(10) == b""
    # The default list is 443 only: another port is refused.
    p2, pp2 = start_proxy(spawn)
    out = raw(pp2, f"CONNECT 127.0.0.1:{eport} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 403") and b"CONNECT port" in out
    p2.wait_stderr(rf"denied CONNECT 127\.0\.0\.1:{eport} from 127\.0\.0\.1")
    ls.close()


def test_connect_via_curl(spawn):
    """curl -p (proxytunnel) through CONNECT to a plain HTTP origin."""
    o = Origin()
    try:
        _, pp = start_proxy(spawn, "--connect-port", o.port)
        r = subprocess.run(["curl", "-s", "-p", "-x", f"http://127.0.0.1:{pp}", o.url("/tun")],
                           stdout=subprocess.PIPE, timeout=15)
        assert r.stdout == b"body of /tun"
        assert o.count("/tun") == 1
    finally:
        o.close()


# ------------------------------------------------------------------ firewall

def test_deny_rules(spawn, origin):
    p, pp = start_proxy(spawn, "--deny", "host=.blocked.test", "--deny", "method=DELETE")
    st, _, body = fetch(pp, "http://www.blocked.test/x")
    assert st == 403 and b"denied by a rule" in body
    st, _, _ = fetch(pp, origin.url("/del"), "-X", "DELETE")
    assert st == 403
    assert origin.count("/del") == 0
    p.wait_stderr(r"denied GET www\.blocked\.test:80 from 127\.0\.0\.1")


def test_bad_rules_are_usage_errors():
    for args, msg in ((["--allow", "src=1.2.3.4/40"], b"CIDR"), (["--deny", "port=0"], b"port"),
                      (["--upstream", "ftp://x"], b"--upstream"), (["--connect-port", "x"], b"connect-port")):
        r = subprocess.run([PORTICO, "proxy", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)


def _run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)


@pytest.mark.deadline(40)
def test_non_loopback_client_refused_by_default(spawn, origin):
    if os.geteuid() != 0 or subprocess.run(["which", "ip"], stdout=subprocess.PIPE).returncode != 0:
        pytest.skip("needs root and iproute2 for a network namespace")
    ns = f"proxy-t{os.getpid() % 100000}"
    host_if, ns_if = f"pxh{os.getpid() % 10000}", f"pxn{os.getpid() % 10000}"
    net = 10 + os.getpid() % 200
    hip, nip = f"10.253.{net}.1", f"10.253.{net}.2"
    try:
        for cmd in (["ip", "netns", "add", ns],
                    ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
                    ["ip", "link", "set", ns_if, "netns", ns],
                    ["ip", "addr", "add", f"{hip}/24", "dev", host_if],
                    ["ip", "link", "set", host_if, "up"],
                    ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{nip}/24", "dev", ns_if],
                    ["ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up"],
                    ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]):
            r = _run(cmd)
            if r.returncode != 0:
                pytest.skip(f"cannot set up a network namespace: {r.stderr!r}")
        _, pp = start_proxy(spawn, host=hip)
        r = _run(["ip", "netns", "exec", ns, "curl", "-s", "-i", "--max-time", "10", "-x",
                  f"http://{hip}:{pp}", origin.url("/ns")])
        assert r.stdout.startswith(b"HTTP/1.1 403"), r.stdout
        assert b"only loopback clients" in r.stdout
        assert origin.count("/ns") == 0
        # An --allow rule for the namespace's network lets it in.
        _, pp2 = start_proxy(spawn, "--allow", f"src=10.253.{net}.0/24", host=hip)
        r = _run(["ip", "netns", "exec", ns, "curl", "-s", "-i", "--max-time", "10", "-x",
                  f"http://{hip}:{pp2}", f"http://{hip}:{pp2}/loop"])
        assert r.stdout.startswith(b"HTTP/1.1 403") and b"this proxy itself" in r.stdout
    finally:
        _run(["ip", "link", "del", host_if])
        _run(["ip", "netns", "del", ns])


# ------------------------------------------------------------ authentication

def _sha512_hash(password):
    r = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    if r.returncode != 0:
        pytest.skip("openssl cannot make a $6$ hash here")
    return r.stdout.decode().strip()


def test_proxy_authentication(spawn, origin, tmp_path):
    (tmp_path / "users").write_text(f"alice:{_sha512_hash('s3cret')}\n")
    _, pp = start_proxy(spawn, "--auth-file", tmp_path / "users")
    st, h, body = fetch(pp, origin.url("/au"))
    assert st == 407 and h["proxy-authenticate"].startswith("Basic realm=")
    st, _, _ = fetch(pp, origin.url("/au"), "--proxy-user", "alice:wrong")
    assert st == 407
    assert origin.count("/au") == 0
    for _ in range(2):  # the second time from the remembered credentials
        st, h, body = fetch(pp, origin.url("/au"), "--proxy-user", "alice:s3cret")
        assert (st, body) == (200, b"body of /au")
    # Proxy-Authorization is for the proxy: never forwarded.
    assert all("Proxy-Authorization" not in s[2] for s in origin.seen)
    # A POST with a body after a fresh check (another worker may see it first).
    st, _, _ = fetch(pp, origin.url("/aupost"), "--proxy-user", "alice:s3cret", "-d", "x=1")
    assert st == 200 and origin.count("/aupost") == 1
    # portico get sends the proxy URL's credentials as Proxy-Authorization.
    r = subprocess.run([PORTICO, "get", "-x", f"http://alice:s3cret@127.0.0.1:{pp}", origin.url("/auget")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=15)
    assert r.returncode == 0 and r.stdout == b"body of /auget", r.stderr
    # CONNECT needs it too.
    out = raw(pp, b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 407")
    r = subprocess.run([PORTICO, "proxy", "--auth-file", tmp_path / "nope"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 1 and b"nope" in r.stderr


# ------------------------------------------------------------ streaming

def _chunked_origin(total, piece=65536):
    """An origin that sends `total` bytes chunked (no Content-Length), not
    storable, with a byte pattern the client can check."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()
    pattern = bytes(range(256)) * (piece // 256)

    def run():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            def serve(c=c):
                try:
                    buf = b""
                    while b"\r\n\r\n" not in buf:
                        d = c.recv(4096)
                        if not d:
                            return
                        buf += d
                    c.sendall(b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n")
                    left = total
                    while left:
                        n = min(piece, left)
                        c.sendall(b"%x\r\n" % n + pattern[:n] + b"\r\n")
                        left -= n
                    c.sendall(b"0\r\n\r\n")
                except OSError:
                    pass
                finally:
                    c.close()
            threading.Thread(target=serve, daemon=True).start()
    threading.Thread(target=run, daemon=True).start()
    return ls, pattern


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.deadline(60)
def test_large_body_streams_with_backpressure(spawn):
    total = 48 << 20
    ls, pattern = _chunked_origin(total)
    port = ls.getsockname()[1]
    p, pp = start_proxy(spawn, "--workers", "1")
    base = _rss_kb(p.pid)
    # HTTP/1.1 client: re-chunked; read slowly at first so the proxy must
    # stop reading the origin (its memory stays far below the body size).
    with socket.create_connection(("127.0.0.1", pp), timeout=20) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(f"GET http://127.0.0.1:{port}/big HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(2)
        peak = _rss_kb(p.pid)
        f = s.makefile("rb")
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += f.read(1)
        assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
        got = 0
        ok = True
        while True:
            size = int(f.readline().strip(), 16)
            if size == 0:
                f.readline()
                break
            data = f.read(size)
            f.read(2)
            # Chunk boundaries may differ from the origin's: check the
            # pattern by position.
            off = got % len(pattern)
            if data != (pattern[off:] + pattern * (size // len(pattern) + 2))[:size]:
                ok = False
            got += size
            peak = max(peak, _rss_kb(p.pid))
        assert ok and got == total
    assert peak - base < 24 << 10, f"proxy RSS grew by {peak - base} kB for a {total >> 20} MB body"
    # HTTP/1.0 client: no chunking, the end is the close.
    with socket.create_connection(("127.0.0.1", pp), timeout=20) as s:
        s.sendall(f"GET http://127.0.0.1:{port}/big10 HTTP/1.0\r\n\r\n".encode())
        buf = bytearray()
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            buf += d
        head, _, body = bytes(buf).partition(b"\r\n\r\n")
        assert b"chunked" not in head.lower() and len(body) == total
    ls.close()


def test_streamed_head_is_not_held_for_later_body_bytes(spawn):
    """The proxy sends a miss's head together with the body bytes that came
    with it, but never waits for more: a head (alone, or with part of the
    body) reaches the client while the origin still holds the rest."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()
    go = threading.Event()

    def run():
        c, _ = ls.accept()
        with c:
            buf = b""
            while buf.count(b"\r\n\r\n") < 1:
                buf += c.recv(4096)
            c.sendall(b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 10\r\n\r\n")
            go.wait(20)
            go.clear()
            c.sendall(b"hello")
            go.wait(20)
            c.sendall(b"world")
            time.sleep(0.5)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    _, pp = start_proxy(spawn, "--workers", "1")
    port = ls.getsockname()[1]
    with socket.create_connection(("127.0.0.1", pp), timeout=10) as s:
        s.sendall(f"GET http://127.0.0.1:{port}/slow HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = b""
        while b"\r\n\r\n" not in got:  # the head alone, no body byte sent yet
            d = s.recv(4096)
            assert d, got
            got += d
        assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"\r\n\r\n"), got
        go.set()
        while not got.endswith(b"hello"):
            d = s.recv(4096)
            assert d, got
            got += d
        go.set()
        while not got.endswith(b"helloworld"):
            d = s.recv(4096)
            assert d, got
            got += d
    t.join(5)
    ls.close()


def test_large_cached_object_sent_from_the_store(spawn, origin):
    big = os.urandom(300_000)
    origin.handlers["/bigobj"] = lambda req: (200, [("Cache-Control", "max-age=60")], big)
    _, pp = start_proxy(spawn)
    for want in ("MISS", "HIT", "HIT"):
        st, h, body = fetch(pp, origin.url("/bigobj"))
        assert (st, h["x-cache"], body == big) == (200, want, True)
    st, h, body = fetch(pp, origin.url("/bigobj"), "-I")
    assert (st, h["x-cache"], h["content-length"], body) == (200, "HIT", "300000", b"")
    # Many at once, each while others hold the same object.
    errs = []

    def one():
        try:
            if fetch(pp, origin.url("/bigobj"))[2] != big:
                errs.append("body differs")
        except AssertionError as e:
            errs.append(str(e))
    ts = [threading.Thread(target=one) for _ in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errs
    assert origin.count("/bigobj") == 1


def test_response_directives(spawn, origin):
    down = {"on": False}

    def h(cc, extra=()):
        return lambda req: (502, [], b"origin down") if down["on"] else (200, [("Cache-Control", cc), *extra], b"ok")
    far = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600))
    past = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 3600))
    origin.handlers.update({
        "/smax": h("max-age=0, s-maxage=60"),           # shared caches use s-maxage
        "/exp": lambda req: (200, [("Expires", far)], b"ok"),
        "/expired": lambda req: (200, [("Expires", past)], b"ok"),
        "/nocache": h("no-cache", [("ETag", '"e"')]),    # stored, always revalidated
        "/mustrev": h("max-age=1, must-revalidate, stale-if-error=60"),
        "/pub": h("public, max-age=60"),
    })
    _, pp = start_proxy(spawn)
    for path in ("/smax", "/exp", "/expired", "/nocache", "/mustrev"):
        fetch(pp, origin.url(path))
    assert fetch(pp, origin.url("/smax"))[1]["x-cache"] == "HIT"
    assert fetch(pp, origin.url("/exp"))[1]["x-cache"] == "HIT"
    assert fetch(pp, origin.url("/expired"))[1]["x-cache"] != "HIT"
    assert fetch(pp, origin.url("/nocache"))[1]["x-cache"] != "HIT"
    assert origin.count("/smax") == origin.count("/exp") == 1
    assert origin.count("/expired") == origin.count("/nocache") == 2
    # public makes a response to a request with Authorization storable.
    for _ in range(2):
        fetch(pp, origin.url("/pub"), "-H", "Authorization: Basic eDp5")
    assert origin.count("/pub") == 1
    # must-revalidate wins over stale-if-error: no stale answer when down.
    time.sleep(2.2)
    down["on"] = True
    st, h2, body = fetch(pp, origin.url("/mustrev"))
    assert (st, body) == (502, b"origin down")
    # max-stale lets the client take a stale one... unless must-revalidate.
    st, h2, _ = fetch(pp, origin.url("/mustrev"), "-H", "Cache-Control: max-stale=600")
    assert st == 502
    down["on"] = False


@pytest.mark.deadline(40)
def test_stop_does_not_wait_for_hanging_upstreams(spawn, origin):
    origin.handlers["/hang2"] = lambda req: None
    p, pp = start_proxy(spawn, "--upstream-timeout", "60")
    s = socket.create_connection(("127.0.0.1", pp), timeout=20)
    s.sendall(f"GET {origin.url('/hang2')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    end = time.monotonic() + 10
    while origin.count("/hang2") == 0 and time.monotonic() < end:
        time.sleep(0.05)
    assert origin.count("/hang2") == 1
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    assert p.wait(20) == 0
    # The shutdown timeout is 5 s; the upstream timeout (60 s) is not waited for.
    assert time.monotonic() - t0 < 15
    assert s.recv(100) == b""
    s.close()


def test_client_conditional_304_is_relayed_not_stored(spawn, origin):
    origin.handlers["/cond"] = lambda req: (
        (304, [("ETag", '"x"'), ("Cache-Control", "max-age=60")], b"")
        if req.headers.get("If-None-Match") == '"x"' else
        (200, [("ETag", '"x"'), ("Cache-Control", "max-age=60")], b"full body"))
    _, pp = start_proxy(spawn)
    st, h, body = fetch(pp, origin.url("/cond"), "-H", 'If-None-Match: "x"')
    assert (st, body) == (304, b"")
    st, h, body = fetch(pp, origin.url("/cond"))
    assert (st, h["x-cache"], body) == (200, "MISS", b"full body")
    assert fetch(pp, origin.url("/cond"))[1]["x-cache"] == "HIT"


def test_names_resolve_on_the_loop(spawn, origin):
    """localhost comes from /etc/hosts through the stub resolver, for a
    tunnel and for a forward; a name that does not resolve is a 502."""
    ls = echo_server()
    eport = ls.getsockname()[1]
    _, pp = start_proxy(spawn, "--connect-port", eport)
    with socket.create_connection(("127.0.0.1", pp), timeout=10) as s:
        s.sendall(f"CONNECT localhost:{eport} HTTP/1.1\r\nHost: localhost:{eport}\r\n\r\nping".encode())
        buf = b""
        while not buf.endswith(b"ping"):
            d = s.recv(100)
            assert d, buf
            buf += d
        assert buf.startswith(b"HTTP/1.1 200")
    st, _, body = fetch(pp, f"http://localhost:{origin.port}/named")
    assert (st, body) == (200, b"body of /named")
    st, _, body = fetch(pp, "http://no-such-host.invalid/x")
    assert st in (502, 504) and b"no-such-host.invalid" in body
    ls.close()


def test_conditional_request_answered_from_the_cache(spawn, origin):
    lm = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 7200))
    origin.handlers["/c304"] = lambda req: (200, [("ETag", '"v9"'), ("Last-Modified", lm),
                                                  ("Cache-Control", "max-age=60")], b"cached body")
    _, pp = start_proxy(spawn)
    fetch(pp, origin.url("/c304"))
    st, h, body = fetch(pp, origin.url("/c304"), "-H", 'If-None-Match: "v9"')
    assert (st, h["x-cache"], h["etag"], body) == (304, "HIT", '"v9"', b"")
    st, _, body = fetch(pp, origin.url("/c304"), "-H", 'If-None-Match: "other"')
    assert (st, body) == (200, b"cached body")
    st, _, _ = fetch(pp, origin.url("/c304"), "-H", f"If-Modified-Since: {lm}")
    assert st == 304
    assert origin.count("/c304") == 1
