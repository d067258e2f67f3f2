/* test_rudp_wire.c - the rudp packet codec and the xfer messages: round
 * trips, every truncation, every single-bit corruption, CRC32C check
 * values, file names that must be refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rudp/wire.h"
#include "rudp/xfermsg.h"

/* RFC 3720 B.4 check values for CRC32C. */
static void test_crc32c_vectors(void **state)
{
    (void)state;
    uint8_t zeros[32] = { 0 }, ones[32], inc[32];
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    assert_int_equal(rudp_crc32c(0, zeros, 32), 0x8A9136AAu);
    assert_int_equal(rudp_crc32c(0, ones, 32), 0x62A8AB43u);
    assert_int_equal(rudp_crc32c(0, inc, 32), 0x46DD794Eu);
    assert_int_equal(rudp_crc32c(0, "123456789", 9), 0xE3069283u);
    /* incremental = one shot, across odd splits */
    uint32_t c = rudp_crc32c(0, "1234", 4);
    c = rudp_crc32c(c, "56789", 5);
    assert_int_equal(c, 0xE3069283u);
}

static size_t sample_seg(uint8_t *out, size_t cap)
{
    rudp_pkt_t p;
    memset(&p, 0, sizeof p);
    p.type = RUDP_T_SEG;
    p.flags = RUDP_F_FIN;
    p.dst_cid = 0x01020304;
    p.seq = 0xFFFFFFF0u;
    p.ack = 77;
    p.wnd = 65536;
    p.tsval = 123456;
    p.tsecr = 654321;
    p.nsack = 2;
    p.sack[0].start = 100; p.sack[0].end = 200;
    p.sack[1].start = 300; p.sack[1].end = 400;
    p.data = (const uint8_t *)"hello ";
    p.len = 6;
    p.data2 = (const uint8_t *)"world";
    p.len2 = 5;
    return rudp_encode(&p, out, cap);
}

static void test_seg_round_trip(void **state)
{
    (void)state;
    uint8_t buf[RUDP_PKT_MAX];
    size_t n = sample_seg(buf, sizeof buf);
    assert_int_equal(n, RUDP_SEG_HDR_LEN + 16 + 11);
    rudp_pkt_t q;
    assert_int_equal(rudp_decode(buf, n, &q), 0);
    assert_int_equal(q.type, RUDP_T_SEG);
    assert_int_equal(q.flags, RUDP_F_FIN);
    assert_int_equal(q.dst_cid, 0x01020304);
    assert_int_equal(q.seq, 0xFFFFFFF0u);
    assert_int_equal(q.ack, 77);
    assert_int_equal(q.wnd, 65536);
    assert_int_equal(q.tsval, 123456);
    assert_int_equal(q.tsecr, 654321);
    assert_int_equal(q.nsack, 2);
    assert_int_equal(q.sack[1].end, 400);
    assert_int_equal(q.len, 11);
    assert_memory_equal(q.data, "hello world", 11);
    /* too small a buffer: nothing written */
    assert_int_equal(sample_seg(buf, n - 1), 0);
}

static size_t sample_data(uint8_t *out, size_t cap)
{
    rudp_pkt_t p;
    memset(&p, 0, sizeof p);
    p.type = RUDP_T_DATA;
    p.flags = RUDP_F_FIN | RUDP_F_EARLY;
    p.dst_cid = 0x0A0B0C0D;
    p.seq = 0xFFFFFFFEu;
    p.tsval = 424242;
    p.data = (const uint8_t *)"abc";
    p.len = 3;
    p.data2 = (const uint8_t *)"defg";
    p.len2 = 4;
    return rudp_encode(&p, out, cap);
}

/* DATA: 20 bytes of header (TCP's without options), then the payload; no
 * ack, window, tsecr or SACK, and a nonzero SACK count is refused. */
