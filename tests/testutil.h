/* testutil.h - shared helpers for the cmocka tests.
 *
 * Numerical tests state a tolerance and print the largest difference they
 * saw, so a failure (or a near miss) is visible in the log.
 */
#ifndef RFM_TESTUTIL_H
#define RFM_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>

#include "date.h"
#include "txn.h"

/* Assert |a - b| <= tol, printing both values on failure. */
#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b), t_ = (tol);                                                     \
        if (!(fabs(a_ - b_) <= t_))                                                                \
            fail_msg("%s = %.17g, %s = %.17g, |diff| %.3g > tol %.3g", #a, a_, #b, b_,             \
                     fabs(a_ - b_), t_);                                                           \
    } while (0)

/* Report the largest difference seen by a comparison loop. */
static inline void report_maxdiff(const char *what, double maxdiff, double tol)
{
    printf("    %s: max |diff| %.3g (tol %.3g)\n", what, maxdiff, tol);
    assert_true(maxdiff <= tol);
}

/* Write text to a fresh temporary file; returns its path in a static-size
 * buffer the caller provides (at least 64 bytes). */
static inline void write_temp(char *path, const char *suffix, const char *text, size_t len)
{
    snprintf(path, 64, "/tmp/rfmtest_XXXXXX%s", suffix);
    int fd = mkstemps(path, (int)__builtin_strlen(suffix));
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* The txn_options of the Online Retail header, config/rfm.yaml's default
 * columns (InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice,
 * CustomerID; invoices starting with C are cancellations): an initializer,
 * for a static const or a local copy to change. */
#define TXN_RETAIL_OPTIONS                                                                         \
    {.invoice = "InvoiceNo",                                                                       \
     .customer_id = "CustomerID",                                                                  \
     .date = "InvoiceDate",                                                                        \
     .quantity = "Quantity",                                                                       \
     .price = "UnitPrice",                                                                         \
     .product = "StockCode",                                                                       \
     .cancel_prefix = "C",                                                                         \
     .snapshot_day = DATE_NONE}

/* A growable text buffer: start from {0}, append with tbuf_put; s is
 * NUL-terminated once anything was put, and the caller frees it. */
typedef struct {
    char *s;
    size_t n, cap;
} tbuf;

/* Append printf-style text to b, growing it; a failure fails the test. */
static inline void tbuf_put(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void tbuf_put(tbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        assert_true(k >= 0);
        if (b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        b->cap = 2 * b->cap + (size_t)k + 64;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
}

/* Transactions from CSV text with the Online Retail header (InvoiceNo,
 * StockCode, Quantity, InvoiceDate, UnitPrice, CustomerID; invoices
 * starting with C are cancellations); a failure fails the test. The
 * caller frees the result with txn_free. */
static inline txn_data *txn_from_text(const char *csv)
{
    txn_options o = TXN_RETAIL_OPTIONS;
    char err[RFM_ERRLEN];
    csv_reader *r;
    txn_data *d = NULL;
    txn_report rep;
    assert_int_equal(csv_open_mem(csv, strlen(csv), "t.csv", &r, err, sizeof err), RFM_OK);
    if (txn_read_csv(r, &o, NULL, NULL, &d, &rep, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    csv_close(r);
    return d;
}

/* Run a shell command with its stderr kept in dir/stderr.txt and copied to
 * out (cap bytes); returns its exit status, -1 when it did not exit. */
static inline int run_in(const char *dir, const char *cmd, char *out, size_t cap)
{
    char full[4096];
    snprintf(full, sizeof full, "%s 2>%s/stderr.txt >/dev/null", cmd, dir);
    int rc = system(full);
    snprintf(full, sizeof full, "%s/stderr.txt", dir);
    FILE *f = fopen(full, "rb");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

#endif
