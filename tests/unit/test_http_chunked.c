/* test_http_chunked.c - the chunked transfer coding (src/http/chunked.c).
 *
 * Tables of raw wire bytes, each decoded whole, split at every offset,
 * byte by byte and in random pieces. Every call gets only the bytes not yet
 * consumed, copied right before a PROT_NONE page so that any read past
 * them faults. For a valid body the DATA slices must add up to the body,
 * DONE must come exactly once, at the end of the message, and the bytes
 * after it must stay unconsumed. For a malformed one the error must be -400
 * at the same input offset for every split. */
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

#include "http/chunked.h"

/* ------------------------------------------------------------ guard pages */

static guard_t g_in;

/* The decoded body of the last decode(): one buffer for the whole run, so
 * that a failed assertion (which longjmps out) leaks nothing. */
static char *g_body;
static size_t g_body_cap;

static int group_setup(void **state)
{
    (void)state;
    guard_init(&g_in, 1u << 20);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    munmap(g_in.base, g_in.maplen);
    free(g_body);
    return 0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

/* ------------------------------------------------------------- the driver */

/* How the input arrives: all at once, in two pieces cut at `cut`, one byte
 * at a time, or in random pieces. */
enum sched { S_WHOLE, S_CUT, S_BYTES, S_RANDOM };

struct outcome {
    int rc;            /* HTTP_CHUNK_DONE, HTTP_CHUNK_MORE (input ran out) or -400 */
    size_t at;         /* input offset: end of the message, or the offending byte */
    char *body;        /* g_body */
    size_t body_len;
    const char *why;
};

static size_t next_arrival(enum sched s, size_t have, size_t n, size_t cut)
{
    switch (s) {
    case S_WHOLE:
        return n;
    case S_CUT:
        return have < cut ? cut : n;
    case S_BYTES:
        return have + 1 <= n ? have + 1 : n;
    case S_RANDOM:
    default: {
        size_t k = have + 1 + (size_t)(rng() % 9);
        return k < n ? k : n;
    }
    }
}

/* Runs the decoder over in[0, n) as a receiver would: bytes arrive by the
 * schedule, each call gets what is unconsumed. Checks the invariants of
 * every call on the way. */
static struct outcome decode(const char *name, const char *in, size_t n, enum sched s, size_t cut)
{
    struct outcome o = { .rc = HTTP_CHUNK_MORE };
    if (g_body_cap < n + 1) {
        g_body = realloc(g_body, n + 1);
        assert_non_null(g_body);
        g_body_cap = n + 1;
    }
    o.body = g_body;
    http_chunked_t d;
    http_chunked_init(&d);
    size_t have = 0, pos = 0;
    int guard = 0;
    have = next_arrival(s, 0, n, cut);
    for (;;) {
        assert_true(++guard < 10000000);
        size_t avail = have - pos;
        const char *p = guard_put(&g_in, in + pos, avail);
        size_t consumed = (size_t)-1;
        slice_t data = { NULL, 0 };
        const char *why = NULL;
        int rc = http_chunked_decode(&d, p, avail, &consumed, &data, &why);
        if (why == NULL || consumed > avail) {
            print_error("%s: at %zu: why %p, consumed %zu of %zu\n", name, pos, (const void *)why,
                        consumed, avail);
            fail();
        }
        if (rc == HTTP_CHUNK_DATA) {
            if (data.len == 0 || data.p < p || data.p + data.len != p + consumed) {
                print_error("%s: at %zu: DATA slice of %zu bytes not ending at consumed %zu\n",
                            name, pos, data.len, consumed);
                fail();
            }
            memcpy(o.body + o.body_len, data.p, data.len);
            o.body_len += data.len;
            pos += consumed;
            continue;
        }
        if (rc == HTTP_CHUNK_DONE) {
            pos += consumed;
            o.rc = rc;
            o.at = pos;
            /* Once done, it stays done and takes nothing more. */
            p = guard_put(&g_in, in + pos, n - pos);
            consumed = (size_t)-1;
            rc = http_chunked_decode(&d, p, n - pos, &consumed, &data, &why);
            if (rc != HTTP_CHUNK_DONE || consumed != 0) {
                print_error("%s: after DONE: rc %d, consumed %zu\n", name, rc, consumed);
                fail();
            }
            return o;
        }
        if (rc == HTTP_CHUNK_MORE) {
            if (consumed != avail) {
                print_error("%s: at %zu: MORE with %zu of %zu bytes consumed\n", name, pos,
                            consumed, avail);
                fail();
            }
            pos += consumed;
            if (have == n) {
                o.at = pos;
                return o;
            }
            have = next_arrival(s, have, n, cut);
            continue;
        }
        if (rc != -400 || why[0] == '\0') {
            print_error("%s: at %zu: rc %d (why \"%s\")\n", name, pos, rc, why);
            fail();
        }
        o.rc = rc;
        o.at = pos + consumed;
        o.why = why;
        return o;
    }
}

static const char *sched_name(enum sched s)
{
    static const char *const names[] = { "whole", "cut", "byte by byte", "random" };
    return names[s];
}

static void want_outcome(const char *name, enum sched s, size_t cut, const struct outcome *o,
                         int rc, size_t at, const char *body, size_t body_len)
{
    if (o->rc != rc || o->at != at) {
        print_error("%s (%s, cut %zu): rc %d at %zu, want %d at %zu\n", name, sched_name(s), cut,
                    o->rc, o->at, rc, at);
        fail();
    }
    if (body != NULL && (o->body_len != body_len || memcmp(o->body, body, body_len) != 0)) {
        print_error("%s (%s, cut %zu): body of %zu bytes \"%.*s\", want %zu bytes\n", name,
                    sched_name(s), cut, o->body_len, (int)o->body_len, o->body, body_len);
        fail();
    }
}

/* Every schedule gives `rc` at `at` and (for valid input) the body. */
static void run_all(const char *name, const char *in, size_t n, int rc, size_t at,
                    const char *body, size_t body_len)
{
    struct outcome o;
    o = decode(name, in, n, S_WHOLE, 0);
    want_outcome(name, S_WHOLE, 0, &o, rc, at, body, body_len);
    for (size_t cut = 0; cut <= n; cut++) {
        o = decode(name, in, n, S_CUT, cut);
        want_outcome(name, S_CUT, cut, &o, rc, at, body, body_len);
    }
    o = decode(name, in, n, S_BYTES, 0);
    want_outcome(name, S_BYTES, 0, &o, rc, at, body, body_len);
    for (int i = 0; i < 16; i++) {
        o = decode(name, in, n, S_RANDOM, 0);
        want_outcome(name, S_RANDOM, 0, &o, rc, at, body, body_len);
    }
}

/* ------------------------------------------------------------ valid bodies */

struct valid_case {
    const char *name;
    const char *msg;     /* the chunked message */
    size_t msg_len;
    const char *extra;   /* what follows it: must stay unconsumed */
    size_t extra_len;
    const char *body;
    size_t body_len;
};

#define MSG(s) .msg = (s), .msg_len = sizeof(s) - 1
#define EXTRA(s) .extra = (s), .extra_len = sizeof(s) - 1
#define BODY(s) .body = (s), .body_len = sizeof(s) - 1

static const struct valid_case valid_cases[] = {
    { .name = "one chunk", MSG("5\r\nhello\r\n0\r\n\r\n"), BODY("hello") },
    { .name = "empty body", MSG("0\r\n\r\n"), BODY("") },
    { .name = "HTTP_CHUNK_LAST", MSG(HTTP_CHUNK_LAST), BODY("") },
    { .name = "many chunks", MSG("1\r\na\r\n2\r\nbc\r\n3\r\ndef\r\n4\r\nghij\r\n0\r\n\r\n"),
      BODY("abcdefghij") },
    { .name = "uppercase hex",
      MSG("A\r\n0123456789\r\n1F\r\nabcdefghijklmnopqrstuvwxyz01234\r\n0\r\n\r\n"),
      BODY("0123456789abcdefghijklmnopqrstuvwxyz01234") },
    { .name = "lowercase hex",
      MSG("a\r\n0123456789\r\n1f\r\nabcdefghijklmnopqrstuvwxyz01234\r\n0\r\n\r\n"),
      BODY("0123456789abcdefghijklmnopqrstuvwxyz01234") },
    { .name = "leading zeros", MSG("0005\r\nhello\r\n00000000000000000000001\r\n!\r\n000\r\n\r\n"),
      BODY("hello!") },
    { .name = "extensions", MSG("5;a=b;c=\"q\"\r\nhello\r\n1;x\r\n!\r\n0;last=\"y z\"\r\n\r\n"),
      BODY("hello!") },
    { .name = "extensions after BWS", MSG("5 ;a=b\r\nhello\r\n1\t; x = \"1;2\"\r\n!\r\n0 ;z\r\n\r\n"),
      BODY("hello!") },
    { .name = "extension with obs-text and quoted CTL-free bytes",
      MSG("3;n=\"\x80\xff\\\"\"\r\nabc\r\n0\r\n\r\n"), BODY("abc") },
    { .name = "trailers", MSG("5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\nZ: a b\tc \x80\r\n\r\n"),
      BODY("hello") },
    { .name = "trailer names of every tchar", MSG("0\r\n!#$%&'*+-.^_`|~09AZaz: v\r\n\r\n"),
      BODY("") },
    { .name = "body bytes look like framing", MSG("7\r\n0\r\n\r\n\0\xff\r\n0\r\n\r\n"),
      BODY("0\r\n\r\n\0\xff") },
    { .name = "bytes after the message stay", MSG("3\r\nabc\r\n0\r\n\r\n"),
      EXTRA("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), BODY("abc") },
    { .name = "a second message after the first", MSG("0\r\n\r\n"), EXTRA("5\r\nhello\r\n0\r\n\r\n"),
      BODY("") },
    { .name = "garbage after the message", MSG("1\r\nx\r\n0\r\nT: 1\r\n\r\n"), EXTRA("\0\n\r zz"),
      BODY("x") },
};

static void run_valid(const struct valid_case *c)
{
    size_t n = c->msg_len + c->extra_len;
    char *in = malloc(n + 1);
    assert_non_null(in);
    memcpy(in, c->msg, c->msg_len);
    if (c->extra_len > 0)
        memcpy(in + c->msg_len, c->extra, c->extra_len);
    run_all(c->name, in, n, HTTP_CHUNK_DONE, c->msg_len, c->body, c->body_len);
    /* Every strict prefix of the message: MORE, all of it consumed. */
    for (size_t k = 0; k < c->msg_len; k++) {
        struct outcome o = decode(c->name, in, k, S_WHOLE, 0);
        want_outcome(c->name, S_WHOLE, k, &o, HTTP_CHUNK_MORE, k, NULL, 0);
        if (o.body_len > c->body_len || memcmp(o.body, c->body, o.body_len) != 0) {
            print_error("%s: prefix %zu gave body bytes not in the body\n", c->name, k);
            fail();
        }
    }
    free(in);
}

static void test_valid_bodies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++)
        run_valid(&valid_cases[i]);
}

/* -------------------------------------------------------- malformed bodies */

struct bad_case {
    const char *name;
    const char *in;
    size_t len;
    size_t at;           /* offset of the byte that is refused */
    const char *why;     /* NULL: any reason */
};

#define IN(s) .in = (s), .len = sizeof(s) - 1

static const struct bad_case bad_cases[] = {
    { .name = "non-hex size", IN("g\r\nx\r\n0\r\n\r\n"), .at = 0 },
    { .name = "non-hex after a digit", IN("5g\r\nhello\r\n0\r\n\r\n"), .at = 1 },
    { .name = "0x prefix", IN("0x5\r\nhello\r\n0\r\n\r\n"), .at = 1 },
    { .name = "negative size", IN("-5\r\nhello\r\n0\r\n\r\n"), .at = 0 },
    { .name = "plus sign", IN("+5\r\nhello\r\n0\r\n\r\n"), .at = 0 },
    { .name = "empty size line", IN("\r\nhello\r\n0\r\n\r\n"), .at = 0 },
    { .name = "empty input line then data", IN("\r\n"), .at = 0 },
    { .name = "empty size line after a chunk", IN("5\r\nhello\r\n\r\n\r\n"), .at = 10 },
    { .name = "extension without a size after a chunk", IN("1\r\nx\r\n;a\r\n\r\n"), .at = 6 },
    { .name = "space before the size", IN(" 5\r\nhello\r\n0\r\n\r\n"), .at = 0 },
    { .name = "extension without a size", IN(";a\r\nhello\r\n0\r\n\r\n"), .at = 0 },
    { .name = "NUL after the size", IN("5\0\r\nhello\r\n0\r\n\r\n"), .at = 1 },
    { .name = "16 hex digits: 2^60", IN("1000000000000000\r\n"), .at = 15,
      .why = "chunk size too large" },
    { .name = "16 hex digits: 2^64 - 1", IN("ffffffffffffffff\r\n"), .at = 15,
      .why = "chunk size too large" },
    { .name = "17 hex digits", IN("10000000000000000\r\n"), .at = 15,
      .why = "chunk size too large" },
    { .name = "bare LF after the size", IN("5\nhello\r\n0\r\n\r\n"), .at = 1 },
    { .name = "CR not followed by LF after the size", IN("5\rhello\r\n0\r\n\r\n"), .at = 2 },
    { .name = "CR CR after the size", IN("5\r\r\nhello\r\n0\r\n\r\n"), .at = 2 },
    { .name = "bare LF after an extension", IN("5;a\nhello\r\n0\r\n\r\n"), .at = 3 },
    { .name = "NUL in an extension", IN("5;a=\0\r\nhello\r\n0\r\n\r\n"), .at = 4 },
    { .name = "0x01 in an extension", IN("5;a=\x01\r\nhello\r\n0\r\n\r\n"), .at = 4 },
    { .name = "DEL in an extension", IN("5;\x7f\r\nhello\r\n0\r\n\r\n"), .at = 2 },
    { .name = "ESC in an extension", IN("5;a\x1b\r\nhello\r\n0\r\n\r\n"), .at = 3 },
    { .name = "data longer than the size", IN("5\r\nhelloX\r\n0\r\n\r\n"), .at = 8 },
    { .name = "data shorter than the size", IN("6\r\nhello\r\n0\r\n\r\n"), .at = 9 },
    { .name = "no CRLF after the data", IN("5\r\nhello0\r\n\r\n"), .at = 8 },
    { .name = "bare LF after the data", IN("5\r\nhello\n0\r\n\r\n"), .at = 8 },
    { .name = "CR without LF after the data", IN("5\r\nhello\rX0\r\n\r\n"), .at = 9 },
    { .name = "CR CR after the data", IN("5\r\nhello\r\r\n0\r\n\r\n"), .at = 9 },
    { .name = "trailer name with SP", IN("0\r\nX Y: z\r\n\r\n"), .at = 4 },
    { .name = "trailer name with '('", IN("0\r\nX(: z\r\n\r\n"), .at = 4 },
    { .name = "SP before a trailer's colon", IN("0\r\nX : z\r\n\r\n"), .at = 4 },
    { .name = "empty trailer name", IN("0\r\n: z\r\n\r\n"), .at = 3 },
    { .name = "trailer starting with SP", IN("0\r\n X: z\r\n\r\n"), .at = 3 },
    { .name = "obs-fold in the trailers", IN("0\r\nX: a\r\n b\r\n\r\n"), .at = 9 },
    { .name = "trailer without a colon", IN("0\r\nX\r\n\r\n"), .at = 4 },
    { .name = "trailer name with obs-text", IN("0\r\nX\x80: z\r\n\r\n"), .at = 4 },
    { .name = "CTL in a trailer value", IN("0\r\nX: a\x01\r\n\r\n"), .at = 7 },
    { .name = "DEL in a trailer value", IN("0\r\nX: \x7f\r\n\r\n"), .at = 6 },
    { .name = "trailer ended by a bare LF", IN("0\r\nX: y\n\r\n"), .at = 7 },
    { .name = "trailer CR not followed by LF", IN("0\r\nX: y\r\r\n"), .at = 8 },
    { .name = "bare LF after the trailers", IN("0\r\nX: y\r\n\n"), .at = 9 },
    { .name = "bare LF after the last chunk", IN("0\r\n\n"), .at = 3 },
    { .name = "CR not followed by LF at the end", IN("0\r\n\rX"), .at = 4 },
    { .name = "CR CR at the end", IN("0\r\n\r\r\n"), .at = 4 },
};

static void test_malformed_bodies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        run_all(c->name, c->in, c->len, -400, c->at, NULL, 0);
        if (c->why != NULL) {
            struct outcome o = decode(c->name, c->in, c->len, S_WHOLE, 0);
            assert_string_equal(o.why, c->why);
        }
    }
}

