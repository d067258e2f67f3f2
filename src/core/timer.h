/* timer.h - a binary min-heap of deadlines, with O(log n) insert and cancel.
 *
 * The heap knows no clock: callers pass "now" in, which lets the loop read
 * the clock once per iteration and lets tests drive virtual time. Timers are
 * embedded in their owner (a connection, a request) and never allocated by
 * the heap; the heap only allocates its array of pointers. */
#ifndef PORTICO_CORE_TIMER_H
#define PORTICO_CORE_TIMER_H

#include <stddef.h>
#include <stdint.h>

#define TIMER_IDLE SIZE_MAX

struct ptimer;
typedef void (*ptimer_cb)(struct ptimer *t, void *arg);

typedef struct ptimer {
    uint64_t when;      /* deadline, in the caller's time unit */
    uint64_t seq;       /* insertion order: equal deadlines fire FIFO */
    size_t idx;         /* position in the heap, TIMER_IDLE when not armed */
    ptimer_cb cb;
    void *arg;
} ptimer_t;

typedef struct timer_heap {
    ptimer_t **items;
    size_t len, size;
    uint64_t next_seq;
} timer_heap_t;

void timer_init(ptimer_t *t, ptimer_cb cb, void *arg);

static inline int timer_armed(const ptimer_t *t) { return t->idx != TIMER_IDLE; }

void timer_heap_init(timer_heap_t *h);
void timer_heap_dispose(timer_heap_t *h);

/* Arms `t` for deadline `when`, re-arming it if already armed.
 * Returns 0 or -ENOMEM (t is then not armed). */
int timer_heap_add(timer_heap_t *h, ptimer_t *t, uint64_t when);

/* Disarms `t`; a no-op when it is not armed. */
void timer_heap_cancel(timer_heap_t *h, ptimer_t *t);

/* Earliest deadline, or UINT64_MAX when the heap is empty. */
uint64_t timer_heap_next(const timer_heap_t *h);

/* Fires every timer whose deadline is <= now, earliest first. Each timer is
 * disarmed before its callback runs, so the callback may re-arm it, cancel
 * others or free its owner. Timers armed by a callback for a deadline <= now
 * fire in the same call. Returns the number fired. */
size_t timer_heap_run(timer_heap_t *h, uint64_t now);

#endif
