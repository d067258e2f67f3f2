/* test_http_multipart.c - the multipart/form-data parser (src/http/multipart.c).
 *
 * Tables of raw wire bytes shaped like what browsers send, each parsed
 * whole, split in two at every offset, byte by byte and in random pieces.
 * Every call gets only the bytes not yet consumed, copied right before a
 * PROT_NONE page so that any read past them faults. Every schedule must give
 * the same events at the same input offsets (MP_PART after the header
 * section, MP_PART_END after the delimiter, MP_DONE after the close
 * delimiter, or -400 at the refused byte with the same reason), the same
 * part fields and the same data per part. On the way, every call is checked
 * against the contract: DATA never empty and a slice of the call's input or
 * of the parser, MORE only with all input used, never more body bytes held
 * back than the longest tail that could still begin a delimiter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "guard.h"

#include "http/multipart.h"

/* ------------------------------------------------------------ guard pages */

static guard_t g_in;

/* The part data of the last parse(): one buffer for the whole run, so that
 * a failed assertion (which longjmps out) leaks nothing. */
static char *g_data;
static size_t g_data_cap;

static int group_setup(void **state)
{
    (void)state;
    guard_init(&g_in, 1u << 20);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    munmap(g_in.base, g_in.maplen);
    free(g_data);
    return 0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

/* ------------------------------------------------------------- the driver */

enum sched { S_WHOLE, S_CUT, S_BYTES, S_RANDOM };

#define MAX_PARTS 16

struct got_part {
    mp_part_t meta;
    size_t at;          /* input offset right after its header section */
    size_t end_at;      /* right after its delimiter; 0 while open */
    size_t data_off;    /* its data: g_data[data_off, data_off + data_len) */
    size_t data_len;
};

struct outcome {
    int rc;             /* MP_DONE, MP_MORE (input ran out) or -400 */
    size_t at;          /* right after the close delimiter, the refused byte, or n */
    const char *why;
    size_t nparts;
    struct got_part parts[MAX_PARTS];
    size_t data_calls;  /* MP_DATA events */
};

static size_t next_arrival(enum sched s, size_t have, size_t n, size_t cut)
{
    switch (s) {
    case S_WHOLE:
        return n;
    case S_CUT:
        return have < cut ? cut : n;
    case S_BYTES:
        return have + 1 <= n ? have + 1 : n;
    case S_RANDOM:
    default: {
        size_t k = have + 1 + (size_t)(rng() % 9);
        return k < n ? k : n;
    }
    }
}

static const char *sched_name(enum sched s)
{
    static const char *const names[] = { "whole", "cut", "byte by byte", "random" };
    return names[s];
}

/* The longest tail of in[from, to) that is a proper prefix of the delimiter:
 * what a parser must hold back at `to`, and all it may. */
static size_t must_hold(const char *in, size_t from, size_t to, const char *delim, size_t dlen)
{
    size_t max = to - from < dlen - 1 ? to - from : dlen - 1;
    for (size_t h = max; h > 0; h--)
        if (memcmp(in + to - h, delim, h) == 0)
            return h;
    return 0;
}

/* Runs the parser over in[0, n) as a receiver would: bytes arrive by the
 * schedule, each call gets what is unconsumed. Checks the contract of every
 * call on the way. */
static struct outcome parse(const char *name, const char *boundary, const char *in, size_t n,
                            enum sched s, size_t cut)
{
    struct outcome o;
    memset(&o, 0, sizeof o);
    o.rc = MP_MORE;
    o.why = "";
    if (g_data_cap < n + 1) {
        g_data = realloc(g_data, n + 1);
        assert_non_null(g_data);
        g_data_cap = n + 1;
    }
    size_t blen = strlen(boundary);
    char delim[4 + MP_BOUNDARY_MAX];
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, blen);
    size_t dlen = 4 + blen;

    mp_parser_t p;
    assert_int_equal(mp_init(&p, slice_make(boundary, blen)), 0);
    size_t have = next_arrival(s, 0, n, cut), pos = 0, data_len = 0;
    int in_part = 0;
    for (size_t guard = 0;; guard++) {
        assert_true(guard < 100000000);
        size_t avail = have - pos;
        const char *b = guard_put(&g_in, in + pos, avail);
        size_t consumed = (size_t)-1;
        slice_t data = { NULL, 0 };
        const char *why = NULL;
        mp_part_t part;
        memset(&part, 0x5a, sizeof part);
        int rc = mp_feed(&p, b, avail, &consumed, &part, &data, &why);
        if (why == NULL || consumed > avail || (rc != -400 && why[0] != '\0')) {
            print_error("%s (%s): at %zu: rc %d, why %p, consumed %zu of %zu\n", name,
                        sched_name(s), pos, rc, (const void *)why, consumed, avail);
            fail();
        }
        struct got_part *cur = o.nparts ? &o.parts[o.nparts - 1] : NULL;
        switch (rc) {
        case MP_DATA: {
            const char *pp = (const char *)&p;
            int in_input = data.p >= b && data.p + data.len <= b + consumed;
            int in_parser = data.p >= pp && data.p + data.len <= pp + sizeof p;
            if (!in_part || data.len == 0 || !(in_input || in_parser)) {
                print_error("%s (%s): at %zu: DATA of %zu bytes, in a part %d, in input %d, "
                            "in parser %d\n", name, sched_name(s), pos, data.len, in_part,
                            in_input, in_parser);
                fail();
            }
            memcpy(g_data + data_len, data.p, data.len);
            data_len += data.len;
            cur->data_len += data.len;
            o.data_calls++;
            pos += consumed;
            /* Held back: what was consumed of the body but not handed out. */
            size_t held = pos - cur->at - cur->data_len;
            if (held > must_hold(in, cur->at, pos, delim, dlen)) {
                print_error("%s (%s): at %zu: %zu bytes held back after DATA\n", name,
                            sched_name(s), pos, held);
                fail();
            }
            continue;
        }
        case MP_PART:
            if (in_part || o.nparts == MAX_PARTS || consumed == 0) {
                print_error("%s (%s): at %zu: PART inside a part or too many\n", name,
                            sched_name(s), pos);
                fail();
            }
            pos += consumed;
            cur = &o.parts[o.nparts++];
            cur->meta = part;
            cur->at = pos;
            cur->data_off = data_len;
            in_part = 1;
            continue;
        case MP_PART_END:
            if (!in_part || consumed == 0) {
                print_error("%s (%s): at %zu: PART_END outside a part\n", name, sched_name(s),
                            pos);
                fail();
            }
            pos += consumed;
            cur->end_at = pos;
            in_part = 0;
            continue;
        case MP_DONE:
            if (in_part || consumed == 0) {
                print_error("%s (%s): at %zu: DONE inside a part\n", name, sched_name(s), pos);
                fail();
            }
            pos += consumed;
            o.rc = MP_DONE;
            o.at = pos;
            assert_int_equal(mp_finish(&p), 0);
            /* The epilogue is taken silently, whatever it is. */
            b = guard_put(&g_in, in + pos, n - pos);
            rc = mp_feed(&p, b, n - pos, &consumed, &part, &data, &why);
            if (rc != MP_MORE || consumed != n - pos) {
                print_error("%s (%s): after DONE: rc %d, consumed %zu of %zu\n", name,
                            sched_name(s), rc, consumed, n - pos);
                fail();
            }
            assert_int_equal(mp_finish(&p), 0);
            return o;
        case MP_MORE:
            if (consumed != avail) {
                print_error("%s (%s): at %zu: MORE with %zu of %zu bytes consumed\n", name,
                            sched_name(s), pos, consumed, avail);
                fail();
            }
            pos += consumed;
            if (in_part) {
                size_t held = pos - cur->at - cur->data_len;
                size_t want = must_hold(in, cur->at, pos, delim, dlen);
                if (held != want) {
                    print_error("%s (%s): at %zu: %zu bytes held back, want %zu\n", name,
                                sched_name(s), pos, held, want);
                    fail();
                }
            }
            if (have == n) {
                o.at = pos;
                assert_int_equal(mp_finish(&p), -400);
                return o;
            }
            have = next_arrival(s, have, n, cut);
            continue;
        default: {
            if (rc != -400 || why[0] == '\0') {
                print_error("%s (%s): at %zu: rc %d (why \"%s\")\n", name, sched_name(s), pos,
                            rc, why);
                fail();
            }
            o.rc = rc;
            o.at = pos + consumed;
            o.why = why;
            /* Failed stays failed. */
            const char *why2 = NULL;
            rc = mp_feed(&p, b + consumed, avail - consumed, &consumed, &part, &data, &why2);
            assert_int_equal(rc, -400);
            assert_int_equal(consumed, 0);
            assert_string_equal(why2, why);
            assert_int_equal(mp_finish(&p), -400);
            return o;
        }
        }
    }
}

