/* test_proxy_pstore.c - the proxy's cache storage (src/proxy/pstore.c):
 * lookups with Vary, replacement, the LRU byte limit, references that
 * outlive eviction, removal, and the disk: reload after a restart, and
 * every kind of torn or corrupt file discarded at load, never served. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "proxy/hop.h"
#include "proxy/limits.h"
#include "proxy/pstore.h"

static http_field_t fbuf[16];

/* Request fields from "name: value" pairs. */
static size_t req_fields(const char *const *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *colon = strchr(kv[i], ':');
        fbuf[i].name = slice_make(kv[i], (size_t)(colon - kv[i]));
        fbuf[i].value = slice_cstr(colon + 2);
    }
    return n;
}

static pstore_obj_t *mk(const char *key, const char *vary, const http_field_t *f, size_t nf,
                       const char *body, int64_t t)
{
    char vk[512] = "";
    if (vary[0])
        assert_true(hop_vary_key(vk, sizeof vk, slice_cstr(vary), f, nf) >= 0);
    const char *head = "Content-Type: text/plain\r\nCache-Control: max-age=60\r\n";
    pstore_obj_t *o = pstore_obj_new(slice_cstr(key), slice_cstr(vary), slice_cstr(vk), 200, head,
                                   strlen(head), t - 1, t);
    assert_non_null(o);
    assert_int_equal(pstore_obj_append(o, body, strlen(body), 1 << 20), 0);
    return o;
}

static void put(pstore_t *s, pstore_obj_t *o)
{
    assert_int_equal(pstore_put(s, o), 0);
    pstore_obj_release(o);
}

static void assert_body(pstore_obj_t *o, const char *body)
{
    assert_non_null(o);
    assert_int_equal(o->body_len, strlen(body));
    assert_memory_equal(o->body, body, strlen(body));
}

static void test_lookup_and_vary(void **state)
{
    (void)state;
    char err[256];
    pstore_t *s = pstore_open(1 << 20, NULL, err, sizeof err);
    assert_non_null(s);
    static const char *const gz[] = { "Accept-Encoding: gzip" };
    static const char *const br[] = { "Accept-Encoding: br" };
    size_t n = req_fields(gz, 1);
    put(s, mk("http://a/x", "Accept-Encoding", fbuf, n, "gzip body", 100));
    n = req_fields(br, 1);
    put(s, mk("http://a/x", "Accept-Encoding", fbuf, n, "br body", 101));
    put(s, mk("http://a/y", "", NULL, 0, "plain", 100));

    pstore_obj_t *o = pstore_lookup(s, SLICE_LIT("http://a/x"), fbuf, req_fields(gz, 1));
    assert_body(o, "gzip body");
    pstore_obj_release(o);
    o = pstore_lookup(s, SLICE_LIT("http://a/x"), fbuf, req_fields(br, 1));
    assert_body(o, "br body");
    pstore_obj_release(o);
    /* No Accept-Encoding: neither variant matches. */
    assert_null(pstore_lookup(s, SLICE_LIT("http://a/x"), NULL, 0));
    o = pstore_lookup(s, SLICE_LIT("http://a/y"), fbuf, req_fields(br, 1));
    assert_body(o, "plain");
    assert_string_equal(o->head, "Content-Type: text/plain\r\nCache-Control: max-age=60\r\n");
    assert_int_equal(o->status, 200);
    assert_int_equal(o->resp_time, 100);
    pstore_obj_release(o);
    assert_null(pstore_lookup(s, SLICE_LIT("http://a/"), NULL, 0));
    assert_null(pstore_lookup(s, SLICE_LIT("http://a/yy"), NULL, 0));

    /* Replacing a variant keeps one copy. */
    put(s, mk("http://a/y", "", NULL, 0, "newer", 200));
    o = pstore_lookup(s, SLICE_LIT("http://a/y"), NULL, 0);
    assert_body(o, "newer");
    pstore_obj_release(o);
    struct pstore_stats st;
    pstore_stats(s, &st);
    assert_int_equal(st.objects, 3);

    /* Removal takes every variant of the key. */
    assert_int_equal(pstore_remove(s, SLICE_LIT("http://a/x")), 2);
    assert_null(pstore_lookup(s, SLICE_LIT("http://a/x"), fbuf, req_fields(gz, 1)));
    assert_int_equal(pstore_remove(s, SLICE_LIT("http://a/x")), 0);
    pstore_stats(s, &st);
    assert_int_equal(st.objects, 1);
    pstore_close(s);
}

