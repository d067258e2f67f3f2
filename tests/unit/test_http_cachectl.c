/* test_http_cachectl.c - RFC 9111 rules (src/http/cachectl.c): a table of
 * header sets with the expected storability, freshness lifetime, current
 * age and decision, then Cache-Control parsing, Vary and 304 updates.
 *
 * Times: the response's Date is T0 = 1700000000 (Tue, 14 Nov 2023
 * 22:13:20 GMT) unless a case says otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http/cachectl.h"

#define T0 1700000000
#define DATE_T0       "Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
#define LM_T0_100000  "Last-Modified: Mon, 13 Nov 2023 18:26:40 GMT\r\n"
#define LM_T0_30D     "Last-Modified: Sun, 15 Oct 2023 22:13:20 GMT\r\n"
#define EXP_T0_3600   "Expires: Tue, 14 Nov 2023 23:13:20 GMT\r\n"

/* Parses "Name: value\r\n..." into f (the text must outlive f). */
static size_t fields(const char *text, http_field_t *f, size_t max)
{
    static char buf[8][2048];
    static int k;
    char *b = buf[k++ % 8];
    size_t tl = strlen(text);
    int ends = tl >= 2 && text[tl - 2] == '\r' && text[tl - 1] == '\n';
    snprintf(b, sizeof buf[0], "%s%s\r\n", text, tl == 0 || ends ? "" : "\r\n");
    size_t n = 0;
    const char *why;
    int rc = http_parse_fields(b, b + strlen(b), f, max, &n, &why);
    if (rc != 0)
        fail_msg("bad test fields: %s", why);
    return n;
}

struct ccase {
    const char *name;
    int status;
    const char *req;        /* request fields */
    const char *res;        /* response fields */
    int shared;
    long req_time, resp_time, now;
    int storable;
    const char *why;        /* when not storable */
    long freshness;
    int heuristic;
    long age;
    enum http_cache_use use;
};

#define F HTTP_CACHE_USE_FRESH
#define S HTTP_CACHE_USE_STALE
#define R HTTP_CACHE_USE_REVALIDATE

