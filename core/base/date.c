/* date.c - civil dates to day numbers (H. Hinnant's days-from-civil method). */
#include "date.h"


int32_t date_from_ymd(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void date_to_ymd(int32_t z, int *y, int *m, int *d)
{
    z += 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : dm[m - 1];
}

/* Read 1..maxd digits at s[*i]; exactly `exact` digits when exact > 0. */
static int digits(const char *s, size_t len, size_t *i, int mind, int maxd, int *out)
{
    int v = 0, n = 0;
    while (*i < len && n < maxd && s[*i] >= '0' && s[*i] <= '9') {
        v = v * 10 + (s[*i] - '0');
        (*i)++;
        n++;
    }
    *out = v;
    return n >= mind;
}

static int parse_time(const char *s, size_t len, size_t i)
{
    int hh, mm, ss = 0;
    if (!digits(s, len, &i, 1, 2, &hh) || i >= len || s[i] != ':')
        return 0;
    i++;
    if (!digits(s, len, &i, 2, 2, &mm))
        return 0;
    if (i < len && s[i] == ':') {
        i++;
        if (!digits(s, len, &i, 2, 2, &ss))
            return 0;
        if (i < len && s[i] == '.') { /* fractional seconds */
            i++;
            int frac;
            if (!digits(s, len, &i, 1, 9, &frac))
                return 0;
        }
    }
    return i == len && hh < 24 && mm < 60 && ss < 61;
}

int32_t date_parse(const char *s, size_t len)
{
    size_t i = 0;
    int y, m, d;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t start = i;
    int a;
    if (!digits(s, len, &i, 1, 4, &a) || i >= len)
        return DATE_NONE;
    if (s[i] == '-' && i - start == 4) { /* YYYY-MM-DD */
        y = a;
        i++;
        if (!digits(s, len, &i, 2, 2, &m) || i >= len || s[i] != '-')
            return DATE_NONE;
        i++;
        if (!digits(s, len, &i, 2, 2, &d))
            return DATE_NONE;
    } else if (s[i] == '/' && i - start <= 2) { /* M/D/YYYY */
        m = a;
        i++;
        if (!digits(s, len, &i, 1, 2, &d) || i >= len || s[i] != '/')
            return DATE_NONE;
        i++;
        size_t ys = i;
        if (!digits(s, len, &i, 4, 4, &y) || i - ys != 4)
            return DATE_NONE;
    } else {
        return DATE_NONE;
    }
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m) || y < 1900 || y > 9999)
        return DATE_NONE;
    if (i < len) {
        if (s[i] != ' ' && s[i] != 'T')
            return DATE_NONE;
        if (!parse_time(s, len, i + 1))
            return DATE_NONE;
    }
    return date_from_ymd(y, m, d);
}

void date_format(int32_t day, char out[11])
{
    int y, m, d;
    date_to_ymd(day, &y, &m, &d);
    int v[3] = {y, m, d}, w[3] = {4, 2, 2};
    char *p = out;
    for (int k = 0; k < 3; k++) {
        for (int i = w[k] - 1, x = v[k]; i >= 0; i--, x /= 10)
            p[i] = (char)('0' + x % 10);
        p += w[k];
        *p++ = k < 2 ? '-' : '\0';
    }
}
