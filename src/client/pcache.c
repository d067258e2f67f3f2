/* pcache.c - RFC 9111 for one user: lookups, storing, 304 updates. */
#include "client/pcache.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/cachectl.h"

int pcache_head_text(buf_t *b, int status, slice_t reason, const http_field_t *f, size_t n)
{
    char line[32];
    int k = snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
    int rc = buf_append(b, line, (size_t)k);
    if (rc == 0)
        rc = buf_append(b, reason.p, reason.len);
    if (rc == 0)
        rc = buf_append(b, "\r\n", 2);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = buf_append(b, f[i].name.p, f[i].name.len);
        if (rc == 0)
            rc = buf_append(b, ": ", 2);
        if (rc == 0)
            rc = buf_append(b, f[i].value.p, f[i].value.len);
        if (rc == 0)
            rc = buf_append(b, "\r\n", 2);
    }
    if (rc == 0)
        rc = buf_append(b, "\r\n", 2);
    return rc;
}

/* Parses the stored head into l->res / l->fields. */
static int parse_head(pcache_lookup_t *l)
{
    http_parse_state_t ps;
    const char *why;
    http_parse_state_init(&ps);
    return http_parse_response(l->entry.head.p, l->entry.head.len, &ps, STORE_META_MAX,
                               PCACHE_MAX_FIELDS, l->fields, &l->res, &why) > 0 ? 0 : -1;
}

static int same_name(slice_t a, slice_t b)
{
    return a.len == b.len && strncasecmp(a.p, b.p, a.len) == 0;
}

void pcache_lookup_dispose(pcache_lookup_t *l)
{
    if (l->have_entry)
        store_entry_dispose(&l->entry);
    l->have_entry = 0;
}

void pcache_lookup(const char *dir, slice_t key, const http_field_t *req, size_t nreq,
                   time_t now, pcache_lookup_t *l)
{
    const char *why;
    memset(l, 0, sizeof *l);
    l->verdict = PCACHE_MISS;
    l->why = "";
    int rc = store_lookup(dir, key, &l->entry, &why);
    if (rc < 0) {
        l->dropped = 1;
        l->why = why;
        return;
    }
    if (rc == 0) {
        l->why = "no entry";
        return;
    }
    l->have_entry = 1;
    if (parse_head(l) != 0) {
        l->why = "stored head does not parse";
        pcache_lookup_dispose(l);
        return;
    }
    /* The request fields that Vary named, as they were when stored. */
    http_field_t sreq[PCACHE_MAX_FIELDS];
    size_t nsreq = 0;
    char tmp[PCACHE_VARY_MAX + 2];
    if (l->entry.vary.len > 0) {
        if (l->entry.vary.len > PCACHE_VARY_MAX) {
            l->why = "stored Vary fields too long";
            return;
        }
        memcpy(tmp, l->entry.vary.p, l->entry.vary.len);
        memcpy(tmp + l->entry.vary.len, "\r\n", 2);
        if (http_parse_fields(tmp, tmp + l->entry.vary.len + 2, sreq, PCACHE_MAX_FIELDS, &nsreq,
                              &why) != 0) {
            l->why = "stored Vary fields do not parse";
            return;
        }
    }
    if (http_cache_vary_match(l->fields, l->res.nfields, sreq, nsreq, req, nreq) != 1) {
        l->why = "the stored response was chosen by other request fields (Vary)";
        return;
    }
    http_cc_t qcc, rcc;
    http_cc_from_fields(&qcc, req, nreq);
    if (http_cache_pragma_no_cache(req, nreq))
        qcc.flags |= HTTP_CC_NO_CACHE;
    http_cc_from_fields(&rcc, l->fields, l->res.nfields);
    l->freshness = http_cache_freshness(l->res.status, l->fields, l->res.nfields, 0,
                                        l->entry.response_time, NULL);
    int64_t init = http_cache_initial_age(l->fields, l->res.nfields, l->entry.request_time,
                                          l->entry.response_time);
    l->age = http_cache_age(init, l->entry.response_time, now);
    enum http_cache_use use = http_cache_decide(&qcc, &rcc, l->freshness, l->age, 0);
    if (use != HTTP_CACHE_USE_REVALIDATE) {
        l->verdict = PCACHE_HIT;
        l->stale_ok = use == HTTP_CACHE_USE_STALE;
        return;
    }
    const char *vn;
    if (!http_cache_validator(l->fields, l->res.nfields, &vn, &l->validator)) {
        l->why = "stale, and no validator to revalidate with";
        return;
    }
    l->verdict = PCACHE_REVALIDATE;
    l->validator_name = strcmp(vn, "if-none-match") == 0 ? "If-None-Match" : "If-Modified-Since";
}

