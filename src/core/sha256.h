/* sha256.h - SHA-256 (FIPS 180-4), with the x86 SHA extensions when the CPU
 * has them.
 *
 * libsodium's SHA-256 is portable C (~400 MB/s here); the SHA instructions
 * (Intel since Goldmont/Ice Lake, AMD since Zen) run the compression
 * function several times faster, and a file transfer that hashes every byte
 * on both ends spends most of its CPU there. Without them, this is
 * libsodium's implementation behind the same calls. The digest is the same
 * either way (tests/unit/test_sha256.c checks it against libsodium). */
#ifndef PORTICO_CORE_SHA256_H
#define PORTICO_CORE_SHA256_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

typedef struct sha256 {
    int ni;                           /* the SHA-instruction path */
    union {
        crypto_hash_sha256_state sodium;
        struct {
            uint32_t h[8];
            uint8_t buf[64];
            size_t fill;              /* bytes in buf */
            uint64_t total;           /* bytes hashed */
        } x;
    } u;
} sha256_t;

void sha256_init(sha256_t *s);
void sha256_update(sha256_t *s, const void *data, size_t len);
void sha256_final(sha256_t *s, uint8_t out[SHA256_LEN]);

/* 1 when the SHA-instruction path is in use on this CPU. */
int sha256_accelerated(void);

#endif
