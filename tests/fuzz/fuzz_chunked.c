/* fuzz_chunked.c - libFuzzer target for the chunked transfer-coding decoder.
 *
 * The input is a chunked message body (and maybe bytes after it). It is
 * decoded whole, byte by byte, and in pieces of sizes drawn from a
 * generator seeded by the input. Every way must give the same body bytes,
 * the same verdict (DONE, an error with the same reason, or MORE when the
 * input ran out) and the same total of bytes consumed. The body is then
 * encoded again with http_chunk_head and decoded, which must give it back.
 *
 * Each piece is a heap copy of exactly its length, so AddressSanitizer
 * sees any read past it. Any mismatch calls abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/chunked.h"

struct outcome {
    int verdict;          /* HTTP_CHUNK_DONE, HTTP_CHUNK_MORE or -400 */
    size_t consumed;      /* input bytes used in all */
    const char *why;
    uint8_t *body;
    size_t body_len;
};

static void fail(const char *what, const char *how)
{
    fprintf(stderr, "fuzz_chunked: %s (feeding %s)\n", what, how);
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

static void decode(const uint8_t *data, size_t size, struct cutter *cut, struct outcome *o)
{
    http_chunked_t d;
    http_chunked_init(&d);
    o->body = malloc(size ? size : 1);
    o->body_len = 0;
    o->why = "";
    size_t off = 0;
    while (off < size) {
        size_t plen = next_piece(cut, size - off);
        char *buf = malloc(plen);
        memcpy(buf, data + off, plen);
        size_t pos = 0;
        for (;;) {
            size_t c = (size_t)-1;
            slice_t sl = { NULL, 0 };
            const char *why = NULL;
            int rc = http_chunked_decode(&d, buf + pos, plen - pos, &c, &sl, &why);
            if (why == NULL)
                fail("why left unset", cut->name);
            if (c > plen - pos)
                fail("consumed more than given", cut->name);
            if (rc == HTTP_CHUNK_DATA) {
                if (sl.len == 0 || sl.len > c || sl.p != buf + pos + c - sl.len)
                    fail("data slice not the last bytes consumed", cut->name);
                if (o->body_len + sl.len > size)
                    fail("more body than input", cut->name);
                memcpy(o->body + o->body_len, sl.p, sl.len);
                o->body_len += sl.len;
                pos += c;
                if (pos < plen)
                    continue;
                /* All of the piece used: an empty call asks for more. */
                rc = http_chunked_decode(&d, buf + pos, 0, &c, &sl, &why);
                if (rc != HTTP_CHUNK_MORE || c != 0)
                    fail("empty call after data is not MORE", cut->name);
                break;
            }
            pos += c;
            if (rc == HTTP_CHUNK_MORE) {
                if (pos != plen)
                    fail("MORE without using all input", cut->name);
                break;
            }
            if (rc == HTTP_CHUNK_DONE || rc == -400) {
                o->verdict = rc;
                o->consumed = off + pos;
                o->why = why;
                if (rc == HTTP_CHUNK_DONE) {
                    /* Done stays done, and uses nothing more. */
                    rc = http_chunked_decode(&d, buf + pos, plen - pos, &c, &sl, &why);
                    if (rc != HTTP_CHUNK_DONE || c != 0)
                        fail("call after DONE is not DONE with nothing consumed", cut->name);
                }
                free(buf);
                return;
            }
            fail("unknown return value", cut->name);
        }
        off += plen;
        free(buf);
    }
    o->verdict = HTTP_CHUNK_MORE;
    o->consumed = size;
}

static void same(const struct outcome *a, const struct outcome *b, const char *how)
{
    if (a->verdict != b->verdict) {
        fprintf(stderr, "verdict %d (%s) vs %d (%s)\n", a->verdict, a->why, b->verdict, b->why);
        fail("verdict differs", how);
    }
    if (a->consumed != b->consumed) {
        fprintf(stderr, "consumed %zu vs %zu\n", a->consumed, b->consumed);
        fail("bytes consumed differ", how);
    }
    if (strcmp(a->why, b->why) != 0) {
        fprintf(stderr, "why \"%s\" vs \"%s\"\n", a->why, b->why);
        fail("error reason differs", how);
    }
    if (a->body_len != b->body_len || (a->body_len && memcmp(a->body, b->body, a->body_len) != 0)) {
        fprintf(stderr, "body %zu vs %zu bytes\n", a->body_len, b->body_len);
        fail("body differs", how);
    }
}

/* Encodes body in chunks of sizes drawn from seed, decodes it whole, and
 * checks that the body comes back and the whole encoding is used. */
static void roundtrip(const uint8_t *body, size_t n, uint64_t seed)
{
    size_t cap = n + (n + 1) * 22 + 8;
    char *enc = malloc(cap);
    size_t e = 0, at = 0;
    while (at < n) {
        size_t k = 1 + (size_t)(xorshift(&seed) % (n - at < 300 ? n - at : 300));
        char *head = malloc(20);
        size_t hl = http_chunk_head(head, k);
        if (hl < 3 || hl > 20 || head[hl - 2] != '\r' || head[hl - 1] != '\n')
            fail("bad chunk head", "an encoding");
        memcpy(enc + e, head, hl);
        free(head);
        e += hl;
        memcpy(enc + e, body + at, k);
        e += k;
        memcpy(enc + e, "\r\n", 2);
        e += 2;
        at += k;
    }
    memcpy(enc + e, HTTP_CHUNK_LAST, sizeof HTTP_CHUNK_LAST - 1);
    e += sizeof HTTP_CHUNK_LAST - 1;

    struct cutter whole = { "an encoding whole", 0, 0 };
    struct outcome o;
    decode((const uint8_t *)enc, e, &whole, &o);
    if (o.verdict != HTTP_CHUNK_DONE || o.consumed != e)
        fail("own encoding not decoded to the end", "an encoding");
    if (o.body_len != n || (n && memcmp(o.body, body, n) != 0))
        fail("own encoding decodes to another body", "an encoding");
    free(o.body);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h = fnv1a(data, size);
    struct cutter cutters[] = {
        { "whole", 0, 0 },
        { "byte by byte", 1, 0 },
        { "pieces of 1-3", 3, h },
        { "pieces of 1-16", 16, h ^ 0x5555 },
        { "pieces of 1-256", 256, h * 3 + 1 },
        { "pieces of first-byte size", size ? (size_t)data[0] + 2 : 2, h + 17 },
    };
    struct outcome ref;
    decode(data, size, &cutters[0], &ref);
    for (size_t i = 1; i < sizeof cutters / sizeof cutters[0]; i++) {
        struct outcome o;
        decode(data, size, &cutters[i], &o);
        same(&ref, &o, cutters[i].name);
        free(o.body);
    }
    if (ref.verdict != HTTP_CHUNK_MORE && ref.consumed > size)
        fail("consumed more than the input", "whole");
    roundtrip(ref.body, ref.body_len, h);
    free(ref.body);
    return 0;
}
