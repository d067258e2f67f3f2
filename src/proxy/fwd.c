/* fwd.c - forwarding a request upstream through the client pool, with the
 * shared cache in front (RFC 9111): lookups, freshness and Age, request
 * directives, revalidation with a 304 merge, stale-while-revalidate and
 * stale-if-error (RFC 5861), request collapsing, invalidation after unsafe
 * methods, and the response streamed back while it is stored. */
#include "core/log.h"
#include "http/cachectl.h"
#include "http/cond.h"
#include "http/date.h"
#include "http/limits.h"
#include "http/status.h"
#include "proxy/collapse.h"
#include "proxy/fill.h"
#include "proxy/hop.h"
#include "proxy/limits.h"
#include "proxy/pworker.h"
#include "proxy/pstore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fwd {
    hs_req_t *r;               /* NULL once the client is gone (or never: background) */
    struct pworker *pw;
    client_req_t *up;
    char host[HOST_MAX];
    uint16_t port;
    /* Copies of the request: its slices die with on_request. */
    char *mem;
    slice_t method, target, key;
    enum http_method mid;
    http_field_t *cfields;     /* the client's fields */
    size_t ncfields;
    http_field_t *ufields;     /* the fields to send upstream */
    size_t nufields;
    http_cc_t req_cc;
    /* The request body: held whole while it fits in PROXY_BODY_BUFFER
     * (sent with Content-Length, and can be sent again on a new
     * connection); a longer one streams (body_stream), and `body` then
     * holds only bytes taken from the client that the upstream's queue had
     * no room for yet (at most one engine slice: the engine is paused). */
    buf_t body;
    int body_reading;          /* the engine reads the body (before on_end) */
    int body_stream;           /* the upstream request has CLIENT_BODY_STREAM */
    int body_done;             /* the client's body is complete */
    int body_paused;           /* on_data said HS_BODY_PAUSE */
    int64_t body_len;          /* the client's Content-Length, -1 chunked */
    int in_engine;             /* inside the engine's body callbacks */
    int late_status;           /* a failure answer_late owes the client */
    char late_why[400];
    loop_defer_t dlate;
    int head_only;
    /* Cache. */
    int cache;                 /* GET or HEAD with a store */
    int leader;                /* collapse_done(key) is owed */
    int waited;                /* was a waiter once: do not wait again */
    pstore_obj_t *stale;        /* being revalidated (ref) */
    int background;            /* a stale-while-revalidate refresh */
    pstore_obj_t *obj;          /* being stored (ref) */
    int64_t content_length;
    time_t req_time;
    int headed;
    /* Collapsing with streaming (fill.h): the leader publishes the fill
     * its response is stored through; a waiter reads the body from it as
     * it arrives. */
    pfill_t *fill;             /* a reference */
    int fill_leader;
    int fill_parked;           /* fw is in the fill's parked list, or its wake is posted */
    int fill_wrc;              /* hs_stream_write's answer inside pfill_read */
    uint64_t fill_off;
    struct pfill_waiter fw;
    struct fwd *prev, *next;   /* pw->active */
    loop_defer_t dfree;
};

static const struct hs_stream_ops stream_ops;

/* ------------------------------------------------------------ helpers */

static void fwd_free(void *arg)
{
    struct fwd *f = arg;
    if (f->prev)
        f->prev->next = f->next;
    else if (f->pw != NULL && f->pw->active == f)
        f->pw->active = f->next;
    if (f->next)
        f->next->prev = f->prev;
    pstore_obj_release(f->stale);
    pstore_obj_release(f->obj);
    pfill_release(f->fill);
    buf_dispose(&f->body);
    free(f->mem);
    free(f);
}

/* The leader is done: wake the waiters (after storing, so they hit). */
static void fwd_collapse_done(struct fwd *f)
{
    if (f->leader) {
        f->leader = 0;
        collapse_done(f->pw->pc->collapse, f->key);
    }
}

static void fwd_finish(struct fwd *f)
{
    if (f->fill_leader)
        pfill_end(f->fill, 0); /* a no-op after a complete body */
    fwd_collapse_done(f);
    f->up = NULL;
    loop_defer(f->pw->loop, &f->dfree, fwd_free, f);
}

/* Resumes the held request; f->r is cleared when the client was gone
 * (hs_resume has freed it then). */
static void fwd_resume(struct fwd *f)
{
    hs_req_t *r = f->r;
    int gone = r->conn == NULL;
    int streaming = r->streaming && !r->stream_ended;
    hs_resume(r);
    if (gone || !streaming)
        f->r = NULL;
}

/* The upstream answered (or failed) while the client's body is still being
 * read: stop reading it, so that the answer can go now (the engine holds
 * the request, and closes the connection after the answer). */
static void body_stop(struct fwd *f)
{
    if (!f->body_reading)
        return;
    f->body_reading = 0;
    f->body_paused = 0;
    buf_reset(&f->body);
    if (f->r != NULL)
        hs_body_stop(f->r);
}

static int64_t cc_ext(const http_field_t *f, size_t n, const char *name)
{
    /* stale-while-revalidate / stale-if-error (RFC 5861): cachectl does not
     * parse them; -1 when absent. */
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (!http_slice_ieq(f[i].name, "cache-control"))
            continue;
        const char *p = f[i].value.p, *end = p + f[i].value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ','))
                p++;
            if ((size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == '=') {
                int64_t v = 0;
                const char *d = p + nl + 1;
                if (d < end && *d == '"')
                    d++;
                if (d >= end || *d < '0' || *d > '9')
                    return -1;
                while (d < end && *d >= '0' && *d <= '9' && v < HTTP_CACHE_DELTA_MAX)
                    v = v * 10 + (*d++ - '0');
                return v;
            }
            while (p < end && *p != ',')
                p++;
        }
    }
    return -1;
}

struct verdict {
    enum http_cache_use use;
    int64_t age, fresh;
    http_cc_t res_cc;
};

static struct verdict judge(const struct fwd *f, const pstore_obj_t *o, time_t now)
{
    struct verdict v;
    v.res_cc = o->cc;
    v.fresh = o->fresh;
    v.age = http_cache_age(o->init_age, (time_t)o->resp_time, now);
    v.use = http_cache_decide(&f->req_cc, &v.res_cc, v.fresh, v.age, 1);
    return v;
}

