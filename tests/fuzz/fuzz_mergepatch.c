/* fuzz_mergepatch.c - JSON Merge Patch (RFC 7396) on arbitrary documents.
 *
 * Input: a target document, a NUL byte, a patch document. When both parse,
 * the patch is applied and the result checked against properties RFC 7396
 * guarantees: applying a patch is idempotent, a non-object patch replaces
 * the target whole, and no member the patch sets to null survives. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/mergepatch.h"

static void check_nulls_removed(json_t *result, json_t *patch)
{
    if (!json_is_object(patch) || !json_is_object(result))
        return;
    const char *key;
    json_t *v;
    json_object_foreach(patch, key, v) {
        json_t *got = json_object_get(result, key);
        if (json_is_null(v) && got != NULL)
            abort();
        if (json_is_object(v))
            check_nulls_removed(got, v);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    if (nul == NULL)
        return 0;
    json_error_t err;
    json_t *target = json_loadb((const char *)data, (size_t)(nul - data), JSON_DECODE_ANY, &err);
    json_t *patch = json_loadb((const char *)nul + 1, size - (size_t)(nul - data) - 1, JSON_DECODE_ANY, &err);
    if (target == NULL || patch == NULL) {
        json_decref(target);
        json_decref(patch);
        return 0;
    }
    json_t *once = merge_patch(target, patch); /* consumes target */
    if (once == NULL)
        abort();
    if (!json_is_object(patch) && !json_equal(once, patch))
        abort();
    check_nulls_removed(once, patch);
    json_t *twice = merge_patch(json_deep_copy(once), patch);
    if (twice == NULL || !json_equal(once, twice))
        abort();
    json_decref(twice);
    json_decref(once);
    json_decref(patch);
    return 0;
}
