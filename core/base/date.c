/* date.c - civil dates to day numbers (H. Hinnant's days-from-civil method). */
#include "date.h"

#include <string.h>
#include <strings.h>

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

/* Read mind..maxd digits at s[*i]. */
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

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* What a date text says: a civil date and time, maybe with an offset, or
 * an instant in Unix seconds. */
typedef struct {
    int y, m, d, hh, mm, ss;
    int has_offset;
    int32_t offset_s;
    int unix_time;
    int64_t unix_s;
} parts;

/* An offset at s[*i]: Z, or +HH:MM, +HHMM, +HH (or -). */
static int parse_offset(const char *s, size_t len, size_t *i, int32_t *off)
{
    if (*i < len && s[*i] == 'Z') {
        (*i)++;
        *off = 0;
        return 1;
    }
    if (*i >= len || (s[*i] != '+' && s[*i] != '-'))
        return 0;
    int neg = s[*i] == '-', h, m = 0;
    (*i)++;
    size_t h0 = *i;
    if (!digits(s, len, i, 2, 2, &h) || *i - h0 != 2)
        return 0;
    if (*i < len && s[*i] == ':') {
        (*i)++;
        if (!digits(s, len, i, 2, 2, &m))
            return 0;
    } else if (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        if (!digits(s, len, i, 2, 2, &m))
            return 0;
    }
    if (h > 18 || m > 59)
        return 0;
    *off = (neg ? -1 : 1) * (h * 3600 + m * 60);
    return 1;
}

int date_parse_zone(const char *s, int32_t *offset_s)
{
    size_t len = strlen(s), i = 0;
    if (strcmp(s, "UTC") == 0 || strcmp(s, "Z") == 0) {
        *offset_s = 0;
        return 1;
    }
    if (s[0] != '+' && s[0] != '-')
        return 0;
    return parse_offset(s, len, &i, offset_s) && i == len;
}

/* H:MM[:SS[.fff]] and an optional offset (after an optional blank), to the
 * end of the text. */
static int parse_time(const char *s, size_t len, size_t i, parts *p)
{
    if (!digits(s, len, &i, 1, 2, &p->hh) || i >= len || s[i] != ':')
        return 0;
    i++;
    if (!digits(s, len, &i, 2, 2, &p->mm))
        return 0;
    if (i < len && s[i] == ':') {
        i++;
        if (!digits(s, len, &i, 2, 2, &p->ss))
            return 0;
        if (i < len && (s[i] == '.' || s[i] == ',')) { /* fractional seconds */
            i++;
            size_t f0 = i;
            while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
            if (i == f0)
                return 0;
        }
    }
    if (i < len && is_blank(s[i]) && i + 1 < len && strchr("Z+-", s[i + 1]))
        i++;
    if (i < len) {
        if (!parse_offset(s, len, &i, &p->offset_s))
            return 0;
        p->has_offset = 1;
    }
    return i == len && p->hh < 24 && p->mm < 60 && p->ss < 61;
}

/* Auto: the forms of date.h. 1 = read, 0 = none, -1 = ambiguous. */
static int parse_auto(const char *s, size_t len, parts *p)
{
    size_t i = 0;
    int a;
    size_t nd = 0;
    while (nd < len && s[nd] >= '0' && s[nd] <= '9')
        nd++;
    if (nd == len) { /* digits only */
        if (len == 8) {
            p->y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
            p->m = (s[4] - '0') * 10 + (s[5] - '0');
            p->d = (s[6] - '0') * 10 + (s[7] - '0');
            return 1;
        }
        if (len < 9 || len > 13 || len == 11)
            return 0;
        int64_t v = 0;
        for (size_t k = 0; k < len; k++)
            v = v * 10 + (s[k] - '0');
        p->unix_time = 1;
        p->unix_s = len >= 12 ? v / 1000 : v;
        return 1;
    }
    if (!digits(s, len, &i, 1, 4, &a) || i >= len)
        return 0;
    if (s[i] == '-' && i == 4) { /* YYYY-MM-DD */
        p->y = a;
        i++;
        if (!digits(s, len, &i, 2, 2, &p->m) || i >= len || s[i] != '-')
            return 0;
        i++;
        size_t d0 = i;
        if (!digits(s, len, &i, 2, 2, &p->d) || i - d0 != 2)
            return 0;
    } else if ((s[i] == '/' || s[i] == '.' || s[i] == '-') && i <= 2) { /* a/b/YYYY */
        char sep = s[i];
        int b;
        i++;
        size_t b0 = i;
        if (!digits(s, len, &i, 1, 2, &b) || i >= len || s[i] != sep || i - b0 > 2)
            return 0;
        i++;
        size_t y0 = i;
        if (!digits(s, len, &i, 4, 4, &p->y) || i - y0 != 4)
            return 0;
        if (sep != '/' || i == len)
            return -1; /* D.M.YYYY, DD-MM-YYYY, or a bare 03/04/2024 */
        p->m = a;      /* the UCI form, always with a time */
        p->d = b;
    } else {
        return 0;
    }
    if (i < len) {
        if (s[i] != ' ' && s[i] != 'T')
            return 0;
        if (!parse_time(s, len, i + 1, p))
            return 0;
    }
    return 1;
}

static int month_name(const char *s, size_t len, size_t *i, int *m)
{
    static const char *const names[12] = {"january",   "february", "march",    "april",
                                          "may",       "june",     "july",     "august",
                                          "september", "october",  "november", "december"};
    for (int k = 0; k < 12; k++) {
        size_t n = strlen(names[k]);
        if (*i + n <= len && strncasecmp(s + *i, names[k], n) == 0) {
            *i += n;
            *m = k + 1;
            return 1;
        }
        if (*i + 3 <= len && strncasecmp(s + *i, names[k], 3) == 0) {
            *i += 3;
            *m = k + 1;
            return 1;
        }
    }
    return 0;
}

