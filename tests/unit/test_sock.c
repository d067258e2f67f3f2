/* test_sock.c - address parsing and formatting, and listening sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/sock.h"

static void test_port_parse(void **state)
{
    (void)state;
    static const struct { const char *s; int ok; unsigned v; } cases[] = {
        { "1", 1, 1 }, { "80", 1, 80 }, { "8080", 1, 8080 }, { "65535", 1, 65535 },
        { "00080", 1, 80 },
        { "0", 0, 0 }, { "65536", 0, 0 }, { "99999", 0, 0 }, { "123456", 0, 0 },
        { "", 0, 0 }, { "abc", 0, 0 }, { "-1", 0, 0 }, { "+80", 0, 0 }, { " 80", 0, 0 },
        { "80 ", 0, 0 }, { "8o", 0, 0 }, { "0x50", 0, 0 }, { "4294967376", 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t port = 0;
        int rc = port_parse(cases[i].s, &port);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
            assert_int_equal(port, cases[i].v);
        } else {
            assert_int_equal(rc, -EINVAL);
        }
    }
}

static void test_addr_split_valid(void **state)
{
    (void)state;
    static const struct { const char *spec, *host; unsigned port; } cases[] = {
        { "127.0.0.1:8080", "127.0.0.1", 8080 },
        { "[::1]:8080", "::1", 8080 },
        { "[fe80::1%lo]:1", "fe80::1%lo", 1 },
        { ":8080", "", 8080 },
        { "localhost:8080", "localhost", 8080 },
        { "example.com:443", "example.com", 443 },
        { "[::]:65535", "::", 65535 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char host[HOST_MAX], err[ERR_MAX] = "";
        uint16_t port = 0;
        int rc = addr_split(cases[i].spec, host, sizeof host, &port, err, sizeof err);
        if (rc != 0)
            fail_msg("%s: %s", cases[i].spec, err);
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, cases[i].port);
    }
}

static void test_addr_split_invalid(void **state)
{
    (void)state;
    static const struct { const char *spec, *err; } cases[] = {
        { "127.0.0.1", "missing ':PORT' in address '127.0.0.1'" },
        { "127.0.0.1:", "invalid port '' in '127.0.0.1:': must be 1-65535" },
        { "127.0.0.1:0", "invalid port '0' in '127.0.0.1:0': must be 1-65535" },
        { "127.0.0.1:65536", "invalid port '65536' in '127.0.0.1:65536': must be 1-65535" },
        { "127.0.0.1:abc", "invalid port 'abc' in '127.0.0.1:abc': must be 1-65535" },
        { "::1:8080", "IPv6 address must be in brackets, as in '[::1]:8080': '::1:8080'" },
        { "[::1:8080", "missing ']' in address '[::1:8080'" },
        { "[::1]8080", "missing ':PORT' after ']' in address '[::1]8080'" },
        { "[::1]", "missing ':PORT' after ']' in address '[::1]'" },
        { "[]:80", "invalid IPv6 address in '[]:80'" },
        { "[1.2.3.4]:80", "invalid IPv6 address '1.2.3.4'" },
        { "[::g]:80", "invalid IPv6 address '::g'" },
        { "[fe80::1%]:80", "invalid IPv6 address 'fe80::1%'" },
        { "", "missing ':PORT' in address ''" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char host[HOST_MAX], err[ERR_MAX] = "";
        uint16_t port = 0;
        assert_int_equal(addr_split(cases[i].spec, host, sizeof host, &port, err, sizeof err), -EINVAL);
        assert_string_equal(err, cases[i].err);
    }
    /* A host name longer than the caller's buffer. */
    char host[8], err[ERR_MAX];
    uint16_t port;
    assert_int_equal(addr_split("averylonghostname:80", host, sizeof host, &port, err, sizeof err), -EINVAL);
    assert_string_equal(err, "host name too long in 'averylonghostname:80'");
}

