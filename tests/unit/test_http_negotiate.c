/* test_http_negotiate.c - content negotiation (src/http/negotiate.c):
 * qvalues, the three Accept* fields, and the choice among variants.
 *
 * Field values (and, in the per-field tests, the variant's value) are
 * copied right before a PROT_NONE page, so a read past the slice faults.
 * A NULL field in a table means "absent". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "guard.h"

#include "http/negotiate.h"

/* ------------------------------------------------------------ guard pages */

/* One guard per field and one for a variant's value, so that the slices
 * of one call never overlap. */
enum { G_ACCEPT, G_AL, G_AE, G_VAR, G_N };
static guard_t g[G_N];

static int group_setup(void **state)
{
    (void)state;
    for (int i = 0; i < G_N; i++)
        guard_init(&g[i], 1u << 14);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < G_N; i++)
        munmap(g[i].base, g[i].maplen);
    return 0;
}

static slice_t put_n(int which, const char *s, size_t n)
{
    assert_true(n <= (size_t)(g[which].end - g[which].base));
    char *p = g[which].end - n;
    if (n > 0)
        memcpy(p, s, n);
    return slice_make(p, n);
}

/* s before the guard; NULL (absent) gives an empty slice at the guard. */
static slice_t put(int which, const char *s)
{
    return put_n(which, s ? s : "", s ? strlen(s) : 0);
}

static const char *show(const char *s)
{
    return s ? s : "(absent)";
}

/* ---------------------------------------------------------------- qvalues */

static void test_parse_q(void **state)
{
    (void)state;
    static const struct { const char *in; int want; } t[] = {
        { "q=0", 0 },
        { "q=0.", 0 },
        { "q=0.0", 0 },
        { "q=0.000", 0 },
        { "q=0.001", 1 },
        { "q=0.05", 50 },
        { "q=0.10", 100 },
        { "q=0.5", 500 },
        { "q=0.7", 700 },
        { "q=0.999", 999 },
        { "q=1", 1000 },
        { "q=1.", 1000 },
        { "q=1.0", 1000 },
        { "q=1.000", 1000 },
        { "Q=0.5", 500 },
        /* RFC 9110 §12.4.2: 0 to 1, at most three decimals, "q=" exactly. */
        { "", -1 },
        { "q", -1 },
        { "q=", -1 },
        { "q=.5", -1 },
        { "q=1.5", -1 },
        { "q=1.001", -1 },
        { "q=1.0000", -1 },
        { "q=0.1234", -1 },
        { "q=0.0000", -1 },
        { "q=-1", -1 },
        { "q=-0", -1 },
        { "q=+1", -1 },
        { "q=2", -1 },
        { "q=abc", -1 },
        { "q=0.5x", -1 },
        { "q=0.a", -1 },
        { "q=1.0a", -1 },
        { "q=00.5", -1 },
        { "q=01", -1 },
        { "q=0,5", -1 },
        { "q=1e0", -1 },
        { "q=\"0.5\"", -1 },
        { "q = 0.5", -1 },
        { "q =0.5", -1 },
        { "q= 0.5", -1 },
        { "q=0.5 ", -1 },
        { " q=0.5", -1 },
        { "q=0.5;", -1 },
        { "x=0.5", -1 },
        { "qq=0.5", -1 },
        { "q:0.5", -1 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int got = neg_parse_q(put(G_ACCEPT, t[i].in));
        if (got != t[i].want) {
            print_error("neg_parse_q(\"%s\") = %d, want %d\n", t[i].in, got, t[i].want);
            fail();
        }
    }
    /* Every qvalue with three decimals. */
    for (int v = 0; v <= 1000; v++) {
        char buf[16];
        snprintf(buf, sizeof buf, "q=%d.%03d", v / 1000, v % 1000);
        assert_int_equal(neg_parse_q(put(G_ACCEPT, buf)), v);
    }
}

/* -------------------------------------------------------------- one field */

struct qcase {
    const char *field;   /* NULL: absent */
    const char *value;   /* the variant's type, language or coding */
    int want;
};

static void run_q(const char *name, int (*fn)(slice_t, int, slice_t), const struct qcase *t,
                  size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int got = fn(put(G_ACCEPT, t[i].field), t[i].field != NULL, put(G_VAR, t[i].value));
        if (got != t[i].want) {
            print_error("%s(%s, \"%s\") = %d, want %d (row %zu)\n", name, show(t[i].field),
                        t[i].value, got, t[i].want, i);
            fail();
        }
    }
}

