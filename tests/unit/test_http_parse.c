/* test_http_parse.c - the HTTP/1.1 request head parser (src/http/parse.c).
 *
 * Tables of raw wire bytes. Every input is fed
 *   - whole;
 *   - split at every offset k: the prefix of length k, then the whole with
 *     the same state (the prefix must give HTTP_PARSE_INCOMPLETE or the
 *     final answer);
 *   - byte by byte with one http_parse_state_t carried across the calls,
 *     both in a buffer placed right before a PROT_NONE page (so any read
 *     past len faults, the picohttpparser trick) and in one growing buffer
 *     as the server does;
 *   - in random chains of growing prefixes.
 * A valid head must give HTTP_PARSE_INCOMPLETE for every prefix shorter
 * than itself and its length for every longer one; a malformed one must
 * give INCOMPLETE or its exact error for every prefix, and the error for
 * the whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "guard.h"

#include "http/limits.h"
#include "http/parse.h"

/* ------------------------------------------------------------ guard pages */

/* Copies n bytes so that the last one is right before the guard page. */
static guard_t g_in;      /* request bytes */
static guard_t g_fields;  /* the caller's field array, max_fields entries */

#define IN_CAP (1u << 20)

static int group_setup(void **state)
{
    (void)state;
    guard_init(&g_in, IN_CAP);
    guard_init(&g_fields, (HTTP_DEFAULT_MAX_FIELDS + 16) * sizeof(http_field_t));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    guard_dispose(&g_in);
    guard_dispose(&g_fields);
    return 0;
}

/* An array of exactly lim->max_fields entries ending at the guard page. */
static http_field_t *fields_for(const struct http_limits *lim)
{
    size_t n = lim->max_fields;
    assert_true(n * sizeof(http_field_t) <= (size_t)(g_fields.end - g_fields.base));
    return (http_field_t *)(void *)(g_fields.end - n * sizeof(http_field_t));
}

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static void limits_or_default(struct http_limits *out, const struct http_limits *in)
{
    if (in != NULL)
        *out = *in;
    else
        http_limits_default(out);
}

/* Parses src[0, n) placed before the guard page; *placed is where. */
static int parse_guarded(const char *src, size_t n, http_parse_state_t *st,
                         const struct http_limits *lim, http_request_t *req, const char **placed)
{
    char *p = guard_put(&g_in, src, n);
    const char *why = NULL;
    int rc = http_parse_request(p, n, st, lim, fields_for(lim), req, &why);
    if (why == NULL) {
        print_error("*why left NULL (rc %d)\n", rc);
        fail();
    }
    if (rc < 0 && rc != HTTP_PARSE_PREFACE && why[0] == '\0') {
        print_error("error %d without a reason\n", rc);
        fail();
    }
    *placed = p;
    return rc;
}

static int parse_plain(const char *buf, size_t n, http_parse_state_t *st,
                       const struct http_limits *lim, http_request_t *req)
{
    const char *why = NULL;
    int rc = http_parse_request(buf, n, st, lim, fields_for(lim), req, &why);
    assert_non_null(why);
    return rc;
}

static void want_rc(const char *name, const char *mode, size_t k, int got, int want)
{
    if (got != want) {
        print_error("%s: %s (prefix %zu): got %d, want %d\n", name, mode, k, got, want);
        fail();
    }
}

static int slice_is(slice_t s, const char *want)
{
    size_t n = strlen(want);
    return s.len == n && (n == 0 || memcmp(s.p, want, n) == 0);
}

static void want_slice(const char *name, const char *what, slice_t s, const char *want)
{
    if (!slice_is(s, want)) {
        print_error("%s: %s is \"%.*s\" (%zu bytes), want \"%s\"\n", name, what, (int)s.len,
                    s.p ? s.p : "", s.len, want);
        fail();
    }
}

static void want_inside(const char *name, const char *what, slice_t s, const char *buf, size_t n)
{
    if (s.len > 0 && (s.p < buf || s.p + s.len > buf + n)) {
        print_error("%s: %s does not point into the head\n", name, what);
        fail();
    }
}

#define WANT(cond, ...) do {                                      \
        if (!(cond)) {                                            \
            print_error("%s: ", c->name);                         \
            print_error(__VA_ARGS__);                             \
            print_error("\n");                                    \
            fail();                                               \
        }                                                         \
    } while (0)

/* -------------------------------------------------------- valid requests */

struct field_want {
    const char *name;
    const char *value;
};

#define MAX_WANT_FIELDS 24
#define NO_CHECK ((const char *)1)   /* a slice not to check */

struct valid_case {
    const char *name;
    const char *head;                 /* the whole head, terminator included */
    const char *extra;                /* bytes after the head (body, next request) */
    size_t extra_len;
    const struct http_limits *lim;    /* NULL: the defaults */
    const char *method;
    enum http_method method_id;
    const char *target;
    enum http_target_form form;
    const char *path;                 /* NO_CHECK: checked elsewhere */
    const char *query;                /* NULL: no '?' */
    int version;
    const char *host;                 /* NULL: no host */
    int64_t content_length;
    int chunked, keep_alive, expect_continue;
    struct field_want fields[MAX_WANT_FIELDS];   /* up to a NULL name */
};

#define EXTRA(s) .extra = (s), .extra_len = sizeof(s) - 1

static void check_req(const struct valid_case *c, const char *buf, const http_request_t *r)
{
    size_t hl = strlen(c->head);
    WANT(r->head_len == hl, "head_len %zu, want %zu", r->head_len, hl);
    want_slice(c->name, "method", r->method, c->method);
    want_inside(c->name, "method", r->method, buf, hl);
    WANT(r->method_id == c->method_id, "method_id %d, want %d", (int)r->method_id, (int)c->method_id);
    want_slice(c->name, "target", r->target, c->target);
    want_inside(c->name, "target", r->target, buf, hl);
    WANT(r->form == c->form, "form %d, want %d", (int)r->form, (int)c->form);
    if (c->path != NO_CHECK)
        want_slice(c->name, "path", r->path, c->path);
    if (c->form == HTTP_T_ORIGIN || c->form == HTTP_T_AUTHORITY)
        want_inside(c->name, "path", r->path, buf, hl);
    if (c->query == NULL) {
        WANT(!r->has_query, "has_query set without a '?'");
        WANT(r->query.len == 0, "query not empty without a '?'");
    } else {
        WANT(r->has_query, "has_query not set");
        want_slice(c->name, "query", r->query, c->query);
        want_inside(c->name, "query", r->query, buf, hl);
    }
    WANT(r->version == c->version, "version %d, want %d", r->version, c->version);
    if (c->host == NULL) {
        WANT(!r->has_host, "has_host set, host \"%.*s\"", (int)r->host.len, r->host.p);
    } else {
        WANT(r->has_host, "has_host not set");
        want_slice(c->name, "host", r->host, c->host);
        want_inside(c->name, "host", r->host, buf, hl);
    }
    WANT(r->content_length == c->content_length, "content_length %lld, want %lld",
         (long long)r->content_length, (long long)c->content_length);
    WANT(r->chunked == c->chunked, "chunked %d, want %d", r->chunked, c->chunked);
    WANT(r->keep_alive == c->keep_alive, "keep_alive %d, want %d", r->keep_alive, c->keep_alive);
    WANT(r->expect_continue == c->expect_continue, "expect_continue %d, want %d",
         r->expect_continue, c->expect_continue);
    size_t nf = 0;
    while (nf < MAX_WANT_FIELDS && c->fields[nf].name != NULL)
        nf++;
    WANT(r->nfields == nf, "nfields %zu, want %zu", r->nfields, nf);
    for (size_t i = 0; i < nf; i++) {
        char what[64];
        snprintf(what, sizeof what, "field %zu name", i);
        want_slice(c->name, what, r->fields[i].name, c->fields[i].name);
        want_inside(c->name, what, r->fields[i].name, buf, hl);
        snprintf(what, sizeof what, "field %zu value", i);
        want_slice(c->name, what, r->fields[i].value, c->fields[i].value);
        want_inside(c->name, what, r->fields[i].value, buf, hl);
    }
}

