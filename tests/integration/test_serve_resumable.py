"""Resumable uploads in `portico serve --writable` (issue 4), as
draft-ietf-httpbis-resumable-upload (-12 to -15) has them: a PUT or POST
with Upload-Complete gets a `104 Upload Resumption Supported` interim
response naming its upload resource; HEAD on it gives the offset; PATCH
with application/partial-upload appends from Upload-Offset (409 with the
right offset otherwise); DELETE cancels; idle uploads expire.

The target appears only once the upload is complete (an old file stays
byte-identical until then, and no stray file appears), a body cut at 70%
goes on from 70%, and the result is byte-identical to what was sent.
Cuts are made with raw sockets; some appends are sent with curl.
"""
import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import time
import warnings

import pytest

from serve_helpers import HOST, Conn, request, start_serve

LOC_RE = re.compile(r"/\.portico-upload/[0-9a-f]{32}")


def _stop(srv):
    srv.stop()
    report = srv.sanitizer_report()
    assert not report, f"sanitizer report from portico:\n{report}"


@pytest.fixture
def srv(tmp_path):
    started = []

    def start(*extra):
        root = tmp_path / "root"
        (root / "d").mkdir(parents=True, exist_ok=True)
        s = start_serve(root, tmp_path, "--writable", *extra, tag=f"res{len(started)}")
        s.root = root
        started.append(s)
        return s

    yield start
    for s in started:
        _stop(s)


def send_req(port, method, target, body=b"", headers=(), version="1.1"):
    """One request on its own connection; the interim responses and the
    final one."""
    with Conn(port) as c:
        hs = list(headers)
        if method not in ("HEAD", "GET", "DELETE") or body:
            hs.append(("Content-Length", str(len(body))))
        c.send(request(method, target, headers=hs, body=body, version=version))
        interims = []
        while True:
            r = c.read_response(head_only=(method == "HEAD"))
            if 100 <= r.status < 200:
                interims.append(r)
                continue
            return interims, r


def append(port, loc, offset, data, complete):
    return send_req(port, "PATCH", loc, data, [("Content-Type", "application/partial-upload"),
                                              ("Upload-Offset", str(offset)),
                                              ("Upload-Complete", "?1" if complete else "?0")])[1]


def head(port, loc):
    return send_req(port, "HEAD", loc)[1]


def cut_upload(port, method, target, data, cut, headers=()):
    """Starts a resumable upload of `data`, sends `cut` bytes of it, then
    shuts the sending side and waits until the server has closed (so it has
    read everything that was sent). Returns the 104 response."""
    s = socket.create_connection((HOST, port), timeout=10)
    try:
        hs = [("Upload-Complete", "?1"), ("Content-Length", str(len(data)))] + list(headers)
        s.sendall(request(method, target, headers=hs))
        got = b""
        while b"\r\n\r\n" not in got:  # the 104 comes before any body byte
            d = s.recv(4096)
            assert d, "closed before the 104"
            got += d
        s.sendall(data[:cut])
        s.shutdown(socket.SHUT_WR)
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    finally:
        s.close()
    head_text = got.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head_text.startswith("HTTP/1.1 104 Upload Resumption Supported\r\n"), head_text
    fields = dict(ln.split(": ", 1) for ln in head_text.split("\r\n")[1:])
    # nothing but the interim response: the request never completed
    assert got.count(b"HTTP/1.1 ") == 1, got[:400]
    return fields


def open_tmp_count(srv):
    """Unnamed temporary files (O_TMPFILE) the server holds in its docroot."""
    n = 0
    for fd in os.listdir(f"/proc/{srv.pid}/fd"):
        try:
            t = os.readlink(f"/proc/{srv.pid}/fd/{fd}")
        except OSError:
            continue
        if t.startswith(str(srv.root)) and t.endswith("(deleted)"):
            n += 1
    return n


