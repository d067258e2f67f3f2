/* cachectl.h - the rules of HTTP caching (RFC 9111) as pure functions, for
 * a private cache (portico get --cache) and a shared one (portico proxy).
 *
 * Nothing here stores anything or reads a clock: times are seconds of the
 * wall clock (time_t) passed in by the caller, field lists are the parsed
 * fields of src/http (http_field_t arrays). The store decides where bytes
 * live; these functions decide
 *   - what Cache-Control says (http_cc_parse),
 *   - whether a response may be stored (http_cache_storable, §3),
 *   - for how long it is fresh (http_cache_freshness, §4.2.1-4.2.2, with
 *     the heuristic of 10% of the time since Last-Modified),
 *   - how old it is (http_cache_initial_age / http_cache_age, §4.2.3),
 *   - whether a stored response may answer a request as is, must be
 *     revalidated first, or is refused (http_cache_decide, §4, §5.2),
 *   - whether it was selected by the same request fields (Vary, §4.1),
 *   - which fields of a 304 replace the stored ones (§3.2). */
#ifndef PORTICO_HTTP_CACHECTL_H
#define PORTICO_HTTP_CACHECTL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/slice.h"
#include "http/parse.h"

/* The heuristic lifetime is 10% of (Date - Last-Modified), at most this
 * (seconds). */
#define HTTP_CACHE_HEURISTIC_PERCENT 10
#define HTTP_CACHE_HEURISTIC_MAX     (24 * 3600)
/* Ages and lifetimes are clamped to this (RFC 9111 §1.2.2: 2^31). */
#define HTTP_CACHE_DELTA_MAX         INT64_C(2147483648)

/* Cache-Control directives (RFC 9111 §5.2), of requests and responses. */
enum {
    HTTP_CC_NO_STORE         = 1u << 0,
    HTTP_CC_NO_CACHE         = 1u << 1,   /* also the qualified form no-cache="f" */
    HTTP_CC_MUST_REVALIDATE  = 1u << 2,
    HTTP_CC_PROXY_REVALIDATE = 1u << 3,
    HTTP_CC_PRIVATE          = 1u << 4,   /* also the qualified form */
    HTTP_CC_PUBLIC           = 1u << 5,
    HTTP_CC_MAX_AGE          = 1u << 6,   /* max_age holds the value */
    HTTP_CC_S_MAXAGE         = 1u << 7,   /* s_maxage holds the value */
    HTTP_CC_MAX_STALE        = 1u << 8,   /* max_stale (-1: any staleness) */
    HTTP_CC_MIN_FRESH        = 1u << 9,   /* min_fresh */
    HTTP_CC_ONLY_IF_CACHED   = 1u << 10,
    HTTP_CC_NO_TRANSFORM     = 1u << 11,
    HTTP_CC_IMMUTABLE        = 1u << 12,
    HTTP_CC_MUST_UNDERSTAND  = 1u << 13,
    /* A directive with a bad argument ("max-age=x", "max-age" without a
     * value) or a delta-seconds directive given twice with different
     * values: §4.2.1 says to treat the response as stale. */
    HTTP_CC_INVALID          = 1u << 14,
};

typedef struct http_cc {
    unsigned flags;
    int64_t max_age, s_maxage, max_stale, min_fresh;
} http_cc_t;

/* Adds the directives of one Cache-Control value to cc (several fields are
 * one list: call once per field, after http_cc_init). Names are matched
 * without case, unknown directives ignored, values may be quoted, numbers
 * over HTTP_CACHE_DELTA_MAX are clamped to it. */
void http_cc_init(http_cc_t *cc);
void http_cc_parse(http_cc_t *cc, slice_t value);

/* Every Cache-Control field of a field list into cc (initialised here). */
void http_cc_from_fields(http_cc_t *cc, const http_field_t *f, size_t n);

/* A request's Pragma: no-cache counts as Cache-Control: no-cache when the
 * request has no Cache-Control field (§5.4). Returns 1 when it applies. */
int http_cache_pragma_no_cache(const http_field_t *f, size_t n);

/* The first field named `name` (a lower-case C string, matched without
 * case) of a list; NULL if none. */
const http_field_t *http_fields_find(const http_field_t *f, size_t n, const char *name);

