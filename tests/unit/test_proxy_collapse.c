/* test_proxy_collapse.c - request collapsing (src/proxy/collapse.c): one
 * leader per key, waiters woken on their own loops (from another thread
 * too) once the leader is done, keys kept apart, a key free again after;
 * a published fill (src/proxy/fill.c) handed to waiters and later
 * joiners, read while it is appended, parked readers woken once. */
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
static pfill_t *slots[8];

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
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/x"), l, wake, (void *)0, &slots[0]), 1);
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/x"), l, wake, (void *)1, &slots[1]), 0);
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/x"), l, wake, (void *)2, &slots[2]), 0);
    /* Another key has its own leader. */
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/y"), l, wake, (void *)3, &slots[3]), 1);
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/y"), l, wake, (void *)4, &slots[4]), 0);
    /* A prefix is another key. */
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/"), l, wake, (void *)5, &slots[5]), 1);

    collapse_done(c, SLICE_LIT("http://a/x"));
    run_once(l);
    assert_int_equal(woken[1], 1);
    assert_int_equal(woken[2], 1);
    assert_int_equal(woken[4], 0);
    assert_int_equal(woken[0] + woken[3] + woken[5], 0); /* leaders are never woken */
    /* The key is free: the next miss leads again. */
    assert_int_equal(collapse_join(c, SLICE_LIT("http://a/x"), l, wake, (void *)6, &slots[6]), 1);
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
    assert_int_equal(collapse_join(c, SLICE_LIT("k"), l, wake, (void *)0, &slots[0]), 1);
    assert_int_equal(collapse_join(c, SLICE_LIT("k"), l, wake, (void *)7, &slots[7]), 0);
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
    collapse_join(c, SLICE_LIT("k"), l, wake, (void *)0, &slots[0]);
    collapse_join(c, SLICE_LIT("k"), l, wake, (void *)1, &slots[1]);
    collapse_free(c); /* frees its entries and waiters (ASan checks) */
    loop_free(l);
}

static int outs;
static char outbuf[64];
static size_t outlen;

static void out(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    memcpy(outbuf + outlen, p, n);
    outlen += n;
    outs++;
}

static pstore_obj_t *new_obj(void)
{
    return pstore_obj_new(SLICE_LIT("k"), SLICE_LIT(""), SLICE_LIT(""), 200, "A: b\r\n", 6, 1, 1);
}

static void test_publish_hands_the_fill(void **state)
{
    (void)state;
    memset(woken, 0, sizeof woken);
    memset(slots, 0, sizeof slots);
    loop_t *l = loop_new();
    collapse_t *c = collapse_new();
    pstore_obj_t *o = new_obj();
    pfill_t *f = pfill_new(o, 10);
    assert_int_equal(collapse_join(c, SLICE_LIT("k"), l, wake, (void *)0, &slots[0]), 1);
    assert_int_equal(collapse_join(c, SLICE_LIT("k"), l, wake, (void *)1, &slots[1]), 0);
    collapse_publish(c, SLICE_LIT("k"), f);
    run_once(l);
    assert_int_equal(woken[1], 1);
    assert_ptr_equal(slots[1], f);
    /* Later misses get it at once, queued nowhere. */
    assert_int_equal(collapse_join(c, SLICE_LIT("k"), l, wake, (void *)2, &slots[2]), 2);
    assert_ptr_equal(slots[2], f);
    collapse_done(c, SLICE_LIT("k"));
    run_once(l);
    assert_int_equal(woken[2], 0);
    /* The key is free again: a new leader. */
    assert_int_equal(collapse_join(c, SLICE_LIT("k"), l, wake, (void *)3, &slots[3]), 1);
    collapse_done(c, SLICE_LIT("k"));
    pfill_release(slots[1]);
    pfill_release(slots[2]);
    pfill_release(f);
    pstore_obj_release(o);
    collapse_free(c);
    loop_free(l);
}

static void test_fill_read_park_wake(void **state)
{
    (void)state;
    memset(woken, 0, sizeof woken);
    outs = 0;
    outlen = 0;
    loop_t *l = loop_new();
    pstore_obj_t *o = new_obj();
    pfill_t *f = pfill_new(o, 10);
    pstore_obj_release(o); /* the fill holds it */
    struct pfill_waiter w = { NULL, l, wake, (void *)1 };
    uint64_t off = 0;
    assert_int_equal(pfill_read(f, &off, 64, out, NULL, &w), PFILL_PARKED);
    assert_int_equal(pfill_append(f, "hello", 5, 100), 0);
    run_once(l);
    assert_int_equal(woken[1], 1); /* woken once by the append */
    /* Reads in slices of at most max. */
    assert_int_equal(pfill_read(f, &off, 3, out, NULL, &w), PFILL_DATA);
    assert_int_equal(pfill_read(f, &off, 3, out, NULL, &w), PFILL_DATA);
    assert_int_equal(off, 5);
    assert_memory_equal(outbuf, "hello", 5);
    assert_int_equal(pfill_read(f, &off, 64, out, NULL, &w), PFILL_PARKED);
    /* A reader leaving takes itself out: no wake comes. */
    assert_int_equal(pfill_unpark(f, &w), 1);
    assert_int_equal(pfill_unpark(f, &w), 0);
    assert_int_equal(pfill_append(f, "world", 5, 100), 0);
    run_once(l);
    assert_int_equal(woken[1], 1);
    pfill_end(f, 1);
    assert_int_equal(pfill_read(f, &off, 64, out, NULL, &w), PFILL_DATA);
    assert_int_equal(pfill_read(f, &off, 64, out, NULL, &w), PFILL_END);
    assert_memory_equal(outbuf, "helloworld", 10);
    pfill_release(f);
    loop_free(l);
}

static void test_fill_failures(void **state)
{
    (void)state;
    memset(woken, 0, sizeof woken);
    loop_t *l = loop_new();
    pstore_obj_t *o = new_obj();
    pfill_t *f = pfill_new(o, 10);
    struct pfill_waiter w = { NULL, l, wake, (void *)2 };
    uint64_t off = 0;
    assert_int_equal(pfill_read(f, &off, 64, out, NULL, &w), PFILL_PARKED);
    /* Short of the announced length: an end that is not complete. */
    assert_int_equal(pfill_append(f, "abc", 3, 100), 0);
    pfill_end(f, 1);
    pfill_end(f, 1); /* only the first counts */
    run_once(l);
    assert_int_equal(woken[2], 1);
    assert_int_equal(pfill_read(f, &off, 64, out, NULL, &w), PFILL_DATA);
    assert_int_equal(pfill_read(f, &off, 64, out, NULL, &w), PFILL_FAILED);
    pfill_release(f);
    /* Past max: the append fails and so does the fill. */
    f = pfill_new(o, 10);
    pstore_obj_release(o);
    assert_int_equal(pfill_append(f, "0123456789", 10, 4), -1);
    off = 0;
    assert_int_equal(pfill_read(f, &off, 64, out, NULL, &w), PFILL_DATA); /* "abc" of before */
    assert_int_equal(pfill_read(f, &off, 64, out, NULL, &w), PFILL_FAILED);
    pfill_release(f);
    loop_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leader_and_waiters),
        cmocka_unit_test(test_wake_across_threads),
        cmocka_unit_test(test_free_with_waiters),
        cmocka_unit_test(test_publish_hands_the_fill),
        cmocka_unit_test(test_fill_read_park_wake),
        cmocka_unit_test(test_fill_failures),
    };
    return cmocka_run_group_tests_name("proxy_collapse", tests, NULL, NULL);
}