static const struct ccase cases[] = {
    { "max-age fresh", 200, "", DATE_T0 "Cache-Control: max-age=60", 0, T0, T0, T0 + 10, 1, "", 60, 0, 10, F },
    { "max-age stale", 200, "", DATE_T0 "Cache-Control: max-age=60", 0, T0, T0, T0 + 60, 1, "", 60, 0, 60, R },
    { "max-age beats Expires", 200, "", DATE_T0 EXP_T0_3600 "Cache-Control: max-age=5", 0, T0, T0, T0, 1, "", 5, 0, 0, F },
    { "Expires minus Date", 200, "", DATE_T0 EXP_T0_3600, 0, T0, T0, T0 + 3599, 1, "", 3600, 0, 3599, F },
    { "Expires invalid is stale", 200, "", DATE_T0 "Expires: 0", 0, T0, T0, T0, 1, "", 0, 0, 0, R },
    { "Expires in the past", 200, "", DATE_T0 "Expires: Mon, 13 Nov 2023 18:26:40 GMT", 0, T0, T0, T0, 1, "", 0, 0, 0, R },
    { "s-maxage in a shared cache", 200, "", DATE_T0 "Cache-Control: max-age=10, s-maxage=100", 1, T0, T0, T0 + 50, 1, "", 100, 0, 50, F },
    { "s-maxage ignored privately", 200, "", DATE_T0 "Cache-Control: max-age=10, s-maxage=100", 0, T0, T0, T0 + 50, 1, "", 10, 0, 50, R },
    { "heuristic 10%", 200, "", DATE_T0 LM_T0_100000, 0, T0, T0, T0 + 9999, 1, "", 10000, 1, 9999, F },
    { "heuristic 10% expired", 200, "", DATE_T0 LM_T0_100000, 0, T0, T0, T0 + 10000, 1, "", 10000, 1, 10000, R },
    { "heuristic capped at a day", 200, "", DATE_T0 LM_T0_30D, 0, T0, T0, T0, 1, "", 86400, 1, 0, F },
    { "heuristic not for 302", 302, "", DATE_T0 LM_T0_100000, 0, T0, T0, T0, 0, "no freshness information and status not heuristically cacheable", 0, 0, 0, R },
    { "heuristic 404", 404, "", DATE_T0 LM_T0_100000, 0, T0, T0, T0, 1, "", 10000, 1, 0, F },
    { "public 302 heuristic", 302, "", DATE_T0 LM_T0_100000 "Cache-Control: public", 0, T0, T0, T0, 1, "", 10000, 1, 0, F },
    { "no Last-Modified: lifetime 0", 200, "", DATE_T0 "ETag: \"x\"", 0, T0, T0, T0, 1, "", 0, 0, 0, R },
    { "Age field counts", 200, "", DATE_T0 "Age: 30\r\nCache-Control: max-age=60", 0, T0, T0, T0 + 10, 1, "", 60, 0, 40, F },
    { "Age plus delay", 200, "", DATE_T0 "Age: 30\r\nCache-Control: max-age=60", 0, T0 - 5, T0, T0, 1, "", 60, 0, 35, F },
    { "apparent age from Date", 200, "", DATE_T0 "Cache-Control: max-age=60", 0, T0 + 100, T0 + 100, T0 + 100, 1, "", 60, 0, 100, R },
    { "Date in the future", 200, "", DATE_T0 "Cache-Control: max-age=60", 0, T0 - 100, T0 - 100, T0 - 90, 1, "", 60, 0, 10, F },
    { "bad Age ignored", 200, "", DATE_T0 "Age: x\r\nCache-Control: max-age=60", 0, T0, T0, T0, 1, "", 60, 0, 0, F },
    { "no Date: response time", 200, "", "Cache-Control: max-age=60", 0, T0, T0, T0 + 20, 1, "", 60, 0, 20, F },
    { "no-store", 200, "", DATE_T0 "Cache-Control: no-store, max-age=60", 0, T0, T0, T0, 0, "no-store", 60, 0, 0, F },
    { "request no-store", 200, "Cache-Control: no-store", DATE_T0 "Cache-Control: max-age=60", 0, T0, T0, T0, 0, "no-store in the request", 60, 0, 0, F },
    { "no-cache stored, revalidated", 200, "", DATE_T0 "Cache-Control: no-cache, max-age=60", 0, T0, T0, T0, 1, "", 60, 0, 0, R },
    { "request no-cache", 200, "Cache-Control: no-cache", DATE_T0 "Cache-Control: max-age=60", 0, T0, T0, T0, 1, "", 60, 0, 0, R },
    { "request Pragma no-cache", 200, "Pragma: no-cache", DATE_T0 "Cache-Control: max-age=60", 0, T0, T0, T0, 1, "", 60, 0, 0, R },
    { "Pragma yields to Cache-Control", 200, "Pragma: no-cache\r\nCache-Control: max-stale", DATE_T0 "Cache-Control: max-age=60", 0, T0, T0, T0, 1, "", 60, 0, 0, F },
    { "request max-age below age", 200, "Cache-Control: max-age=5", DATE_T0 "Cache-Control: max-age=60", 0, T0, T0, T0 + 10, 1, "", 60, 0, 10, R },
    { "request min-fresh", 200, "Cache-Control: min-fresh=30", DATE_T0 "Cache-Control: max-age=60", 0, T0, T0, T0 + 40, 1, "", 60, 0, 40, R },
    { "request max-stale any", 200, "Cache-Control: max-stale", DATE_T0 "Cache-Control: max-age=60", 0, T0, T0, T0 + 1000, 1, "", 60, 0, 1000, S },
    { "request max-stale short", 200, "Cache-Control: max-stale=10", DATE_T0 "Cache-Control: max-age=60", 0, T0, T0, T0 + 100, 1, "", 60, 0, 100, R },
    { "request max-stale enough", 200, "Cache-Control: max-stale=50", DATE_T0 "Cache-Control: max-age=60", 0, T0, T0, T0 + 100, 1, "", 60, 0, 100, S },
    { "must-revalidate beats max-stale", 200, "Cache-Control: max-stale", DATE_T0 "Cache-Control: max-age=60, must-revalidate", 0, T0, T0, T0 + 100, 1, "", 60, 0, 100, R },
    { "proxy-revalidate shared", 200, "Cache-Control: max-stale", DATE_T0 "Cache-Control: max-age=60, proxy-revalidate", 1, T0, T0, T0 + 100, 1, "", 60, 0, 100, R },
    { "proxy-revalidate private", 200, "Cache-Control: max-stale", DATE_T0 "Cache-Control: max-age=60, proxy-revalidate", 0, T0, T0, T0 + 100, 1, "", 60, 0, 100, S },
    { "private in shared", 200, "", DATE_T0 "Cache-Control: private, max-age=60", 1, T0, T0, T0, 0, "private", 60, 0, 0, F },
    { "private in private", 200, "", DATE_T0 "Cache-Control: private", 0, T0, T0, T0, 1, "", 0, 0, 0, R },
    { "Authorization shared", 200, "Authorization: Basic eA==", DATE_T0 "Cache-Control: max-age=60", 1, T0, T0, T0, 0, "request with Authorization", 60, 0, 0, F },
    { "Authorization shared public", 200, "Authorization: Basic eA==", DATE_T0 "Cache-Control: max-age=60, public", 1, T0, T0, T0, 1, "", 60, 0, 0, F },
    { "Authorization private", 200, "Authorization: Basic eA==", DATE_T0 "Cache-Control: max-age=60", 0, T0, T0, T0, 1, "", 60, 0, 0, F },
    { "Vary star", 200, "", DATE_T0 "Cache-Control: max-age=60\r\nVary: Accept, *", 0, T0, T0, T0, 0, "Vary: *", 60, 0, 0, F },
    { "206 not stored", 206, "", DATE_T0 "Cache-Control: max-age=60", 0, T0, T0, T0, 0, "status not stored", 60, 0, 0, F },
    { "invalid max-age is stale", 200, "", DATE_T0 "Cache-Control: max-age=abc", 0, T0, T0, T0, 1, "", 0, 0, 0, R },
    { "conflicting max-age is stale", 200, "", DATE_T0 "Cache-Control: max-age=60\r\nCache-Control: max-age=70", 0, T0, T0, T0, 1, "", 0, 0, 0, R },
    { "quoted max-age", 200, "", DATE_T0 "Cache-Control: max-age=\"60\"", 0, T0, T0, T0, 1, "", 60, 0, 0, F },
    { "huge max-age clamped", 200, "", DATE_T0 "Cache-Control: max-age=99999999999999999999", 0, T0, T0, T0, 1, "", 2147483648L, 0, 0, F },
    { "case and spaces", 200, "", DATE_T0 "cache-control:  MAX-AGE=60 ,  Public ", 0, T0, T0, T0 + 1, 1, "", 60, 0, 1, F },
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct ccase *c = &cases[i];
        http_field_t rq[16], rs[16];
        size_t nrq = fields(c->req[0] ? c->req : "", rq, 16);
        if (c->req[0] == '\0')
            nrq = 0;
        size_t nrs = fields(c->res, rs, 16);
        const char *why = "";
        int st = http_cache_storable(HTTP_M_GET, rq, nrq, c->status, rs, nrs, c->shared, &why);
        if (st != c->storable || (!st && strcmp(why, c->why) != 0))
            fail_msg("%s: storable %d (%s)", c->name, st, why);
        int heur = -1;
        int64_t fr = http_cache_freshness(c->status, rs, nrs, c->shared, c->resp_time, &heur);
        if (fr != c->freshness || heur != c->heuristic)
            fail_msg("%s: freshness %lld heuristic %d", c->name, (long long)fr, heur);
        int64_t init = http_cache_initial_age(rs, nrs, c->req_time, c->resp_time);
        int64_t age = http_cache_age(init, c->resp_time, c->now);
        if (age != c->age)
            fail_msg("%s: age %lld", c->name, (long long)age);
        http_cc_t qcc, rcc;
        http_cc_from_fields(&qcc, rq, nrq);
        if (http_cache_pragma_no_cache(rq, nrq))
            qcc.flags |= HTTP_CC_NO_CACHE;
        http_cc_from_fields(&rcc, rs, nrs);
        enum http_cache_use u = http_cache_decide(&qcc, &rcc, fr, age, c->shared);
        if (u != c->use)
            fail_msg("%s: decision %s", c->name, http_cache_use_name(u));
    }
}

