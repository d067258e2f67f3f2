/* test_http_misc.c - HTTP-dates (src/http/date.c), entity-tag lists and
 * Range (src/http/cond.c), request path normalisation and encoding
 * (src/http/path.c).
 *
 * Inputs are copied right before a PROT_NONE page, so a read past the
 * slice faults; outputs are written right before one too, with exactly the
 * room the call is told about. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "guard.h"

#include "http/cond.h"
#include "http/date.h"
#include "http/limits.h"
#include "http/parse.h"
#include "http/path.h"

/* ------------------------------------------------------------ guard pages */

/* n writable bytes right before the guard, filled with a sentinel. */
static char *guard_room(guard_t *g, size_t n)
{
    assert_true(n <= (size_t)(g->end - g->base));
    char *p = g->end - n;
    memset(p, '#', n);
    return p;
}

static guard_t g_in, g_out;

static int group_setup(void **state)
{
    (void)state;
    guard_init(&g_in, 1u << 16);
    guard_init(&g_out, 1u << 16);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    munmap(g_in.base, g_in.maplen);
    munmap(g_out.base, g_out.maplen);
    return 0;
}

static slice_t put(const char *s)
{
    size_t n = strlen(s);
    return slice_make(guard_put(&g_in, s, n), n);
}

/* ------------------------------------------------------------------- date */

