/* test_dns_iter.c - the iterative resolver driven against scripted fake
 * servers in virtual time: the referral walk from the root, the cache
 * skipping known delegations, nameservers without glue, CNAME chains in and
 * across zones, out-of-bailiwick records dropped, loops and limits, lame
 * servers (timeout, SERVFAIL, REFUSED, upward referral), TC and TCP, and
 * the root hints file format.
 *
 * A fake server is an address serving one zone from a table of records in
 * presentation form; it answers as an authoritative server does: a
 * referral (NS and glue from its table) for names below a cut, the
 * records, a CNAME followed inside its zone, NXDOMAIN or NODATA with the
 * zone's SOA. Each server can be made to misbehave. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dns/iter.h"

/* --------------------------------------------------------- the world */

struct zrec {
    const char *owner;
    uint16_t type;
    const char *data;      /* an address, a name, or TXT text */
};

enum behave { OK, MUTE, SERVFAIL, REFUSED, UPWARD, TC_UDP, POISON };

struct fserver {
    const char *ip;
    const char *zone;
    const struct zrec *recs;
    enum behave how;
    unsigned asked;
};

static struct fserver *world;
static size_t nworld;

static dns_name_t name_of(const char *text)
{
    dns_name_t n;
    assert_int_equal(dns_name_parse(&n, slice_cstr(text)), 0);
    return n;
}

static void name_is(const dns_name_t *n, const char *text)
{
    char buf[DNS_NAME_STR_MAX];
    assert_true(dns_name_format(n, buf, sizeof buf) >= 0);
    assert_string_equal(buf, text);
}

static dns_rr_t rr_make(const char *owner, uint16_t type, const char *data)
{
    static uint8_t txtbuf[8][300];
    static unsigned txti;
    dns_rr_t r;
    memset(&r, 0, sizeof r);
    r.name = name_of(owner);
    r.type = type;
    r.rclass = DNS_C_IN;
    r.ttl = 300;
    switch (type) {
    case DNS_T_A: assert_int_equal(inet_pton(AF_INET, data, r.a), 1); break;
    case DNS_T_AAAA: assert_int_equal(inet_pton(AF_INET6, data, r.aaaa), 1); break;
    case DNS_T_TXT: {
        uint8_t *b = txtbuf[txti++ % 8];
        slice_t s = slice_cstr(data);
        int n = dns_txt_pack(b, 300, &s, 1);
        assert_true(n > 0);
        r.txt.data = (slice_t){ (const char *)b, (size_t)n };
        r.txt.count = 1;
        break;
    }
    default: r.target = name_of(data); break;
    }
    return r;
}

static dns_rr_t soa_of(const char *zone)
{
    dns_rr_t r;
    memset(&r, 0, sizeof r);
    r.name = name_of(zone);
    r.type = DNS_T_SOA;
    r.rclass = DNS_C_IN;
    r.ttl = 300;
    r.soa.mname = name_of("ns.invalid.");
    r.soa.rname = name_of("host.invalid.");
    r.soa.serial = 1;
    r.soa.refresh = 3600;
    r.soa.retry = 600;
    r.soa.expire = 86400;
    r.soa.minimum = 120;
    return r;
}

static addr_t ip4(const char *ip)
{
    addr_t a;
    memset(&a, 0, sizeof a);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(53);
    assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    a.len = sizeof *s4;
    return a;
}

static addr_t ip6(const char *ip)
{
    addr_t a;
    memset(&a, 0, sizeof a);
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(53);
    assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    a.len = sizeof *s6;
    return a;
}

static struct fserver *server_at(const addr_t *to)
{
    for (size_t i = 0; i < nworld; i++) {
        addr_t a = strchr(world[i].ip, ':') ? ip6(world[i].ip) : ip4(world[i].ip);
        if (a.len == to->len && memcmp(&a.ss, &to->ss, a.len) == 0)
            return &world[i];
    }
    return NULL;
}

/* The deepest cut (NS owner other than the apex) at or above qn. */
static const char *cut_for(const struct fserver *s, const dns_name_t *qn)
{
    const char *best = NULL;
    size_t bestlen = 0;
    dns_name_t apex = name_of(s->zone);
    for (const struct zrec *r = s->recs; r->owner; r++) {
        dns_name_t o = name_of(r->owner);
        if (r->type == DNS_T_NS && !dns_name_eq(&o, &apex) && dns_name_under(qn, &o) &&
            o.len > bestlen) {
            best = r->owner;
            bestlen = o.len;
        }
    }
    return best;
}

static int add(dns_builder_t *b, enum dns_section sec, dns_rr_t r)
{
    return dns_builder_rr(b, sec, &r);
}

