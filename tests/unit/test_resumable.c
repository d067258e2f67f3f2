/* test_resumable.c - the registry of upload resources (src/server/
 * resumable.c) without any network: offsets, the one-writer rule, lengths,
 * completion, cancellation, expiry and the size limit, on a real unnamed
 * temporary file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "server/resumable.h"

static const struct http_cond no_cond;

static int tmpfile_fd(void)
{
    int fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    assert_true(fd >= 0);
    return fd;
}

static void read_back(int fd, const char *want, size_t n)
{
    char buf[256];
    assert_true(n <= sizeof buf);
    assert_int_equal(pread(fd, buf, n, 0), (ssize_t)n);
    assert_memory_equal(buf, want, n);
}

static void test_append_resume_complete(void **state)
{
    (void)state;
    rup_registry_t *g = rup_registry_new(4, 3600, 1000);
    assert_non_null(g);
    int tmp = tmpfile_fd();
    uint64_t gen;
    rup_t *u = rup_create(g, "/a/b.txt", HTTP_M_PUT, tmp, 10, &no_cond, &gen);
    assert_non_null(u);
    assert_int_equal(strlen(rup_id(u)), RUP_ID_LEN);
    assert_int_equal(rup_append(u, gen, "0123", 4), 0);
    /* the connection breaks: the writer lets go, the data stays */
    int fd;
    struct rup_state st;
    const char *why;
    assert_int_equal(rup_end(u, gen, 0, &fd, &st, &why), 0);
    assert_int_equal(fd, -1);
    assert_int_equal(st.offset, 4);
    rup_release(g, u);

    char id[RUP_ID_LEN + 1];
    memcpy(id, rup_id(u), sizeof id);
    u = rup_find(g, id, RUP_ID_LEN);
    assert_non_null(u);
    assert_null(rup_find(g, "0123456789abcdef0123456789abcdef", RUP_ID_LEN));
    assert_null(rup_find(g, id, RUP_ID_LEN - 1));
    assert_int_equal(rup_query(u, &st), 0);
    assert_int_equal(st.offset, 4);
    assert_int_equal(st.length, 10);
    assert_false(st.complete);
    assert_int_equal(st.max_size, 1000);
    assert_int_equal(st.max_age, 3600);
    /* a wrong offset: 409 with the right one */
    uint64_t g2;
    assert_int_equal(rup_claim(u, 3, -1, -1, &g2, &st, &why), 409);
    assert_int_equal(st.offset, 4);
    /* a length other than the known one */
    assert_int_equal(rup_claim(u, 4, 11, -1, &g2, &st, &why), 400);
    assert_string_equal(why, "length");
    assert_int_equal(rup_claim(u, 4, 10, 6, &g2, &st, &why), 0);
    assert_int_equal(rup_append(u, g2, "456789", 6), 0);
    assert_int_equal(rup_end(u, g2, 1, &fd, &st, &why), 0);
    assert_true(fd >= 0);
    assert_true(st.complete);
    read_back(fd, "0123456789", 10);
    close(fd);
    /* complete: no more appends, but it still answers */
    assert_int_equal(rup_claim(u, 10, -1, 0, &g2, &st, &why), 400);
    assert_string_equal(why, "completed");
    assert_int_equal(rup_query(u, &st), 0);
    assert_true(st.complete);
    enum http_method m;
    struct http_cond c;
    assert_string_equal(rup_target(u, &m, &c), "/a/b.txt");
    assert_int_equal(m, HTTP_M_PUT);
    rup_release(g, u);
    close(tmp);
    rup_registry_free(g);
}

static void test_one_writer(void **state)
{
    (void)state;
    rup_registry_t *g = rup_registry_new(4, 3600, 1000);
    int tmp = tmpfile_fd();
    uint64_t old, newer;
    rup_t *u = rup_create(g, "/x", HTTP_M_POST, tmp, -1, &no_cond, &old);
    assert_int_equal(rup_append(u, old, "aa", 2), 0);
    struct rup_state st;
    const char *why;
    /* a HEAD takes over: the old writer's next bytes are refused */
    assert_int_equal(rup_query(u, &st), 0);
    assert_int_equal(st.offset, 2);
    assert_int_equal(rup_append(u, old, "bb", 2), 409);
    /* and so does an append */
    assert_int_equal(rup_claim(u, 2, -1, -1, &newer, &st, &why), 0);
    assert_int_equal(rup_append(u, newer, "cc", 2), 0);
    int fd;
    assert_int_equal(rup_end(u, old, 1, &fd, &st, &why), 409); /* the old one cannot complete it */
    assert_int_equal(fd, -1);
    assert_int_equal(rup_end(u, newer, 1, &fd, &st, &why), 0);
    read_back(fd, "aacc", 4);
    close(fd);
    rup_release(g, u);
    close(tmp);
    rup_registry_free(g);
}