/* A body file is a second copy of the body: counted against the limit,
 * evicting older objects of the shard, and refused when the object
 * counted twice would not fit. */
static void test_body_file_counted(void **state)
{
    (void)state;
    char err[200];
    /* 16 shards of 64 KiB. */
    pstore_t *s = pstore_open(16 * 65536, NULL, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(pstore_max_body(s), 65536);
    static char body[20001];
    memset(body, 'x', sizeof body - 1);
    /* Objects in one shard: keys are spread by hash, so put many and
     * look at the totals. */
    for (int i = 0; i < 64; i++) {
        char key[32];
        snprintf(key, sizeof key, "http://h/%d", i);
        put(s, mk(key, "", NULL, 0, body, 1000 + i));
    }
    struct pstore_stats st;
    pstore_stats(s, &st);
    assert_true(st.bytes <= 16 * 65536);
    uint64_t before = st.bytes, evicted = st.evicted;
    /* A hit makes a file for each object still stored: each counts its
     * body once more, the totals stay under the limit, and older objects
     * go. */
    int files = 0;
    for (int i = 0; i < 64; i++) {
        char key[32];
        snprintf(key, sizeof key, "http://h/%d", i);
        pstore_obj_t *o = pstore_lookup(s, slice_cstr(key), NULL, 0);
        if (o == NULL)
            continue;
        if (pstore_obj_body_fd(s, o) >= 0)
            files++;
        pstore_obj_release(o);
    }
    assert_true(files > 0);
    pstore_stats(s, &st);
    assert_true(st.bytes <= 16 * 65536);
    assert_true(st.evicted > evicted);
    (void)before;
    /* An object that, counted twice, is past its shard's share gets no
     * file (it is sent from memory). */
    static char big[40001];
    memset(big, 'y', sizeof big - 1);
    put(s, mk("http://h/big", "", NULL, 0, big, 5000));
    pstore_obj_t *o = pstore_lookup(s, SLICE_LIT("http://h/big"), NULL, 0);
    assert_non_null(o);
    assert_int_equal(pstore_obj_body_fd(s, o), -1);
    pstore_obj_release(o);
    pstore_close(s);
}

/* With the process's memory files all in use, a hit is sent from memory
 * and counts nothing: the store's byte total stays the same however often
 * the object is hit. */
static void test_body_file_budget_refusal_counts_nothing(void **state)
{
    (void)state;
    char err[200];
    pstore_t *s = pstore_open(16 * 65536, NULL, err, sizeof err);
    assert_non_null(s);
    static char body[8001];
    memset(body, 'z', sizeof body - 1);
    put(s, mk("http://h/one", "", NULL, 0, body, 1000));
    struct pstore_stats st;
    pstore_stats(s, &st);
    uint64_t before = st.bytes;
    static pstore_obj_t *held[PROXY_BODY_FILES_MAX];
    for (unsigned i = 0; i < PROXY_BODY_FILES_MAX; i++) {
        held[i] = mk("http://h/held", "", NULL, 0, "b", 1000);
        assert_true(pstore_obj_body_fd(NULL, held[i]) >= 0);
    }
    for (int i = 0; i < 10; i++) {
        pstore_obj_t *o = pstore_lookup(s, SLICE_LIT("http://h/one"), NULL, 0);
        assert_non_null(o);
        assert_int_equal(pstore_obj_body_fd(s, o), -1);
        pstore_obj_release(o);
    }
    pstore_stats(s, &st);
    assert_int_equal(st.bytes, before);
    assert_int_equal(st.evicted, 0);
    for (unsigned i = 0; i < PROXY_BODY_FILES_MAX; i++)
        pstore_obj_release(held[i]);
    /* The budget is back: the next hit gets its file, counted once. */
    pstore_obj_t *o = pstore_lookup(s, SLICE_LIT("http://h/one"), NULL, 0);
    assert_non_null(o);
    assert_true(pstore_obj_body_fd(s, o) >= 0);
    pstore_obj_release(o);
    pstore_stats(s, &st);
    assert_int_equal(st.bytes, before + sizeof body - 1);
    pstore_close(s);
}

/* pstore_obj_body_fd: a file with the body's bytes, made once (the same
 * descriptor after), closed when the last reference goes. */
static void test_body_file(void **state)
{
    (void)state;
    char body[20000];
    for (size_t i = 0; i < sizeof body - 1; i++)
        body[i] = (char)('a' + i % 26);
    body[sizeof body - 1] = '\0';
    pstore_obj_t *o = mk("http://h/big", "", NULL, 0, body, 1000);
    int fd = pstore_obj_body_fd(NULL, o);
    assert_true(fd >= 0);
    assert_int_equal(pstore_obj_body_fd(NULL, o), fd);
    char back[sizeof body];
    assert_int_equal(pread(fd, back, sizeof back, 0), (ssize_t)(sizeof body - 1));
    assert_memory_equal(back, body, sizeof body - 1);
    pstore_obj_ref(o);
    pstore_obj_release(o);
    assert_true(fcntl(fd, F_GETFD) >= 0); /* a reference is left */
    pstore_obj_release(o);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
}

static void test_lru_limit(void **state)
{
    (void)state;
    char err[256];
    /* Each shard gets limit/SHARDS bytes; objects of ~3 KiB. */
    const uint64_t limit = PROXY_STORE_SHARDS * 10000ull;
    pstore_t *s = pstore_open(limit, NULL, err, sizeof err);
    assert_non_null(s);
    char body[3001];
    memset(body, 'b', 3000);
    body[3000] = '\0';
    char key[64];
    for (int i = 0; i < 400; i++) {
        snprintf(key, sizeof key, "http://h/%d", i);
        put(s, mk(key, "", NULL, 0, body, i));
        if (i == 10) { /* keep /0 hot */
            pstore_obj_t *o = pstore_lookup(s, SLICE_LIT("http://h/0"), NULL, 0);
            pstore_obj_release(o);
        }
    }
    struct pstore_stats st;
    pstore_stats(s, &st);
    assert_true(st.bytes <= limit);
    assert_true(st.evicted > 0);
    assert_true(st.objects < 400);
    /* The newest is there; the oldest untouched ones are gone. */
    pstore_obj_t *o = pstore_lookup(s, SLICE_LIT("http://h/399"), NULL, 0);
    assert_non_null(o);
    pstore_obj_release(o);
    assert_null(pstore_lookup(s, SLICE_LIT("http://h/1"), NULL, 0));

    /* A reference outlives eviction. */
    o = pstore_lookup(s, SLICE_LIT("http://h/399"), NULL, 0);
    for (int i = 400; i < 800; i++) {
        snprintf(key, sizeof key, "http://h/%d", i);
        put(s, mk(key, "", NULL, 0, body, i));
    }
    assert_body(o, body);
    pstore_obj_release(o);

    /* Too big for a shard: refused. */
    char *big = malloc(20001);
    memset(big, 'x', 20000);
    big[20000] = '\0';
    pstore_obj_t *b = mk("http://h/big", "", NULL, 0, big, 1);
    assert_int_equal(pstore_put(s, b), -1);
    pstore_obj_release(b);
    free(big);
    /* And the append cap holds. */
    b = mk("http://h/cap", "", NULL, 0, "12345", 1);
    assert_int_equal(pstore_obj_append(b, "678", 3, 7), -1);
    assert_int_equal(b->body_len, 5);
    pstore_obj_release(b);
    pstore_close(s);
}

/* ------------------------------------------------------------ disk */

static char tmpdir[64];

static int dir_setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/proxy-store-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int dir_teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    return rmdir(tmpdir);
}

