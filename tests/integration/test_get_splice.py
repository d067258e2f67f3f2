"""Integration tests for the splice(2) path of `portico get`.

A Content-Length body that goes only to the output moves from the socket to
it through a pipe (client_req_sink()); chunked and close-delimited bodies,
terminals and outputs that refuse a splice go through memory as before.
These tests compare every body kind on every kind of output with and
without --no-splice, check from -v which path carried the bytes, and check
that the splice path keeps the length exact: a short body is exit 18 with
no file, bytes past Content-Length never reach the output.
"""
import os
import subprocess
import time

import pytest

from serve_helpers import PORTICO, SANITIZER_MARKS
from test_get import RUN_TIMEOUT, get, leftovers, origin_factory  # noqa: F401

BODY = bytes((i * 13 + 5) % 253 for i in range(3 * 1024 * 1024 + 17))
SPLICED = "body bytes spliced from the socket to the output"


def head_then(c, head, parts, delay=0.1):
    """Sends the head alone, then the body parts after a pause each, so the
    body arrives after on_head (the splice path, not the first read)."""
    c.sendall(head)
    for p in parts:
        time.sleep(delay)
        c.sendall(p)


def sized(origin, c, head):
    head_then(c, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY),
              [BODY[:1000], BODY[1000:]])
    return True


def chunked(origin, c, head):
    parts = [BODY[i:i + 300000] for i in range(0, len(BODY), 300000)]
    framed = [b"%x\r\n%s\r\n" % (len(p), p) for p in parts] + [b"0\r\n\r\n"]
    head_then(c, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", framed)
    return True


def close_delimited(origin, c, head):
    head_then(c, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", [BODY])
    return False


ROUTES = {"/sized": sized, "/chunked": chunked, "/close": close_delimited}


@pytest.fixture
def origin(origin_factory):  # noqa: F811
    return origin_factory(dict(ROUTES))


@pytest.mark.parametrize("path", ["/sized", "/chunked", "/close"])
@pytest.mark.parametrize("splice", [True, False])
@pytest.mark.parametrize("dest", ["-o", "-O", "stdout", "devnull"])
def test_bodies_identical_on_every_output(origin, tmp_path, path, splice, dest):
    args = ["-v"] + ([] if splice else ["--no-splice"])
    if dest == "-o":
        args += ["-o", "out.bin"]
    elif dest == "-O":
        args += ["-O"]
    elif dest == "devnull":
        args += ["-o", "/dev/null"]
    rc, out, err = get(args + [origin.url(path)], tmp_path)
    assert rc == 0, err
    if dest == "-o":
        assert (tmp_path / "out.bin").read_bytes() == BODY
    elif dest == "-O":
        assert (tmp_path / path[1:]).read_bytes() == BODY
    elif dest == "stdout":
        assert out == BODY
    else:
        assert out == b""
    if dest != "stdout":
        assert out == b""
    assert leftovers(tmp_path) == []
    # Only a sized body takes the splice path, and only when allowed; it
    # carries all but what came with the first read.
    if splice and path == "/sized":
        n = int(err.split(SPLICED)[0].split("* ")[-1])
        assert 0 < n <= len(BODY), err
        assert len(BODY) - n < 1024 * 1024, err
    else:
        assert SPLICED not in err


def truncated(origin, c, head):
    head_then(c, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY),
              [BODY[:200000]])
    return False


@pytest.mark.parametrize("dest", ["-o", "stdout", "devnull"])
def test_truncated_body_through_splice_fails(origin_factory, tmp_path, dest):  # noqa: F811
    o = origin_factory({"/t": truncated})
    (tmp_path / "keep.bin").write_bytes(b"old\n")
    args = {"-o": ["-o", "keep.bin"], "stdout": [], "devnull": ["-o", "/dev/null"]}[dest]
    rc, out, err = get(["-v"] + args + [o.url("/t")], tmp_path)
    assert rc == 18, err
    assert "connection closed before the end of the body" in err
    assert SPLICED in err           # the splice path saw the close
    assert (tmp_path / "keep.bin").read_bytes() == b"old\n"
    assert leftovers(tmp_path) == []
    if dest == "stdout":
        assert out == BODY[:200000]


def longer(origin, c, head):
    """Sends 7 bytes past its Content-Length, then closes."""
    head_then(c, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
              % len(BODY), [BODY + b"garbage"])
    return False


def test_splice_takes_no_byte_past_content_length(origin_factory, tmp_path):  # noqa: F811
    o = origin_factory({"/l": longer})
    rc, out, err = get(["-v", "-o", "l.bin", o.url("/l")], tmp_path)
    assert rc == 0, err
    assert SPLICED in err
    assert (tmp_path / "l.bin").read_bytes() == BODY


def test_keepalive_after_splice(origin_factory, tmp_path):  # noqa: F811
    o = origin_factory(dict(ROUTES))
    rc, out, err = get(["-v", o.url("/sized"), o.url("/sized"), o.url("/chunked")], tmp_path)
    assert rc == 0, err
    assert out == BODY * 3
    assert err.count(SPLICED) == 2
    assert o.connections == 1


def test_append_output_falls_back_to_writes(origin, tmp_path):
    """splice(2) refuses a file opened O_APPEND (a shell's >>): the bytes
    already in the pipe are taken back and written, nothing is lost."""
    dest = tmp_path / "log.bin"
    dest.write_bytes(b"before\n")
    with open(dest, "ab") as f:
        p = subprocess.run([PORTICO, "get", "-v", origin.url("/sized")], cwd=tmp_path,
                           stdout=f, stderr=subprocess.PIPE, timeout=RUN_TIMEOUT,
                           stdin=subprocess.DEVNULL)
    err = p.stderr.decode(errors="replace")
    assert not any(m in err for m in SANITIZER_MARKS), err
    assert p.returncode == 0, err
    assert SPLICED not in err
    assert dest.read_bytes() == b"before\n" + BODY


def test_full_output_is_a_write_error(origin, tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    rc, out, err = get(["-o", "/dev/full", origin.url("/sized")], tmp_path)
    assert rc == 23, err
    assert "No space left on device" in err


def trickle(origin, c, head):
    """A 200 KB body (under SO_RCVLOWAT) in 20 KB pieces 0.3 s apart: 3 s
    in all, each gap well under a 1 s read timeout."""
    piece = BODY[:20000]
    head_then(c, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(piece) * 10),
              [piece] * 10, delay=0.3)
    return True


def test_slow_body_is_not_a_stall(origin_factory, tmp_path):  # noqa: F811
    """Bytes the socket holds back below its low-water mark still count as
    progress when the read timeout comes."""
    o = origin_factory({"/s": trickle})
    rc, out, err = get(["-v", "--read-timeout", "1", "-o", "s.bin", o.url("/s")], tmp_path)
    assert rc == 0, err
    assert SPLICED in err
    assert (tmp_path / "s.bin").read_bytes() == BODY[:20000] * 10


def stall(origin, c, head):
    head_then(c, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY),
              [BODY[:100000]])
    time.sleep(4)
    return False


def test_stall_after_held_back_bytes_times_out(origin_factory, tmp_path):  # noqa: F811
    o = origin_factory({"/s": stall})
    rc, out, err = get(["-v", "--read-timeout", "1", o.url("/s")], tmp_path)
    assert rc == 28, err
    assert "no data for 1000 ms while reading the body" in err
    assert "100000 " + SPLICED in err
    assert out == BODY[:100000]
