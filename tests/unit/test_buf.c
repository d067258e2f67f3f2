/* test_buf.c - growable buffers with caps, and the block pool. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/pool.h"

static void test_append_grows_and_keeps_bytes(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 1 << 20);
    assert_null(b.data);
    char chunk[1000];
    for (int i = 0; i < 1000; i++) {
        memset(chunk, (char)i, sizeof chunk);
        assert_int_equal(buf_append(&b, chunk, sizeof chunk), 0);
    }
    assert_int_equal(b.len, 1000 * 1000);
    assert_true(b.size >= b.len && b.size <= b.cap);
    for (int i = 0; i < 1000; i++)
        assert_int_equal((unsigned char)buf_head(&b)[i * 1000 + 999], (unsigned char)i);
    buf_dispose(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_cap_is_hard(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 100);
    char x[101];
    memset(x, 'x', sizeof x);
    assert_int_equal(buf_append(&b, x, 101), -ENOBUFS);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_append(&b, x, 60), 0);
    assert_int_equal(buf_append(&b, x, 41), -ENOBUFS);
    assert_int_equal(b.len, 60); /* unchanged by the failure */
    assert_int_equal(buf_append(&b, x, 40), 0);
    assert_int_equal(b.len, 100);
    assert_true(b.size <= 100);
    assert_int_equal(buf_reserve(&b, 1), -ENOBUFS);
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOBUFS); /* no overflow */
    buf_dispose(&b);
}

static void test_consume_then_compact(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 64);
    assert_int_equal(buf_append(&b, "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQR", 64), 0);
    char *before = b.data;
    buf_consume(&b, 60);
    assert_int_equal(b.len, 4);
    assert_memory_equal(buf_head(&b), "OPQR", 4);
    /* Room exists only after sliding the 4 bytes to the front. */
    assert_int_equal(buf_append(&b, "abcdefghij", 10), 0);
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.off, 0);
    assert_memory_equal(buf_head(&b), "OPQRabcdefghij", 14);
    buf_consume(&b, 14);
    assert_int_equal(b.off, 0); /* empty resets the offset */
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    buf_dispose(&b);
}

static void test_reserve_commit(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 4096);
    assert_int_equal(buf_reserve(&b, 3000), 0);
    assert_true(buf_room(&b) >= 3000);
    memcpy(buf_tail(&b), "hello", 5);
    buf_commit(&b, 5);
    assert_int_equal(b.len, 5);
    assert_memory_equal(buf_head(&b), "hello", 5);
    buf_dispose(&b);
}

static void test_pool_reuses_and_caps(void **state)
{
    (void)state;
    pool_t p;
    pool_init(&p, 2);
    void *a = pool_get(&p), *b = pool_get(&p), *c = pool_get(&p);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    memset(a, 1, POOL_BLOCK_SIZE); /* the whole block is usable */
    assert_int_equal(p.outstanding, 3);
    pool_put(&p, a);
    pool_put(&p, b);
    pool_put(&p, c); /* over max_free: freed, not kept */
    assert_int_equal(p.nfree, 2);
    assert_int_equal(p.outstanding, 0);
    void *d = pool_get(&p);
    assert_true(d == a || d == b); /* reused, not a new malloc */
    assert_int_equal(p.nfree, 1);
    pool_put(&p, d);
    pool_put(&p, NULL);
    assert_int_equal(p.outstanding, 0);
    pool_dispose(&p);
    assert_int_equal(p.nfree, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grows_and_keeps_bytes),
        cmocka_unit_test(test_cap_is_hard),
        cmocka_unit_test(test_consume_then_compact),
        cmocka_unit_test(test_reserve_commit),
        cmocka_unit_test(test_pool_reuses_and_caps),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
