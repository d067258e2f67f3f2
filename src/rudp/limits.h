/* limits.h - every cap, default and timeout of the rudp transport.
 *
 * Times are in microseconds (the engine's clock unit) unless the name says
 * otherwise; sizes are in bytes. Commands expose the ones a user may need to
 * change as options (see src/cmd/xfer.c). */
#ifndef PORTICO_RUDP_LIMITS_H
#define PORTICO_RUDP_LIMITS_H

/* Wire format version carried in every packet (2: the DATA type). */
#define RUDP_VERSION            2

/* Payload bytes per data packet: 1400 + 32 header + 28 IP/UDP stays under a
 * 1500-byte Ethernet MTU with room for tunnels. */
#define RUDP_MSS_DEFAULT        1400u
#define RUDP_MSS_MIN            64u
#define RUDP_MSS_MAX            16384u
/* Largest packet the engine writes or accepts (MSS + header + SACK blocks). */
#define RUDP_PKT_MAX            (RUDP_MSS_MAX + 256u)

/* Send and receive buffers of one connection. The receive buffer is the
 * largest window a receiver can advertise. */
#define RUDP_SNDBUF_DEFAULT     (8u << 20)
#define RUDP_RCVBUF_DEFAULT     (8u << 20)
#define RUDP_BUF_MIN            (4u << 10)
#define RUDP_BUF_MAX            (256u << 20)

/* Segments the sender tracks between SND.UNA and SND.NXT. */
#define RUDP_SEGS_MAX           32768u
/* SACK blocks in one ACK, and out-of-order ranges a receiver keeps. */
#define RUDP_SACK_MAX           16u
#define RUDP_OOO_MAX            256u

/* A SYN is padded to this size, and nothing the listener sends before it
 * holds state is larger: a spoofed source gets no amplification. */
#define RUDP_SYN_SIZE           96u

/* Retransmission timeout, RFC 6298: initial 1 s, doubled per expiry up to
 * the max. The floor is 200 ms instead of the RFC's 1 s, as in Linux: the
 * RFC's floor assumed coarse clocks. */
#define RUDP_RTO_INIT_US        1000000u
#define RUDP_RTO_MIN_US         200000u
#define RUDP_RTO_MAX_US         60000000u
/* Clock granularity G of RFC 6298 2.3. */
#define RUDP_CLOCK_G_US         1000u
/* Handshake packets sent before the connect fails with ETIMEDOUT. */
#define RUDP_SYN_RETRIES        7u
/* Consecutive RTO expiries with no progress before ETIMEDOUT. */
#define RUDP_RTO_RETRIES        12u
/* Timeouts after which a side whose peer has closed gives up on its own
 * last flight (data and FIN, or the FIN alone). */
#define RUDP_FIN_RETRIES        3u

/* A data-less segment goes out after this long without sending anything. */
#define RUDP_KEEPALIVE_US       5000000u
/* The connection fails with ETIMEDOUT after this long without receiving. */
#define RUDP_IDLE_TIMEOUT_US    30000000u
/* Cookies older than this are refused (seconds). */
#define RUDP_COOKIE_LIFE_S      30u

/* A receiver acknowledges every second full segment at once, and any other
 * segment after at most this long. */
#define RUDP_DELACK_US          1000u
#define RUDP_ACK_EVERY          2u

/* Zero-window probes: first after this long, doubled up to the max. */
#define RUDP_PERSIST_MIN_US     200000u
#define RUDP_PERSIST_MAX_US     2000000u

/* A segment is lost once this many segments above it were SACKed (RFC 6675
 * DupThresh), or once a later-sent one was delivered and RTT + RTT/4 passed
 * (RACK, RFC 8985). */
#define RUDP_DUPTHRESH          3u
#define RUDP_REO_WND_MIN_US     1000u

/* A tail loss probe waits 2 SRTT, and at least this long. */
#define RUDP_TLP_MIN_US         10000u

/* Initial congestion window, in segments (RFC 6928). */
#define RUDP_INIT_CWND_SEGS     10u
#define RUDP_MIN_CWND_SEGS      4u
/* Pacing lets at most this much send time accumulate as a burst. */
#define RUDP_PACING_BURST_US    1000u

#endif
