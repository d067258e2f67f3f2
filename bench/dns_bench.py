"""bench/dns_bench.py - the body of bench/dns.sh (see there): portico
resolver against unbound over the offline nsd hierarchy, dnsperf for
cache hits, a timed client for cold resolutions. Every process it starts
is stopped by PID; the hierarchy's and unbound's files are removed."""
import os
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from dns_hierarchy import Hierarchy, unbound_conf  # noqa: E402

PORTICO = os.environ.get("PORTICO", os.path.join(REPO, "build", "portico"))
SERVER_CPU = os.environ.get("SERVER_CPU", "0")
CLIENT_CPU = os.environ.get("CLIENT_CPU", "1")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "5"))
SAMPLES = int(os.environ.get("SAMPLES", "21"))

def free_port():
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def query(name, qtype=1, qid=None):
    q = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".") if x) + b"\0"
    qid = random.randrange(65536) if qid is None else qid
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1) + q + struct.pack("!HH", qtype, 1) + \
        b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)


def ask(port, name, qtype=1, tcp=False, timeout=5.0):
    """One query; returns (seconds, rcode, ancount)."""
    q = query(name, qtype)
    t0 = time.perf_counter()
    if tcp:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(q)) + q)
            n = struct.unpack("!H", s.recv(2))[0]
            data = b""
            while len(data) < n:
                chunk = s.recv(n - len(data))
                if not chunk:
                    raise RuntimeError("short TCP answer")
                data += chunk
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(q, ("127.0.0.1", port))
            data = s.recv(65535)
    dt = time.perf_counter() - t0
    return dt, data[3] & 0xf, struct.unpack("!H", data[6:8])[0], data[2] & 0x02


class Server:
    def __init__(self, kind, hints, tmp):
        self.kind, self.hints, self.tmp = kind, hints, tmp

    def start(self):
        for _ in range(5):
            self.port = free_port()
            if self.kind == "portico":
                cmd = [PORTICO, "resolver", "--listen", f"127.0.0.1:{self.port}", "--workers",
                       "1", "--root-hints", self.hints, "--quiet"]
            else:
                conf = os.path.join(self.tmp, "unbound.conf")
                with open(conf, "w") as f:
                    f.write(unbound_conf(self.port, self.tmp, self.hints,
                                         "  verbosity: 0\n  msg-cache-size: 64m\n"
                                         "  rrset-cache-size: 64m\n"))
                cmd = ["unbound", "-d", "-c", conf]
            self.p = subprocess.Popen(["taskset", "-c", SERVER_CPU, *cmd],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            end = time.monotonic() + 10
            while self.p.poll() is None and time.monotonic() < end:
                try:
                    # The root's NS set: primes unbound, asks no delegation.
                    ask(self.port, ".", 2, timeout=0.2)
                    return self
                except OSError:
                    time.sleep(0.02)
            self.stop()
        raise RuntimeError(f"{self.kind} does not start")

    def cpu(self):
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait(timeout=5)


HIT_NAMES = [("www.example.com", "A"), ("mail.example.com", "MX"), ("txt.example.com", "TXT"),
             ("alias.example.com", "A"), ("www.example.com", "AAAA"), ("b.example.net", "A")]


def cache_hits(srv, qfile):
    for name, t in HIT_NAMES:
        ask(srv.port, name, {"A": 1, "MX": 15, "TXT": 16, "AAAA": 28}[t])
    c0 = srv.cpu()
    out = subprocess.run(["timeout", str(DURATION + 30), "taskset", "-c", CLIENT_CPU, "dnsperf",
                          "-s", "127.0.0.1", "-p", str(srv.port), "-d", qfile, "-l",
                          str(DURATION), "-c", "8", "-q", "500", "-T", "1"],
                         capture_output=True, text=True, check=True).stdout
    c1 = srv.cpu()
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out)[1])
    lost = re.search(r"Queries lost:\s+(\d+)", out)[1]
    return qps, (c1 - c0) / DURATION * 100, int(lost)