static void test_q_type(void **state)
{
    (void)state;
    static const struct qcase t[] = {
        { NULL, "text/html", 1000 },
        { NULL, "", 1000 },
        /* The most specific range wins, whatever its q. */
        { "text/html;q=0.1, text/*;q=0.9", "text/html", 100 },
        { "text/html;q=0.1, text/*;q=0.9", "text/plain", 900 },
        { "text/html;q=0.1, text/*;q=0.9", "image/png", 0 },
        { "text/*;q=0.9, text/html;q=0.1", "text/html", 100 },
        /* RFC 9110 §12.5.1's example. */
        { "text/*;q=0.3, text/plain;q=0.7, text/plain;format=flowed, "
          "text/plain;format=fixed;q=0.4, */*;q=0.5", "text/plain", 700 },
        { "text/*;q=0.3, text/plain;q=0.7, text/plain;format=flowed, "
          "text/plain;format=fixed;q=0.4, */*;q=0.5", "text/html", 300 },
        { "text/*;q=0.3, text/plain;q=0.7, text/plain;format=flowed, "
          "text/plain;format=fixed;q=0.4, */*;q=0.5", "image/jpeg", 500 },
        { "*/*;q=0.1", "text/html", 100 },
        { "*/*;q=0.1", "", 100 },
        { "text/*, image/png", "", 0 },
        { "text/*", "text", 0 },               /* not a type: unknown */
        { "*/*", "nonsense", 1000 },
        { "text/*;q=0.5, */*;q=0", "text/css", 500 },
        { "text/*;q=0.5, */*;q=0", "image/png", 0 },
        /* Parameters are ignored, but a plain range beats one with them. */
        { "text/html;level=1", "text/html", 1000 },
        { "text/html;level=1;q=0.2, text/html;q=0.6", "text/html", 600 },
        { "text/html;q=0.6, text/html;level=1;q=0.2", "text/html", 600 },
        { "text/html;charset=utf-8;q=0, text/html;q=0.5", "text/html", 500 },
        { "text/html;charset=utf-8;q=0", "text/html", 0 },
        { "text/html;charset=utf-8;q=0.4, text/*", "text/html", 400 },
        /* Equal ranges: the higher q. */
        { "text/html;level=1, text/html;level=2;q=0.4", "text/html", 1000 },
        { "text/html;q=0.2, TEXT/HTML;q=0.3", "text/html", 300 },
        /* Case. */
        { "TEXT/HTML;Q=0.5", "text/html", 500 },
        { "text/html;q=0.5", "Text/HTML", 500 },
        { "Text/*;q=0.5", "text/x-C", 500 },
        /* The variant's own parameters, if any, are cut off. */
        { "text/html;q=0.3", "text/html; charset=utf-8", 300 },
        /* Whitespace: OWS around ';' and ',' only. */
        { "text/html ; q=0.5", "text/html", 500 },
        { " text/html;q=0.5 ,image/png;q=0.2 ", "text/html", 500 },
        { "text/html\t;\tq=0.5", "text/html", 500 },
        { "text/html;q = 0.5, image/png", "text/html", 0 },
        { "text/html;q =0.5, image/png", "text/html", 0 },
        { "text/html;q= 0.5, image/png", "text/html", 0 },
        { "text / html, image/png", "text/html", 0 },
        /* Malformed elements are ignored one by one. */
        { "text/html;q=1.5, image/png", "text/html", 0 },
        { "text/html;q=1.5, image/png", "image/png", 1000 },
        { "text/html;q=abc, image/png;q=0.5", "image/png", 500 },
        { "text/html;q=0.1234, image/png", "text/html", 0 },
        { "text/html;q=-1, image/png", "text/html", 0 },
        { "*/html, image/png", "text/html", 0 },
        { "text/html/x, image/png", "text/html", 0 },
        { "text/, image/png", "text/html", 0 },
        { "/html, image/png", "text/html", 0 },
        { "text, image/png", "text/html", 0 },
        { "te(t/html, image/png", "text/html", 0 },
        { "text/html;foo, image/png", "text/html", 0 },
        { "text/html;=x, image/png", "text/html", 0 },
        { "text/html;foo=, image/png", "text/html", 0 },
        { "text/html;foo=a b, image/png", "text/html", 0 },
        { "text/html;q=0.5 x, image/png", "text/html", 0 },
        /* Quoted-strings: commas and semicolons inside do not count. */
        { "text/html;foo=\"a,b;q=0\";q=0.4, image/png", "text/html", 400 },
        { "text/html;foo=\"a,b;q=0\";q=0.4, image/png", "image/png", 1000 },
        { "text/html;foo=\"a\\\"b\";q=0.3", "text/html", 300 },
        { "text/html;foo=\"a\\\\\";q=0.3", "text/html", 300 },
        { "image/png, text/html;foo=\"abc", "text/html", 0 },
        { "image/png, text/html;foo=\"abc", "image/png", 1000 },
        { "image/png, text/html;foo=\"ab\\\"", "text/html", 0 },
        { "text/html;q=\"0.5\", image/png", "text/html", 0 },
        /* Empty parameters are allowed; accept-ext after q is ignored. */
        { "text/html;;q=0.3", "text/html", 300 },
        { "text/html;", "text/html", 1000 },
        { "text/html; ;q=0.3;", "text/html", 300 },
        { "text/html;q=0.3;ext, image/png", "text/html", 300 },
        { "text/html;q=0.3;ext=\"x,y\", image/png", "text/html", 300 },
        { "text/html;q=0.3;q=0.9", "text/html", 300 },
        /* No valid element: as if absent. */
        { "", "text/html", 1000 },
        { ",, ,", "image/png", 1000 },
        { "text/html;q=1.5", "text/html", 1000 },
        { "text/html;q=1.5", "image/png", 1000 },
        { "text/html;q=abc", "image/png", 1000 },
        /* A valid q=0 element is a preference. */
        { "text/html;q=0", "text/html", 0 },
        { "text/html;q=0", "image/png", 0 },
        /* Empty elements are skipped. */
        { ",,text/html;q=0.5,,", "text/html", 500 },
    };
    run_q("neg_q_type", neg_q_type, t, sizeof t / sizeof t[0]);
}

