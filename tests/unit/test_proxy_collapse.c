/* test_proxy_collapse.c - request collapsing (src/proxy/collapse.c): one
 * leader per key, waiters woken on their own loops (from another thread
 * too) once the leader is done, keys kept apart, a key free again after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <string.h>
#include <cmocka.h>

#include "core/loop.h"
#include "proxy/collapse.h"

static int woken[8];

static void wake(loop_t *l, void *arg)
{
    (void)l;
    woken[(intptr_t)arg]++;
}

static void stop(ptimer_t *t, void *arg)
{
    (void)t;
    loop_break(arg);
}

static void run_once(loop_t *l)
{
    /* Runs what was posted; a timer makes sure run returns. */
    ptimer_t t;
    timer_init(&t, stop, l);
    loop_timer_set(l, &t, 50);
    loop_run(l);
    loop_timer_cancel(l, &t);
}

static void test_leader_and_waiters(void **state)
{
    (void)state;
    memset(woken, 0, sizeof woken);
    loop_t *l = loop_new();
    collapse_t *c = collapse_new();
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/x"), l, wake, (void *)0), 1);
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/x"), l, wake, (void *)1), 0);
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/x"), l, wake, (void *)2), 0);
    /* Another key has its own leader. */
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/y"), l, wake, (void *)3), 1);
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/y"), l, wake, (void *)4), 0);
    /* A prefix is another key. */
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/"), l, wake, (void *)5), 1);

    collapse_done(c, SLICE_LIT("http://a/x"));
    run_once(l);
    assert_int_equal(woken[1], 1);
    assert_int_equal(woken[2], 1);
    assert_int_equal(woken[4], 0);
    assert_int_equal(woken[0] + woken[3] + woken[5], 0); /* leaders are never woken */
    /* The key is free: the next miss leads again. */
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/x"), l, wake, (void *)6), 1);
    collapse_done(c, SLICE_LIT("http://a/y"));
    collapse_done(c, SLICE_LIT("http://nothing"));   /* no such key: nothing happens */
    run_once(l);
    assert_int_equal(woken[4], 1);
    assert_int_equal(woken[1], 1);
    collapse_done(c, SLICE_LIT("http://a/x"));
    collapse_done(c, SLICE_LIT("http://a/"));
    collapse_free(c);
    loop_free(l);
}

struct other {
    collapse_t *c;
};

static void *done_from_thread(void *arg)
{
    struct other *o = arg;
    collapse_done(o->c, SLICE_LIT("k"));
    return NULL;
}

static void test_wake_across_threads(void **state)
{
    (void)state;
    memset(woken, 0, sizeof woken);
    loop_t *l = loop_new();
    collapse_t *c = collapse_new();
    assert_int_equal(collapse_join(c, SLICE_LIT("k"), l, wake, (void *)0), 1);
    assert_int_equal(collapse_join(c, SLICE_LIT("k"), l, wake, (void *)7), 0);
    struct other o = { c };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, done_from_thread, &o), 0);
    pthread_join(t, NULL);
    assert_int_equal(woken[7], 0); /* not inline: on the waiter's loop */
    run_once(l);
    assert_int_equal(woken[7], 1);
    collapse_free(c);
    loop_free(l);
}

static void test_free_with_waiters(void **state)
{
    (void)state;
    loop_t *l = loop_new();
    collapse_t *c = collapse_new();
    collapse_join(c, SLICE_LIT("k"), l, wake, (void *)0);
    collapse_join(c, SLICE_LIT("k"), l, wake, (void *)1);
    collapse_free(c); /* frees its entries and waiters (ASan checks) */
    loop_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leader_and_waiters),
        cmocka_unit_test(test_wake_across_threads),
        cmocka_unit_test(test_free_with_waiters),
    };
    return cmocka_run_group_tests_name("proxy_collapse", tests, NULL, NULL);
}