static void test_data_round_trip(void **state)
{
    (void)state;
    uint8_t buf[RUDP_PKT_MAX];
    size_t n = sample_data(buf, sizeof buf);
    assert_int_equal(RUDP_DATA_HDR_LEN, 20);
    assert_int_equal(n, RUDP_DATA_HDR_LEN + 7);
    rudp_pkt_t q;
    assert_int_equal(rudp_decode(buf, n, &q), 0);
    assert_int_equal(q.type, RUDP_T_DATA);
    assert_int_equal(q.flags, RUDP_F_FIN | RUDP_F_EARLY);
    assert_int_equal(q.dst_cid, 0x0A0B0C0D);
    assert_int_equal(q.seq, 0xFFFFFFFEu);
    assert_int_equal(q.tsval, 424242);
    assert_int_equal(q.ack, 0);
    assert_int_equal(q.tsecr, 0);
    assert_int_equal(q.nsack, 0);
    assert_int_equal(q.len, 7);
    assert_memory_equal(q.data, "abcdefg", 7);
    assert_int_equal(sample_data(buf, n - 1), 0);
    /* a SACK count in a DATA packet: refused, even with a good CRC */
    buf[3] = 1;
    memset(buf + 8, 0, 4);
    uint32_t c = rudp_crc32c(0, buf, n);
    buf[8] = (uint8_t)(c >> 24); buf[9] = (uint8_t)(c >> 16);
    buf[10] = (uint8_t)(c >> 8); buf[11] = (uint8_t)c;
    assert_int_equal(rudp_decode(buf, n, &q), -EBADMSG);
    /* and the encoder will not write one */
    rudp_pkt_t p;
    memset(&p, 0, sizeof p);
    p.type = RUDP_T_DATA;
    p.nsack = 1;
    assert_int_equal(rudp_encode(&p, buf, sizeof buf), 0);
}

/* Every single-bit flip anywhere in the packet is caught. */
static void test_every_bit_flip_rejected(void **state)
{
    (void)state;
    uint8_t buf[RUDP_PKT_MAX];
    rudp_pkt_t q;
    for (int k = 0; k < 2; k++) {
        size_t n = k ? sample_data(buf, sizeof buf) : sample_seg(buf, sizeof buf);
        for (size_t i = 0; i < n; i++)
            for (int b = 0; b < 8; b++) {
                buf[i] ^= (uint8_t)(1u << b);
                assert_int_not_equal(rudp_decode(buf, n, &q), 0);
                buf[i] ^= (uint8_t)(1u << b);
            }
        assert_int_equal(rudp_decode(buf, n, &q), 0);
    }
}

/* Every truncation of every packet type fails cleanly (the CRC covers the
 * length too, but a short header must fail before reading past it). */
static void test_truncations(void **state)
{
    (void)state;
    uint8_t buf[RUDP_PKT_MAX];
    rudp_pkt_t p, q;
    int types[] = { RUDP_T_SYN, RUDP_T_COOKIE, RUDP_T_ECHO, RUDP_T_SEG, RUDP_T_RST, RUDP_T_DATA };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        memset(&p, 0, sizeof p);
        p.type = (uint8_t)types[t];
        p.dst_cid = 9;
        size_t n = rudp_encode(&p, buf, sizeof buf);
        assert_true(n >= RUDP_HDR_LEN);
        assert_int_equal(rudp_decode(buf, n, &q), 0);
        assert_int_equal(q.type, types[t]);
        for (size_t k = 0; k < n; k++)
            assert_int_not_equal(rudp_decode(buf, k, &q), 0);
    }
    /* a SYN is never shorter than RUDP_SYN_SIZE: no amplification */
    memset(&p, 0, sizeof p);
    p.type = RUDP_T_SYN;
    assert_int_equal(rudp_encode(&p, buf, sizeof buf), RUDP_SYN_SIZE);
}

static void test_bad_version_type_sack_count(void **state)
{
    (void)state;
    uint8_t buf[RUDP_PKT_MAX];
    rudp_pkt_t q;
    size_t n = sample_seg(buf, sizeof buf);
    /* re-sign after each change so that only the field is wrong */
    /* version 1 (before the DATA type) is refused too */
    uint8_t v[3][2] = { { 0, 1 }, { 1, 99 }, { 3, RUDP_SACK_MAX + 1 } };
    for (int i = 0; i < 3; i++) {
        uint8_t copy[RUDP_PKT_MAX];
        memcpy(copy, buf, n);
        copy[v[i][0]] = v[i][1];
        memset(copy + 8, 0, 4);
        uint32_t c = rudp_crc32c(0, copy, n);
        copy[8] = (uint8_t)(c >> 24); copy[9] = (uint8_t)(c >> 16);
        copy[10] = (uint8_t)(c >> 8); copy[11] = (uint8_t)c;
        assert_int_equal(rudp_decode(copy, n, &q), -EBADMSG);
    }
}

