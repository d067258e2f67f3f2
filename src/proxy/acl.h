/* acl.h - the proxy's firewall: ordered allow/deny rules, sans-I/O.
 *
 * A rule is a list of conditions, all of which must hold:
 *   src=CIDR          client address (IPv4 or IPv6; no /N means the host)
 *   host=NAME         destination host, exact (case-insensitive)
 *   host=.SUFFIX      the domain SUFFIX and every name below it
 *   port=N or N-M     destination port
 *   method=NAME       request method (case-sensitive, as RFC 9110 says)
 * written as "key=value,key=value" (a rule with no condition is "all").
 * The first rule that matches decides. When none does, the defaults
 * apply: clients on loopback are allowed, every other client is denied.
 *
 * CONNECT has one more gate: the destination port must be in the CONNECT
 * port list (default 443) unless the rule that allowed the request names
 * a port itself. An IPv4-mapped IPv6 client (a dual-stack listener)
 * matches IPv4 rules. */
#ifndef PORTICO_PROXY_ACL_H
#define PORTICO_PROXY_ACL_H

#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "core/sock.h"
#include "proxy/limits.h"

enum acl_verdict { ACL_ALLOW = 1, ACL_DENY = 0 };

struct acl_rule {
    uint8_t allow;
    uint8_t has_src, has_host, host_suffix, has_port, has_method;
    uint8_t family;              /* AF_INET or AF_INET6 */
    uint8_t prefix;              /* bits */
    uint8_t net[16];
    uint16_t port_lo, port_hi;
    char host[PROXY_RULE_HOST_MAX + 1];   /* lower case; suffix without its dot */
    char method[24];
};

typedef struct acl {
    struct acl_rule rules[PROXY_MAX_RULES];
    size_t nrules;
    uint16_t connect_ports[PROXY_MAX_CONNECT_PORTS];
    size_t nconnect_ports;       /* 0: PROXY_DEFAULT_CONNECT_PORT only */
} acl_t;

/* The request being judged. host is the destination name or address as
 * the request gave it (no brackets, no port). */
struct acl_query {
    const addr_t *client;
    slice_t method;
    slice_t host;
    uint16_t port;
};

/* Why a request was denied or allowed, for the log line and the 403. */
struct acl_result {
    int allowed;
    int rule;                    /* index of the deciding rule; -1 default */
    const char *why;             /* static text */
};

void acl_init(acl_t *a);

/* Appends a rule parsed from `spec` (the syntax above). Returns 0, or -1
 * with one readable sentence in err (unknown key, bad CIDR, bad port,
 * too many rules). */
int acl_add(acl_t *a, int allow, const char *spec, char *err, size_t errlen);

/* Adds a port to the CONNECT list. Returns 0 or -1 (list full). */
int acl_add_connect_port(acl_t *a, uint16_t port);

/* Judges q. Pure: no I/O, no allocation. */
struct acl_result acl_check(const acl_t *a, const struct acl_query *q);

#endif
