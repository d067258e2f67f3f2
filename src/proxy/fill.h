/* fill.h - a response being stored by one request (the collapsing
 * leader) and read, while it arrives, by others on any worker thread (its
 * collapsed waiters), as Varnish streams a busy object to its waiters.
 *
 * The leader appends body bytes to the object (pstore_obj_append, under
 * the fill's mutex) and ends the fill, complete or failed. A reader asks
 * for the bytes past its offset: they are handed to its callback under the
 * mutex (the callback copies them: hs_stream_write), or, when it has
 * caught up, it is parked and woken once (loop_post on its own loop) at
 * the next append or the end. Thread-safe; reference-counted. */
#ifndef PORTICO_PROXY_FILL_H
#define PORTICO_PROXY_FILL_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "proxy/pstore.h"

typedef struct pfill pfill_t;

/* A reader's place in the list of parked readers: owned by the reader,
 * valid while it is parked. */
struct pfill_waiter {
    struct pfill_waiter *next;
    loop_t *loop;
    void (*wake)(loop_t *, void *);
    void *arg;
};

/* A fill of o (a reference is taken) whose body will be `total` bytes.
 * Returns NULL when out of memory. refs 1. */
pfill_t *pfill_new(pstore_obj_t *o, uint64_t total);
void pfill_ref(pfill_t *f);
void pfill_release(pfill_t *f);

/* The object being filled (its head fields are final; its body is read
 * through pfill_read only) and the body's announced length. */
pstore_obj_t *pfill_obj(const pfill_t *f);
uint64_t pfill_total(const pfill_t *f);

/* Leader: appends body bytes (at most max in all). Returns 0, or -1 when
 * out of memory or past max: the fill has failed then (readers are cut). */
int pfill_append(pfill_t *f, const char *p, size_t n, uint64_t max);
/* Leader: the body is complete (ok 1) or will never be (ok 0). Only the
 * first call counts. */
void pfill_end(pfill_t *f, int ok);

enum { PFILL_DATA, PFILL_END, PFILL_FAILED, PFILL_PARKED };

/* Reader: hands out(ctx, p, n) the bytes from *off on (at most max) and
 * advances *off: PFILL_DATA. Else PFILL_END (*off is at the end of a
 * complete body), PFILL_FAILED, or PFILL_PARKED: w (filled in by the
 * caller) is parked, and w->wake(w->loop, w->arg) will be posted once when
 * more bytes or the end come. */
int pfill_read(pfill_t *f, uint64_t *off, size_t max, void (*out)(void *ctx, const char *p, size_t n),
               void *ctx, struct pfill_waiter *w);

/* Reader leaving: takes w out of the parked list. Returns 1 when it was
 * there (no wake will come), 0 when it was not (a wake parked before is
 * already posted, or it was never parked). */
int pfill_unpark(pfill_t *f, struct pfill_waiter *w);

#endif
