/* cache.c - the sharded DNS answer cache (see cache.h). */
#include "dns/cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* One cached reply. data holds the lower-cased key name (name_len bytes)
 * and then the message (len bytes). */
struct entry {
    struct entry *hnext;          /* hash chain; the free list after unlinking */
    struct entry *prev, *next;    /* LRU list, most recent first */
    uint64_t hash;
    uint64_t expire;              /* first second it is no longer returned */
    uint32_t ttl;                 /* as stored */
    uint16_t type, rclass;
    uint8_t negative;             /* DNS_CACHE_POS, _NXDOMAIN or _NODATA */
    uint8_t name_len;
    size_t len;
    size_t cost;
    uint8_t data[];
};

struct shard {
    _Alignas(64) pthread_mutex_t mu;
    struct entry **buckets;
    size_t nbuckets;              /* a power of two */
    struct entry lru;             /* sentinel: lru.next newest, lru.prev oldest */
    size_t cap, bytes, entries;
    uint64_t hits, misses, stored, evictions, expired;
};

struct dns_cache {
    struct shard *shards;
    unsigned nshards;
    uint64_t seed;                /* random per cache: keys cannot be chosen to collide */
};

static const char *const put_reasons[] = {
    [0] = "stored",
    [1] = "stored (negative)",
    [2] = "malformed message",
    [3] = "not a reply to a query",
    [4] = "question does not match",
    [5] = "error RCODE",
    [6] = "truncated (TC)",
    [7] = "negative answer without SOA",
    [8] = "TTL of 0",
    [9] = "larger than the cache allows",
    [10] = "out of memory",
    [11] = "buffer too small",
    [12] = "answer records off the question's chain",
    [13] = "SOA not at or above the name",
};

const char *dns_cache_strerror(int res)
{
    int i = res >= 0 ? res : 1 - res;
    if (i < 0 || (size_t)i >= sizeof put_reasons / sizeof put_reasons[0])
        return "unknown result";
    return put_reasons[i];
}

/* ---------------------------------------------------------------- keys */

static inline uint8_t lower(uint8_t b)
{
    return b >= 'A' && b <= 'Z' ? (uint8_t)(b + 32) : b;
}

/* Length bytes are at most 63, below 'A', so folding the whole wire form
 * only changes letters: equal folded keys are exactly dns_name_eq. */
static void fold(uint8_t *out, const dns_name_t *n)
{
    for (size_t i = 0; i < n->len; i++)
        out[i] = lower(n->wire[i]);
}

static uint64_t key_hash(uint64_t seed, const uint8_t *folded, size_t n, uint16_t type,
                         uint16_t rclass)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ folded[i]) * 0x100000001b3ull;
    h = (h ^ type) * 0x100000001b3ull;
    h = (h ^ rclass) * 0x100000001b3ull;
    /* splitmix64's finalizer: FNV's high bits mix poorly. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

static struct shard *shard_of(dns_cache_t *c, uint64_t h)
{
    return &c->shards[(h >> 32) & (c->nshards - 1)];
}

/* ---------------------------------------------------------- the shards */

static void lru_unlink(struct entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
}

static void lru_push(struct shard *s, struct entry *e)
{
    e->prev = &s->lru;
    e->next = s->lru.next;
    s->lru.next->prev = e;
    s->lru.next = e;
}

static struct entry **find_slot(struct shard *s, uint64_t h, const uint8_t *folded,
                                size_t name_len, uint16_t type, uint16_t rclass)
{
    struct entry **pp = &s->buckets[h & (s->nbuckets - 1)];
    for (; *pp != NULL; pp = &(*pp)->hnext) {
        struct entry *e = *pp;
        if (e->hash == h && e->type == type && e->rclass == rclass &&
            e->name_len == name_len && memcmp(e->data, folded, name_len) == 0)
            return pp;
    }
    return pp;
}

/* Unlinks the entry *pp from its chain and the LRU list, and puts it on
 * the list `dead` to be freed once the lock is dropped. */
