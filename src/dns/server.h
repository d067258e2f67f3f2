/* server.h - the caching recursive DNS server on worker loops: UDP and TCP
 * on one address, requests checked and answered by dns/answer.h, the cache
 * shared by every worker, misses resolved by the iterative resolver or the
 * stub asking forwarders (dns/resolve.h).
 *
 * Each worker has its own UDP socket and TCP listener on the address
 * (SO_REUSEPORT), its own loop, and at most max_inflight resolutions at a
 * time: a request beyond that gets SERVFAIL at once. TCP connections (at
 * most max_tcp per worker) may carry several queries, answered in the order
 * they resolve, and are closed after tcp_idle_ms without a query or when a
 * client does not read its answers (DNS_SERVER_TCP_OUT_MAX unsent). */
#ifndef PORTICO_DNS_SERVER_H
#define PORTICO_DNS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/sock.h"
#include "dns/answer.h"
#include "dns/cache.h"
#include "dns/conf.h"
#include "dns/iter.h"

typedef struct dns_server_conf {
    addr_t listen;              /* port 0: one the kernel picks, the same for UDP and TCP */
    int workers;
    dns_acl_t acl;              /* who may ask */
    const dns_iter_conf_t *iter;   /* resolve iteratively with this ... */
    const dns_conf_t *forward;     /* ... or ask these servers (with RD) */
    dns_cache_t *cache;
    unsigned max_inflight;      /* resolutions per worker */
    unsigned max_tcp;           /* TCP connections per worker */
    uint64_t tcp_idle_ms;
    int quiet;                  /* do not print the listening address */
} dns_server_conf_t;

/* Opens the sockets, prints "portico resolver: listening on ADDR" on
 * stderr, and runs until SIGINT or SIGTERM. Returns 0, or -1 with the
 * reason in err. */
int dns_server_run(const dns_server_conf_t *c, char *err, size_t errlen);

#endif
