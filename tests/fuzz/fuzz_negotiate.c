/* fuzz_negotiate.c - libFuzzer target for content negotiation.
 *
 * The input is lines: Accept, Accept-Language, Accept-Encoding (a line
 * starting with '!' means the field is absent, and so does a missing line),
 * then up to MAXV variants as "type|lang|coding". Every field is given to
 * all three neg_q_* functions against every variant's value, and to
 * neg_parse_q, and then the variants to neg_choose. Checked:
 *  - every quality lies in 0..1000; an absent field gives 1000 (999 for a
 *    coding other than identity);
 *  - neg_parse_q agrees with an independent reading of the qvalue grammar
 *    (strtod on a copy that passed a character check);
 *  - a field's qualities do not change when empty elements and whitespace
 *    are added around it, when ASCII letters of the field and the value are
 *    upper-cased, or (without quoted-strings) when its elements are
 *    reversed;
 *  - neg_choose returns the first variant of highest product quality,
 *    recomputed from the neg_q_* functions, or -1 when all are 0; a
 *    dimension it leaves out of *vary gives every variant the same quality;
 *    *ambiguous needs two acceptable variants; reversing the variants keeps
 *    the quality chosen, *vary and *ambiguous.
 * Each slice is a heap copy of exactly its length, so AddressSanitizer
 * sees any read past it. Any mismatch calls abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/negotiate.h"

#define MAXV 8

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_negotiate: %s\n", what);
    abort();
}

/* Heap copies, freed at the end of each input. */
static char *owned[64];
static size_t nowned;

static slice_t copy(const char *p, size_t n)
{
    if (nowned == sizeof owned / sizeof owned[0])
        fail("too many copies");
    char *c = malloc(n ? n : 1);
    if (n)
        memcpy(c, p, n);
    owned[nowned++] = c;
    return slice_make(c, n);
}

/* Frees the copies made since `mark`. */
static void release(size_t mark)
{
    while (nowned > mark)
        free(owned[--nowned]);
}

static slice_t upper(slice_t s)
{
    slice_t u = copy(s.p, s.len);
    for (size_t i = 0; i < u.len; i++)
        if (u.p[i] >= 'a' && u.p[i] <= 'z')
            ((char *)u.p)[i] = (char)(u.p[i] - 32);
    return u;
}

static slice_t padded(slice_t s)
{
    static const char pre[] = " ,\t, ", post[] = " ,, ";
    size_t n = sizeof pre - 1 + s.len + sizeof post - 1;
    char *b = malloc(n);
    memcpy(b, pre, sizeof pre - 1);
    if (s.len)
        memcpy(b + sizeof pre - 1, s.p, s.len);
    memcpy(b + sizeof pre - 1 + s.len, post, sizeof post - 1);
    slice_t r = copy(b, n);
    free(b);
    return r;
}

/* The elements of s in reverse order, or an empty slice with p == NULL if
 * s has a quoted-string (whose commas do not split). */
static slice_t reversed(slice_t s)
{
    if (s.len == 0 || memchr(s.p, '"', s.len))
        return slice_make(NULL, 0);
    char *b = malloc(s.len + 1);
    size_t o = 0, end = s.len;
    for (;;) {
        size_t start = end;
        while (start > 0 && s.p[start - 1] != ',')
            start--;
        memcpy(b + o, s.p + start, end - start);
        o += end - start;
        if (start == 0)
            break;
        b[o++] = ',';
        end = start - 1;
    }
    slice_t r = copy(b, o);
    free(b);
    return r;
}

typedef int (*qfn)(slice_t, int, slice_t);
static const qfn fns[3] = { neg_q_type, neg_q_lang, neg_q_coding };

static int is_identity(slice_t c)
{
    static const char id[] = "identity";
    if (c.len == 0)
        return 1;
    if (c.len != sizeof id - 1)
        return 0;
    for (size_t i = 0; i < c.len; i++)
        if ((c.p[i] | 0x20) != id[i])
            return 0;
    return 1;
}

static void check_q(int d, slice_t f, int present, slice_t x)
{
    size_t mark = nowned;
    int q = fns[d](f, present, x);
    if (q < 0 || q > 1000)
        fail("quality out of range");
    if (!present) {
        int want = d == 2 && !is_identity(x) ? NEG_Q_CODING_DEFAULT : NEG_Q_MAX;
        if (q != want)
            fail("absent field gives the wrong quality");
        return;
    }
    if (fns[d](padded(f), 1, x) != q)
        fail("empty elements change the quality");
    if (fns[d](upper(f), 1, upper(x)) != q)
        fail("case changes the quality");
    slice_t r = reversed(f);
    if (r.p && fns[d](r, 1, x) != q)
        fail("element order changes the quality");
    release(mark);
}

/* The qvalue grammar read another way: "q=" or "Q=", a 0 or 1, optionally
 * '.' and up to three digits, at most 1. */
