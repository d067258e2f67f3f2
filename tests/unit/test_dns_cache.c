/* test_dns_cache.c - the DNS answer cache: TTLs exact to the second in
 * virtual time, RFC 2308 negative entries, what is refused, the TTL caps,
 * LRU eviction under a byte cap, replacement, and four threads at once.
 * Every reply is built with the dns builder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "dns/cache.h"
#include "dns/msg.h"

#define BIG (1u << 20)

static dns_name_t N(const char *text)
{
    dns_name_t n;
    int rc = dns_name_parse(&n, slice_cstr(text));
    if (rc != 0)
        fail_msg("dns_name_parse(\"%s\") = %d", text, rc);
    return n;
}

/* A reply to (qname, qtype IN) with flags (QR is added), A records of
 * qname with the TTLs in an[0, nan), and, if soa, the example.com SOA in
 * authority with that TTL and MINIMUM. Returns its length. */
struct reply {
    const char *qname;
    uint16_t qtype;
    uint16_t flags;
    const uint32_t *an;
    size_t nan;
    int soa;
    uint32_t soa_ttl, soa_min;
    int ns;              /* an NS referral in authority instead */
};

static size_t build(uint8_t *buf, size_t cap, const struct reply *r)
{
    dns_builder_t b;
    dns_name_t q = N(r->qname);
    assert_int_equal(dns_builder_init(&b, buf, cap, 0x1234, (uint16_t)(DNS_F_QR | r->flags)), 0);
    assert_int_equal(dns_builder_question(&b, &q, r->qtype, DNS_C_IN), 0);
    for (size_t i = 0; i < r->nan; i++) {
        dns_rr_t rr;
        memset(&rr, 0, sizeof rr);
        rr.name = q;
        rr.type = DNS_T_A;
        rr.rclass = DNS_C_IN;
        rr.ttl = r->an[i];
        rr.a[0] = 192, rr.a[1] = 0, rr.a[2] = 2, rr.a[3] = (uint8_t)(i + 1);
        assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), 0);
    }
    if (r->soa) {
        dns_rr_t rr;
        memset(&rr, 0, sizeof rr);
        rr.name = N("example.com");
        rr.type = DNS_T_SOA;
        rr.rclass = DNS_C_IN;
        rr.ttl = r->soa_ttl;
        rr.soa.mname = N("ns1.example.com");
        rr.soa.rname = N("hostmaster.example.com");
        rr.soa.serial = 2024010101;
        rr.soa.refresh = 7200;
        rr.soa.retry = 3600;
        rr.soa.expire = 1209600;
        rr.soa.minimum = r->soa_min;
        assert_int_equal(dns_builder_rr(&b, DNS_SEC_NS, &rr), 0);
    }
    if (r->ns) {
        dns_rr_t rr;
        memset(&rr, 0, sizeof rr);
        rr.name = N("example.com");
        rr.type = DNS_T_NS;
        rr.rclass = DNS_C_IN;
        rr.ttl = 3600;
        rr.target = N("ns1.example.com");
        assert_int_equal(dns_builder_rr(&b, DNS_SEC_NS, &rr), 0);
    }
    return b.len;
}

static int put(dns_cache_t *c, const char *key, uint16_t type, const struct reply *r,
               uint64_t now)
{
    uint8_t buf[1024];
    size_t len = build(buf, sizeof buf, r);
    dns_name_t k = N(key);
    int rc = dns_cache_put(c, &k, type, DNS_C_IN, buf, len, now);
    assert_non_null(dns_cache_strerror(rc));
    return rc;
}

/* A get of (key, type IN): returns 1 on a hit with *ttl and *neg. */
static int get(dns_cache_t *c, const char *key, uint16_t type, uint64_t now, uint32_t *ttl,
               int *neg)
{
    uint8_t out[1024];
    size_t len = 0;
    dns_name_t k = N(key);
    int rc = dns_cache_get(c, &k, type, DNS_C_IN, now, out, sizeof out, &len, ttl, neg);
    assert_true(rc == 0 || rc == 1);
    return rc;
}

static const uint32_t ttl_300_600[] = { 600, 300 };

/* ------------------------------------------------------------- tests */