/* May a response with status `status` and fields res[0..nres), to a
 * request with method `method` and fields req[0..nreq), be stored (§3)?
 * `shared` selects the rules of a shared cache (private and Authorization).
 * Returns 1, or 0 with *why set to a short static reason ("no-store",
 * "method not cacheable", "Vary: *", ...). Only GET responses with a final
 * status other than 206 are stored; a response needs explicit freshness,
 * public, private (private cache), or a heuristically cacheable status
 * (RFC 9110 §15.1; its lifetime may still be 0 without Last-Modified). */
int http_cache_storable(enum http_method method, const http_field_t *req, size_t nreq,
                        int status, const http_field_t *res, size_t nres, int shared,
                        const char **why);

/* Status codes heuristically cacheable (RFC 9110 §15.1). */
int http_cache_status_heuristic(int status);

/* The freshness lifetime in seconds (§4.2.1): s-maxage (shared), max-age,
 * Expires - Date (Date missing: response_time), else the heuristic when
 * allowed (status heuristically cacheable or public, Last-Modified before
 * Date): 10% of the difference, at most HTTP_CACHE_HEURISTIC_MAX; else 0.
 * An invalid Cache-Control or Expires gives 0. *heuristic (may be NULL) is
 * set when the heuristic gave the value. */
int64_t http_cache_freshness(int status, const http_field_t *res, size_t nres, int shared,
                             time_t response_time, int *heuristic);

/* corrected_initial_age of §4.2.3, computed once when the response
 * arrives: max(apparent_age, Age + response_delay), where apparent_age is
 * max(0, response_time - Date) and response_delay response_time -
 * request_time. A missing or bad Age counts as 0; a missing Date as
 * response_time. */
int64_t http_cache_initial_age(const http_field_t *res, size_t nres, time_t request_time,
                               time_t response_time);

/* current_age of §4.2.3: initial_age + (now - response_time), never
 * negative, clamped to HTTP_CACHE_DELTA_MAX. */
int64_t http_cache_age(int64_t initial_age, time_t response_time, time_t now);

enum http_cache_use {
    HTTP_CACHE_USE_FRESH = 0,    /* answer from the store */
    HTTP_CACHE_USE_STALE,        /* stale, but the request allows it (max-stale) */
    HTTP_CACHE_USE_REVALIDATE,   /* ask the origin conditionally first */
};

/* May a stored response of `freshness` and current `age` answer a request
 * with directives req_cc (after Pragma, see http_cache_pragma_no_cache)
 * without asking the origin (§4.2, §5.2.1, §5.2.2)? REVALIDATE when the
 * request says no-cache or max-age below the age or min-fresh more than
 * what is left; when the response says no-cache; when it is stale and
 * says must-revalidate (proxy-revalidate or s-maxage in a shared cache), or
 * the request gives no max-stale covering the staleness. A request with
 * only-if-cached gets REVALIDATE too: the caller answers 504 then. */
enum http_cache_use http_cache_decide(const http_cc_t *req_cc, const http_cc_t *res_cc,
                                      int64_t freshness, int64_t age, int shared);

/* "FRESH", "STALE", "REVALIDATE". */
const char *http_cache_use_name(enum http_cache_use u);

/* Vary (§4.1). Returns -1 when the response's Vary lists "*" (it matches
 * no request), 1 when every field it names has the same value in the
 * request that was stored (sreq) and the new one (req) - values of several
 * fields with that name are one list, compared element by element after
 * trimming whitespace; a field absent from both matches - else 0. */
int http_cache_vary_match(const http_field_t *res, size_t nres, const http_field_t *sreq,
                          size_t nsreq, const http_field_t *req, size_t nreq);

/* Calls fn for each field name listed by the Vary fields of res (trimmed,
 * as written), so a store can keep the request fields they name. Stops and
 * returns fn's value when it is non-zero. */
int http_cache_vary_each(const http_field_t *res, size_t nres,
                         int (*fn)(slice_t name, void *arg), void *arg);

/* When a 304 (or a HEAD response) updates a stored response (§3.2, §4.3.4):
 * 1 when the stored field `name` is kept rather than replaced by the new
 * response's field of that name (Content-Length, Content-Encoding,
 * Content-Type, Content-Range, Transfer-Encoding and the hop-by-hop
 * fields), else 0. */
int http_cache_keep_on_update(slice_t name);

/* A request field that a conditional revalidation needs, from a stored
 * response: its ETag (for If-None-Match) or else Last-Modified (for
 * If-Modified-Since). Returns 1 with *name ("if-none-match" or
 * "if-modified-since") and *value (a slice of res), or 0 when the stored
 * response has no validator. */
int http_cache_validator(const http_field_t *res, size_t nres, const char **name, slice_t *value);

#endif