/* What a case should give. */
struct want_part {
    const char *name;
    const char *filename;   /* NULL: no filename= */
    const char *ct;
    const char *data;
    size_t data_len;
};

static void check_same(const char *name, enum sched s, size_t cut, const struct outcome *ref,
                       const struct outcome *o)
{
    int ok = o->rc == ref->rc && o->at == ref->at && strcmp(o->why, ref->why) == 0
             && o->nparts == ref->nparts;
    for (size_t i = 0; ok && i < o->nparts; i++) {
        const struct got_part *a = &ref->parts[i], *b = &o->parts[i];
        ok = a->at == b->at && a->end_at == b->end_at && a->data_len == b->data_len
             && strcmp(a->meta.name, b->meta.name) == 0
             && strcmp(a->meta.filename, b->meta.filename) == 0
             && a->meta.has_filename == b->meta.has_filename
             && strcmp(a->meta.content_type, b->meta.content_type) == 0;
    }
    if (!ok) {
        print_error("%s (%s, cut %zu): rc %d at %zu (%s), %zu parts; whole: rc %d at %zu (%s), "
                    "%zu parts\n", name, sched_name(s), cut, o->rc, o->at, o->why, o->nparts,
                    ref->rc, ref->at, ref->why, ref->nparts);
        fail();
    }
}

/* Every schedule gives what the whole feed gives; that gives rc at `at`
 * and, for rc MP_DONE, the parts wanted. Returns the whole outcome's data
 * calls. Long inputs get fewer cuts (every split offset is n^2). */
static size_t run_all(const char *name, const char *boundary, const char *in, size_t n, int rc,
                      size_t at, const char *why, const struct want_part *want, size_t nwant)
{
    struct outcome ref = parse(name, boundary, in, n, S_WHOLE, 0);
    if (ref.rc != rc || ref.at != at || (why != NULL && strcmp(ref.why, why) != 0)) {
        print_error("%s: rc %d at %zu (\"%s\"), want %d at %zu (\"%s\")\n", name, ref.rc, ref.at,
                    ref.why, rc, at, why ? why : "any");
        fail();
    }
    if (want != NULL) {
        if (ref.nparts != nwant) {
            print_error("%s: %zu parts, want %zu\n", name, ref.nparts, nwant);
            fail();
        }
        for (size_t i = 0; i < nwant; i++) {
            const struct got_part *g = &ref.parts[i];
            const struct want_part *w = &want[i];
            if (strcmp(g->meta.name, w->name) != 0
                || strcmp(g->meta.filename, w->filename ? w->filename : "") != 0
                || g->meta.has_filename != (w->filename != NULL)
                || strcmp(g->meta.content_type, w->ct) != 0 || g->end_at == 0
                || g->data_len != w->data_len
                || memcmp(g_data + g->data_off, w->data, w->data_len) != 0) {
                print_error("%s: part %zu: name \"%s\" filename \"%s\" (%d) ct \"%s\", "
                            "%zu data bytes \"%.*s\"\n", name, i, g->meta.name,
                            g->meta.filename, g->meta.has_filename, g->meta.content_type,
                            g->data_len, (int)g->data_len, g_data + g->data_off);
                fail();
            }
        }
    }
    /* The reference data, kept: g_data is reused by the runs below. */
    size_t ref_len = 0;
    for (size_t i = 0; i < ref.nparts; i++)
        ref_len += ref.parts[i].data_len;
    char *ref_data = malloc(ref_len + 1);
    assert_non_null(ref_data);
    memcpy(ref_data, g_data, ref_len);

    size_t step = n <= 4096 ? 1 : n / 97;
    for (int si = S_CUT; si <= S_RANDOM; si++) {
        enum sched s = (enum sched)si;
        size_t runs = s == S_CUT ? n + 1 : s == S_RANDOM ? 8 : 1;
        for (size_t r = 0; r < runs; r += s == S_CUT ? step : 1) {
            struct outcome o = parse(name, boundary, in, n, s, r);
            check_same(name, s, r, &ref, &o);
            if (memcmp(g_data, ref_data, ref_len) != 0) {
                print_error("%s (%s, cut %zu): data differs\n", name, sched_name(s), r);
                free(ref_data);
                fail();
            }
        }
    }
    free(ref_data);
    return ref.data_calls;
}

