/* test_dns_conf.c - resolv.conf and hosts parsing (from buffers), hosts
 * lookups (A, AAAA, PTR), and the loader on files written by the test. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "dns/conf.h"

/* ----------------------------------------------------------- helpers */

static void ns_is(const dns_conf_t *c, size_t i, const char *text)
{
    char buf[ADDR_STRLEN];
    assert_true(i < c->nns);
    assert_string_equal(addr_format(&c->ns[i], buf, sizeof buf), text);
}

static void name_is(const dns_name_t *n, const char *text)
{
    char buf[DNS_NAME_STR_MAX];
    assert_true(dns_name_format(n, buf, sizeof buf) >= 0);
    assert_string_equal(buf, text);
}

static dns_name_t name_of(const char *text)
{
    dns_name_t n;
    assert_int_equal(dns_name_parse(&n, slice_cstr(text)), 0);
    return n;
}

static void parse(dns_conf_t *c, const char *text, int bad)
{
    dns_conf_init(c);
    assert_int_equal(dns_conf_parse_resolv(c, slice_cstr(text)), bad);
}

/* ------------------------------------------------------- resolv.conf */

static void test_defaults(void **state)
{
    (void)state;
    dns_conf_t c;
    parse(&c, "", 0);
    assert_int_equal(c.ndots, 1);
    assert_int_equal(c.timeout, 5);
    assert_int_equal(c.attempts, 2);
    assert_int_equal(c.nns, 0);
    assert_int_equal(c.nsearch, 0);
    assert_false(c.rotate || c.edns0 || c.use_vc || c.no_tld_query || c.search_set);
    dns_conf_finish(&c);
    assert_int_equal(c.nns, 1);
    ns_is(&c, 0, "127.0.0.1:53");
    dns_conf_dispose(&c);
}

static void test_nameservers(void **state)
{
    (void)state;
    dns_conf_t c;
    parse(&c,
          "# comment\n"
          "; comment too\n"
          "nameserver 192.0.2.1\n"
          "nameserver\t2001:db8::53   # trailing words are ignored\n"
          "nameserver bogus\n"
          "nameserver \n"             /* the keyword without an address */
          "nameserver1.2.3.4\n"        /* no blank after the keyword: not one */
          " nameserver 192.0.2.9\n"    /* not at the start of the line */
          "nameserver 10.1\r\n"        /* inet_aton's short form, a CRLF line */
          "nameserver 192.0.2.4\n",    /* a fourth: ignored */
          2);
    assert_int_equal(c.nns, 3);
    ns_is(&c, 0, "192.0.2.1:53");
    ns_is(&c, 1, "[2001:db8::53]:53");
    ns_is(&c, 2, "10.0.0.1:53");
    dns_conf_finish(&c);
    assert_int_equal(c.nns, 3);
    dns_conf_dispose(&c);
}

static void test_nameserver_scope(void **state)
{
    (void)state;
    dns_conf_t c;
    parse(&c, "nameserver fe80::1%7\nnameserver fe80::2%lo\nnameserver fe80::3%\n", 1);
    assert_int_equal(c.nns, 2);
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c.ns[0].ss;
    assert_int_equal(s6->sin6_family, AF_INET6);
    assert_int_equal(s6->sin6_scope_id, 7);
    assert_int_equal(ntohs(s6->sin6_port), 53);
    s6 = (const struct sockaddr_in6 *)&c.ns[1].ss;
    assert_int_equal(s6->sin6_scope_id, if_nametoindex("lo"));
    dns_conf_dispose(&c);
}

static void test_search_and_domain(void **state)
{
    (void)state;
    dns_conf_t c;
    parse(&c, "search a.test b.test.\n", 0);
    assert_true(c.search_set);
    assert_int_equal(c.nsearch, 2);
    name_is(&c.search[0], "a.test.");
    name_is(&c.search[1], "b.test.");
    dns_conf_dispose(&c);

    /* The last of search and domain wins. */
    parse(&c, "search a.test b.test\ndomain corp.test extra\n", 0);
    assert_int_equal(c.nsearch, 1);
    name_is(&c.search[0], "corp.test.");
    dns_conf_dispose(&c);
    parse(&c, "domain corp.test\nsearch x.test\n", 0);
    assert_int_equal(c.nsearch, 1);
    name_is(&c.search[0], "x.test.");
    dns_conf_dispose(&c);

    /* At most six; invalid names skipped; an empty domain line is bad. */
    parse(&c, "search a..b 1.t 2.t 3.t 4.t 5.t 6.t 7.t\ndomain \n", 1);
    assert_int_equal(c.nsearch, DNS_CONF_SEARCH_MAX);
    name_is(&c.search[0], "1.t.");
    name_is(&c.search[5], "6.t.");
    dns_conf_dispose(&c);

    /* The root is a search domain like any other. */
    parse(&c, "search .", 0);
    assert_int_equal(c.nsearch, 1);
    assert_int_equal(c.search[0].len, 1);
    dns_conf_dispose(&c);
}

