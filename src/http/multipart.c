#include "http/multipart.h"
#include "http/parse.h"

#include <string.h>

enum {
    S_PREAMBLE,    /* before the first delimiter */
    S_DELIM_END,   /* right after a delimiter: "--", padding or CRLF */
    S_CLOSE_DASH,  /* "-" read, the second must follow */
    S_PAD,         /* transport padding */
    S_PAD_LF,
    S_HEAD,        /* a header line */
    S_HEAD_LF,
    S_BODY,
    S_DONE,
    S_FAILED,
};

/* RFC 2046 §5.1.1 bchars, without the space (allowed but not last). */
static int bchar_nospace(unsigned char c)
{
    if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
        return 1;
    return c != '\0' && strchr("'()+_,-./:=?", c) != NULL;
}

static int ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* Reads a token at s[*i]: at least one tchar. Returns its slice, len 0 if none. */
static slice_t token(const char *s, size_t n, size_t *i)
{
    size_t start = *i;
    while (*i < n && http_tchar[(unsigned char)s[*i]])
        (*i)++;
    return slice_make(s + start, *i - start);
}

/* Reads a quoted-string at s[*i] (on the opening quote). The content (with
 * the backslashes of quoted-pairs still in) is *raw; *escaped says whether
 * there was any. CTLs other than HTAB (and DEL) are refused: a Content-Type
 * value has no reason for them. Returns 0, or -1 if unterminated or bad. */