static void test_positive_lives_exactly_ttl(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(BIG);
    assert_non_null(c);
    struct reply r = { "www.example.com", DNS_T_A, 0, ttl_300_600, 2, 0, 0, 0, 0 };
    uint8_t want[1024];
    size_t want_len = build(want, sizeof want, &r);
    assert_int_equal(put(c, "www.example.com", DNS_T_A, &r, 1000), DNS_CACHE_STORED);

    uint8_t out[1024];
    size_t len = 0;
    uint32_t ttl = 0;
    int neg = -1;
    dns_name_t k = N("www.example.com");
    assert_int_equal(dns_cache_get(c, &k, DNS_T_A, DNS_C_IN, 1000, out, sizeof out, &len, &ttl,
                                   &neg), 1);
    assert_int_equal(len, want_len);
    assert_memory_equal(out, want, len);
    assert_int_equal(ttl, 300);
    assert_int_equal(neg, DNS_CACHE_POS);

    assert_int_equal(get(c, "www.example.com", DNS_T_A, 1150, &ttl, NULL), 1);
    assert_int_equal(ttl, 150);
    assert_int_equal(get(c, "www.example.com", DNS_T_A, 1299, &ttl, NULL), 1);
    assert_int_equal(ttl, 1);
    assert_int_equal(get(c, "www.example.com", DNS_T_A, 1300, &ttl, NULL), 0);
    assert_int_equal(get(c, "www.example.com", DNS_T_A, 1299, &ttl, NULL), 0); /* freed */

    dns_cache_stats_t st;
    dns_cache_stats(c, &st);
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.stored, 1);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    dns_cache_free(c);
}

static void test_names_without_case(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(BIG);
    assert_non_null(c);
    struct reply r = { "www.example.com", DNS_T_A, 0, ttl_300_600, 2, 0, 0, 0, 0 };
    /* The key and the question may differ in case. */
    assert_int_equal(put(c, "WWW.Example.COM", DNS_T_A, &r, 0), DNS_CACHE_STORED);
    uint32_t ttl;
    assert_int_equal(get(c, "www.example.com", DNS_T_A, 10, &ttl, NULL), 1);
    assert_int_equal(get(c, "wWw.eXaMpLe.CoM.", DNS_T_A, 10, &ttl, NULL), 1);
    assert_int_equal(get(c, "www.example.com", DNS_T_AAAA, 10, &ttl, NULL), 0);
    assert_int_equal(get(c, "www.example.org", DNS_T_A, 10, &ttl, NULL), 0);
    assert_int_equal(get(c, "ww.example.com", DNS_T_A, 10, &ttl, NULL), 0);
    uint8_t out[1024];
    size_t len;
    dns_name_t k = N("www.example.com");
    assert_int_equal(dns_cache_get(c, &k, DNS_T_A, DNS_C_CH, 10, out, sizeof out, &len, NULL,
                                   NULL), 0);
    /* Only letters fold: '[' (0x5b) is not '{' (0x7b). */
    struct reply r2 = { "a[.example.com", DNS_T_A, 0, ttl_300_600, 2, 0, 0, 0, 0 };
    assert_int_equal(put(c, "a[.example.com", DNS_T_A, &r2, 0), DNS_CACHE_STORED);
    assert_int_equal(get(c, "A[.example.com", DNS_T_A, 10, &ttl, NULL), 1);
    assert_int_equal(get(c, "a{.example.com", DNS_T_A, 10, &ttl, NULL), 0);
    dns_cache_free(c);
}

static void test_nxdomain_with_soa(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(BIG);
    assert_non_null(c);
    uint32_t ttl;
    int neg;
    /* MINIMUM below the SOA's TTL. */
    struct reply r = { "nope.example.com", DNS_T_A, DNS_R_NXDOMAIN, NULL, 0, 1, 3600, 600, 0 };
    assert_int_equal(put(c, "nope.example.com", DNS_T_A, &r, 50), DNS_CACHE_STORED_NEG);
    assert_int_equal(get(c, "nope.example.com", DNS_T_A, 50, &ttl, &neg), 1);
    assert_int_equal(ttl, 600);
    assert_int_equal(neg, DNS_CACHE_NXDOMAIN);
    assert_int_equal(get(c, "nope.example.com", DNS_T_A, 649, &ttl, &neg), 1);
    assert_int_equal(ttl, 1);
    assert_int_equal(get(c, "nope.example.com", DNS_T_A, 650, &ttl, &neg), 0);

    /* The SOA's TTL below MINIMUM. */
    struct reply r2 = { "gone.example.com", DNS_T_A, DNS_R_NXDOMAIN, NULL, 0, 1, 300, 900, 0 };
    assert_int_equal(put(c, "gone.example.com", DNS_T_A, &r2, 0), DNS_CACHE_STORED_NEG);
    assert_int_equal(get(c, "gone.example.com", DNS_T_A, 0, &ttl, &neg), 1);
    assert_int_equal(ttl, 300);
    assert_int_equal(get(c, "gone.example.com", DNS_T_A, 300, &ttl, &neg), 0);

    /* A CNAME before the NXDOMAIN bounds it too. */
    static const uint32_t an60[] = { 60 };
    struct reply r3 = { "chain.example.com", DNS_T_A, DNS_R_NXDOMAIN, an60, 1, 1, 3600, 600, 0 };
    assert_int_equal(put(c, "chain.example.com", DNS_T_A, &r3, 0), DNS_CACHE_STORED_NEG);
    assert_int_equal(get(c, "chain.example.com", DNS_T_A, 0, &ttl, &neg), 1);
    assert_int_equal(ttl, 60);
    dns_cache_free(c);
}

