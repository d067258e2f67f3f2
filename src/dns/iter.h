/* iter.h - the iterative resolver, sans-I/O: from the root hints down the
 * delegations to an answer, driven like the stub (dns/stub.h).
 *
 * One dns_iter_t resolves one question (class IN). It sends one query at a
 * time, without RD, with EDNS0 (DNS_EDNS_PAYLOAD), to port conf->port of
 * the servers it learns; the caller sends each tx, feeds back what arrives
 * with dns_iter_input(), calls dns_iter_timeout() at the deadline and
 * dns_iter_fail() when a send or a TCP exchange failed.
 *
 * The walk, for the name being resolved (the one asked, then each CNAME
 * target):
 *   - the cache (conf->cache, may be NULL) is asked first for the name and
 *     type; a hit is used as an answer. Otherwise the closest enclosing
 *     delegation in the cache (key ZONE/NS, a message of the NS set and its
 *     glue) is the starting point, the root hints when there is none;
 *   - a server is asked; its reply is read within the bailiwick of the zone
 *     it serves: only records owned by that zone or below count, the rest
 *     are dropped (counted in dns_iter_stats_t.out_of_bailiwick):
 *       * records of the type for the name: the answer;
 *       * a CNAME for the name: followed inside the reply while the target
 *         stays in the zone, else the walk starts again for the target
 *         (at most DNS_ITER_CNAME_MAX CNAMEs in all);
 *       * NXDOMAIN, or NOERROR with an SOA and nothing else: a negative
 *         answer (the SOA kept when it owns an ancestor of the name, in the
 *         zone);
 *       * NS records for a zone strictly below the server's and at or above
 *         the name: a referral; glue is the A/AAAA records of those NS
 *         names, in the server's bailiwick. The delegation is cached, and
 *         at most DNS_ITER_REFERRALS_MAX are followed per name;
 *       * anything else (an upward or sideways referral, an empty
 *         non-authoritative reply), SERVFAIL, REFUSED and every other
 *         RCODE, a timeout: the server is lame, the next one is asked;
 *       * TC over UDP: the same server again over TCP.
 *   - nameservers that came without glue get their address from the cache
 *     or from a sub-resolution (type A, then AAAA when A gave none; the
 *     same walk, nested at most DNS_ITER_DEPTH_MAX deep, never for a name
 *     already being resolved); they are asked after the servers with
 *     addresses.
 * Every step's answer (the records it took from one reply, or the SOA of a
 * negative one) is cached under its own name and type, so a later lookup
 * of any name on the way starts where this one left off. Everything,
 * sub-resolutions included, is bounded by DNS_ITER_QUERIES_MAX messages.
 *
 * The result is a reply message built from what was found: the question
 * as asked, flags QR and RA, the RCODE; the answer section holds the CNAME
 * chain and the records of the type, the authority section the SOA of a
 * negative answer. TTLs are as received (a cache hit's capped at the time
 * it has left). */
#ifndef PORTICO_DNS_ITER_H
#define PORTICO_DNS_ITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "core/sock.h"
#include "dns/cache.h"
#include "dns/limits.h"
#include "dns/msg.h"
#include "dns/stub.h"

/* ----------------------------------------------------------- root hints */

typedef struct dns_hint {
    dns_name_t name;      /* the server's name (A.ROOT-SERVERS.NET.) */
    uint8_t family;       /* AF_INET or AF_INET6 */
    uint8_t ip[16];
} dns_hint_t;

typedef struct dns_hints {
    size_t n;
    dns_hint_t e[DNS_HINTS_MAX];
} dns_hints_t;

/* The IANA root servers (named.root of 2024), IPv4 then IPv6. */
void dns_hints_builtin(dns_hints_t *h);

/* Reads a root hints file in named.root's zone-file form: per line
 * "OWNER [TTL] [IN] TYPE DATA", ';' comments, blank lines; NS records of
 * the root name the servers, A and AAAA records give their addresses
 * (every address record is kept, in file order). $TTL and $ORIGIN lines
 * are accepted and ignored. Returns the number of addresses (>= 1), or -1
 * with *err_line set to the first bad line (0: no address at all) and
 * *why to the reason. */
int dns_hints_parse(dns_hints_t *h, slice_t text, size_t *err_line, const char **why);

/* ------------------------------------------------------------- resolver */

typedef struct dns_iter dns_iter_t;

