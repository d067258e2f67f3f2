/* test_dns_hostaddr.c - host names to addresses (dns/hostaddr.h) on a
 * loop, against a fake UDP nameserver on 127.0.0.1 port 0 and a hosts
 * table given as text: literals, hosts entries for both families in AAAA,
 * A order with the port set and duplicates gone, family restriction, DNS
 * answers, NXDOMAIN, REFUSED, NODATA, timeouts, and cancelling. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/loop.h"
#include "core/sock.h"
#include "dns/hostaddr.h"

static loop_t *loop;
static io_t udp;
static dns_conf_t conf;
static size_t queries;

/* Answers by name: a.test has A 127.0.0.7, both.test A 127.0.0.7 and
 * AAAA ::1 (loopback: reachable on any host, so the order does not depend
 * on its routes), ll.test an unreachable AAAA and an A, nx.test NXDOMAIN,
 * no.test REFUSED, quiet.test nothing; anything else NOERROR with no
 * records. */
static void on_query(io_t *io, uint32_t events)
{
    (void)events;
    uint8_t q[512], a[512];
    for (;;) {
        addr_t from;
        from.len = sizeof from.ss;
        ssize_t n = recvfrom(io->fd, q, sizeof q, 0, (struct sockaddr *)&from.ss, &from.len);
        if (n < 0)
            return;
        queries++;
        dns_question_t qd;
        dns_msg_t m;
        memset(&m, 0, sizeof m);
        m.qd = &qd;
        m.qd_cap = 1;
        assert_int_equal(dns_msg_decode(q, (size_t)n, &m), 0);
        char name[DNS_NAME_STR_MAX];
        dns_name_format(&qd.name, name, sizeof name);
        if (strcmp(name, "quiet.test.") == 0)
            continue;
        uint16_t flags = DNS_F_QR | DNS_F_RD | DNS_F_RA;
        if (strcmp(name, "nx.test.") == 0)
            flags |= DNS_R_NXDOMAIN;
        else if (strcmp(name, "no.test.") == 0)
            flags |= DNS_R_REFUSED;
        dns_builder_t b;
        dns_builder_init(&b, a, sizeof a, m.h.id, flags);
        dns_builder_question(&b, &qd.name, qd.qtype, qd.qclass);
        dns_rr_t rr;
        memset(&rr, 0, sizeof rr);
        rr.name = qd.name;
        rr.rclass = DNS_C_IN;
        rr.ttl = 60;
        rr.type = qd.qtype;
        int give = (strcmp(name, "a.test.") == 0 && qd.qtype == DNS_T_A)
                   || strcmp(name, "both.test.") == 0;
        if (strcmp(name, "ll.test.") == 0) {
            /* AAAA fe80::1 (link-local without a zone: no route from
             * anywhere) and A 127.0.0.8 */
            if (qd.qtype == DNS_T_A) {
                static const uint8_t v4[4] = { 127, 0, 0, 8 };
                memcpy(rr.a, v4, 4);
            } else {
                assert_int_equal(inet_pton(AF_INET6, "fe80::1", rr.aaaa), 1);
            }
            assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), 0);
        } else if (give && qd.qtype == DNS_T_A) {
            static const uint8_t v4[4] = { 127, 0, 0, 7 };
            memcpy(rr.a, v4, 4);
            assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), 0);
        } else if (give && qd.qtype == DNS_T_AAAA) {
            assert_int_equal(inet_pton(AF_INET6, "::1", rr.aaaa), 1);
            assert_int_equal(dns_builder_rr(&b, DNS_SEC_AN, &rr), 0);
        }
        sendto(io->fd, a, b.len, 0, (struct sockaddr *)&from.ss, from.len);
    }
}

