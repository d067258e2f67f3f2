/* test_http_ranges.c - Range values with several ranges (http_ranges_parse). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "http/cond.h"

static void test_ranges_table(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        uint64_t size;
        int rr;
        size_t n;
        uint64_t r[4][2];
    } cases[] = {
        { "bytes=0-1,3-4", 10, HTTP_RANGE_OK, 2, { { 0, 1 }, { 3, 4 } } },
        { "bytes=0-1, 3-4 ,-2", 10, HTTP_RANGE_OK, 3, { { 0, 1 }, { 3, 4 }, { 8, 9 } } },
        { "bytes=,0-0,,", 10, HTTP_RANGE_OK, 1, { { 0, 0 } } },
        { "bytes=0-1,50-60", 10, HTTP_RANGE_OK, 1, { { 0, 1 } } },
        { "bytes=50-60,70-", 10, HTTP_RANGE_UNSATISFIABLE, 0, { { 0 } } },
        { "bytes=5-2,0-1", 10, HTTP_RANGE_IGNORE, 0, { { 0 } } },
        { "bytes=0-1,x", 10, HTTP_RANGE_IGNORE, 0, { { 0 } } },
        { "items=0-1,2-3", 10, HTTP_RANGE_IGNORE, 0, { { 0 } } },
        { "bytes=", 10, HTTP_RANGE_IGNORE, 0, { { 0 } } },
        { "bytes=0-1,2-3,4-5,6-7,8-9", 10, HTTP_RANGE_IGNORE, 0, { { 0 } } }, /* over max 4 */
        { "bytes=9-100,-100", 10, HTTP_RANGE_OK, 2, { { 9, 9 }, { 0, 9 } } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_byte_range out[4];
        size_t n = 99;
        int rr = http_ranges_parse(slice_cstr(cases[i].v), cases[i].size, out, 4, &n);
        if (rr != cases[i].rr)
            fail_msg("%s: result %d, want %d", cases[i].v, rr, cases[i].rr);
        if (rr == HTTP_RANGE_OK) {
            assert_int_equal(n, cases[i].n);
            for (size_t k = 0; k < n; k++) {
                assert_int_equal(out[k].first, cases[i].r[k][0]);
                assert_int_equal(out[k].last, cases[i].r[k][1]);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges_table),
    };
    return cmocka_run_group_tests_name("http_ranges", tests, NULL, NULL);
}