static void drop(struct shard *s, struct entry **pp, struct entry **dead)
{
    struct entry *e = *pp;
    *pp = e->hnext;
    lru_unlink(e);
    s->bytes -= e->cost;
    s->entries--;
    e->hnext = *dead;
    *dead = e;
}

static struct entry **slot_of(struct shard *s, struct entry *e)
{
    struct entry **pp = &s->buckets[e->hash & (s->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    return pp;
}

static void grow(struct shard *s)
{
    size_t n = s->nbuckets * 2;
    struct entry **nb = calloc(n, sizeof *nb);
    if (nb == NULL)
        return;             /* longer chains, still correct */
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct entry *e = s->buckets[i];
        while (e != NULL) {
            struct entry *next = e->hnext;
            struct entry **head = &nb[e->hash & (n - 1)];
            e->hnext = *head;
            *head = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = nb;
    s->nbuckets = n;
}

static void free_list(struct entry *e)
{
    while (e != NULL) {
        struct entry *next = e->hnext;
        free(e);
        e = next;
    }
}

/* ----------------------------------------------------------- lifecycle */

dns_cache_t *dns_cache_new_shards(size_t max_bytes, unsigned shards)
{
    if (shards == 0 || shards > DNS_CACHE_SHARDS_MAX || (shards & (shards - 1)) != 0)
        return NULL;
    dns_cache_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->shards = aligned_alloc(_Alignof(struct shard), shards * sizeof(struct shard));
    if (c->shards == NULL) {
        free(c);
        return NULL;
    }
    memset(c->shards, 0, shards * sizeof(struct shard));
    /* Without the kernel's randomness (never after boot), the addresses
     * ASLR gave still vary per process. */
    if (getrandom(&c->seed, sizeof c->seed, GRND_NONBLOCK) != (ssize_t)sizeof c->seed)
        c->seed = (uint64_t)(uintptr_t)c ^ ((uint64_t)(uintptr_t)&c->seed << 17);
    for (unsigned i = 0; i < shards; i++) {
        struct shard *s = &c->shards[i];
        s->buckets = calloc(DNS_CACHE_BUCKETS_MIN, sizeof *s->buckets);
        if (s->buckets == NULL || pthread_mutex_init(&s->mu, NULL) != 0) {
            free(s->buckets);
            for (unsigned j = 0; j < i; j++) {
                pthread_mutex_destroy(&c->shards[j].mu);
                free(c->shards[j].buckets);
            }
            free(c->shards);
            free(c);
            return NULL;
        }
        c->nshards = i + 1;
        s->nbuckets = DNS_CACHE_BUCKETS_MIN;
        s->lru.next = s->lru.prev = &s->lru;
        s->cap = max_bytes / shards;
    }
    return c;
}

dns_cache_t *dns_cache_new(size_t max_bytes)
{
    return dns_cache_new_shards(max_bytes, DNS_CACHE_SHARDS);
}

void dns_cache_free(dns_cache_t *c)
{
    if (c == NULL)
        return;
    for (unsigned i = 0; i < c->nshards; i++) {
        struct shard *s = &c->shards[i];
        struct entry *e = s->lru.next;
        while (e != &s->lru) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(c->shards);
    free(c);
}

size_t dns_cache_entry_cost(const dns_name_t *name, size_t msg_len)
{
    return sizeof(struct entry) + name->len + msg_len;
}

/* ------------------------------------------------------ classification */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t sane_ttl(uint32_t t)
{
    return t > DNS_TTL_SANE_MAX ? 0 : t;
}

/* Walks `count` records from *off. Sets *min_ttl to the smallest TTL seen
 * (unchanged when none), and when soa_ttl is given, the TTL and MINIMUM
 * of the first SOA (*has_soa). Returns 0, or -1 if the walk overruns. */
static int walk_rrs(const uint8_t *m, size_t len, size_t *off, unsigned count,
                    uint32_t *min_ttl, int *has_soa, uint32_t *soa_ttl, uint32_t *soa_min)
{
    for (unsigned i = 0; i < count; i++) {
        size_t o = dns_name_skip(m, len, *off);
        if (o + 10 > len)
            return -1;
        uint16_t type = (uint16_t)(m[o] << 8 | m[o + 1]);
        uint32_t ttl = sane_ttl(rd32(m + o + 4));
        size_t rdlen = (size_t)m[o + 8] << 8 | m[o + 9];
        o += 10;
        if (o + rdlen > len)
            return -1;
        if (ttl < *min_ttl)
            *min_ttl = ttl;
        if (has_soa != NULL && !*has_soa && type == DNS_T_SOA && rdlen >= 22) {
            /* MINIMUM is the last field, whatever the names' compression. */
            *has_soa = 1;
            *soa_ttl = ttl;
            *soa_min = sane_ttl(rd32(m + o + rdlen - 4));
        }
        *off = o + rdlen;
    }
    return 0;
}

/* The chain of names an answer section may hold records for: the name
 * asked and every CNAME target from it. Returns the count in chain[]. */
static size_t answer_chain(const dns_rrs_t *an, const dns_name_t *name, uint16_t type,
                           dns_name_t *chain, size_t max)
{
    size_t n = 1;
    chain[0] = *name;
    while (type != DNS_T_CNAME && n < max) {
        const dns_rr_t *cn = NULL;
        for (size_t i = 0; i < an->n && cn == NULL; i++)
            if (an->rr[i].type == DNS_T_CNAME && dns_name_eq(&an->rr[i].name, &chain[n - 1]))
                cn = &an->rr[i];
        if (cn == NULL)
            break;
        for (size_t k = 0; k < n; k++)
            if (dns_name_eq(&chain[k], &cn->target))
                return n; /* a loop: the records on it are still on the chain */
        chain[n++] = cn->target;
    }
    return n;
}

static int on_chain(const dns_name_t *chain, size_t n, const dns_name_t *owner)
{
    for (size_t k = 0; k < n; k++)
        if (dns_name_eq(&chain[k], owner))
            return 1;
    return 0;
}

/* What must hold before a reply is stored: every answer record is owned
 * by a name on the chain from the question and is of the type asked or a
 * CNAME, a positive reply has a record owned by the name asked, and the
 * SOA of a negative one is at or above a name of the chain (RFC 2308 §2:
 * the zone's). Returns 0 or a DNS_CACHE_E_* code. */
static int check_records(const uint8_t *msg, size_t len, const dns_header_t *h,
                         const dns_name_t *name, uint16_t type)
{
    dns_question_t q;
    dns_msg_t m;
    dns_name_t chain[DNS_CACHE_CHAIN_MAX + 1];
    memset(&m, 0, sizeof m);
    m.qd = &q;
    m.qd_cap = 1;
    m.sec[DNS_SEC_AN].cap = h->ancount;
    m.sec[DNS_SEC_NS].cap = h->nscount;
    m.sec[DNS_SEC_AN].rr = h->ancount ? malloc(h->ancount * sizeof(dns_rr_t)) : NULL;
    m.sec[DNS_SEC_NS].rr = h->nscount ? malloc(h->nscount * sizeof(dns_rr_t)) : NULL;
    int r = DNS_CACHE_E_NOMEM;
    if ((h->ancount && m.sec[DNS_SEC_AN].rr == NULL) ||
        (h->nscount && m.sec[DNS_SEC_NS].rr == NULL) || dns_msg_decode(msg, len, &m) != 0)
        goto out;
    const dns_rrs_t *an = &m.sec[DNS_SEC_AN], *ns = &m.sec[DNS_SEC_NS];
    size_t n = answer_chain(an, name, type, chain, DNS_CACHE_CHAIN_MAX + 1);
    int first = 0;
    r = DNS_CACHE_E_ANSWER;
    for (size_t i = 0; i < an->n; i++) {
        const dns_rr_t *rr = &an->rr[i];
        if (!on_chain(chain, n, &rr->name) ||
            (rr->type != type && rr->type != DNS_T_CNAME && type != DNS_T_ANY))
            goto out;
        first |= dns_name_eq(&rr->name, name);
    }
    if (an->n > 0 && !first)
        goto out;
    if (m.rcode == DNS_R_NXDOMAIN || an->n == 0) {
        r = DNS_CACHE_E_SOA_ZONE;
        for (size_t i = 0; i < ns->n; i++)
            if (ns->rr[i].type == DNS_T_SOA) {
                int ok = 0;
                for (size_t k = 0; k < n && !ok; k++)
                    ok = dns_name_under(&chain[k], &ns->rr[i].name);
                if (!ok)
                    goto out;
                break; /* only the first SOA counts, as in classify */
            }
    }
    r = 0;
out:
    free(m.sec[DNS_SEC_AN].rr);
    free(m.sec[DNS_SEC_NS].rr);
    return r;
}

/* Decides what a reply is worth caching as: *kind and *ttl, or a
 * DNS_CACHE_E_* code. */
static int classify(const dns_name_t *name, uint16_t type, uint16_t rclass, const uint8_t *msg,
                    size_t len, int *kind, uint32_t *ttl)
{
    dns_question_t q;
    dns_msg_t m;
    memset(&m, 0, sizeof m);
    m.qd = &q;
    m.qd_cap = 1;
    if (dns_msg_decode(msg, len, &m) != 0)
        return DNS_CACHE_E_MALFORMED;
    if (!(m.h.flags & DNS_F_QR) || DNS_F_OPCODE(m.h.flags) != 0)
        return DNS_CACHE_E_NOT_REPLY;
    if (m.rcode != DNS_R_NOERROR && m.rcode != DNS_R_NXDOMAIN)
        return DNS_CACHE_E_RCODE;
    if (m.h.flags & DNS_F_TC)
        return DNS_CACHE_E_TC;
    if (m.nqd != 1 || m.qd_skipped != 0 || q.qtype != type || q.qclass != rclass ||
        !dns_name_eq(&q.name, name))
        return DNS_CACHE_E_QUESTION;
    int chk = check_records(msg, len, &m.h, name, type);
    if (chk < 0)
        return chk;

    size_t off = dns_name_skip(msg, len, DNS_HEADER_LEN) + 4;
    uint32_t an_min = UINT32_MAX, ns_min = UINT32_MAX, soa_ttl = 0, soa_min = 0;
    int has_soa = 0;
    if (walk_rrs(msg, len, &off, m.h.ancount, &an_min, NULL, NULL, NULL) != 0 ||
        walk_rrs(msg, len, &off, m.h.nscount, &ns_min, &has_soa, &soa_ttl, &soa_min) != 0)
        return DNS_CACHE_E_MALFORMED;

    if (m.rcode == DNS_R_NOERROR && m.h.ancount > 0) {
        *kind = DNS_CACHE_POS;
        *ttl = an_min < DNS_CACHE_TTL_MAX ? an_min : DNS_CACHE_TTL_MAX;
    } else {
        *kind = m.rcode == DNS_R_NXDOMAIN ? DNS_CACHE_NXDOMAIN : DNS_CACHE_NODATA;
        if (!has_soa)
            return DNS_CACHE_E_NO_SOA;
        uint32_t t = soa_ttl < soa_min ? soa_ttl : soa_min;
        if (an_min < t)
            t = an_min;     /* CNAMEs that led to the negative answer */
        *ttl = t < DNS_CACHE_NEG_TTL_MAX ? t : DNS_CACHE_NEG_TTL_MAX;
    }
    return *ttl == 0 ? DNS_CACHE_E_TTL_ZERO : 0;
}

/* ----------------------------------------------------------- put / get */

int dns_cache_put(dns_cache_t *c, const dns_name_t *name, uint16_t type, uint16_t rclass,
                  const uint8_t *msg, size_t len, uint64_t now)
{
    int kind;
    uint32_t ttl;
    int r = classify(name, type, rclass, msg, len, &kind, &ttl);
    if (r < 0)
        return r;

    size_t cost = dns_cache_entry_cost(name, len);
    if (cost > c->shards[0].cap)
        return DNS_CACHE_E_TOO_BIG;
    struct entry *e = malloc(sizeof *e + name->len + len);
    if (e == NULL)
        return DNS_CACHE_E_NOMEM;
    fold(e->data, name);
    memcpy(e->data + name->len, msg, len);
    e->hash = key_hash(c->seed, e->data, name->len, type, rclass);
    e->expire = now + ttl;
    e->ttl = ttl;
    e->type = type;
    e->rclass = rclass;
    e->negative = (uint8_t)kind;
    e->name_len = name->len;
    e->len = len;
    e->cost = cost;

    struct shard *s = shard_of(c, e->hash);
    struct entry *dead = NULL;
    pthread_mutex_lock(&s->mu);
    struct entry **pp = find_slot(s, e->hash, e->data, e->name_len, type, rclass);
    if (*pp != NULL)
        drop(s, pp, &dead);       /* replaced: neither evicted nor expired */
    while (s->bytes + cost > s->cap) {
        struct entry *old = s->lru.prev;      /* never the sentinel: cost <= cap */
        if (old->expire <= now)
            s->expired++;
        else
            s->evictions++;
        drop(s, slot_of(s, old), &dead);
    }
    if (s->entries >= s->nbuckets)
        grow(s);
    struct entry **head = &s->buckets[e->hash & (s->nbuckets - 1)];
    e->hnext = *head;
    *head = e;
    lru_push(s, e);
    s->bytes += cost;
    s->entries++;
    s->stored++;
    pthread_mutex_unlock(&s->mu);
    free_list(dead);
    return kind == DNS_CACHE_POS ? DNS_CACHE_STORED : DNS_CACHE_STORED_NEG;
}

int dns_cache_get(dns_cache_t *c, const dns_name_t *name, uint16_t type, uint16_t rclass,
                  uint64_t now, uint8_t *out, size_t cap, size_t *len, uint32_t *ttl_left,
                  int *negative)
{
    uint8_t folded[DNS_NAME_MAX];
    fold(folded, name);
    uint64_t h = key_hash(c->seed, folded, name->len, type, rclass);
    struct shard *s = shard_of(c, h);
    struct entry *dead = NULL;
    int r = 0;

    pthread_mutex_lock(&s->mu);
    struct entry **pp = find_slot(s, h, folded, name->len, type, rclass);
    struct entry *e = *pp;
    if (e != NULL && e->expire <= now) {
        s->expired++;
        drop(s, pp, &dead);
        e = NULL;
    }
    if (e == NULL) {
        s->misses++;
    } else if (e->len > cap) {
        *len = e->len;
        r = DNS_CACHE_E_NOSPACE;
    } else {
        memcpy(out, e->data + e->name_len, e->len);
        *len = e->len;
        /* A thread whose clock read is older than the put's could see more
         * than the TTL left: never report more than was stored. */
        uint64_t left = e->expire - now;
        if (ttl_left != NULL)
            *ttl_left = left < e->ttl ? (uint32_t)left : e->ttl;
        if (negative != NULL)
            *negative = e->negative;
        lru_unlink(e);
        lru_push(s, e);
        s->hits++;
        r = 1;
    }
    pthread_mutex_unlock(&s->mu);
    free_list(dead);
    return r;
}

void dns_cache_stats(dns_cache_t *c, dns_cache_stats_t *st)
{
    memset(st, 0, sizeof *st);
    for (unsigned i = 0; i < c->nshards; i++) {
        struct shard *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        st->hits += s->hits;
        st->misses += s->misses;
        st->stored += s->stored;
        st->evictions += s->evictions;
        st->expired += s->expired;
        st->entries += s->entries;
        st->bytes += s->bytes;
        pthread_mutex_unlock(&s->mu);
    }
}
