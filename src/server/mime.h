/* mime.h - file extension to media type, from /etc/mime.types when the
 * system has it, else from a built-in table. Loaded once at start-up and
 * read-only afterwards, so workers share it without locks. */
#ifndef PORTICO_SERVER_MIME_H
#define PORTICO_SERVER_MIME_H

#include "core/slice.h"

/* Loads `path` (NULL: /etc/mime.types) on top of the built-in table.
 * Returns the number of extensions known, or -errno when path was given
 * and cannot be read. */
int mime_load(const char *path);

void mime_free(void);

/* Media type for a file name, with "; charset=utf-8" for text. Never NULL:
 * unknown extensions give application/octet-stream. */
const char *mime_type(slice_t filename);

#endif
