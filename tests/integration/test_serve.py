"""Integration tests for `portico serve` (the HTTP/1.1 static file server).

Every test talks to a real portico process on a loopback port, mostly with
raw sockets so that the bytes on the wire are what is checked.

PORTICO names the binary (default build/portico of this repo).
"""
import email.utils
import hashlib
import http.client
import os
import re
import select
import signal
import socket
import subprocess
import time

import pytest

from serve_helpers import (HOST, PORTICO, Conn, error_page, established_count,
                           exchange, free_port, request, run_portico, start_serve)

MTIME = 1_600_000_000                      # Sun, 13 Sep 2020 12:26:40 GMT
MTIME_HTTP = "Sun, 13 Sep 2020 12:26:40 GMT"
HELLO = b"hello, world\n"
ROOT_INDEX = b"<!DOCTYPE html><title>root</title><h1>root index</h1>\n"
SUB_INDEX = b"<p>sub index</p>\n"
SECRET = b"TOP-SECRET-7f3a9c-do-not-serve\n"
SECRET2 = b"ANOTHER-SECRET-41b2e8\n"
RANGE_DATA = bytes(ord("a") + i % 26 for i in range(100))
BIG_SIZE = 100 * 1024 * 1024
ALLOW = "GET, HEAD, OPTIONS, TRACE"

DATE_RE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep"
                     r"|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT")
STRONG_ETAG_RE = re.compile(r'"[\x21\x23-\x7e]+"')


# ------------------------------------------------------------------ fixtures

class Site:
    pass