static const char notes_al[] = "ko;q=0.7, fr;q=0, en;q=0.4";

static void test_q_lang(void **state)
{
    (void)state;
    static const struct qcase t[] = {
        { NULL, "ko", 1000 },
        { NULL, "", 1000 },
        /* The notes' example, with the tag Korean really has. */
        { notes_al, "ko", 700 },
        { notes_al, "KO", 700 },
        { notes_al, "ko-KR", 700 },
        { notes_al, "fr", 0 },
        { notes_al, "fr-CA", 0 },
        { notes_al, "en", 400 },
        { notes_al, "en-US", 400 },
        { notes_al, "de", NEG_Q_LANG_FALLBACK },
        { notes_al, "", NEG_Q_LANG_FALLBACK },
        /* As the notes spell it: "kr" is another tag, and matches nothing. */
        { "kr;q=0.7, fr;q=0, en;q=0.4", "ko", NEG_Q_LANG_FALLBACK },
        { "kr;q=0.7, fr;q=0, en;q=0.4", "fr", 0 },
        { "kr;q=0.7, fr;q=0, en;q=0.4", "en", 400 },
        /* Basic filtering: prefixes end before a '-'. */
        { "en", "en-US", 1000 },
        { "en", "en", 1000 },
        { "en", "EN-us", 1000 },
        { "en", "eng", NEG_Q_LANG_FALLBACK },
        { "e", "en", NEG_Q_LANG_FALLBACK },
        { "en-US", "en", NEG_Q_LANG_FALLBACK },
        { "en-US", "en-US", 1000 },
        { "en-US", "en-us", 1000 },
        { "en-US", "en-US-x-twain", 1000 },
        { "en-US", "en-USA", NEG_Q_LANG_FALLBACK },
        { "en-us;q=0.5", "EN-US", 500 },
        /* The longest matching range wins. */
        { "en;q=0.5, en-US;q=0.9", "en-US", 900 },
        { "en;q=0.5, en-US;q=0.9", "en-GB", 500 },
        { "en;q=0.5, en-US;q=0.9", "en", 500 },
        { "en-US;q=0.9, en;q=0", "en-GB", 0 },
        { "en-US;q=0.9, en;q=0", "en-US", 900 },
        { "en-US;q=0, en", "en-US", 0 },
        { "en-US;q=0, en", "en-GB", 1000 },
        /* "*" */
        { "*", "de", 1000 },
        { "*", "", NEG_Q_LANG_FALLBACK },
        { "*;q=0.3, ko", "ko", 1000 },
        { "*;q=0.3, ko", "de", 300 },
        { "*;q=0", "de", 0 },
        { "*;q=0", "", NEG_Q_LANG_FALLBACK },
        { "*;q=0, ko", "ko", 1000 },
        { "*;q=0, ko", "de", 0 },
        { "ko, *;q=0", "ko-KR", 1000 },
        /* Equal ranges: the higher q. */
        { "ko;q=0.2, KO;q=0.6", "ko", 600 },
        /* Whitespace and case. */
        { "ko ; q=0.5", "ko", 500 },
        { "ko\t;q=0.5", "ko", 500 },
        { "KO;Q=0.5", "ko", 500 },
        { "ko;q = 0.5, en", "ko", NEG_Q_LANG_FALLBACK },
        { "ko;q= 0.5, en", "ko", NEG_Q_LANG_FALLBACK },
        /* Malformed elements are ignored one by one. */
        { "ko;q=1.5, en", "ko", NEG_Q_LANG_FALLBACK },
        { "ko;q=1.5, en", "en", 1000 },
        { "ko;q=abc, en;q=0.1", "ko", NEG_Q_LANG_FALLBACK },
        { "ko;q=0.1234, en", "ko", NEG_Q_LANG_FALLBACK },
        { "ko;q=-1, en", "ko", NEG_Q_LANG_FALLBACK },
        { "fr;q=O, en", "fr", NEG_Q_LANG_FALLBACK },   /* letter O: not an exclusion */
        { "ko;level=1, en", "ko", NEG_Q_LANG_FALLBACK },
        { "ko;q=0.5;q=0.6, en", "ko", NEG_Q_LANG_FALLBACK },
        { "ko;, en", "ko", NEG_Q_LANG_FALLBACK },
        { "ko;q=0.5 x, en", "ko", NEG_Q_LANG_FALLBACK },
        { "en_US, fr", "en-US", NEG_Q_LANG_FALLBACK },
        { "123, fr", "123", NEG_Q_LANG_FALLBACK },
        { "1en, fr", "1en", NEG_Q_LANG_FALLBACK },
        { "abcdefghi, fr", "abcdefghi", NEG_Q_LANG_FALLBACK },
        { "abcdefgh, fr", "abcdefgh", 1000 },
        { "en-abcdefghi, fr", "en-abcdefghi", NEG_Q_LANG_FALLBACK },
        { "en-1, fr", "en-1", 1000 },
        { "en-, fr", "en", NEG_Q_LANG_FALLBACK },
        { "-en, fr", "en", NEG_Q_LANG_FALLBACK },
        { "en--us, fr", "en", NEG_Q_LANG_FALLBACK },
        { "*-US, fr", "en-US", NEG_Q_LANG_FALLBACK },
        { "**, fr", "en", NEG_Q_LANG_FALLBACK },
        { "\"ko\", fr", "ko", NEG_Q_LANG_FALLBACK },
        /* No valid element: as if absent. */
        { "", "ko", 1000 },
        { ", ,\t,", "ko", 1000 },
        { "ko;q=abc", "ko", 1000 },
        { "ko;q=abc", "fr", 1000 },
        { ",, ,ko;q=0.5,,", "ko", 500 },
        /* A valid q=0 element is a preference. */
        { "fr;q=0", "fr", 0 },
        { "fr;q=0", "ko", NEG_Q_LANG_FALLBACK },
    };
    run_q("neg_q_lang", neg_q_lang, t, sizeof t / sizeof t[0]);
}

