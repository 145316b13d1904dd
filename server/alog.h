/* alog.h - the access log: lines gathered per thread, written by one
 * background thread.
 *
 * A request's line costs a copy into its thread's buffer under a lock no
 * other request thread takes; the writer swaps each buffer for an empty
 * one at most every 100 ms (sooner when one is half full) and hands it to
 * the kernel in large writes, at line boundaries. Memory is bounded: two
 * buffers of ALOG_THREAD_BYTES per thread that logs. When the file cannot
 * take the lines (a stalled disk, a pipe nobody reads), the writer waits
 * and the request threads do not: a line that finds its buffer full is
 * dropped and counted. alog_close writes what is left, so that no line of
 * a request completed before it is lost on SIGTERM (a pipe still stalled
 * then gets ALOG_CLOSE_WAIT_MS; its remaining lines are counted dropped).
 *
 * Lines of one thread keep their order; lines of different threads are in
 * the order their buffers were written (within the 100 ms of a flush).
 */
#ifndef RFM_ALOG_H
#define RFM_ALOG_H

#include <stddef.h>
#include <stdio.h>

#include "status.h"

#define ALOG_THREAD_BYTES (256 * 1024)
#define ALOG_FLUSH_MS 100
#define ALOG_CLOSE_WAIT_MS 2000

typedef struct alog alog;

/* Counts since alog_open. lines: handed to alog_write; written: in the
 * file; dropped: lost to a full buffer or a file that refused them. */
typedef struct {
    unsigned long long lines, written, dropped, write_errors;
} alog_counts;

/* A log writing to fd (not closed by alog_close). Starts the writer. */
rfm_status alog_open(int fd, alog **out, char *err, size_t errlen);
/* One whole line (ending in '\n', at most 4096 bytes) into the calling
 * thread's buffer; never blocks on the file. Thread-safe. */
void alog_write(alog *l, const char *line, size_t n);
alog_counts alog_get_counts(alog *l);
/* The counts as Prometheus text (rfm_access_log_*). */
void alog_metrics(alog *l, FILE *f);
/* Writes every line still buffered, stops the writer and frees l; returns
 * the final counts. Call once no thread calls alog_write any more. NULL:
 * zero counts. */
alog_counts alog_close(alog *l);

#endif
