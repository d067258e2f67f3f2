/* conn.h - one rudp connection: the TCB state machine, sans I/O.
 *
 * The caller owns the socket and the clock. It feeds received packets with
 * rudp_conn_input(), drains packets to send with rudp_conn_output() until it
 * returns 0, and calls rudp_conn_output() again (which runs the due timers)
 * at rudp_conn_deadline(). Application data goes in with rudp_conn_write()
 * and comes out with rudp_conn_read(); rudp_conn_events() says what changed.
 * Times are microseconds of any monotonic clock. Nothing here allocates
 * after rudp_conn_connect()/rudp_conn_accept().
 *
 * Listening is stateless (rudp_listen_input): a SYN is answered with a
 * cookie and no memory; only a valid ECHO of that cookie yields the
 * parameters for rudp_conn_accept(). */
#ifndef PORTICO_RUDP_CONN_H
#define PORTICO_RUDP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "rudp/cc.h"
#include "rudp/wire.h"

typedef struct rudp_cfg {
    uint32_t mss;                 /* payload bytes per segment */
    uint32_t sndbuf, rcvbuf;      /* bytes */
    const struct rudp_cc_ops *cc; /* NULL: bbr */
    uint64_t idle_timeout_us;     /* 0: RUDP_IDLE_TIMEOUT_US */
    uint64_t keepalive_us;        /* 0: RUDP_KEEPALIVE_US */
    uint32_t syn_retries;         /* 0: RUDP_SYN_RETRIES */
    /* Client only: the caller's randomness (the engine has no entropy). */
    uint32_t local_cid, isn;
} rudp_cfg_t;

void rudp_cfg_default(rudp_cfg_t *cfg);

/* The TCB: the notes' fields plus RTT and congestion state. Read-only for
 * callers (statistics, traces). */
typedef struct rudp_tcb {
    uint32_t snd_una;   /* SND.UNA: oldest byte sent and not acknowledged */
    uint32_t snd_nxt;   /* SND.NXT: next byte to send */
    uint32_t snd_wnd;   /* SND.WND: the window the peer advertised last */
    uint32_t rcv_nxt;   /* RCV.NXT: next byte expected */
    uint32_t rcv_wnd;   /* RCV.WND: free receive buffer we advertise */
    uint32_t iss, irs;  /* initial send / receive sequence numbers */
    /* RTT, RFC 6298 */
    uint32_t srtt_us, rttvar_us, rto_us, min_rtt_us, latest_rtt_us;
    rudp_cc_t cc;
    /* counters */
    uint64_t bytes_sent, bytes_retrans, segs_sent, segs_retrans;
    uint64_t pkts_in, pkts_bad, rto_fired, tlp_probes;
    uint64_t inflight;  /* bytes sent, not acked, sacked or deemed lost */
} rudp_tcb_t;

enum rudp_state {
    RUDP_SYN_SENT,      /* client: SYN out, waiting for the cookie */
    RUDP_ECHO_SENT,     /* client: cookie echoed, waiting for the first SEG */
    RUDP_ESTABLISHED,
    RUDP_CLOSED,        /* done or failed: see rudp_conn_error() */
};

/* rudp_conn_events() bits */
#define RUDP_EV_CONNECTED 0x01u  /* handshake complete */
#define RUDP_EV_READABLE  0x02u  /* bytes to read */
#define RUDP_EV_WRITABLE  0x04u  /* send buffer room grew */
#define RUDP_EV_EOF       0x08u  /* the peer's FIN: nothing follows what is buffered */
#define RUDP_EV_CLOSED    0x10u  /* both directions finished, or an error */

typedef struct rudp_conn rudp_conn_t;

/* What a valid ECHO carried: the parameters of a new server connection. */
typedef struct rudp_accept {
    uint32_t local_cid, iss;     /* derived from the cookie */
    uint32_t peer_cid, peer_isn, peer_wnd, tsval;
    uint32_t rtt_us;             /* COOKIE to ECHO, 0 = unknown */
    uint16_t peer_mss;
} rudp_accept_t;