/* Appends a field as it is to the response head being built. */
static void relay_field(hs_req_t *r, const http_field_t *fl)
{
    buf_append(r->hdr, fl->name.p, fl->name.len);
    buf_append(r->hdr, ": ", 2);
    buf_append(r->hdr, fl->value.p, fl->value.len);
    buf_append(r->hdr, "\r\n", 2);
}

static void release_obj(void *o)
{
    pstore_obj_release(o);
}

/* 304 when the client's own If-None-Match / If-Modified-Since say it
 * has the stored response already (RFC 9111 §4.3.2), else 0. */
static int client_not_modified(const http_field_t *req, size_t nreq, const pstore_obj_t *o)
{
    if (o->status != 200)
        return 0;
    struct http_cond c;
    memset(&c, 0, sizeof c);
    const http_field_t *inm = http_fields_find(req, nreq, "if-none-match");
    const http_field_t *ims = http_fields_find(req, nreq, "if-modified-since");
    if (inm != NULL)
        c.if_none_match = inm->value;
    if (ims != NULL && http_date_parse(ims->value, &c.ims) == 0)
        c.has_ims = 1;
    if (inm == NULL && !c.has_ims)
        return 0;
    const http_field_t *etag = http_fields_find(o->fields, o->nfields, "etag");
    const http_field_t *lm = http_fields_find(o->fields, o->nfields, "last-modified");
    time_t mtime = 0;
    if (lm == NULL || http_date_parse(lm->value, &mtime) != 0) {
        if (inm == NULL)
            return 0; /* nothing to compare a date with */
        mtime = (time_t)o->resp_time;
    }
    return http_cond_eval(&c, 1, etag ? etag->value : SLICE_LIT(""), mtime, 1) == 304 ? 304 : 0;
}

/* Answers from a stored object (with status 304 and no body instead of
 * its own when `not_modified`). */
static void serve_obj_as(hs_req_t *r, const pstore_obj_t *o, const char *xcache, int64_t age,
                         const char *via_name, int not_modified);

static void serve_obj(hs_req_t *r, const pstore_obj_t *o, const char *xcache, int64_t age,
                      const char *via_name)
{
    serve_obj_as(r, o, xcache, age, via_name, 0);
}

/* The head of an answer from a stored object (status, the stored fields,
 * Date, Via, Age, X-Cache), without the framing. */
