/* test_http_upload.c - the resumable-upload fields (src/http/upload.c):
 * Structured Field Boolean and Integer Items with and without parameters,
 * the whole-field-ignored rule, repeated fields, and the media type of an
 * append. Every value is placed right before a PROT_NONE page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "guard.h"

#include "http/upload.h"

static guard_t g;

static int setup(void **state)
{
    (void)state;
    guard_init(&g, 1u << 12);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    guard_dispose(&g);
    return 0;
}

static slice_t at_guard(const char *s)
{
    size_t n = strlen(s);
    return slice_make(guard_put(&g, s, n), n);
}

struct bool_case {
    const char *in;
    int ok, value;
};

static void test_sf_bool(void **state)
{
    (void)state;
    static const struct bool_case cases[] = {
        { "?1", 1, 1 }, { "?0", 1, 0 },
        { "?1;a", 1, 1 }, { "?0;a=1;b=?0", 1, 0 }, { "?1; x=\"s\\\"q\"", 1, 1 },
        { "?1;k=tok/en:x", 1, 1 }, { "?1;k=2.5", 1, 1 }, { "?1;k=:aGk=:", 1, 1 }, { "?1;*k", 1, 1 },
        /* not a Boolean Item: the field is ignored */
        { "", 0, 0 }, { "?", 0, 0 }, { "?2", 0, 0 }, { "1", 0, 0 }, { "true", 0, 0 },
        { "?T", 0, 0 }, { "??1", 0, 0 }, { "?1 ", 0, 0 }, { "?10", 0, 0 }, { "?1,?0", 0, 0 },
        { "?1;", 0, 0 }, { "?1;A=1", 0, 0 }, { "?1;a=", 0, 0 }, { "?1;a=\"x", 0, 0 },
        { "?1;a=\"\\x\"", 0, 0 }, { "?1;a=:aGk=", 0, 0 }, { "?1;a=1.", 0, 0 }, { "?1;a=1.2345", 0, 0 },
        { "?1;a=?", 0, 0 }, { "?1;a=@", 0, 0 }, { "?1 ;a", 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int v = -7;
        int rc = http_sf_bool(at_guard(cases[i].in), &v);
        if ((rc == 0) != cases[i].ok || (rc == 0 && v != cases[i].value)) {
            print_error("http_sf_bool(\"%s\") = %d, %d\n", cases[i].in, rc, v);
            fail();
        }
        if (rc != 0)
            assert_int_equal(v, -7); /* untouched on failure */
    }
}

struct uint_case {
    const char *in;
    int ok;
    int64_t value;
};

static void test_sf_uint(void **state)
{
    (void)state;
    static const struct uint_case cases[] = {
        { "0", 1, 0 }, { "7", 1, 7 }, { "007", 1, 7 }, { "1000000", 1, 1000000 },
        { "999999999999999", 1, 999999999999999LL }, { "42;p", 1, 42 }, { "42;p=?1;q=-3", 1, 42 },
        /* a 16th digit, a sign, a Decimal, other types, junk: ignored */
        { "1000000000000000", 0, 0 }, { "-1", 0, 0 }, { "-0", 1, 0 }, { "+1", 0, 0 },
        { "1.0", 0, 0 }, { "1.", 0, 0 }, { "\"1\"", 0, 0 }, { "?1", 0, 0 }, { "", 0, 0 },
        { " 1", 0, 0 }, { "1 ", 0, 0 }, { "1,2", 0, 0 }, { "1x", 0, 0 }, { "0x10", 0, 0 },
        { "1;", 0, 0 }, { "1;P", 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -7;
        int rc = http_sf_uint(at_guard(cases[i].in), &v);
        if ((rc == 0) != cases[i].ok || (rc == 0 && v != cases[i].value)) {
            print_error("http_sf_uint(\"%s\") = %d, %lld\n", cases[i].in, rc, (long long)v);
            fail();
        }
    }
}

static void check_fields(http_field_t *f, size_t n, int complete, int64_t offset, int64_t length)
{
    http_request_t q;
    memset(&q, 0, sizeof q);
    q.fields = f;
    q.nfields = n;
    struct http_upload_fields u;
    http_upload_fields(&q, &u);
    assert_int_equal(u.complete, complete);
    assert_int_equal(u.offset, offset);
    assert_int_equal(u.length, length);
}

#define F(n, v) { SLICE_LIT(n), SLICE_LIT(v) }

static void test_request_fields(void **state)
{
    (void)state;
    http_field_t none[] = { F("Content-Length", "5") };
    check_fields(none, 1, -1, -1, -1);
    http_field_t all[] = { F("upload-complete", "?0"), F("UPLOAD-OFFSET", "12"), F("Upload-Length", "99") };
    check_fields(all, 3, 0, 12, 99);
    /* an invalid value makes that field absent, not the others */
    http_field_t bad[] = { F("Upload-Complete", "yes"), F("Upload-Offset", "-5"), F("Upload-Length", "7") };
    check_fields(bad, 3, -1, -1, 7);
    /* on two lines the field is a list, not an Item: ignored */
    http_field_t twice[] = { F("Upload-Offset", "1"), F("Upload-Complete", "?1"), F("Upload-Offset", "1") };
    check_fields(twice, 3, 1, -1, -1);
}

static void test_partial_upload_type(void **state)
{
    (void)state;
    assert_true(http_is_partial_upload(at_guard("application/partial-upload")));
    assert_true(http_is_partial_upload(at_guard("Application/Partial-Upload")));
    assert_true(http_is_partial_upload(at_guard("application/partial-upload; x=1")));
    assert_true(http_is_partial_upload(at_guard("application/partial-upload;x=1")));
    assert_false(http_is_partial_upload(at_guard("application/partial-uploads")));
    assert_false(http_is_partial_upload(at_guard("application/partial-uploa")));
    assert_false(http_is_partial_upload(at_guard("application/octet-stream")));
    assert_false(http_is_partial_upload(at_guard("")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sf_bool),
        cmocka_unit_test(test_sf_uint),
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_partial_upload_type),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
