/* test_proxy_acl.c - the proxy's firewall rules (src/proxy/acl.c): rule
 * syntax and its errors, CIDR v4/v6 and mapped addresses, host exact and
 * suffix, port ranges, methods, first match wins, the loopback default
 * and the CONNECT port gate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "netaddr.h"

#include "proxy/acl.h"


static struct acl_result judge(const acl_t *a, const char *client, const char *method,
                               const char *host, uint16_t port)
{
    addr_t c = test_ip(client);
    struct acl_query q = { &c, slice_cstr(method), slice_cstr(host), port };
    return acl_check(a, &q);
}

static int allowed(const acl_t *a, const char *client, const char *method, const char *host,
                   uint16_t port)
{
    return judge(a, client, method, host, port).allowed;
}

static void test_default_loopback_only(void **state)
{
    (void)state;
    acl_t a;
    acl_init(&a);
    assert_true(allowed(&a, "127.0.0.1", "GET", "example.com", 80));
    assert_true(allowed(&a, "127.9.8.7", "GET", "example.com", 80));
    assert_true(allowed(&a, "::1", "GET", "example.com", 80));
    assert_true(allowed(&a, "::ffff:127.0.0.1", "GET", "example.com", 80));
    assert_false(allowed(&a, "10.0.0.1", "GET", "example.com", 80));
    assert_false(allowed(&a, "::ffff:10.0.0.1", "GET", "example.com", 80));
    assert_false(allowed(&a, "2001:db8::1", "GET", "example.com", 80));
    struct acl_result r = judge(&a, "192.168.1.1", "GET", "x", 80);
    assert_int_equal(r.rule, -1);
    assert_non_null(strstr(r.why, "loopback"));
}

static void test_connect_port_gate(void **state)
{
    (void)state;
    acl_t a;
    acl_init(&a);
    assert_true(allowed(&a, "127.0.0.1", "CONNECT", "example.com", 443));
    assert_false(allowed(&a, "127.0.0.1", "CONNECT", "example.com", 22));
    assert_false(allowed(&a, "127.0.0.1", "CONNECT", "example.com", 80));
    /* A GET to port 22 is not a tunnel: the gate is for CONNECT only. */
    assert_true(allowed(&a, "127.0.0.1", "GET", "example.com", 22));
    /* A list replaces the default. */
    assert_int_equal(acl_add_connect_port(&a, 8443), 0);
    assert_true(allowed(&a, "127.0.0.1", "CONNECT", "h", 8443));
    assert_false(allowed(&a, "127.0.0.1", "CONNECT", "h", 443));
    /* A rule naming a port opens it for CONNECT too. */
    char err[256];
    assert_int_equal(acl_add(&a, 1, "method=CONNECT,port=2000-2100", err, sizeof err), 0);
    assert_true(allowed(&a, "127.0.0.1", "CONNECT", "h", 2050));
    assert_false(allowed(&a, "127.0.0.1", "CONNECT", "h", 2101));
    /* A rule without a port does not. */
    acl_init(&a);
    assert_int_equal(acl_add(&a, 1, "src=10.0.0.0/8", err, sizeof err), 0);
    assert_true(allowed(&a, "10.1.2.3", "GET", "h", 22));
    assert_false(allowed(&a, "10.1.2.3", "CONNECT", "h", 22));
    assert_true(allowed(&a, "10.1.2.3", "CONNECT", "h", 443));
}

static void test_cidr(void **state)
{
    (void)state;
    acl_t a;
    char err[256];
    acl_init(&a);
    assert_int_equal(acl_add(&a, 1, "src=10.1.0.0/16", err, sizeof err), 0);
    assert_int_equal(acl_add(&a, 1, "src=192.168.7.129/25", err, sizeof err), 0);
    assert_int_equal(acl_add(&a, 1, "src=2001:db8::/32", err, sizeof err), 0);
    assert_int_equal(acl_add(&a, 1, "src=203.0.113.5", err, sizeof err), 0);
    assert_true(allowed(&a, "10.1.255.255", "GET", "h", 80));
    assert_false(allowed(&a, "10.2.0.0", "GET", "h", 80));
    assert_true(allowed(&a, "192.168.7.128", "GET", "h", 80));
    assert_true(allowed(&a, "192.168.7.255", "GET", "h", 80));
    assert_false(allowed(&a, "192.168.7.127", "GET", "h", 80));
    assert_true(allowed(&a, "2001:db8:ffff::1", "GET", "h", 80));
    assert_false(allowed(&a, "2001:db9::1", "GET", "h", 80));
    assert_true(allowed(&a, "203.0.113.5", "GET", "h", 80));
    assert_false(allowed(&a, "203.0.113.6", "GET", "h", 80));
    /* A mapped client matches the IPv4 rules, never the IPv6 ones. */
    assert_true(allowed(&a, "::ffff:10.1.2.3", "GET", "h", 80));
    assert_false(allowed(&a, "::ffff:10.2.2.3", "GET", "h", 80));
    /* /0 is everything of one family. */
    acl_init(&a);
    assert_int_equal(acl_add(&a, 1, "src=0.0.0.0/0", err, sizeof err), 0);
    assert_true(allowed(&a, "8.8.8.8", "GET", "h", 80));
    assert_false(allowed(&a, "2001:db8::1", "GET", "h", 80));
}