static void test_q_coding(void **state)
{
    (void)state;
    static const struct qcase t[] = {
        /* Absent: any coding, identity preferred. */
        { NULL, "", 1000 },
        { NULL, "identity", 1000 },
        { NULL, "gzip", NEG_Q_CODING_DEFAULT },
        { NULL, "zstd", NEG_Q_CODING_DEFAULT },
        /* Identity is acceptable unless excluded. */
        { "gzip", "gzip", 1000 },
        { "gzip", "", NEG_Q_CODING_DEFAULT },
        { "gzip", "br", 0 },
        { "gzip, br;q=0.8, identity;q=0", "gzip", 1000 },
        { "gzip, br;q=0.8, identity;q=0", "br", 800 },
        { "gzip, br;q=0.8, identity;q=0", "", 0 },
        { "gzip, br;q=0.8, identity;q=0", "identity", 0 },
        { "gzip, br;q=0.8, identity;q=0", "zstd", 0 },
        { "identity;q=0.5, gzip;q=0.2", "", 500 },
        { "identity;q=0.5, gzip;q=0.2", "IDENTITY", 500 },
        /* "*": every coding not listed, identity included. */
        { "*", "gzip", 1000 },
        { "*", "", 1000 },
        { "*;q=0", "gzip", 0 },
        { "*;q=0", "", 0 },
        { "*;q=0, identity", "", 1000 },
        { "*;q=0, identity;q=0.5", "", 500 },
        { "gzip;q=0, *", "gzip", 0 },
        { "gzip;q=0, *", "br", 1000 },
        { "*;q=0.2, gzip", "zstd", 200 },
        /* RFC 9110 §12.5.3's example. */
        { "gzip;q=1.0, identity; q=0.5, *;q=0", "gzip", 1000 },
        { "gzip;q=1.0, identity; q=0.5, *;q=0", "", 500 },
        { "gzip;q=1.0, identity; q=0.5, *;q=0", "br", 0 },
        { "compress;q=0.5, gzip;q=1.0", "compress", 500 },
        /* Present and empty: identity only. */
        { "", "", NEG_Q_CODING_DEFAULT },
        { "", "gzip", 0 },
        { " , ,", "", NEG_Q_CODING_DEFAULT },
        { " , ,", "gzip", 0 },
        /* x-gzip is gzip, x-compress compress, either way round. */
        { "x-gzip", "gzip", 1000 },
        { "gzip;q=0.4", "x-gzip", 400 },
        { "x-compress;q=0.3", "compress", 300 },
        { "x-gzip", "br", 0 },
        /* Case. */
        { "GZIP;Q=0.5", "gzip", 500 },
        { "gzip;q=0.5", "GZip", 500 },
        { "Identity;q=0", "", 0 },
        /* Whitespace. */
        { "gzip ;q=0.5", "gzip", 500 },
        { "gzip; q=0.5", "gzip", 500 },
        { "gzip\t;\tq=0.5", "gzip", 500 },
        { "gzip;q = 0.5, br", "gzip", 0 },
        { "gz ip, br", "gzip", 0 },
        /* Malformed elements are ignored one by one. */
        { "gzip;q=abc, br", "gzip", 0 },
        { "gzip;q=abc, br", "br", 1000 },
        { "gzip;q=1.5, br;q=0.5", "br", 500 },
        { "gzip;level=1, br", "gzip", 0 },
        { "gzip;q=0.5;q=0.6, br", "gzip", 0 },
        { "gzip;, br", "gzip", 0 },
        { "gzip;q=0.1234, identity;q=0", "gzip", 0 },
        { "gzip;q=0.1234, identity;q=0", "", 0 },
        { "identity;q=-1, gzip", "", NEG_Q_CODING_DEFAULT },
        { "*;q=1.5, gzip", "br", 0 },
        { "\"gzip\", br", "gzip", 0 },
        /* No valid element: the empty value, identity only. */
        { "gzip;q=1.5", "gzip", 0 },
        { "gzip;q=1.5", "", NEG_Q_CODING_DEFAULT },
        { "identity;q=abc", "", NEG_Q_CODING_DEFAULT },
    };
    run_q("neg_q_coding", neg_q_coding, t, sizeof t / sizeof t[0]);
}