static int quoted(const char *s, size_t n, size_t *i, slice_t *raw, int *escaped)
{
    size_t start = ++*i;
    *escaped = 0;
    while (*i < n) {
        unsigned char c = (unsigned char)s[*i];
        if (c == '"') {
            *raw = slice_make(s + start, *i - start);
            (*i)++;
            return 0;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return -1;
        if (c == '\\') {
            if (*i + 1 >= n)
                return -1;
            *escaped = 1;
            c = (unsigned char)s[*i + 1];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return -1;
            (*i)++;
        }
        (*i)++;
    }
    return -1;
}

int mp_boundary(slice_t ct, slice_t *out)
{
    const char *s = ct.p;
    size_t n = ct.len, i = 0;
    int found = 0;
    slice_t b = { NULL, 0 };

    while (i < n && ows((unsigned char)s[i]))
        i++;
    if (!http_slice_ieq(token(s, n, &i), "multipart"))
        return -1;
    if (i >= n || s[i] != '/')
        return -1;
    i++;
    if (token(s, n, &i).len == 0)
        return -1;
    /* parameters = *( OWS ";" OWS [ parameter ] ), parameter = name "=" value
     * with no whitespace around the '=' (RFC 9110 §5.6.6). */
    for (;;) {
        while (i < n && ows((unsigned char)s[i]))
            i++;
        if (i == n)
            break;
        if (s[i] != ';')
            return -1;
        i++;
        while (i < n && ows((unsigned char)s[i]))
            i++;
        if (i == n || s[i] == ';')
            continue;
        slice_t name = token(s, n, &i);
        if (name.len == 0 || i >= n || s[i] != '=')
            return -1;
        i++;
        slice_t value;
        int escaped = 0;
        if (i < n && s[i] == '"') {
            if (quoted(s, n, &i, &value, &escaped) != 0)
                return -1;
        } else {
            value = token(s, n, &i);
            if (value.len == 0)
                return -1;
        }
        if (http_slice_ieq(name, "boundary")) {
            /* Two boundaries: which one a peer takes is anyone's guess.
             * A quoted-pair cannot be handed out as a slice of ct, and no
             * bchar needs one. */
            if (found || escaped)
                return -1;
            found = 1;
            b = value;
        }
    }
    if (!found || b.len == 0 || b.len > MP_BOUNDARY_MAX)
        return -1;
    for (size_t k = 0; k < b.len; k++) {
        unsigned char c = (unsigned char)b.p[k];
        if (!bchar_nospace(c) && (c != ' ' || k + 1 == b.len))
            return -1;
    }
    *out = b;
    return 0;
}

int mp_init(mp_parser_t *p, slice_t boundary)
{
    p->match = 0;
    p->count = 0;
    p->line_len = 0;
    p->seen_cd = p->seen_ct = 0;
    memset(&p->part, 0, sizeof p->part);
    p->dlen = 0;
    if (boundary.len == 0 || boundary.len > MP_BOUNDARY_MAX
        || memchr(boundary.p, '\r', boundary.len) != NULL
        || memchr(boundary.p, '\n', boundary.len) != NULL) {
        p->state = S_FAILED;
        p->why = "invalid boundary";
        return -1;
    }
    memcpy(p->delim, "\r\n--", 4);
    memcpy(p->delim + 4, boundary.p, boundary.len);
    p->dlen = 4 + boundary.len;
    p->state = S_PREAMBLE;
    p->why = "";
    /* The first delimiter may open the body without its CRLF: start as if
     * the CRLF had been read. */
    p->match = 2;
    return 0;
}

int mp_finish(const mp_parser_t *p)
{
    return p->state == S_DONE ? 0 : -400;
}

/* The value of a hex digit, or -1. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies a name= or filename= value (quoted-string content or token) into
 * dst (cap bytes with the NUL). Browsers (the HTML multipart/form-data
 * encoding algorithm) escape exactly three bytes of these values: '"' as
 * %22, CR as %0D, LF as %0A; everything else, backslashes included, is
 * sent raw. So those three escapes are undone and nothing else is: another
 * %XX, or a backslash, is the name's own byte. Returns 0, or -1 if it does
 * not fit. */
static int put_value(char *dst, size_t cap, slice_t raw)
{
    size_t o = 0;
    for (size_t k = 0; k < raw.len; k++) {
        char c = raw.p[k];
        if (c == '%' && k + 2 < raw.len && hexval(raw.p[k + 1]) >= 0 && hexval(raw.p[k + 2]) >= 0) {
            int v = hexval(raw.p[k + 1]) * 16 + hexval(raw.p[k + 2]);
            if (v == '"' || v == '\r' || v == '\n') {
                c = (char)v;
                k += 2;
            }
        }
        if (o + 1 >= cap)
            return -1;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return 0;
}

/* Reads a Content-Disposition value (RFC 7578 §4.2, RFC 6266 §4.1):
 * "form-data" *( OWS ";" OWS name OWS "=" OWS ( token / quoted-string ) ).
 * RFC 6266 keeps RFC 2616's implied whitespace, hence the OWS around '='.
 * Returns NULL or the reason. */
static const char *disposition(mp_parser_t *p, const char *s, size_t n)
{
    size_t i = 0;
    int seen_name = 0, seen_filename = 0;
    if (!http_slice_ieq(token(s, n, &i), "form-data"))
        return "part without Content-Disposition: form-data";
    for (;;) {
        while (i < n && ows((unsigned char)s[i]))
            i++;
        if (i == n)
            return NULL;
        if (s[i] != ';')
            return "invalid Content-Disposition";
        i++;
        while (i < n && ows((unsigned char)s[i]))
            i++;
        if (i == n || s[i] == ';')
            continue;
        slice_t name = token(s, n, &i);
        if (name.len == 0)
            return "invalid Content-Disposition";
        while (i < n && ows((unsigned char)s[i]))
            i++;
        if (i == n || s[i] != '=')
            return "invalid Content-Disposition";
        i++;
        while (i < n && ows((unsigned char)s[i]))
            i++;
        slice_t value;
        if (i < n && s[i] == '"') {
            /* Any byte but CR and LF (which cannot be in the line) may be
             * in a filename: the caller decides what to make of it. The
             * value ends at the first '"': browsers send a quote as %22
             * and a backslash as itself, never as a quoted-pair. */
            size_t start = ++i;
            for (;;) {
                if (i == n)
                    return "invalid Content-Disposition";
                if (s[i] == '"')
                    break;
                i++;
            }
            value = slice_make(s + start, i - start);
            i++;
        } else {
            /* A token, or obs-text, which some clients send unquoted. */
            size_t start = i;
            while (i < n && (http_tchar[(unsigned char)s[i]] || (unsigned char)s[i] >= 0x80))
                i++;
            value = slice_make(s + start, i - start);
            if (value.len == 0)
                return "invalid Content-Disposition";
        }
        if (http_slice_ieq(name, "name")) {
            if (seen_name++)
                return "repeated parameter in Content-Disposition";
            if (put_value(p->part.name, sizeof p->part.name, value) != 0)
                return "part name or filename too long";
        } else if (http_slice_ieq(name, "filename")) {
            if (seen_filename++)
                return "repeated parameter in Content-Disposition";
            if (put_value(p->part.filename, sizeof p->part.filename, value) != 0)
                return "part name or filename too long";
            p->part.has_filename = 1;
        }
    }
}

/* One complete header line of a part, without its CRLF. Returns NULL or the
 * reason. */
static const char *head_line(mp_parser_t *p)
{
    const char *s = p->line;
    size_t n = p->line_len;
    const char *colon = memchr(s, ':', n);
    if (colon == NULL)
        return "part header without colon";
    slice_t name = slice_make(s, (size_t)(colon - s));
    size_t i = 0;
    if (token(s, n, &i).len != name.len || name.len == 0)
        return "invalid part header name";
    size_t v = name.len + 1, e = n;
    while (v < e && ows((unsigned char)s[v]))
        v++;
    while (e > v && ows((unsigned char)s[e - 1]))
        e--;
    if (http_slice_ieq(name, "content-disposition")) {
        if (p->seen_cd++)
            return "repeated Content-Disposition";
        return disposition(p, s + v, e - v);
    }
    if (http_slice_ieq(name, "content-type")) {
        if (p->seen_ct++)
            return "repeated part Content-Type";
        if (e - v >= sizeof p->part.content_type)
            return "part Content-Type too long";
        memcpy(p->part.content_type, s + v, e - v);
        p->part.content_type[e - v] = '\0';
    }
    return NULL;
}

/* The body of a part: in[0, len) scanned for the delimiter, p->match bytes
 * of which were held back by earlier calls. The delimiter's CR occurs in
 * it only at its start (a boundary has no CR), so when a partial match
 * fails, every held byte is data and only a CR can start a new match:
 * no failure table is needed. */
static int feed_body(mp_parser_t *p, const char *in, size_t len, size_t *consumed, slice_t *data)
{
    const char *d = p->delim;
    size_t dl = p->dlen;
    size_t carry = p->match;   /* d[0, carry) held from earlier calls */
    size_t k = carry, i = 0;
    while (i < len) {
        if (k == 0) {
            const char *cr = memchr(in + i, '\r', len - i);
            if (cr == NULL) {
                i = len;
                break;
            }
            i = (size_t)(cr - in) + 1;
            k = 1;
            continue;
        }
        if (in[i] == d[k]) {
            i++;
            if (++k < dl)
                continue;
            /* The delimiter ends at in[i - 1]. */
            p->match = 0;
            if (carry == 0 && i > dl) {
                /* Data first; the delimiter is read again by the next call. */
                *data = slice_make(in, i - dl);
                *consumed = i - dl;
                return MP_DATA;
            }
            p->state = S_DELIM_END;
            *consumed = i;
            return MP_PART_END;
        }
        if (carry > 0) {
            /* The held bytes and in[0, i) are d[0, k), and data. */
            p->match = 0;
            *data = slice_make(d, k);
            *consumed = i;
            return MP_DATA;
        }
        k = 0;   /* in[i] again: it may be a CR */
    }
    /* All input read: the last k bytes may begin a delimiter, hold them. */
    p->match = k;
    *consumed = len;
    if (carry == 0 && len > k) {
        *data = slice_make(in, len - k);
        return MP_DATA;
    }
    return MP_MORE;
}

#define FAIL(reason) do { p->state = S_FAILED; p->why = *why = (reason); \
                          *consumed = i; return -400; } while (0)

int mp_feed(mp_parser_t *p, const char *in, size_t len, size_t *consumed, mp_part_t *part,
            slice_t *data, const char **why)
{
    size_t i = 0;
    *why = "";
    if (p->state == S_FAILED) {
        *why = p->why;
        *consumed = 0;
        return -400;
    }
    while (i < len) {
        unsigned char c = (unsigned char)in[i];
        switch (p->state) {
        case S_PREAMBLE:
            /* p->count preamble bytes read, the last p->match of them (with
             * the 2 imagined at the start) a delimiter's beginning: the
             * preamble proper is count - match, MP_PREAMBLE_MAX at most. */
            if (p->match == 0) {
                if (p->count > MP_PREAMBLE_MAX)
                    FAIL("no initial boundary");
                const char *cr = memchr(in + i, '\r', len - i);
                size_t skip = cr ? (size_t)(cr - (in + i)) : len - i;
                if (skip > MP_PREAMBLE_MAX - p->count) {
                    i += MP_PREAMBLE_MAX - p->count;
                    FAIL("no initial boundary");
                }
                p->count += skip;
                i += skip;
                if (cr != NULL) {
                    p->count++;
                    p->match = 1;
                    i++;
                }
                break;
            }
            if (c != (unsigned char)p->delim[p->match]) {
                p->match = 0;   /* in[i] again: it may be a CR */
                break;
            }
            p->count++;
            i++;
            if (++p->match == p->dlen) {
                p->match = 0;
                p->state = S_DELIM_END;
            }
            break;
        case S_DELIM_END:
            if (c == '-')
                p->state = S_CLOSE_DASH;
            else if (ows(c))
                p->state = S_PAD;
            else if (c == '\r')
                p->state = S_PAD_LF;
            else
                FAIL("junk after a boundary");
            i++;
            break;
        case S_CLOSE_DASH:
            if (c != '-')
                FAIL("junk after a boundary");
            i++;
            p->state = S_DONE;
            *consumed = i;
            return MP_DONE;
        case S_PAD:
            if (c == '\r')
                p->state = S_PAD_LF;
            else if (!ows(c))
                FAIL("junk after a boundary");
            i++;
            break;
        case S_PAD_LF:
            if (c != '\n')
                FAIL("junk after a boundary");
            i++;
            p->state = S_HEAD;
            p->count = 0;
            p->line_len = 0;
            p->seen_cd = p->seen_ct = 0;
            memset(&p->part, 0, sizeof p->part);
            break;
        case S_HEAD:
            if (++p->count > MP_HEAD_MAX)
                FAIL("part header section too long");
            if (c == '\r')
                p->state = S_HEAD_LF;
            else if (c == '\n')
                FAIL("part header line not ended by CRLF");
            else if (c == '\0')
                FAIL("NUL in a part header");
            else
                p->line[p->line_len++] = (char)c;   /* line_len < count <= MP_HEAD_MAX */
            i++;
            break;
        case S_HEAD_LF: {
            if (++p->count > MP_HEAD_MAX)
                FAIL("part header section too long");
            if (c != '\n')
                FAIL("part header line not ended by CRLF");
            if (p->line_len == 0) {
                if (!p->seen_cd)
                    FAIL("part without Content-Disposition: form-data");
                *part = p->part;
                p->state = S_BODY;
                p->match = 0;
                *consumed = i + 1;
                return MP_PART;
            }
            const char *bad = head_line(p);
            if (bad != NULL)
                FAIL(bad);
            p->line_len = 0;
            p->state = S_HEAD;
            i++;
            break;
        }
        case S_BODY: {
            int rc = feed_body(p, in + i, len - i, consumed, data);
            *consumed += i;
            return rc;
        }
        case S_DONE:
        default:
            /* The epilogue. */
            i = len;
            break;
        }
    }
    *consumed = i;
    return MP_MORE;
}
