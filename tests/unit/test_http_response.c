/* test_http_response.c - response heads and body framing (src/http/response.c).
 *
 * A table of raw responses, each fed to a small client loop (head, 1xx
 * skipped, body, end of input as a close when the case says so) whole and
 * split at every byte, and byte by byte. Each call gets only the bytes not
 * yet consumed, copied right before a PROT_NONE page so that any read past
 * them faults. Every split must give the same verdict, status, number of
 * 1xx heads, body and end position. */
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

#include "http/response.h"

static guard_t g_in;

static int group_setup(void **state)
{
    (void)state;
    guard_init(&g_in, 1u << 16);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    guard_dispose(&g_in);
    return 0;
}

#define MAX_HEAD 256

struct outcome {
    int err;             /* 1: an error */
    int status, ninfo, keep_alive;
    char body[1024];
    size_t blen;
    size_t end;          /* input consumed at DONE */
    int complete;
};

struct driver {
    const char *wire;
    size_t have, pos;
    int in_body;
    enum http_method m;
    http_parse_state_t ps;
    http_body_t b;
    http_field_t fields[16];
};

/* Processes what has arrived; returns 1 when finished (error or done). */
static int step(struct driver *d, struct outcome *o)
{
    const char *why;
    for (;;) {
        size_t n = d->have - d->pos;
        char *p = guard_put(&g_in, d->wire + d->pos, n);
        if (!d->in_body) {
            http_response_t res;
            int rc = http_parse_response(p, n, &d->ps, MAX_HEAD, 16, d->fields, &res, &why);
            if (rc == HTTP_PARSE_INCOMPLETE)
                return 0;
            if (rc < 0) {
                assert_true(why[0] != '\0');
                o->err = 1;
                return 1;
            }
            d->pos += (size_t)rc;
            http_parse_state_init(&d->ps);
            if (res.status < 200) {
                o->ninfo++;
                continue;
            }
            o->status = res.status;
            http_body_init(&d->b, d->m, &res);
            /* What the client does: a close-delimited body ends the connection. */
            o->keep_alive = res.keep_alive && d->b.kind != HTTP_BODY_CLOSE;
            d->in_body = 1;
            continue;
        }
        size_t used;
        slice_t data;
        int rc = http_body_decode(&d->b, p, n, &used, &data, &why);
        assert_true(used <= n);
        d->pos += used;
        if (rc == HTTP_BODY_DATA) {
            assert_true(o->blen + data.len <= sizeof o->body);
            memcpy(o->body + o->blen, data.p, data.len);
            o->blen += data.len;
            continue;
        }
        if (rc == HTTP_BODY_MORE)
            return 0;
        if (rc == HTTP_BODY_DONE) {
            o->complete = 1;
            o->end = d->pos;
            return 1;
        }
        o->err = 1;
        return 1;
    }
}

static void run(const char *wire, size_t len, enum http_method m, int eof, const size_t *cuts,
                size_t ncuts, struct outcome *o)
{
    struct driver d = { .wire = wire, .m = m };
    http_parse_state_init(&d.ps);
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i <= ncuts; i++) {
        d.have = i < ncuts ? cuts[i] : len;
        if (step(&d, o))
            return;
    }
    if (!eof)
        return;
    const char *why;
    if (!d.in_body) {
        o->err = 1;
        return;
    }
    if (http_body_eof(&d.b, &why) == HTTP_BODY_DONE) {
        o->complete = 1;
        o->end = d.pos;
    } else {
        assert_true(why[0] != '\0');
        o->err = 1;
    }
}

struct rcase {
    const char *name;
    const char *wire;
    enum http_method m;
    int eof;             /* the connection closes after the bytes */
    int err;
    int status, ninfo, keep_alive;
    const char *body;
    int end;             /* -1: the whole input */
};

#define OK200 "HTTP/1.1 200 OK\r\n"