static void test_nodata_with_soa(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(BIG);
    assert_non_null(c);
    uint32_t ttl;
    int neg;
    struct reply r = { "www.example.com", DNS_T_AAAA, 0, NULL, 0, 1, 1800, 3600, 0 };
    assert_int_equal(put(c, "www.example.com", DNS_T_AAAA, &r, 7), DNS_CACHE_STORED_NEG);
    assert_int_equal(get(c, "www.example.com", DNS_T_AAAA, 7, &ttl, &neg), 1);
    assert_int_equal(ttl, 1800);
    assert_int_equal(neg, DNS_CACHE_NODATA);
    assert_int_equal(get(c, "www.example.com", DNS_T_AAAA, 1806, &ttl, &neg), 1);
    assert_int_equal(get(c, "www.example.com", DNS_T_AAAA, 1807, &ttl, &neg), 0);
    assert_int_equal(get(c, "www.example.com", DNS_T_A, 8, &ttl, &neg), 0);
    dns_cache_free(c);
}

static void test_negative_without_soa_not_cached(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(BIG);
    assert_non_null(c);
    uint32_t ttl;
    struct reply nx = { "nope.example.com", DNS_T_A, DNS_R_NXDOMAIN, NULL, 0, 0, 0, 0, 0 };
    assert_int_equal(put(c, "nope.example.com", DNS_T_A, &nx, 0), DNS_CACHE_E_NO_SOA);
    struct reply nd = { "www.example.com", DNS_T_AAAA, 0, NULL, 0, 0, 0, 0, 0 };
    assert_int_equal(put(c, "www.example.com", DNS_T_AAAA, &nd, 0), DNS_CACHE_E_NO_SOA);
    /* A referral (NS, no SOA) is not NODATA either. */
    struct reply ref = { "www.example.com", DNS_T_A, 0, NULL, 0, 0, 0, 0, 1 };
    assert_int_equal(put(c, "www.example.com", DNS_T_A, &ref, 0), DNS_CACHE_E_NO_SOA);
    assert_int_equal(get(c, "nope.example.com", DNS_T_A, 0, &ttl, NULL), 0);
    assert_int_equal(get(c, "www.example.com", DNS_T_AAAA, 0, &ttl, NULL), 0);
    assert_int_equal(get(c, "www.example.com", DNS_T_A, 0, &ttl, NULL), 0);
    /* An SOA with TTL 0 gives a negative TTL of 0. */
    struct reply z = { "nope.example.com", DNS_T_A, DNS_R_NXDOMAIN, NULL, 0, 1, 0, 600, 0 };
    assert_int_equal(put(c, "nope.example.com", DNS_T_A, &z, 0), DNS_CACHE_E_TTL_ZERO);
    dns_cache_stats_t st;
    dns_cache_stats(c, &st);
    assert_int_equal(st.stored, 0);
    assert_int_equal(st.entries, 0);
    dns_cache_free(c);
}

