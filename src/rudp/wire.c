/* wire.c - rudp packet encode/decode and CRC32C. */
#include "rudp/wire.h"

#include <errno.h>
#include <string.h>

/* ------------------------------------------------------------- CRC32C */

#define CRC32C_POLY 0x82F63B78u  /* reflected Castagnoli polynomial */

static uint32_t crc_table[256];
static int crc_table_ready;

static void crc_table_build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_table[i] = c;
    }
    crc_table_ready = 1;
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t len)
{
    if (!crc_table_ready)
        crc_table_build();
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t rudp_crc32c(uint32_t crc, const void *buf, size_t len)
{
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return ~crc_hw(crc, buf, len);
#endif
    return ~crc_soft(crc, buf, len);
}

/* ------------------------------------------------------------- helpers */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Body sizes after the common header. */
#define SYN_BODY    (4u + 4u + 4u + 2u + 4u)                 /* src isn wnd mss tsval */
#define COOKIE_BODY (4u + 4u + 4u + RUDP_MAC_LEN + 4u + 4u)  /* time cid isn mac tsval tsecr */
#define ECHO_BODY   (4u + 4u + 4u + 4u + RUDP_MAC_LEN + 4u + 2u + 4u + 4u) /* src isn time srvisn mac wnd mss tsval tsecr */
#define SEG_BODY    20u                                      /* seq ack wnd tsval tsecr */
#define DATA_BODY   8u                                       /* seq tsval */

size_t rudp_encode(const rudp_pkt_t *p, uint8_t *out, size_t cap)
{
    size_t n;
    switch (p->type) {
    case RUDP_T_SYN: n = RUDP_SYN_SIZE; break;
    case RUDP_T_COOKIE: n = RUDP_HDR_LEN + COOKIE_BODY; break;
    case RUDP_T_ECHO: n = RUDP_HDR_LEN + ECHO_BODY; break;
    case RUDP_T_SEG:
        if (p->nsack > RUDP_SACK_MAX)
            return 0;
        n = RUDP_SEG_HDR_LEN + 8u * p->nsack + p->len + p->len2;
        break;
    case RUDP_T_DATA:
        if (p->nsack)
            return 0;
        n = RUDP_DATA_HDR_LEN + p->len + p->len2;
        break;
    case RUDP_T_RST: n = RUDP_HDR_LEN; break;
    default: return 0;
    }
    if (n > cap)
        return 0;
    memset(out, 0, n < RUDP_SEG_HDR_LEN ? n : RUDP_SEG_HDR_LEN);
    out[0] = RUDP_VERSION;
    out[1] = p->type;
    out[2] = p->flags;
    out[3] = p->type == RUDP_T_SEG ? p->nsack : 0;   /* DATA: always 0 */
    put32(out + 4, p->dst_cid);
    uint8_t *b = out + RUDP_HDR_LEN;
    switch (p->type) {
    case RUDP_T_SYN:
        put32(b, p->src_cid); put32(b + 4, p->isn); put32(b + 8, p->wnd);
        put16(b + 12, p->mss); put32(b + 14, p->tsval);
        memset(b + SYN_BODY, 0, n - RUDP_HDR_LEN - SYN_BODY);
        break;
    case RUDP_T_COOKIE:
        put32(b, p->cookie_time); put32(b + 4, p->srv_cid); put32(b + 8, p->srv_isn);
        memcpy(b + 12, p->mac, RUDP_MAC_LEN);
        put32(b + 12 + RUDP_MAC_LEN, p->tsval); put32(b + 16 + RUDP_MAC_LEN, p->tsecr);
        break;
    case RUDP_T_ECHO:
        put32(b, p->src_cid); put32(b + 4, p->peer_isn); put32(b + 8, p->cookie_time);
        put32(b + 12, p->srv_isn); memcpy(b + 16, p->mac, RUDP_MAC_LEN);
        b += 16 + RUDP_MAC_LEN;
        put32(b, p->wnd); put16(b + 4, p->mss); put32(b + 6, p->tsval);
        put32(b + 10, p->tsecr);
        break;
    case RUDP_T_SEG:
        put32(b, p->seq); put32(b + 4, p->ack); put32(b + 8, p->wnd);
        put32(b + 12, p->tsval); put32(b + 16, p->tsecr);
        b += SEG_BODY;
        for (unsigned i = 0; i < p->nsack; i++, b += 8) {
            put32(b, p->sack[i].start);
            put32(b + 4, p->sack[i].end);
        }
        if (p->len)
            memcpy(b, p->data, p->len);
        if (p->len2)
            memcpy(b + p->len, p->data2, p->len2);
        break;
    case RUDP_T_DATA:
        put32(b, p->seq); put32(b + 4, p->tsval);
        b += DATA_BODY;
        if (p->len)
            memcpy(b, p->data, p->len);
        if (p->len2)
            memcpy(b + p->len, p->data2, p->len2);
        break;
    }
    put32(out + 8, 0);
    put32(out + 8, rudp_crc32c(0, out, n));
    return n;
}

int rudp_decode(const uint8_t *buf, size_t len, rudp_pkt_t *p)
{
    if (len < RUDP_HDR_LEN)
        return -EMSGSIZE;
    if (buf[0] != RUDP_VERSION)
        return -EBADMSG;
    /* CRC over the packet with the CRC field zeroed, without copying it. */
    static const uint8_t zero4[4];
    uint32_t crc = rudp_crc32c(0, buf, 8);
    crc = rudp_crc32c(crc, zero4, 4);
    crc = rudp_crc32c(crc, buf + RUDP_HDR_LEN, len - RUDP_HDR_LEN);
    if (crc != get32(buf + 8))
        return -EBADMSG;
    memset(p, 0, offsetof(rudp_pkt_t, sack));
    p->data = p->data2 = NULL;
    p->len = p->len2 = 0;
    p->type = buf[1];
    p->flags = buf[2];
    p->dst_cid = get32(buf + 4);
    const uint8_t *b = buf + RUDP_HDR_LEN;
    size_t blen = len - RUDP_HDR_LEN;
    switch (p->type) {
    case RUDP_T_SYN:
        if (len < RUDP_SYN_SIZE)
            return -EMSGSIZE;
        p->src_cid = get32(b); p->isn = get32(b + 4); p->wnd = get32(b + 8);
        p->mss = get16(b + 12); p->tsval = get32(b + 14);
        break;
    case RUDP_T_COOKIE:
        if (blen < COOKIE_BODY)
            return -EMSGSIZE;
        p->cookie_time = get32(b); p->srv_cid = get32(b + 4); p->srv_isn = get32(b + 8);
        memcpy(p->mac, b + 12, RUDP_MAC_LEN);
        p->tsval = get32(b + 12 + RUDP_MAC_LEN); p->tsecr = get32(b + 16 + RUDP_MAC_LEN);
        break;
    case RUDP_T_ECHO:
        if (blen < ECHO_BODY)
            return -EMSGSIZE;
        p->src_cid = get32(b); p->peer_isn = get32(b + 4); p->cookie_time = get32(b + 8);
        p->srv_isn = get32(b + 12); memcpy(p->mac, b + 16, RUDP_MAC_LEN);
        b += 16 + RUDP_MAC_LEN;
        p->wnd = get32(b); p->mss = get16(b + 4); p->tsval = get32(b + 6);
        p->tsecr = get32(b + 10);
        break;
    case RUDP_T_SEG:
        if (blen < SEG_BODY)
            return -EMSGSIZE;
        p->nsack = buf[3];
        if (p->nsack > RUDP_SACK_MAX)
            return -EBADMSG;
        if (blen < SEG_BODY + 8u * p->nsack)
            return -EMSGSIZE;
        p->seq = get32(b); p->ack = get32(b + 4); p->wnd = get32(b + 8);
        p->tsval = get32(b + 12); p->tsecr = get32(b + 16);
        b += SEG_BODY;
        for (unsigned i = 0; i < p->nsack; i++, b += 8) {
            p->sack[i].start = get32(b);
            p->sack[i].end = get32(b + 4);
        }
        p->data = b;
        p->len = blen - SEG_BODY - 8u * p->nsack;
        if (p->len > RUDP_MSS_MAX)
            return -EBADMSG;
        break;
    case RUDP_T_DATA:
        if (blen < DATA_BODY)
            return -EMSGSIZE;
        if (buf[3] != 0)
            return -EBADMSG;
        p->seq = get32(b); p->tsval = get32(b + 4);
        p->data = b + DATA_BODY;
        p->len = blen - DATA_BODY;
        if (p->len > RUDP_MSS_MAX)
            return -EBADMSG;
        break;
    case RUDP_T_RST:
        break;
    default:
        return -EBADMSG;
    }
    return 0;
}
