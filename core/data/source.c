/* source.c - a source string to a CSV reader (source.h). */
#include "source.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

source_kind source_kind_of(const char *spec)
{
    if (strcmp(spec, "-") == 0)
        return SOURCE_STDIN;
    if (starts(spec, "postgresql://") || starts(spec, "postgres://"))
        return SOURCE_POSTGRESQL;
    if (starts(spec, "sqlite://"))
        return SOURCE_SQLITE;
    return SOURCE_FILE;
}

/* A password in the user part (user:secret@host) or as a URI parameter. */
static int has_password(const char *url)
{
    const char *p = strstr(url, "://") + 3;
    size_t auth = strcspn(p, "/?");
    const char *at = memchr(p, '@', auth);
    if (at && memchr(p, ':', (size_t)(at - p)))
        return 1;
    const char *q = strchr(p, '?');
    while (q) {
        if (starts(q + 1, "password="))
            return 1;
        q = strchr(q + 1, '&');
    }
    return 0;
}

const char *source_check(const char *spec, const char *query, const char **key, char *buf,
                         size_t len)
{
    source_kind k = source_kind_of(spec);
    *key = "transactions";
    if (k == SOURCE_FILE || k == SOURCE_STDIN) {
        if (query) {
            *key = "query";
            snprintf(buf, len,
                     "is only for a database source: data.transactions must then be "
                     "a postgresql:// or sqlite:// URL");
            return buf;
        }
        if (!*spec) {
            snprintf(buf, len, "must not be empty");
            return buf;
        }
        return NULL;
    }
    if (k == SOURCE_POSTGRESQL && has_password(spec)) {
        snprintf(buf, len,
                 "must not hold a password (it is recorded and printed): set "
                 "PGPASSWORD or use ~/.pgpass");
        return buf;
    }
    if (k == SOURCE_SQLITE && !spec[strlen("sqlite://")]) {
        snprintf(buf, len, "names no file: sqlite:///path/to/file.db");
        return buf;
    }
    if (!query || !query[strspn(query, " \t\r\n")]) {
        *key = "query";
        snprintf(buf, len,
                 "is required with a database URL: the SELECT whose rows are the "
                 "transactions");
        return buf;
    }
    return NULL;
}

rfm_status source_open(const char *spec, const char *query, csv_reader **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    source_kind k = source_kind_of(spec);
    char why[256];
    const char *key;
    if (source_check(spec, k == SOURCE_POSTGRESQL || k == SOURCE_SQLITE ? query : NULL, &key, why,
                     sizeof why))
        return strcmp(key, "query") == 0
                   ? rfm_fail(err, errlen, RFM_EINVAL, "%s: data.query %s", spec, why)
                   : rfm_fail(err, errlen, RFM_EINVAL, "transactions source: %s", why);
    switch (k) {
    case SOURCE_STDIN: return csv_open_fd(STDIN_FILENO, "stdin", out, err, errlen);
    case SOURCE_POSTGRESQL: return source_pg_open(spec, query, out, err, errlen);
    case SOURCE_SQLITE: return source_sqlite_open(spec, query, out, err, errlen);
    default: return csv_open(spec, out, err, errlen);
    }
}