static void test_uncacheable_replies(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(BIG);
    assert_non_null(c);
    uint32_t ttl;
    struct reply r = { "www.example.com", DNS_T_A, DNS_R_SERVFAIL, NULL, 0, 0, 0, 0, 0 };
    assert_int_equal(put(c, "www.example.com", DNS_T_A, &r, 0), DNS_CACHE_E_RCODE);
    r.flags = DNS_R_REFUSED;
    assert_int_equal(put(c, "www.example.com", DNS_T_A, &r, 0), DNS_CACHE_E_RCODE);
    r.flags = DNS_R_SERVFAIL;
    r.soa = 1, r.soa_ttl = 300, r.soa_min = 300;     /* an SOA does not help */
    assert_int_equal(put(c, "www.example.com", DNS_T_A, &r, 0), DNS_CACHE_E_RCODE);

    struct reply tc = { "www.example.com", DNS_T_A, DNS_F_TC, ttl_300_600, 2, 0, 0, 0, 0 };
    assert_int_equal(put(c, "www.example.com", DNS_T_A, &tc, 0), DNS_CACHE_E_TC);

    struct reply ok = { "www.example.com", DNS_T_A, 0, ttl_300_600, 2, 0, 0, 0, 0 };
    assert_int_equal(put(c, "www.example.org", DNS_T_A, &ok, 0), DNS_CACHE_E_QUESTION);
    assert_int_equal(put(c, "www.example.com", DNS_T_AAAA, &ok, 0), DNS_CACHE_E_QUESTION);

    /* Not a reply; and a reply cut short. */
    uint8_t buf[1024];
    size_t len = build(buf, sizeof buf, &ok);
    dns_name_t k = N("www.example.com");
    uint8_t q[1024];
    memcpy(q, buf, len);
    q[2] &= 0x7f;   /* QR off */
    assert_int_equal(dns_cache_put(c, &k, DNS_T_A, DNS_C_IN, q, len, 0), DNS_CACHE_E_NOT_REPLY);
    assert_int_equal(dns_cache_put(c, &k, DNS_T_A, DNS_C_IN, buf, len - 1, 0),
                     DNS_CACHE_E_MALFORMED);
    assert_int_equal(dns_cache_put(c, &k, DNS_T_A, DNS_C_IN, buf, 5, 0), DNS_CACHE_E_MALFORMED);
    assert_int_equal(dns_cache_put(c, &k, DNS_T_A, DNS_C_CH, buf, len, 0), DNS_CACHE_E_QUESTION);

    assert_int_equal(get(c, "www.example.com", DNS_T_A, 0, &ttl, NULL), 0);
    dns_cache_stats_t st;
    dns_cache_stats(c, &st);
    assert_int_equal(st.stored, 0);
    assert_int_equal(st.entries, 0);
    assert_string_equal(dns_cache_strerror(DNS_CACHE_E_TC), "truncated (TC)");
    assert_string_equal(dns_cache_strerror(DNS_CACHE_E_NOSPACE), "buffer too small");
    assert_string_equal(dns_cache_strerror(-99), "unknown result");
    dns_cache_free(c);
}

static void test_ttl_caps(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(BIG);
    assert_non_null(c);
    uint32_t ttl;
    static const uint32_t week[] = { 604800, 700000 };
    struct reply r = { "www.example.com", DNS_T_A, 0, week, 2, 0, 0, 0, 0 };
    assert_int_equal(put(c, "www.example.com", DNS_T_A, &r, 0), DNS_CACHE_STORED);
    assert_int_equal(get(c, "www.example.com", DNS_T_A, 0, &ttl, NULL), 1);
    assert_int_equal(ttl, DNS_CACHE_TTL_MAX);
    assert_int_equal(get(c, "www.example.com", DNS_T_A, DNS_CACHE_TTL_MAX - 1, &ttl, NULL), 1);
    assert_int_equal(get(c, "www.example.com", DNS_T_A, DNS_CACHE_TTL_MAX, &ttl, NULL), 0);

    /* 2^31-1 is still a TTL, and capped. */
    static const uint32_t top[] = { 0x7fffffffu };
    struct reply t = { "top.example.com", DNS_T_A, 0, top, 1, 0, 0, 0, 0 };
    assert_int_equal(put(c, "top.example.com", DNS_T_A, &t, 0), DNS_CACHE_STORED);
    assert_int_equal(get(c, "top.example.com", DNS_T_A, 0, &ttl, NULL), 1);
    assert_int_equal(ttl, DNS_CACHE_TTL_MAX);

    /* Negative entries have their own cap. */
    struct reply n = { "nope.example.com", DNS_T_A, DNS_R_NXDOMAIN, NULL, 0, 1, 86400, 86400, 0 };
    assert_int_equal(put(c, "nope.example.com", DNS_T_A, &n, 0), DNS_CACHE_STORED_NEG);
    assert_int_equal(get(c, "nope.example.com", DNS_T_A, 0, &ttl, NULL), 1);
    assert_int_equal(ttl, DNS_CACHE_NEG_TTL_MAX);
    dns_cache_free(c);
}

