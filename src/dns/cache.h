/* cache.h - the DNS answer cache shared by worker threads, sans-I/O.
 *
 * Keys are (name, type, class), the name compared without ASCII case
 * (dns_name_eq). A value is the whole reply message as received, so a
 * resolver can rebuild its answer from it (rewriting the ID and the TTLs),
 * with the TTL it is kept for:
 *   - positive (NOERROR with answer records): the smallest TTL of the
 *     answer section, capped at DNS_CACHE_TTL_MAX;
 *   - negative (NXDOMAIN, or NODATA: NOERROR without answers), RFC 2308
 *     §5: min(TTL, MINIMUM) of the first SOA in the authority section,
 *     also no longer than any answer record (the CNAMEs before an
 *     NXDOMAIN), capped at DNS_CACHE_NEG_TTL_MAX. Without an SOA a
 *     negative reply is not cached (this also leaves referrals out).
 * Before anything is stored, the answer section must be about the
 * question: every record owned by the name asked or a CNAME target on the
 * chain from it, of the type asked or CNAME, one of them owned by the name
 * asked; a negative reply's SOA must own the name or one of its ancestors
 * (the zone that can say the name does not exist). The hash of a key is
 * seeded at random per cache, so that names cannot be picked to collide.
 * A TTL over 2^31-1 counts as 0 (RFC 2181 §8); a TTL of 0 is not cached.
 *
 * The cache never reads a clock: every call takes `now`, seconds of a
 * monotonic clock, so tests drive virtual time. An entry put at t with TTL
 * T is returned for t <= now < t + T with T - (now - t) seconds left;
 * expired entries are never returned, and are freed when a lookup finds
 * them or LRU eviction reaches them.
 *
 * The cache is split into shards, each with its own mutex, a hash table
 * and an LRU list; the shard of a key is chosen by a hash of the lower-cased
 * name, type and class. The byte cap (entries' bookkeeping plus name and
 * message bytes, see dns_cache_entry_cost) is split evenly among shards,
 * and a put that would go over its shard's share evicts that shard's least
 * recently used entries (a hit counts as a use). Every function is safe to
 * call from any thread, except dns_cache_free. */
#ifndef PORTICO_DNS_CACHE_H
#define PORTICO_DNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dns/limits.h"
#include "dns/msg.h"

typedef struct dns_cache dns_cache_t;

/* What dns_cache_put did: >= 0 stored, < 0 why not. */
enum dns_cache_put_result {
    DNS_CACHE_STORED = 0,        /* a positive entry */
    DNS_CACHE_STORED_NEG = 1,    /* a negative entry (NXDOMAIN or NODATA) */
    DNS_CACHE_E_MALFORMED = -1,  /* dns_msg_decode refused it */
    DNS_CACHE_E_NOT_REPLY = -2,  /* QR clear, or opcode not QUERY */
    DNS_CACHE_E_QUESTION = -3,   /* not exactly one question, or not the key */
    DNS_CACHE_E_RCODE = -4,      /* SERVFAIL, REFUSED, FORMERR, ... */
    DNS_CACHE_E_TC = -5,         /* truncated */
    DNS_CACHE_E_NO_SOA = -6,     /* negative without an SOA in authority */
    DNS_CACHE_E_TTL_ZERO = -7,   /* the TTL works out at 0 */
    DNS_CACHE_E_TOO_BIG = -8,    /* larger than a shard's share of the cap */
    DNS_CACHE_E_NOMEM = -9,      /* malloc failed */
    DNS_CACHE_E_NOSPACE = -10,   /* get: the caller's buffer is too small */
    DNS_CACHE_E_ANSWER = -11,    /* answer records not on the question's CNAME
                                    chain, or none owned by the name asked */
    DNS_CACHE_E_SOA_ZONE = -12,  /* negative answer whose SOA is not at or
                                    above the names of the chain */
};

/* What a get found: 0 positive, or the kind of negative entry. */
enum { DNS_CACHE_POS = 0, DNS_CACHE_NXDOMAIN = 1, DNS_CACHE_NODATA = 2 };

/* The static reason for a DNS_CACHE_* result. */
const char *dns_cache_strerror(int res);

typedef struct dns_cache_stats {
    uint64_t hits;        /* gets that returned an entry */
    uint64_t misses;      /* gets that did not (expired ones included) */
    uint64_t stored;      /* puts that stored an entry */
    uint64_t evictions;   /* entries dropped for room (LRU) */
    uint64_t expired;     /* expired entries freed */
    size_t entries;       /* entries held now */
    size_t bytes;         /* their dns_cache_entry_cost, summed */
} dns_cache_stats_t;

/* A cache of at most max_bytes in DNS_CACHE_SHARDS shards. NULL when
 * memory runs out. */
dns_cache_t *dns_cache_new(size_t max_bytes);

/* The same with `shards` shards: a power of two, 1..DNS_CACHE_SHARDS_MAX
 * (NULL otherwise). One shard makes the LRU order global, for tests. */
dns_cache_t *dns_cache_new_shards(size_t max_bytes, unsigned shards);

/* Frees every entry and the cache. No other thread may be using it. */
void dns_cache_free(dns_cache_t *c);

/* The bytes an entry for this name and a message of msg_len bytes counts
 * against the cap. */
size_t dns_cache_entry_cost(const dns_name_t *name, size_t msg_len);

/* Decodes the reply msg[0, len) to the question (name, type, rclass) and
 * caches a copy of it if it can be, replacing any entry of that key.
 * Returns DNS_CACHE_STORED, DNS_CACHE_STORED_NEG or a DNS_CACHE_E_* code
 * (then an older entry of the key, if any, is left as it was). */
int dns_cache_put(dns_cache_t *c, const dns_name_t *name, uint16_t type, uint16_t rclass,
                  const uint8_t *msg, size_t len, uint64_t now);

/* Looks up the key at `now`. On a hit, copies the message as stored (ID
 * and TTLs as received) into out[0, cap), sets *len, *ttl_left (1.. the
 * TTL the entry was stored with: a resolver sets each record's TTL to
 * min(its TTL, *ttl_left) or decrements it by the time elapsed) and
 * *negative (DNS_CACHE_POS, DNS_CACHE_NXDOMAIN or DNS_CACHE_NODATA), and
 * returns 1. ttl_left and negative may be NULL. Returns 0 on a miss, or
 * DNS_CACHE_E_NOSPACE with *len set to the size needed when cap is too
 * small (counted neither as a hit nor a miss, recency unchanged). */
int dns_cache_get(dns_cache_t *c, const dns_name_t *name, uint16_t type, uint16_t rclass,
                  uint64_t now, uint8_t *out, size_t cap, size_t *len, uint32_t *ttl_left,
                  int *negative);

/* Sums the shards' counters (each shard read under its lock, so the sum is
 * not one instant's when other threads are busy). */
void dns_cache_stats(dns_cache_t *c, dns_cache_stats_t *st);

#endif