static void test_length_and_size_limits(void **state)
{
    (void)state;
    rup_registry_t *g = rup_registry_new(4, 3600, 8);
    int tmp = tmpfile_fd();
    uint64_t gen;
    struct rup_state st;
    const char *why;
    int fd;
    /* past max-size: 413, nothing written, the upload stays */
    rup_t *u = rup_create(g, "/x", HTTP_M_PUT, tmp, -1, &no_cond, &gen);
    assert_int_equal(rup_append(u, gen, "123456789", 9), 413);
    assert_int_equal(rup_query(u, &st), 0);
    assert_int_equal(st.offset, 0);
    assert_int_equal(rup_claim(u, 0, -1, 9, &gen, &st, &why), 413);
    assert_int_equal(rup_claim(u, 0, 9, -1, &gen, &st, &why), 413);
    rup_release(g, u);
    /* past the length: the upload is invalid */
    u = rup_create(g, "/y", HTTP_M_PUT, tmp, 3, &no_cond, &gen);
    assert_int_equal(rup_append(u, gen, "1234", 4), 400);
    assert_int_equal(rup_query(u, &st), 404);
    rup_release(g, u);
    /* complete but short of the length: invalid too */
    u = rup_create(g, "/z", HTTP_M_PUT, tmp, 5, &no_cond, &gen);
    assert_int_equal(rup_append(u, gen, "12", 2), 0);
    assert_int_equal(rup_end(u, gen, 1, &fd, &st, &why), 400);
    assert_string_equal(why, "length");
    assert_int_equal(rup_query(u, &st), 404);
    rup_release(g, u);
    close(tmp);
    rup_registry_free(g);
}

static void test_cancel_capacity_expiry(void **state)
{
    (void)state;
    rup_registry_t *g = rup_registry_new(2, 0, 100); /* expiry 0: idle ones go at once */
    int tmp = tmpfile_fd();
    uint64_t g1, g2, g3;
    rup_t *a = rup_create(g, "/a", HTTP_M_PUT, tmp, -1, &no_cond, &g1);
    rup_t *b = rup_create(g, "/b", HTTP_M_PUT, tmp, -1, &no_cond, &g2);
    assert_non_null(a);
    assert_non_null(b);
    /* both have a writer: kept, and the registry is full */
    assert_null(rup_create(g, "/c", HTTP_M_PUT, tmp, -1, &no_cond, &g3));
    /* cancel a: gone for everyone, its writer refused */
    assert_int_equal(rup_cancel(g, a), 0);
    assert_int_equal(rup_cancel(g, a), 404);
    assert_int_equal(rup_append(a, g1, "x", 1), 409);
    char id[RUP_ID_LEN + 1];
    memcpy(id, rup_id(a), sizeof id);
    assert_null(rup_find(g, id, RUP_ID_LEN));
    rup_release(g, a);
    /* b's writer lets go: idle past the expiry, swept at the next use */
    int fd;
    struct rup_state st;
    const char *why;
    assert_int_equal(rup_end(b, g2, 0, &fd, &st, &why), 0);
    memcpy(id, rup_id(b), sizeof id);
    rup_release(g, b);
    rup_registry_sweep(g);
    assert_null(rup_find(g, id, RUP_ID_LEN));
    rup_t *c = rup_create(g, "/c", HTTP_M_PUT, tmp, -1, &no_cond, &g3);
    assert_non_null(c);
    rup_release(g, c);
    char lim[96];
    assert_string_equal((rup_registry_limit_value(g, lim, sizeof lim), lim), "max-size=100, max-age=0");
    close(tmp);
    rup_registry_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_resume_complete),
        cmocka_unit_test(test_one_writer),
        cmocka_unit_test(test_length_and_size_limits),
        cmocka_unit_test(test_cancel_capacity_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
