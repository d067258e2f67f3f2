/* resumable.c - the registry of upload resources (see resumable.h).
 *
 * Locks: the registry's mutex guards the list, the count and every
 * resource's reference count; a resource's own mutex guards its state and
 * file. The order is registry, then resource. */
#include "server/resumable.h"
#include "core/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct rup {
    struct rup *next;          /* in the registry's list (g->mu) */
    rup_registry_t *g;
    int refs;                  /* requests holding it (g->mu) */
    int listed;                /* in the list (g->mu) */
    char id[RUP_ID_LEN + 1];
    /* fixed at creation */
    enum http_method method;
    struct http_cond cond;
    char *path;                /* owns the path and the cond strings */
    /* u->mu */
    pthread_mutex_t mu;
    int live;                  /* 0 once cancelled, failed or expired */
    int complete;
    int fd;                    /* the data; -1 once complete or dead */
    uint64_t offset;
    int64_t length;
    uint64_t gen;              /* the current writer's generation */
    int writing;
    time_t touched;            /* monotonic seconds of the last request */
};

struct rup_registry {
    pthread_mutex_t mu;
    struct rup *head;
    unsigned n, max;
    uint32_t expiry_s;
    uint64_t max_size;
};

static time_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

rup_registry_t *rup_registry_new(unsigned max, uint32_t expiry_s, uint64_t max_size)
{
    rup_registry_t *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    pthread_mutex_init(&g->mu, NULL);
    g->max = max;
    g->expiry_s = expiry_s;
    g->max_size = max_size;
    return g;
}

static void destroy(rup_t *u)
{
    if (u->fd >= 0)
        close(u->fd);
    pthread_mutex_destroy(&u->mu);
    free(u->path);
    free(u);
}

/* Under u->mu: the resource can do nothing more; its data goes. */
static void kill_locked(rup_t *u)
{
    u->live = 0;
    u->writing = 0;
    u->gen++;
    if (u->fd >= 0) {
        close(u->fd);
        u->fd = -1;
    }
}

/* Under g->mu: takes u out of the list; frees it if nobody holds it. */
static void unlist(rup_registry_t *g, rup_t **link)
{
    rup_t *u = *link;
    *link = u->next;
    u->listed = 0;
    g->n--;
    if (u->refs == 0)
        destroy(u);
}

/* Under g->mu: drops dead resources and those idle past the expiry. */
static void sweep(rup_registry_t *g, time_t now)
{
    rup_t **link = &g->head;
    while (*link != NULL) {
        rup_t *u = *link;
        pthread_mutex_lock(&u->mu);
        int drop = !u->live || (!u->writing && now - u->touched >= (time_t)g->expiry_s);
        if (drop && u->live) {
            log_info("upload %s expired at offset %" PRIu64, u->id, u->offset);
            kill_locked(u);
        }
        pthread_mutex_unlock(&u->mu);
        if (drop)
            unlist(g, link);
        else
            link = &u->next;
    }
}

