#include "http/negotiate.h"
#include "http/parse.h"

#include <stdint.h>

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static unsigned char lower(char c)
{
    unsigned char u = (unsigned char)c;
    return u >= 'A' && u <= 'Z' ? (unsigned char)(u | 0x20) : u;
}

static int ieq(slice_t a, slice_t b)
{
    if (a.len != b.len)
        return 0;
    for (size_t i = 0; i < a.len; i++)
        if (lower(a.p[i]) != lower(b.p[i]))
            return 0;
    return 1;
}

static int is_star(slice_t s)
{
    return s.len == 1 && s.p[0] == '*';
}

static int is_token(slice_t s)
{
    if (s.len == 0)
        return 0;
    for (size_t i = 0; i < s.len; i++)
        if (!http_tchar[(unsigned char)s.p[i]])
            return 0;
    return 1;
}

/* ------------------------------------------------------------ list elements */

/* The elements of a list value, by index so that an empty value may have a
 * NULL pointer. */
struct cursor {
    slice_t v;
    size_t i;
};

/* Gets the next non-empty element, trimmed of OWS. Commas inside a
 * quoted-string do not end an element; an unterminated one runs to the end
 * of the value (and the element is then refused by parse_elem). Returns 1,
 * or 0 at the end. */
static int next_elem(struct cursor *c, slice_t *e)
{
    while (c->i < c->v.len) {
        size_t a = c->i, j = a;
        int quoted = 0;
        for (; j < c->v.len; j++) {
            char ch = c->v.p[j];
            if (quoted) {
                if (ch == '\\' && j + 1 < c->v.len)
                    j++;
                else if (ch == '"')
                    quoted = 0;
            } else if (ch == '"') {
                quoted = 1;
            } else if (ch == ',') {
                break;
            }
        }
        c->i = j < c->v.len ? j + 1 : j;
        size_t b = j;
        while (a < b && is_ows(c->v.p[a]))
            a++;
        while (b > a && is_ows(c->v.p[b - 1]))
            b--;
        if (b > a) {
            *e = slice_make(c->v.p + a, b - a);
            return 1;
        }
    }
    return 0;
}

/* Length of the quoted-string at the start of s[0, n) (RFC 9110 §5.6.4),
 * both DQUOTEs included, or 0 if there is none. */
static size_t quoted_len(const char *s, size_t n)
{
    if (n == 0 || s[0] != '"')
        return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i + 1;
        if (c == '\\') {
            if (++i == n)
                return 0;
            c = (unsigned char)s[i];
        }
        if (c != '\t' && (c < 0x20 || c == 0x7f))
            return 0;
    }
    return 0;
}

struct elem {
    slice_t value;      /* the range or coding, not checked yet */
    int q;              /* its weight, NEG_Q_MAX if none */
    int params;         /* media type parameters before the weight */
};

/* Parses one list element. For Accept (`media`), a media range with
 * parameters: value *( OWS ";" OWS [ parameter ] ), parameter = token "="
 * ( token / quoted-string ), the first parameter named q being the weight
 * and those after it (RFC 7231 accept-ext) ignored, with or without a
 * value. For the other fields: value [ OWS ";" OWS "q=" qvalue ].
 * Returns 0, or -1 if the element does not match. */
static int parse_elem(slice_t e, int media, struct elem *out)
{
    const char *s = e.p;
    size_t n = e.len, i = 0;
    while (i < n && s[i] != ';' && !is_ows(s[i]))
        i++;
    out->value = slice_make(s, i);
    out->q = NEG_Q_MAX;
    out->params = 0;
    int weighted = 0;
    for (;;) {
        while (i < n && is_ows(s[i]))
            i++;
        if (i == n)
            return 0;
        if (s[i] != ';')
            return -1;
        i++;
        while (i < n && is_ows(s[i]))
            i++;
        if (!media) {
            size_t a = i;
            while (i < n && s[i] != ';' && !is_ows(s[i]))
                i++;
            if (weighted || (out->q = neg_parse_q(slice_make(s + a, i - a))) < 0)
                return -1;
            weighted = 1;
            continue;
        }
        if (i == n || s[i] == ';')
            continue;                       /* an empty parameter */
        size_t name = i;
        while (i < n && http_tchar[(unsigned char)s[i]])
            i++;
        if (i == name)
            return -1;
        if (i == n || s[i] != '=') {
            if (weighted)
                continue;
            return -1;
        }
        int is_q = i - name == 1 && lower(s[name]) == 'q';
        i++;
        size_t val = i;
        if (i < n && s[i] == '"') {
            size_t ql = quoted_len(s + i, n - i);
            if (ql == 0)
                return -1;
            i += ql;
        } else {
            while (i < n && http_tchar[(unsigned char)s[i]])
                i++;
            if (i == val)
                return -1;
        }
        if (weighted)
            continue;
        if (is_q) {
            if ((out->q = neg_parse_q(slice_make(s + name, i - name))) < 0)
                return -1;
            weighted = 1;
        } else {
            out->params++;
        }
    }
}

