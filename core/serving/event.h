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

/* A static message for a rejection reason of state_apply (what the value
 * must be), as the reply and the logs give it. */
const char *event_reason_message(state_reason r);

#endif
