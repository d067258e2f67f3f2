/* iter.c - the iterative resolver's state machine (see iter.h). */
#include "dns/iter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- names */


/* The name without its first label; the root stays the root. */
static void name_parent(dns_name_t *out, const dns_name_t *n)
{
    if (n->len <= 1) {
        *out = *n;
        return;
    }
    size_t skip = 1u + n->wire[0];
    out->len = (uint8_t)(n->len - skip);
    memmove(out->wire, n->wire + skip, out->len);
}

/* ------------------------------------------------------------ hints */

static const struct { const char *name, *v4, *v6; } root_servers[] = {
    { "a.root-servers.net.", "198.41.0.4", "2001:503:ba3e::2:30" },
    { "b.root-servers.net.", "170.247.170.2", "2801:1b8:10::b" },
    { "c.root-servers.net.", "192.33.4.12", "2001:500:2::c" },
    { "d.root-servers.net.", "199.7.91.13", "2001:500:2d::d" },
    { "e.root-servers.net.", "192.203.230.10", "2001:500:a8::e" },
    { "f.root-servers.net.", "192.5.5.241", "2001:500:2f::f" },
    { "g.root-servers.net.", "192.112.36.4", "2001:500:12::d0d" },
    { "h.root-servers.net.", "198.97.190.53", "2001:500:1::53" },
    { "i.root-servers.net.", "192.36.148.17", "2001:7fe::53" },
    { "j.root-servers.net.", "192.58.128.30", "2001:503:c27::2:30" },
    { "k.root-servers.net.", "193.0.14.129", "2001:7fd::1" },
    { "l.root-servers.net.", "199.7.83.42", "2001:500:9f::42" },
    { "m.root-servers.net.", "202.12.27.33", "2001:dc3::35" },
};

static int hint_add(dns_hints_t *h, const dns_name_t *name, int family, const char *ip)
{
    if (h->n == DNS_HINTS_MAX)
        return -1;
    dns_hint_t *e = &h->e[h->n];
    memset(e, 0, sizeof *e);
    if (inet_pton(family, ip, e->ip) != 1)
        return -1;
    e->name = *name;
    e->family = (uint8_t)family;
    h->n++;
    return 0;
}