static void test_host(void **state)
{
    (void)state;
    acl_t a;
    char err[256];
    acl_init(&a);
    assert_int_equal(acl_add(&a, 0, "host=.Example.COM", err, sizeof err), 0);
    assert_int_equal(acl_add(&a, 0, "host=exact.org", err, sizeof err), 0);
    assert_false(allowed(&a, "127.0.0.1", "GET", "example.com", 80));
    assert_false(allowed(&a, "127.0.0.1", "GET", "a.b.EXAMPLE.com", 80));
    assert_false(allowed(&a, "127.0.0.1", "GET", "example.com.", 80));
    assert_true(allowed(&a, "127.0.0.1", "GET", "badexample.com", 80));
    assert_true(allowed(&a, "127.0.0.1", "GET", "example.com.evil", 80));
    assert_false(allowed(&a, "127.0.0.1", "GET", "EXACT.org", 80));
    assert_true(allowed(&a, "127.0.0.1", "GET", "www.exact.org", 80));
    assert_true(allowed(&a, "127.0.0.1", "GET", "xact.org", 80));
    struct acl_result r = judge(&a, "127.0.0.1", "GET", "exact.org", 80);
    assert_int_equal(r.rule, 1);
}

static void test_first_match_wins(void **state)
{
    (void)state;
    acl_t a;
    char err[256];
    acl_init(&a);
    assert_int_equal(acl_add(&a, 0, "method=DELETE", err, sizeof err), 0);
    assert_int_equal(acl_add(&a, 1, "src=10.0.0.0/8,port=80", err, sizeof err), 0);
    assert_int_equal(acl_add(&a, 0, "src=127.0.0.0/8,host=blocked.test", err, sizeof err), 0);
    assert_int_equal(acl_add(&a, 1, "all", err, sizeof err), 0);
    assert_false(allowed(&a, "10.0.0.1", "DELETE", "h", 80));
    assert_true(allowed(&a, "10.0.0.1", "GET", "h", 80));
    /* port 81 skips rule 1; the catch-all rule 3 allows it. */
    struct acl_result r = judge(&a, "10.0.0.1", "GET", "h", 81);
    assert_true(r.allowed);
    assert_int_equal(r.rule, 3);
    r = judge(&a, "127.0.0.1", "GET", "blocked.test", 80);
    assert_false(r.allowed);
    assert_int_equal(r.rule, 2);
    /* Methods are case-sensitive. */
    assert_true(allowed(&a, "10.0.0.1", "delete", "h", 80));
}

static void test_bad_rules(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *msg;
    } bad[] = {
        { "src=10.0.0.0/33", "src=" }, { "src=::/129", "src=" }, { "src=10.0.0", "src=" },
        { "src=10.0.0.0/", "src=" }, { "src=", "src=" }, { "src=1.2.3.4/-1", "src=" },
        { "port=0", "port=" }, { "port=65536", "port=" }, { "port=90-80", "port=" },
        { "port=80-", "port=" }, { "port=a", "port=" }, { "host=", "host=" },
        { "host=.", "host=" }, { "host=a b", "host=" }, { "method=", "method=" },
        { "method=G(T", "method=" }, { "dst=1", "unknown" }, { "port=1,port=2", "repeated" },
        { "nonsense", "key=value" }, { "", "key=value" }, { "src=1.2.3.4,", "key=value" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        acl_t a;
        acl_init(&a);
        char err[256] = "";
        if (acl_add(&a, 1, bad[i].spec, err, sizeof err) != -1 || strstr(err, bad[i].msg) == NULL) {
            print_error("spec '%s' gave '%s'\n", bad[i].spec, err);
            fail();
        }
        assert_int_equal(a.nrules, 0);
    }
    acl_t a;
    acl_init(&a);
    char err[256];
    for (unsigned i = 0; i < PROXY_MAX_RULES; i++)
        assert_int_equal(acl_add(&a, 1, "all", err, sizeof err), 0);
    assert_int_equal(acl_add(&a, 1, "all", err, sizeof err), -1);
    assert_non_null(strstr(err, "too many"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_loopback_only),
        cmocka_unit_test(test_connect_port_gate),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_bad_rules),
    };
    return cmocka_run_group_tests_name("proxy_acl", tests, NULL, NULL);
}
