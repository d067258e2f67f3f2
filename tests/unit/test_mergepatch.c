/* test_mergepatch.c - JSON Merge Patch against the examples of RFC 7396
 * Appendix A. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "http/mergepatch.h"

static const char *const cases[][3] = {
    /* original, patch, result */
    { "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
    { "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}" },
    { "{\"a\":\"b\"}", "{\"a\":null}", "{}" },
    { "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}" },
    { "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
    { "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}" },
    { "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}" },
    { "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}" },
    { "[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]" },
    { "{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]" },
    { "{\"a\":\"foo\"}", "null", "null" },
    { "{\"a\":\"foo\"}", "\"bar\"", "\"bar\"" },
    { "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}" },
    { "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}" },
    { "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}" },
};

static void test_rfc7396_examples(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_error_t err;
        json_t *target = json_loads(cases[i][0], JSON_DECODE_ANY, &err);
        json_t *patch = json_loads(cases[i][1], JSON_DECODE_ANY, &err);
        json_t *want = json_loads(cases[i][2], JSON_DECODE_ANY, &err);
        assert_non_null(target);
        assert_non_null(patch);
        assert_non_null(want);
        json_t *got = merge_patch(target, patch);
        assert_non_null(got);
        if (!json_equal(got, want)) {
            char *s = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
            fail_msg("case %zu: got %s, want %s", i, s, cases[i][2]);
        }
        json_decref(got);
        json_decref(patch);
        json_decref(want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7396_examples),
    };
    return cmocka_run_group_tests_name("mergepatch", tests, NULL, NULL);
}