static void test_literal_and_format(void **state)
{
    (void)state;
    addr_t a[1];
    char err[ERR_MAX], s[ADDR_STRLEN];
    assert_int_equal(addr_literal("127.0.0.1", 8080, AF_UNSPEC, 0, a, err, sizeof err), 1);
    assert_string_equal(addr_format(&a[0], s, sizeof s), "127.0.0.1:8080");
    assert_int_equal(addr_port(&a[0]), 8080);
    assert_int_equal(addr_literal("::1", 53, AF_UNSPEC, 0, a, err, sizeof err), 1);
    assert_string_equal(addr_format(&a[0], s, sizeof s), "[::1]:53");
    /* A zone by index is kept as the scope. */
    assert_int_equal(addr_literal("fe80::1%1", 53, AF_INET6, 0, a, err, sizeof err), 1);
    assert_int_equal(((struct sockaddr_in6 *)&a[0].ss)->sin6_scope_id, 1);
    /* IPv4 in the short and hex forms getaddrinfo() took as numbers. */
    assert_int_equal(addr_literal("127.1", 80, AF_UNSPEC, 0, a, err, sizeof err), 1);
    assert_string_equal(addr_format(&a[0], s, sizeof s), "127.0.0.1:80");
    assert_int_equal(addr_literal("0x7f.0.0.2", 80, AF_INET, 0, a, err, sizeof err), 1);
    assert_string_equal(addr_format(&a[0], s, sizeof s), "127.0.0.2:80");
    assert_int_equal(addr_literal("127.0.0.1 x", 1, AF_UNSPEC, 0, a, err, sizeof err), 0);
    /* Not literals: names, junk. */
    assert_int_equal(addr_literal("localhost", 1, AF_UNSPEC, 0, a, err, sizeof err), 0);
    assert_int_equal(addr_literal("1.2.3.4.5", 1, AF_UNSPEC, 0, a, err, sizeof err), 0);
    /* An IPv6 literal with a bad zone is no name either: refused. */
    assert_int_equal(addr_literal("fe80::1%", 1, AF_UNSPEC, 0, a, err, sizeof err), -1);
    assert_string_equal(err, "cannot use 'fe80::1%': an empty zone");
    assert_int_equal(addr_literal("fe80::1%nosuchif0", 1, AF_UNSPEC, 0, a, err, sizeof err), -1);
    assert_string_equal(err, "cannot use 'fe80::1%nosuchif0': no network interface 'nosuchif0'");
    assert_int_equal(addr_literal("fe80::1%lo", 1, AF_UNSPEC, 0, a, err, sizeof err), 1);
    assert_true(((struct sockaddr_in6 *)&a[0].ss)->sin6_scope_id > 0);
    /* Wrong family for a literal. */
    assert_int_equal(addr_literal("::1", 53, AF_INET, 0, a, err, sizeof err), -1);
    assert_string_equal(err, "cannot use '::1': not an IPv4 address");
    assert_int_equal(addr_literal("10.0.0.1", 53, AF_INET6, 0, a, err, sizeof err), -1);
    assert_string_equal(err, "cannot use '10.0.0.1': not an IPv6 address");
    /* Every address, passive; nothing for an active empty host. */
    assert_int_equal(addr_literal("", 9, AF_UNSPEC, 1, a, err, sizeof err), 1);
    addr_format(&a[0], s, sizeof s);
    assert_true(strcmp(s, "[::]:9") == 0 || strcmp(s, "0.0.0.0:9") == 0);
    assert_int_equal(addr_literal(NULL, 9, AF_INET, 1, a, err, sizeof err), 1);
    assert_string_equal(addr_format(&a[0], s, sizeof s), "0.0.0.0:9");
    assert_int_equal(addr_literal("", 9, AF_UNSPEC, 0, a, err, sizeof err), 0);
}