/* ------------------------------------------------------------ valid bodies */

#define WK "----WebKitFormBoundary7MA4YWxkTrZu0gW"
#define FF "---------------------------735323031399963166993862150"
#define GK "----geckoformboundary2c7d1f0e8b9a4d3e6f5a8b7c9d0e1f2a"

/* A PNG start, NULs, and everything that looks like a delimiter but is not
 * one: CRLF "--" alone, the boundary cut short after CRLF "--", the whole
 * dash-boundary not after a CRLF, CR CR LF, a lone CR before the real CRLF. */
#define AVATAR \
    "\x89PNG\r\n\x1a\n" "\x00\x00\x00\rIHDR\x00\x00\x00\x10" \
    "\r\n--" "\r\n------WebKitFormBoundary7MA4YWxkTrZu0g" \
    "x--" WK "\r\n" "\r\r\n-" "\r\n-\r\n--\r" "\x00\xff\xfe" "\r"

#define BIO "line one\r\nline two\r\n\r\n-- \r\nsignature\r\n"

static const char chrome_body[] =
    "--" WK "\r\n"
    "Content-Disposition: form-data; name=\"username\"\r\n"
    "\r\n"
    "alice\r\n"
    "--" WK "\r\n"
    "Content-Disposition: form-data; name=\"bio\"\r\n"
    "\r\n"
    BIO "\r\n"
    "--" WK "\r\n"
    "Content-Disposition: form-data; name=\"avatar\"; filename=\"me.png\"\r\n"
    "Content-Type: image/png\r\n"
    "\r\n"
    AVATAR "\r\n"
    "--" WK "\r\n"
    "Content-Disposition: form-data; name=\"attachment\"; filename=\"\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "\r\n"
    "--" WK "\r\n"
    "Content-Disposition: form-data; name=\"doc\"; filename=\"r\xc3\xa9sum\xc3\xa9 %22final%22.txt\"\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "--" WK "\r\n"
    "--" WK "--\r\n";

static const struct want_part chrome_parts[] = {
    { "username", NULL, "", "alice", 5 },
    { "bio", NULL, "", BIO, sizeof BIO - 1 },
    { "avatar", "me.png", "image/png", AVATAR, sizeof AVATAR - 1 },
    { "attachment", "", "application/octet-stream", "", 0 },
    /* A text file whose only line is the dash-boundary: it needs the CRLF. */
    { "doc", "r\xc3\xa9sum\xc3\xa9 \"final\".txt", "text/plain", "--" WK, sizeof WK + 1 },
};

#define FF_TEXT "default text\r\nwith a line that ends in CR\r"
#define FF_HTML "<!DOCTYPE html><title>Content of a.html.</title>\n"
/* One dash too many, then too few. */
#define FF_BIN "a\x00" "b\r\n-" FF "\r\n" "\r\n--" "----735323031399963166993862150"

static const char firefox_body[] =
    "--" FF "\r\n"
    "Content-Disposition: form-data; name=\"text1\"\r\n"
    "\r\n"
    FF_TEXT "\r\n"
    "--" FF "\r\n"
    "Content-Disposition: form-data; name=\"file1\"; filename=\"a.html\"\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    FF_HTML "\r\n"
    "--" FF "\r\n"
    "Content-Disposition: form-data; name=\"file2\"; filename=\"binary\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    FF_BIN "\r\n"
    "--" FF "--\r\n";

static const struct want_part firefox_parts[] = {
    { "text1", NULL, "", FF_TEXT, sizeof FF_TEXT - 1 },
    { "file1", "a.html", "text/html", FF_HTML, sizeof FF_HTML - 1 },
    { "file2", "binary", "application/octet-stream", FF_BIN, sizeof FF_BIN - 1 },
};

static const char gecko_body[] =
    "--" GK "\r\n"
    "Content-Disposition: form-data; name=\"q\"\r\n"
    "\r\n"
    "\r\n"
    "\r\n--" GK "\r\n"
    "Content-Disposition: form-data; name=\"upload\"; filename=\"empty.bin\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "\r\n--" GK "--\r\n";

static const struct want_part gecko_parts[] = {
    { "q", NULL, "", "\r\n", 2 },
    { "upload", "empty.bin", "application/octet-stream", "", 0 },
};

/* A preamble (with a dash-boundary not at the start of a line), transport
 * padding after each boundary, and an epilogue. */
#define PADDED_EPI " \r\nThis is the epilogue. --b\r\n--b--\r\nwhatever \x00\xff"

