/* response.h - the HTTP/1.1 response side of the codec (RFC 9112), sans-I/O:
 * the status line and header section of a response, and the framing of the
 * body that follows it.
 *
 * http_parse_response() is given the bytes received so far from the first
 * byte of a response. Its slices point into that buffer (zero-copy), and
 * feeding the same bytes in any split gives the same result: the head is
 * checked only once its empty line has arrived, and the one early answer
 * (head too large) is decided by position.
 *
 * A 1xx head is returned like any other; the caller skips it (or shows it)
 * and parses the next head from the bytes after it. 101 is left to the
 * caller too (the client treats it as an error unless it asked to switch).
 *
 * http_body_init() decides how the body is delimited (RFC 9112 §6.3): none
 * for a HEAD request, 1xx, 204 and 304 (and a 2xx to CONNECT, which starts
 * a tunnel); chunked when Transfer-Encoding ends in chunked; Content-Length
 * bytes; otherwise until the connection closes. http_body_decode() then
 * hands the body bytes out as slices of the input, and http_body_eof()
 * says whether a close of the connection at this point ends the body or
 * truncates it.
 *
 * Strictness (every case is an error with a short static reason): a line
 * not ended by CRLF, obs-fold, whitespace before a colon, control
 * characters in a value, a version other than HTTP/1.0 or HTTP/1.1, a
 * status that is not three digits from 100 to 599, a Content-Length that is
 * not digits, is repeated (even with the same value, or as "5, 5") or is
 * sent with Transfer-Encoding, chunked applied twice or not last, a
 * transfer coding other than chunked, Transfer-Encoding in an HTTP/1.0
 * response, and a bad chunk size, chunk framing or trailer. */
#ifndef PORTICO_HTTP_RESPONSE_H
#define PORTICO_HTTP_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "http/chunked.h"
#include "http/parse.h"

typedef struct http_response {
    int version;             /* 10 or 11 */
    int status;              /* 100..599 */
    slice_t reason;          /* may be empty */
    http_field_t *fields;    /* caller's array */
    size_t nfields;
    size_t head_len;         /* bytes of the head, terminator included */

    /* Derived from the fields. */
    int64_t content_length;  /* -1 when absent */
    int chunked;             /* Transfer-Encoding: chunked */
    int keep_alive;          /* the server lets the connection be reused (a
                                close-delimited body still ends it: see
                                http_body_init) */
} http_response_t;

/* Parse errors are this value, with *why set. */
#define HTTP_RESPONSE_BAD (-1)

/* Parses the response head at the start of buf[0, len). `fields` has room
 * for max_fields entries. st carries how far the search for the end of the
 * head got (http_parse_state_init() before the first call of each head).
 * Returns the head length (> 0) with *res filled; HTTP_PARSE_INCOMPLETE (0)
 * when more bytes are needed; or HTTP_RESPONSE_BAD with *why set to a short
 * static reason (a head over max_head bytes or with more than max_fields
 * fields included). */
int http_parse_response(const char *buf, size_t len, http_parse_state_t *st, size_t max_head,
                        size_t max_fields, http_field_t *fields, http_response_t *res,
                        const char **why);

/* Finds the first field named `name` (case-insensitive) of a response;
 * NULL if none. */
const http_field_t *http_response_field(const http_response_t *res, const char *name);

enum http_body_kind {
    HTTP_BODY_NONE = 0,      /* no body at all */
    HTTP_BODY_LENGTH,        /* Content-Length bytes */
    HTTP_BODY_CHUNKED,       /* chunked framing, trailers checked and dropped */
    HTTP_BODY_CLOSE,         /* until the connection closes */
};

typedef struct http_body {
    enum http_body_kind kind;
    uint64_t remaining;      /* LENGTH: bytes still to come */
    uint64_t received;       /* body bytes handed out so far */
    int done;
    http_chunked_t chunked;
} http_body_t;

/* Results of http_body_decode(). */
#define HTTP_BODY_MORE 0     /* all input used; need more */
#define HTTP_BODY_DATA 1     /* *data holds body bytes */
#define HTTP_BODY_DONE 2     /* the body is complete; later bytes are not its */

/* Sets b up for the body of `res`, a final (non-1xx) response to a request
 * with method `method` (HTTP_M_HEAD and HTTP_M_CONNECT matter). */
void http_body_init(http_body_t *b, enum http_method method, const http_response_t *res);

/* Decodes from in[0, len). Sets *consumed to the input bytes used. Returns
 * HTTP_BODY_DATA with *data (a slice of in; call again with the rest),
 * HTTP_BODY_MORE, HTTP_BODY_DONE, or HTTP_RESPONSE_BAD with *why set (bad
 * chunking). A body of kind NONE, or a LENGTH of 0, is DONE at once. */
int http_body_decode(http_body_t *b, const char *in, size_t len, size_t *consumed,
                     slice_t *data, const char **why);

/* The connection closed (read returned 0) after everything was decoded.
 * Returns HTTP_BODY_DONE when that ends the body (CLOSE kind, or a body
 * already complete), or HTTP_RESPONSE_BAD with *why naming the truncation
 * ("connection closed before the end of the body" and the like). */
int http_body_eof(http_body_t *b, const char **why);

#endif