void dns_hints_builtin(dns_hints_t *h)
{
    size_t n = sizeof root_servers / sizeof root_servers[0];
    h->n = 0;
    for (int v6 = 0; v6 < 2; v6++)
        for (size_t i = 0; i < n; i++) {
            dns_name_t name;
            dns_name_parse(&name, slice_cstr(root_servers[i].name));
            hint_add(h, &name, v6 ? AF_INET6 : AF_INET, v6 ? root_servers[i].v6 : root_servers[i].v4);
        }
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Splits a line (comment removed) into at most `max` tokens. Returns the
 * count, or max + 1 when there are more. */
static size_t tokens(slice_t line, slice_t *tok, size_t max)
{
    size_t n = 0, i = 0;
    while (i < line.len) {
        while (i < line.len && is_space(line.p[i]))
            i++;
        if (i == line.len)
            break;
        size_t s = i;
        while (i < line.len && !is_space(line.p[i]))
            i++;
        if (n == max)
            return max + 1;
        tok[n++] = (slice_t){ line.p + s, i - s };
    }
    return n;
}

static int all_digits(slice_t s)
{
    if (s.len == 0)
        return 0;
    for (size_t i = 0; i < s.len; i++)
        if (s.p[i] < '0' || s.p[i] > '9')
            return 0;
    return 1;
}


/* One record line of a hints file. Returns NULL or the reason. */
static const char *hint_line(dns_hints_t *h, slice_t *tok, size_t n)
{
    if (n > 5)
        return "too many fields";
    if (n < 3)
        return "expected OWNER [TTL] [IN] TYPE DATA";
    dns_name_t owner;
    if (dns_name_parse(&owner, tok[0]) < 0)
        return "bad owner name";
    size_t i = 1;
    if (i < n - 2 && all_digits(tok[i]))
        i++;
    if (i < n - 2 && dns_class_lookup(tok[i]) == DNS_C_IN)
        i++;
    if (i != n - 2)
        return "expected OWNER [TTL] [IN] TYPE DATA";
    slice_t type = tok[i], data = tok[i + 1];
    char ip[64];
    int ty = dns_type_lookup(type);
    if (ty == DNS_T_NS) {
        dns_name_t target;
        if (owner.len != 1)
            return "NS record not owned by the root";
        if (dns_name_parse(&target, data) < 0)
            return "bad NS name";
        return NULL;
    }
    int family = ty == DNS_T_A ? AF_INET : ty == DNS_T_AAAA ? AF_INET6 : 0;
    if (family == 0)
        return "type must be NS, A or AAAA";
    if (data.len >= sizeof ip)
        return "bad address";
    memcpy(ip, data.p, data.len);
    ip[data.len] = '\0';
    if (h->n == DNS_HINTS_MAX)
        return "too many addresses";
    if (hint_add(h, &owner, family, ip) < 0)
        return "bad address";
    return NULL;
}

int dns_hints_parse(dns_hints_t *h, slice_t text, size_t *err_line, const char **why)
{
    h->n = 0;
    size_t lineno = 0, off = 0;
    while (off < text.len) {
        size_t end = off;
        while (end < text.len && text.p[end] != '\n')
            end++;
        slice_t line = { text.p + off, end - off };
        off = end + 1;
        lineno++;
        for (size_t i = 0; i < line.len; i++)
            if (line.p[i] == ';') {
                line.len = i;
                break;
            }
        slice_t tok[6];
        size_t n = tokens(line, tok, 5);
        if (n == 0)
            continue;
        if (tok[0].p[0] == '$') /* $TTL, $ORIGIN: nothing hints need */
            continue;
        const char *bad = hint_line(h, tok, n);
        if (bad != NULL) {
            *err_line = lineno;
            *why = bad;
            return -1;
        }
    }
    if (h->n == 0) {
        *err_line = 0;
        *why = "no A or AAAA record";
        return -1;
    }
    return (int)h->n;
}

/* ------------------------------------------------------------ state */

struct ns_addr {
    uint8_t family;
    uint8_t ip[16];
};

struct ns_entry {
    dns_name_t name;
    struct ns_addr addr[DNS_ITER_ADDR_MAX];
    uint8_t naddr;
    uint8_t tried;         /* a bit per address */
    uint8_t looked_up;     /* address lookups done: 0, 1 (A), 2 (AAAA too) */
};

/* One name being resolved: the one asked, or a nameserver's address. */
struct task {
    dns_name_t qname;      /* the end of the chain so far */
    uint16_t qtype;
    dns_name_t zone;       /* whose servers are in ns[] */
    struct ns_entry ns[DNS_ITER_NS_MAX];
    size_t nns;
    size_t first;          /* entry asked first (spreads the load) */
    unsigned referrals;
    size_t parent_ns;      /* sub-resolution: the parent's entry it fills */
    size_t cur_ns;
};

struct dns_iter {
    const dns_iter_conf_t *conf;
    dns_name_t name;
    uint16_t qtype;
    uint8_t random[DNS_ITER_RANDOM_LEN];
    unsigned nzones;
    int started, done;
    uint64_t t0;
    struct task task[DNS_ITER_DEPTH_MAX + 1];
    size_t ntask;
    unsigned cnames;

    /* The query in flight. */
    uint8_t query[DNS_STUB_QUERY_MAX];
    size_t qlen;
    uint16_t id;
    addr_t to;
    int cur_tcp, waiting, tx_pending;
    uint64_t sent_at, deadline;

    /* The answer being built, and room for cache messages. */
    uint8_t *abuf;
    dns_builder_t ab;
    int overflow;
    uint8_t *scratch;      /* messages being written to the cache */
    uint8_t *fetch;        /* the message last read from the cache */

    dns_iter_result_t res;
    dns_iter_stats_t stats;
};

void dns_iter_conf_init(dns_iter_conf_t *c, const dns_hints_t *hints)
{
    memset(c, 0, sizeof *c);
    c->hints = hints;
    c->port = 53;
    c->timeout_ms = DNS_ITER_TIMEOUT_MS;
    c->max_queries = DNS_ITER_QUERIES_MAX;
}

static struct task *top(dns_iter_t *it) { return &it->task[it->ntask - 1]; }

static int answer_init(dns_iter_t *it)
{
    int rc = dns_builder_init(&it->ab, it->abuf, DNS_MSG_MAX, 0, DNS_F_QR | DNS_F_RA);
    if (rc == 0)
        rc = dns_builder_question(&it->ab, &it->name, it->qtype, DNS_C_IN);
    return rc;
}

dns_iter_t *dns_iter_new(const dns_iter_conf_t *conf, const dns_name_t *name, uint16_t qtype)
{
    dns_iter_t *it = calloc(1, sizeof *it);
    if (it == NULL)
        return NULL;
    it->abuf = malloc(DNS_MSG_MAX);
    it->scratch = malloc(DNS_MSG_MAX);
    it->fetch = malloc(DNS_MSG_MAX);
    if (it->abuf == NULL || it->scratch == NULL || it->fetch == NULL) {
        dns_iter_free(it);
        return NULL;
    }
    it->conf = conf;
    it->name = *name;
    it->qtype = qtype;
    it->deadline = UINT64_MAX;
    answer_init(it);
    return it;
}

void dns_iter_free(dns_iter_t *it)
{
    if (it == NULL)
        return;
    free(it->abuf);
    free(it->scratch);
    free(it->fetch);
    free(it);
}

uint64_t dns_iter_deadline(const dns_iter_t *it) { return it->deadline; }
int dns_iter_done(const dns_iter_t *it) { return it->done; }
const dns_iter_result_t *dns_iter_result(const dns_iter_t *it) { return it->done ? &it->res : NULL; }
const dns_iter_stats_t *dns_iter_stats(const dns_iter_t *it) { return &it->stats; }

int dns_iter_next_tx(dns_iter_t *it, dns_iter_tx_t *tx)
{
    if (!it->tx_pending)
        return 0;
    it->tx_pending = 0;
    *tx = (dns_iter_tx_t){ it->query, it->qlen, it->to, it->cur_tcp };
    return 1;
}

/* ------------------------------------------------------------ events */

static void emit(dns_iter_t *it, uint64_t now, enum dns_iter_ev kind, const dns_msg_t *m,
                 const dns_name_t *next, int with_server)
{
    if (it->conf->trace == NULL)
        return;
    struct task *t = top(it);
    dns_iter_event_t ev = {
        .kind = kind,
        .depth = (unsigned)(it->ntask - 1),
        .qname = &t->qname,
        .qtype = t->qtype,
        .zone = t->zone.len > 0 ? &t->zone : &dns_name_root,
        .next = next,
        .server_name = with_server ? &t->ns[t->cur_ns].name : NULL,
        .server = with_server ? &it->to : NULL,
        .tcp = it->cur_tcp,
        .rtt_ms = with_server ? now - it->sent_at : 0,
        .msg = m,
        .rcode = m ? m->rcode : 0,
    };
    it->conf->trace(it->conf->trace_arg, &ev);
}

/* ------------------------------------------------------------ finish */

static uint64_t secs(uint64_t ms) { return ms / 1000u; }

static void finish(dns_iter_t *it, uint64_t now, enum dns_stub_status st, const char *reason)
{
    unsigned rcode = DNS_R_NOERROR;
    if (st == DNS_STUB_NXDOMAIN)
        rcode = DNS_R_NXDOMAIN;
    else if (st != DNS_STUB_OK && st != DNS_STUB_NODATA)
        rcode = DNS_R_SERVFAIL;
    if (rcode == DNS_R_SERVFAIL)
        answer_init(it); /* no partial chain with a failure */
    dns_builder_set_flags(&it->ab, (uint16_t)(DNS_F_QR | DNS_F_RA | (it->overflow ? DNS_F_TC : 0) |
                                              rcode));
    it->done = 1;
    it->waiting = 0;
    it->tx_pending = 0;
    it->deadline = UINT64_MAX;
    it->res.status = st;
    it->res.reason = reason;
    it->res.msg = it->abuf;
    it->res.len = it->ab.len;
    it->res.cached = it->res.queries == 0;
    it->res.elapsed_ms = now - it->t0;
    /* The whole answer under the name asked, for the next client: a later
     * hit needs no walk along the chain. */
    if (rcode != DNS_R_SERVFAIL && !it->res.cached && !it->overflow && it->conf->cache != NULL)
        dns_cache_put(it->conf->cache, &it->name, it->qtype, DNS_C_IN, it->abuf, it->ab.len,
                      secs(now));
}

/* --------------------------------------------------------- servers */

static void addr_of(addr_t *a, const struct ns_addr *na, uint16_t port)
{
    memset(a, 0, sizeof *a);
    if (na->family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        memcpy(&s4->sin_addr, na->ip, 4);
        a->len = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        memcpy(&s6->sin6_addr, na->ip, 16);
        a->len = sizeof *s6;
    }
}

static int addr_eq(const addr_t *a, const addr_t *b)
{
    if (a->ss.ss_family != b->ss.ss_family)
        return 0;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
    }
    return 0;
}

