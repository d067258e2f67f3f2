/* conn.c - the rudp connection: handshake, sliding window with SACK,
 * RTO and loss recovery, flow control, pacing, FIN/RST, keepalive.
 *
 * Sender side. Bytes written wait in a ring (sbuf) whose first byte is
 * SND.UNA. Every transmitted range is a segment in a second ring (segs),
 * ordered by sequence number, from SND.UNA to SND.NXT; a segment keeps its
 * boundaries for life, so an acknowledgement always covers whole segments
 * and a retransmission resends exactly one of them. A segment is in flight,
 * SACKed, or lost (waiting to be resent); `inflight` counts the bytes of the
 * first kind and is what the congestion window caps.
 *
 * Receiver side. Bytes land in a ring (rbuf) at their sequence offset from
 * the first unread byte, in order or not; `ooo` lists the received ranges
 * above RCV.NXT, which are reported as SACK blocks. RCV.WND is the free room
 * of rbuf, so a reader that stops reading closes the window. */
#include "rudp/conn.h"
#include "rudp/limits.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define NEVER UINT64_MAX

struct seg {
    uint32_t seq, len;          /* len: payload bytes; a FIN adds one sequence number */
    uint8_t fin, sacked, lost, inflight, app_limited;
    uint16_t xmits;
    uint64_t tx_order;          /* transmission counter at the last send */
    uint64_t sent_us;
    /* delivery-rate sampling state at the last send */
    uint64_t delivered, delivered_us, first_sent_us;
};

struct range { uint32_t s, e; };

struct rudp_conn {
    rudp_cfg_t cfg;
    int state, err;
    unsigned events;
    uint32_t local_cid, peer_cid;
    rudp_tcb_t tcb;
    uint32_t peer_mss;

    /* client handshake */
    uint32_t cookie_time, srv_cid;
    uint8_t mac[RUDP_MAC_LEN];
    uint32_t hs_tries;
    uint64_t hs_deadline;
    int hs_send;

    /* send buffer: sbuf[shead] holds SND.UNA; slen bytes written and unacked */
    uint8_t *sbuf;
    uint32_t scap, shead, slen;
    int fin_queued, fin_sent, fin_acked;
    uint32_t wnd_wl;            /* ack number that carried snd_wnd */

    /* segments SND.UNA..SND.NXT */
    struct seg *segs;
    uint32_t seg_cap, seg_head, seg_count;
    uint32_t sacked_cnt, lost_pending, retx_hint;
    uint64_t tx_counter;

    /* delivery rate (draft-cheng-iccrg-delivery-rate-estimation) */
    uint64_t delivered, delivered_us, first_sent_us, app_limited_until;

    /* loss recovery */
    int in_recovery, loss_event;
    uint64_t lost_now;          /* bytes deemed lost by the current detection pass */
    uint32_t recovery_point;
    uint64_t rack_tx, rack_sent_us;
    uint32_t rack_end;
    uint32_t rto_count;

    /* timers (NEVER when idle) */
    uint64_t rto_deadline, rack_deadline, persist_deadline, delack_deadline;
    uint64_t tlp_deadline;      /* tail loss probe (RFC 8985 7), one per flight */
    int tlp_armable;
    uint64_t persist_us;
    uint64_t last_send_us, last_recv_us, next_tx_us;
    int probe_pending, rst_pending, ack_now;
    int pace_blocked;           /* the last output waited for next_tx_us */
    uint32_t ack_pending;       /* segments received since our last ACK */

    /* receive buffer: rbuf[rhead] holds sequence rseq (next byte to read) */
    uint8_t *rbuf;
    uint32_t rcap, rhead, rseq;
    struct range ooo[RUDP_OOO_MAX];
    unsigned nooo;
    uint32_t last_block;        /* start of the range changed last: first SACK block */
    int peer_fin, fin_consumed;
    uint32_t peer_fin_seq;
    uint32_t ts_recent;         /* peer's last tsval, echoed as tsecr */
    uint32_t last_adv_wnd;
};

/* ------------------------------------------------------------ helpers */

void rudp_cfg_default(rudp_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->mss = RUDP_MSS_DEFAULT;
    cfg->sndbuf = RUDP_SNDBUF_DEFAULT;
    cfg->rcvbuf = RUDP_RCVBUF_DEFAULT;
}

static struct seg *seg_at(rudp_conn_t *c, uint32_t i)
{
    return &c->segs[(c->seg_head + i) % c->seg_cap];
}

static uint32_t seg_end(const struct seg *s) { return s->seq + s->len + s->fin; }

static uint32_t unsent_bytes(const rudp_conn_t *c)
{
    uint32_t sent = c->tcb.snd_nxt - c->tcb.snd_una - (uint32_t)c->fin_sent;
    return c->slen - sent;
}

/* Bytes received in order and not read yet (the FIN excluded). */
static uint32_t rbuf_used(const rudp_conn_t *c)
{
    return c->tcb.rcv_nxt - c->rseq - (uint32_t)c->fin_consumed;
}

static uint32_t rcv_wnd(const rudp_conn_t *c)
{
    return c->rcap - rbuf_used(c);
}

static void close_with(rudp_conn_t *c, int err)
{
    if (c->state == RUDP_CLOSED)
        return;
    c->state = RUDP_CLOSED;
    c->err = err;
    c->events |= RUDP_EV_CLOSED;
}