static int ref_q(slice_t s)
{
    if (s.len < 3 || s.len > 7 || (s.p[0] != 'q' && s.p[0] != 'Q') || s.p[1] != '=')
        return -1;
    char buf[8];
    size_t n = s.len - 2;
    memcpy(buf, s.p + 2, n);
    buf[n] = '\0';
    if (buf[0] != '0' && buf[0] != '1')
        return -1;
    if (n > 1 && buf[1] != '.')
        return -1;
    for (size_t i = 2; i < n; i++)
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
    double v = strtod(buf, NULL);
    if (v > 1.0)
        return -1;
    return (int)(v * 1000.0 + 0.5);
}

static uint64_t product(const struct neg_variant *v, const slice_t *f, const int *present,
                        uint64_t *tl)
{
    uint64_t t = (uint64_t)neg_q_type(f[0], present[0], v->type);
    uint64_t l = (uint64_t)neg_q_lang(f[1], present[1], v->lang);
    uint64_t c = (uint64_t)neg_q_coding(f[2], present[2], v->coding);
    *tl = t * l;
    return t * l * c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    slice_t f[3] = { { 0 } };
    int present[3] = { 0 };
    struct neg_variant v[MAXV];
    size_t n = 0, line = 0, i = 0;
    nowned = 0;

    while (i <= size && n < MAXV) {
        size_t j = i;
        while (j < size && in[j] != '\n')
            j++;
        if (line < 3) {
            if (j > i && in[i] == '!') {
                f[line] = copy("", 0);
            } else {
                f[line] = copy(in + i, j - i);
                present[line] = 1;
            }
        } else if (j > i) {
            slice_t part[3] = { { 0 } };
            size_t a = i;
            for (int k = 0; k < 3; k++) {
                size_t b = a;
                while (b < j && (in[b] != '|' || k == 2))
                    b++;
                part[k] = copy(a < j ? in + a : "", b - a);
                a = b < j ? b + 1 : b;
            }
            v[n++] = (struct neg_variant){ part[0], part[1], part[2] };
        }
        line++;
        i = j + 1;
    }
    for (; line < 3; line++)
        f[line] = copy("", 0);

    for (int k = 0; k < 3; k++) {
        int q = neg_parse_q(f[k]);
        if (q != ref_q(f[k]))
            fail("neg_parse_q disagrees with the grammar");
        if (q >= 0) {
            char buf[16];
            size_t mark = nowned;
            int len = snprintf(buf, sizeof buf, "q=%d.%03d", q / 1000, q % 1000);
            if (neg_parse_q(copy(buf, (size_t)len)) != q)
                fail("neg_parse_q does not read back its value");
            release(mark);
        }
    }

    /* Every field through every function, against every value. */
    for (int k = 0; k < 3; k++) {
        for (int d = 0; d < 3; d++) {
            for (size_t x = 0; x < n; x++) {
                slice_t val = d == 0 ? v[x].type : d == 1 ? v[x].lang : v[x].coding;
                check_q(d, f[k], present[k], val);
            }
            size_t mark = nowned;
            check_q(d, f[k], present[k], copy("", 0));
            release(mark);
        }
    }

    unsigned vary = 0xdead;
    int amb = 0xbeef;
    int idx = neg_choose(v, n, f[0], present[0], f[1], present[1], f[2], present[2], &vary, &amb);
    if (idx < -1 || idx >= (int)n || (vary & ~7u) || (amb != 0 && amb != 1))
        fail("neg_choose result out of range");
    uint64_t best = 0, best_tl = 0, tl;
    int first = -1;
    size_t ntl = 0;
    for (size_t x = 0; x < n; x++) {
        uint64_t q = product(&v[x], f, present, &tl);
        if (q > best) {
            best = q;
            first = (int)x;
        }
        if (q > 0 && tl > best_tl) {
            best_tl = tl;
            ntl = 1;
        } else if (q > 0 && tl == best_tl) {
            ntl++;
        }
    }
    if (idx != first)
        fail("neg_choose did not pick the first best variant");
    if (amb && (idx < 0 || ntl < 2))
        fail("ambiguous without two acceptable variants");
    static const unsigned bit[3] = { NEG_VARY_ACCEPT, NEG_VARY_LANGUAGE, NEG_VARY_ENCODING };
    for (int d = 0; d < 3; d++) {
        if (vary & bit[d])
            continue;
        for (size_t x = 1; x < n; x++) {
            slice_t a = d == 0 ? v[0].type : d == 1 ? v[0].lang : v[0].coding;
            slice_t b = d == 0 ? v[x].type : d == 1 ? v[x].lang : v[x].coding;
            if (fns[d](f[d], present[d], a) != fns[d](f[d], present[d], b))
                fail("a dimension left out of vary changes the quality");
        }
    }
    if (n <= 1 && vary != 0)
        fail("vary with one variant");

    struct neg_variant r[MAXV];
    for (size_t x = 0; x < n; x++)
        r[x] = v[n - 1 - x];
    unsigned rvary;
    int ramb;
    int ridx = neg_choose(r, n, f[0], present[0], f[1], present[1], f[2], present[2], &rvary, &ramb);
    if (rvary != vary || ramb != amb || (ridx < 0) != (idx < 0))
        fail("the order of the variants changes vary, ambiguous or the 406");
    if (idx >= 0 && product(&r[ridx], f, present, &tl) != best)
        fail("the order of the variants changes the best quality");

    release(0);
    return 0;
}