static void test_ttl_top_bit_is_zero(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(BIG);
    assert_non_null(c);
    uint32_t ttl;
    static const uint32_t over[] = { 0x80000000u };
    static const uint32_t mixed[] = { 300, 0xfffffff0u };
    static const uint32_t zero[] = { 0 };
    struct reply r = { "www.example.com", DNS_T_A, 0, over, 1, 0, 0, 0, 0 };
    assert_int_equal(put(c, "www.example.com", DNS_T_A, &r, 0), DNS_CACHE_E_TTL_ZERO);
    r.an = mixed, r.nan = 2;
    assert_int_equal(put(c, "www.example.com", DNS_T_A, &r, 0), DNS_CACHE_E_TTL_ZERO);
    r.an = zero, r.nan = 1;
    assert_int_equal(put(c, "www.example.com", DNS_T_A, &r, 0), DNS_CACHE_E_TTL_ZERO);
    /* In the SOA: its TTL, and its MINIMUM. */
    struct reply n = { "nope.example.com", DNS_T_A, DNS_R_NXDOMAIN, NULL, 0, 1, 0x80000000u,
                       600, 0 };
    assert_int_equal(put(c, "nope.example.com", DNS_T_A, &n, 0), DNS_CACHE_E_TTL_ZERO);
    n.soa_ttl = 600, n.soa_min = 0x90000000u;
    assert_int_equal(put(c, "nope.example.com", DNS_T_A, &n, 0), DNS_CACHE_E_TTL_ZERO);
    assert_int_equal(get(c, "www.example.com", DNS_T_A, 0, &ttl, NULL), 0);
    assert_int_equal(get(c, "nope.example.com", DNS_T_A, 0, &ttl, NULL), 0);
    dns_cache_free(c);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    static const uint32_t an[] = { 3600 };
    struct reply r[4] = {
        { "a.example.com", DNS_T_A, 0, an, 1, 0, 0, 0, 0 },
        { "b.example.com", DNS_T_A, 0, an, 1, 0, 0, 0, 0 },
        { "c.example.com", DNS_T_A, 0, an, 1, 0, 0, 0, 0 },
        { "d.example.com", DNS_T_A, 0, an, 1, 0, 0, 0, 0 },
    };
    uint8_t buf[1024];
    size_t len = build(buf, sizeof buf, &r[0]);
    dns_name_t k = N("a.example.com");
    size_t cost = dns_cache_entry_cost(&k, len);
    /* One shard so the LRU order is global; room for three entries. */
    dns_cache_t *c = dns_cache_new_shards(3 * cost + cost / 2, 1);
    assert_non_null(c);
    uint32_t ttl;
    assert_int_equal(put(c, "a.example.com", DNS_T_A, &r[0], 1), DNS_CACHE_STORED);
    assert_int_equal(put(c, "b.example.com", DNS_T_A, &r[1], 2), DNS_CACHE_STORED);
    assert_int_equal(put(c, "c.example.com", DNS_T_A, &r[2], 3), DNS_CACHE_STORED);
    assert_int_equal(get(c, "a.example.com", DNS_T_A, 4, &ttl, NULL), 1);  /* a is fresh now */
    assert_int_equal(put(c, "d.example.com", DNS_T_A, &r[3], 5), DNS_CACHE_STORED);

    dns_cache_stats_t st;
    dns_cache_stats(c, &st);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.bytes, 3 * cost);
    assert_int_equal(get(c, "b.example.com", DNS_T_A, 6, &ttl, NULL), 0);  /* oldest unused */
    assert_int_equal(get(c, "a.example.com", DNS_T_A, 6, &ttl, NULL), 1);
    assert_int_equal(get(c, "c.example.com", DNS_T_A, 6, &ttl, NULL), 1);
    assert_int_equal(get(c, "d.example.com", DNS_T_A, 6, &ttl, NULL), 1);

    /* Order now a, c, d (d newest): b comes back and pushes a out. */
    assert_int_equal(put(c, "b.example.com", DNS_T_A, &r[1], 7), DNS_CACHE_STORED);
    assert_int_equal(get(c, "a.example.com", DNS_T_A, 8, &ttl, NULL), 0);
    assert_int_equal(get(c, "b.example.com", DNS_T_A, 8, &ttl, NULL), 1);
    dns_cache_stats(c, &st);
    assert_int_equal(st.evictions, 2);
    assert_int_equal(st.entries, 3);
    dns_cache_free(c);
}

