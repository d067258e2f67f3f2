#include "core/timer.h"

#include <errno.h>
#include <stdlib.h>

void timer_init(ptimer_t *t, ptimer_cb cb, void *arg)
{
    t->when = 0;
    t->seq = 0;
    t->idx = TIMER_IDLE;
    t->cb = cb;
    t->arg = arg;
}

void timer_heap_init(timer_heap_t *h)
{
    h->items = NULL;
    h->len = h->size = 0;
    h->next_seq = 0;
}

void timer_heap_dispose(timer_heap_t *h)
{
    for (size_t i = 0; i < h->len; i++)
        h->items[i]->idx = TIMER_IDLE;
    free(h->items);
    timer_heap_init(h);
}

static int before(const ptimer_t *a, const ptimer_t *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void place(timer_heap_t *h, size_t i, ptimer_t *t)
{
    h->items[i] = t;
    t->idx = i;
}

static void sift_up(timer_heap_t *h, size_t i)
{
    ptimer_t *t = h->items[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(t, h->items[parent]))
            break;
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(timer_heap_t *h, size_t i)
{
    ptimer_t *t = h->items[i];
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        const ptimer_t *bt = t;
        if (l < h->len && before(h->items[l], bt)) {
            best = l;
            bt = h->items[l];
        }
        if (l + 1 < h->len && before(h->items[l + 1], bt))
            best = l + 1;
        if (best == i)
            break;
        place(h, i, h->items[best]);
        i = best;
    }
    place(h, i, t);
}

void timer_heap_cancel(timer_heap_t *h, ptimer_t *t)
{
    size_t i = t->idx;
    if (i == TIMER_IDLE)
        return;
    t->idx = TIMER_IDLE;
    ptimer_t *last = h->items[--h->len];
    if (i == h->len)
        return;
    place(h, i, last);
    if (i > 0 && before(last, h->items[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

int timer_heap_add(timer_heap_t *h, ptimer_t *t, uint64_t when)
{
    timer_heap_cancel(h, t);
    if (h->len == h->size) {
        size_t size = h->size ? h->size * 2 : 64;
        ptimer_t **items = realloc(h->items, size * sizeof *items);
        if (items == NULL)
            return -ENOMEM;
        h->items = items;
        h->size = size;
    }
    t->when = when;
    t->seq = h->next_seq++;
    h->items[h->len] = t;
    t->idx = h->len++;
    sift_up(h, t->idx);
    return 0;
}

uint64_t timer_heap_next(const timer_heap_t *h)
{
    return h->len ? h->items[0]->when : UINT64_MAX;
}

size_t timer_heap_run(timer_heap_t *h, uint64_t now)
{
    size_t fired = 0;
    while (h->len && h->items[0]->when <= now) {
        ptimer_t *t = h->items[0];
        timer_heap_cancel(h, t);
        fired++;
        t->cb(t, t->arg);
    }
    return fired;
}
