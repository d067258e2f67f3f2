/* collapse.c - one upstream request per key for concurrent misses. */
#include "proxy/collapse.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define COLLAPSE_BUCKETS 256u

struct waiter {
    struct waiter *next;
    loop_t *loop;
    void (*wake)(loop_t *, void *);
    void *arg;
    pfill_t **fill;
};

struct centry {
    struct centry *next;
    struct waiter *waiters;
    pfill_t *fill;               /* published by the leader, or NULL */
    size_t klen;
    char key[];
};

struct collapse {
    pthread_mutex_t mu;
    struct centry *b[COLLAPSE_BUCKETS];
};

static unsigned bucket(slice_t k)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < k.len; i++)
        h = (h ^ (unsigned char)k.p[i]) * 16777619u;
    return h % COLLAPSE_BUCKETS;
}

collapse_t *collapse_new(void)
{
    collapse_t *c = calloc(1, sizeof *c);
    if (c != NULL)
        pthread_mutex_init(&c->mu, NULL);
    return c;
}

void collapse_free(collapse_t *c)
{
    if (c == NULL)
        return;
    for (unsigned i = 0; i < COLLAPSE_BUCKETS; i++) {
        while (c->b[i] != NULL) {
            struct centry *e = c->b[i];
            c->b[i] = e->next;
            while (e->waiters) {
                struct waiter *w = e->waiters;
                e->waiters = w->next;
                free(w);
            }
            pfill_release(e->fill);
            free(e);
        }
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static struct centry **find(collapse_t *c, slice_t key)
{
    struct centry **pp = &c->b[bucket(key)];
    while (*pp != NULL && !((*pp)->klen == key.len && memcmp((*pp)->key, key.p, key.len) == 0))
        pp = &(*pp)->next;
    return pp;
}

int collapse_join(collapse_t *c, slice_t key, loop_t *l, void (*wake)(loop_t *, void *), void *arg,
                  pfill_t **fill)
{
    int rc;
    pthread_mutex_lock(&c->mu);
    struct centry **pp = find(c, key);
    if (*pp == NULL) {
        struct centry *e = malloc(sizeof *e + key.len);
        if (e == NULL) {
            rc = -1;
        } else {
            e->next = NULL;
            e->waiters = NULL;
            e->fill = NULL;
            e->klen = key.len;
            memcpy(e->key, key.p, key.len);
            *pp = e;
            rc = 1;
        }
    } else if ((*pp)->fill != NULL) {
        pfill_ref((*pp)->fill);
        *fill = (*pp)->fill;
        rc = 2;
    } else {
        struct waiter *w = malloc(sizeof *w);
        if (w == NULL) {
            rc = -1;
        } else {
            w->loop = l;
            w->wake = wake;
            w->arg = arg;
            w->fill = fill;
            w->next = (*pp)->waiters;
            (*pp)->waiters = w;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Posts each waiter's wake, with fill (a reference each) when non-NULL. */
static void wake_waiters(struct waiter *w, pfill_t *fill)
{
    while (w != NULL) {
        struct waiter *next = w->next;
        if (fill != NULL) {
            pfill_ref(fill);
            *w->fill = fill; /* seen by the waiter's loop after the post */
        }
        /* A failed post leaves that client waiting until its timeout. */
        loop_post(w->loop, w->wake, w->arg);
        free(w);
        w = next;
    }
}

void collapse_publish(collapse_t *c, slice_t key, pfill_t *fill)
{
    struct waiter *w = NULL;
    pthread_mutex_lock(&c->mu);
    struct centry *e = *find(c, key);
    if (e != NULL && e->fill == NULL) {
        pfill_ref(fill);
        e->fill = fill;
        w = e->waiters;
        e->waiters = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    wake_waiters(w, fill);
}

void collapse_done(collapse_t *c, slice_t key)
{
    pthread_mutex_lock(&c->mu);
    struct centry **pp = find(c, key);
    struct centry *e = *pp;
    if (e != NULL)
        *pp = e->next;
    pthread_mutex_unlock(&c->mu);
    if (e == NULL)
        return;
    wake_waiters(e->waiters, NULL);
    pfill_release(e->fill);
    free(e);
}