static void test_options(void **state)
{
    (void)state;
    dns_conf_t c;
    parse(&c, "options ndots:3 timeout:2 attempts:4 rotate edns0 use-vc no-tld-query debug\n", 0);
    assert_int_equal(c.ndots, 3);
    assert_int_equal(c.timeout, 2);
    assert_int_equal(c.attempts, 4);
    assert_true(c.rotate && c.edns0 && c.use_vc && c.no_tld_query);
    dns_conf_dispose(&c);

    /* Caps as glibc's; attempts:0 is 1; malformed numbers change nothing. */
    parse(&c, "options ndots:99 timeout:1000 attempts:9\n", 0);
    assert_int_equal(c.ndots, DNS_CONF_NDOTS_MAX);
    assert_int_equal(c.timeout, DNS_CONF_TIMEOUT_MAX);
    assert_int_equal(c.attempts, DNS_CONF_ATTEMPTS_MAX);
    dns_conf_dispose(&c);
    parse(&c, "options attempts:0 ndots:-1 timeout:x ndots: timeout:99999999999999999999\n", 0);
    assert_int_equal(c.attempts, 1);
    assert_int_equal(c.ndots, 1);
    assert_int_equal(c.timeout, DNS_CONF_TIMEOUT_MAX);
    dns_conf_dispose(&c);
    parse(&c, "options ndots:0 timeout:0\noptions rotate", 0);
    assert_int_equal(c.ndots, 0);
    assert_int_equal(c.timeout, 0);
    assert_true(c.rotate);
    dns_conf_dispose(&c);

    /* RES_OPTIONS-style text on its own. */
    dns_conf_init(&c);
    dns_conf_parse_options(&c, SLICE_LIT("  ndots:2\tattempts:1 "));
    assert_int_equal(c.ndots, 2);
    assert_int_equal(c.attempts, 1);
    dns_conf_dispose(&c);
}

static void test_unknown_and_odd_lines(void **state)
{
    (void)state;
    dns_conf_t c;
    parse(&c, "sortlist 10.0.0.0/8\nlookup file bind\n\n\n#nameserver 192.0.2.1\nsearch\n"
              "nameserver 192.0.2.7", 0);
    assert_int_equal(c.nns, 1);
    ns_is(&c, 0, "192.0.2.7:53");
    assert_int_equal(c.nsearch, 0);
    dns_conf_dispose(&c);
}

/* ------------------------------------------------------------- hosts */

static const char hosts_text[] =
    "# /etc/hosts\n"
    "127.0.0.1\tlocalhost\n"
    "::1 localhost ip6-localhost ip6-loopback\n"
    "192.0.2.10 web.example.test web www   # the web server\n"
    "192.0.2.11 WEB.example.test\n"
    "192.0.2.10 web\n"                        /* same address again: given once */
    "2001:db8::10 web.example.test\n"
    "300.1.1.1 broken.test\n"                  /* bad address: the line is skipped */
    "10.1 short.test\n"                        /* hosts takes dotted quads only */
    "192.0.2.12\n"                             /* no name */
    "192.0.2.13 good.test bad..name also.test\n"
    "fe80::1%lo link.test\n";