/* What a trace event says about one step. */
enum dns_iter_ev {
    DNS_ITER_EV_ANSWER,      /* records of the type (or the end of a chain) */
    DNS_ITER_EV_CNAME,       /* a CNAME leaving the zone: the walk goes on for its target */
    DNS_ITER_EV_REFERRAL,    /* a delegation to `zone` */
    DNS_ITER_EV_NXDOMAIN,
    DNS_ITER_EV_NODATA,
    DNS_ITER_EV_LAME,        /* a reply that is none of the above: next server */
    DNS_ITER_EV_RCODE,       /* SERVFAIL, REFUSED, ...: next server */
    DNS_ITER_EV_TC,          /* truncated: again over TCP */
    DNS_ITER_EV_TIMEOUT,     /* no reply in time: next server */
    DNS_ITER_EV_FAIL,        /* the send or the TCP exchange failed: next server */
    DNS_ITER_EV_CACHE_HIT,   /* the answer for the name came from the cache */
    DNS_ITER_EV_CACHE_ZONE,  /* the walk starts at a cached delegation `zone` */
    DNS_ITER_EV_SUB,         /* a sub-resolution of a nameserver's address starts */
};

typedef struct dns_iter_event {
    enum dns_iter_ev kind;
    unsigned depth;              /* 0 for the name asked, 1.. for sub-resolutions */
    const dns_name_t *qname;     /* the name being resolved at this step */
    uint16_t qtype;
    const dns_name_t *zone;      /* the zone of the server asked (the root before a
                                    sub-resolution has started) */
    const dns_name_t *next;      /* REFERRAL: the zone referred to; CACHE_ZONE: the
                                    cached delegation; NULL otherwise */
    const dns_name_t *server_name; /* NULL for cache events */
    const addr_t *server;        /* NULL for cache events */
    int tcp;
    uint64_t rtt_ms;             /* from the send to this event */
    const dns_msg_t *msg;        /* the reply, decoded (NULL without one); its
                                    sections hold at most DNS_ITER_RR_MAX each */
    unsigned rcode;
} dns_iter_event_t;

typedef struct dns_iter_conf {
    const dns_hints_t *hints;
    dns_cache_t *cache;          /* shared; NULL: none */
    uint16_t port;               /* servers' port: 53 */
    uint64_t timeout_ms;         /* wait for one reply */
    unsigned max_queries;        /* 1..DNS_ITER_QUERIES_MAX */
    /* Called at every step (NULL: not), from inside the dns_iter_* call
     * that made the step. */
    void (*trace)(void *arg, const dns_iter_event_t *ev);
    void *trace_arg;
} dns_iter_conf_t;

/* port 53, DNS_ITER_TIMEOUT_MS, DNS_ITER_QUERIES_MAX, no cache, no trace. */
void dns_iter_conf_init(dns_iter_conf_t *c, const dns_hints_t *hints);

typedef struct dns_iter_tx {
    const uint8_t *msg;          /* valid until the next call into the iter */
    size_t len;                  /* without the TCP length prefix */
    addr_t to;
    int tcp;                     /* 1: over a new TCP connection */
} dns_iter_tx_t;

typedef struct dns_iter_result {
    enum dns_stub_status status; /* OK, NXDOMAIN, NODATA, SERVFAIL (no server
                                    gave an answer), ERROR (a limit) */
    const char *reason;          /* for SERVFAIL and ERROR, static */
    const uint8_t *msg;          /* the built reply (see above); NULL on ERROR
                                    from lack of memory */
    size_t len;
    size_t queries;              /* messages sent */
    int cached;                  /* the whole answer came from the cache */
    uint64_t elapsed_ms;
} dns_iter_result_t;

typedef struct dns_iter_stats {
    size_t ignored;              /* replies not from the server waited for, with
                                    another ID or question, or malformed */
    size_t out_of_bailiwick;     /* records dropped for being outside the zone */
} dns_iter_stats_t;

/* Creates a resolution of `name` (a wire name) and `qtype`. conf (and its
 * hints and cache) must outlive it. Returns NULL when memory runs out. */
dns_iter_t *dns_iter_new(const dns_iter_conf_t *conf, const dns_name_t *name, uint16_t qtype);
void dns_iter_free(dns_iter_t *it);

/* Starts at `now` (ms) with DNS_ITER_RANDOM_LEN random bytes (query IDs,
 * server choice). A cache hit finishes at once. Call once. */
void dns_iter_start(dns_iter_t *it, uint64_t now, const uint8_t *random);

/* Pops the next message to send: 1 and *tx, or 0. */
int dns_iter_next_tx(dns_iter_t *it, dns_iter_tx_t *tx);

/* A message arrived: a UDP datagram from `from`, or (via_tcp) one whole
 * TCP message from the connection of the last tcp tx. Returns 1 if it was
 * taken, 0 if ignored. */
int dns_iter_input(dns_iter_t *it, uint64_t now, const addr_t *from, const uint8_t *msg,
                   size_t len, int via_tcp);

void dns_iter_timeout(dns_iter_t *it, uint64_t now);
void dns_iter_fail(dns_iter_t *it, uint64_t now);
uint64_t dns_iter_deadline(const dns_iter_t *it);
int dns_iter_done(const dns_iter_t *it);
/* Once done; owned by the iter. */
const dns_iter_result_t *dns_iter_result(const dns_iter_t *it);
const dns_iter_stats_t *dns_iter_stats(const dns_iter_t *it);

#endif