static struct ns_entry *ns_find(struct task *t, const dns_name_t *n)
{
    for (size_t i = 0; i < t->nns; i++)
        if (dns_name_eq(&t->ns[i].name, n))
            return &t->ns[i];
    return NULL;
}

static struct ns_entry *ns_add(struct task *t, const dns_name_t *n)
{
    struct ns_entry *e = ns_find(t, n);
    if (e != NULL || t->nns == DNS_ITER_NS_MAX)
        return e;
    e = &t->ns[t->nns++];
    memset(e, 0, sizeof *e);
    e->name = *n;
    return e;
}

static void ns_add_addr(struct ns_entry *e, int family, const uint8_t *ip)
{
    size_t n = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < e->naddr; i++)
        if (e->addr[i].family == family && memcmp(e->addr[i].ip, ip, n) == 0)
            return;
    if (e->naddr == DNS_ITER_ADDR_MAX)
        return;
    struct ns_addr *a = &e->addr[e->naddr++];
    memset(a, 0, sizeof *a);
    a->family = (uint8_t)family;
    memcpy(a->ip, ip, n);
}

/* The glue of rr for entry e, if it is an address record of e's name. */
static void ns_glue(struct ns_entry *e, const dns_rr_t *rr)
{
    if (rr->rclass != DNS_C_IN || !dns_name_eq(&rr->name, &e->name))
        return;
    if (rr->type == DNS_T_A)
        ns_add_addr(e, AF_INET, rr->a);
    else if (rr->type == DNS_T_AAAA)
        ns_add_addr(e, AF_INET6, rr->aaaa);
}

