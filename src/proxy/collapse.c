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
};

struct centry {
    struct centry *next;
    struct waiter *waiters;
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

int collapse_join(collapse_t *c, slice_t key, loop_t *l, void (*wake)(loop_t *, void *), void *arg)
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
            e->klen = key.len;
            memcpy(e->key, key.p, key.len);
            *pp = e;
            rc = 1;
        }
    } else {
        struct waiter *w = malloc(sizeof *w);
        if (w == NULL) {
            rc = -1;
        } else {
            w->loop = l;
            w->wake = wake;
            w->arg = arg;
            w->next = (*pp)->waiters;
            (*pp)->waiters = w;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
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
    while (e->waiters != NULL) {
        struct waiter *w = e->waiters;
        e->waiters = w->next;
        /* A failed post leaves that client waiting until its timeout. */
        loop_post(w->loop, w->wake, w->arg);
        free(w);
    }
    free(e);
}
