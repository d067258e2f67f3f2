"""An offline DNS hierarchy for the DNS tests and bench/dns.sh: one nsd per
zone, each on its own 127.53.N.x address (port 53, so root), started in
the foreground and stopped by PID; every file in one temporary directory
that is removed at the end.

    .             127.53.N.1   delegates com. and net. with glue
    com.          127.53.N.2   delegates example.com. (glue), noglue.com.
                               (its server ns.example.net., no glue)
    net.          127.53.N.4   delegates example.net. (glue)
    example.com.  127.53.N.3   www A, mail MX, txt TXT, alias CNAME www,
                               cross CNAME b.example.net., chain a->b->c->www,
                               big: a TXT set of about 2.4 kB (TC, then TCP),
                               *.w: a wildcard A (fresh names for benches)
    example.net.  127.53.N.5   b A, ns A, and noglue.com. too
                               (www.noglue.com A)

N is picked at random per hierarchy, so that two runs at once (plain and
SAN builds, say) do not meet. Run as a script, it starts the hierarchy,
prints the root hints path and the base address, and waits for SIGTERM.
"""
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

NSD = shutil.which("nsd") or "/usr/sbin/nsd"

BIG_TXT_COUNT = 24
BIG_TXT_LEN = 100


def big_txt_strings():
    return [("%02d" % i) + "x" * (BIG_TXT_LEN - 2) for i in range(BIG_TXT_COUNT)]


def _soa(zone):
    return (f"{zone} 3600 IN SOA ns.{zone if zone != '.' else 'root.'} "
            f"hostmaster.invalid. 1 3600 600 86400 300")


def zones(base):
    """Zone texts, by (zone, last octet of its server)."""
    ip = lambda n: f"{base}.{n}"  # noqa: E731
    big = "\n".join(f'big.example.com. 3600 IN TXT "{s}"' for s in big_txt_strings())
    return {
        (".", 1): f"""
$TTL 86400
{_soa('.')}
. 86400 IN NS a.root.
a.root. 86400 IN A {ip(1)}
com. 86400 IN NS a.gtld.com.
a.gtld.com. 86400 IN A {ip(2)}
net. 86400 IN NS a.gtld.net.
a.gtld.net. 86400 IN A {ip(4)}
""",
        ("com.", 2): f"""
$TTL 86400
{_soa('com.')}
com. IN NS a.gtld.com.
a.gtld.com. IN A {ip(2)}
example.com. 86400 IN NS ns1.example.com.
ns1.example.com. 86400 IN A {ip(3)}
noglue.com. 86400 IN NS ns.example.net.
""",
        ("net.", 4): f"""
$TTL 86400
{_soa('net.')}
net. IN NS a.gtld.net.
a.gtld.net. IN A {ip(4)}
example.net. 86400 IN NS ns.example.net.
ns.example.net. 86400 IN A {ip(5)}
""",
        ("example.com.", 3): f"""
$TTL 3600
{_soa('example.com.')}
example.com. IN NS ns1.example.com.
ns1.example.com. IN A {ip(3)}
www.example.com. IN A 192.0.2.80
www.example.com. IN AAAA 2001:db8::80
mail.example.com. IN MX 10 mx.example.com.
mx.example.com. IN A 192.0.2.25
txt.example.com. IN TXT "v=spf1 -all"
alias.example.com. IN CNAME www.example.com.
cross.example.com. IN CNAME b.example.net.
a.example.com. IN CNAME b.example.com.
b.example.com. IN CNAME c.example.com.
c.example.com. IN CNAME www.example.com.
*.w.example.com. IN A 192.0.2.7
{big}
""",
        ("example.net.", 5): f"""
$TTL 3600
{_soa('example.net.')}
example.net. IN NS ns.example.net.
ns.example.net. IN A {ip(5)}
b.example.net. IN A 192.0.2.98
{big.replace("example.com.", "example.net.")}
""",
        ("noglue.com.", 5): f"""
$TTL 3600
{_soa('noglue.com.')}
noglue.com. IN NS ns.example.net.
www.noglue.com. IN A 192.0.2.99
""",
    }