/* RFC 6298 2.2-2.4, with the clamps of limits.h. */
static void rtt_sample(rudp_conn_t *c, uint32_t r)
{
    rudp_tcb_t *t = &c->tcb;
    if (r == 0)
        r = 1;
    t->latest_rtt_us = r;
    if (!t->min_rtt_us || r < t->min_rtt_us)
        t->min_rtt_us = r;
    if (!t->srtt_us) {
        t->srtt_us = r;
        t->rttvar_us = r / 2;
    } else {
        uint32_t d = t->srtt_us > r ? t->srtt_us - r : r - t->srtt_us;
        t->rttvar_us = (3 * t->rttvar_us + d) / 4;
        t->srtt_us = (7 * t->srtt_us + r) / 8;
    }
    uint64_t rto = (uint64_t)t->srtt_us + MAX(RUDP_CLOCK_G_US, 4ull * t->rttvar_us);
    t->rto_us = (uint32_t)MIN(MAX(rto, RUDP_RTO_MIN_US), RUDP_RTO_MAX_US);
}

/* ---------------------------------------------------------- lifecycle */

static rudp_conn_t *conn_new(const rudp_cfg_t *cfg, uint64_t now)
{
    rudp_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    if (c->cfg.mss < RUDP_MSS_MIN || c->cfg.mss > RUDP_MSS_MAX)
        c->cfg.mss = RUDP_MSS_DEFAULT;
    c->cfg.sndbuf = MIN(MAX(c->cfg.sndbuf, RUDP_BUF_MIN), RUDP_BUF_MAX);
    c->cfg.rcvbuf = MIN(MAX(c->cfg.rcvbuf, RUDP_BUF_MIN), RUDP_BUF_MAX);
    if (!c->cfg.cc)
        c->cfg.cc = &rudp_cc_bbr;
    if (!c->cfg.idle_timeout_us)
        c->cfg.idle_timeout_us = RUDP_IDLE_TIMEOUT_US;
    if (!c->cfg.keepalive_us)
        c->cfg.keepalive_us = RUDP_KEEPALIVE_US;
    if (!c->cfg.syn_retries)
        c->cfg.syn_retries = RUDP_SYN_RETRIES;
    c->scap = c->cfg.sndbuf;
    c->rcap = c->cfg.rcvbuf;
    c->seg_cap = MIN(RUDP_SEGS_MAX, 2 * (c->scap / c->cfg.mss) + 64);
    c->sbuf = malloc(c->scap);
    c->rbuf = malloc(c->rcap);
    c->segs = calloc(c->seg_cap, sizeof *c->segs);
    if (!c->sbuf || !c->rbuf || !c->segs) {
        rudp_conn_free(c);
        return NULL;
    }
    c->tcb.rto_us = RUDP_RTO_INIT_US;
    c->peer_mss = c->cfg.mss;
    rudp_cc_init(&c->tcb.cc, c->cfg.cc, c->cfg.mss);
    c->rto_deadline = c->rack_deadline = c->persist_deadline = c->tlp_deadline = NEVER;
    c->tlp_armable = 1;
    c->delack_deadline = c->hs_deadline = NEVER;
    c->persist_us = RUDP_PERSIST_MIN_US;
    c->last_send_us = c->last_recv_us = now;
    c->next_tx_us = now;
    c->delivered_us = c->first_sent_us = now;
    c->tcb.rcv_wnd = c->rcap;
    return c;
}

rudp_conn_t *rudp_conn_connect(const rudp_cfg_t *cfg, uint64_t now)
{
    rudp_conn_t *c = conn_new(cfg, now);
    if (!c)
        return NULL;
    c->state = RUDP_SYN_SENT;
    c->local_cid = cfg->local_cid ? cfg->local_cid : 1;
    c->tcb.iss = c->tcb.snd_una = c->tcb.snd_nxt = c->wnd_wl = cfg->isn;
    c->hs_send = 1;
    return c;
}

rudp_conn_t *rudp_conn_accept(const rudp_cfg_t *cfg, const rudp_accept_t *a, uint64_t now)
{
    rudp_conn_t *c = conn_new(cfg, now);
    if (!c)
        return NULL;
    c->state = RUDP_ESTABLISHED;
    c->local_cid = a->local_cid;
    c->peer_cid = a->peer_cid;
    c->tcb.iss = c->tcb.snd_una = c->tcb.snd_nxt = c->wnd_wl = a->iss;
    c->tcb.irs = c->tcb.rcv_nxt = c->rseq = a->peer_isn;
    c->tcb.snd_wnd = a->peer_wnd;
    c->ts_recent = a->tsval;
    if (a->peer_mss >= RUDP_MSS_MIN)
        c->peer_mss = a->peer_mss;
    if (c->peer_mss < c->cfg.mss)
        c->cfg.mss = c->peer_mss;
    c->tcb.cc.mss = c->cfg.mss;
    if (a->rtt_us && a->rtt_us < RUDP_RTO_MAX_US)
        rtt_sample(c, a->rtt_us);
    c->ack_now = 1;
    c->events |= RUDP_EV_CONNECTED | RUDP_EV_WRITABLE;
    return c;
}

void rudp_conn_free(rudp_conn_t *c)
{
    if (!c)
        return;
    free(c->sbuf);
    free(c->rbuf);
    free(c->segs);
    free(c);
}

/* ------------------------------------------------------ sender: acks */

/* A segment reached the peer (cumulative ACK or SACK): count it and keep
 * the newest such segment for RACK and the rate sample. */
