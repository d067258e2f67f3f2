#include "server/write.h"
#include "core/fs.h"
#include "core/log.h"
#include "http/cond.h"
#include "http/mergepatch.h"
#include "http/multipart.h"
#include "http/path.h"
#include "http/upload.h"
#include "server/static.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Renames into one path are serialised by these stripes, across workers,
 * so that "check the precondition, then rename" is one step. */
#define WRITE_STRIPES 64
/* Largest merge patch document held in memory (the engine's max-body
 * applies first). */
#define WRITE_PATCH_MAX (16u * 1024u * 1024u)
static pthread_mutex_t stripes[WRITE_STRIPES] = { [0 ... WRITE_STRIPES - 1] = PTHREAD_MUTEX_INITIALIZER };

struct wreq {
    const struct write_config *cfg;
    hs_req_t *r;
    enum http_method method;
    char *path;                /* normalised request path, NUL terminated */
    size_t plen;
    char *dir;                 /* parent directory, relative to the root ("." for the root) */
    char *name;                /* last segment (PUT, DELETE) */
    int parentfd;
    int tmpfd;
    char tmpname[40];          /* named temporary file, when O_TMPFILE is missing */
    uint64_t off;              /* where the next body byte goes */
    uint64_t received;
    buf_t patch;               /* PATCH: the merge patch document */
    struct upload *upload;     /* POST multipart/form-data */
    /* preconditions, copied out of the request head */
    struct http_cond cond;
    char *store;               /* owns path, dir, name and the cond values */
    char *authz;
    /* partial PUT (Content-Range) */
    int partial;
    uint64_t rfirst, rlast;
    int64_t rtotal;            /* -1 for "*" */
    /* resumable uploads (see write.h) */
    struct http_upload_fields uf;   /* the request's Upload-* fields */
    int64_t clen;              /* its Content-Length, -1 if none */
    int rres;                  /* the target is an upload resource */
    rup_t *rup;                /* the upload resource, with a reference */
    uint64_t rgen;             /* our generation as its writer */
    int rwriter;               /* we are (or were) its writer */
    int rfinal;                /* this request completed the upload */
    struct rup_state rst;      /* its state, for the answer */
    const char *rwhy;          /* the problem: "length", "completed" (400), "offset" (409) */
    /* outcome */
    int status;
    int io_errno;
    char etag[64];
    size_t etag_len;
    char location[1];          /* grows: see wreq_new */
};

static unsigned stripe_of(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h % WRITE_STRIPES;
}

/* Opens a regular file for reading; never waits on a FIFO or device.
 * Returns the fd or -errno (-EINVAL for anything but a regular file). */
static int open_regular(int rootfd, const char *rel)
{
    int fd = fs_open_beneath(rootfd, rel, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return fd;
    struct stat st;
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    return fd;
}

static int errno_status(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case EXDEV:
    case ELOOP:
        return 409;   /* the parent of the target is missing or not a directory */
    case EACCES:
    case EPERM:
    case EROFS:
        return 403;
    case ENOSPC:
    case EDQUOT:
        return 507;
    case EISDIR:
    case ENOTEMPTY:
    case EEXIST:
        return 409;
    case ENAMETOOLONG:
        return 414;
    default:
        return 500;
    }
}

struct upload;
static void upload_free(struct upload *u, int parentfd);

static void wreq_free(struct wreq *w)
{
    if (w->rup != NULL) {
        if (w->rwriter) { /* cut or refused: the data so far stays */
            int fd;
            struct rup_state st;
            const char *why;
            rup_end(w->rup, w->rgen, 0, &fd, &st, &why);
        }
        rup_release(w->cfg->uploads, w->rup);
    }
    upload_free(w->upload, w->parentfd);
    if (w->tmpfd >= 0) {
        close(w->tmpfd);
        if (w->tmpname[0] != '\0')
            unlinkat(w->parentfd, w->tmpname, 0);
    }
    if (w->parentfd >= 0)
        close(w->parentfd);
    free(w->store);
    free(w->authz);
    buf_dispose(&w->patch);
    free(w);
}

/* Starts the answer; one that ends a resumable upload says so, so that
 * the client can tell its status is the processing's, not the transfer's. */
static void start(struct wreq *w, int status)
{
    hs_resp_start(w->r, status);
    if (w->rfinal)
        hs_resp_field_str(w->r, "Upload-Complete", "?1");
}

/* Answers with w->status and lets go of w. */
static void finish(struct wreq *w)
{
    hs_req_t *r = w->r;
    int held = r->held;
    if (r->conn != NULL) {
        switch (w->status) {
        case 201:
            start(w, 201);
            hs_resp_field_str(r, "Location", w->location);
            if (w->etag_len)
                hs_resp_field(r, "ETag", w->etag, w->etag_len);
            hs_resp_field_str(r, "Content-Type", "text/plain; charset=utf-8");
            hs_resp_body(r, "created\n", 8);
            break;
        case 204:
            start(w, 204);
            if (w->etag_len)
                hs_resp_field(r, "ETag", w->etag, w->etag_len);
            hs_resp_empty(r);
            break;
        case 303:
            hs_resp_start(r, 303);
            hs_resp_field_str(r, "Location", w->location);
            hs_resp_page(r);
            break;
        case 401:
            hs_resp_start(r, 401);
            hs_resp_field_str(r, "WWW-Authenticate", "Basic realm=\"portico\", charset=\"UTF-8\"");
            hs_resp_page(r);
            break;
        default:
            if (w->status >= 500)
                log_warn("%s %s: %s", w->method == HTTP_M_PUT ? "PUT" : w->method == HTTP_M_DELETE ? "DELETE" : "POST",
                         w->path, strerror(w->io_errno));
            start(w, w->status);
            hs_resp_page(r);
            break;
        }
    }
    wreq_free(w);
    if (held)
        hs_resume(r);
}

