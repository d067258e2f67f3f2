"""Integration tests of `portico lookup` (stub mode) against a fake DNS
server written here with socket and struct only: UDP and TCP on 127.0.0.1,
answering from a small table. No network, no dnspython.

Every run gets its own resolv.conf (no search list, known options) so that
the machine's /etc/resolv.conf cannot change what is asked."""
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import PORTICO, ipv6_available

T_A, T_NS, T_CNAME, T_SOA, T_PTR, T_MX, T_TXT, T_AAAA, T_SRV, T_OPT, T_CAA = (
    1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 257)
R_NOERROR, R_SERVFAIL, R_NXDOMAIN, R_REFUSED = 0, 2, 3, 5

# ------------------------------------------------------------ wire format


def wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def rd_a(ip):
    return socket.inet_pton(socket.AF_INET, ip)


def rd_aaaa(ip):
    return socket.inet_pton(socket.AF_INET6, ip)


def rd_name(name):
    return wire_name(name)


def rd_mx(pref, name):
    return struct.pack("!H", pref) + wire_name(name)


def rd_txt(*strings):
    return b"".join(bytes([len(s)]) + s for s in (x.encode() if isinstance(x, str) else x
                                                   for x in strings))


def rd_soa(mname, rname, serial, refresh, retry, expire, minimum):
    return wire_name(mname) + wire_name(rname) + struct.pack(
        "!IIIII", serial, refresh, retry, expire, minimum)


def rd_srv(prio, weight, port, target):
    return struct.pack("!HHH", prio, weight, port) + wire_name(target)


def rd_caa(flags, tag, value):
    return bytes([flags, len(tag)]) + tag.encode() + value.encode()


def rr(owner, rtype, ttl, rdata):
    return (owner.lower().rstrip("."), rtype, ttl, rdata)


def encode_rr(rec):
    owner, rtype, ttl, rdata = rec
    return wire_name(owner) + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def parse_query(msg):
    """(id, flags, qname, qtype, question bytes) of a query."""
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    assert qd == 1
    i, labels = 12, []
    while msg[i]:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    i += 1
    qtype, _ = struct.unpack("!HH", msg[i:i + 4])
    return qid, flags, ".".join(labels), qtype, msg[12:i + 4]


SOA_EX = rr("example.com", T_SOA, 300, rd_soa("ns1.example.com", "hostmaster.example.com",
                                              2024010101, 7200, 3600, 1209600, 300))

BIG_TXT = [f"record {i:03d} " + "x" * 40 for i in range(30)]  # ~1.6 kB: needs TCP

ZONE = [
    SOA_EX,
    rr("example.com", T_NS, 300, rd_name("ns1.example.com")),
    rr("ns1.example.com", T_A, 300, rd_a("192.0.2.53")),
    rr("example.com", T_A, 300, rd_a("93.184.216.34")),
    rr("example.com", T_AAAA, 300, rd_aaaa("2606:2800:220:1:248:1893:25c8:1946")),
    rr("example.com", T_MX, 300, rd_mx(10, "mx.example.com")),
    rr("example.com", T_MX, 300, rd_mx(20, "mx2.example.com")),
    rr("example.com", T_TXT, 300, rd_txt("v=spf1 -all", 'say "hi" \\ there')),
    rr("www.example.com", T_CNAME, 60, rd_name("web.example.com")),
    rr("web.example.com", T_CNAME, 60, rd_name("example.com")),
    rr("_sip._tcp.example.com", T_SRV, 300, rd_srv(0, 5, 5060, "sip.example.com")),
    rr("example.com", T_CAA, 300, rd_caa(0, "issue", "letsencrypt.org")),
    rr("odd.example.com", 65280, 300, b"\x0a\x00\x00\x01"),
    rr("auth.example.com", T_A, 3600, rd_a("192.0.2.1")),
    rr("v6only.example.com", T_AAAA, 300, rd_aaaa("::1")),
    rr("big.example.com", T_TXT, 300, b"".join(rd_txt(s) for s in BIG_TXT[:1])),
    rr("2.0.0.127.in-addr.arpa", T_PTR, 300, rd_name("localhost2.example.com")),
    rr("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa", T_PTR, 300,
       rd_name("v6.example.com")),
]
ZONE += [rr("big.example.com", T_TXT, 300, rd_txt(s)) for s in BIG_TXT[1:]]


