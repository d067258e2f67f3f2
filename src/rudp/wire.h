/* wire.h - the rudp packet format: encode, decode, CRC32C.
 *
 * Every packet starts with a 12-byte common header; all integers are
 * big-endian. The CRC32C covers the whole packet with its own field read as
 * zero, so corruption that UDP's 16-bit sum misses is still caught. The
 * table of fields is in docs/xfer.md. Decoders are pure: (buf, len) in, a
 * filled struct or an error out; they never read past len. */
#ifndef PORTICO_RUDP_WIRE_H
#define PORTICO_RUDP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "rudp/limits.h"

enum rudp_type {
    RUDP_T_SYN = 1,      /* client -> listener: open, padded to RUDP_SYN_SIZE */
    RUDP_T_COOKIE = 2,   /* listener -> client: stateless challenge */
    RUDP_T_ECHO = 3,     /* client -> listener: the cookie back; state is made */
    RUDP_T_SEG = 4,      /* data and/or acknowledgement */
    RUDP_T_RST = 5,      /* abort; also the answer for an unknown connection id */
    RUDP_T_DATA = 6,     /* data with nothing new to acknowledge: seq and tsval only */
};

/* SEG flags */
#define RUDP_F_FIN    0x01u  /* the segment carries the FIN (one sequence number) */
#define RUDP_F_ACKREQ 0x02u  /* answer with an ACK at once (zero-window probe) */
#define RUDP_F_EARLY  0x04u  /* sent right behind the ECHO: unknown connection -> drop, no RST */

#define RUDP_HDR_LEN     12u
#define RUDP_SEG_HDR_LEN (RUDP_HDR_LEN + 20u)
#define RUDP_DATA_HDR_LEN (RUDP_HDR_LEN + 8u)
#define RUDP_MAC_LEN     16u

typedef struct rudp_sack { uint32_t start, end; } rudp_sack_t;

typedef struct rudp_pkt {
    uint8_t type, flags;
    uint32_t dst_cid;
    /* SYN, ECHO */
    uint32_t src_cid;
    uint32_t isn;        /* sender's initial sequence number */
    uint32_t wnd;        /* SYN/ECHO: receive window; SEG: RCV.WND */
    uint16_t mss;
    /* COOKIE, ECHO */
    uint32_t cookie_time;      /* listener's clock, seconds */
    uint32_t srv_cid, srv_isn;
    uint8_t mac[RUDP_MAC_LEN];
    uint32_t peer_isn;         /* ECHO: the client's ISN again */
    /* SEG (DATA: seq, tsval, payload) */
    uint32_t seq, ack;
    uint32_t tsval, tsecr;     /* all types carry tsval; SEG/COOKIE tsecr */
    uint8_t nsack;
    rudp_sack_t sack[RUDP_SACK_MAX];
    const uint8_t *data;       /* decode: points into the buffer */
    size_t len;
    const uint8_t *data2;      /* encode only: payload continues here (a ring wrapped) */
    size_t len2;
} rudp_pkt_t;

/* Wrap-safe sequence comparison (RFC 1982 style, 32 bits). */
static inline int seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline int seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline int seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline int seq_ge(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }

/* CRC32C (Castagnoli), hardware instruction when the CPU has SSE4.2. */
uint32_t rudp_crc32c(uint32_t crc, const void *buf, size_t len);

/* Encodes p into out (cap bytes); for SEG, the payload p->data/p->len and
 * then p->data2/p->len2 is copied after the header. Returns the packet length, or 0 when cap is too
 * small. The CRC is filled in. */
size_t rudp_encode(const rudp_pkt_t *p, uint8_t *out, size_t cap);

/* Decodes buf. Returns 0, or a negative code: -EBADMSG (bad CRC, version,
 * type or field), -EMSGSIZE (shorter than its type needs). p->data points
 * into buf. */
int rudp_decode(const uint8_t *buf, size_t len, rudp_pkt_t *p);

#endif
