"""`portico serve --tcp-congestion`: the listeners' TCP congestion control.

Checked on the server's own sockets with ss(8) (iproute2): the listener and
the connection it accepted name their controller in `ss -i` output.
The default (auto) is checked in a network namespace of the test's own whose
default controller is set to BBR: a listener on 127.0.0.1 moves to CUBIC, a
wildcard listener keeps BBR.
"""
import os
import re
import socket
import subprocess
import time
import uuid

import pytest

from serve_helpers import PORTICO, free_port, run_portico

BOOT = 5.0


def _ss_cc(port, listening, netns=None):
    """The congestion control named in `ss -i` for TCP sockets on local
    `port` (the listener, or the established server side)."""
    cmd = ["ss", "-tniH", "-l" if listening else "state", *([] if listening else ["established"]),
           f"sport = :{port}"]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True).stdout
    names = re.findall(r"^\s+(?:ts\s+)?(?:sack\s+)?(?:ecn\s+)?(?:ecnseen\s+)?([a-z0-9_]+)\s+",
                       out, re.M)
    return names, out


def _serve(args, tmp_path, port, netns=None):
    cmd = [PORTICO, "serve", "--quiet", "--workers", "1", *args, str(tmp_path)]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + BOOT
    while time.monotonic() < deadline and proc.poll() is None:
        names, _ = _ss_cc(port, True, netns)
        if names:
            return proc
        time.sleep(0.05)
    proc.kill()
    err = proc.communicate(timeout=10)[1]
    raise AssertionError(f"serve did not start: {err!r}")


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.communicate(timeout=10)


def test_bad_name_is_a_usage_error(tmp_path):
    rc, out, err = run_portico(["serve", "--tcp-congestion", "Cu bic", str(tmp_path)], tmp_path)
    assert rc == 2
    assert err == ("portico serve: invalid tcp-congestion 'Cu bic': expected auto or a kernel "
                   "name such as cubic\n")


def test_unknown_name_fails_at_start(tmp_path):
    port = free_port()
    rc, out, err = run_portico(["serve", "--listen", f"127.0.0.1:{port}", "--quiet",
                                "--tcp-congestion", "nosuchcc", str(tmp_path)], tmp_path)
    assert rc == 1
    assert err == ("portico serve: cannot use TCP congestion control 'nosuchcc': "
                   "not available in this kernel\n")


def test_named_controller_reaches_accepted_connections(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 100)
    port = free_port()
    proc = _serve(["--listen", f"127.0.0.1:{port}", "--tcp-congestion", "reno"], tmp_path, port)
    try:
        names, out = _ss_cc(port, True)
        assert names == ["reno"], out
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
            names, out = _ss_cc(port, False)
            assert names == ["reno"], out
    finally:
        _stop(proc)


def _can_use_bbr():
    avail = open("/proc/sys/net/ipv4/tcp_available_congestion_control").read().split()
    if "bbr" not in avail:
        subprocess.run(["modprobe", "tcp_bbr"], capture_output=True, timeout=10)
        avail = open("/proc/sys/net/ipv4/tcp_available_congestion_control").read().split()
    return "bbr" in avail and "cubic" in avail


@pytest.fixture
def bbr_netns():
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    if not _can_use_bbr():
        pytest.skip("this kernel has no tcp_bbr: the auto rule cannot be observed")
    ns = f"ptcc{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    try:
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["sysctl", "-q", "-w", "net.ipv4.tcp_congestion_control=bbr"]):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, timeout=10)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], timeout=10)


def _listener_cc(tmp_path, netns, listen, *extra):
    port = free_port()
    proc = _serve(["--listen", f"{listen}:{port}", *extra], tmp_path, port, netns)
    try:
        return _ss_cc(port, True, netns)
    finally:
        _stop(proc)


def test_auto_moves_loopback_listeners_off_bbr(tmp_path, bbr_netns):
    names, out = _listener_cc(tmp_path, bbr_netns, "127.0.0.1")
    assert names == ["cubic"], out
    # A wildcard listener takes clients from anywhere: the system's choice stays.
    names, out = _listener_cc(tmp_path, bbr_netns, "0.0.0.0")
    assert names == ["bbr"], out
    # A name given explicitly wins over auto, on loopback too.
    names, out = _listener_cc(tmp_path, bbr_netns, "127.0.0.1", "--tcp-congestion", "bbr")
    assert names == ["bbr"], out


# ------------------------------------------------ the FIN rides with the data

ETH_P_ALL = 0x0003


def _server_segments(cap, sport, dport):
    """(flags, payload length) of every IPv4 TCP segment from sport to dport
    that the packet socket on lo holds (each appears once per direction)."""
    out = []
    while True:
        try:
            frame, addr = cap.recvfrom(65535)
        except BlockingIOError:
            return out
        if addr[2] == socket.PACKET_OUTGOING:
            continue                        # the same packet comes in again
        ip = frame[14:]                     # lo has a 14-byte Ethernet header
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        total = int.from_bytes(ip[2:4], "big")
        tcp = ip[ihl:]
        if (int.from_bytes(tcp[0:2], "big"), int.from_bytes(tcp[2:4], "big")) != (sport, dport):
            continue
        doff = (tcp[12] >> 4) * 4
        out.append((tcp[13], total - ihl - doff))


@pytest.mark.parametrize("req", [
    b"GET /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /f HTTP/1.0\r\n\r\n",
    b"GET /f HTTP/1.1\r\n\r\n",                  # 400 (no Host), then close
])
def test_last_response_leaves_with_the_fin(tmp_path, req):
    """A response after which the connection closes goes out in the same
    segment as the FIN (MSG_MORE, then close()): one packet fewer for both
    ends. Checked on the wire with a packet socket on lo."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a packet socket")
    (tmp_path / "f").write_bytes(b"y" * 600)
    port = free_port()
    proc = _serve(["--listen", f"127.0.0.1:{port}"], tmp_path, port)
    cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        cap.bind(("lo", 0))
        cap.setblocking(False)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            cport = s.getsockname()[1]
            s.sendall(req)
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        assert got.startswith(b"HTTP/1.1 ")
        segs = _server_segments(cap, port, cport)
        FIN = 0x01
        data = [(f, n) for f, n in segs if n > 0]
        assert data, segs
        assert data[-1][0] & FIN, f"the last data segment has no FIN: {segs}"
        assert not [f for f, n in segs if f & FIN and n == 0], f"a bare FIN went out: {segs}"
    finally:
        cap.close()
        _stop(proc)


def test_close_response_survives_unread_pipelined_input(tmp_path):
    """A Connection: close answer held back for the FIN (MSG_MORE) must still
    reach the client when the client sent more that the server never reads:
    close() alone would reset the connection and drop the held bytes. The
    PUT's answer comes from a disk job, so the pipelined GET has arrived,
    unread, by then."""
    port = free_port()
    proc = _serve(["--listen", f"127.0.0.1:{port}", "--writable"], tmp_path, port)
    try:
        for i in range(50):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"PUT /x%d HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                          b"Connection: close\r\n\r\nhello" % i)
                s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                got = b""
                try:
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        got += chunk
                except ConnectionResetError:
                    pass
            assert got.startswith(b"HTTP/1.1 201 "), (i, got[:60])
            assert (tmp_path / f"x{i}").read_bytes() == b"hello"
    finally:
        _stop(proc)