static const char padded_body[] =
    "This is the preamble. --b\r\nIt is to be ignored. --b-- too.\r\n"
    "\r\n--b \t \r\n"
    "Content-Disposition: form-data; name=a\r\n"
    "\r\n"
    "A\r\n"
    "--b\t\r\n"
    "content-disposition:form-data;NAME = \"b%22q\\\" ; Filename=\"x;y%22.txt\";"
    " filename*=UTF-8''%e2%82%ac.txt ; size=12\r\n"
    "CONTENT-TYPE:   text/plain; charset=utf-8 \t\r\n"
    "X-Other: ignored: really\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "\r\n"
    "B\r\n"
    "--b  \r\n"
    "Content-Disposition: form-data\r\n"
    "\r\n"
    "nameless\r\n"
    "--b--" PADDED_EPI;

static const struct want_part padded_parts[] = {
    { "a", NULL, "", "A", 1 },
    { "b\"q\\", "x;y\".txt", "text/plain; charset=utf-8", "B", 1 },
    { "", NULL, "", "nameless", 8 },
};

/* The first delimiter with its CRLF, a token name, a filename with
 * backslashes (plain bytes, as browsers send them), quotes and control
 * bytes. */
static const char misc_body[] =
    "\r\n--XyZ\r\n"
    "Content-Disposition: form-data; name=field2; filename=\"a\\\\b\tc\x01\x7f\xff\"\r\n"
    "\r\n"
    "--XyZ\r\n\r--XyZ\r\n"
    "\r\n--XyZ\r\n"
    "Content-Disposition: form-data; name=\"\"; filename=r\xc3\xa9sum\xc3\xa9.txt\r\n"
    "\r\n"
    "\r\n\r\n"
    "\r\n--XyZ--";

static const struct want_part misc_parts[] = {
    { "field2", "a\\\\b\tc\x01\x7f\xff", "", "--XyZ\r\n\r--XyZ\r\n", 15 },
    { "", "r\xc3\xa9sum\xc3\xa9.txt", "", "\r\n\r\n", 4 },
};

/* What browsers send for awkward names (the HTML form encoding): '"' as
 * %22, CR and LF as %0D and %0A (lower-case hex read too), a backslash raw
 * even right before the closing quote; any other %XX, an incomplete one
 * and a '%' at the end stay as they are. */
static const char escapes_body[] =
    "--e\r\n"
    "Content-Disposition: form-data; name=\"f%22\\\"; filename=\"C:\\dir\\%22q%22 %0D%0a%0A.txt\\\"\r\n"
    "\r\n"
    "1\r\n"
    "--e\r\n"
    "Content-Disposition: form-data; name=\"g\"; filename=\"100%25 %2 %zz %41 %\"\r\n"
    "\r\n"
    "2\r\n"
    "--e--";

static const struct want_part escapes_parts[] = {
    { "f\"\\", "C:\\dir\\\"q\" \r\n\n.txt\\", "", "1", 1 },
    { "g", "100%25 %2 %zz %41 %", "", "2", 1 },
};

struct valid_case {
    const char *name;
    const char *boundary;
    const char *in;
    size_t len;
    size_t epilogue;     /* bytes after the close delimiter */
    const struct want_part *parts;
    size_t nparts;
};

#define BODY(s) .in = (s), .len = sizeof(s) - 1
#define PARTS(a) .parts = (a), .nparts = sizeof(a) / sizeof(a)[0]

static const struct valid_case valid_cases[] = {
    { "Chrome: fields, files, an empty file", WK, BODY(chrome_body), 2, PARTS(chrome_parts) },
    { "Firefox", FF, BODY(firefox_body), 2, PARTS(firefox_parts) },
    { "Firefox gecko boundary, empty bodies", GK, BODY(gecko_body), 2, PARTS(gecko_parts) },
    { "preamble, padding, epilogue, parameters", "b", BODY(padded_body), sizeof PADDED_EPI - 1,
      PARTS(padded_parts) },
    { "CRLF first, escapes, token values", "XyZ", BODY(misc_body), 0, PARTS(misc_parts) },
    { "browser escapes in names: %22 %0D %0A only, raw backslashes", "e", BODY(escapes_body), 0,
      PARTS(escapes_parts) },
};

static void test_browser_bodies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++) {
        const struct valid_case *c = &valid_cases[i];
        size_t done_at = c->len - c->epilogue;
        run_all(c->name, c->boundary, c->in, c->len, MP_DONE, done_at, "", c->parts, c->nparts);
        /* Every strict prefix of the body up to the close delimiter:
         * MORE with all of it consumed, and mp_finish refuses it. */
        for (size_t k = 0; k < done_at; k++) {
            struct outcome o = parse(c->name, c->boundary, c->in, k, S_WHOLE, 0);
            if (o.rc != MP_MORE || o.at != k) {
                print_error("%s: prefix %zu: rc %d at %zu (%s)\n", c->name, k, o.rc, o.at, o.why);
                fail();
            }
        }
    }
}

/* Forms with no fields, a field with no value, many fields. */
static void test_small_forms(void **state)
{
    (void)state;
    run_all("no fields", "b", "--b--\r\n", 7, MP_DONE, 5, "", NULL, 0);
    run_all("no fields, no CRLF", "b", "--b--", 5, MP_DONE, 5, "", NULL, 0);
    run_all("no fields after CRLF", "b", "\r\n--b--", 7, MP_DONE, 7, "", NULL, 0);
    static const struct want_part one[] = { { "x", NULL, "", "", 0 } };
    static const char empty_value[] =
        "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\r\n--b--";
    run_all("one empty field", "b", empty_value, sizeof empty_value - 1, MP_DONE,
            sizeof empty_value - 1, "", one, 1);

    char in[4096];
    struct want_part many[MAX_PARTS];
    static const char *const names[MAX_PARTS] = { "f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7",
        "f8", "f9", "f10", "f11", "f12", "f13", "f14", "f15" };
    static const char *const values[MAX_PARTS] = { "", "1", "22", "\r", "\r\n", "\r\n-", "-",
        "--", "--b", "\r\n--", "x\r\n-", "\n--b", "\r--b", "--b\r\n", "\r\n\r\n", "b" };
    size_t n = 0;
    for (size_t i = 0; i < MAX_PARTS; i++) {
        n += (size_t)sprintf(in + n, "--b\r\nContent-Disposition: form-data; name=%s\r\n\r\n%s\r\n",
                             names[i], values[i]);
        many[i] = (struct want_part){ names[i], NULL, "", values[i], strlen(values[i]) };
    }
    n += (size_t)sprintf(in + n, "--b--");
    run_all("sixteen fields", "b", in, n, MP_DONE, n, "", many, MAX_PARTS);
}