static int count_files(const char *suffix)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), m = strlen(suffix);
        if (l >= m && strcmp(e->d_name + l - m, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void path_of(const pstore_obj_t *o, char *out, size_t len)
{
    char name[PSTORE_NAME_LEN];
    pstore_file_name(o, name);
    snprintf(out, len, "%s/%s", tmpdir, name);
}

static pstore_t *reopen(pstore_t *s)
{
    pstore_close(s);
    char err[256];
    s = pstore_open(1 << 22, tmpdir, err, sizeof err);
    if (s == NULL)
        print_error("%s\n", err);
    assert_non_null(s);
    return s;
}

static void test_disk_restart(void **state)
{
    (void)state;
    char err[256];
    pstore_t *s = pstore_open(1 << 22, tmpdir, err, sizeof err);
    assert_non_null(s);
    static const char *const gz[] = { "Accept-Encoding: gzip" };
    size_t n = req_fields(gz, 1);
    pstore_obj_t *a = mk("http://o/a", "Accept-Encoding", fbuf, n, "variant a", 50);
    pstore_obj_t *b = mk("http://o/b", "", NULL, 0, "", 60); /* empty body */
    assert_int_equal(pstore_put(s, a), 0);
    assert_int_equal(pstore_put(s, b), 0);
    assert_int_equal(pstore_persist(s, a), 0);
    assert_int_equal(pstore_persist(s, b), 0);
    pstore_obj_release(a);
    pstore_obj_release(b);
    assert_int_equal(count_files(".pce"), 2);
    assert_int_equal(count_files(".part"), 0);

    s = reopen(s);
    struct pstore_stats st;
    pstore_stats(s, &st);
    assert_int_equal(st.loaded, 2);
    assert_int_equal(st.discarded, 0);
    pstore_obj_t *o = pstore_lookup(s, SLICE_LIT("http://o/a"), fbuf, req_fields(gz, 1));
    assert_body(o, "variant a");
    assert_string_equal(o->vary, "Accept-Encoding");
    assert_int_equal(o->req_time, 49);
    assert_int_equal(o->resp_time, 50);
    assert_string_equal(o->head, "Content-Type: text/plain\r\nCache-Control: max-age=60\r\n");
    pstore_obj_release(o);
    assert_null(pstore_lookup(s, SLICE_LIT("http://o/a"), NULL, 0));
    o = pstore_lookup(s, SLICE_LIT("http://o/b"), NULL, 0);
    assert_body(o, "");
    pstore_obj_release(o);

    /* A replacement's file replaces the old one once swept. */
    pstore_obj_t *b2 = mk("http://o/b", "", NULL, 0, "second", 70);
    assert_int_equal(pstore_put(s, b2), 0);
    assert_int_equal(pstore_persist(s, b2), 0);
    pstore_obj_release(b2);
    pstore_sweep(s);
    assert_int_equal(count_files(".pce"), 2);
    /* Removal deletes the file. */
    assert_int_equal(pstore_remove(s, SLICE_LIT("http://o/a")), 1);
    pstore_sweep(s);
    assert_int_equal(count_files(".pce"), 1);
    s = reopen(s);
    assert_null(pstore_lookup(s, SLICE_LIT("http://o/a"), fbuf, req_fields(gz, 1)));
    o = pstore_lookup(s, SLICE_LIT("http://o/b"), NULL, 0);
    assert_body(o, "second");
    pstore_obj_release(o);
    pstore_remove(s, SLICE_LIT("http://o/b"));
    pstore_sweep(s);
    pstore_close(s);
}

/* Writes an object, damages its file with `damage`, reopens: the object
 * must be gone and the file deleted. */
static void damaged(void (*damage)(const char *path), const char *what)
{
    char err[256];
    pstore_t *s = pstore_open(1 << 22, tmpdir, err, sizeof err);
    assert_non_null(s);
    pstore_obj_t *good = mk("http://o/good", "", NULL, 0, "good body", 10);
    pstore_obj_t *bad = mk("http://o/bad", "", NULL, 0, "a body that will be damaged", 11);
    assert_int_equal(pstore_put(s, good), 0);
    assert_int_equal(pstore_put(s, bad), 0);
    assert_int_equal(pstore_persist(s, good), 0);
    assert_int_equal(pstore_persist(s, bad), 0);
    char path[512];
    path_of(bad, path, sizeof path);
    pstore_obj_release(good);
    pstore_obj_release(bad);
    damage(path);
    s = reopen(s);
    struct pstore_stats st;
    pstore_stats(s, &st);
    if (st.loaded != 1 || st.discarded != 1) {
        print_error("%s: loaded %llu discarded %llu\n", what, (unsigned long long)st.loaded,
                    (unsigned long long)st.discarded);
        fail();
    }
    assert_null(pstore_lookup(s, SLICE_LIT("http://o/bad"), NULL, 0));
    pstore_obj_t *o = pstore_lookup(s, SLICE_LIT("http://o/good"), NULL, 0);
    assert_body(o, "good body");
    pstore_obj_release(o);
    assert_int_equal(access(path, F_OK), -1);
    pstore_remove(s, SLICE_LIT("http://o/good"));
    pstore_sweep(s);
    pstore_close(s);
    assert_int_equal(count_files(""), 2); /* . and .. */
}

static void truncate_half(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(truncate(p, st.st_size / 2), 0);
}

static void truncate_one(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(truncate(p, st.st_size - 1), 0);
}

static void truncate_header(const char *p)
{
    assert_int_equal(truncate(p, 10), 0);
}

static void flip_body_byte(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    int fd = open(p, O_RDWR);
    char c;
    assert_int_equal(pread(fd, &c, 1, st.st_size - 3), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, st.st_size - 3), 1);
    close(fd);
}

static void flip_length(const char *p)
{
    int fd = open(p, O_RDWR);
    char c;
    /* Inside the fixed header, past the magic and the CRC. */
    assert_int_equal(pread(fd, &c, 1, 44), 1);
    c ^= 1;
    assert_int_equal(pwrite(fd, &c, 1, 44), 1);
    close(fd);
}

static void append_garbage(const char *p)
{
    int fd = open(p, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "xx", 2), 2);
    close(fd);
}