static void test_replace_entry(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new_shards(BIG, 1);
    assert_non_null(c);
    uint32_t ttl;
    int neg;
    static const uint32_t one[] = { 300 };
    static const uint32_t three[] = { 60, 60, 60 };
    struct reply r1 = { "www.example.com", DNS_T_A, 0, one, 1, 0, 0, 0, 0 };
    struct reply r2 = { "www.example.com", DNS_T_A, 0, three, 3, 0, 0, 0, 0 };
    assert_int_equal(put(c, "www.example.com", DNS_T_A, &r1, 0), DNS_CACHE_STORED);
    assert_int_equal(put(c, "WWW.example.com", DNS_T_A, &r2, 10), DNS_CACHE_STORED);

    uint8_t want[1024], out[1024];
    size_t want_len = build(want, sizeof want, &r2), len;
    dns_name_t k = N("www.example.com");
    assert_int_equal(dns_cache_get(c, &k, DNS_T_A, DNS_C_IN, 10, out, sizeof out, &len, &ttl,
                                   &neg), 1);
    assert_int_equal(len, want_len);
    assert_memory_equal(out, want, len);
    assert_int_equal(ttl, 60);
    dns_cache_stats_t st;
    dns_cache_stats(c, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.bytes, dns_cache_entry_cost(&k, want_len));
    assert_int_equal(st.evictions, 0);

    /* A refused put leaves the entry; a negative one replaces it. */
    struct reply sf = { "www.example.com", DNS_T_A, DNS_R_SERVFAIL, NULL, 0, 0, 0, 0, 0 };
    assert_int_equal(put(c, "www.example.com", DNS_T_A, &sf, 20), DNS_CACHE_E_RCODE);
    assert_int_equal(get(c, "www.example.com", DNS_T_A, 20, &ttl, &neg), 1);
    assert_int_equal(neg, DNS_CACHE_POS);
    struct reply nx = { "www.example.com", DNS_T_A, DNS_R_NXDOMAIN, NULL, 0, 1, 900, 900, 0 };
    assert_int_equal(put(c, "www.example.com", DNS_T_A, &nx, 30), DNS_CACHE_STORED_NEG);
    assert_int_equal(get(c, "www.example.com", DNS_T_A, 30, &ttl, &neg), 1);
    assert_int_equal(neg, DNS_CACHE_NXDOMAIN);
    assert_int_equal(ttl, 900);
    dns_cache_stats(c, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.stored, 3);
    dns_cache_free(c);
}

static void test_caps_on_size(void **state)
{
    (void)state;
    struct reply r = { "www.example.com", DNS_T_A, 0, ttl_300_600, 2, 0, 0, 0, 0 };
    uint8_t buf[1024];
    size_t len = build(buf, sizeof buf, &r);
    dns_name_t k = N("www.example.com");
    size_t cost = dns_cache_entry_cost(&k, len);

    /* An entry larger than a shard's share is refused. */
    dns_cache_t *c = dns_cache_new_shards(2 * cost - 1, 2);
    assert_non_null(c);
    assert_int_equal(dns_cache_put(c, &k, DNS_T_A, DNS_C_IN, buf, len, 0), DNS_CACHE_E_TOO_BIG);
    dns_cache_free(c);

    /* A buffer too small: the size needed, and the entry kept. */
    c = dns_cache_new(BIG);
    assert_non_null(c);
    assert_int_equal(dns_cache_put(c, &k, DNS_T_A, DNS_C_IN, buf, len, 0), DNS_CACHE_STORED);
    uint8_t out[1024];
    size_t got = 0;
    assert_int_equal(dns_cache_get(c, &k, DNS_T_A, DNS_C_IN, 0, out, len - 1, &got, NULL, NULL),
                     DNS_CACHE_E_NOSPACE);
    assert_int_equal(got, len);
    assert_int_equal(dns_cache_get(c, &k, DNS_T_A, DNS_C_IN, 0, out, len, &got, NULL, NULL), 1);
    assert_memory_equal(out, buf, len);
    dns_cache_free(c);

    /* Bad shard counts. */
    assert_null(dns_cache_new_shards(BIG, 0));
    assert_null(dns_cache_new_shards(BIG, 3));
    assert_null(dns_cache_new_shards(BIG, DNS_CACHE_SHARDS_MAX * 2));
}

