/* txn.h - transaction exports to cleaned per-customer purchase history.
 *
 * Workload: one streaming pass over an export of millions of invoice lines
 * (shop, CRM or ERP; CSV or CSV.gz), a few thousand to a few million
 * customers. Memory grows with customers, their invoices and their purchase
 * days, never with lines: each line is folded into a (customer, day) spend
 * table and a (customer, invoice) set as it is read.
 *
 * Cleaning: every data line is either used or counted under exactly one
 * reason, checked in the order of txn_reason. A repeated line is one equal,
 * field for field, to an earlier line of the same invoice; exports write an
 * invoice's lines together, so the set of lines seen is kept per invoice.
 *
 * Time is in whole days (date.h). The snapshot day is the first day NOT
 * observed: by default the day after the last used purchase. "As of" a day
 * means using purchases strictly before it.
 *
 * Thread safety: a txn_data is read-only after txn_read returns.
 */
#ifndef RFM_TXN_H
#define RFM_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "csv.h"
#include "status.h"

typedef struct {
    /* Column names in the header. product may be NULL (not read). */
    const char *invoice, *customer_id, *date, *quantity, *price, *product;
    const char *cancel_prefix; /* invoices starting with it are cancellations */
    int32_t snapshot_day;      /* DATE_NONE: day after the last purchase */
} txn_options;

/* Order matters: the first reason that applies is the one counted. */
typedef enum {
    TXN_MISSING_ID = 0,     /* empty customer id (or nan/null/none) */
    TXN_CANCELLED = 1,      /* invoice starts with the cancellation prefix */
    TXN_BAD_NUMBER = 2,     /* quantity or price is not a number, or their
                               positive product is 0 (underflow) or above
                               TXN_SPEND_MAX */
    TXN_BAD_DATE = 3,       /* date in none of the accepted forms */
    TXN_NONPOS_QUANTITY = 4,
    TXN_NONPOS_PRICE = 5,
    TXN_DUPLICATE = 6,      /* same as an earlier line of the same invoice */
    TXN_AFTER_SNAPSHOT = 7, /* on or after a configured snapshot day */
    TXN_NREASONS = 8
} txn_reason;

/* Largest spend of one line (quantity * price): sums of up to 2^32 such
 * lines stay finite, so no feature is ever infinite or NaN. */
#define TXN_SPEND_MAX 1e298

#define TXN_EXAMPLES 5

typedef struct {
    uint64_t lines; /* data lines (records after the header) */
    uint64_t used;
    uint64_t count[TXN_NREASONS];
    uint64_t examples[TXN_NREASONS][TXN_EXAMPLES]; /* file line numbers, 0 = none */
    uint64_t bytes;                                /* raw bytes read */
    char sha256[65];                               /* of the raw file */
} txn_report;

typedef struct txn_data txn_data;

/* Progress: called about every million lines with lines read and raw bytes
 * consumed of total (total 0 when unknown). May be NULL. */
typedef void (*txn_progress_fn)(uint64_t lines, uint64_t bytes, uint64_t total, void *user);

/* A line that passed the per-line checks: its customer id normalised
 * (pointing into the caller's text) and its spend, quantity * price. */
typedef struct {
    const char *cid;
    size_t cidlen;
    double spend;
} txn_line;

/* The per-line cleaning checks, in the order of txn_reason: missing id,
 * cancelled (cancel_prefix may be NULL or ""), bad number (numbers_ok 0,
 * a value not finite, or a positive spend of 0 or above TXN_SPEND_MAX), bad
 * date (day DATE_NONE), non-positive quantity, non-positive price. Returns
 * the first reason that applies, or TXN_NREASONS when the line is usable,
 * then filling *out. Repeats and the snapshot need context: callers check
 * them after. Shared by txn_read and the event store (state.h), so both
 * clean alike. Pure. */