void rup_registry_free(rup_registry_t *g)
{
    if (g == NULL)
        return;
    while (g->head != NULL) {
        rup_t *u = g->head;
        g->head = u->next;
        destroy(u);
    }
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void rup_registry_sweep(rup_registry_t *g)
{
    time_t now = now_s();
    pthread_mutex_lock(&g->mu);
    sweep(g, now);
    pthread_mutex_unlock(&g->mu);
}

int rup_path_id(const char *path, size_t plen, const char **id, size_t *idlen)
{
    size_t n = sizeof RUP_PREFIX - 1;
    if (plen < n || memcmp(path, RUP_PREFIX, n) != 0)
        return 0;
    *id = path + n;
    *idlen = plen - n;
    return 1;
}

static void random_id(char *out)
{
    unsigned char b[RUP_ID_LEN / 2];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        /* getrandom does not fail for 16 bytes once the pool is ready;
         * still never hand out a predictable id silently. */
        log_error("getrandom failed: %s", strerror(errno));
        abort();
    }
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Copies path and the cond strings into one block owned by u. */
static int copy_target(rup_t *u, const char *path, const struct http_cond *c)
{
    size_t pl = strlen(path);
    char *b = malloc(pl + 1 + http_cond_copy_size(c));
    if (b == NULL)
        return -1;
    memcpy(b, path, pl + 1);
    u->path = b;
    http_cond_copy(&u->cond, c, b + pl + 1);
    return 0;
}

rup_t *rup_create(rup_registry_t *g, const char *path, enum http_method method, int tmpfd,
                  int64_t length, const struct http_cond *cond, uint64_t *gen)
{
    time_t now = now_s();
    pthread_mutex_lock(&g->mu);
    sweep(g, now);
    if (g->n >= g->max) {
        pthread_mutex_unlock(&g->mu);
        log_warn("%u unfinished uploads: %s is not resumable", g->max, path);
        return NULL;
    }
    rup_t *u = calloc(1, sizeof *u);
    if (u == NULL || copy_target(u, path, cond) < 0 || (u->fd = dup(tmpfd)) < 0) {
        pthread_mutex_unlock(&g->mu);
        if (u != NULL)
            free(u->path);
        free(u);
        return NULL;
    }
    pthread_mutex_init(&u->mu, NULL);
    u->g = g;
    random_id(u->id);
    u->method = method;
    u->live = 1;
    u->length = length;
    u->gen = 1;
    u->writing = 1;
    u->touched = now;
    u->refs = 1;
    u->listed = 1;
    u->next = g->head;
    g->head = u;
    g->n++;
    pthread_mutex_unlock(&g->mu);
    *gen = u->gen;
    return u;
}

rup_t *rup_find(rup_registry_t *g, const char *id, size_t idlen)
{
    time_t now = now_s();
    rup_t *found = NULL;
    if (idlen != RUP_ID_LEN)
        return NULL;
    pthread_mutex_lock(&g->mu);
    sweep(g, now);
    for (rup_t *u = g->head; u != NULL; u = u->next) {
        if (memcmp(u->id, id, RUP_ID_LEN) == 0) {
            u->refs++;
            found = u;
            break;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return found;
}

void rup_release(rup_registry_t *g, rup_t *u)
{
    if (u == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    int gone = --u->refs == 0 && !u->listed;
    pthread_mutex_unlock(&g->mu);
    if (gone)
        destroy(u);
}

const char *rup_id(const rup_t *u)
{
    return u->id;
}

const char *rup_target(const rup_t *u, enum http_method *method, struct http_cond *cond)
{
    *method = u->method;
    *cond = u->cond;
    return u->path;
}

/* Under u->mu. */
static void fill(const rup_t *u, struct rup_state *st)
{
    st->offset = u->offset;
    st->length = u->length;
    st->complete = u->complete;
    st->max_size = u->g->max_size;
    st->max_age = u->g->expiry_s;
}

int rup_claim(rup_t *u, int64_t offset, int64_t length, int64_t clen, uint64_t *gen,
              struct rup_state *st, const char **why)
{
    int rc = 0;
    *why = "";
    pthread_mutex_lock(&u->mu);
    fill(u, st);
    if (!u->live) {
        rc = 404;
    } else if (u->complete) {
        rc = 400;
        *why = "completed";
    } else if (offset < 0 || (uint64_t)offset != u->offset) {
        rc = 409;
    } else if (length >= 0 && ((u->length >= 0 && length != u->length) ||
                               (uint64_t)length < u->offset)) {
        rc = 400;
        *why = "length";
    } else if ((clen >= 0 && u->offset + (uint64_t)clen > u->g->max_size) ||
               (length >= 0 && (uint64_t)length > u->g->max_size)) {
        rc = 413;
    } else {
        if (length >= 0)
            u->length = length;
        u->gen++;
        u->writing = 1;
        u->touched = now_s();
        *gen = u->gen;
        fill(u, st);
    }
    pthread_mutex_unlock(&u->mu);
    return rc;
}

int rup_query(rup_t *u, struct rup_state *st)
{
    pthread_mutex_lock(&u->mu);
    int rc = u->live ? 0 : 404;
    if (rc == 0) {
        u->gen++; /* an older writer stops here: the offset below holds */
        u->writing = 0;
        u->touched = now_s();
    }
    fill(u, st);
    pthread_mutex_unlock(&u->mu);
    return rc;
}

static int write_status(int err)
{
    return err == ENOSPC || err == EDQUOT ? 507 : 500;
}

int rup_append(rup_t *u, uint64_t gen, const char *p, size_t n)
{
    int rc = 0;
    pthread_mutex_lock(&u->mu);
    if (!u->live || gen != u->gen) {
        rc = 409; /* a newer request took over */
    } else if (u->length >= 0 && u->offset + n > (uint64_t)u->length) {
        kill_locked(u); /* the draft: past the length, the upload is invalid */
        rc = 400;
    } else if (u->offset + n > u->g->max_size) {
        rc = 413;
    }
    while (rc == 0 && n > 0) {
        ssize_t k = pwrite(u->fd, p, n, (off_t)u->offset);
        if (k == -1) {
            if (errno == EINTR)
                continue;
            log_warn("upload %s: %s", u->id, strerror(errno));
            rc = write_status(errno);
            break;
        }
        p += k;
        n -= (size_t)k;
        u->offset += (uint64_t)k;
    }
    u->touched = now_s();
    pthread_mutex_unlock(&u->mu);
    return rc;
}

int rup_end(rup_t *u, uint64_t gen, int complete, int *commitfd, struct rup_state *st,
            const char **why)
{
    int rc = 0;
    *commitfd = -1;
    *why = "";
    pthread_mutex_lock(&u->mu);
    if (u->live && gen == u->gen) {
        u->writing = 0;
        u->touched = now_s();
        if (complete) {
            if (u->length >= 0 && u->offset != (uint64_t)u->length) {
                kill_locked(u);
                rc = 400;
                *why = "length";
            } else if ((*commitfd = dup(u->fd)) < 0) {
                rc = write_status(errno);
            } else {
                u->complete = 1;
                u->length = (int64_t)u->offset;
                close(u->fd);
                u->fd = -1;
            }
        }
    } else if (complete) {
        rc = 409;
    }
    fill(u, st);
    pthread_mutex_unlock(&u->mu);
    return rc;
}

int rup_cancel(rup_registry_t *g, rup_t *u)
{
    pthread_mutex_lock(&g->mu);
    pthread_mutex_lock(&u->mu);
    int rc = u->live ? 0 : 404;
    kill_locked(u);
    pthread_mutex_unlock(&u->mu);
    if (u->listed) {
        for (rup_t **link = &g->head; *link != NULL; link = &(*link)->next) {
            if (*link == u) {
                unlist(g, link); /* u->refs > 0: the caller holds it */
                break;
            }
        }
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

void rup_limits(const rup_t *u, struct rup_state *st)
{
    st->max_size = u->g->max_size;
    st->max_age = u->g->expiry_s;
}

size_t rup_limit_value(const struct rup_state *st, char *out, size_t cap)
{
    int n = snprintf(out, cap, "max-size=%" PRIu64 ", max-age=%" PRIu32, st->max_size, st->max_age);
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

size_t rup_registry_limit_value(const rup_registry_t *g, char *out, size_t cap)
{
    struct rup_state st = { .max_size = g->max_size, .max_age = g->expiry_s };
    return rup_limit_value(&st, out, cap);
}
