/* cc.h - congestion control behind one small interface.
 *
 * The engine (conn.c) keeps the scoreboard, detects losses and measures RTT
 * and delivery rate; a controller only turns those samples into two
 * numbers: cwnd (bytes the network may hold) and pacing_rate (bytes/s the
 * sender may emit; 0 = unpaced). Two controllers:
 *   - "newreno": RFC 5681/6582 slow start, congestion avoidance and halving
 *     per loss event; every loss is read as congestion.
 *   - "bbr": a BBR-style model of the path (max delivery rate over ten
 *     rounds, min RTT over ten seconds) that paces at that rate and caps
 *     inflight at twice the BDP. Random loss does not shrink the model, so
 *     goodput holds on lossy links. The default; docs/xfer.md says why. */
#ifndef PORTICO_RUDP_CC_H
#define PORTICO_RUDP_CC_H

#include <stdint.h>

/* What one ACK taught the engine. */
typedef struct rudp_rs {
    uint64_t now;           /* us */
    uint64_t acked;         /* bytes newly delivered (cumulative + SACK) */
    uint64_t inflight;      /* bytes in flight after the ACK */
    uint64_t prior_delivered; /* delivered count when the newest acked segment left */
    uint64_t delivered;     /* delivered count now */
    uint64_t interval_us;   /* the sample's interval: max(send phase, ack phase) */
    uint64_t bw;            /* delivery-rate sample, bytes/s, 0 = none */
    uint32_t rtt_us;        /* RTT sample of this ACK, 0 = none */
    uint32_t srtt_us, min_rtt_us;
    int app_limited;        /* the sample was taken while the app had nothing to send */
    int in_recovery;        /* a loss event is being repaired */
} rudp_rs_t;

typedef struct rudp_cc rudp_cc_t;

struct rudp_cc_ops {
    const char *name;
    void (*init)(rudp_cc_t *cc);
    void (*on_ack)(rudp_cc_t *cc, const rudp_rs_t *rs);
    /* Segments of `lost` bytes were just deemed lost; `new_event` when they
     * open a loss event (the first loss after the previous recovery). */
    void (*on_loss)(rudp_cc_t *cc, uint64_t inflight, uint64_t lost, int new_event);
    /* Retransmission timeout. */
    void (*on_rto)(rudp_cc_t *cc, uint64_t inflight);
};

#define RUDP_BBR_BW_ROUNDS 10

struct rudp_cc {
    const struct rudp_cc_ops *ops;
    uint32_t mss;
    uint64_t cwnd;          /* bytes */
    uint64_t pacing_rate;   /* bytes per second; 0 = unpaced */
    union {
        struct rudp_reno {
            uint64_t ssthresh;
            uint64_t acc;       /* bytes acked in congestion avoidance */
        } reno;
        struct rudp_bbr {
            int mode;
            uint64_t bw_round[RUDP_BBR_BW_ROUNDS]; /* max sample per round, ring */
            uint64_t round, next_round_delivered;
            uint64_t full_bw;
            int full_bw_cnt;
            uint32_t min_rtt_us;
            uint64_t min_rtt_stamp;
            int cycle;
            uint64_t cycle_stamp;
            double pacing_gain, cwnd_gain;
            int in_recovery;
            uint64_t prior_cwnd, conserve_round;
            uint64_t round_lost, round_delivered_at; /* loss rate of a round */
            int lossy_round;    /* the round that just ended lost > BBR_STARTUP_LOSS */
            double loss_rate;   /* share of bytes lost per round, smoothed over rounds */
            double loss_low;    /* the same, of what was sent below the bottleneck rate */
            int loss_low_set;
        } bbr;
    } u;
};

extern const struct rudp_cc_ops rudp_cc_newreno;
extern const struct rudp_cc_ops rudp_cc_bbr;

/* The controller named `name` ("newreno", "bbr"), or NULL. */
const struct rudp_cc_ops *rudp_cc_find(const char *name);

/* Sets cc up with `ops` for segments of `mss` bytes. */
void rudp_cc_init(rudp_cc_t *cc, const struct rudp_cc_ops *ops, uint32_t mss);

/* Max bandwidth the bbr model holds, bytes/s (0 for newreno). */
uint64_t rudp_cc_bw(const rudp_cc_t *cc);

#endif