def wait_tmp_count(srv, n, timeout=10.0):
    """open_tmp_count once it is n (a connection's own descriptor of the
    file is closed just after the connection), or the last count."""
    deadline = time.monotonic() + timeout
    while True:
        c = open_tmp_count(srv)
        if c == n or time.monotonic() > deadline:
            return c
        time.sleep(0.05)


# ------------------------------------------------------------------ the main path

def test_cut_at_70_percent_resumes_from_70_percent(srv):
    s = srv()
    target = s.root / "d" / "big.bin"
    old = b"the old content\n" * 100
    target.write_bytes(old)
    data = os.urandom(1_000_000)
    cut = 700_000
    interim = cut_upload(s.port, "PUT", "/d/big.bin", data, cut,
                         [("Upload-Length", str(len(data)))])
    loc = interim["Location"]
    assert LOC_RE.fullmatch(loc), loc
    assert "max-size=" in interim["Upload-Limit"] and "max-age=" in interim["Upload-Limit"]
    # cut: the old file is untouched and nothing else appeared
    assert target.read_bytes() == old
    assert sorted(os.listdir(s.root / "d")) == ["big.bin"]
    r = head(s.port, loc)
    assert r.status == 204
    assert r.header("Upload-Offset") == str(cut)
    assert r.header("Upload-Complete") == "?0"
    assert r.header("Upload-Length") == str(len(data))
    assert r.header("Cache-Control") == "no-store"
    assert r.header("Upload-Limit") is not None
    # go on from 70%, in two appends
    r = append(s.port, loc, cut, data[cut:900_000], complete=False)
    assert r.status == 204 and r.header("Upload-Complete") == "?0"
    assert r.header("Upload-Offset") == "900000"
    assert target.read_bytes() == old          # still not complete
    r = append(s.port, loc, 900_000, data[900_000:], complete=True)
    assert r.status == 204                     # PUT over an existing file
    assert r.header("Upload-Complete") == "?1"
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert sorted(os.listdir(s.root / "d")) == ["big.bin"]
    # the resource says complete, refuses more, and holds no file any more
    r = head(s.port, loc)
    assert r.status == 204 and r.header("Upload-Complete") == "?1"
    assert r.header("Upload-Offset") == str(len(data))
    r = append(s.port, loc, len(data), b"", complete=True)
    assert r.status == 400
    assert json.loads(r.body)["type"].endswith("#completed-upload")
    assert wait_tmp_count(s, 0) == 0


def test_post_resumed_with_curl(srv):
    s = srv()
    data = os.urandom(300_000)
    cut = 123_457
    loc = cut_upload(s.port, "POST", "/d/", data, cut)["Location"]
    assert os.listdir(s.root / "d") == []
    url = f"http://{HOST}:{s.port}{loc}"
    out = subprocess.run(["curl", "-sS", "-I", url], capture_output=True, timeout=30, check=True)
    m = re.search(rb"(?im)^upload-offset: (\d+)\r$", out.stdout)
    assert m and int(m.group(1)) == cut, out.stdout
    rest = s.root.parent / "rest.bin"
    rest.write_bytes(data[cut:])
    out = subprocess.run(["curl", "-sS", "-i", "-X", "PATCH", "--data-binary", f"@{rest}",
                          "-H", "Content-Type: application/partial-upload",
                          "-H", f"Upload-Offset: {cut}", "-H", "Upload-Complete: ?1", url],
                         capture_output=True, timeout=30, check=True)
    text = out.stdout.decode("latin-1")
    assert re.search(r"(?m)^HTTP/1.1 201 ", text), text
    assert re.search(r"(?mi)^upload-complete: \?1\r$", text), text
    m = re.search(r"(?mi)^location: (/d/upload-[0-9a-f]{16})\r$", text)
    assert m, text
    name = m.group(1).rsplit("/", 1)[1]
    assert os.listdir(s.root / "d") == [name]
    assert (s.root / "d" / name).read_bytes() == data


