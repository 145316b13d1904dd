/* export.h - a table written row by row to CSV, gzip CSV, JSON Lines or
 * Parquet, the format chosen by the file name's ending.
 *
 *   .csv       RFC 4180, header line, "\n" line ends; a null is an empty field
 *   .csv.gz    the same through zlib (gzip, level 1)
 *   .jsonl     one JSON object per line, keys in column order; a null is null
 *   .parquet   parquet.h (zstd, dictionary where it pays)
 *
 * Doubles are written as numfmt_double's shortest text (CSV, JSON Lines)
 * or as the IEEE bits (Parquet), so every format holds the same value; a
 * non-finite double is written as a null. The rows go to "PATH.tmp-PID"
 * beside PATH, which export_commit flushes, fsyncs and renames over PATH:
 * a failed or killed run never leaves a half-written PATH. Memory: a write
 * buffer, or one Parquet row group. One writer per thread.
 */
#ifndef RFM_EXPORT_H
#define RFM_EXPORT_H

#include "parquet.h"
#include "status.h"

typedef enum {
    EXPORT_CSV = 0,
    EXPORT_CSV_GZ = 1,
    EXPORT_JSONL = 2,
    EXPORT_PARQUET = 3
} export_format;

typedef struct export_writer export_writer;

/* The format of path by its ending (case-sensitive), or RFM_EINVAL naming
 * the endings known. */
rfm_status export_format_of(const char *path, export_format *out, char *err, size_t errlen);

/* Start writing path with the columns cols (copied; parquet_column's
 * optional is only used by Parquet). RFM_EINVAL for an unknown ending,
 * RFM_EIO when the temporary file cannot be created. */
rfm_status export_open(const char *path, const parquet_column *cols, size_t ncols,
                       export_writer **out, char *err, size_t errlen);

/* Where a stream's bytes go (export_open_sink): len bytes at buf, taken
 * (copied) before returning; an error status stops the export. */
typedef rfm_status (*export_sink)(void *user, const char *buf, size_t len, char *err,
                                  size_t errlen);

/* Start a table of format fmt (EXPORT_CSV or EXPORT_JSONL, else
 * RFM_EINVAL) whose bytes go to sink, in pieces of at most 1 MiB, instead
 * of a file: when the buffer fills, at export_flush and at export_commit
 * (which then only frees w). The CSV header is buffered at once. For a
 * download streamed as it is produced (rfm-serve's GET
 * /exports/customers.csv). */
rfm_status export_open_sink(export_format fmt, const parquet_column *cols, size_t ncols,
                            export_sink sink, void *user, export_writer **out, char *err,
                            size_t errlen);
/* Rows formatted apart from the writer, e.g. on another thread: a part
 * takes export_row like its writer `like` (same format and columns, no
 * header) and keeps the text in memory, growing as needed, until
 * export_splice writes it through the writer, in the order the parts are
 * spliced. Text formats only (Parquet: RFM_EINVAL). A part is used by one
 * thread at a time and freed with export_part_free. */
rfm_status export_open_part(const export_writer *like, export_writer **out, char *err,
                            size_t errlen);
/* w's buffered bytes, then part's, written out; part is left empty. */
rfm_status export_splice(export_writer *w, export_writer *part, char *err, size_t errlen);
void export_part_free(export_writer *part);
/* Hand the bytes buffered so far to the sink (nothing for a file). */
rfm_status export_flush(export_writer *w, char *err, size_t errlen);

/* One row of ncols cells (parquet_value: s/len, i, d, is_null). */
rfm_status export_row(export_writer *w, const parquet_value *row, char *err, size_t errlen);

/* Finish the file and move it over path; frees w whatever happens (the
 * temporary file is removed on failure). */
rfm_status export_commit(export_writer *w, char *err, size_t errlen);

/* Drop the temporary file and free w (NULL is fine). */
void export_abort(export_writer *w);

#endif
