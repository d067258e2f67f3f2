/* fuzz_proxy.c - libFuzzer target for the proxy's parsers: firewall rule
 * specs (acl_add), authorities (hop_authority_split), Vary secondary keys
 * (hop_vary_key) and cache files read at start-up (the store's loader).
 *
 * The first byte picks the parser; the rest is its input, as a heap copy
 * of exactly its length. Checked:
 *  - a rule that parses is judged without fault, and one that does not
 *    leaves the table empty and an error message;
 *  - a split authority's host is a non-empty slice of the input and its
 *    port is 1..65535;
 *  - the secondary key is NUL-terminated at its length, the same for
 *    the same input twice, and HOP_VARY_STAR only when Vary lists "*";
 *  - a cache file of arbitrary bytes is loaded only when its CRC and
 *    lengths agree with its name (never for random input), and the store
 *    deletes what it discards.
 * Any mismatch calls abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/acl.h"
#include "proxy/hop.h"
#include "proxy/pstore.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_proxy: %s\n", what);
    abort();
}

static void rules(const char *p, size_t n)
{
    char *spec = malloc(n + 1);
    memcpy(spec, p, n);
    spec[n] = '\0';
    static acl_t a;
    acl_init(&a);
    char err[256] = "";
    int rc = acl_add(&a, 1, spec, err, sizeof err);
    if (rc == 0) {
        if (a.nrules != 1)
            fail("rule accepted but not added");
        addr_t c;
        memset(&c, 0, sizeof c);
        c.ss.ss_family = AF_INET6;
        struct acl_query q = { &c, slice_make(spec, n), slice_make(spec, n), 443 };
        acl_check(&a, &q);
    } else if (a.nrules != 0 || err[0] == '\0') {
        fail("rule refused without a message, or added anyway");
    }
    free(spec);
}

static void authority(const char *p, size_t n)
{
    slice_t h;
    uint16_t port = 0;
    if (hop_authority_split(slice_make(p, n), &h, &port, 80) == 0) {
        if (h.len == 0 || h.p < p || h.p + h.len > p + n || port == 0)
            fail("bad split");
    }
}

static void vary(const char *p, size_t n)
{
    /* First line: the Vary value; then "name:value" lines. */
    const char *nl = memchr(p, '\n', n);
    size_t vl = nl ? (size_t)(nl - p) : n;
    http_field_t f[16];
    size_t nf = 0;
    const char *q = nl ? nl + 1 : p + n;
    while (q < p + n && nf < 16) {
        const char *e = memchr(q, '\n', (size_t)(p + n - q));
        size_t len = e ? (size_t)(e - q) : (size_t)(p + n - q);
        const char *colon = memchr(q, ':', len);
        if (colon) {
            f[nf].name = slice_make(q, (size_t)(colon - q));
            f[nf].value = slice_make(colon + 1, len - (size_t)(colon - q) - 1);
            nf++;
        }
        q += len + 1;
    }
    char k1[512], k2[512];
    int a = hop_vary_key(k1, sizeof k1, slice_make(p, vl), f, nf);
    int b = hop_vary_key(k2, sizeof k2, slice_make(p, vl), f, nf);
    /* Values may hold NUL here (the parser refuses them upstream). */
    if (a != b || (a >= 0 && (k1[a] != '\0' || memcmp(k1, k2, (size_t)a) != 0)))
        fail("vary key unstable");
    if (a == HOP_VARY_STAR && memchr(p, '*', vl) == NULL)
        fail("star without *");
}

static char dir[64];

/* The store deletes every bad file, so the directory is empty at exit. */
static void remove_dir(void)
{
    rmdir(dir);
}

static void cache_file(const char *p, size_t n)
{
    if (dir[0] == '\0') {
        strcpy(dir, "/tmp/proxy-fuzz-XXXXXX");
        if (mkdtemp(dir) == NULL)
            fail("mkdtemp");
        atexit(remove_dir);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/0123456789abcdef-0000000000000001.pce", dir);
    FILE *fp = fopen(path, "wb");
    if (fp == NULL || fwrite(p, 1, n, fp) != n)
        fail("write");
    fclose(fp);
    char err[256];
    pstore_t *s = pstore_open(1 << 20, dir, err, sizeof err);
    if (s == NULL)
        fail(err);
    struct pstore_stats st;
    pstore_stats(s, &st);
    if (st.loaded != 0 || st.discarded != 1)
        fail("random bytes loaded as a cache entry");
    pstore_close(s);
    if (access(path, F_OK) == 0)
        fail("a bad file was kept");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *p = malloc(size - 1 ? size - 1 : 1);
    memcpy(p, data + 1, size - 1);
    switch (data[0] % 4) {
    case 0: rules(p, size - 1); break;
    case 1: authority(p, size - 1); break;
    case 2: vary(p, size - 1); break;
    default: cache_file(p, size - 1); break;
    }
    free(p);
    return 0;
}