NSD_CONF = """server:
  ip-address: {addr}
  port: 53
  username: ""
  chroot: ""
  zonesdir: "{dir}"
  pidfile: "{dir}/nsd-{n}.pid"
  database: ""
  zonelistfile: "{dir}/zl-{n}"
  xfrdfile: "{dir}/xfrd-{n}.state"
  logfile: "{dir}/nsd-{n}.log"
  server-count: 1
  verbosity: 1
  hide-version: yes
  refuse-any: no
  minimal-responses: no
  round-robin: no
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
"""


UNBOUND_CONF = """server:
  interface: 127.0.0.1@{port}
  port: {port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: "{d}/unbound.pid"
  root-hints: "{hints}"
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  num-threads: 1
  use-syslog: no
  logfile: "{d}/unbound.log"
  module-config: "iterator"
  qname-minimisation: no
  do-ip6: no
  minimal-responses: no
{extra}remote-control:
  control-enable: no
"""


def unbound_conf(port, d, hints, extra=""):
    """unbound.conf for a peer resolver over the hierarchy: one thread, the
    iterator alone (no DNSSEC), no QNAME minimisation, files in d."""
    return UNBOUND_CONF.format(port=port, d=d, hints=hints, extra=extra)


def _query(addr, name, timeout=0.5):
    """One A query over UDP; True if any reply came."""
    q = struct.pack("!HHHHHH", 0x4242, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        if label:
            q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(q, (addr, 53))
            s.recvfrom(4096)
            return True
        except OSError:
            return False


class Hierarchy:
    def __init__(self):
        self.n = random.randint(1, 254)
        self.base = f"127.53.{self.n}"
        self.dir = tempfile.mkdtemp(prefix="portico-dns-")
        self.procs = []
        self.hints = os.path.join(self.dir, "named.root")

    def addr(self, last):
        return f"{self.base}.{last}"

    def start(self):
        by_server = {}
        for (zone, last), text in zones(self.base).items():
            fname = "root.zone" if zone == "." else f"{zone}zone"
            with open(os.path.join(self.dir, fname), "w") as f:
                f.write(text.lstrip())
            by_server.setdefault(last, []).append((zone, fname))
        with open(self.hints, "w") as f:
            f.write("; root hints of the test hierarchy\n"
                    ".                        3600000      NS    A.ROOT.\n"
                    f"A.ROOT.                  3600000      A     {self.addr(1)}\n")
        try:
            for last, zl in sorted(by_server.items()):
                conf = os.path.join(self.dir, f"nsd-{last}.conf")
                with open(conf, "w") as f:
                    f.write(NSD_CONF.format(addr=self.addr(last), dir=self.dir, n=last))
                    for zone, fname in zl:
                        f.write(f'zone:\n  name: "{zone}"\n  zonefile: "{fname}"\n')
                log = open(os.path.join(self.dir, f"nsd-{last}.out"), "w")
                p = subprocess.Popen([NSD, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT)
                log.close()
                self.procs.append(p)
            probes = {1: ".", 2: "com.", 3: "example.com.", 4: "net.", 5: "example.net."}
            end = time.monotonic() + 15
            for last, name in probes.items():
                while not _query(self.addr(last), name):
                    for p in self.procs:
                        if p.poll() is not None:
                            raise RuntimeError(f"nsd exited: {self.logs()}")
                    if time.monotonic() > end:
                        raise RuntimeError(f"nsd on {self.addr(last)} does not answer: "
                                           f"{self.logs()}")
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def logs(self):
        out = []
        for f in sorted(os.listdir(self.dir)):
            if f.endswith(".out") or f.endswith(".log"):
                with open(os.path.join(self.dir, f), errors="replace") as fh:
                    out.append(f"{f}: {fh.read()[-500:]}")
        return "\n".join(out)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        self.procs = []
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    h = Hierarchy().start()
    print(h.hints, h.base, flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    try:
        while not stop:
            time.sleep(0.2)
    finally:
        h.stop()


if __name__ == "__main__":
    sys.exit(main())