static void test_hosts_a_aaaa(void **state)
{
    (void)state;
    dns_hosts_t h;
    dns_hosts_init(&h);
    assert_int_equal(dns_hosts_parse(&h, slice_cstr(hosts_text)), 8);

    dns_name_t n = name_of("Web.Example.Test");
    dns_rr_t rr[4];
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, NULL, 0), 2);
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, rr, 4), 2);
    assert_memory_equal(rr[0].a, ((uint8_t[]){ 192, 0, 2, 10 }), 4);
    assert_memory_equal(rr[1].a, ((uint8_t[]){ 192, 0, 2, 11 }), 4);
    assert_int_equal(rr[0].type, DNS_T_A);
    assert_int_equal(rr[0].rclass, DNS_C_IN);
    assert_int_equal(rr[0].ttl, 0);
    name_is(&rr[0].name, "Web.Example.Test."); /* owned by the name as asked */

    /* cap smaller than the count: the count, and cap records. */
    memset(rr, 0xee, sizeof rr);
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, rr, 1), 2);
    assert_memory_equal(rr[0].a, ((uint8_t[]){ 192, 0, 2, 10 }), 4);
    assert_int_equal(rr[1].type, 0xeeee);

    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_AAAA, rr, 4), 1);
    uint8_t v6[16];
    inet_pton(AF_INET6, "2001:db8::10", v6);
    assert_memory_equal(rr[0].aaaa, v6, 16);

    n = name_of("web.");
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, rr, 4), 1);
    n = name_of("www");
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, rr, 4), 1);
    n = name_of("localhost");
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, rr, 4), 1);
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_AAAA, rr, 4), 1);
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_MX, rr, 4), 0);
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_TXT, rr, 4), 0);
    n = name_of("ip6-loopback");
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, rr, 4), 0);
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_AAAA, rr, 4), 1);
    n = name_of("also.test");
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, rr, 4), 1);
    assert_memory_equal(rr[0].a, ((uint8_t[]){ 192, 0, 2, 13 }), 4);
    n = name_of("link.test");
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_AAAA, rr, 4), 1);
    const char *absent[] = { "broken.test", "short.test", "example.test", "web.example",
                             "we", "webx", "z", "a" };
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        n = name_of(absent[i]);
        assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, rr, 4), 0);
        assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_AAAA, rr, 4), 0);
    }

    /* A second file appends. */
    assert_int_equal(dns_hosts_parse(&h, SLICE_LIT("192.0.2.99 www\n")), 1);
    n = name_of("WWW");
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, rr, 4), 2);
    assert_memory_equal(rr[1].a, ((uint8_t[]){ 192, 0, 2, 99 }), 4);
    dns_hosts_dispose(&h);
}

static void test_hosts_ptr(void **state)
{
    (void)state;
    dns_hosts_t h;
    dns_hosts_init(&h);
    assert_true(dns_hosts_parse(&h, slice_cstr(hosts_text)) > 0);
    dns_rr_t rr;
    dns_name_t n = name_of("10.2.0.192.in-addr.arpa");
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_PTR, &rr, 1), 1);
    assert_int_equal(rr.type, DNS_T_PTR);
    name_is(&rr.target, "web.example.test."); /* the first name of the first line */
    name_is(&rr.name, "10.2.0.192.in-addr.arpa.");
    n = name_of("11.2.0.192.IN-ADDR.ARPA.");
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_PTR, &rr, 1), 1);
    name_is(&rr.target, "WEB.example.test.");
    n = name_of("0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_PTR, &rr, 1), 1);
    name_is(&rr.target, "web.example.test.");
    n = name_of("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_PTR, &rr, 1), 1);
    name_is(&rr.target, "localhost.");
    n = name_of("1.0.0.127.in-addr.arpa");
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_PTR, NULL, 0), 1);

    const char *miss[] = {
        "9.2.0.192.in-addr.arpa", "2.0.192.in-addr.arpa", "256.2.0.192.in-addr.arpa",
        "x.2.0.192.in-addr.arpa", "10.2.0.192.in-addr.example", "10.2.0.192.ip6.arpa",
        "web.example.test", "arpa", "in-addr.arpa",
        "00.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
        "g.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    };
    for (size_t i = 0; i < sizeof miss / sizeof miss[0]; i++) {
        n = name_of(miss[i]);
        assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_PTR, &rr, 1), 0);
    }
    dns_hosts_dispose(&h);
}

static void test_hosts_empty(void **state)
{
    (void)state;
    dns_hosts_t h;
    dns_hosts_init(&h);
    dns_name_t n = name_of("localhost");
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, NULL, 0), 0);
    assert_int_equal(dns_hosts_parse(&h, SLICE_LIT("# nothing\n\n   \n")), 0);
    assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, NULL, 0), 0);
    dns_hosts_dispose(&h);
}

/* A big table stays sorted and every name is found. */
static void test_hosts_many(void **state)
{
    (void)state;
    size_t cap = 3000 * 40, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (unsigned i = 3000; i-- > 0;)
        len += (size_t)snprintf(text + len, cap - len, "10.0.%u.%u h%u.test H%u\n", i / 256,
                                i % 256, i, i);
    dns_hosts_t h;
    dns_hosts_init(&h);
    assert_int_equal(dns_hosts_parse(&h, slice_make(text, len)), 3000);
    for (unsigned i = 0; i < 3000; i += 7) {
        char nm[32];
        snprintf(nm, sizeof nm, "h%u.TEST", i);
        dns_name_t n = name_of(nm);
        dns_rr_t rr;
        assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, &rr, 1), 1);
        assert_int_equal(rr.a[2], i / 256);
        assert_int_equal(rr.a[3], i % 256);
        snprintf(nm, sizeof nm, "h%u", i);
        n = name_of(nm);
        assert_int_equal(dns_hosts_lookup(&h, &n, DNS_T_A, NULL, 0), 1);
    }
    dns_hosts_dispose(&h);
    free(text);
}

