/* event.h - one event of the POST /events item schema (openapi.yaml
 * Event, docs/events.md) from its JSON: the one parser of the daemon's two
 * ways in, a POST /events body item (server/api.c) and a Kafka message
 * (server/kafka.c), so both accept and refuse exactly the same events.
 *
 * Only JSON types are checked here; the values (id lengths, times,
 * numbers) are state_apply's (state.h), which rejects an event alone with
 * its state_reason. Thread safety: pure functions.
 */
#ifndef RFM_EVENT_H
#define RFM_EVENT_H

#include <jansson.h>

#include "engagement.h"
#include "state.h"

/* Room for the ids given as JSON integers (customer_id, invoice). */
typedef struct {
    char text[2][32];
} event_ids;

/* The event o into e: STATE_OK, or the reason it is refused with *why (a
 * static message) when o is not an object, a member has the wrong JSON
 * type, or its `type` is not a kind of types (events.types; NULL: every
 * event is a purchase). An interaction of a kind that is not monetary
 * reads no spend. The strings of e borrow from o, or from ids: both must
 * outlive e. */
state_reason event_from_json(const json_t *o, const engagement_options *types, state_event *e,
                             event_ids *ids, const char **why);

/* A POST /events body read in one pass straight into events, with no
 * JSON tree: the daemon's fast path (jansson's tree of a 500-event body
 * cost more CPU than the store's commit). Each item is checked by the same
 * code as event_from_json, so an item gets the same event or the same
 * refusal (reason and message) either way.
 *
 * The reader decides only bodies it can decide exactly as the general path
 * (strict JSON, the EventsRequest schema, event_from_json per item) would:
 * a well-formed object whose one member is "events", an array of 1 to
 * max_items objects whose members are names of the Event schema, each at
 * most once, with scalar values (strings without escapes, valid UTF-8;
 * numbers that jansson reads without overflow). Anything else (a syntax
 * error, another member, an escape, a nested value, an item that is not an
 * object, too many items) is EVENT_BODY_OTHER: the caller takes the general
 * path, which answers it as it always has. tests/serving/test_event.c and
 * tests/fuzz/fuzz_events.c compare the two on every body they make. */
typedef struct {
    size_t n;             /* items */
    state_event *ev;      /* n events; strings point into text or ids */
    state_reason *reason; /* n: STATE_OK, or why item i is refused */
    const char **why;     /* n: the refusal's static message (NULL when OK) */
    event_ids *ids;       /* n */
    char *text;           /* the body's copy, strings cut in place */
} event_batch;

typedef enum {
    EVENT_BODY_OK = 0, /* *b filled: free with event_batch_free */
    EVENT_BODY_OTHER,  /* not decided here: use the general path (*b empty) */
    EVENT_BODY_ENOMEM  /* out of memory (*b empty) */
} event_body;

/* Read the len bytes of text (need not end with NUL) as a POST /events
 * body of at most max_items events of the kinds of types (NULL: all
 * purchases). Thread safety: pure. */
event_body event_batch_read(const char *text, size_t len, size_t max_items,
                            const engagement_options *types, event_batch *b);

/* Free what event_batch_read allocated; b may be empty (all zero). */
void event_batch_free(event_batch *b);

/* A static message for a rejection reason of state_apply (what the value
 * must be), as the reply and the logs give it. */
const char *event_reason_message(state_reason r);

#endif