def test_whole_upload_in_one_request_is_answered_as_usual(srv):
    s = srv()
    data = b"x" * 5000
    interims, r = send_req(s.port, "PUT", "/d/one.txt", data, [("Upload-Complete", "?1")])
    assert [i.status for i in interims] == [104]
    assert LOC_RE.fullmatch(interims[0].header("Location"))
    assert r.status == 201 and r.header("Upload-Complete") == "?1"
    assert r.header("Location") == "/d/one.txt"
    assert (s.root / "d" / "one.txt").read_bytes() == data


def test_careful_creation_then_appends(srv):
    """An empty creation with ?0 gets 201 and the resource; parts follow."""
    s = srv()
    interims, r = send_req(s.port, "PUT", "/d/parts.txt", b"",
                           [("Upload-Complete", "?0"), ("Upload-Length", "12")])
    assert r.status == 201 and r.header("Upload-Complete") == "?0"
    loc = r.header("Location")
    assert LOC_RE.fullmatch(loc) and interims[0].header("Location") == loc
    assert r.header("Upload-Offset") == "0"
    assert not (s.root / "d" / "parts.txt").exists()
    assert append(s.port, loc, 0, b"hello ", complete=False).status == 204
    r = append(s.port, loc, 6, b"world!", complete=True)
    assert r.status == 201 and r.header("Upload-Complete") == "?1"
    assert (s.root / "d" / "parts.txt").read_bytes() == b"hello world!"


# ------------------------------------------------------------------ errors

def test_offset_mismatch_is_409_with_the_right_offset(srv):
    s = srv()
    data = os.urandom(50_000)
    loc = cut_upload(s.port, "PUT", "/d/m.bin", data, 20_000)["Location"]
    for wrong in (0, 19_999, 20_001, 50_000):
        r = append(s.port, loc, wrong, data[wrong:], complete=True)
        assert r.status == 409
        assert r.header("Upload-Offset") == "20000"
        problem = json.loads(r.body)
        assert problem["type"].endswith("#mismatching-upload-offset")
        assert problem["expected-offset"] == 20_000 and problem["provided-offset"] == wrong
    assert not (s.root / "d" / "m.bin").exists()
    r = append(s.port, loc, 20_000, data[20_000:], complete=True)
    assert r.status == 201
    assert (s.root / "d" / "m.bin").read_bytes() == data


def test_bad_appends(srv):
    s = srv()
    data = os.urandom(10_000)
    loc = cut_upload(s.port, "PUT", "/d/b.bin", data, 4_000,
                     [("Upload-Length", "10000")])["Location"]
    hdr = [("Upload-Offset", "4000"), ("Upload-Complete", "?0")]
    # not application/partial-upload: 415 naming it
    r = send_req(s.port, "PATCH", loc, b"x", hdr + [("Content-Type", "application/octet-stream")])[1]
    assert r.status == 415 and "application/partial-upload" in r.header("Accept-Patch")
    # Upload-Offset or Upload-Complete missing or not a Structured Field
    for fields in ([("Upload-Complete", "?0")], [("Upload-Offset", "4000")],
                   [("Upload-Offset", "4000"), ("Upload-Complete", "yes")],
                   [("Upload-Offset", "-1"), ("Upload-Complete", "?0")],
                   [("Upload-Offset", "4000.0"), ("Upload-Complete", "?0")]):
        r = send_req(s.port, "PATCH", loc, b"x",
                     fields + [("Content-Type", "application/partial-upload")])[1]
        assert r.status == 400, fields
    # a length other than the one announced
    r = send_req(s.port, "PATCH", loc, b"x", hdr + [("Content-Type", "application/partial-upload"),
                                                  ("Upload-Length", "9999")])[1]
    assert r.status == 400 and json.loads(r.body)["type"].endswith("#inconsistent-upload-length")
    # GET is not a method of an upload resource
    r = send_req(s.port, "GET", loc)[1]
    assert r.status == 405 and "PATCH" in r.header("Allow")
    # an unknown id
    assert head(s.port, "/.portico-upload/" + "0" * 32).status == 404
    # nothing above changed the upload
    assert head(s.port, loc).header("Upload-Offset") == "4000"
    # announced to end past the length: refused before any byte is taken
    r = append(s.port, loc, 4000, os.urandom(6001), complete=True)
    assert r.status == 400 and json.loads(r.body)["type"].endswith("#inconsistent-upload-length")
    assert head(s.port, loc).header("Upload-Offset") == "4000"
    # bytes past the length: refused, and the upload is gone (the draft)
    r = append(s.port, loc, 4000, os.urandom(6001), complete=False)
    assert r.status == 400
    assert head(s.port, loc).status == 404
    assert os.listdir(s.root / "d") == []


