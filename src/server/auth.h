/* auth.h - Basic authentication against an htpasswd-style file.
 *
 * Lines are "user:hash" where hash is anything crypt(3) of Debian's
 * libcrypt understands (yescrypt "$y$", bcrypt "$2b$", sha512-crypt "$6$",
 * ...); blank lines and lines starting with '#' are skipped. */
#ifndef PORTICO_SERVER_AUTH_H
#define PORTICO_SERVER_AUTH_H

#include <stddef.h>

typedef struct auth_db auth_db_t;

/* Loads the file. Returns NULL with a message in err (unreadable file, a
 * line without ':', a hash crypt does not know). */
auth_db_t *auth_load(const char *path, char *err, size_t errlen);
void auth_free(auth_db_t *db);

/* Checks an Authorization field value. Slow on purpose (crypt): call it on
 * a pool thread, never on a loop. An unknown user costs the same hashing
 * as a wrong password, so timing does not tell whether a user exists.
 * Returns 1 when the credentials are right, else 0. */
int auth_check(const auth_db_t *db, const char *value, size_t len);

/* Base64 decoding (RFC 4648, with padding). Returns the decoded length or
 * -1 on bad input or too small an output. */
long base64_decode(const char *in, size_t len, char *out, size_t cap);

#endif
