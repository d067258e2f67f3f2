/* collapse.h - request collapsing: concurrent cache misses for one key,
 * from any worker, make one upstream request.
 *
 * The first miss for a key becomes its leader and goes upstream; later
 * ones join as waiters. When the leader's response head is known to be
 * storable with a known length, the leader publishes its fill (fill.h):
 * every waiter is woken (loop_post) with the fill, and streams the body
 * from it as it arrives; later misses for the key get the fill at once.
 * Otherwise the waiters are woken when the leader is done (its response
 * stored or found uncacheable, or failed) to look the store up again: a
 * hit is served from it, a miss goes upstream on its own. Thread-safe: one
 * mutex over a small table. */
#ifndef PORTICO_PROXY_COLLAPSE_H
#define PORTICO_PROXY_COLLAPSE_H

#include "core/loop.h"
#include "core/slice.h"
#include "proxy/fill.h"

typedef struct collapse collapse_t;

collapse_t *collapse_new(void);
void collapse_free(collapse_t *c);

/* Joins key: returns 1 when the caller is the leader (call
 * collapse_done(key) when finished), 0 when it was queued as a waiter:
 * wake(arg) will run on loop l, with *fill set (a reference) when the
 * leader published one before; 2 when the leader's fill is published
 * already: *fill is set (a reference), nothing is queued; or -1 when out
 * of memory (go alone). *fill must stay valid while queued. */
int collapse_join(collapse_t *c, slice_t key, loop_t *l, void (*wake)(loop_t *, void *), void *arg,
                  pfill_t **fill);

/* The leader of key stores its response through fill: wakes the waiters
 * with it (each gets a reference), and hands it to later joiners. */
void collapse_publish(collapse_t *c, slice_t key, pfill_t *fill);

/* The leader of key is done: wakes its waiters. */
void collapse_done(collapse_t *c, slice_t key);

#endif
