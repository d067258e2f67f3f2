"""Integration tests of `portico nc`: connect, listen, echo, UDP, errors,
signals. Helpers and fixtures are in conftest.py."""
import errno
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (
    assert_refused,
    connect,
    echo_roundtrip,
    fmt_addr,
    free_port,
    ipv6_available,
    proc_sockets,
    recv_exact,
    recv_until_eof,
    run_portico,
    start_listener,
)

PIPE = subprocess.PIPE
LOCAL = "127.0.0.1"
FATHER = b"I am your father"


def listen_py(host=LOCAL, kind=socket.SOCK_STREAM):
    """A python socket bound to a kernel-chosen port (listening for TCP)."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
    s.bind((host, 0))
    if kind == socket.SOCK_STREAM:
        s.listen(16)
    s.settimeout(5)
    return s, s.getsockname()[1]


def echo_server(spawn, *extra, host=LOCAL):
    return start_listener(spawn, lambda p: ["nc", "-l", *extra, "--echo", host, p], host=host)


# ------------------------------------------------ 1. the notes' exchange

def test_listener_prints_what_a_python_client_sends(spawn):
    lis, port = start_listener(spawn, lambda p: ["nc", "-l", LOCAL, p])
    with connect(port) as c:
        c.sendall(FATHER)
    assert lis.wait() == 0
    assert lis.out == FATHER
    assert lis.err == b""


def test_listener_prints_what_a_portico_client_sends(spawn):
    # The listener's stdin stays open (as a terminal would), so it is the
    # client's half-close that ends the exchange.
    lis, port = start_listener(spawn, lambda p: ["nc", "-l", LOCAL, p], stdin=PIPE)
    cli = spawn(["nc", LOCAL, port], stdin=PIPE)
    cli.send(FATHER)
    cli.close_stdin()
    assert lis.wait() == 0
    assert lis.out == FATHER
    assert lis.err == b""
    assert cli.wait() == 0
    assert cli.out == b""
    assert cli.err == b""


# ------------------------------------------ 2. 1,000 concurrent echo clients

@pytest.mark.deadline(40)
@pytest.mark.parametrize("workers", [[], ["--workers", "1"], ["--workers", "4"]],
                         ids=["default-workers", "1-worker", "4-workers"])
def test_echo_server_1000_concurrent_clients(spawn, workers):
    n_clients, size = 1000, 64 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 3 * n_clients + 256
    if soft < need:
        assert hard >= need or hard == resource.RLIM_INFINITY, f"RLIMIT_NOFILE hard limit {hard} < {need}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    # The child inherits the raised limit.
    srv, port = echo_server(spawn, "-k", *workers)
    t0 = time.monotonic()

    class Client:
        __slots__ = ("sock", "data", "sent", "got")

    sel = selectors.DefaultSelector()
    clients = []
    try:
        # Phase 1: every client connects before any sends a byte.
        for _ in range(n_clients):
            c = Client()
            c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.sock.setblocking(False)
            c.data = os.urandom(size)
            c.sent = c.got = 0
            rc = c.sock.connect_ex((LOCAL, port))
            assert rc in (0, errno.EINPROGRESS), os.strerror(rc)
            clients.append(c)
            sel.register(c.sock, selectors.EVENT_WRITE, c)
        connected = 0
        while connected < n_clients:
            assert time.monotonic() - t0 < 20, f"only {connected} clients connected"
            for key, _ in sel.select(timeout=1):
                err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                assert err == 0, f"connect: {os.strerror(err)}"
                sel.unregister(key.fileobj)
                connected += 1
        assert connected == n_clients
        assert all(c.sent == 0 for c in clients)

        # Phase 2: all of them send 64 KiB and read it back, at once.
        for c in clients:
            sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        done = 0
        while done < n_clients:
            assert time.monotonic() - t0 < 30, f"only {done} of {n_clients} echoes complete"
            for key, ev in sel.select(timeout=1):
                c = key.data
                if ev & selectors.EVENT_WRITE and c.sent < size:
                    try:
                        c.sent += c.sock.send(c.data[c.sent:c.sent + 65536])
                    except BlockingIOError:
                        pass
                    if c.sent == size:
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                if ev & selectors.EVENT_READ:
                    try:
                        chunk = c.sock.recv(65536)
                    except BlockingIOError:
                        continue
                    assert chunk, f"server closed a client after {c.got} of {size} bytes"
                    assert chunk == c.data[c.got:c.got + len(chunk)], "echoed bytes differ"
                    c.got += len(chunk)
                    assert c.got <= c.sent
                    if c.got == size:
                        sel.unregister(c.sock)  # stays open until all are done
                        done += 1
        elapsed = time.monotonic() - t0
        assert elapsed < 30
        assert all(c.got == size for c in clients)

        # None was closed: the server holds all 1000 connections at once.
        # (/proc/net/tcp is read in chunks while other sockets come and go:
        # a reading may be off, so a few are allowed.)
        counts = []
        for _ in range(20):
            counts.append(sum(1 for lport, _, state in proc_sockets(srv.pid)
                              if lport == port and state == "01"))
            if counts[-1] == n_clients:
                break
            time.sleep(0.05)
        assert counts[-1] == n_clients, counts

        # Still alive, and still echoing.
        assert srv.poll() is None
        assert echo_roundtrip(port, b"still here\n") == b"still here\n"
    finally:
        sel.close()
        for c in clients:
            c.sock.close()
    assert echo_roundtrip(port, b"and after they left\n") == b"and after they left\n"
    assert srv.poll() is None


# ------------------------------------------------------------ 3. UDP echo

@pytest.mark.parametrize("host", [LOCAL, "::1"])
def test_udp_echo_1_and_65507_byte_datagrams(spawn, host):
    if host == "::1" and not ipv6_available():
        pytest.skip("no IPv6 loopback on this machine")
    srv, port = start_listener(spawn, lambda p: ["nc", "-u", "-l", "--echo", "-v", host, p],
                               host=host, udp=True)
    srv.wait_stderr(rf"^portico nc: listening on {re.escape(fmt_addr(host, port))} "
                    rf"\(udp, \d+ workers\)$")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as c:
        c.settimeout(5)
        for payload in (b"x", os.urandom(65507), b"\n", os.urandom(1000)):
            c.sendto(payload, (host, port))
            data, addr = c.recvfrom(70000)
            assert len(data) == len(payload)
            assert data == payload
            assert addr[:2] == (host, port)
    assert srv.poll() is None


# ---------------------------------------------------------- 4. UDP client

def test_udp_client_sends_one_datagram_per_line_and_prints_replies(spawn):
    srv, port = listen_py(kind=socket.SOCK_DGRAM)
    got = []

    def serve():
        for _ in range(2):
            data, addr = srv.recvfrom(70000)
            got.append(data)
            srv.sendto(b"re:" + data.upper(), addr)

    with srv:
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        cli = spawn(["nc", "-u", "-w", "1", LOCAL, port], stdin=PIPE)
        t0 = time.monotonic()
        cli.send(b"a\nbb\n")
        cli.close_stdin()
        t.join(5)
        assert got == [b"a\n", b"bb\n"]
        assert cli.wait() == 0
        elapsed = time.monotonic() - t0
        assert cli.out == b"re:A\nre:BB\n"
        assert cli.err == b""
        # -w 1: it waited about a second for replies after stdin ended.
        assert 0.8 < elapsed < 4, elapsed
        # Nothing else was sent (no empty datagram at the end).
        srv.setblocking(False)
        with pytest.raises(BlockingIOError):
            srv.recvfrom(70000)


def test_udp_client_largest_line_is_one_datagram(spawn):
    srv, port = listen_py(kind=socket.SOCK_DGRAM)
    with srv:
        line = b"x" * 65506 + b"\n"  # 65507 bytes: the largest IPv4 payload
        rc, out, err = run_portico(["nc", "-u", "-w", "0.2", LOCAL, port], input=line)
        assert (rc, out, err) == (0, b"", b"")
        data, _ = srv.recvfrom(70000)
        assert data == line


@pytest.mark.parametrize("tail", [b"", b"\n"], ids=["at-eof", "with-newline"])
def test_udp_client_line_too_long(tail):
    srv, port = listen_py(kind=socket.SOCK_DGRAM)
    with srv:
        rc, out, err = run_portico(["nc", "-u", "-w", "0.2", LOCAL, port],
                                   input=b"x" * 70000 + tail)
        assert (rc, out, err.decode()) == (
            1, b"", "portico nc: a line longer than 65507 bytes does not fit in one datagram\n")
        srv.setblocking(False)
        with pytest.raises(BlockingIOError):
            srv.recvfrom(70000)


def test_udp_client_no_listener():
    port = free_port(udp=True)
    rc, out, err = run_portico(["nc", "-u", "-w", "1", LOCAL, port], input=b"anyone?\n")
    assert (rc, out, err.decode()) == (
        1, b"", f"portico nc: no listener at 127.0.0.1:{port}: Connection refused\n")


# ------------------------------------------------------------ 5. half-close

def test_client_half_closes_on_stdin_eof_and_prints_the_reply(spawn):
    srv, port = listen_py()
    with srv:
        cli = spawn(["nc", LOCAL, port], stdin=PIPE)
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(5)
            payload = os.urandom(300_000)
            cli.send_in_thread(payload, close=True)
            assert recv_until_eof(conn) == payload  # data, then EOF
            # The client is still there, reading.
            time.sleep(0.3)
            assert cli.poll() is None
            reply = b"Nooooo!\n" * 1000
            conn.sendall(reply)  # the connection is still open for writing
        assert cli.wait() == 0
    assert cli.out == reply
    assert cli.err == b""


def test_echo_server_half_close_echoes_everything_then_eof(spawn):
    srv, port = echo_server(spawn, "-k")
    payload = os.urandom(1 << 20)
    with connect(port) as c:
        def writer():
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        assert recv_until_eof(c) == payload
        t.join(5)
    assert srv.poll() is None


# ----------------------------------------------------------------- 6. -v

def test_verbose_client_shows_its_ephemeral_port(spawn):
    srv, port = listen_py()
    with srv:
        cli = spawn(["nc", "-v", LOCAL, port], stdin=PIPE)
        conn, (peer_host, peer_port) = srv.accept()
        with conn:
            conn.settimeout(5)
            cli.close_stdin()
            assert recv_until_eof(conn) == b""
        assert cli.wait() == 0
    assert peer_host == LOCAL
    assert f"from 127.0.0.1:{peer_port}" in cli.err.decode()
    assert cli.err_lines() == [
        f"portico nc: connected to 127.0.0.1:{port} from 127.0.0.1:{peer_port} (tcp)",
        "portico nc: connection closed by peer",
    ]
    assert cli.out == b""


def test_verbose_listener_shows_the_client_port(spawn):
    lis, port = start_listener(spawn, lambda p: ["nc", "-l", "-v", LOCAL, p])
    lis.wait_stderr(rf"^portico nc: listening on 127\.0\.0\.1:{port} \(tcp\)$")
    with connect(port) as c:
        client_port = c.getsockname()[1]
        c.sendall(b"hi\n")
    assert lis.wait() == 0
    assert lis.out == b"hi\n"
    err = lis.err.decode()
    assert f"connection from 127.0.0.1:{client_port}" in err
    assert lis.err_lines() == [
        f"portico nc: listening on 127.0.0.1:{port} (tcp)",
        f"portico nc: connection from 127.0.0.1:{client_port} to 127.0.0.1:{port}",
        "portico nc: connection closed by peer",
    ]


# --------------------------------------------------------------- 7. errors

def test_connection_refused():
    port = free_port()
    rc, out, err = run_portico(["nc", LOCAL, port])
    assert (rc, out, err.decode()) == (
        1, b"", f"portico nc: connect to 127.0.0.1:{port}: Connection refused\n")


def test_unknown_host():
    rc, out, err = run_portico(["nc", "nosuch.invalid", "80"])
    assert rc == 1
    assert out == b""
    lines = err.decode().splitlines(keepends=True)
    assert len(lines) == 1, err
    assert lines[0].startswith("portico nc: cannot resolve 'nosuch.invalid': ")
    assert lines[0].endswith("\n") and len(lines[0]) > len("portico nc: cannot resolve 'nosuch.invalid': \n")


@pytest.mark.parametrize("extra", [[], ["--echo"], ["-k", "--echo"], ["-k"]],
                         ids=["relay", "echo", "echo-k", "relay-k"])
def test_listen_address_in_use_by_a_python_socket(extra):
    holder, port = listen_py()
    with holder:
        rc, out, err = run_portico(["nc", "-l", *extra, LOCAL, port])
    assert (rc, out, err.decode()) == (
        1, b"", f"portico nc: listen on 127.0.0.1:{port}: Address already in use\n")


def test_udp_listen_address_in_use():
    holder, port = listen_py(kind=socket.SOCK_DGRAM)
    with holder:
        for extra in ([], ["--echo"]):
            rc, out, err = run_portico(["nc", "-u", "-l", *extra, LOCAL, port])
            assert (rc, out, err.decode()) == (
                1, b"", f"portico nc: listen on 127.0.0.1:{port}: Address already in use\n")


def test_second_echo_server_on_the_same_port_fails(spawn):
    first, port = echo_server(spawn, "-k")
    rc, out, err = run_portico(["nc", "-l", "-k", "--echo", LOCAL, port])
    assert (rc, out, err.decode()) == (
        1, b"", f"portico nc: listen on 127.0.0.1:{port}: Address already in use\n")
    # The first one still has the port, and all of it.
    assert first.poll() is None
    for i in range(8):
        msg = f"client {i}\n".encode()
        assert echo_roundtrip(port, msg) == msg


@pytest.mark.parametrize("args", [
    ["nc", LOCAL, "{}"],
    ["nc", "-l", LOCAL, "{}"],
    ["nc", "-l", "--", "{}"],
    ["nc", "-u", LOCAL, "{}"],
], ids=["connect", "listen", "listen-any", "udp"])
@pytest.mark.parametrize("bad", ["0", "65536", "abc", "", "-1", "99999999999", "80x"])
def test_invalid_port(args, bad):
    rc, out, err = run_portico([a.replace("{}", bad) for a in args])
    assert (rc, out, err.decode()) == (2, b"", f"portico nc: invalid port '{bad}': must be 1-65535\n")


@pytest.mark.parametrize("args,message", [pytest.param(a, m, id=" ".join(a) or "no-args") for a, m in [
    (["--foo"], "unknown option '--foo' (see portico nc --help)"),
    (["--foo", LOCAL, "80"], "unknown option '--foo' (see portico nc --help)"),
    (["-x"], "unknown option '-x' (see portico nc --help)"),
    (["-x", LOCAL, "80"], "unknown option '-x' (see portico nc --help)"),
    (["-lx", "80"], "unknown option '-x' (see portico nc --help)"),
    ([], "missing HOST and PORT (see portico nc --help)"),
    ([LOCAL, "80", "81"], "too many arguments (see portico nc --help)"),
    (["-l"], "-l takes [HOST] PORT (see portico nc --help)"),
    (["-l", "a", "80", "81"], "-l takes [HOST] PORT (see portico nc --help)"),
    (["-k", LOCAL, "80"], "-k needs -l"),
    (["--echo", LOCAL, "80"], "--echo needs -l"),
    (["-w", "0", LOCAL, "80"], "invalid timeout '0': expected seconds > 0"),
    (["-w", "soon", LOCAL, "80"], "invalid timeout 'soon': expected seconds > 0"),
    (["--shutdown-timeout", "-1", "-l", "80"], "invalid shutdown timeout '-1': expected seconds > 0"),
    (["--workers", "0", "-l", "80"], "invalid worker count '0': expected 1-256"),
    (["--workers", "257", "-l", "80"], "invalid worker count '257': expected 1-256"),
    (["--log-level", "loud", LOCAL, "80"],
     "invalid log level 'loud': expected error, warn, info or debug"),
    (["--echo=1", "-l", "80"], "unknown option '--echo=1' (see portico nc --help)"),
    (["--help=3"], "unknown option '--help=3' (see portico nc --help)"),
    # An option that needs a value, given none.
    (["-w"], "option '-w' needs a value (see portico nc --help)"),
    (["--workers"], "option '--workers' needs a value (see portico nc --help)"),
    (["--shutdown-timeout"], "option '--shutdown-timeout' needs a value (see portico nc --help)"),
]])
def test_usage_errors(args, message):
    rc, out, err = run_portico(["nc", *args])
    assert (rc, out, err.decode()) == (2, b"", f"portico nc: {message}\n")


def test_nc_help():
    for flag in ("--help", "-h"):
        rc, out, err = run_portico(["nc", flag])
        assert rc == 0
        assert err == b""
        text = out.decode()
        assert text.startswith(
            "usage: portico nc [OPTIONS] HOST PORT           connect\n"
            "       portico nc -l [OPTIONS] [HOST] PORT      listen\n")
        for opt in ("-l ", "-k ", "--echo", "-u ", "-4, -6", "-v ", "-w SECS", "--workers N",
                    "--shutdown-timeout SECS", "--log-level L", "--log-file F", "-h, --help"):
            assert f"\n  {opt}" in text or f"\n      {opt}" in text, opt
        assert "default 2 s" in text and "default 5 s" in text
        assert text.endswith("exit status: 0 done, 1 network or system error, 2 bad usage\n")


def test_portico_help_and_bad_commands():
    rc, out, err = run_portico(["--help"])
    assert rc == 0 and err == b""
    text = out.decode()
    assert text.startswith("usage: portico COMMAND [OPTIONS] [ARGS]\n")
    assert "\n  nc         TCP/UDP sockets from the shell: connect, listen, echo\n" in text

    rc, out, err = run_portico([])
    assert rc == 2 and out == b""
    assert err.decode() == text  # the same usage, on stderr

    rc, out, err = run_portico(["frobnicate"])
    assert (rc, out, err.decode()) == (
        2, b"", "portico: unknown command 'frobnicate' (see 'portico --help')\n")
    rc, out, err = run_portico(["--frob"])
    assert (rc, out, err.decode()) == (
        2, b"", "portico: unknown option '--frob' (see 'portico --help')\n")


# ---------------------------------------------------------------- 8. SIGTERM

def test_sigterm_with_clients_connected_exits_cleanly_after_shutdown_timeout(spawn):
    srv, port = echo_server(spawn, "-k", "--shutdown-timeout", "1")
    clients = [connect(port) for _ in range(5)]
    try:
        for i, c in enumerate(clients):
            msg = f"hello from {i}\n".encode()
            c.sendall(msg)
            assert recv_exact(c, len(msg)) == msg
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        # A client mid-exchange still gets its echo during the grace time.
        clients[0].sendall(b"after SIGTERM\n")
        assert recv_exact(clients[0], 14) == b"after SIGTERM\n"
        assert srv.wait(timeout=3) == 0
        elapsed = time.monotonic() - t0
        # It waited for the open connections (1 s), not more.
        assert 0.5 < elapsed < 3, elapsed
        # The clients were closed at the timeout.
        for c in clients:
            assert recv_until_eof(c) == b""
    finally:
        for c in clients:
            c.close()
    assert srv.out == b""
    assert srv.err == b""
    assert_refused(port)


def test_sigterm_exits_as_soon_as_the_last_client_closes(spawn):
    srv, port = echo_server(spawn, "-k", "--shutdown-timeout", "10")
    clients = [connect(port) for _ in range(3)]
    try:
        for c in clients:
            c.sendall(b"ping")
            assert recv_exact(c, 4) == b"ping"
        srv.signal(signal.SIGTERM)
        time.sleep(0.3)
        # Draining: alive for its clients, closed to new ones.
        assert srv.poll() is None
        assert_refused(port)
        clients[1].sendall(b"still served")
        assert recv_exact(clients[1], 12) == b"still served"
    finally:
        t0 = time.monotonic()
        for c in clients:
            c.close()
    assert srv.wait(timeout=3) == 0
    assert time.monotonic() - t0 < 2
    assert srv.err == b""


def test_sigterm_idle_echo_server_exits_at_once(spawn):
    srv, port = echo_server(spawn, "-k", "--shutdown-timeout", "10")
    assert echo_roundtrip(port, b"x") == b"x"
    time.sleep(0.1)  # that client is gone
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    assert srv.wait(timeout=3) == 0
    assert time.monotonic() - t0 < 1.5
    assert srv.err == b""
    assert_refused(port)


def test_sigterm_relay_listener_exits_0(spawn):
    lis, port = start_listener(spawn, lambda p: ["nc", "-l", LOCAL, p], stdin=PIPE)
    with connect(port) as c:
        c.sendall(b"partial")
        end = time.monotonic() + 5
        while lis.out != b"partial" and time.monotonic() < end:
            time.sleep(0.01)
        assert lis.out == b"partial"
        lis.signal(signal.SIGTERM)
        assert lis.wait(timeout=3) == 0
    assert lis.out == b"partial"
    assert lis.err == b""


# --------------------------------------------------------------------- 9. -k

def test_echo_with_k_serves_sequential_clients(spawn):
    srv, port = echo_server(spawn, "-k")
    for i in range(2):
        msg = f"client {i}: ".encode() + os.urandom(5000)
        assert echo_roundtrip(port, msg) == msg
        time.sleep(0.1)
        assert srv.poll() is None
    assert srv.poll() is None


def test_relay_listener_with_k_serves_sequential_clients(spawn):
    lis, port = start_listener(spawn, lambda p: ["nc", "-l", "-k", LOCAL, p])
    for i in range(3):
        with connect(port) as c:
            c.sendall(f"client {i}\n".encode())
            assert recv_until_eof(c) == b""  # stdin is empty: half-closed
        end = time.monotonic() + 5
        while lis.out.count(b"\n") < i + 1 and time.monotonic() < end:
            time.sleep(0.01)
        assert lis.poll() is None
    assert lis.out == b"client 0\nclient 1\nclient 2\n"
    lis.signal(signal.SIGTERM)
    assert lis.wait(timeout=3) == 0
    assert lis.err == b""


def test_echo_without_k_ends_after_the_first_client(spawn):
    srv, port = echo_server(spawn)
    msg = os.urandom(10000)
    assert echo_roundtrip(port, msg) == msg
    assert srv.wait(timeout=3) == 0
    assert srv.out == b""
    assert srv.err == b""
    assert_refused(port)


# ------------------------------------------------------- 10. stdin is a file

def test_client_stdin_from_a_regular_file(spawn, tmp_path):
    srv, port = echo_server(spawn, "-k")
    data = os.urandom(1 << 20)
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        cli = spawn(["nc", LOCAL, port], stdin=f)
    assert cli.wait(timeout=10) == 0
    assert len(cli.out) == len(data)
    assert cli.out == data
    assert cli.err == b""
    assert srv.poll() is None
