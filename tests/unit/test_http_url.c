/* test_http_url.c - URLs (src/http/url.c): a table of valid URLs with
 * their parts, a table of invalid ones with the exact reason, reference
 * resolution (RFC 3986 §5.4 examples and redirect forms), encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "guard.h"

#include "http/url.h"

struct valid {
    const char *url;
    int https;
    const char *userinfo;   /* NULL: none */
    const char *host;
    int ipv6;
    unsigned port;
    int has_port;
    const char *path, *query;   /* query NULL: none */
    const char *target;
    const char *authority;
};

static const struct valid valid[] = {
    { "http://example.com", 0, NULL, "example.com", 0, 80, 0, "", NULL, "", "example.com" },
    { "http://example.com/", 0, NULL, "example.com", 0, 80, 0, "/", NULL, "/", "example.com" },
    { "HTTP://Example.COM/a/b", 0, NULL, "Example.COM", 0, 80, 0, "/a/b", NULL, "/a/b", "Example.COM" },
    { "https://x.org/p", 1, NULL, "x.org", 0, 443, 0, "/p", NULL, "/p", "x.org" },
    { "http://127.0.0.1:8080/f?a=1&b=2", 0, NULL, "127.0.0.1", 0, 8080, 1, "/f", "a=1&b=2", "/f?a=1&b=2", "127.0.0.1:8080" },
    { "http://[::1]:8080/x", 0, NULL, "::1", 1, 8080, 1, "/x", NULL, "/x", "[::1]:8080" },
    { "http://[2001:db8::7]/", 0, NULL, "2001:db8::7", 1, 80, 0, "/", NULL, "/", "[2001:db8::7]" },
    { "http://user:pa%20ss@host:81/", 0, "user:pa%20ss", "host", 0, 81, 1, "/", NULL, "/", "host:81" },
    { "http://user@host/", 0, "user", "host", 0, 80, 0, "/", NULL, "/", "host" },
    { "http://host:/p", 0, NULL, "host", 0, 80, 0, "/p", NULL, "/p", "host" },
    { "http://host:80/p", 0, NULL, "host", 0, 80, 1, "/p", NULL, "/p", "host" },
    { "http://host/a%20b/%7e?q=%2F#frag", 0, NULL, "host", 0, 80, 0, "/a%20b/%7e", "q=%2F", "/a%20b/%7e?q=%2F", "host" },
    { "http://host?q", 0, NULL, "host", 0, 80, 0, "", "q", "?q", "host" },
    { "http://host/p?", 0, NULL, "host", 0, 80, 0, "/p", "", "/p?", "host" },
    { "http://h/!$&'()*+,;=:@-._~", 0, NULL, "h", 0, 80, 0, "/!$&'()*+,;=:@-._~", NULL, "/!$&'()*+,;=:@-._~", "h" },
    { "http://h/a?b/c?d", 0, NULL, "h", 0, 80, 0, "/a", "b/c?d", "/a?b/c?d", "h" },
    { "http://my-host.example_1/", 0, NULL, "my-host.example_1", 0, 80, 0, "/", NULL, "/", "my-host.example_1" },
    { "http://h:65535/", 0, NULL, "h", 0, 65535, 1, "/", NULL, "/", "h:65535" },
};

struct invalid {
    const char *url;
    const char *why;
};

