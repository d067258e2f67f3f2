/* test_proxy_hop.c - message rewriting of the proxy (src/proxy/hop.c):
 * hop-by-hop removal with Connection-named fields, Via, Forwarded and
 * X-Forwarded-For, Max-Forwards, authority splitting, cache keys and
 * Vary secondary keys. Requests are real wire bytes through the strict
 * parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "netaddr.h"

#include "proxy/hop.h"

static http_field_t fields[128];

static http_request_t parse(const char *wire)
{
    struct http_limits lim;
    http_limits_default(&lim);
    http_parse_state_t st;
    http_parse_state_init(&st);
    http_request_t r;
    const char *why = "";
    int rc = http_parse_request(wire, strlen(wire), &st, &lim, fields, &r, &why);
    if (rc != (int)strlen(wire)) {
        print_error("parse: %d %s\n", rc, why);
        fail();
    }
    return r;
}

static const char *write_req(const http_request_t *r, struct hop_req_opts *o, buf_t *b)
{
    buf_init(b, 1 << 16);
    assert_int_equal(hop_write_request(b, r, o), 0);
    assert_int_equal(buf_append(b, "", 1), 0);
    return buf_head(b);
}


static void test_hop_by_hop_removed(void **state)
{
    (void)state;
    http_request_t r = parse("GET http://origin.test:8080/a?b=1 HTTP/1.1\r\n"
                             "Host: ignored.test\r\n"
                             "Connection: keep-alive, X-Secret , x-other\r\n"
                             "Keep-Alive: timeout=5\r\n"
                             "Proxy-Connection: keep-alive\r\n"
                             "TE: trailers\r\n"
                             "Trailer: X-T\r\n"
                             "Upgrade: websocket\r\n"
                             "Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"
                             "Proxy-Authenticate: Basic\r\n"
                             "x-secret: 1\r\n"
                             "X-Other: 2\r\n"
                             "Accept: text/html\r\n"
                             "Cookie: a=b\r\n"
                             "\r\n");
    struct hop_req_opts o = { .method = r.method, .target = SLICE_LIT("/a?b=1"),
                              .host = SLICE_LIT("origin.test:8080"), .via_name = "portico" };
    buf_t b;
    const char *s = write_req(&r, &o, &b);
    assert_string_equal(s, "GET /a?b=1 HTTP/1.1\r\n"
                           "Host: origin.test:8080\r\n"
                           "Accept: text/html\r\n"
                           "Cookie: a=b\r\n"
                           "Via: 1.1 portico\r\n"
                           "\r\n");
    buf_dispose(&b);

    struct hop_conn hc;
    hop_conn_collect(r.fields, r.nfields, &hc);
    assert_int_equal(hc.n, 3);
    assert_true(hop_is_hop(SLICE_LIT("X-SECRET"), &hc));
    assert_true(hop_is_hop(SLICE_LIT("Transfer-Encoding"), &hc));
    assert_true(hop_is_hop(SLICE_LIT("proxy-authenticate"), NULL));
    assert_false(hop_is_hop(SLICE_LIT("X-Secre"), &hc));
    assert_false(hop_is_hop(SLICE_LIT("Content-Length"), &hc));
    assert_false(hop_is_hop(SLICE_LIT("Cache-Control"), &hc));
}

static void test_connection_overflow(void **state)
{
    (void)state;
    char wire[4096];
    int n = snprintf(wire, sizeof wire, "GET / HTTP/1.1\r\nHost: h\r\nConnection: ");
    for (unsigned i = 0; i < PROXY_MAX_CONN_TOKENS + 3; i++)
        n += snprintf(wire + n, sizeof wire - (size_t)n, "%sx-f%u", i ? ", " : "", i);
    snprintf(wire + n, sizeof wire - (size_t)n, "\r\nX-F%u: leak\r\n\r\n", PROXY_MAX_CONN_TOKENS + 2);
    http_request_t r = parse(wire);
    struct hop_conn hc;
    hop_conn_collect(r.fields, r.nfields, &hc);
    assert_true(hc.overflow);
    /* A name past the cap must still not leak. */
    char last[32];
    snprintf(last, sizeof last, "X-F%u", PROXY_MAX_CONN_TOKENS + 2);
    assert_true(hop_is_hop(slice_cstr(last), &hc));
    assert_false(hop_is_hop(SLICE_LIT("Content-Length"), &hc));
}