enum rudp_listen_verdict {
    RUDP_L_DROP,    /* nothing to do */
    RUDP_L_REPLY,   /* send `reply` back to the source */
    RUDP_L_ACCEPT,  /* make a connection from `acc` with rudp_conn_accept() */
};

#define RUDP_SECRET_LEN 32

/* Handles a packet whose connection id matched no connection. `peer` is
 * the source address as bytes (it is bound into the cookie). A SYN gets a
 * COOKIE (never longer than the SYN); a valid, fresh ECHO gets ACCEPT; a
 * SEG gets an RST; anything else is dropped. Pure: no allocation, no
 * state. `now_s` is the listener's clock in seconds. */
int rudp_listen_input(const uint8_t secret[RUDP_SECRET_LEN], const uint8_t *pkt,
                      size_t len, const void *peer, size_t peerlen, uint64_t now_us,
                      uint8_t *reply, size_t cap, size_t *replylen, rudp_accept_t *acc);

/* Starts a client connection (SYN queued). NULL on allocation failure. */
rudp_conn_t *rudp_conn_connect(const rudp_cfg_t *cfg, uint64_t now);

/* A server connection from an accepted ECHO (its ACK queued). */
rudp_conn_t *rudp_conn_accept(const rudp_cfg_t *cfg, const rudp_accept_t *a, uint64_t now);

void rudp_conn_free(rudp_conn_t *c);

/* Feeds one received packet. Malformed or corrupt packets are counted in
 * tcb.pkts_bad and ignored. */
void rudp_conn_input(rudp_conn_t *c, const uint8_t *pkt, size_t len, uint64_t now);

/* Runs due timers, then writes the next packet to send into out (cap >=
 * RUDP_PKT_MAX) and returns its length, or 0 when nothing is due now. */
size_t rudp_conn_output(rudp_conn_t *c, uint8_t *out, size_t cap, uint64_t now);

/* When rudp_conn_output() has work next (UINT64_MAX: nothing pending). */
uint64_t rudp_conn_deadline(const rudp_conn_t *c);

/* Queues up to len bytes; returns how many fit the send buffer. 0 after
 * rudp_conn_shutdown() or once closed. */
size_t rudp_conn_write(rudp_conn_t *c, const void *data, size_t len);

/* Copies up to len received in-order bytes out; returns the count. */
size_t rudp_conn_read(rudp_conn_t *c, void *buf, size_t len);

size_t rudp_conn_readable(const rudp_conn_t *c);
size_t rudp_conn_writable(const rudp_conn_t *c);
/* Bytes written and not yet acknowledged. */
size_t rudp_conn_unacked(const rudp_conn_t *c);
/* Bytes written and not sent yet: an application that keeps this small
 * writes (and reads or hashes) just ahead of the network, instead of
 * filling the whole send buffer before the first packet leaves. */
size_t rudp_conn_unsent(const rudp_conn_t *c);

/* Sends a FIN after everything written so far. */
void rudp_conn_shutdown(rudp_conn_t *c);

/* Sends an RST and closes with -ECONNABORTED. */
void rudp_conn_abort(rudp_conn_t *c);

/* Takes the pending RUDP_EV_* bits (and clears them). */
unsigned rudp_conn_events(rudp_conn_t *c);

int rudp_conn_state(const rudp_conn_t *c);
/* 0, or -ECONNREFUSED, -ECONNRESET, -ETIMEDOUT, -ECONNABORTED. */
int rudp_conn_error(const rudp_conn_t *c);
/* The peer's FIN was received and every byte before it read. */
int rudp_conn_eof(const rudp_conn_t *c);
uint32_t rudp_conn_local_cid(const rudp_conn_t *c);
const rudp_tcb_t *rudp_conn_tcb(const rudp_conn_t *c);

#endif
