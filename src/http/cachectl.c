/* cachectl.c - RFC 9111 freshness, age, storability and Vary rules. */
#include "http/cachectl.h"

#include <string.h>
#include <strings.h>

#include "http/date.h"

static int is_ows(char c) { return c == ' ' || c == '\t'; }

static slice_t trim(slice_t s)
{
    while (s.len > 0 && is_ows(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && is_ows(s.p[s.len - 1]))
        s.len--;
    return s;
}

const http_field_t *http_fields_find(const http_field_t *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (http_slice_ieq(f[i].name, name))
            return &f[i];
    return NULL;
}

void http_cc_init(http_cc_t *cc)
{
    memset(cc, 0, sizeof *cc);
}

/* delta-seconds (RFC 9111 §1.2.2), quoted or not; -1 when bad. */
static int64_t parse_delta(slice_t v)
{
    if (v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"') {
        v.p++;
        v.len -= 2;
    }
    if (v.len == 0)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        if (n < HTTP_CACHE_DELTA_MAX)
            n = n * 10 + (v.p[i] - '0');
    }
    return n > HTTP_CACHE_DELTA_MAX ? HTTP_CACHE_DELTA_MAX : n;
}

/* Sets a delta directive; a bad value, or a second different one, marks
 * the whole set invalid. */
static void set_delta(http_cc_t *cc, unsigned flag, int64_t *slot, slice_t v, int has_v)
{
    int64_t d = has_v ? parse_delta(v) : -1;
    if (d < 0) {
        cc->flags |= HTTP_CC_INVALID;
        return;
    }
    if ((cc->flags & flag) && *slot != d)
        cc->flags |= HTTP_CC_INVALID;
    cc->flags |= flag;
    *slot = d;
}

static int cc_elem(slice_t e, void *arg)
{
    http_cc_t *cc = arg;
    slice_t name = e, v = { "", 0 };
    int has_v = 0;
    const char *eq = memchr(e.p, '=', e.len);
    if (eq != NULL) {
        name = trim(slice_make(e.p, (size_t)(eq - e.p)));
        v = trim(slice_make(eq + 1, (size_t)(e.p + e.len - eq - 1)));
        has_v = 1;
    }
    if (http_slice_ieq(name, "no-store"))
        cc->flags |= HTTP_CC_NO_STORE;
    else if (http_slice_ieq(name, "no-cache"))
        cc->flags |= HTTP_CC_NO_CACHE;
    else if (http_slice_ieq(name, "must-revalidate"))
        cc->flags |= HTTP_CC_MUST_REVALIDATE;
    else if (http_slice_ieq(name, "proxy-revalidate"))
        cc->flags |= HTTP_CC_PROXY_REVALIDATE;
    else if (http_slice_ieq(name, "private"))
        cc->flags |= HTTP_CC_PRIVATE;
    else if (http_slice_ieq(name, "public"))
        cc->flags |= HTTP_CC_PUBLIC;
    else if (http_slice_ieq(name, "only-if-cached"))
        cc->flags |= HTTP_CC_ONLY_IF_CACHED;
    else if (http_slice_ieq(name, "no-transform"))
        cc->flags |= HTTP_CC_NO_TRANSFORM;
    else if (http_slice_ieq(name, "immutable"))
        cc->flags |= HTTP_CC_IMMUTABLE;
    else if (http_slice_ieq(name, "must-understand"))
        cc->flags |= HTTP_CC_MUST_UNDERSTAND;
    else if (http_slice_ieq(name, "max-age"))
        set_delta(cc, HTTP_CC_MAX_AGE, &cc->max_age, v, has_v);
    else if (http_slice_ieq(name, "s-maxage"))
        set_delta(cc, HTTP_CC_S_MAXAGE, &cc->s_maxage, v, has_v);
    else if (http_slice_ieq(name, "min-fresh"))
        set_delta(cc, HTTP_CC_MIN_FRESH, &cc->min_fresh, v, has_v);
    else if (http_slice_ieq(name, "max-stale")) {
        if (!has_v) {
            cc->flags |= HTTP_CC_MAX_STALE;
            cc->max_stale = -1;
        } else {
            set_delta(cc, HTTP_CC_MAX_STALE, &cc->max_stale, v, has_v);
        }
    }
    return 0;
}