int neg_parse_q(slice_t s)
{
    if (s.len < 3 || lower(s.p[0]) != 'q' || s.p[1] != '=')
        return -1;
    const char *d = s.p + 2;
    size_t n = s.len - 2;
    if (d[0] != '0' && d[0] != '1')
        return -1;
    int v = (d[0] - '0') * 1000;
    if (n == 1)
        return v;
    if (d[1] != '.' || n > 5)
        return -1;
    for (size_t i = 2, scale = 100; i < n; i++, scale /= 10) {
        if (d[i] < '0' || d[i] > '9' || (v == 1000 && d[i] != '0'))
            return -1;
        v += (d[i] - '0') * (int)scale;
    }
    return v;
}

/* ------------------------------------------------------------------ Accept */

/* Splits "type/subtype" (two tokens; a "*" type needs a "*" subtype).
 * Returns 0, or -1 if it is not a media range. */
static int split_type(slice_t r, slice_t *type, slice_t *sub)
{
    size_t i = 0;
    while (i < r.len && r.p[i] != '/')
        i++;
    if (i == r.len)
        return -1;
    *type = slice_make(r.p, i);
    *sub = slice_make(r.p + i + 1, r.len - i - 1);
    if (!is_token(*type) || !is_token(*sub) || (is_star(*type) && !is_star(*sub)))
        return -1;
    return 0;
}

/* A variant's media type without any parameters a caller left on it. */
static slice_t bare_type(slice_t t)
{
    size_t i = 0;
    while (i < t.len && t.p[i] != ';' && !is_ows(t.p[i]))
        i++;
    return slice_make(t.p, i);
}

int neg_q_type(slice_t accept, int present, slice_t type)
{
    if (!present)
        return NEG_Q_MAX;
    slice_t vt = { 0 }, vs = { 0 };
    int known = split_type(bare_type(type), &vt, &vs) == 0;
    struct cursor c = { accept, 0 };
    slice_t e;
    int valid = 0, best_spec = 0, best_q = 0;
    while (next_elem(&c, &e)) {
        struct elem el;
        slice_t rt, rs;
        if (parse_elem(e, 1, &el) < 0 || split_type(el.value, &rt, &rs) < 0)
            continue;
        valid = 1;
        int spec;
        if (is_star(rt))
            spec = 1;
        else if (!known || !ieq(rt, vt))
            continue;
        else if (is_star(rs))
            spec = 2;
        else if (!ieq(rs, vs))
            continue;
        else
            spec = el.params ? 3 : 4;
        if (spec > best_spec || (spec == best_spec && el.q > best_q)) {
            best_spec = spec;
            best_q = el.q;
        }
    }
    return valid ? best_q : NEG_Q_MAX;
}

/* --------------------------------------------------------- Accept-Language */

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* language-range = (1*8ALPHA *("-" 1*8alphanum)) / "*" (RFC 4647 §2.1) */
static int is_lang_range(slice_t r)
{
    if (is_star(r))
        return 1;
    size_t i = 0;
    for (int first = 1;; first = 0) {
        size_t a = i;
        while (i < r.len && (is_alpha(r.p[i]) || (!first && r.p[i] >= '0' && r.p[i] <= '9')))
            i++;
        if (i == a || i - a > 8)
            return 0;
        if (i == r.len)
            return 1;
        if (r.p[i] != '-')
            return 0;
        i++;
    }
}

/* Basic filtering (RFC 4647 §3.3.1): the range equals the tag, or a prefix
 * of it that ends before a '-'. The caller has handled "*". */
static int lang_match(slice_t range, slice_t tag)
{
    if (range.len > tag.len || (range.len < tag.len && tag.p[range.len] != '-'))
        return 0;
    return ieq(range, slice_make(tag.p, range.len));
}