class FakeDNS:
    """A tiny authoritative-ish server: answers from ZONE, follows CNAMEs in
    it, NXDOMAIN/NODATA with the SOA, SERVFAIL for names under
    servfail.example.com, and, over UDP, TC (no records) for answers that do
    not fit in 512 bytes. `silent`: reads queries and never answers."""

    def __init__(self, host="127.0.0.1", silent=False, authoritative=("auth.example.com",)):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.silent = silent
        self.auth = set(authoritative)
        self.log = []            # (proto, qname, qtype)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        # UDP and TCP on one port number: the TCP one may be taken (by
        # another test's connection), so try a few free UDP ports.
        for attempt in range(50):
            self.udp = socket.socket(fam, socket.SOCK_DGRAM)
            self.udp.bind((host, 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket(fam, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.tcp.bind((host, self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        else:
            raise OSError("no port free for both UDP and TCP")
        self.tcp.listen(8)
        for s in (self.udp, self.tcp):
            s.settimeout(0.2)
        self.threads = [threading.Thread(target=self._serve_udp, daemon=True),
                        threading.Thread(target=self._serve_tcp, daemon=True)]
        for t in self.threads:
            t.start()

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(2)
        self.udp.close()
        self.tcp.close()

    def queries(self):
        with self.lock:
            return list(self.log)

    def clear(self):
        with self.lock:
            self.log.clear()

    # answering
    def answer(self, msg, proto):
        qid, qflags, qname, qtype, question = parse_query(msg)
        with self.lock:
            self.log.append((proto, qname.lower(), qtype))
        name = qname.lower().rstrip(".")
        rcode, an, ns, ar = R_NOERROR, [], [], []
        if name == "servfail.example.com" or name.endswith(".servfail.example.com"):
            rcode = R_SERVFAIL
        elif name == "refused.example.com":
            rcode = R_REFUSED
        else:
            cur = name
            for _ in range(10):
                hit = [r for r in ZONE if r[0] == cur and r[1] == qtype]
                if hit:
                    an += hit
                    break
                cn = [r for r in ZONE if r[0] == cur and r[1] == T_CNAME]
                if not cn or qtype == T_CNAME:
                    break
                an += cn
                cur = parse_name_simple(cn[0][3])
            if not an:
                owners = {r[0] for r in ZONE}
                if cur not in owners:
                    rcode = R_NXDOMAIN
                ns = [SOA_EX]
            elif qtype == T_NS:
                ar = [r for r in ZONE if r[0] == "ns1.example.com" and r[1] == T_A]
            elif qtype == T_MX:
                ns = [r for r in ZONE if r[0] == "example.com" and r[1] == T_NS]
        flags = 0x8000 | (qflags & 0x0100) | 0x0080 | rcode
        if name in self.auth:
            flags |= 0x0400
        body = b"".join(encode_rr(r) for r in an + ns + ar)
        out = struct.pack("!HHHHHH", qid, flags, 1, len(an), len(ns), len(ar)) + question + body
        if proto == "udp" and len(out) > 512:
            out = struct.pack("!HHHHHH", qid, flags | 0x0200, 1, 0, 0, 0) + question
        return out

    def _serve_udp(self):
        while not self.stop.is_set():
            try:
                msg, peer = self.udp.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if self.silent:
                with self.lock:
                    self.log.append(("udp", parse_query(msg)[2].lower(), parse_query(msg)[3]))
                continue
            self.udp.sendto(self.answer(msg, "udp"), peer)

    def _serve_tcp(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    n = struct.unpack("!H", recv_exact(conn, 2))[0]
                    msg = recv_exact(conn, n)
                    if not self.silent:
                        out = self.answer(msg, "tcp")
                        conn.sendall(struct.pack("!H", len(out)) + out)
                except (OSError, AssertionError):
                    pass


def parse_name_simple(wire):
    i, labels = 0, []
    while wire[i]:
        labels.append(wire[i + 1:i + 1 + wire[i]].decode())
        i += 1 + wire[i]
    return ".".join(labels)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise AssertionError("EOF")
        buf += chunk
    return buf


# --------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def dns():
    srv = FakeDNS()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def resolv_conf(tmp_path_factory):
    p = tmp_path_factory.mktemp("lookup") / "resolv.conf"
    # A server that is never asked when SERVER is given; options that make
    # failures quick.
    p.write_text("nameserver 127.0.0.1\noptions ndots:1 timeout:2 attempts:2\n")
    return str(p)


def env():
    e = dict(os.environ)
    e["LOCALDOMAIN"] = ""       # no search list from the host name
    e.pop("RES_OPTIONS", None)
    return e


def lookup(args, conf=None, timeout=15):
    argv = [PORTICO, "lookup"]
    if conf is not None:
        argv += ["--resolv-conf", conf]
    argv += [str(a) for a in args]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=env())
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def server_head(port, host="127.0.0.1"):
    return f"Server:\t\t{host}\nAddress:\t{host}#{port}\n\n"


@pytest.fixture
def run(dns, resolv_conf):
    """run(NAME, [TYPE], ...) against the fake server: (rc, stdout, stderr)."""
    def go(*args, server=True):
        extra = [f"127.0.0.1:{dns.port}"] if server else []
        return lookup([*args, *extra], conf=resolv_conf)
    return go


# ------------------------------------------------------------------ answers

def test_a_non_authoritative(run, dns):
    rc, out, err = run("example.com")
    assert (rc, err) == (0, "")
    assert out == (server_head(dns.port) + "Non-authoritative answer:\n"
                   "Name:\texample.com\nAddress: 93.184.216.34\n\n")


def test_a_authoritative_has_no_non_authoritative_line(run, dns):
    rc, out, err = run("auth.example.com", "A")
    assert (rc, err) == (0, "")
    assert out == server_head(dns.port) + "Name:\tauth.example.com\nAddress: 192.0.2.1\n\n"


def test_aaaa(run, dns):
    rc, out, _ = run("v6only.example.com", "AAAA")
    assert rc == 0
    assert out == (server_head(dns.port) + "Non-authoritative answer:\n"
                   "Name:\tv6only.example.com\nAddress: ::1\n\n")


def test_type_is_case_insensitive(run):
    rc, out, _ = run("example.com", "aaaa")
    assert rc == 0
    assert "Address: 2606:2800:220:1:248:1893:25c8:1946\n" in out


def test_mx_with_authority_section(run, dns):
    rc, out, _ = run("example.com", "MX")
    assert rc == 0
    assert out == (server_head(dns.port) + "Non-authoritative answer:\n"
                   "example.com\tmail exchanger = 10 mx.example.com.\n"
                   "example.com\tmail exchanger = 20 mx2.example.com.\n"
                   "\nAuthoritative answers can be found from:\n"
                   "example.com\tnameserver = ns1.example.com.\n\n")


def test_txt_two_strings_escaped(run, dns):
    rc, out, _ = run("example.com", "TXT")
    assert rc == 0
    assert out == (server_head(dns.port) + "Non-authoritative answer:\n"
                   'example.com\ttext = "v=spf1 -all" "say \\"hi\\" \\\\ there"\n'
                   "\nAuthoritative answers can be found from:\n\n")


def test_cname_chain(run, dns):
    rc, out, _ = run("www.example.com")
    assert rc == 0
    assert out == (server_head(dns.port) + "Non-authoritative answer:\n"
                   "www.example.com\tcanonical name = web.example.com.\n"
                   "web.example.com\tcanonical name = example.com.\n"
                   "Name:\texample.com\nAddress: 93.184.216.34\n\n")


def test_ns_with_additional(run, dns):
    rc, out, _ = run("example.com", "NS")
    assert rc == 0
    assert out == (server_head(dns.port) + "Non-authoritative answer:\n"
                   "example.com\tnameserver = ns1.example.com.\n"
                   "\nAuthoritative answers can be found from:\n"
                   "ns1.example.com\tinternet address = 192.0.2.53\n\n")


def test_soa_block(run, dns):
    rc, out, _ = run("example.com", "SOA")
    assert rc == 0
    assert out == (server_head(dns.port) + "Non-authoritative answer:\n"
                   "example.com\n\torigin = ns1.example.com\n"
                   "\tmail addr = hostmaster.example.com\n\tserial = 2024010101\n"
                   "\trefresh = 7200\n\tretry = 3600\n\texpire = 1209600\n\tminimum = 300\n"
                   "\nAuthoritative answers can be found from:\n\n")


def test_srv_caa_and_unknown_type(run):
    rc, out, _ = run("_sip._tcp.example.com", "SRV")
    assert rc == 0
    assert "_sip._tcp.example.com\tservice = 0 5 5060 sip.example.com.\n" in out
    rc, out, _ = run("example.com", "CAA")
    assert rc == 0
    assert 'example.com\trdata_257 = 0 issue "letsencrypt.org"\n' in out
    rc, out, _ = run("odd.example.com", "TYPE65280")
    assert rc == 0
    assert "odd.example.com\trdata_65280 = \\# 4 0A000001\n" in out


def test_ptr_with_x(run, dns):
    rc, out, err = run("-x", "127.0.0.2")
    assert (rc, err) == (0, "")
    assert out == (server_head(dns.port) + "Non-authoritative answer:\n"
                   "2.0.0.127.in-addr.arpa\tname = localhost2.example.com.\n"
                   "\nAuthoritative answers can be found from:\n\n")
    assert ("udp", "2.0.0.127.in-addr.arpa", T_PTR) in dns.queries()


def test_ptr_ipv6_and_address_as_name(run, dns):
    rc, out, _ = run("-x", "::1")
    assert rc == 0
    assert "ip6.arpa\tname = v6.example.com.\n" in out
    # An address as NAME is a reverse lookup, as in nslookup.
    rc, out2, _ = run("127.0.0.2")
    assert rc == 0
    assert "2.0.0.127.in-addr.arpa\tname = localhost2.example.com.\n" in out2


def test_tc_bit_retries_over_tcp(run, dns):
    dns.clear()
    rc, out, _ = run("big.example.com", "TXT")
    assert rc == 0
    # nslookup says so too, before the answer.
    assert out.startswith(";; Truncated, retrying in TCP mode.\n" + server_head(dns.port))
    for s in BIG_TXT:
        assert f'big.example.com\ttext = "{s}"\n' in out
    q = [x for x in dns.queries() if x[1] == "big.example.com"]
    assert [p for p, _, _ in q] == ["udp", "tcp"]


# ------------------------------------------------------------------ failures

def test_nxdomain(run, dns):
    rc, out, err = run("nx.example.com")
    assert (rc, err) == (1, "")
    assert out == server_head(dns.port) + "** server can't find nx.example.com: NXDOMAIN\n\n"


def test_nxdomain_keeps_a_trailing_dot_off(run, dns):
    rc, out, _ = run("nx.example.com.", "MX")
    assert rc == 1
    assert out.endswith("** server can't find nx.example.com: NXDOMAIN\n\n")


def test_servfail(run, dns):
    rc, out, err = run("servfail.example.com")
    assert (rc, err) == (1, "")
    assert out == (";; Got SERVFAIL reply from 127.0.0.1\n" + server_head(dns.port) +
                   "** server can't find servfail.example.com: SERVFAIL\n\n")


def test_refused(run, dns):
    rc, out, _ = run("refused.example.com")
    assert rc == 1
    assert out.endswith("** server can't find refused.example.com: REFUSED\n\n")


def test_nodata(run, dns):
    rc, out, err = run("auth.example.com", "MX")
    assert (rc, err) == (1, "")
    # auth.example.com is answered authoritatively: no authority block.
    assert out == server_head(dns.port) + "*** Can't find auth.example.com: No answer\n\n"
    rc, out, _ = run("v6only.example.com")
    assert rc == 1
    assert out == (server_head(dns.port) + "Non-authoritative answer:\n"
                   "*** Can't find v6only.example.com: No answer\n\n")


@pytest.fixture(scope="module")
def silent():
    srv = FakeDNS(silent=True)
    yield srv
    srv.close()


def test_timeout(silent, resolv_conf):
    t0 = time.monotonic()
    rc, out, err = lookup(["--timeout", "1", "--tries", "1", "example.com",
                           f"127.0.0.1:{silent.port}"], conf=resolv_conf)
    took = time.monotonic() - t0
    assert (rc, err) == (1, "")
    assert out == ";; connection timed out; no servers could be reached\n\n"
    assert 0.9 <= took < 3.0, took
    assert len([q for q in silent.queries() if q[1] == "example.com"]) >= 1


def test_timeout_json(silent, resolv_conf):
    rc, out, _ = lookup(["--json", "--timeout", "1", "--tries", "1", "example.com",
                         f"127.0.0.1:{silent.port}"], conf=resolv_conf)
    assert rc == 1
    j = json.loads(out)
    assert j["status"] == "TIMEOUT"
    assert j["server"] is None and j["answers"] == [] and j["via"] is None
    assert 900 <= j["elapsed_ms"] < 3000


def test_sigint_exits_cleanly(silent, resolv_conf):
    silent.clear()
    p = subprocess.Popen([PORTICO, "lookup", "--resolv-conf", resolv_conf, "--timeout", "30",
                          "sigint.example.com", f"127.0.0.1:{silent.port}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env())
    try:
        # The query is out: the signals are blocked and on the loop by then.
        end = time.monotonic() + 5
        while not any(q[1] == "sigint.example.com" for q in silent.queries()):
            assert time.monotonic() < end, "no query arrived"
            time.sleep(0.02)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=5)
        assert time.monotonic() - t0 < 2
        assert p.returncode == 130
        assert err.decode() == "portico lookup: interrupted by SIGINT\n"
        assert out == b""
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# ---------------------------------------------------------------------- JSON

def test_json_answer(run, dns):
    rc, out, err = run("--json", "www.example.com")
    assert (rc, err) == (0, "")
    assert out.count("\n") == 1
    j = json.loads(out)
    assert j["name"] == "www.example.com."
    assert j["type"] == "A"
    assert j["server"] == f"127.0.0.1:{dns.port}"
    assert j["status"] == "NOERROR"
    assert j["authoritative"] is False
    assert j["answers"] == [{"name": "example.com.", "type": "A", "ttl": 300,
                             "data": "93.184.216.34"}]
    assert j["cname_chain"] == ["www.example.com.", "web.example.com.", "example.com."]
    assert isinstance(j["elapsed_ms"], int) and 0 <= j["elapsed_ms"] < 5000
    assert j["via"] == "udp"


def test_json_escaping_and_types(run):
    rc, out, _ = run("--json", "example.com", "TXT")
    assert rc == 0
    j = json.loads(out)
    assert j["cname_chain"] == []
    assert [a["data"] for a in j["answers"]] == ['"v=spf1 -all" "say \\"hi\\" \\\\ there"']
    rc, out, _ = run("example.com", "MX", "--json")   # options after arguments too
    j = json.loads(out)
    assert [a["data"] for a in j["answers"]] == ["10 mx.example.com.", "20 mx2.example.com."]
    assert all(a["type"] == "MX" and a["ttl"] == 300 for a in j["answers"])


def test_json_authoritative_tcp_and_failures(run, dns):
    j = json.loads(run("--json", "auth.example.com")[1])
    assert j["authoritative"] is True and j["answers"][0]["data"] == "192.0.2.1"
    j = json.loads(run("--json", "big.example.com", "TXT")[1])
    assert j["via"] == "tcp" and len(j["answers"]) == len(BIG_TXT)
    for name, typ, status in [("nx.example.com", "A", "NXDOMAIN"),
                              ("servfail.example.com", "A", "SERVFAIL"),
                              ("refused.example.com", "A", "REFUSED"),
                              ("v6only.example.com", "A", "NODATA")]:
        rc, out, _ = run("--json", name, typ)
        assert rc == 1
        j = json.loads(out)
        assert (j["name"], j["status"], j["answers"]) == (name + ".", status, [])
    j = json.loads(run("--json", "-x", "127.0.0.2")[1])
    assert (j["name"], j["type"]) == ("2.0.0.127.in-addr.arpa.", "PTR")
    assert j["answers"][0]["data"] == "localhost2.example.com."


# ------------------------------------------------ configuration and /etc/hosts

def test_hosts_file_first_without_server(tmp_path, resolv_conf):
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.77 box.test box\n")
    rc, out, err = lookup(["--hosts", hosts, "box.test"], conf=resolv_conf)
    assert (rc, err) == (0, "")
    assert out == f"Server:\t\t{hosts}\n\nName:\tbox.test\nAddress: 192.0.2.77\n\n"
    rc, out, _ = lookup(["--json", "--hosts", hosts, "box.test"], conf=resolv_conf)
    j = json.loads(out)
    assert (j["status"], j["via"], j["server"]) == ("NOERROR", "hosts", None)
    assert j["answers"] == [{"name": "box.test.", "type": "A", "ttl": 0, "data": "192.0.2.77"}]


def test_server_given_skips_hosts(tmp_path, dns, resolv_conf):
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.77 nx.example.com\n")
    rc, out, _ = lookup(["--hosts", hosts, "nx.example.com", f"127.0.0.1:{dns.port}"],
                        conf=resolv_conf)
    assert rc == 1
    assert "NXDOMAIN" in out


def test_system_resolv_conf_is_read(dns):
    # No --resolv-conf: the machine's file is read (its nameservers are
    # replaced by SERVER). Only the answer is checked.
    rc, out, _ = lookup(["-x", "127.0.0.2", f"127.0.0.1:{dns.port}"])
    assert rc == 0
    assert "name = localhost2.example.com." in out


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_server(resolv_conf):
    srv = FakeDNS(host="::1")
    try:
        rc, out, _ = lookup(["example.com", f"[::1]:{srv.port}"], conf=resolv_conf)
        assert rc == 0
        assert out.startswith(f"Server:\t\t::1\nAddress:\t::1#{srv.port}\n\n")
        assert "Address: 93.184.216.34\n" in out
    finally:
        srv.close()


# --------------------------------------------------------------------- usage

USAGE = [
    ([], "missing NAME (see portico lookup --help)"),
    (["example.com", "BOGUS"],
     "unknown type 'BOGUS' (A, AAAA, MX, TXT, NS, SOA, CNAME, PTR, SRV, CAA, ANY or TYPE123)"),
    (["example.com", "A", "not-an-ip"],
     "invalid server 'not-an-ip': expected an IPv4 or IPv6 address with an optional port "
     "(127.0.0.1, 127.0.0.1:5353, [::1]:5353)"),
    (["example.com", "1.2.3.999"],
     "invalid server '1.2.3.999': expected an IPv4 or IPv6 address with an optional port "
     "(127.0.0.1, 127.0.0.1:5353, [::1]:5353)"),
    (["example.com", "127.0.0.1:0"],
     "invalid server '127.0.0.1:0': expected an IPv4 or IPv6 address with an optional port "
     "(127.0.0.1, 127.0.0.1:5353, [::1]:5353)"),
    (["example.com", "[::1"],
     "invalid server '[::1': expected an IPv4 or IPv6 address with an optional port "
     "(127.0.0.1, 127.0.0.1:5353, [::1]:5353)"),
    (["-x", "300.1.2.3"], "invalid address for -x: '300.1.2.3' (expected IPv4 or IPv6)"),
    (["-x", "127.0.0.1", "A", "127.0.0.1"], "-x takes ADDR [SERVER] (see portico lookup --help)"),
    (["-x"], "option '-x' needs a value (see portico lookup --help)"),
    (["a", "A", "127.0.0.1", "x"], "too many arguments (see portico lookup --help)"),
    (["a..b"], "invalid name 'a..b': empty label in a name"),
    (["--iterative", "example.com", "127.0.0.1"],
     "a SERVER cannot be given with --iterative, --trace or --root-hints: the servers come "
     "from the root hints"),
    (["--trace", "example.com", "A", "127.0.0.1"],
     "a SERVER cannot be given with --iterative, --trace or --root-hints: the servers come "
     "from the root hints"),
    (["example.com", "--root-hints"],
     "option '--root-hints' needs a value (see portico lookup --help)"),
    (["--timeout", "0", "example.com"], "invalid timeout '0': expected whole seconds 1-3600"),
    (["--tries", "x", "example.com"], "invalid tries 'x': expected 1-10"),
    (["--bogus", "example.com"], "unknown option '--bogus' (see portico lookup --help)"),
    (["example.com", "OPT"],
     "type 'OPT' cannot be asked for (zone transfers and OPT are not lookups)"),
]


@pytest.mark.parametrize("args,msg", USAGE, ids=[" ".join(a) or "none" for a, _ in USAGE])
def test_usage_errors(args, msg):
    rc, out, err = lookup(args)
    assert rc == 2
    assert out == ""
    assert err == f"portico lookup: {msg}\n"


def test_missing_resolv_conf_file():
    rc, out, err = lookup(["example.com"], conf="/nonexistent/resolv.conf")
    assert (rc, out) == (1, "")
    assert err == "portico lookup: cannot read '/nonexistent/resolv.conf': No such file or directory\n"


def test_help():
    rc, out, err = lookup(["--help"])
    assert (rc, err) == (0, "")
    assert out.startswith("usage: portico lookup [OPTIONS] NAME [TYPE] [SERVER[:PORT]]\n")
    for opt in ("-x ADDR", "--json", "--timeout SECS", "--tries N", "--iterative", "exit status"):
        assert opt in out
    rc, out, _ = lookup(["-h"])
    assert rc == 0 and out.startswith("usage: portico lookup")
    r = subprocess.run([PORTICO, "--help"], stdout=subprocess.PIPE, timeout=5)
    assert b"  lookup " in r.stdout
