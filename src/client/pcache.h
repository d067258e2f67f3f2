/* pcache.h - the private HTTP cache of `portico get --cache DIR`: the
 * rules of http/cachectl.h (RFC 9111, private: shared = 0) applied to the
 * entries of client/store.h. Blocking file I/O, like the store.
 *
 *     pcache_lookup(dir, key, request fields, now, &l)
 *         HIT         answer from l.entry (l.res is its head)
 *         REVALIDATE  send the request with l.validator_name: l.validator;
 *                     a 304 goes to pcache_update(), then answer from l
 *         MISS        send the request as it is
 *     on the final response: pcache_store_begin() when it may be stored,
 *         store_write() the body, store_commit() at its end
 *     pcache_lookup_dispose(&l) */
#ifndef PORTICO_CLIENT_PCACHE_H
#define PORTICO_CLIENT_PCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "client/store.h"
#include "core/buf.h"
#include "http/response.h"

#define PCACHE_MAX_FIELDS  200           /* fields of a stored head */
#define PCACHE_VARY_MAX    8192u         /* request fields kept for Vary */

enum pcache_verdict { PCACHE_MISS = 0, PCACHE_HIT, PCACHE_REVALIDATE };

typedef struct pcache_lookup {
    enum pcache_verdict verdict;
    const char *why;            /* for -v: why a miss, or "" */
    int dropped;                /* a torn or corrupt entry was removed */
    int have_entry;             /* entry, res and fields are valid */
    store_entry_t entry;
    http_response_t res;        /* the stored head; slices into entry.meta */
    http_field_t fields[PCACHE_MAX_FIELDS];
    int64_t age, freshness;
    int stale_ok;               /* HIT because the request's max-stale allows it */
    const char *validator_name; /* REVALIDATE: "If-None-Match" or "If-Modified-Since" */
    slice_t validator;          /* its value, a slice of the entry */
} pcache_lookup_t;

/* Looks up key (the absolute URL) for a GET with request fields req and
 * decides at wall-clock time `now`. Fills *l (dispose it in every case). */
void pcache_lookup(const char *dir, slice_t key, const http_field_t *req, size_t nreq,
                   time_t now, pcache_lookup_t *l);

void pcache_lookup_dispose(pcache_lookup_t *l);

/* Starts storing the final response `res` to a GET with fields req when it
 * may be stored (a no-store response also removes the old entry). Returns
 * 1 with w open, 0 with *why set (not storable, or the store failed). */
int pcache_store_begin(store_writer_t *w, const char *dir, slice_t key, const http_field_t *req,
                       size_t nreq, const http_response_t *res, time_t request_time,
                       time_t response_time, const char **why);

/* A 304 answered the revalidation of l's entry: the stored fields are
 * replaced by the 304's of the same name (except those §3.2 keeps), the
 * entry rewritten with the new times, and l made to describe the new one.
 * Returns 0, or -errno when the new entry could not be written (l still
 * describes the old one, which may be served). */
int pcache_update(pcache_lookup_t *l, const char *dir, slice_t key, const http_response_t *r304,
                  time_t request_time, time_t response_time);

/* Writes "HTTP/1.1 STATUS REASON\r\n", the fields and the empty line into
 * b. Returns 0 or -ENOBUFS/-ENOMEM. */
int pcache_head_text(buf_t *b, int status, slice_t reason, const http_field_t *f, size_t n);

#endif
