/* cc.c - NewReno and a BBR-style rate-based controller. */
#include "rudp/cc.h"
#include "rudp/limits.h"

#include <string.h>

#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* A pacing rate from a window and an RTT (1 ms when none is known yet). */
static uint64_t rate_of(uint64_t cwnd, uint32_t srtt_us, double gain)
{
    uint32_t rtt = srtt_us ? srtt_us : 1000u;
    return (uint64_t)((double)cwnd * 1e6 / rtt * gain);
}

/* ------------------------------------------------------------ NewReno */

static void reno_init(rudp_cc_t *cc)
{
    cc->u.reno.ssthresh = UINT64_MAX;
    cc->u.reno.acc = 0;
}

static void reno_on_ack(rudp_cc_t *cc, const rudp_rs_t *rs)
{
    if (!rs->in_recovery && rs->acked) {
        if (cc->cwnd < cc->u.reno.ssthresh) {
            cc->cwnd += MIN(rs->acked, (uint64_t)cc->mss * 2);   /* RFC 3465 L=2 */
        } else {
            cc->u.reno.acc += rs->acked;
            if (cc->u.reno.acc >= cc->cwnd) {
                cc->u.reno.acc -= cc->cwnd;
                cc->cwnd += cc->mss;
            }
        }
    }
    /* Linux's pacing ratios: 200% in slow start, 120% after. */
    double gain = cc->cwnd < cc->u.reno.ssthresh ? 2.0 : 1.2;
    cc->pacing_rate = rate_of(cc->cwnd, rs->srtt_us, gain);
}

static void reno_on_loss(rudp_cc_t *cc, uint64_t inflight, uint64_t lost, int new_event)
{
    (void)lost;
    if (!new_event)
        return;
    cc->u.reno.ssthresh = MAX(inflight / 2, 2ull * cc->mss);
    cc->cwnd = cc->u.reno.ssthresh;
    cc->u.reno.acc = 0;
}

static void reno_on_rto(rudp_cc_t *cc, uint64_t inflight)
{
    cc->u.reno.ssthresh = MAX(inflight / 2, 2ull * cc->mss);
    cc->cwnd = cc->mss;
    cc->u.reno.acc = 0;
}

const struct rudp_cc_ops rudp_cc_newreno = {
    "newreno", reno_init, reno_on_ack, reno_on_loss, reno_on_rto,
};

/* ---------------------------------------------------------------- BBR */

enum { BBR_STARTUP, BBR_DRAIN, BBR_PROBE_BW };

#define BBR_HIGH_GAIN     2.885    /* 2/ln 2: doubles the rate each round */
#define BBR_CWND_GAIN     2.0
#define BBR_MIN_RTT_WIN_US 10000000u
#define BBR_FULL_BW_GROWTH 1.25
#define BBR_FULL_BW_ROUNDS 3
#define BBR_CWND_RTT_FLOOR_US 3000u
/* STARTUP reads a round that lost more than this share as its own queue
 * overflowing (a 2.89x overshoot loses far more); less is taken for the
 * path's random loss, which must not stop the search for the rate. */
#define BBR_STARTUP_LOSS   0.15
/* ...and that lost at least this many segments: in an early round of ten,
 * two random losses are 20% and say nothing of the queue (as BBRv2 counts
 * loss events before it believes them). */
#define BBR_STARTUP_LOSS_SEGS 8u
/* Random loss before the bottleneck: what the path delivers (the model's
 * bandwidth) is what survives, so pacing at it leaves the bottleneck idle by
 * the loss rate. While there is no standing queue (the latest RTT within
 * BBR_QUEUE_RTT of the minimum: the losses are not an overflowing queue),
 * PROBE_BW paces at bw / (1 - loss), the loss rate taken up to
 * BBR_LOSS_COMP_MAX. */
#define BBR_LOSS_COMP_MAX  0.10
/* The loss rate compensated for is sampled from the rounds that end in
 * this PROBE_BW phase only: their losses were detected in the phase before
 * and sent one before that, in the first cruising phase after the 0.75
 * drain, when no queue of ours is standing. On a shallow buffer (smaller
 * than a quarter of the BDP, so the RTT never shows the queue) the losses
 * of the 1.25 probe would otherwise read as the path's loss, and pacing at
 * bw / (1 - loss) would make that much loss again, ratcheting up to
 * BBR_LOSS_COMP_MAX: in the simulator (100 Mbit/s, 50 ms, no random loss,
 * 32 MiB) a 16 KiB queue lost 6.6% with every round counted, 3.2% as with
 * no compensation at all when sampled here; with 5% random loss and a deep
 * queue the transfer time is unchanged (phase 3 instead: 14% slower). */