/* ------------------------------------------------------------ loader */

static char tmpdir[64];

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

static void test_load(void **state)
{
    (void)state;
    char resolv[128], hosts[128];
    strcpy(tmpdir, "/tmp/portico-dnsconf-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(resolv, sizeof resolv, "%s/resolv.conf", tmpdir);
    snprintf(hosts, sizeof hosts, "%s/hosts", tmpdir);
    const char rtext[] = "nameserver 192.0.2.53\nsearch s.test\noptions ndots:2\n";
    const char htext[] = "192.0.2.80 box.test\n";
    write_file(resolv, rtext, sizeof rtext - 1);
    write_file(hosts, htext, sizeof htext - 1);
    unsetenv("LOCALDOMAIN");
    unsetenv("RES_OPTIONS");

    dns_conf_t c;
    dns_conf_init(&c);
    assert_int_equal(dns_conf_load(&c, resolv, hosts), 0);
    assert_int_equal(c.nns, 1);
    ns_is(&c, 0, "192.0.2.53:53");
    assert_int_equal(c.nsearch, 1);
    name_is(&c.search[0], "s.test.");
    assert_int_equal(c.ndots, 2);
    dns_name_t n = name_of("box.test");
    assert_int_equal(dns_hosts_lookup(&c.hosts, &n, DNS_T_A, NULL, 0), 1);
    dns_conf_dispose(&c);

    /* The environment: LOCALDOMAIN replaces the search list, RES_OPTIONS
     * comes after the file's options. */
    setenv("LOCALDOMAIN", "e1.test e2.test", 1);
    setenv("RES_OPTIONS", "ndots:4 rotate", 1);
    dns_conf_init(&c);
    assert_int_equal(dns_conf_load(&c, resolv, hosts), 0);
    assert_int_equal(c.nsearch, 2);
    name_is(&c.search[1], "e2.test.");
    assert_int_equal(c.ndots, 4);
    assert_true(c.rotate);
    dns_conf_dispose(&c);
    unsetenv("LOCALDOMAIN");
    unsetenv("RES_OPTIONS");

    /* Missing files: the defaults, no hosts. */
    char missing[128];
    snprintf(missing, sizeof missing, "%s/none", tmpdir);
    dns_conf_init(&c);
    assert_int_equal(dns_conf_load(&c, missing, missing), 0);
    assert_int_equal(c.nns, 1);
    ns_is(&c, 0, "127.0.0.1:53");
    assert_int_equal(c.timeout, 5);
    assert_int_equal(c.hosts.nlines, 0);
    dns_conf_dispose(&c);

    /* Too big, or a directory: an error, and still usable defaults. */
    size_t big = DNS_CONF_RESOLV_FILE_MAX + 1;
    char *btext = malloc(big);
    assert_non_null(btext);
    memset(btext, '#', big);
    write_file(resolv, btext, big);
    free(btext);
    dns_conf_init(&c);
    assert_int_equal(dns_conf_load(&c, resolv, hosts), -EFBIG);
    assert_int_equal(c.nns, 1);
    ns_is(&c, 0, "127.0.0.1:53");
    assert_int_equal(dns_hosts_lookup(&c.hosts, &n, DNS_T_A, NULL, 0), 1);
    dns_conf_dispose(&c);
    dns_conf_init(&c);
    assert_int_equal(dns_conf_load(&c, missing, tmpdir), -EISDIR);
    dns_conf_dispose(&c);

    unlink(resolv);
    unlink(hosts);
    rmdir(tmpdir);
}

/* The real files of this machine load (whatever they hold). */
static void test_load_system(void **state)
{
    (void)state;
    dns_conf_t c;
    dns_conf_init(&c);
    int rc = dns_conf_load(&c, NULL, NULL);
    assert_true(rc == 0 || rc == -EACCES);
    assert_true(c.nns >= 1 && c.nns <= DNS_CONF_NS_MAX);
    assert_true(c.attempts >= 1);
    dns_conf_dispose(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_nameservers),
        cmocka_unit_test(test_nameserver_scope),
        cmocka_unit_test(test_search_and_domain),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_unknown_and_odd_lines),
        cmocka_unit_test(test_hosts_a_aaaa),
        cmocka_unit_test(test_hosts_ptr),
        cmocka_unit_test(test_hosts_empty),
        cmocka_unit_test(test_hosts_many),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_load_system),
    };
    return cmocka_run_group_tests_name("dns_conf", tests, NULL, NULL);
}
