#include "http/parse.h"

#include <string.h>

/* tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 * "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
#define T1(c) [c] = 1
const unsigned char http_tchar[256] = {
    T1('!'), T1('#'), T1('$'), T1('%'), T1('&'), T1('\''), T1('*'), T1('+'), T1('-'), T1('.'),
    T1('^'), T1('_'), T1('`'), T1('|'), T1('~'),
    T1('0'), T1('1'), T1('2'), T1('3'), T1('4'), T1('5'), T1('6'), T1('7'), T1('8'), T1('9'),
    T1('A'), T1('B'), T1('C'), T1('D'), T1('E'), T1('F'), T1('G'), T1('H'), T1('I'), T1('J'),
    T1('K'), T1('L'), T1('M'), T1('N'), T1('O'), T1('P'), T1('Q'), T1('R'), T1('S'), T1('T'),
    T1('U'), T1('V'), T1('W'), T1('X'), T1('Y'), T1('Z'),
    T1('a'), T1('b'), T1('c'), T1('d'), T1('e'), T1('f'), T1('g'), T1('h'), T1('i'), T1('j'),
    T1('k'), T1('l'), T1('m'), T1('n'), T1('o'), T1('p'), T1('q'), T1('r'), T1('s'), T1('t'),
    T1('u'), T1('v'), T1('w'), T1('x'), T1('y'), T1('z'),
};

/* Characters of an origin-form target (RFC 3986 pchar, "/" and "?"):
 * unreserved, sub-delims, ":" "@" "/" "?", and "%" (checked for two hex
 * digits separately). */
static const unsigned char target_char[256] = {
    T1('-'), T1('.'), T1('_'), T1('~'),
    T1('!'), T1('$'), T1('&'), T1('\''), T1('('), T1(')'), T1('*'), T1('+'), T1(','), T1(';'), T1('='),
    T1(':'), T1('@'), T1('/'), T1('?'), T1('%'),
    T1('0'), T1('1'), T1('2'), T1('3'), T1('4'), T1('5'), T1('6'), T1('7'), T1('8'), T1('9'),
    T1('A'), T1('B'), T1('C'), T1('D'), T1('E'), T1('F'), T1('G'), T1('H'), T1('I'), T1('J'),
    T1('K'), T1('L'), T1('M'), T1('N'), T1('O'), T1('P'), T1('Q'), T1('R'), T1('S'), T1('T'),
    T1('U'), T1('V'), T1('W'), T1('X'), T1('Y'), T1('Z'),
    T1('a'), T1('b'), T1('c'), T1('d'), T1('e'), T1('f'), T1('g'), T1('h'), T1('i'), T1('j'),
    T1('k'), T1('l'), T1('m'), T1('n'), T1('o'), T1('p'), T1('q'), T1('r'), T1('s'), T1('t'),
    T1('u'), T1('v'), T1('w'), T1('x'), T1('y'), T1('z'),
};

/* Characters of a host (reg-name, IP literal, port): unreserved,
 * sub-delims, "%", ":", "[" and "]". */
static const unsigned char host_char[256] = {
    T1('-'), T1('.'), T1('_'), T1('~'),
    T1('!'), T1('$'), T1('&'), T1('\''), T1('('), T1(')'), T1('*'), T1('+'), T1(','), T1(';'), T1('='),
    T1(':'), T1('%'), T1('['), T1(']'),
    T1('0'), T1('1'), T1('2'), T1('3'), T1('4'), T1('5'), T1('6'), T1('7'), T1('8'), T1('9'),
    T1('A'), T1('B'), T1('C'), T1('D'), T1('E'), T1('F'), T1('G'), T1('H'), T1('I'), T1('J'),
    T1('K'), T1('L'), T1('M'), T1('N'), T1('O'), T1('P'), T1('Q'), T1('R'), T1('S'), T1('T'),
    T1('U'), T1('V'), T1('W'), T1('X'), T1('Y'), T1('Z'),
    T1('a'), T1('b'), T1('c'), T1('d'), T1('e'), T1('f'), T1('g'), T1('h'), T1('i'), T1('j'),
    T1('k'), T1('l'), T1('m'), T1('n'), T1('o'), T1('p'), T1('q'), T1('r'), T1('s'), T1('t'),
    T1('u'), T1('v'), T1('w'), T1('x'), T1('y'), T1('z'),
};
#undef T1

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

