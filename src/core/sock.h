/* sock.h - addresses and sockets: parsing "host:port" forms, resolving,
 * listening, connecting and accepting, all non-blocking and close-on-exec.
 *
 * Functions that can fail for a reason a user must read take an `err`
 * buffer and fill it with one readable sentence (no trailing newline). */
#ifndef PORTICO_CORE_SOCK_H
#define PORTICO_CORE_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADDR_STRLEN 64   /* "[ffff:...:ffff%ifname]:65535" fits */
#define HOST_MAX    256
#define ERR_MAX     256

typedef struct addr {
    struct sockaddr_storage ss;
    socklen_t len;
} addr_t;

/* Parses a decimal port 1-65535 (no sign, no spaces, no leading '+').
 * Returns 0 or -EINVAL. */
int port_parse(const char *s, uint16_t *port);

/* Splits a listen/connect spec into host and port. Accepted forms:
 * "127.0.0.1:8080", "[::1]:8080", ":8080" (every address: host ""),
 * "localhost:8080". Returns 0, or -EINVAL with a message in err. */
int addr_split(const char *spec, char *host, size_t hostlen, uint16_t *port,
               char *err, size_t errlen);

/* An address literal into *out with port set: "127.0.0.1", "::1",
 * "fe80::1%eth0"; NULL or "" is the wildcard when `passive` (IPv6 "::",
 * which takes IPv4 too, or 0.0.0.0 where IPv6 is missing). family
 * (AF_UNSPEC, AF_INET or AF_INET6) restricts it. Returns 1, 0 when host is
 * a name to look up (dns/hostaddr.h does both), or -1 with err set for a
 * literal of the other family or an IPv6 literal whose zone is empty or
 * names no interface. */
int addr_literal(const char *host, uint16_t port, int family, int passive,
                 addr_t *out, char *err, size_t errlen);

/* Formats "1.2.3.4:80" or "[::1]:80" into buf (ADDR_STRLEN bytes). */
const char *addr_format(const addr_t *a, char *buf, size_t len);

uint16_t addr_port(const addr_t *a);

/* 127.0.0.0/8, ::1 or an IPv4-mapped 127.x address. */
int addr_is_loopback(const addr_t *a);

/* Creates a socket bound to `a` (SOCK_STREAM listening, or SOCK_DGRAM bound)
 * with SO_REUSEADDR, and SO_REUSEPORT when `reuseport` is set. An IPv6
 * wildcard address also accepts IPv4. Returns the fd or -errno. */
int sock_listen(const addr_t *a, int socktype, int reuseport);

/* Fails with -EADDRINUSE when anything, even an SO_REUSEPORT group of
 * another process, holds `a`'s port: binds a probe socket without
 * SO_REUSEPORT and closes it. Returns 0 or -errno. */
int sock_probe_free(const addr_t *a, int socktype);

/* Opens `groups` sets of sockets bound to addrs[0..naddrs), one set per
 * worker: fds[g * naddrs + i] is group g's socket for addrs[i]. With
 * `reuseport` every socket has SO_REUSEPORT, and the port is first probed
 * with sock_probe_free() so that a port someone else holds is refused
 * instead of shared. An address with port 0 gets one port from the kernel
 * for the first group, which the other groups join. Returns 0, or -1 with
 * "listen on ADDR: reason" in err
 * after closing whatever it opened. */
int sock_listen_group(const addr_t *addrs, int naddrs, int socktype, int groups,
                      int reuseport, int *fds, char *err, size_t errlen);

/* Starts a non-blocking connect. Returns the fd (connected or in progress)
 * or -errno. */
int sock_connect(const addr_t *a, int socktype);

/* Result of a non-blocking connect once the fd is writable: 0 or -errno. */
int sock_connect_result(int fd);

/* accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC; peer may be NULL.
 * Returns the fd or -errno (-EAGAIN when the queue is empty). */
int sock_accept(int lfd, addr_t *peer);

int sock_local(int fd, addr_t *a);
int sock_peer(int fd, addr_t *a);
int sock_nodelay(int fd);

/* TCP congestion control: the name a socket uses (into name, len bytes;
 * accepted sockets inherit their listener's), and setting it ("cubic",
 * "bbr": one of /proc/sys/net/ipv4/tcp_available_congestion_control).
 * Return 0 or -errno. */
int sock_congestion(int fd, char *name, size_t len);
int sock_set_congestion(int fd, const char *name);

#endif