struct vary_keep {
    const http_field_t *req;
    size_t nreq;
    buf_t *out;
};

static int vary_keep(slice_t name, void *arg)
{
    struct vary_keep *k = arg;
    for (size_t i = 0; i < k->nreq; i++) {
        if (!same_name(k->req[i].name, name))
            continue;
        if (buf_append(k->out, name.p, name.len) != 0 || buf_append(k->out, ": ", 2) != 0 ||
            buf_append(k->out, k->req[i].value.p, k->req[i].value.len) != 0 ||
            buf_append(k->out, "\r\n", 2) != 0)
            return 1;
    }
    return 0;
}

int pcache_store_begin(store_writer_t *w, const char *dir, slice_t key, const http_field_t *req,
                       size_t nreq, const http_response_t *res, time_t request_time,
                       time_t response_time, const char **why)
{
    if (!http_cache_storable(HTTP_M_GET, req, nreq, res->status, res->fields, res->nfields, 0,
                             why)) {
        if (strcmp(*why, "no-store") == 0)
            store_remove(dir, key);
        return 0;
    }
    const char *vn;
    slice_t vv;
    int64_t fresh = http_cache_freshness(res->status, res->fields, res->nfields, 0,
                                         response_time, NULL);
    if (fresh == 0 && !http_cache_validator(res->fields, res->nfields, &vn, &vv)) {
        *why = "never fresh and no validator to revalidate with";
        return 0;
    }
    buf_t vary, head;
    buf_init(&vary, PCACHE_VARY_MAX);
    buf_init(&head, STORE_META_MAX);
    struct vary_keep k = { req, nreq, &vary };
    int ok = 0;
    if (http_cache_vary_each(res->fields, res->nfields, vary_keep, &k) != 0)
        *why = "request fields named by Vary too long";
    else if (pcache_head_text(&head, res->status, res->reason, res->fields, res->nfields) != 0)
        *why = "response head too large to store";
    else if (store_begin(w, dir, key, slice_make(vary.data ? buf_head(&vary) : "", vary.len),
                         slice_make(buf_head(&head), head.len), request_time,
                         response_time) != 0)
        *why = "cannot create an entry in the cache directory";
    else
        ok = 1;
    buf_dispose(&vary);
    buf_dispose(&head);
    return ok;
}

int pcache_update(pcache_lookup_t *l, const char *dir, slice_t key, const http_response_t *r304,
                  time_t request_time, time_t response_time)
{
    http_field_t merged[PCACHE_MAX_FIELDS * 2];
    size_t n = 0;
    for (size_t i = 0; i < l->res.nfields; i++) {
        int replaced = 0;
        if (!http_cache_keep_on_update(l->fields[i].name))
            for (size_t k = 0; k < r304->nfields && !replaced; k++)
                replaced = same_name(l->fields[i].name, r304->fields[k].name);
        if (!replaced)
            merged[n++] = l->fields[i];
    }
    for (size_t k = 0; k < r304->nfields && n < sizeof merged / sizeof merged[0]; k++)
        if (!http_cache_keep_on_update(r304->fields[k].name))
            merged[n++] = r304->fields[k];
    buf_t head;
    buf_init(&head, STORE_META_MAX);
    store_writer_t w;
    int rc = pcache_head_text(&head, l->res.status, l->res.reason, merged, n);
    if (rc == 0)
        rc = store_begin(&w, dir, key, l->entry.vary, slice_make(buf_head(&head), head.len),
                         request_time, response_time);
    if (rc == 0) {
        rc = store_copy_body(&w, &l->entry);
        if (rc == 0)
            rc = store_commit(&w);
        else
            store_abort(&w);
    }
    buf_dispose(&head);
    if (rc != 0)
        return rc;
    /* Describe the new entry (checked like any other on the way in). */
    pcache_lookup_t nl;
    memset(&nl, 0, sizeof nl);
    const char *why;
    if (store_lookup(dir, key, &nl.entry, &why) != 1)
        return -EIO;
    nl.have_entry = 1;
    if (parse_head(&nl) != 0) {
        pcache_lookup_dispose(&nl);
        return -EIO;
    }
    pcache_lookup_dispose(l);
    memcpy(&l->entry, &nl.entry, sizeof nl.entry);
    l->res = nl.res;
    memcpy(l->fields, nl.fields, sizeof nl.fields);
    l->res.fields = l->fields;
    l->have_entry = 1;
    return 0;
}
