/* source.h - where transactions come from: a file, standard input or a
 * database query, all read as CSV by one reader (csv.h).
 *
 * A source is named by one string, data.transactions or --transactions:
 *   path/to/export.csv[.gz]      a file (plain or gzip, known by its magic)
 *   -                            standard input (plain or gzip)
 *   postgresql://user@host/db    PostgreSQL (also postgres://; any libpq
 *                                URI parameters), with data.query
 *   sqlite:///path/to/file.db    SQLite (the path follows sqlite://, so
 *                                three slashes for an absolute path), with
 *                                data.query
 * A database query's result is streamed as CSV text with a header of the
 * result's column names, so data.columns maps its columns as for a file,
 * and memory stays flat: PostgreSQL by COPY (query) TO STDOUT, SQLite by
 * stepping the statement on the reader thread. The sha256 the reader keeps
 * is of those streamed bytes.
 *
 * Passwords never go in a source string (it is recorded in the manifest
 * and printed): libpq takes them from PGPASSWORD or ~/.pgpass.
 * Thread safety: a source is used by one reader.
 */
#ifndef RFM_SOURCE_H
#define RFM_SOURCE_H

#include <stddef.h>

#include "csv.h"
#include "status.h"

typedef enum {
    SOURCE_FILE = 0,
    SOURCE_STDIN = 1,
    SOURCE_POSTGRESQL = 2,
    SOURCE_SQLITE = 3
} source_kind;

source_kind source_kind_of(const char *spec);

/* Reason spec and query cannot be used together, or NULL; *key is set to
 * "transactions" or "query", the one at fault. A database URL needs a
 * query and must not hold a password; a file or "-" takes no query. */
const char *source_check(const char *spec, const char *query, const char **key, char *buf,
                         size_t len);

/* Open spec as a CSV reader (csv_close). The query is used only for a
 * database URL. Failures (connection, authentication, SQL) name the URL
 * and give the server's message: RFM_EINVAL for a spec or query that
 * cannot work (source_check's reasons, SQL errors), RFM_EIO otherwise.
 * A query's run-time error (one found while streaming) comes from
 * csv_next. */
rfm_status source_open(const char *spec, const char *query, csv_reader **out, char *err,
                       size_t errlen);

/* The database sources, behind source_open. */
rfm_status source_pg_open(const char *url, const char *query, csv_reader **out, char *err,
                          size_t errlen);
rfm_status source_sqlite_open(const char *url, const char *query, csv_reader **out, char *err,
                              size_t errlen);

#endif
