/* cond.h - pieces of conditional and range requests (RFC 9110 §13, §14):
 * entity-tag lists and the Range field. Pure functions. */
#ifndef PORTICO_HTTP_COND_H
#define PORTICO_HTTP_COND_H

#include <stdint.h>

#include "core/slice.h"

/* Does the If-Match / If-None-Match value `list` ("*" or entity-tags) match
 * `etag` (a strong tag with its quotes, e.g. "\"abc\"")? `weak` selects
 * weak comparison (If-None-Match) instead of strong (If-Match: a W/ tag in
 * the list never matches). A list with bad syntax matches nothing.
 * Returns 1 or 0. */
int http_etag_match(slice_t list, slice_t etag, int weak);

enum http_range_result {
    HTTP_RANGE_IGNORE = 0,       /* no usable Range: send the whole content */
    HTTP_RANGE_OK,               /* one satisfiable range in [*first, *last] */
    HTTP_RANGE_UNSATISFIABLE,    /* 416 */
};

/* Evaluates a Range value against content of `size` bytes. Several ranges,
 * a unit other than bytes, or bad syntax give HTTP_RANGE_IGNORE. */
enum http_range_result http_range_parse(slice_t v, uint64_t size, uint64_t *first, uint64_t *last);

#endif
