/* feed.h - the live feed of score changes (docs/events.md, "Live feed"):
 * which of the labels marketing acts on (RFM segment, cluster, churn-risk
 * band) changed between two scorings of a customer, a bounded ring of
 * change records with increasing ids that readers page through, and the
 * per-customer "last published" labels that make a change go out once.
 *
 * Workload: a few changes per event batch and, once a day, the drift of
 * idle customers across recency boundaries (thousands of records in a
 * burst); a handful to a hundred readers (GET /feed streams), each asking
 * for the records after the last one it sent.
 *
 * Ids: the first record gets id base + 1, each next one the previous + 1,
 * so a reader's last id says exactly what it missed. The daemon starts
 * base at its start time in microseconds, so ids keep growing across
 * restarts (records themselves are kept in memory only).
 *
 * Threads: every function may be called from any thread at once. The ring
 * has its own mutex, held only to copy records in or out (a reader copies
 * and then writes to its socket without it); feed_publish holds a second
 * mutex across compare, push and the subscribers' calls, so records go out
 * in id order and a change is published once.
 * Non-goals: persistence of records, delivery guarantees beyond the buffer
 * (a reader that falls behind is told how much it missed: a gap).
 */
#ifndef RFM_FEED_H
#define RFM_FEED_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "score.h"
#include "status.h"

typedef enum {
    FEED_RFM_SEGMENT = 0,
    FEED_CLUSTER = 1,
    FEED_CHURN_RISK = 2,
    FEED_NFIELDS = 3
} feed_field;

/* "rfm_segment", "cluster", "churn_risk": the record's "field". */
const char *feed_field_name(feed_field f);

/* The labels of one scoring; NULL where that part was not scored. The
 * strings borrow from the models (or are static). */
typedef struct {
    const char *label[FEED_NFIELDS];
} feed_labels;

/* Labels of r: rfm_segment and the cluster's segment name when
 * SCORE_SEGMENTS was done, the churn-risk band when SCORE_CHURN was. */
void feed_labels_of(const score_result *r, feed_labels *out);

typedef struct {
    feed_field field;
    const char *from, *to; /* borrow from the labels compared */
} feed_change;

/* The fields labelled in both a and b whose labels differ, in field
 * order, into out; returns how many (0..FEED_NFIELDS). */
size_t feed_diff(const feed_labels *a, const feed_labels *b, feed_change out[FEED_NFIELDS]);

typedef struct feed feed;

/* A ring of capacity records (>= 1) with ids after base, remembering the
 * last published labels of up to published_max customers (0: none; past
 * it, a customer not yet remembered is compared with the labels before,
 * which is what the remembered ones would hold unless a change was lost
 * in a race). NULL on bad arguments or out of memory. */
feed *feed_new(size_t capacity, uint64_t base, size_t published_max);
void feed_free(feed *f);

/* Called for each record pushed, in id order, on the publishing thread,
 * with the record's id, its customer, event ("change") and JSON text
 * (borrowed for the call). A hook for other outputs (the Kafka scores
 * topic, keyed by customer); it must not block (the publisher is applying
 * events) nor call back into feed_publish. Up to 8; RFM_ENOMEM past that. */
typedef void (*feed_subscriber)(void *ctx, uint64_t id, const char *customer_id, const char *event,
                                const char *data);
rfm_status feed_subscribe(feed *f, feed_subscriber fn, void *ctx);

/* Push one record (event name and data are copied); the oldest record goes
 * when the ring is full. *id (may be NULL) gets its id. RFM_ENOMEM leaves
 * the ring as it was. Subscribers are not called (feed_publish calls them). */
rfm_status feed_push(feed *f, const char *event, const char *data, uint64_t *id);

/* Publish the changes of customer_id now scored after: the baseline is the
 * labels last published for it when remembered, else before (NULL: none,
 * then after only becomes the baseline). Each change is one record
 * {"customer_id", "time", "field", "from", "to", "scores"} (scores: a JSON
 * object, borrowed; may be NULL for {}), pushed, and handed to the
 * subscribers; after is remembered. *published (may be NULL) gets the
 * number of records. RFM_ENOMEM when a record could not be made (the
 * changes before it went out). */
rfm_status feed_publish(feed *f, const char *customer_id, const char *time,
                        const feed_labels *before, const feed_labels *after, const json_t *scores,
                        size_t *published);

/* Id of the newest record (base when none yet). */
uint64_t feed_last_id(feed *f);

typedef struct {
    uint64_t id;
    char *event; /* "change" */
    char *data;  /* JSON text */
} feed_record;

/* The next records for a reader whose position *pos is the id of the last
 * record it has: up to max records after it, copied into out (free each
 * with feed_record_clear), and *pos moved to the last one copied. *gap:
 * 0 when nothing was lost; 1 when records after *pos are no longer in the
 * ring (the reader fell behind): *missed of them are lost before out[0];
 * 2 when *pos is not an id of this feed (after its newest, or before base:
 * another run of the daemon): *missed is 0 and the reader goes on from the
 * newest record (after it) or from the oldest kept (before base). In both
 * gap cases *pos is moved past what is lost. Returns the number of records
 * copied, or -1 when out of memory (nothing copied, *pos unchanged). */
long feed_since(feed *f, uint64_t *pos, size_t max, feed_record *out, uint64_t *missed, int *gap);
void feed_record_clear(feed_record *r);

/* Counters: records pushed since start, remembered customers. */
typedef struct {
    uint64_t records, published_customers, capacity;
} feed_stats;
void feed_get_stats(feed *f, feed_stats *out);

#endif