static const struct rcase cases[] = {
    { "content-length", OK200 "Content-Length: 5\r\n\r\nhello", HTTP_M_GET, 0, 0, 200, 0, 1, "hello", -1 },
    { "length then next response", OK200 "Content-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\n", HTTP_M_GET, 0, 0, 200, 0, 1, "hi", 40 },
    { "chunked with trailers", OK200 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\n", HTTP_M_GET, 0, 0, 200, 0, 1, "hello world", -1 },
    { "chunked upper hex", OK200 "Transfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", HTTP_M_GET, 0, 0, 200, 0, 1, "0123456789", -1 },
    { "100 continue skipped", "HTTP/1.1 100 Continue\r\n\r\n" OK200 "Content-Length: 2\r\n\r\nok", HTTP_M_POST, 0, 0, 200, 1, 1, "ok", -1 },
    { "two 1xx", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n" OK200 "Content-Length: 0\r\n\r\n", HTTP_M_GET, 0, 0, 200, 2, 1, "", -1 },
    { "204 without body", "HTTP/1.1 204 No Content\r\n\r\n", HTTP_M_GET, 0, 0, 204, 0, 1, "", -1 },
    { "304 ignores length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", HTTP_M_GET, 0, 0, 304, 0, 1, "", -1 },
    { "HEAD ignores length", OK200 "Content-Length: 100\r\n\r\n", HTTP_M_HEAD, 0, 0, 200, 0, 1, "", -1 },
    { "HEAD ignores chunked", OK200 "Transfer-Encoding: chunked\r\n\r\n", HTTP_M_HEAD, 0, 0, 200, 0, 1, "", -1 },
    { "close-delimited", "HTTP/1.0 200 OK\r\n\r\nabc", HTTP_M_GET, 1, 0, 200, 0, 0, "abc", -1 },
    { "close-delimited 1.1", OK200 "Server: x\r\n\r\nabcdef", HTTP_M_GET, 1, 0, 200, 0, 0, "abcdef", -1 },
    { "1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", HTTP_M_GET, 0, 0, 200, 0, 1, "x", -1 },
    { "connection close", OK200 "Connection: close\r\nContent-Length: 1\r\n\r\nx", HTTP_M_GET, 0, 0, 200, 0, 0, "x", -1 },
    { "empty reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", HTTP_M_GET, 0, 0, 200, 0, 1, "", -1 },
    { "reason with spaces", "HTTP/1.1 404 Not  Found Here\r\nContent-Length: 0\r\n\r\n", HTTP_M_GET, 0, 0, 404, 0, 1, "", -1 },
    { "CONNECT 200 has no body", OK200 "\r\n", HTTP_M_CONNECT, 0, 0, 200, 0, 1, "", -1 },
    { "length 0", OK200 "Content-Length: 0\r\n\r\n", HTTP_M_GET, 0, 0, 200, 0, 1, "", -1 },

    { "duplicate length", OK200 "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "length list", OK200 "Content-Length: 5, 5\r\n\r\nhello", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "negative length", OK200 "Content-Length: -1\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "length with sign", OK200 "Content-Length: +5\r\n\r\nhello", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "empty length", OK200 "Content-Length: \r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "huge length", OK200 "Content-Length: 1234567890123456789\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "length and chunked", OK200 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "gzip coding", OK200 "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "chunked not last", OK200 "Transfer-Encoding: chunked, gzip\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "chunked twice", OK200 "Transfer-Encoding: chunked, chunked\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "TE in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "bad chunk size", OK200 "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "chunk size too big", OK200 "Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "chunk without CRLF", OK200 "Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "truncated length body", OK200 "Content-Length: 10\r\n\r\nhello", HTTP_M_GET, 1, 1, 0, 0, 0, "", 0 },
    { "truncated chunked body", OK200 "Transfer-Encoding: chunked\r\n\r\n5\r\nhel", HTTP_M_GET, 1, 1, 0, 0, 0, "", 0 },
    { "missing last chunk", OK200 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", HTTP_M_GET, 1, 1, 0, 0, 0, "", 0 },
    { "truncated head", "HTTP/1.1 200 OK\r\nContent-Le", HTTP_M_GET, 1, 1, 0, 0, 0, "", 0 },
    { "bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "bare LF in fields", OK200 "Content-Length: 0\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "lower-case version", "http/1.1 200 OK\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "two-digit status", "HTTP/1.1 20 OK\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "status 099", "HTTP/1.1 099 X\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "status 600", "HTTP/1.1 600 X\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "obs-fold", OK200 "X-A: 1\r\n  2\r\nContent-Length: 0\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "space before colon", OK200 "Content-Length : 0\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "control in value", OK200 "X-A: a\001b\r\nContent-Length: 0\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "control in reason", "HTTP/1.1 200 O\001K\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "head too large", OK200 "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
    { "too many fields", OK200 "A: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\n\r\n", HTTP_M_GET, 0, 1, 0, 0, 0, "", 0 },
};

static void check_case(const struct rcase *c)
{
    size_t len = strlen(c->wire);
    struct outcome ref;
    run(c->wire, len, c->m, c->eof, NULL, 0, &ref);
    if (ref.err != c->err)
        fail_msg("%s: err %d, expected %d", c->name, ref.err, c->err);
    if (!c->err) {
        if (ref.status != c->status || ref.ninfo != c->ninfo || !ref.complete ||
            ref.keep_alive != c->keep_alive || ref.blen != strlen(c->body) ||
            memcmp(ref.body, c->body, ref.blen) != 0)
            fail_msg("%s: status %d ninfo %d complete %d ka %d body '%.*s'", c->name,
                     ref.status, ref.ninfo, ref.complete, ref.keep_alive, (int)ref.blen,
                     ref.body);
        size_t want_end = c->end < 0 ? len : (size_t)c->end;
        if (ref.end != want_end)
            fail_msg("%s: ended at %zu, expected %zu", c->name, ref.end, want_end);
    }
    /* Every split in two, then byte by byte. */
    for (size_t k = 0; k <= len; k++) {
        struct outcome o;
        size_t cut = k;
        run(c->wire, len, c->m, c->eof, &cut, 1, &o);
        if (o.err != ref.err || o.status != ref.status || o.ninfo != ref.ninfo ||
            o.blen != ref.blen || memcmp(o.body, ref.body, o.blen) != 0 || o.end != ref.end ||
            o.complete != ref.complete)
            fail_msg("%s: split at %zu differs", c->name, k);
    }
    size_t *cuts = malloc(len * sizeof *cuts);
    for (size_t k = 0; k < len; k++)
        cuts[k] = k + 1;
    struct outcome o;
    run(c->wire, len, c->m, c->eof, cuts, len, &o);
    free(cuts);
    if (o.err != ref.err || o.blen != ref.blen || memcmp(o.body, ref.body, o.blen) != 0 ||
        o.end != ref.end)
        fail_msg("%s: byte by byte differs", c->name);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
}

static void test_fields_and_reason(void **state)
{
    (void)state;
    const char *w = "HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\nX-E:\r\nContent-Length: 0\r\n\r\n";
    http_field_t f[8];
    http_response_t r;
    http_parse_state_t ps;
    const char *why;
    http_parse_state_init(&ps);
    int rc = http_parse_response(w, strlen(w), &ps, 1024, 8, f, &r, &why);
    assert_int_equal(rc, (int)strlen(w));
    assert_int_equal(r.status, 301);
    assert_int_equal(r.nfields, 3);
    assert_true(slice_eq(r.reason, SLICE_LIT("Moved Permanently")));
    const http_field_t *loc = http_response_field(&r, "location");
    assert_non_null(loc);
    assert_true(slice_eq(loc->value, SLICE_LIT("/x")));
    assert_int_equal(http_response_field(&r, "x-e")->value.len, 0);
    assert_null(http_response_field(&r, "etag"));
    assert_int_equal(r.content_length, 0);
}

static void test_errors_have_reasons(void **state)
{
    (void)state;
    struct { const char *w; const char *why; } t[] = {
        { OK200 "Content-Length: 1\r\nContent-Length: 1\r\n\r\n", "several Content-Length fields" },
        { OK200 "Content-Length: x\r\n\r\n", "invalid Content-Length" },
        { OK200 "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "both Content-Length and Transfer-Encoding" },
        { "HTTP/1.1 200 OK\n\n", "status line not ended by CRLF" },
        { "HTTP/3.0 200 OK\r\n\r\n", "malformed status line" },
        { "HTTP/1.7 200 OK\r\n\r\n", "unsupported HTTP version" },
        { "HTTP/1.1 2x0 OK\r\n\r\n", "malformed status code" },
        { "HTTP/1.1 700 OK\r\n\r\n", "status code out of range" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        http_field_t f[8];
        http_response_t r;
        http_parse_state_t ps;
        const char *why;
        http_parse_state_init(&ps);
        int rc = http_parse_response(t[i].w, strlen(t[i].w), &ps, 1024, 8, f, &r, &why);
        assert_int_equal(rc, HTTP_RESPONSE_BAD);
        assert_string_equal(why, t[i].why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_fields_and_reason),
        cmocka_unit_test(test_errors_have_reasons),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