/* Builds server s's reply to the query q into out. Returns its length. */
static size_t serve(struct fserver *s, const uint8_t *q, size_t qlen, int tcp, uint8_t *out,
                    size_t cap)
{
    dns_question_t qq;
    dns_msg_t m;
    memset(&m, 0, sizeof m);
    m.qd = &qq;
    m.qd_cap = 1;
    assert_int_equal(dns_msg_decode(q, qlen, &m), 0);
    assert_int_equal(m.h.flags & DNS_F_RD, 0); /* iterative queries */
    assert_true(m.edns.present);
    dns_builder_t b;
    dns_name_t apex = name_of(s->zone);
    uint16_t flags = DNS_F_QR;
    if (s->how == SERVFAIL || s->how == REFUSED || !dns_name_under(&qq.name, &apex)) {
        flags |= s->how == SERVFAIL ? DNS_R_SERVFAIL : DNS_R_REFUSED;
        dns_builder_init(&b, out, cap, m.h.id, flags);
        dns_builder_question(&b, &qq.name, qq.qtype, qq.qclass);
        return b.len;
    }
    if (s->how == TC_UDP && !tcp) {
        dns_builder_init(&b, out, cap, m.h.id, flags | DNS_F_TC | DNS_F_AA);
        dns_builder_question(&b, &qq.name, qq.qtype, qq.qclass);
        return b.len;
    }
    if (s->how == UPWARD) {
        dns_builder_init(&b, out, cap, m.h.id, flags);
        dns_builder_question(&b, &qq.name, qq.qtype, qq.qclass);
        add(&b, DNS_SEC_NS, rr_make(".", DNS_T_NS, "a.root."));
        return b.len;
    }
    const char *cut = cut_for(s, &qq.name);
    if (cut != NULL) {
        dns_builder_init(&b, out, cap, m.h.id, flags);
        dns_builder_question(&b, &qq.name, qq.qtype, qq.qclass);
        dns_name_t c = name_of(cut);
        for (const struct zrec *r = s->recs; r->owner; r++)
            if (r->type == DNS_T_NS) {
                dns_name_t o = name_of(r->owner);
                if (dns_name_eq(&o, &c))
                    add(&b, DNS_SEC_NS, rr_make(r->owner, DNS_T_NS, r->data));
            }
        for (const struct zrec *r = s->recs; r->owner; r++)
            if (r->type == DNS_T_A) {
                dns_name_t o = name_of(r->owner);
                for (const struct zrec *n = s->recs; n->owner; n++) {
                    if (n->type != DNS_T_NS)
                        continue;
                    dns_name_t no = name_of(n->owner), t = name_of(n->data);
                    if (dns_name_eq(&no, &c) && dns_name_eq(&t, &o)) {
                        add(&b, DNS_SEC_AR, rr_make(r->owner, DNS_T_A, r->data));
                        break;
                    }
                }
            }
        if (s->how == POISON)
            add(&b, DNS_SEC_AR, rr_make("victim.org.", DNS_T_A, "6.6.6.6"));
        return b.len;
    }
    flags |= DNS_F_AA;
    dns_builder_init(&b, out, cap, m.h.id, flags);
    dns_builder_question(&b, &qq.name, qq.qtype, qq.qclass);
    if (s->how == POISON)
        add(&b, DNS_SEC_AN, rr_make("victim.org.", DNS_T_A, "6.6.6.6"));
    dns_name_t cur = qq.name, visited[8];
    int exists = 0, found = 0, left = 0, nvisited = 0;
    for (int hops = 0; hops < 8; hops++) {
        const struct zrec *cn = NULL;
        exists = 0;
        for (const struct zrec *r = s->recs; r->owner; r++) {
            dns_name_t o = name_of(r->owner);
            if (dns_name_under(&o, &cur))
                exists = 1;
            if (!dns_name_eq(&o, &cur))
                continue;
            if (r->type == qq.qtype) {
                add(&b, DNS_SEC_AN, rr_make(r->owner, r->type, r->data));
                found = 1;
            } else if (r->type == DNS_T_CNAME) {
                cn = r;
            }
        }
        if (found || cn == NULL)
            break;
        add(&b, DNS_SEC_AN, rr_make(cn->owner, DNS_T_CNAME, cn->data));
        visited[nvisited++] = cur;
        cur = name_of(cn->data);
        if (!dns_name_under(&cur, &apex) || cut_for(s, &cur)) {
            left = 1;
            break;
        }
        int again = 0; /* a loop: each record once, as servers do */
        for (int v = 0; v < nvisited; v++)
            again |= dns_name_eq(&visited[v], &cur);
        if (again) {
            left = 1;
            break;
        }
    }
    if (!found && !left) {
        if (!exists)
            dns_builder_set_flags(&b, flags | DNS_R_NXDOMAIN);
        add(&b, DNS_SEC_NS, soa_of(s->zone));
    }
    return b.len;
}

/* ------------------------------------------------------------ driving */

