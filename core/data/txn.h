/* txn.h - transaction exports to cleaned per-customer purchase history.
 *
 * Workload: one streaming pass over an export of millions of invoice lines
 * (shop, CRM or ERP; CSV, CSV.gz or JSON Lines in the dialect the options
 * name), a few thousand to a few million
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

typedef enum { TXN_FORMAT_AUTO = 0, TXN_FORMAT_CSV = 1, TXN_FORMAT_JSONL = 2 } txn_format;

/* What a return (negative quantity or amount) does beyond being counted. */
typedef enum { TXN_RETURNS_COUNT = 0, TXN_RETURNS_SUBTRACT = 1 } txn_returns;

/* The data section of the config. Every field's zero value is its
 * default, so {invoice, ..., snapshot_day} initialisers keep working. */
typedef struct {
    /* Column names in the header (or 1-based positions "1", "2", ... with
     * no_header, or member names in JSON Lines). invoice NULL: a customer's
     * lines of one calendar day form one purchase. product NULL: not read.
     * quantity and price are NULL when amount is set. */
    const char *invoice, *customer_id, *date, *quantity, *price, *product;
    const char *cancel_prefix; /* invoices starting with it are cancellations */
    int32_t snapshot_day;      /* DATE_NONE: day after the last purchase */
    const char *amount;        /* a line's value, instead of quantity x price */
    txn_format format;         /* AUTO: JSON Lines by name (.jsonl[.gz]) or content */
    int separator;             /* 0 = ','; a byte, or CSV_SEP_WHITESPACE */
    int no_header;             /* the first line is data; columns by position */
    char decimal;              /* 0 = '.'; or ',' (thousands separators are refused) */
    const char *date_format;   /* NULL = auto (date.h) */
    int32_t zone_s;            /* the zone days are counted in, seconds east of UTC */
    txn_returns returns;
    /* privacy.pseudonymize_ids: the key (RFM_ID_KEY, NUL-ended) each
     * customer id is replaced with its pseudonym under (txn_pseudonym) as
     * it is read, before anything keeps it; NULL: ids as read. With a key,
     * example texts of dropped lines are withheld too. */
    const char *id_key;
    /* privacy.erasure_list: a line whose customer id (as kept: the
     * pseudonym with id_key) makes is_erased(erased, id, len) nonzero is
     * dropped as TXN_ERASED. NULL: none. */
    int (*is_erased)(void *erased, const char *id, size_t len);
    void *erased;
    /* Threads that read CSV (not JSON Lines, not header: false): 0 or 1
     * reads on the caller's thread; more cut the input into parts read
     * side by side and merged in file order, with the same tables, counts,
     * examples and errors as one thread (txn.c, "the same read on several
     * threads"). At most 16. is_erased is then called from every one of
     * those threads at once. The reader's own thread (a file or a descriptor:
     * csv_reads_apart), which reads, hashes and inflates, counts as one of
     * them: one fewer parses. */
    int threads;
    size_t window; /* with threads: bytes read per round, 0 = 16 MiB (tests use small ones) */
} txn_options;

/* Reason the options cannot be used ("columns.amount cannot ..."), or NULL:
 * contradictions between columns, a missing one, a bad date pattern. */
const char *txn_check_options(const txn_options *o, char *buf, size_t len);

/* Order matters: the first reason that applies is the one counted. */
typedef enum {
    TXN_MISSING_ID = 0,      /* empty customer id (or nan/null/none) */
    TXN_CANCELLED = 1,       /* invoice starts with the cancellation prefix */
    TXN_BAD_NUMBER = 2,      /* quantity, price or amount is not a number, or
                                the line's value is 0 by underflow or its
                                size is above TXN_SPEND_MAX */
    TXN_BAD_DATE = 3,        /* date in none of the accepted forms */
    TXN_NONPOS_QUANTITY = 4, /* quantity 0 (a negative one is a return) */
    TXN_NONPOS_PRICE = 5,    /* price <= 0 */
    TXN_ZERO_AMOUNT = 6,     /* amount 0 */
    TXN_DUPLICATE = 7,       /* same as an earlier line of the same invoice */
    TXN_AFTER_SNAPSHOT = 8,  /* on or after a configured snapshot day */
    TXN_RETURN = 9,          /* negative quantity or amount (netted with
                                TXN_RETURNS_SUBTRACT) */
    TXN_ERASED = 10,         /* a customer of the erasure list (txn_options.is_erased):
                                checked after the others, on lines otherwise used
                                or returns */
    TXN_NREASONS = 11
} txn_reason;

/* Largest spend of one line (quantity * price): sums of up to 2^32 such
 * lines stay finite, so no feature is ever infinite or NaN. */
#define TXN_SPEND_MAX 1e298

#define TXN_EXAMPLES 5
#define TXN_EXAMPLE_TEXT 200 /* bytes kept of a reason's first example line */

typedef struct {
    uint64_t lines; /* data lines (records after the header) */
    uint64_t used;
    uint64_t count[TXN_NREASONS];
    uint64_t examples[TXN_NREASONS][TXN_EXAMPLES]; /* file line numbers, 0 = none */
    uint64_t bytes;                                /* raw bytes read */
    char sha256[65];                               /* of the raw file */
    /* The first example of each reason as read: its fields joined by the
     * separator (quotes removed), cut to TXN_EXAMPLE_TEXT bytes. */
    char example_text[TXN_NREASONS][TXN_EXAMPLE_TEXT + 1];
    /* With txn_options.threads: parts read side by side, and windows read
     * again on one thread (a cut inside a quoted field that holds a line
     * end, or an error, which one thread then words). */
    uint64_t parts, rereads;
} txn_report;

