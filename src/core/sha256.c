/* sha256.c - SHA-256 on the x86 SHA extensions, libsodium otherwise.
 *
 * The SHA instructions keep the eight working variables in two registers,
 * ordered (A, B, E, F) and (C, D, G, H) from the high lane down:
 * SHA256RNDS2 runs two rounds and returns the new (A, B, E, F), the old one
 * becoming (C, D, G, H); SHA256MSG1/MSG2 extend the message schedule four
 * words at a time. */
#include "core/sha256.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define SHA256_HAVE_X86 1
#endif

/* FIPS 180-4 4.2.2: the first 32 bits of the fractional parts of the cube
 * roots of the first 64 primes. */
static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u,
    0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u,
    0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu,
    0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u,
    0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u,
    0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u,
    0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
    0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

/* 5.3.3: the same of the square roots of the first 8 primes. */
static const uint32_t H0[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
    0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
};

#ifdef SHA256_HAVE_X86
static int cpu_has_sha(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1))
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return (b >> 29) & 1;   /* CPUID.7.0:EBX.SHA */
}

/* Compresses n 64-byte blocks into h. */
__attribute__((target("sha,sse4.1,ssse3")))
static void blocks_x86(uint32_t h[8], const uint8_t *p, size_t n)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bll, 0x0405060700010203ll);
    __m128i t = _mm_loadu_si128((const __m128i *)&h[0]);      /* D C B A */
    __m128i cdgh = _mm_loadu_si128((const __m128i *)&h[4]);   /* H G F E */
    t = _mm_shuffle_epi32(t, 0xB1);                           /* C D A B */
    cdgh = _mm_shuffle_epi32(cdgh, 0x1B);                     /* E F G H */
    __m128i abef = _mm_alignr_epi8(t, cdgh, 8);               /* A B E F */
    cdgh = _mm_blend_epi16(cdgh, t, 0xF0);                    /* C D G H */
    for (; n; n--, p += 64) {
        __m128i abef0 = abef, cdgh0 = cdgh, m[4];
        for (int g = 0; g < 16; g++) {
            __m128i w;
            if (g < 4) {
                w = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), bswap);
            } else {
                /* W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16] */
                w = _mm_sha256msg1_epu32(m[g & 3], m[(g + 1) & 3]);
                w = _mm_add_epi32(w, _mm_alignr_epi8(m[(g + 3) & 3], m[(g + 2) & 3], 4));
                w = _mm_sha256msg2_epu32(w, m[(g + 3) & 3]);
            }
            m[g & 3] = w;
            __m128i wk = _mm_add_epi32(w, _mm_loadu_si128((const __m128i *)&K[4 * g]));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);     /* now A B E F */
            wk = _mm_shuffle_epi32(wk, 0x0E);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, wk);     /* A B E F again */
        }
        abef = _mm_add_epi32(abef, abef0);
        cdgh = _mm_add_epi32(cdgh, cdgh0);
    }
    t = _mm_shuffle_epi32(abef, 0x1B);                        /* F E B A */
    cdgh = _mm_shuffle_epi32(cdgh, 0xB1);                     /* D C H G */
    abef = _mm_blend_epi16(t, cdgh, 0xF0);                    /* D C B A */
    cdgh = _mm_alignr_epi8(cdgh, t, 8);                       /* H G F E */
    _mm_storeu_si128((__m128i *)&h[0], abef);
    _mm_storeu_si128((__m128i *)&h[4], cdgh);
}
#endif

int sha256_accelerated(void)
{
#ifdef SHA256_HAVE_X86
    static int cached = -1;
    if (cached < 0)
        cached = cpu_has_sha();
    return cached;
#else
    return 0;
#endif
}

void sha256_init(sha256_t *s)
{
    memset(s, 0, sizeof *s);
    s->ni = sha256_accelerated();
    if (!s->ni) {
        crypto_hash_sha256_init(&s->u.sodium);
        return;
    }
    memcpy(s->u.x.h, H0, sizeof H0);
}

void sha256_update(sha256_t *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (!s->ni) {
        crypto_hash_sha256_update(&s->u.sodium, p, len);
        return;
    }
#ifdef SHA256_HAVE_X86
    s->u.x.total += len;
    if (s->u.x.fill) {
        size_t take = 64 - s->u.x.fill < len ? 64 - s->u.x.fill : len;
        memcpy(s->u.x.buf + s->u.x.fill, p, take);
        s->u.x.fill += take;
        p += take;
        len -= take;
        if (s->u.x.fill < 64)
            return;
        blocks_x86(s->u.x.h, s->u.x.buf, 1);
        s->u.x.fill = 0;
    }
    if (len >= 64) {
        blocks_x86(s->u.x.h, p, len / 64);
        p += len & ~(size_t)63;
        len &= 63;
    }
    memcpy(s->u.x.buf, p, len);
    s->u.x.fill = len;
#endif
}

void sha256_final(sha256_t *s, uint8_t out[SHA256_LEN])
{
    if (!s->ni) {
        crypto_hash_sha256_final(&s->u.sodium, out);
        return;
    }
#ifdef SHA256_HAVE_X86
    /* 5.1.1: a 1 bit, zeros, and the length in bits as 64 bits */
    uint64_t bits = s->u.x.total * 8;
    uint8_t pad[72] = { 0x80 };
    size_t padlen = (s->u.x.fill < 56 ? 56 : 120) - s->u.x.fill;
    for (int i = 0; i < 8; i++)
        pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t total = s->u.x.total;
    sha256_update(s, pad, padlen + 8);
    s->u.x.total = total;
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->u.x.h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->u.x.h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->u.x.h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->u.x.h[i];
    }
#endif
}
