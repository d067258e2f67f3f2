/* limits.h - every cap and default timeout of the core, in one place.
 *
 * Protocol layers keep their own limits in their own limits header; the
 * values here are the ones the loop, buffers and tools share. */
#ifndef PORTICO_CORE_LIMITS_H
#define PORTICO_CORE_LIMITS_H

/* Size of one block of the per-thread pool: the unit of a read buffer. */
#define POOL_BLOCK_SIZE        (16u * 1024u)
/* Free blocks a thread keeps before it gives memory back to malloc. */
#define POOL_MAX_FREE          256u

/* Events taken from epoll_wait in one iteration. */
#define LOOP_MAX_EVENTS        256
/* Longest a loop sleeps with no timer due (ms); bounds clock drift checks. */
#define LOOP_MAX_SLEEP_MS      60000

/* Upper bound on --workers. */
#define WORKERS_MAX            256

/* Default time (ms) a graceful stop waits for open connections. */
#define SHUTDOWN_TIMEOUT_MS    5000

/* Listen backlog (the kernel clamps it to net.core.somaxconn). */
#define LISTEN_BACKLOG         4096

/* Largest UDP payload over IPv4: 65535 - 20 (IP) - 8 (UDP). */
#define UDP_MAX_PAYLOAD        65507u

/* nc: bytes buffered from one side before it stops reading the other. */
#define NC_BUF_CAP             (256u * 1024u)
/* nc -u: how long (ms) to wait for replies after stdin ends, without -w. */
#define NC_UDP_LINGER_MS       2000

/* Longest log line; longer ones are cut. */
#define LOG_LINE_MAX           2048

#endif
