/* stub.h - the stub resolver as a sans-I/O state machine.
 *
 * One dns_stub_t resolves one name for one type the way a libc stub
 * resolver does, from a dns_conf_t: /etc/hosts first, then the nameservers
 * of resolv.conf with its search list, ndots, timeout and attempts. It
 * never touches a socket or a clock: the caller passes time (milliseconds
 * of a monotonic clock) and random bytes in, feeds it the datagrams that
 * arrive, and asks it what to send, until when to wait, and at last for
 * the result. The glue on the event loop is dns/resolve.h; tests drive it
 * with virtual time.
 *
 *     dns_stub_new(&st, conf, name, type)
 *     dns_stub_start(st, now, random)         -- once
 *     loop:
 *         while (dns_stub_next_tx(st, &tx))    send tx.msg to tx.to (UDP, or
 *                                              TCP with a 2-byte length)
 *         if (dns_stub_done(st)) break
 *         wait until dns_stub_deadline(st) or a reply:
 *             dns_stub_input(st, now, from, msg, len, via_tcp)
 *             dns_stub_timeout(st, now)
 *             dns_stub_fail(st, now)          -- a send or TCP failed
 *     dns_stub_result(st)
 *     dns_stub_free(st)
 *
 * Order of names tried (glibc's res_search): a name ending in '.' is
 * absolute and asked alone. Otherwise, with at least ndots dots it is asked
 * as is first, then with each search domain appended; with fewer, with each
 * search domain first and as is last (not at all for a single label with
 * `no-tld-query`). The same name is never asked twice.
 *
 * Each name is asked of the servers in order (from a random one with
 * `rotate`), `attempts` rounds over the list. The wait for a reply is
 * glibc's: `timeout` seconds in the first round, and in round r (from 0)
 * (timeout << r) / nservers seconds, at least 1. With timeout 5, attempts 2
 * and two servers, the four sends are at 0, 5, 10 and 15 s and TIMEOUT
 * comes at 20 s; with one server, at 0 and 5 s and TIMEOUT at 15 s.
 *
 * One random query ID per name asked, the same for its retries (a late
 * reply from a server asked earlier in the rounds is still taken). A reply
 * is accepted only when all of these hold; otherwise it is ignored, counted
 * in dns_stub_stats_t, and the wait goes on:
 *   - it came from the address and port of a server that this name was
 *     sent to (over UDP), or from the server of the TCP exchange in
 *     progress (via_tcp);
 *   - it decodes, QR is set, opcode 0, and the ID is the one sent;
 *   - its one question is the one asked: name without case, type, class
 *     (RFC 1035 §7.3). Error replies (RCODE other than NOERROR/NXDOMAIN)
 *     may come without a question, as some servers send FORMERR or
 *     NOTIMP: that only sends the query on to the next server.
 * 0x20 case randomization is not done: servers and forwarders that change
 * the case of the question would make it fail, and the port and ID give 32
 * bits already.
 *
 * What an accepted reply does:
 *   - TC over UDP: the server that sent it is asked again over TCP, with
 *     a fresh wait of the current round's timeout (the next send, if that
 *     fails, is the one that would have followed);
 *   - SERVFAIL, REFUSED, FORMERR, NOTIMP and other RCODEs from the server
 *     being waited for: the next server at once (the next round after the
 *     last). From a server asked earlier: noted, the wait goes on;
 *   - NXDOMAIN: the next name of the search list, NXDOMAIN when none is
 *     left;
 *   - NOERROR: the end. Answer records of the asked type, following the
 *     CNAME chain inside the answer section from the name asked: OK; none:
 *     NODATA (the search list is not gone on with: the name exists).
 * When every server of every round failed for a name: if any replied with
 * an error RCODE, that name failed with SERVFAIL, REFUSED or ERROR (the
 * last one), and the next search name is tried; the status of the whole
 * lookup is that failure if no later name gives an answer. If none
 * replied, the lookup ends at once with TIMEOUT (ERROR when every send
 * failed outright, see dns_stub_fail): asking more names of servers that
 * do not answer would only multiply the wait, and glibc stops there too. */
#ifndef PORTICO_DNS_STUB_H
#define PORTICO_DNS_STUB_H

#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "core/sock.h"
#include "dns/conf.h"
#include "dns/msg.h"


typedef struct dns_stub dns_stub_t;

enum dns_stub_status {
    DNS_STUB_OK = 0,     /* records of the type (rr, nrr >= 1) */
    DNS_STUB_NXDOMAIN,   /* no such name, under any search domain */
    DNS_STUB_NODATA,     /* the name exists, no records of the type */
    DNS_STUB_SERVFAIL,   /* servers answered SERVFAIL */
    DNS_STUB_TIMEOUT,    /* no server answered in time */
    DNS_STUB_REFUSED,    /* servers answered REFUSED */
    DNS_STUB_ERROR,      /* FORMERR, NOTIMP, another RCODE, a CNAME loop,
                            no server reachable, or out of memory */
};

