#include "core/sock.h"
#include "core/limits.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int port_parse(const char *s, uint16_t *port)
{
    unsigned long v = 0;
    if (*s == '\0')
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || p - s >= 5)
            return -EINVAL;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int addr_split(const char *spec, char *host, size_t hostlen, uint16_t *port,
               char *err, size_t errlen)
{
    const char *h = spec, *colon;
    size_t hl;

    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (end == NULL) {
            snprintf(err, errlen, "missing ']' in address '%s'", spec);
            return -EINVAL;
        }
        h = spec + 1;
        hl = (size_t)(end - h);
        if (end[1] != ':') {
            snprintf(err, errlen, "missing ':PORT' after ']' in address '%s'", spec);
            return -EINVAL;
        }
        colon = end + 1;
        struct in6_addr a6;
        char tmp[HOST_MAX];
        if (hl == 0 || hl >= sizeof tmp) {
            snprintf(err, errlen, "invalid IPv6 address in '%s'", spec);
            return -EINVAL;
        }
        memcpy(tmp, h, hl);
        tmp[hl] = '\0';
        char *zone = strchr(tmp, '%'); /* fe80::1%eth0: the zone is checked later */
        if (zone != NULL)
            *zone = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1 || (zone != NULL && zone[1] == '\0')) {
            if (zone != NULL)
                *zone = '%';
            snprintf(err, errlen, "invalid IPv6 address '%s'", tmp);
            return -EINVAL;
        }
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL) {
            snprintf(err, errlen, "missing ':PORT' in address '%s'", spec);
            return -EINVAL;
        }
        if (memchr(spec, ':', (size_t)(colon - spec)) != NULL) {
            snprintf(err, errlen, "IPv6 address must be in brackets, as in '[::1]:8080': '%s'", spec);
            return -EINVAL;
        }
        hl = (size_t)(colon - spec);
    }
    if (hl >= hostlen) {
        snprintf(err, errlen, "host name too long in '%s'", spec);
        return -EINVAL;
    }
    if (port_parse(colon + 1, port) < 0) {
        snprintf(err, errlen, "invalid port '%s' in '%s': must be 1-65535", colon + 1, spec);
        return -EINVAL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    return 0;
}

/* One address literal into a: IPv4 dotted quad, or IPv6 with an optional
 * %zone (an interface name or index). Returns 0, -1 when s is not one, or
 * -2 for an IPv6 literal whose zone is empty or names no interface (no
 * name either: getaddrinfo() refused it too), with *zerr set. */
static int literal_parse(const char *s, uint16_t port, addr_t *a, const char **zerr)
{
    memset(a, 0, sizeof *a);
    struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
    /* IPv4 in every form getaddrinfo() took as a number ("127.1",
     * "0x7f.0.0.1"): inet_aton() without its tolerance of trailing text. */
    if (s[strspn(s, "0123456789abcdefABCDEFxX.")] == '\0' && inet_aton(s, &in->sin_addr) != 0) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        a->len = sizeof *in;
        return 0;
    }
    char tmp[HOST_MAX];
    size_t n = strlen(s);
    if (n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n + 1);
    char *zone = strchr(tmp, '%');
    if (zone != NULL)
        *zone++ = '\0';
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
    if (inet_pton(AF_INET6, tmp, &in6->sin6_addr) != 1)
        return -1;
    if (zone != NULL) {
        char *end;
        unsigned long idx = strtoul(zone, &end, 10);
        if (*zone == '\0' || (*end != '\0' && (idx = if_nametoindex(zone)) == 0)
            || idx > UINT32_MAX) {
            *zerr = *zone == '\0' ? "" : s + (zone - tmp);
            return -2;
        }
        in6->sin6_scope_id = (uint32_t)idx;
    }
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    a->len = sizeof *in6;
    return 0;
}

int addr_literal(const char *host, uint16_t port, int family, int passive,
                 addr_t *out, char *err, size_t errlen)
{
    if (host == NULL || *host == '\0') {
        if (!passive)
            return 0;
        /* Every address: one IPv6 wildcard socket that also takes IPv4,
         * falling back to 0.0.0.0 where IPv6 is missing. */
        if (family == AF_UNSPEC) {
            int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            family = fd == -1 ? AF_INET : AF_INET6;
            if (fd != -1)
                close(fd);
        }
        literal_parse(family == AF_INET6 ? "::" : "0.0.0.0", port, out, NULL);
        return 1;
    }
    const char *zone;
    int rc = literal_parse(host, port, out, &zone);
    if (rc == -2) {
        if (*zone == '\0')
            snprintf(err, errlen, "cannot use '%s': an empty zone", host);
        else
            snprintf(err, errlen, "cannot use '%s': no network interface '%s'", host, zone);
        return -1;
    }
    if (rc < 0)
        return 0;
    if (family != AF_UNSPEC && out->ss.ss_family != family) {
        snprintf(err, errlen, "cannot use '%s': not an %s address", host,
                 family == AF_INET ? "IPv4" : "IPv6");
        return -1;
    }
    return 1;
}

