/* variants.h - server-driven content negotiation over files on disk
 * (RFC 9110 §12.1).
 *
 * Naming scheme: the variants of /dir/NAME are the regular files
 * dir/NAME.EXT[.EXT...] whose extensions are each a media type known to
 * the MIME table ("html", "json"), a language tag ("en", "ko", "en-us"), or
 * a content coding ("gz", "br", "zst"), at most one of each, in any order:
 * doc.html.en, doc.html.ko, doc.json, doc.html.en.gz. They are used only
 * when /dir/NAME itself does not exist. */
#ifndef PORTICO_SERVER_VARIANTS_H
#define PORTICO_SERVER_VARIANTS_H

#include <stddef.h>

#include "server/server.h"

struct variant_info {
    char file[256];      /* the chosen file's name */
    char type[96];       /* media type, "" unknown */
    char lang[36];       /* Content-Language, "" none */
    char coding[8];      /* Content-Encoding, "" identity */
    char vary[64];       /* the Vary value: the fields that can change the choice */
};

/* Answers with the chosen variant: open fd (owned by the callee). */
typedef void (*variant_serve_fn)(hs_req_t *r, int fd, const struct variant_info *vi, void *arg);

/* Looks for variants of `path` (normalised) below rootfd and answers: the
 * best one through serve(), 406 with the list when none is acceptable, or
 * 300 with the list (and Link fields) when `multiple_choices` is set and the
 * request does not decide between the best ones. Returns 1 when it
 * answered, 0 when the path has no variants. */
int variants_answer(hs_req_t *r, int rootfd, const char *path, size_t plen, int multiple_choices,
                    variant_serve_fn serve, void *arg);

#endif