/* "OK", "NXDOMAIN", ..., for people. */
const char *dns_stub_status_name(enum dns_stub_status s);

/* Something to send. msg stays valid until the next call into the stub. */
typedef struct dns_stub_tx {
    const uint8_t *msg;
    size_t len;           /* without the TCP length prefix */
    const addr_t *to;     /* the server, with its port */
    int tcp;              /* 1: a new TCP connection (closing any other) */
    size_t server;        /* index of `to` in the configuration */
} dns_stub_tx_t;

typedef struct dns_stub_result {
    enum dns_stub_status status;
    uint16_t qtype;
    dns_name_t qname;      /* the name that gave the result (with the search
                              domain); for a final NXDOMAIN or failure, the
                              last name asked */
    /* The answer: the records of qtype owned by the end of the chain (in
     * the order of the answer section), with chain[0] = qname and
     * chain[i] the target of the i-th CNAME; chain[nchain - 1] is the
     * canonical name. rr's slices point into reply. */
    dns_rr_t *rr;
    size_t nrr;
    dns_name_t chain[DNS_STUB_CHAIN_MAX + 1];
    size_t nchain;
    /* Where it came from. from_hosts: rr came from the hosts table (no
     * reply, no server). Otherwise, when reply != NULL, the server that
     * answered, and the whole reply decoded (msg's arrays are owned too,
     * each section capped at DNS_STUB_SECTION_MAX). */
    int from_hosts;
    const uint8_t *reply;
    size_t reply_len;
    dns_msg_t msg;
    unsigned rcode;        /* of the reply */
    addr_t server;
    size_t server_idx;
    int via_tcp;
    uint64_t elapsed_ms;   /* from dns_stub_start to the result */
    size_t sent;           /* messages sent, UDP and TCP */
} dns_stub_result_t;

typedef struct dns_stub_stats {
    size_t ignored;        /* every reply not accepted: the sum of the below */
    size_t bad_source;     /* not from a server asked */
    size_t bad_id;         /* another query ID */
    size_t bad_question;   /* another question, or not a reply */
    size_t malformed;      /* did not decode */
    size_t late;           /* came before start or after the result */
} dns_stub_stats_t;

/* Creates a stub for `name` (presentation form, a trailing dot making it
 * absolute) and `qtype`, class IN. conf must stay valid and unchanged until
 * dns_stub_free(). Returns 0, the DNS_E_* code of dns_name_parse() for a
 * name that is not one, or DNS_E_NOSPACE when memory runs out. */
int dns_stub_new(dns_stub_t **out, const dns_conf_t *conf, slice_t name, uint16_t qtype);

void dns_stub_free(dns_stub_t *st);

/* Starts the lookup at `now` with DNS_STUB_RANDOM_LEN random bytes (from
 * getrandom(); tests give fixed ones). A hosts hit, or a configuration
 * without servers, finishes at once. Call once. */
void dns_stub_start(dns_stub_t *st, uint64_t now, const uint8_t *random);

/* Pops the next message to send: returns 1 and fills *tx, or 0. */
int dns_stub_next_tx(dns_stub_t *st, dns_stub_tx_t *tx);

/* Feeds one message that arrived: a UDP datagram from `from`, or (via_tcp)
 * one whole TCP message, without its length prefix, from the connection the
 * last tcp tx asked for. Returns 1 if it was accepted (state changed:
 * look at next_tx, deadline, done), 0 if it was ignored. */
int dns_stub_input(dns_stub_t *st, uint64_t now, const addr_t *from, const uint8_t *msg,
                   size_t len, int via_tcp);

/* Call when dns_stub_deadline() is reached; earlier calls do nothing. */
void dns_stub_timeout(dns_stub_t *st, uint64_t now);

/* The last tx cannot bring a reply: the UDP send failed, or the TCP
 * connection failed or closed before a whole reply. Goes on as on a
 * timeout, at once. */
void dns_stub_fail(dns_stub_t *st, uint64_t now);

/* Next deadline in ms, UINT64_MAX when done (or not started). */
uint64_t dns_stub_deadline(const dns_stub_t *st);

int dns_stub_done(const dns_stub_t *st);

/* The result, once done (NULL before). Owned by the stub. */
const dns_stub_result_t *dns_stub_result(const dns_stub_t *st);

const dns_stub_stats_t *dns_stub_stats(const dns_stub_t *st);

#endif
