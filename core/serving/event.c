/* event.c - an event of the POST /events item schema from JSON (event.h). */
#include "event.h"

#include <stdio.h>
#include <string.h>

/* Text of a JSON id: a string as it is, an integer in decimal (ids
 * exported as numbers); else NULL. */
static const char *id_text(const json_t *v, char *buf, size_t len)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    return NULL;
}

state_reason event_from_json(const json_t *o, const engagement_options *types, state_event *e,
                            event_ids *ids, const char **why)
{
    memset(e, 0, sizeof *e);
    if (!json_is_object(o))
        return *why = "an event must be an object", STATE_BAD_EVENT_ID;
    if (!(e->event_id = json_string_value(json_object_get(o, "event_id"))))
        return *why = "event_id: a string is required", STATE_BAD_EVENT_ID;
    const json_t *cid = json_object_get(o, "customer_id");
    if (!(e->customer_id = id_text(cid, ids->text[0], sizeof ids->text[0])))
        return *why = "customer_id: a string (or integer) is required", STATE_MISSING_CUSTOMER;
    if (!(e->time = json_string_value(json_object_get(o, "time"))))
        return *why = "time: an RFC 3339 string is required", STATE_BAD_TIME;
    const json_t *inv = json_object_get(o, "invoice");
    if (inv && !json_is_null(inv) &&
        !(e->invoice = id_text(inv, ids->text[1], sizeof ids->text[1])))
        return *why = "invoice: must be a string, an integer or null", STATE_BAD_TEXT;
    const json_t *prod = json_object_get(o, "product");
    if (prod && !json_is_null(prod) && !(e->product = json_string_value(prod)))
        return *why = "product: must be a string or null", STATE_BAD_TEXT;
    const json_t *type = json_object_get(o, "type");
    if (type && !json_is_null(type) && !(e->type = json_string_value(type)))
        return *why = "type: must be a string (a kind of events.types) or null", STATE_BAD_TYPE;
    int ti = types ? engagement_type_index(types, e->type, e->type ? strlen(e->type) : 0) : 0;
    if (ti < 0)
        return *why = "type: not a kind of events.types (the config)", STATE_BAD_TYPE;
    if (types && !types->type[ti].monetary)
        return STATE_OK; /* an interaction: no spend to read */
    const json_t *am = json_object_get(o, "amount"), *q = json_object_get(o, "quantity"),
                 *pr = json_object_get(o, "price");
    if (am && (q || pr))
        return *why = "give amount, or quantity and price, not both", STATE_BAD_NUMBER;
    if (am) {
        if (!json_is_number(am))
            return *why = "amount: must be a number", STATE_BAD_NUMBER;
        e->has_amount = 1;
        e->amount = json_number_value(am);
    } else {
        if (!json_is_number(q) || !json_is_number(pr))
            return *why = "amount, or quantity and price, must be numbers", STATE_BAD_NUMBER;
        e->quantity = json_number_value(q);
        e->price = json_number_value(pr);
    }
    return STATE_OK;
}

const char *event_reason_message(state_reason r)
{
    switch (r) {
    case STATE_BAD_EVENT_ID: return "event_id: missing, empty or longer than 256 bytes";
    case STATE_MISSING_CUSTOMER: return "customer_id: missing, empty, nan/null/none or too long";
    case STATE_BAD_TIME:
        return "time: not an RFC 3339 time (2011-12-01T08:26:00Z) from 1900 to 9999";
    case STATE_BAD_NUMBER:
        return "amount, or quantity and price: one form only, finite, spend at most 1e298";
    case STATE_BAD_TEXT: return "invoice or product: longer than 256 bytes";
    case STATE_BAD_TYPE: return "type: not a kind of events.types (the config)";
    default: return state_reason_name(r);
    }
}
