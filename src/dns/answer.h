/* answer.h - what a recursive server says to its clients, sans-I/O: the
 * request checked and classified, replies built from resolved messages or
 * the cache, and the address list (--allow) that may use it.
 *
 * Requests (dns_answer_request), in this order:
 *   - shorter than a header, or QR set (a response): dropped, never
 *     answered (two servers must not bounce errors at each other);
 *   - an opcode other than QUERY: NOTIMP;
 *   - a message that does not decode, or not exactly one question, or
 *     OPT as the type: FORMERR;
 *   - EDNS version above 0: BADVERS (RFC 6891 §6.1.3);
 *   - a client the address list does not allow: REFUSED (never an open
 *     resolver);
 *   - a class other than IN: REFUSED; zone transfers (AXFR, IXFR) and
 *     MAILA/MAILB: NOTIMP;
 *   - otherwise the query is to be resolved (RD clear: only from the
 *     cache, REFUSED when it is not there; see dns_answer_cached).
 * Replies copy the ID, RD and CD, set QR and RA, echo the question with
 * the client's letter case, carry an OPT record (DNS_EDNS_PAYLOAD) when
 * the request had one, and never exceed what the client can take over UDP
 * (512, or its EDNS size up to DNS_EDNS_PAYLOAD): a longer one goes as
 * the header and question with TC set, for the client to ask over TCP.
 *
 * Resolved messages handed to dns_answer_build are the shape the
 * iterative resolver builds (dns/iter.h) and dns_answer_clean makes of a
 * forwarder's reply: the question first, records, no OPT. */
#ifndef PORTICO_DNS_ANSWER_H
#define PORTICO_DNS_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "core/sock.h"
#include "dns/cache.h"
#include "dns/limits.h"
#include "dns/msg.h"

/* ----------------------------------------------------- address lists */

typedef struct dns_acl {
    size_t n;
    struct dns_cidr {
        uint8_t family;     /* AF_INET or AF_INET6 */
        uint8_t prefix;
        uint8_t ip[16];
    } e[DNS_ACL_MAX];
} dns_acl_t;

/* Adds "ADDR/BITS" or "ADDR" (a host). Returns 0, -EINVAL (not one, or
 * bits beyond the address) or -ENOSPC (DNS_ACL_MAX already). */
int dns_acl_add(dns_acl_t *a, const char *cidr);

/* 1 if addr (an IPv4-mapped IPv6 address counts as its IPv4 one) is in
 * one of the ranges. */
int dns_acl_allows(const dns_acl_t *a, const addr_t *addr);

/* ----------------------------------------------------------- queries */

typedef struct dns_query {
    uint16_t id;
    uint16_t flags;        /* the client's header flags */
    dns_name_t qname;      /* as sent, letter case kept */
    uint16_t qtype, qclass;
    int edns;              /* the request had an OPT record */
    uint16_t udp_size;     /* its payload size (512 without) */
    int tcp;
} dns_query_t;

enum dns_answer_action {
    DNS_ANSWER_DROP = 0,     /* send nothing */
    DNS_ANSWER_REPLY = 1,    /* send out[0, *outlen) */
    DNS_ANSWER_RESOLVE = 2,  /* resolve q (after dns_answer_cached) */
};

/* Reads a request (see above); allowed says whether the client is in the
 * address list. Fills *q for RESOLVE, and for REPLY writes the error
 * reply into out[0, cap) (cap >= DNS_ANSWER_ERROR_MAX). */
int dns_answer_request(const uint8_t *msg, size_t len, int tcp, int allowed, dns_query_t *q,
                       uint8_t *out, size_t cap, size_t *outlen);

/* Looks q up in the cache at now_s and writes the reply into out[0, cap)
 * (cap >= the largest message for TCP, DNS_MSG_MAX). Returns 1 when
 * answered, 0 on a miss. */
int dns_answer_cached(dns_cache_t *c, uint64_t now_s, const dns_query_t *q, uint8_t *out,
                      size_t cap, size_t *outlen);

/* The reply to q from a resolved message src (its RCODE, its records,
 * TTLs capped at ttl_cap) into out[0, cap). Returns 0, or DNS_E_NOSPACE
 * or DNS_E_ARG (src is not a message about q's question). */
int dns_answer_build(const dns_query_t *q, const uint8_t *src, size_t len, uint32_t ttl_cap,
                     uint8_t *out, size_t cap, size_t *outlen);

/* An error reply (SERVFAIL, REFUSED, ...) to q with its question. */
int dns_answer_error(const dns_query_t *q, unsigned rcode, uint8_t *out, size_t cap,
                     size_t *outlen);

/* A forwarder's reply rebuilt in the resolved shape: its question and
 * records, RCODE and AA, without OPT. Returns 0 or a DNS_E_* code. */
int dns_answer_clean(const uint8_t *msg, size_t len, uint8_t *out, size_t cap, size_t *outlen);

#endif
