/* url.c - http(s) URLs: parse, resolve a reference, encode (RFC 3986). */
#include "http/url.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FAIL(reason) do { *why = (reason); return -1; } while (0)

static int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_hex(unsigned char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}
static int is_unreserved(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
static int is_subdelim(unsigned char c)
{
    return c && strchr("!$&'()*+,;=", c) != NULL;
}
/* pchar without '%', plus '/' and '?': what a path, query or fragment may
 * hold literally. */
static int is_pqchar(unsigned char c)
{
    return is_unreserved(c) || is_subdelim(c) || c == ':' || c == '@' || c == '/' || c == '?';
}

/* Checks s[a, b) for path/query/fragment characters and %XX. */
static int check_pq(const char *s, size_t a, size_t b, const char **why)
{
    for (size_t i = a; i < b; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= b || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2]))
                FAIL("bad percent-encoding (% not followed by two hex digits)");
            i += 2;
        } else if (c == ' ') {
            FAIL("space in the URL (encode it as %20)");
        } else if (c < 0x20 || c == 0x7f) {
            FAIL("control character in the URL");
        } else if (c >= 0x80) {
            FAIL("non-ASCII byte in the URL (percent-encode it)");
        } else if (!is_pqchar(c)) {
            FAIL("character not allowed in a URL path or query");
        }
    }
    return 0;
}

uint16_t http_url_default_port(enum http_url_scheme s)
{
    return s == HTTP_URL_HTTPS ? 443 : 80;
}

static int parse_host(const char *s, size_t a, size_t b, http_url_t *u, const char **why)
{
    /* s[a, b) is host [":" port]. */
    size_t hend;
    if (a < b && s[a] == '[') {
        const char *rb = memchr(s + a, ']', b - a);
        if (rb == NULL)
            FAIL("IPv6 address without its closing bracket");
        size_t n = (size_t)(rb - (s + a)) - 1;
        char tmp[64];
        struct in6_addr in6;
        if (n == 0 || n >= sizeof tmp)
            FAIL("bad IPv6 address");
        memcpy(tmp, s + a + 1, n);
        tmp[n] = '\0';
        if (memchr(tmp, '%', n) != NULL)
            FAIL("IPv6 zone identifiers are not supported");
        if (strlen(tmp) != n || inet_pton(AF_INET6, tmp, &in6) != 1)
            FAIL("bad IPv6 address");
        u->host = slice_make(s + a + 1, n);
        u->ipv6 = 1;
        hend = (size_t)(rb - s) + 1;
        if (hend < b && s[hend] != ':')
            FAIL("unexpected character after the IPv6 address");
    } else {
        hend = a;
        while (hend < b && s[hend] != ':')
            hend++;
        if (hend == a)
            FAIL("empty host");
        for (size_t i = a; i < hend; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '%') {
                if (i + 2 >= hend || !is_hex((unsigned char)s[i + 1]) ||
                    !is_hex((unsigned char)s[i + 2]))
                    FAIL("bad percent-encoding (% not followed by two hex digits)");
                i += 2;
            } else if (c == '[' || c == ']') {
                FAIL("bracket outside an IPv6 address");
            } else if (!is_unreserved(c) && !is_subdelim(c)) {
                FAIL("character not allowed in a host name");
            }
        }
        if (hend - a > 255)
            FAIL("host name too long");
        u->host = slice_make(s + a, hend - a);
    }
    u->port = http_url_default_port(u->scheme);
    if (hend < b) {
        /* s[hend] == ':' */
        size_t p = hend + 1;
        if (p == b)
            return 0; /* "host:" means the default port */
        unsigned long v = 0;
        for (size_t i = p; i < b; i++) {
            if (!is_digit((unsigned char)s[i]))
                FAIL("bad port (not a decimal number)");
            v = v * 10 + (unsigned long)(s[i] - '0');
            if (v > 65535)
                FAIL("port out of range (1-65535)");
        }
        if (v == 0)
            FAIL("port out of range (1-65535)");
        u->port = (uint16_t)v;
        u->has_port = 1;
    }
    return 0;
}

