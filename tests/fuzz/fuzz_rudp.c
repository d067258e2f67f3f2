/* fuzz_rudp.c - libFuzzer target for the rudp packet decoder, the
 * stateless listener, a live connection's input path, and the xfer header.
 *
 * The input is taken as a packet twice: as it is (the CRC almost always
 * rejects it), and with its CRC field fixed so that the decoder and the
 * connection state machine see every field value. A decoded packet must
 * encode back to the same bytes' meaning; a listener reply is never longer
 * than the packet that caused it. Any violation calls abort(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rudp/conn.h"
#include "rudp/xfermsg.h"

static void fix_crc(uint8_t *b, size_t n)
{
    memset(b + 8, 0, 4);
    uint32_t c = rudp_crc32c(0, b, n);
    b[8] = (uint8_t)(c >> 24); b[9] = (uint8_t)(c >> 16);
    b[10] = (uint8_t)(c >> 8); b[11] = (uint8_t)c;
}

static void check_round_trip(const uint8_t *b, size_t n)
{
    rudp_pkt_t p, q;
    if (rudp_decode(b, n, &p) != 0)
        return;
    uint8_t out[RUDP_PKT_MAX];
    size_t m = rudp_encode(&p, out, sizeof out);
    if (!m || rudp_decode(out, m, &q) != 0)
        abort();
    if (q.type != p.type || q.dst_cid != p.dst_cid || q.len != p.len ||
        (p.type == RUDP_T_SEG && (q.seq != p.seq || q.ack != p.ack || q.nsack != p.nsack)) ||
        (p.type == RUDP_T_DATA && (q.seq != p.seq || q.tsval != p.tsval || q.nsack != 0)) ||
        (p.len && memcmp(q.data, p.data, p.len) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > RUDP_PKT_MAX)
        return 0;
    uint8_t *b = malloc(size ? size : 1);
    memcpy(b, data, size);
    rudp_pkt_t p;
    (void)rudp_decode(b, size, &p);
    if (size >= RUDP_HDR_LEN) {
        b[0] = RUDP_VERSION;
        fix_crc(b, size);
    }
    check_round_trip(b, size);

    static const uint8_t secret[RUDP_SECRET_LEN] = { 1, 2, 3 };
    uint8_t reply[RUDP_PKT_MAX];
    size_t rlen = 0;
    rudp_accept_t acc;
    int v = rudp_listen_input(secret, b, size, "peer", 4, 5000000, reply, sizeof reply, &rlen, &acc);
    if (v == RUDP_L_REPLY && rlen > size)
        abort();

    /* A server connection with small buffers; its cid is the packet's. */
    rudp_cfg_t cfg;
    rudp_cfg_default(&cfg);
    cfg.sndbuf = cfg.rcvbuf = RUDP_BUF_MIN;
    memset(&acc, 0, sizeof acc);
    acc.local_cid = size >= 8 ? (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7] : 1;
    acc.peer_cid = 7;
    acc.iss = 1000;
    acc.peer_isn = 0;
    acc.peer_wnd = 100000;
    rudp_conn_t *c = rudp_conn_accept(&cfg, &acc, 1000);
    if (c) {
        uint8_t out[RUDP_PKT_MAX];
        rudp_conn_write(c, data, size < 3000 ? size : 3000);
        for (int k = 0; k < 4 && rudp_conn_output(c, out, sizeof out, 1000); k++)
            ;
        rudp_conn_input(c, b, size, 2000);
        rudp_conn_input(c, b, size, 3000);   /* duplicates too */
        for (int k = 0; k < 64 && rudp_conn_output(c, out, sizeof out, 4000); k++)
            ;
        uint8_t rd[RUDP_BUF_MIN];
        rudp_conn_read(c, rd, sizeof rd);
        (void)rudp_conn_deadline(c);
        rudp_conn_free(c);
    }

    xfer_hdr_t h;
    int r = xfer_hdr_decode(data, size, &h);
    if (r > 0 && (!xfer_name_ok(h.name, strlen(h.name)) || (size_t)r > size))
        abort();
    free(b);
    return 0;
}