/* The current state of the target, for the preconditions. */
static int target_state(struct wreq *w, int *exists, char *etag, size_t *etag_len, time_t *mtime)
{
    const char *rel = w->path + 1;
    int fd = fs_open_beneath(w->cfg->rootfd, rel, O_PATH);
    *exists = 0;
    *etag_len = 0;
    *mtime = 0;
    if (fd < 0)
        return fd == -ENOENT ? 0 : fd;
    struct stat st;
    int rc = fstat(fd, &st) == -1 ? -errno : 0;
    close(fd);
    if (rc < 0)
        return rc;
    *exists = 1;
    *etag_len = static_etag(etag, &st);
    *mtime = st.st_mtim.tv_sec;
    return S_ISDIR(st.st_mode) ? -EISDIR : 0;
}

static int check_preconditions(struct wreq *w)
{
    int exists;
    char etag[64];
    size_t etag_len;
    time_t mtime;
    int rc = target_state(w, &exists, etag, &etag_len, &mtime);
    if (rc < 0 && rc != -EISDIR) {
        w->io_errno = -rc;
        return errno_status(-rc);
    }
    return http_cond_eval(&w->cond, exists, slice_make(etag, etag_len), mtime, 0);
}

/* ------------------------------------------------------------ PUT/POST */

static void random_name(char *out, size_t cap, const char *prefix)
{
    unsigned char b[8];
    if (getrandom(b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        memcpy(b, &ts.tv_nsec, sizeof b < sizeof ts.tv_nsec ? sizeof b : sizeof ts.tv_nsec);
    }
    snprintf(out, cap, "%s%02x%02x%02x%02x%02x%02x%02x%02x", prefix, b[0], b[1], b[2], b[3], b[4],
             b[5], b[6], b[7]);
}

static int fill_around_range(struct wreq *w);

/* Gives the finished temporary file its final name. For PUT, atomically
 * replaces the target; for POST, never replaces anything. */
static int commit_name(struct wreq *w, const char *final_name, int replace)
{
    char proc[64];
    if (w->tmpname[0] == '\0') {
        /* An O_TMPFILE file gets a name through /proc/self/fd. linkat never
         * replaces, so PUT links to a fresh name and renames that over. */
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", w->tmpfd);
        if (!replace)
            return linkat(AT_FDCWD, proc, w->parentfd, final_name, AT_SYMLINK_FOLLOW) == -1 ? -errno : 0;
        random_name(w->tmpname, sizeof w->tmpname, ".portico-");
        if (linkat(AT_FDCWD, proc, w->parentfd, w->tmpname, AT_SYMLINK_FOLLOW) == -1) {
            w->tmpname[0] = '\0';
            return -errno;
        }
    }
    int rc;
    if (replace)
        rc = renameat(w->parentfd, w->tmpname, w->parentfd, final_name) == -1 ? -errno : 0;
    else
        rc = renameat2(w->parentfd, w->tmpname, w->parentfd, final_name, RENAME_NOREPLACE) == -1 ? -errno : 0;
    if (rc == 0)
        w->tmpname[0] = '\0'; /* nothing left to clean up */
    return rc;
}

/* Pool thread: make the body durable and put it in place. */
static void commit_work(void *arg)
{
    struct wreq *w = arg;
    struct stat st;
    /* A partial PUT is completed under the lock below; its fsync too. */
    if (!w->partial && (fsync(w->tmpfd) == -1 || fstat(w->tmpfd, &st) == -1)) {
        w->io_errno = errno;
        w->status = errno_status(errno);
        return;
    }
    if (!w->partial)
        w->etag_len = static_etag(w->etag, &st);
    if (w->method == HTTP_M_POST) {
        char name[64];
        int rc = -EEXIST;
        for (int tries = 0; tries < 8 && rc == -EEXIST; tries++) {
            random_name(name, sizeof name, "upload-");
            rc = commit_name(w, name, 0);
        }
        if (rc < 0) {
            w->io_errno = -rc;
            w->status = errno_status(-rc);
            return;
        }
        /* location: the directory's path (it ends in '/') and the name */
        size_t n = strlen(w->location);
        snprintf(w->location + n, 64, "%s", name);
        w->status = 201;
    } else {
        pthread_mutex_t *m = &stripes[stripe_of(w->path, w->plen)];
        pthread_mutex_lock(m);
        int exists;
        char etag[64];
        size_t etag_len;
        time_t mtime;
        int rc = target_state(w, &exists, etag, &etag_len, &mtime);
        int pre = rc == 0 ? http_cond_eval(&w->cond, exists, slice_make(etag, etag_len), mtime, 0) : 0;
        if (rc == -EISDIR) {
            w->status = 409;
        } else if (pre) {
            w->status = pre;
        } else if (w->partial && ((rc = fill_around_range(w)) < 0 ||
                                  (fsync(w->tmpfd) == -1 && (rc = -errno)) ||
                                  (fstat(w->tmpfd, &st) == -1 && (rc = -errno)))) {
            w->io_errno = -rc;
            w->status = rc == -EINVAL ? 409 : errno_status(-rc);
        } else {
            if (w->partial)
                w->etag_len = static_etag(w->etag, &st);
            rc = commit_name(w, w->name, 1);
            if (rc < 0) {
                w->io_errno = -rc;
                w->status = errno_status(-rc);
            } else {
                w->status = exists ? 204 : 201;
            }
        }
        pthread_mutex_unlock(m);
        if (w->status >= 300)
            return;
    }
    if (fsync(w->parentfd) == -1)
        log_warn("fsync of the directory of %s: %s", w->path, strerror(errno));
}

/* Completion of a pool job: answer with what it decided. */
static void job_done(loop_t *l, void *arg)
{
    (void)l;
    finish(arg);
}

/* Holds the request and runs `work` on the pool; `done` answers. */
static void run_on_pool(struct wreq *w, void (*work)(void *), void (*done)(loop_t *, void *))
{
    /* `done` runs on this loop, so never before this callback returns:
     * holding after a successful submit is safe, and a failed submit is
     * answered at once, without a hold to undo. */
    if (tpool_submit(w->cfg->pool, hs_loop(w->r), work, done, w) < 0) {
        w->status = 500;
        finish(w);
        return;
    }
    hs_hold(w->r);
}

static int on_data(hs_req_t *r, void *ctx, const char *p, size_t n)
{
    (void)r;
    struct wreq *w = ctx;
    if (w->rup != NULL)
        return rup_append(w->rup, w->rgen, p, n);
    if (w->partial && w->received + n > w->rlast - w->rfirst + 1)
        return 400; /* more than Content-Range announced */
    w->received += n;
    while (n > 0) {
        ssize_t k = pwrite(w->tmpfd, p, n, (off_t)w->off);
        if (k == -1) {
            if (errno == EINTR)
                continue;
            w->io_errno = errno;
            log_warn("writing the body of %s: %s", w->path, strerror(errno));
            return errno_status(errno);
        }
        p += k;
        n -= (size_t)k;
        w->off += (uint64_t)k;
    }
    return 0;
}

static void upload_end(struct wreq *w, int status);

static void on_end(hs_req_t *r, void *ctx, int status)
{
    (void)r; /* the same request as w->r */
    struct wreq *w = ctx;
    if (w->rup != NULL) {
        upload_end(w, status);
        return;
    }
    if (status != 0) {
        /* Refused or cut: the temporary file goes, the target never
         * changed. The engine answers (or there is no one to answer). */
        wreq_free(w);
        return;
    }
    if (w->partial) {
        if (w->received != w->rlast - w->rfirst + 1) {
            w->status = 400;
            finish(w);
            return;
        }
    }
    run_on_pool(w, commit_work, job_done);
}

static const struct hs_body_ops body_ops = { on_data, on_end };

/* --------------------------------------------------------------- uploads */

#define UPLOAD_MAX_FILES 64

struct upload_file {
    int fd;
    char tmpname[40];          /* named temp file when O_TMPFILE is missing */
    char name[MP_NAME_MAX];
};

struct upload {
    mp_parser_t mp;
    int done;
    int cur;                   /* index of the file being written, -1 for a plain field */
    size_t nfiles;
    struct upload_file files[UPLOAD_MAX_FILES];
};

static void upload_free(struct upload *u, int parentfd)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->nfiles; i++) {
        if (u->files[i].fd >= 0)
            close(u->files[i].fd);
        if (u->files[i].tmpname[0] != '\0')
            unlinkat(parentfd, u->files[i].tmpname, 0);
    }
    free(u);
}

