/* parse.h - the HTTP/1.1 request head parser (RFC 9112, RFC 9110), sans-I/O.
 *
 * http_parse_request() is given the bytes received so far, from the first
 * byte of a request. It never copies: the request's slices point into buf,
 * which must stay unchanged while they are used. Feeding the same bytes in
 * any split across calls gives the same result, because the head is
 * checked only once it is complete, and the limits are checked on lengths
 * that do not depend on the split.
 *
 * Strictness (each is a 400 unless noted): a line must end in CRLF (bare
 * LF or bare CR), obs-fold, whitespace before a field's colon, non-token
 * characters in the method or a field name, control characters in a value,
 * a bad request-target, a bad or repeated Content-Length, Content-Length
 * with Transfer-Encoding, a Transfer-Encoding not ending in chunked, a
 * missing or repeated Host in HTTP/1.1. Versions other than 1.0 and 1.1
 * give 505; a Transfer-Encoding we cannot decode 501; an Expect other than
 * 100-continue 417; over-long target 414; over-long head or too many
 * fields 431. The HTTP/2 connection preface gives HTTP_PARSE_PREFACE. */
#ifndef PORTICO_HTTP_PARSE_H
#define PORTICO_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/slice.h"
#include "http/limits.h"

enum http_method {
    HTTP_M_UNKNOWN = 0,
    HTTP_M_GET, HTTP_M_HEAD, HTTP_M_POST, HTTP_M_PUT, HTTP_M_DELETE,
    HTTP_M_CONNECT, HTTP_M_OPTIONS, HTTP_M_TRACE, HTTP_M_PATCH,
};

enum http_target_form {
    HTTP_T_ORIGIN = 0,   /* /path?query */
    HTTP_T_ABSOLUTE,     /* http://host/path?query */
    HTTP_T_AUTHORITY,    /* host:port (CONNECT) */
    HTTP_T_ASTERISK,     /* * (OPTIONS) */
};

typedef struct http_field {
    slice_t name;
    slice_t value;       /* without surrounding whitespace */
} http_field_t;

typedef struct http_request {
    slice_t method;
    enum http_method method_id;
    slice_t target;
    enum http_target_form form;
    slice_t path;            /* still percent-encoded; "/" for asterisk-form */
    slice_t query;           /* after '?', empty if none */
    int has_query;
    int version;             /* 10 or 11; 10 when the parse failed before it */
    http_field_t *fields;    /* caller's array */
    size_t nfields;
    size_t head_len;         /* bytes of the head, terminator included */

    /* Derived from the fields. */
    slice_t host;            /* Host field, or the authority of an absolute target */
    int has_host;
    int64_t content_length;  /* -1 when absent */
    int chunked;             /* Transfer-Encoding: chunked */
    int keep_alive;          /* what the client asked, default by version */
    int expect_continue;
} http_request_t;

/* Results besides a head length (> 0). Errors are negative HTTP statuses. */
#define HTTP_PARSE_INCOMPLETE 0
#define HTTP_PARSE_PREFACE    (-2)

typedef struct http_parse_state {
    size_t scanned;     /* bytes known to hold no end of head */
} http_parse_state_t;

static inline void http_parse_state_init(http_parse_state_t *s) { s->scanned = 0; }

/* Parses the request head at the start of buf[0, len).
 * `fields` has room for lim->max_fields entries.
 * Returns the head length (> 0) with *req filled; HTTP_PARSE_INCOMPLETE
 * when more bytes are needed; HTTP_PARSE_PREFACE for the HTTP/2 preface; or
 * -status (-400, -414, -417, -431, -501, -505) with *why set to a short
 * static reason. On an error, *req holds what was parsed before it (the
 * version in particular, for the answer). */
int http_parse_request(const char *buf, size_t len, http_parse_state_t *st,
                       const struct http_limits *lim, http_field_t *fields,
                       http_request_t *req, const char **why);

/* What a Transfer-Encoding value says, accumulated over the fields of a
 * head (zero the struct first): codings seen, whether the last one is
 * chunked, whether chunked came twice within the value (then the rest of
 * that value is not read), whether any other coding came. */
struct http_te_info {
    int count, chunked_seen, chunked_last, twice, other;
};
void http_scan_te(slice_t value, struct http_te_info *t);

/* Sets *close / *keep_alive when a Connection value lists them. */
void http_scan_connection(slice_t value, int *close, int *keep_alive);

/* Index just past the empty line that ends a head starting at buf[0],
 * looking from `from` on (bytes before it are known to hold no end), or 0
 * when buf[0, len) holds no end yet. */
size_t http_find_head_end(const char *buf, size_t len, size_t from);

/* Parses the field lines in [p, end), where end is just past the LF of
 * the empty line that closes the head, into fields[0..max_fields). Sets
 * *nfields. Returns 0, -400 (syntax) or -431 (too many) with *why set. */
int http_parse_fields(const char *p, const char *end, http_field_t *fields, size_t max_fields,
                      size_t *nfields, const char **why);

/* Looks up a method name (case-sensitive, as RFC 9110 says). */
enum http_method http_method_lookup(slice_t m);

/* Finds the first field named `name` (case-insensitive); NULL if none. */
const http_field_t *http_find_field(const http_request_t *req, const char *name);

/* Character classes (RFC 9110 §5.6.2 tchar). */
extern const unsigned char http_tchar[256];

/* Case-insensitive compare of s with lower[0..n), which is lower-case. */
static inline int http_slice_ieq_n(slice_t s, const char *lower, size_t n)
{
    if (s.len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c >= 'A' && c <= 'Z')
            c |= 0x20;
        if (c != (unsigned char)lower[i])
            return 0;
    }
    return 1;
}

/* Case-insensitive compare of a slice with a lower-case C string. Inline,
 * so that the length of a literal is known when compiling (this runs for
 * many fields of every request). */
static inline int http_slice_ieq(slice_t s, const char *lower)
{
    return http_slice_ieq_n(s, lower, strlen(lower));
}

/* Calls fn for each element of a comma-separated list value (RFC 9110
 * §5.6.1), trimmed, skipping empty elements. Stops and returns fn's value
 * when it is non-zero. */
int http_list_each(slice_t value, int (*fn)(slice_t elem, void *arg), void *arg);

#endif