static void test_non_get(void **state)
{
    (void)state;
    http_field_t rs[4];
    size_t n = fields("Cache-Control: max-age=60", rs, 4);
    const char *why;
    assert_int_equal(http_cache_storable(HTTP_M_POST, NULL, 0, 200, rs, n, 0, &why), 0);
    assert_string_equal(why, "method not cacheable");
    assert_int_equal(http_cache_storable(HTTP_M_GET, NULL, 0, 100, rs, n, 0, &why), 0);
}

static void test_cc_parse(void **state)
{
    (void)state;
    http_cc_t cc;
    http_cc_init(&cc);
    http_cc_parse(&cc, SLICE_LIT("no-cache=\"Set-Cookie, X\", max-stale, min-fresh=7, "
                                 "private=\"a,b\", x-ext=\"q,r\", immutable"));
    assert_true(cc.flags & HTTP_CC_NO_CACHE);
    assert_true(cc.flags & HTTP_CC_PRIVATE);
    assert_true(cc.flags & HTTP_CC_MAX_STALE);
    assert_int_equal(cc.max_stale, -1);
    assert_int_equal(cc.min_fresh, 7);
    assert_true(cc.flags & HTTP_CC_IMMUTABLE);
    assert_false(cc.flags & HTTP_CC_INVALID);
    http_cc_init(&cc);
    http_cc_parse(&cc, SLICE_LIT("max-age"));
    assert_true(cc.flags & HTTP_CC_INVALID);
    http_cc_init(&cc);
    http_cc_parse(&cc, SLICE_LIT("max-age=5, max-age=5"));
    assert_false(cc.flags & HTTP_CC_INVALID);
    assert_int_equal(cc.max_age, 5);
}