def _write(path, data, mtime=MTIME):
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("serve")
    root = base / "root"
    root.mkdir()
    s = Site()
    s.base, s.root = base, root

    # Outside the docroot.
    _write(base / "secret.txt", SECRET)
    (base / "outside").mkdir()
    _write(base / "outside" / "secret2.txt", SECRET2)

    _write(root / "index.html", ROOT_INDEX)
    _write(root / "hello.txt", HELLO)
    _write(root / "page.html", b"<p>page</p>\n")
    _write(root / "img.png", b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    _write(root / "data.zzqx", b"unknown extension\n")
    _write(root / "noext", b"no extension\n")
    _write(root / "range.txt", RANGE_DATA)
    for i in range(10):
        _write(root / f"f{i}.txt", f"file number {i}: {'#' * (i * 7)}\n".encode())
    (root / "sub").mkdir()
    _write(root / "sub" / "index.html", SUB_INDEX)
    (root / "empty").mkdir()
    _write(root / "empty" / "note.txt", b"no index here\n")
    (root / "a").mkdir()
    # Symlinks: inside -> inside (allowed), inside -> outside (refused).
    os.symlink("hello.txt", root / "link_in.txt")
    os.symlink("../secret.txt", root / "link_out.txt")
    os.symlink(str(base / "secret.txt"), root / "link_abs.txt")
    os.symlink("../outside", root / "link_dir")

    # 100 MiB of random bytes.
    h = hashlib.sha256()
    with open(root / "big.bin", "wb") as f:
        for _ in range(BIG_SIZE // (1024 * 1024)):
            chunk = os.urandom(1024 * 1024)
            h.update(chunk)
            f.write(chunk)
    s.big_sha = h.hexdigest()
    yield s
    (root / "big.bin").unlink()   # pytest keeps old tmp dirs: do not keep 100 MiB


def _stop_checked(srv):
    rc = srv.stop()
    report = srv.sanitizer_report()
    assert not report, f"sanitizer report from portico:\n{report}"
    assert rc == 0, f"portico serve exited with {rc}; stderr: {srv.stderr()!r}"


@pytest.fixture(scope="module")
def srv(site):
    """The default server: no --list, default limits."""
    s = start_serve(site.root, site.base, tag="main")
    yield s
    _stop_checked(s)


@pytest.fixture(scope="module")
def lim_srv(site):
    """A server with small limits."""
    s = start_serve(site.root, site.base, "--max-fields", "10", "--max-head", "1k",
                    "--max-target", "64", "--max-body", "10", "--header-timeout", "1",
                    tag="limits")
    yield s
    _stop_checked(s)


@pytest.fixture
def fresh_srv(site, tmp_path):
    """Starts a server with extra options for one test; stopped at the end."""
    started = []

    def start(*extra, root=None):
        s = start_serve(root or site.root, tmp_path, *extra, tag=f"fresh{len(started)}")
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


def get(port, target, headers=(), version="1.1", method="GET"):
    """One request on its own connection; returns the response."""
    r, c = exchange(port, request(method, target, version=version, headers=headers),
                    head_only=(method == "HEAD"))
    c.close()
    return r


def assert_closed(c):
    assert c.closed_by_server(5.0), "the server did not close the connection"


# ---------------------------------------------------------------- keep-alive

def _wait_log_lines(path, n, timeout=4.0):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= n:
                break
        time.sleep(0.1)
    return lines


CLF_RE = re.compile(r'127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                    r'"GET /hello\.txt HTTP/1\.1" 200 13 "-" "-"')


def test_keepalive_20_requests_raw_socket(fresh_srv, tmp_path):
    alog = tmp_path / "access.log"
    s = fresh_srv("--access-log", alog)
    with Conn(s.port) as c:
        local = c.sock.getsockname()
        for i in range(20):
            c.send(request("GET", "/hello.txt"))
            r = c.read_response()
            assert r.status == 200
            assert r.body == HELLO
            assert r.header("Connection") is None
            assert c.sock.getsockname() == local
        assert established_count(s.port) == 1
        assert c.silent(0.2), "connection closed or extra bytes after 20 responses"
    lines = _wait_log_lines(alog, 20)
    assert len(lines) == 20, lines
    for ln in lines:
        assert CLF_RE.fullmatch(ln), ln


def test_keepalive_20_requests_http_client(fresh_srv, tmp_path):
    alog = tmp_path / "access.log"
    s = fresh_srv("--access-log", alog)
    conn = http.client.HTTPConnection(HOST, s.port, timeout=10)
    try:
        sock = None
        port = None
        for i in range(20):
            conn.request("GET", "/hello.txt")
            r = conn.getresponse()
            assert r.status == 200
            assert r.read() == HELLO
            assert r.getheader("Connection") is None
            if sock is None:
                sock, port = conn.sock, conn.sock.getsockname()[1]
            assert conn.sock is sock, "http.client had to reconnect"
            assert conn.sock.getsockname()[1] == port
        assert established_count(s.port) == 1
    finally:
        conn.close()
    lines = _wait_log_lines(alog, 20)
    assert len(lines) == 20, lines


def test_pipelining_10_requests_in_one_send(srv, site):
    with Conn(srv.port) as c:
        c.send(b"".join(request("GET", f"/f{i}.txt") for i in range(10)))
        for i in range(10):
            r = c.read_response()
            assert r.status == 200
            assert r.body == (site.root / f"f{i}.txt").read_bytes()
            assert r.header("Content-Length") == str(len(r.body))
        assert c.silent(0.2)


def test_pipelining_mixed_responses(srv, site):
    """Responses of every framing, pipelined: file, HEAD, 304, chunked
    error page, 206, 100 MiB file, then a small file."""
    etag = get(srv.port, "/hello.txt").header("ETag")
    with Conn(srv.port) as c:
        c.send(request("GET", "/f3.txt")
               + request("HEAD", "/hello.txt")
               + request("GET", "/hello.txt", headers=[("If-None-Match", etag)])
               + request("GET", "/missing")
               + request("GET", "/range.txt", headers=[("Range", "bytes=-3")])
               + request("OPTIONS", "/")
               + request("GET", "/big.bin")
               + request("GET", "/f4.txt"))
        r = c.read_response()
        assert (r.status, r.body) == (200, (site.root / "f3.txt").read_bytes())
        r = c.read_response(head_only=True)
        assert (r.status, r.header("Content-Length")) == (200, "13")
        r = c.read_response()
        assert (r.status, r.body) == (304, b"")
        r = c.read_response()
        assert (r.status, r.framing, r.body) == (404, "chunked", error_page(404, "Not Found"))
        r = c.read_response()
        assert (r.status, r.body) == (206, RANGE_DATA[-3:])
        r = c.read_response()
        assert (r.status, r.body) == (204, b"")
        r = c.read_head()
        assert r.status == 200 and r.header("Content-Length") == str(BIG_SIZE)
        h = hashlib.sha256()
        left = BIG_SIZE
        while left:
            if not c.buf:
                c.buf = c.sock.recv(1 << 20)
                assert c.buf, "closed inside the big body"
            piece, c.buf = c.buf[:left], c.buf[left:]
            h.update(piece)
            left -= len(piece)
        assert h.hexdigest() == site.big_sha
        r = c.read_response()
        assert (r.status, r.body) == (200, (site.root / "f4.txt").read_bytes())
        assert c.silent(0.2)


def test_http10_without_keepalive_closes(srv):
    with Conn(srv.port) as c:
        c.send(b"GET /hello.txt HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.body == HELLO
        assert r.header("Connection") == "close"
        assert_closed(c)


def test_http10_keepalive(srv):
    with Conn(srv.port) as c:
        c.send(b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.body == HELLO
        assert r.header("Connection") == "keep-alive"
        assert c.silent(0.3)
        c.send(b"GET /f1.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.body == b"file number 1: #######\n"
        assert r.header("Connection") == "keep-alive"


def test_http11_connection_close(srv):
    with Conn(srv.port) as c:
        c.send(request("GET", "/hello.txt", headers=[("Connection", "close")]))
        r = c.read_response()
        assert r.status == 200
        assert r.body == HELLO
        assert r.header("Connection") == "close"
        assert_closed(c)


def test_max_requests(fresh_srv):
    s = fresh_srv("--max-requests", "3")
    with Conn(s.port) as c:
        for i in range(3):
            c.send(request("GET", "/hello.txt"))
            r = c.read_response()
            assert r.status == 200
            assert r.body == HELLO
            if i < 2:
                assert r.header("Connection") is None
                assert c.silent(0.1)
            else:
                assert r.header("Connection") == "close"
        assert_closed(c)


# -------------------------------------------------------------- the statuses

def test_200_headers(srv, site):
    before = time.time()
    r = get(srv.port, "/hello.txt")
    assert r.version == "1.1"
    assert r.status == 200 and r.reason == "OK"
    assert r.body == HELLO
    assert r.header("Content-Length") == "13"
    assert r.header("Content-Type") == "text/plain; charset=utf-8"
    assert r.header("Server") == "portico"
    assert r.header("Accept-Ranges") == "bytes"
    assert r.header("Last-Modified") == MTIME_HTTP
    etag = r.header("ETag")
    assert STRONG_ETAG_RE.fullmatch(etag), etag
    date = r.header("Date")
    assert DATE_RE.fullmatch(date), date
    t = email.utils.parsedate_to_datetime(date).timestamp()
    assert before - 2 <= t <= time.time() + 2
    # The ETag is stable, and another file has another one.
    assert get(srv.port, "/hello.txt").header("ETag") == etag
    assert get(srv.port, "/page.html").header("ETag") != etag


@pytest.mark.parametrize("path,ctype", [
    ("/page.html", "text/html; charset=utf-8"),
    ("/hello.txt", "text/plain; charset=utf-8"),
    ("/img.png", "image/png"),
    ("/data.zzqx", "application/octet-stream"),
    ("/noext", "application/octet-stream"),
])
def test_content_type(srv, site, path, ctype):
    r = get(srv.port, path)
    assert r.status == 200
    assert r.header("Content-Type") == ctype
    assert r.body == (site.root / path[1:]).read_bytes()


def test_index_html(srv):
    r = get(srv.port, "/")
    assert r.status == 200
    assert r.body == ROOT_INDEX
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    r = get(srv.port, "/sub/")
    assert r.status == 200
    assert r.body == SUB_INDEX
    assert r.header("Content-Type") == "text/html; charset=utf-8"


def test_301_directory_without_slash(srv):
    r = get(srv.port, "/sub")
    assert r.status == 301
    assert r.header("Location") == "/sub/"
    r = get(srv.port, "/sub?x=1&y=%20z")
    assert r.status == 301
    assert r.header("Location") == "/sub/?x=1&y=%20z"
    assert r.body == error_page(301, "Moved Permanently")


def test_304_if_none_match(srv):
    etag = get(srv.port, "/hello.txt").header("ETag")
    with Conn(srv.port) as c:
        c.send(request("GET", "/hello.txt", headers=[("If-None-Match", etag)]))
        r = c.read_response()
        assert r.status == 304
        assert r.header("ETag") == etag
        assert r.header("Last-Modified") == MTIME_HTTP
        assert r.header("Content-Length") is None
        assert r.header("Transfer-Encoding") is None
        assert c.silent(0.2), "bytes after a 304 head"
        # A list with the tag in it, and W/ (weak comparison) also match.
        c.send(request("GET", "/hello.txt", headers=[("If-None-Match", f'"zz", W/{etag}')]))
        assert c.read_response().status == 304
        c.send(request("GET", "/hello.txt", headers=[("If-None-Match", '"other"')]))
        r = c.read_response()
        assert r.status == 200 and r.body == HELLO


def test_304_if_modified_since(srv):
    lm = get(srv.port, "/hello.txt").header("Last-Modified")
    assert lm == MTIME_HTTP
    r = get(srv.port, "/hello.txt", headers=[("If-Modified-Since", lm)])
    assert r.status == 304
    assert r.body == b""
    older = email.utils.formatdate(MTIME - 1, usegmt=True)
    r = get(srv.port, "/hello.txt", headers=[("If-Modified-Since", older)])
    assert r.status == 200 and r.body == HELLO


def test_412_if_match_mismatch(srv):
    etag = get(srv.port, "/hello.txt").header("ETag")
    r = get(srv.port, "/hello.txt", headers=[("If-Match", '"not-the-tag"')])
    assert r.status == 412
    assert r.body == error_page(412, "Precondition Failed")
    r = get(srv.port, "/hello.txt", headers=[("If-Match", etag)])
    assert r.status == 200 and r.body == HELLO


def test_412_if_unmodified_since_past(srv):
    past = email.utils.formatdate(MTIME - 3600, usegmt=True)
    r = get(srv.port, "/hello.txt", headers=[("If-Unmodified-Since", past)])
    assert r.status == 412
    r = get(srv.port, "/hello.txt", headers=[("If-Unmodified-Since", MTIME_HTTP)])
    assert r.status == 200 and r.body == HELLO


def test_403_directory_without_index(srv):
    r = get(srv.port, "/empty/")
    assert r.status == 403
    assert r.body == error_page(403, "Forbidden")


def test_404_and_error_page_is_chunked(srv):
    with Conn(srv.port) as c:
        c.send(request("GET", "/no-such-file.txt"))
        r = c.read_response()
        assert r.status == 404 and r.reason == "Not Found"
        assert r.header("Transfer-Encoding") == "chunked"
        assert r.header("Content-Length") is None
        assert r.header("Content-Type") == "text/html; charset=utf-8"
        page = error_page(404, "Not Found")
        assert r.raw_body == b"%x\r\n" % len(page) + page + b"\r\n0\r\n\r\n"
        # A 404 keeps the connection.
        c.send(request("GET", "/hello.txt"))
        assert c.read_response().body == HELLO


def test_405_post_to_file(srv):
    with Conn(srv.port) as c:
        c.send(request("POST", "/hello.txt"))
        r = c.read_response()
        assert r.status == 405
        assert r.header("Allow") == ALLOW
        assert r.body == error_page(405, "Method Not Allowed")


def test_options_204(srv):
    with Conn(srv.port) as c:
        c.send(request("OPTIONS", "/hello.txt"))
        r = c.read_response()
        assert r.status == 204
        assert r.header("Allow") == ALLOW
        assert c.silent(0.2), "bytes after a 204"
        c.send(request("OPTIONS", "*"))
        r = c.read_response()
        assert r.status == 204 and r.header("Allow") == ALLOW


MALFORMED = {
    "obs-fold": b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
    "space-before-colon": b"GET /hello.txt HTTP/1.1\r\nHost : x\r\n\r\n",
    "bare-cr": b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
    "bad-method-char": b"GE(T /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n",
    "control-char-in-value": b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
    "two-content-length": b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                          b"Content-Length: 1\r\n\r\nA",
    "cl-and-te": b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-gzip": b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    "missing-host": b"GET /hello.txt HTTP/1.1\r\n\r\n",
    "two-hosts": b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    "bad-target": b"GET hello.txt HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-target-char": b'GET /he"llo.txt HTTP/1.1\r\nHost: x\r\n\r\n',
    "bad-percent": b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-version": b"GET /hello.txt HTTP/1.x\r\nHost: x\r\n\r\n",
    "bare-lf": b"GET /hello.txt HTTP/1.1\nHost: x\n\n",
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_400_malformed(srv, case):
    with Conn(srv.port) as c:
        # The same connection then carries a valid request: it must never
        # be answered, since the framing of the connection is lost.
        c.send(MALFORMED[case] + request("GET", "/hello.txt"))
        r = c.read_response()
        assert r.status == 400, r
        assert r.reason == "Bad Request"
        assert r.header("Connection") == "close"
        assert r.body == error_page(400, "Bad Request")
        assert_closed(c)


def _assert_error_and_close(c, status, reason):
    r = c.read_response()
    assert r.status == status, r
    assert r.reason == reason
    assert r.header("Connection") == "close"
    assert r.body == error_page(status, reason)
    assert_closed(c)
    return r


def test_408_partial_head(lim_srv):
    with Conn(lim_srv.port) as c:
        t0 = time.monotonic()
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n")
        rd, _, _ = select.select([c.sock], [], [], 5)
        elapsed = time.monotonic() - t0
        assert rd, "no answer to a partial head"
        assert 0.8 <= elapsed <= 3.0, elapsed
        _assert_error_and_close(c, 408, "Request Timeout")


def test_408_slowloris(lim_srv):
    payload = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    with Conn(lim_srv.port) as c:
        t0 = time.monotonic()
        got = False
        for i in range(len(payload)):
            c.send(payload[i:i + 1])
            rd, _, _ = select.select([c.sock], [], [], 0.3)
            if rd:
                got = True
                break
            assert time.monotonic() - t0 < 5, "no answer to a slow head"
        assert got
        elapsed = time.monotonic() - t0
        assert 0.8 <= elapsed <= 3.0, elapsed
        _assert_error_and_close(c, 408, "Request Timeout")


def test_413_body_over_max_body(lim_srv):
    with Conn(lim_srv.port) as c:
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n0123456789A")
        _assert_error_and_close(c, 413, "Content Too Large")
    # At the limit the body is read and dropped, and the connection goes on.
    with Conn(lim_srv.port) as c:
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"
               + request("GET", "/f2.txt"))
        r = c.read_response()
        assert r.status == 200 and r.body == HELLO
        r = c.read_response()
        assert r.status == 200 and r.body == b"file number 2: ##############\n"


def test_414_target_over_max_target(lim_srv):
    with Conn(lim_srv.port) as c:
        c.send(request("GET", "/" + "a" * 64))
        _assert_error_and_close(c, 414, "URI Too Long")
    # Exactly max-target bytes is not too long.
    r = get(lim_srv.port, "/" + "a" * 63)
    assert r.status == 404


def test_431_too_many_fields(lim_srv):
    with Conn(lim_srv.port) as c:
        c.send(request("GET", "/hello.txt", headers=[(f"X-F{i}", "v") for i in range(10)]))
        _assert_error_and_close(c, 431, "Request Header Fields Too Large")
    # Host + 9 more = 10 fields: allowed.
    r = get(lim_srv.port, "/hello.txt", headers=[(f"X-F{i}", "v") for i in range(9)])
    assert r.status == 200 and r.body == HELLO


def test_431_head_over_max_head(lim_srv):
    with Conn(lim_srv.port) as c:
        c.send(request("GET", "/hello.txt", headers=[("X-Big", "b" * 1100)]))
        _assert_error_and_close(c, 431, "Request Header Fields Too Large")
    r = get(lim_srv.port, "/hello.txt", headers=[("X-Big", "b" * 800)])
    assert r.status == 200 and r.body == HELLO


def test_416_range_beyond_eof(srv):
    with Conn(srv.port) as c:
        c.send(request("GET", "/range.txt", headers=[("Range", "bytes=100-")]))
        r = c.read_response()
        assert r.status == 416
        assert r.header("Content-Range") == "bytes */100"
        assert r.body == error_page(416, "Range Not Satisfiable")


def test_417_unknown_expectation(srv):
    with Conn(srv.port) as c:
        c.send(request("GET", "/hello.txt", headers=[("Expect", "something-else")]))
        _assert_error_and_close(c, 417, "Expectation Failed")


def test_501_unknown_method(srv):
    with Conn(srv.port) as c:
        c.send(request("BREW", "/hello.txt"))
        r = _assert_error_and_close(c, 501, "Not Implemented")
        assert r.header("Transfer-Encoding") == "chunked"


def test_501_transfer_coding_gzip_chunked(srv):
    with Conn(srv.port) as c:
        c.send(b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
               b"0\r\n\r\n")
        _assert_error_and_close(c, 501, "Not Implemented")


def test_505_http2_request_line(srv):
    with Conn(srv.port) as c:
        c.send(b"GET /hello.txt HTTP/2.0\r\nHost: x\r\n\r\n")
        _assert_error_and_close(c, 505, "HTTP Version Not Supported")


def test_http2_preface_clean_close(srv):
    with Conn(srv.port) as c:
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        c.sock.settimeout(5)
        assert c.sock.recv(65536) == b""


# ------------------------------------------------------------ range requests

def test_range_basic_and_suffix(srv):
    with Conn(srv.port) as c:
        c.send(request("GET", "/range.txt", headers=[("Range", "bytes=2-5")]))
        r = c.read_response()
        assert r.status == 206 and r.reason == "Partial Content"
        assert r.header("Content-Range") == "bytes 2-5/100"
        assert r.header("Content-Length") == "4"
        assert r.body == RANGE_DATA[2:6]
        c.send(request("GET", "/range.txt", headers=[("Range", "bytes=-5")]))
        r = c.read_response()
        assert r.status == 206
        assert r.header("Content-Range") == "bytes 95-99/100"
        assert r.body == RANGE_DATA[-5:]
        c.send(request("GET", "/range.txt", headers=[("Range", "bytes=90-")]))
        r = c.read_response()
        assert r.status == 206
        assert r.header("Content-Range") == "bytes 90-99/100"
        assert r.body == RANGE_DATA[90:]


def test_multiple_ranges_give_multipart_byteranges(srv):
    r = get(srv.port, "/range.txt", headers=[("Range", "bytes=0-1,3-4,-2")])
    assert r.status == 206
    ct = r.header("Content-Type")
    assert ct.startswith("multipart/byteranges; boundary=")
    boundary = ct.split("boundary=", 1)[1]
    assert r.header("Content-Range") is None
    assert r.header("Accept-Ranges") == "bytes"
    assert int(r.header("Content-Length")) == len(r.body)
    parts = []
    for chunk in r.body.split(b"--" + boundary.encode())[1:-1]:
        head, _, data = chunk.partition(b"\r\n\r\n")
        assert data.endswith(b"\r\n")
        parts.append((head.strip(b"\r\n").split(b"\r\n"), data[:-2]))
    assert r.body.endswith(("--" + boundary + "--\r\n").encode())
    assert [p[1] for p in parts] == [RANGE_DATA[0:2], RANGE_DATA[3:5], RANGE_DATA[-2:]]
    assert [p[0][1] for p in parts] == [b"Content-Range: bytes 0-1/100", b"Content-Range: bytes 3-4/100",
                                        b"Content-Range: bytes 98-99/100"]
    # unsatisfiable members are dropped; one left gives a plain 206
    r = get(srv.port, "/range.txt", headers=[("Range", "bytes=0-1,500-600")])
    assert r.status == 206 and r.header("Content-Range") == "bytes 0-1/100"
    assert r.body == RANGE_DATA[0:2]
    # more than 16 ranges: the whole content
    many = ",".join(f"{i}-{i}" for i in range(17))
    r = get(srv.port, "/range.txt", headers=[("Range", "bytes=" + many)])
    assert r.status == 200 and r.body == RANGE_DATA


def test_if_range(srv):
    etag = get(srv.port, "/range.txt").header("ETag")
    r = get(srv.port, "/range.txt", headers=[("Range", "bytes=10-19"), ("If-Range", etag)])
    assert r.status == 206
    assert r.header("Content-Range") == "bytes 10-19/100"
    assert r.body == RANGE_DATA[10:20]
    r = get(srv.port, "/range.txt", headers=[("Range", "bytes=10-19"), ("If-Range", '"stale"')])
    assert r.status == 200
    assert r.header("Content-Range") is None
    assert r.body == RANGE_DATA
    # A Last-Modified date that matches also holds.
    r = get(srv.port, "/range.txt", headers=[("Range", "bytes=10-19"), ("If-Range", MTIME_HTTP)])
    assert r.status == 206 and r.body == RANGE_DATA[10:20]


# ----------------------------------------------------------------- traversal

TRAVERSAL = [
    ("/../secret.txt", 400),
    ("/%2e%2e/secret.txt", 400),
    ("/%2E%2E/secret.txt", 400),
    ("/..%2fsecret.txt", 400),
    ("/%2e%2e%2fsecret.txt", 400),
    ("/%252e%252e/secret.txt", 404),
    ("/a/../../secret.txt", 400),
    ("/sub/../../secret.txt", 400),
    ("http://x/../secret.txt", 400),
    ("//secret.txt", 404),
    ("/%00", 400),
    ("/hello.txt%00.png", 400),
    ("/..\\secret.txt", 400),
    ("/link_out.txt", 404),
    ("/link_abs.txt", 404),
    ("/link_dir/secret2.txt", 404),
    ("/link_dir/", 404),
    ("/link_dir", 404),
]


@pytest.mark.parametrize("target,status", TRAVERSAL)
def test_traversal_refused(srv, target, status):
    with Conn(srv.port) as c:
        c.send(request("GET", target))
        try:
            r = c.read_response()
        finally:
            rest = c.buf
        assert r.status == status, r
        for leaked in (SECRET, SECRET2, b"TOP-SECRET", b"ANOTHER-SECRET"):
            assert leaked not in r.raw_head + r.raw_body + rest


def test_symlink_inside_root_allowed(srv):
    r = get(srv.port, "/link_in.txt")
    assert r.status == 200
    assert r.body == HELLO


# ---------------------------------------------------------------- big files

@pytest.mark.deadline(60)
def test_big_file_curl(srv, site, tmp_path):
    out = tmp_path / "big.out"
    p = subprocess.run(["curl", "-s", "-S", "-o", str(out), "-w", "%{http_code}",
                        srv.url("/big.bin")], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"200"
    assert out.stat().st_size == BIG_SIZE
    h = hashlib.sha256()
    with open(out, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    assert h.hexdigest() == site.big_sha


@pytest.mark.deadline(60)
def test_big_file_python_stream_and_head(srv, site):
    with Conn(srv.port) as c:
        c.send(request("GET", "/big.bin"))
        g = c.read_head()
        assert g.status == 200
        assert g.header("Content-Length") == str(BIG_SIZE)
        assert g.header("Content-Type") == "application/octet-stream"
        h = hashlib.sha256()
        h.update(c.buf)
        got = len(c.buf)
        c.buf = b""
        while got < BIG_SIZE:
            d = c.sock.recv(1 << 20)
            assert d, f"connection closed after {got} bytes"
            got += len(d)
            h.update(d)
        assert got == BIG_SIZE
        assert h.hexdigest() == site.big_sha
        assert c.silent(0.2), "bytes after the body"

        # HEAD: the same head but for Date, and nothing after it.
        c.send(request("HEAD", "/big.bin"))
        hd = c.read_head()
        assert hd.status == g.status and hd.reason == g.reason
        strip = lambda r: [(k.lower(), v) for k, v in r.fields if k.lower() != "date"]
        assert strip(hd) == strip(g)
        assert c.silent(0.5), "bytes after a HEAD response"
        c.send(request("GET", "/hello.txt"))
        r = c.read_response()
        assert r.status == 200 and r.body == HELLO


@pytest.mark.deadline(60)
def test_sigterm_lets_download_finish(fresh_srv, site):
    s = fresh_srv("--shutdown-timeout", "20")
    with Conn(s.port) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        c.send(request("GET", "/big.bin"))
        r = c.read_head()
        assert r.status == 200
        h = hashlib.sha256()
        h.update(c.buf)
        got = len(c.buf)
        c.buf = b""
        # Slowly, to about 8 MiB.
        while got < 8 * 1024 * 1024:
            d = c.sock.recv(64 * 1024)
            assert d
            got += len(d)
            h.update(d)
            time.sleep(0.004)
        os.kill(s.pid, signal.SIGTERM)
        # New connections are refused once the signal is handled.
        refused = False
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, s.port), timeout=1).close()
            except ConnectionRefusedError:
                refused = True
                break
            except OSError:
                pass
            time.sleep(0.05)
        assert refused, "the server still accepts connections after SIGTERM"
        assert s.proc.poll() is None, "the server exited with a download in flight"
        # Keep reading, a bit slowly, to the end.
        n = 0
        while got < BIG_SIZE:
            d = c.sock.recv(64 * 1024)
            assert d, f"connection closed after {got} of {BIG_SIZE} bytes"
            got += len(d)
            h.update(d)
            n += 1
            if n % 16 == 0:
                time.sleep(0.01)
        assert got == BIG_SIZE
        assert h.hexdigest() == site.big_sha
        assert_closed(c)
    rc = s.proc.wait(timeout=10)
    assert rc == 0, s.stderr()
    assert not s.sanitizer_report(), s.stderr()


def test_sigterm_closes_idle_connections_and_exits(fresh_srv):
    s = fresh_srv()
    with Conn(s.port) as c:
        c.send(request("GET", "/hello.txt"))
        assert c.read_response().body == HELLO
        t0 = time.monotonic()
        os.kill(s.pid, signal.SIGTERM)
        assert_closed(c)
        assert s.proc.wait(timeout=5) == 0
        assert time.monotonic() - t0 < 2.0, "an idle connection held up the shutdown"
    assert not s.sanitizer_report(), s.stderr()


# ------------------------------------------------------------ timeouts etc.

def test_idle_timeout_closes_kept_alive_connection(fresh_srv):
    s = fresh_srv("--idle-timeout", "1")
    with Conn(s.port) as c:
        c.send(request("GET", "/hello.txt"))
        assert c.read_response().body == HELLO
        t0 = time.monotonic()
        assert c.closed_by_server(4.0), "idle connection not closed"
        assert 0.8 <= time.monotonic() - t0 <= 2.5


def test_send_timeout_drops_client_that_stops_reading(fresh_srv):
    s = fresh_srv("--send-timeout", "1")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(10)
    try:
        sock.connect((HOST, s.port))
        sock.sendall(request("GET", "/big.bin"))
        t0 = time.monotonic()
        while established_count(s.port) and time.monotonic() < t0 + 5:
            time.sleep(0.05)
        assert established_count(s.port) == 0, "the server kept a stalled client"
        assert time.monotonic() - t0 >= 0.8, "closed before the send timeout"
        got = 0
        try:
            while True:
                d = sock.recv(1 << 20)
                if not d:
                    break
                got += len(d)
        except ConnectionResetError:
            pass
        assert 0 < got < BIG_SIZE
    finally:
        sock.close()


def test_two_listen_addresses(fresh_srv):
    p2 = free_port()
    s = fresh_srv("--listen", f"127.0.0.1:{p2}")
    for port in (s.port, p2):
        r = get(port, "/hello.txt")
        assert r.status == 200 and r.body == HELLO


def test_sighup_reopens_access_log(fresh_srv, tmp_path):
    alog = tmp_path / "access.log"
    s = fresh_srv("--access-log", alog)
    assert get(s.port, "/hello.txt").status == 200
    assert len(_wait_log_lines(alog, 1)) == 1
    rotated = tmp_path / "access.log.1"
    alog.rename(rotated)
    os.kill(s.pid, signal.SIGHUP)
    deadline = time.monotonic() + 3
    while not alog.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alog.exists(), "SIGHUP did not reopen the access log"
    assert get(s.port, "/f1.txt").status == 200
    lines = _wait_log_lines(alog, 1)
    assert len(lines) == 1 and '"GET /f1.txt HTTP/1.1" 200 ' in lines[0], lines
    old = rotated.read_text().splitlines()
    assert len(old) == 1 and '"GET /hello.txt HTTP/1.1" 200 13 ' in old[0], old
    assert s.proc.poll() is None


def test_changed_files_are_served_fresh(fresh_srv, tmp_path):
    root = tmp_path / "docroot"
    root.mkdir()
    f = root / "c.txt"
    f.write_bytes(b"version one\n")
    s = fresh_srv(root=root)
    r1 = get(s.port, "/c.txt")
    assert r1.body == b"version one\n"
    f.write_bytes(b"version 2!!\n")                 # same size, in place
    r2 = get(s.port, "/c.txt")
    assert r2.body == b"version 2!!\n"
    f.write_bytes(b"v3\n")
    assert get(s.port, "/c.txt").body == b"v3\n"
    (root / "new.tmp").write_bytes(b"renamed over\n")
    os.rename(root / "new.tmp", f)
    r4 = get(s.port, "/c.txt")
    assert r4.body == b"renamed over\n"
    assert len({r1.header("ETag"), r4.header("ETag")}) == 2
    f.unlink()
    assert get(s.port, "/c.txt").status == 404


@pytest.mark.parametrize("size", [1, 4096, 4097, 16 * 1024])
def test_small_files_mapped_and_large_sendfile_identical(fresh_srv, tmp_path, size):
    """Files up to 4 KiB leave from their mapping with the head in one
    sendmsg(); larger ones with sendfile(). Both give the same bytes, whole
    and in ranges, on a kept-alive connection, also after a change."""
    root = tmp_path / "docroot"
    root.mkdir()
    data = os.urandom(size)
    (root / "f.bin").write_bytes(data)
    s = fresh_srv(root=root)
    with Conn(s.port) as c:
        for _ in range(3):                            # miss, then hits
            c.send(request("GET", "/f.bin"))
            r = c.read_response()
            assert r.status == 200 and r.body == data
        c.send(request("GET", "/f.bin", headers=[("Range", "bytes=0-0,-1")]))
        r = c.read_response()
        assert r.status == 206 and data[:1] in r.body and data[-1:] in r.body
        c.send(request("GET", "/f.bin", headers=[("Range", f"bytes={size // 2}-")]))
        r = c.read_response()
        assert r.status == 206 and r.body == data[size // 2:]
        c.send(request("HEAD", "/f.bin"))
        r = c.read_response(head_only=True)
        assert r.status == 200 and r.header("Content-Length") == str(size)
        data2 = os.urandom(size // 2 + 1)
        (root / "f.bin").write_bytes(data2)            # in place, other size
        c.send(request("GET", "/f.bin"))
        assert c.read_response().body == data2


@pytest.mark.parametrize("change", ["rewrite-same-size", "rename-over", "unlink", "mtime-kept"])
def test_cached_file_change_seen_by_next_request(fresh_srv, tmp_path, change):
    """The open-file cache never answers from a file that changed before the
    request was sent: each change, then at once a request on the same
    kept-alive connection, 20 times over (small and large files: mapped and
    sendfile'd entries)."""
    root = tmp_path / "docroot"
    root.mkdir()
    f = root / "c.bin"
    s = fresh_srv(root=root)
    with Conn(s.port) as c:
        for i in range(20):
            size = 100 if i % 2 else 20000
            data = bytes([65 + i]) * size
            if change == "rename-over":
                tmp = root / "c.tmp"
                tmp.write_bytes(data)
                os.rename(tmp, f)
            elif change == "unlink":
                if f.exists():
                    f.unlink()
                    c.send(request("GET", "/c.bin"))
                    assert c.read_response().status == 404
                f.write_bytes(data)
            elif change == "mtime-kept" and f.exists():
                st = f.stat()
                with open(f, "r+b") as w:        # same size, then the old times back
                    w.truncate(size)
                    w.write(data)
                os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
            else:
                with open(f, "wb") as w:
                    w.write(data)
            c.send(request("GET", "/c.bin"))
            r = c.read_response()
            assert r.status == 200 and r.body == data, (i, r.status, r.body[:8])
            c.send(request("GET", "/c.bin"))     # a hit now
            assert c.read_response().body == data


def test_file_truncated_while_sending_is_never_passed_off(fresh_srv, tmp_path):
    """A mapped file cut to nothing around its response: the client gets the
    old bytes (the socket buffers take all 4 KiB at once) or a
    prefix and a close, never other bytes under the announced length; the
    next request sees the new size, and the server lives on. The kernel
    behaviour the cut-short case relies on is checked in test_fs_map.c."""
    root = tmp_path / "docroot"
    root.mkdir()
    data = os.urandom(4096)
    f = root / "t.bin"
    f.write_bytes(data)
    s = fresh_srv(root=root)
    assert get(s.port, "/t.bin").body == data         # cached and mapped now
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.settimeout(10)
    sock.connect((HOST, s.port))
    sock.sendall(request("GET", "/t.bin"))
    time.sleep(0.3)
    f.write_bytes(b"")                                  # truncate in place
    got = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
        if len(got) >= 4096 and b"\r\n\r\n" in got:
            head, _, body = got.partition(b"\r\n\r\n")
            if len(body) >= 4096:
                break
    sock.close()
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 4096" in head
    assert data.startswith(body), "bytes other than the file's were sent"
    assert get(s.port, "/t.bin").body == b""
    assert s.proc.poll() is None


def test_mapped_file_cut_mid_page_while_queued_is_never_padded(fresh_srv, tmp_path):
    """A mapped file cut short, but not to a page boundary, while its
    response waits for room in a full socket: the mapping's last page then
    reads as zeros past the new end, so the rest must not be taken from it.
    Every body the client gets is the old file, the new one, or a prefix of
    the old one followed by the close; never zeros in place of the data."""
    root = tmp_path / "docroot"
    root.mkdir()
    data = bytes(range(1, 256)) * 16 + b"\xff"            # 4081 bytes, no zero byte
    f = root / "t.bin"
    f.write_bytes(data)
    s = fresh_srv(root=root)
    assert get(s.port, "/t.bin").body == data
    n = 1000                                            # 4 MB of answers: more than the buffers hold
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(20)
    try:
        sock.connect((HOST, s.port))
        sock.sendall(request("GET", "/t.bin") * n)
        time.sleep(1.0)                                 # the server blocks on a full socket
        with open(f, "r+b") as fh:
            fh.truncate(1000)                           # in place, mid-page
        got = b""
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except socket.timeout:
                break
            if not chunk:
                break
            got += chunk
            if got.count(b"HTTP/1.1 200 ") == n and got.endswith(data[:1000]):
                break
    finally:
        sock.close()
    seen = 0
    while got:
        head, sep, rest = got.partition(b"\r\n\r\n")
        assert sep and head.startswith(b"HTTP/1.1 200 "), head[:80]
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        body, got = rest[:length], rest[length:]
        seen += 1
        if length == len(data):
            assert data.startswith(body), f"answer {seen}: bytes other than the file's"
            if len(body) < length:
                assert not got                          # cut: the connection closed there
        else:
            assert length == 1000 and body == data[:1000], f"answer {seen}"
    assert seen > 1
    assert get(s.port, "/t.bin").body == data[:1000]
    assert s.proc.poll() is None


# ------------------------------------------------------------------ listing

LIST_NAMES = ['<b>&"x.txt', "C.txt", "a.txt", "b.txt"]


@pytest.fixture(scope="module")
def list_site(site):
    root = site.base / "listroot"
    root.mkdir()
    for i, name in enumerate(LIST_NAMES):
        _write(root / name, b"x" * (i + 1))
    _write(root / ".hidden", b"hidden")
    (root / "dir").mkdir()
    _write(root / "dir" / "inner.txt", b"inner")
    return root


@pytest.fixture(scope="module")
def list_srv(site, list_site):
    s = start_serve(list_site, site.base, "--list", tag="list")
    yield s
    _stop_checked(s)


ANCHOR_RE = re.compile(r'<a href="([^"]*)">([^<]*)</a>')


def _check_listing(body):
    text = body.decode()
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>Index of /</title>" in text
    anchors = ANCHOR_RE.findall(text)
    assert anchors == [
        ("./%3Cb%3E%26%22x.txt", "&lt;b&gt;&amp;&quot;x.txt"),
        ("./C.txt", "C.txt"),
        ("./a.txt", "a.txt"),
        ("./b.txt", "b.txt"),
        ("./dir/", "dir/"),
    ], anchors
    assert "<b>" not in text
    assert ".hidden" not in text
    assert "<td>1</td>" in text and "<td>4</td>" in text
    assert text.endswith("</table>\n</body></html>\n")


def test_listing_http11_chunked(list_srv):
    with Conn(list_srv.port) as c:
        c.send(request("GET", "/"))
        r = c.read_response()
        assert r.status == 200
        assert r.header("Content-Type") == "text/html; charset=utf-8"
        assert r.header("Transfer-Encoding") == "chunked"
        assert r.header("Content-Length") is None
        assert r.framing == "chunked"
        _check_listing(r.body)
        assert c.silent(0.2)
        # Subdirectory listing has the parent link.
        c.send(request("GET", "/dir/"))
        r = c.read_response()
        assert r.status == 200
        assert ANCHOR_RE.findall(r.body.decode()) == [("../", "../"), ("./inner.txt", "inner.txt")]


def test_listing_http10_close_delimited(list_srv):
    r11 = get(list_srv.port, "/")
    with Conn(list_srv.port) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        r = c.read_head()
        assert r.status == 200
        assert r.header("Transfer-Encoding") is None
        assert r.header("Content-Length") is None
        assert r.header("Connection") == "close"
        body = c.read_to_eof()
    _check_listing(body)
    assert body == r11.body


def test_listing_http10_keepalive_still_closes(list_srv):
    with Conn(list_srv.port) as c:
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_head()
        assert r.status == 200
        assert r.header("Connection") == "close"
        _check_listing(c.read_to_eof())


# -------------------------------------------------------------- config / CLI

def test_config_file(site, list_site, tmp_path):
    port = free_port()
    cfg = tmp_path / "portico.ini"
    cfg.write_text("; portico config\n[proxy]\nwhatever = 1\n\n[serve]\n"
                   f"listen = 127.0.0.1:{port}\nlist = yes\nworkers = 1\nquiet = yes\n")
    s = start_serve(list_site, tmp_path, "--config", cfg, port=port, quiet=False,
                    workers=False, listen=False, tag="cfg")
    try:
        assert s.port == port, "config listen address not used"
        r = get(port, "/")
        assert r.status == 200, "list = yes in the config had no effect"
        _check_listing(r.body)
    finally:
        assert s.stop() == 0
    assert s.stderr() == ""


def test_config_flags_override_file(site, tmp_path):
    port = free_port()
    cfg = tmp_path / "portico.ini"
    cfg.write_text(f"[serve]\nlisten = 127.0.0.1:{port}\nlist = yes\nmax-requests = 1\n")
    s = start_serve(site.root, tmp_path, "--config", cfg, "--max-requests", "2", port=port,
                    listen=False, tag="cfg2")
    try:
        with Conn(port) as c:
            c.send(request("GET", "/hello.txt"))
            assert c.read_response().header("Connection") is None
            c.send(request("GET", "/hello.txt"))
            assert c.read_response().header("Connection") == "close"
    finally:
        s.kill()


def test_config_unknown_key(site, tmp_path):
    cfg = tmp_path / "bad.ini"
    cfg.write_text("[serve]\nlisten = 127.0.0.1:1\nbogus-key = 1\n")
    rc, out, err = run_portico(["serve", "--config", str(cfg), str(site.root)], tmp_path)
    assert rc == 2
    assert err == f"portico serve: {cfg}, line 3: unknown option 'bogus-key'\n"
    assert out == ""


def test_config_bad_value(site, tmp_path):
    cfg = tmp_path / "bad.ini"
    cfg.write_text("[serve]\n\nmax-body = lots\n")
    rc, out, err = run_portico(["serve", "--config", str(cfg), str(site.root)], tmp_path)
    assert rc == 2
    assert err == (f"portico serve: {cfg}, line 3: invalid max-body 'lots': "
                   "expected bytes, as in 16k\n")


def test_config_missing_file(site, tmp_path):
    cfg = tmp_path / "nope.ini"
    rc, out, err = run_portico(["serve", "--config", str(cfg), str(site.root)], tmp_path)
    assert rc == 2
    assert err == f"portico serve: cannot read config '{cfg}': No such file or directory\n"


@pytest.mark.parametrize("args,message", [
    (["--workers", "0"], r"invalid workers '0': expected 1-\d+"),
    (["--max-body", "abc"], r"invalid max-body 'abc': expected bytes, as in 16k"),
    (["--listen", "127.0.0.1"], r"missing ':PORT' in address '127\.0\.0\.1'"),
    (["--header-timeout", "0"], r"invalid header-timeout '0': expected seconds > 0"),
    (["--max-fields", "0"], r"invalid max-fields '0': expected 1-\d+"),
    (["--bogus"], r"unknown option '--bogus' \(see portico serve --help\)"),
])
def test_bad_command_line(site, tmp_path, args, message):
    rc, out, err = run_portico(["serve", *args, str(site.root)], tmp_path)
    assert rc == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert re.fullmatch(r"portico serve: " + message + r"\n", err), err
    assert out == ""


def test_missing_dir(tmp_path):
    missing = tmp_path / "does-not-exist"
    port = free_port()
    rc, out, err = run_portico(["serve", "--listen", f"127.0.0.1:{port}", "--workers", "1",
                                "--quiet", str(missing)], tmp_path)
    assert rc == 1
    assert err == (f"portico serve: cannot open directory '{missing}': "
                   "No such file or directory\n")


@pytest.mark.parametrize("order", ["dir-first", "dir-between"])
def test_dir_before_options(site, tmp_path, order):
    """`portico serve --help` says: usage: portico serve [DIR] [OPTIONS]."""
    port = free_port()
    opts = ["--listen", f"127.0.0.1:{port}", "--workers", "1", "--quiet"]
    args = ([str(site.root)] + opts if order == "dir-first"
            else opts[:2] + [str(site.root)] + opts[2:])
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        proc = subprocess.Popen([PORTICO, "serve", *args], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 5
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection((HOST, port), timeout=0.2).close()
                up = True
                break
            except OSError:
                time.sleep(0.02)
        assert up, f"rc={proc.poll()} stderr={(tmp_path / 'err').read_text()!r}"
        r = get(port, "/hello.txt")
        assert r.status == 200 and r.body == HELLO
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _cpu_seconds(pid):
    """User + system CPU time the process has used, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _idle_cpu(pid, seconds=1.5):
    before = _cpu_seconds(pid)
    time.sleep(seconds)
    return _cpu_seconds(pid) - before


def test_level_triggered_listener_paused_at_max_connections(fresh_srv):
    """At --max-connections the listener is taken out of the loop: a client
    waiting in the backlog costs no CPU (a level-triggered listener left in
    would wake the loop without end), and is served once a slot frees."""
    s = fresh_srv("--max-connections", "2")
    held = [Conn(s.port), Conn(s.port)]
    try:
        for c in held:  # both accepted: each gets an answer
            c.send(request("GET", "/hello.txt"))
            assert c.read_response().status == 200
        waiting = Conn(s.port)  # completes in the kernel's backlog
        try:
            waiting.send(request("GET", "/hello.txt"))
            spent = _idle_cpu(s.proc.pid)
            assert spent < 0.5, f"{spent:.2f} s of CPU while paused at the maximum"
            held.pop().close()
            r = waiting.read_response()
            assert r.status == 200 and r.body == HELLO
        finally:
            waiting.close()
    finally:
        for c in held:
            c.close()


def test_accept_emfile_pauses_without_spinning(fresh_srv):
    """accept() failing with EMFILE (no descriptor left) pauses the
    listener for a moment instead of spinning on it; once descriptors are
    free again the waiting client is served."""
    import resource
    s = fresh_srv()
    pid = s.proc.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    # below what it holds: no new descriptor at all (the count of those it
    # holds may still move while it settles)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, hard))
    try:
        c = Conn(s.port)
        try:
            c.send(request("GET", "/hello.txt"))
            spent = _idle_cpu(pid)
            assert spent < 0.5, f"{spent:.2f} s of CPU while accept() says EMFILE"
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
            r = c.read_response()
            assert r.status == 200 and r.body == HELLO
        finally:
            c.close()
    finally:
        if s.proc.poll() is None:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