/* ------------------------------------------------------- four threads */

#define THREADS 4
#define ROUNDS 3000
#define KEYS 256

struct worker {
    dns_cache_t *c;
    unsigned id;
    uint64_t gets, hits, puts, bad;   /* bad: checks failed (cmocka's
                                          asserts must stay on the main thread) */
};

static void *work(void *arg)
{
    struct worker *w = arg;
    uint32_t x = 0x9e3779b9u * (w->id + 1);
    static const uint32_t ttls[] = { 5, 30 };
    uint8_t buf[1024], out[1024];
    for (unsigned i = 0; i < ROUNDS; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        char name[64];
        snprintf(name, sizeof name, "h%u.Example.com", x % KEYS);
        dns_name_t k = N(name);
        uint64_t now = 1000 + i / 50;     /* virtual time, a little apart per thread */
        if (x & 0x100) {
            struct reply r = { name, DNS_T_A, 0, ttls, 1 + (x >> 9) % 2, 0, 0, 0, 0 };
            if ((x >> 12) % 8 == 0)
                r = (struct reply){ name, DNS_T_A, DNS_R_NXDOMAIN, NULL, 0, 1, 20, 20, 0 };
            size_t len = build(buf, sizeof buf, &r);
            int rc = dns_cache_put(w->c, &k, DNS_T_A, DNS_C_IN, buf, len, now);
            w->bad += !(rc == DNS_CACHE_STORED || rc == DNS_CACHE_STORED_NEG);
            w->puts++;
        } else {
            size_t len;
            uint32_t ttl = 0;
            int neg = -1;
            int rc = dns_cache_get(w->c, &k, DNS_T_A, DNS_C_IN, now, out, sizeof out, &len,
                                   &ttl, &neg);
            w->bad += !(rc == 0 || rc == 1);
            w->gets++;
            if (rc == 1) {
                w->hits++;
                w->bad += !(ttl >= 1 && ttl <= 30);
                w->bad += !(neg == DNS_CACHE_POS || neg == DNS_CACHE_NXDOMAIN);
                w->bad += !(len > DNS_HEADER_LEN && (out[2] & 0x80));
            }
        }
    }
    return NULL;
}

static void test_four_threads(void **state)
{
    (void)state;
    /* Small enough that the shards evict. */
    size_t cap = 32u * 1024u;
    dns_cache_t *c = dns_cache_new(cap);
    assert_non_null(c);
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        w[i] = (struct worker){ c, i, 0, 0, 0, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    uint64_t gets = 0, hits = 0, puts = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        gets += w[i].gets, hits += w[i].hits, puts += w[i].puts;
        assert_int_equal(w[i].bad, 0);
    }
    dns_cache_stats_t st;
    dns_cache_stats(c, &st);
    assert_int_equal(st.hits + st.misses, gets);
    assert_int_equal(st.hits, hits);
    assert_int_equal(st.stored, puts);
    assert_true(st.bytes <= cap);
    assert_true(st.entries <= KEYS);
    assert_true(st.evictions > 0);
    assert_true(hits > 0);
    /* Entries held = stored - replaced - evicted - expired; replacements are
     * not counted, so only a bound. */
    assert_true(st.entries + st.evictions + st.expired <= st.stored);
    dns_cache_free(c);
}

/* A reply to `q` A with answer records (owner, type, target-or-NULL) and,
 * if soa_owner, an SOA of that owner in authority. */