static void zero_file(const char *p)
{
    assert_int_equal(truncate(p, 0), 0);
}

static void test_torn_entries(void **state)
{
    (void)state;
    damaged(truncate_half, "half a file");
    damaged(truncate_one, "one byte short");
    damaged(truncate_header, "a torn header");
    damaged(flip_body_byte, "a flipped body byte");
    damaged(flip_length, "a flipped length");
    damaged(append_garbage, "bytes after the end");
    damaged(zero_file, "an empty file");
}

static void test_leftovers(void **state)
{
    (void)state;
    /* A .part left by a crash and a file under a name that is not its
     * own (a copy) are deleted; other files are left alone. */
    char p[512];
    snprintf(p, sizeof p, "%s/0123456789abcdef-0000000000000001.part", tmpdir);
    FILE *f = fopen(p, "w");
    fputs("partial", f);
    fclose(f);
    char err[256];
    pstore_t *s = pstore_open(1 << 22, tmpdir, err, sizeof err);
    pstore_obj_t *o = mk("http://o/n", "", NULL, 0, "n", 10);
    assert_int_equal(pstore_put(s, o), 0);
    assert_int_equal(pstore_persist(s, o), 0);
    char src[512], dst[512];
    path_of(o, src, sizeof src);
    snprintf(dst, sizeof dst, "%s/ffffffffffffffff-0000000000000009.pce", tmpdir);
    pstore_obj_release(o);
    pstore_close(s);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp %s %s", src, dst);
    assert_int_equal(system(cmd), 0);
    snprintf(p, sizeof p, "%s/README", tmpdir);
    f = fopen(p, "w");
    fclose(f);
    s = pstore_open(1 << 22, tmpdir, err, sizeof err);
    struct pstore_stats st;
    pstore_stats(s, &st);
    assert_int_equal(st.loaded, 1);
    assert_int_equal(st.discarded, 1);
    assert_int_equal(count_files(".part"), 0);
    assert_int_equal(access(dst, F_OK), -1);
    assert_int_equal(access(p, F_OK), 0);
    unlink(p);
    pstore_remove(s, SLICE_LIT("http://o/n"));
    pstore_sweep(s);
    pstore_close(s);

    /* An unusable directory is a clear error. */
    s = pstore_open(1 << 20, "/proc/self/no-such/dir", err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "cache directory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_and_vary),
        cmocka_unit_test(test_lru_limit),
        cmocka_unit_test(test_body_file),
        cmocka_unit_test(test_body_file_counted),
        cmocka_unit_test(test_body_file_budget_refusal_counts_nothing),
        cmocka_unit_test_setup_teardown(test_disk_restart, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_torn_entries, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_leftovers, dir_setup, dir_teardown),
    };
    return cmocka_run_group_tests_name("proxy_pstore", tests, NULL, NULL);
}