static const struct invalid invalid[] = {
    { "", "empty URL" },
    { "example.com/x", "missing scheme (expected http:// or https://)" },
    { "http:/x", "missing scheme (expected http:// or https://)" },
    { "://x", "missing scheme (expected http:// or https://)" },
    { "ftp://x/", "unsupported scheme (only http and https)" },
    { "httpx://x/", "unsupported scheme (only http and https)" },
    { "http:///p", "empty host" },
    { "http://user@/p", "empty host" },
    { "http://:80/", "empty host" },
    { "http://h:0/", "port out of range (1-65535)" },
    { "http://h:65536/", "port out of range (1-65535)" },
    { "http://h:99999999999/", "port out of range (1-65535)" },
    { "http://h:8a/", "bad port (not a decimal number)" },
    { "http://h:-1/", "bad port (not a decimal number)" },
    { "http://[::1/", "IPv6 address without its closing bracket" },
    { "http://[::g]/", "bad IPv6 address" },
    { "http://[]/", "bad IPv6 address" },
    { "http://[fe80::1%25eth0]/", "IPv6 zone identifiers are not supported" },
    { "http://[::1]x/", "unexpected character after the IPv6 address" },
    { "http://a]b/", "bracket outside an IPv6 address" },
    { "http://ho st/", "character not allowed in a host name" },
    { "http://h<>/", "character not allowed in a host name" },
    { "http://h%zz/", "bad percent-encoding (% not followed by two hex digits)" },
    { "http://h/a b", "space in the URL (encode it as %20)" },
    { "http://h/a\tb", "control character in the URL" },
    { "http://h/a\x7f", "control character in the URL" },
    { "http://h/\xc3\xa9", "non-ASCII byte in the URL (percent-encode it)" },
    { "http://h/%", "bad percent-encoding (% not followed by two hex digits)" },
    { "http://h/%4", "bad percent-encoding (% not followed by two hex digits)" },
    { "http://h/%4g", "bad percent-encoding (% not followed by two hex digits)" },
    { "http://h/?q=%", "bad percent-encoding (% not followed by two hex digits)" },
    { "http://h/a\"b", "character not allowed in a URL path or query" },
    { "http://h/{x}", "character not allowed in a URL path or query" },
    { "http://h/a|b", "character not allowed in a URL path or query" },
    { "http://h/a\\b", "character not allowed in a URL path or query" },
    { "http://h/#a#b", "character not allowed in a URL path or query" },
    { "http://us er@h/", "character not allowed in the userinfo" },
};

static void test_valid(void **state)
{
    (void)state;
    guard_t g;
    guard_init(&g, 4096);
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        const struct valid *v = &valid[i];
        http_url_t u;
        const char *why;
        size_t n = strlen(v->url);
        const char *s = guard_put(&g, v->url, n);
        if (http_url_parse(s, n, &u, &why) != 0)
            fail_msg("%s: refused (%s)", v->url, why);
        assert_int_equal(u.scheme, v->https ? HTTP_URL_HTTPS : HTTP_URL_HTTP);
        assert_int_equal(u.has_userinfo, v->userinfo != NULL);
        if (v->userinfo)
            assert_true(slice_eq(u.userinfo, slice_cstr(v->userinfo)));
        if (!slice_eq(u.host, slice_cstr(v->host)))
            fail_msg("%s: host '%.*s'", v->url, (int)u.host.len, u.host.p);
        assert_int_equal(u.ipv6, v->ipv6);
        assert_int_equal(u.port, v->port);
        assert_int_equal(u.has_port, v->has_port);
        assert_true(slice_eq(u.path, slice_cstr(v->path)));
        assert_int_equal(u.has_query, v->query != NULL);
        if (v->query)
            assert_true(slice_eq(u.query, slice_cstr(v->query)));
        if (!slice_eq(u.target, slice_cstr(v->target)))
            fail_msg("%s: target '%.*s'", v->url, (int)u.target.len, u.target.p);
        char auth[300];
        assert_true(http_url_authority(&u, auth, sizeof auth) > 0);
        assert_string_equal(auth, v->authority);
    }
    guard_dispose(&g);
}

static void test_invalid(void **state)
{
    (void)state;
    guard_t g;
    guard_init(&g, 4096);
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        http_url_t u;
        const char *why = NULL;
        size_t n = strlen(invalid[i].url);
        const char *s = guard_put(&g, invalid[i].url, n);
        if (http_url_parse(s, n, &u, &why) != -1)
            fail_msg("%s: accepted", invalid[i].url);
        if (strcmp(why, invalid[i].why) != 0)
            fail_msg("%s: '%s', expected '%s'", invalid[i].url, why, invalid[i].why);
    }
    guard_dispose(&g);
}

static void test_long(void **state)
{
    (void)state;
    static char u[HTTP_URL_MAX + 64];
    strcpy(u, "http://h/");
    memset(u + 9, 'a', HTTP_URL_MAX);
    u[HTTP_URL_MAX + 9] = '\0';
    http_url_t url;
    const char *why;
    assert_int_equal(http_url_parse(u, strlen(u), &url, &why), -1);
    assert_string_equal(why, "URL too long");
    char h[400] = "http://";
    memset(h + 7, 'a', 300);
    h[307] = '\0';
    assert_int_equal(http_url_parse(h, strlen(h), &url, &why), -1);
    assert_string_equal(why, "host name too long");
}