static void run_valid(const struct valid_case *c)
{
    struct http_limits lim;
    limits_or_default(&lim, c->lim);
    size_t hl = strlen(c->head), n = hl + c->extra_len;
    int want = (int)hl;
    char *whole = malloc(n + 1);
    assert_non_null(whole);
    memcpy(whole, c->head, hl);
    if (c->extra_len > 0)
        memcpy(whole + hl, c->extra, c->extra_len);
    http_parse_state_t st;
    http_request_t req;
    const char *p;
    int rc;

    /* Whole. */
    http_parse_state_init(&st);
    rc = parse_guarded(whole, n, &st, &lim, &req, &p);
    want_rc(c->name, "whole", n, rc, want);
    check_req(c, p, &req);

    /* A prefix of every length, then the whole with the same state. */
    for (size_t k = 0; k <= n; k++) {
        http_parse_state_init(&st);
        rc = parse_guarded(whole, k, &st, &lim, &req, &p);
        if (k < hl) {
            want_rc(c->name, "split, prefix", k, rc, HTTP_PARSE_INCOMPLETE);
            rc = parse_guarded(whole, n, &st, &lim, &req, &p);
            want_rc(c->name, "split, then whole", k, rc, want);
        } else {
            want_rc(c->name, "split, prefix", k, rc, want);
        }
        check_req(c, p, &req);
    }

    /* Byte by byte, one state, each prefix before the guard page. */
    http_parse_state_init(&st);
    for (size_t k = 0; k <= hl; k++) {
        rc = parse_guarded(whole, k, &st, &lim, &req, &p);
        want_rc(c->name, "byte by byte", k, rc, k < hl ? HTTP_PARSE_INCOMPLETE : want);
    }
    check_req(c, p, &req);

    /* Byte by byte in one growing buffer, the way the server reads. */
    http_parse_state_init(&st);
    for (size_t k = 1; k <= hl; k++) {
        rc = parse_plain(whole, k, &st, &lim, &req);
        want_rc(c->name, "growing buffer", k, rc, k < hl ? HTTP_PARSE_INCOMPLETE : want);
    }
    check_req(c, whole, &req);

    /* Random chains of growing prefixes. */
    for (int chain = 0; chain < 16; chain++) {
        http_parse_state_init(&st);
        size_t k = 0;
        for (;;) {
            k += 1 + (size_t)(rng() % (chain < 8 ? 4 : 40));
            if (k > n)
                k = n;
            rc = parse_guarded(whole, k, &st, &lim, &req, &p);
            if (k < hl) {
                want_rc(c->name, "random chain", k, rc, HTTP_PARSE_INCOMPLETE);
                continue;
            }
            want_rc(c->name, "random chain", k, rc, want);
            check_req(c, p, &req);
            break;
        }
    }
    free(whole);
}

#define H11 "Host: a\r\n"