static void test_vary(void **state)
{
    (void)state;
    http_field_t rs[4], a[4], b[4];
    size_t nrs = fields("Vary: Accept-Encoding, accept-language", rs, 4);
    size_t na = fields("Accept-Encoding: gzip\r\nAccept-Language: en", a, 4);
    size_t nb = fields("accept-encoding:   gzip  \r\nACCEPT-LANGUAGE: en", b, 4);
    assert_int_equal(http_cache_vary_match(rs, nrs, a, na, b, nb), 1);
    nb = fields("Accept-Encoding: br\r\nAccept-Language: en", b, 4);
    assert_int_equal(http_cache_vary_match(rs, nrs, a, na, b, nb), 0);
    nb = fields("Accept-Encoding: gzip", b, 4);
    assert_int_equal(http_cache_vary_match(rs, nrs, a, na, b, nb), 0);
    /* Absent from both matches; a list over two fields equals one field. */
    na = fields("Accept-Encoding: gzip, br", a, 4);
    nb = fields("Accept-Encoding: gzip\r\nAccept-Encoding: br", b, 4);
    assert_int_equal(http_cache_vary_match(rs, nrs, a, na, b, nb), 1);
    nrs = fields("Vary: *", rs, 4);
    assert_int_equal(http_cache_vary_match(rs, nrs, a, na, b, nb), -1);
    nrs = fields("Content-Type: text/plain", rs, 4);
    assert_int_equal(http_cache_vary_match(rs, nrs, a, na, b, 0), 1);
}

static void test_update_and_validator(void **state)
{
    (void)state;
    assert_int_equal(http_cache_keep_on_update(SLICE_LIT("Content-Length")), 1);
    assert_int_equal(http_cache_keep_on_update(SLICE_LIT("content-type")), 1);
    assert_int_equal(http_cache_keep_on_update(SLICE_LIT("Connection")), 1);
    assert_int_equal(http_cache_keep_on_update(SLICE_LIT("Cache-Control")), 0);
    assert_int_equal(http_cache_keep_on_update(SLICE_LIT("ETag")), 0);
    http_field_t rs[4];
    size_t n = fields(LM_T0_100000 "ETag: \"v1\"", rs, 4);
    const char *name;
    slice_t v;
    assert_int_equal(http_cache_validator(rs, n, &name, &v), 1);
    assert_string_equal(name, "if-none-match");
    assert_true(slice_eq(v, SLICE_LIT("\"v1\"")));
    n = fields(LM_T0_100000, rs, 4);
    assert_int_equal(http_cache_validator(rs, n, &name, &v), 1);
    assert_string_equal(name, "if-modified-since");
    n = fields("Content-Type: x", rs, 4);
    assert_int_equal(http_cache_validator(rs, n, &name, &v), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_non_get),
        cmocka_unit_test(test_cc_parse),
        cmocka_unit_test(test_vary),
        cmocka_unit_test(test_update_and_validator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