static void seg_delivered(rudp_conn_t *c, struct seg *s, rudp_rs_t *rs, uint64_t now,
                          uint32_t tsecr, uint64_t *newest_tx)
{
    uint32_t span = s->len + s->fin;
    c->delivered += span;
    c->delivered_us = now;
    rs->acked += span;
    if (s->inflight) {
        c->tcb.inflight -= s->len;
        s->inflight = 0;
    }
    if (s->lost) {
        s->lost = 0;
        c->lost_pending--;
    }
    if (s->tx_order > *newest_tx) {
        *newest_tx = s->tx_order;
        rs->prior_delivered = s->delivered;
        rs->app_limited = s->app_limited;
        /* interval: the longer of the send and the ack phase */
        uint64_t snd = s->sent_us - s->first_sent_us;
        uint64_t ack = now - s->delivered_us;
        rs->interval_us = MAX(snd, ack);
        c->first_sent_us = s->sent_us;
        /* RACK must know which transmission arrived: an echo older than
         * the last send means the original did (RFC 8985 6.2 step 2). */
        if (s->tx_order > c->rack_tx && (s->xmits == 1 || (int32_t)(tsecr - (uint32_t)s->sent_us) >= 0)) {
            c->rack_tx = s->tx_order;
            c->rack_sent_us = s->sent_us;
            c->rack_end = seg_end(s);
        }
    }
}

/* Index of the first segment whose end is after `seq` (binary search:
 * segments are contiguous and ordered). */