static const struct valid_case valid_cases[] = {
    {
        .name = "GET, origin-form",
        .head = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1.0\r\n"
                "Accept: */*\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/index.html", .form = HTTP_T_ORIGIN,
        .path = "/index.html", .version = 11, .host = "example.com", .content_length = -1,
        .keep_alive = 1,
        .fields = { { "Host", "example.com" }, { "User-Agent", "t/1.0" }, { "Accept", "*/*" } },
    },
    {
        .name = "GET with a query string",
        .head = "GET /search?q=a+b&lang=en%2Dus HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/search?q=a+b&lang=en%2Dus",
        .path = "/search", .query = "q=a+b&lang=en%2Dus", .version = 11, .host = "h",
        .content_length = -1, .keep_alive = 1, .fields = { { "Host", "h" } },
    },
    {
        .name = "empty query",
        .head = "GET /a? HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/a?", .path = "/a", .query = "",
        .version = 11, .host = "h", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "h" } },
    },
    {
        .name = "query holding '?' and '/'",
        .head = "GET /a?b?c/d HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/a?b?c/d", .path = "/a",
        .query = "b?c/d", .version = 11, .host = "h", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "h" } },
    },
    {
        .name = "every pchar in path and query",
        .head = "GET /-._~!$&'()*+,;=:@%41%7e/x//y?-._~!$&'()*+,;=:@/?%20 HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET,
        .target = "/-._~!$&'()*+,;=:@%41%7e/x//y?-._~!$&'()*+,;=:@/?%20",
        .path = "/-._~!$&'()*+,;=:@%41%7e/x//y", .query = "-._~!$&'()*+,;=:@/?%20",
        .version = 11, .host = "h", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "h" } },
    },
    {
        .name = "path with empty segments",
        .head = "GET //a//b/ HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "//a//b/", .path = "//a//b/",
        .version = 11, .host = "h", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "h" } },
    },
    {
        .name = "HEAD",
        .head = "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "HEAD", .method_id = HTTP_M_HEAD, .target = "/x", .path = "/x", .version = 11,
        .host = "h", .content_length = -1, .keep_alive = 1, .fields = { { "Host", "h" } },
    },
    {
        .name = "POST with Content-Length and its body after the head",
        .head = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
                "Content-Length: 11\r\n\r\n",
        EXTRA("hello world"),
        .method = "POST", .method_id = HTTP_M_POST, .target = "/upload", .path = "/upload",
        .version = 11, .host = "h", .content_length = 11, .keep_alive = 1,
        .fields = { { "Host", "h" }, { "Content-Type", "text/plain" }, { "Content-Length", "11" } },
    },
    {
        .name = "POST chunked",
        .head = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
        EXTRA("5\r\nhello\r\n0\r\n\r\n"),
        .method = "POST", .method_id = HTTP_M_POST, .target = "/up", .path = "/up", .version = 11,
        .host = "h", .content_length = -1, .chunked = 1, .keep_alive = 1,
        .fields = { { "Host", "h" }, { "Transfer-Encoding", "chunked" } },
    },
    {
        .name = "PUT, Transfer-Encoding in capitals with whitespace",
        .head = "PUT /f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \t CHUNKED \t\r\n\r\n",
        .method = "PUT", .method_id = HTTP_M_PUT, .target = "/f", .path = "/f", .version = 11,
        .host = "h", .content_length = -1, .chunked = 1, .keep_alive = 1,
        .fields = { { "Host", "h" }, { "Transfer-Encoding", "CHUNKED" } },
    },
    {
        .name = "Content-Length 0",
        .head = "POST /z HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        .method = "POST", .method_id = HTTP_M_POST, .target = "/z", .path = "/z", .version = 11,
        .host = "h", .content_length = 0, .keep_alive = 1,
        .fields = { { "Host", "h" }, { "Content-Length", "0" } },
    },
    {
        .name = "Content-Length with leading zeros",
        .head = "POST /z HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n",
        EXTRA("1234567"),
        .method = "POST", .method_id = HTTP_M_POST, .target = "/z", .path = "/z", .version = 11,
        .host = "h", .content_length = 7, .keep_alive = 1,
        .fields = { { "Host", "h" }, { "Content-Length", "007" } },
    },
    {
        .name = "Content-Length of 18 digits",
        .head = "POST /z HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999999999\r\n\r\n",
        .method = "POST", .method_id = HTTP_M_POST, .target = "/z", .path = "/z", .version = 11,
        .host = "h", .content_length = 999999999999999999LL, .keep_alive = 1,
        .fields = { { "Host", "h" }, { "Content-Length", "999999999999999999" } },
    },
    {
        .name = "HTTP/1.0 without Host, no keep-alive",
        .head = "GET / HTTP/1.0\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 10,
        .content_length = -1, .keep_alive = 0,
    },
    {
        .name = "HTTP/1.0 with Connection: keep-alive",
        .head = "GET /a HTTP/1.0\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/a", .path = "/a", .version = 10,
        .host = "h", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "h" }, { "Connection", "Keep-Alive" } },
    },
    {
        .name = "HTTP/1.0 with keep-alive and close",
        .head = "GET /a HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/a", .path = "/a", .version = 10,
        .content_length = -1, .keep_alive = 0,
        .fields = { { "Connection", "keep-alive" }, { "Connection", "close" } },
    },
    {
        .name = "HTTP/1.0 POST with a body, no Host",
        .head = "POST /f HTTP/1.0\r\nContent-Length: 3\r\n\r\n",
        EXTRA("abc"),
        .method = "POST", .method_id = HTTP_M_POST, .target = "/f", .path = "/f", .version = 10,
        .content_length = 3, .keep_alive = 0, .fields = { { "Content-Length", "3" } },
    },
    {
        .name = "HTTP/1.1 Connection: close",
        .head = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 11,
        .host = "h", .content_length = -1, .keep_alive = 0,
        .fields = { { "Host", "h" }, { "Connection", "close" } },
    },
    {
        .name = "HTTP/1.1 Connection list holding close",
        .head = "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, keep-alive ,CLOSE\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 11,
        .host = "h", .content_length = -1, .keep_alive = 0,
        .fields = { { "Host", "h" }, { "Connection", "foo, keep-alive ,CLOSE" } },
    },
    {
        .name = "HTTP/1.1 Connection: keep-alive, Upgrade",
        .head = "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 11,
        .host = "h", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "h" }, { "Connection", "keep-alive, Upgrade" } },
    },
    {
        .name = "absolute-form: the target's authority wins over Host",
        .head = "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other.example\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "http://example.com:8080/a/b?c=d",
        .form = HTTP_T_ABSOLUTE, .path = "/a/b", .query = "c=d", .version = 11,
        .host = "example.com:8080", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "other.example" } },
    },
    {
        .name = "absolute-form without a path",
        .head = "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "http://example.com",
        .form = HTTP_T_ABSOLUTE, .path = "/", .version = 11, .host = "example.com",
        .content_length = -1, .keep_alive = 1, .fields = { { "Host", "example.com" } },
    },
    {
        .name = "absolute-form, HTTPS in capitals, query without a path",
        .head = "GET HTTPS://EXAMPLE.org?x=1 HTTP/1.1\r\nHost: example.org\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "HTTPS://EXAMPLE.org?x=1",
        .form = HTTP_T_ABSOLUTE, .path = "/", .query = "x=1", .version = 11,
        .host = "EXAMPLE.org", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "example.org" } },
    },
    {
        .name = "absolute-form in HTTP/1.0 without Host",
        .head = "GET http://h.example/p HTTP/1.0\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "http://h.example/p",
        .form = HTTP_T_ABSOLUTE, .path = "/p", .version = 10, .host = "h.example",
        .content_length = -1, .keep_alive = 0,
    },
    {
        .name = "OPTIONS *",
        .head = "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "OPTIONS", .method_id = HTTP_M_OPTIONS, .target = "*", .form = HTTP_T_ASTERISK,
        .path = NO_CHECK, /* see test_asterisk_form_path */
        .version = 11, .host = "h", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "h" } },
    },
    {
        .name = "OPTIONS on a path",
        .head = "OPTIONS /x HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "OPTIONS", .method_id = HTTP_M_OPTIONS, .target = "/x", .path = "/x",
        .version = 11, .host = "h", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "h" } },
    },
    {
        .name = "CONNECT host:port",
        .head = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        .method = "CONNECT", .method_id = HTTP_M_CONNECT, .target = "example.com:443",
        .form = HTTP_T_AUTHORITY, .path = "example.com:443", .version = 11,
        .host = "example.com:443", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "example.com:443" } },
    },
    {
        .name = "CONNECT [IPv6]:port",
        .head = "CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n",
        .method = "CONNECT", .method_id = HTTP_M_CONNECT, .target = "[2001:db8::1]:8443",
        .form = HTTP_T_AUTHORITY, .path = "[2001:db8::1]:8443", .version = 11,
        .host = "[2001:db8::1]:8443", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "[2001:db8::1]:8443" } },
    },
    {
        .name = "leading empty lines",
        .head = "\r\n\r\n\r\nGET /l HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/l", .path = "/l", .version = 11,
        .host = "h", .content_length = -1, .keep_alive = 1, .fields = { { "Host", "h" } },
    },
    {
        .name = "one leading empty line, HTTP/1.0 with no fields",
        .head = "\r\nGET / HTTP/1.0\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 10,
        .content_length = -1,
    },
    {
        .name = "many fields",
        .head = "GET /m HTTP/1.1\r\nHost: h\r\nA1: 1\r\nA2: 2\r\nA3: 3\r\nA4: 4\r\nA5: 5\r\n"
                "A6: 6\r\nA7: 7\r\nA8: 8\r\nA9: 9\r\nA10: 10\r\nA11: 11\r\nA12: 12\r\n"
                "A13: 13\r\nA14: 14\r\nA15: 15\r\nA16: 16\r\nA17: 17\r\nA18: 18\r\n"
                "A19: 19\r\nA20: 20\r\nA21: 21\r\nA22: 22\r\nA23: 23\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/m", .path = "/m", .version = 11,
        .host = "h", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "h" }, { "A1", "1" }, { "A2", "2" }, { "A3", "3" }, { "A4", "4" },
                    { "A5", "5" }, { "A6", "6" }, { "A7", "7" }, { "A8", "8" }, { "A9", "9" },
                    { "A10", "10" }, { "A11", "11" }, { "A12", "12" }, { "A13", "13" },
                    { "A14", "14" }, { "A15", "15" }, { "A16", "16" }, { "A17", "17" },
                    { "A18", "18" }, { "A19", "19" }, { "A20", "20" }, { "A21", "21" },
                    { "A22", "22" }, { "A23", "23" } },
    },
    {
        .name = "field values: inner spaces and tabs, obs-text, trimming, empty",
        .head = "GET / HTTP/1.1\r\nHost: h\r\n"
                "X-Sp: a b  c\r\n"
                "X-Tab: a\tb\t\tc\r\n"
                "X-Obs: \x80\xa0\xff" "caf\xc3\xa9\r\n"
                "X-Trim: \t  lead and trail \t \r\n"
                "X-Empty:\r\n"
                "X-Blank: \t \r\n"
                "X-NoSp:v\r\n"
                "X-Punct: \"q\" (c) <a> {b} [d] \\ ; = , @\r\n"
                "\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 11,
        .host = "h", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "h" }, { "X-Sp", "a b  c" }, { "X-Tab", "a\tb\t\tc" },
                    { "X-Obs", "\x80\xa0\xff" "caf\xc3\xa9" }, { "X-Trim", "lead and trail" },
                    { "X-Empty", "" }, { "X-Blank", "" }, { "X-NoSp", "v" },
                    { "X-Punct", "\"q\" (c) <a> {b} [d] \\ ; = , @" } },
    },
    {
        .name = "field names: every tchar, any case",
        .head = "GET / HTTP/1.1\r\nhOsT: h\r\n!#$%&'*+-.^_`|~09AZaz: v\r\n"
                "content-LENGTH: 2\r\n\r\n",
        EXTRA("ok"),
        .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 11,
        .host = "h", .content_length = 2, .keep_alive = 1,
        .fields = { { "hOsT", "h" }, { "!#$%&'*+-.^_`|~09AZaz", "v" }, { "content-LENGTH", "2" } },
    },
    {
        .name = "Expect: 100-continue in HTTP/1.1",
        .head = "PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
        .method = "PUT", .method_id = HTTP_M_PUT, .target = "/f", .path = "/f", .version = 11,
        .host = "h", .content_length = 3, .keep_alive = 1, .expect_continue = 1,
        .fields = { { "Host", "h" }, { "Expect", "100-Continue" }, { "Content-Length", "3" } },
    },
    {
        .name = "Expect: 100-continue ignored in HTTP/1.0",
        .head = "PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        .method = "PUT", .method_id = HTTP_M_PUT, .target = "/f", .path = "/f", .version = 10,
        .content_length = 3, .keep_alive = 0, .expect_continue = 0,
        .fields = { { "Expect", "100-continue" }, { "Content-Length", "3" } },
    },
    {
        .name = "DELETE",
        .head = "DELETE /d HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "DELETE", .method_id = HTTP_M_DELETE, .target = "/d", .path = "/d",
        .version = 11, .host = "h", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "h" } },
    },
    {
        .name = "PATCH",
        .head = "PATCH /d HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n",
        EXTRA("x"),
        .method = "PATCH", .method_id = HTTP_M_PATCH, .target = "/d", .path = "/d",
        .version = 11, .host = "h", .content_length = 1, .keep_alive = 1,
        .fields = { { "Host", "h" }, { "Content-Length", "1" } },
    },
    {
        .name = "TRACE",
        .head = "TRACE / HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "TRACE", .method_id = HTTP_M_TRACE, .target = "/", .path = "/", .version = 11,
        .host = "h", .content_length = -1, .keep_alive = 1, .fields = { { "Host", "h" } },
    },
    {
        .name = "unknown method",
        .head = "PROPFIND /d HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "PROPFIND", .method_id = HTTP_M_UNKNOWN, .target = "/d", .path = "/d",
        .version = 11, .host = "h", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "h" } },
    },
    {
        .name = "method names are case-sensitive",
        .head = "get / HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "get", .method_id = HTTP_M_UNKNOWN, .target = "/", .path = "/", .version = 11,
        .host = "h", .content_length = -1, .keep_alive = 1, .fields = { { "Host", "h" } },
    },
    {
        .name = "method of odd tchars",
        .head = "M-S_E.A~R!C#H$%&'*+^`| / HTTP/1.1\r\nHost: h\r\n\r\n",
        .method = "M-S_E.A~R!C#H$%&'*+^`|", .method_id = HTTP_M_UNKNOWN, .target = "/",
        .path = "/", .version = 11, .host = "h", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "h" } },
    },
    {
        .name = "empty Host",
        .head = "GET / HTTP/1.1\r\nHost:\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 11,
        .host = "", .content_length = -1, .keep_alive = 1, .fields = { { "Host", "" } },
    },
    {
        .name = "Host: IPv6 literal and port",
        .head = "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 11,
        .host = "[::1]:8080", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "[::1]:8080" } },
    },
    {
        .name = "Host: reg-name with sub-delims and pct-encoding",
        .head = "GET / HTTP/1.1\r\nHost: a.b-c_d~e!$&'()*+,;=%41\r\n\r\n",
        .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 11,
        .host = "a.b-c_d~e!$&'()*+,;=%41", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "a.b-c_d~e!$&'()*+,;=%41" } },
    },
    {
        .name = "pipelined: the next request stays after head_len",
        .head = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n",
        EXTRA("GET /2 HTTP/1.1\r\nHost: h\r\n\r\n"),
        .method = "GET", .method_id = HTTP_M_GET, .target = "/1", .path = "/1", .version = 11,
        .host = "h", .content_length = -1, .keep_alive = 1, .fields = { { "Host", "h" } },
    },
    {
        .name = "binary bytes after the head are not looked at",
        .head = "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        EXTRA("\0\xff\r\n\n \r\n\r\n"),
        .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 11,
        .host = "h", .content_length = -1, .keep_alive = 1, .fields = { { "Host", "h" } },
    },
};