static void obj_head(hs_req_t *r, const pstore_obj_t *o, int status, const char *xcache, int64_t age,
                     const char *via_name)
{
    hs_resp_start_relay(r, status);
    int has_date = 0;
    for (size_t i = 0; i < o->nfields; i++) {
        const http_field_t *fl = &o->fields[i];
        if (http_slice_ieq(fl->name, "age"))
            continue;
        if (http_slice_ieq(fl->name, "date"))
            has_date = 1;
        if (http_slice_ieq(fl->name, "via"))
            continue; /* extended below */
        relay_field(r, fl);
    }
    if (!has_date) {
        char d[HTTP_DATE_LEN + 1];
        http_date_format(d, (time_t)o->resp_time);
        hs_resp_field(r, "Date", d, HTTP_DATE_LEN);
    }
    const http_field_t *via = http_fields_find(o->fields, o->nfields, "via");
    if (via == NULL) {
        buf_append(r->hdr, "Via: 1.1 ", 9);
        buf_append(r->hdr, via_name, strlen(via_name));
        buf_append(r->hdr, "\r\n", 2);
    } else {
        char v[PROXY_MAX_CHAIN_FIELD];
        if (hop_via(v, sizeof v, via->value, 11, via_name) < 0)
            hop_via(v, sizeof v, SLICE_LIT(""), 11, via_name);
        hs_resp_field_str(r, "Via", v);
    }
    char a[24];
    int k = (int)sizeof a;
    uint64_t n = age < 0 ? 0 : (uint64_t)age;
    do {
        a[--k] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    hs_resp_field(r, "Age", a + k, sizeof a - (size_t)k);
    hs_resp_field_str(r, "X-Cache", xcache);
}

static void serve_obj_as(hs_req_t *r, const pstore_obj_t *o, const char *xcache, int64_t age,
                         const char *via_name, int not_modified)
{
    obj_head(r, o, not_modified ? 304 : o->status, xcache, age, via_name);
    if (not_modified || o->status == 204 || o->status == 304 || o->status < 200) {
        hs_resp_empty(r);
    } else if (o->body_len <= PROXY_COPY_BODY_MAX || r->conn == NULL) {
        hs_resp_body(r, o->body ? o->body : "", (size_t)o->body_len);
    } else {
        /* Sent from the object itself: it lives until the engine is done. */
        pstore_obj_ref((pstore_obj_t *)o);
        const struct pworker *pw = hs_handler_ctx(r);
        /* sendfile: no copy of the pages; the file counts against --cache-mem */
        int bfd = pstore_obj_body_fd(pw->pc->store, (pstore_obj_t *)o);
        if (bfd >= 0)
            hs_resp_file_ref(r, bfd, 0, o->body_len, release_obj, (void *)o);
        else
            hs_resp_mem_ref(r, o->body, (size_t)o->body_len, release_obj, (void *)o);
    }
}

/* ------------------------------------------------------------ disk */

/* Writes o to the cache directory (o NULL: only deletes the files of what
 * left the store), on the store's writer thread. */
static void persist(struct pworker *pw, pstore_obj_t *o)
{
    pstore_persist_async(pw->pc->store, o);
}

/* ------------------------------------------------------------ upstream */

static void start_upstream(struct fwd *f);
static void fill_pump(struct fwd *f);
static void body_stop(struct fwd *f);

static int up_is_timeout(enum client_err e)
{
    return e == CLIENT_E_CONNECT_TIMEOUT || e == CLIENT_E_HEADER_TIMEOUT || e == CLIENT_E_READ_TIMEOUT;
}

/* The stale object may answer when the upstream failed (stale-if-error). */
static int stale_if_error_ok(const struct fwd *f, time_t now)
{
    if (f->stale == NULL)
        return 0;
    struct verdict v = judge(f, f->stale, now);
    int64_t sie = cc_ext(f->stale->fields, f->stale->nfields, "stale-if-error");
    int64_t rq = cc_ext(f->cfields, f->ncfields, "stale-if-error");
    if (rq > sie)
        sie = rq;
    if (v.res_cc.flags & (HTTP_CC_MUST_REVALIDATE | HTTP_CC_PROXY_REVALIDATE))
        return 0;
    return sie >= 0 && v.age - v.fresh <= sie;
}

static void serve_stale(struct fwd *f, const char *xcache)
{
    struct verdict v = judge(f, f->stale, time(NULL));
    serve_obj(f->r, f->stale, xcache, v.age, f->pw->pc->via_name);
}

static int has_field(const http_field_t *f, size_t n, slice_t name)
{
    for (size_t i = 0; i < n; i++)
        if (f[i].name.len == name.len && strncasecmp(f[i].name.p, name.p, name.len) == 0)
            return 1;
    return 0;
}

/* A new object for a 304: the stored fields, each replaced by the 304's
 * field of that name unless cachectl says to keep it; new fields added. */
static pstore_obj_t *merge_304(struct fwd *f, const http_response_t *res, time_t now)
{
    const pstore_obj_t *s = f->stale;
    buf_t h;
    buf_init(&h, PROXY_MAX_STORED_HEAD);
    struct hop_conn hc;
    hop_conn_collect(res->fields, res->nfields, &hc);
    for (size_t i = 0; i < s->nfields; i++) {
        const http_field_t *fl = &s->fields[i];
        if (!http_cache_keep_on_update(fl->name) && has_field(res->fields, res->nfields, fl->name))
            continue; /* replaced by the 304's */
        buf_append(&h, fl->name.p, fl->name.len);
        buf_append(&h, ": ", 2);
        buf_append(&h, fl->value.p, fl->value.len);
        buf_append(&h, "\r\n", 2);
    }
    for (size_t k = 0; k < res->nfields; k++) {
        const http_field_t *fl = &res->fields[k];
        if (hop_is_hop(fl->name, &hc) || http_cache_keep_on_update(fl->name))
            continue;
        buf_append(&h, fl->name.p, fl->name.len);
        buf_append(&h, ": ", 2);
        buf_append(&h, fl->value.p, fl->value.len);
        buf_append(&h, "\r\n", 2);
    }
    pstore_obj_t *o = pstore_obj_new(f->key, slice_cstr(s->vary), slice_cstr(s->vkey), s->status,
                                   buf_head(&h), h.len, f->req_time, now);
    buf_dispose(&h);
    if (o != NULL && pstore_obj_append(o, s->body, (size_t)s->body_len, s->body_len) < 0) {
        pstore_obj_release(o);
        o = NULL;
    }
    return o;
}

/* The end-to-end fields of a response as stored ("Name: value\r\n"),
 * without framing. */
static int stored_head(const http_response_t *res, buf_t *h)
{
    struct hop_conn hc;
    hop_conn_collect(res->fields, res->nfields, &hc);
    for (size_t i = 0; i < res->nfields; i++) {
        const http_field_t *fl = &res->fields[i];
        if (hop_is_hop(fl->name, &hc) || http_slice_ieq(fl->name, "content-length"))
            continue;
        if (buf_append(h, fl->name.p, fl->name.len) < 0 || buf_append(h, ": ", 2) < 0 ||
            buf_append(h, fl->value.p, fl->value.len) < 0 || buf_append(h, "\r\n", 2) < 0)
            return -1;
    }
    return 0;
}

static pstore_obj_t *new_obj(struct fwd *f, const http_response_t *res, const buf_t *h, time_t now)
{
    char vary[1024];
    size_t vl = 0;
    for (size_t i = 0; i < res->nfields; i++) {
        if (!http_slice_ieq(res->fields[i].name, "vary"))
            continue;
        int n = snprintf(vary + vl, sizeof vary - vl, "%s%.*s", vl ? ", " : "",
                         (int)res->fields[i].value.len, res->fields[i].value.p);
        if (n < 0 || (size_t)n >= sizeof vary - vl)
            return NULL;
        vl += (size_t)n;
    }
    char vk[PROXY_MAX_SECONDARY_KEY];
    int kl = 0;
    vk[0] = '\0';
    if (vl > 0 && (kl = hop_vary_key(vk, sizeof vk, slice_make(vary, vl), f->cfields, f->ncfields)) < 0)
        return NULL;
    return pstore_obj_new(f->key, slice_make(vary, vl), slice_make(vk, (size_t)kl), res->status,
                         buf_head(h), h->len, f->req_time, now);
}

/* After an unsafe method succeeded: the target and the URIs of Location
 * and Content-Location on the same origin are invalid (RFC 9111 §4.4). */
static void invalidate(struct fwd *f, const http_response_t *res)
{
    pstore_t *s = f->pw->pc->store;
    int n = pstore_remove(s, f->key);
    static const char *const names[] = { "location", "content-location" };
    for (int i = 0; i < 2; i++) {
        const http_field_t *l = http_response_field(res, names[i]);
        if (l == NULL || l->value.len == 0)
            continue;
        char key[PROXY_MAX_KEY];
        slice_t v = l->value;
        if (v.p[0] == '/') {
            const char *q = memchr(v.p, '?', v.len);
            slice_t path = slice_make(v.p, q ? (size_t)(q - v.p) : v.len);
            slice_t query = q ? slice_make(q + 1, v.len - path.len - 1) : SLICE_LIT("");
            if (hop_cache_key(key, sizeof key, 0, slice_cstr(f->host), f->port, path, query, q != NULL) > 0)
                n += pstore_remove(s, slice_cstr(key));
        } else {
            /* An absolute URI: only when it names this origin, which the
             * key's prefix tells. */
            char prefix[PROXY_MAX_KEY];
            int pl = hop_cache_key(prefix, sizeof prefix, 0, slice_cstr(f->host), f->port, SLICE_LIT("/"),
                                   SLICE_LIT(""), 0);
            if (pl > 1 && v.len >= (size_t)pl - 1 && strncasecmp(v.p, prefix, (size_t)pl - 1) == 0 &&
                v.len < sizeof key) {
                memcpy(key, prefix, (size_t)pl - 1);
                memcpy(key + pl - 1, v.p + pl - 1, v.len - (size_t)(pl - 1));
                key[v.len] = '\0';
                n += pstore_remove(s, slice_cstr(key));
            }
        }
    }
    if (n > 0)
        persist(f->pw, NULL);
}

/* The largest body worth collecting: --max-object, and no more than the
 * store can take (a shard's share of --cache-mem). */
static uint64_t obj_max(const struct proxy_config *pc)
{
    uint64_t m = pstore_max_body(pc->store);
    return pc->max_object < m ? pc->max_object : m;
}

static void up_head(client_req_t *up, const http_response_t *res, void *arg)
{
    (void)up;
    struct fwd *f = arg;
    const struct proxy_config *pc = f->pw->pc;
    time_t now = time(NULL);
    f->headed = 1;
    body_stop(f); /* an early answer: the rest of the request body is not sent */

    if (f->stale != NULL && res->status == 304) {
        pstore_obj_t *o = merge_304(f, res, now);
        if (o != NULL && pstore_put(pc->store, o) == 0)
            persist(f->pw, o);
        if (f->r != NULL) {
            const pstore_obj_t *use = o ? o : f->stale;
            struct verdict v = judge(f, use, now);
            serve_obj(f->r, use, "REVALIDATED", v.age, pc->via_name);
            fwd_resume(f);
        }
        pstore_obj_release(o);
        return; /* on_end follows (a 304 has no body) */
    }
    if (f->stale != NULL && res->status >= 500 && stale_if_error_ok(f, now)) {
        if (f->r != NULL) {
            serve_stale(f, "STALE");
            fwd_resume(f);
        }
        client_req_cancel(f->up);
        fwd_finish(f);
        return;
    }
    if (f->mid != HTTP_M_GET && f->mid != HTTP_M_HEAD && f->mid != HTTP_M_OPTIONS &&
        f->mid != HTTP_M_TRACE && res->status < 400 && pc->store != NULL)
        invalidate(f, res);

    buf_t h;
    buf_init(&h, PROXY_MAX_STORED_HEAD);
    int head_ok = stored_head(res, &h) == 0;
    const char *why = "";
    /* A 304 answers the client's own conditional request: it is not a
     * response to store for others. */
    if (f->cache && f->mid == HTTP_M_GET && head_ok && res->status != 304 &&
        http_cache_storable(HTTP_M_GET, f->cfields, f->ncfields, res->status, res->fields, res->nfields, 1,
                            &why) &&
        (res->content_length < 0 || (uint64_t)res->content_length <= obj_max(pc))) {
        f->obj = new_obj(f, res, &h, now);
        if (f->obj != NULL && res->content_length > 0 && !res->chunked &&
            pstore_obj_reserve(f->obj, (uint64_t)res->content_length) < 0) {
            pstore_obj_release(f->obj);
            f->obj = NULL;
        }
    } else if (f->cache) {
        log_debug("proxy: not storing %.*s: %s", (int)f->key.len, f->key.p, head_ok ? why : "head too large");
    }
    f->content_length = res->chunked ? -1 : res->content_length;
    if (f->leader && f->obj == NULL) {
        /* Nothing will be stored: the waiters go upstream now, each on
         * its own, instead of after this whole body. */
        fwd_collapse_done(f);
    }
    if (f->leader && f->obj != NULL && f->content_length >= 0 && f->content_length > 0) {
        /* Waiters stream the body from here as it arrives. */
        f->fill = pfill_new(f->obj, (uint64_t)f->content_length);
        if (f->fill != NULL) {
            f->fill_leader = 1;
            collapse_publish(pc->collapse, f->key, f->fill);
        }
    }

    if (f->r == NULL) { /* a background refresh, or the client left */
        buf_dispose(&h);
        if (f->obj == NULL) {
            client_req_cancel(f->up);
            fwd_finish(f);
        }
        return;
    }
    hs_req_t *r = f->r;
    hs_resp_start_relay(r, res->status);
    if (!head_ok) {
        buf_reset(&h);
        stored_head(res, &h); /* cannot fail twice; the relay gets what fits */
    }
    buf_append(r->hdr, buf_head(&h), h.len);
    if (http_response_field(res, "date") == NULL) {
        char d[HTTP_DATE_LEN + 1];
        http_date_format(d, now);
        hs_resp_field(r, "Date", d, HTTP_DATE_LEN);
    }
    buf_dispose(&h);
    /* Via: the response's own chain has been copied; ours goes last. */
    buf_append(r->hdr, res->version == 10 ? "Via: 1.0 " : "Via: 1.1 ", 9);
    buf_append(r->hdr, pc->via_name, strlen(pc->via_name));
    static const char xmiss[] = "\r\nX-Cache: MISS\r\n";
    buf_append(r->hdr, xmiss, sizeof xmiss - 1);
    hs_resp_stream(r, f->content_length, &stream_ops, f);
    fwd_resume(f);
}

static int up_data(client_req_t *up, slice_t d, void *arg)
{
    (void)up;
    struct fwd *f = arg;
    uint64_t max = f->obj != NULL ? obj_max(f->pw->pc) : 0;
    if (f->obj != NULL && (f->fill_leader ? pfill_append(f->fill, d.p, d.len, max)
                                          : pstore_obj_append(f->obj, d.p, d.len, max)) < 0) {
        pstore_obj_release(f->obj);
        f->obj = NULL;
    }
    if (f->r == NULL) {
        if (f->obj == NULL) {
            client_req_cancel(f->up);
            fwd_finish(f);
        }
        return 0;
    }
    int rc = hs_stream_write(f->r, d.p, d.len);
    if (rc == 1)
        return CLIENT_PAUSE;
    if (rc < 0) {
        hs_stream_abort(f->r);
        f->r = NULL;
    }
    return 0;
}

static void up_end(client_req_t *up, void *arg)
{
    (void)up;
    struct fwd *f = arg;
    if (f->obj != NULL && (f->content_length < 0 || f->obj->body_len == (uint64_t)f->content_length)) {
        if (pstore_put(f->pw->pc->store, f->obj) == 0)
            persist(f->pw, f->obj);
        if (f->fill_leader)
            pfill_end(f->fill, 1);
    }
    if (f->r != NULL && f->r->streaming)
        hs_stream_end(f->r);
    f->r = NULL;
    fwd_finish(f);
}

/* Answers a failure (f->late_status, f->late_why) once the engine's body
 * callbacks have returned: the client engine may report a failed send from
 * inside client_req_write(), which runs inside the server engine's on_data
 * or on_end, where the request cannot be answered and resumed. */
static void answer_late(void *arg)
{
    struct fwd *f = arg;
    if (f->r != NULL) {
        body_stop(f);
        proxy_answer_text(f->r, f->late_status, f->late_why);
        fwd_resume(f);
    }
    f->r = NULL;
    fwd_finish(f);
}

static void fail_late(struct fwd *f, int status, const char *why)
{
    f->late_status = status;
    snprintf(f->late_why, sizeof f->late_why, "%s", why);
    f->up = NULL;
    loop_defer(f->pw->loop, &f->dlate, answer_late, f);
}

static void up_error(client_req_t *up, enum client_err err, const char *msg, void *arg)
{
    struct fwd *f = arg;
    client_conn_info_t ci;
    client_req_info(up, &ci);
    log_info("proxy: upstream %s:%u: %s", f->host, (unsigned)f->port, msg);
    if (f->r != NULL && !f->headed && stale_if_error_ok(f, time(NULL))) {
        serve_stale(f, "STALE");
        fwd_resume(f);
    } else if (f->r != NULL && !f->headed) {
        int st = up_is_timeout(err) ? 504 : err == CLIENT_E_FORBIDDEN ? 403 : 502;
        char why[sizeof f->late_why];
        if (err == CLIENT_E_FORBIDDEN)
            snprintf(why, sizeof why, "the target %s:%u resolves to this proxy itself (a loop)", f->host,
                     (unsigned)f->port);
        else if (f->body_stream && ci.reused && !up_is_timeout(err))
            /* Streamed bodies are never sent twice (what went out is
             * gone): said exactly, as the client may send it again. */
            snprintf(why, sizeof why,
                     "upstream %s:%u: %s (on a kept-alive connection; the request body was streamed "
                     "and cannot be sent again)", f->host, (unsigned)f->port, msg);
        else
            snprintf(why, sizeof why, "upstream %s:%u: %s", f->host, (unsigned)f->port, msg);
        if (f->in_engine) {
            fail_late(f, st, why);
            return;
        }
        body_stop(f);
        proxy_answer_text(f->r, st, why);
        fwd_resume(f);
    } else if (f->r != NULL) {
        hs_stream_abort(f->r);
    }
    f->r = NULL;
    fwd_finish(f);
}

static void up_drain(client_req_t *up, void *arg);

static const client_cbs_t up_cbs = {
    .on_head = up_head, .on_data = up_data, .on_end = up_end, .on_error = up_error,
    .on_drain = up_drain,
};

static void stream_drain(hs_req_t *r, void *ctx)
{
    (void)r;
    struct fwd *f = ctx;
    if (f->up != NULL)
        client_req_resume(f->up);
    else if (f->fill != NULL && !f->fill_leader)
        fill_pump(f);
}

static void stream_abort(hs_req_t *r, void *ctx)
{
    (void)r;
    struct fwd *f = ctx;
    f->r = NULL;
    if (f->fill != NULL && !f->fill_leader) {
        /* A waiter reading the fill: a wake still posted frees it then. */
        if (!f->fill_parked || pfill_unpark(f->fill, &f->fw)) {
            f->fill_parked = 0;
            fwd_finish(f);
        }
    } else if (f->obj == NULL && f->up != NULL) {
        /* Nothing to finish for the cache: stop the upstream too. */
        client_req_cancel(f->up);
        fwd_finish(f);
    } else if (f->up != NULL) {
        client_req_resume(f->up); /* keep reading to complete the stored copy */
    }
}

static const struct hs_stream_ops stream_ops = { stream_drain, stream_abort };

/* ------------------------------------------------------------ waiters */

static void fill_out(void *ctx, const char *p, size_t n)
{
    struct fwd *f = ctx;
    f->fill_wrc = hs_stream_write(f->r, p, n);
}

static void fill_wake(loop_t *l, void *arg)
{
    (void)l;
    struct fwd *f = arg;
    f->fill_parked = 0;
    if (f->r == NULL)
        fwd_finish(f); /* the client left while parked */
    else
        fill_pump(f);
}

/* Copies what the fill holds past our offset into the client's queue,
 * until the queue is full (on_drain comes back here), the fill has no
 * more yet (parked: fill_wake comes), or the body is over. */
static void fill_pump(struct fwd *f)
{
    for (;;) {
        f->fill_wrc = 0;
        f->fw.loop = f->pw->loop;
        f->fw.wake = fill_wake;
        f->fw.arg = f;
        int st = pfill_read(f->fill, &f->fill_off, PROXY_FILL_SLICE, fill_out, f, &f->fw);
        if (st == PFILL_PARKED) {
            f->fill_parked = 1;
            return;
        }
        if (st == PFILL_DATA && f->fill_wrc == 0)
            continue;
        if (st == PFILL_DATA && f->fill_wrc == 1)
            return;
        if (st == PFILL_END)
            hs_stream_end(f->r);
        else
            hs_stream_abort(f->r); /* the leader's upstream failed: cut, as its own client is */
        f->r = NULL;
        fwd_finish(f);
        return;
    }
}

/* A waiter got the leader's fill: answers from it as it arrives, unless
 * the stored variant is not this request's (Vary): then it goes alone. */
static void fill_start(struct fwd *f)
{
    const pstore_obj_t *o = pfill_obj(f->fill);
    if (o->vary[0] != '\0') {
        char vk[PROXY_MAX_SECONDARY_KEY];
        int n = hop_vary_key(vk, sizeof vk, slice_cstr(o->vary), f->cfields, f->ncfields);
        if (n < 0 || strcmp(vk, o->vkey) != 0) {
            pfill_release(f->fill);
            f->fill = NULL;
            start_upstream(f);
            return;
        }
    }
    int64_t age = http_cache_age(o->init_age, (time_t)o->resp_time, time(NULL));
    obj_head(f->r, o, o->status, "HIT", age, f->pw->pc->via_name);
    hs_resp_stream(f->r, (int64_t)pfill_total(f->fill), &stream_ops, f);
    fwd_resume(f);
    if (f->r == NULL) { /* gone, or no body to send (HEAD) */
        fwd_finish(f);
        return;
    }
    fill_pump(f);
}

/* Starts the upstream request (f->up). Returns 0 or -errno. */
static int up_begin(struct fwd *f)
{
    struct pworker *pw = f->pw;
    http_field_t *fields = f->ufields;
    size_t n = f->nufields;
    http_field_t *with = NULL;
    const char *vname;
    slice_t vval;
    if (f->stale != NULL && http_cache_validator(f->stale->fields, f->stale->nfields, &vname, &vval)) {
        with = malloc((n + 1) * sizeof *with);
        if (with != NULL) {
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                if (!http_slice_ieq(fields[i].name, "if-none-match") &&
                    !http_slice_ieq(fields[i].name, "if-modified-since"))
                    with[k++] = fields[i];
            with[k].name = slice_cstr(strcmp(vname, "if-none-match") == 0 ? "If-None-Match" : "If-Modified-Since");
            with[k].value = vval;
            fields = with;
            n = k + 1;
        }
    }
    client_req_opts_t o = {
        .host = slice_cstr(f->host), .port = f->port, .method = f->method, .target = f->target,
        .fields = fields, .nfields = n,
        .body = f->body_stream ? CLIENT_BODY_STREAM : f->body.len ? CLIENT_BODY_DATA : CLIENT_BODY_NONE,
        .body_data = buf_head(&f->body), .body_len = f->body_stream ? f->body_len : (int64_t)f->body.len,
    };
    f->req_time = time(NULL);
    int rc = client_request(pw->pool, &o, &up_cbs, f, &f->up);
    free(with); /* the engine copies the head when it starts */
    if (rc < 0)
        f->up = NULL;
    return rc;
}

static const char *begin_error(int rc)
{
    return rc == -EINVAL ? "the request cannot be sent upstream" : "out of memory";
}

static void start_upstream(struct fwd *f)
{
    int rc = up_begin(f);
    if (rc < 0) {
        if (f->r != NULL) {
            proxy_answer_text(f->r, 502, begin_error(rc));
            fwd_resume(f);
        }
        f->r = NULL;
        fwd_finish(f);
    }
}

/* ------------------------------------------------------------ the cache */

static void collapse_wake(loop_t *l, void *arg);

/* Tries the store. Returns 1 when the request was answered (or is
 * waiting), 0 to go upstream (f->stale set for a revalidation). */
static int try_cache(struct fwd *f)
{
    const struct proxy_config *pc = f->pw->pc;
    hs_req_t *r = f->r;
    time_t now = time(NULL);
    pstore_obj_t *o = pstore_lookup(pc->store, f->key, f->cfields, f->ncfields);
    if (o != NULL) {
        struct verdict v = judge(f, o, now);
        if (v.use == HTTP_CACHE_USE_FRESH || v.use == HTTP_CACHE_USE_STALE) {
            serve_obj_as(r, o, v.use == HTTP_CACHE_USE_FRESH ? "HIT" : "STALE", v.age, pc->via_name,
                         client_not_modified(f->cfields, f->ncfields, o));
            pstore_obj_release(o);
            return 1;
        }
        if (f->req_cc.flags & HTTP_CC_ONLY_IF_CACHED) {
            pstore_obj_release(o);
            proxy_answer_text(r, 504, "only-if-cached and the stored response needs revalidation");
            return 1;
        }
        int64_t swr = cc_ext(o->fields, o->nfields, "stale-while-revalidate");
        if (swr >= 0 && v.age - v.fresh <= swr && !(f->req_cc.flags & HTTP_CC_NO_CACHE) &&
            !(v.res_cc.flags & (HTTP_CC_NO_CACHE | HTTP_CC_MUST_REVALIDATE | HTTP_CC_PROXY_REVALIDATE))) {
            serve_obj(r, o, "STALE", v.age, pc->via_name);
            /* And refresh it behind the client's back. */
            f->r = NULL;
            f->background = 1;
            f->stale = o;
            return 2;
        }
        f->stale = o;
        return 0;
    }
    if (f->req_cc.flags & HTTP_CC_ONLY_IF_CACHED) {
        proxy_answer_text(r, 504, "only-if-cached and nothing is stored");
        return 1;
    }
    if (f->mid == HTTP_M_GET && !f->waited && pc->collapse != NULL) {
        int j = collapse_join(pc->collapse, f->key, f->pw->loop, collapse_wake, f, &f->fill);
        if (j == 1)
            f->leader = 1;
        else if (j == 2)
            return 4; /* the leader's response is arriving: fill_start */
        else if (j == 0)
            return 3; /* waits: collapse_wake goes on */
    }
    return 0;
}

static void collapse_wake(loop_t *l, void *arg)
{
    (void)l;
    struct fwd *f = arg;
    f->waited = 1;
    if (f->pw->stopping && f->r->conn != NULL) {
        proxy_answer_text(f->r, 503, "the proxy is stopping");
        fwd_resume(f);
        fwd_free(f);
        return;
    }
    if (f->r->conn == NULL) { /* the client left while it waited */
        hs_resume(f->r);
        f->r = NULL;
        fwd_free(f);
        return;
    }
    if (f->fill != NULL) { /* the leader's response is arriving */
        fill_start(f);
        return;
    }
    int rc = try_cache(f);
    if (rc == 1) {
        fwd_resume(f);
        fwd_free(f);
        return;
    }
    start_upstream(f);
}

/* ------------------------------------------------------------ requests */

static void body_end(hs_req_t *r, void *ctx, int status);

/* Moves what `body` holds into the upstream's queue. Returns 1 when all of
 * it went, 0 when the queue is full (on_drain comes), -1 when the upstream
 * request is over. */
/* A streamed body cannot go on (the upstream request would get a hole in
 * it): the upstream request is cancelled and the client gets 502. */
static void body_up_fail(struct fwd *f)
{
    if (f->up != NULL)
        client_req_cancel(f->up);
    fail_late(f, 502, "the request body could not be passed on (out of memory)");
}

static int body_flush(struct fwd *f)
{
    if (f->body.len == 0)
        return 1;
    int rc = client_req_write(f->up, buf_head(&f->body), f->body.len);
    if (rc == -ENOBUFS)
        return 0;
    if (rc < 0)
        return -1;
    buf_reset(&f->body);
    return 1;
}

/* Client body bytes: held while the whole body may fit in
 * PROXY_BODY_BUFFER; past that the upstream request starts with a streamed
 * body, and the engine is paused whenever the upstream's queue is full
 * (backpressure: memory stays at one queue, whatever the body's size). */
static int body_take(struct fwd *f, const char *p, size_t n)
{
    if (f->up == NULL && !f->body_stream && f->late_status == 0) {
        /* A Content-Length past the buffer streams from its first bytes. */
        if (f->body.len + n <= PROXY_BODY_BUFFER && f->body_len <= (int64_t)PROXY_BODY_BUFFER)
            return buf_append(&f->body, p, n) < 0 ? 500 : 0;
        f->body_stream = 1;
        int rc = up_begin(f);
        if (rc < 0) {
            fail_late(f, 502, begin_error(rc));
            return HS_BODY_PAUSE;
        }
    }
    if (f->up == NULL)
        return HS_BODY_PAUSE; /* failed: answer_late stops the body */
    int rc = body_flush(f);
    int wr = rc == 1 ? client_req_write(f->up, p, n) : -ENOBUFS;
    if (wr == 0)
        return 0;
    if (f->up == NULL)
        return HS_BODY_PAUSE; /* the write failed: answer_late comes */
    if (rc < 0 || wr != -ENOBUFS) {
        /* The upstream took neither the held bytes nor these (out of
         * memory): no byte may be dropped from the middle of a body. */
        body_up_fail(f);
        return HS_BODY_PAUSE;
    }
    if (buf_append(&f->body, p, n) < 0) {
        body_up_fail(f);
        return HS_BODY_PAUSE;
    }
    f->body_paused = 1;
    return HS_BODY_PAUSE;
}

static int body_data(hs_req_t *r, void *ctx, const char *p, size_t n)
{
    (void)r;
    struct fwd *f = ctx;
    f->in_engine = 1;
    int st = body_take(f, p, n);
    f->in_engine = 0;
    return st;
}

/* The upstream's queue has room for more of a streamed body. */
static void up_drain(client_req_t *up, void *arg)
{
    (void)up;
    struct fwd *f = arg;
    if (!f->body_stream || f->up == NULL)
        return;
    int rc = body_flush(f);
    if (rc < 0 && f->up != NULL)
        body_up_fail(f);
    if (rc != 1)
        return;
    if (f->body_done) {
        if (client_req_finish(f->up) == 0)
            f->body_done = 2; /* finished */
        return;
    }
    if (f->body_paused && f->body_reading && f->r != NULL) {
        f->body_paused = 0;
        hs_body_resume(f->r);
    }
}

static const struct hs_body_ops body_ops = { body_data, body_end };

static void body_end(hs_req_t *r, void *ctx, int status)
{
    struct fwd *f = ctx;
    f->body_reading = 0;
    if (status != 0 && f->dlate.queued) {
        f->r = NULL; /* answer_late has nobody to answer; it frees f */
        return;
    }
    if (status != 0) {
        /* Refused (413 past --max-body, 408 a stalled client, 400 bad
         * chunking) or the client left: the engine answers. A streamed
         * upstream request is cut (its connection closed mid-body). */
        if (f->up != NULL)
            client_req_cancel(f->up);
        f->up = NULL;
        f->r = NULL;
        fwd_finish(f);
        return;
    }
    hs_hold(r);
    if (f->up == NULL && !f->body_stream) { /* the whole body is in hand: Content-Length */
        int rc = up_begin(f);
        if (rc < 0)
            fail_late(f, 502, begin_error(rc));
        return;
    }
    if (f->up == NULL)
        return; /* failed: answer_late answers */
    f->body_done = 1;
    f->in_engine = 1;
    if (f->body.len == 0 && client_req_finish(f->up) == 0)
        f->body_done = 2;
    f->in_engine = 0;
    /* else up_drain finishes it once the rest went */
}

/* Copies what the request's slices hold into one allocation. */
static int fwd_copy(struct fwd *f, const http_request_t *q, const http_field_t *uf, size_t nuf,
                    slice_t target, const char *key)
{
    size_t need = q->method.len + target.len + strlen(key) + 3;
    for (size_t i = 0; i < q->nfields; i++)
        need += q->fields[i].name.len + q->fields[i].value.len;
    for (size_t i = 0; i < nuf; i++)
        need += uf[i].name.len + uf[i].value.len;
    size_t arr = (q->nfields + nuf + 1) * sizeof(http_field_t);
    f->mem = malloc(arr + need);
    if (f->mem == NULL)
        return -1;
    f->cfields = (http_field_t *)f->mem;
    f->ufields = f->cfields + q->nfields;
    char *p = f->mem + arr;
#define COPY(dst, src) do { memcpy(p, (src).p, (src).len); (dst) = slice_make(p, (src).len); p += (src).len; } while (0)
    COPY(f->method, q->method);
    COPY(f->target, target);
    slice_t k = slice_cstr(key);
    COPY(f->key, k);
    for (size_t i = 0; i < q->nfields; i++) {
        COPY(f->cfields[i].name, q->fields[i].name);
        COPY(f->cfields[i].value, q->fields[i].value);
    }
    for (size_t i = 0; i < nuf; i++) {
        COPY(f->ufields[i].name, uf[i].name);
        COPY(f->ufields[i].value, uf[i].value);
    }
#undef COPY
    f->ncfields = q->nfields;
    f->nufields = nuf;
    return 0;
}

static void answer_local(hs_req_t *r, const http_request_t *q)
{
    /* Max-Forwards: 0 - this proxy is the final recipient (RFC 9110 §7.6.2). */
    if (q->method_id == HTTP_M_TRACE) {
        hs_resp_start(r, 200);
        hs_resp_field_str(r, "Content-Type", "message/http");
        hs_resp_body(r, q->method.p, q->head_len);
        return;
    }
    hs_resp_start(r, 200);
    hs_resp_field_str(r, "Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH");
    hs_resp_body(r, "", 0);
}

static void fwd_request2(hs_req_t *r, struct pworker *pw, slice_t host, uint16_t port, slice_t target);

void fwd_request(hs_req_t *r, struct pworker *pw, slice_t host, uint16_t port)
{
    const struct proxy_config *pc = pw->pc;
    const http_request_t *q = &r->req;
    if (hop_max_forwards(q) == 0) {
        answer_local(r, q);
        return;
    }
    if (pw->pool == NULL) {
        client_opts_t co;
        client_opts_default(&co);
        co.dns = pc->dns;
        co.connect_timeout_ms = pc->connect_timeout_ms;
        co.header_timeout_ms = pc->upstream_timeout_ms;
        co.read_timeout_ms = pc->upstream_timeout_ms;
        co.max_idle = PROXY_UPSTREAM_MAX_IDLE;
        co.forbid = proxy_is_self_addr; /* a name resolving to this proxy: no loop */
        co.forbid_arg = (void *)pc;
        pw->pool = client_pool_new(pw->loop, &co);
        if (pw->pool == NULL) {
            hs_resp_error(r, 500);
            return;
        }
    }
    /* The target as the upstream gets it (origin-form), and the cache key. */
    char *tbuf = NULL;
    slice_t target = q->target;
    if (q->form == HTTP_T_ABSOLUTE) {
        tbuf = malloc(q->path.len + q->query.len + 2);
        if (tbuf == NULL) {
            hs_resp_error(r, 500);
            return;
        }
        memcpy(tbuf, q->path.p, q->path.len);
        size_t tl = q->path.len;
        if (q->has_query) {
            tbuf[tl++] = '?';
            memcpy(tbuf + tl, q->query.p, q->query.len);
            tl += q->query.len;
        }
        target = slice_make(tbuf, tl);
    }
    fwd_request2(r, pw, host, port, target);
    free(tbuf);
}

/* The common cache hit, answered before any forwarding state is built
 * (upstream fields, copies of the request): one lookup, the same verdict
 * as try_cache. Returns 1 when answered; 0 (nothing stored, or it needs
 * revalidating) sends the request the full way, which looks again. */
static int fast_hit(hs_req_t *r, const struct proxy_config *pc, const http_request_t *q, slice_t key)
{
    pstore_obj_t *o = pstore_lookup(pc->store, key, q->fields, q->nfields);
    if (o == NULL)
        return 0;
    http_cc_t cc;
    http_cc_from_fields(&cc, q->fields, q->nfields);
    if (http_cache_pragma_no_cache(q->fields, q->nfields))
        cc.flags |= HTTP_CC_NO_CACHE;
    http_cc_t res_cc = o->cc;
    int64_t age = http_cache_age(o->init_age, (time_t)o->resp_time, time(NULL));
    enum http_cache_use use = http_cache_decide(&cc, &res_cc, o->fresh, age, 1);
    int hit = use == HTTP_CACHE_USE_FRESH || use == HTTP_CACHE_USE_STALE;
    if (hit)
        serve_obj_as(r, o, use == HTTP_CACHE_USE_FRESH ? "HIT" : "STALE", age, pc->via_name,
                     client_not_modified(q->fields, q->nfields, o));
    pstore_obj_release(o);
    return hit;
}

static void fwd_request2(hs_req_t *r, struct pworker *pw, slice_t host, uint16_t port, slice_t target)
{
    const struct proxy_config *pc = pw->pc;
    const http_request_t *q = &r->req;
    char key[PROXY_MAX_KEY];
    if (hop_cache_key(key, sizeof key, 0, host, port, q->path, q->query, q->has_query) < 0) {
        proxy_answer_text(r, 414, "the target is too long to forward");
        return;
    }
    if (q->method.len == 5 && memcmp(q->method.p, "PURGE", 5) == 0) {
        int n = pc->store ? pstore_remove(pc->store, slice_cstr(key)) : 0;
        if (n > 0)
            persist(pw, NULL);
        char msg[PROXY_MAX_KEY + 64];
        if (n > 0)
            snprintf(msg, sizeof msg, "purged %d stored response%s of %s\n", n, n == 1 ? "" : "s", key);
        else
            snprintf(msg, sizeof msg, "nothing stored for %s\n", key);
        hs_resp_start(r, n ? 200 : 404);
        hs_resp_field_str(r, "Content-Type", "text/plain; charset=utf-8");
        hs_resp_body(r, msg, strlen(msg));
        return;
    }
    if (pc->store != NULL && (q->method_id == HTTP_M_GET || q->method_id == HTTP_M_HEAD) &&
        q->content_length <= 0 && !q->chunked && fast_hit(r, pc, q, slice_cstr(key)))
        return;
    addr_t peer;
    hs_peer(r, &peer);
    slice_t hostfield = pc->has_upstream && q->form != HTTP_T_ABSOLUTE ? slice_cstr(pc->up_authority) : q->host;
    struct hop_req_opts ho = { .method = q->method, .target = target, .host = hostfield, .client = &peer,
                               .via_name = pc->via_name, .forwarded = pc->forwarded,
                               .x_forwarded_for = pc->x_forwarded_for };
    http_field_t *uf = malloc((q->nfields + 8) * sizeof *uf);
    buf_t scratch;
    buf_init(&scratch, 4 * PROXY_MAX_CHAIN_FIELD + q->head_len);
    int nuf = uf ? hop_request_fields(q, &ho, uf, q->nfields + 8, &scratch) : -ENOMEM;
    struct fwd *f = nuf >= 0 ? calloc(1, sizeof *f) : NULL;
    if (f == NULL || fwd_copy(f, q, uf, (size_t)nuf, target, key) < 0) {
        free(uf);
        buf_dispose(&scratch);
        if (f)
            fwd_free(f);
        hs_resp_error(r, nuf == -ENOBUFS ? 431 : 500);
        return;
    }
    free(uf);
    buf_dispose(&scratch);
    f->r = r;
    f->pw = pw;
    f->next = pw->active;
    if (pw->active)
        pw->active->prev = f;
    pw->active = f;
    size_t hl = host.len < sizeof f->host ? host.len : sizeof f->host - 1;
    memcpy(f->host, host.p, hl);
    f->host[hl] = '\0';
    f->port = port;
    f->mid = q->method_id;
    f->head_only = q->method_id == HTTP_M_HEAD;
    buf_init(&f->body, PROXY_BODY_BUFFER + HTTP_CEIL_MAX_HEAD + 1); /* + one engine slice */
    http_cc_from_fields(&f->req_cc, f->cfields, f->ncfields);
    if (http_cache_pragma_no_cache(f->cfields, f->ncfields))
        f->req_cc.flags |= HTTP_CC_NO_CACHE;
    f->cache = pc->store != NULL && (f->mid == HTTP_M_GET || f->mid == HTTP_M_HEAD);

    if (q->content_length > 0 || q->chunked) {
        f->body_reading = 1;
        f->body_len = q->chunked ? -1 : q->content_length;
        hs_read_body(r, &body_ops, f);
        return;
    }
    if (f->cache) {
        int rc = try_cache(f);
        if (rc == 1) {
            fwd_free(f);
            return;
        }
        if (rc == 2) { /* answered stale; refresh in the background */
            start_upstream(f);
            return;
        }
        if (rc == 3) {
            hs_hold(r);
            return;
        }
        if (rc == 4) {
            hs_hold(r);
            fill_start(f);
            return;
        }
    }
    hs_hold(r);
    start_upstream(f);
}

void fwd_stop_all(struct pworker *pw)
{
    pw->stopping = 1;
    for (struct fwd *f = pw->active; f != NULL; f = f->next) {
        if (f->up == NULL || f->dfree.queued || f->dlate.queued)
            continue; /* waiting for a leader, or already ending */
        client_req_cancel(f->up);
        f->up = NULL;
        body_stop(f);
        if (f->r != NULL && !f->headed) {
            proxy_answer_text(f->r, 503, "the proxy is stopping");
            fwd_resume(f);
        } else if (f->r != NULL) {
            hs_stream_abort(f->r);
        }
        f->r = NULL;
        fwd_finish(f);
    }
}
