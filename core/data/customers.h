/* customers.h - the per-customer table (models/customers.csv): what the
 * trainer computed for each customer, looked up by id when a request
 * names a customer_id instead of giving the history.
 *
 * Columns: customer_id, recency, frequency, monetary (RFM as of the
 * snapshot; empty when trained from a summary), repeat_purchases,
 * days_first_to_last_purchase, days_since_first_purchase,
 * mean_repeat_spend (BG/NBD summary, lifetimes' convention), ipt_trend,
 * spend_trend (churn.h's churn_features_asof; empty when unknown). A file
 * of the first eight columns (customers 1.0.0) loads with the trends NaN.
 * Thread safety: a loaded table is read-only.
 */
#ifndef RFM_CUSTOMERS_H
#define RFM_CUSTOMERS_H

#include <stddef.h>

#include "status.h"

typedef struct {
    double recency, frequency, monetary; /* NaN when unknown */
    double repeat_purchases, days_first_to_last, days_since_first, mean_repeat_spend;
    /* The churn model's trends (churn.h: churn_features_asof), NaN when
     * unknown (fewer purchase days, a customer summary, the live store): */
    double ipt_trend, spend_trend;
} customer_row;

typedef struct customers customers;

/* CSV text of n rows (new string, or NULL when out of memory). Ids must
 * not contain commas, quotes or newlines... they are quoted when they do. */
char *customers_csv(const char *const *ids, const customer_row *rows, size_t n);
/* Load a table written by customers_csv. */
rfm_status customers_load(const char *path, customers **out, char *err, size_t errlen);
void customers_free(customers *c);
size_t customers_count(const customers *c);
/* Row i (0..count-1) in file order, or NULL past the end. */
const customer_row *customers_row(const customers *c, size_t i);
/* The customer id of row i (0..count-1), or NULL past the end. */
const char *customers_id(const customers *c, size_t i);
/* The row of id, or NULL. */
const customer_row *customers_find(const customers *c, const char *id);

#endif