static void test_valid_requests(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++)
        run_valid(&valid_cases[i]);
}

/* parse.h: "path ... "/" for asterisk-form". */
static void test_asterisk_form_path(void **state)
{
    (void)state;
    static const char in[] = "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
    struct http_limits lim;
    http_limits_default(&lim);
    http_parse_state_t st;
    http_parse_state_init(&st);
    http_request_t req;
    const char *p;
    int rc = parse_guarded(in, sizeof in - 1, &st, &lim, &req, &p);
    assert_int_equal(rc, sizeof in - 1);
    assert_int_equal(req.form, HTTP_T_ASTERISK);
    want_slice("OPTIONS *", "path (parse.h: \"/\" for asterisk-form)", req.path, "/");
}

/* ----------------------------------------------------- malformed requests */

struct bad_case {
    const char *name;
    const char *wire;
    size_t len;
    int rc;                           /* -status, or HTTP_PARSE_PREFACE */
    int version;                      /* req->version after the error; 0: not checked */
    const struct http_limits *lim;    /* NULL: the defaults */
};

#define WIRE(s) .wire = (s), .len = sizeof(s) - 1

static void run_bad(const struct bad_case *c)
{
    struct http_limits lim;
    limits_or_default(&lim, c->lim);
    size_t n = c->len;
    http_parse_state_t st;
    http_request_t req;
    const char *p;
    int rc;

    http_parse_state_init(&st);
    rc = parse_guarded(c->wire, n, &st, &lim, &req, &p);
    want_rc(c->name, "whole", n, rc, c->rc);
    if (c->version != 0)
        WANT(req.version == c->version, "version %d after the error, want %d", req.version,
             c->version);

    for (size_t k = 0; k <= n; k++) {
        http_parse_state_init(&st);
        rc = parse_guarded(c->wire, k, &st, &lim, &req, &p);
        if (rc == HTTP_PARSE_INCOMPLETE) {
            rc = parse_guarded(c->wire, n, &st, &lim, &req, &p);
            want_rc(c->name, "split, then whole", k, rc, c->rc);
        } else {
            want_rc(c->name, "split, prefix", k, rc, c->rc);
        }
    }

    http_parse_state_init(&st);
    rc = HTTP_PARSE_INCOMPLETE;
    for (size_t k = 0; k <= n && rc == HTTP_PARSE_INCOMPLETE; k++)
        rc = parse_guarded(c->wire, k, &st, &lim, &req, &p);
    want_rc(c->name, "byte by byte", n, rc, c->rc);

    char *buf = malloc(n + 1);
    assert_non_null(buf);
    memcpy(buf, c->wire, n);
    http_parse_state_init(&st);
    rc = HTTP_PARSE_INCOMPLETE;
    for (size_t k = 1; k <= n && rc == HTTP_PARSE_INCOMPLETE; k++)
        rc = parse_plain(buf, k, &st, &lim, &req);
    want_rc(c->name, "growing buffer", n, rc, c->rc);
    free(buf);

    for (int chain = 0; chain < 16; chain++) {
        http_parse_state_init(&st);
        size_t k = 0;
        do {
            k += 1 + (size_t)(rng() % (chain < 8 ? 4 : 40));
            if (k > n)
                k = n;
            rc = parse_guarded(c->wire, k, &st, &lim, &req, &p);
        } while (rc == HTTP_PARSE_INCOMPLETE && k < n);
        want_rc(c->name, "random chain", k, rc, c->rc);
    }
}

#define RL "GET / HTTP/1.1\r\n"
#define RL10 "GET / HTTP/1.0\r\n"
#define END "\r\n"

