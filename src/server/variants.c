#include "server/variants.h"
#include "core/fs.h"
#include "http/negotiate.h"
#include "http/path.h"
#include "server/html.h"
#include "server/mime.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define VARIANTS_MAX 32
#define FIELD_JOIN_MAX 4096

struct variant {
    char file[256];            /* name in the directory */
    char type[96];
    char lang[36];
    char coding[8];
};

static int coding_of(const char *ext, char *out)
{
    static const char *const map[][2] = { { "gz", "gzip" }, { "br", "br" }, { "zst", "zstd" } };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(ext, map[i][0]) == 0) {
            strcpy(out, map[i][1]);
            return 1;
        }
    return 0;
}

/* A language tag as a file extension: 1-8 letters, then "-" 1-8 letters or
 * digits, as in "en", "ko", "en-us", "zh-hant". */
static int is_lang(const char *s)
{
    size_t n = 0;
    while (isalpha((unsigned char)s[n]))
        n++;
    if (n < 1 || n > 8)
        return 0;
    while (s[n] == '-') {
        size_t k = 0;
        n++;
        while (isalnum((unsigned char)s[n + k]))
            k++;
        if (k < 1 || k > 8)
            return 0;
        n += k;
    }
    return s[n] == '\0';
}

/* "doc.html.en.gz" for base "doc": each extension after the base is a
 * media type (known to the MIME table), a language, or a coding, at most
 * one of each. Returns 0 when the name is a variant, -1 when not. */
static int parse_variant(const char *file, size_t baselen, struct variant *v)
{
    char buf[256];
    memset(v, 0, sizeof *v);
    if (strlen(file) >= sizeof buf || file[baselen] != '.')
        return -1;
    snprintf(v->file, sizeof v->file, "%s", file);
    strcpy(buf, file + baselen + 1);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
        char probe[300];
        snprintf(probe, sizeof probe, "x.%s", tok);
        const char *mt = mime_type(slice_cstr(probe));
        if (v->coding[0] == '\0' && coding_of(tok, v->coding))
            continue;
        if (v->type[0] == '\0' && strcmp(mt, "application/octet-stream") != 0) {
            /* the table gives "text/html; charset=utf-8": keep the type only */
            size_t n = strcspn(mt, ";");
            if (n >= sizeof v->type)
                return -1;
            memcpy(v->type, mt, n);
            continue;
        }
        if (v->lang[0] == '\0' && is_lang(tok) && strlen(tok) < sizeof v->lang) {
            strcpy(v->lang, tok);
            continue;
        }
        return -1;
    }
    return v->type[0] || v->lang[0] || v->coding[0] ? 0 : -1;
}

static int variant_cmp(const void *a, const void *b)
{
    return strcmp(((const struct variant *)a)->file, ((const struct variant *)b)->file);
}

/* The values of every field named `name`, joined with ", ". */
static int field_joined(const http_request_t *q, const char *name, char *buf, size_t cap, slice_t *out)
{
    size_t n = 0;
    int found = 0;
    for (size_t i = 0; i < q->nfields; i++) {
        if (!http_slice_ieq(q->fields[i].name, name))
            continue;
        slice_t v = q->fields[i].value;
        if (n + v.len + 2 > cap)
            break;
        if (found) {
            memcpy(buf + n, ", ", 2);
            n += 2;
        }
        memcpy(buf + n, v.p, v.len);
        n += v.len;
        found = 1;
    }
    *out = slice_make(buf, n);
    return found;
}

/* 406 and 300 carry the list of variants, as links. */
static void list_answer(hs_req_t *r, int status, const char *dirpath, struct variant *v, size_t n)
{
    buf_t *b = hs_scratch(r);
    char enc[3 * 4400 + 1];
    int rc = buf_append(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", 58);
    char title[64];
    snprintf(title, sizeof title, "%d %s", status, status == 300 ? "Multiple Choices" : "Not Acceptable");
    rc = rc ? rc : html_escape(b, title);
    rc = rc ? rc : buf_append(b, "</title></head><body><h1>", 25);
    rc = rc ? rc : html_escape(b, title);
    rc = rc ? rc : buf_append(b, "</h1>\n<ul>\n", 11);
    hs_resp_start(r, status);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char full[4400];
        snprintf(full, sizeof full, "%s%s", dirpath, v[i].file);
        if (http_path_encode(slice_cstr(full), enc, sizeof enc) < 0)
            continue;
        char link[sizeof enc + 200];
        int k = snprintf(link, sizeof link, "<%s>; rel=\"alternate\"%s%s%s%s%s%s", enc,
                         v[i].type[0] ? "; type=\"" : "", v[i].type, v[i].type[0] ? "\"" : "",
                         v[i].lang[0] ? "; hreflang=\"" : "", v[i].lang, v[i].lang[0] ? "\"" : "");
        if (status == 300 && k > 0 && (size_t)k < sizeof link)
            hs_resp_field(r, "Link", link, (size_t)k);
        rc = buf_append(b, "<li><a href=\"", 13);
        rc = rc ? rc : html_escape(b, enc);
        rc = rc ? rc : buf_append(b, "\">", 2);
        rc = rc ? rc : html_escape(b, v[i].file);
        rc = rc ? rc : buf_append(b, "</a>", 4);
        char desc[200];
        snprintf(desc, sizeof desc, " %s%s%s%s%s", v[i].type, v[i].lang[0] ? " " : "", v[i].lang,
                 v[i].coding[0] ? " " : "", v[i].coding);
        rc = rc ? rc : html_escape(b, desc);
        rc = rc ? rc : buf_append(b, "</li>\n", 6);
    }
    rc = rc ? rc : buf_append(b, "</ul></body></html>\n", 20);
    if (rc != 0) {
        hs_resp_error(r, 500);
        return;
    }
    hs_resp_field_str(r, "Content-Type", "text/html; charset=utf-8");
    hs_resp_dynamic(r, buf_head(b), b->len);
}

