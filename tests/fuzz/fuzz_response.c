/* fuzz_response.c - libFuzzer target for the response parser and body
 * framing (src/http/response.c).
 *
 * The first byte picks the request method (GET, HEAD, CONNECT) and whether
 * the input ends with a close of the connection; the rest is what the
 * server sent. It is fed to a small client loop (1xx skipped, head, body)
 * whole and in pieces of sizes drawn from a generator seeded by the input,
 * each piece a heap copy of exactly the unconsumed bytes so that
 * AddressSanitizer sees any read past them. Both ways must give the same
 * verdict, status, 1xx count, body bytes and end position; any mismatch,
 * or a body longer than a declared Content-Length, calls abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/response.h"

#define MAX_HEAD   2048
#define MAX_FIELDS 32

struct outcome {
    int err, status, ninfo, complete;
    uint64_t body_hash;
    size_t body_len, end;
    int64_t content_length;
};

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
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

static void run(const char *in, size_t len, enum http_method m, int eof, uint64_t seed,
                struct outcome *o)
{
    memset(o, 0, sizeof *o);
    o->body_hash = 1469598103934665603ull;
    http_field_t fields[MAX_FIELDS];
    http_parse_state_t ps;
    http_body_t b;
    http_parse_state_init(&ps);
    size_t have = 0, pos = 0;
    int in_body = 0;
    const char *why;
    while (1) {
        if (have < len) {
            size_t step = seed ? 1 + (size_t)(xorshift(&seed) % 64) : len;
            have = have + step > len ? len : have + step;
        }
        for (;;) {
            size_t n = have - pos;
            char *p = malloc(n ? n : 1);
            memcpy(p, in + pos, n);
            if (!in_body) {
                http_response_t res;
                int rc = http_parse_response(p, n, &ps, MAX_HEAD, MAX_FIELDS, fields, &res, &why);
                free(p);
                if (rc == HTTP_PARSE_INCOMPLETE)
                    break;
                if (rc < 0) {
                    o->err = 1;
                    return;
                }
                if ((size_t)rc > n || res.status < 100 || res.status > 599)
                    abort();
                pos += (size_t)rc;
                http_parse_state_init(&ps);
                if (res.status < 200) {
                    o->ninfo++;
                    continue;
                }
                o->status = res.status;
                o->content_length = res.content_length;
                http_body_init(&b, m, &res);
                in_body = 1;
                continue;
            }
            size_t used;
            slice_t data;
            int rc = http_body_decode(&b, p, n, &used, &data, &why);
            if (used > n)
                abort();
            if (rc == HTTP_BODY_DATA) {
                if (data.p < p || data.p + data.len > p + n)
                    abort();
                o->body_hash = fnv(o->body_hash, data.p, data.len);
                o->body_len += data.len;
            }
            free(p);
            pos += used;
            if (rc == HTTP_BODY_DATA)
                continue;
            if (rc == HTTP_BODY_MORE)
                break;
            if (rc == HTTP_BODY_DONE) {
                o->complete = 1;
                o->end = pos;
                return;
            }
            o->err = 1;
            return;
        }
        if (have == len)
            break;
    }
    if (eof) {
        if (!in_body || http_body_eof(&b, &why) != HTTP_BODY_DONE)
            o->err = 1;
        else {
            o->complete = 1;
            o->end = pos;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const enum http_method ms[] = { HTTP_M_GET, HTTP_M_HEAD, HTTP_M_CONNECT, HTTP_M_GET };
    enum http_method m = ms[data[0] & 3];
    int eof = (data[0] >> 2) & 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    struct outcome a, b;
    run(in, len, m, eof, 0, &a);
    run(in, len, m, eof, 0x1234567ull + len, &b);
    if (a.err != b.err || a.status != b.status || a.ninfo != b.ninfo ||
        a.complete != b.complete || a.body_hash != b.body_hash || a.body_len != b.body_len ||
        a.end != b.end) {
        fprintf(stderr, "fuzz_response: whole and pieces differ\n");
        abort();
    }
    if (a.complete && a.content_length >= 0 && m == HTTP_M_GET && a.status >= 200 &&
        a.status != 204 && a.status != 304 && a.body_len != (size_t)a.content_length)
        abort();
    return 0;
}