def test_delete_cancels_and_frees(srv):
    s = srv()
    loc = cut_upload(s.port, "PUT", "/d/c.bin", os.urandom(80_000), 30_000)["Location"]
    assert wait_tmp_count(s, 1) == 1
    r = send_req(s.port, "DELETE", loc)[1]
    assert r.status == 204
    assert head(s.port, loc).status == 404
    assert send_req(s.port, "DELETE", loc)[1].status == 404
    assert append(s.port, loc, 30_000, b"x", complete=True).status == 404
    assert wait_tmp_count(s, 0) == 0
    assert os.listdir(s.root / "d") == []


def test_abandoned_upload_expires(srv):
    s = srv("--upload-expiry", "1")
    loc = cut_upload(s.port, "PUT", "/d/e.bin", os.urandom(40_000), 10_000)["Location"]
    r = head(s.port, loc)
    assert r.status == 204 and "max-age=1" in r.header("Upload-Limit")
    deadline = time.monotonic() + 15
    while head(s.port, loc).status != 404:  # each HEAD renews it: wait past a second
        assert time.monotonic() < deadline, "the upload never expired"
        time.sleep(1.5)
    assert wait_tmp_count(s, 0) == 0
    assert os.listdir(s.root / "d") == []
    # abandoned and never asked about again: any later write frees it
    loc = cut_upload(s.port, "PUT", "/d/f.bin", os.urandom(40_000), 10_000)["Location"]
    assert wait_tmp_count(s, 1) == 1
    time.sleep(1.5)
    assert send_req(s.port, "PUT", "/d/other.txt", b"x")[1].status == 201
    assert wait_tmp_count(s, 0) == 0
    assert head(s.port, loc).status == 404


def test_limits(srv):
    s = srv("--max-uploads", "1", "--max-body", "64k")
    r = send_req(s.port, "PUT", "/d/a.bin", b"", [("Upload-Complete", "?0")])[1]
    loc = r.header("Location")
    assert r.status == 201 and "max-size=65536" in r.header("Upload-Limit")
    assert append(s.port, loc, 0, b"x" * 1000, complete=False).status == 204
    # the registry is full: a second upload is taken as a plain one (no 104)
    interims, r = send_req(s.port, "PUT", "/d/b.bin", b"plain", [("Upload-Complete", "?1")])
    assert interims == [] and r.status == 201
    assert (s.root / "d" / "b.bin").read_bytes() == b"plain"
    # appends cannot take an upload past max-size
    r = append(s.port, loc, 1000, b"y" * 65_000, complete=False)
    assert r.status == 413 and "max-size=65536" in r.header("Upload-Limit")
    assert head(s.port, loc).header("Upload-Offset") == "1000"


def test_newer_request_takes_over_a_hanging_one(srv):
    """A client that thinks its append failed asks for the offset while the
    server still has the old connection: the old one is cut off there, and
    the offset the HEAD gave is the one that works."""
    s = srv()
    data = os.urandom(200_000)
    loc = cut_upload(s.port, "PUT", "/d/t.bin", data, 50_000)["Location"]
    old = Conn(s.port)
    try:
        old.send(request("PATCH", loc, headers=[
            ("Content-Type", "application/partial-upload"), ("Upload-Offset", "50000"),
            ("Upload-Complete", "?1"), ("Content-Length", str(len(data) - 50_000))]) +
            data[50_000:80_000])
        deadline = time.monotonic() + 10
        while int(head(s.port, loc).header("Upload-Offset")) != 80_000:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # the old request goes on sending: refused, since the HEAD took over
        old.send(data[80_000:90_000])
        r = old.read_response()
        assert r.status == 409
    finally:
        old.close()
    assert head(s.port, loc).header("Upload-Offset") == "80000"
    r = append(s.port, loc, 80_000, data[80_000:], complete=True)
    assert r.status == 201 and (s.root / "d" / "t.bin").read_bytes() == data


