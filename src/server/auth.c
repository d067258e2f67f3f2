#include "server/auth.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct auth_user {
    char *name;
    char *hash;
};

struct auth_db {
    struct auth_user *users;
    size_t n;
};

void auth_free(auth_db_t *db)
{
    if (db == NULL)
        return;
    for (size_t i = 0; i < db->n; i++) {
        free(db->users[i].name);
        free(db->users[i].hash);
    }
    free(db->users);
    free(db);
}

/* Is `hash` a setting crypt_rn can hash with? */
static int hash_known(const char *hash)
{
    /* Only the modular "$id$..." forms: a bare word would pass as an old
     * DES hash, and a clear-text password line must be refused. */
    if (hash[0] != '$')
        return 0;
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *out = crypt_rn("probe", hash, &cd, sizeof cd);
    return out != NULL && out[0] != '*';
}

auth_db_t *auth_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read auth file '%s': %s", path, strerror(errno));
        return NULL;
    }
    auth_db_t *db = calloc(1, sizeof *db);
    char line[1024];
    int lineno = 0;
    while (db != NULL && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        if (colon == NULL || colon == line || colon[1] == '\0') {
            snprintf(err, errlen, "%s, line %d: expected user:hash", path, lineno);
            goto fail;
        }
        *colon = '\0';
        if (!hash_known(colon + 1)) {
            snprintf(err, errlen, "%s, line %d: crypt(3) does not know this hash", path, lineno);
            goto fail;
        }
        struct auth_user *u = realloc(db->users, (db->n + 1) * sizeof *u);
        if (u == NULL)
            goto nomem;
        db->users = u;
        u[db->n].name = strdup(line);
        u[db->n].hash = strdup(colon + 1);
        db->n++;
        if (u[db->n - 1].name == NULL || u[db->n - 1].hash == NULL)
            goto nomem;
    }
    if (db == NULL)
        goto nomem;
    fclose(f);
    if (db->n == 0) {
        snprintf(err, errlen, "auth file '%s' has no users", path);
        auth_free(db);
        return NULL;
    }
    return db;
nomem:
    snprintf(err, errlen, "out of memory reading '%s'", path);
fail:
    fclose(f);
    auth_free(db);
    return NULL;
}

long base64_decode(const char *in, size_t len, char *out, size_t cap)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = in[i + k];
            if (c == '=' && i + 4 == len && k >= 2) {
                pad++;
                v <<= 6;
                continue;
            }
            if (pad || c == '\0')
                return -1;
            const char *p = strchr(alphabet, c);
            if (p == NULL)
                return -1;
            v = (v << 6) | (unsigned)(p - alphabet);
        }
        size_t n = 3 - (size_t)pad;
        if (o + n > cap)
            return -1;
        out[o++] = (char)(v >> 16);
        if (n > 1)
            out[o++] = (char)(v >> 8);
        if (n > 2)
            out[o++] = (char)v;
    }
    return (long)o;
}

static int const_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    size_t n = la < lb ? la : lb;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

int auth_check(const auth_db_t *db, const char *value, size_t len)
{
    /* "Basic" 1*SP token68; the scheme name is case-insensitive. */
    if (len < 6 || strncasecmp(value, "Basic ", 6) != 0)
        return 0;
    size_t i = 6;
    while (i < len && value[i] == ' ')
        i++;
    char cred[512];
    long n = base64_decode(value + i, len - i, cred, sizeof cred - 1);
    if (n < 0)
        return 0;
    cred[n] = '\0';
    if (memchr(cred, '\0', (size_t)n) != NULL)
        return 0;
    char *colon = strchr(cred, ':');
    if (colon == NULL)
        return 0;
    *colon = '\0';
    const struct auth_user *u = NULL;
    for (size_t k = 0; k < db->n; k++)
        if (strcmp(db->users[k].name, cred) == 0)
            u = &db->users[k];
    /* Hash even for an unknown user, with a real user's setting, so the
     * time taken is the same either way. */
    const char *setting = u ? u->hash : db->users[0].hash;
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *out = crypt_rn(colon + 1, setting, &cd, sizeof cd);
    int ok = out != NULL && out[0] != '*' && const_eq(out, setting);
    explicit_bzero(cred, sizeof cred);
    return ok && u != NULL;
}
