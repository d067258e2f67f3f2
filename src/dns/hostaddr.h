/* hostaddr.h - a host name (or address literal) to socket addresses.
 *
 * What getaddrinfo() does for portico's commands, without libc's resolver:
 * an address literal (IPv4, IPv6, IPv6 with a %zone) or an empty host (the
 * wildcard, for listeners) is answered at once by addr_literal(); a name in
 * /etc/hosts is answered from the file alone (as glibc's `files` source:
 * a family it lacks is not asked of the nameservers); any other name is
 * looked up with the stub resolver (dns/resolve.h) for AAAA and A, both
 * queries in flight together. Addresses come back
 * with `port` set, IPv6 first then IPv4 (as glibc orders loopback and
 * global addresses on a host with both), duplicates removed, and those
 * this host has no route to after the others (RFC 6724 rule 1, which
 * getaddrinfo() applies: xfer takes the first address).
 *
 * dns_hostaddr_sync() runs the lookups on a private loop: for the command
 * line, before a command's own loops start. Code on a loop uses
 * dns_hostaddr_start(). */
#ifndef PORTICO_DNS_HOSTADDR_H
#define PORTICO_DNS_HOSTADDR_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "core/sock.h"
#include "dns/conf.h"

#define DNS_HOSTADDR_MAX 16   /* addresses kept per lookup */

typedef struct dns_hostaddr dns_hostaddr_t;

/* n >= 1 addresses, or n == 0 and err, one readable line such as
 * "cannot resolve 'x.invalid': no such host (NXDOMAIN)". Valid only
 * during the call. The handle is gone after the callback. */
typedef void (*dns_hostaddr_cb)(void *arg, const addr_t *addrs, int n, const char *err);

/* Starts resolving host for family (AF_UNSPEC, AF_INET or AF_INET6) on
 * loop l with conf (valid until the callback or cancel). The callback runs
 * from the loop, never from inside this call. Returns 0 or -errno. */
int dns_hostaddr_start(loop_t *l, const dns_conf_t *conf, const char *host, uint16_t port,
                       int family, dns_hostaddr_cb cb, void *arg, dns_hostaddr_t **out);

/* Stops a lookup whose callback has not run: it will not run. */
void dns_hostaddr_cancel(dns_hostaddr_t *h);

/* The blocking form, with the system's /etc/resolv.conf and /etc/hosts.
 * passive: an empty or NULL host is the wildcard address. Returns the
 * number of addresses stored in out (at most max), or -1 with err set. */
int dns_hostaddr_sync(const char *host, uint16_t port, int family, int passive,
                      addr_t *out, int max, char *err, size_t errlen);

#endif