enum http_method http_method_lookup(slice_t m)
{
    static const struct { const char *name; enum http_method id; } methods[] = {
        { "GET", HTTP_M_GET }, { "HEAD", HTTP_M_HEAD }, { "POST", HTTP_M_POST },
        { "PUT", HTTP_M_PUT }, { "DELETE", HTTP_M_DELETE }, { "CONNECT", HTTP_M_CONNECT },
        { "OPTIONS", HTTP_M_OPTIONS }, { "TRACE", HTTP_M_TRACE }, { "PATCH", HTTP_M_PATCH },
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (m.len == strlen(methods[i].name) && memcmp(m.p, methods[i].name, m.len) == 0)
            return methods[i].id;
    return HTTP_M_UNKNOWN;
}

const http_field_t *http_find_field(const http_request_t *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nfields; i++)
        if (http_slice_ieq_n(req->fields[i].name, name, n))
            return &req->fields[i];
    return NULL;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int http_list_each(slice_t v, int (*fn)(slice_t, void *), void *arg)
{
    size_t i = 0;
    while (i < v.len) {
        size_t j = i;
        while (j < v.len && v.p[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && is_ows(v.p[a]))
            a++;
        while (b > a && is_ows(v.p[b - 1]))
            b--;
        if (b > a) {
            int rc = fn(slice_make(v.p + a, b - a), arg);
            if (rc)
                return rc;
        }
        i = j + 1;
    }
    return 0;
}

/* ------------------------------------------------------------ limits */

/* Index just past the end of the head (the LF of the empty line) if it lies
 * in buf[from, len), else 0. An empty line is LF LF or LF CR LF, so heads
 * with bare LFs are found too (and then rejected by the full parse). */
static size_t find_head_end(const char *buf, size_t len, size_t from, size_t start)
{
    size_t i = from < start + 1 ? start + 1 : from;
    while (i < len) {
        const char *lf = memchr(buf + i, '\n', len - i);
        if (lf == NULL)
            return 0;
        i = (size_t)(lf - buf);
        if (i >= start + 1 && buf[i - 1] == '\n')
            return i + 1;
        if (i >= start + 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')
            return i + 1;
        i++;
    }
    return 0;
}

/* The earliest limit passed in buf[0, end): the position where the target
 * grows past max_target, or where the head grows past max_head. Comparing
 * positions, not checking in a fixed order, is what keeps the answer the
 * same for every split of the input. */
static int check_limits(const char *buf, size_t end, size_t start,
                        const struct http_limits *lim)
{
    size_t p414 = SIZE_MAX, p431 = SIZE_MAX;
    const char *lf = memchr(buf + start, '\n', end - start);
    size_t line_end = lf ? (size_t)(lf - buf) : end;
    const char *sp = memchr(buf + start, ' ', line_end - start);
    if (sp != NULL) {
        size_t t0 = (size_t)(sp - buf) + 1, t = t0;
        while (t < line_end && buf[t] != ' ' && buf[t] != '\r')
            t++;
        if (t - t0 > lim->max_target)
            p414 = t0 + lim->max_target;
    }
    if (end > lim->max_head)
        p431 = lim->max_head;
    if (p414 == SIZE_MAX && p431 == SIZE_MAX)
        return 0;
    return p414 <= p431 ? -414 : -431;
}

/* ------------------------------------------------------- full parse */

#define FAIL(status, reason) do { *why = (reason); return -(status); } while (0)

static int parse_target(http_request_t *r, const char **why)
{
    const char *p = r->target.p;
    size_t n = r->target.len;

    if (n == 1 && p[0] == '*') {
        if (r->method_id != HTTP_M_OPTIONS)
            FAIL(400, "asterisk-form target outside OPTIONS");
        r->form = HTTP_T_ASTERISK;
        r->path = SLICE_LIT("/");
        return 0;
    }
    if (r->method_id == HTTP_M_CONNECT) {
        /* authority-form: host:port, nothing else. */
        if (p[0] == '/')
            FAIL(400, "CONNECT needs an authority-form target");
        for (size_t i = 0; i < n; i++)
            if (!host_char[(unsigned char)p[i]])
                FAIL(400, "invalid character in the request-target");
        const char *colon = memrchr(p, ':', n);
        if (colon == NULL || colon == p || (size_t)(colon - p) == n - 1)
            FAIL(400, "CONNECT target must be host:port");
        for (const char *d = colon + 1; d < p + n; d++)
            if (*d < '0' || *d > '9')
                FAIL(400, "CONNECT target must be host:port");
        r->form = HTTP_T_AUTHORITY;
        r->path = r->target;
        return 0;
    }
    size_t path_at = 0;
    if (p[0] != '/') {
        size_t slen;
        if (n > 7 && http_slice_ieq(slice_make(p, 7), "http://"))
            slen = 7;
        else if (n > 8 && http_slice_ieq(slice_make(p, 8), "https://"))
            slen = 8;
        else
            FAIL(400, "invalid request-target");
        size_t a = slen;
        while (a < n && p[a] != '/' && p[a] != '?')
            a++;
        if (a == slen)
            FAIL(400, "absolute-form target without a host");
        for (size_t i = slen; i < a; i++)
            if (!host_char[(unsigned char)p[i]])
                FAIL(400, "invalid character in the request-target");
        r->form = HTTP_T_ABSOLUTE;
        r->host = slice_make(p + slen, a - slen);
        r->has_host = 1;
        path_at = a;
    }
    for (size_t i = path_at; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!target_char[c])
            FAIL(400, "invalid character in the request-target");
        if (c == '%' && (i + 2 >= n || !is_hex((unsigned char)p[i + 1]) || !is_hex((unsigned char)p[i + 2])))
            FAIL(400, "bad percent-encoding in the request-target");
    }
    const char *q = memchr(p + path_at, '?', n - path_at);
    size_t pend = q ? (size_t)(q - p) : n;
    if (pend == path_at)
        r->path = SLICE_LIT("/"); /* http://host or http://host?q */
    else
        r->path = slice_make(p + path_at, pend - path_at);
    if (q != NULL) {
        r->has_query = 1;
        r->query = slice_make(q + 1, n - (pend + 1));
    }
    return 0;
}

static int parse_request_line(const char *p, size_t n, http_request_t *r, const char **why)
{
    /* p[0, n) is the line without its LF; a CR must end it. */
    if (n == 0 || p[n - 1] != '\r')
        FAIL(400, "request line not ended by CRLF");
    n--;
    if (n == 14 && memcmp(p, "PRI * HTTP/2.0", 14) == 0)
        return HTTP_PARSE_PREFACE;

    size_t i = 0;
    while (i < n && http_tchar[(unsigned char)p[i]])
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        FAIL(400, "invalid method");
    r->method = slice_make(p, i);
    r->method_id = http_method_lookup(r->method);
    size_t t0 = ++i;
    while (i < n && p[i] != ' ') {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f)
            FAIL(400, "invalid character in the request-target");
        i++;
    }
    if (i == t0)
        FAIL(400, "empty request-target");
    if (i >= n)
        FAIL(400, "missing HTTP version");
    r->target = slice_make(p + t0, i - t0);
    i++;
    const char *v = p + i;
    size_t vn = n - i;
    if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        FAIL(400, "invalid HTTP version");
    if (v[5] == '1' && (v[7] == '1' || v[7] == '0')) {
        r->version = v[7] == '1' ? 11 : 10;
    } else {
        r->version = 11; /* answer in the newest version we speak */
        FAIL(505, "HTTP version not supported");
    }
    return 0;
}

struct te_scan {
    int count;
    int chunked_last;
    int chunked_seen;
    int other;
};

static int te_elem(slice_t e, void *arg)
{
    struct te_scan *s = arg;
    /* A coding may carry parameters ("gzip;q=..."): the name ends there. */
    size_t n = 0;
    while (n < e.len && http_tchar[(unsigned char)e.p[n]])
        n++;
    slice_t name = slice_make(e.p, n);
    s->count++;
    if (http_slice_ieq(name, "chunked")) {
        if (s->chunked_seen)
            return -1;
        s->chunked_seen = 1;
        s->chunked_last = 1;
    } else {
        s->chunked_last = 0;
        s->other = 1;
    }
    return 0;
}

struct conn_scan {
    int close, keep_alive;
};

static int conn_elem(slice_t e, void *arg)
{
    struct conn_scan *s = arg;
    if (http_slice_ieq(e, "close"))
        s->close = 1;
    else if (http_slice_ieq(e, "keep-alive"))
        s->keep_alive = 1;
    return 0;
}

static int valid_host(slice_t h)
{
    for (size_t i = 0; i < h.len; i++)
        if (!host_char[(unsigned char)h.p[i]])
            return 0;
    return 1;
}

static int parse_fields(const char *p, const char *end, http_request_t *r,
                        const struct http_limits *lim, const char **why)
{
    /* p: first byte after the request line; end: just past the final LF. */
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        /* find_head_end guarantees an LF before end. */
        size_t n = (size_t)(lf - p);
        if (n == 0 || p[n - 1] != '\r')
            FAIL(400, "header line not ended by CRLF");
        n--;
        if (n == 0)
            return 0; /* the empty line */
        if (is_ows(p[0]))
            FAIL(400, "obsolete line folding");
        size_t i = 0;
        while (i < n && http_tchar[(unsigned char)p[i]])
            i++;
        if (i == n)
            FAIL(400, "header line without a colon");
        if (p[i] != ':') {
            if (is_ows(p[i]))
                FAIL(400, "whitespace between field name and colon");
            FAIL(400, "invalid character in a field name");
        }
        if (i == 0)
            FAIL(400, "empty field name");
        slice_t name = slice_make(p, i);
        i++;
        while (i < n && is_ows(p[i]))
            i++;
        size_t v0 = i;
        for (; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                FAIL(400, c == '\r' ? "bare CR in a field value" : "control character in a field value");
        }
        size_t v1 = n;
        while (v1 > v0 && is_ows(p[v1 - 1]))
            v1--;
        if (r->nfields >= lim->max_fields)
            FAIL(431, "too many header fields");
        r->fields[r->nfields].name = name;
        r->fields[r->nfields].value = slice_make(p + v0, v1 - v0);
        r->nfields++;
        p = lf + 1;
    }
    FAIL(400, "header section not terminated");
}

