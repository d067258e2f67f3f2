/* cond.h - pieces of conditional and range requests (RFC 9110 §13, §14):
 * entity-tag lists and the Range field. Pure functions. */
#ifndef PORTICO_HTTP_COND_H
#define PORTICO_HTTP_COND_H

#include <stdint.h>
#include <time.h>

#include "core/slice.h"

/* Does the If-Match / If-None-Match value `list` ("*" or entity-tags) match
 * `etag` (a strong tag with its quotes, e.g. "\"abc\"")? `weak` selects
 * weak comparison (If-None-Match) instead of strong (If-Match: a W/ tag in
 * the list never matches). A list with bad syntax matches nothing.
 * Returns 1 or 0. */
int http_etag_match(slice_t list, slice_t etag, int weak);

/* The preconditions of a request (RFC 9110 §13.1). The slices point into
 * the request, or into copies the caller keeps; p == NULL means absent. */
struct http_cond {
    slice_t if_match;
    slice_t if_none_match;
    int has_ims, has_ius;
    time_t ims, ius;           /* If-Modified-Since, If-Unmodified-Since */
};

struct http_request;

/* Collects the precondition fields of a request. Unparseable dates count
 * as absent, as RFC 9110 says. */
void http_cond_from_request(const struct http_request *q, struct http_cond *c);

/* Bytes http_cond_copy() needs for c's strings. */
size_t http_cond_copy_size(const struct http_cond *c);
/* Copies c into *dst with its strings moved into buf (http_cond_copy_size
 * bytes), so that dst outlives the request head c points into. */
void http_cond_copy(struct http_cond *dst, const struct http_cond *c, char *buf);

/* Evaluates them in the order of RFC 9110 §13.2.2 against the current
 * state of the resource (`exists`, its strong `etag` and `mtime`).
 * `get_or_head` selects 304 over 412 for a matching If-None-Match.
 * Returns 0 (go on), 304 or 412. */
int http_cond_eval(const struct http_cond *c, int exists, slice_t etag, time_t mtime,
                   int get_or_head);

enum http_range_result {
    HTTP_RANGE_IGNORE = 0,       /* no usable Range: send the whole content */
    HTTP_RANGE_OK,               /* one satisfiable range in [*first, *last] */
    HTTP_RANGE_UNSATISFIABLE,    /* 416 */
};

struct http_byte_range {
    uint64_t first, last;   /* inclusive */
};

#define HTTP_MAX_RANGES 16

/* Evaluates a Range value with one or more ranges against content of
 * `size` bytes: HTTP_RANGE_OK with the satisfiable ones in out[0..*n)
 * (unsatisfiable ones are dropped, in request order otherwise);
 * HTTP_RANGE_UNSATISFIABLE when none is; HTTP_RANGE_IGNORE for another
 * unit, bad syntax, or more than `max` ranges (a request for many small
 * ranges is answered with the whole content instead). */
enum http_range_result http_ranges_parse(slice_t v, uint64_t size, struct http_byte_range *out,
                                         size_t max, size_t *n);

/* Evaluates a Range value against content of `size` bytes. Several ranges,
 * a unit other than bytes, or bad syntax give HTTP_RANGE_IGNORE. */
enum http_range_result http_range_parse(slice_t v, uint64_t size, uint64_t *first, uint64_t *last);

#endif