#define BBR_LOW_SAMPLE_CYCLE 4
#define BBR_QUEUE_RTT      1.25
static const double bbr_cycle[8] = { 1.25, 0.75, 1, 1, 1, 1, 1, 1 };

static void bbr_init(rudp_cc_t *cc)
{
    memset(&cc->u.bbr, 0, sizeof cc->u.bbr);
    cc->u.bbr.mode = BBR_STARTUP;
    cc->u.bbr.pacing_gain = BBR_HIGH_GAIN;
    cc->u.bbr.cwnd_gain = BBR_HIGH_GAIN;
}

uint64_t rudp_cc_bw(const rudp_cc_t *cc)
{
    if (cc->ops != &rudp_cc_bbr)
        return 0;
    uint64_t m = 0;
    for (int i = 0; i < RUDP_BBR_BW_ROUNDS; i++)
        m = MAX(m, cc->u.bbr.bw_round[i]);
    return m;
}

/* The BDP the window is sized from. The RTT is floored at what the sender
 * can see: its timers tick in ms, pacing bursts up to 1 ms and the peer
 * delays ACKs up to 1 ms, so on a LAN a window of bw x 100 us would starve
 * (Linux's BBR adds the measured ACK aggregation for the same reason). */
static uint64_t bbr_bdp(const rudp_cc_t *cc, double gain)
{
    uint64_t bw = rudp_cc_bw(cc);
    if (!bw || !cc->u.bbr.min_rtt_us)
        return (uint64_t)RUDP_INIT_CWND_SEGS * cc->mss;
    uint32_t rtt = MAX(cc->u.bbr.min_rtt_us, BBR_CWND_RTT_FLOOR_US);
    return (uint64_t)((double)bw * rtt / 1e6 * gain);
}

static void bbr_on_ack(rudp_cc_t *cc, const rudp_rs_t *rs)
{
    struct rudp_bbr *b = &cc->u.bbr;
    int round_start = 0;
    if (rs->acked && rs->prior_delivered >= b->next_round_delivered) {
        uint64_t got = rs->delivered - b->round_delivered_at;
        b->lossy_round = b->round_lost >= (uint64_t)BBR_STARTUP_LOSS_SEGS * cc->mss &&
                         (double)b->round_lost > BBR_STARTUP_LOSS * (double)(got + b->round_lost);
        if (got + b->round_lost) {
            double x = (double)b->round_lost / (double)(got + b->round_lost);
            b->loss_rate = (3 * b->loss_rate + x) / 4;
            if (b->mode == BBR_PROBE_BW && b->cycle == BBR_LOW_SAMPLE_CYCLE) {
                /* the first sample is taken whole, then halves toward each */
                b->loss_low = b->loss_low_set ? (b->loss_low + x) / 2 : x;
                b->loss_low_set = 1;
            }
        }
        b->round_lost = 0;
        b->round_delivered_at = rs->delivered;
        b->next_round_delivered = rs->delivered;
        b->round++;
        round_start = 1;
        b->bw_round[b->round % RUDP_BBR_BW_ROUNDS] = 0;
    }
    if (rs->bw && (!rs->app_limited || rs->bw >= rudp_cc_bw(cc))) {
        uint64_t *slot = &b->bw_round[b->round % RUDP_BBR_BW_ROUNDS];
        *slot = MAX(*slot, rs->bw);
    }
    if (rs->rtt_us && (!b->min_rtt_us || rs->rtt_us <= b->min_rtt_us ||
                       rs->now - b->min_rtt_stamp > BBR_MIN_RTT_WIN_US)) {
        b->min_rtt_us = rs->rtt_us;
        b->min_rtt_stamp = rs->now;
    }
    uint64_t bw = rudp_cc_bw(cc);

    if (b->mode == BBR_STARTUP && round_start && b->lossy_round && b->full_bw_cnt >= 1) {
        b->mode = BBR_DRAIN;          /* the overshoot overflowed the queue */
        b->pacing_gain = 1.0 / BBR_HIGH_GAIN;
    }
    if (b->mode == BBR_STARTUP && round_start && !rs->app_limited && bw) {
        if ((double)bw >= (double)b->full_bw * BBR_FULL_BW_GROWTH) {
            b->full_bw = bw;
            b->full_bw_cnt = 0;
        } else if (++b->full_bw_cnt >= BBR_FULL_BW_ROUNDS) {
            b->mode = BBR_DRAIN;
            b->pacing_gain = 1.0 / BBR_HIGH_GAIN;
            b->cwnd_gain = BBR_HIGH_GAIN;
        }
    }
    if (b->mode == BBR_DRAIN && rs->inflight <= bbr_bdp(cc, 1.0)) {
        b->mode = BBR_PROBE_BW;
        b->cycle = 2;          /* start in a cruising phase */
        b->cycle_stamp = rs->now;
        b->cwnd_gain = BBR_CWND_GAIN;
    }
    if (b->mode == BBR_PROBE_BW) {
        uint32_t phase = b->min_rtt_us ? b->min_rtt_us : 1000u;
        if (rs->now - b->cycle_stamp > phase) {
            b->cycle = (b->cycle + 1) % 8;
            b->cycle_stamp = rs->now;
        }
        b->pacing_gain = bbr_cycle[b->cycle];
    }

    uint64_t target = bbr_bdp(cc, b->cwnd_gain) + 3ull * cc->mss;
    uint64_t floor = (uint64_t)RUDP_MIN_CWND_SEGS * cc->mss;
    if (b->in_recovery && !rs->in_recovery) {
        b->in_recovery = 0;
        cc->cwnd = MAX(cc->cwnd, b->prior_cwnd);
    }
    if (b->in_recovery && b->round <= b->conserve_round)
        cc->cwnd = MAX(cc->cwnd, rs->inflight + rs->acked);  /* packet conservation */
    else if (cc->cwnd < target)
        cc->cwnd = MIN(cc->cwnd + rs->acked, target);
    else
        cc->cwnd = target;
    cc->cwnd = MAX(cc->cwnd, floor);
    double gain = b->pacing_gain;
    if (b->mode == BBR_PROBE_BW && rs->rtt_us && b->min_rtt_us &&
        rs->rtt_us <= BBR_QUEUE_RTT * b->min_rtt_us)
        gain /= 1 - MIN(b->loss_low, BBR_LOSS_COMP_MAX);
    uint64_t rate = bw ? (uint64_t)((double)bw * gain) : 0;
    if (b->mode == BBR_STARTUP) {
        /* Until the pipe is found the rate only grows: the first samples
         * (a handshake, a request and its answer) are tiny and app-limited,
         * and must not pace the transfer that follows (as Linux's BBR). */
        uint64_t init = rate_of(cc->cwnd, rs->srtt_us, BBR_HIGH_GAIN);
        rate = MAX(rate, MAX(init, cc->pacing_rate));
    }
    cc->pacing_rate = rate ? rate : rate_of(cc->cwnd, rs->srtt_us, BBR_HIGH_GAIN);
}