static void test_nul(void **state)
{
    (void)state;
    /* A NUL inside brackets must not let "::" pass as the address. */
    static const char u1[] = "http://[::\0\0001]/x";
    static const char u2[] = "http://h\0st/";
    static const char u3[] = "http://h/a\0b";
    http_url_t u;
    const char *why;
    assert_int_equal(http_url_parse(u1, sizeof u1 - 1, &u, &why), -1);
    assert_string_equal(why, "bad IPv6 address");
    assert_int_equal(http_url_parse(u2, sizeof u2 - 1, &u, &why), -1);
    assert_string_equal(why, "character not allowed in a host name");
    assert_int_equal(http_url_parse(u3, sizeof u3 - 1, &u, &why), -1);
    assert_string_equal(why, "control character in the URL");
}

static void test_resolve(void **state)
{
    (void)state;
    /* RFC 3986 §5.4.1 and §5.4.2 with base http://a/b/c/d;p?q, plus
     * what redirects send. */
    static const char *const t[][2] = {
        { "g", "http://a/b/c/g" }, { "./g", "http://a/b/c/g" }, { "g/", "http://a/b/c/g/" },
        { "/g", "http://a/g" }, { "//g", "http://g" }, { "?y", "http://a/b/c/d;p?y" },
        { "g?y", "http://a/b/c/g?y" }, { "#s", "http://a/b/c/d;p?q" },
        { "g#s", "http://a/b/c/g" }, { ";x", "http://a/b/c/;x" }, { "", "http://a/b/c/d;p?q" },
        { ".", "http://a/b/c/" }, { "./", "http://a/b/c/" }, { "..", "http://a/b/" },
        { "../", "http://a/b/" }, { "../g", "http://a/b/g" }, { "../..", "http://a/" },
        { "../../", "http://a/" }, { "../../g", "http://a/g" }, { "../../../g", "http://a/g" },
        { "../../../../g", "http://a/g" }, { "/./g", "http://a/g" }, { "/../g", "http://a/g" },
        { "g.", "http://a/b/c/g." }, { ".g", "http://a/b/c/.g" }, { "g..", "http://a/b/c/g.." },
        { "..g", "http://a/b/c/..g" }, { "./../g", "http://a/b/g" }, { "./g/.", "http://a/b/c/g/" },
        { "g/./h", "http://a/b/c/g/h" }, { "g/../h", "http://a/b/c/h" },
        { "http://other:8080/x/../y", "http://other:8080/y" },
        { "HTTP://A/B", "HTTP://A/B" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[256];
        const char *why;
        int n = http_url_resolve(SLICE_LIT("http://a/b/c/d;p?q"), slice_cstr(t[i][0]), out,
                                 sizeof out, &why);
        if (n < 0)
            fail_msg("'%s': failed (%s)", t[i][0], why);
        if (strcmp(out, t[i][1]) != 0)
            fail_msg("'%s': '%s', expected '%s'", t[i][0], out, t[i][1]);
        assert_int_equal(n, (int)strlen(out));
    }
    char out[64];
    const char *why;
    assert_int_equal(http_url_resolve(SLICE_LIT("http://h:81"), SLICE_LIT("x"), out, sizeof out, &why), 13);
    assert_string_equal(out, "http://h:81/x");
    assert_int_equal(http_url_resolve(SLICE_LIT("http://h/"), SLICE_LIT("ftp://x/"), out, sizeof out, &why), -1);
    assert_string_equal(why, "unsupported scheme (only http and https)");
    assert_int_equal(http_url_resolve(SLICE_LIT("http://h/"), SLICE_LIT("/a b"), out, sizeof out, &why), -1);
    assert_int_equal(http_url_resolve(SLICE_LIT("http://h/"), SLICE_LIT("/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), out, sizeof out, &why), -1);
    assert_string_equal(why, "resolved URL too long");
}

static void test_encode(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(http_url_encode(SLICE_LIT("/a b/\xc3\xa9?x=%2F&y=%zz|"), out, sizeof out), 30);
    assert_string_equal(out, "/a%20b/%C3%A9?x=%2F&y=%25zz%7C");
    http_url_t u;
    const char *why;
    char full[80] = "http://h";
    strcat(full, out);
    assert_int_equal(http_url_parse(full, strlen(full), &u, &why), 0);
    assert_int_equal(http_url_encode(SLICE_LIT("   "), out, 9), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_long),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