/* Every byte value, and every delimiter prefix, in a file. */
static void test_binary_file(void **state)
{
    (void)state;
    static const char head[] = "--" WK "\r\n"
        "Content-Disposition: form-data; name=\"f\"; filename=\"all.bin\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n";
    static const char delim[] = "\r\n--" WK;
    char file[4096];
    size_t f = 0;
    for (int c = 0; c < 256; c++)
        file[f++] = (char)c;
    for (size_t k = 1; k < sizeof delim - 1; k++) {
        memcpy(file + f, delim, k);
        f += k;
        file[f++] = (char)(k & 1 ? 'X' : '\r');
    }
    for (int c = 255; c >= 0; c--)
        file[f++] = (char)c;
    char in[8192];
    size_t n = 0;
    memcpy(in, head, sizeof head - 1);
    n += sizeof head - 1;
    memcpy(in + n, file, f);
    n += f;
    memcpy(in + n, delim, sizeof delim - 1);
    n += sizeof delim - 1;
    memcpy(in + n, "--\r\n", 4);
    n += 4;
    struct want_part want[] = { { "f", "all.bin", "application/octet-stream", file, f } };
    run_all("every byte and every delimiter prefix", WK, in, n, MP_DONE, n - 2, "", want, 1);
}

/* Fed whole, a big file comes out as one slice of the input: nothing is
 * copied, nothing is cut up. */
static void test_zero_copy(void **state)
{
    (void)state;
    static const char head[] = "--b\r\nContent-Disposition: form-data; name=f; filename=x\r\n\r\n";
    size_t fsize = 200000;
    size_t n = sizeof head - 1 + fsize + 7;
    char *in = malloc(n);
    assert_non_null(in);
    memcpy(in, head, sizeof head - 1);
    for (size_t i = 0; i < fsize; i++)
        in[sizeof head - 1 + i] = "ab\r\n-"[rng() % 5];
    /* No delimiter in it by chance: "\r\n--b" needs "b" after "--". */
    for (size_t i = sizeof head - 1; i + 5 <= sizeof head - 1 + fsize; i++)
        if (memcmp(in + i, "\r\n--b", 5) == 0)
            in[i + 4] = 'a';
    memcpy(in + sizeof head - 1 + fsize, "\r\n--b--", 7);
    struct want_part want[] = { { "f", "x", "", in + sizeof head - 1, fsize } };
    size_t calls = run_all("big file", "b", in, n, MP_DONE, n, "", want, 1);
    assert_int_equal(calls, 1);
    free(in);
}

/* --------------------------------------------------------- malformed bodies */

struct bad_case {
    const char *name;
    const char *in;
    size_t len;
    size_t at;           /* offset of the byte that is refused */
    const char *why;
};

#define IN(s) .in = (s), .len = sizeof(s) - 1
#define CD "Content-Disposition: "   /* 21 bytes */