/* Random loss says nothing about the bottleneck: outside STARTUP the model
 * (and so cwnd and the pacing rate) ignores it. In STARTUP, a round that lost
 * more than BBR_STARTUP_LOSS is the queue overflowing under the doubling
 * rate: the window then follows the ACKs for a round (packet conservation,
 * as BBR v1: what is lost leaves the window, what is delivered may be
 * replaced) and the rate drains (in bbr_on_ack). */
static void bbr_on_loss(rudp_cc_t *cc, uint64_t inflight, uint64_t lost, int new_event)
{
    struct rudp_bbr *b = &cc->u.bbr;
    uint64_t floor = (uint64_t)RUDP_MIN_CWND_SEGS * cc->mss;
    b->round_lost += lost;
    if (b->mode != BBR_STARTUP && !b->in_recovery)
        return;
    if (!b->lossy_round && !b->in_recovery)
        return;               /* random loss while searching: keep searching */
    if (!new_event) {
        cc->cwnd = cc->cwnd > lost + floor ? cc->cwnd - lost : floor;
        return;
    }
    if (!b->in_recovery)
        b->prior_cwnd = cc->cwnd;
    b->in_recovery = 1;
    b->conserve_round = b->round + 1;
    cc->cwnd = MAX(inflight + cc->mss, floor);
}

/* One timeout may be a lost tail; the model stands. The engine backs the
 * timer off, and a path that stays silent fails the connection. */
static void bbr_on_rto(rudp_cc_t *cc, uint64_t inflight)
{
    (void)cc;
    (void)inflight;
}

const struct rudp_cc_ops rudp_cc_bbr = {
    "bbr", bbr_init, bbr_on_ack, bbr_on_loss, bbr_on_rto,
};

/* ------------------------------------------------------------- common */

const struct rudp_cc_ops *rudp_cc_find(const char *name)
{
    if (strcmp(name, "newreno") == 0)
        return &rudp_cc_newreno;
    if (strcmp(name, "bbr") == 0)
        return &rudp_cc_bbr;
    return NULL;
}

void rudp_cc_init(rudp_cc_t *cc, const struct rudp_cc_ops *ops, uint32_t mss)
{
    memset(cc, 0, sizeof *cc);
    cc->ops = ops;
    cc->mss = mss;
    cc->cwnd = (uint64_t)RUDP_INIT_CWND_SEGS * mss;
    ops->init(cc);
}
