"""portico xfer: file transfers over loopback and over a lossy veth link.

Every receiver listens on port 0 of its address and the test reads the port
from its "listening on" line. Namespaces, veth devices and files are
removed when a test ends, pass or fail.
"""
import hashlib
import os
import re
import subprocess
import uuid

import pytest

from conftest import PORTICO

LISTEN_RE = r"listening on (\S+):(\d+)"


def start_recv(spawn, outdir, host="127.0.0.1", extra=(), netns=None):
    args = ["xfer", "recv", "--listen", f"{host}:0", "--dir", str(outdir), *extra]
    if netns:
        p = spawn_in_ns(spawn, netns, args)
    else:
        p = spawn(args)
    m = p.wait_stderr(LISTEN_RE, timeout=10)
    return p, int(m.group(2))


def spawn_in_ns(spawn, ns, args):
    """Starts portico inside namespace ns (setns(2) through libc: Debian's
    Python 3.11 has no os.setns)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    path = f"/run/netns/{ns}"

    def enter():
        fd = os.open(path, os.O_RDONLY)
        if libc.setns(fd, 0x40000000) != 0:   # CLONE_NEWNET
            os._exit(127)
        os.close(fd)
    return spawn(args, preexec_fn=enter)


def send(files, host, port, extra=(), timeout=60, ns=None):
    cmd = [PORTICO, "xfer", "send", *extra, *[str(f) for f in files], f"{host}:{port}"]
    if ns:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def make_file(path, size):
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    return path


@pytest.mark.deadline(60)
def test_loopback_several_files(spawn, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    files = [make_file(src / "big.bin", 24 << 20), make_file(src / "small.txt", 1000),
             make_file(src / "empty", 0), make_file(src / "odd name é", 4097)]
    recv, port = start_recv(spawn, dst)
    rc, out, err = send(files, "127.0.0.1", port)
    assert rc == 0, err
    for f in files:
        got = dst / f.name
        assert got.exists(), f"{f.name} missing; stderr={err}"
        assert got.read_bytes() == f.read_bytes()
        assert f"{f.name} {f.stat().st_size} sha256:{sha(f)}" in recv.out.decode()
    assert not list(dst.glob("*.part"))


@pytest.mark.deadline(60)
def test_stats_trace(spawn, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    f = make_file(src / "f.bin", 4 << 20)
    csv = tmp_path / "trace.csv"
    recv, port = start_recv(spawn, dst)
    rc, _, err = send([f], "127.0.0.1", port, extra=["--stats", str(csv), "--cc", "newreno"])
    assert rc == 0, err
    rows = csv.read_text().splitlines()
    assert rows[0] == "ms,snd_una,snd_nxt,snd_wnd,cwnd,srtt_us,retrans_segs,inflight"
    last = rows[-1].split(",")
    assert int(last[1]) >= 4 << 20           # SND.UNA passed every byte
    una = [int(r.split(",")[1]) for r in rows[1:]]
    assert una == sorted(una) and len(rows) > 2
    # ... and `xfer plot` draws it: well-formed SVG with the window band and
    # the SND.UNA / SND.NXT lines, one point per row
    import xml.etree.ElementTree as ET
    svg = tmp_path / "a&b.svg"
    r = subprocess.run([PORTICO, "xfer", "plot", str(csv), "-o", str(svg)], timeout=20,
                       stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    lines = root.findall(ns + "polyline")
    assert len(lines) == 2 and len(root.findall(ns + "polygon")) == 1
    assert len(lines[0].get("points").split()) == len(rows) - 1
    bad = subprocess.run([PORTICO, "xfer", "plot", "/etc/hostname", "-o", str(svg)],
                         stderr=subprocess.PIPE, timeout=20)
    assert bad.returncode == 2 and b"not an xfer --stats trace" in bad.stderr


@pytest.mark.deadline(60)
def test_resume_sends_only_the_rest(spawn, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    f = make_file(src / "r.bin", 3 << 20)
    (dst / "r.bin.part").write_bytes(f.read_bytes()[: 2 << 20])
    csv = tmp_path / "t.csv"
    recv, port = start_recv(spawn, dst)
    rc, _, err = send([f], "127.0.0.1", port, extra=["--resume", "--stats", str(csv)])
    assert rc == 0, err
    assert (dst / "r.bin").read_bytes() == f.read_bytes()
    sent = int(csv.read_text().splitlines()[-1].split(",")[1])
    assert sent < (1 << 20) + 4096              # only the missing MiB went out


@pytest.mark.deadline(60)
def test_resume_verifies_kept_prefix_and_closes(spawn, tmp_path):
    # The receiver hashes the prefix it keeps, then the bytes as they come:
    # the digest it prints is the whole file's. The last file's FIN travels
    # with its digest, and a --once receiver still ends cleanly.
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    a = make_file(src / "a.bin", (1 << 20) + 333)
    b = make_file(src / "b.bin", (3 << 20) + 7)
    (dst / "b.bin.part").write_bytes(b.read_bytes()[: (2 << 20) + 5])
    recv, port = start_recv(spawn, dst, extra=["--once"])
    rc, _, err = send([a, b], "127.0.0.1", port, extra=["--resume"])
    assert rc == 0, err
    assert recv.wait(timeout=30) == 0, recv.err
    for f in (a, b):
        assert (dst / f.name).read_bytes() == f.read_bytes()
        assert f"{f.name} {f.stat().st_size} sha256:{sha(f)}" in recv.out.decode()
    assert not list(dst.glob("*.part"))


@pytest.mark.deadline(60)
def test_resume_corrupted_prefix_is_caught(spawn, tmp_path):
    # The .part holds the right number of bytes but one of them is wrong:
    # resuming after it must end in a mismatch, with neither the final name
    # nor the bad .part left behind; a fresh transfer then succeeds.
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    f = make_file(src / "c.bin", 2 << 20)
    prefix = bytearray(f.read_bytes()[: 1 << 20])
    prefix[123457] ^= 0x40
    (dst / "c.bin.part").write_bytes(bytes(prefix))
    recv, port = start_recv(spawn, dst)
    rc, _, err = send([f], "127.0.0.1", port, extra=["--resume"])
    assert rc == 5, err
    assert "digest mismatch" in err
    assert not (dst / "c.bin").exists()
    assert not (dst / "c.bin.part").exists()
    rc, _, err = send([f], "127.0.0.1", port, extra=["--resume"])
    assert rc == 0, err
    assert (dst / "c.bin").read_bytes() == f.read_bytes()


@pytest.mark.deadline(60)
def test_digest_mismatch_leaves_no_file(spawn, tmp_path):
    # A .part whose prefix differs from the file: resume trusts it, so the
    # whole-file digest the sender computed cannot match.
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    f = make_file(src / "m.bin", 1 << 20)
    (dst / "m.bin.part").write_bytes(os.urandom(1000))
    recv, port = start_recv(spawn, dst)
    rc, _, err = send([f], "127.0.0.1", port, extra=["--resume"])
    assert rc == 5, err
    assert "digest mismatch" in err
    assert not (dst / "m.bin").exists()
    assert not (dst / "m.bin.part").exists()


def test_refused(tmp_path):
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    f = make_file(tmp_path / "x", 10)
    rc, _, err = send([f], "127.0.0.1", port, extra=["--timeout", "5"], timeout=20)
    assert rc == 3
    assert "refused" in err


def test_timeout(tmp_path):
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # bound, never answers
    s.bind(("127.0.0.1", 0))
    try:
        f = make_file(tmp_path / "x", 10)
        rc, _, err = send([f], "127.0.0.1", s.getsockname()[1], extra=["--timeout", "1.5"],
                          timeout=20)
        assert rc == 3
        assert "timed out" in err
    finally:
        s.close()


@pytest.mark.parametrize("args,msg", [
    (["xfer"], "usage"),
    (["xfer", "push"], "unknown mode"),
    (["xfer", "send", "onlyone"], "send needs FILE"),
    (["xfer", "send", "/nonexistent/file", "127.0.0.1:9"], "No such file"),
    (["xfer", "send", "/etc", "127.0.0.1:9"], "not a regular file"),
    (["xfer", "send", "--cc", "vegas", "/etc/hostname", "127.0.0.1:9"], "unknown congestion"),
    (["xfer", "send", "--mss", "10", "/etc/hostname", "127.0.0.1:9"], "invalid --mss"),
    (["xfer", "send", "/etc/hostname", "127.0.0.1"], "port"),
    (["xfer", "recv", "--dir", "/nonexistent"], "--dir"),
    (["xfer", "recv", "extra"], "no arguments"),
])
def test_bad_arguments(args, msg):
    r = subprocess.run([PORTICO, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10)
    assert r.returncode == 2
    assert msg in r.stderr.decode()


def test_part_suffix_refused(tmp_path):
    f = make_file(tmp_path / "a.part", 10)
    rc, _, err = send([f], "127.0.0.1", 9)
    assert rc == 2 and ".part" in err


# ------------------------------------------------------- lossy veth link

def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture
def veth_pair():
    """Two namespaces joined by veth, offloads off; removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    tag = uuid.uuid4().hex[:6]
    a, b = f"xfera{tag}", f"xferb{tag}"
    va, vb = f"xfva{tag}", f"xfvb{tag}"
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
        sh("ip", "link", "set", va, "netns", a)
        sh("ip", "link", "set", vb, "netns", b)
        sh("ip", "-n", a, "addr", "add", "10.201.0.1/24", "dev", va)
        sh("ip", "-n", b, "addr", "add", "10.201.0.2/24", "dev", vb)
        for ns, dev in ((a, va), (b, vb)):
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


@pytest.mark.deadline(120)
@pytest.mark.parametrize("loss", [0.02, 0.10])
def test_veth_random_drop(spawn, tmp_path, veth_pair, loss):
    a, b = veth_pair
    # drop in both directions, in each namespace's INPUT chain
    for ns in (a, b):
        sh("ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-p", "udp", "-m",
           "statistic", "--mode", "random", "--probability", str(loss), "-j", "DROP")
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    files = [make_file(src / "one.bin", 6 << 20), make_file(src / "two.bin", 12345)]
    recv, port = start_recv(spawn, dst, host="10.201.0.2", netns=b, extra=["--once"])
    rc, _, err = send(files, "10.201.0.2", port, ns=a, timeout=100)
    assert rc == 0, err
    for f in files:
        assert (dst / f.name).read_bytes() == f.read_bytes()
    assert recv.wait(timeout=30) == 0
    dropped = subprocess.run(["ip", "netns", "exec", b, "iptables", "-L", "INPUT", "-v", "-x",
                              "-n"], stdout=subprocess.PIPE).stdout.decode()
    pk = int(re.search(r"^\s*(\d+)\s+\d+\s+DROP", dropped, re.M).group(1))
    assert pk > 0        # the link really lost packets