def test_no_104_to_http10_and_options_announce_it(srv):
    s = srv()
    interims, r = send_req(s.port, "PUT", "/d/old.txt", b"abc", [("Upload-Complete", "?1")],
                           version="1.0")
    assert interims == [] and r.status == 201
    r = send_req(s.port, "OPTIONS", "/d/")[1]
    assert "application/partial-upload" in r.header("Accept-Patch")
    assert "max-size=" in r.header("Upload-Limit")
    # off: --max-uploads 0 makes Upload-Complete an ordinary field
    s2 = srv("--max-uploads", "0")
    interims, r = send_req(s2.port, "PUT", "/d/plain.txt", b"abc", [("Upload-Complete", "?1")])
    assert interims == [] and r.status == 201
    assert send_req(s2.port, "HEAD", "/.portico-upload/" + "0" * 32)[1].status == 404


def test_upload_resource_needs_the_same_auth_as_writes(srv, tmp_path):
    """With --auth-file, an upload is created, resumed, asked about and
    cancelled only with the password: without it, 401 and nothing said
    about the upload."""
    with warnings.catch_warnings():  # crypt: deprecated, but in Debian 12's python 3.11
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    h = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_SHA512))
    (tmp_path / "users").write_text(f"ann:{h}\n")
    s = srv("--auth-file", str(tmp_path / "users"))
    good = [("Authorization", "Basic " + base64.b64encode(b"ann:s3cret").decode())]
    data = os.urandom(30_000)
    loc = cut_upload(s.port, "PUT", "/d/a.bin", data, 10_000, good)["Location"]
    for method, body, extra in (("HEAD", b"", []), ("DELETE", b"", []),
                                ("PATCH", data[10_000:], [("Content-Type", "application/partial-upload"),
                                                          ("Upload-Offset", "10000"),
                                                          ("Upload-Complete", "?1")])):
        r = send_req(s.port, method, loc, body, extra)[1]
        assert r.status == 401 and r.header("Upload-Offset") is None, (method, r)
        r = send_req(s.port, method, "/.portico-upload/" + "0" * 32, body, extra)[1]
        assert r.status == 401, method   # the same answer for an unknown id
    r = send_req(s.port, "HEAD", loc, headers=good)[1]
    assert r.status == 204 and r.header("Upload-Offset") == "10000"
    r = send_req(s.port, "PATCH", loc, data[10_000:], good + [
        ("Content-Type", "application/partial-upload"), ("Upload-Offset", "10000"),
        ("Upload-Complete", "?1")])[1]
    assert r.status == 201 and (s.root / "d" / "a.bin").read_bytes() == data


def test_104_then_100_continue_then_the_answer(srv):
    s = srv()
    with Conn(s.port) as c:
        c.send(request("PUT", "/d/e.txt", headers=[("Upload-Complete", "?1"), ("Content-Length", "5"),
                                                  ("Expect", "100-continue")]))
        first = c.read_response()
        second = c.read_response()
        assert (first.status, second.status) == (104, 100)
        assert LOC_RE.fullmatch(first.header("Location"))
        c.send(b"hello")
        r = c.read_response()
        assert r.status == 201 and r.header("Upload-Complete") == "?1"
    assert (s.root / "d" / "e.txt").read_bytes() == b"hello"


