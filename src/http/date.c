#include "http/date.h"

#include <string.h>

static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

size_t http_date_format(char *out, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    memcpy(out, days[tm.tm_wday], 3);
    out[3] = ',';
    out[4] = ' ';
    put2(out + 5, tm.tm_mday);
    out[7] = ' ';
    memcpy(out + 8, months[tm.tm_mon], 3);
    out[11] = ' ';
    int y = tm.tm_year + 1900;
    put2(out + 12, (y / 100) % 100);
    put2(out + 14, y % 100);
    out[16] = ' ';
    put2(out + 17, tm.tm_hour);
    out[19] = ':';
    put2(out + 20, tm.tm_min);
    out[22] = ':';
    put2(out + 23, tm.tm_sec);
    memcpy(out + 25, " GMT", 4);
    out[29] = '\0';
    return HTTP_DATE_LEN;
}

static int num(const char *p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        x = x * 10 + (p[i] - '0');
    }
    *v = x;
    return 0;
}

static int month(const char *p)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(p, months[i], 3) == 0)
            return i;
    return -1;
}

static int day_name(const char *p, size_t n)
{
    static const char *const long_days[7] = { "Sunday", "Monday", "Tuesday", "Wednesday",
                                              "Thursday", "Friday", "Saturday" };
    for (int i = 0; i < 7; i++) {
        if (n == 3 && memcmp(p, days[i], 3) == 0)
            return i;
        if (n == strlen(long_days[i]) && memcmp(p, long_days[i], n) == 0)
            return i;
    }
    return -1;
}

/* "08:49:37" */
static int hms(const char *p, struct tm *tm)
{
    if (p[2] != ':' || p[5] != ':')
        return -1;
    if (num(p, 2, &tm->tm_hour) || num(p + 3, 2, &tm->tm_min) || num(p + 6, 2, &tm->tm_sec))
        return -1;
    if (tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60)
        return -1;
    return 0;
}

int http_date_parse(slice_t s, time_t *t)
{
    struct tm tm;
    const char *p = s.p;
    memset(&tm, 0, sizeof tm);
    const char *comma = memchr(p, ',', s.len);

    if (comma != NULL && comma - p == 3 && s.len == 29) {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (day_name(p, 3) < 0 || p[4] != ' ' || p[7] != ' ' || p[11] != ' ' || p[16] != ' ' ||
            memcmp(p + 25, " GMT", 4) != 0)
            return -1;
        if (num(p + 5, 2, &tm.tm_mday) || (tm.tm_mon = month(p + 8)) < 0 ||
            num(p + 12, 4, &tm.tm_year) || hms(p + 17, &tm))
            return -1;
        tm.tm_year -= 1900;
    } else if (comma != NULL) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        size_t dn = (size_t)(comma - p);
        const char *q = comma + 1;
        if (day_name(p, dn) < 0 || s.len != dn + 24)
            return -1;
        if (q[0] != ' ' || q[3] != '-' || q[7] != '-' || q[10] != ' ' || memcmp(q + 19, " GMT", 4) != 0)
            return -1;
        if (num(q + 1, 2, &tm.tm_mday) || (tm.tm_mon = month(q + 4)) < 0 ||
            num(q + 8, 2, &tm.tm_year) || hms(q + 11, &tm))
            return -1;
        /* Two-digit years: RFC 9110 says to read one more than 50 years
         * ahead as the past century; 70-99 -> 19xx, 00-69 -> 20xx. */
        if (tm.tm_year < 70)
            tm.tm_year += 100;
    } else if (s.len == 24) {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        if (day_name(p, 3) < 0 || p[3] != ' ' || p[7] != ' ' || p[10] != ' ' || p[19] != ' ')
            return -1;
        if ((tm.tm_mon = month(p + 4)) < 0)
            return -1;
        char d[2] = { p[8] == ' ' ? '0' : p[8], p[9] };
        if (num(d, 2, &tm.tm_mday) || hms(p + 11, &tm) || num(p + 20, 4, &tm.tm_year))
            return -1;
        tm.tm_year -= 1900;
    } else {
        return -1;
    }
    if (tm.tm_mday < 1 || tm.tm_mday > 31)
        return -1;
    if (tm.tm_sec == 60)
        tm.tm_sec = 59; /* a leap second: time_t has none */
    struct tm in = tm;
    time_t v = timegm(&tm);
    /* timegm normalises 31 Feb into 3 Mar: a date that does not come back
     * unchanged did not exist. (This also accepts the -1 of 23:59:59 on
     * 31 Dec 1969, which timegm cannot tell from an error.) */
    if (tm.tm_year != in.tm_year || tm.tm_mon != in.tm_mon || tm.tm_mday != in.tm_mday ||
        tm.tm_hour != in.tm_hour || tm.tm_min != in.tm_min || tm.tm_sec != in.tm_sec)
        return -1;
    *t = v;
    return 0;
}