static void zone_set(dns_iter_t *it, struct task *t, const dns_name_t *zone)
{
    t->zone = *zone;
    t->nns = 0;
    t->first = it->random[2u * DNS_ITER_QUERIES_MAX + (it->nzones++ % 32u)];
}

static void zone_from_hints(dns_iter_t *it, struct task *t)
{
    const dns_hints_t *h = it->conf->hints;
    zone_set(it, t, &dns_name_root);
    for (size_t i = 0; i < h->n; i++) {
        struct ns_entry *e = ns_add(t, &h->e[i].name);
        if (e != NULL) {
            ns_add_addr(e, h->e[i].family, h->e[i].ip);
            e->looked_up = 2;
        }
    }
}

/* ------------------------------------------------------------ cache */

/* A decoded message with arrays it owns. */
struct decoded {
    dns_question_t q;
    dns_msg_t m;
};

static int decode(struct decoded *d, const uint8_t *msg, size_t len)
{
    memset(d, 0, sizeof *d);
    d->m.qd = &d->q;
    d->m.qd_cap = 1;
    dns_header_t h;
    if (dns_header_decode(msg, len, &h) < 0)
        return -1;
    const uint16_t counts[3] = { h.ancount, h.nscount, h.arcount };
    for (int s = 0; s < 3; s++) {
        size_t cap = counts[s] < DNS_ITER_RR_MAX ? counts[s] : DNS_ITER_RR_MAX;
        if (cap == 0)
            continue;
        d->m.sec[s].rr = malloc(cap * sizeof(dns_rr_t));
        if (d->m.sec[s].rr == NULL)
            return -1;
        d->m.sec[s].cap = cap;
    }
    return dns_msg_decode(msg, len, &d->m) == 0 ? 0 : -1;
}

static void decoded_free(struct decoded *d)
{
    for (int s = 0; s < 3; s++)
        free(d->m.sec[s].rr);
}

/* Caches the records of one step under (name, qtype): an answer section
 * and the SOA of a negative reply. */
static void cache_step(dns_iter_t *it, uint64_t now, const dns_name_t *name, uint16_t qtype,
                       unsigned rcode, const dns_rr_t *const *an, size_t nan, const dns_rr_t *soa)
{
    if (it->conf->cache == NULL)
        return;
    dns_builder_t b;
    int rc = dns_builder_init(&b, it->scratch, DNS_MSG_MAX, 0, (uint16_t)(DNS_F_QR | rcode));
    if (rc == 0)
        rc = dns_builder_question(&b, name, qtype, DNS_C_IN);
    for (size_t i = 0; rc == 0 && i < nan; i++)
        rc = dns_builder_rr(&b, DNS_SEC_AN, an[i]);
    if (rc == 0 && soa != NULL)
        rc = dns_builder_rr(&b, DNS_SEC_NS, soa);
    if (rc == 0)
        dns_cache_put(it->conf->cache, name, qtype, DNS_C_IN, it->scratch, b.len, secs(now));
}

/* Caches a delegation: ZONE/NS with the NS set as the answer, and the glue
 * as additional records. */
static void cache_delegation(dns_iter_t *it, uint64_t now, const dns_name_t *zone,
                             const dns_rr_t *const *ns, size_t nns, const dns_rr_t *const *glue,
                             size_t nglue)
{
    if (it->conf->cache == NULL)
        return;
    dns_builder_t b;
    int rc = dns_builder_init(&b, it->scratch, DNS_MSG_MAX, 0, DNS_F_QR);
    if (rc == 0)
        rc = dns_builder_question(&b, zone, DNS_T_NS, DNS_C_IN);
    for (size_t i = 0; rc == 0 && i < nns; i++)
        rc = dns_builder_rr(&b, DNS_SEC_AN, ns[i]);
    for (size_t i = 0; rc == 0 && i < nglue; i++)
        rc = dns_builder_rr(&b, DNS_SEC_AR, glue[i]);
    if (rc == 0)
        dns_cache_put(it->conf->cache, zone, DNS_T_NS, DNS_C_IN, it->scratch, b.len, secs(now));
}