/* The reason that dropped the most lines (the lowest on a tie), or
 * TXN_NREASONS when none did. */
txn_reason txn_leading_reason(const txn_report *rep);

typedef struct txn_data txn_data;

/* Progress: called about every million lines with lines read and raw bytes
 * consumed of total (total 0 when unknown). May be NULL. */
typedef void (*txn_progress_fn)(uint64_t lines, uint64_t bytes, uint64_t total, void *user);

/* A line's customer id normalised (pointing into the caller's text) and
 * its spend, quantity x price (with an amount: the amount). */
typedef struct {
    const char *cid;
    size_t cidlen;
    double spend;
} txn_line;

/* The per-line cleaning checks, in the order of txn_reason: missing id,
 * cancelled (invoice NULL: none; cancel_prefix of cplen bytes, 0 for none),
 * bad number (numbers_ok 0, or a spend of 0 or above TXN_SPEND_MAX), bad
 * date (day DATE_NONE), zero quantity (TXN_ZERO_AMOUNT when amount is set:
 * qty is then the amount and price 1), non-positive price. Returns the
 * first reason that applies, or TXN_NREASONS when the line is usable; *out
 * is filled either way. A negative spend is a return (TXN_RETURN), which
 * callers decide after the checks that need context (repeats, snapshot).
 * Shared by txn_read and the event store (state.h), so both clean alike.
 * Pure. */
txn_reason txn_classify(const char *cid, size_t cidlen, const char *invoice, size_t invlen,
                        const char *cancel_prefix, size_t cplen, int numbers_ok, double qty,
                        double price, int amount, int32_t day, txn_line *out);

/* Pseudonymous ids (docs/security.md): the HMAC-SHA256 under key (keylen
 * bytes) of the id normalised as txn_read keeps it (blanks around it
 * trimmed; "17850.0" is "17850"), its first 128 bits as 32 lower-case hex
 * digits into out (33 bytes with the NUL). Returns 32, or 0 for a missing
 * id (empty, nan, null, none), out then "". Pure. */
#define TXN_PSEUDONYM_LEN 32
size_t txn_pseudonym(const char *key, size_t keylen, const char *id, size_t len, char out[33]);
/* Whether the len bytes at s are a pseudonym's form: exactly 32 lower-case
 * hex digits. rfm-serve takes such a request id as a pseudonym, any other
 * as a clear id to hash. */
int txn_is_pseudonym(const char *s, size_t len);

/* What a clear customer id looks like, for the trainer's warning when ids
 * are not pseudonymised: an e-mail address (local@domain.tld), a phone
 * number (8 to 15 digits with a leading + or separators among + - . ( )
 * and blanks), or neither. A plain run of digits is an account number. */
typedef enum { TXN_ID_OTHER = 0, TXN_ID_EMAIL = 1, TXN_ID_PHONE = 2 } txn_id_kind;
txn_id_kind txn_id_looks_like(const char *id);

/* Key of a purchase within a customer: the invoice number's hash, or with
 * no invoice (invoice NULL) the customer's calendar day. Two lines of a
 * customer are one invoice when their keys are equal. */
uint64_t txn_invoice_key(const char *invoice, size_t invlen, const char *cid, size_t cidlen,
                         int32_t day);

/* Stable name of a reason ("missing_customer_id", ...). */
const char *txn_reason_name(txn_reason r);

/* Read, clean and aggregate a transaction file (or an open reader, which
 * the caller still closes; its separator is set from the options). On
 * success *out is new (txn_free) and rep is filled. A malformed file or a
 * missing column fails with RFM_EPARSE or RFM_EINVAL naming file, line and
 * column, and so does a number with a thousands separator or a date that
 * auto cannot read without guessing day and month; a file with no usable
 * line fails with RFM_EDATA, rep filled, the message naming the leading
 * reason, one example line and its text. */
rfm_status txn_read(const char *path, const txn_options *opt, txn_progress_fn progress, void *user,
                    txn_data **out, txn_report *rep, char *err, size_t errlen);
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
    int active;       /* bought before the as-of day; else all below are 0 */
    double recency;   /* days from the last purchase to the as-of day */
    double frequency; /* distinct invoices */
    double monetary;  /* total spend (sum of quantity * price) */
    double tenure;    /* days from the first purchase to the as-of day */
    double aov;       /* average order value: monetary / frequency */
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

/* The features of one customer as of asof from its aggregates before it:
 * first and last purchase day, ndays >= 1 distinct purchase days, bought
 * the money of those days, first_spend that of the first day, returns the
 * netted returns (<= 0; 0 without); f->frequency (invoices) and the future_
 * fields are the caller's. Sets every other field and active. Shared by
 * txn_features_asof and the state store, so both compute alike. */
void txn_features_finish(txn_features *f, int32_t asof, double first, double last, double ndays,
                         double bought, double first_spend, double returns);

/* Every used purchase, for a store that continues from a training run
 * (state.h): each customer-day with its spend, then each customer's
 * invoices with their txn_invoice_key and day (the earliest line). cust is
 * the sorted customer index. A callback returning nonzero stops the walk,
 * and txn_each_purchase returns -1; else 0. */
typedef int (*txn_day_fn)(void *user, size_t cust, int32_t day, double spend);
typedef int (*txn_invoice_fn)(void *user, size_t cust, uint64_t invoice_hash, int32_t day);
int txn_each_purchase(const txn_data *d, txn_day_fn day_fn, txn_invoice_fn inv_fn, void *user);

#endif