def test_chunked_creation_cut_counts_decoded_bytes(srv):
    """The offset counts representation bytes, not the chunk framing."""
    s = srv()
    data = os.urandom(40_000)
    sock = socket.create_connection((HOST, s.port), timeout=10)
    try:
        sock.sendall(request("PUT", "/d/ch.bin", headers=[("Upload-Complete", "?1"),
                                                          ("Transfer-Encoding", "chunked")]))
        got = b""
        while b"\r\n\r\n" not in got:
            got += sock.recv(4096)
        for i in range(0, 25_000, 5_000):
            sock.sendall(b"%x\r\n" % 5_000 + data[i:i + 5_000] + b"\r\n")
        sock.sendall(b"1000\r\n" + data[25_000:25_100])  # a chunk cut in its middle
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    finally:
        sock.close()
    loc = re.search(rb"Location: (\S+)", got).group(1).decode()
    r = head(s.port, loc)
    assert r.header("Upload-Offset") == "25100" and r.header("Upload-Length") is None
    r = append(s.port, loc, 25_100, data[25_100:], complete=True)
    assert r.status == 201 and (s.root / "d" / "ch.bin").read_bytes() == data


def test_413_before_the_body_names_the_upload_limits(srv):
    """A creation request (Upload-Complete) or an append whose
    Content-Length is past --max-body is refused by the engine before any
    body byte is read; the draft wants Upload-Limit on a 413 that comes from
    the upload limits, so the client can retry within them. A plain PUT's
    413 has no Upload-Limit, and neither has one with resumption off."""
    s = srv("--max-body", "64k")
    for method, target in (("PUT", "/d/big.bin"), ("POST", "/d/")):
        with Conn(s.port) as c:
            c.send(request(method, target, headers=[("Upload-Complete", "?1"),
                                                    ("Content-Length", "70000")]))
            r = c.read_response()
        assert r.status == 413, (method, r.status)
        assert r.header("Upload-Limit") is not None, method
        assert "max-size=65536" in r.header("Upload-Limit")
        assert r.header("Connection") == "close"
    assert not (s.root / "d" / "big.bin").exists()
    # an append past --max-body: the same
    r = send_req(s.port, "PUT", "/d/a.bin", b"", [("Upload-Complete", "?0")])[1]
    loc = r.header("Location")
    assert r.status == 201
    with Conn(s.port) as c:
        c.send(request("PATCH", loc, headers=[("Content-Type", "application/partial-upload"),
                                              ("Upload-Offset", "0"), ("Upload-Complete", "?1"),
                                              ("Content-Length", "70000")]))
        r = c.read_response()
    assert r.status == 413 and "max-size=65536" in r.header("Upload-Limit")
    # not an upload: a plain 413
    with Conn(s.port) as c:
        c.send(request("PUT", "/d/plain.bin", headers=[("Content-Length", "70000")]))
        r = c.read_response()
    assert r.status == 413 and r.header("Upload-Limit") is None
    s2 = srv("--max-body", "64k", "--max-uploads", "0")
    with Conn(s2.port) as c:
        c.send(request("PUT", "/d/big.bin", headers=[("Upload-Complete", "?1"),
                                                     ("Content-Length", "70000")]))
        r = c.read_response()
    assert r.status == 413 and r.header("Upload-Limit") is None


def test_chunked_creation_past_max_body_names_the_upload_limits(srv):
    """A chunked creation request runs past --max-body mid-body: the 413
    after the 104 carries Upload-Limit too, and what arrived stays."""
    s = srv("--max-body", "64k")
    with Conn(s.port) as c:
        c.send(request("PUT", "/d/big.bin", headers=[("Upload-Complete", "?1"),
                                                     ("Transfer-Encoding", "chunked")]))
        interim = c.read_response()
        assert interim.status == 104
        loc = interim.header("Location")
        chunk = b"z" * 8192
        try:
            for _ in range(10):
                c.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except OSError:
            pass  # the server may have answered and shut its side already
        r = c.read_response()
    assert r.status == 413
    assert r.header("Upload-Limit") is not None and "max-size=65536" in r.header("Upload-Limit")
    assert r.header("Connection") == "close"
    assert int(head(s.port, loc).header("Upload-Offset")) <= 65536
    assert not (s.root / "d" / "big.bin").exists()