int http_url_parse(const char *s, size_t len, http_url_t *u, const char **why)
{
    memset(u, 0, sizeof *u);
    *why = "";
    if (len == 0)
        FAIL("empty URL");
    if (len > HTTP_URL_MAX)
        FAIL("URL too long");
    size_t i = 0;
    while (i < len && (is_alpha((unsigned char)s[i]) ||
                       (i > 0 && (is_digit((unsigned char)s[i]) || s[i] == '+' ||
                                  s[i] == '-' || s[i] == '.'))))
        i++;
    if (i == 0 || i + 3 > len || memcmp(s + i, "://", 3) != 0)
        FAIL("missing scheme (expected http:// or https://)");
    slice_t sch = slice_make(s, i);
    int is_http = sch.len == 4 && strncasecmp(s, "http", 4) == 0;
    int is_https = sch.len == 5 && strncasecmp(s, "https", 5) == 0;
    if (!is_http && !is_https)
        FAIL("unsupported scheme (only http and https)");
    u->scheme = is_https ? HTTP_URL_HTTPS : HTTP_URL_HTTP;
    size_t a = i + 3, b = a;
    while (b < len && s[b] != '/' && s[b] != '?' && s[b] != '#')
        b++;
    /* The authority is s[a, b); userinfo ends at its last '@'. */
    size_t at = b;
    for (size_t k = a; k < b; k++)
        if (s[k] == '@')
            at = k;
    if (at < b) {
        for (size_t k = a; k < at; k++) {
            unsigned char c = (unsigned char)s[k];
            if (c == '%') {
                if (k + 2 >= at || !is_hex((unsigned char)s[k + 1]) ||
                    !is_hex((unsigned char)s[k + 2]))
                    FAIL("bad percent-encoding (% not followed by two hex digits)");
                k += 2;
            } else if (!is_unreserved(c) && !is_subdelim(c) && c != ':') {
                FAIL("character not allowed in the userinfo");
            }
        }
        u->userinfo = slice_make(s + a, at - a);
        u->has_userinfo = 1;
        a = at + 1;
    }
    if (a == b)
        FAIL("empty host");
    if (parse_host(s, a, b, u, why) != 0)
        return -1;
    size_t p = b;
    while (p < len && s[p] != '?' && s[p] != '#')
        p++;
    u->path = slice_make(s + b, p - b);
    if (check_pq(s, b, p, why) != 0)
        return -1;
    size_t q = p;
    if (q < len && s[q] == '?') {
        q++;
        while (q < len && s[q] != '#')
            q++;
        u->query = slice_make(s + p + 1, q - p - 1);
        u->has_query = 1;
        if (check_pq(s, p + 1, q, why) != 0)
            return -1;
    }
    if (q < len) {
        /* s[q] == '#' */
        u->fragment = slice_make(s + q + 1, len - q - 1);
        u->has_fragment = 1;
        if (memchr(u->fragment.p, '#', u->fragment.len) != NULL)
            FAIL("character not allowed in a URL path or query");
        if (check_pq(s, q + 1, len, why) != 0)
            return -1;
    }
    u->target = slice_make(s + b, q - b);
    return 0;
}

int http_url_authority(const http_url_t *u, char *out, size_t size)
{
    int ipv6 = u->ipv6;
    size_t need = u->host.len + (ipv6 ? 2 : 0) + 7;
    if (need >= size)
        return -1;
    size_t n = 0;
    if (ipv6)
        out[n++] = '[';
    memcpy(out + n, u->host.p, u->host.len);
    n += u->host.len;
    if (ipv6)
        out[n++] = ']';
    if (u->port != http_url_default_port(u->scheme)) {
        int k = snprintf(out + n, size - n, ":%u", (unsigned)u->port);
        n += (size_t)k;
    }
    out[n] = '\0';
    return (int)n;
}

/* ----------------------------------------------------------- resolve */

/* Appends s[0, n) to out at *len, failing when it would not fit. */
static int put(char *out, size_t size, size_t *len, const char *s, size_t n)
{
    if (*len + n + 1 > size || *len + n > HTTP_URL_MAX)
        return -1;
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
    return 0;
}

/* Removes dot segments (RFC 3986 §5.2.4) from the path at out[start, *len)
 * in place. */
static void remove_dots(char *out, size_t start, size_t *len)
{
    char *in = out + start;
    size_t n = *len - start, r = 0, w = 0;
    while (r < n) {
        if (n - r >= 3 && memcmp(in + r, "../", 3) == 0) {
            r += 3;
        } else if (n - r >= 2 && memcmp(in + r, "./", 2) == 0) {
            r += 2;
        } else if (n - r >= 3 && memcmp(in + r, "/./", 3) == 0) {
            r += 2;
        } else if (n - r == 2 && memcmp(in + r, "/.", 2) == 0) {
            r += 1;
            in[r] = '/';
        } else if (n - r >= 4 && memcmp(in + r, "/../", 4) == 0) {
            r += 3;
            while (w > 0 && in[--w] != '/')
                ;
        } else if (n - r == 3 && memcmp(in + r, "/..", 3) == 0) {
            r += 2;
            in[r] = '/';
            while (w > 0 && in[--w] != '/')
                ;
        } else if ((n - r == 1 && in[r] == '.') || (n - r == 2 && memcmp(in + r, "..", 2) == 0)) {
            r = n;
        } else {
            size_t k = r;
            if (in[k] == '/')
                k++;
            while (k < n && in[k] != '/')
                k++;
            memmove(in + w, in + r, k - r);
            w += k - r;
            r = k;
        }
    }
    *len = start + w;
    out[*len] = '\0';
}