static void test_date_format(void **state)
{
    (void)state;
    static const struct { time_t t; const char *want; } t[] = {
        { 0, "Thu, 01 Jan 1970 00:00:00 GMT" },
        { 784111777, "Sun, 06 Nov 1994 08:49:37 GMT" },
        { 86399, "Thu, 01 Jan 1970 23:59:59 GMT" },
        { 946684799, "Fri, 31 Dec 1999 23:59:59 GMT" },
        { 946684800, "Sat, 01 Jan 2000 00:00:00 GMT" },
        { 951782400, "Tue, 29 Feb 2000 00:00:00 GMT" },
        { 1709210096, "Thu, 29 Feb 2024 12:34:56 GMT" },
        { 2147483647, "Tue, 19 Jan 2038 03:14:07 GMT" },
        { (time_t)2147483648LL, "Tue, 19 Jan 2038 03:14:08 GMT" },
        { (time_t)253402300799LL, "Fri, 31 Dec 9999 23:59:59 GMT" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *out = guard_room(&g_out, HTTP_DATE_LEN + 1);
        assert_int_equal(http_date_format(out, t[i].t), HTTP_DATE_LEN);
        assert_string_equal(out, t[i].want);
    }
}

static void want_date(const char *in, int rc, time_t t)
{
    time_t got = (time_t)-12345;
    int r = http_date_parse(put(in), &got);
    if (r != rc || (rc == 0 && got != t)) {
        print_error("http_date_parse(\"%s\"): %d, %lld; want %d, %lld\n", in, r, (long long)got, rc,
                    (long long)t);
        fail();
    }
}

static void test_date_parse(void **state)
{
    (void)state;
    static const struct { const char *in; time_t t; } ok[] = {
        /* RFC 9110 §5.6.7: the three forms of one instant. */
        { "Sun, 06 Nov 1994 08:49:37 GMT", 784111777 },
        { "Sunday, 06-Nov-94 08:49:37 GMT", 784111777 },
        { "Sun Nov  6 08:49:37 1994", 784111777 },
        { "Thu, 01 Jan 1970 00:00:00 GMT", 0 },
        { "Thursday, 01-Jan-70 00:00:00 GMT", 0 },
        { "Thu Jan  1 00:00:00 1970", 0 },
        { "Tue, 29 Feb 2000 00:00:00 GMT", 951782400 },
        { "Tue Feb 29 00:00:00 2000", 951782400 },
        { "Thu Jan 29 00:00:00 1970", 2419200 },
        { "Thu Jan 01 00:00:00 1970", 0 },
        { "Tue, 19 Jan 2038 03:14:08 GMT", (time_t)2147483648LL },
        { "Fri, 31 Dec 9999 23:59:59 GMT", (time_t)253402300799LL },
        /* Two-digit years: 70-99 are 19xx, 00-69 20xx. */
        { "Friday, 31-Dec-99 23:59:59 GMT", 946684799 },
        { "Saturday, 01-Jan-00 00:00:00 GMT", 946684800 },
        { "Tuesday, 31-Dec-69 23:59:59 GMT", (time_t)3155759999LL },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        want_date(ok[i].in, 0, ok[i].t);

    static const char *const bad[] = {
        "",
        "yesterday",
        "Sun, 06 Nov 1994 08:49:37",          /* no zone */
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 06 Nox 1994 08:49:37 GMT",      /* month */
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 NOV 1994 08:49:37 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT",      /* day */
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",       /* lengths */
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",      /* time */
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 08.49.37 GMT",
        "Sun, 06 Nov 1994 08:4x:37 GMT",
        "Sun, 0a Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 19x4 08:49:37 GMT",
        "Sun, 06-Nov-1994 08:49:37 GMT",
        "Sux, 06 Nov 1994 08:49:37 GMT",      /* day name */
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun; 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 UTC",     /* RFC 850 */
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06 Nov 94 08:49:37 GMT",
        "Funday, 06-Nov-94 08:49:37 GMT",
        "Sunday, 32-Nov-94 08:49:37 GMT",
        "Sunday, 06-Nox-94 08:49:37 GMT",
        "Sunday, 06-Nov-94 24:49:37 GMT",
        "Sunday, 06-Nov-9x 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37",
        "Sunday,",
        "Sun Nov 6 08:49:37 1994",            /* asctime */
        "Sun Nov  6 08:49:37 94",
        "Sun Nov  6 08:49:37 1994 ",
        "Sun Nov  6 24:00:00 1994",
        "Sun Nov 32 08:49:37 1994",
        "Sun Nov  0 08:49:37 1994",
        "Sun Xov  6 08:49:37 1994",
        "Sun Nov  x 08:49:37 1994",
        "Sun Nov 6  08:49:37 1994",
        "Sun Nov   6 8:49:37 1994",
        "Sun  Nov 6 08:49:37 1994",
        "Xyz Nov  6 08:49:37 1994",
        "Sun Nov  6 08:49:37 199x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        want_date(bad[i], -1, 0);
}

/* Every instant formatted and parsed back, in all three forms. */
static void test_date_round_trip(void **state)
{
    (void)state;
    for (int64_t v = 0; v < 4102444800LL; v += 7777777 + (v % 86400)) {
        time_t t = (time_t)v;
        char buf[64];
        char *out = guard_room(&g_out, HTTP_DATE_LEN + 1);
        assert_int_equal(http_date_format(out, t), HTTP_DATE_LEN);
        want_date(out, 0, t);

        struct tm tm;
        gmtime_r(&t, &tm);
        assert_true(strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &tm) == 24);
        want_date(buf, 0, t);
        if (v < 3155760000LL) { /* up to 2069: the two-digit year window */
            size_t n = strftime(buf, sizeof buf, "%A, %d-%b-%y %H:%M:%S GMT", &tm);
            assert_true(n > 0);
            want_date(buf, 0, t);
        }
    }
}

/* --------------------------------------------------------------- entity-tags */

static void test_etag_match(void **state)
{
    (void)state;
    static const struct {
        const char *list, *etag;
        int strong, weak;   /* the answer for strong and weak comparison */
    } t[] = {
        { "*", "\"a\"", 1, 1 },
        { " \t*", "\"zzz\"", 1, 1 },
        { "\"a\"", "\"a\"", 1, 1 },
        { "\"a\"", "\"b\"", 0, 0 },
        { "\"A\"", "\"a\"", 0, 0 },
        { "\"ab\"", "\"a\"", 0, 0 },
        { "\"a\"", "\"ab\"", 0, 0 },
        { "\"\"", "\"\"", 1, 1 },
        { "W/\"a\"", "\"a\"", 0, 1 },
        { "W/\"a\", \"a\"", "\"a\"", 1, 1 },
        { "\"x\", W/\"a\"", "\"a\"", 0, 1 },
        { "\"a\", \"b\"", "\"b\"", 1, 1 },
        { "\"a\",\"b\"", "\"b\"", 1, 1 },
        { "\"a\" ,\t\"b\" , \"c\"", "\"c\"", 1, 1 },
        { ", ,\"b\",", "\"b\"", 1, 1 },
        { "\"a,b\"", "\"a,b\"", 1, 1 },
        { "\"a,b\"", "\"a\"", 0, 0 },
        { "\"a\", \"b\"", "\"a,b\"", 0, 0 },
        { "\"\x80\xff\"", "\"\x80\xff\"", 1, 1 },
        { "\"!#~\"", "\"!#~\"", 1, 1 },
        /* Bad syntax matches nothing, even after a match. */
        { "", "\"a\"", 0, 0 },
        { "a", "a", 0, 0 },
        { "\"a\" \"b\"", "\"a\"", 0, 0 },
        { "\"a\", junk", "\"a\"", 0, 0 },
        { "\"a", "\"a", 0, 0 },
        { "\"a\"x", "\"a\"", 0, 0 },
        { "W/a", "\"a\"", 0, 0 },
        { "w/\"a\"", "\"a\"", 0, 0 },
        { "W/", "\"a\"", 0, 0 },
        { "W\"a\"", "\"a\"", 0, 0 },
        { "\"a b\"", "\"a b\"", 0, 0 },
        { "\"a\tb\"", "\"a\tb\"", 0, 0 },
        { "\"a\x7f\"", "\"a\x7f\"", 0, 0 },
        { "*, \"a\"", "\"a\"", 0, 0 },
        { "\"a\", *", "\"a\"", 0, 0 },
        { "**", "\"a\"", 0, 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        for (int weak = 0; weak <= 1; weak++) {
            slice_t etag = slice_cstr(t[i].etag);
            int got = http_etag_match(put(t[i].list), etag, weak);
            int want = weak ? t[i].weak : t[i].strong;
            if (got != want) {
                print_error("etag_match(%s, %s, %s): %d, want %d\n", t[i].list, t[i].etag,
                            weak ? "weak" : "strong", got, want);
                fail();
            }
        }
    }
}

/* ------------------------------------------------------------------ Range */

#define IGN HTTP_RANGE_IGNORE
#define OK HTTP_RANGE_OK
#define UNSAT HTTP_RANGE_UNSATISFIABLE

static void want_range(const char *v, uint64_t size, enum http_range_result want, uint64_t first,
                       uint64_t last)
{
    uint64_t f = 12345, l = 67890;
    enum http_range_result r = http_range_parse(put(v), size, &f, &l);
    if (r != want || (want == OK && (f != first || l != last))) {
        print_error("range \"%s\" of %llu: %d [%llu, %llu], want %d [%llu, %llu]\n", v,
                    (unsigned long long)size, (int)r, (unsigned long long)f,
                    (unsigned long long)l, (int)want, (unsigned long long)first,
                    (unsigned long long)last);
        fail();
    }
}

static void test_range_parse(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        uint64_t size;
        enum http_range_result want;
        uint64_t first, last;
    } t[] = {
        { "bytes=0-0", 100, OK, 0, 0 },
        { "bytes=0-", 100, OK, 0, 99 },
        { "bytes=0-99", 100, OK, 0, 99 },
        { "bytes=10-19", 100, OK, 10, 19 },
        { "bytes=99-", 100, OK, 99, 99 },
        { "bytes=99-99", 100, OK, 99, 99 },
        { "bytes=-5", 100, OK, 95, 99 },
        { "bytes=-1", 100, OK, 99, 99 },
        { "bytes=-99", 100, OK, 1, 99 },
        { "bytes=-100", 100, OK, 0, 99 },
        { "bytes=-1000", 100, OK, 0, 99 },       /* suffix longer than the content */
        { "bytes=50-1000", 100, OK, 50, 99 },    /* last beyond the end: clamped */
        { "bytes=0-18446744073709551", 100, OK, 0, 99 },
        { "bytes=0-0", 1, OK, 0, 0 },
        { "bytes=-0", 100, UNSAT, 0, 0 },
        { "bytes=100-", 100, UNSAT, 0, 0 },
        { "bytes=100-200", 100, UNSAT, 0, 0 },
        { "bytes=1000-", 100, UNSAT, 0, 0 },
        { "bytes=0-", 0, UNSAT, 0, 0 },
        { "bytes=0-0", 0, UNSAT, 0, 0 },
        { "bytes=-0", 0, UNSAT, 0, 0 },
        { "bytes=5-2", 100, IGN, 0, 0 },         /* last < first: invalid */
        { "bytes=1-0", 100, IGN, 0, 0 },
        { "items=0-1", 100, IGN, 0, 0 },
        { "byte=0-1", 100, IGN, 0, 0 },
        { "bytes 0-1", 100, IGN, 0, 0 },
        { "bytes", 100, IGN, 0, 0 },
        { "", 100, IGN, 0, 0 },
        { "Bytes=0-1", 100, OK, 0, 1 },          /* the unit is case-insensitive */
        { "BYTES=-2", 100, OK, 98, 99 },
        { "bytes=0-1,5-6", 100, IGN, 0, 0 },     /* several ranges */
        { "bytes=0-1, 5-6", 100, IGN, 0, 0 },
        { "bytes=-1,-2", 100, IGN, 0, 0 },
        { "bytes=0-,", 100, IGN, 0, 0 },
        { "bytes= 0-1", 100, OK, 0, 1 },         /* whitespace */
        { "bytes=\t0-1 \t", 100, OK, 0, 1 },
        { "bytes= -5 ", 100, OK, 95, 99 },
        { "bytes=0 -1", 100, IGN, 0, 0 },
        { "bytes=0- 1", 100, IGN, 0, 0 },
        { "bytes=- 5", 100, IGN, 0, 0 },
        { "bytes=", 100, IGN, 0, 0 },            /* bad syntax */
        { "bytes=-", 100, IGN, 0, 0 },
        { "bytes=1", 100, IGN, 0, 0 },
        { "bytes=a-b", 100, IGN, 0, 0 },
        { "bytes=1-a", 100, IGN, 0, 0 },
        { "bytes=--5", 100, IGN, 0, 0 },
        { "bytes=+1-2", 100, IGN, 0, 0 },
        { "bytes=0x1-2", 100, IGN, 0, 0 },
        { "bytes=1-2-3", 100, IGN, 0, 0 },
        { "bytes=99999999999999999999-", 100, IGN, 0, 0 },   /* overflow */
        { "bytes=0-99999999999999999999", 100, IGN, 0, 0 },
        { "bytes=-99999999999999999999", 100, IGN, 0, 0 },
        { "bytes=18446744073709551616-", 100, IGN, 0, 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        want_range(t[i].v, t[i].size, t[i].want, t[i].first, t[i].last);
    /* Big contents. */
    want_range("bytes=-1", UINT64_MAX, OK, UINT64_MAX - 1, UINT64_MAX - 1);
    want_range("bytes=1000000000000-", 1000000000001ull, OK, 1000000000000ull, 1000000000000ull);
}

/* RFC 9110 §14.1.1: "When a selected representation has zero length, the
 * only satisfiable form of range-spec is a suffix-range with a non-zero
 * suffix-length." So it must not give 416; with nothing to send as a
 * range, the answer is the whole (empty) content. */
static void test_range_suffix_of_empty_content(void **state)
{
    (void)state;
    want_range("bytes=-5", 0, IGN, 0, 0);
}

/* ------------------------------------------------------------------- path */

#define REFUSED NULL

static void want_norm(const char *in, size_t outcap, const char *want)
{
    char *out = guard_room(&g_out, outcap);
    long r = http_path_normalize(put(in), out, outcap);
    if (want == REFUSED) {
        if (r != -1) {
            print_error("normalize(\"%s\", %zu) = %ld \"%.*s\", want -1\n", in, outcap, r,
                        r > 0 ? (int)r : 0, out);
            fail();
        }
        return;
    }
    if (r != (long)strlen(want) || memcmp(out, want, strlen(want) + 1) != 0) {
        print_error("normalize(\"%s\", %zu) = %ld \"%.*s\", want \"%s\"\n", in, outcap, r,
                    r > 0 ? (int)r : 0, r > 0 ? out : "", want);
        fail();
    }
}

static void test_path_normalize(void **state)
{
    (void)state;
    static const struct { const char *in, *want; } t[] = {
        { "/", "/" },
        { "/a", "/a" },
        { "/a/", "/a/" },
        { "/a/b", "/a/b" },
        { "/a/b/", "/a/b/" },
        { "//a//b", "/a/b" },
        { "//", "/" },
        { "/a//", "/a/" },
        { "///a///", "/a/" },
        { "/.", "/" },
        { "/./", "/" },
        { "/./a", "/a" },
        { "/a/.", "/a/" },
        { "/a/./", "/a/" },
        { "/a/./b", "/a/b" },
        { "/a/./b/./", "/a/b/" },
        { "/a/..", "/" },
        { "/a/../", "/" },
        { "/a/../b", "/b" },
        { "/a/b/..", "/a/" },
        { "/a/b/../c", "/a/c" },
        { "/a/b/../..", "/" },
        { "/a/b/c/../../d/", "/a/d/" },
        { "/...", "/..." },
        { "/..a", "/..a" },
        { "/a..", "/a.." },
        { "/a/..b", "/a/..b" },
        { "/.a", "/.a" },
        { "/..\\x", "/..\\x" },                 /* no backslash semantics */
        { "/%41%62c", "/Abc" },
        { "/a%20b", "/a b" },
        { "/%25", "/%" },
        { "/%e2%82%ac", "/\xe2\x82\xac" },
        { "/%E2%82%AC/", "/\xe2\x82\xac/" },
        { "/a/%2e", "/a/" },
        { "/a/%2e%2E", "/" },
        { "/a/.%2e/b", "/b" },
        { "/%252e%252e/", "/%2e%2e/" },         /* decoded once only */
        { "/%252e%252e/x", "/%2e%2e/x" },
        { "/a%5cb", "/a\\b" },
        /* Refused. */
        { "/..", REFUSED },
        { "/../", REFUSED },
        { "/../x", REFUSED },
        { "/./../", REFUSED },
        { "/a/../../x", REFUSED },
        { "/a/../..", REFUSED },
        { "/a/b/../../..", REFUSED },
        { "//..", REFUSED },
        { "/%2e%2e/", REFUSED },
        { "/%2e%2e", REFUSED },
        { "/.%2e", REFUSED },
        { "/%2E%2e%2fetc", REFUSED },
        { "/..%2f", REFUSED },
        { "/..%2F", REFUSED },
        { "/a/%2e%2e/%2e%2e/etc", REFUSED },
        { "/a%00b", REFUSED },
        { "/%00", REFUSED },
        { "/a%2fb", REFUSED },
        { "/a%2Fb", REFUSED },
        { "/%zz", REFUSED },
        { "/%4", REFUSED },
        { "/%", REFUSED },
        { "/a%", REFUSED },
        { "/%%41", REFUSED },
        { "/%g0", REFUSED },
        { "", REFUSED },
        { "a", REFUSED },
        { "a/b", REFUSED },
        { "%2f", REFUSED },
        { "*", REFUSED },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        want_norm(t[i].in, 256, t[i].want);
}

/* outcap: the result and its NUL must fit. */
static void test_path_normalize_outcap(void **state)
{
    (void)state;
    want_norm("/abc", 5, "/abc");
    want_norm("/abc", 4, REFUSED);
    want_norm("/a/", 4, "/a/");
    want_norm("/a/", 3, REFUSED);
    want_norm("/", 2, "/");
    want_norm("/", 1, REFUSED);
    want_norm("/", 0, REFUSED);
    want_norm("/%41%42", 4, "/AB");
    want_norm("/%41%42", 3, REFUSED);
    want_norm("//a//b", 5, "/a/b");
    want_norm("//a//b", 4, REFUSED);
    want_norm("/a/b/", 6, "/a/b/");
    want_norm("/a/b/", 5, REFUSED);
}

static void want_enc(const char *raw, size_t rawlen, size_t outcap, const char *want)
{
    char *out = guard_room(&g_out, outcap);
    long r = http_path_encode(slice_make(guard_put(&g_in, raw, rawlen), rawlen), out, outcap);
    if (want == NULL) {
        if (r != -1) {
            print_error("encode(\"%.*s\", %zu) = %ld, want -1\n", (int)rawlen, raw, outcap, r);
            fail();
        }
        return;
    }
    if (r != (long)strlen(want) || memcmp(out, want, strlen(want) + 1) != 0) {
        print_error("encode(\"%.*s\", %zu) = %ld \"%.*s\", want \"%s\"\n", (int)rawlen, raw,
                    outcap, r, r > 0 ? (int)r : 0, r > 0 ? out : "", want);
        fail();
    }
}

static void test_path_encode(void **state)
{
    (void)state;
    static const struct { const char *raw, *want; } t[] = {
        { "/", "/" },
        { "/a/b", "/a/b" },
        { "/a b", "/a%20b" },
        { "/%", "/%25" },
        { "/?#", "/%3F%23" },
        { "/'\"&<>", "/%27%22%26%3C%3E" },
        { "/-._~!$()*+,;=:@", "/-._~!$()*+,;=:@" },
        { "/AZaz09", "/AZaz09" },
        { "/\xc3\xa9", "/%C3%A9" },
        { "/\x7f\x80\xff", "/%7F%80%FF" },
        { "/\\[]{}|^`", "/%5C%5B%5D%7B%7D%7C%5E%60" },
        { "/\t\r\n", "/%09%0D%0A" },
        { "", "" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        want_enc(t[i].raw, strlen(t[i].raw), 256, t[i].want);
    want_enc("/a\0b", 4, 256, "/a%00b");

    /* outcap: the result and its NUL must fit. */
    want_enc("/ab", 3, 4, "/ab");
    want_enc("/ab", 3, 3, NULL);
    want_enc("/ ", 2, 5, "/%20");
    want_enc("/ ", 2, 4, NULL);
    want_enc("/ ", 2, 3, NULL);
    want_enc("", 0, 1, "");
}

/* Nothing fits in no room, not even the NUL: "-1 when outcap is too small". */
static void test_path_encode_no_room(void **state)
{
    (void)state;
    char out[2] = { '#', '#' };
    long r = http_path_encode(slice_make("", 0), out, 0);
    if (r != -1 || out[0] != '#') {
        print_error("encode(\"\", outcap 0) = %ld, out[0] = 0x%02x: wrote past outcap\n", r,
                    (unsigned char)out[0]);
        fail();
    }
}

/* encode then normalize gives the raw path back, and what encode makes is
 * a valid origin-form target for the parser. */
static void test_path_round_trip(void **state)
{
    (void)state;
    struct http_limits lim;
    http_limits_default(&lim);
    http_field_t fields[4];
    for (int ch = 1; ch < 256; ch++) {
        if (ch == '/')
            continue;
        char raw[8] = { '/', 'x', (char)ch, 'y', '/', (char)ch, '\0' };
        size_t rawlen = 6;
        char enc[64], back[64];
        long el = http_path_encode(slice_make(raw, rawlen), enc, sizeof enc);
        assert_true(el > 0);
        long bl = http_path_normalize(slice_make(enc, (size_t)el), back, sizeof back);
        if (ch == '.') {
            /* "/x.y/." : the last segment is ".". */
            assert_int_equal(bl, 5);
            assert_memory_equal(back, "/x.y/", 6);
        } else {
            if (bl != (long)rawlen || memcmp(back, raw, rawlen) != 0) {
                print_error("byte 0x%02x: \"%s\" -> \"%s\" -> %ld\n", ch, raw, enc, bl);
                fail();
            }
        }
        char req[128];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", enc);
        http_parse_state_t st;
        http_parse_state_init(&st);
        http_request_t r;
        const char *why;
        int rc = http_parse_request(req, (size_t)n, &st, &lim, fields, &r, &why);
        if (rc != n || r.path.len != (size_t)el || memcmp(r.path.p, enc, (size_t)el) != 0) {
            print_error("byte 0x%02x: \"%s\" does not parse as a path: %d (%s)\n", ch, enc, rc, why);
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_date_parse),
        cmocka_unit_test(test_date_round_trip),
        cmocka_unit_test(test_etag_match),
        cmocka_unit_test(test_range_parse),
        cmocka_unit_test(test_range_suffix_of_empty_content),
        cmocka_unit_test(test_path_normalize),
        cmocka_unit_test(test_path_normalize_outcap),
        cmocka_unit_test(test_path_encode),
        cmocka_unit_test(test_path_encode_no_room),
        cmocka_unit_test(test_path_round_trip),
    };
    return cmocka_run_group_tests_name("http_misc", tests, group_setup, group_teardown);
}