/* Looks (name, type) up in the cache into it->fetch. Returns it with
 * *len and *ttl_left, or NULL. The next fetch overwrites it: what was read
 * from it must be copied, or used up, before a nested step fetches again. */
static uint8_t *cache_fetch(dns_iter_t *it, uint64_t now, const dns_name_t *name, uint16_t type,
                            size_t *len, uint32_t *ttl_left)
{
    if (it->conf->cache == NULL ||
        dns_cache_get(it->conf->cache, name, type, DNS_C_IN, secs(now), it->fetch, DNS_MSG_MAX,
                      len, ttl_left, NULL) != 1)
        return NULL;
    return it->fetch;
}

/* The closest delegation above the task's name from the cache, else the
 * root hints. */
static void zone_closest(dns_iter_t *it, uint64_t now, struct task *t)
{
    dns_name_t z = t->qname;
    for (;;) {
        size_t len;
        uint32_t left;
        uint8_t *buf = z.len > 1 ? cache_fetch(it, now, &z, DNS_T_NS, &len, &left) : NULL;
        if (buf != NULL) {
            struct decoded d;
            if (decode(&d, buf, len) == 0) {
                zone_set(it, t, &z);
                const dns_rrs_t *an = &d.m.sec[DNS_SEC_AN], *ar = &d.m.sec[DNS_SEC_AR];
                for (size_t i = 0; i < an->n; i++)
                    if (an->rr[i].type == DNS_T_NS)
                        ns_add(t, &an->rr[i].target);
                for (size_t k = 0; k < t->nns; k++)
                    for (size_t i = 0; i < ar->n; i++)
                        ns_glue(&t->ns[k], &ar->rr[i]);
            }
            decoded_free(&d);
            if (t->nns > 0) {
                emit(it, now, DNS_ITER_EV_CACHE_ZONE, NULL, &z, 0);
                return;
            }
        }
        if (z.len <= 1)
            break;
        name_parent(&z, &z);
    }
    zone_from_hints(it, t);
}

/* ------------------------------------------------------------ asking */

static void ask(dns_iter_t *it, uint64_t now);
static void task_begin(dns_iter_t *it, uint64_t now);
static void take_reply(dns_iter_t *it, uint64_t now, const dns_msg_t *m, int from_cache,
                       uint32_t ttl_cap);

static void send_query(dns_iter_t *it, uint64_t now, int tcp)
{
    struct task *t = top(it);
    size_t q = it->res.queries++;
    it->id = (uint16_t)(it->random[2 * q] << 8 | it->random[2 * q + 1]);
    dns_builder_t b;
    dns_edns_t e;
    dns_edns_default(&e);
    dns_builder_init(&b, it->query, sizeof it->query, it->id, 0);
    dns_builder_question(&b, &t->qname, t->qtype, DNS_C_IN);
    dns_builder_edns(&b, &e);
    it->qlen = b.len;
    it->cur_tcp = tcp;
    it->waiting = 1;
    it->tx_pending = 1;
    it->sent_at = now;
    it->deadline = now + it->conf->timeout_ms;
}

/* 1 if a task below the top is resolving this name already. */
static int resolving(const dns_iter_t *it, const dns_name_t *n)
{
    for (size_t i = 0; i < it->ntask; i++)
        if (dns_name_eq(&it->task[i].qname, n))
            return 1;
    return 0;
}

static void task_done(dns_iter_t *it, uint64_t now, enum dns_stub_status st, const char *why);

/* Asks the next server of the top task, or starts a sub-resolution for a
 * nameserver's address, or gives the task up. */
static void ask(dns_iter_t *it, uint64_t now)
{
    it->waiting = 0;
    it->deadline = UINT64_MAX;
    struct task *t = top(it);
    if (it->res.queries >= it->conf->max_queries) {
        finish(it, now, DNS_STUB_ERROR, "query limit reached");
        return;
    }
    for (;;) {
        for (size_t j = 0; j < DNS_ITER_ADDR_MAX; j++)
            for (size_t k = 0; k < t->nns; k++) {
                size_t i = (t->first + k) % t->nns;
                struct ns_entry *e = &t->ns[i];
                if (j >= e->naddr || (e->tried >> j & 1u))
                    continue;
                e->tried |= (uint8_t)(1u << j);
                t->cur_ns = i;
                addr_of(&it->to, &e->addr[j], it->conf->port);
                send_query(it, now, 0);
                return;
            }
        /* Every known address was tried: find one more, the A records of
         * every nameserver without an address first, then their AAAA. */
        struct ns_entry *e = NULL;
        for (uint8_t stage = 0; stage < 2 && e == NULL; stage++)
            for (size_t k = 0; k < t->nns && e == NULL; k++)
                if (t->ns[k].looked_up == stage && t->ns[k].naddr == 0)
                    e = &t->ns[k];
        if (e == NULL)
            break;
        uint16_t qtype = e->looked_up++ == 0 ? DNS_T_A : DNS_T_AAAA;
        size_t len;
        uint32_t left;
        uint8_t *buf = cache_fetch(it, now, &e->name, qtype, &len, &left);
        if (buf != NULL) {
            struct decoded d;
            if (decode(&d, buf, len) == 0)
                for (size_t i = 0; i < d.m.sec[DNS_SEC_AN].n; i++)
                    ns_glue(e, &d.m.sec[DNS_SEC_AN].rr[i]);
            decoded_free(&d);
            continue;
        }
        if (it->ntask > DNS_ITER_DEPTH_MAX || resolving(it, &e->name))
            continue;
        struct task *c = &it->task[it->ntask++];
        memset(c, 0, sizeof *c);
        c->qname = e->name;
        c->qtype = qtype;
        c->parent_ns = (size_t)(e - t->ns);
        emit(it, now, DNS_ITER_EV_SUB, NULL, NULL, 0);
        task_begin(it, now);
        return;
    }
    task_done(it, now, DNS_STUB_SERVFAIL, "no nameserver gave an answer");
}

