/* fuzz_request.c - libFuzzer target for the HTTP/1.1 request head parser.
 *
 * The whole input is the bytes a client sent. It is parsed twice at once,
 * with the default limits and with small limits derived from the input
 * (to reach the 414 and 431 paths with short inputs), and for each:
 *
 *   - the split property of parse.h: feeding a prefix, then the whole
 *     buffer, with the same state gives the same result as the
 *     whole-at-once parse (every split for inputs under 512 bytes, a few
 *     otherwise, plus a chain of several growing prefixes). A prefix that
 *     already gives a final answer must give the whole-at-once answer.
 *   - on success, the request's slices lie inside the head, and the
 *     path, Range and entity-tag helpers are run on what was parsed.
 *
 * Every buffer handed to the code under test is a heap copy of exactly the
 * given length, so AddressSanitizer sees any read past it. Any mismatch
 * calls abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/cond.h"
#include "http/limits.h"
#include "http/parse.h"
#include "http/path.h"

#define SPLIT_ALL_BELOW 512u

static void fail(const char *what, size_t split)
{
    fprintf(stderr, "fuzz_request: %s (split at %zu)\n", what, split);
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

static char *dup_exact(const uint8_t *p, size_t n)
{
    char *b = malloc(n ? n : 1);
    if (b == NULL)
        abort();
    if (n)
        memcpy(b, p, n);
    return b;
}

/* A slice of a request, as something comparable across two buffers: an
 * offset into the buffer when it points there, else its own bytes (the
 * parser uses string literals for "/" and "*"). */
static int slice_same(slice_t a, const char *abase, size_t alen,
                      slice_t b, const char *bbase, size_t blen)
{
    if (a.len != b.len)
        return 0;
    int ain = a.p >= abase && a.p <= abase + alen;
    int bin = b.p >= bbase && b.p <= bbase + blen;
    if (a.len == 0)
        return 1;
    if (ain != bin)
        return 0;
    if (ain)
        return a.p - abase == b.p - bbase;
    return memcmp(a.p, b.p, a.len) == 0;
}

struct result {
    int rc;
    const char *why;
    http_request_t req;
    const char *base;
    size_t len;
};

