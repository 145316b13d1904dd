/* csv.h - streaming RFC 4180 reader for plain or gzip-compressed input:
 * a file, a file descriptor (standard input) or any byte producer (a
 * database stream, core/data/source.h).
 *
 * Workload: transaction exports of millions of lines read once, front to
 * back. The reader holds one block of input and one record at a time, so
 * memory does not grow with the file. Quoted fields may hold commas, doubled
 * quotes and newlines; CRLF and LF line ends; a UTF-8 byte order mark at the
 * start is skipped; gzip is detected by its magic bytes, not the file name.
 * Blank lines are skipped. The sha256 of the raw file bytes (as stored on
 * disk or as produced, compressed or not) is computed on the way, for the
 * manifest.
 *
 * The separator is ',' unless csv_set_separator says otherwise: any other
 * byte (';', '\t', '|'), runs of blanks (spaces and tabs; blanks at the
 * start and end of a line are then not fields), or none (each line one
 * field, quotes not special: JSON Lines).
 *
 * Non-goals: encodings other than UTF-8/ASCII; multi-byte separators.
 * Thread safety: one reader per thread.
 */
#ifndef RFM_CSV_H
#define RFM_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* The fields of a record lie back to back in one buffer, each followed by
 * its NUL, so the bytes from fields[0].s to the end of the last field are
 * the whole record (used to hash lines cheaply). */
typedef struct {
    const char *s; /* NUL-terminated, unquoted and unescaped */
    size_t len;
} csv_field;

typedef struct csv_reader csv_reader;

/* Open path (plain or gzip). name for messages is the path. */
rfm_status csv_open(const char *path, csv_reader **out, char *err, size_t errlen);
/* Read descriptor fd (standard input, a pipe); name is for messages. The
 * reader does not close fd. */
rfm_status csv_open_fd(int fd, const char *name, csv_reader **out, char *err, size_t errlen);

/* A byte producer: fill buf with up to cap bytes and set *got, 0 once the
 * input has ended. Fewer than cap may come at any time, except that the
 * first call must give the first two bytes when there are two (the gzip
 * magic is looked for there). On failure return a status with a whole
 * message in err (naming the source). Called on the reader's own thread,
 * one call at a time. */
typedef rfm_status (*csv_read_fn)(void *ctx, uint8_t *buf, size_t cap, size_t *got, char *err,
                                  size_t errlen);
/* Releases ctx; called once by csv_close (or by csv_open_source when it
 * fails). May be NULL. */
typedef void (*csv_close_fn)(void *ctx);

/* Read what read produces (plain or gzip), on a reader thread like a file.
 * The reader owns ctx from this call on, even when it fails. */
rfm_status csv_open_source(csv_read_fn read, csv_close_fn close, void *ctx, const char *name,
                           csv_reader **out, char *err, size_t errlen);

/* Read from memory (not copied; must outlive the reader). For tests and
 * request bodies; gzip is detected the same way. */
rfm_status csv_open_mem(const void *data, size_t len, const char *name, csv_reader **out, char *err,
                        size_t errlen);

#define CSV_SEP_WHITESPACE 256 /* runs of spaces and tabs */
#define CSV_SEP_LINES 257      /* no separator, no quoting: a line is one field */

/* Set the separator: a byte other than '"', CR, LF and NUL, or one of the
 * two above. Takes effect from the next record (so it may follow a peek
 * or a first record read another way). Returns 0 for a byte it refuses. */
int csv_set_separator(csv_reader *r, int sep);

/* The decompressed bytes at the reading position (after a byte order mark)
 * up to the end of the current block, without consuming them; *n is 0 at
 * the end of input. For guessing the format from the content. */
rfm_status csv_peek(csv_reader *r, const uint8_t **p, size_t *n, char *err, size_t errlen);

/* Read the next record. On success *fields points to *n fields owned by the
 * reader, valid until the next call; at end of input *n is 0. A malformed
 * record (unterminated quote, text after a closing quote, a NUL byte,
 * truncated gzip) returns RFM_EPARSE with "name:line:column: reason". */
rfm_status csv_next(csv_reader *r, const csv_field **fields, size_t *n, char *err, size_t errlen);

/* Physical line number (1-based) on which the last record returned starts. */
uint64_t csv_line(const csv_reader *r);
/* 1-based column (byte offset in its line, plus one) where field i of the
 * last record starts, for error messages. */
uint64_t csv_column(const csv_reader *r, size_t i);
/* Records returned so far (the header counts as one), and of them those
 * the reader thread had already cut into fields (plain lines of a
 * separated dialect read from a file or descriptor; csv.c index_block). */
uint64_t csv_records(const csv_reader *r);
uint64_t csv_indexed(const csv_reader *r);
/* Raw bytes consumed so far, and the file's total size if known (else 0). */
uint64_t csv_bytes(const csv_reader *r);
uint64_t csv_size(const csv_reader *r);
/* The sha256 of every raw byte; valid once csv_next has reported the end. */
void csv_sha256(const csv_reader *r, uint8_t digest[32]);
/* No sha256 of the input (csv_sha256 then gives the hash of nothing), for
 * a reader of a file whose checksum is checked elsewhere; before the first
 * csv_next. */
void csv_skip_sha256(csv_reader *r);
const char *csv_name(const csv_reader *r);
void csv_close(csv_reader *r);

/* Splitting one input among threads (txn.c): the caller takes the
 * decompressed bytes after the records read so far with csv_take, cuts them
 * into pieces and parses each piece with a reader of its own. */

/* Move up to cap decompressed bytes at the reading position into buf; *got
 * is less than cap only at the end of input (0 once it has ended). Errors
 * as csv_next (a truncated gzip names csv_set_line's line). */
rfm_status csv_take(csv_reader *r, uint8_t *buf, size_t cap, size_t *got, char *err, size_t errlen);
/* Parse len bytes of memory in place (not copied, not gzip, no byte order
 * mark), with separator sep (csv_set_separator) and lines numbered from
 * first_line. partial: the bytes are a piece of a longer input, so a record
 * that reaches their end is not returned: csv_next reports the end (*n 0)
 * and csv_incomplete is then 1, csv_offset and csv_line naming where that
 * record starts. No sha256 is taken. */
rfm_status csv_open_view(const void *data, size_t len, const char *name, int sep,
                         uint64_t first_line, int partial, csv_reader **out, char *err,
                         size_t errlen);
int csv_incomplete(const csv_reader *r);
/* 1 when the input is read (hashed, inflated) on the reader's own thread: a
 * file or a descriptor; memory input is read on the caller's. */
int csv_reads_apart(const csv_reader *r);
/* Offset in the decompressed input (of a view: in its bytes) where the last
 * record returned starts. */
uint64_t csv_offset(const csv_reader *r);
/* The physical line the next record starts on, and setting it. */
uint64_t csv_line_next(const csv_reader *r);
void csv_set_line(csv_reader *r, uint64_t line);

/* Index of the field equal to name in a header record, or -1. */
int csv_find(const csv_field *fields, size_t n, const char *name);

#endif
