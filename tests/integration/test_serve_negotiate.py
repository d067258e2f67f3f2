"""portico serve: server-driven and agent-driven content negotiation over
variants on disk (RFC 9110 §12): doc.html.en, doc.html.ko, doc.html.fr,
doc.json, doc.html.en.gz."""
import gzip

import pytest

from serve_helpers import exchange, request, start_serve

FILES = {
    "doc.html.en": b"<p>hello</p>\n",
    "doc.html.ko": "<p>안녕하세요</p>\n".encode(),
    "doc.html.fr": b"<p>bonjour</p>\n",
    "doc.json": b'{"hello": "world"}\n',
    "page.html.en": b"<p>english page</p>\n",
    "page.html.en.gz": gzip.compress(b"<p>english page</p>\n"),
    "langs.txt.en": b"english\n",
    "langs.txt.ko": "한국어\n".encode(),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("neg")
    for name, data in FILES.items():
        (d / name).write_bytes(data)
    return d


@pytest.fixture(scope="module")
def srv(root):
    s = start_serve(root, root.parent, tag="neg")
    yield s
    s.stop()
    assert not s.sanitizer_report()


@pytest.fixture(scope="module")
def srv300(root):
    s = start_serve(root, root.parent, "--multiple-choices", tag="neg300")
    yield s
    s.stop()
    assert not s.sanitizer_report()


def get(port, target, headers=(), method="GET"):
    r, c = exchange(port, request(method, target, headers=list(headers)), head_only=(method == "HEAD"))
    c.close()
    return r


def vary_set(r):
    v = r.header("Vary") or ""
    return {x.strip() for x in v.split(",") if x.strip()}


def test_notes_example_picks_korean_never_french(srv):
    r = get(srv.port, "/doc", [("Accept", "text/html"), ("Accept-Language", "ko;q=0.7, fr;q=0, en;q=0.4")])
    assert r.status == 200
    assert r.body == FILES["doc.html.ko"]
    assert r.header("Content-Language") == "ko"
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    assert vary_set(r) == {"Accept", "Accept-Language"}
    # The notes' own spelling "kr" is no language tag we have: English (0.4)
    # wins, and French (q=0) is never chosen.
    r = get(srv.port, "/doc", [("Accept", "text/html"), ("Accept-Language", "kr;q=0.7, fr;q=0, en;q=0.4")])
    assert r.status == 200 and r.header("Content-Language") == "en"


def test_french_excluded_even_alone_in_request(srv):
    r = get(srv.port, "/doc", [("Accept", "text/html"), ("Accept-Language", "fr;q=0")])
    assert r.status == 200 and r.header("Content-Language") != "fr"


def test_accept_picks_json(srv):
    r = get(srv.port, "/doc", [("Accept", "application/json")])
    assert r.status == 200 and r.body == FILES["doc.json"]
    assert r.header("Content-Type") == "application/json; charset=utf-8"
    assert r.header("Content-Language") is None


def test_406_lists_variants(srv):
    r = get(srv.port, "/doc", [("Accept", "image/png")])
    assert r.status == 406
    for name in ("doc.html.en", "doc.html.ko", "doc.json"):
        assert name.encode() in r.body


def test_precompressed_variant(srv):
    r = get(srv.port, "/page", [("Accept-Encoding", "gzip")])
    assert r.status == 200
    assert r.header("Content-Encoding") == "gzip"
    assert gzip.decompress(r.body) == FILES["page.html.en"]
    assert "Accept-Encoding" in vary_set(r)
    r = get(srv.port, "/page", [("Accept-Encoding", "identity")])
    assert r.header("Content-Encoding") is None and r.body == FILES["page.html.en"]
    r = get(srv.port, "/page")
    assert r.header("Content-Encoding") is None


def test_head_equals_get(srv):
    hs = [("Accept", "text/html"), ("Accept-Language", "ko")]
    g = get(srv.port, "/doc", hs)
    h = get(srv.port, "/doc", hs, method="HEAD")
    assert h.status == g.status
    skip = {"date"}
    assert [(n, v) for n, v in h.fields if n.lower() not in skip] == \
           [(n, v) for n, v in g.fields if n.lower() not in skip]


@pytest.mark.parametrize("bad", ["text/html;q=1.5", "text/html;q=abc", ",,,", "q=0.5", "*/*;q=-1"])
def test_malformed_accept_never_500(srv, bad):
    r = get(srv.port, "/doc", [("Accept", bad), ("Accept-Language", "en;q=abc, ko")])
    assert r.status in (200, 406)


def test_300_when_request_does_not_choose(srv300):
    r = get(srv300.port, "/langs")
    assert r.status == 300
    links = r.get_all("Link")
    assert any("langs.txt.en" in x and 'hreflang="en"' in x for x in links)
    assert any("langs.txt.ko" in x and 'hreflang="ko"' in x for x in links)
    # a preference decides: no 300
    r = get(srv300.port, "/langs", [("Accept-Language", "ko")])
    assert r.status == 200 and r.body == FILES["langs.txt.ko"]


def test_existing_file_is_not_negotiated(srv):
    r = get(srv.port, "/doc.json", [("Accept", "text/html")])
    assert r.status == 200 and r.body == FILES["doc.json"] and r.header("Vary") is None


# ------------------------------------------------------------------ gzip on the fly

@pytest.fixture(scope="module")
def gzsrv(tmp_path_factory):
    d = tmp_path_factory.mktemp("gz")
    (d / "big.txt").write_bytes(b"hello portico " * 1000)
    (d / "tiny.txt").write_bytes(b"tiny\n")
    (d / "blob.bin").write_bytes(bytes(range(256)) * 40)
    s = start_serve(d, d.parent, tag="gz")
    yield s, d
    s.stop()
    assert not s.sanitizer_report()


def test_gzip_on_the_fly(gzsrv):
    s, d = gzsrv
    plain = get(s.port, "/big.txt")
    assert plain.header("Content-Encoding") is None and plain.header("Vary") == "Accept-Encoding"
    for _ in range(2):  # compressed once, then served from the cache entry
        r = get(s.port, "/big.txt", [("Accept-Encoding", "gzip, br")])
        assert r.status == 200
        assert r.header("Content-Encoding") == "gzip"
        assert r.header("Transfer-Encoding") == "chunked"
        assert r.header("Vary") == "Accept-Encoding"
        assert gzip.decompress(r.body) == (d / "big.txt").read_bytes()
        assert r.header("ETag") != plain.header("ETag")
    # its own validator: 304 for the gzip tag
    r = get(s.port, "/big.txt", [("Accept-Encoding", "gzip"), ("If-None-Match", r.header("ETag"))])
    assert r.status == 304 and r.header("Vary") == "Accept-Encoding"
    h = get(s.port, "/big.txt", [("Accept-Encoding", "gzip")], method="HEAD")
    assert h.status == 200 and h.header("Content-Encoding") == "gzip" and h.body == b""


@pytest.mark.parametrize("ae", ["gzip;q=0", "identity", "br", "gzip;q=0.5, identity"])
def test_gzip_only_when_preferred(gzsrv, ae):
    s, d = gzsrv
    r = get(s.port, "/big.txt", [("Accept-Encoding", ae)])
    assert r.status == 200 and r.header("Content-Encoding") is None
    assert r.body == (d / "big.txt").read_bytes()


def test_gzip_not_for_small_binary_or_ranges(gzsrv):
    s, d = gzsrv
    assert get(s.port, "/tiny.txt", [("Accept-Encoding", "gzip")]).header("Content-Encoding") is None
    assert get(s.port, "/blob.bin", [("Accept-Encoding", "gzip")]).header("Content-Encoding") is None
    r = get(s.port, "/big.txt", [("Accept-Encoding", "gzip"), ("Range", "bytes=0-4")])
    assert r.status == 206 and r.body == b"hello" and r.header("Content-Encoding") is None


# ------------------------------------------------------------------ the rest of issue 4's list

ENC_FILES = {
    "enc.txt": None,  # no such file: only variants
    "enc.txt.gz": gzip.compress(b"plain text\n"),
    "enc.txt.br": b"\x0b\x05\x80plain text\n\x03",      # bytes only: never decoded here
    "enc.txt.zst": b"\x28\xb5\x2f\xfd\x00\x58plain text\n",
    "only.txt.gz": gzip.compress(b"only gzip\n"),
}


@pytest.fixture(scope="module")
def encsrv(tmp_path_factory):
    d = tmp_path_factory.mktemp("enc")
    for name, data in ENC_FILES.items():
        if data is not None:
            (d / name).write_bytes(data)
    s = start_serve(d, d.parent, tag="enc")
    yield s
    s.stop()
    assert not s.sanitizer_report()


@pytest.mark.parametrize("ae, coding", [("br", "br"), ("zstd", "zstd"), ("gzip", "gzip"),
                                        ("br;q=0.5, zstd;q=0.9, gzip;q=0.1", "zstd"),
                                        ("identity;q=0, br", "br")])
def test_precompressed_br_zst_gz(encsrv, ae, coding):
    r = get(encsrv.port, "/enc.txt", [("Accept-Encoding", ae)])
    assert r.status == 200 and r.header("Content-Encoding") == coding
    ext = {"br": "br", "zstd": "zst", "gzip": "gz"}[coding]
    assert r.body == ENC_FILES[f"enc.txt.{ext}"]
    assert vary_set(r) == {"Accept-Encoding"}


def test_identity_excluded_and_nothing_else_acceptable_is_406(encsrv):
    # only a gzip variant exists: a client that refuses gzip and identity gets 406
    r = get(encsrv.port, "/only.txt", [("Accept-Encoding", "identity;q=0, gzip;q=0")])
    assert r.status == 406
    r = get(encsrv.port, "/only.txt", [("Accept-Encoding", "gzip")])
    assert r.status == 200 and r.header("Content-Encoding") == "gzip"


@pytest.mark.parametrize("target, want", [("/doc", {"Accept", "Accept-Language"}),
                                          ("/langs", {"Accept-Language"}),
                                          ("/page", {"Accept-Encoding"})])
def test_vary_names_exactly_the_dimensions(srv, target, want):
    for hs in ([], [("Accept-Language", "ko")], [("Accept", "application/json")],
               [("Accept-Encoding", "gzip")]):
        r = get(srv.port, target, hs)
        if r.status == 200:
            assert vary_set(r) == want, (target, hs, r.header("Vary"))


NEG_REQUESTS = [
    ("/doc", []), ("/doc", [("Accept", "application/json")]),
    ("/doc", [("Accept-Language", "kr;q=0.7, fr;q=0, en;q=0.4")]),
    ("/doc", [("Accept", "image/png")]),                     # 406
    ("/page", [("Accept-Encoding", "gzip")]), ("/page", []),
    ("/langs", [("Accept-Language", "en")]), ("/langs", [("Accept-Language", "de")]),
]


@pytest.mark.parametrize("target, hs", NEG_REQUESTS)
def test_head_equals_get_for_every_negotiated_resource(srv, srv300, target, hs):
    for s in (srv, srv300):
        g = get(s.port, target, hs)
        h = get(s.port, target, hs, method="HEAD")
        assert h.status == g.status and h.body == b""
        skip = {"date"}
        gf = [(n, v) for n, v in g.fields if n.lower() not in skip]
        hf = [(n, v) for n, v in h.fields if n.lower() not in skip]
        assert hf == gf, (target, hs, s.port)