static void compare(const struct result *x, const struct result *y, size_t split)
{
    if (x->rc != y->rc) {
        fprintf(stderr, "rc %d (%s) vs %d (%s)\n", x->rc, x->why, y->rc, y->why);
        fail("return value differs", split);
    }
    if (x->rc < 0 && strcmp(x->why, y->why) != 0) {
        fprintf(stderr, "why \"%s\" vs \"%s\"\n", x->why, y->why);
        fail("error reason differs", split);
    }
    if (x->rc <= 0)
        return;
    const http_request_t *a = &x->req, *b = &y->req;
#define SAME_SLICE(f) \
    if (!slice_same(a->f, x->base, x->len, b->f, y->base, y->len)) \
        fail("slice " #f " differs", split)
#define SAME(f) \
    if (a->f != b->f) \
        fail(#f " differs", split)
    SAME(head_len);
    SAME(nfields);
    SAME(method_id);
    SAME(form);
    SAME(has_query);
    SAME(version);
    SAME(has_host);
    SAME(content_length);
    SAME(chunked);
    SAME(keep_alive);
    SAME(expect_continue);
    SAME_SLICE(method);
    SAME_SLICE(target);
    SAME_SLICE(path);
    SAME_SLICE(query);
    SAME_SLICE(host);
    for (size_t i = 0; i < a->nfields; i++) {
        SAME_SLICE(fields[i].name);
        SAME_SLICE(fields[i].value);
    }
#undef SAME
#undef SAME_SLICE
}

static int parse(const char *buf, size_t len, http_parse_state_t *st,
                 const struct http_limits *lim, http_field_t *fields, struct result *r)
{
    r->why = NULL;
    r->base = buf;
    r->len = len;
    r->rc = http_parse_request(buf, len, st, lim, fields, &r->req, &r->why);
    if (r->why == NULL)
        fail("why left unset", len);
    if (r->rc > 0 && (size_t)r->rc > len)
        fail("head length beyond the input", len);
    return r->rc;
}

static int in_head(slice_t s, const char *base, size_t head_len)
{
    return s.len == 0 || (s.p >= base && s.p + s.len <= base + head_len);
}

/* ------------------------------------------------ helpers on a request */

static int count_elem(slice_t e, void *arg)
{
    if (e.len == 0)
        abort(); /* http_list_each skips empty elements */
    (*(size_t *)arg)++;
    return 0;
}

static void check_path(slice_t path, uint64_t h)
{
    /* Enough room for any result: decoding never grows a path, and only
     * one '/' is ever added. */
    size_t big = path.len + 2;
    char *out = malloc(big);
    long n = http_path_normalize(path, out, big);
    if (n >= 0) {
        if ((size_t)n >= big)
            fail("normalized path longer than its buffer", 0);
        if (out[n] != '\0' || strlen(out) != (size_t)n)
            fail("normalized path holds a NUL or lacks its terminator", 0);
        if (n == 0 || out[0] != '/')
            fail("normalized path does not start with '/'", 0);
        if (strstr(out, "/../") || strstr(out, "/./") || strstr(out, "//"))
            fail("normalized path keeps a dot or empty segment", 0);
        if ((n >= 2 && strcmp(out + n - 2, "/.") == 0) ||
            (n >= 3 && strcmp(out + n - 3, "/..") == 0))
            fail("normalized path ends in a dot segment", 0);
    }
    /* Again with a small buffer of exactly that size: it must not be
     * overrun, and a success must give the same path. */
    size_t cap = (size_t)(h % (path.len + 3));
    char *small = malloc(cap ? cap : 1);
    long m = http_path_normalize(path, small, cap);
    if (m >= 0) {
        if ((size_t)m >= cap)
            fail("normalized path does not fit the small buffer", 0);
        if (n != m || memcmp(out, small, (size_t)m + 1) != 0)
            fail("normalized path depends on the buffer size", 0);
    }
    free(small);
    free(out);
}

static void check_range(slice_t v, uint64_t h)
{
    const uint64_t sizes[] = { 0, 1, 2, 100, 4096, h % 100000, UINT64_MAX };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t first = 0xdead, last = 0xbeef;
        enum http_range_result rr = http_range_parse(v, sizes[i], &first, &last);
        if (rr == HTTP_RANGE_OK && !(first <= last && last < sizes[i]))
            fail("range outside the content", 0);
        if (rr != HTTP_RANGE_OK && rr != HTTP_RANGE_IGNORE && rr != HTTP_RANGE_UNSATISFIABLE)
            fail("unknown range result", 0);
    }
}

static int etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

static void check_etag(slice_t v)
{
    static const char *const tags[] = { "\"abc\"", "\"\"", "\"x\"", "\"W/\"" };
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        slice_t t = slice_cstr(tags[i]);
        int s = http_etag_match(v, t, 0), w = http_etag_match(v, t, 1);
        if ((s != 0 && s != 1) || (w != 0 && w != 1))
            fail("etag match not 0 or 1", 0);
        if (s && !w)
            fail("strong etag match without a weak one", 0);
    }
    /* A value that is exactly one strong entity-tag matches itself, and
     * the same tag with W/ matches it only weakly. */
    int one_tag = v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"';
    for (size_t i = 1; one_tag && i + 1 < v.len; i++)
        if (!etagc((unsigned char)v.p[i]))
            one_tag = 0;
    if (one_tag) {
        if (http_etag_match(v, v, 0) != 1 || http_etag_match(v, v, 1) != 1)
            fail("an entity-tag does not match itself", 0);
        char *wl = malloc(v.len + 2);
        memcpy(wl, "W/", 2);
        memcpy(wl + 2, v.p, v.len);
        slice_t ws = slice_make(wl, v.len + 2);
        if (http_etag_match(ws, v, 0) != 0)
            fail("a weak entity-tag matches strongly", 0);
        if (http_etag_match(ws, v, 1) != 1)
            fail("a weak entity-tag does not match weakly", 0);
        free(wl);
    }
}

static void check_success(const struct result *r, const struct http_limits *lim, uint64_t h)
{
    const http_request_t *q = &r->req;
    const char *b = r->base;
    size_t hl = (size_t)r->rc;
    if (q->head_len != hl)
        fail("head_len differs from the return value", 0);
    if (q->nfields > lim->max_fields)
        fail("more fields than max_fields", 0);
    if (q->version != 10 && q->version != 11)
        fail("bad version", 0);
    if (q->content_length < -1)
        fail("negative content_length", 0);
    if (q->chunked && q->content_length != -1)
        fail("chunked with a Content-Length", 0);
    if (q->version == 11 && (!q->has_host || http_find_field(q, "host") == NULL))
        fail("HTTP/1.1 request without a Host field", 0);
    if (q->method.len == 0 || q->target.len == 0)
        fail("empty method or target", 0);
    if (!in_head(q->method, b, hl) || !in_head(q->target, b, hl) || !in_head(q->query, b, hl) ||
        !in_head(q->host, b, hl))
        fail("slice outside the head", 0);
    if (q->target.len > lim->max_target)
        fail("target longer than max_target", 0);
    if (hl > lim->max_head)
        fail("head longer than max_head", 0);
    for (size_t i = 0; i < q->nfields; i++) {
        const http_field_t *f = &q->fields[i];
        if (f->name.len == 0 || !in_head(f->name, b, hl) || !in_head(f->value, b, hl))
            fail("field slice outside the head", 0);
        size_t n = 0;
        http_list_each(f->value, count_elem, &n);
        check_range(f->value, h);
        check_etag(f->value);
    }
    if (q->form == HTTP_T_ORIGIN || q->form == HTTP_T_ABSOLUTE) {
        if (q->path.len == 0 || q->path.p[0] != '/')
            fail("origin or absolute path not starting with '/'", 0);
        check_path(q->path, h);
    }
}

