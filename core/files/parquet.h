/* parquet.h - a small Apache Parquet writer for flat tables.
 *
 * What rfm-score needs and no more: a flat schema of UTF-8 strings
 * (BYTE_ARRAY, converted type UTF8), int64 and double columns, each
 * REQUIRED or OPTIONAL (nulls); rows buffered into row groups of a fixed
 * number of rows (memory: one row group, whatever the table's length);
 * one data page (v1) per column chunk, dictionary-encoded (a PLAIN
 * dictionary page, RLE_DICTIONARY indices) when the chunk has at most
 * half as many distinct values as values and at most 65536 of them, PLAIN
 * otherwise; every page compressed with zstd (libzstd); footer metadata
 * in the Thrift compact protocol. Not a goal: nested or repeated columns,
 * statistics, page indexes, bloom filters, other codecs.
 *
 * The format: https://parquet.apache.org/docs/file-format/ (parquet.thrift).
 * Thread safety: one writer per thread.
 */
#ifndef RFM_PARQUET_H
#define RFM_PARQUET_H

#include <stdint.h>
#include <stdio.h>

#include "status.h"

typedef enum { PARQUET_STRING = 0, PARQUET_INT64 = 1, PARQUET_DOUBLE = 2 } parquet_type;

typedef struct {
    const char *name;
    parquet_type type;
    int optional; /* nulls allowed */
} parquet_column;

/* One cell: s (len bytes, need not end in NUL) for strings, i for int64,
 * d for doubles; is_null for a null of an optional column. */
typedef struct {
    const char *s;
    size_t len;
    int64_t i;
    double d;
    int is_null;
} parquet_value;

typedef struct parquet_writer parquet_writer;

/* Start a file on f (written from its current position, which must be 0;
 * the caller keeps f open and closes it after parquet_finish). cols is
 * copied. group_rows: rows per row group (0: 65536). zstd_level: 1..19.
 * RFM_EINVAL for an empty schema, a duplicate or empty name. */
rfm_status parquet_open(FILE *f, const parquet_column *cols, size_t ncols, size_t group_rows,
                        int zstd_level, parquet_writer **out, char *err, size_t errlen);

/* Append one row of ncols cells (copied). RFM_EINVAL for a null in a
 * REQUIRED column or a string over 2 GiB; RFM_EIO when a row group could not
 * be written; RFM_ENOMEM. After a failure only parquet_free is allowed. */
rfm_status parquet_write_row(parquet_writer *w, const parquet_value *row, char *err, size_t errlen);

/* Write the last row group and the footer. w stays to be freed. */
rfm_status parquet_finish(parquet_writer *w, char *err, size_t errlen);

void parquet_free(parquet_writer *w);

#endif