/* A browser sends the file's own name (its base name, with any backslash
 * as a plain byte of it); keep what follows the last '/' and refuse names
 * that are not one plain file name. */
static int clean_filename(const char *in, char *out, size_t cap)
{
    const char *base = in;
    for (const char *p = in; *p; p++)
        if (*p == '/')
            base = p + 1;
    size_t n = strlen(base);
    if (n == 0 || n >= cap || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)base[i] < 0x20 || base[i] == 0x7f)
            return -1;
    memcpy(out, base, n + 1);
    return 0;
}

static int open_tmp_in(int dirfd, char *tmpname, size_t cap)
{
    tmpname[0] = '\0';
    int fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        random_name(tmpname, cap, ".portico-");
        fd = openat(dirfd, tmpname, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0)
            tmpname[0] = '\0';
    }
    return fd < 0 ? -errno : fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k == -1) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int on_upload_data(hs_req_t *r, void *ctx, const char *p, size_t n)
{
    (void)r;
    struct wreq *w = ctx;
    struct upload *u = w->upload;
    if (u->done)
        return 0; /* the epilogue after the close delimiter is ignored */
    while (n > 0) {
        size_t used;
        mp_part_t part;
        slice_t data;
        const char *why;
        int ev = mp_feed(&u->mp, p, n, &used, &part, &data, &why);
        p += used;
        n -= used;
        if (ev < 0) {
            log_debug("bad multipart body: %s", why);
            return 400;
        }
        if (ev == MP_MORE)
            break;
        if (ev == MP_DONE) {
            u->done = 1;
            break;
        }
        if (ev == MP_PART) {
            u->cur = -1;
            if (!part.has_filename || part.filename[0] == '\0')
                continue; /* a plain form field, or no file chosen */
            if (u->nfiles == UPLOAD_MAX_FILES)
                return 413;
            struct upload_file *f = &u->files[u->nfiles];
            if (clean_filename(part.filename, f->name, sizeof f->name) < 0)
                return 400;
            int fd = open_tmp_in(w->parentfd, f->tmpname, sizeof f->tmpname);
            if (fd < 0) {
                w->io_errno = -fd;
                return errno_status(-fd);
            }
            f->fd = fd;
            u->cur = (int)u->nfiles++;
        } else if (ev == MP_DATA && u->cur >= 0) {
            int rc = write_all(u->files[u->cur].fd, data.p, data.len);
            if (rc < 0) {
                w->io_errno = -rc;
                return errno_status(-rc);
            }
        } else if (ev == MP_PART_END) {
            u->cur = -1;
        }
    }
    return 0;
}

/* "name.ext" -> "name-1.ext", "name-2.ext", ... */
static void numbered(const char *name, int k, char *out, size_t cap)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL || dot == name)
        snprintf(out, cap, "%s-%d", name, k);
    else
        snprintf(out, cap, "%.*s-%d%s", (int)(dot - name), name, k, dot);
}

/* Pool thread: every uploaded file made durable and named, never over an
 * existing file. */
