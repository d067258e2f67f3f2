#include "server/mime.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIME_EXT_MAX 32

struct mime_entry {
    char ext[MIME_EXT_MAX];   /* lower case; "" marks a free slot */
    const char *type;         /* with charset where it applies */
};

static struct mime_entry *table;
static size_t table_size;     /* power of two */
static size_t table_used;
static char **types;          /* owned strings, freed by mime_free */
static size_t ntypes;

static const char *const builtin[][2] = {
    { "html", "text/html" }, { "htm", "text/html" }, { "css", "text/css" },
    { "js", "text/javascript" }, { "mjs", "text/javascript" }, { "json", "application/json" },
    { "txt", "text/plain" }, { "md", "text/markdown" }, { "csv", "text/csv" },
    { "xml", "application/xml" }, { "svg", "image/svg+xml" }, { "png", "image/png" },
    { "jpg", "image/jpeg" }, { "jpeg", "image/jpeg" }, { "gif", "image/gif" },
    { "webp", "image/webp" }, { "ico", "image/vnd.microsoft.icon" }, { "avif", "image/avif" },
    { "woff", "font/woff" }, { "woff2", "font/woff2" }, { "ttf", "font/ttf" },
    { "pdf", "application/pdf" }, { "zip", "application/zip" }, { "gz", "application/gzip" },
    { "tar", "application/x-tar" }, { "wasm", "application/wasm" }, { "mp4", "video/mp4" },
    { "webm", "video/webm" }, { "mp3", "audio/mpeg" }, { "ogg", "audio/ogg" },
    { "wav", "audio/wav" },
};

static size_t hash(const char *s, size_t n)
{
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int needs_charset(const char *type)
{
    return strncmp(type, "text/", 5) == 0 || strcmp(type, "application/json") == 0 ||
           strcmp(type, "application/javascript") == 0 || strcmp(type, "application/xml") == 0 ||
           strcmp(type, "image/svg+xml") == 0;
}

static const char *intern(const char *type)
{
    for (size_t i = 0; i < ntypes; i++)
        if (strncmp(types[i], type, strlen(type)) == 0 &&
            (types[i][strlen(type)] == '\0' || types[i][strlen(type)] == ';'))
            return types[i];
    char **t = realloc(types, (ntypes + 1) * sizeof *t);
    if (t == NULL)
        return NULL;
    types = t;
    size_t n = strlen(type);
    char *s = malloc(n + sizeof "; charset=utf-8");
    if (s == NULL)
        return NULL;
    memcpy(s, type, n + 1);
    if (needs_charset(type))
        strcat(s, "; charset=utf-8");
    types[ntypes++] = s;
    return s;
}

static int grow(void);

static int put(const char *ext, size_t n, const char *type)
{
    if (n == 0 || n >= MIME_EXT_MAX)
        return 0;
    if ((table_used + 1) * 2 > table_size && grow() < 0)
        return -ENOMEM;
    const char *t = intern(type);
    if (t == NULL)
        return -ENOMEM;
    size_t i = hash(ext, n) & (table_size - 1);
    while (table[i].ext[0] != '\0') {
        if (strlen(table[i].ext) == n && memcmp(table[i].ext, ext, n) == 0) {
            table[i].type = t; /* later definitions win */
            return 0;
        }
        i = (i + 1) & (table_size - 1);
    }
    memcpy(table[i].ext, ext, n);
    table[i].ext[n] = '\0';
    table[i].type = t;
    table_used++;
    return 0;
}

static int grow(void)
{
    size_t old_size = table_size;
    struct mime_entry *old = table;
    size_t size = table_size ? table_size * 2 : 1024;
    table = calloc(size, sizeof *table);
    if (table == NULL) {
        table = old;
        return -ENOMEM;
    }
    table_size = size;
    table_used = 0;
    for (size_t i = 0; i < old_size; i++)
        if (old[i].ext[0] != '\0') {
            size_t n = strlen(old[i].ext);
            size_t j = hash(old[i].ext, n) & (table_size - 1);
            while (table[j].ext[0] != '\0')
                j = (j + 1) & (table_size - 1);
            table[j] = old[i];
            table_used++;
        }
    free(old);
    return 0;
}

int mime_load(const char *path)
{
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (put(builtin[i][0], strlen(builtin[i][0]), builtin[i][1]) < 0)
            return -ENOMEM;
    FILE *f = fopen(path ? path : "/etc/mime.types", "re");
    if (f == NULL) {
        if (path != NULL)
            return -errno;
        return (int)table_used;
    }
    char line[1024];
    while (fgets(line, sizeof line, f) != NULL) {
        char *save = NULL;
        char *type = strtok_r(line, " \t\r\n", &save);
        if (type == NULL || type[0] == '#' || strchr(type, '/') == NULL)
            continue;
        char *ext;
        while ((ext = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
            for (char *p = ext; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            /* The built-in modern types (text/javascript, ...) win over
             * older names in the system file. */
            int builtin_ext = 0;
            for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
                if (strcmp(builtin[i][0], ext) == 0)
                    builtin_ext = 1;
            if (!builtin_ext && put(ext, strlen(ext), type) < 0) {
                fclose(f);
                return -ENOMEM;
            }
        }
    }
    fclose(f);
    return (int)table_used;
}

void mime_free(void)
{
    free(table);
    table = NULL;
    table_size = table_used = 0;
    for (size_t i = 0; i < ntypes; i++)
        free(types[i]);
    free(types);
    types = NULL;
    ntypes = 0;
}

const char *mime_type(slice_t name)
{
    const char *dot = NULL;
    for (size_t i = name.len; i > 0; i--) {
        if (name.p[i - 1] == '.') {
            dot = name.p + i;
            break;
        }
        if (name.p[i - 1] == '/')
            break;
    }
    if (dot != NULL && table_size) {
        size_t n = (size_t)(name.p + name.len - dot);
        char ext[MIME_EXT_MAX];
        if (n > 0 && n < MIME_EXT_MAX) {
            for (size_t i = 0; i < n; i++)
                ext[i] = (char)tolower((unsigned char)dot[i]);
            size_t i = hash(ext, n) & (table_size - 1);
            while (table[i].ext[0] != '\0') {
                if (strlen(table[i].ext) == n && memcmp(table[i].ext, ext, n) == 0)
                    return table[i].type;
                i = (i + 1) & (table_size - 1);
            }
        }
    }
    return "application/octet-stream";
}
