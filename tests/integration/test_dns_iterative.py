"""`portico lookup --iterative / --trace / --root-hints` against an offline
hierarchy of nsd servers (dns_hierarchy.py): root -> com -> example.com,
a CNAME chain inside a zone and one across zones, MX, TXT, NXDOMAIN, a
nameserver without glue, and a TXT set too big for UDP (TC, then TCP)."""
import json
import os
import re
import subprocess

import pytest

from conftest import PORTICO
from dns_hierarchy import NSD, Hierarchy, big_txt_strings

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(NSD),
                                reason="needs root (nsd on port 53) and nsd")


@pytest.fixture(scope="module")
def hier():
    h = Hierarchy().start()
    yield h
    h.stop()


def lookup(h, *args, timeout=20):
    p = subprocess.run([PORTICO, "lookup", "--root-hints", h.hints, *args],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def steps(out):
    """The trace's step lines: (server, zone, transport, outcome)."""
    rx = re.compile(r"^\s*;; \S+ \S+ @(\S+) \((\S+), zone (\S+)\) (udp|tcp) \d+ ms: (.*)$")
    return [(m[1], m[3], m[4], m[5]) for m in map(rx.match, out.splitlines()) if m]


def test_trace_walks_root_com_example(hier):
    rc, out, err = lookup(hier, "--trace", "www.example.com")
    assert rc == 0, err
    assert steps(out) == [
        (hier.addr(1), ".", "udp", "referral to com."),
        (hier.addr(2), "com.", "udp", "referral to example.com."),
        (hier.addr(3), "example.com.", "udp", "answer"),
    ]
    # The referral's NS records and glue are shown under each step.
    assert re.search(r"^\s+example\.com\.\t86400\tIN\tNS\tns1\.example\.com\.$", out, re.M)
    assert re.search(rf"^\s+ns1\.example\.com\.\t86400\tIN\tA\t{re.escape(hier.addr(3))}$",
                     out, re.M)
    assert "Name:\twww.example.com\nAddress: 192.0.2.80\n" in out
    assert "Queries:\t3\n" in out


def test_cname_across_zones(hier):
    rc, out, err = lookup(hier, "--trace", "cross.example.com")
    assert rc == 0, err
    s = steps(out)
    assert s[2] == (hier.addr(3), "example.com.", "udp", "CNAME out of the zone")
    assert s[3:] == [
        (hier.addr(1), ".", "udp", "referral to net."),
        (hier.addr(4), "net.", "udp", "referral to example.net."),
        (hier.addr(5), "example.net.", "udp", "answer"),
    ]
    assert "cross.example.com\tcanonical name = b.example.net.\n" in out
    assert "Name:\tb.example.net\nAddress: 192.0.2.98\n" in out


def test_cname_chain_in_zone_json(hier):
    rc, out, err = lookup(hier, "--json", "a.example.com")
    assert rc == 0, err
    j = json.loads(out)
    assert j["status"] == "NOERROR"
    assert j["cname_chain"] == ["a.example.com.", "b.example.com.", "c.example.com.",
                                "www.example.com."]
    assert [a["data"] for a in j["answers"]] == ["192.0.2.80"]
    assert j["queries"] == 3 and j["via"] == "iterative"


def test_mx_and_txt(hier):
    rc, out, _ = lookup(hier, "mail.example.com", "MX")
    assert rc == 0
    assert "mail.example.com\tmail exchanger = 10 mx.example.com.\n" in out
    rc, out, _ = lookup(hier, "txt.example.com", "TXT")
    assert rc == 0
    assert 'txt.example.com\ttext = "v=spf1 -all"\n' in out


def test_nxdomain_and_nodata(hier):
    rc, out, err = lookup(hier, "--trace", "nope.example.com")
    assert rc == 1
    assert steps(out)[-1] == (hier.addr(3), "example.com.", "udp", "NXDOMAIN")
    assert "** server can't find nope.example.com: NXDOMAIN\n" in out
    rc, out, _ = lookup(hier, "txt.example.com", "MX")
    assert rc == 1
    assert "*** Can't find txt.example.com: No answer\n" in out


def test_big_rrset_tc_then_tcp(hier):
    rc, out, err = lookup(hier, "--trace", "big.example.com", "TXT")
    assert rc == 0, err
    s = steps(out)
    assert s[-2] == (hier.addr(3), "example.com.", "udp", "truncated, again over TCP")
    assert s[-1] == (hier.addr(3), "example.com.", "tcp", "answer")
    texts = re.findall(r'^big\.example\.com\ttext = "(\w+)"$', out, re.M)
    assert sorted(texts) == sorted(big_txt_strings())


def test_nameserver_without_glue(hier):
    rc, out, err = lookup(hier, "--trace", "www.noglue.com")
    assert rc == 0, err
    assert ";; ns.example.net. A: resolving this nameserver's address (no glue)" in out
    s = steps(out)
    assert s[1] == (hier.addr(2), "com.", "udp", "referral to noglue.com.")
    assert s[-1] == (hier.addr(5), "noglue.com.", "udp", "answer")
    assert "Address: 192.0.2.99\n" in out


def test_query_limit(hier):
    # root -> com -> example.com takes 3 queries: 2 are not enough.
    rc, out, err = lookup(hier, "--max-queries", "2", "--trace", "www.example.com")
    assert rc == 1
    assert len(steps(out)) == 2
    assert "** server can't find www.example.com: SERVFAIL" in out
    assert err == "portico lookup: www.example.com: query limit reached\n"
    rc, out, _ = lookup(hier, "--max-queries", "3", "www.example.com")
    assert rc == 0 and "Address: 192.0.2.80" in out


def test_unreachable_root_times_out(tmp_path):
    # A root that never answers: every server times out, SERVFAIL, exit 1.
    hints = tmp_path / "hints"
    hints.write_text(". NS a.root.\na.root. A 127.53.255.254\n")
    p = subprocess.run([PORTICO, "lookup", "--root-hints", str(hints), "--timeout", "1",
                        "--trace", "www.example.com"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=20)
    assert p.returncode == 1
    out = p.stdout.decode()
    assert "no reply in time, next server" in out or "cannot reach it" in out
    assert "** server can't find www.example.com: SERVFAIL" in out
    assert "no nameserver gave an answer" in p.stderr.decode()


def test_bad_root_hints(tmp_path):
    bad = tmp_path / "bad.root"
    bad.write_text("; fine\n. NS a.root.\na.root. A 300.1.1.1\n")
    p = subprocess.run([PORTICO, "lookup", "--root-hints", str(bad), "x.com"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    assert p.returncode == 1
    assert p.stderr.decode() == f"portico lookup: {bad}:3: bad address\n"
    p = subprocess.run([PORTICO, "lookup", "--root-hints", str(tmp_path / "none"), "x.com"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    assert p.returncode == 1
    assert "No such file or directory" in p.stderr.decode()
    p = subprocess.run([PORTICO, "lookup", "--iterative", "x.com", "127.0.0.1"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    assert p.returncode == 2
    assert "cannot be given with --iterative" in p.stderr.decode()