int neg_q_lang(slice_t accept_language, int present, slice_t lang)
{
    if (!present)
        return NEG_Q_MAX;
    struct cursor c = { accept_language, 0 };
    slice_t e;
    int valid = 0, best_q = -1;
    size_t best_spec = 0;
    while (next_elem(&c, &e)) {
        struct elem el;
        if (parse_elem(e, 0, &el) < 0 || !is_lang_range(el.value))
            continue;
        valid = 1;
        if (lang.len == 0)
            break;                          /* untagged: validity is all we need */
        size_t spec;
        if (is_star(el.value))
            spec = 0;
        else if (lang_match(el.value, lang))
            spec = el.value.len;
        else
            continue;
        if (best_q < 0 || spec > best_spec || (spec == best_spec && el.q > best_q)) {
            best_spec = spec;
            best_q = el.q;
        }
    }
    if (!valid)
        return NEG_Q_MAX;
    return best_q < 0 ? NEG_Q_LANG_FALLBACK : best_q;
}

/* --------------------------------------------------------- Accept-Encoding */

/* A coding's name for comparison: empty for identity, x-gzip and x-compress
 * as their plain names (RFC 9110 §8.4.1.1, §8.4.1.3). */
static slice_t coding_name(slice_t c)
{
    if (c.len == 0 || http_slice_ieq(c, "identity"))
        return slice_make("", 0);
    if (http_slice_ieq(c, "x-gzip"))
        return SLICE_LIT("gzip");
    if (http_slice_ieq(c, "x-compress"))
        return SLICE_LIT("compress");
    return c;
}

int neg_q_coding(slice_t accept_encoding, int present, slice_t coding)
{
    slice_t want = coding_name(coding);
    int identity = want.len == 0;
    if (!present)
        return identity ? NEG_Q_MAX : NEG_Q_CODING_DEFAULT;
    struct cursor c = { accept_encoding, 0 };
    slice_t e;
    int exact = -1, star = -1;
    while (next_elem(&c, &e)) {
        struct elem el;
        if (parse_elem(e, 0, &el) < 0 || !is_token(el.value))
            continue;
        if (is_star(el.value)) {
            if (el.q > star)
                star = el.q;
        } else if (ieq(coding_name(el.value), want)) {
            if (el.q > exact)
                exact = el.q;
        }
    }
    if (exact >= 0)
        return exact;
    if (star >= 0)
        return star;
    return identity ? NEG_Q_CODING_DEFAULT : 0;
}

/* ------------------------------------------------------------------ choose */

int neg_choose(const struct neg_variant *v, size_t n, slice_t accept, int has_accept,
               slice_t accept_language, int has_al, slice_t accept_encoding, int has_ae,
               unsigned *vary, int *ambiguous)
{
    int best = -1, best_tl = -1, amb = 0;
    uint64_t best_q = 0, best_tl_q = 0;
    unsigned dims = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            if (!ieq(bare_type(v[i].type), bare_type(v[0].type)))
                dims |= NEG_VARY_ACCEPT;
            if (!ieq(v[i].lang, v[0].lang))
                dims |= NEG_VARY_LANGUAGE;
            if (!ieq(coding_name(v[i].coding), coding_name(v[0].coding)))
                dims |= NEG_VARY_ENCODING;
        }
        uint64_t tl = (uint64_t)neg_q_type(accept, has_accept, v[i].type);
        if (tl > 0)
            tl *= (uint64_t)neg_q_lang(accept_language, has_al, v[i].lang);
        uint64_t q = tl;
        if (q > 0)
            q *= (uint64_t)neg_q_coding(accept_encoding, has_ae, v[i].coding);
        if (q == 0)
            continue;
        if (q > best_q) {
            best = (int)i;
            best_q = q;
        }
        /* Ambiguity is about the content, type and language: the best of
         * those shared by variants that differ in them. Comparing each tie
         * with the first is enough: the tied set differs somewhere exactly
         * when one of them differs from it. */
        if (tl > best_tl_q) {
            best_tl = (int)i;
            best_tl_q = tl;
            amb = 0;
        } else if (tl == best_tl_q && (!ieq(bare_type(v[i].type), bare_type(v[best_tl].type)) ||
                                       !ieq(v[i].lang, v[best_tl].lang))) {
            amb = 1;
        }
    }
    if (vary)
        *vary = dims;
    if (ambiguous)
        *ambiguous = amb;
    return best;
}