static uint32_t seg_find(rudp_conn_t *c, uint32_t seq)
{
    uint32_t lo = 0, hi = c->seg_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (seq_le(seg_end(seg_at(c, mid)), seq))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void mark_lost(rudp_conn_t *c, uint32_t i, struct seg *s, uint64_t now)
{
    if (s->inflight) {
        c->tcb.inflight -= s->len;
        s->inflight = 0;
    }
    s->lost = 1;
    c->lost_pending++;
    if (i < c->retx_hint)
        c->retx_hint = i;
    if (!c->in_recovery || seq_ge(s->seq, c->recovery_point)) {
        c->in_recovery = 1;
        c->recovery_point = c->tcb.snd_nxt;
        c->loss_event = 1;
    }
    c->lost_now += s->len;
    (void)now;
}

/* Tail loss probe: when the flight's last segments are lost, no later
 * segment arrives to reveal it and only the RTO (200 ms or more) would.
 * After 2 SRTT of silence, the newest segment in flight is sent again; its
 * SACK then lets RACK find the rest. One probe per flight. */
static void arm_tlp(rudp_conn_t *c, uint64_t now)
{
    if (!c->tlp_armable || !c->tcb.srtt_us)
        return;
    uint64_t pto = MAX(2ull * c->tcb.srtt_us, RUDP_TLP_MIN_US);
    c->tlp_deadline = now + pto;
    if (c->tlp_deadline > c->rto_deadline)
        c->tlp_deadline = NEVER;
}

static void on_tlp(rudp_conn_t *c)
{
    c->tlp_deadline = NEVER;
    c->tlp_armable = 0;
    for (uint32_t i = c->seg_count; i-- > 0;) {
        struct seg *s = seg_at(c, i);
        if (s->sacked || !s->inflight)
            continue;
        c->tcb.inflight -= s->len;
        s->inflight = 0;
        s->lost = 1;
        c->lost_pending++;
        if (i < c->retx_hint)
            c->retx_hint = i;
        c->tcb.tlp_probes++;
        return;
    }
}

/* Marks lost the segments that SACK or RACK condemn, and arms the RACK
 * timer for those that will be condemned if nothing arrives. */
static void detect_losses(rudp_conn_t *c, uint64_t now)
{
    uint32_t rtt = c->tcb.latest_rtt_us ? c->tcb.latest_rtt_us : c->tcb.srtt_us;
    uint64_t reo = MAX(c->tcb.min_rtt_us / 4, RUDP_REO_WND_MIN_US);
    uint32_t seen = 0;
    c->rack_deadline = NEVER;
    for (uint32_t i = 0; i < c->seg_count; i++) {
        struct seg *s = seg_at(c, i);
        if (s->sacked) {
            seen++;
            continue;
        }
        if (seen == c->sacked_cnt && (!c->rack_tx || seq_ge(s->seq, c->rack_end)))
            break;
        if (!s->inflight)
            continue;
        int rack_older = c->rack_tx && s->tx_order < c->rack_tx;
        uint64_t when = s->sent_us + rtt + reo;
        /* DupThresh counts SACKs of segments sent after this one: that
         * holds for a first transmission only; a resent one waits for RACK. */
        int dup = s->xmits == 1 && c->sacked_cnt - seen >= RUDP_DUPTHRESH;
        if (dup || (rack_older && now >= when))
            mark_lost(c, i, s, now);
        else if (rack_older && when < c->rack_deadline)
            c->rack_deadline = when;
    }
    /* The controller hears of a loss event once, with the inflight that
     * remains after every loss this ACK revealed. */
    if (c->lost_now) {
        c->tcb.cc.ops->on_loss(&c->tcb.cc, c->tcb.inflight, c->lost_now, c->loss_event);
        c->loss_event = 0;
        c->lost_now = 0;
    }
}

static void on_ack(rudp_conn_t *c, const rudp_pkt_t *p, uint64_t now)
{
    rudp_tcb_t *t = &c->tcb;
    rudp_rs_t rs;
    uint64_t newest_tx = 0;
    memset(&rs, 0, sizeof rs);
    if (seq_gt(p->ack, t->snd_nxt) || seq_lt(p->ack, t->snd_una))
        return;    /* acknowledges nothing we sent, or an old reordered ACK */
    int progress = 0;
    if (seq_gt(p->ack, t->snd_una)) {
        uint32_t data = 0;
        while (c->seg_count && seq_le(seg_end(seg_at(c, 0)), p->ack)) {
            struct seg *s = seg_at(c, 0);
            if (!s->sacked)
                seg_delivered(c, s, &rs, now, p->tsecr, &newest_tx);
            else
                c->sacked_cnt--;
            if (s->fin)
                c->fin_acked = 1;
            data += s->len;
            c->seg_head = (c->seg_head + 1) % c->seg_cap;
            c->seg_count--;
            c->retx_hint = c->retx_hint ? c->retx_hint - 1 : 0;
        }
        c->shead = (c->shead + data) % c->scap;
        c->slen -= data;
        t->snd_una = p->ack;
        if (c->seg_count)   /* an ACK inside a segment: keep the segment */
            t->snd_una = c->segs[c->seg_head].seq;
        c->rto_count = 0;
        progress = 1;
        if (data)
            c->events |= RUDP_EV_WRITABLE;
    }
    if (seq_ge(p->ack, c->wnd_wl)) {
        uint32_t old = t->snd_wnd;
        t->snd_wnd = p->wnd;
        c->wnd_wl = p->ack;
        if (p->wnd > old) {
            c->persist_deadline = NEVER;
            c->persist_us = RUDP_PERSIST_MIN_US;
        }
    }
    for (unsigned b = 0; b < p->nsack; b++) {
        uint32_t st = p->sack[b].start, en = p->sack[b].end;
        if (!seq_lt(st, en) || seq_lt(st, t->snd_una) || seq_gt(en, t->snd_nxt))
            continue;
        for (uint32_t i = seg_find(c, st); i < c->seg_count; i++) {
            struct seg *s = seg_at(c, i);
            if (seq_gt(seg_end(s), en))
                break;
            if (seq_lt(s->seq, st) || s->sacked)
                continue;
            s->sacked = 1;
            c->sacked_cnt++;
            seg_delivered(c, s, &rs, now, p->tsecr, &newest_tx);
            progress = 1;
        }
    }
    if (!progress)
        return;
    /* RTT from the echoed timestamp: valid even for retransmissions. */
    if (p->tsecr) {
        uint32_t r = (uint32_t)now - p->tsecr;
        if (r < RUDP_RTO_MAX_US) {
            rtt_sample(c, r);
            rs.rtt_us = r;
        }
    }
    rs.now = now;
    rs.delivered = c->delivered;
    if (rs.interval_us && rs.interval_us >= t->min_rtt_us && rs.prior_delivered < c->delivered)
        rs.bw = (c->delivered - rs.prior_delivered) * 1000000ull / rs.interval_us;
    if (c->app_limited_until && c->delivered > c->app_limited_until)
        c->app_limited_until = 0;
    detect_losses(c, now);
    if (c->in_recovery && seq_ge(t->snd_una, c->recovery_point))
        c->in_recovery = 0;
    rs.inflight = t->inflight;
    rs.srtt_us = t->srtt_us;
    rs.min_rtt_us = t->min_rtt_us;
    rs.in_recovery = c->in_recovery;
    t->cc.ops->on_ack(&t->cc, &rs);
    c->rto_deadline = c->seg_count ? now + t->rto_us : NEVER;
    c->tlp_armable = 1;
    c->tlp_deadline = NEVER;
    if (c->seg_count && t->inflight)
        arm_tlp(c, now);
}

/* ---------------------------------------------------- receiver: data */

/* Adds [s, e) to the out-of-order list, merging neighbours. Returns -1
 * when the list is full and the range touches none of them. */
static int ooo_add(rudp_conn_t *c, uint32_t s, uint32_t e)
{
    unsigned i = 0;
    while (i < c->nooo && seq_lt(c->ooo[i].e, s))
        i++;
    if (i == c->nooo || seq_lt(e, c->ooo[i].s)) {
        if (c->nooo == RUDP_OOO_MAX)
            return -1;
        memmove(&c->ooo[i + 1], &c->ooo[i], (c->nooo - i) * sizeof c->ooo[0]);
        c->ooo[i].s = s;
        c->ooo[i].e = e;
        c->nooo++;
    } else {
        if (seq_lt(s, c->ooo[i].s))
            c->ooo[i].s = s;
        if (seq_gt(e, c->ooo[i].e))
            c->ooo[i].e = e;
        while (i + 1 < c->nooo && seq_ge(c->ooo[i].e, c->ooo[i + 1].s)) {
            if (seq_gt(c->ooo[i + 1].e, c->ooo[i].e))
                c->ooo[i].e = c->ooo[i + 1].e;
            memmove(&c->ooo[i + 1], &c->ooo[i + 2], (c->nooo - i - 2) * sizeof c->ooo[0]);
            c->nooo--;
        }
    }
    c->last_block = c->ooo[i].s;
    return 0;
}

static void rbuf_put(rudp_conn_t *c, uint32_t seq, const uint8_t *d, uint32_t n)
{
    uint32_t at = (c->rhead + (seq - c->rseq)) % c->rcap;
    uint32_t first = MIN(n, c->rcap - at);
    memcpy(c->rbuf + at, d, first);
    memcpy(c->rbuf, d + first, n - first);
}

static void maybe_consume_fin(rudp_conn_t *c)
{
    if (c->peer_fin && !c->fin_consumed && c->tcb.rcv_nxt == c->peer_fin_seq) {
        c->tcb.rcv_nxt++;
        c->fin_consumed = 1;
        c->events |= RUDP_EV_EOF;
        c->ack_now = 1;
    }
}

static void on_data(rudp_conn_t *c, const rudp_pkt_t *p, uint64_t now)
{
    rudp_tcb_t *t = &c->tcb;
    uint32_t seq = p->seq, end = p->seq + (uint32_t)p->len;
    if (p->flags & RUDP_F_FIN) {
        if (!c->peer_fin && seq_ge(end, t->rcv_nxt)) {
            c->peer_fin = 1;
            c->peer_fin_seq = end;
        }
        c->ack_now = 1;
    }
    if (p->len) {
        uint32_t edge = c->rseq + c->rcap;
        if (seq_le(end, t->rcv_nxt) || seq_gt(end, edge) ||
            (c->peer_fin && seq_gt(end, c->peer_fin_seq))) {
            c->ack_now = 1;    /* duplicate or outside the window: say where we are */
            return;
        }
        uint32_t s = seq_lt(seq, t->rcv_nxt) ? t->rcv_nxt : seq;
        if (s != t->rcv_nxt) {
            if (ooo_add(c, s, end) < 0)
                return;
            rbuf_put(c, s, p->data + (s - seq), end - s);
            c->ack_now = 1;    /* a hole: the sender needs the SACK now */
        } else {
            rbuf_put(c, s, p->data + (s - seq), end - s);
            int had_holes = c->nooo > 0;
            t->rcv_nxt = end;
            while (c->nooo && seq_le(c->ooo[0].s, t->rcv_nxt)) {
                if (seq_gt(c->ooo[0].e, t->rcv_nxt))
                    t->rcv_nxt = c->ooo[0].e;
                memmove(&c->ooo[0], &c->ooo[1], (c->nooo - 1) * sizeof c->ooo[0]);
                c->nooo--;
            }
            c->events |= RUDP_EV_READABLE;
            if (had_holes)
                c->ack_now = 1;
            else if (++c->ack_pending >= RUDP_ACK_EVERY)
                c->ack_now = 1;
            else if (c->delack_deadline == NEVER)
                c->delack_deadline = now + RUDP_DELACK_US;
        }
    }
    maybe_consume_fin(c);
}

/* -------------------------------------------------------------- input */

static void client_handshake(rudp_conn_t *c, const rudp_pkt_t *p, uint64_t now)
{
    if (p->type == RUDP_T_COOKIE && c->state == RUDP_SYN_SENT) {
        c->state = RUDP_ECHO_SENT;
        c->peer_cid = p->srv_cid;
        c->cookie_time = p->cookie_time;
        memcpy(c->mac, p->mac, RUDP_MAC_LEN);
        c->tcb.irs = c->tcb.rcv_nxt = c->rseq = p->srv_isn;
        c->ts_recent = p->tsval;
        /* the listener's window is unknown until its first SEG: assume the
         * initial congestion window's worth */
        c->tcb.snd_wnd = (uint32_t)RUDP_INIT_CWND_SEGS * c->cfg.mss;
        if (p->tsecr)
            rtt_sample(c, (uint32_t)now - p->tsecr);
        c->hs_tries = 0;
        c->hs_send = 1;
    }
}

void rudp_conn_input(rudp_conn_t *c, const uint8_t *pkt, size_t len, uint64_t now)
{
    rudp_pkt_t p;
    if (c->state == RUDP_CLOSED && (c->err || !c->peer_cid))
        return;
    if (rudp_decode(pkt, len, &p) < 0) {
        c->tcb.pkts_bad++;
        return;
    }
    if (p.type == RUDP_T_RST) {
        if (p.dst_cid != c->local_cid && !(c->peer_cid && p.dst_cid == c->peer_cid))
            return;
        c->tcb.pkts_in++;
        if (c->state != RUDP_ESTABLISHED)
            close_with(c, -ECONNREFUSED);
        else if (c->fin_consumed && c->fin_sent && c->slen == 0)
            close_with(c, 0);   /* only our FIN was outstanding: the peer is done */
        else
            close_with(c, -ECONNRESET);
        return;
    }
    if (p.dst_cid != c->local_cid)
        return;
    if (c->state == RUDP_CLOSED) {
        /* Closed cleanly: the peer's FIN came again, so our last ACK was
         * lost. Say it once more (the caller may keep a closed connection
         * around for a while to do this). */
        if ((p.type == RUDP_T_SEG || p.type == RUDP_T_DATA) && (p.flags & RUDP_F_FIN))
            c->ack_now = 1;
        return;
    }
    c->tcb.pkts_in++;
    c->last_recv_us = now;
    switch (p.type) {
    case RUDP_T_COOKIE:
        client_handshake(c, &p, now);
        return;
    case RUDP_T_ECHO:
        if (c->state == RUDP_ESTABLISHED)
            c->ack_now = 1;    /* our first ACK was lost */
        return;
    case RUDP_T_SEG:
    case RUDP_T_DATA:
        break;
    default:
        return;
    }
    if (c->state == RUDP_SYN_SENT)
        return;
    if (c->state == RUDP_ECHO_SENT) {
        if (p.type == RUDP_T_DATA)
            return;    /* the listener's first SEG (its ACK) establishes */
        c->state = RUDP_ESTABLISHED;
        c->hs_deadline = NEVER;
        c->tcb.snd_wnd = p.wnd;
        c->events |= RUDP_EV_CONNECTED | RUDP_EV_WRITABLE;
    }
    if (seq_ge(p.seq, c->tcb.rcv_nxt) || p.len == 0)
        c->ts_recent = p.tsval;
    if (p.type == RUDP_T_SEG)
        on_ack(c, &p, now);
    if (p.len || (p.flags & RUDP_F_FIN))
        on_data(c, &p, now);
    if (p.flags & RUDP_F_ACKREQ)
        c->ack_now = 1;
}

/* ------------------------------------------------------------- timers */

static void on_rto(rudp_conn_t *c, uint64_t now)
{
    rudp_tcb_t *t = &c->tcb;
    t->rto_fired++;
    int only_fin = c->fin_consumed && c->slen == 0;
    /* The peer closed and our last flight, FIN included, is out: a peer
     * that left may have taken it and lost its final ACK. */
    int last_flight = c->fin_consumed && c->fin_sent;
    if (++c->rto_count > (only_fin || last_flight ? RUDP_FIN_RETRIES : RUDP_RTO_RETRIES)) {
        /* A peer that left after acknowledging all data but our FIN
         * finished cleanly; anything else is a dead path. */
        close_with(c, only_fin ? 0 : -ETIMEDOUT);
        return;
    }
    t->cc.ops->on_rto(&t->cc, t->inflight);
    for (uint32_t i = 0; i < c->seg_count; i++) {
        struct seg *s = seg_at(c, i);
        if (!s->sacked && !s->lost) {
            if (s->inflight) {
                t->inflight -= s->len;
                s->inflight = 0;
            }
            s->lost = 1;
            c->lost_pending++;
        }
    }
    c->retx_hint = 0;
    c->in_recovery = 1;
    c->recovery_point = t->snd_nxt;
    c->tlp_deadline = NEVER;
    c->tlp_armable = 0;
    t->rto_us = (uint32_t)MIN(2ull * t->rto_us, RUDP_RTO_MAX_US);
    c->rto_deadline = now + t->rto_us;
}

static void run_timers(rudp_conn_t *c, uint64_t now)
{
    if (c->state == RUDP_CLOSED)
        return;
    if (c->state != RUDP_ESTABLISHED) {
        if (c->hs_deadline <= now) {
            if (c->hs_tries >= c->cfg.syn_retries ||
                now - c->last_recv_us >= c->cfg.idle_timeout_us) {
                close_with(c, -ETIMEDOUT);
                return;
            }
            c->hs_send = 1;
        }
        return;
    }
    if (now - c->last_recv_us >= c->cfg.idle_timeout_us) {
        close_with(c, -ETIMEDOUT);
        return;
    }
    if (c->rto_deadline <= now)
        on_rto(c, now);
    if (c->state == RUDP_CLOSED)
        return;
    if (c->rack_deadline <= now)
        detect_losses(c, now);
    if (c->tlp_deadline <= now)
        on_tlp(c);
    if (c->delack_deadline <= now)
        c->ack_now = 1;
    if (c->persist_deadline <= now) {
        c->probe_pending = 1;
        c->persist_deadline = NEVER;
        c->persist_us = MIN(2 * c->persist_us, RUDP_PERSIST_MAX_US);
    }
    if (now - c->last_send_us >= c->cfg.keepalive_us)
        c->ack_now = 1;
}

uint64_t rudp_conn_deadline(const rudp_conn_t *c)
{
    if (c->state == RUDP_CLOSED)
        return c->ack_now ? 0 : NEVER;
    if (c->rst_pending || c->hs_send || c->ack_now || c->probe_pending)
        return 0;
    if (c->state == RUDP_SYN_SENT)
        return c->hs_deadline;
    if (c->state == RUDP_ECHO_SENT)
        return c->pace_blocked ? MIN(c->hs_deadline, c->next_tx_us) : c->hs_deadline;
    uint64_t d = MIN(c->rto_deadline, c->rack_deadline);
    d = MIN(d, c->tlp_deadline);
    d = MIN(d, c->persist_deadline);
    d = MIN(d, c->delack_deadline);
    d = MIN(d, c->last_send_us + c->cfg.keepalive_us);
    d = MIN(d, c->last_recv_us + c->cfg.idle_timeout_us);
    if (c->pace_blocked)
        d = MIN(d, c->next_tx_us);
    return d;
}

/* ------------------------------------------------------------- output */

static uint8_t sack_blocks(const rudp_conn_t *c, rudp_sack_t *out)
{
    uint8_t n = 0;
    for (unsigned i = 0; i < c->nooo; i++)
        if (c->ooo[i].s == c->last_block) {
            out[n].start = c->ooo[i].s;
            out[n++].end = c->ooo[i].e;
        }
    for (unsigned i = 0; i < c->nooo && n < RUDP_SACK_MAX; i++)
        if (c->ooo[i].s != c->last_block) {
            out[n].start = c->ooo[i].s;
            out[n++].end = c->ooo[i].e;
        }
    return n;
}

/* Fills the fields every SEG carries: acknowledgement, window, SACK. */
static void seg_header(rudp_conn_t *c, rudp_pkt_t *p, uint64_t now)
{
    memset(p, 0, offsetof(rudp_pkt_t, sack));
    p->type = RUDP_T_SEG;
    p->dst_cid = c->peer_cid;
    p->seq = c->tcb.snd_nxt;
    p->ack = c->tcb.rcv_nxt;
    c->tcb.rcv_wnd = rcv_wnd(c);
    p->wnd = c->tcb.rcv_wnd;
    p->tsval = (uint32_t)now ? (uint32_t)now : 1;
    p->tsecr = c->ts_recent;
    p->nsack = sack_blocks(c, p->sack);
    p->data = p->data2 = NULL;
    p->len = p->len2 = 0;
}

static size_t emit(rudp_conn_t *c, rudp_pkt_t *p, uint8_t *out, size_t cap, uint64_t now)
{
    size_t n = rudp_encode(p, out, cap);
    if (!n)
        return 0;
    c->last_send_us = now;
    if (p->type == RUDP_T_DATA)
        return n;
    /* every SEG acknowledges: nothing stays owed */
    c->ack_now = 0;
    c->ack_pending = 0;
    c->delack_deadline = NEVER;
    c->last_adv_wnd = p->wnd;
    return n;
}

/* A data segment goes out as DATA (20-byte header, no ack, window, tsecr
 * or SACK) when the peer would learn nothing from those fields: no ACK is
 * owed, no out-of-order data is held, and the window is the one last
 * advertised. A one-way transfer's data packets are then all DATA. Never
 * once the peer has sent its FIN: the close is TCP's, every segment acks,
 * so a lost pure ACK of the peer's FIN is repaired by our next segment (a
 * peer that leaves as soon as both FINs are acknowledged may otherwise take
 * our FIN and leave, its own FIN never acknowledged). */
static int ack_owed(const rudp_conn_t *c)
{
    return c->ack_now || c->ack_pending || c->delack_deadline != NEVER || c->nooo ||
           c->peer_fin || rcv_wnd(c) != c->last_adv_wnd;
}

/* Pacing: may a packet of `len` bytes leave now? */
static int pacing_ok(rudp_conn_t *c, uint64_t now)
{
    if (!c->tcb.cc.pacing_rate)
        return 1;
    if (c->next_tx_us + RUDP_PACING_BURST_US < now)
        c->next_tx_us = now - RUDP_PACING_BURST_US;
    if (c->next_tx_us <= now)
        return 1;
    c->pace_blocked = 1;
    return 0;
}

static void paced(rudp_conn_t *c, uint32_t len)
{
    if (c->tcb.cc.pacing_rate)
        c->next_tx_us += (uint64_t)len * 1000000u / c->tcb.cc.pacing_rate;
}

static int cwnd_ok(const rudp_conn_t *c, uint32_t len)
{
    return c->tcb.inflight == 0 || c->tcb.inflight + len <= c->tcb.cc.cwnd;
}

/* Sends segment s (new or again). */
static size_t send_seg(rudp_conn_t *c, struct seg *s, uint8_t *out, size_t cap, uint64_t now)
{
    rudp_pkt_t p;
    seg_header(c, &p, now);
    p.seq = s->seq;
    p.flags = s->fin ? RUDP_F_FIN : 0;
    if (c->state == RUDP_ECHO_SENT)
        p.flags |= RUDP_F_EARLY;
    uint32_t at = (c->shead + (s->seq - c->tcb.snd_una)) % c->scap;
    uint32_t first = MIN(s->len, c->scap - at);
    p.data = c->sbuf + at;
    p.len = first;
    p.data2 = c->sbuf;
    p.len2 = s->len - first;
    if (!ack_owed(c)) {
        p.type = RUDP_T_DATA;
        p.nsack = 0;
    }
    size_t n = emit(c, &p, out, cap, now);
    if (!n)
        return 0;
    if (c->tcb.inflight == 0) {
        c->first_sent_us = now;
        c->delivered_us = now;
    }
    s->xmits++;
    s->tx_order = ++c->tx_counter;
    s->sent_us = now;
    s->delivered = c->delivered;
    s->delivered_us = c->delivered_us;
    s->first_sent_us = c->first_sent_us;
    s->app_limited = c->app_limited_until != 0;
    s->inflight = 1;
    c->tcb.inflight += s->len;
    c->tcb.segs_sent++;
    c->tcb.bytes_sent += s->len;
    if (s->xmits > 1) {
        c->tcb.segs_retrans++;
        c->tcb.bytes_retrans += s->len;
    }
    paced(c, (uint32_t)n);
    if (c->rto_deadline == NEVER)
        c->rto_deadline = now + c->tcb.rto_us;
    arm_tlp(c, now);
    return n;
}

static size_t output_retransmit(rudp_conn_t *c, uint8_t *out, size_t cap, uint64_t now)
{
    for (uint32_t i = c->retx_hint; i < c->seg_count; i++) {
        struct seg *s = seg_at(c, i);
        if (!s->lost)
            continue;
        c->retx_hint = i;
        if (!cwnd_ok(c, s->len) || !pacing_ok(c, now))
            return 0;
        s->lost = 0;
        c->lost_pending--;
        return send_seg(c, s, out, cap, now);
    }
    c->retx_hint = c->seg_count;
    return 0;
}

static size_t output_new(rudp_conn_t *c, uint8_t *out, size_t cap, uint64_t now)
{
    rudp_tcb_t *t = &c->tcb;
    uint32_t unsent = unsent_bytes(c);
    int fin = c->fin_queued && !c->fin_sent;
    if (!unsent && !fin) {
        if (t->inflight < t->cc.cwnd)
            c->app_limited_until = MAX(c->delivered + t->inflight, 1);
        return 0;
    }
    if (c->seg_count == c->seg_cap)
        return 0;
    uint32_t edge = t->snd_una + t->snd_wnd;
    uint32_t room = seq_gt(edge, t->snd_nxt) ? edge - t->snd_nxt : 0;
    uint32_t want = MIN(unsent, c->cfg.mss);
    uint32_t len = MIN(want, room);
    if (len < want && (t->inflight || len == 0)) {
        /* window too small: wait for it to open (probe it when idle) */
        if (!t->inflight && c->seg_count == 0 && c->persist_deadline == NEVER)
            c->persist_deadline = now + c->persist_us;
        return 0;
    }
    if (!cwnd_ok(c, len) || !pacing_ok(c, now))
        return 0;
    struct seg *s = seg_at(c, c->seg_count);
    memset(s, 0, sizeof *s);
    s->seq = t->snd_nxt;
    s->len = len;
    s->fin = fin && len == unsent;
    c->seg_count++;
    t->snd_nxt += len + s->fin;
    if (s->fin)
        c->fin_sent = 1;
    return send_seg(c, s, out, cap, now);
}

static size_t output_handshake(rudp_conn_t *c, uint8_t *out, size_t cap, uint64_t now)
{
    if (!c->hs_send)
        return 0;
    rudp_pkt_t p;
    memset(&p, 0, sizeof p);
    p.tsval = (uint32_t)now ? (uint32_t)now : 1;
    p.wnd = c->rcap;
    p.mss = (uint16_t)c->cfg.mss;
    if (c->state == RUDP_SYN_SENT) {
        p.type = RUDP_T_SYN;
        p.src_cid = c->local_cid;
        p.isn = c->tcb.iss;
    } else {
        p.type = RUDP_T_ECHO;
        p.dst_cid = c->peer_cid;
        p.src_cid = c->local_cid;
        p.peer_isn = c->tcb.iss;
        p.cookie_time = c->cookie_time;
        p.srv_isn = c->tcb.irs;
        p.tsecr = c->ts_recent;
        memcpy(p.mac, c->mac, RUDP_MAC_LEN);
    }
    size_t n = rudp_encode(&p, out, cap);
    if (!n)
        return 0;
    c->hs_send = 0;
    c->hs_tries++;
    uint64_t rto = (uint64_t)c->tcb.rto_us << MIN(c->hs_tries - 1, 6u);
    c->hs_deadline = now + MIN(rto, (uint64_t)RUDP_RTO_MAX_US);
    c->hs_deadline = MIN(c->hs_deadline, c->last_recv_us + c->cfg.idle_timeout_us);
    c->last_send_us = now;
    return n;
}

size_t rudp_conn_output(rudp_conn_t *c, uint8_t *out, size_t cap, uint64_t now)
{
    run_timers(c, now);
    if (c->rst_pending) {
        rudp_pkt_t p;
        memset(&p, 0, sizeof p);
        p.type = RUDP_T_RST;
        p.dst_cid = c->peer_cid;
        c->rst_pending = 0;
        return rudp_encode(&p, out, cap);
    }
    if (c->state == RUDP_CLOSED) {
        if (!c->ack_now)
            return 0;
        rudp_pkt_t p;
        seg_header(c, &p, now);
        return emit(c, &p, out, cap, now);
    }
    if (c->state == RUDP_SYN_SENT)
        return output_handshake(c, out, cap, now);
    size_t n = 0;
    c->pace_blocked = 0;
    if (c->state == RUDP_ECHO_SENT) {
        /* The first flight follows the ECHO at once (one round trip less):
         * the listener creates the connection from the ECHO before it sees
         * the data behind it on the same path; if the ECHO is lost, the
         * data is resent once the connection exists. */
        n = output_handshake(c, out, cap, now);
        return n ? n : output_new(c, out, cap, now);
    }
    if (c->lost_pending)
        n = output_retransmit(c, out, cap, now);
    if (!n)
        n = output_new(c, out, cap, now);
    if (!n && (c->ack_now || c->probe_pending)) {
        rudp_pkt_t p;
        seg_header(c, &p, now);
        if (c->probe_pending) {
            p.flags = RUDP_F_ACKREQ;
            c->probe_pending = 0;
            c->persist_deadline = now + c->persist_us;
        }
        n = emit(c, &p, out, cap, now);
    }
    if (!n && c->fin_acked && c->fin_consumed)
        close_with(c, 0);
    return n;
}

/* ---------------------------------------------------------- app side */

size_t rudp_conn_write(rudp_conn_t *c, const void *data, size_t len)
{
    if (c->state == RUDP_CLOSED || c->fin_queued)
        return 0;
    size_t n = MIN(len, (size_t)(c->scap - c->slen));
    uint32_t at = (c->shead + c->slen) % c->scap;
    size_t first = MIN(n, (size_t)(c->scap - at));
    memcpy(c->sbuf + at, data, first);
    memcpy(c->sbuf, (const uint8_t *)data + first, n - first);
    c->slen += (uint32_t)n;
    return n;
}

size_t rudp_conn_read(rudp_conn_t *c, void *buf, size_t len)
{
    size_t n = MIN(len, (size_t)rbuf_used(c));
    size_t first = MIN(n, (size_t)(c->rcap - c->rhead));
    memcpy(buf, c->rbuf + c->rhead, first);
    memcpy((uint8_t *)buf + first, c->rbuf, n - first);
    c->rhead = (uint32_t)((c->rhead + n) % c->rcap);
    c->rseq += (uint32_t)n;
    /* Window update: the sender may be stalled on a closed window. */
    uint32_t w = rcv_wnd(c);
    if (n && c->state == RUDP_ESTABLISHED &&
        ((c->last_adv_wnd < 2 * c->cfg.mss && w >= 2 * c->cfg.mss) ||
         (w > c->last_adv_wnd && w - c->last_adv_wnd >= c->rcap / 4)))
        c->ack_now = 1;
    return n;
}

size_t rudp_conn_readable(const rudp_conn_t *c) { return rbuf_used(c); }

size_t rudp_conn_writable(const rudp_conn_t *c)
{
    return c->state == RUDP_CLOSED || c->fin_queued ? 0 : c->scap - c->slen;
}

size_t rudp_conn_unacked(const rudp_conn_t *c) { return c->slen; }

size_t rudp_conn_unsent(const rudp_conn_t *c) { return unsent_bytes(c); }

void rudp_conn_shutdown(rudp_conn_t *c) { c->fin_queued = 1; }

void rudp_conn_abort(rudp_conn_t *c)
{
    if (c->state == RUDP_CLOSED)
        return;
    if (c->peer_cid)
        c->rst_pending = 1;
    close_with(c, -ECONNABORTED);
}

unsigned rudp_conn_events(rudp_conn_t *c)
{
    unsigned e = c->events;
    c->events = 0;
    return e;
}

int rudp_conn_state(const rudp_conn_t *c) { return c->state; }
int rudp_conn_error(const rudp_conn_t *c) { return c->err; }
int rudp_conn_eof(const rudp_conn_t *c) { return c->fin_consumed && rbuf_used(c) == 0; }
uint32_t rudp_conn_local_cid(const rudp_conn_t *c) { return c->local_cid; }
const rudp_tcb_t *rudp_conn_tcb(const rudp_conn_t *c) { return &c->tcb; }