/* ------------------------------------------------------------ driver */

static void run(const uint8_t *data, size_t size, const struct http_limits *lim, uint64_t h)
{
    /* Field arrays of exactly max_fields entries, so that a write past
     * them is seen. */
    http_field_t *fields_ref = malloc(lim->max_fields * sizeof *fields_ref);
    http_field_t *fields_alt = malloc(lim->max_fields * sizeof *fields_alt);
    if ((fields_ref == NULL || fields_alt == NULL) && lim->max_fields)
        abort();

    /* The reference: everything at once. */
    char *whole = dup_exact(data, size);
    http_parse_state_t st;
    struct result ref;
    http_parse_state_init(&st);
    parse(whole, size, &st, lim, fields_ref, &ref);
    if (ref.rc > 0)
        check_success(&ref, lim, h);
    else if (ref.rc != HTTP_PARSE_INCOMPLETE && ref.rc != HTTP_PARSE_PREFACE &&
             ref.rc != -400 && ref.rc != -414 && ref.rc != -417 && ref.rc != -431 &&
             ref.rc != -501 && ref.rc != -505)
        fail("unexpected return value", 0);

    /* The split points: every one for short inputs, else a few. */
    size_t nsplits = 0;
    size_t splits[16];
    int all = size < SPLIT_ALL_BELOW;
    if (!all && size > 1) {
        uint64_t s = h ^ (size ? data[0] : 0);
        splits[nsplits++] = 1;
        splits[nsplits++] = size - 1;
        splits[nsplits++] = size / 2;
        if (size && data[0])
            splits[nsplits++] = (size_t)data[0] % size;
        while (nsplits < 12)
            splits[nsplits++] = (size_t)(xorshift(&s) % size);
    }
    size_t count = all ? size : nsplits;
    for (size_t k = 0; k < count; k++) {
        size_t cut = all ? k : splits[k];
        if (cut == 0 || cut >= size)
            continue;
        http_parse_state_init(&st);
        char *pre = dup_exact(data, cut);
        struct result first, second;
        parse(pre, cut, &st, lim, fields_alt, &first);
        if (first.rc != HTTP_PARSE_INCOMPLETE)
            compare(&ref, &first, cut);
        free(pre);
        if (first.rc != HTTP_PARSE_INCOMPLETE)
            continue; /* the caller would stop here */
        parse(whole, size, &st, lim, fields_alt, &second);
        compare(&ref, &second, cut);
    }

    /* A chain of growing prefixes with one state. */
    if (size > 2) {
        uint64_t s = h * 31 + 7;
        http_parse_state_init(&st);
        size_t at = 0;
        for (;;) {
            at += 1 + (size_t)(xorshift(&s) % (size / 3 + 1));
            if (at >= size)
                at = size;
            char *pre = dup_exact(data, at);
            struct result r;
            parse(pre, at, &st, lim, fields_alt, &r);
            if (r.rc != HTTP_PARSE_INCOMPLETE || at == size)
                compare(&ref, &r, at);
            free(pre);
            if (r.rc != HTTP_PARSE_INCOMPLETE || at == size)
                break;
        }
    }
    free(whole);
    free(fields_ref);
    free(fields_alt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h = fnv1a(data, size);

    struct http_limits def;
    http_limits_default(&def);
    run(data, size, &def, h);

    /* Small limits, so that short inputs pass them too. */
    struct http_limits small = def;
    small.max_target = 1 + (size_t)(h % 64);
    small.max_head = 1 + (size_t)((h >> 8) % (size + 8));
    small.max_fields = (size_t)((h >> 24) % 6);
    run(data, size, &small, h);
    return 0;
}