static void test_seq_compare_wraps(void **state)
{
    (void)state;
    assert_true(seq_lt(0xFFFFFFF0u, 0x10u));
    assert_true(seq_gt(0x10u, 0xFFFFFFF0u));
    assert_true(seq_le(5, 5) && seq_ge(5, 5));
    assert_false(seq_lt(0x10u, 0xFFFFFFF0u));
    assert_true(seq_lt(0, 0x7FFFFFFFu));
}

static void test_xfer_header(void **state)
{
    (void)state;
    xfer_hdr_t h, g;
    uint8_t buf[XFER_HDR_MAX];
    memset(&h, 0, sizeof h);
    strcpy(h.name, "report 2024.pdf");
    h.size = 0x0102030405060708ull;
    h.flags = XFER_F_RESUME;
    size_t n = xfer_hdr_encode(&h, buf);
    assert_int_equal(n, 15 + strlen(h.name));
    for (size_t k = 0; k < n; k++)
        assert_int_equal(xfer_hdr_decode(buf, k, &g), 0);   /* need more */
    assert_int_equal(xfer_hdr_decode(buf, n, &g), (int)n);
    assert_string_equal(g.name, h.name);
    assert_true(g.size == h.size);
    assert_int_equal(g.flags, XFER_F_RESUME);
    buf[0] = 'X';
    assert_int_equal(xfer_hdr_decode(buf, n, &g), -1);
    assert_int_equal(xfer_hdr_decode(buf, 2, &g), -1);
}

/* Names that could leave DIR, or collide with temporaries, are refused by
 * the decoder whatever the sender claims. */
static void test_xfer_names(void **state)
{
    (void)state;
    const char *bad[] = { "", ".", "..", "../x", "a/b", "/etc/passwd", "x.part",
                          "tab\there", "nl\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(xfer_name_ok(bad[i], strlen(bad[i])));
        uint8_t buf[XFER_HDR_MAX];
        size_t n = strlen(bad[i]);
        memcpy(buf, XFER_MAGIC, 4);
        buf[4] = 0;
        buf[5] = (uint8_t)n;
        memcpy(buf + 6, bad[i], n);
        memset(buf + 6 + n, 0, 9);
        xfer_hdr_t g;
        assert_int_equal(xfer_hdr_decode(buf, 15 + n, &g), -1);
    }
    assert_false(xfer_name_ok("a\0b", 3));
    const char *good[] = { "a", "...", "a..b", ".hidden", "part", "x.partial", "é" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(xfer_name_ok(good[i], strlen(good[i])));
    char longname[XFER_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname);
    assert_true(xfer_name_ok(longname, XFER_NAME_MAX));
    assert_false(xfer_name_ok(longname, XFER_NAME_MAX + 1));
}

static void test_xfer_reply(void **state)
{
    (void)state;
    uint8_t r[XFER_REPLY_LEN], st;
    uint64_t off;
    xfer_reply_encode(XFER_BAD_DIGEST, 1ull << 40, r);
    xfer_reply_decode(r, &st, &off);
    assert_int_equal(st, XFER_BAD_DIGEST);
    assert_true(off == 1ull << 40);
    assert_string_equal(xfer_status_str(XFER_BAD_DIGEST),
                        "digest mismatch: the receiver discarded the file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_seg_round_trip),
        cmocka_unit_test(test_data_round_trip),
        cmocka_unit_test(test_every_bit_flip_rejected),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_bad_version_type_sack_count),
        cmocka_unit_test(test_seq_compare_wraps),
        cmocka_unit_test(test_xfer_header),
        cmocka_unit_test(test_xfer_names),
        cmocka_unit_test(test_xfer_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
