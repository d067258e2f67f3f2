/* negotiate.h - proactive content negotiation (RFC 9110 §12): Accept,
 * Accept-Language and Accept-Encoding weighed against the variants of a
 * resource. Pure functions over slices: no I/O, no allocation, no state;
 * every field is parsed again on each call (fields are capped by the head
 * limits, variants are few).
 *
 * Qualities are integers 0..1000 (the qvalue times 1000); 0 means "not
 * acceptable".
 *
 * Fields. `present` says whether the request had the field at all; the
 * value is the field's (combined, comma-joined) value. Each list element is
 * parsed against the grammar of its field, and an element that does not
 * match is ignored on its own, as if it were not there (RFC 9110 §5.6.1.2
 * for empty elements; the same for bad ones): q=1.5, q=abc, q=-1, q=0.1234,
 * "q = 0.5" (weight = OWS ";" OWS "q=" qvalue: no space around '='), a
 * bad token, an unterminated quoted-string, a parameter without '='. Commas
 * inside quoted-strings do not split elements. Names, tokens, "q=" and tags
 * compare case-insensitively.
 *
 * A present field with no valid element left (empty, only commas, only bad
 * elements):
 *  - Accept, Accept-Language: treated as absent. It states no preference,
 *    and RFC 9110 §12.5.1 and §12.5.4 let a server disregard these fields.
 *  - Accept-Encoding: treated as the empty value, which RFC 9110 §12.5.3
 *    defines as "no content coding wanted": identity only. Guessing that a
 *    client decodes a coding it did not name is the harmful direction.
 *
 * Accept (§12.5.1). The most specific range that matches the variant's type
 * gives the quality: type/subtype, then type/subtype with parameters, then
 * the subtype wildcard ("text/" and a star), then the all-types wildcard
 * (star, slash, star). Media type parameters other than q are otherwise
 * ignored, since variants carry none: "text/html;level=1" applies to a
 * "text/html" variant, but a plain "text/html" range, if present, wins over
 * it. Parameters after q (RFC 7231's accept-ext) are ignored. A variant
 * with an empty (unknown) type matches only the all-types wildcard. No
 * matching range: 0.
 *
 * Accept-Language (§12.5.4, RFC 4647 §3.3.1 basic filtering). A range
 * matches a tag if it equals it or is a prefix of it followed by '-' ("en"
 * matches "en-US", "en-US" does not match "en"); "*" matches any tag. The
 * longest matching range gives the quality, so "en;q=0" excludes "en-GB"
 * unless "en-GB" is listed too. A tag that no range matches, and a variant
 * with no language, get NEG_Q_LANG_FALLBACK (the lowest non-zero quality):
 * any match beats them, but only an explicit q=0 (of the tag's most
 * specific range, "*;q=0" included) excludes a tag. RFC 9110 §12.5.4
 * discourages a 406 for an unmatched language, since users may still read
 * (or translate) it; this is that advice, made per variant.
 *
 * Accept-Encoding (§12.5.3). An empty coding or "identity" is identity;
 * "x-gzip" and "x-compress" are "gzip" and "compress" (§8.4.1). A listed
 * coding gets its q; "*" gives its q to every coding not listed, identity
 * included; identity not listed and not covered by "*" is acceptable by
 * default ("unless specifically excluded by identity;q=0 or *;q=0 without
 * a more specific entry for identity"); any other unlisted coding gets 0.
 * With the field absent, any coding is acceptable. Where RFC 9110 makes a
 * coding acceptable without the request giving it a weight (identity not
 * listed; a non-identity coding with the field absent), the quality is
 * NEG_Q_CODING_DEFAULT (999): acceptable, but one step below an explicit
 * q=1, so "Accept-Encoding: gzip" selects a gzip variant, a request without
 * the field selects identity (RFC 2616 §14.3's "SHOULD use identity"), and
 * the coding never outweighs the other dimensions.
 *
 * Equal ranges listed twice (after the normalisation above) take the
 * higher q. */
#ifndef PORTICO_HTTP_NEGOTIATE_H
#define PORTICO_HTTP_NEGOTIATE_H

#include <stddef.h>

#include "core/slice.h"

#define NEG_Q_MAX 1000
#define NEG_Q_LANG_FALLBACK 1     /* untagged or unmatched language */
#define NEG_Q_CODING_DEFAULT 999  /* acceptable, but not weighed by the request */

#define NEG_VARY_ACCEPT 1u
#define NEG_VARY_LANGUAGE 2u
#define NEG_VARY_ENCODING 4u

/* One variant of a resource on disk, described by its dimensions. The
 * slices are compared case-insensitively. */
struct neg_variant {
    slice_t type;       /* media type "text/html" (no params), empty = unknown */
    slice_t lang;       /* language tag "ko", "en-US", empty = none */
    slice_t coding;     /* content coding "gzip", "br", "zstd", empty = identity */
};

/* Parses a weight "q=0.7" (the parameter alone, no OWS or ';' around it):
 * "q" or "Q", '=', then qvalue = "0" [ "." 0*3DIGIT ] / "1" [ "." 0*3"0" ]
 * (RFC 9110 §12.4.2), all of s. Returns 0..1000, or -1 if s is anything
 * else. */
int neg_parse_q(slice_t s);

/* The quality (0..1000) the request gives a variant on one dimension, by the
 * rules at the top of this file. `present` is 0 when the request has no such
 * field (the value is then not read). */
int neg_q_type(slice_t accept, int present, slice_t type);
int neg_q_lang(slice_t accept_language, int present, slice_t lang);
int neg_q_coding(slice_t accept_encoding, int present, slice_t coding);

/* Chooses among the n variants v[0..n). A variant's quality is the exact
 * product of its three qualities (0..10^9, no rounding, so two small
 * non-zero qualities never make a zero); the highest wins, and among equal
 * ones the first in v (the caller's order of preference). Returns its
 * index, or -1 when every variant has quality 0 (or n is 0): 406.
 *
 * *vary (if not NULL) gets NEG_VARY_ACCEPT, _LANGUAGE and _ENCODING for each
 * dimension on which the variants differ (over all n, whatever this request
 * said, so that Vary names exactly the fields that can change the choice).
 *
 * *ambiguous (if not NULL) is set to 1 when the request states no
 * preference that decides between the contents on offer: among the
 * acceptable variants, the best quality on media type and language
 * together (the coding left out) is shared by variants that differ in type
 * or language. Codings are left out because variants that differ only in
 * coding hold the same content: that choice is the server's, and the
 * default weights of NEG_Q_CODING_DEFAULT do not count as a preference of
 * the user. The caller can answer 300 Multiple Choices then (agent-driven
 * negotiation, RFC 9110 §12.2), or serve the returned index. 0 otherwise,
 * and always with -1. */
int neg_choose(const struct neg_variant *v, size_t n, slice_t accept, int has_accept,
               slice_t accept_language, int has_al, slice_t accept_encoding, int has_ae,
               unsigned *vary, int *ambiguous);

#endif