static int put_records(dns_cache_t *c, const char *q, unsigned rcode,
                       const char *const (*an)[3], size_t nan, const char *soa_owner)
{
    uint8_t buf[1024];
    dns_builder_t b;
    dns_name_t qn = N(q);
    assert_int_equal(dns_builder_init(&b, buf, sizeof buf, 1, (uint16_t)(DNS_F_QR | rcode)), 0);
    assert_int_equal(dns_builder_question(&b, &qn, DNS_T_A, DNS_C_IN), 0);
    for (size_t i = 0; i < nan; i++) {
        dns_rr_t rr;
        memset(&rr, 0, sizeof rr);
        rr.name = N(an[i][0]);
        rr.rclass = DNS_C_IN;
        rr.ttl = 300;
        if (strcmp(an[i][1], "CNAME") == 0) {
            rr.type = DNS_T_CNAME;
            rr.target = N(an[i][2]);
        } else if (strcmp(an[i][1], "MX") == 0) {
            rr.type = DNS_T_MX;
            rr.mx.exchange = N(an[i][2]);
        } else {
            rr.type = DNS_T_A;
            rr.a[0] = 192;
        }
        assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), 0);
    }
    if (soa_owner != NULL) {
        dns_rr_t rr;
        memset(&rr, 0, sizeof rr);
        rr.name = N(soa_owner);
        rr.type = DNS_T_SOA;
        rr.rclass = DNS_C_IN;
        rr.ttl = 300;
        rr.soa.mname = N("ns1.example.com");
        rr.soa.rname = N("hostmaster.example.com");
        rr.soa.minimum = 60;
        assert_int_equal(dns_builder_rr(&b, DNS_SEC_NS, &rr), 0);
    }
    return dns_cache_put(c, &qn, DNS_T_A, DNS_C_IN, buf, b.len, 0);
}

static void test_answers_must_match_question(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(BIG);
    const char *const chain[][3] = { { "www.example.com", "CNAME", "web.example.net" },
                                     { "web.example.net", "A", NULL } };
    assert_int_equal(put_records(c, "www.example.com", 0, chain, 2, NULL), DNS_CACHE_STORED);
    /* Records of another name, nothing of the name asked. */
    const char *const other[][3] = { { "victim.example.org", "A", NULL } };
    assert_int_equal(put_records(c, "www.example.com", 0, other, 1, NULL), DNS_CACHE_E_ANSWER);
    /* The answer, plus a record off the chain. */
    const char *const extra[][3] = { { "www.example.com", "A", NULL },
                                     { "victim.example.org", "A", NULL } };
    assert_int_equal(put_records(c, "www.example.com", 0, extra, 2, NULL), DNS_CACHE_E_ANSWER);
    /* A record of another type owned by the name. */
    const char *const mx[][3] = { { "www.example.com", "MX", "mail.example.com" } };
    assert_int_equal(put_records(c, "www.example.com", 0, mx, 1, NULL), DNS_CACHE_E_ANSWER);
    /* The chain's target, without the first link. */
    const char *const headless[][3] = { { "web.example.net", "A", NULL } };
    assert_int_equal(put_records(c, "www.example.com", 0, headless, 1, NULL), DNS_CACHE_E_ANSWER);
    dns_cache_free(c);
}

static void test_negative_soa_in_zone(void **state)
{
    (void)state;
    dns_cache_t *c = dns_cache_new(BIG);
    assert_int_equal(put_records(c, "nx.example.com", DNS_R_NXDOMAIN, NULL, 0, "example.com"),
                     DNS_CACHE_STORED_NEG);
    assert_int_equal(put_records(c, "nx.example.com", DNS_R_NXDOMAIN, NULL, 0, "."),
                     DNS_CACHE_STORED_NEG);
    /* An SOA of another zone, or of a name below the one asked. */
    assert_int_equal(put_records(c, "nx.example.com", DNS_R_NXDOMAIN, NULL, 0, "example.org"),
                     DNS_CACHE_E_SOA_ZONE);
    assert_int_equal(put_records(c, "nx.example.com", 0, NULL, 0, "sub.nx.example.com"),
                     DNS_CACHE_E_SOA_ZONE);
    /* After a CNAME, the SOA of the target's zone. */
    const char *const cn[][3] = { { "nx.example.com", "CNAME", "gone.example.net" } };
    assert_int_equal(put_records(c, "nx.example.com", DNS_R_NXDOMAIN, cn, 1, "example.net"),
                     DNS_CACHE_STORED_NEG);
    dns_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positive_lives_exactly_ttl),
        cmocka_unit_test(test_names_without_case),
        cmocka_unit_test(test_nxdomain_with_soa),
        cmocka_unit_test(test_nodata_with_soa),
        cmocka_unit_test(test_negative_without_soa_not_cached),
        cmocka_unit_test(test_uncacheable_replies),
        cmocka_unit_test(test_ttl_caps),
        cmocka_unit_test(test_ttl_top_bit_is_zero),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_replace_entry),
        cmocka_unit_test(test_caps_on_size),
        cmocka_unit_test(test_four_threads),
        cmocka_unit_test(test_answers_must_match_question),
        cmocka_unit_test(test_negative_soa_in_zone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
