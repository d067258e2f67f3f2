/* listen.c - the stateless side of the handshake: SYN -> COOKIE, ECHO ->
 * accept, anything else for an unknown connection -> RST or nothing.
 *
 * The cookie is HMAC-SHA256(secret, peer address | time | client cid |
 * client ISN). Its first 8 bytes become the server's connection id and ISN,
 * the next 16 are the tag the client must echo. Nothing is stored: a
 * spoofed SYN costs one HMAC and a reply no longer than the SYN. */
#include "rudp/conn.h"

#include <sodium.h>
#include <string.h>

static void cookie_mac(const uint8_t secret[RUDP_SECRET_LEN], const void *peer,
                       size_t peerlen, uint32_t time_s, uint32_t cid, uint32_t isn,
                       uint8_t out[32])
{
    uint8_t msg[128 + 12];
    if (peerlen > 128)
        peerlen = 128;
    memcpy(msg, peer, peerlen);
    uint32_t v[3] = { time_s, cid, isn };
    memcpy(msg + peerlen, v, sizeof v);
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, secret, RUDP_SECRET_LEN);
    crypto_auth_hmacsha256_update(&st, msg, peerlen + sizeof v);
    crypto_auth_hmacsha256_final(&st, out);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Constant-time comparison: the tag must not leak through timing. */
static int tag_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

int rudp_listen_input(const uint8_t secret[RUDP_SECRET_LEN], const uint8_t *pkt,
                      size_t len, const void *peer, size_t peerlen, uint64_t now_us,
                      uint8_t *reply, size_t cap, size_t *replylen, rudp_accept_t *acc)
{
    rudp_pkt_t p, r;
    uint8_t mac[32];
    uint32_t now_s = (uint32_t)(now_us / 1000000u);
    *replylen = 0;
    if (rudp_decode(pkt, len, &p) < 0)
        return RUDP_L_DROP;
    switch (p.type) {
    case RUDP_T_SYN:
        if (p.dst_cid != 0 || p.src_cid == 0)
            return RUDP_L_DROP;
        cookie_mac(secret, peer, peerlen, now_s, p.src_cid, p.isn, mac);
        memset(&r, 0, sizeof r);
        r.type = RUDP_T_COOKIE;
        r.dst_cid = p.src_cid;
        r.cookie_time = now_s;
        r.srv_cid = be32(mac) | 1u;     /* never 0: 0 means "no connection" */
        r.srv_isn = be32(mac + 4);
        memcpy(r.mac, mac + 8, RUDP_MAC_LEN);
        r.tsval = (uint32_t)now_us;
        r.tsecr = p.tsval;
        *replylen = rudp_encode(&r, reply, cap < len ? cap : len);
        return *replylen ? RUDP_L_REPLY : RUDP_L_DROP;
    case RUDP_T_ECHO:
        if (now_s - p.cookie_time > RUDP_COOKIE_LIFE_S)
            return RUDP_L_DROP;
        cookie_mac(secret, peer, peerlen, p.cookie_time, p.src_cid, p.peer_isn, mac);
        if ((be32(mac) | 1u) != p.dst_cid || be32(mac + 4) != p.srv_isn ||
            !tag_equal(mac + 8, p.mac, RUDP_MAC_LEN))
            return RUDP_L_DROP;
        memset(acc, 0, sizeof *acc);
        acc->local_cid = p.dst_cid;
        acc->iss = p.srv_isn;
        acc->peer_cid = p.src_cid;
        acc->peer_isn = p.peer_isn;
        acc->peer_wnd = p.wnd;
        acc->peer_mss = p.mss;
        acc->tsval = p.tsval;
        /* the COOKIE's tsval came back: the server's first RTT sample */
        acc->rtt_us = p.tsecr ? (uint32_t)now_us - p.tsecr : 0;
        return RUDP_L_ACCEPT;
    case RUDP_T_SEG:
    case RUDP_T_DATA:
        /* Data that overtook its ECHO (or outlived a lost one): the client
         * resends it once connected; an RST would only race the ACK. */
        if (p.flags & RUDP_F_EARLY)
            return RUDP_L_DROP;
        /* The peer believes in a connection we do not have (we restarted,
         * or it outlived our close): tell it, with fewer bytes than it sent. */
        memset(&r, 0, sizeof r);
        r.type = RUDP_T_RST;
        r.dst_cid = p.dst_cid;
        *replylen = rudp_encode(&r, reply, cap < len ? cap : len);
        return *replylen ? RUDP_L_REPLY : RUDP_L_DROP;
    default:
        return RUDP_L_DROP;
    }
}