static void test_listen_probe_and_accept(void **state)
{
    (void)state;
    addr_t a[1], local, peer;
    char err[ERR_MAX], s[ADDR_STRLEN], s2[ADDR_STRLEN];
    assert_int_equal(addr_literal("127.0.0.1", 1, AF_INET, 1, a, err, sizeof err), 1);
    ((struct sockaddr_in *)&a[0].ss)->sin_port = 0; /* the kernel picks */
    int lfd = sock_listen(&a[0], SOCK_STREAM, 1);
    assert_true(lfd >= 0);
    assert_int_equal(sock_local(lfd, &local), 0);
    assert_true(addr_port(&local) != 0);
    /* The port is held (by an SO_REUSEPORT group): the probe says so. */
    assert_int_equal(sock_probe_free(&local, SOCK_STREAM), -EADDRINUSE);
    /* A second SO_REUSEPORT socket joins. */
    int lfd2 = sock_listen(&local, SOCK_STREAM, 1);
    assert_true(lfd2 >= 0);
    close(lfd2);
    assert_int_equal(sock_accept(lfd, NULL), -EAGAIN);

    int cfd = sock_connect(&local, SOCK_STREAM);
    assert_true(cfd >= 0);
    int afd = -1;
    for (int i = 0; i < 1000 && afd < 0; i++) {
        afd = sock_accept(lfd, &peer);
        if (afd < 0)
            usleep(1000);
    }
    assert_true(afd >= 0);
    assert_int_equal(sock_connect_result(cfd), 0);
    addr_t cl;
    assert_int_equal(sock_local(cfd, &cl), 0);
    assert_string_equal(addr_format(&peer, s, sizeof s), addr_format(&cl, s2, sizeof s2));
    assert_int_equal(sock_nodelay(afd), 0);
    close(afd);
    close(cfd);
    close(lfd);
    /* Freed: the probe passes now. */
    assert_int_equal(sock_probe_free(&local, SOCK_STREAM), 0);
}

/* What the server engine relies on to skip a setsockopt() per accept:
 * an accepted socket inherits the listener's TCP_NODELAY and congestion
 * control. */
static void test_accepted_inherits_listener_options(void **state)
{
    (void)state;
    addr_t a[1], local;
    char err[ERR_MAX], cc[32];
    assert_int_equal(addr_literal("127.0.0.1", 0, AF_INET, 1, a, err, sizeof err), 1);
    int lfd = sock_listen(&a[0], SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    assert_int_equal(sock_nodelay(lfd), 0);
    assert_int_equal(sock_set_congestion(lfd, "reno"), 0);
    assert_int_equal(sock_set_congestion(lfd, "no-such-cc"), -ENOENT);
    assert_int_equal(sock_local(lfd, &local), 0);
    int cfd = sock_connect(&local, SOCK_STREAM);
    assert_true(cfd >= 0);
    int afd = -1;
    for (int i = 0; i < 1000 && afd < 0; i++) {
        afd = sock_accept(lfd, NULL);
        if (afd < 0)
            usleep(1000);
    }
    assert_true(afd >= 0);
    int v = 0;
    socklen_t vl = sizeof v;
    assert_int_equal(getsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &v, &vl), 0);
    assert_int_equal(v, 1);
    assert_int_equal(sock_congestion(afd, cc, sizeof cc), 0);
    assert_string_equal(cc, "reno");
    close(afd);
    close(cfd);
    close(lfd);
}

/* Port 0 with several groups: every group listens on the one port the
 * kernel picked for the first. */
static void test_listen_group_port_zero_shares_one_port(void **state)
{
    (void)state;
    addr_t a[2], l0, l1;
    char err[ERR_MAX];
    assert_int_equal(addr_literal("127.0.0.1", 0, AF_INET, 1, &a[0], err, sizeof err), 1);
    assert_int_equal(addr_literal("127.0.0.2", 0, AF_INET, 1, &a[1], err, sizeof err), 1);
    int fds[6];
    assert_int_equal(sock_listen_group(a, 2, SOCK_STREAM, 3, 1, fds, err, sizeof err), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sock_local(fds[i], &l0), 0);
        assert_true(addr_port(&l0) != 0);
        for (int g = 1; g < 3; g++) {
            assert_int_equal(sock_local(fds[g * 2 + i], &l1), 0);
            assert_int_equal(addr_port(&l1), addr_port(&l0));
        }
    }
    for (int i = 0; i < 6; i++)
        close(fds[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_port_parse),
        cmocka_unit_test(test_addr_split_valid),
        cmocka_unit_test(test_addr_split_invalid),
        cmocka_unit_test(test_literal_and_format),
        cmocka_unit_test(test_listen_probe_and_accept),
        cmocka_unit_test(test_accepted_inherits_listener_options),
        cmocka_unit_test(test_listen_group_port_zero_shares_one_port),
    };
    return cmocka_run_group_tests_name("sock", tests, NULL, NULL);
}
