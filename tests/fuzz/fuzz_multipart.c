/* fuzz_multipart.c - libFuzzer target for the multipart/form-data parser.
 *
 * The input is a boundary, a LF, and a multipart body. The body is parsed
 * whole, byte by byte, and in pieces of sizes drawn from a generator seeded
 * by the input. Every way must give the same transcript: the events (PART
 * with its fields, PART_END, DONE, or the error with its reason) each at the
 * same input offset, the data of each part, and the end (DONE, an error, or
 * MORE when the input ran out, with mp_finish agreeing).
 *
 * Each run is also checked against what the bytes say, with no parser:
 * a part's data is exactly the input from the end of its header section to
 * the first CRLF "--" boundary after it; a body byte is held back only while
 * the bytes consumed end in the beginning of a delimiter, and then no more
 * of them than that; a DATA slice lies in the call's input or in the parser.
 * The whole input is also given to mp_boundary as a Content-Type.
 *
 * Each piece is a heap copy of exactly its length, so AddressSanitizer sees
 * any read past it. Any mismatch calls abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/multipart.h"

static void fail(const char *what, const char *how)
{
    fprintf(stderr, "fuzz_multipart: %s (feeding %s)\n", what, how);
    abort();
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* How the input is cut: max_piece 0 means whole, else pieces of 1 to
 * max_piece bytes drawn from seed (max_piece 1: byte by byte). */
struct cutter {
    const char *name;
    size_t max_piece;
    uint64_t seed;
};

static size_t next_piece(struct cutter *c, size_t left)
{
    size_t n;
    if (c->max_piece == 0)
        n = left;
    else if (c->max_piece == 1)
        n = 1;
    else
        n = 1 + (size_t)(xorshift(&c->seed) % c->max_piece);
    return n < left ? n : left;
}

/* A growing byte string. */
struct bytes {
    uint8_t *p;
    size_t len, cap;
};

static void put(struct bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (b->p == NULL)
            abort();
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_rec(struct bytes *b, char type, size_t off)
{
    uint64_t o = off;
    put(b, &type, 1);
    put(b, &o, sizeof o);
}

static void put_str(struct bytes *b, const char *s, size_t cap, const char *how)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        fail("part field not NUL-terminated", how);
    put(b, s, n + 1);
}

/* memcmp that takes NULL for no bytes. */
static int same(const void *a, const void *b, size_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;
}

/* The first occurrence of d in in[from, n), or n. */
static size_t find(const uint8_t *in, size_t n, size_t from, const char *d, size_t dlen)
{
    const void *at = memmem(in + from, n - from, d, dlen);
    return at ? (size_t)((const uint8_t *)at - in) : n;
}

/* The longest tail of in[from, to) that is a proper prefix of d. */
static size_t must_hold(const uint8_t *in, size_t from, size_t to, const char *d, size_t dlen)
{
    size_t max = to - from < dlen - 1 ? to - from : dlen - 1;
    for (size_t h = max; h > 0; h--)
        if (memcmp(in + to - h, d, h) == 0)
            return h;
    return 0;
}

struct run {
    const uint8_t *in;        /* the body */
    size_t n;
    const char *delim;        /* CRLF "--" boundary */
    size_t dlen;
};

