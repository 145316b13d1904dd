/* bulk.h - every customer scored for an export: the rows and columns of
 * docs/exports.md, behind both bin/rfm-score (to a file) and rfm-serve's
 * GET /exports/customers.csv (streamed), so that the two write the same
 * bytes for the same customers, filters and day.
 *
 * Workload: millions of customers, in two passes. bulk_plan_new is pass 1:
 * it scores each customer's churn probability (no explanation:
 * SCORE_CHURN_POINT) and CLTV point value (no interval) for the
 * percentiles, applies the filters (segments, minimum P(alive)) and ranks
 * by the targeting key; it keeps 24 bytes a customer (the two percentiles
 * and the churn probability, which pass 2 takes instead of walking the
 * trees again; plus the targeting key and order when ranking). Pass 2 is
 * bulk_row: the caller walks the positions 0..bulk_positions()-1 in order
 * and gets each written customer's full row (with the CLTV interval), one
 * at a time, so that the text of the export is produced as it is written.
 *
 * Thread safety: a plan is read-only after bulk_plan_new; bulk_row may be
 * called from several threads at once, each with its own score_models
 * (its own cltv_cache, score.h).
 */
#ifndef RFM_BULK_H
#define RFM_BULK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "customers.h"
#include "erasure.h"
#include "parquet.h"
#include "score.h"
#include "state.h"
#include "status.h"

/* The columns, in the order docs/exports.md lists them. */
enum {
    BULK_ID,
    BULK_RECENCY,
    BULK_FREQUENCY,
    BULK_MONETARY,
    BULK_RFM_SCORE,
    BULK_RFM_SEGMENT,
    BULK_CLUSTER,
    BULK_SEGMENT,
    BULK_CHURN_P,
    BULK_CHURN_RISK,
    BULK_CHURN_PCT,
    BULK_P_ALIVE,
    BULK_EXP_PURCHASES,
    BULK_CLTV,
    BULK_CLTV_LOWER,
    BULK_CLTV_UPPER,
    BULK_CLTV_PCT,
    BULK_MODEL_VERSION,
    BULK_SCORED_AT,
    BULK_NCOL
};
/* Name, type and nullability of each column (BULK_NCOL of them). */
const parquet_column *bulk_columns(void);

/* The targeting keys (--by, ?by=). */
typedef enum {
    BULK_BY_NONE = 0,
    BULK_BY_CLTV = 1,
    BULK_BY_CHURN = 2,
    BULK_BY_VALUE_AT_RISK = 3, /* churn probability x cltv */
    BULK_BY_UPLIFT_GAIN = 4    /* the uplift model's expected net gain (gain_of) */
} bulk_by;
/* The key named name ("cltv", "churn", "value_at_risk", "uplift_gain"),
 * or -1. */
int bulk_by_parse(const char *name);

/* The customers scored and what the rows say besides the scores. Either
 * table (the training customers), or n customers of ids and rows (the
 * live state's: bulk_state_collect). */
typedef struct {
    const customers *table;
    char *const *ids;
    const customer_row *rows;
    size_t n;
    const char *version;   /* the model_version column (bulk_model_version) */
    const char *scored_at; /* the scored_at column, YYYY-MM-DD */
    erasure *erased;       /* customers left out of the rows (may be NULL) */
    int pseudonymized;     /* ids are pseudonyms (erasure_has_id) */
    /* BULK_BY_UPLIFT_GAIN: the gain of customer id, NaN when it has none
     * (such customers are left out of that ranking). */
    double (*gain_of)(void *ctx, const char *id);
    void *gain_ctx;
} bulk_input;

/* Which rows, in which order. top 0: every row; with by, the top rows by
 * the key, highest first (equal keys in table order; customers without
 * the key left out); without by, the first top rows in table order. */
typedef struct {
    bulk_by by;
    size_t top;
    const char *const *segments; /* cluster or RFM segment names, any of them; 0: all */
    size_t nsegments;
    double min_p_alive; /* NaN: no minimum; else P(alive) at least this */
} bulk_filter;

typedef struct bulk_plan bulk_plan;

/* Why a filter cannot be applied with the models of sm, or NULL: a key
 * whose model is not trained, an unknown segment name. Written in buf. */
const char *bulk_filter_check(const score_models *sm, const bulk_filter *f, const bulk_input *in,
                              char *buf, size_t len);

/* Pass 1, on nsm threads (one per element of sm, each with its own
 * cltv_cache or none; 1 is fine). in and sm[0]'s models must outlive the
 * plan. A customer whose figures the models refuse fails the plan with
 * RFM_EINVAL naming it; RFM_ENOMEM. */
rfm_status bulk_plan_new(const bulk_input *in, const bulk_filter *f, const score_models *sm,
                         size_t nsm, bulk_plan **out, char *err, size_t errlen);
void bulk_plan_free(bulk_plan *p);
/* Customers scored (the population of the percentiles). */
size_t bulk_customers(const bulk_plan *p);
/* Positions pass 2 walks: bulk_row answers each with a row or a skip. */
size_t bulk_positions(const bulk_plan *p);

/* One output row: the cells (strings borrow from r, the models and the
 * input) and the scores they come from (churn: pass 1's probability and
 * its risk, no explanation). */
typedef struct {
    parquet_value v[BULK_NCOL];
    score_result r;
    const char *id;
} bulk_row;

/* The row at position k (0..bulk_positions-1): *written 1 and o filled,
 * or *written 0 for a customer left out (filtered, erased, past top).
 * sm: the models of the plan, with this thread's cache (position k + 1's
 * CLTV terms are asked of memory meanwhile: walk positions in order). o must not move
 * while its cells are used. RFM_EINVAL (naming the customer) when a model
 * refuses the customer's figures. */
rfm_status bulk_row_at(const bulk_plan *p, const score_models *sm, size_t k, bulk_row *o,
                       int *written, char *err, size_t errlen);

/* model_version: the models' one version when customers, segments, churn
 * and cltv of manifest agree (one training run), else each "name=version"
 * joined by ';'. Written in buf (truncated to len). */
void bulk_model_version(const json_t *manifest, char *buf, size_t len);
/* The day the training figures are as of: the manifest's transactions
 * snapshot_date, else its created_at's day; "" when neither. buf[11]. */
void bulk_snapshot_day(const json_t *manifest, char buf[11]);

/* The live state's customers as of a day, collected by state_each (or
 * rfm-serve's live_each) with bulk_state_collect as the callback: those
 * with a purchase by then, their features as GET /customers/{id} maps them
 * (no trends). Then bulk_input's ids, rows and n are s->ids, s->rows, s->n. */
typedef struct {
    char **ids;
    customer_row *rows;
    size_t n, cap;
    int oom; /* ran out of memory: the walk stopped */
} bulk_state;
int bulk_state_collect(void *user, const char *id, const state_customer *c);
void bulk_state_free(bulk_state *s);

#endif