/* The top task is over. A sub-resolution's addresses are in its parent's
 * entry already; the parent goes on. */
static void task_done(dns_iter_t *it, uint64_t now, enum dns_stub_status st, const char *why)
{
    if (it->ntask == 1) {
        finish(it, now, st, why);
        return;
    }
    it->ntask--;
    ask(it, now);
}

/* Starts (or restarts, after a CNAME) the top task at its name. */
static void task_begin(dns_iter_t *it, uint64_t now)
{
    struct task *t = top(it);
    t->referrals = 0;
    size_t len;
    uint32_t left;
    uint8_t *buf = cache_fetch(it, now, &t->qname, t->qtype, &len, &left);
    if (buf != NULL) {
        struct decoded d;
        int ok = decode(&d, buf, len) == 0;
        if (ok) {
            emit(it, now, DNS_ITER_EV_CACHE_HIT, &d.m, NULL, 0);
            take_reply(it, now, &d.m, 1, left);
        }
        decoded_free(&d);
        if (ok)
            return;
    }
    zone_closest(it, now, t);
    ask(it, now);
}

void dns_iter_start(dns_iter_t *it, uint64_t now, const uint8_t *random)
{
    if (it->started)
        return;
    it->started = 1;
    it->t0 = now;
    memcpy(it->random, random, DNS_ITER_RANDOM_LEN);
    it->ntask = 1;
    struct task *t = &it->task[0];
    memset(t, 0, sizeof *t);
    t->qname = it->name;
    t->qtype = it->qtype;
    task_begin(it, now);
}

/* ----------------------------------------------------------- replies */

/* Adds the records the top task found to what it builds: the answer
 * message for the name asked, addresses for a sub-resolution. */
static void take_final(dns_iter_t *it, const dns_rr_t *const *rr, size_t n, const dns_rr_t *soa,
                       uint32_t ttl_cap)
{
    if (it->ntask > 1) {
        struct task *p = &it->task[it->ntask - 2];
        struct ns_entry *e = &p->ns[top(it)->parent_ns];
        for (size_t i = 0; i < n; i++)
            if (rr[i]->type == DNS_T_A || rr[i]->type == DNS_T_AAAA) {
                dns_rr_t a = *rr[i];
                a.name = e->name; /* the chain's end owns it */
                ns_glue(e, &a);
            }
        return;
    }
    for (size_t i = 0; i <= n; i++) {
        const dns_rr_t *src = i < n ? rr[i] : soa;
        if (src == NULL)
            continue;
        dns_rr_t r = *src;
        if (r.ttl > ttl_cap)
            r.ttl = ttl_cap;
        if (dns_builder_rr(&it->ab, i < n ? DNS_SEC_AN : DNS_SEC_NS, &r) == DNS_E_NOSPACE)
            it->overflow = 1;
    }
}

static int rr_in(const dns_rr_t *r, const dns_name_t *zone)
{
    return r->rclass == DNS_C_IN && dns_name_under(&r->name, zone);
}

/* The SOA of a negative answer about `name`: in the zone, at or above the
 * name. */
static const dns_rr_t *find_soa(const dns_msg_t *m, const dns_name_t *zone, const dns_name_t *name)
{
    const dns_rrs_t *ns = &m->sec[DNS_SEC_NS];
    for (size_t i = 0; i < ns->n; i++)
        if (ns->rr[i].type == DNS_T_SOA && rr_in(&ns->rr[i], zone) &&
            dns_name_under(name, &ns->rr[i].name))
            return &ns->rr[i];
    return NULL;
}

/* A referral: the NS set of a zone strictly below `zone`, at or above
 * `name`. Returns 1 and follows it, 0 if there is none. */
