/* resumable.h - the upload resources of resumable uploads
 * (draft-ietf-httpbis-resumable-upload), shared by all workers.
 *
 * An upload resource is an unnamed temporary file (O_TMPFILE) in the
 * target's directory, its offset (bytes stored so far), its length once
 * known, and what the request that created it asked for (method, path,
 * preconditions), kept in memory under a 128-bit random id. Nothing of it
 * is visible in the served tree until the upload completes and the file is
 * committed like any PUT or POST body (fsync, rename, fsync). A restart
 * loses unfinished uploads: their ids answer 404, and the files were never
 * named.
 *
 * One request at a time writes to a resource: each writer holds a
 * generation number; a newer request (an append, or HEAD asking for the
 * offset) takes the generation, and the older writer's next bytes are
 * refused. So the offset a HEAD reports is the one the next append must
 * give, as the draft requires. The offset never decreases.
 *
 * Expiry: a resource with no writer and no request for `expiry_s` seconds
 * is dropped when the registry is next used (any write request sweeps). */
#ifndef PORTICO_SERVER_RESUMABLE_H
#define PORTICO_SERVER_RESUMABLE_H

#include <stddef.h>
#include <stdint.h>

#include "http/cond.h"
#include "http/parse.h"

#define RUP_ID_LEN 32                   /* hex digits of an upload id */
#define RUP_PREFIX "/.portico-upload/"  /* the URL path of upload resources */

typedef struct rup_registry rup_registry_t;
typedef struct rup rup_t;

/* The state an answer reports. */
struct rup_state {
    uint64_t offset;
    int64_t length;          /* -1 unknown */
    int complete;
    uint64_t max_size;
    uint32_t max_age;        /* seconds left before expiry */
};

rup_registry_t *rup_registry_new(unsigned max, uint32_t expiry_s, uint64_t max_size);
/* Closes every resource's file. No request may hold one any more. */
void rup_registry_free(rup_registry_t *g);

/* Drops expired and dead resources now (also done by rup_create and
 * rup_find); the write handler calls it for every write request. */
void rup_registry_sweep(rup_registry_t *g);

/* Whether path (normalised, plen bytes) names an upload resource; sets
 * *id to its id part. */
int rup_path_id(const char *path, size_t plen, const char **id, size_t *idlen);

/* Creates a resource for a request that is about to write its body into
 * tmpfd (the resource dup()s it). path/method/cond are the request's (the
 * cond strings are copied). length: Upload-Length or Content-Length of a
 * completing request, -1 if unknown. The caller becomes the writer: *gen.
 * Returns the resource with a reference for the caller, or NULL when the
 * registry is full or out of memory (the upload goes on, not resumable). */
rup_t *rup_create(rup_registry_t *g, const char *path, enum http_method method, int tmpfd,
                  int64_t length, const struct http_cond *cond, uint64_t *gen);

/* The resource with this id, with a reference; NULL if none. */
rup_t *rup_find(rup_registry_t *g, const char *id, size_t idlen);
/* Drops a reference from rup_create or rup_find. */
void rup_release(rup_registry_t *g, rup_t *u);

const char *rup_id(const rup_t *u);
/* What the creating request asked for; fixed for the resource's life.
 * The cond's slices point into the resource. */
const char *rup_target(const rup_t *u, enum http_method *method, struct http_cond *cond);

/* An append request wants to write clen bytes (-1 unknown) from `offset`
 * (Upload-Offset), announcing `length` (Upload-Length, or offset + clen
 * when it completes; -1 unknown). It becomes the writer (*gen), and an
 * older writer is cut off. Returns 0, or the refusal: 404 gone, 409 offset
 * mismatch (st->offset is the right one), 400 already complete (*why
 * "completed") or lengths inconsistent (*why "length"), 413 past max-size.
 * st is filled. */
int rup_claim(rup_t *u, int64_t offset, int64_t length, int64_t clen, uint64_t *gen,
              struct rup_state *st, const char **why);

/* HEAD: the state, and any writer is cut off (the offset reported is the
 * one an append must give). Returns 0, or 404 when gone. */
int rup_query(rup_t *u, struct rup_state *st);

/* The writer `gen` appends body bytes at the offset. Returns 0, or a
 * status: 409 another request took over, 413 past max-size, 400 past the
 * announced length (the resource is then dropped: it cannot complete),
 * 5xx/507 for a write error. */
int rup_append(rup_t *u, uint64_t gen, const char *p, size_t n);

/* The writer's body ended. complete: the request said Upload-Complete: ?1
 * and its body arrived whole. For a complete upload whose size matches its
 * length, marks it complete, fills *commitfd with a dup of the file (the
 * caller commits and closes it) and returns 0; a size other than the
 * length gives 400 (*why "length"; the resource is dropped). Otherwise the
 * writer lets go (the data stays) and 0 is returned with *commitfd -1.
 * st is filled. */
int rup_end(rup_t *u, uint64_t gen, int complete, int *commitfd, struct rup_state *st,
            const char **why);

/* DELETE: drops the resource and its data; cuts off any writer. Returns
 * 0, or 404 when it was gone already. */
int rup_cancel(rup_registry_t *g, rup_t *u);

/* Fills st's limits (max_size, max_age) only. */
void rup_limits(const rup_t *u, struct rup_state *st);

/* The registry's limits as an Upload-Limit value (for OPTIONS). */
size_t rup_registry_limit_value(const rup_registry_t *g, char *out, size_t cap);

/* Formats st's limits as an Upload-Limit value. Returns its length. */
size_t rup_limit_value(const struct rup_state *st, char *out, size_t cap);

#endif