static int setup(void **state)
{
    (void)state;
    loop = loop_new();
    assert_non_null(loop);
    addr_t a;
    char err[ERR_MAX];
    assert_int_equal(addr_literal("127.0.0.1", 1, AF_INET, 0, &a, err, sizeof err), 1);
    ((struct sockaddr_in *)&a.ss)->sin_port = 0;
    int fd = sock_listen(&a, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(sock_local(fd, &a), 0);
    assert_int_equal(loop_io_add(loop, &udp, fd, EPOLLIN | EPOLLET, on_query, NULL), 0);
    dns_conf_init(&conf);
    conf.timeout = 1;
    conf.attempts = 1;
    assert_int_equal(dns_conf_add_ns(&conf, &a), 0);
    const char *hosts = "127.0.0.1 localhost\n::1 localhost\n127.0.0.1 localhost\n"
                        "10.1.2.3 web.test\n";
    assert_int_equal(dns_hosts_parse(&conf.hosts, slice_cstr(hosts)), 4);
    queries = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    loop_io_close(&udp);
    dns_conf_dispose(&conf);
    loop_free(loop);
    return 0;
}

struct got {
    int called, n;
    char addrs[DNS_HOSTADDR_MAX][ADDR_STRLEN];
    char err[512];
};

static void on_done(void *arg, const addr_t *addrs, int n, const char *err)
{
    struct got *g = arg;
    g->called++;
    g->n = n;
    for (int i = 0; i < n; i++)
        addr_format(&addrs[i], g->addrs[i], sizeof g->addrs[i]);
    if (err != NULL)
        snprintf(g->err, sizeof g->err, "%s", err);
    loop_break(loop);
}

static void on_stop(ptimer_t *t, void *arg)
{
    (void)t;
    (void)arg;
    loop_break(loop);
}

/* Resolves host for family and runs the loop until the answer. */
static void resolve(const char *host, int family, struct got *g)
{
    memset(g, 0, sizeof *g);
    assert_int_equal(dns_hostaddr_start(loop, &conf, host, 8080, family, on_done, g, NULL), 0);
    assert_int_equal(g->called, 0); /* never from inside start */
    assert_true(loop_run(loop) >= 0);
    assert_int_equal(g->called, 1);
}

static void test_literals(void **state)
{
    (void)state;
    struct got g;
    resolve("192.0.2.1", AF_UNSPEC, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.addrs[0], "192.0.2.1:8080");
    resolve("::1", AF_INET6, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.addrs[0], "[::1]:8080");
    resolve("::1", AF_INET, &g);
    assert_int_equal(g.n, 0);
    assert_string_equal(g.err, "cannot resolve '::1': no IPv4 address for this name");
    assert_int_equal(queries, 0);
}

static void test_hosts_both_families(void **state)
{
    (void)state;
    struct got g;
    resolve("localhost", AF_UNSPEC, &g);
    assert_int_equal(g.n, 2); /* the repeated line gives no duplicate */
    assert_string_equal(g.addrs[0], "[::1]:8080");
    assert_string_equal(g.addrs[1], "127.0.0.1:8080");
    resolve("LOCALHOST", AF_INET, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.addrs[0], "127.0.0.1:8080");
    resolve("web.test", AF_UNSPEC, &g); /* A from hosts: the servers are not asked */
    assert_int_equal(g.n, 1);
    assert_string_equal(g.addrs[0], "10.1.2.3:8080");
    assert_int_equal(queries, 0);
}

/* A name in the hosts file is answered from it alone, as glibc's `files`
 * source does before `dns`: with one family only (localhost with only
 * 127.0.0.1, a host's own name on 127.0.1.1), the other is not asked of
 * the nameservers (whose silence would hold every connect for the whole
 * timeout). Aliases count. A family the file lacks, asked for alone, goes
 * to the servers. */
static void test_hosts_one_family_never_asks_the_servers(void **state)
{
    (void)state;
    const char *more = "192.0.2.9 quiet.test alias.test\n::1 six.test\n";
    assert_int_equal(dns_hosts_parse(&conf.hosts, slice_cstr(more)), 2);
    struct got g;
    resolve("quiet.test", AF_UNSPEC, &g); /* the fake server never answers it */
    assert_int_equal(g.n, 1);
    assert_string_equal(g.addrs[0], "192.0.2.9:8080");
    resolve("ALIAS.test", AF_UNSPEC, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.addrs[0], "192.0.2.9:8080");
    resolve("six.test", AF_UNSPEC, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.addrs[0], "[::1]:8080");
    assert_int_equal(queries, 0);
    resolve("six.test", AF_INET, &g); /* not in the file for IPv4: asked */
    assert_int_equal(g.n, 0);
    assert_string_equal(g.err, "cannot resolve 'six.test': no IPv4 address for this name");
    assert_int_equal(queries, 1);
}

/* An IPv6 literal with a zone that names no interface is refused at once
 * with its reason, never sent to the nameservers as a name. */
static void test_bad_zone_is_not_a_name(void **state)
{
    (void)state;
    struct got g;
    resolve("fe80::1%nosuchif0", AF_UNSPEC, &g);
    assert_int_equal(g.n, 0);
    assert_string_equal(g.err, "cannot use 'fe80::1%nosuchif0': no network interface 'nosuchif0'");
    resolve("fe80::1%", AF_UNSPEC, &g);
    assert_int_equal(g.n, 0);
    assert_string_equal(g.err, "cannot use 'fe80::1%': an empty zone");
    assert_int_equal(queries, 0);
    addr_t a;
    char err[ERR_MAX];
    assert_int_equal(dns_hostaddr_sync("fe80::1%nosuchif0", 1, AF_UNSPEC, 0, &a, 1, err,
                                       sizeof err), -1);
    assert_string_equal(err, "cannot use 'fe80::1%nosuchif0': no network interface 'nosuchif0'");
}

static void test_dns_answers(void **state)
{
    (void)state;
    struct got g;
    resolve("both.test", AF_UNSPEC, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.addrs[0], "[::1]:8080");
    assert_string_equal(g.addrs[1], "127.0.0.7:8080");
    resolve("a.test", AF_UNSPEC, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.addrs[0], "127.0.0.7:8080");
    resolve("a.test", AF_INET6, &g);
    assert_int_equal(g.n, 0);
    assert_string_equal(g.err, "cannot resolve 'a.test': no IPv6 address for this name");
    resolve("empty.test", AF_UNSPEC, &g);
    assert_int_equal(g.n, 0);
    assert_string_equal(g.err, "cannot resolve 'empty.test': no address for this name");
}

/* RFC 6724 rule 1, which getaddrinfo() applied: an address this host
 * has no route to goes after those it can reach, so a command that takes
 * the first (xfer) or tries them in turn (nc) starts with one that works. */
static void test_unreachable_addresses_go_last(void **state)
{
    (void)state;
    struct got g;
    resolve("ll.test", AF_UNSPEC, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.addrs[0], "127.0.0.8:8080");
    assert_string_equal(g.addrs[1], "[fe80::1]:8080");
}

static void test_failures(void **state)
{
    (void)state;
    struct got g;
    resolve("nx.test", AF_UNSPEC, &g);
    assert_int_equal(g.n, 0);
    assert_string_equal(g.err, "cannot resolve 'nx.test': no such host (NXDOMAIN)");
    resolve("no.test", AF_INET, &g);
    assert_string_equal(g.err, "cannot resolve 'no.test': the nameservers refused (REFUSED)");
    resolve("quiet.test", AF_INET, &g);
    assert_string_equal(g.err,
                        "cannot resolve 'quiet.test': no answer from the nameservers (timed out)");
    memset(&g, 0, sizeof g);
    assert_int_equal(dns_hostaddr_start(loop, &conf, "bad..name", 1, AF_UNSPEC, on_done, &g,
                                        NULL), -EINVAL);
}

static void test_cancel(void **state)
{
    (void)state;
    struct got g;
    memset(&g, 0, sizeof g);
    dns_hostaddr_t *h1, *h2;
    assert_int_equal(dns_hostaddr_start(loop, &conf, "both.test", 1, AF_UNSPEC, on_done, &g,
                                        &h1), 0);
    assert_int_equal(dns_hostaddr_start(loop, &conf, "127.0.0.1", 1, AF_UNSPEC, on_done, &g,
                                        &h2), 0);
    dns_hostaddr_cancel(h1);
    dns_hostaddr_cancel(h2);
    /* Nothing calls back (the fake server's reply finds no socket); a timer
     * ends the run. */
    ptimer_t t;
    memset(&t, 0, sizeof t);
    t.idx = TIMER_IDLE;
    t.cb = on_stop;
    assert_int_equal(loop_timer_set(loop, &t, 200), 0);
    assert_true(loop_run(loop) >= 0);
    assert_int_equal(g.called, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_literals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_both_families, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_one_family_never_asks_the_servers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_zone_is_not_a_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_addresses_go_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