static void test_via_forwarded(void **state)
{
    (void)state;
    http_request_t r = parse("POST /up HTTP/1.0\r\n"
                             "Host: o.test\r\n"
                             "Via: 1.1 first\r\n"
                             "Forwarded: for=192.0.2.1\r\n"
                             "Via: 1.0 second\r\n"
                             "X-Forwarded-For: 192.0.2.1\r\n"
                             "Content-Length: 3\r\n"
                             "\r\n");
    addr_t c = test_ip("2001:db8::7");
    struct hop_req_opts o = { .method = r.method, .target = SLICE_LIT("/up"), .host = SLICE_LIT("o.test"),
                              .client = &c, .via_name = "portico", .forwarded = 1, .x_forwarded_for = 1 };
    buf_t b;
    const char *s = write_req(&r, &o, &b);
    assert_string_equal(s, "POST /up HTTP/1.1\r\n"
                           "Host: o.test\r\n"
                           "Content-Length: 3\r\n"
                           "Via: 1.1 first, 1.0 second, 1.0 portico\r\n"
                           "Forwarded: for=192.0.2.1, for=\"[2001:db8::7]\";host=o.test;proto=http\r\n"
                           "X-Forwarded-For: 192.0.2.1, 2001:db8::7\r\n"
                           "\r\n");
    buf_dispose(&b);

    /* A mapped client is written as IPv4; a host with ':' is quoted. */
    r = parse("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    c = test_ip("::ffff:10.1.2.3");
    o = (struct hop_req_opts){ .method = r.method, .target = SLICE_LIT("/"), .host = SLICE_LIT("[::1]:81"),
                               .client = &c, .via_name = "p", .forwarded = 1, .chunked = 1 };
    s = write_req(&r, &o, &b);
    assert_string_equal(s, "GET / HTTP/1.1\r\n"
                           "Host: [::1]:81\r\n"
                           "Via: 1.1 p\r\n"
                           "Forwarded: for=10.1.2.3;host=\"[::1]:81\";proto=http\r\n"
                           "Transfer-Encoding: chunked\r\n"
                           "\r\n");
    buf_dispose(&b);

    /* IPv4 written by hand (no inet_ntop): one, two and three digits, 0. */
    r = parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    c = test_ip("255.0.100.9");
    o = (struct hop_req_opts){ .method = r.method, .target = SLICE_LIT("/"), .host = SLICE_LIT("a"),
                               .client = &c, .via_name = "p", .x_forwarded_for = 1 };
    s = write_req(&r, &o, &b);
    assert_string_equal(s, "GET / HTTP/1.1\r\n"
                           "Host: a\r\n"
                           "Via: 1.1 p\r\n"
                           "X-Forwarded-For: 255.0.100.9\r\n"
                           "\r\n");
    buf_dispose(&b);

    char via[32];
    assert_int_equal(hop_via(via, sizeof via, SLICE_LIT("1.1 a"), 11, "portico"), 18);
    assert_string_equal(via, "1.1 a, 1.1 portico");
    assert_int_equal(hop_via(via, 10, SLICE_LIT("1.1 a"), 11, "portico"), -1);

    /* Too small an output: -ENOBUFS and nothing half-written. */
    buf_init(&b, 20);
    assert_true(hop_write_request(&b, &r, &o) < 0);
    assert_int_equal(b.len, 0);
    buf_dispose(&b);
}

static void test_max_forwards(void **state)
{
    (void)state;
    http_request_t r = parse("TRACE / HTTP/1.1\r\nHost: a\r\nMax-Forwards: 3\r\n\r\n");
    assert_int_equal(hop_max_forwards(&r), 3);
    struct hop_req_opts o = { .method = r.method, .target = SLICE_LIT("/"), .host = SLICE_LIT("a"),
                              .via_name = "p" };
    buf_t b;
    const char *s = write_req(&r, &o, &b);
    assert_non_null(strstr(s, "\r\nMax-Forwards: 2\r\n"));
    assert_null(strstr(s, "Max-Forwards: 3"));
    buf_dispose(&b);

    r = parse("OPTIONS * HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n");
    assert_int_equal(hop_max_forwards(&r), 0);
    r = parse("OPTIONS * HTTP/1.1\r\nHost: a\r\nMax-Forwards: x1\r\n\r\n");
    assert_int_equal(hop_max_forwards(&r), -1);
    r = parse("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(hop_max_forwards(&r), -1);
    /* Other methods ignore it, and it passes unchanged. */
    r = parse("GET / HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n");
    assert_int_equal(hop_max_forwards(&r), -1);
    o.method = r.method;
    s = write_req(&r, &o, &b);
    assert_non_null(strstr(s, "\r\nMax-Forwards: 0\r\n"));
    buf_dispose(&b);
}

static void test_authority(void **state)
{
    (void)state;
    static const struct {
        const char *in, *host;
        int port;
    } t[] = {
        { "a.test", "a.test", 80 },     { "a.test:8080", "a.test", 8080 }, { "a.test:", "a.test", 80 },
        { "[::1]", "::1", 80 },         { "[::1]:443", "::1", 443 },       { "1.2.3.4:1", "1.2.3.4", 1 },
        { "", NULL, 0 },                { ":80", NULL, 0 },                { "a:0", NULL, 0 },
        { "a:65536", NULL, 0 },         { "a:8x", NULL, 0 },               { "[::1", NULL, 0 },
        { "[]:80", NULL, 0 },           { "[::1]x", NULL, 0 },             { "a:1234567", NULL, 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        slice_t h = { 0 };
        uint16_t port = 0;
        int rc = hop_authority_split(slice_cstr(t[i].in), &h, &port, 80);
        if (t[i].host == NULL) {
            if (rc != -1) {
                print_error("'%s' accepted\n", t[i].in);
                fail();
            }
            continue;
        }
        assert_int_equal(rc, 0);
        assert_true(slice_eq(h, slice_cstr(t[i].host)));
        assert_int_equal(port, t[i].port);
    }
}

static void test_cache_key(void **state)
{
    (void)state;
    char k[256];
    assert_int_equal(hop_cache_key(k, sizeof k, 0, SLICE_LIT("Example.COM"), 80, SLICE_LIT("/A/b"),
                                   SLICE_LIT("x=Y"), 1), 26);
    assert_string_equal(k, "http://example.com/A/b?x=Y");
    hop_cache_key(k, sizeof k, 0, SLICE_LIT("example.com."), 8080, SLICE_LIT(""), SLICE_LIT(""), 0);
    assert_string_equal(k, "http://example.com:8080/");
    hop_cache_key(k, sizeof k, 0, SLICE_LIT("::1"), 80, SLICE_LIT("/"), SLICE_LIT(""), 1);
    assert_string_equal(k, "http://[::1]/?");
    hop_cache_key(k, sizeof k, 1, SLICE_LIT("h"), 443, SLICE_LIT("/"), SLICE_LIT(""), 0);
    assert_string_equal(k, "https://h/");
    hop_cache_key(k, sizeof k, 1, SLICE_LIT("h"), 80, SLICE_LIT("/"), SLICE_LIT(""), 0);
    assert_string_equal(k, "https://h:80/");
    /* "/?" and "/" are different URIs; so are two hosts with one path. */
    char k2[256];
    hop_cache_key(k2, sizeof k2, 0, SLICE_LIT("::1"), 80, SLICE_LIT("/"), SLICE_LIT(""), 0);
    assert_string_not_equal(k2, "http://[::1]/?");
    /* Does not fit: -1, never a cut key. */
    assert_int_equal(hop_cache_key(k, 20, 0, SLICE_LIT("example.com"), 80, SLICE_LIT("/long/path"),
                                   SLICE_LIT(""), 0), -1);
}

static void test_vary_key(void **state)
{
    (void)state;
    http_request_t a = parse("GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip,  br\r\n"
                             "Accept-Language: en\r\nAccept-Language: fr\r\nX-Empty: \r\n\r\n");
    char k[512];
    int n = hop_vary_key(k, sizeof k, SLICE_LIT("Accept-Encoding, accept-language,X-Empty, X-None"),
                         a.fields, a.nfields);
    assert_true(n > 0);
    assert_string_equal(k, "accept-encoding:gzip, br\naccept-language:en,fr\nx-empty:\nx-none\n");
    /* Whitespace runs normalised: the same key. */
    http_request_t b = parse("GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip, \t br\r\n\r\n");
    char k2[512], k3[512];
    hop_vary_key(k2, sizeof k2, SLICE_LIT("accept-encoding"), b.fields, b.nfields);
    hop_vary_key(k3, sizeof k3, SLICE_LIT("Accept-Encoding"), a.fields, a.nfields);
    assert_string_equal(k2, k3);
    /* A different value differs. */
    b = parse("GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n");
    hop_vary_key(k2, sizeof k2, SLICE_LIT("accept-encoding"), b.fields, b.nfields);
    assert_string_not_equal(k2, k3);
    /* * never matches. */
    assert_int_equal(hop_vary_key(k, sizeof k, SLICE_LIT("Accept, *"), a.fields, a.nfields), HOP_VARY_STAR);
    /* Empty Vary: an empty key. */
    assert_int_equal(hop_vary_key(k, sizeof k, SLICE_LIT(""), a.fields, a.nfields), 0);
    assert_string_equal(k, "");
    /* Too small or too many names: -1. */
    assert_int_equal(hop_vary_key(k, 10, SLICE_LIT("Accept-Encoding"), a.fields, a.nfields), -1);
    char many[1024] = "";
    for (unsigned i = 0; i <= PROXY_MAX_VARY_FIELDS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "x-%u,", i);
    assert_int_equal(hop_vary_key(k, sizeof k, slice_cstr(many), a.fields, a.nfields), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hop_by_hop_removed),
        cmocka_unit_test(test_connection_overflow),
        cmocka_unit_test(test_via_forwarded),
        cmocka_unit_test(test_max_forwards),
        cmocka_unit_test(test_authority),
        cmocka_unit_test(test_cache_key),
        cmocka_unit_test(test_vary_key),
    };
    return cmocka_run_group_tests_name("proxy_hop", tests, NULL, NULL);
}
