/* nfq_delay.c - delays every packet of an NFQUEUE by a fixed time.
 *
 *   nfq_delay QUEUE_NUM DELAY_MS
 *
 * For bench/xfer.sh, on a kernel without netem: iptables sends packets to
 * queue QUEUE_NUM (with --queue-bypass, so that they pass when this program
 * is not running); each is remembered by id and accepted DELAY_MS after it
 * arrived, in arrival order, so the delay keeps the order of the link. Only
 * metadata is copied to user space. Runs until SIGINT/SIGTERM.
 * Built by bench/xfer.sh (libnetfilter-queue-dev, scripts/deps.sh --bench). */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING        (1u << 17)   /* packets held at once */
#define QUEUE_MAX   (1u << 17)   /* kernel-side queue length */

struct held { uint32_t id; uint64_t due_us; };

static struct held ring[RING];
static uint32_t head, count;
static uint64_t delay_us;
static volatile sig_atomic_t stop;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *arg)
{
    (void)msg; (void)arg;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (!ph)
        return 0;
    uint32_t id = ntohl(ph->packet_id);
    if (count == RING)   /* full: let it through now rather than lose it */
        return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
    ring[(head + count) % RING] = (struct held){ id, now_us() + delay_us };
    count++;
    return 0;
}

static void on_signal(int s) { (void)s; stop = 1; }

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: nfq_delay QUEUE_NUM DELAY_MS\n");
        return 2;
    }
    int qnum = atoi(argv[1]);
    delay_us = (uint64_t)(atof(argv[2]) * 1000.0);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    struct nfq_handle *h = nfq_open();
    if (!h) {
        perror("nfq_open");
        return 1;
    }
    struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)qnum, on_packet, NULL);
    if (!qh) {
        perror("nfq_create_queue");
        return 1;
    }
    nfq_set_mode(qh, NFQNL_COPY_META, 0);
    nfq_set_queue_maxlen(qh, QUEUE_MAX);
    int fd = nfq_fd(h);
    int sz = 16 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz);
    static char buf[65536];

    while (!stop) {
        int timeout = -1;
        if (count) {
            uint64_t now = now_us(), due = ring[head].due_us;
            timeout = due > now ? (int)((due - now + 999) / 1000) : 0;
        }
        struct pollfd p = { fd, POLLIN, 0 };
        int r = poll(&p, 1, timeout);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0) {
            for (;;) {
                ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n <= 0)
                    break;
                nfq_handle_packet(h, buf, (int)n);
            }
        }
        uint64_t now = now_us();
        while (count && ring[head].due_us <= now) {
            nfq_set_verdict(qh, ring[head].id, NF_ACCEPT, 0, NULL);
            head = (head + 1) % RING;
            count--;
        }
    }
    while (count) {   /* release what is held before leaving */
        nfq_set_verdict(qh, ring[head].id, NF_ACCEPT, 0, NULL);
        head = (head + 1) % RING;
        count--;
    }
    nfq_destroy_queue(qh);
    nfq_close(h);
    return 0;
}
