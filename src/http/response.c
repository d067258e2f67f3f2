/* response.c - response heads and body framing (RFC 9112 §4, §6). */
#include "http/response.h"

#include <string.h>

#define FAIL(reason) do { *why = (reason); return HTTP_RESPONSE_BAD; } while (0)

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* "HTTP/1.1 200 OK": version, one SP, three digits, SP and a reason of
 * HTAB, SP, VCHAR and obs-text (or nothing at all after the digits). */
static int parse_status_line(const char *p, size_t n, http_response_t *r, const char **why)
{
    if (n == 0 || p[n - 1] != '\r')
        FAIL("status line not ended by CRLF");
    n--;
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || !is_digit(p[7]) || p[8] != ' ')
        FAIL("malformed status line");
    if (p[7] != '0' && p[7] != '1')
        FAIL("unsupported HTTP version");
    r->version = p[7] == '1' ? 11 : 10;
    if (!is_digit(p[9]) || !is_digit(p[10]) || !is_digit(p[11]))
        FAIL("malformed status code");
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (r->status < 100 || r->status > 599)
        FAIL("status code out of range");
    if (n == 12)
        return 0;
    if (p[12] != ' ')
        FAIL("malformed status line");
    for (size_t i = 13; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            FAIL("control character in the reason phrase");
    }
    r->reason = slice_make(p + 13, n - 13);
    return 0;
}

static int parse_length(slice_t v, int64_t *out)
{
    if (v.len == 0 || v.len > 18)
        return -1;
    int64_t n = 0;
    for (size_t k = 0; k < v.len; k++) {
        if (!is_digit(v.p[k]))
            return -1;
        n = n * 10 + (v.p[k] - '0');
    }
    *out = n;
    return 0;
}

static int analyze(http_response_t *r, const char **why)
{
    int cls = 0, has_te = 0, close = 0, keep_alive = 0;
    struct http_te_info te = { 0 };
    for (size_t i = 0; i < r->nfields; i++) {
        const http_field_t *f = &r->fields[i];
        if (http_slice_ieq(f->name, "content-length")) {
            if (++cls > 1)
                FAIL("several Content-Length fields");
            if (parse_length(f->value, &r->content_length) != 0)
                FAIL("invalid Content-Length");
        } else if (http_slice_ieq(f->name, "transfer-encoding")) {
            has_te = 1;
            http_scan_te(f->value, &te);
            if (te.twice || (te.chunked_seen && te.count > 1 && te.chunked_last &&
                             !te.other))
                FAIL("chunked applied more than once");
        } else if (http_slice_ieq(f->name, "connection")) {
            http_scan_connection(f->value, &close, &keep_alive);
        }
    }
    if (has_te) {
        if (cls)
            FAIL("both Content-Length and Transfer-Encoding");
        if (r->version == 10)
            FAIL("Transfer-Encoding in an HTTP/1.0 response");
        if (!te.chunked_last)
            FAIL("Transfer-Encoding does not end in chunked");
        if (te.count != 1)
            FAIL("unsupported transfer coding");
        r->chunked = 1;
    }
    r->keep_alive = close ? 0 : (r->version == 11 ? 1 : keep_alive);
    return 0;
}

int http_parse_response(const char *buf, size_t len, http_parse_state_t *st, size_t max_head,
                        size_t max_fields, http_field_t *fields, http_response_t *res,
                        const char **why)
{
    memset(res, 0, sizeof *res);
    res->fields = fields;
    res->content_length = -1;
    res->version = 11;
    *why = "";

    size_t end = http_find_head_end(buf, len, st->scanned);
    if ((end ? end : len) > max_head)
        FAIL("response head too large");
    if (end == 0) {
        st->scanned = len;
        return HTTP_PARSE_INCOMPLETE;
    }
    const char *lf = memchr(buf, '\n', end);
    if (parse_status_line(buf, (size_t)(lf - buf), res, why) != 0)
        return HTTP_RESPONSE_BAD;
    if (http_parse_fields(lf + 1, buf + end, fields, max_fields, &res->nfields, why) != 0)
        return HTTP_RESPONSE_BAD;
    if (analyze(res, why) != 0)
        return HTTP_RESPONSE_BAD;
    res->head_len = end;
    return (int)end;
}

const http_field_t *http_response_field(const http_response_t *res, const char *name)
{
    for (size_t i = 0; i < res->nfields; i++)
        if (http_slice_ieq(res->fields[i].name, name))
            return &res->fields[i];
    return NULL;
}

/* ------------------------------------------------------------- body */

void http_body_init(http_body_t *b, enum http_method method, const http_response_t *res)
{
    memset(b, 0, sizeof *b);
    http_chunked_init(&b->chunked);
    int s = res->status;
    if (method == HTTP_M_HEAD || s < 200 || s == 204 || s == 304 ||
        (method == HTTP_M_CONNECT && s < 300)) {
        b->kind = HTTP_BODY_NONE;
    } else if (res->chunked) {
        b->kind = HTTP_BODY_CHUNKED;
    } else if (res->content_length >= 0) {
        b->kind = HTTP_BODY_LENGTH;
        b->remaining = (uint64_t)res->content_length;
    } else {
        b->kind = HTTP_BODY_CLOSE;
    }
}

int http_body_decode(http_body_t *b, const char *in, size_t len, size_t *consumed,
                     slice_t *data, const char **why)
{
    *consumed = 0;
    *why = "";
    if (b->done)
        return HTTP_BODY_DONE;
    switch (b->kind) {
    case HTTP_BODY_NONE:
        b->done = 1;
        return HTTP_BODY_DONE;
    case HTTP_BODY_LENGTH:
        if (b->remaining == 0) {
            b->done = 1;
            return HTTP_BODY_DONE;
        }
        if (len == 0)
            return HTTP_BODY_MORE;
        {
            size_t n = len;
            if ((uint64_t)n > b->remaining)
                n = (size_t)b->remaining;
            *data = slice_make(in, n);
            *consumed = n;
            b->remaining -= n;
            b->received += n;
            return HTTP_BODY_DATA;
        }
    case HTTP_BODY_CLOSE:
        if (len == 0)
            return HTTP_BODY_MORE;
        *data = slice_make(in, len);
        *consumed = len;
        b->received += len;
        return HTTP_BODY_DATA;
    case HTTP_BODY_CHUNKED: {
        int rc = http_chunked_decode(&b->chunked, in, len, consumed, data, why);
        if (rc == HTTP_CHUNK_DATA) {
            b->received += data->len;
            return HTTP_BODY_DATA;
        }
        if (rc == HTTP_CHUNK_DONE) {
            b->done = 1;
            return HTTP_BODY_DONE;
        }
        if (rc == HTTP_CHUNK_MORE)
            return HTTP_BODY_MORE;
        return HTTP_RESPONSE_BAD;
    }
    }
    FAIL("bad body state");
}

int http_body_eof(http_body_t *b, const char **why)
{
    *why = "";
    if (b->done || b->kind == HTTP_BODY_NONE || b->kind == HTTP_BODY_CLOSE ||
        (b->kind == HTTP_BODY_LENGTH && b->remaining == 0)) {
        b->done = 1;
        return HTTP_BODY_DONE;
    }
    if (b->kind == HTTP_BODY_LENGTH)
        FAIL("connection closed before the end of the body (Content-Length not reached)");
    FAIL("connection closed before the last chunk");
}