void http_scan_te(slice_t value, struct http_te_info *t)
{
    struct te_scan s = { 0 };
    t->twice = http_list_each(value, te_elem, &s) != 0;
    t->count += s.count;
    t->chunked_last = s.count > 0 ? s.chunked_last : t->chunked_last;
    t->chunked_seen |= s.chunked_seen;
    t->other |= s.other;
}

void http_scan_connection(slice_t value, int *close, int *keep_alive)
{
    struct conn_scan s = { 0 };
    http_list_each(value, conn_elem, &s);
    *close |= s.close;
    *keep_alive |= s.keep_alive;
}

size_t http_find_head_end(const char *buf, size_t len, size_t from)
{
    return find_head_end(buf, len, from, 0);
}

/* The field lines of any head (requests here, responses in response.c). */
int http_parse_fields(const char *p, const char *end, http_field_t *fields, size_t max_fields,
                      size_t *nfields, const char **why)
{
    http_request_t r = { .fields = fields };
    struct http_limits lim = { .max_fields = max_fields };
    int rc = parse_fields(p, end, &r, &lim, why);
    *nfields = r.nfields;
    return rc;
}

static int analyze(http_request_t *r, const char **why)
{
    int hosts = 0, cls = 0;
    int has_te = 0;
    struct te_scan te = { 0 };
    struct conn_scan cs = { 0 };
    slice_t host_field = { 0 };

    for (size_t i = 0; i < r->nfields; i++) {
        const http_field_t *f = &r->fields[i];
        switch (f->name.len) {
        case 4:
            if (http_slice_ieq(f->name, "host")) {
                hosts++;
                host_field = f->value;
            }
            break;
        case 6:
            if (http_slice_ieq(f->name, "expect")) {
                if (!http_slice_ieq(f->value, "100-continue"))
                    FAIL(417, "unsupported expectation");
                r->expect_continue = r->version == 11;
            }
            break;
        case 10:
            if (http_slice_ieq(f->name, "connection"))
                http_list_each(f->value, conn_elem, &cs);
            break;
        case 14:
            if (http_slice_ieq(f->name, "content-length")) {
                if (++cls > 1)
                    FAIL(400, "several Content-Length fields");
                slice_t v = f->value;
                if (v.len == 0 || v.len > 18)
                    FAIL(400, "invalid Content-Length");
                int64_t n = 0;
                for (size_t k = 0; k < v.len; k++) {
                    if (v.p[k] < '0' || v.p[k] > '9')
                        FAIL(400, "invalid Content-Length");
                    n = n * 10 + (v.p[k] - '0');
                }
                r->content_length = n;
            }
            break;
        case 17:
            if (http_slice_ieq(f->name, "transfer-encoding")) {
                has_te = 1;
                if (http_list_each(f->value, te_elem, &te) != 0)
                    FAIL(400, "chunked applied more than once");
            }
            break;
        default:
            break;
        }
    }
    if (hosts > 1)
        FAIL(400, "several Host fields");
    if (hosts == 0 && r->version == 11)
        FAIL(400, "missing Host field");
    if (hosts == 1) {
        if (!valid_host(host_field))
            FAIL(400, "invalid Host field");
        if (!r->has_host) {
            r->host = host_field;
            r->has_host = 1;
        }
    }
    if (has_te) {
        if (cls)
            FAIL(400, "both Content-Length and Transfer-Encoding");
        if (r->version == 10)
            FAIL(400, "Transfer-Encoding in an HTTP/1.0 request");
        if (te.count == 0 || !te.chunked_last)
            FAIL(400, "Transfer-Encoding does not end in chunked");
        if (te.other)
            FAIL(501, "unsupported transfer coding");
        r->chunked = 1;
    }
    r->keep_alive = cs.close ? 0 : (r->version == 11 ? 1 : cs.keep_alive);
    return 0;
}