/* The size limit: sizes up to 2^60 - 1 are taken, with any number of
 * leading zeros; 2^60 and more are refused at the 16th significant digit. */
static void test_size_boundary(void **state)
{
    (void)state;
    static const struct { const char *in; uint64_t size; } ok[] = {
        { "fffffffffffffff\r\n", 0xfffffffffffffffull },
        { "0fffffffffffffff\r\n", 0xfffffffffffffffull },
        { "00000000000000000000fffffffffffffff\r\n", 0xfffffffffffffffull },
        { "FFFFFFFFFFFFFFF\r\n", 0xfffffffffffffffull },
        { "100000000000000\r\n", 0x100000000000000ull },
        { "1\r\n", 1 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = strlen(ok[i].in);
        run_all(ok[i].in, ok[i].in, n, HTTP_CHUNK_MORE, n, "", 0);
        http_chunked_t d;
        http_chunked_init(&d);
        size_t consumed;
        slice_t data;
        const char *why;
        char *p = guard_put(&g_in, ok[i].in, n);
        assert_int_equal(http_chunked_decode(&d, p, n, &consumed, &data, &why), HTTP_CHUNK_MORE);
        assert_int_equal(consumed, n);
        assert_true(d.remaining == ok[i].size);
        /* One data byte is handed out at once. */
        p = guard_put(&g_in, "x", 1);
        assert_int_equal(http_chunked_decode(&d, p, 1, &consumed, &data, &why), HTTP_CHUNK_DATA);
        assert_int_equal(consumed, 1);
        assert_int_equal(data.len, 1);
        assert_true(d.remaining == ok[i].size - 1);
    }
}

/* Extensions: up to HTTP_CHUNK_MAX_EXT bytes after the size. */
static void test_extension_length(void **state)
{
    (void)state;
    size_t cap = HTTP_CHUNK_MAX_EXT + 64;
    char *in = malloc(cap);
    assert_non_null(in);
    for (size_t ext = HTTP_CHUNK_MAX_EXT - 1; ext <= HTTP_CHUNK_MAX_EXT + 1; ext++) {
        size_t n = 0;
        in[n++] = '1';
        in[n++] = ';';
        memset(in + n, 'e', ext - 1);
        n += ext - 1;
        memcpy(in + n, "\r\nx\r\n0\r\n\r\n", 10);
        n += 10;
        if (ext <= HTTP_CHUNK_MAX_EXT)
            run_all("extension of at most the maximum", in, n, HTTP_CHUNK_DONE, n, "x", 1);
        else
            run_all("extension over the maximum", in, n, -400, 1 + HTTP_CHUNK_MAX_EXT, NULL, 0);
    }
    /* The count starts again for each chunk. */
    size_t n = 0;
    for (int k = 0; k < 3; k++) {
        in = realloc(in, n + HTTP_CHUNK_MAX_EXT + 16);
        assert_non_null(in);
        in[n++] = '1';
        in[n++] = ';';
        memset(in + n, 'e', HTTP_CHUNK_MAX_EXT - 1);
        n += HTTP_CHUNK_MAX_EXT - 1;
        memcpy(in + n, "\r\nx\r\n", 5);
        n += 5;
    }
    in = realloc(in, n + 5);
    assert_non_null(in);
    memcpy(in + n, "0\r\n\r\n", 5);
    n += 5;
    run_all("maximal extensions on every chunk", in, n, HTTP_CHUNK_DONE, n, "xxx", 3);
    free(in);
}

/* Trailers: up to HTTP_CHUNK_MAX_TRAILER bytes (the LFs not counted). */
static void test_trailer_length(void **state)
{
    (void)state;
    /* "0\r\n" "X: " value "\r\n" "\r\n": counted X, ':', ' ', value, CR, CR. */
    size_t vmax = HTTP_CHUNK_MAX_TRAILER - 5;
    char *in = malloc(vmax + 32);
    assert_non_null(in);
    for (size_t v = vmax; v <= vmax + 1; v++) {
        size_t n = 0;
        memcpy(in, "0\r\nX: ", 6);
        n = 6;
        memset(in + n, 'v', v);
        n += v;
        memcpy(in + n, "\r\n\r\n", 4);
        n += 4;
        struct outcome o = decode("trailer section", in, n, S_WHOLE, 0);
        if (v == vmax)
            want_outcome("trailers of the maximum", S_WHOLE, 0, &o, HTTP_CHUNK_DONE, n, "", 0);
        else
            want_outcome("trailers over the maximum", S_WHOLE, 0, &o, -400, n - 2, NULL, 0);
        o = decode("trailer section", in, n, S_RANDOM, 0);
        if (v == vmax)
            want_outcome("trailers of the maximum", S_RANDOM, 0, &o, HTTP_CHUNK_DONE, n, "", 0);
        else
            want_outcome("trailers over the maximum", S_RANDOM, 0, &o, -400, n - 2, NULL, 0);
    }
    free(in);
}

/* RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name ... ).
 * Whitespace after the size may only lead to a ';'. Taking "1 2" as a
 * size of 1 frames the body differently from a peer that reads 0x12. */
static void test_extension_syntax(void **state)
{
    (void)state;
    static const struct bad_case t[] = {
        { .name = "size, SP, digit", IN("1 2\r\nx\r\n0\r\n\r\n"), .at = 2 },
        { .name = "size, HTAB, hex", IN("a\tb\r\n0123456789\r\n0\r\n\r\n"), .at = 2 },
        { .name = "size, SP, word", IN("5 x\r\nhello\r\n0\r\n\r\n"), .at = 2 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        run_all(t[i].name, t[i].in, t[i].len, -400, t[i].at, NULL, 0);
}

/* A decoder handed no bytes: MORE, nothing consumed, in every state. */
static void test_empty_input(void **state)
{
    (void)state;
    static const char in[] = "5;x\r\nhello\r\n0\r\nT: v\r\n\r\n";
    for (size_t k = 0; k < sizeof in - 1; k++) {
        http_chunked_t d;
        http_chunked_init(&d);
        size_t pos = 0, consumed;
        slice_t data;
        const char *why;
        while (pos < k) {
            char *p = guard_put(&g_in, in + pos, k - pos);
            int rc = http_chunked_decode(&d, p, k - pos, &consumed, &data, &why);
            assert_true(rc == HTTP_CHUNK_DATA || rc == HTTP_CHUNK_MORE);
            pos += consumed;
        }
        consumed = 99;
        assert_int_equal(http_chunked_decode(&d, g_in.end, 0, &consumed, &data, &why),
                         HTTP_CHUNK_MORE);
        assert_int_equal(consumed, 0);
    }
}

/* ---------------------------------------------------------------- encoder */

static void test_chunk_head(void **state)
{
    (void)state;
    static const struct { uint64_t n; const char *want; } t[] = {
        { 1, "1\r\n" }, { 9, "9\r\n" }, { 10, "a\r\n" }, { 15, "f\r\n" }, { 16, "10\r\n" },
        { 255, "ff\r\n" }, { 256, "100\r\n" }, { 4096, "1000\r\n" }, { 0x1a2b, "1a2b\r\n" },
        { 65535, "ffff\r\n" }, { 1048576, "100000\r\n" },
        { 0xfffffffffffffffull, "fffffffffffffff\r\n" },
        { UINT64_MAX, "ffffffffffffffff\r\n" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        /* The 20 bytes the contract asks for, right before the guard. */
        char *out = g_in.end - 20;
        memset(out, '#', 20);
        size_t len = http_chunk_head(out, t[i].n);
        assert_int_equal(len, strlen(t[i].want));
        assert_memory_equal(out, t[i].want, len);
    }
    assert_int_equal(strlen(HTTP_CHUNK_LAST), 5);
    assert_memory_equal(HTTP_CHUNK_LAST, "0\r\n\r\n", 5);
}

/* Encode a body in chunks of the given sizes, then decode it by every
 * schedule. */
static void round_trip(const size_t *sizes, size_t nsizes)
{
    size_t total = 0;
    for (size_t i = 0; i < nsizes; i++)
        total += sizes[i];
    char *body = malloc(total + 1);
    char *wire = malloc(total + nsizes * 24 + 8);
    assert_non_null(body);
    assert_non_null(wire);
    for (size_t i = 0; i < total; i++)
        body[i] = (char)(rng() & 0xff);
    size_t w = 0, b = 0;
    for (size_t i = 0; i < nsizes; i++) {
        w += http_chunk_head(wire + w, sizes[i]);
        memcpy(wire + w, body + b, sizes[i]);
        w += sizes[i];
        b += sizes[i];
        memcpy(wire + w, "\r\n", 2);
        w += 2;
    }
    memcpy(wire + w, HTTP_CHUNK_LAST, 5);
    w += 5;
    struct outcome o;
    if (w < 600) {
        run_all("round trip", wire, w, HTTP_CHUNK_DONE, w, body, total);
    } else {
        for (int s = S_WHOLE; s <= S_RANDOM; s++) {
            size_t cut = w / 2;
            o = decode("round trip", wire, w, (enum sched)s, cut);
            want_outcome("round trip", (enum sched)s, cut, &o, HTTP_CHUNK_DONE, w, body, total);
        }
    }
    free(wire);
    free(body);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const size_t a[] = { 1 };
    static const size_t b[] = { 1, 2, 15, 16, 17 };
    static const size_t c[] = { 255, 256, 1 };
    static const size_t d[] = { 4096, 1, 4095 };
    static const size_t e[] = { 65537 };
    static const size_t f[] = { 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10 };
    round_trip(a, 1);
    round_trip(b, 5);
    round_trip(c, 3);
    round_trip(d, 3);
    round_trip(e, 1);
    round_trip(f, 11);
    round_trip(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_bodies),
        cmocka_unit_test(test_malformed_bodies),
        cmocka_unit_test(test_size_boundary),
        cmocka_unit_test(test_extension_length),
        cmocka_unit_test(test_extension_syntax),
        cmocka_unit_test(test_trailer_length),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_chunk_head),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests_name("http_chunked", tests, group_setup, group_teardown);
}
