/* conf.h - the stub resolver's configuration: /etc/resolv.conf and
 * /etc/hosts.
 *
 * The parsers take the file's text as a buffer, so tests feed them strings;
 * dns_conf_load() is the one function here that reads files (and the
 * environment, and the host name). It blocks: call it at start-up or off
 * the loop threads, then share the result read-only between threads.
 *
 * resolv.conf is read as glibc reads it (resolv(5), res_init.c):
 *   - a line starting with '#' or ';' is a comment; a keyword starts the
 *     line and is followed by a space or a tab;
 *   - `nameserver ADDR`: IPv4 or IPv6 (fe80::1%eth0 with a scope), port 53,
 *     at most DNS_CONF_NS_MAX; later ones are ignored; none at all means
 *     127.0.0.1;
 *   - `search D...` and `domain D`: each replaces the search list (domain
 *     with its one name), so the last of them wins; at most
 *     DNS_CONF_SEARCH_MAX names (glibc before 2.26 had the same cap; newer
 *     ones have none), invalid names skipped;
 *   - `options`: ndots:N (capped at 15), timeout:N seconds (capped at 30),
 *     attempts:N (capped at 5; 0 is read as 1, where glibc would send
 *     nothing), rotate, edns0, use-vc, no-tld-query; other options, and
 *     `sortlist`, are ignored; a malformed number leaves the value as it
 *     was;
 *   - defaults: ndots 1, timeout 5, attempts 2, no EDNS0, no rotate; with
 *     neither search nor domain, the search list is the domain part of the
 *     host name (dns_conf_load only).
 * dns_conf_load() also applies LOCALDOMAIN (replaces the search list) and
 * RES_OPTIONS (options applied after the file's), as glibc does.
 *
 * hosts(5): `ADDR NAME [ALIAS...]`, '#' starts a comment anywhere; a line
 * with an address that does not parse is skipped, as is a name that is not
 * a valid domain name. A name may have several addresses (glibc's "multi
 * on", Debian's default): all are returned, in file order. */
#ifndef PORTICO_DNS_CONF_H
#define PORTICO_DNS_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "core/sock.h"
#include "dns/limits.h"
#include "dns/msg.h"


/* ------------------------------------------------------------- hosts */

struct dns_hosts_line;
struct dns_hosts_key;

typedef struct dns_hosts {
    uint8_t *names;                /* wire names, each a length byte + wire form */
    size_t names_len, names_cap;
    struct dns_hosts_line *lines;  /* one per address line, in file order */
    size_t nlines, lines_cap;
    struct dns_hosts_key *keys;    /* (name, line) sorted by name without case, then line */
    size_t nkeys, keys_cap;
} dns_hosts_t;

void dns_hosts_init(dns_hosts_t *h);
void dns_hosts_dispose(dns_hosts_t *h);

/* Adds the entries of a hosts file's text to h (a second call appends).
 * Returns the number of address lines taken, or DNS_E_NOSPACE when memory
 * runs out (h keeps what it had before the call). */
int dns_hosts_parse(dns_hosts_t *h, slice_t text);

/* Looks `name` up for `qtype`: A and AAAA give the addresses of every line
 * naming it (names compared without case), PTR for a name under
 * in-addr.arpa or ip6.arpa gives the first name of the first line with that
 * address. Records are class IN, TTL 0, owned by `name` as given; at most
 * `cap` are written to out (out may be NULL with cap 0 to count). Returns
 * how many there are in all; 0 for any other type, or when nothing
 * matches. */
size_t dns_hosts_lookup(const dns_hosts_t *h, const dns_name_t *name, uint16_t qtype,
                        dns_rr_t *out, size_t cap);

/* -------------------------------------------------------- resolv.conf */

typedef struct dns_conf {
    addr_t ns[DNS_CONF_NS_MAX];   /* servers in order, with their port */
    size_t nns;
    dns_name_t search[DNS_CONF_SEARCH_MAX];
    size_t nsearch;
    unsigned ndots;
    unsigned timeout;             /* seconds for the first try of a server */
    unsigned attempts;            /* rounds over the server list, >= 1 */
    int rotate;                   /* start each query at a random server */
    int edns0;                    /* offer EDNS0 with DNS_EDNS_PAYLOAD bytes */
    int use_vc;                   /* ask over TCP from the start */
    int no_tld_query;             /* never ask a single-label name as is */
    int search_set;               /* search, domain or LOCALDOMAIN gave the list */
    dns_hosts_t hosts;
} dns_conf_t;

/* Sets the defaults above with no server, no search list and no hosts. */
void dns_conf_init(dns_conf_t *c);

/* Frees the hosts table. */
void dns_conf_dispose(dns_conf_t *c);

/* Reads resolv.conf text into c, which dns_conf_init() prepared; keywords
 * change what they name and leave the rest. Does not add the 127.0.0.1
 * default: dns_conf_finish() does. Never fails: what it cannot read it
 * skips. Returns the number of lines skipped as malformed (an unknown
 * keyword is not malformed). */
int dns_conf_parse_resolv(dns_conf_t *c, slice_t text);

/* Applies an `options` value ("ndots:2 rotate"), as from RES_OPTIONS. */
void dns_conf_parse_options(dns_conf_t *c, slice_t text);

/* Replaces the search list with the names in `text` (space separated), as
 * `search` and LOCALDOMAIN do. */
void dns_conf_set_search(dns_conf_t *c, slice_t text);

/* Adds a server; ignored when DNS_CONF_NS_MAX are there. Returns 0 or -1
 * when full. */
int dns_conf_add_ns(dns_conf_t *c, const addr_t *a);

/* Completes a parsed configuration: 127.0.0.1:53 when there is no server. */
void dns_conf_finish(dns_conf_t *c);

/* Loads the system's configuration into c (dns_conf_init() first):
 * resolv_path (NULL: /etc/resolv.conf, a missing file meaning defaults),
 * the host name's domain when there is no search list, LOCALDOMAIN,
 * RES_OPTIONS, dns_conf_finish(), then hosts_path (NULL: /etc/hosts, a
 * missing file meaning no entries). Blocking. Returns 0, or -errno when a
 * file exists but cannot be read, is larger than its cap (-EFBIG), or
 * memory runs out; c is usable (and must be disposed of) either way. */
int dns_conf_load(dns_conf_t *c, const char *resolv_path, const char *hosts_path);

/* Reads a server address: 1.2.3.4, 1.2.3.4:53, ::1, [::1]:53,
 * fe80::1%eth0; literal addresses only. def_port when none is given; port
 * 0 only when zero_ok. Returns 0 or -EINVAL. */
int dns_addr_parse(const char *s, uint16_t def_port, int zero_ok, addr_t *a);

typedef struct dns_hints dns_hints_t; /* dns/iter.h */

/* Reads a root hints file (dns_hints_parse, at most DNS_HINTS_FILE_MAX
 * bytes) into h. Blocking. Returns 0, -errno when it cannot be read
 * (-EFBIG when too long), or -EINVAL with *line and *why set. */
int dns_hints_load(dns_hints_t *h, const char *path, size_t *line, const char **why);

#endif