/* Splits a Cache-Control value on commas outside quoted strings. */
void http_cc_parse(http_cc_t *cc, slice_t value)
{
    size_t i = 0;
    while (i < value.len) {
        size_t j = i;
        int quoted = 0;
        while (j < value.len && (quoted || value.p[j] != ',')) {
            if (value.p[j] == '"')
                quoted = !quoted;
            else if (value.p[j] == '\\' && quoted && j + 1 < value.len)
                j++;
            j++;
        }
        slice_t e = trim(slice_make(value.p + i, j - i));
        if (e.len > 0)
            cc_elem(e, cc);
        i = j + 1;
    }
}

void http_cc_from_fields(http_cc_t *cc, const http_field_t *f, size_t n)
{
    http_cc_init(cc);
    for (size_t i = 0; i < n; i++)
        if (http_slice_ieq(f[i].name, "cache-control"))
            http_cc_parse(cc, f[i].value);
}

static int has_no_cache(slice_t e, void *arg)
{
    (void)arg;
    return http_slice_ieq(e, "no-cache");
}

int http_cache_pragma_no_cache(const http_field_t *f, size_t n)
{
    if (http_fields_find(f, n, "cache-control") != NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (http_slice_ieq(f[i].name, "pragma") && http_list_each(f[i].value, has_no_cache, NULL))
            return 1;
    return 0;
}

int http_cache_status_heuristic(int status)
{
    switch (status) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
        return 1;
    default:
        return 0;
    }
}

static int vary_star(slice_t e, void *arg)
{
    (void)arg;
    return e.len == 1 && e.p[0] == '*';
}

#define NO(reason) do { *why = (reason); return 0; } while (0)

int http_cache_storable(enum http_method method, const http_field_t *req, size_t nreq,
                        int status, const http_field_t *res, size_t nres, int shared,
                        const char **why)
{
    http_cc_t qcc, rcc;
    *why = "";
    if (method != HTTP_M_GET)
        NO("method not cacheable");
    if (status < 200 || status == 206)
        NO("status not stored");
    http_cc_from_fields(&qcc, req, nreq);
    http_cc_from_fields(&rcc, res, nres);
    if (qcc.flags & HTTP_CC_NO_STORE)
        NO("no-store in the request");
    if (rcc.flags & HTTP_CC_NO_STORE)
        NO("no-store");
    if (shared && (rcc.flags & HTTP_CC_PRIVATE))
        NO("private");
    if (shared && http_fields_find(req, nreq, "authorization") != NULL &&
        !(rcc.flags & (HTTP_CC_MUST_REVALIDATE | HTTP_CC_PUBLIC | HTTP_CC_S_MAXAGE)))
        NO("request with Authorization");
    for (size_t i = 0; i < nres; i++)
        if (http_slice_ieq(res[i].name, "vary") && http_list_each(res[i].value, vary_star, NULL))
            NO("Vary: *");
    if (rcc.flags & (HTTP_CC_MAX_AGE | HTTP_CC_PUBLIC))
        return 1;
    if (shared && (rcc.flags & HTTP_CC_S_MAXAGE))
        return 1;
    if (!shared && (rcc.flags & HTTP_CC_PRIVATE))
        return 1;
    if (http_fields_find(res, nres, "expires") != NULL)
        return 1;
    if (http_cache_status_heuristic(status))
        return 1;
    NO("no freshness information and status not heuristically cacheable");
}

