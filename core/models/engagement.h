/* engagement.h - the engagement of a customer across interaction kinds
 * (purchases, web visits, leads...): recency, count and weighted value of
 * its interactions, each scored 1-5 against fixed edges, and a segment
 * (docs/events.md, "Engagement").
 *
 * Kinds come from the config (events.types): a name, a weight, and
 * whether the kind is monetary (its events are purchase lines that drive
 * the RFM features and the models; the others only count here). A
 * purchase counts as one interaction per distinct invoice, so a basket of
 * twenty lines is one interaction, as it is one in frequency.
 *
 * Scores use fixed edges from the config, not quantiles: the non-purchase
 * kinds are not in the training file, so there is nothing to take
 * quantiles of at seeding, and fixed edges keep a score meaning the same
 * from day to day and from one retrain to the next.
 *
 * Thread safety: options are read-only once checked; engagement_score is
 * a pure function.
 */
#ifndef RFM_ENGAGEMENT_H
#define RFM_ENGAGEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define ENGAGEMENT_TYPES_MAX 16            /* kinds in a config */
#define ENGAGEMENT_NAME_MAX 64             /* bytes of a kind's name */
#define ENGAGEMENT_DEFAULT_TYPE "purchase" /* an event without a type */

typedef struct {
    char name[ENGAGEMENT_NAME_MAX + 1]; /* [a-z0-9_], 1..64 bytes */
    double weight;                      /* >= 0, finite */
    int monetary;                       /* a purchase line */
} engagement_type;

typedef struct {
    engagement_type type[ENGAGEMENT_TYPES_MAX];
    size_t ntypes;
    /* Edges of the scores, increasing: recency (days) scores 5 up to
     * recency_days[0], 4 up to [1], 3 up to [2], 2 up to [3], else 1;
     * count and weighted score 1 + the number of edges at or below the
     * value. */
    double recency_days[4], count[4], weighted[4];
} engagement_options;

typedef enum {
    ENGAGEMENT_HIGHLY_ENGAGED = 0, /* recency >= 4 and (count or weighted) >= 4 */
    ENGAGEMENT_ENGAGED = 1,        /* recency >= 3 */
    ENGAGEMENT_COOLING = 2,        /* recency 2 */
    ENGAGEMENT_DORMANT = 3,        /* recency 1, or no interaction */
} engagement_segment;

typedef struct {
    double recency;  /* days from the last interaction to the as-of day (>= 1); 0: none */
    double count;    /* interactions */
    double weighted; /* sum of their kinds' weights */
    int recency_score, count_score, weighted_score; /* 1..5 */
    engagement_segment segment;
} engagement_result;

/* Defaults: purchase (1.0, monetary), web_visit (0.1), lead (5.0); edges
 * recency 7, 30, 90, 180 days; count 2, 5, 10, 25; weighted 2, 5, 10, 25. */
void engagement_default_options(engagement_options *o);
/* Reason the options cannot be used, or NULL: names valid and distinct,
 * at least one monetary kind, weights finite and >= 0, edges increasing. */
const char *engagement_check_options(const engagement_options *o, char *buf, size_t len);
/* Index of the kind name (len bytes; NULL: ENGAGEMENT_DEFAULT_TYPE), or -1. */
int engagement_type_index(const engagement_options *o, const char *name, size_t len);

/* Score a customer whose last interaction was last_day (days since
 * 1970-01-01; any value when count is 0), as of asof_day (the day after
 * the one the figures are at the end of, as txn_features_asof), with
 * count interactions of weighted value weighted. No interaction: recency
 * 0, scores 1, dormant. */
void engagement_score(const engagement_options *o, int32_t last_day, int32_t asof_day, double count,
                      double weighted, engagement_result *r);

/* Stable names: "highly_engaged", "engaged", "cooling", "dormant". */
const char *engagement_segment_name(engagement_segment s);

#endif