def cold_sample(kind, hints, tmp, name, qtype, tcp, warm):
    """ms of one resolution on a fresh server whose code paths were first
    exercised by walks to example.net (a TXT set over TCP too), so that a
    first touch of memory is not what is timed, but that knows nothing of
    com. or example.com.; after `warm` too when given."""
    srv = Server(kind, hints, tmp).start()
    try:
        ask(srv.port, "b.example.net", 1)
        ask(srv.port, "big.example.net", 16, tcp=True)
        if warm:
            ask(srv.port, *warm)
        dt, rcode, an, tc = ask(srv.port, name, qtype, tcp=tcp)
        return dt * 1000
    finally:
        srv.stop()


def cold(hints, tmp, name, qtype, tcp=False, warm=None):
    """Medians (portico, unbound) of SAMPLES cold resolutions each,
    alternating the two; each sample asks a new name (the {} in `name`)."""
    got = {"portico": [], "unbound": []}
    for i in range(SAMPLES):
        for kind in ("portico", "unbound") if i % 2 == 0 else ("unbound", "portico"):
            got[kind].append(cold_sample(kind, hints, tmp, name.format(i), qtype, tcp, warm))
    return statistics.median(got["portico"]), statistics.median(got["unbound"])


def main():
    h = Hierarchy().start()
    tmp = tempfile.mkdtemp(prefix="portico-dnsbench-")
    try:
        qfile = os.path.join(tmp, "queries")
        with open(qfile, "w") as f:
            f.write("".join(f"{n} {t}\n" for n, t in HIT_NAMES))
        rows = {"portico": [], "unbound": []}
        for r in range(ROUNDS):
            for kind in ("portico", "unbound") if r % 2 == 0 else ("unbound", "portico"):
                srv = Server(kind, h.hints, tmp).start()
                try:
                    rows[kind].append(cache_hits(srv, qfile))
                finally:
                    srv.stop()
                qps, cpu, lost = rows[kind][-1]
                print(f"  round {r + 1} {kind:8s} {qps:12,.0f} q/s  server CPU {cpu:5.1f}%  "
                      f"lost {lost}", flush=True)
        lat = {}
        cases = [
            ("CNAME chain, root -> com -> example.com", "a.example.com", 1, False, None),
            ("NXDOMAIN, root -> com -> example.com", "nope.example.com", 1, False, None),
            ("TXT that needs TCP (2.4 kB), over TCP", "big.example.com", 16, True, None),
            ("miss, delegations cached", "n{}.w.example.com", 1, False,
             ("www.example.com", 1)),
        ]
        for label, name, qtype, tcp, warm in cases:
            lat[label] = cold(h.hints, tmp, name, qtype, tcp, warm)
        print()
        print("| measure | portico | unbound | portico/unbound |")
        print("|---|---|---|---|")
        pq = statistics.median(x[0] for x in rows["portico"])
        uq = statistics.median(x[0] for x in rows["unbound"])
        pc = statistics.median(x[1] for x in rows["portico"])
        uc = statistics.median(x[1] for x in rows["unbound"])
        print(f"| cache hits, q/s (median of {ROUNDS}) | {pq:,.0f} | {uq:,.0f} | {pq / uq:.2f}× |")
        print(f"| — resolver CPU share | {pc:.0f}% | {uc:.0f}% | |")
        print(f"| — CPU µs per query | {pc / 100 * 1e6 / pq:.2f} | {uc / 100 * 1e6 / uq:.2f} | "
              f"{(pc / pq) / (uc / uq):.2f} |")
        for label, *_ in cases:
            p, u = lat[label]
            print(f"| cold: {label}, ms (median of {SAMPLES}) | {p:.3f} | {u:.3f} | "
                  f"{p / u:.2f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        h.stop()


if __name__ == "__main__":
    main()