static int take_referral(dns_iter_t *it, uint64_t now, const dns_msg_t *m)
{
    struct task *t = top(it);
    const dns_rrs_t *ns = &m->sec[DNS_SEC_NS], *ar = &m->sec[DNS_SEC_AR];
    const dns_name_t *cut = NULL;
    for (size_t i = 0; i < ns->n && cut == NULL; i++) {
        const dns_rr_t *r = &ns->rr[i];
        if (r->type == DNS_T_NS && rr_in(r, &t->zone) && r->name.len > t->zone.len &&
            dns_name_under(&t->qname, &r->name))
            cut = &r->name;
    }
    if (cut == NULL)
        return 0;
    if (++t->referrals > DNS_ITER_REFERRALS_MAX) {
        task_done(it, now, DNS_STUB_ERROR, "too many referrals");
        return 1;
    }
    const dns_rr_t *nsrr[DNS_ITER_NS_MAX], *glue[DNS_ITER_NS_MAX * DNS_ITER_ADDR_MAX];
    size_t nn = 0, ng = 0;
    struct task next;
    next.zone = *cut;
    next.nns = 0;
    for (size_t i = 0; i < ns->n && nn < DNS_ITER_NS_MAX; i++)
        if (ns->rr[i].type == DNS_T_NS && ns->rr[i].rclass == DNS_C_IN &&
            dns_name_eq(&ns->rr[i].name, cut)) {
            nsrr[nn++] = &ns->rr[i];
            ns_add(&next, &ns->rr[i].target);
        }
    for (size_t i = 0; i < ar->n; i++) {
        const dns_rr_t *r = &ar->rr[i];
        if (r->type != DNS_T_A && r->type != DNS_T_AAAA)
            continue;
        struct ns_entry *e = ns_find(&next, &r->name);
        if (e == NULL)
            continue;
        if (!rr_in(r, &t->zone)) {
            it->stats.out_of_bailiwick++;
            continue;
        }
        uint8_t before = e->naddr;
        ns_glue(e, r);
        if (e->naddr > before && ng < sizeof glue / sizeof glue[0])
            glue[ng++] = r;
    }
    cache_delegation(it, now, cut, nsrr, nn, glue, ng);
    emit(it, now, DNS_ITER_EV_REFERRAL, m, cut, 1);
    unsigned refs = t->referrals;
    zone_set(it, t, cut);
    memcpy(t->ns, next.ns, next.nns * sizeof next.ns[0]);
    t->nns = next.nns;
    t->referrals = refs;
    ask(it, now);
    return 1;
}

