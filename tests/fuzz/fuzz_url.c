/* fuzz_url.c - libFuzzer target for the URL module (src/http/url.c).
 *
 * The input is parsed as a URL from a heap copy of exactly its length. A
 * URL that parses must have its slices inside the input, a port, and must
 * survive a round trip: "scheme://" + authority + target parses again to
 * the same host, port and target. The input is also resolved as a
 * reference against a fixed base, and whatever resolves must parse; and
 * percent-encoding it must give something the parser takes as a path.
 * Any violation calls abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/url.h"

static int inside(slice_t s, const char *p, size_t n)
{
    return s.len == 0 || (s.p >= p && s.p + s.len <= p + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HTTP_URL_MAX)
        return 0;
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    http_url_t u;
    const char *why;
    if (http_url_parse(in, size, &u, &why) == 0) {
        if (!inside(u.host, in, size) || !inside(u.path, in, size) ||
            !inside(u.query, in, size) || !inside(u.target, in, size) ||
            !inside(u.userinfo, in, size) || u.port == 0 || u.host.len == 0)
            abort();
        char auth[600], again[HTTP_URL_MAX + 700];
        if (http_url_authority(&u, auth, sizeof auth) < 0)
            abort();
        int n = snprintf(again, sizeof again, "%s://%s%.*s",
                         u.scheme == HTTP_URL_HTTPS ? "https" : "http", auth,
                         (int)u.target.len, u.target.p);
        http_url_t v;
        if (http_url_parse(again, (size_t)n, &v, &why) != 0 || !slice_eq(u.host, v.host) ||
            u.port != v.port || !slice_eq(u.target, v.target)) {
            fprintf(stderr, "fuzz_url: round trip of '%.*s' gave '%s' (%s)\n", (int)size, in,
                    again, why);
            abort();
        }
    } else if (why == NULL || why[0] == '\0') {
        abort();
    }
    char out[HTTP_URL_MAX + 1];
    int n = http_url_resolve(SLICE_LIT("http://a/b/c/d;p?q"), slice_make(in, size), out,
                             sizeof out, &why);
    if (n >= 0) {
        http_url_t r;
        if ((size_t)n != strlen(out) || http_url_parse(out, (size_t)n, &r, &why) != 0)
            abort();
    }
    static char enc[3 * HTTP_URL_MAX + 16];
    memcpy(enc, "http://h/", 9);
    n = http_url_encode(slice_make(in, size), enc + 9, sizeof enc - 9);
    if (n < 0)
        abort();
    http_url_t e;
    if (http_url_parse(enc, (size_t)n + 9, &e, &why) != 0 &&
        strcmp(why, "URL too long") != 0 &&
        strcmp(why, "character not allowed in a URL path or query") != 0) {
        fprintf(stderr, "fuzz_url: encoded '%s' refused: %s\n", enc, why);
        abort();
    }
    free(in);
    return 0;
}
