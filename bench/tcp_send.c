/* tcp_send.c - sends one file over kernel TCP and exits once the receiver
 * has it, for bench/xfer.sh.
 *
 *   tcp_send FILE HOST PORT CC [SECONDS]
 *
 * Connects with TCP_CONGESTION set to CC (before the SYN), sends FILE with
 * sendfile(), shuts its side down and reads until the receiver closes: the
 * receiver (socat -u TCP-LISTEN... OPEN:...) closes once it has read every
 * byte, so the exit marks the moment the sender knows the last byte arrived -
 * what `portico xfer send` waits for too (the receiver's verdict). With
 * SECONDS, the sender stops after that long and aborts the connection (RST)
 * even if the file is not through; the bench then counts what the receiver
 * holds. Built by bench/xfer.sh. Exit 0 when the receiver closed cleanly,
 * 3 when the time cap cut the transfer, 1 on errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
    fprintf(stderr, "tcp_send: %s: %s\n", what, strerror(errno));
    return 1;
}

/* Aborts the connection: SO_LINGER 0 makes close() send an RST. */
static int abort_conn(int s)
{
    struct linger l = { 1, 0 };
    setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(s);
    return 3;
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: tcp_send FILE HOST PORT CC [SECONDS]\n");
        return 2;
    }
    double cap = argc == 6 ? atof(argv[5]) : 0, t0 = now_s();
    int f = open(argv[1], O_RDONLY);
    struct stat st;
    if (f < 0 || fstat(f, &st) < 0)
        return fail(argv[1]);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return fail("socket");
    if (setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, argv[4], (socklen_t)strlen(argv[4])) < 0)
        return fail("TCP_CONGESTION");
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3])) };
    if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) {
        fprintf(stderr, "tcp_send: bad address %s\n", argv[2]);
        return 2;
    }
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0)
        return fail("connect");
    if (cap > 0)   /* sendfile must not block past the cap */
        fcntl(s, F_SETFL, O_NONBLOCK);
    off_t off = 0;
    while (off < st.st_size) {
        if (cap > 0) {
            double left = cap - (now_s() - t0);
            if (left <= 0)
                return abort_conn(s);
            struct pollfd p = { s, POLLOUT, 0 };
            if (poll(&p, 1, (int)(left * 1000) + 1) == 0)
                continue;
        }
        ssize_t n = sendfile(s, f, &off, (size_t)(st.st_size - off));
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return fail("sendfile");
    }
    shutdown(s, SHUT_WR);
    char buf[4096];
    for (;;) {
        if (cap > 0) {
            double left = cap - (now_s() - t0);
            struct pollfd p = { s, POLLIN, 0 };
            if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) == 0)
                return abort_conn(s);
        }
        ssize_t n = read(s, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0 && errno != EINTR)
            return fail("read");
    }
    close(s);
    return 0;
}
