#include "server/static.h"
#include "core/fs.h"
#include "core/log.h"
#include "http/cond.h"
#include "http/date.h"
#include "http/negotiate.h"
#include "http/path.h"
#include "server/filecache.h"
#include "server/html.h"
#include "server/mime.h"
#include "server/variants.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>

#define ALLOW_RO "GET, HEAD, OPTIONS"
#define ALLOW_RW "GET, HEAD, OPTIONS, PUT, DELETE, POST, PATCH"

struct static_worker {
    const struct static_config *cfg;
    char *path;          /* normalised request path */
    size_t pathcap;
    char *enc;           /* percent-encoded path, for Location and hrefs */
    size_t enccap;
    filecache_t fc;
    char allow_ro[64], allow_rw[64];
};

int static_check_root(const char *dir, int *rootfd, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1) {
        snprintf(err, errlen, "cannot open directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    /* openat2 exists since Linux 5.6; refuse to serve without it rather
     * than fall back to a check done in user space. */
    int probe = fs_open_beneath(fd, ".", O_RDONLY | O_NONBLOCK);
    if (probe < 0) {
        snprintf(err, errlen, "cannot open files beneath '%s' safely (openat2): %s", dir,
                 strerror(-probe));
        close(fd);
        return -1;
    }
    close(probe);
    *rootfd = fd;
    return 0;
}

void *static_worker_init(int idx, void *arg)
{
    (void)idx;
    const struct static_config *cfg = arg;
    struct static_worker *sw = calloc(1, sizeof *sw);
    if (sw == NULL)
        return NULL;
    sw->cfg = cfg;
    snprintf(sw->allow_ro, sizeof sw->allow_ro, "%s%s", ALLOW_RO, cfg->trace ? ", TRACE" : "");
    snprintf(sw->allow_rw, sizeof sw->allow_rw, "%s%s", ALLOW_RW, cfg->trace ? ", TRACE" : "");
    sw->pathcap = cfg->max_target + 2;
    sw->enccap = 3 * sw->pathcap + 2;
    sw->path = malloc(sw->pathcap);
    sw->enc = malloc(sw->enccap);
    if (sw->path == NULL || sw->enc == NULL || fc_init(&sw->fc, cfg->file_cache) < 0) {
        free(sw->path);
        free(sw->enc);
        free(sw);
        return NULL;
    }
    return sw;
}

void static_worker_free(void *wctx)
{
    struct static_worker *sw = wctx;
    if (sw == NULL)
        return;
    fc_dispose(&sw->fc);
    free(sw->path);
    free(sw->enc);
    free(sw);
}

/* ---------------------------------------------------------- validators */

size_t static_etag(char *out, const struct stat *st)
{
    uint64_t mt = (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
    return (size_t)sprintf(out, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", (uint64_t)st->st_ino,
                           (uint64_t)st->st_size, mt);
}

/* If-Range (RFC 9110 §13.1.5): the range applies only when the validator
 * still matches; a weak tag never does. */
static int if_range_holds(const http_request_t *q, slice_t etag, time_t mtime)
{
    const http_field_t *f = http_find_field(q, "if-range");
    if (f == NULL)
        return 1;
    if (f->value.len > 0 && (f->value.p[0] == '"' || f->value.p[0] == 'W'))
        return f->value.p[0] == '"' && slice_eq(f->value, etag);
    time_t t;
    return http_date_parse(f->value, &t) == 0 && t == mtime;
}

static void validators(hs_req_t *r, const struct fc_entry *e)
{
    hs_resp_field(r, "Last-Modified", e->lastmod, HTTP_DATE_LEN);
    hs_resp_field(r, "ETag", e->etag, e->etag_len);
}

/* Fills what every response from this file repeats. */
static void entry_prepare(struct fc_entry *e, slice_t name)
{
    e->etag_len = static_etag(e->etag, &e->st);
    http_date_format(e->lastmod, e->st.st_mtim.tv_sec);
    e->mime = mime_type(name);
    e->compressible = (strncmp(e->mime, "text/", 5) == 0 || strstr(e->mime, "json") != NULL ||
                       strstr(e->mime, "javascript") != NULL || strstr(e->mime, "xml") != NULL) &&
                      e->st.st_size >= STATIC_GZIP_MIN && e->st.st_size <= STATIC_GZIP_MAX;
    /* the gzip form is another representation: its own strong tag */
    if (e->etag_len >= 2) {
        memcpy(e->gz_etag, e->etag, e->etag_len - 1);
        memcpy(e->gz_etag + e->etag_len - 1, "-gzip\"", 6);
        e->gz_etag_len = e->etag_len + 5;
    }
}

/* ---------------------------------------------------------- gzip on the fly */

struct gz_job {
    hs_req_t *r;
    struct fc_entry *e;
    char *out;
    size_t outlen;
};

/* Pool thread: the whole file, gzip-compressed, into memory. */
static void gz_work(void *arg)
{
    struct gz_job *j = arg;
    size_t size = (size_t)j->e->st.st_size;
    char *in = malloc(size ? size : 1);
    size_t cap = compressBound((uLong)size) + 64;
    char *out = malloc(cap);
    size_t got = 0;
    while (in && got < size) {
        ssize_t k = pread(j->e->fd, in + got, size - got, (off_t)got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    if (in == NULL || out == NULL || got != size ||
        deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(in);
        free(out);
        return;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)size;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
        j->out = out;
        j->outlen = z.total_out;
    } else {
        free(out);
    }
    deflateEnd(&z);
    free(in);
}

static void serve_entry(hs_req_t *r, struct fc_entry *e, const struct variant_info *vi);

/* Answers with the gzip form (made already); consumes the reference. */
static void serve_gz(hs_req_t *r, struct fc_entry *e)
{
    const http_request_t *q = &r->req;
    int pre = 0;
    if (q->nfields) {
        struct http_cond cond;
        http_cond_from_request(q, &cond);
        pre = http_cond_eval(&cond, 1, slice_make(e->gz_etag, e->gz_etag_len), e->st.st_mtim.tv_sec, 1);
    }
    if (pre == 304) {
        hs_resp_start(r, 304);
        hs_resp_field(r, "Last-Modified", e->lastmod, HTTP_DATE_LEN);
        hs_resp_field(r, "ETag", e->gz_etag, e->gz_etag_len);
        hs_resp_field_str(r, "Vary", "Accept-Encoding");
        hs_resp_empty(r);
    } else if (pre) {
        hs_resp_error(r, pre);
    } else {
        hs_resp_start(r, 200);
        hs_resp_field_str(r, "Content-Type", e->mime);
        hs_resp_field_str(r, "Content-Encoding", "gzip");
        hs_resp_field_str(r, "Vary", "Accept-Encoding");
        hs_resp_field(r, "Last-Modified", e->lastmod, HTTP_DATE_LEN);
        hs_resp_field(r, "ETag", e->gz_etag, e->gz_etag_len);
        hs_resp_dynamic(r, e->gz, e->gzlen);
    }
    fc_release(e);
}

static void gz_done(loop_t *l, void *arg)
{
    (void)l;
    struct gz_job *j = arg;
    struct fc_entry *e = j->e;
    e->gz_busy = 0;
    if (j->out != NULL && e->gz == NULL) {
        e->gz = j->out;
        e->gzlen = j->outlen;
        j->out = NULL;
    } else if (e->gz == NULL) {
        e->compressible = 0; /* failed once: identity from now on, never a retry loop */
    }
    free(j->out);
    hs_req_t *r = j->r;
    free(j);
    if (r->conn == NULL)
        fc_release(e);
    else if (e->gz != NULL)
        serve_gz(r, e);
    else
        serve_entry(r, e, NULL); /* compression failed: the identity form */
    hs_resume(r);
}

/* Would the client take gzip over identity for this file? Only when it says
 * so (Accept-Encoding present), for whole GET/HEAD answers. */
static int wants_gzip(const http_request_t *q, const struct fc_entry *e)
{
    if (!e->compressible || (q->method_id != HTTP_M_GET && q->method_id != HTTP_M_HEAD))
        return 0;
    const http_field_t *ae = http_find_field(q, "accept-encoding");
    if (ae == NULL || http_find_field(q, "range") != NULL)
        return 0;
    int qg = neg_q_coding(ae->value, 1, SLICE_LIT("gzip"));
    int qi = neg_q_coding(ae->value, 1, SLICE_LIT(""));
    return qg > 0 && qg >= qi;
}

/* Several ranges: 206 with a multipart/byteranges body (RFC 9110 §14.6),
 * each part's head from memory and its bytes with sendfile(). */
static void serve_byteranges(hs_req_t *r, struct fc_entry *e, const struct http_byte_range *rg,
                             size_t n)
{
    static _Thread_local uint64_t seed;
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&seed;
    }
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    char boundary[32];
    snprintf(boundary, sizeof boundary, "portico-%016" PRIx64, seed);

    uint64_t size = (uint64_t)e->st.st_size;
    /* One allocation: n parts and the close delimiter (a part with no file
     * bytes), then the text of their heads. */
    size_t head_max = 200 + strlen(e->mime);
    struct hs_part *all = malloc((n + 1) * (sizeof *all + head_max));
    if (all == NULL) {
        fc_release(e);
        hs_resp_error(r, 500);
        return;
    }
    char *text = (char *)(all + n + 1);
    uint64_t total = 0;
    for (size_t i = 0; i <= n; i++) {
        int k;
        if (i < n)
            k = snprintf(text, head_max, "%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %" PRIu64
                         "-%" PRIu64 "/%" PRIu64 "\r\n\r\n",
                         i ? "\r\n" : "", boundary, e->mime, rg[i].first, rg[i].last, size);
        else
            k = snprintf(text, head_max, "\r\n--%s--\r\n", boundary);
        all[i].mem = text;
        all[i].memlen = (size_t)k;
        all[i].off = i < n ? rg[i].first : 0;
        all[i].len = i < n ? rg[i].last - rg[i].first + 1 : 0;
        total += (uint64_t)k + all[i].len;
        text += k;
    }

    char ct[64];
    snprintf(ct, sizeof ct, "multipart/byteranges; boundary=%s", boundary);
    hs_resp_start(r, 206);
    hs_resp_field_str(r, "Content-Type", ct);
    validators(r, e);
    hs_resp_field(r, "Accept-Ranges", "bytes", 5);
    hs_resp_file_parts(r, e->fd, all, n + 1, total, fc_release, e);
}

/* The fields a negotiated variant adds (Content-Language, -Encoding, Vary). */
static void variant_fields(hs_req_t *r, const struct variant_info *vi)
{
    if (vi == NULL)
        return;
    if (vi->lang[0])
        hs_resp_field_str(r, "Content-Language", vi->lang);
    if (vi->coding[0])
        hs_resp_field_str(r, "Content-Encoding", vi->coding);
    if (vi->vary[0])
        hs_resp_field_str(r, "Vary", vi->vary);
}

/* Answers from an open regular file; consumes the caller's reference. vi
 * describes a negotiated variant, or is NULL. */
static void serve_entry(hs_req_t *r, struct fc_entry *e, const struct variant_info *vi)
{
    const http_request_t *q = &r->req;
    if (vi == NULL && q->nfields && wants_gzip(q, e)) {
        if (e->gz != NULL) {
            serve_gz(r, e);
            return;
        }
        struct static_worker *sw = hs_handler_ctx(r);
        struct gz_job *j = sw && sw->cfg->write.pool && !e->gz_busy ? calloc(1, sizeof *j) : NULL;
        if (j != NULL) {
            j->r = r;
            j->e = e;
            if (tpool_submit(sw->cfg->write.pool, hs_loop(r), gz_work, gz_done, j) == 0) {
                e->gz_busy = 1;
                hs_hold(r);
                return;
            }
            free(j);
        }
        /* being compressed for another request, or no pool: identity now */
    }
    slice_t etag = slice_make(e->etag, e->etag_len);
    time_t mtime = e->st.st_mtim.tv_sec;
    uint64_t size = (uint64_t)e->st.st_size;

    int pre = 0;
    if (q->nfields) {
        struct http_cond cond;
        http_cond_from_request(q, &cond);
        pre = http_cond_eval(&cond, 1, etag, mtime,
                             q->method_id == HTTP_M_GET || q->method_id == HTTP_M_HEAD);
    }
    if (pre == 304) {
        hs_resp_start(r, 304);
        validators(r, e);
        variant_fields(r, vi);
        hs_resp_empty(r);
        fc_release(e);
        return;
    }
    if (pre) {
        fc_release(e);
        hs_resp_error(r, pre);
        return;
    }

    struct http_byte_range ranges[HTTP_MAX_RANGES];
    size_t nranges = 0;
    enum http_range_result rr = HTTP_RANGE_IGNORE;
    const http_field_t *range = q->method_id == HTTP_M_GET && q->nfields ? http_find_field(q, "range") : NULL;
    if (range != NULL && if_range_holds(q, etag, mtime))
        rr = http_ranges_parse(range->value, size, ranges, HTTP_MAX_RANGES, &nranges);
    if (rr == HTTP_RANGE_OK && nranges > 1 && vi == NULL) {
        serve_byteranges(r, e, ranges, nranges);
        return;
    }
    if (rr == HTTP_RANGE_OK && nranges > 1)
        rr = HTTP_RANGE_IGNORE; /* a negotiated variant: the whole of it */
    uint64_t first = ranges[0].first, last = ranges[0].last;

    if (rr == HTTP_RANGE_UNSATISFIABLE) {
        fc_release(e);
        char cr[48];
        int n = snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
        hs_resp_start(r, 416);
        hs_resp_field(r, "Content-Range", cr, (size_t)n);
        hs_resp_page(r);
        return;
    }
    hs_resp_start(r, rr == HTTP_RANGE_OK ? 206 : 200);
    hs_resp_field_str(r, "Content-Type", e->mime);
    validators(r, e);
    variant_fields(r, vi);
    if (vi == NULL && e->compressible)
        hs_resp_field_str(r, "Vary", "Accept-Encoding"); /* a gzip form exists too */
    hs_resp_field(r, "Accept-Ranges", "bytes", 5);
    if (rr == HTTP_RANGE_OK) {
        char cr[80];
        int n = snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
        hs_resp_field(r, "Content-Range", cr, (size_t)n);
        hs_resp_file_mapped(r, e->fd, e->map, first, last - first + 1, fc_release, e);
    } else {
        hs_resp_file_mapped(r, e->fd, e->map, 0, size, fc_release, e);
    }
}

static void serve_fd(hs_req_t *r, struct static_worker *sw, int fd, const struct stat *st,
                     size_t plen, slice_t name, time_t now)
{
    if (!sw->fc.watch_tried)
        (void)fc_watch(&sw->fc, hs_loop(r)); /* else hits are checked with fstat() */
    struct fc_entry *e = fc_put(&sw->fc, sw->path, plen, fd, st, now);
    if (e == NULL) {
        hs_resp_error(r, 500);
        return;
    }
    entry_prepare(e, name);
    serve_entry(r, e, NULL);
}

/* A negotiated variant: served uncached (the same URL names several files). */
static void serve_variant(hs_req_t *r, int fd, const struct variant_info *vi, void *arg)
{
    (void)arg;
    static filecache_t nocache = { .ifd = -1 }; /* max 0: fc_put never keeps an entry */
    struct stat st;
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        close(fd);
        hs_resp_error(r, 404);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    struct fc_entry *e = fc_put(&nocache, "", 0, fd, &st, ts.tv_sec);
    if (e == NULL) {
        hs_resp_error(r, 500);
        return;
    }
    static _Thread_local char ct[128];
    if (vi->type[0] == '\0')
        snprintf(ct, sizeof ct, "application/octet-stream");
    else if (strncmp(vi->type, "text/", 5) == 0 || strcmp(vi->type, "application/json") == 0)
        snprintf(ct, sizeof ct, "%s; charset=utf-8", vi->type);
    else
        snprintf(ct, sizeof ct, "%s", vi->type);
    entry_prepare(e, SLICE_LIT("x"));
    e->mime = ct;
    serve_entry(r, e, vi);
}

/* -------------------------------------------------------------- listing */

struct entry {
    char *name;
    int dir;
    uint64_t size;
    time_t mtime;
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static int bprintf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bprintf(buf_t *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    return buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void serve_listing(hs_req_t *r, struct static_worker *sw, int dirfd, const char *path)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        hs_resp_error(r, 500);
        return;
    }
    struct entry *ents = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int failed = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue; /* ".", ".." and hidden files */
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
            continue; /* a dangling link or a file gone since readdir */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct entry *e = realloc(ents, cap * sizeof *e);
            if (e == NULL) {
                failed = 1;
                break;
            }
            ents = e;
        }
        ents[n].name = strdup(de->d_name);
        if (ents[n].name == NULL) {
            failed = 1;
            break;
        }
        ents[n].dir = S_ISDIR(st.st_mode);
        ents[n].size = (uint64_t)st.st_size;
        ents[n].mtime = st.st_mtim.tv_sec;
        n++;
    }
    closedir(d);
    if (!failed)
        qsort(ents, n, sizeof *ents, entry_cmp);

    buf_t *b = hs_scratch(r);
    int rc = failed ? -1 : 0;
    rc = rc ? rc : buf_append(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ", 66);
    rc = rc ? rc : html_escape(b, path);
    rc = rc ? rc : bprintf(b, "</title></head>\n<body><h1>Index of ");
    rc = rc ? rc : html_escape(b, path);
    rc = rc ? rc : bprintf(b, "</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Last modified</th></tr>\n");
    if (rc == 0 && strcmp(path, "/") != 0)
        rc = bprintf(b, "<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    for (size_t i = 0; i < n && rc == 0; i++) {
        char date[HTTP_DATE_LEN + 1];
        long el = http_path_encode(slice_cstr(ents[i].name), sw->enc, sw->enccap);
        if (el < 0) {
            rc = -1;
            break;
        }
        http_date_format(date, ents[i].mtime);
        rc = bprintf(b, "<tr><td><a href=\"./");
        rc = rc ? rc : buf_append(b, sw->enc, (size_t)el);
        rc = rc ? rc : bprintf(b, "%s\">", ents[i].dir ? "/" : "");
        rc = rc ? rc : html_escape(b, ents[i].name);
        rc = rc ? rc : bprintf(b, "%s</a></td>", ents[i].dir ? "/" : "");
        if (rc == 0 && ents[i].dir)
            rc = bprintf(b, "<td>-</td>");
        else if (rc == 0)
            rc = bprintf(b, "<td>%" PRIu64 "</td>", ents[i].size);
        rc = rc ? rc : bprintf(b, "<td>%s</td></tr>\n", date);
    }
    rc = rc ? rc : bprintf(b, "</table>\n");
    if (rc == 0 && sw->cfg->writable)
        rc = bprintf(b, "<form method=\"post\" enctype=\"multipart/form-data\">"
                        "<input type=\"file\" name=\"file\" multiple> "
                        "<button type=\"submit\">Upload</button></form>\n");
    rc = rc ? rc : bprintf(b, "</body></html>\n");
    for (size_t i = 0; i < n; i++)
        free(ents[i].name);
    free(ents);
    if (rc != 0) {
        hs_resp_error(r, 500);
        return;
    }
    hs_resp_start(r, 200);
    hs_resp_field_str(r, "Content-Type", "text/html; charset=utf-8");
    hs_resp_dynamic(r, buf_head(b), b->len);
}

/* -------------------------------------------------------------- requests */

/* TRACE (RFC 9110 §9.3.8): the request head back as message/http, without
 * the fields that carry credentials. */
static void serve_trace(hs_req_t *r)
{
    const http_request_t *q = &r->req;
    buf_t *b = hs_scratch(r);
    int rc = buf_append(b, q->method.p, q->method.len);
    rc = rc ? rc : buf_append(b, " ", 1);
    rc = rc ? rc : buf_append(b, q->target.p, q->target.len);
    rc = rc ? rc : buf_append(b, q->version == 11 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n", 11);
    for (size_t i = 0; i < q->nfields && rc == 0; i++) {
        slice_t n = q->fields[i].name;
        if (http_slice_ieq(n, "authorization") || http_slice_ieq(n, "cookie") ||
            http_slice_ieq(n, "proxy-authorization"))
            continue;
        rc = buf_append(b, n.p, n.len);
        rc = rc ? rc : buf_append(b, ": ", 2);
        rc = rc ? rc : buf_append(b, q->fields[i].value.p, q->fields[i].value.len);
        rc = rc ? rc : buf_append(b, "\r\n", 2);
    }
    rc = rc ? rc : buf_append(b, "\r\n", 2);
    if (rc != 0) {
        hs_resp_error(r, 500);
        return;
    }
    hs_resp_start(r, 200);
    hs_resp_field_str(r, "Content-Type", "message/http");
    hs_resp_body(r, buf_head(b), b->len);
}

static int errno_status(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case EXDEV:        /* a path or symlink leading outside the root */
    case ELOOP:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case EPERM:
        return 403;
    default:
        return 500;
    }
}

static void redirect_slash(hs_req_t *r, struct static_worker *sw, size_t plen)
{
    long el = http_path_encode(slice_make(sw->path, plen), sw->enc, sw->enccap - 2);
    if (el < 0) {
        hs_resp_error(r, 414);
        return;
    }
    sw->enc[el++] = '/';
    hs_resp_start(r, 301);
    if (r->req.has_query) {
        buf_t *b = hs_scratch(r);
        if (buf_append(b, sw->enc, (size_t)el) < 0 || buf_append(b, "?", 1) < 0 ||
            buf_append(b, r->req.query.p, r->req.query.len) < 0) {
            hs_resp_error(r, 500);
            return;
        }
        hs_resp_field(r, "Location", buf_head(b), b->len);
    } else {
        hs_resp_field(r, "Location", sw->enc, (size_t)el);
    }
    hs_resp_page(r);
}

void static_on_refused(hs_req_t *r, void *wctx, int status)
{
    struct static_worker *sw = wctx;
    if (sw == NULL || !sw->cfg->writable)
        return;
    long plen = http_path_normalize(r->req.path, sw->path, sw->pathcap);
    if (plen > 0)
        write_refused(r, &sw->cfg->write, sw->path, (size_t)plen, status);
}

void static_on_request(hs_req_t *r, void *wctx)
{
    struct static_worker *sw = wctx;
    const http_request_t *q = &r->req;

    if (sw == NULL) {
        hs_resp_error(r, 500);
        return;
    }
    const char *allow = sw->cfg->writable ? sw->allow_rw : sw->allow_ro;
    switch (q->method_id) {
    case HTTP_M_GET:
    case HTTP_M_HEAD:
        break;
    case HTTP_M_OPTIONS:
        hs_resp_start(r, 204);
        hs_resp_field_str(r, "Allow", allow);
        if (sw->cfg->writable && sw->cfg->write.uploads == NULL)
            hs_resp_field_str(r, "Accept-Patch", "application/merge-patch+json");
        if (sw->cfg->writable && sw->cfg->write.uploads != NULL) {
            /* resumable uploads: the draft wants the full media type here */
            char lim[96];
            size_t n = rup_registry_limit_value(sw->cfg->write.uploads, lim, sizeof lim);
            hs_resp_field_str(r, "Accept-Patch", "application/merge-patch+json, application/partial-upload");
            hs_resp_field(r, "Upload-Limit", lim, n);
        }
        hs_resp_empty(r);
        return;
    case HTTP_M_TRACE:
        if (sw->cfg->trace) {
            serve_trace(r);
            return;
        }
        goto not_allowed;
    case HTTP_M_PUT:
    case HTTP_M_DELETE:
    case HTTP_M_POST:
    case HTTP_M_PATCH:
        if (sw->cfg->writable)
            break;
        goto not_allowed;
    default:
    not_allowed:
        hs_resp_start(r, 405);
        hs_resp_field_str(r, "Allow", allow);
        hs_resp_page(r);
        return;
    }

    long plen = http_path_normalize(q->path, sw->path, sw->pathcap);
    if (plen < 0) {
        hs_resp_error(r, 400);
        return;
    }
    const char *rid;
    size_t ridlen;
    if ((q->method_id != HTTP_M_GET && q->method_id != HTTP_M_HEAD) ||
        (sw->cfg->write.uploads != NULL && rup_path_id(sw->path, (size_t)plen, &rid, &ridlen))) {
        write_request(r, &sw->cfg->write, sw->path, (size_t)plen);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    struct fc_entry *hit = fc_get(&sw->fc, sw->path, (size_t)plen, ts.tv_sec);
    if (hit != NULL) {
        serve_entry(r, hit, NULL);
        return;
    }
    const char *rel = plen == 1 ? "." : sw->path + 1;
    int fd = fs_open_beneath(sw->cfg->rootfd, rel, O_RDONLY | O_NONBLOCK);
    if (fd == -ENOENT && variants_answer(r, sw->cfg->rootfd, sw->path, (size_t)plen,
                                         sw->cfg->multiple_choices, serve_variant, sw))
        return;
    if (fd < 0) {
        hs_resp_error(r, errno_status(-fd));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) == -1) {
        close(fd);
        hs_resp_error(r, 500);
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        if (sw->path[plen - 1] != '/') {
            close(fd);
            redirect_slash(r, sw, (size_t)plen);
            return;
        }
        int idx = fs_open_beneath(fd, "index.html", O_RDONLY | O_NONBLOCK);
        if (idx >= 0 && fstat(idx, &st) == 0 && S_ISREG(st.st_mode)) {
            close(fd);
            serve_fd(r, sw, idx, &st, (size_t)plen, SLICE_LIT("index.html"), ts.tv_sec);
            return;
        }
        if (idx >= 0)
            close(idx);
        if (sw->cfg->list)
            serve_listing(r, sw, fd, sw->path);
        else
            hs_resp_error(r, 403);
        close(fd);
        return;
    }
    if (!S_ISREG(st.st_mode) || sw->path[plen - 1] == '/') {
        close(fd);
        hs_resp_error(r, 404);
        return;
    }
    serve_fd(r, sw, fd, &st, (size_t)plen, slice_make(sw->path, (size_t)plen), ts.tv_sec);
}