int http_url_resolve(slice_t base, slice_t ref, char *out, size_t size, const char **why)
{
    http_url_t b;
    if (http_url_parse(base.p, base.len, &b, why) != 0)
        return -1;
    size_t len = 0;
    if (size == 0)
        FAIL("resolved URL too long");
    out[0] = '\0';
    /* Drop the fragment of the reference. */
    const char *hash = memchr(ref.p, '#', ref.len);
    if (hash != NULL)
        ref.len = (size_t)(hash - ref.p);
    /* Absolute reference: a scheme before any '/', '?'. */
    size_t i = 0;
    while (i < ref.len && (is_alpha((unsigned char)ref.p[i]) ||
                           (i > 0 && (is_digit((unsigned char)ref.p[i]) || ref.p[i] == '+' ||
                                      ref.p[i] == '-' || ref.p[i] == '.'))))
        i++;
    if (i > 0 && i < ref.len && ref.p[i] == ':') {
        if (put(out, size, &len, ref.p, ref.len) != 0)
            FAIL("resolved URL too long");
        http_url_t t;
        if (http_url_parse(out, len, &t, why) != 0)
            return -1;
        size_t pstart = (size_t)(t.path.p - out);
        size_t tail_off = pstart + t.path.len;
        char tail[HTTP_URL_MAX + 1];
        size_t tl = len - tail_off;
        memcpy(tail, out + tail_off, tl);
        len = tail_off;
        remove_dots(out, pstart, &len);
        if (put(out, size, &len, tail, tl) != 0)
            FAIL("resolved URL too long");
        return (int)len;
    }
    /* scheme "://" */
    size_t scheme_len = (size_t)(strstr(base.p, "://") - base.p);
    if (scheme_len > base.len)
        FAIL("bad base URL");
    if (put(out, size, &len, base.p, scheme_len + 1) != 0)
        FAIL("resolved URL too long");
    if (ref.len >= 2 && ref.p[0] == '/' && ref.p[1] == '/') {
        if (put(out, size, &len, ref.p, ref.len) != 0)
            FAIL("resolved URL too long");
        http_url_t t;
        if (http_url_parse(out, len, &t, why) != 0)
            return -1;
        return (int)len;
    }
    /* The base's authority: from after "://" to the start of its path. */
    const char *auth = base.p + scheme_len + 3;
    size_t auth_len = (size_t)(b.path.p - auth);
    if (put(out, size, &len, "//", 2) != 0 || put(out, size, &len, auth, auth_len) != 0)
        FAIL("resolved URL too long");
    size_t pstart = len;
    slice_t rpath = ref, rquery = { "", 0 };
    int rhas_query = 0;
    const char *qm = memchr(ref.p, '?', ref.len);
    if (qm != NULL) {
        rpath.len = (size_t)(qm - ref.p);
        rquery = slice_make(qm + 1, ref.len - rpath.len - 1);
        rhas_query = 1;
    }
    if (rpath.len == 0) {
        if (put(out, size, &len, b.path.p, b.path.len) != 0)
            FAIL("resolved URL too long");
        if (len == pstart && put(out, size, &len, "/", 1) != 0)
            FAIL("resolved URL too long");
        if (!rhas_query && b.has_query) {
            rquery = b.query;
            rhas_query = 1;
        }
    } else if (rpath.p[0] == '/') {
        if (put(out, size, &len, rpath.p, rpath.len) != 0)
            FAIL("resolved URL too long");
    } else {
        /* Merge: the base path up to its last '/', then the reference. */
        size_t keep = b.path.len;
        while (keep > 0 && b.path.p[keep - 1] != '/')
            keep--;
        if (keep == 0) {
            if (put(out, size, &len, "/", 1) != 0)
                FAIL("resolved URL too long");
        } else if (put(out, size, &len, b.path.p, keep) != 0) {
            FAIL("resolved URL too long");
        }
        if (put(out, size, &len, rpath.p, rpath.len) != 0)
            FAIL("resolved URL too long");
    }
    remove_dots(out, pstart, &len);
    if (len == pstart && put(out, size, &len, "/", 1) != 0)
        FAIL("resolved URL too long");
    if (rhas_query && (put(out, size, &len, "?", 1) != 0 ||
                       put(out, size, &len, rquery.p, rquery.len) != 0))
        FAIL("resolved URL too long");
    http_url_t t;
    if (http_url_parse(out, len, &t, why) != 0)
        return -1;
    return (int)len;
}

int http_url_encode(slice_t s, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        int ok = is_pqchar(c) || c == '#' ||
                 (c == '%' && i + 2 < s.len && is_hex((unsigned char)s.p[i + 1]) &&
                  is_hex((unsigned char)s.p[i + 2]));
        if (ok) {
            if (n + 2 > size)
                return -1;
            out[n++] = (char)c;
        } else {
            if (n + 4 > size)
                return -1;
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    if (n + 1 > size)
        return -1;
    out[n] = '\0';
    return (int)n;
}