static int field_date(const http_field_t *f, size_t n, const char *name, time_t *t)
{
    const http_field_t *x = http_fields_find(f, n, name);
    if (x == NULL)
        return -1;
    return http_date_parse(x->value, t);
}

int64_t http_cache_freshness(int status, const http_field_t *res, size_t nres, int shared,
                             time_t response_time, int *heuristic)
{
    http_cc_t cc;
    if (heuristic != NULL)
        *heuristic = 0;
    http_cc_from_fields(&cc, res, nres);
    if (cc.flags & HTTP_CC_INVALID)
        return 0;
    if (shared && (cc.flags & HTTP_CC_S_MAXAGE))
        return cc.s_maxage;
    if (cc.flags & HTTP_CC_MAX_AGE)
        return cc.max_age;
    time_t date;
    if (field_date(res, nres, "date", &date) != 0)
        date = response_time;
    if (http_fields_find(res, nres, "expires") != NULL) {
        time_t exp;
        if (field_date(res, nres, "expires", &exp) != 0)
            return 0; /* an invalid Expires means "already expired" */
        int64_t d = (int64_t)exp - (int64_t)date;
        return d < 0 ? 0 : (d > HTTP_CACHE_DELTA_MAX ? HTTP_CACHE_DELTA_MAX : d);
    }
    time_t lm;
    if ((http_cache_status_heuristic(status) || (cc.flags & HTTP_CC_PUBLIC)) &&
        field_date(res, nres, "last-modified", &lm) == 0 && lm < date) {
        int64_t h = ((int64_t)date - (int64_t)lm) * HTTP_CACHE_HEURISTIC_PERCENT / 100;
        if (heuristic != NULL)
            *heuristic = 1;
        return h > HTTP_CACHE_HEURISTIC_MAX ? HTTP_CACHE_HEURISTIC_MAX : h;
    }
    return 0;
}

int64_t http_cache_initial_age(const http_field_t *res, size_t nres, time_t request_time,
                               time_t response_time)
{
    int64_t age_value = 0;
    const http_field_t *a = http_fields_find(res, nres, "age");
    if (a != NULL) {
        int64_t v = parse_delta(trim(a->value));
        if (v > 0 && (a->value.len == 0 || a->value.p[0] != '"'))
            age_value = v;
    }
    time_t date;
    if (field_date(res, nres, "date", &date) != 0)
        date = response_time;
    int64_t apparent = (int64_t)response_time - (int64_t)date;
    if (apparent < 0)
        apparent = 0;
    int64_t delay = (int64_t)response_time - (int64_t)request_time;
    if (delay < 0)
        delay = 0;
    int64_t corrected = age_value + delay;
    int64_t r = apparent > corrected ? apparent : corrected;
    return r > HTTP_CACHE_DELTA_MAX ? HTTP_CACHE_DELTA_MAX : r;
}

int64_t http_cache_age(int64_t initial_age, time_t response_time, time_t now)
{
    int64_t resident = (int64_t)now - (int64_t)response_time;
    if (resident < 0)
        resident = 0;
    int64_t r = initial_age + resident;
    if (r < 0)
        r = 0;
    return r > HTTP_CACHE_DELTA_MAX ? HTTP_CACHE_DELTA_MAX : r;
}