static void upload_work(void *arg)
{
    struct wreq *w = arg;
    struct upload *u = w->upload;
    w->status = 303;
    for (size_t i = 0; i < u->nfiles; i++) {
        struct upload_file *f = &u->files[i];
        if (fsync(f->fd) == -1) {
            w->io_errno = errno;
            w->status = errno_status(errno);
            return;
        }
        char name[MP_NAME_MAX + 16];
        snprintf(name, sizeof name, "%s", f->name);
        int rc = -EEXIST;
        for (int k = 1; k < 1000 && rc == -EEXIST; k++) {
            w->tmpfd = f->fd;
            memcpy(w->tmpname, f->tmpname, sizeof w->tmpname);
            rc = commit_name(w, name, 0);
            memcpy(f->tmpname, w->tmpname, sizeof f->tmpname);
            w->tmpfd = -1;
            if (rc == -EEXIST)
                numbered(f->name, k, name, sizeof name);
        }
        if (rc < 0) {
            w->io_errno = -rc;
            w->status = errno_status(-rc);
            return;
        }
    }
    if (fsync(w->parentfd) == -1)
        log_warn("fsync of %s: %s", w->path, strerror(errno));
}

static void on_upload_end(hs_req_t *r, void *ctx, int status)
{
    (void)r; /* the same request as w->r */
    struct wreq *w = ctx;
    if (status != 0) {
        wreq_free(w);
        return;
    }
    if (!w->upload->done || mp_finish(&w->upload->mp) != 0) {
        w->status = 400;
        finish(w);
        return;
    }
    run_on_pool(w, upload_work, job_done);
}

static const struct hs_body_ops upload_ops = { on_upload_data, on_upload_end };

/* ----------------------------------------------------------------- PATCH */

/* Pool thread: apply the merge patch to the JSON file, atomically. */
static void patch_work(void *arg)
{
    struct wreq *w = arg;
    json_error_t jerr;
    json_t *patch = json_loadb(buf_head(&w->patch), w->patch.len, JSON_DECODE_ANY, &jerr);
    if (patch == NULL) {
        w->status = 400;
        return;
    }
    pthread_mutex_t *m = &stripes[stripe_of(w->path, w->plen)];
    pthread_mutex_lock(m);
    int exists;
    char etag[64];
    size_t etag_len;
    time_t mtime;
    json_t *doc = NULL;
    int rc = target_state(w, &exists, etag, &etag_len, &mtime);
    if (rc == -EISDIR) {
        w->status = 409;
    } else if (rc < 0) {
        w->io_errno = -rc;
        w->status = errno_status(-rc);
    } else if (!exists) {
        w->status = 404;
    } else if ((w->status = http_cond_eval(&w->cond, 1, slice_make(etag, etag_len), mtime, 0)) == 0) {
        int fd = open_regular(w->cfg->rootfd, w->path + 1);
        doc = fd >= 0 ? json_loadfd(fd, JSON_DECODE_ANY, &jerr) : NULL;
        if (fd >= 0)
            close(fd);
        if (doc == NULL) {
            w->status = 409; /* the file is not JSON: nothing to merge into */
        } else if ((doc = merge_patch(doc, patch)) == NULL ||
                   json_dumpfd(doc, w->tmpfd, JSON_INDENT(2) | JSON_ENCODE_ANY) < 0 ||
                   write(w->tmpfd, "\n", 1) != 1) {
            w->io_errno = errno;
            w->status = 500;
        } else {
            struct stat st;
            if (fsync(w->tmpfd) == -1 || fstat(w->tmpfd, &st) == -1 || (rc = commit_name(w, w->name, 1)) < 0) {
                w->io_errno = rc < 0 ? -rc : errno;
                w->status = errno_status(w->io_errno);
            } else {
                w->etag_len = static_etag(w->etag, &st);
                w->status = 204;
            }
        }
    }
    pthread_mutex_unlock(m);
    json_decref(doc);
    json_decref(patch);
    if (w->status == 204 && fsync(w->parentfd) == -1)
        log_warn("fsync of the directory of %s: %s", w->path, strerror(errno));
}

static int on_patch_data(hs_req_t *r, void *ctx, const char *p, size_t n)
{
    (void)r;
    struct wreq *w = ctx;
    return buf_append(&w->patch, p, n) == 0 ? 0 : 413;
}

static void on_patch_end(hs_req_t *r, void *ctx, int status)
{
    (void)r; /* the same request as w->r */
    struct wreq *w = ctx;
    if (status != 0) {
        wreq_free(w);
        return;
    }
    run_on_pool(w, patch_work, job_done);
}

static const struct hs_body_ops patch_ops = { on_patch_data, on_patch_end };