int variants_answer(hs_req_t *r, int rootfd, const char *path, size_t plen, int multiple_choices,
                    variant_serve_fn serve, void *arg)
{
    const http_request_t *q = &r->req;
    if (plen < 2 || path[plen - 1] == '/')
        return 0;
    const char *slash = memrchr(path, '/', plen);
    const char *base = slash + 1;
    size_t baselen = plen - (size_t)(base - path);
    if (baselen == 0 || baselen > 200)
        return 0;
    char dir[4096];
    size_t dlen = (size_t)(slash - path);
    if (dlen + 2 > sizeof dir)
        return 0;
    memcpy(dir, path, dlen + 1); /* "/a/b/" with its slash */
    dir[dlen + 1] = '\0';
    int dfd = fs_open_beneath(rootfd, dlen == 0 ? "." : dir + 1, O_RDONLY | O_DIRECTORY);
    if (dfd < 0)
        return 0;

    struct variant *v = malloc(VARIANTS_MAX * sizeof *v);
    size_t n = 0;
    int ddup = v ? dup(dfd) : -1;
    DIR *d = ddup >= 0 ? fdopendir(ddup) : NULL;
    if (d == NULL) {
        if (ddup >= 0)
            close(ddup);
        free(v);
        close(dfd);
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < VARIANTS_MAX) {
        if (strncmp(de->d_name, base, baselen) != 0 || de->d_name[baselen] != '.')
            continue;
        if (parse_variant(de->d_name, baselen, &v[n]) < 0)
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode))
            continue;
        n++;
    }
    closedir(d);
    if (n == 0) {
        free(v);
        close(dfd);
        return 0;
    }
    /* The same order whatever readdir gives: ties go to the first. */
    qsort(v, n, sizeof *v, variant_cmp);

    struct neg_variant nv[VARIANTS_MAX];
    for (size_t i = 0; i < n; i++) {
        nv[i].type = slice_cstr(v[i].type);
        nv[i].lang = slice_cstr(v[i].lang);
        nv[i].coding = slice_cstr(v[i].coding);
    }
    char a[FIELD_JOIN_MAX], al[FIELD_JOIN_MAX], ae[FIELD_JOIN_MAX];
    slice_t sa, sal, sae;
    int ha = field_joined(q, "accept", a, sizeof a, &sa);
    int hal = field_joined(q, "accept-language", al, sizeof al, &sal);
    int hae = field_joined(q, "accept-encoding", ae, sizeof ae, &sae);
    unsigned vary = 0;
    int ambiguous = 0;
    int best = neg_choose(nv, n, sa, ha, sal, hal, sae, hae, &vary, &ambiguous);

    char varyv[64] = "";
    if (vary & NEG_VARY_ACCEPT)
        strcat(varyv, "Accept");
    if (vary & NEG_VARY_LANGUAGE)
        strcat(varyv, varyv[0] ? ", Accept-Language" : "Accept-Language");
    if (vary & NEG_VARY_ENCODING)
        strcat(varyv, varyv[0] ? ", Accept-Encoding" : "Accept-Encoding");

    if (best < 0 || (ambiguous && multiple_choices)) {
        list_answer(r, best < 0 ? 406 : 300, dir, v, n);
        free(v);
        close(dfd);
        return 1;
    }
    int fd = fs_open_beneath(dfd, v[best].file, O_RDONLY | O_NONBLOCK);
    close(dfd);
    if (fd < 0) {
        free(v);
        hs_resp_error(r, 404);
        return 1;
    }
    struct variant_info vi = { 0 };
    snprintf(vi.type, sizeof vi.type, "%s", v[best].type);
    snprintf(vi.lang, sizeof vi.lang, "%s", v[best].lang);
    snprintf(vi.coding, sizeof vi.coding, "%s", v[best].coding);
    snprintf(vi.vary, sizeof vi.vary, "%s", varyv);
    snprintf(vi.file, sizeof vi.file, "%s", v[best].file);
    free(v);
    serve(r, fd, &vi, arg);
    return 1;
}