/* ----------------------------------------------------------------- choose */

#define MAXV 6

struct vspec {
    const char *type, *lang, *coding;
};

struct ccase {
    struct vspec v[MAXV];      /* up to the first type == NULL */
    const char *accept, *al, *ae;
    int want;
    unsigned vary;
    int ambiguous;
};

static size_t make_variants(const struct vspec *s, struct neg_variant *v)
{
    size_t n = 0;
    while (n < MAXV && s[n].type) {
        v[n].type = slice_cstr(s[n].type);
        v[n].lang = slice_cstr(s[n].lang ? s[n].lang : "");
        v[n].coding = slice_cstr(s[n].coding ? s[n].coding : "");
        n++;
    }
    return n;
}

static int choose(const struct neg_variant *v, size_t n, const char *accept, const char *al,
                  const char *ae, unsigned *vary, int *amb)
{
    return neg_choose(v, n, put(G_ACCEPT, accept), accept != NULL, put(G_AL, al), al != NULL,
                      put(G_AE, ae), ae != NULL, vary, amb);
}

#define HTML "text/html"
#define JSON "application/json"
#define VA NEG_VARY_ACCEPT
#define VL NEG_VARY_LANGUAGE
#define VE NEG_VARY_ENCODING

static void test_choose(void **state)
{
    (void)state;
    static const struct ccase t[] = {
        /* One variant, or none. */
        { { { HTML, "", "" } }, NULL, NULL, NULL, 0, 0, 0 },
        { { { NULL, NULL, NULL } }, NULL, NULL, NULL, -1, 0, 0 },
        { { { HTML, "en", "gzip" } }, "image/png", NULL, NULL, -1, 0, 0 },
        /* By language. */
        { { { HTML, "en", "" }, { HTML, "ko", "" } }, NULL, NULL, NULL, 0, VL, 1 },
        { { { HTML, "en", "" }, { HTML, "ko", "" } }, NULL, "ko", NULL, 1, VL, 0 },
        { { { HTML, "en", "" }, { HTML, "ko", "" } }, NULL, "ko, en", NULL, 0, VL, 1 },
        { { { HTML, "en", "" }, { HTML, "ko", "" } }, NULL, "de", NULL, 0, VL, 1 },
        { { { HTML, "en", "" }, { HTML, "ko", "" } }, NULL, "de, *;q=0", NULL, -1, VL, 0 },
        { { { HTML, "en", "" }, { HTML, "ko", "" } }, NULL, "", NULL, 0, VL, 1 },
        { { { HTML, "en", "" }, { HTML, "ko", "" } }, NULL, "ko;q=abc", NULL, 0, VL, 1 },
        { { { HTML, "", "" }, { HTML, "ko", "" } }, NULL, "ko", NULL, 1, VL, 0 },
        { { { HTML, "", "" }, { HTML, "ko", "" } }, NULL, "en", NULL, 0, VL, 1 },
        { { { HTML, "ko", "" }, { HTML, "", "" } }, NULL, "ko;q=0", NULL, 1, VL, 0 },
        { { { HTML, "en-US", "" }, { HTML, "en-GB", "" } }, NULL, "en-GB, en;q=0.5", NULL, 1, VL, 0 },
        { { { HTML, "en", "" }, { HTML, "en-US", "" } }, NULL, "en-US", NULL, 1, VL, 0 },
        { { { HTML, "en-US", "" }, { HTML, "en", "" } }, NULL, "en", NULL, 0, VL, 1 },
        /* By coding: identity unless the request names a coding. */
        { { { HTML, "", "" }, { HTML, "", "gzip" } }, NULL, NULL, NULL, 0, VE, 0 },
        { { { HTML, "", "gzip" }, { HTML, "", "" } }, NULL, NULL, NULL, 1, VE, 0 },
        { { { HTML, "", "" }, { HTML, "", "gzip" } }, NULL, NULL, "gzip, deflate, br", 1, VE, 0 },
        { { { HTML, "", "gzip" }, { HTML, "", "br" }, { HTML, "", "" } },
          NULL, NULL, "gzip, br", 0, VE, 0 },
        { { { HTML, "", "gzip" }, { HTML, "", "br" }, { HTML, "", "" } },
          NULL, NULL, "gzip;q=0.5, br", 1, VE, 0 },
        { { { HTML, "", "gzip" }, { HTML, "", "br" }, { HTML, "", "" } },
          NULL, NULL, "zstd", 2, VE, 0 },
        { { { HTML, "", "gzip" }, { HTML, "", "br" }, { HTML, "", "" } },
          NULL, NULL, "", 2, VE, 0 },
        { { { HTML, "", "" }, { HTML, "", "gzip" } }, NULL, NULL, "identity;q=0", -1, VE, 0 },
        { { { HTML, "", "" }, { HTML, "", "gzip" } }, NULL, NULL, "gzip, identity;q=0", 1, VE, 0 },
        { { { HTML, "", "" }, { HTML, "", "gzip" } }, NULL, NULL, "*;q=0", -1, VE, 0 },
        { { { HTML, "", "gzip" }, { HTML, "", "" } }, NULL, NULL, "gzip;q=0.5", 1, VE, 0 },
        /* By type. */
        { { { HTML, "", "" }, { JSON, "", "" } }, NULL, NULL, NULL, 0, VA, 1 },
        { { { HTML, "", "" }, { JSON, "", "" } }, JSON, NULL, NULL, 1, VA, 0 },
        { { { HTML, "", "" }, { JSON, "", "" } }, "text/html;q=0.1, */*;q=0.9", NULL, NULL, 1, VA, 0 },
        { { { HTML, "", "" }, { JSON, "", "" } }, "image/png", NULL, NULL, -1, VA, 0 },
        { { { HTML, "", "" }, { JSON, "", "" } }, "*/*", NULL, NULL, 0, VA, 1 },
        { { { "", "", "" }, { JSON, "", "" } }, "text/html, */*;q=0.1", NULL, NULL, 0, VA, 1 },
        /* All three, and how they weigh together. */
        { { { HTML, "en", "" }, { HTML, "ko", "" }, { HTML, "en", "gzip" }, { HTML, "ko", "gzip" } },
          NULL, notes_al, "gzip", 3, VL | VE, 0 },
        { { { HTML, "en", "" }, { HTML, "ko", "" }, { HTML, "en", "gzip" }, { HTML, "ko", "gzip" } },
          NULL, NULL, "gzip", 2, VL | VE, 1 },
        { { { HTML, "en", "" }, { HTML, "ko", "gzip" } }, NULL, "en, ko;q=0.5", "gzip", 0, VL | VE, 0 },
        { { { HTML, "en", "" }, { JSON, "ko", "gzip" } }, NULL, NULL, NULL, 0, VA | VL | VE, 1 },
        { { { HTML, "en", "" }, { JSON, "ko", "" } }, JSON, NULL, NULL, 1, VA | VL, 0 },
        { { { HTML, "en", "gzip" }, { HTML, "en", "br" }, { HTML, "ko", "gzip" } },
          NULL, NULL, "gzip, br", 0, VL | VE, 1 },
        { { { HTML, "en", "gzip" }, { HTML, "en", "" }, { HTML, "ko", "" } },
          NULL, "en", "gzip", 0, VL | VE, 0 },
        /* Small qualities multiply exactly: never rounded to 0. */
        { { { HTML, "", "" } }, "text/html;q=0.001", "ko", "gzip;q=0.5", 0, 0, 0 },
        { { { HTML, "de", "gzip" }, { HTML, "fr", "gzip" } }, "*/*;q=0.001", "fr;q=0.002", "gzip;q=0.001",
          1, VL, 0 },
        /* Dimensions compare case-insensitively; x-gzip is gzip, "" identity. */
        { { { "Text/HTML", "EN", "GZIP" }, { HTML, "en", "gzip" } }, NULL, NULL, NULL, 0, 0, 0 },
        { { { HTML, "", "x-gzip" }, { HTML, "", "gzip" } }, NULL, NULL, NULL, 0, 0, 0 },
        { { { HTML, "", "identity" }, { HTML, "", "" } }, NULL, NULL, NULL, 0, 0, 0 },
        { { { "text/html;charset=utf-8", "", "" }, { HTML, "", "" } }, NULL, NULL, NULL, 0, 0, 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct neg_variant v[MAXV];
        size_t n = make_variants(t[i].v, v);
        unsigned vary = 0xdead;
        int amb = 0xbeef;
        int got = choose(v, n, t[i].accept, t[i].al, t[i].ae, &vary, &amb);
        if (got != t[i].want || vary != t[i].vary || amb != t[i].ambiguous) {
            print_error("row %zu: Accept %s, Accept-Language %s, Accept-Encoding %s: "
                        "%d vary %u ambiguous %d; want %d vary %u ambiguous %d\n",
                        i, show(t[i].accept), show(t[i].al), show(t[i].ae), got, vary, amb,
                        t[i].want, t[i].vary, t[i].ambiguous);
            fail();
        }
        /* The outputs are optional. */
        assert_int_equal(choose(v, n, t[i].accept, t[i].al, t[i].ae, NULL, NULL), t[i].want);
    }
}

/* The notes' example: Korean first, French never, whatever the other
 * variants and their order. Every ordered selection of the candidates is
 * tried. */
static void test_notes_example(void **state)
{
    (void)state;
    static const char *const langs[] = { "ko", "fr", "en", "de", "" };
    enum { L = sizeof langs / sizeof langs[0] };
    static const struct { const char *al; const char *order; } prefs[] = {
        /* What is chosen, best first, among the languages offered. */
        { "ko;q=0.7, fr;q=0, en;q=0.4", "ko en" },
        { "kr;q=0.7, fr;q=0, en;q=0.4", "en" },
    };
    for (size_t p = 0; p < sizeof prefs / sizeof prefs[0]; p++) {
        /* Every permutation of every subset, by counting in base L+1 over
         * L digits with no repeats. */
        size_t total = 1;
        for (int i = 0; i < L; i++)
            total *= L + 1;
        for (size_t code = 0; code < total; code++) {
            struct neg_variant v[L];
            size_t n = 0, c = code;
            unsigned used = 0;
            int ok = 1;
            for (int i = 0; i < L && ok; i++, c /= L + 1) {
                size_t d = c % (L + 1);
                if (d == 0)
                    break;
                if (used & (1u << (d - 1)))
                    ok = 0;
                used |= 1u << (d - 1);
                v[n++] = (struct neg_variant){ SLICE_LIT(HTML), slice_cstr(langs[d - 1]),
                                               SLICE_LIT("") };
            }
            if (!ok || c != 0)
                continue;
            int got = choose(v, n, NULL, prefs[p].al, NULL, NULL, NULL);
            /* The expected: the first of `order` offered; else the first
             * offered that is not French; else none. */
            int want = -1;
            const char *o = prefs[p].order;
            while (want < 0 && *o) {
                size_t len = strcspn(o, " ");
                for (size_t i = 0; i < n && want < 0; i++)
                    if (v[i].lang.len == len && memcmp(v[i].lang.p, o, len) == 0)
                        want = (int)i;
                o += len + (o[len] == ' ');
            }
            for (size_t i = 0; i < n && want < 0; i++)
                if (!slice_eq(v[i].lang, SLICE_LIT("fr")))
                    want = (int)i;
            if (got != want || (got >= 0 && slice_eq(v[got].lang, SLICE_LIT("fr")))) {
                print_error("%s over", prefs[p].al);
                for (size_t i = 0; i < n; i++)
                    print_error(" [%.*s]", (int)v[i].lang.len, v[i].lang.p);
                print_error(": %d, want %d\n", got, want);
                fail();
            }
        }
    }
    /* French alone: 406. */
    struct neg_variant fr = { SLICE_LIT(HTML), SLICE_LIT("fr"), SLICE_LIT("") };
    unsigned vary;
    int amb;
    assert_int_equal(choose(&fr, 1, NULL, notes_al, NULL, &vary, &amb), -1);
    assert_int_equal(amb, 0);
}

/* ------------------------------------------------------------- robustness */

/* Every prefix of some fields, and each byte of them replaced by characters
 * that matter to the grammar: results stay in range, nothing reads past the
 * value. Also: empty elements around a field and the order of elements
 * (without quoted-strings) change nothing. */
static void test_cuts_and_noise(void **state)
{
    (void)state;
    static const char *const fields[] = {
        "text/html;q=0.1, text/*;q=0.9, */*;q=0.01",
        "text/html;foo=\"a,b\\\"c\";q=0.4;ext=\"x\", image/png;q=0",
        "ko;q=0.7, fr;q=0, en;q=0.4, en-US;q=0.3, *;q=0.001",
        "gzip;q=1.0, identity; q=0.5, *;q=0, x-gzip;q=0.2",
    };
    static const char noise[] = { ',', ';', '"', '\\', '=', ' ', '\t', '*', '/', '-', '.', 'q',
                                  '0', '1', '\0', '\x7f', (char)0xff };
    static const char *const values[][3] = {
        { "text/html", "ko", "gzip" },
        { "image/png", "en-US", "" },
        { "", "", "br" },
    };
    char buf[256];
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        size_t len = strlen(fields[f]);
        for (size_t cut = 0; cut <= len; cut++) {
            for (size_t k = 0; k <= sizeof noise; k++) {
                for (size_t at = 0; at < (k < sizeof noise ? cut : 1); at++) {
                    memcpy(buf, fields[f], cut);
                    if (k < sizeof noise)
                        buf[at] = noise[k];
                    slice_t s = put_n(G_ACCEPT, buf, cut);
                    assert_true(neg_parse_q(s) >= -1 && neg_parse_q(s) <= 1000);
                    for (size_t x = 0; x < sizeof values / sizeof values[0]; x++) {
                        int a = neg_q_type(s, 1, put(G_VAR, values[x][0]));
                        int b = neg_q_lang(s, 1, put(G_VAR, values[x][1]));
                        int c = neg_q_coding(s, 1, put(G_VAR, values[x][2]));
                        assert_true(a >= 0 && a <= 1000);
                        assert_true(b >= 0 && b <= 1000);
                        assert_true(c >= 0 && c <= 1000);
                    }
                }
            }
        }
    }

    /* Invariance. */
    static const char *const plain[] = {
        "text/html;q=0.1, text/*;q=0.9, */*;q=0.01",
        "text/html;level=1;q=0.2, text/html;q=0.6, image/*;q=0",
        "ko;q=0.7, fr;q=0, en;q=0.4, en-US;q=0.3, *;q=0.001",
        "en;q=0.5, en;q=0.7, en-GB;q=0",
        "gzip;q=1.0, identity; q=0.5, *;q=0, x-gzip;q=0.2",
        "gzip;q=1.5, br;q=0.3, identity;q=abc",
    };
    static const char *const probe[] = {
        "text/html", "text/plain", "image/png", "", "ko", "fr-CA", "en-GB", "en", "de",
        "gzip", "br", "zstd", "identity",
    };
    for (size_t f = 0; f < sizeof plain / sizeof plain[0]; f++) {
        /* Elements reversed, with empty elements and whitespace added. */
        char rev[256];
        const char *src = plain[f];
        size_t len = strlen(src), o = 0;
        o += (size_t)snprintf(rev + o, sizeof rev - o, " ,\t,");
        for (size_t end = len; end > 0;) {
            size_t start = end;
            while (start > 0 && src[start - 1] != ',')
                start--;
            o += (size_t)snprintf(rev + o, sizeof rev - o, "%.*s ,, ", (int)(end - start),
                                  src + start);
            end = start > 0 ? start - 1 : 0;
        }
        for (size_t p = 0; p < sizeof probe / sizeof probe[0]; p++) {
            slice_t a = put(G_ACCEPT, src), b = put(G_AL, rev), v = put(G_VAR, probe[p]);
            if (neg_q_type(a, 1, v) != neg_q_type(b, 1, v) ||
                neg_q_lang(a, 1, v) != neg_q_lang(b, 1, v) ||
                neg_q_coding(a, 1, v) != neg_q_coding(b, 1, v)) {
                print_error("\"%s\" and \"%s\" differ on %s\n", src, rev, probe[p]);
                fail();
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_q),
        cmocka_unit_test(test_q_type),
        cmocka_unit_test(test_q_lang),
        cmocka_unit_test(test_q_coding),
        cmocka_unit_test(test_choose),
        cmocka_unit_test(test_notes_example),
        cmocka_unit_test(test_cuts_and_noise),
    };
    return cmocka_run_group_tests_name("http_negotiate", tests, group_setup, group_teardown);
}