int http_parse_request(const char *buf, size_t len, http_parse_state_t *st,
                       const struct http_limits *lim, http_field_t *fields,
                       http_request_t *req, const char **why)
{
    memset(req, 0, sizeof *req);
    req->fields = fields;
    req->content_length = -1;
    req->version = 10; /* until the request line says otherwise */
    *why = "";

    /* Empty lines before the request line are ignored (RFC 9112 §2.2). */
    size_t start = 0;
    while (start + 1 < len && buf[start] == '\r' && buf[start + 1] == '\n')
        start += 2;
    if (start >= len || (start + 1 == len && buf[start] == '\r')) {
        if (len > lim->max_head)
            FAIL(431, "header section too large");
        return HTTP_PARSE_INCOMPLETE;
    }

    size_t end = find_head_end(buf, len, st->scanned, start);
    int rc = check_limits(buf, end ? end : len, start, lim);
    if (rc < 0) {
        *why = rc == -414 ? "request-target too long" : "header section too large";
        return rc;
    }
    if (end == 0) {
        /* No LF before len ends the head; the look-behind of a later LF
         * reads bytes before len, which stay in buf. */
        st->scanned = len;
        return HTTP_PARSE_INCOMPLETE;
    }

    const char *line = buf + start;
    const char *lf = memchr(line, '\n', end - start);
    rc = parse_request_line(line, (size_t)(lf - line), req, why);
    if (rc != 0)
        return rc;
    rc = parse_target(req, why);
    if (rc != 0)
        return rc;
    rc = parse_fields(lf + 1, buf + end, req, lim, why);
    if (rc != 0)
        return rc;
    rc = analyze(req, why);
    if (rc != 0)
        return rc;
    req->head_len = end;
    return (int)end;
}