/* Reads a reply (or a cached answer, from_cache) for the top task. */
static void take_reply(dns_iter_t *it, uint64_t now, const dns_msg_t *m, int from_cache,
                       uint32_t ttl_cap)
{
    struct task *t = top(it);
    const dns_name_t *zone = from_cache ? &dns_name_root : &t->zone;
    if (m->rcode != DNS_R_NOERROR && m->rcode != DNS_R_NXDOMAIN) {
        emit(it, now, DNS_ITER_EV_RCODE, m, NULL, 1);
        ask(it, now);
        return;
    }
    const dns_rrs_t *an = &m->sec[DNS_SEC_AN];
    /* A CNAME loop inside one reply visits its records again: room for
     * every hop the chain limit allows, and the final records. */
    const dns_rr_t **step = malloc((an->n + DNS_ITER_CNAME_MAX + 1) * sizeof *step);
    if (step == NULL) {
        finish(it, now, DNS_STUB_ERROR, "out of memory");
        return;
    }
    if (!from_cache)
        for (size_t i = 0; i < an->n; i++)
            it->stats.out_of_bailiwick += !rr_in(&an->rr[i], zone);

    /* The chain inside the reply, from the task's name, within the zone. */
    size_t nstep = 0, nfinal = 0;
    dns_name_t name = t->qname;
    int moved = 0, too_long = 0;
    for (;;) {
        for (size_t i = 0; i < an->n; i++) {
            const dns_rr_t *r = &an->rr[i];
            if (rr_in(r, zone) && dns_name_eq(&r->name, &name) &&
                (r->type == t->qtype || (t->qtype == DNS_T_ANY && r->type != DNS_T_CNAME))) {
                step[nstep++] = r;
                nfinal++;
            }
        }
        if (nfinal > 0 || t->qtype == DNS_T_CNAME)
            break;
        const dns_rr_t *cn = NULL;
        for (size_t i = 0; i < an->n && cn == NULL; i++)
            if (an->rr[i].type == DNS_T_CNAME && rr_in(&an->rr[i], zone) &&
                dns_name_eq(&an->rr[i].name, &name))
                cn = &an->rr[i];
        if (cn == NULL)
            break;
        if (++it->cnames > DNS_ITER_CNAME_MAX) {
            too_long = 1;
            break;
        }
        step[nstep++] = cn;
        name = cn->target;
        moved = 1;
        if (!dns_name_under(&name, zone))
            break;
    }
    const dns_rr_t *soa = find_soa(m, zone, &name);
    int aa = (m->h.flags & DNS_F_AA) != 0; /* never in cached messages */
    dns_name_t asked = t->qname;

    if (too_long) {
        task_done(it, now, DNS_STUB_ERROR, "CNAME chain loops or is too long");
    } else if (nfinal > 0) {
        if (!from_cache)
            cache_step(it, now, &asked, t->qtype, DNS_R_NOERROR, step, nstep, NULL);
        emit(it, now, DNS_ITER_EV_ANSWER, m, NULL, !from_cache);
        take_final(it, step, nstep, NULL, ttl_cap);
        task_done(it, now, DNS_STUB_OK, NULL);
    } else if (m->rcode == DNS_R_NXDOMAIN && dns_name_under(&name, zone)) {
        if (!from_cache)
            cache_step(it, now, &asked, t->qtype, DNS_R_NXDOMAIN, step, nstep, soa);
        emit(it, now, DNS_ITER_EV_NXDOMAIN, m, NULL, !from_cache);
        take_final(it, step, nstep, soa, ttl_cap);
        task_done(it, now, DNS_STUB_NXDOMAIN, NULL);
    } else if (moved && (!dns_name_under(&name, zone) || !(soa || aa))) {
        /* The chain goes on where this server cannot tell. */
        if (!from_cache)
            cache_step(it, now, &asked, t->qtype, DNS_R_NOERROR, step, nstep, NULL);
        emit(it, now, DNS_ITER_EV_CNAME, m, NULL, !from_cache);
        take_final(it, step, nstep, NULL, ttl_cap);
        t->qname = name;
        task_begin(it, now);
    } else if (moved || soa || (aa && m->sec[DNS_SEC_NS].n == 0)) {
        if (!from_cache)
            cache_step(it, now, &asked, t->qtype, DNS_R_NOERROR, step, nstep, soa);
        emit(it, now, DNS_ITER_EV_NODATA, m, NULL, !from_cache);
        take_final(it, step, nstep, soa, ttl_cap);
        task_done(it, now, DNS_STUB_NODATA, NULL);
    } else if (m->rcode != DNS_R_NOERROR || !take_referral(it, now, m)) {
        emit(it, now, DNS_ITER_EV_LAME, m, NULL, 1);
        ask(it, now);
    }
    free(step);
}

int dns_iter_input(dns_iter_t *it, uint64_t now, const addr_t *from, const uint8_t *msg,
                   size_t len, int via_tcp)
{
    if (!it->started || it->done || !it->waiting || via_tcp != it->cur_tcp ||
        !addr_eq(from, &it->to))
        goto ignored;
    dns_header_t h;
    if (dns_header_decode(msg, len, &h) < 0 || h.id != it->id || !(h.flags & DNS_F_QR) ||
        DNS_F_OPCODE(h.flags) != 0)
        goto ignored;
    if ((h.flags & DNS_F_TC) && !via_tcp) {
        emit(it, now, DNS_ITER_EV_TC, NULL, NULL, 1);
        if (it->res.queries >= it->conf->max_queries) {
            finish(it, now, DNS_STUB_ERROR, "query limit reached");
            return 1;
        }
        send_query(it, now, 1);
        return 1;
    }
    struct decoded d;
    if (decode(&d, msg, len) < 0) {
        decoded_free(&d);
        goto ignored;
    }
    struct task *t = top(it);
    int answer = d.m.rcode == DNS_R_NOERROR || d.m.rcode == DNS_R_NXDOMAIN;
    int match = d.m.nqd == 1 && dns_name_eq(&d.q.name, &t->qname) && d.q.qtype == t->qtype &&
                d.q.qclass == DNS_C_IN;
    if (!match && (answer || d.m.h.qdcount != 0)) {
        decoded_free(&d);
        goto ignored;
    }
    it->waiting = 0;
    take_reply(it, now, &d.m, 0, UINT32_MAX);
    decoded_free(&d);
    return 1;
ignored:
    it->stats.ignored++;
    return 0;
}

void dns_iter_timeout(dns_iter_t *it, uint64_t now)
{
    if (!it->started || it->done || !it->waiting || now < it->deadline)
        return;
    emit(it, now, DNS_ITER_EV_TIMEOUT, NULL, NULL, 1);
    ask(it, now);
}

void dns_iter_fail(dns_iter_t *it, uint64_t now)
{
    if (!it->started || it->done || !it->waiting)
        return;
    emit(it, now, DNS_ITER_EV_FAIL, NULL, NULL, 1);
    ask(it, now);
}