txn_reason txn_classify(const char *cid, size_t cidlen, const char *invoice, size_t invlen,
                        const char *cancel_prefix, int numbers_ok, double qty, double price,
                        int32_t day, txn_line *out);

/* Key of an invoice number within a customer: two lines of a customer are
 * one invoice when their invoice hashes are equal. */
uint64_t txn_invoice_hash(const char *invoice, size_t len);

/* Stable name of a reason ("missing_customer_id", ...). */
const char *txn_reason_name(txn_reason r);

/* Read, clean and aggregate a transaction file (or an open reader, which
 * the caller still closes). On success *out is new (txn_free) and rep is
 * filled. A malformed file or a missing column fails with RFM_EPARSE or
 * RFM_EINVAL naming file, line and column; a file with no usable line
 * fails with RFM_EDATA. */
rfm_status txn_read(const char *path, const txn_options *opt, txn_progress_fn progress,
                    void *user, txn_data **out, txn_report *rep, char *err, size_t errlen);
rfm_status txn_read_csv(csv_reader *csv, const txn_options *opt, txn_progress_fn progress,
                        void *user, txn_data **out, txn_report *rep, char *err, size_t errlen);
void txn_free(txn_data *d);

/* Customers, sorted by id (byte order). */
size_t txn_ncustomers(const txn_data *d);
const char *txn_customer_id(const txn_data *d, size_t i);
/* Index of a customer id, or -1. */
long txn_find(const txn_data *d, const char *id);
int32_t txn_first_day(const txn_data *d); /* first used purchase */
int32_t txn_last_day(const txn_data *d);  /* last used purchase */
int32_t txn_snapshot_day(const txn_data *d);

/* Products (when opt.product was set): ids sorted by byte order, and each
 * customer's distinct products as a CSR row: product indices ascending, the
 * number of used lines of each, and how many of those lines fall on the
 * customer's last purchase day (their last basket). */
size_t txn_nproducts(const txn_data *d);
const char *txn_product_id(const txn_data *d, size_t j);
void txn_customer_products(const txn_data *d, size_t i, const uint32_t **products,
                           const uint32_t **counts, const uint32_t **last_counts, size_t *n);

typedef struct {
    int active;         /* bought before the as-of day; else all below are 0 */
    double recency;     /* days from the last purchase to the as-of day */
    double frequency;   /* distinct invoices */
    double monetary;    /* total spend (sum of quantity * price) */
    double tenure;      /* days from the first purchase to the as-of day */
    double aov;         /* average order value: monetary / frequency */
    /* BG/NBD summary in lifetimes' convention, daily periods, observation
     * ending on the last observed day (as-of day - 1): */
    double bg_x;          /* repeat purchases: distinct purchase days - 1 */
    double bg_t_x;        /* days from first to last purchase */
    double bg_T;          /* days from first purchase to the last observed day */
    double bg_mean_spend; /* mean spend of the repeat purchase days; 0 if none */
    /* What happened from the as-of day to the end of the data: */
    double future_days;  /* distinct purchase days */
    double future_spend; /* total spend */
} txn_features;

/* Features of every customer (txn_ncustomers entries in feats, same order)
 * as of asof_day. Pure function of d; thread-safe. */
void txn_features_asof(const txn_data *d, int32_t asof_day, txn_features *feats);

/* Every used purchase, for a store that continues from a training run
 * (state.h): each customer-day with its spend, then each customer's
 * invoices with their txn_invoice_hash and day (the earliest line). cust is
 * the sorted customer index. A callback returning nonzero stops the walk,
 * and txn_each_purchase returns -1; else 0. */
typedef int (*txn_day_fn)(void *user, size_t cust, int32_t day, double spend);
typedef int (*txn_invoice_fn)(void *user, size_t cust, uint64_t invoice_hash, int32_t day);
int txn_each_purchase(const txn_data *d, txn_day_fn day_fn, txn_invoice_fn inv_fn, void *user);

#endif
