/* test_loop.c - the event loop: io callbacks, deferred frees, timers on the
 * real clock, posts from other threads. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/loop.h"

struct pair {
    io_t io;
    loop_defer_t d;
    int reads;
    int *freed;
};

static void pair_free(void *arg)
{
    struct pair *p = arg;
    (*p->freed)++;
    free(p);
}

/* Two registered fds ready in the same batch; the first callback closes
 * the second. The second's stale event must be skipped, and the memory of
 * both freed only after the batch. */
static struct pair *victim;
static int callbacks;

static void on_read(io_t *io, uint32_t ev)
{
    (void)ev;
    struct pair *p = io->arg;
    char b[16];
    callbacks++;
    while (read(io->fd, b, sizeof b) > 0)
        p->reads++;
    if (victim != NULL && victim != p) {
        loop_io_close(&victim->io);
        loop_defer(io->loop, &victim->d, pair_free, victim);
        victim = NULL;
    }
    loop_io_close(io);
    loop_defer(io->loop, &p->d, pair_free, p);
    loop_defer(io->loop, &p->d, pair_free, p); /* queued once only */
}

static void on_stop_timer(ptimer_t *t, void *arg)
{
    (void)t;
    loop_break(arg);
}

static void test_stale_events_are_skipped(void **state)
{
    (void)state;
    loop_t *l = loop_new();
    assert_non_null(l);
    int freed = 0;
    int sv[2][2];
    struct pair *p[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv[i]), 0);
        p[i] = calloc(1, sizeof *p[i]);
        p[i]->freed = &freed;
        assert_int_equal(loop_io_add(l, &p[i]->io, sv[i][0], EPOLLIN | EPOLLET, on_read, p[i]), 0);
        assert_int_equal(write(sv[i][1], "x", 1), 1);
    }
    victim = p[1]; /* whichever runs first closes the other */
    callbacks = 0;
    ptimer_t stop;
    timer_init(&stop, on_stop_timer, l);
    loop_timer_set(l, &stop, 50);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(callbacks, 1);
    assert_int_equal(freed, 2);
    close(sv[0][1]);
    close(sv[1][1]);
    loop_free(l);
}

/* Timers on the loop fire after at least their delay, in order. */
static uint64_t fire_times[3];
static int nfired;
static loop_t *tl;
static void on_t(ptimer_t *t, void *arg)
{
    (void)t;
    fire_times[(intptr_t)arg] = loop_now(tl);
    if (++nfired == 3)
        loop_break(tl);
}

static void test_timers_fire_in_order(void **state)
{
    (void)state;
    tl = loop_new();
    ptimer_t t[3];
    nfired = 0;
    uint64_t start = loop_now(tl);
    static const int delays[3] = { 30, 10, 20 };
    for (int i = 0; i < 3; i++) {
        timer_init(&t[i], on_t, (void *)(intptr_t)i);
        loop_timer_set(tl, &t[i], (uint64_t)delays[i]);
    }
    ptimer_t never;
    timer_init(&never, on_t, (void *)(intptr_t)0);
    loop_timer_set(tl, &never, 5);
    loop_timer_cancel(tl, &never);
    assert_int_equal(loop_run(tl), 0);
    assert_int_equal(nfired, 3);
    for (int i = 0; i < 3; i++)
        assert_true(fire_times[i] >= start + (uint64_t)delays[i]);
    assert_true(fire_times[1] <= fire_times[2] && fire_times[2] <= fire_times[0]);
    loop_free(tl);
}

/* Posts from other threads run on the loop's thread, all of them. */
#define POSTERS 4
#define POSTS 2000
static int post_count;
static pthread_t loop_thread;

static void on_post(loop_t *l, void *arg)
{
    (void)arg;
    assert_true(pthread_equal(pthread_self(), loop_thread));
    if (++post_count == POSTERS * POSTS)
        loop_break(l);
}

static void *poster(void *arg)
{
    for (int i = 0; i < POSTS; i++)
        assert_int_equal(loop_post(arg, on_post, NULL), 0);
    return NULL;
}

static void test_posts_from_threads(void **state)
{
    (void)state;
    loop_t *l = loop_new();
    pthread_t th[POSTERS];
    post_count = 0;
    loop_thread = pthread_self();
    for (int i = 0; i < POSTERS; i++)
        pthread_create(&th[i], NULL, poster, l);
    assert_int_equal(loop_run(l), 0);
    for (int i = 0; i < POSTERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(post_count, POSTERS * POSTS);
    loop_free(l);
}

/* A deferred function queued but never run is run by loop_free. */
static void count_free(void *arg)
{
    (*(int *)arg)++;
}

static void test_free_runs_deferred(void **state)
{
    (void)state;
    loop_t *l = loop_new();
    loop_defer_t d = { 0 };
    int n = 0;
    loop_defer(l, &d, count_free, &n);
    loop_free(l);
    assert_int_equal(n, 1);
}

/* Deferred functions run in the order queued, including those queued while
 * the list runs (after the ones already there). */
struct order {
    char seen[16];
    size_t n;
    loop_defer_t d[4];
    loop_t *l;
};

static void mark(struct order *o, char c)
{
    if (o->n < sizeof o->seen - 1)
        o->seen[o->n++] = c;
}

static void mark_d(void *arg) { mark(arg, 'd'); }
static void mark_a(void *arg) { mark(arg, 'a'); }
static void mark_b(void *arg)
{
    struct order *o = arg;
    mark(o, 'b');
    loop_defer(o->l, &o->d[3], mark_d, o); /* queued during the pass */
}
static void mark_c(void *arg) { mark(arg, 'c'); }

static void test_deferred_run_in_order(void **state)
{
    (void)state;
    struct order o;
    memset(&o, 0, sizeof o);
    o.l = loop_new();
    assert_non_null(o.l);
    loop_defer(o.l, &o.d[0], mark_a, &o);
    loop_defer(o.l, &o.d[1], mark_b, &o);
    loop_defer(o.l, &o.d[2], mark_c, &o);
    loop_defer(o.l, &o.d[0], mark_a, &o); /* already queued: no-op */
    loop_free(o.l);
    assert_string_equal(o.seen, "abcd");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_events_are_skipped),
        cmocka_unit_test(test_timers_fire_in_order),
        cmocka_unit_test(test_posts_from_threads),
        cmocka_unit_test(test_free_runs_deferred),
        cmocka_unit_test(test_deferred_run_in_order),
    };
    return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