uint16_t addr_port(const addr_t *a)
{
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

int addr_is_loopback(const addr_t *a)
{
    if (a->ss.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr) >> 24) == 127;
    if (a->ss.ss_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(x) || (IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127);
    }
    return 0;
}

const char *addr_format(const addr_t *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    } else {
        snprintf(buf, len, "(unknown family %d)", a->ss.ss_family);
    }
    return buf;
}

static int set_int(int fd, int level, int opt, int v)
{
    return setsockopt(fd, level, opt, &v, sizeof v) == -1 ? -errno : 0;
}

static int bind_socket(const addr_t *a, int socktype, int reuseport)
{
    int fd = socket(a->ss.ss_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    int rc = 0;
    /* TCP needs SO_REUSEADDR to rebind over TIME_WAIT; on UDP it would let
     * two unrelated sockets share a port, so it stays off there. */
    if (socktype == SOCK_STREAM)
        rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && reuseport)
        rc = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (rc == 0 && a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
        int any = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
        rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? 0 : 1);
    }
    if (rc == 0 && bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int sock_congestion(int fd, char *name, size_t len)
{
    socklen_t n = (socklen_t)(len > 0 ? len - 1 : 0);
    if (len == 0)
        return -EINVAL;
    if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &n) == -1)
        return -errno;
    name[n] = '\0';
    return 0;
}

int sock_set_congestion(int fd, const char *name)
{
    return setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)strlen(name)) == -1 ? -errno : 0;
}

int sock_listen(const addr_t *a, int socktype, int reuseport)
{
    int fd = bind_socket(a, socktype, reuseport);
    if (fd < 0 || socktype != SOCK_STREAM)
        return fd;
    if (listen(fd, LISTEN_BACKLOG) == -1) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int sock_probe_free(const addr_t *a, int socktype)
{
    if (addr_port(a) == 0)
        return 0;
    int fd = bind_socket(a, socktype, 0);
    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

int sock_listen_group(const addr_t *addrs, int naddrs, int socktype, int groups,
                      int reuseport, int *fds, char *err, size_t errlen)
{
    int n = 0;
    for (int g = 0; g < groups; g++) {
        for (int i = 0; i < naddrs; i++, n++) {
            addr_t at = addrs[i];
            /* Port 0: the kernel picks one for the first group; the
             * others join that port, not a port of their own. */
            if (g > 0 && addr_port(&at) == 0 && sock_local(fds[i], &at) < 0)
                at = addrs[i];
            int fd = reuseport && g == 0 ? sock_probe_free(&at, socktype) : 0;
            if (fd == 0)
                fd = sock_listen(&at, socktype, reuseport);
            if (fd < 0) {
                char a[ADDR_STRLEN];
                snprintf(err, errlen, "listen on %s: %s", addr_format(&addrs[i], a, sizeof a),
                         strerror(-fd));
                while (n > 0)
                    close(fds[--n]);
                return -1;
            }
            fds[n] = fd;
        }
    }
    return 0;
}

int sock_connect(const addr_t *a, int socktype)
{
    int fd = socket(a->ss.ss_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == -1 && errno != EINPROGRESS) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int sock_connect_result(int fd)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
        return -errno;
    return -soerr;
}

int sock_accept(int lfd, addr_t *peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd == -1)
        return -errno;
    if (peer != NULL) {
        memcpy(&peer->ss, &ss, len);
        peer->len = len;
    }
    return fd;
}

int sock_local(int fd, addr_t *a)
{
    a->len = sizeof a->ss;
    return getsockname(fd, (struct sockaddr *)&a->ss, &a->len) == -1 ? -errno : 0;
}

int sock_peer(int fd, addr_t *a)
{
    a->len = sizeof a->ss;
    return getpeername(fd, (struct sockaddr *)&a->ss, &a->len) == -1 ? -errno : 0;
}

int sock_nodelay(int fd)
{
    return set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
}
