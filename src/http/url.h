/* url.h - http and https URLs (RFC 3986, RFC 9110 §4.2), sans-I/O.
 *
 * http_url_parse() splits an absolute URL into its parts without copying:
 * every slice points into the input. It is strict, with one exact reason
 * per kind of bad URL:
 *   - the scheme is http or https (any case); "missing scheme" when there
 *     is no "scheme://", "unsupported scheme" for another;
 *   - userinfo (before '@') is kept as is (percent-encoded);
 *   - the host is a reg-name (unreserved, sub-delims, %XX), an IPv4 address
 *     or an IPv6 literal in brackets (checked with inet_pton; zone ids are
 *     refused); an empty host is an error;
 *   - the port is decimal 1-65535; an empty port (":" alone) means the
 *     scheme's default;
 *   - the path and query hold only RFC 3986 pchar, "/" and "?"; '%' must
 *     start %XX; space, control characters, non-ASCII, '"', '<', '>', '\',
 *     '^', '`', '{', '|', '}' are refused (callers encode them first, see
 *     http_url_encode());
 *   - a fragment ('#...') is checked the same way and dropped from the
 *     request target.
 * An empty path becomes "/" in the request target. */
#ifndef PORTICO_HTTP_URL_H
#define PORTICO_HTTP_URL_H

#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"

/* Longest URL accepted (bytes), and so the longest one resolve may write. */
#define HTTP_URL_MAX 8192u

enum http_url_scheme { HTTP_URL_HTTP = 0, HTTP_URL_HTTPS };

typedef struct http_url {
    enum http_url_scheme scheme;
    slice_t userinfo;        /* empty when absent; has_userinfo tells */
    int has_userinfo;
    slice_t host;            /* without brackets; as written (case kept) */
    int ipv6;                /* host was an IPv6 literal */
    uint16_t port;           /* explicit, or the scheme's default */
    int has_port;            /* the URL named a port */
    slice_t path;            /* as written, may be empty */
    slice_t query;           /* after '?', without it */
    int has_query;
    slice_t fragment;        /* after '#', without it */
    int has_fragment;
    slice_t target;          /* path and query: the origin-form target, or
                                empty when the path is (then use "/") */
} http_url_t;

/* Parses s[0, len). Returns 0, or -1 with *why set to an exact static
 * reason. */
int http_url_parse(const char *s, size_t len, http_url_t *u, const char **why);

/* The scheme's default port: 80 or 443. */
uint16_t http_url_default_port(enum http_url_scheme s);

/* Writes the authority for a Host field ("host", "host:port", "[::1]:8080";
 * the port only when it is not the default) into out (NUL-terminated).
 * Returns its length, or -1 when it does not fit. */
int http_url_authority(const http_url_t *u, char *out, size_t size);

/* Resolves a reference `ref` (a Location value: absolute, "//host...",
 * "/path", "path", "?query" or "") against the absolute URL `base`
 * (RFC 3986 §5.2, dot segments removed), writing the result as a
 * NUL-terminated absolute URL into out. The fragment of ref is dropped.
 * Returns its length, or -1 with *why set (bad base or reference, result
 * longer than `size` - 1 or than HTTP_URL_MAX). The result still has to be
 * parsed by the caller. */
int http_url_resolve(slice_t base, slice_t ref, char *out, size_t size, const char **why);

/* Percent-encodes the bytes of s that http_url_parse() would refuse in a
 * path, query or fragment (space, controls, non-ASCII, '"', '<', '>', '\',
 * '^', '`', '{', '|', '}', and '%' not followed by two hex digits) into
 * out (NUL-terminated). Returns the length, or -1 when out is too small. */
int http_url_encode(slice_t s, char *out, size_t size);

#endif
