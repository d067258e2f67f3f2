/* mergepatch.h - JSON Merge Patch (RFC 7396) on jansson values. Pure. */
#ifndef PORTICO_HTTP_MERGEPATCH_H
#define PORTICO_HTTP_MERGEPATCH_H

#include <jansson.h>

/* Applies `patch` to `target` and returns the result (a new reference;
 * target's reference is consumed, patch is only read). NULL when out of
 * memory. */
json_t *merge_patch(json_t *target, json_t *patch);

#endif
