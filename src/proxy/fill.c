/* fill.c - a response read by collapsed waiters while it is stored. */
#include "proxy/fill.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct pfill {
    atomic_int refs;
    pthread_mutex_t mu;
    pstore_obj_t *obj;
    uint64_t total;
    int state;                   /* PFILL_DATA while filling, then END or FAILED */
    struct pfill_waiter *parked;
};

pfill_t *pfill_new(pstore_obj_t *o, uint64_t total)
{
    pfill_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    atomic_init(&f->refs, 1);
    pthread_mutex_init(&f->mu, NULL);
    pstore_obj_ref(o);
    f->obj = o;
    f->total = total;
    f->state = PFILL_DATA;
    return f;
}

void pfill_ref(pfill_t *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void pfill_release(pfill_t *f)
{
    if (f == NULL || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    pstore_obj_release(f->obj);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

pstore_obj_t *pfill_obj(const pfill_t *f)
{
    return f->obj;
}

uint64_t pfill_total(const pfill_t *f)
{
    return f->total;
}

/* Posts every parked reader's wake (outside the lock). */
static void wake_all(struct pfill_waiter *w)
{
    while (w != NULL) {
        struct pfill_waiter *next = w->next; /* w may be reused once posted */
        /* A failed post leaves that reader until its client's timeout. */
        loop_post(w->loop, w->wake, w->arg);
        w = next;
    }
}

int pfill_append(pfill_t *f, const char *p, size_t n, uint64_t max)
{
    pthread_mutex_lock(&f->mu);
    int rc = pstore_obj_append(f->obj, p, n, max);
    if (rc < 0)
        f->state = PFILL_FAILED;
    struct pfill_waiter *w = f->parked;
    f->parked = NULL;
    pthread_mutex_unlock(&f->mu);
    wake_all(w);
    return rc;
}

void pfill_end(pfill_t *f, int ok)
{
    pthread_mutex_lock(&f->mu);
    if (f->state == PFILL_DATA)
        f->state = ok && f->obj->body_len == f->total ? PFILL_END : PFILL_FAILED;
    struct pfill_waiter *w = f->parked;
    f->parked = NULL;
    pthread_mutex_unlock(&f->mu);
    wake_all(w);
}

int pfill_read(pfill_t *f, uint64_t *off, size_t max, void (*out)(void *ctx, const char *p, size_t n),
               void *ctx, struct pfill_waiter *w)
{
    int rc;
    pthread_mutex_lock(&f->mu);
    const pstore_obj_t *o = f->obj;
    if (*off < o->body_len) {
        uint64_t n = o->body_len - *off;
        if (n > max)
            n = max;
        out(ctx, o->body + *off, (size_t)n);
        *off += n;
        rc = PFILL_DATA;
    } else if (f->state != PFILL_DATA) {
        rc = f->state;
    } else {
        w->next = f->parked;
        f->parked = w;
        rc = PFILL_PARKED;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

int pfill_unpark(pfill_t *f, struct pfill_waiter *w)
{
    int found = 0;
    pthread_mutex_lock(&f->mu);
    for (struct pfill_waiter **pp = &f->parked; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return found;
}
