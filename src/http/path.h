/* path.h - request path normalisation (RFC 3986 §5.2.4), sans-I/O. */
#ifndef PORTICO_HTTP_PATH_H
#define PORTICO_HTTP_PATH_H

#include <stddef.h>

#include "core/slice.h"

/* Percent-decodes the origin-form path `enc` (starting with '/') into out
 * and removes dot-segments and empty segments. The result starts with '/'
 * and ends with '/' exactly when the input's last segment was empty, "." or
 * "..". Returns the length, or -1 when the path must be refused: a %00, an
 * encoded '/' inside a segment, a ".." above the root, or a result longer
 * than outcap - 1. out is NUL terminated. */
long http_path_normalize(slice_t enc, char *out, size_t outcap);

/* Percent-encodes a path for a Location field or an href: every byte but
 * unreserved characters, '/' and sub-delims other than those that matter
 * in HTML (' " & < >) is %XX-encoded. Returns the length written or -1 when
 * outcap is too small. */
long http_path_encode(slice_t raw, char *out, size_t outcap);

#endif
