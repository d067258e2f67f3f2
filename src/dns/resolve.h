/* resolve.h - the stub resolver on the event loop.
 *
 * dns_resolve_start() runs one dns_stub_t (dns/stub.h) on a loop_t: one
 * UDP socket per address family per lookup, bound to port 0 so that the
 * kernel gives it a random source port, non-blocking and not connected (the
 * stub checks each reply's source against the servers it asked); a TCP
 * connection (non-blocking connect, 2-byte length prefix) when the stub
 * wants one after a truncated reply; one timer from loop_timer_set() for
 * the stub's deadline; 32 random bytes from getrandom() for the query IDs.
 *
 * The callback runs once with the result, at the end of a loop iteration
 * (never from inside dns_resolve_start()), unless the lookup was cancelled
 * first. The result and everything it points to are valid only during the
 * callback. After the callback returns, the handle is gone: it is freed at
 * that safe point of the loop with its sockets and timer. Loop thread only;
 * any number of lookups may run at once on one loop. */
#ifndef PORTICO_DNS_RESOLVE_H
#define PORTICO_DNS_RESOLVE_H

#include <stdint.h>

#include "core/loop.h"
#include "core/slice.h"
#include "dns/conf.h"
#include "dns/iter.h"
#include "dns/stub.h"


typedef struct dns_resolve dns_resolve_t;

/* res->status says what happened; see dns_stub_result_t. r may be given to
 * dns_resolve_stats() during the callback. */
typedef void (*dns_resolve_cb)(dns_resolve_t *r, const dns_stub_result_t *res, void *arg);

/* Starts looking up `name` (presentation form; a trailing dot makes it
 * absolute) for `qtype` on loop l with conf, which must stay valid until
 * the callback has run or the lookup is cancelled. *out (may be NULL) gets
 * the handle. Returns 0, -EINVAL for a name that is not one, -ENOMEM, or
 * the -errno of getrandom(). */
int dns_resolve_start(loop_t *l, const dns_conf_t *conf, slice_t name, uint16_t qtype,
                      dns_resolve_cb cb, void *arg, dns_resolve_t **out);

/* The same for the iterative resolver (dns/iter.h): conf (its hints and
 * cache too) must stay valid until the callback has run or the lookup is
 * cancelled; conf->trace, if set, is called from the loop as steps happen.
 * Every UDP query goes out from a new socket, so from a new random port.
 * Returns 0, -ENOMEM, or the -errno of getrandom(). */
typedef void (*dns_resolve_iter_cb)(dns_resolve_t *r, const dns_iter_result_t *res, void *arg);
int dns_resolve_start_iter(loop_t *l, const dns_iter_conf_t *conf, const dns_name_t *name,
                           uint16_t qtype, dns_resolve_iter_cb cb, void *arg, dns_resolve_t **out);

/* Stops a lookup whose callback has not run yet: it will not run. Closes
 * the sockets now, frees the handle at the end of the iteration. A no-op
 * from inside its own callback. */
void dns_resolve_cancel(dns_resolve_t *r);

/* Replies the stub ignored so far, by reason (NULL for an iterative
 * lookup). */
const dns_stub_stats_t *dns_resolve_stats(const dns_resolve_t *r);

/* UDP datagrams dropped for being longer than DNS_RESOLVE_UDP_RX. */
size_t dns_resolve_dropped(const dns_resolve_t *r);

#endif