static const struct bad_case bad_cases[] = {
    { "junk after the first boundary", IN("--bX\r\n"), 3, "junk after a boundary" },
    { "a longer boundary is not this one", IN("--bb\r\n"), 3, "junk after a boundary" },
    { "junk after padding", IN("--b -\r\n"), 4, "junk after a boundary" },
    { "one dash", IN("--b-x"), 4, "junk after a boundary" },
    { "CR without LF after a boundary", IN("--b\rX"), 4, "junk after a boundary" },
    { "CR CR LF after a boundary", IN("--b\r\r\n"), 4, "junk after a boundary" },
    { "bare LF after a boundary", IN("--b\n"), 3, "junk after a boundary" },
    { "padding then bare LF", IN("--b \n"), 4, "junk after a boundary" },
    { "junk after a later boundary",
      IN("--b\r\n" CD "form-data; name=a\r\n\r\nA\r\n--bc\r\n"), 53, "junk after a boundary" },
    { "bare LF in a header", IN("--b\r\n" CD "form-data; name=a\n\r\n"), 43,
      "part header line not ended by CRLF" },
    { "CR without LF in a header", IN("--b\r\n" CD "form-data\rX"), 36,
      "part header line not ended by CRLF" },
    { "CR CR in a header", IN("--b\r\n" CD "form-data; name=a\r\r\n"), 44,
      "part header line not ended by CRLF" },
    { "bare LF ending the header section", IN("--b\r\n" CD "form-data; name=a\r\n\n"), 45,
      "part header line not ended by CRLF" },
    { "header without colon", IN("--b\r\nContent-Disposition form-data\r\n\r\n"), 35,
      "part header without colon" },
    { "obs-fold", IN("--b\r\n" CD "form-data;\r\n name=a\r\n\r\n"), 46,
      "part header without colon" },
    { "space in a header name", IN("--b\r\nBad Name: x\r\n"), 17, "invalid part header name" },
    { "space before the colon", IN("--b\r\nContent-Disposition : form-data\r\n"), 37,
      "invalid part header name" },
    { "empty header name", IN("--b\r\n: x\r\n"), 9, "invalid part header name" },
    { "NUL in a header", IN("--b\r\n" CD "form-data; name=\"a\x00" "b\"\r\n"), 44,
      "NUL in a part header" },
    { "no Content-Disposition", IN("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--"), 32,
      "part without Content-Disposition: form-data" },
    { "no headers at all", IN("--b\r\n\r\nx\r\n--b--"), 6,
      "part without Content-Disposition: form-data" },
    { "Content-Disposition: attachment", IN("--b\r\n" CD "attachment; name=a\r\n\r\n"), 45,
      "part without Content-Disposition: form-data" },
    { "Content-Disposition: file (RFC 2388 mixed)", IN("--b\r\n" CD "file; filename=a\r\n"), 43,
      "part without Content-Disposition: form-data" },
    { "empty Content-Disposition", IN("--b\r\nContent-Disposition:\r\n"), 26,
      "part without Content-Disposition: form-data" },
    { "form-data with a suffix", IN("--b\r\n" CD "form-datax; name=a\r\n"), 45,
      "part without Content-Disposition: form-data" },
    { "repeated name", IN("--b\r\n" CD "form-data; name=a; name=b\r\n\r\n"), 52,
      "repeated parameter in Content-Disposition" },
    { "repeated filename", IN("--b\r\n" CD "form-data; filename=a; FILENAME=\"a\"\r\n"), 62,
      "repeated parameter in Content-Disposition" },
    { "repeated Content-Disposition",
      IN("--b\r\n" CD "form-data; name=a\r\n" CD "form-data; name=a\r\n\r\n"), 84,
      "repeated Content-Disposition" },
    { "repeated Content-Type",
      IN("--b\r\nContent-Type: a/b\r\n" CD "form-data\r\ncontent-type: a/b\r\n"), 74,
      "repeated part Content-Type" },
    { "unterminated quoted-string", IN("--b\r\n" CD "form-data; name=\"a\r\n\r\n"), 45,
      "invalid Content-Disposition" },
    { "backslash ending a quoted-string", IN("--b\r\n" CD "form-data; name=\"a\\\r\n"), 46,
      "invalid Content-Disposition" },
    { "unquoted value with a space", IN("--b\r\n" CD "form-data; name=a b\r\n"), 46,
      "invalid Content-Disposition" },
    { "unquoted value with '='", IN("--b\r\n" CD "form-data; name=a=b\r\n"), 46,
      "invalid Content-Disposition" },
    { "parameter without '='", IN("--b\r\n" CD "form-data; name\r\n"), 42,
      "invalid Content-Disposition" },
    { "parameter without a value", IN("--b\r\n" CD "form-data; name=\r\n"), 43,
      "invalid Content-Disposition" },
    { "no ';' between parameters", IN("--b\r\n" CD "form-data; name=\"a\" filename=b\r\n"), 57,
      "invalid Content-Disposition" },
    { "no ';' after the type", IN("--b\r\n" CD "form-data name=a\r\n"), 43,
      "invalid Content-Disposition" },
    { "junk after a quoted-string", IN("--b\r\n" CD "form-data; name=\"a\"b\r\n"), 47,
      "invalid Content-Disposition" },
};

static void test_malformed_bodies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        run_all(c->name, "b", c->in, c->len, -400, c->at, c->why, NULL, 0);
    }
}

/* The preamble: MP_PREAMBLE_MAX bytes before the delimiter at most (its
 * CRLF not counted), refused at the first byte past them that cannot begin
 * a delimiter. */
static void test_preamble_limit(void **state)
{
    (void)state;
    static const char tail[] = "\r\n--b\r\nContent-Disposition: form-data; name=a\r\n\r\nA\r\n--b--";
    size_t cap = MP_PREAMBLE_MAX + sizeof tail + 16;
    char *in = malloc(cap);
    assert_non_null(in);
    static const struct want_part want[] = { { "a", NULL, "", "A", 1 } };
    for (size_t pre = MP_PREAMBLE_MAX - 1; pre <= MP_PREAMBLE_MAX + 1; pre++) {
        for (int variant = 0; variant < 3; variant++) {
            /* Plain bytes, CRs, or near delimiters right before the cut. */
            memset(in, variant == 1 ? '\r' : 'p', pre);
            if (variant == 2 && pre >= 8)
                memcpy(in + pre - 8, "\r\n--a\r\n-", 8);
            memcpy(in + pre, tail, sizeof tail - 1);
            size_t n = pre + sizeof tail - 1;
            if (pre <= MP_PREAMBLE_MAX)
                run_all("preamble of at most the maximum", "b", in, n, MP_DONE, n, "", want, 1);
            else /* a CR at MP_PREAMBLE_MAX may still begin the delimiter */
                run_all("preamble over the maximum", "b", in, n, -400,
                        MP_PREAMBLE_MAX + (variant != 0), "no initial boundary", NULL, 0);
        }
    }
    /* Nothing but near delimiters, over the limit: refused at the first byte
     * that starts no delimiter past it. */
    size_t n = 0;
    while (n + 5 <= MP_PREAMBLE_MAX + 32) {
        memcpy(in + n, "\r\n--a", 5);
        n += 5;
    }
    /* The "\r\n--a" at 65535 may begin a delimiter until its 'a', 65539. */
    run_all("near delimiters over the maximum", "b", in, n, -400, MP_PREAMBLE_MAX + 3,
            "no initial boundary", NULL, 0);
    free(in);
}

/* The header section: MP_HEAD_MAX bytes at most, its CRLFs and the empty
 * line's included; the count starts again for each part. */
