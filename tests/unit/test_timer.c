/* test_timer.c - the timer heap under virtual time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "core/timer.h"

#define N 100000

struct rec {
    ptimer_t t;
    uint64_t due;        /* expected deadline, 0 when cancelled */
    int fired;
    uint64_t fired_at;
};

static uint64_t now;
static uint64_t last_fire;

static void on_fire(ptimer_t *t, void *arg)
{
    struct rec *r = arg;
    (void)t;
    r->fired++;
    r->fired_at = now;
    /* Earliest first, across the whole run. */
    assert_true(t->when >= last_fire);
    last_fire = t->when;
}

/* Rand without libc's global state, so a failure replays. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_random_schedule_and_cancel(void **state)
{
    (void)state;
    timer_heap_t h;
    struct rec *recs = calloc(N, sizeof *recs);
    size_t *order = malloc(N * sizeof *order);
    assert_non_null(recs);
    assert_non_null(order);
    timer_heap_init(&h);
    now = 1000;
    last_fire = 0;

    for (size_t i = 0; i < N; i++) {
        timer_init(&recs[i].t, on_fire, &recs[i]);
        recs[i].due = now + 1 + next_rand() % 50000;
        assert_int_equal(timer_heap_add(&h, &recs[i].t, recs[i].due), 0);
        order[i] = i;
    }
    assert_int_equal(h.len, N);
    /* Cancel half, in random order; re-arm a tenth of those at a new time. */
    for (size_t i = N - 1; i > 0; i--) {
        size_t j = next_rand() % (i + 1);
        size_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    size_t live = N;
    for (size_t k = 0; k < N / 2; k++) {
        struct rec *r = &recs[order[k]];
        timer_heap_cancel(&h, &r->t);
        assert_false(timer_armed(&r->t));
        timer_heap_cancel(&h, &r->t); /* twice is harmless */
        r->due = 0;
        live--;
        if (k % 10 == 0) {
            r->due = now + 1 + next_rand() % 50000;
            assert_int_equal(timer_heap_add(&h, &r->t, r->due), 0);
            live++;
        }
    }
    assert_int_equal(h.len, live);

    /* Advance virtual time in uneven steps; nothing fires early or twice. */
    size_t fired = 0;
    while (now <= 1000 + 50001) {
        now += 1 + next_rand() % 97;
        fired += timer_heap_run(&h, now);
        assert_true(timer_heap_next(&h) > now);
    }
    assert_int_equal(fired, live);
    assert_int_equal(h.len, 0);
    for (size_t i = 0; i < N; i++) {
        if (recs[i].due == 0) {
            assert_int_equal(recs[i].fired, 0);
        } else {
            assert_int_equal(recs[i].fired, 1);
            assert_true(recs[i].fired_at >= recs[i].due);
            /* Fired in the first step that reached its deadline. */
            assert_true(recs[i].fired_at - recs[i].due < 97);
        }
    }
    timer_heap_dispose(&h);
    free(order);
    free(recs);
}

static void test_rearm_moves_deadline(void **state)
{
    (void)state;
    timer_heap_t h;
    struct rec a = { 0 };
    timer_heap_init(&h);
    timer_init(&a.t, on_fire, &a);
    now = 0;
    last_fire = 0;
    assert_int_equal(timer_heap_add(&h, &a.t, 10), 0);
    assert_int_equal(timer_heap_add(&h, &a.t, 30), 0); /* re-arm, not a second entry */
    assert_int_equal(h.len, 1);
    assert_int_equal(timer_heap_next(&h), 30);
    now = 29;
    assert_int_equal(timer_heap_run(&h, now), 0);
    now = 30;
    assert_int_equal(timer_heap_run(&h, now), 1);
    assert_int_equal(a.fired, 1);
    assert_int_equal(timer_heap_next(&h), UINT64_MAX);
    timer_heap_dispose(&h);
}

/* Equal deadlines fire in the order they were armed. */
static int fifo_log[8], fifo_n;
static void on_fifo(ptimer_t *t, void *arg)
{
    (void)t;
    fifo_log[fifo_n++] = (int)(intptr_t)arg;
}

static void test_equal_deadlines_fifo(void **state)
{
    (void)state;
    timer_heap_t h;
    ptimer_t t[8];
    timer_heap_init(&h);
    fifo_n = 0;
    for (int i = 0; i < 8; i++) {
        timer_init(&t[i], on_fifo, (void *)(intptr_t)i);
        timer_heap_add(&h, &t[i], 5);
    }
    assert_int_equal(timer_heap_run(&h, 5), 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(fifo_log[i], i);
    timer_heap_dispose(&h);
}

/* A callback may re-arm itself and cancel others. */
static timer_heap_t cb_heap;
static ptimer_t cb_a, cb_b;
static int cb_a_count, cb_b_count;
static void on_a(ptimer_t *t, void *arg)
{
    (void)arg;
    cb_a_count++;
    timer_heap_cancel(&cb_heap, &cb_b);
    if (cb_a_count < 3)
        timer_heap_add(&cb_heap, t, t->when + 10);
}
static void on_b(ptimer_t *t, void *arg)
{
    (void)t;
    (void)arg;
    cb_b_count++;
}

static void test_callback_rearm_and_cancel(void **state)
{
    (void)state;
    timer_heap_init(&cb_heap);
    timer_init(&cb_a, on_a, NULL);
    timer_init(&cb_b, on_b, NULL);
    cb_a_count = cb_b_count = 0;
    timer_heap_add(&cb_heap, &cb_a, 10);
    timer_heap_add(&cb_heap, &cb_b, 10); /* same deadline, after a: cancelled by a */
    assert_int_equal(timer_heap_run(&cb_heap, 100), 3);
    assert_int_equal(cb_a_count, 3);
    assert_int_equal(cb_b_count, 0);
    timer_heap_dispose(&cb_heap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_schedule_and_cancel),
        cmocka_unit_test(test_rearm_moves_deadline),
        cmocka_unit_test(test_equal_deadlines_fifo),
        cmocka_unit_test(test_callback_rearm_and_cancel),
    };
    return cmocka_run_group_tests_name("timer", tests, NULL, NULL);
}