/* A strptime-style pattern (date.h); 1 = read, 0 = not. */
static int parse_pattern(const char *s, size_t len, const char *pat, parts *p)
{
    size_t i = 0;
    int have_s = 0;
    for (const char *q = pat; *q; q++) {
        if (is_blank(*q)) {
            while (i < len && is_blank(s[i]))
                i++;
            continue;
        }
        if (*q != '%') {
            if (i >= len || s[i] != *q)
                return 0;
            i++;
            continue;
        }
        q++;
        size_t i0 = i;
        int v;
        switch (*q) {
        case 'Y':
            if (!digits(s, len, &i, 4, 4, &p->y))
                return 0;
            break;
        case 'y':
            if (!digits(s, len, &i, 2, 2, &v))
                return 0;
            p->y = v < 69 ? 2000 + v : 1900 + v; /* POSIX */
            break;
        case 'm':
            if (!digits(s, len, &i, 1, 2, &p->m))
                return 0;
            break;
        case 'd':
            if (!digits(s, len, &i, 1, 2, &p->d))
                return 0;
            break;
        case 'b':
        case 'B':
            if (!month_name(s, len, &i, &p->m))
                return 0;
            break;
        case 'H':
            if (!digits(s, len, &i, 1, 2, &p->hh) || p->hh > 23)
                return 0;
            break;
        case 'M':
            if (!digits(s, len, &i, 2, 2, &p->mm) || p->mm > 59)
                return 0;
            break;
        case 'S':
            if (!digits(s, len, &i, 2, 2, &p->ss) || p->ss > 60)
                return 0;
            break;
        case 'f':
            while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
            if (i == i0)
                return 0;
            break;
        case 'z':
            if (!parse_offset(s, len, &i, &p->offset_s))
                return 0;
            p->has_offset = 1;
            break;
        case 's': {
            int64_t u = 0;
            while (i < len && s[i] >= '0' && s[i] <= '9' && i - i0 < 12)
                u = u * 10 + (s[i++] - '0');
            if (i == i0)
                return 0;
            p->unix_time = have_s = 1;
            p->unix_s = u;
            break;
        }
        case '%':
            if (i >= len || s[i] != '%')
                return 0;
            i++;
            break;
        default: return 0;
        }
    }
    (void)have_s;
    return i == len;
}

const char *date_check_pattern(const char *pat)
{
    int y = 0, m = 0, d = 0, u = 0;
    for (const char *q = pat; *q; q++) {
        if (*q != '%')
            continue;
        switch (*++q) {
        case 'Y':
        case 'y': y = 1; break;
        case 'm':
        case 'b':
        case 'B': m = 1; break;
        case 'd': d = 1; break;
        case 's': u = 1; break;
        case 'H':
        case 'M':
        case 'S':
        case 'f':
        case 'z':
        case '%': break;
        case '\0': return "ends with a lone %";
        default: return "has a directive other than %Y %y %m %d %b %B %H %M %S %f %z %s %%";
        }
    }
    if (!u && !(y && m && d))
        return "needs %Y (or %y), %m (or %b) and %d, or %s";
    return NULL;
}

static int32_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return (int32_t)q;
}

int32_t date_parse_in(const char *s, size_t len, const date_spec *spec)
{
    while (len > 0 && is_blank(s[len - 1]))
        len--;
    while (len > 0 && is_blank(*s)) {
        s++;
        len--;
    }
    parts p;
    memset(&p, 0, sizeof p);
    p.m = p.d = 1;
    int ok = spec->pattern ? parse_pattern(s, len, spec->pattern, &p) : parse_auto(s, len, &p);
    if (ok < 0)
        return DATE_AMBIGUOUS;
    if (!ok)
        return DATE_NONE;
    int32_t day;
    static const int32_t lo = -25567, hi = 2932896; /* 1900-01-01, 9999-12-31 */
    if (p.unix_time) {
        day = floor_div(p.unix_s + spec->zone_s, 86400);
    } else {
        if (p.m < 1 || p.m > 12 || p.d < 1 || p.d > days_in_month(p.y, p.m) || p.y < 1900 ||
            p.y > 9999)
            return DATE_NONE;
        day = date_from_ymd(p.y, p.m, p.d);
        if (p.has_offset) {
            int64_t t =
                (int64_t)day * 86400 + p.hh * 3600 + p.mm * 60 + p.ss - p.offset_s + spec->zone_s;
            day = floor_div(t, 86400);
        }
    }
    return day >= lo && day <= hi ? day : DATE_NONE;
}

int32_t date_parse(const char *s, size_t len)
{
    static const date_spec utc = {NULL, 0};
    int32_t d = date_parse_in(s, len, &utc);
    return d == DATE_AMBIGUOUS ? DATE_NONE : d;
}

void date_format_instant(int64_t t, char out[21])
{
    /* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z */
    const int64_t lo = -62167219200LL, hi = 253402300799LL;
    t = t < lo ? lo : t > hi ? hi : t;
    int64_t day = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t sec = t - day * 86400;
    date_format((int32_t)day, out);
    int v[3] = {(int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60)};
    char *p = out + 10;
    *p++ = 'T';
    for (int k = 0; k < 3; k++) {
        *p++ = (char)('0' + v[k] / 10);
        *p++ = (char)('0' + v[k] % 10);
        *p++ = k < 2 ? ':' : 'Z';
    }
    *p = '\0';
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
