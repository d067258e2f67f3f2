/* rudp_sim.h - a deterministic network simulator for the rudp engine.
 *
 * Virtual time in microseconds; one client connection and one listener
 * (stateless cookie path plus the connection it accepts) joined by two
 * one-way links. Each link has a rate (a drop-tail queue in front of it),
 * a delay with jitter, random loss, bursty loss (Gilbert-Elliott), reordering
 * (an extra delay for some packets), duplication and corruption (a flipped
 * byte), all drawn from one xorshift generator seeded per case, so that a
 * failing case replays exactly. The engine does all the I/O through here. */
#ifndef PORTICO_TESTS_RUDP_SIM_H
#define PORTICO_TESTS_RUDP_SIM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rudp/conn.h"

typedef struct sim_link {
    uint64_t rate;          /* bytes/s, 0 = unlimited */
    uint64_t delay_us, jitter_us;
    uint64_t queue_bytes;   /* drop-tail limit, 0 = unlimited */
    double loss;            /* random loss probability */
    double burst_enter, burst_leave; /* Gilbert-Elliott: good->bad, bad->good */
    double reorder;         /* probability of an extra delay */
    uint64_t reorder_us;
    double dup, corrupt;
    /* state */
    int bad;
    uint64_t busy_until;
    /* drop exactly the n-th data-carrying packet (1-based), 0 = none */
    unsigned drop_data_nth, data_seen;
    uint64_t sent, lost, dups, corrupted;
    uint64_t data_pkts, data_only;  /* packets with payload; of them, type DATA */
} sim_link_t;

struct sim_pkt {
    uint64_t at;
    int to_server;
    size_t len;
    uint8_t buf[RUDP_PKT_MAX];
};

#define SIM_MAX_PKTS 8192

typedef struct sim {
    uint64_t now, rng;
    sim_link_t up, down;          /* up: client -> server */
    struct sim_pkt *pkts[SIM_MAX_PKTS];
    size_t npkts;
    rudp_conn_t *client, *server;
    rudp_cfg_t ccfg, scfg;
    uint8_t secret[RUDP_SECRET_LEN];
    uint8_t client_addr[6];
    unsigned accepts;             /* connections the listener created */
    uint64_t stalls;
    uint64_t listener_in, listener_out; /* bytes into/out of the stateless path */
} sim_t;

