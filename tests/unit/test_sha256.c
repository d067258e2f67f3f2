/* test_sha256.c - core/sha256 against FIPS 180-4 vectors and libsodium, over
 * every length up to a few blocks and random split points. On a CPU with
 * the SHA instructions this checks that path; on others, the fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/sha256.h"

static void digest(const void *d, size_t n, uint8_t out[SHA256_LEN])
{
    sha256_t s;
    sha256_init(&s);
    sha256_update(&s, d, n);
    sha256_final(&s, out);
}

static void hex(const uint8_t *d, char *out)
{
    for (int i = 0; i < SHA256_LEN; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_vectors(void **state)
{
    (void)state;
    uint8_t d[SHA256_LEN];
    char h[2 * SHA256_LEN + 1];
    print_message("    SHA instructions: %s\n", sha256_accelerated() ? "yes" : "no");
    digest("", 0, d);
    hex(d, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    digest("abc", 3, d);
    hex(d, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    digest(two, strlen(two), d);
    hex(d, h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* Every length 0..300 in one piece, and random data in random pieces, give
 * libsodium's digest. */
static void test_matches_libsodium(void **state)
{
    (void)state;
    static uint8_t buf[70000];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    uint8_t a[SHA256_LEN], b[SHA256_LEN];
    for (size_t n = 0; n <= 300; n++) {
        digest(buf, n, a);
        crypto_hash_sha256(b, buf, n);
        assert_memory_equal(a, b, SHA256_LEN);
    }
    for (int round = 0; round < 200; round++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t n = (size_t)(x % sizeof buf), off = 0;
        sha256_t s;
        sha256_init(&s);
        while (off < n) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t k = (size_t)(x % 200);
            if (k > n - off)
                k = n - off;
            sha256_update(&s, buf + off, k);
            off += k;
        }
        sha256_final(&s, a);
        crypto_hash_sha256(b, buf, n);
        assert_memory_equal(a, b, SHA256_LEN);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_matches_libsodium),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