/* "bytes FIRST-LAST/TOTAL", or with "*" for an unknown total (RFC 9110 §14.4). */
static int parse_u64(const char **p, const char *end, uint64_t *v)
{
    const char *q = *p;
    uint64_t x = 0;
    if (q == end || *q < '0' || *q > '9')
        return -1;
    for (; q < end && *q >= '0' && *q <= '9'; q++) {
        if (x > (UINT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (uint64_t)(*q - '0');
    }
    *p = q;
    *v = x;
    return 0;
}

static int parse_content_range(slice_t v, struct wreq *w)
{
    const char *p = v.p, *end = v.p + v.len;
    uint64_t a, b, t;
    if (v.len < 6 || strncasecmp(p, "bytes ", 6) != 0)
        return -1;
    p += 6;
    if (parse_u64(&p, end, &a) < 0 || p == end || *p++ != '-' || parse_u64(&p, end, &b) < 0 ||
        p == end || *p++ != '/')
        return -1;
    if (end - p == 1 && *p == '*') {
        w->rtotal = -1;
    } else {
        if (parse_u64(&p, end, &t) < 0 || p != end || b >= t || t > (uint64_t)INT64_MAX)
            return -1;
        w->rtotal = (int64_t)t;
    }
    if (a > b || b > (uint64_t)INT64_MAX)
        return -1;
    w->partial = 1;
    w->rfirst = a;
    w->rlast = b;
    return 0;
}

/* Opens the temporary file next to the target; for a partial PUT, starts
 * it as a copy of the current file. Returns 0 or a status. */
static int open_tmp(struct wreq *w)
{
    w->tmpfd = openat(w->parentfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (w->tmpfd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        random_name(w->tmpname, sizeof w->tmpname, ".portico-");
        w->tmpfd = openat(w->parentfd, w->tmpname, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (w->tmpfd < 0)
            w->tmpname[0] = '\0';
    }
    if (w->tmpfd < 0) {
        w->io_errno = errno;
        return errno_status(errno);
    }
    if (w->partial)
        w->off = w->rfirst; /* the rest of the file joins at commit, under the lock */
    return 0;
}

/* Pool thread, under the path's lock: fills the temporary file of a
 * partial PUT around the received range from the current file, so that
 * read-modify-write is one step. Returns 0 or -errno. */
static int fill_around_range(struct wreq *w)
{
    int src = open_regular(w->cfg->rootfd, w->path + 1);
    if (src == -ENOENT)
        src = -1; /* a new file: zeros before the range */
    else if (src < 0)
        return src;
    int rc = 0;
    if (src >= 0) {
        struct stat st;
        if (fstat(src, &st) == -1) {
            rc = -errno;
        } else {
            uint64_t size = (uint64_t)st.st_size;
            /* [0, first) and (last, size) of the old content */
            uint64_t spans[2][2] = { { 0, w->rfirst < size ? w->rfirst : size },
                                     { w->rlast + 1, size } };
            for (int i = 0; i < 2 && rc == 0; i++) {
                loff_t in = (loff_t)spans[i][0], out = (loff_t)spans[i][0];
                uint64_t left = spans[i][1] > spans[i][0] ? spans[i][1] - spans[i][0] : 0;
                while (left > 0) {
                    ssize_t k = copy_file_range(src, &in, w->tmpfd, &out, left, 0);
                    if (k <= 0) {
                        rc = k == 0 ? -EIO : -errno;
                        break;
                    }
                    left -= (uint64_t)k;
                }
            }
        }
        close(src);
    }
    if (rc == 0 && w->rtotal >= 0 && ftruncate(w->tmpfd, w->rtotal) == -1)
        rc = -errno;
    return rc;
}

/* The request is allowed: set up and read the body (PUT, POST), or do it
 * (DELETE). May run from on_request or after the password check. */
static void delete_work(void *arg);
static void resource_proceed(struct wreq *w);
static int start_resumable(struct wreq *w);
static void answer_upload(struct wreq *w, int status);

static void proceed(struct wreq *w)
{
    hs_req_t *r = w->r;
    if (r->conn == NULL) { /* gone during the password check */
        wreq_free(w);
        hs_resume(r);
        return;
    }
    if (w->rres) {
        resource_proceed(w);
        return;
    }
    if (w->method == HTTP_M_DELETE) {
        run_on_pool(w, delete_work, job_done);
        return;
    }
    int fd = fs_open_beneath(w->cfg->rootfd, w->dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        w->io_errno = -fd;
        w->status = fd == -ENOENT || fd == -ENOTDIR ? 409 : errno_status(-fd);
        finish(w);
        return;
    }
    w->parentfd = fd;
    int status = w->method == HTTP_M_PUT || w->method == HTTP_M_PATCH ? check_preconditions(w) : 0;
    if (status == 0 && w->upload == NULL)
        status = open_tmp(w);
    if (status == 0)
        status = start_resumable(w);
    if (status != 0 && w->rwhy != NULL) {
        answer_upload(w, status);
        return;
    }
    if (status != 0) {
        w->status = status;
        finish(w);
        return;
    }
    if (w->method == HTTP_M_PATCH) {
        buf_init(&w->patch, WRITE_PATCH_MAX);
        hs_read_body(r, &patch_ops, w);
    } else if (w->upload != NULL) {
        hs_read_body(r, &upload_ops, w);
    } else {
        hs_read_body(r, &body_ops, w);
    }
    if (r->held)
        hs_resume(r);
}

/* ---------------------------------------------------------------- DELETE */

static void delete_work(void *arg)
{
    struct wreq *w = arg;
    int fd = fs_open_beneath(w->cfg->rootfd, w->dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        w->status = fd == -ENOENT || fd == -ENOTDIR ? 404 : errno_status(-fd);
        w->io_errno = -fd;
        return;
    }
    w->parentfd = fd;
    pthread_mutex_t *m = &stripes[stripe_of(w->path, w->plen)];
    pthread_mutex_lock(m);
    int exists;
    char etag[64];
    size_t etag_len;
    time_t mtime;
    int rc = target_state(w, &exists, etag, &etag_len, &mtime);
    if (rc < 0 && rc != -EISDIR) {
        w->io_errno = -rc;
        w->status = errno_status(-rc);
    } else if (!exists) {
        w->status = 404;
    } else if ((w->status = http_cond_eval(&w->cond, 1, slice_make(etag, etag_len), mtime, 0)) == 0) {
        int flags = rc == -EISDIR ? AT_REMOVEDIR : 0;
        if (unlinkat(w->parentfd, w->name, flags) == -1) {
            w->io_errno = errno;
            w->status = errno == ENOENT ? 404 : errno_status(errno);
        } else {
            w->status = 204;
        }
    }
    pthread_mutex_unlock(m);
    if (w->status == 204 && fsync(w->parentfd) == -1)
        log_warn("fsync of the directory of %s: %s", w->path, strerror(errno));
}


/* -------------------------------------------------------------- passwords */

static void auth_work(void *arg)
{
    struct wreq *w = arg;
    w->status = w->authz != NULL && auth_check(w->cfg->auth, w->authz, strlen(w->authz)) ? 0 : 401;
}

static void auth_done(loop_t *l, void *arg)
{
    (void)l;
    struct wreq *w = arg;
    if (w->status != 0) {
        finish(w);
        return;
    }
    proceed(w);
}

/* ----------------------------------------------------------------- entry */

static char *copy_slice(slice_t s)
{
    char *p = malloc(s.len + 1);
    if (p != NULL) {
        memcpy(p, s.p, s.len);
        p[s.len] = '\0';
    }
    return p;
}

/* A request for `method` on path (normalised): the path split into its
 * directory and last name, the Location ready, the preconditions copied
 * (the request head goes away before they are used). NULL when out of
 * memory. */
static struct wreq *wreq_new(hs_req_t *r, const struct write_config *cfg, const char *path,
                             size_t plen, enum http_method method, const struct http_cond *c)
{
    int is_dir = path[plen - 1] == '/';
    size_t loc_room = 3 * plen + 80;
    struct wreq *w = calloc(1, sizeof *w + loc_room);
    if (w == NULL)
        return NULL;
    w->cfg = cfg;
    w->r = r;
    w->method = method;
    w->parentfd = -1;
    w->tmpfd = -1;
    w->clen = -1;
    /* One block holds the path, a copy split into directory and name, and
     * the precondition values. */
    size_t need = 2 * (plen + 1) + http_cond_copy_size(c);
    char *blk = malloc(need);
    if (blk == NULL) {
        free(w);
        return NULL;
    }
    w->store = blk;
    w->path = blk;
    memcpy(w->path, path, plen);
    w->path[plen] = '\0';
    w->plen = plen;
    char *split = blk + plen + 1;
    memcpy(split, path, plen);
    split[plen] = '\0';
    http_cond_copy(&w->cond, c, split + plen + 1);
    if (http_path_encode(slice_make(path, plen), w->location, loc_room - 64) < 0) {
        free(blk);
        free(w);
        return NULL;
    }

    /* "/a/b/c" -> dir "a/b", name "c"; "/c" -> ".", "c"; for POST the path
     * is the directory itself: "/a/b/" -> "a/b", "/" -> ".". */
    if (is_dir && method == HTTP_M_DELETE) {
        /* DELETE /a/b/ removes the directory b: drop the slash, then split */
        split[plen - 1] = '\0';
        w->path[plen - 1] = '\0';
        w->plen = --plen;
        is_dir = 0;
    }
    if (is_dir) {
        split[plen - 1] = '\0';
        w->dir = plen == 1 ? (char *)"." : split + 1;
    } else {
        char *slash = strrchr(split, '/');
        w->name = slash + 1;
        if (slash == split) {
            w->dir = (char *)".";
        } else {
            *slash = '\0';
            w->dir = split + 1;
        }
    }
    return w;
}

/* Checks the password on the pool (then proceeds), or proceeds. */
static void authorize(struct wreq *w, const http_request_t *q)
{
    if (w->cfg->auth != NULL) {
        const http_field_t *a = http_find_field(q, "authorization");
        if (a != NULL && (w->authz = copy_slice(a->value)) == NULL) {
            w->status = 500;
            finish(w);
            return;
        }
        run_on_pool(w, auth_work, auth_done);
        return;
    }
    proceed(w);
}

static void resource_request(hs_req_t *r, const struct write_config *cfg, const char *path,
                             size_t plen);

void write_request(hs_req_t *r, const struct write_config *cfg, const char *path, size_t plen)
{
    const http_request_t *q = &r->req;
    int is_dir = path[plen - 1] == '/';
    const char *rid;
    size_t ridlen;

    if (cfg->uploads != NULL && rup_path_id(path, plen, &rid, &ridlen)) {
        resource_request(r, cfg, path, plen);
        return;
    }
    if (cfg->uploads != NULL)
        rup_registry_sweep(cfg->uploads); /* abandoned uploads go even if nobody asks for them */
    if ((q->method_id == HTTP_M_PUT || q->method_id == HTTP_M_DELETE) && is_dir && plen == 1) {
        hs_resp_start(r, 405);
        hs_resp_field_str(r, "Allow", cfg->trace ? "GET, HEAD, OPTIONS, POST, TRACE" : "GET, HEAD, OPTIONS, POST");
        hs_resp_page(r);
        return;
    }
    if (q->method_id == HTTP_M_POST && !is_dir) {
        hs_resp_start(r, 405);
        hs_resp_field_str(r, "Allow", cfg->trace ? "GET, HEAD, OPTIONS, PUT, DELETE, PATCH, TRACE"
                                                  : "GET, HEAD, OPTIONS, PUT, DELETE, PATCH");
        hs_resp_page(r);
        return;
    }
    if ((q->method_id == HTTP_M_PUT || q->method_id == HTTP_M_PATCH) && is_dir) {
        hs_resp_error(r, 409); /* a directory cannot be replaced by a file */
        return;
    }
    if (q->method_id == HTTP_M_PATCH) {
        const http_field_t *ct = http_find_field(q, "content-type");
        size_t n = ct ? ct->value.len : 0;
        const char *t = "application/merge-patch+json";
        size_t tl = strlen(t);
        if (ct == NULL || n < tl || strncasecmp(ct->value.p, t, tl) != 0 ||
            (n > tl && ct->value.p[tl] != ';' && ct->value.p[tl] != ' ')) {
            hs_resp_start(r, 415);
            hs_resp_field_str(r, "Accept-Patch", t);
            hs_resp_page(r);
            return;
        }
    }
    slice_t boundary = { NULL, 0 };
    if (q->method_id == HTTP_M_POST) {
        const http_field_t *ct = http_find_field(q, "content-type");
        if (ct != NULL && ct->value.len >= 19 && strncasecmp(ct->value.p, "multipart/form-data", 19) == 0 &&
            mp_boundary(ct->value, &boundary) < 0) {
            hs_resp_error(r, 400); /* multipart without a usable boundary */
            return;
        }
    }

    struct http_cond c;
    http_cond_from_request(q, &c);
    struct wreq *w = wreq_new(r, cfg, path, plen, q->method_id, &c);
    if (w == NULL) {
        hs_resp_error(r, 500);
        return;
    }
    http_upload_fields(q, &w->uf);
    w->clen = q->content_length;
    if (boundary.p != NULL) {
        w->upload = calloc(1, sizeof *w->upload);
        if (w->upload == NULL) {
            w->status = 500;
            finish(w);
            return;
        }
        w->upload->cur = -1;
        if (mp_init(&w->upload->mp, boundary) < 0) {
            w->status = 400;
            finish(w);
            return;
        }
    }
    if (q->method_id == HTTP_M_PUT) {
        const http_field_t *cr = http_find_field(q, "content-range");
        if (cr != NULL && parse_content_range(cr->value, w) < 0) {
            w->status = 400;
            finish(w);
            return;
        }
    }
    authorize(w, q);
}

/* ------------------------------------------------------- resumable uploads */

#define PROBLEM_BASE "https://iana.org/assignments/http-problem-types#"

/* A 413 caused by the upload limits names them (Upload-Limit). */
static void answer_upload_413(hs_req_t *r, const char *lim, size_t ln)
{
    hs_resp_start(r, 413);
    hs_resp_field(r, "Upload-Limit", lim, ln);
    hs_resp_page(r);
}

/* Answers a request about an upload resource (or a creation that did not
 * complete) with `status`, and lets go of w. */
static void answer_upload(struct wreq *w, int status)
{
    hs_req_t *r = w->r;
    int held = r->held;
    const struct rup_state *st = &w->rst;
    char lim[96], num[32], body[320];
    size_t ln = rup_limit_value(st, lim, sizeof lim);
    int n;
    if (r->conn == NULL)
        goto out;
    switch (status) {
    case 201: /* created, not complete: where to go on */
        hs_resp_start(r, 201);
        n = snprintf(body, sizeof body, "%s%s", RUP_PREFIX, rup_id(w->rup));
        hs_resp_field(r, "Location", body, (size_t)n);
        hs_resp_field_str(r, "Upload-Complete", "?0");
        hs_resp_field(r, "Upload-Offset", num, (size_t)snprintf(num, sizeof num, "%" PRIu64, st->offset));
        hs_resp_field(r, "Upload-Limit", lim, ln);
        hs_resp_body(r, "", 0);
        break;
    case 204: /* HEAD, an append that did not complete, DELETE */
        hs_resp_start(r, 204);
        if (w->method != HTTP_M_DELETE) {
            hs_resp_field_str(r, "Upload-Complete", st->complete ? "?1" : "?0");
            hs_resp_field(r, "Upload-Offset", num, (size_t)snprintf(num, sizeof num, "%" PRIu64, st->offset));
        }
        if (w->method == HTTP_M_HEAD) {
            if (st->length >= 0)
                hs_resp_field(r, "Upload-Length", num, (size_t)snprintf(num, sizeof num, "%" PRId64, st->length));
            hs_resp_field(r, "Upload-Limit", lim, ln);
            hs_resp_field_str(r, "Cache-Control", "no-store");
        }
        hs_resp_empty(r);
        break;
    case 413: /* the draft: a 413 for the upload limits names them */
        answer_upload_413(r, lim, ln);
        break;
    case 409: /* the offset the client gave is not ours: here is ours */
        if (w->rwhy == NULL || strcmp(w->rwhy, "offset") != 0) {
            hs_resp_error(r, 409); /* another request took over this one */
            break;
        }
        hs_resp_start(r, 409);
        hs_resp_field(r, "Upload-Offset", num, (size_t)snprintf(num, sizeof num, "%" PRIu64, st->offset));
        hs_resp_field_str(r, "Content-Type", "application/problem+json");
        n = snprintf(body, sizeof body,
                     "{\"type\":\"" PROBLEM_BASE "mismatching-upload-offset\","
                     "\"title\":\"offset from request does not match offset of resource\","
                     "\"expected-offset\":%" PRIu64 ",\"provided-offset\":%" PRId64 "}\n",
                     st->offset, w->uf.offset);
        hs_resp_body(r, body, (size_t)n);
        break;
    case 400:
        if (w->rwhy != NULL && w->rwhy[0] != '\0') {
            int done = strcmp(w->rwhy, "completed") == 0;
            hs_resp_start(r, 400);
            hs_resp_field_str(r, "Content-Type", "application/problem+json");
            n = snprintf(body, sizeof body, "{\"type\":\"" PROBLEM_BASE "%s\",\"title\":\"%s\"}\n",
                         done ? "completed-upload" : "inconsistent-upload-length",
                         done ? "upload is already completed" : "inconsistent length values for upload");
            hs_resp_body(r, body, (size_t)n);
            break;
        }
        /* fall through */
    default:
        hs_resp_error(r, status);
        break;
    }
out:
    wreq_free(w);
    if (held)
        hs_resume(r);
}

void write_refused(hs_req_t *r, const struct write_config *cfg, const char *path, size_t plen,
                   int status)
{
    const http_request_t *q = &r->req;
    if (status != 413 || cfg->uploads == NULL || plen == 0)
        return;
    struct http_upload_fields uf;
    http_upload_fields(q, &uf);
    if (uf.complete < 0)
        return; /* neither a creation nor an append */
    const char *rid;
    size_t ridlen;
    int is_dir = path[plen - 1] == '/';
    int upload;
    if (rup_path_id(path, plen, &rid, &ridlen)) {
        upload = q->method_id == HTTP_M_PATCH; /* an append */
    } else if (q->method_id == HTTP_M_PUT) {
        upload = !is_dir && http_find_field(q, "content-range") == NULL;
    } else if (q->method_id == HTTP_M_POST) {
        const http_field_t *ct = http_find_field(q, "content-type");
        upload = is_dir && !(ct != NULL && ct->value.len >= 19 &&
                             strncasecmp(ct->value.p, "multipart/form-data", 19) == 0);
    } else {
        upload = 0;
    }
    if (!upload)
        return;
    char lim[96];
    size_t ln = rup_registry_limit_value(cfg->uploads, lim, sizeof lim);
    answer_upload_413(r, lim, ln);
}

/* A PUT or POST body that may become resumable: with Upload-Complete, an
 * O_TMPFILE file and room in the registry, it gets an upload resource, and
 * the client hears of it at once (104). Returns 0 or a status. */
static int start_resumable(struct wreq *w)
{
    if (w->cfg->uploads == NULL || w->uf.complete < 0 || w->upload != NULL || w->partial ||
        w->tmpname[0] != '\0' || (w->method != HTTP_M_PUT && w->method != HTTP_M_POST))
        return 0;
    int64_t length = w->uf.length;
    if (w->uf.complete == 1 && w->clen >= 0) {
        if (length >= 0 && length != w->clen) {
            w->rwhy = "length";
            return 400;
        }
        length = w->clen;
    }
    w->rup = rup_create(w->cfg->uploads, w->path, w->method, w->tmpfd, length, &w->cond, &w->rgen);
    if (w->rup == NULL)
        return 0; /* a plain upload, not resumable */
    w->rwriter = 1;
    struct rup_state st = { .length = length };
    rup_limits(w->rup, &st);
    char f[256], lim[96];
    rup_limit_value(&st, lim, sizeof lim);
    int n = snprintf(f, sizeof f, "Location: %s%s\r\nUpload-Limit: %s\r\n", RUP_PREFIX, rup_id(w->rup), lim);
    hs_resp_interim(w->r, 104, f, (size_t)n);
    return 0;
}

/* The body of a resumable request ended (status 0: whole). */
static void upload_end(struct wreq *w, int status)
{
    if (status == 413 && w->r->conn != NULL) {
        /* Past --max-body (the engine) or max-size: the limits are named.
         * The engine closes after it; the data so far stays. */
        char lim[96];
        rup_limits(w->rup, &w->rst);
        size_t ln = rup_limit_value(&w->rst, lim, sizeof lim);
        answer_upload_413(w->r, lim, ln);
    }
    if (status != 0) {
        wreq_free(w); /* the engine answers (413: as above); the data so far stays */
        return;
    }
    int commitfd;
    int rc = rup_end(w->rup, w->rgen, w->uf.complete == 1, &commitfd, &w->rst, &w->rwhy);
    w->rwriter = 0;
    if (rc != 0 || commitfd < 0) {
        answer_upload(w, rc != 0 ? rc : w->rres ? 204 : 201);
        return;
    }
    w->rfinal = 1;
    if (!w->rres) { /* the creating request carried it all */
        close(commitfd);
        run_on_pool(w, commit_work, job_done);
        return;
    }
    /* An append completed it: commit as the creating request asked. */
    enum http_method m;
    struct http_cond c;
    const char *target = rup_target(w->rup, &m, &c);
    struct wreq *x = wreq_new(w->r, w->cfg, target, strlen(target), m, &c);
    if (x == NULL) {
        close(commitfd);
        w->status = 500;
        finish(w);
        return;
    }
    x->rfinal = 1;
    x->rup = w->rup; /* the reference moves to x */
    w->rup = NULL;
    x->tmpfd = commitfd;
    wreq_free(w);
    int fd = fs_open_beneath(x->cfg->rootfd, x->dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        x->io_errno = -fd;
        x->status = fd == -ENOENT || fd == -ENOTDIR ? 409 : errno_status(-fd);
        finish(x);
        return;
    }
    x->parentfd = fd;
    run_on_pool(x, commit_work, job_done);
}

/* After the password check: the request on an upload resource. */
static void resource_proceed(struct wreq *w)
{
    hs_req_t *r = w->r;
    rup_registry_t *g = w->cfg->uploads;
    w->rup = rup_find(g, w->name, strlen(w->name));
    if (w->rup == NULL) {
        answer_upload(w, 404);
        return;
    }
    if (w->method == HTTP_M_HEAD) {
        int rc = rup_query(w->rup, &w->rst);
        answer_upload(w, rc != 0 ? rc : 204);
        return;
    }
    if (w->method == HTTP_M_DELETE) {
        answer_upload(w, rup_cancel(g, w->rup) != 0 ? 404 : 204);
        return;
    }
    /* PATCH: append from Upload-Offset */
    int64_t length = w->uf.length;
    if (w->uf.complete == 1 && w->clen >= 0) {
        if (length >= 0 && length != w->uf.offset + w->clen) {
            w->rwhy = "length";
            answer_upload(w, 400);
            return;
        }
        length = w->uf.offset + w->clen;
    }
    int rc = rup_claim(w->rup, w->uf.offset, length, w->clen, &w->rgen, &w->rst, &w->rwhy);
    if (rc == 400 && strcmp(w->rwhy, "completed") == 0 && w->clen != 0)
        w->rwhy = "length"; /* bytes after the end: the draft's inconsistent length */
    if (rc == 409)
        w->rwhy = "offset";
    if (rc != 0) {
        answer_upload(w, rc);
        return;
    }
    w->rwriter = 1;
    hs_read_body(r, &body_ops, w);
    if (r->held)
        hs_resume(r);
}

/* Any request on RUP_PREFIX... while writable and offering resumption. */
static void resource_request(hs_req_t *r, const struct write_config *cfg, const char *path,
                             size_t plen)
{
    const http_request_t *q = &r->req;
    struct http_upload_fields uf;
    http_upload_fields(q, &uf);
    switch (q->method_id) {
    case HTTP_M_HEAD:
    case HTTP_M_DELETE:
        break;
    case HTTP_M_PATCH: {
        const http_field_t *ct = http_find_field(q, "content-type");
        if (ct == NULL || !http_is_partial_upload(ct->value)) {
            hs_resp_start(r, 415);
            hs_resp_field_str(r, "Accept-Patch", "application/partial-upload");
            hs_resp_page(r);
            return;
        }
        if (uf.offset < 0 || uf.complete < 0) {
            hs_resp_error(r, 400); /* an append must say where and whether it ends */
            return;
        }
        break;
    }
    default:
        hs_resp_start(r, 405);
        hs_resp_field_str(r, "Allow", "HEAD, PATCH, DELETE, OPTIONS");
        hs_resp_page(r);
        return;
    }
    static const struct http_cond none;
    struct wreq *w = wreq_new(r, cfg, path, plen, q->method_id, &none);
    if (w == NULL) {
        hs_resp_error(r, 500);
        return;
    }
    w->rres = 1;
    w->uf = uf;
    w->clen = q->content_length;
    authorize(w, q);
}
