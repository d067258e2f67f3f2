#include "http/mergepatch.h"

json_t *merge_patch(json_t *target, json_t *patch)
{
    if (!json_is_object(patch)) {
        /* Anything but an object replaces the target whole. */
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
        if (target == NULL)
            return NULL;
    }
    const char *key;
    json_t *value;
    json_object_foreach(patch, key, value) {
        if (json_is_null(value)) {
            json_object_del(target, key);
            continue;
        }
        json_t *cur = json_object_get(target, key);
        json_incref(cur); /* merge_patch consumes it; the object keeps its own */
        json_t *merged = merge_patch(cur, value);
        if (merged == NULL || json_object_set_new(target, key, merged) < 0) {
            json_decref(target);
            return NULL;
        }
    }
    return target;
}