/* Parses the body as cut, into transcript t. */
static void parse(const struct run *r, struct cutter *cut, struct bytes *t)
{
    const char *how = cut->name;
    mp_parser_t p;
    if (mp_init(&p, slice_make(r->delim + 4, r->dlen - 4)) != 0)
        fail("mp_init refused a good boundary", how);
    struct bytes data = { 0 };
    int in_part = 0, done = 0;
    size_t part_at = 0, off = 0;
    while (off < r->n || (off == 0 && r->n == 0)) {
        size_t plen = next_piece(cut, r->n - off);
        char *buf = malloc(plen ? plen : 1);
        if (plen)
            memcpy(buf, r->in + off, plen);
        size_t pos = 0;
        for (;;) {
            size_t c = (size_t)-1;
            slice_t sl = { NULL, 0 };
            const char *why = NULL;
            mp_part_t part;
            memset(&part, 0xa5, sizeof part);
            int rc = mp_feed(&p, buf + pos, plen - pos, &c, &part, &sl, &why);
            if (why == NULL)
                fail("why left unset", how);
            if (c > plen - pos)
                fail("consumed more than given", how);
            if (rc != -400 && why[0] != '\0')
                fail("why set without an error", how);
            size_t at = off + pos + c;   /* absolute, after this call */
            if (rc == MP_DATA) {
                const char *pp = (const char *)&p;
                int in_input = sl.p >= buf + pos && sl.p + sl.len <= buf + pos + c;
                int in_parser = sl.p >= pp && sl.p + sl.len <= pp + sizeof p;
                if (!in_part || sl.len == 0 || !(in_input || in_parser))
                    fail("bad DATA slice", how);
                put(&data, sl.p, sl.len);
                if (at - part_at - data.len > must_hold(r->in, part_at, at, r->delim, r->dlen))
                    fail("more held back than could begin a delimiter", how);
                pos += c;
                continue;
            }
            if (rc == MP_MORE) {
                if (c != plen - pos)
                    fail("MORE without using all input", how);
                if (in_part && at - part_at - data.len
                               != must_hold(r->in, part_at, at, r->delim, r->dlen))
                    fail("held back bytes are not the delimiter's beginning", how);
                break;
            }
            if (rc == MP_PART) {
                if (in_part || done || c == 0)
                    fail("PART out of place", how);
                if (at < 4 || memcmp(r->in + at - 4, "\r\n\r\n", 4) != 0)
                    fail("PART not after CRLF CRLF", how);
                put_rec(t, 'P', at);
                put_str(t, part.name, sizeof part.name, how);
                put_str(t, part.filename, sizeof part.filename, how);
                put_str(t, part.content_type, sizeof part.content_type, how);
                if (part.has_filename != 0 && part.has_filename != 1)
                    fail("has_filename not 0 or 1", how);
                if (!part.has_filename && part.filename[0] != '\0')
                    fail("a filename without has_filename", how);
                put(t, &part.has_filename, sizeof part.has_filename);
                in_part = 1;
                part_at = at;
                data.len = 0;
                pos += c;
                continue;
            }
            if (rc == MP_PART_END) {
                if (!in_part || c == 0)
                    fail("PART_END out of place", how);
                /* The data is everything up to the first delimiter. */
                size_t d = find(r->in, r->n, part_at, r->delim, r->dlen);
                if (d + r->dlen != at)
                    fail("PART_END not at the first delimiter", how);
                if (data.len != d - part_at || !same(data.p, r->in + part_at, data.len))
                    fail("part data is not the bytes up to the delimiter", how);
                put_rec(t, 'E', at);
                put(t, data.p, data.len);
                in_part = 0;
                pos += c;
                continue;
            }
            if (rc == MP_DONE) {
                if (in_part || done || c == 0 || at < 2 || memcmp(r->in + at - 2, "--", 2) != 0)
                    fail("DONE out of place", how);
                if (mp_finish(&p) != 0)
                    fail("mp_finish refuses after DONE", how);
                put_rec(t, 'D', at);
                done = 1;
                pos += c;
                continue;   /* the epilogue: MORE, all consumed */
            }
            if (rc != -400 || why[0] == '\0')
                fail("unknown return value or no reason", how);
            put_rec(t, 'X', at);
            put(t, why, strlen(why) + 1);
            const char *why2 = NULL;
            if (mp_feed(&p, buf + pos + c, plen - pos - c, &c, &part, &sl, &why2) != -400
                || c != 0 || why2 == NULL || strcmp(why2, why) != 0)
                fail("error not sticky", how);
            if (mp_finish(&p) != -400)
                fail("mp_finish accepts after an error", how);
            free(buf);
            free(data.p);
            return;
        }
        off += plen;
        free(buf);
        if (r->n == 0)
            break;
    }
    /* Input used up. */
    if (in_part) {
        if (find(r->in, r->n, part_at, r->delim, r->dlen) != r->n)
            fail("a delimiter in an open part", how);
        if (data.len > r->n - part_at || !same(data.p, r->in + part_at, data.len))
            fail("open part's data is not its bytes", how);
        put_rec(t, 'O', r->n);
        put(t, data.p, data.len);
    }
    if ((mp_finish(&p) == 0) != done)
        fail("mp_finish disagrees", how);
    put_rec(t, done ? 'F' : 'M', r->n);
    free(data.p);
}

static void check_boundary(const uint8_t *data, size_t size)
{
    char *ct = malloc(size ? size : 1);
    if (size)
        memcpy(ct, data, size);
    slice_t out = { NULL, 0 };
    if (mp_boundary(slice_make(ct, size), &out) == 0) {
        if (out.p < ct || out.len == 0 || out.len > MP_BOUNDARY_MAX || out.p + out.len > ct + size)
            fail("mp_boundary result not in the input", "mp_boundary");
        if (out.p[out.len - 1] == ' ')
            fail("mp_boundary result ends in a space", "mp_boundary");
        for (size_t i = 0; i < out.len; i++)
            if (!strchr("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ",
                        out.p[i]) || out.p[i] == '\0')
                fail("mp_boundary result has a non-bchar", "mp_boundary");
        mp_parser_t p;
        if (mp_init(&p, out) != 0)
            fail("mp_init refuses what mp_boundary gave", "mp_boundary");
    }
    free(ct);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_boundary(data, size);

    const uint8_t *lf = memchr(data, '\n', size);
    if (lf == NULL)
        return 0;
    size_t blen = (size_t)(lf - data);
    mp_parser_t p;
    int bad = blen == 0 || blen > MP_BOUNDARY_MAX || memchr(data, '\r', blen) != NULL;
    if ((mp_init(&p, slice_make((const char *)data, blen)) != 0) != bad)
        fail("mp_init verdict", "mp_init");
    if (bad)
        return 0;
    char delim[4 + MP_BOUNDARY_MAX];
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, data, blen);
    struct run r = { lf + 1, size - blen - 1, delim, 4 + blen };

    uint64_t h = fnv1a(data, size);
    struct cutter cutters[] = {
        { "whole", 0, 0 },
        { "byte by byte", 1, 0 },
        { "pieces of 1-3", 3, h },
        { "pieces of 1-16", 16, h ^ 0x5555 },
        { "pieces of 1-256", 256, h * 3 + 1 },
        { "pieces of first-byte size", r.n ? (size_t)r.in[0] + 2 : 2, h + 17 },
    };
    struct bytes ref = { 0 };
    parse(&r, &cutters[0], &ref);
    for (size_t i = 1; i < sizeof cutters / sizeof cutters[0]; i++) {
        struct bytes t = { 0 };
        parse(&r, &cutters[i], &t);
        if (t.len != ref.len || !same(t.p, ref.p, t.len)) {
            fprintf(stderr, "transcript of %zu bytes vs %zu whole\n", t.len, ref.len);
            fail("transcript differs", cutters[i].name);
        }
        free(t.p);
    }
    free(ref.p);
    return 0;
}