static const struct bad_case bad_cases[] = {
    /* Line endings and bare CR. */
    { .name = "bare CR inside the target", WIRE("GET /a\rb HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "bare CR after the method", WIRE("GET\r/ HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "bare CR before the request line's CRLF", WIRE("GET / HTTP/1.1\r\r\n" H11 END), .rc = -400 },
    { .name = "bare CR ending the request line", WIRE("GET / HTTP/1.1\r" H11 END), .rc = -400 },
    { .name = "bare CR in a field value", WIRE(RL H11 "X: a\rb\r\n" END), .rc = -400, .version = 11 },
    { .name = "bare CR in the Host value", WIRE(RL "Host: a\rb\r\n" END), .rc = -400 },
    { .name = "bare CR ending a field line", WIRE(RL "Host: a\rX: b\r\n" END), .rc = -400 },
    { .name = "bare CR at the end of a value", WIRE(RL H11 "X: a\r\r\n" END), .rc = -400 },
    { .name = "bare LF ending the request line", WIRE("GET / HTTP/1.1\n" H11 END), .rc = -400 },
    { .name = "bare LF ending a field line", WIRE(RL "Host: a\nX: y\r\n" END), .rc = -400 },
    { .name = "bare LF as the empty line", WIRE(RL H11 "\n"), .rc = -400 },
    { .name = "bare LF everywhere", WIRE("GET / HTTP/1.1\nHost: a\n\n"), .rc = -400 },
    { .name = "bare LF then CRLF", WIRE(RL "Host: a\n\r\n"), .rc = -400 },
    { .name = "leading bare LF", WIRE("\n" RL H11 END), .rc = -400 },
    { .name = "leading bare CR", WIRE("\r" RL H11 END), .rc = -400 },
    { .name = "leading CR CR LF", WIRE("\r\r\n" RL H11 END), .rc = -400 },
    { .name = "leading CRLF then bare LF", WIRE("\r\n\n" RL H11 END), .rc = -400 },
    { .name = "leading CRLF then bare CR", WIRE("\r\n\r" RL H11 END), .rc = -400 },
    { .name = "LF LF alone", WIRE("\n\n"), .rc = -400 },
    { .name = "LF CR LF alone", WIRE("\n\r\n"), .rc = -400 },
    { .name = "CRLF then LF CR LF", WIRE("\r\n\n\r\n"), .rc = -400 },

    /* Method. */
    { .name = "method with '('", WIRE("G(T / HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "method with '@'", WIRE("GE@T / HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "method with NUL", WIRE("GE\0T / HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "method with DEL", WIRE("GE\x7fT / HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "method with obs-text", WIRE("G\xc3\x89T / HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "quoted method", WIRE("\"GET\" / HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "tab after the method", WIRE("GET\t/ HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "empty method", WIRE(" / HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "two spaces after the method", WIRE("GET  / HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "method alone", WIRE("GET\r\n" H11 END), .rc = -400 },

    /* Version. */
    { .name = "HTTP/2.0", WIRE("GET / HTTP/2.0\r\n" H11 END), .rc = -505, .version = 11 },
    { .name = "HTTP/0.9", WIRE("GET / HTTP/0.9\r\n" H11 END), .rc = -505, .version = 11 },
    { .name = "HTTP/3.0", WIRE("GET / HTTP/3.0\r\n" H11 END), .rc = -505, .version = 11 },
    { .name = "HTTP/1.2", WIRE("GET / HTTP/1.2\r\n" H11 END), .rc = -505, .version = 11 },
    { .name = "HTTP/1.9", WIRE("GET / HTTP/1.9\r\n" H11 END), .rc = -505, .version = 11 },
    { .name = "HTTP/9.9", WIRE("GET / HTTP/9.9\r\n" H11 END), .rc = -505, .version = 11 },
    { .name = "HTTP/1.1x", WIRE("GET / HTTP/1.1x\r\n" H11 END), .rc = -400 },
    { .name = "http/1.1", WIRE("GET / http/1.1\r\n" H11 END), .rc = -400 },
    { .name = "Http/1.1", WIRE("GET / Http/1.1\r\n" H11 END), .rc = -400 },
    { .name = "HTTP/11", WIRE("GET / HTTP/11\r\n" H11 END), .rc = -400 },
    { .name = "HTTP/1.10", WIRE("GET / HTTP/1.10\r\n" H11 END), .rc = -400 },
    { .name = "HTTP/1", WIRE("GET / HTTP/1\r\n" H11 END), .rc = -400 },
    { .name = "HTTP/1.", WIRE("GET / HTTP/1.\r\n" H11 END), .rc = -400 },
    { .name = "HTTP/a.1", WIRE("GET / HTTP/a.1\r\n" H11 END), .rc = -400 },
    { .name = "HTTP/1.a", WIRE("GET / HTTP/1.a\r\n" H11 END), .rc = -400 },
    { .name = "HTTP/1,1", WIRE("GET / HTTP/1,1\r\n" H11 END), .rc = -400 },
    { .name = "HTTPS/1.1", WIRE("GET / HTTPS/1.1\r\n" H11 END), .rc = -400 },
    { .name = "HTTP 1.1", WIRE("GET / HTTP 1.1\r\n" H11 END), .rc = -400 },
    { .name = "NUL after the version", WIRE("GET / HTTP/1.1\0\r\n" H11 END), .rc = -400 },
    { .name = "space after the version", WIRE("GET / HTTP/1.1 \r\n" H11 END), .rc = -400 },
    { .name = "no version", WIRE("GET /\r\n" H11 END), .rc = -400, .version = 10 },
    { .name = "HTTP/0.9 simple request", WIRE("GET /\r\n\r\n"), .rc = -400 },
    { .name = "HTTP/2 preface", WIRE("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), .rc = HTTP_PARSE_PREFACE },
    { .name = "HTTP/2 preface, first part", WIRE("PRI * HTTP/2.0\r\n\r\n"), .rc = HTTP_PARSE_PREFACE },

    /* Request-target. */
    { .name = "target not starting with '/'", WIRE("GET foo HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "space inside the target", WIRE("GET /a b HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "tab inside the target", WIRE("GET /a\tb HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "NUL inside the target", WIRE("GET /a\0b HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "'\"' in the target", WIRE("GET /a\"b HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "'<' in the target", WIRE("GET /a<b HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "'>' in the target", WIRE("GET /a>b HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "'\\' in the target", WIRE("GET /a\\b HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "'^' in the target", WIRE("GET /a^b HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "'`' in the target", WIRE("GET /a`b HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "'{' in the target", WIRE("GET /a{b HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "'|' in the target", WIRE("GET /a|b HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "'[' in the path", WIRE("GET /a[b HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "%zz", WIRE("GET /%zz HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "%4 at the end", WIRE("GET /%4 HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "% at the end", WIRE("GET /% HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "%g1", WIRE("GET /%g1 HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "%4 before the query", WIRE("GET /%4?x HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "%zz in the query", WIRE("GET /?a=%zz HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "#frag", WIRE("GET #frag HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "path#frag", WIRE("GET /a#frag HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "UTF-8 in the target", WIRE("GET /\xc3\xa9 HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "0x80 in the target", WIRE("GET /\x80 HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "0xff in the target", WIRE("GET /\xff HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "DEL in the target", WIRE("GET /\x7f HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "asterisk-form with GET", WIRE("GET * HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "asterisk-form with HEAD", WIRE("HEAD * HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "asterisk-form with CONNECT", WIRE("CONNECT * HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "OPTIONS *x", WIRE("OPTIONS *x HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "CONNECT with origin-form", WIRE("CONNECT / HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "CONNECT without a port", WIRE("CONNECT example.com HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "CONNECT without a host", WIRE("CONNECT :443 HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "CONNECT with an empty port", WIRE("CONNECT h: HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "CONNECT with a path", WIRE("CONNECT h/x:443 HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "CONNECT with userinfo", WIRE("CONNECT u@h:443 HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "CONNECT with absolute-form", WIRE("CONNECT http://h:443/ HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "http:// alone", WIRE("GET http:// HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "absolute-form without a host", WIRE("GET http:///x HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "absolute-form with userinfo", WIRE("GET http://u@h/ HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "ftp scheme", WIRE("GET ftp://h/ HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "http:/ with one slash", WIRE("GET http:/h/ HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "absolute-form with '\"' in the path", WIRE("GET http://h/\"x HTTP/1.1\r\n" H11 END), .rc = -400 },
    { .name = "absolute-form with %zz", WIRE("GET http://h/%zz HTTP/1.1\r\n" H11 END), .rc = -400 },

    /* Field lines. */
    { .name = "obs-fold with SP", WIRE(RL H11 "X: a\r\n b\r\n" END), .rc = -400 },
    { .name = "obs-fold with HTAB", WIRE(RL H11 "X: a\r\n\tb\r\n" END), .rc = -400 },
    { .name = "whitespace before the first field", WIRE(RL " Host: a\r\n" END), .rc = -400 },
    { .name = "SP between field name and colon", WIRE(RL "Host : a\r\n" END), .rc = -400 },
    { .name = "HTAB between field name and colon", WIRE(RL H11 "X\t: y\r\n" END), .rc = -400 },
    { .name = "'(' in a field name", WIRE(RL H11 "X(Y: z\r\n" END), .rc = -400 },
    { .name = "SP in a field name", WIRE(RL H11 "X Y: z\r\n" END), .rc = -400 },
    { .name = "'\"' in a field name", WIRE(RL H11 "X\"Y: z\r\n" END), .rc = -400 },
    { .name = "'@' in a field name", WIRE(RL H11 "X@Y: z\r\n" END), .rc = -400 },
    { .name = "'{' in a field name", WIRE(RL H11 "{X}: z\r\n" END), .rc = -400 },
    { .name = "obs-text in a field name", WIRE(RL H11 "X\x80: z\r\n" END), .rc = -400 },
    { .name = "NUL in a field name", WIRE(RL H11 "X\0: z\r\n" END), .rc = -400 },
    { .name = "field line without a colon", WIRE(RL H11 "XYZ\r\n" END), .rc = -400 },
    { .name = "empty field name", WIRE(RL H11 ": z\r\n" END), .rc = -400 },
    { .name = "NUL in a field value", WIRE(RL H11 "X: a\0b\r\n" END), .rc = -400 },
    { .name = "NUL starting a field value", WIRE(RL H11 "X: \0\r\n" END), .rc = -400 },
    { .name = "NUL ending a field value", WIRE(RL H11 "X: a\0\r\n" END), .rc = -400 },
    { .name = "0x01 in a field value", WIRE(RL H11 "X: a\x01" "b\r\n" END), .rc = -400 },
    { .name = "DEL in a field value", WIRE(RL H11 "X: a\x7f" "b\r\n" END), .rc = -400 },
    { .name = "ESC in a field value", WIRE(RL H11 "X: a\x1b" "b\r\n" END), .rc = -400 },
    { .name = "VT in a field value", WIRE(RL H11 "X: a\x0b" "b\r\n" END), .rc = -400 },
    { .name = "FF in a field value", WIRE(RL H11 "X: a\x0c" "b\r\n" END), .rc = -400 },

    /* Content-Length. */
    { .name = "two equal Content-Length", WIRE(RL H11 "Content-Length: 5\r\nContent-Length: 5\r\n" END), .rc = -400 },
    { .name = "two Content-Length", WIRE(RL H11 "Content-Length: 5\r\nContent-Length: 6\r\n" END), .rc = -400 },
    { .name = "Content-Length: 5, 5", WIRE(RL H11 "Content-Length: 5, 5\r\n" END), .rc = -400 },
    { .name = "Content-Length: 5,5", WIRE(RL H11 "Content-Length: 5,5\r\n" END), .rc = -400 },
    { .name = "Content-Length: abc", WIRE(RL H11 "Content-Length: abc\r\n" END), .rc = -400 },
    { .name = "Content-Length: 5a", WIRE(RL H11 "Content-Length: 5a\r\n" END), .rc = -400 },
    { .name = "Content-Length: 0x10", WIRE(RL H11 "Content-Length: 0x10\r\n" END), .rc = -400 },
    { .name = "Content-Length: -1", WIRE(RL H11 "Content-Length: -1\r\n" END), .rc = -400 },
    { .name = "Content-Length: +5", WIRE(RL H11 "Content-Length: +5\r\n" END), .rc = -400 },
    { .name = "Content-Length: 1 2", WIRE(RL H11 "Content-Length: 1 2\r\n" END), .rc = -400 },
    { .name = "empty Content-Length", WIRE(RL H11 "Content-Length:\r\n" END), .rc = -400 },
    { .name = "Content-Length of 19 digits", WIRE(RL H11 "Content-Length: 9999999999999999999\r\n" END), .rc = -400 },
    { .name = "Content-Length of 2^64", WIRE(RL H11 "Content-Length: 18446744073709551616\r\n" END), .rc = -400 },
    { .name = "Content-Length overflowing far", WIRE(RL H11 "Content-Length: 99999999999999999999999999\r\n" END), .rc = -400 },
    { .name = "Content-Length then Transfer-Encoding", WIRE(RL H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n" END), .rc = -400 },
    { .name = "Transfer-Encoding then Content-Length", WIRE(RL H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n" END), .rc = -400 },

    /* Transfer-Encoding. */
    { .name = "Transfer-Encoding: gzip", WIRE(RL H11 "Transfer-Encoding: gzip\r\n" END), .rc = -400 },
    { .name = "Transfer-Encoding: identity", WIRE(RL H11 "Transfer-Encoding: identity\r\n" END), .rc = -400 },
    { .name = "Transfer-Encoding: chunked, gzip", WIRE(RL H11 "Transfer-Encoding: chunked, gzip\r\n" END), .rc = -400 },
    { .name = "Transfer-Encoding: gzip, chunked", WIRE(RL H11 "Transfer-Encoding: gzip, chunked\r\n" END), .rc = -501 },
    { .name = "Transfer-Encoding: deflate, gzip, chunked", WIRE(RL H11 "Transfer-Encoding: deflate, gzip, chunked\r\n" END), .rc = -501 },
    { .name = "Transfer-Encoding: chunked, chunked", WIRE(RL H11 "Transfer-Encoding: chunked, chunked\r\n" END), .rc = -400 },
    { .name = "two Transfer-Encoding: chunked", WIRE(RL H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n" END), .rc = -400 },
    { .name = "Transfer-Encoding gzip then chunked fields", WIRE(RL H11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n" END), .rc = -501 },
    { .name = "Transfer-Encoding chunked then gzip fields", WIRE(RL H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n" END), .rc = -400 },
    { .name = "empty Transfer-Encoding", WIRE(RL H11 "Transfer-Encoding:\r\n" END), .rc = -400 },
    { .name = "Transfer-Encoding of empty elements", WIRE(RL H11 "Transfer-Encoding: , ,\r\n" END), .rc = -400 },
    { .name = "Transfer-Encoding: chunkedx", WIRE(RL H11 "Transfer-Encoding: chunkedx\r\n" END), .rc = -400 },
    { .name = "Transfer-Encoding in HTTP/1.0", WIRE(RL10 "Transfer-Encoding: chunked\r\n" END), .rc = -400, .version = 10 },
    { .name = "Transfer-Encoding gzip, chunked in HTTP/1.0", WIRE(RL10 "Transfer-Encoding: gzip, chunked\r\n" END), .rc = -400, .version = 10 },

    /* Host. */
    { .name = "missing Host in HTTP/1.1", WIRE(RL "Accept: */*\r\n" END), .rc = -400, .version = 11 },
    { .name = "no fields at all in HTTP/1.1", WIRE(RL END), .rc = -400 },
    { .name = "Hostx is not Host", WIRE(RL "Hostx: a\r\n" END), .rc = -400 },
    { .name = "two Host fields", WIRE(RL "Host: a\r\nHost: a\r\n" END), .rc = -400 },
    { .name = "two Host fields in HTTP/1.0", WIRE(RL10 "Host: a\r\nHost: b\r\n" END), .rc = -400 },
    { .name = "Host with SP", WIRE(RL "Host: a b\r\n" END), .rc = -400 },
    { .name = "Host with '/'", WIRE(RL "Host: a/b\r\n" END), .rc = -400 },
    { .name = "Host with '@'", WIRE(RL "Host: u@a\r\n" END), .rc = -400 },
    { .name = "Host with '\"'", WIRE(RL "Host: a\"b\r\n" END), .rc = -400 },
    { .name = "Host with '<'", WIRE(RL "Host: a<b\r\n" END), .rc = -400 },
    { .name = "Host with '?'", WIRE(RL "Host: a?b\r\n" END), .rc = -400 },
    { .name = "Host with '#'", WIRE(RL "Host: a#b\r\n" END), .rc = -400 },
    { .name = "Host with obs-text", WIRE(RL "Host: \xc3\xa9\r\n" END), .rc = -400 },
    { .name = "invalid Host in HTTP/1.0", WIRE(RL10 "Host: a b\r\n" END), .rc = -400 },

    /* Expect. */
    { .name = "Expect: foo", WIRE(RL H11 "Expect: foo\r\n" END), .rc = -417, .version = 11 },
    { .name = "Expect: 100-continue, foo", WIRE(RL H11 "Expect: 100-continue, foo\r\n" END), .rc = -417 },
    { .name = "Expect: 100-continuex", WIRE(RL H11 "Expect: 100-continuex\r\n" END), .rc = -417 },
    { .name = "Expect: 200-ok in HTTP/1.0", WIRE(RL10 "Expect: 200-ok\r\n" END), .rc = -417, .version = 10 },
};

static void test_malformed_requests(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
        run_bad(&bad_cases[i]);
}

/* RFC 9112 §3.2.3: authority-form = uri-host ":" port, and port = *DIGIT
 * (RFC 3986 §3.2.3). */
static void test_connect_port_is_digits(void **state)
{
    (void)state;
    static const struct bad_case t[] = {
        { .name = "CONNECT h:abc", WIRE("CONNECT h:abc HTTP/1.1\r\nHost: h\r\n\r\n"), .rc = -400 },
        { .name = "CONNECT h:44x", WIRE("CONNECT h:44x HTTP/1.1\r\nHost: h\r\n\r\n"), .rc = -400 },
        { .name = "CONNECT h:[1]", WIRE("CONNECT h:[1] HTTP/1.1\r\nHost: h\r\n\r\n"), .rc = -400 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        run_bad(&t[i]);
}

/* -------------------------------------------------------------- limits */

/* Checks that every prefix of in (and in itself) is INCOMPLETE. */
static void all_incomplete(const char *name, const char *in, size_t n, const struct http_limits *lim)
{
    http_parse_state_t st, st2;
    http_request_t req;
    const char *p;
    http_parse_state_init(&st);
    for (size_t k = 0; k <= n; k++) {
        want_rc(name, "byte by byte", k, parse_guarded(in, k, &st, lim, &req, &p),
                HTTP_PARSE_INCOMPLETE);
        http_parse_state_init(&st2);
        want_rc(name, "fresh", k, parse_guarded(in, k, &st2, lim, &req, &p),
                HTTP_PARSE_INCOMPLETE);
    }
}

static char *repeat(char ch, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

static char *cat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    assert_non_null(s);
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

/* "/" followed by n - 1 'a's: a target of n bytes. */
static char *target_of(size_t n)
{
    char *t = repeat('a', n);
    t[0] = '/';
    return t;
}

static void test_max_target(void **state)
{
    (void)state;
    struct http_limits lim;
    http_limits_default(&lim);
    lim.max_target = 16;

    for (size_t tn = 1; tn <= 16; tn++) {
        char *t = target_of(tn);
        char *head = cat3("GET ", t, " HTTP/1.1\r\nHost: a\r\n\r\n");
        struct valid_case c = {
            .name = "target of at most max_target bytes", .head = head, .lim = &lim,
            .method = "GET", .method_id = HTTP_M_GET, .target = t, .path = t, .version = 11,
            .host = "a", .content_length = -1, .keep_alive = 1, .fields = { { "Host", "a" } },
        };
        run_valid(&c);
        /* Not yet complete: no 414 either. */
        all_incomplete("target of max_target, head incomplete", head, strlen(head) - 2, &lim);
        free(head);
        free(t);
    }

    static const size_t over[] = { 17, 18, 40, 300 };
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
        char *t = target_of(over[i]);
        char *head = cat3("GET ", t, " HTTP/1.1\r\nHost: a\r\n\r\n");
        struct bad_case b = { .name = "target of max_target + k bytes", .wire = head,
                              .len = strlen(head), .rc = -414, .lim = &lim };
        run_bad(&b);
        /* The same while the head is incomplete: no line end yet. */
        char *part = cat3("GET ", t, "");
        b = (struct bad_case){ .name = "long target, request line incomplete", .wire = part,
                               .len = strlen(part), .rc = -414, .lim = &lim };
        run_bad(&b);
        char *line = cat3("GET ", t, " HTTP/1.1\r\nHost: a\r\n");
        b = (struct bad_case){ .name = "long target, head incomplete", .wire = line,
                               .len = strlen(line), .rc = -414, .lim = &lim };
        run_bad(&b);
        char *lead = cat3("\r\n\r\nPOST ", t, " HTTP/1.1\r\nHost: a\r\n\r\n");
        b = (struct bad_case){ .name = "long target after empty lines", .wire = lead,
                               .len = strlen(lead), .rc = -414, .lim = &lim };
        run_bad(&b);
        free(lead);
        free(line);
        free(part);
        free(head);
        free(t);
    }

    /* A prefix of exactly max_target + 1 target bytes is enough. */
    {
        char *t = target_of(17);
        char *part = cat3("GET ", t, "");
        http_parse_state_t st;
        http_request_t req;
        const char *p;
        http_parse_state_init(&st);
        want_rc("17-byte target", "prefix", 20, parse_guarded(part, 20, &st, &lim, &req, &p),
                HTTP_PARSE_INCOMPLETE);
        want_rc("17-byte target", "prefix", 21, parse_guarded(part, 21, &st, &lim, &req, &p), -414);
        free(part);
        free(t);
    }

    /* The other target forms count too. */
    {
        static const char abs16[] = "GET http://a.b/cdefg HTTP/1.1\r\nHost: a\r\n\r\n";
        static const char abs17[] = "GET http://a.b/cdefgh HTTP/1.1\r\nHost: a\r\n\r\n";
        static const char con16[] = "CONNECT example.co:4430 HTTP/1.1\r\nHost: a\r\n\r\n";
        static const char con17[] = "CONNECT example.com:44300 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_int_equal(strlen("http://a.b/cdefg"), 16);
        assert_int_equal(strlen("example.co:4430"), 15);
        assert_int_equal(strlen("example.com:44300"), 17);
        struct valid_case c = {
            .name = "absolute-form of max_target bytes", .head = abs16, .lim = &lim,
            .method = "GET", .method_id = HTTP_M_GET, .target = "http://a.b/cdefg",
            .form = HTTP_T_ABSOLUTE, .path = "/cdefg", .version = 11, .host = "a.b",
            .content_length = -1, .keep_alive = 1, .fields = { { "Host", "a" } },
        };
        run_valid(&c);
        struct bad_case b = { .name = "absolute-form of max_target + 1", WIRE(abs17), .rc = -414, .lim = &lim };
        run_bad(&b);
        c = (struct valid_case){
            .name = "authority-form under max_target", .head = con16, .lim = &lim,
            .method = "CONNECT", .method_id = HTTP_M_CONNECT, .target = "example.co:4430",
            .form = HTTP_T_AUTHORITY, .path = "example.co:4430", .version = 11, .host = "a",
            .content_length = -1, .keep_alive = 1, .fields = { { "Host", "a" } },
        };
        run_valid(&c);
        b = (struct bad_case){ .name = "authority-form over max_target", WIRE(con17), .rc = -414, .lim = &lim };
        run_bad(&b);
    }
}

/* A complete head of exactly n bytes (n > 32): one padded field. */
static char *head_of(size_t n)
{
    static const char pre[] = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    size_t fixed = sizeof pre - 1 + 4;
    assert_true(n > fixed);
    char *pad = repeat('v', n - fixed);
    char *h = cat3(pre, pad, "\r\n\r\n");
    assert_int_equal(strlen(h), n);
    free(pad);
    return h;
}

static void test_max_head(void **state)
{
    (void)state;
    struct http_limits lim;
    http_limits_default(&lim);
    lim.max_head = 64;

    for (size_t n = 40; n <= 64; n++) {
        char *h = head_of(n);
        size_t vlen = n - (sizeof "GET / HTTP/1.1\r\nHost: a\r\nX: " - 1) - 4;
        char *v = repeat('v', vlen);
        struct valid_case c = {
            .name = "head of at most max_head bytes", .head = h, .lim = &lim,
            .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 11,
            .host = "a", .content_length = -1, .keep_alive = 1,
            .fields = { { "Host", "a" }, { "X", v } },
        };
        run_valid(&c);
        /* A body after it does not count. */
        c.name = "head of at most max_head bytes, then a body";
        c.extra = "0123456789012345678901234567890123456789012345678901234567890123456789";
        c.extra_len = strlen(c.extra);
        run_valid(&c);
        /* Incomplete and not over: INCOMPLETE for every prefix. */
        all_incomplete("incomplete head of max_head bytes", h, n - 1, &lim);
        free(v);
        free(h);
    }

    static const size_t over[] = { 65, 66, 100, 1000 };
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
        char *h = head_of(over[i]);
        struct bad_case b = { .name = "head over max_head", .wire = h, .len = over[i],
                              .rc = -431, .lim = &lim };
        run_bad(&b);
        /* Incomplete (no empty line yet) and already over. */
        b.name = "incomplete head over max_head";
        b.len = over[i] - 2;
        if (b.len > 64)
            run_bad(&b);
        free(h);
    }

    /* Exactly max_head + 1 bytes without an end: 431; max_head: not yet. */
    {
        char *h = head_of(200);
        all_incomplete("64 bytes of an incomplete head", h, 64, &lim);
        struct bad_case b = { .name = "65 bytes of an incomplete head", .wire = h, .len = 65,
                              .rc = -431, .lim = &lim };
        run_bad(&b);
        free(h);
    }

    /* Empty lines alone count as well. */
    {
        char *crlf = malloc(200);
        assert_non_null(crlf);
        for (size_t i = 0; i < 200; i += 2)
            memcpy(crlf + i, "\r\n", 2);
        all_incomplete("64 bytes of empty lines", crlf, 64, &lim);
        struct bad_case b = { .name = "66 bytes of empty lines", .wire = crlf, .len = 66,
                              .rc = -431, .lim = &lim };
        run_bad(&b);
        b.name = "65 bytes of empty lines and a CR";
        b.len = 65;
        run_bad(&b);
        free(crlf);
    }

    /* Leading empty lines are part of the head. */
    for (size_t n = 64; n <= 65; n++) {
        char *h = head_of(n - 4);
        char *lead = cat3("\r\n\r\n", h, "");
        if (n == 65) {
            struct bad_case b = { .name = "empty lines push the head over max_head",
                                  .wire = lead, .len = n, .rc = -431, .lim = &lim };
            run_bad(&b);
        } else {
            char *v = repeat('v', n - 4 - 32);
            struct valid_case c = {
                .name = "empty lines and a head of max_head bytes", .head = lead, .lim = &lim,
                .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/",
                .version = 11, .host = "a", .content_length = -1, .keep_alive = 1,
                .fields = { { "Host", "a" }, { "X", v } },
            };
            run_valid(&c);
            free(v);
        }
        free(lead);
        free(h);
    }
}

/* The order of 414 and 431 is where each limit is passed. */
static void test_target_and_head_limits_together(void **state)
{
    (void)state;
    struct http_limits lim;
    http_limits_default(&lim);
    lim.max_target = 16;
    lim.max_head = 64;
    char *t = target_of(20);
    char *h = cat3("GET ", t, " HTTP/1.1\r\nHost: a\r\nX: vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\r\n\r\n");
    struct bad_case b = { .name = "target passes max_target before the head max_head",
                          .wire = h, .len = strlen(h), .rc = -414, .lim = &lim };
    run_bad(&b);
    free(h);
    free(t);

    /* Both passed at the same byte: the target is reported. */
    lim.max_target = 16;
    lim.max_head = 20;
    t = target_of(17);
    h = cat3("GET ", t, " HTTP/1.1\r\nHost: a\r\n\r\n");
    b = (struct bad_case){ .name = "both limits passed at the same byte",
                           .wire = h, .len = strlen(h), .rc = -414, .lim = &lim };
    run_bad(&b);
    free(h);
    free(t);

    lim.max_head = 64;
    lim.max_target = 80;
    t = target_of(100);
    h = cat3("GET ", t, " HTTP/1.1\r\nHost: a\r\n\r\n");
    b = (struct bad_case){ .name = "head passes max_head before the target max_target",
                           .wire = h, .len = strlen(h), .rc = -431, .lim = &lim };
    run_bad(&b);
    free(h);
    free(t);
}

static void test_max_fields(void **state)
{
    (void)state;
    struct http_limits lim;
    http_limits_default(&lim);
    lim.max_fields = 4;

    struct valid_case c = {
        .name = "exactly max_fields fields",
        .head = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", .lim = &lim,
        .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 11,
        .host = "a", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "a" }, { "A", "1" }, { "B", "2" }, { "C", "3" } },
    };
    run_valid(&c);

    struct bad_case b = {
        .name = "max_fields + 1 fields",
        WIRE("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"),
        .rc = -431, .lim = &lim,
    };
    run_bad(&b);
    b = (struct bad_case){
        .name = "many more than max_fields",
        WIRE("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\n"
             "G: 7\r\nH: 8\r\n\r\n"),
        .rc = -431, .lim = &lim,
    };
    run_bad(&b);

    lim.max_fields = 1;
    c = (struct valid_case){
        .name = "one field, max_fields 1", .head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        .lim = &lim, .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/",
        .version = 11, .host = "a", .content_length = -1, .keep_alive = 1,
        .fields = { { "Host", "a" } },
    };
    run_valid(&c);
    b = (struct bad_case){ .name = "two fields, max_fields 1",
                           WIRE("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n\r\n"), .rc = -431,
                           .lim = &lim };
    run_bad(&b);

    lim.max_fields = 0;
    c = (struct valid_case){
        .name = "no field, max_fields 0", .head = "GET / HTTP/1.0\r\n\r\n", .lim = &lim,
        .method = "GET", .method_id = HTTP_M_GET, .target = "/", .path = "/", .version = 10,
        .content_length = -1,
    };
    run_valid(&c);
    b = (struct bad_case){ .name = "one field, max_fields 0",
                           WIRE("GET / HTTP/1.0\r\nA: 1\r\n\r\n"), .rc = -431, .lim = &lim };
    run_bad(&b);

    /* The default: 100 fields fit, 101 do not. */
    http_limits_default(&lim);
    size_t cap = 16 + 100 * 12 + 2 + 12;
    char *h = malloc(cap);
    assert_non_null(h);
    size_t n = (size_t)snprintf(h, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < 100; i++)
        n += (size_t)snprintf(h + n, cap - n, "F%02d: %02d\r\n", i, i);
    memcpy(h + n, "\r\n", 3);
    http_parse_state_t st;
    http_request_t req;
    const char *p;
    http_parse_state_init(&st);
    assert_int_equal(parse_guarded(h, n + 2, &st, &lim, &req, &p), (int)(n + 2));
    assert_int_equal(req.nfields, 100);
    want_slice("100 fields", "last field", req.fields[99].value, "99");
    n += (size_t)snprintf(h + n, cap - n, "F%02d: %02d\r\n", 0, 0);
    memcpy(h + n, "\r\n", 3);
    http_parse_state_init(&st);
    assert_int_equal(parse_guarded(h, n + 2, &st, &lim, &req, &p), -431);
    free(h);
}

/* ------------------------------------------------------- small helpers */

static void test_method_lookup(void **state)
{
    (void)state;
    static const struct { const char *name; enum http_method id; } t[] = {
        { "GET", HTTP_M_GET }, { "HEAD", HTTP_M_HEAD }, { "POST", HTTP_M_POST },
        { "PUT", HTTP_M_PUT }, { "DELETE", HTTP_M_DELETE }, { "CONNECT", HTTP_M_CONNECT },
        { "OPTIONS", HTTP_M_OPTIONS }, { "TRACE", HTTP_M_TRACE }, { "PATCH", HTTP_M_PATCH },
        { "get", HTTP_M_UNKNOWN }, { "Get", HTTP_M_UNKNOWN }, { "GETX", HTTP_M_UNKNOWN },
        { "GE", HTTP_M_UNKNOWN }, { "", HTTP_M_UNKNOWN }, { "PROPFIND", HTTP_M_UNKNOWN },
        { "OPTION", HTTP_M_UNKNOWN }, { "PATCHES", HTTP_M_UNKNOWN },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t n = strlen(t[i].name);
        char *p = guard_put(&g_in, t[i].name, n);
        if (http_method_lookup(slice_make(p, n)) != t[i].id) {
            print_error("method \"%s\": got %d, want %d\n", t[i].name,
                        (int)http_method_lookup(slice_make(p, n)), (int)t[i].id);
            fail();
        }
    }
}

static void test_find_field(void **state)
{
    (void)state;
    static const char in[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nX-B: 3\r\n\r\n";
    struct http_limits lim;
    http_limits_default(&lim);
    http_parse_state_t st;
    http_parse_state_init(&st);
    http_request_t req;
    const char *p;
    assert_int_equal(parse_guarded(in, sizeof in - 1, &st, &lim, &req, &p), sizeof in - 1);
    const http_field_t *f = http_find_field(&req, "x-a");
    assert_non_null(f);
    want_slice("find_field", "first x-a", f->value, "1");
    f = http_find_field(&req, "x-b");
    assert_non_null(f);
    want_slice("find_field", "x-b", f->value, "3");
    f = http_find_field(&req, "host");
    assert_non_null(f);
    want_slice("find_field", "host", f->value, "h");
    assert_null(http_find_field(&req, "x-c"));
    assert_null(http_find_field(&req, "x-"));
    assert_null(http_find_field(&req, "x-aa"));
}

static void test_slice_ieq(void **state)
{
    (void)state;
    assert_true(http_slice_ieq(SLICE_LIT("Host"), "host"));
    assert_true(http_slice_ieq(SLICE_LIT("HOST"), "host"));
    assert_true(http_slice_ieq(SLICE_LIT("host"), "host"));
    assert_true(http_slice_ieq(SLICE_LIT(""), ""));
    assert_true(http_slice_ieq(SLICE_LIT("100-Continue"), "100-continue"));
    assert_false(http_slice_ieq(SLICE_LIT("hostx"), "host"));
    assert_false(http_slice_ieq(SLICE_LIT("hos"), "host"));
    assert_false(http_slice_ieq(SLICE_LIT("h0st"), "host"));
    /* Only letters fold: '[' is not '{', '@' is not '`'. */
    assert_false(http_slice_ieq(SLICE_LIT("["), "{"));
    assert_false(http_slice_ieq(SLICE_LIT("@"), "`"));
    assert_false(http_slice_ieq(SLICE_LIT("\xc9"), "\xe9"));
}

struct collect {
    char got[8][16];
    int n;
    int stop_at;
};

static int collect_elem(slice_t e, void *arg)
{
    struct collect *c = arg;
    assert_true(c->n < 8 && e.len < 16);
    memcpy(c->got[c->n], e.p, e.len);
    c->got[c->n][e.len] = '\0';
    c->n++;
    return c->n == c->stop_at ? 7 : 0;
}

static void test_list_each(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int n;
        const char *want[4];
    } t[] = {
        { "a", 1, { "a" } },
        { "a, b,,c ,\t", 3, { "a", "b", "c" } },
        { " \t a b \t , c", 2, { "a b", "c" } },
        { "", 0, { NULL } },
        { " , ,, ", 0, { NULL } },
        { ",x,", 1, { "x" } },
        { "gzip;q=1, chunked", 2, { "gzip;q=1", "chunked" } },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct collect c = { .stop_at = -1 };
        size_t n = strlen(t[i].in);
        char *p = guard_put(&g_in, t[i].in, n);
        assert_int_equal(http_list_each(slice_make(p, n), collect_elem, &c), 0);
        assert_int_equal(c.n, t[i].n);
        for (int k = 0; k < c.n; k++)
            assert_string_equal(c.got[k], t[i].want[k]);
    }
    struct collect c = { .stop_at = 2 };
    assert_int_equal(http_list_each(SLICE_LIT("a, b, c"), collect_elem, &c), 7);
    assert_int_equal(c.n, 2);
}

static void test_tchar_table(void **state)
{
    (void)state;
    for (int ch = 0; ch < 256; ch++) {
        int want = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
        if (!!http_tchar[ch] != want) {
            print_error("http_tchar[0x%02x] is %d, want %d\n", ch, http_tchar[ch], want);
            fail();
        }
    }
}

/* The error leaves *req as far as it got: the version for the answer. */
static void test_error_reports_version(void **state)
{
    (void)state;
    static const struct { const char *in; int rc, version; } t[] = {
        { "GET / HTTP/2.0\r\nHost: a\r\n\r\n", -505, 11 },
        { "GET / HTTP/1.1\r\n\r\n", -400, 11 },
        { "GET / HTTP/1.0\r\nContent-Length: x\r\n\r\n", -400, 10 },
        { "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", -400, 11 },
        { "GET / HTTP/1.1\r\nX : y\r\nHost: a\r\n\r\n", -400, 11 },
        { "GET(/ HTTP/1.1\r\n\r\n", -400, 10 },
    };
    struct http_limits lim;
    http_limits_default(&lim);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        http_parse_state_t st;
        http_parse_state_init(&st);
        http_request_t req;
        const char *p;
        int rc = parse_guarded(t[i].in, strlen(t[i].in), &st, &lim, &req, &p);
        want_rc(t[i].in, "whole", strlen(t[i].in), rc, t[i].rc);
        if (req.version != t[i].version) {
            print_error("%s: version %d, want %d\n", t[i].in, req.version, t[i].version);
            fail();
        }
    }
}

/* A reused request struct and state: nothing of the first request leaks
 * into the second. */
static void test_reuse_after_a_request(void **state)
{
    (void)state;
    static const char in[] = "POST /a?q HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc"
                             "GET /b HTTP/1.0\r\n\r\n";
    struct http_limits lim;
    http_limits_default(&lim);
    http_parse_state_t st;
    http_parse_state_init(&st);
    http_request_t req;
    http_field_t *fields = fields_for(&lim);
    const char *why;
    size_t n = sizeof in - 1;
    int rc = http_parse_request(in, n, &st, &lim, fields, &req, &why);
    assert_true(rc > 0);
    assert_int_equal(req.content_length, 3);
    size_t off = (size_t)rc + 3;
    http_parse_state_init(&st);
    rc = http_parse_request(in + off, n - off, &st, &lim, fields, &req, &why);
    assert_int_equal(rc, (int)(n - off));
    assert_int_equal(req.content_length, -1);
    assert_int_equal(req.expect_continue, 0);
    assert_int_equal(req.has_query, 0);
    assert_int_equal(req.has_host, 0);
    assert_int_equal(req.nfields, 0);
    assert_int_equal(req.version, 10);
    assert_int_equal(req.keep_alive, 0);
    want_slice("reuse", "path", req.path, "/b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests),
        cmocka_unit_test(test_asterisk_form_path),
        cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_connect_port_is_digits),
        cmocka_unit_test(test_max_target),
        cmocka_unit_test(test_max_head),
        cmocka_unit_test(test_target_and_head_limits_together),
        cmocka_unit_test(test_max_fields),
        cmocka_unit_test(test_method_lookup),
        cmocka_unit_test(test_find_field),
        cmocka_unit_test(test_slice_ieq),
        cmocka_unit_test(test_list_each),
        cmocka_unit_test(test_tchar_table),
        cmocka_unit_test(test_error_reports_version),
        cmocka_unit_test(test_reuse_after_a_request),
    };
    return cmocka_run_group_tests_name("http_parse", tests, group_setup, group_teardown);
}