static uint8_t rnd[DNS_ITER_RANDOM_LEN];
static char trace_log[4096];
static dns_hints_t hints;

static void on_trace(void *arg, const dns_iter_event_t *ev)
{
    (void)arg;
    static const char *kinds[] = { "ANSWER", "CNAME", "REFERRAL", "NXDOMAIN", "NODATA", "LAME",
                                   "RCODE", "TC", "TIMEOUT", "FAIL", "HIT", "ZONE", "SUB" };
    char z[DNS_NAME_STR_MAX], ip[64] = "-";
    dns_name_format(ev->next ? ev->next : ev->zone, z, sizeof z);
    if (ev->server != NULL)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&ev->server->ss)->sin_addr, ip, sizeof ip);
    size_t n = strlen(trace_log);
    snprintf(trace_log + n, sizeof trace_log - n, "%s %s %s%s;", kinds[ev->kind], ip, z,
             ev->tcp ? " tcp" : "");
}

static void conf_make(dns_iter_conf_t *c, dns_cache_t *cache, const char *root_ip)
{
    char text[256];
    snprintf(text, sizeof text, ". NS a.root.\na.root. A %s\n", root_ip);
    size_t line;
    const char *why;
    assert_int_equal(dns_hints_parse(&hints, slice_cstr(text), &line, &why), 1);
    dns_iter_conf_init(c, &hints);
    c->cache = cache;
    c->trace = on_trace;
    trace_log[0] = '\0';
}

/* Runs a resolution to its end against the world. Returns the result. */
static const dns_iter_result_t *run(dns_iter_t *it, uint64_t *now)
{
    uint8_t reply[DNS_MSG_MAX];
    for (unsigned i = 0; i < 200 && !dns_iter_done(it); i++) {
        dns_iter_tx_t tx;
        if (!dns_iter_next_tx(it, &tx)) {
            *now = dns_iter_deadline(it);
            assert_true(*now != UINT64_MAX);
            dns_iter_timeout(it, *now);
            continue;
        }
        struct fserver *s = server_at(&tx.to);
        if (s == NULL) {
            dns_iter_fail(it, *now); /* no route */
            continue;
        }
        s->asked++;
        if (s->how == MUTE)
            continue; /* wait for the deadline */
        size_t n = serve(s, tx.msg, tx.len, tx.tcp, reply, sizeof reply);
        *now += 1;
        assert_int_equal(dns_iter_input(it, *now, &tx.to, reply, n, tx.tcp), 1);
    }
    assert_true(dns_iter_done(it));
    return dns_iter_result(it);
}

static dns_iter_t *start(const dns_iter_conf_t *c, const char *name, uint16_t qtype, uint64_t now)
{
    dns_name_t n = name_of(name);
    dns_iter_t *it = dns_iter_new(c, &n, qtype);
    assert_non_null(it);
    dns_iter_start(it, now, rnd);
    return it;
}

/* The result message decoded into static arrays. */
static dns_rr_t an_rr[32], ns_rr[8], ar_rr[8];
static dns_msg_t *result_msg(const dns_iter_result_t *r)
{
    static dns_question_t q;
    static dns_msg_t m;
    memset(&m, 0, sizeof m);
    m.qd = &q;
    m.qd_cap = 1;
    m.sec[0] = (dns_rrs_t){ an_rr, 32, 0, 0 };
    m.sec[1] = (dns_rrs_t){ ns_rr, 8, 0, 0 };
    m.sec[2] = (dns_rrs_t){ ar_rr, 8, 0, 0 };
    assert_int_equal(dns_msg_decode(r->msg, r->len, &m), 0);
    assert_true(m.h.flags & DNS_F_QR);
    return &m;
}

static void expect_a(const dns_iter_result_t *r, const char *owner, const char *ip)
{
    dns_msg_t *m = result_msg(r);
    assert_int_equal(r->status, DNS_STUB_OK);
    assert_int_equal(m->rcode, DNS_R_NOERROR);
    const dns_rr_t *last = &m->sec[0].rr[m->sec[0].n - 1];
    assert_int_equal(last->type, DNS_T_A);
    name_is(&last->name, owner);
    char buf[32];
    inet_ntop(AF_INET, last->a, buf, sizeof buf);
    assert_string_equal(buf, ip);
}

/* ------------------------------------------------------------- worlds */

static const struct zrec root_zone[] = {
    { "com.", DNS_T_NS, "ns.com." },
    { "ns.com.", DNS_T_A, "10.0.0.2" },
    { "net.", DNS_T_NS, "ns.net." },
    { "ns.net.", DNS_T_A, "10.0.0.4" },
    { "org.", DNS_T_NS, "ns.org." },
    { "ns.org.", DNS_T_A, "10.0.0.6" },
    { NULL, 0, NULL },
};

