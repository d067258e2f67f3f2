#include "http/cond.h"
#include "http/date.h"
#include "http/parse.h"

#include <string.h>

/* etagc = %x21 / %x23-7E / obs-text */
static int etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

int http_etag_match(slice_t list, slice_t etag, int weak)
{
    const char *p = list.p, *end = list.p + list.len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (end - p == 1 && *p == '*')
        return 1;
    int matched = 0;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p == end)
            return matched;
        int is_weak = 0;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            is_weak = 1;
            p += 2;
        }
        if (p == end || *p != '"')
            return 0;
        const char *q = p + 1;
        while (q < end && etagc((unsigned char)*q))
            q++;
        if (q == end || *q != '"')
            return 0;
        slice_t tag = slice_make(p, (size_t)(q - p) + 1);
        if ((weak || !is_weak) && slice_eq(tag, etag))
            matched = 1;
        p = q + 1;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p < end && *p != ',')
            return 0;
    }
}

static int parse_u64(const char **pp, const char *end, uint64_t *v)
{
    const char *p = *pp;
    uint64_t x = 0;
    if (p == end || *p < '0' || *p > '9')
        return -1;
    while (p < end && *p >= '0' && *p <= '9') {
        if (x > (UINT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (uint64_t)(*p - '0');
        p++;
    }
    *pp = p;
    *v = x;
    return 0;
}

enum http_range_result http_range_parse(slice_t v, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (v.len < 6 || !http_slice_ieq(slice_make(v.p, 6), "bytes="))
        return HTTP_RANGE_IGNORE;
    const char *p = v.p + 6, *end = v.p + v.len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    uint64_t a, b;
    if (p < end && *p == '-') {
        p++;
        if (parse_u64(&p, end, &b) < 0)
            return HTTP_RANGE_IGNORE;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p != end)
            return HTTP_RANGE_IGNORE; /* several ranges or junk */
        if (b == 0)
            return HTTP_RANGE_UNSATISFIABLE;
        if (size == 0)
            return HTTP_RANGE_IGNORE; /* satisfiable, but empty: send the whole */
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return HTTP_RANGE_OK;
    }
    if (parse_u64(&p, end, &a) < 0 || p == end || *p != '-')
        return HTTP_RANGE_IGNORE;
    p++;
    b = UINT64_MAX;
    if (p < end && *p >= '0' && *p <= '9' && parse_u64(&p, end, &b) < 0)
        return HTTP_RANGE_IGNORE;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p != end || b < a)
        return HTTP_RANGE_IGNORE;
    if (a >= size)
        return HTTP_RANGE_UNSATISFIABLE;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return HTTP_RANGE_OK;
}

void http_cond_from_request(const struct http_request *q, struct http_cond *c)
{
    const http_field_t *f;
    memset(c, 0, sizeof *c);
    if ((f = http_find_field(q, "if-match")) != NULL)
        c->if_match = f->value;
    if ((f = http_find_field(q, "if-none-match")) != NULL)
        c->if_none_match = f->value;
    if ((f = http_find_field(q, "if-modified-since")) != NULL)
        c->has_ims = http_date_parse(f->value, &c->ims) == 0;
    if ((f = http_find_field(q, "if-unmodified-since")) != NULL)
        c->has_ius = http_date_parse(f->value, &c->ius) == 0;
}

int http_cond_eval(const struct http_cond *c, int exists, slice_t etag, time_t mtime,
                   int get_or_head)
{
    /* 1. If-Match: "*" needs a current representation; a list needs a
     *    strong match with it. 2. Else If-Unmodified-Since, only when there
     *    is a modification date to compare. */
    if (c->if_match.p != NULL) {
        if (!exists || !http_etag_match(c->if_match, etag, 0))
            return 412;
    } else if (c->has_ius && exists && mtime > c->ius) {
        return 412;
    }
    /* 3. If-None-Match: weak comparison; "*" matches any current one.
     * 4. Else If-Modified-Since, for GET and HEAD only. */
    if (c->if_none_match.p != NULL) {
        if (exists && http_etag_match(c->if_none_match, etag, 1))
            return get_or_head ? 304 : 412;
    } else if (get_or_head && c->has_ims && exists && mtime <= c->ims) {
        return 304;
    }
    return 0;
}

enum http_range_result http_ranges_parse(slice_t v, uint64_t size, struct http_byte_range *out,
                                         size_t max, size_t *n)
{
    *n = 0;
    if (v.len < 6 || !http_slice_ieq(slice_make(v.p, 6), "bytes="))
        return HTTP_RANGE_IGNORE;
    const char *p = v.p + 6, *end = v.p + v.len;
    size_t specs = 0;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++; /* OWS and empty list elements */
        if (p == end)
            break;
        const char *e = p;
        while (e < end && *e != ',')
            e++;
        const char *q = e;
        while (q > p && (q[-1] == ' ' || q[-1] == '\t'))
            q--;
        /* one range-spec in [p, q): reuse the single-range rules */
        char spec[96] = "bytes=";
        if ((size_t)(q - p) > sizeof spec - 7)
            return HTTP_RANGE_IGNORE;
        memcpy(spec + 6, p, (size_t)(q - p));
        uint64_t a, b;
        enum http_range_result r = http_range_parse(slice_make(spec, 6 + (size_t)(q - p)), size, &a, &b);
        if (r == HTTP_RANGE_IGNORE)
            return HTTP_RANGE_IGNORE;
        if (++specs > max)
            return HTTP_RANGE_IGNORE;
        if (r == HTTP_RANGE_OK) {
            out[*n].first = a;
            out[*n].last = b;
            (*n)++;
        }
        p = e;
    }
    if (specs == 0)
        return HTTP_RANGE_IGNORE;
    return *n ? HTTP_RANGE_OK : HTTP_RANGE_UNSATISFIABLE;
}

size_t http_cond_copy_size(const struct http_cond *c)
{
    return c->if_match.len + 1 + c->if_none_match.len + 1;
}

void http_cond_copy(struct http_cond *dst, const struct http_cond *c, char *buf)
{
    *dst = *c;
    if (c->if_match.p != NULL) {
        memcpy(buf, c->if_match.p, c->if_match.len);
        dst->if_match = slice_make(buf, c->if_match.len);
        buf += c->if_match.len + 1;
    }
    if (c->if_none_match.p != NULL) {
        memcpy(buf, c->if_none_match.p, c->if_none_match.len);
        dst->if_none_match = slice_make(buf, c->if_none_match.len);
    }
}