static inline uint64_t sim_rand(sim_t *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

static inline double sim_unit(sim_t *s) { return (double)(sim_rand(s) >> 11) / 9007199254740992.0; }

static inline void sim_init(sim_t *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    s->now = 1000000;
    rudp_cfg_default(&s->ccfg);
    rudp_cfg_default(&s->scfg);
    s->ccfg.local_cid = (uint32_t)sim_rand(s) | 1;
    s->ccfg.isn = (uint32_t)sim_rand(s);
    for (int i = 0; i < RUDP_SECRET_LEN; i++)
        s->secret[i] = (uint8_t)sim_rand(s);
    memcpy(s->client_addr, "\x0a\x00\x00\x01\x30\x39", 6);
}

/* Puts a packet on a link, applying its impairments. */
static inline void sim_send(sim_t *s, int to_server, const uint8_t *buf, size_t len)
{
    sim_link_t *l = to_server ? &s->up : &s->down;
    l->sent++;
    if ((buf[1] == RUDP_T_DATA && len > RUDP_DATA_HDR_LEN) ||
        (buf[1] == RUDP_T_SEG && len > RUDP_SEG_HDR_LEN + 8u * buf[3])) {
        l->data_pkts++;
        l->data_only += buf[1] == RUDP_T_DATA;
    }
    if (len > RUDP_DATA_HDR_LEN && (buf[1] == RUDP_T_SEG || buf[1] == RUDP_T_DATA) &&
        l->drop_data_nth) {
        /* a data packet: more than header + SACK blocks */
        size_t hdr = buf[1] == RUDP_T_DATA ? RUDP_DATA_HDR_LEN : RUDP_SEG_HDR_LEN + 8u * buf[3];
        if (len > hdr && ++l->data_seen == l->drop_data_nth) {
            l->lost++;
            return;
        }
    }
    if (l->burst_enter > 0) {
        if (!l->bad && sim_unit(s) < l->burst_enter)
            l->bad = 1;
        else if (l->bad && sim_unit(s) < l->burst_leave)
            l->bad = 0;
        if (l->bad) {
            l->lost++;
            return;
        }
    }
    if (l->loss > 0 && sim_unit(s) < l->loss) {
        l->lost++;
        return;
    }
    uint64_t depart = s->now;
    if (l->rate) {
        if (l->busy_until < s->now)
            l->busy_until = s->now;
        uint64_t queued = (l->busy_until - s->now) * l->rate / 1000000u;
        if (l->queue_bytes && queued + len > l->queue_bytes) {
            l->lost++;
            return;
        }
        l->busy_until += (uint64_t)len * 1000000u / l->rate;
        depart = l->busy_until;
    }
    int copies = 1 + (l->dup > 0 && sim_unit(s) < l->dup);
    l->dups += (uint64_t)(copies - 1);
    for (int k = 0; k < copies && s->npkts < SIM_MAX_PKTS; k++) {
        struct sim_pkt *p = malloc(sizeof *p);
        if (!p)
            return;
        p->at = depart + l->delay_us;
        if (l->jitter_us)
            p->at += sim_rand(s) % l->jitter_us;
        if (l->reorder > 0 && sim_unit(s) < l->reorder)
            p->at += l->reorder_us;
        p->to_server = to_server;
        p->len = len;
        memcpy(p->buf, buf, len);
        if (l->corrupt > 0 && sim_unit(s) < l->corrupt) {
            p->buf[sim_rand(s) % len] ^= (uint8_t)(1u << (sim_rand(s) % 8));
            l->corrupted++;
        }
        s->pkts[s->npkts++] = p;
    }
}

static inline void sim_drain(sim_t *s, rudp_conn_t *c, int to_server)
{
    uint8_t out[RUDP_PKT_MAX];
    size_t n;
    while (c && (n = rudp_conn_output(c, out, sizeof out, s->now)) > 0)
        sim_send(s, to_server, out, n);
}

/* Hands a packet to the server side: its connection when the id matches,
 * else the stateless listener. */
static inline void sim_server_input(sim_t *s, const uint8_t *buf, size_t len)
{
    uint32_t dst = len >= 8 ? (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
                              (uint32_t)buf[6] << 8 | buf[7] : 0;
    if (s->server && dst && dst == rudp_conn_local_cid(s->server)) {
        rudp_conn_input(s->server, buf, len, s->now);
        return;
    }
    uint8_t reply[RUDP_PKT_MAX];
    size_t rlen;
    rudp_accept_t acc;
    s->listener_in += len;
    int v = rudp_listen_input(s->secret, buf, len, s->client_addr, sizeof s->client_addr,
                              s->now, reply, sizeof reply, &rlen, &acc);
    if (v == RUDP_L_REPLY) {
        s->listener_out += rlen;
        sim_send(s, 0, reply, rlen);
    } else if (v == RUDP_L_ACCEPT && !s->server) {
        s->server = rudp_conn_accept(&s->scfg, &acc, s->now);
        s->accepts++;
    }
}

/* Earliest packet, or SIM_MAX_PKTS when none. */
static inline size_t sim_next_pkt(const sim_t *s)
{
    size_t best = SIM_MAX_PKTS;
    for (size_t i = 0; i < s->npkts; i++)
        if (best == SIM_MAX_PKTS || s->pkts[i]->at < s->pkts[best]->at)
            best = i;
    return best;
}

/* Advances virtual time to the next event (a packet arrival or a timer),
 * capped at `limit`, and handles everything due then. */
static inline void sim_step(sim_t *s, uint64_t limit)
{
    uint64_t t = limit;
    size_t i = sim_next_pkt(s);
    if (i != SIM_MAX_PKTS && s->pkts[i]->at < t)
        t = s->pkts[i]->at;
    if (s->client && rudp_conn_deadline(s->client) < t)
        t = rudp_conn_deadline(s->client);
    if (s->server && rudp_conn_deadline(s->server) < t)
        t = rudp_conn_deadline(s->server);
    if (t > s->now)
        s->now = t;
    else if (i == SIM_MAX_PKTS || s->pkts[i]->at > s->now) {
        s->stalls++;     /* a deadline in the past that produces nothing: a busy loop */
        s->now++;
    }
    while ((i = sim_next_pkt(s)) != SIM_MAX_PKTS && s->pkts[i]->at <= s->now) {
        struct sim_pkt *p = s->pkts[i];
        s->pkts[i] = s->pkts[--s->npkts];
        if (p->to_server)
            sim_server_input(s, p->buf, p->len);
        else if (s->client)
            rudp_conn_input(s->client, p->buf, p->len, s->now);
        free(p);
    }
    sim_drain(s, s->client, 1);
    sim_drain(s, s->server, 0);
}

static inline void sim_dispose(sim_t *s)
{
    for (size_t i = 0; i < s->npkts; i++)
        free(s->pkts[i]);
    s->npkts = 0;
    rudp_conn_free(s->client);
    rudp_conn_free(s->server);
    s->client = s->server = NULL;
}

#endif