static const struct zrec com_zone[] = {
    { "example.com.", DNS_T_NS, "ns1.example.com." },
    { "example.com.", DNS_T_NS, "ns2.example.com." },
    { "ns1.example.com.", DNS_T_A, "10.0.0.3" },
    { "ns2.example.com.", DNS_T_A, "10.0.0.13" },
    { "noglue.com.", DNS_T_NS, "ns.example.net." },
    { "loop.com.", DNS_T_NS, "ns.loop.org." },
    { "v6only.com.", DNS_T_NS, "ns6.example.net." },
    { "evil.com.", DNS_T_NS, "ns.evil.org." },
    { "ns.evil.org.", DNS_T_A, "6.6.6.6" },     /* not com's to say */
    { NULL, 0, NULL },
};

static const struct zrec example_com_zone[] = {
    { "example.com.", DNS_T_NS, "ns1.example.com." },
    { "www.example.com.", DNS_T_A, "192.0.2.80" },
    { "mail.example.com.", DNS_T_A, "192.0.2.25" },
    { "a.example.com.", DNS_T_CNAME, "b.example.com." },
    { "b.example.com.", DNS_T_CNAME, "c.example.com." },
    { "c.example.com.", DNS_T_A, "192.0.2.3" },
    { "out.example.com.", DNS_T_CNAME, "web.example.net." },
    { "cyc.example.com.", DNS_T_CNAME, "cyc.example.net." },
    { "txt.example.com.", DNS_T_TXT, "big" },
    { "l1.example.com.", DNS_T_CNAME, "l2.example.com." },
    { "l2.example.com.", DNS_T_CNAME, "l1.example.com." },
    { NULL, 0, NULL },
};

static const struct zrec net_zone[] = {
    { "example.net.", DNS_T_NS, "ns.example.net." },
    { "ns.example.net.", DNS_T_A, "10.0.0.5" },
    { NULL, 0, NULL },
};

static const struct zrec example_net_zone[] = {
    { "ns.example.net.", DNS_T_A, "10.0.0.5" },
    { "web.example.net.", DNS_T_A, "192.0.2.8" },
    { "cyc.example.net.", DNS_T_CNAME, "cyc.example.com." },
    { "ns6.example.net.", DNS_T_AAAA, "2001:db8::53" },
    { NULL, 0, NULL },
};

static const struct zrec v6only_zone[] = {
    { "www.v6only.com.", DNS_T_A, "192.0.2.6" },
    { NULL, 0, NULL },
};

static const struct zrec noglue_zone[] = {
    { "www.noglue.com.", DNS_T_A, "192.0.2.99" },
    { NULL, 0, NULL },
};

static const struct zrec org_zone[] = {
    { "loop.org.", DNS_T_NS, "ns.loop.com." },
    { "evil.org.", DNS_T_NS, "ns1.evil.org." },
    { "ns1.evil.org.", DNS_T_A, "10.0.0.7" },
    { NULL, 0, NULL },
};

static const struct zrec evil_org_zone[] = {
    { "ns.evil.org.", DNS_T_A, "10.0.0.9" },
    { NULL, 0, NULL },
};

static const struct zrec evil_com_zone[] = {
    { "www.evil.com.", DNS_T_A, "192.0.2.66" },
    { NULL, 0, NULL },
};

static struct fserver base_world[] = {
    { "10.0.0.1", ".", root_zone, OK, 0 },
    { "10.0.0.2", "com.", com_zone, OK, 0 },
    { "10.0.0.3", "example.com.", example_com_zone, OK, 0 },
    { "10.0.0.13", "example.com.", example_com_zone, OK, 0 },
    { "10.0.0.4", "net.", net_zone, OK, 0 },
    { "10.0.0.5", "example.net.", example_net_zone, OK, 0 },
    { "10.0.0.6", "org.", org_zone, OK, 0 },
    { "10.0.0.7", "evil.org.", evil_org_zone, OK, 0 },
    { "10.0.0.9", "evil.com.", evil_com_zone, OK, 0 },
    { "10.0.0.8", "noglue.com.", noglue_zone, OK, 0 },
    { "2001:db8::53", "v6only.com.", v6only_zone, OK, 0 },
};

static struct fserver the_world[sizeof base_world / sizeof base_world[0]];

static int setup(void **state)
{
    (void)state;
    memcpy(the_world, base_world, sizeof base_world);
    world = the_world;
    nworld = sizeof base_world / sizeof base_world[0];
    for (size_t i = 0; i < sizeof rnd; i++)
        rnd[i] = (uint8_t)(i * 7 + 1);
    memset(rnd + 2 * DNS_ITER_QUERIES_MAX, 0, 32); /* first server first */
    return 0;
}

static struct fserver *srv(const char *ip)
{
    for (size_t i = 0; i < nworld; i++)
        if (strcmp(world[i].ip, ip) == 0)
            return &world[i];
    fail();
    return NULL;
}