static void test_header_limit(void **state)
{
    (void)state;
    static const char cd[] = CD "form-data; name=a\r\n";
    char *in = malloc(4 * MP_HEAD_MAX);
    assert_non_null(in);
    static const struct want_part want[] = { { "a", NULL, "", "A", 1 }, { "a", NULL, "", "", 0 } };
    for (size_t sect = MP_HEAD_MAX - 1; sect <= MP_HEAD_MAX + 1; sect++) {
        /* "--b\r\n" cd "X: " v "\r\n" "\r\n" is sect bytes after the first line. */
        size_t vlen = sect - (sizeof cd - 1) - 3 - 2 - 2;
        size_t n = 0;
        for (int part = 0; part < 2; part++) {
            memcpy(in + n, "--b\r\n", 5);
            n += 5;
            memcpy(in + n, cd, sizeof cd - 1);
            n += sizeof cd - 1;
            memcpy(in + n, "X: ", 3);
            n += 3;
            memset(in + n, part ? '\t' : 'v', vlen);
            n += vlen;
            memcpy(in + n, "\r\n\r\n", 4);
            n += 4;
            memcpy(in + n, part ? "\r\n" : "A\r\n", part ? 2 : 3);
            n += part ? 2 : 3;
        }
        memcpy(in + n, "--b--", 5);
        n += 5;
        if (sect <= MP_HEAD_MAX)
            run_all("header section of at most the maximum", "b", in, n, MP_DONE, n, "", want, 2);
        else
            run_all("header section over the maximum", "b", in, n, -400, 5 + MP_HEAD_MAX,
                    "part header section too long", NULL, 0);
    }
    /* One line longer than the whole section. */
    memcpy(in, "--b\r\nX: ", 8);
    memset(in + 8, 'v', MP_HEAD_MAX + 10);
    run_all("one long header line", "b", in, MP_HEAD_MAX + 18, -400, 5 + MP_HEAD_MAX,
            "part header section too long", NULL, 0);
    free(in);
}

/* name= and filename= up to MP_NAME_MAX - 1 bytes once unescaped, a
 * Content-Type up to 127: longer ones are refused, not cut. */
static void test_field_lengths(void **state)
{
    (void)state;
    char in[2048], big[600], esc[1000];
    for (size_t len = MP_NAME_MAX - 2; len <= MP_NAME_MAX; len++) {
        for (int which = 0; which < 3; which++) {
            memset(big, which == 2 ? '"' : 'n', len);
            big[len] = '\0';
            /* Quotes as browsers escape them (%22): three bytes on the
             * wire, one once read. */
            size_t e = 0;
            for (size_t k = 0; k < len; k++) {
                if (which == 2) {
                    memcpy(esc + e, "%22", 3);
                    e += 3;
                } else {
                    esc[e++] = big[k];
                }
            }
            esc[e] = '\0';
            int n = sprintf(in, "--b\r\n" CD "form-data; %s=\"%s\"\r\n\r\nv\r\n--b--",
                            which == 0 ? "name" : "filename", esc);
            size_t line_end = 5 + (sizeof CD - 1) + 11 + (which ? 10 : 6) + e + 1 + 1;
            if (len < MP_NAME_MAX) {
                struct want_part w = { which ? "" : big, which ? big : NULL, "", "v", 1 };
                run_all("long name or filename", "b", in, (size_t)n, MP_DONE, (size_t)n, "", &w, 1);
            } else {
                run_all("name or filename too long", "b", in, (size_t)n, -400, line_end,
                        "part name or filename too long", NULL, 0);
            }
        }
    }
    for (size_t len = 126; len <= 128; len++) {
        memset(big, 'c', len);
        big[len] = '\0';
        int n = sprintf(in, "--b\r\n" CD "form-data\r\nContent-Type:  %s \r\n\r\n\r\n--b--", big);
        if (len < 128) {
            struct want_part w = { "", NULL, big, "", 0 };
            run_all("long Content-Type", "b", in, (size_t)n, MP_DONE, (size_t)n, "", &w, 1);
        } else {
            run_all("Content-Type too long", "b", in, (size_t)n, -400,
                    5 + sizeof CD - 1 + 11 + 15 + len + 2,
                    "part Content-Type too long", NULL, 0);
        }
    }
}

/* ---------------------------------------------------------------- the API */

static void test_boundary_param(void **state)
{
    (void)state;
    static const char b70[] = "0123456789012345678901234567890123456789012345678901234567890123456789";
    static const struct {
        const char *ct;
        const char *want;   /* NULL: -1 */
    } t[] = {
        { "multipart/form-data; boundary=\"abc\"", "abc" },
        { "multipart/form-data; boundary=abc", "abc" },
        { "multipart/form-data;boundary=" WK, WK },
        { "multipart/form-data; boundary=" FF, FF },
        { "Multipart/Form-Data; charset=utf-8; BOUNDARY=\"a b:c\"", "a b:c" },
        { "multipart/form-data; boundary=\"'()+_,-./:=?\"", "'()+_,-./:=?" },
        { "multipart/form-data; foo=\"x;boundary=evil\"; boundary=good", "good" },
        { "multipart/form-data; foo=\"\\\"; boundary=evil\"; boundary=good", "good" },
        { "multipart/mixed; boundary=x", "x" },
        { "  multipart/form-data ;  boundary=abc  ", "abc" },
        { "multipart/form-data; boundary=abc;", "abc" },
        { "multipart/form-data;; boundary=abc", "abc" },
        { "multipart/form-data; boundary=\"" "0123456789012345678901234567890123456789"
          "012345678901234567890123456789\"", b70 },
        { "multipart/form-data; boundary=" "0123456789012345678901234567890123456789"
          "012345678901234567890123456789", b70 },
        /* missing */
        { "multipart/form-data", NULL },
        { "multipart/form-data; charset=utf-8", NULL },
        { "multipart/form-data; boundaryx=abc", NULL },
        { "", NULL },
        /* 71 bytes */
        { "multipart/form-data; boundary=\"" "0123456789012345678901234567890123456789"
          "0123456789012345678901234567890\"", NULL },
        { "multipart/form-data; boundary=" "0123456789012345678901234567890123456789"
          "0123456789012345678901234567890", NULL },
        /* empty */
        { "multipart/form-data; boundary=", NULL },
        { "multipart/form-data; boundary=\"\"", NULL },
        { "multipart/form-data; boundary=;", NULL },
        /* not bchars, or a space last */
        { "multipart/form-data; boundary=\"a@b\"", NULL },
        { "multipart/form-data; boundary=a@b", NULL },
        { "multipart/form-data; boundary=a!b", NULL },
        { "multipart/form-data; boundary=\"a\tb\"", NULL },
        { "multipart/form-data; boundary=\"abc \"", NULL },
        { "multipart/form-data; boundary=\"a\\\"b\"", NULL },
        { "multipart/form-data; boundary=\"a\\bc\"", NULL },
        { "multipart/form-data; boundary=\"\xc3\xa9\"", NULL },
        { "multipart/form-data; boundary=a:b", NULL },
        /* syntax */
        { "multipart/form-data; boundary=\"abc", NULL },
        { "multipart/form-data; boundary = abc", NULL },
        { "multipart/form-data; boundary =abc", NULL },
        { "multipart/form-data; boundary= abc", NULL },
        { "multipart/form-data; boundary=abc junk", NULL },
        { "multipart/form-data; boundary=\"abc\"junk", NULL },
        { "multipart/form-data boundary=abc", NULL },
        { "multipart/form-data; boundary=a; boundary=a", NULL },
        { "multipart/form-data; boundary=a; Boundary=b", NULL },
        { "multipart/form-data; foo=\"x; boundary=abc", NULL },
        { "multipart/form-data; foo=\"x\x01\"; boundary=abc", NULL },
        /* not multipart */
        { "text/plain; boundary=abc", NULL },
        { "multipart; boundary=abc", NULL },
        { "multipart/; boundary=abc", NULL },
        { "application/x-www-form-urlencoded", NULL },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t n = strlen(t[i].ct);
        /* Right before the guard page: the parser must stay inside ct. */
        const char *ct = guard_put(&g_in, t[i].ct, n);
        slice_t out = { NULL, 12345 };
        int rc = mp_boundary(slice_make(ct, n), &out);
        if (t[i].want == NULL) {
            if (rc != -1) {
                print_error("mp_boundary(%s): %d, want -1\n", t[i].ct, rc);
                fail();
            }
            continue;
        }
        if (rc != 0 || out.len != strlen(t[i].want) || out.p < ct || out.p + out.len > ct + n
            || memcmp(out.p, t[i].want, out.len) != 0) {
            print_error("mp_boundary(%s): %d, \"%.*s\"\n", t[i].ct, rc,
                        rc == 0 ? (int)out.len : 0, rc == 0 ? out.p : "");
            fail();
        }
    }
}

