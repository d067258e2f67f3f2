/* fuzz_date.c - libFuzzer target for HTTP-date parsing.
 *
 * http_date_parse must not crash on any input (given as a heap copy of
 * exactly its length). When it accepts a date, formatting that time with
 * http_date_format and parsing the result must give the same time_t, and
 * formatting it again the same text. Any mismatch calls abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/date.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (size)
        memcpy(in, data, size);
    time_t t = 0;
    int rc = http_date_parse(slice_make(in, size), &t);
    free(in);
    if (rc != 0 && rc != -1)
        abort();
    if (rc != 0)
        return 0;

    char *out = malloc(HTTP_DATE_LEN + 1);
    size_t n = http_date_format(out, t);
    if (n != HTTP_DATE_LEN || out[HTTP_DATE_LEN] != '\0' || strlen(out) != HTTP_DATE_LEN) {
        fprintf(stderr, "fuzz_date: bad format length for %lld\n", (long long)t);
        abort();
    }
    time_t t2 = 0;
    char *again = malloc(HTTP_DATE_LEN);
    memcpy(again, out, HTTP_DATE_LEN);
    int rc2 = http_date_parse(slice_make(again, HTTP_DATE_LEN), &t2);
    if (rc2 != 0 || t2 != t) {
        fprintf(stderr, "fuzz_date: \"%.*s\" parses to %lld, formats as \"%s\", which ",
                (int)size, (const char *)data, (long long)t, out);
        if (rc2 != 0)
            fprintf(stderr, "does not parse\n");
        else
            fprintf(stderr, "parses to %lld\n", (long long)t2);
        abort();
    }
    char *out2 = malloc(HTTP_DATE_LEN + 1);
    http_date_format(out2, t2);
    if (memcmp(out, out2, HTTP_DATE_LEN + 1) != 0) {
        fprintf(stderr, "fuzz_date: format not stable: \"%s\" vs \"%s\"\n", out, out2);
        abort();
    }
    free(out2);
    free(again);
    free(out);
    return 0;
}