/* -------------------------------------------------------------- tests */

static void test_referral_walk(void **state)
{
    (void)state;
    dns_iter_conf_t c;
    conf_make(&c, NULL, "10.0.0.1");
    uint64_t now = 1000;
    dns_iter_t *it = start(&c, "www.example.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    expect_a(r, "www.example.com.", "192.0.2.80");
    assert_int_equal(r->queries, 3);
    assert_false(r->cached);
    assert_string_equal(trace_log, "REFERRAL 10.0.0.1 com.;REFERRAL 10.0.0.2 example.com.;"
                                   "ANSWER 10.0.0.3 example.com.;");
    dns_iter_free(it);
}

static void test_cache_skips_delegations(void **state)
{
    (void)state;
    dns_cache_t *cache = dns_cache_new(1 << 20);
    dns_iter_conf_t c;
    conf_make(&c, cache, "10.0.0.1");
    uint64_t now = 1000;
    dns_iter_t *it = start(&c, "www.example.com.", DNS_T_A, now);
    assert_int_equal(run(it, &now)->queries, 3);
    dns_iter_free(it);

    /* Another name of the zone: straight to example.com's server. */
    trace_log[0] = '\0';
    it = start(&c, "mail.example.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    expect_a(r, "mail.example.com.", "192.0.2.25");
    assert_int_equal(r->queries, 1);
    assert_string_equal(trace_log, "ZONE - example.com.;ANSWER 10.0.0.3 example.com.;");
    dns_iter_free(it);

    /* The same name: from the cache, no query. */
    it = start(&c, "www.example.com.", DNS_T_A, now);
    r = run(it, &now);
    expect_a(r, "www.example.com.", "192.0.2.80");
    assert_int_equal(r->queries, 0);
    assert_true(r->cached);
    dns_iter_free(it);

    /* Past the TTL (300 s) the walk starts from the root again. */
    now += 301 * 1000;
    it = start(&c, "www.example.com.", DNS_T_A, now);
    assert_int_equal(run(it, &now)->queries, 3);
    dns_iter_free(it);
    dns_cache_free(cache);
}

static void test_negative_cached(void **state)
{
    (void)state;
    dns_cache_t *cache = dns_cache_new(1 << 20);
    dns_iter_conf_t c;
    conf_make(&c, cache, "10.0.0.1");
    uint64_t now = 5000;
    dns_iter_t *it = start(&c, "nope.example.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    assert_int_equal(r->status, DNS_STUB_NXDOMAIN);
    dns_msg_t *m = result_msg(r);
    assert_int_equal(m->rcode, DNS_R_NXDOMAIN);
    assert_int_equal(m->sec[1].n, 1);
    assert_int_equal(m->sec[1].rr[0].type, DNS_T_SOA);
    name_is(&m->sec[1].rr[0].name, "example.com.");
    dns_iter_free(it);

    it = start(&c, "nope.example.com.", DNS_T_A, now);
    r = run(it, &now);
    assert_int_equal(r->status, DNS_STUB_NXDOMAIN);
    assert_int_equal(r->queries, 0);
    dns_iter_free(it);

    /* NODATA: the name exists, not the type. */
    it = start(&c, "www.example.com.", DNS_T_MX, now);
    r = run(it, &now);
    assert_int_equal(r->status, DNS_STUB_NODATA);
    assert_int_equal(r->queries, 1);
    dns_iter_free(it);
    dns_cache_free(cache);
}

static void test_missing_glue(void **state)
{
    (void)state;
    dns_iter_conf_t c;
    conf_make(&c, NULL, "10.0.0.1");
    uint64_t now = 0;
    /* noglue.com is served by ns.example.net, whose address com's server
     * does not know: it is resolved from the root on the way. */
    srv("10.0.0.5")->recs = (const struct zrec[]){
        { "ns.example.net.", DNS_T_A, "10.0.0.8" }, { NULL, 0, NULL } };
    dns_iter_t *it = start(&c, "www.noglue.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    expect_a(r, "www.noglue.com.", "192.0.2.99");
    assert_int_equal(r->queries, 6);
    assert_string_equal(trace_log,
                        "REFERRAL 10.0.0.1 com.;REFERRAL 10.0.0.2 noglue.com.;SUB - .;"
                        "REFERRAL 10.0.0.1 net.;REFERRAL 10.0.0.4 example.net.;"
                        "ANSWER 10.0.0.5 example.net.;ANSWER 10.0.0.8 noglue.com.;");
    dns_iter_free(it);
}

/* A glueless nameserver with only an IPv6 address: its A lookup finds
 * nothing, its AAAA does. */
static void test_missing_glue_aaaa_only(void **state)
{
    (void)state;
    dns_iter_conf_t c;
    conf_make(&c, NULL, "10.0.0.1");
    uint64_t now = 0;
    dns_iter_t *it = start(&c, "www.v6only.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    expect_a(r, "www.v6only.com.", "192.0.2.6");
    assert_int_equal(r->queries, 9);
    assert_non_null(strstr(trace_log, "NODATA 10.0.0.5 example.net.;SUB - .;"));
    assert_int_equal(srv("2001:db8::53")->asked, 1);
    dns_iter_free(it);
}

static void test_cname_in_zone(void **state)
{
    (void)state;
    dns_iter_conf_t c;
    conf_make(&c, NULL, "10.0.0.1");
    uint64_t now = 0;
    dns_iter_t *it = start(&c, "a.example.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    expect_a(r, "c.example.com.", "192.0.2.3");
    assert_int_equal(r->queries, 3);
    dns_msg_t *m = result_msg(r);
    assert_int_equal(m->sec[0].n, 3);
    name_is(&m->qd[0].name, "a.example.com.");
    assert_int_equal(m->sec[0].rr[0].type, DNS_T_CNAME);
    name_is(&m->sec[0].rr[0].target, "b.example.com.");
    name_is(&m->sec[0].rr[1].target, "c.example.com.");
    dns_iter_free(it);
}

static void test_cname_across_zones(void **state)
{
    (void)state;
    dns_cache_t *cache = dns_cache_new(1 << 20);
    dns_iter_conf_t c;
    conf_make(&c, cache, "10.0.0.1");
    uint64_t now = 0;
    dns_iter_t *it = start(&c, "out.example.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    expect_a(r, "web.example.net.", "192.0.2.8");
    assert_int_equal(r->queries, 6);
    assert_string_equal(trace_log,
                        "REFERRAL 10.0.0.1 com.;REFERRAL 10.0.0.2 example.com.;"
                        "CNAME 10.0.0.3 example.com.;"
                        "REFERRAL 10.0.0.1 net.;REFERRAL 10.0.0.4 example.net.;"
                        "ANSWER 10.0.0.5 example.net.;");
    dns_msg_t *m = result_msg(r);
    assert_int_equal(m->sec[0].n, 2);
    assert_int_equal(m->sec[0].rr[0].type, DNS_T_CNAME);
    dns_iter_free(it);

    /* Again: every step from the cache. */
    it = start(&c, "out.example.com.", DNS_T_A, now);
    r = run(it, &now);
    expect_a(r, "web.example.net.", "192.0.2.8");
    assert_int_equal(r->queries, 0);
    assert_int_equal(result_msg(r)->sec[0].n, 2);
    dns_iter_free(it);
    dns_cache_free(cache);
}

static void test_cname_loop(void **state)
{
    (void)state;
    dns_iter_conf_t c;
    conf_make(&c, NULL, "10.0.0.1");
    uint64_t now = 0;
    dns_iter_t *it = start(&c, "cyc.example.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    assert_int_equal(r->status, DNS_STUB_ERROR);
    assert_non_null(strstr(r->reason, "CNAME"));
    assert_true(r->queries <= DNS_ITER_QUERIES_MAX);
    assert_int_equal(result_msg(r)->rcode, DNS_R_SERVFAIL);
    dns_iter_free(it);
}

/* A loop inside one zone: one reply holds it, the same two records over
 * and over. */
static void test_cname_loop_in_one_reply(void **state)
{
    (void)state;
    dns_iter_conf_t c;
    conf_make(&c, NULL, "10.0.0.1");
    uint64_t now = 0;
    dns_iter_t *it = start(&c, "l1.example.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    assert_int_equal(r->status, DNS_STUB_ERROR);
    assert_non_null(strstr(r->reason, "CNAME"));
    assert_int_equal(r->queries, 3);
    dns_iter_free(it);
}

static void test_out_of_bailiwick_dropped(void **state)
{
    (void)state;
    dns_cache_t *cache = dns_cache_new(1 << 20);
    dns_iter_conf_t c;
    conf_make(&c, cache, "10.0.0.1");
    uint64_t now = 0;
    /* com's server sends victim.org's address with its referral, and
     * example.com's in its answer: neither is theirs to say. */
    srv("10.0.0.2")->how = POISON;
    srv("10.0.0.3")->how = POISON;
    dns_iter_t *it = start(&c, "www.example.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    expect_a(r, "www.example.com.", "192.0.2.80");
    assert_int_equal(result_msg(r)->sec[0].n, 1);
    assert_int_equal(dns_iter_stats(it)->out_of_bailiwick, 1);
    dns_iter_free(it);
    uint8_t buf[512];
    size_t len;
    dns_name_t v = name_of("victim.org.");
    assert_int_equal(dns_cache_get(cache, &v, DNS_T_A, DNS_C_IN, 0, buf, sizeof buf, &len, NULL,
                                   NULL), 0);

    /* Glue outside the referring zone: com's server gives an address for
     * evil.com's server ns.evil.org, which only org's servers may give. It
     * is dropped, and the address is resolved through org. */
    srv("10.0.0.2")->how = OK;
    trace_log[0] = '\0';
    it = start(&c, "www.evil.com.", DNS_T_A, now);
    r = run(it, &now);
    expect_a(r, "www.evil.com.", "192.0.2.66");
    assert_int_equal(dns_iter_stats(it)->out_of_bailiwick, 1);
    assert_string_equal(trace_log,
                        "ZONE - com.;REFERRAL 10.0.0.2 evil.com.;SUB - .;"
                        "REFERRAL 10.0.0.1 org.;REFERRAL 10.0.0.6 evil.org.;"
                        "ANSWER 10.0.0.7 evil.org.;ANSWER 10.0.0.9 evil.com.;");
    dns_iter_free(it);
    dns_cache_free(cache);
}

static void test_ns_loop_bounded(void **state)
{
    (void)state;
    dns_iter_conf_t c;
    conf_make(&c, NULL, "10.0.0.1");
    uint64_t now = 0;
    /* loop.com is served by ns.loop.org, loop.org by ns.loop.com: neither
     * address can ever be found. */
    dns_iter_t *it = start(&c, "www.loop.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    assert_int_equal(r->status, DNS_STUB_SERVFAIL);
    /* root and com for www.loop.com; then for ns.loop.org's A, root and
     * org, inside which ns.loop.com's A and AAAA (root and com each; its
     * own nameserver is being resolved below it: skipped); then the same
     * for ns.loop.org's AAAA: 2 + 2 * (2 + 2 * 2) = 14, and no more. */
    assert_int_equal(r->queries, 14);
    dns_iter_free(it);
}

static void test_query_limit(void **state)
{
    (void)state;
    dns_iter_conf_t c;
    conf_make(&c, NULL, "10.0.0.1");
    c.max_queries = 2;
    uint64_t now = 0;
    dns_iter_t *it = start(&c, "www.example.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    assert_int_equal(r->status, DNS_STUB_ERROR);
    assert_string_equal(r->reason, "query limit reached");
    assert_int_equal(r->queries, 2);
    dns_iter_free(it);
}

/* The first of example.com's two servers misbehaves in each way; the
 * second answers. */
static void lame_case(enum behave how, const char *ev)
{
    dns_iter_conf_t c;
    conf_make(&c, NULL, "10.0.0.1");
    srv("10.0.0.3")->how = how;
    srv("10.0.0.3")->asked = 0;
    uint64_t now = 0;
    dns_iter_t *it = start(&c, "www.example.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    expect_a(r, "www.example.com.", "192.0.2.80");
    assert_int_equal(r->queries, 4);
    assert_int_equal(srv("10.0.0.3")->asked, 1);
    char want[256];
    snprintf(want, sizeof want, "REFERRAL 10.0.0.1 com.;REFERRAL 10.0.0.2 example.com.;"
                                "%s 10.0.0.3 example.com.;ANSWER 10.0.0.13 example.com.;", ev);
    assert_string_equal(trace_log, want);
    if (how == MUTE)
        assert_true(now >= 2 + DNS_ITER_TIMEOUT_MS);
    else
        assert_true(now < 100);
    dns_iter_free(it);
}

static void test_lame_fallback(void **state)
{
    (void)state;
    lame_case(MUTE, "TIMEOUT");
    lame_case(SERVFAIL, "RCODE");
    lame_case(REFUSED, "RCODE");
    lame_case(UPWARD, "LAME");
}

static void test_all_lame(void **state)
{
    (void)state;
    dns_iter_conf_t c;
    conf_make(&c, NULL, "10.0.0.1");
    srv("10.0.0.3")->how = SERVFAIL;
    srv("10.0.0.13")->how = MUTE;
    uint64_t now = 0;
    dns_iter_t *it = start(&c, "www.example.com.", DNS_T_A, now);
    const dns_iter_result_t *r = run(it, &now);
    assert_int_equal(r->status, DNS_STUB_SERVFAIL);
    assert_int_equal(result_msg(r)->rcode, DNS_R_SERVFAIL);
    assert_int_equal(result_msg(r)->sec[0].n, 0);
    dns_iter_free(it);
}

static void test_tc_then_tcp(void **state)
{
    (void)state;
    dns_iter_conf_t c;
    conf_make(&c, NULL, "10.0.0.1");
    srv("10.0.0.3")->how = TC_UDP;
    uint64_t now = 0;
    dns_iter_t *it = start(&c, "txt.example.com.", DNS_T_TXT, now);
    const dns_iter_result_t *r = run(it, &now);
    assert_int_equal(r->status, DNS_STUB_OK);
    assert_int_equal(r->queries, 4);
    assert_non_null(strstr(trace_log, "TC 10.0.0.3 example.com.;ANSWER 10.0.0.3 example.com. tcp;"));
    dns_msg_t *m = result_msg(r);
    assert_int_equal(m->sec[0].rr[0].type, DNS_T_TXT);
    dns_iter_free(it);
}

static void test_spoofed_replies_ignored(void **state)
{
    (void)state;
    dns_iter_conf_t c;
    conf_make(&c, NULL, "10.0.0.1");
    uint64_t now = 0;
    dns_iter_t *it = start(&c, "www.example.com.", DNS_T_A, now);
    dns_iter_tx_t tx;
    assert_true(dns_iter_next_tx(it, &tx));
    uint8_t reply[1024];
    size_t n = serve(srv("10.0.0.1"), tx.msg, tx.len, 0, reply, sizeof reply);
    addr_t other = ip4("10.0.0.99");
    assert_int_equal(dns_iter_input(it, 1, &other, reply, n, 0), 0);   /* wrong source */
    assert_int_equal(dns_iter_input(it, 1, &tx.to, reply, n, 1), 0);   /* not over TCP */
    reply[0] ^= 0xff;
    assert_int_equal(dns_iter_input(it, 1, &tx.to, reply, n, 0), 0);   /* wrong ID */
    reply[0] ^= 0xff;
    assert_int_equal(dns_iter_input(it, 1, &tx.to, reply, 11, 0), 0);  /* short */
    assert_int_equal(dns_iter_stats(it)->ignored, 4);
    assert_int_equal(dns_iter_input(it, 1, &tx.to, reply, n, 0), 1);
    dns_iter_free(it);
}

static void test_hints_parse(void **state)
{
    (void)state;
    dns_hints_t h;
    size_t line;
    const char *why;
    const char *good =
        ";       This file holds the information on root name servers\n"
        "$TTL 3600000\n"
        ".                        3600000      NS    A.ROOT-SERVERS.NET.\n"
        "A.ROOT-SERVERS.NET.      3600000      A     198.41.0.4\n"
        "A.ROOT-SERVERS.NET.      3600000      AAAA  2001:503:ba3e::2:30\n"
        "\n"
        ".                        3600000  IN  NS    B.ROOT-SERVERS.NET.\n"
        "B.ROOT-SERVERS.NET.      IN  A     170.247.170.2 ; comment\n";
    assert_int_equal(dns_hints_parse(&h, slice_cstr(good), &line, &why), 3);
    name_is(&h.e[0].name, "A.ROOT-SERVERS.NET.");
    assert_int_equal(h.e[1].family, AF_INET6);
    assert_int_equal(h.e[2].ip[0], 170);

    static const struct { const char *text; size_t line; } bad[] = {
        { ". NS a.root.\na.root. A 300.1.1.1\n", 2 },
        { "a.root. MX 10 b.root.\n", 1 },
        { "com. NS a.root.\n", 1 },
        { "a.root. A\n", 1 },
        { "a..root. A 1.2.3.4\n", 1 },
        { ". NS a.root.\n", 0 },
        { "", 0 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        line = 99;
        assert_int_equal(dns_hints_parse(&h, slice_cstr(bad[i].text), &line, &why), -1);
        assert_int_equal(line, bad[i].line);
        assert_non_null(why);
    }
    dns_hints_builtin(&h);
    assert_int_equal(h.n, 26);
    name_is(&h.e[0].name, "a.root-servers.net.");
    assert_int_equal(h.e[0].family, AF_INET);
    assert_int_equal(h.e[13].family, AF_INET6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_referral_walk, setup),
        cmocka_unit_test_setup(test_cache_skips_delegations, setup),
        cmocka_unit_test_setup(test_negative_cached, setup),
        cmocka_unit_test_setup(test_missing_glue, setup),
        cmocka_unit_test_setup(test_missing_glue_aaaa_only, setup),
        cmocka_unit_test_setup(test_cname_in_zone, setup),
        cmocka_unit_test_setup(test_cname_across_zones, setup),
        cmocka_unit_test_setup(test_cname_loop, setup),
        cmocka_unit_test_setup(test_cname_loop_in_one_reply, setup),
        cmocka_unit_test_setup(test_out_of_bailiwick_dropped, setup),
        cmocka_unit_test_setup(test_ns_loop_bounded, setup),
        cmocka_unit_test_setup(test_query_limit, setup),
        cmocka_unit_test_setup(test_lame_fallback, setup),
        cmocka_unit_test_setup(test_all_lame, setup),
        cmocka_unit_test_setup(test_tc_then_tcp, setup),
        cmocka_unit_test_setup(test_spoofed_replies_ignored, setup),
        cmocka_unit_test(test_hints_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