enum http_cache_use http_cache_decide(const http_cc_t *q, const http_cc_t *r,
                                      int64_t freshness, int64_t age, int shared)
{
    if (q->flags & HTTP_CC_NO_CACHE)
        return HTTP_CACHE_USE_REVALIDATE;
    if (r->flags & HTTP_CC_NO_CACHE)
        return HTTP_CACHE_USE_REVALIDATE;
    if ((q->flags & HTTP_CC_MAX_AGE) && age > q->max_age)
        return HTTP_CACHE_USE_REVALIDATE;
    if ((q->flags & HTTP_CC_MIN_FRESH) && freshness - age < q->min_fresh)
        return HTTP_CACHE_USE_REVALIDATE;
    if (age < freshness)
        return HTTP_CACHE_USE_FRESH;
    /* Stale from here on. */
    if (r->flags & HTTP_CC_MUST_REVALIDATE)
        return HTTP_CACHE_USE_REVALIDATE;
    if (shared && (r->flags & (HTTP_CC_PROXY_REVALIDATE | HTTP_CC_S_MAXAGE)))
        return HTTP_CACHE_USE_REVALIDATE;
    if ((q->flags & HTTP_CC_MAX_STALE) &&
        (q->max_stale < 0 || age - freshness <= q->max_stale))
        return HTTP_CACHE_USE_STALE;
    return HTTP_CACHE_USE_REVALIDATE;
}

const char *http_cache_use_name(enum http_cache_use u)
{
    switch (u) {
    case HTTP_CACHE_USE_FRESH: return "FRESH";
    case HTTP_CACHE_USE_STALE: return "STALE";
    case HTTP_CACHE_USE_REVALIDATE: return "REVALIDATE";
    }
    return "?";
}

int http_cache_vary_each(const http_field_t *res, size_t nres,
                         int (*fn)(slice_t name, void *arg), void *arg)
{
    for (size_t i = 0; i < nres; i++) {
        if (!http_slice_ieq(res[i].name, "vary"))
            continue;
        int rc = http_list_each(res[i].value, fn, arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* The k-th list element of every field named `name` in f, in order. */
struct nth {
    size_t want, seen;
    slice_t out;
    int found;
};

static int nth_elem(slice_t e, void *arg)
{
    struct nth *s = arg;
    if (s->seen++ == s->want) {
        s->out = e;
        s->found = 1;
        return 1;
    }
    return 0;
}

static int nth_of(const http_field_t *f, size_t n, slice_t name, size_t k, slice_t *out)
{
    struct nth s = { .want = k };
    for (size_t i = 0; i < n && !s.found; i++)
        if (f[i].name.len == name.len && strncasecmp(f[i].name.p, name.p, name.len) == 0)
            http_list_each(f[i].value, nth_elem, &s);
    *out = s.out;
    return s.found;
}

struct vary_cmp {
    const http_field_t *a, *b;
    size_t na, nb;
};

static int vary_differs(slice_t name, void *arg)
{
    struct vary_cmp *c = arg;
    if (name.len == 1 && name.p[0] == '*')
        return -1;
    for (size_t k = 0;; k++) {
        slice_t x, y;
        int hx = nth_of(c->a, c->na, name, k, &x);
        int hy = nth_of(c->b, c->nb, name, k, &y);
        if (hx != hy)
            return 1;
        if (!hx)
            return 0;
        if (!slice_eq(x, y))
            return 1;
    }
}

int http_cache_vary_match(const http_field_t *res, size_t nres, const http_field_t *sreq,
                          size_t nsreq, const http_field_t *req, size_t nreq)
{
    struct vary_cmp c = { sreq, req, nsreq, nreq };
    int rc = http_cache_vary_each(res, nres, vary_differs, &c);
    return rc < 0 ? -1 : (rc == 0);
}

int http_cache_keep_on_update(slice_t name)
{
    static const char *const keep[] = {
        "content-length", "content-encoding", "content-type", "content-range",
        "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
        "trailer", "upgrade",
    };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (http_slice_ieq(name, keep[i]))
            return 1;
    return 0;
}

int http_cache_validator(const http_field_t *res, size_t nres, const char **name, slice_t *value)
{
    const http_field_t *f = http_fields_find(res, nres, "etag");
    if (f != NULL && f->value.len > 0) {
        *name = "if-none-match";
        *value = f->value;
        return 1;
    }
    f = http_fields_find(res, nres, "last-modified");
    if (f != NULL && f->value.len > 0) {
        *name = "if-modified-since";
        *value = f->value;
        return 1;
    }
    return 0;
}