static void test_init(void **state)
{
    (void)state;
    static const char b71[] = "01234567890123456789012345678901234567890123456789012345678901234567890";
    mp_parser_t p;
    size_t consumed;
    slice_t data;
    mp_part_t part;
    const char *why;
    assert_int_equal(mp_init(&p, slice_make(b71, 70)), 0);
    assert_int_equal(mp_init(&p, slice_make(b71, 71)), -1);
    assert_int_equal(mp_init(&p, slice_make(b71, 0)), -1);
    assert_int_equal(mp_init(&p, slice_make("a\rb", 3)), -1);
    assert_int_equal(mp_init(&p, slice_make("a\nb", 3)), -1);
    /* A parser whose init failed refuses everything. */
    assert_int_equal(mp_feed(&p, "--a\nb--", 7, &consumed, &part, &data, &why), -400);
    assert_int_equal(consumed, 0);
    assert_string_equal(why, "invalid boundary");
    assert_int_equal(mp_finish(&p), -400);
    /* A fresh parser: nothing read is not done; empty input is MORE. */
    assert_int_equal(mp_init(&p, SLICE_LIT("b")), 0);
    assert_int_equal(mp_finish(&p), -400);
    consumed = 99;
    assert_int_equal(mp_feed(&p, g_in.end, 0, &consumed, &part, &data, &why), MP_MORE);
    assert_int_equal(consumed, 0);
    assert_string_equal(why, "");
    /* The boundary is copied. */
    char b[] = "zz";
    assert_int_equal(mp_init(&p, slice_make(b, 2)), 0);
    b[0] = b[1] = 'q';
    const char *in = guard_put(&g_in, "--zz--", 6);
    assert_int_equal(mp_feed(&p, in, 6, &consumed, &part, &data, &why), MP_DONE);
    assert_int_equal(consumed, 6);
}

/* An empty call in every state: MORE, nothing consumed, nothing changed. */
static void test_empty_calls(void **state)
{
    (void)state;
    static const char in[] = "pre\r\n--b\r\n" CD "form-data; name=a\r\n\r\nab\r\n-\r\n--b--x";
    size_t n = sizeof in - 1;
    for (size_t k = 0; k < n; k++) {
        mp_parser_t p;
        assert_int_equal(mp_init(&p, SLICE_LIT("b")), 0);
        size_t pos = 0, consumed;
        slice_t data;
        mp_part_t part;
        const char *why;
        int rc = MP_MORE, done = 0;
        while (pos < k) {
            char *b = guard_put(&g_in, in + pos, k - pos);
            rc = mp_feed(&p, b, k - pos, &consumed, &part, &data, &why);
            assert_true(rc >= 0);
            done |= rc == MP_DONE;
            pos += consumed;
        }
        consumed = 99;
        assert_int_equal(mp_feed(&p, g_in.end, 0, &consumed, &part, &data, &why), MP_MORE);
        assert_int_equal(consumed, 0);
        /* And the rest still gives the same end. */
        while (pos < n) {
            char *b = guard_put(&g_in, in + pos, n - pos);
            rc = mp_feed(&p, b, n - pos, &consumed, &part, &data, &why);
            assert_true(rc >= 0);
            done |= rc == MP_DONE;
            pos += consumed;
        }
        assert_true(done);
        assert_int_equal(mp_finish(&p), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_browser_bodies),
        cmocka_unit_test(test_small_forms),
        cmocka_unit_test(test_binary_file),
        cmocka_unit_test(test_zero_copy),
        cmocka_unit_test(test_malformed_bodies),
        cmocka_unit_test(test_preamble_limit),
        cmocka_unit_test(test_header_limit),
        cmocka_unit_test(test_field_lengths),
        cmocka_unit_test(test_boundary_param),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_empty_calls),
    };
    return cmocka_run_group_tests_name("http_multipart", tests, group_setup, group_teardown);
}
