/* event_ref.h - the general path of a POST /events body, as rfm-serve ran
 * it before event_batch_read and still runs it for any body that reader
 * leaves (server/http.c http_answer_json, server/api.c h_events): strict
 * JSON by jansson (integers too large read again as reals), the contract's
 * EventsRequest schema (oas_validate on openapi.yaml), the batch limit,
 * then event_from_json per item. The reference event_batch_read is held
 * to, item for item, in tests/serving/test_event.c and
 * tests/fuzz/fuzz_events.c. Static functions: include in one file.
 */
#ifndef RFM_EVENT_REF_H
#define RFM_EVENT_REF_H

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "event.h"
#include "../json_strict.h"
#include "oas.h"

/* The items the general path hands to live_apply_items, parsed; body
 * holds the tree their strings borrow from. */
typedef struct {
    json_t *body;
    event_batch b; /* text unused */
} ref_batch;

/* 1 when the general path reaches the items (no 400, 413 or 422 for the
 * body), with *r filled (free with ref_free); else 0. */
static int ref_read(const oas_spec *spec, const char *text, size_t len, size_t max_items,
                    const engagement_options *types, ref_batch *r)
{
    memset(r, 0, sizeof *r);
    json_t *j = json_strict(text, len);
    if (!j)
        return 0;
    const json_t *schema = oas_request_schema(spec, oas_operation(spec, "POST", "/events"));
    oas_violation v[4];
    const json_t *evs = json_object_get(j, "events");
    size_t n = json_array_size(evs);
    if (!schema || oas_validate(spec, schema, j, v, 4) != 0 || n > max_items || n == 0) {
        json_decref(j);
        return 0;
    }
    r->body = j;
    r->b.n = n;
    r->b.ev = calloc(n, sizeof *r->b.ev);
    r->b.reason = calloc(n, sizeof *r->b.reason);
    r->b.why = calloc(n, sizeof *r->b.why);
    r->b.ids = calloc(n, sizeof *r->b.ids);
    for (size_t i = 0; i < n; i++) {
        const char *why = NULL;
        r->b.reason[i] =
            event_from_json(json_array_get(evs, i), types, &r->b.ev[i], &r->b.ids[i], &why);
        r->b.why[i] = r->b.reason[i] == STATE_OK ? NULL : why;
    }
    return 1;
}

static void ref_free(ref_batch *r)
{
    event_batch_free(&r->b);
    json_decref(r->body);
    r->body = NULL;
}

static int same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int same_double(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Index of the first item where a and b differ, or -1 when they agree on
 * every item: reason, message, and every field of the event. */
static long ref_first_difference(const event_batch *a, const event_batch *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        const state_event *x = &a->ev[i], *y = &b->ev[i];
        if (a->reason[i] != b->reason[i] || !same_text(a->why[i], b->why[i]) ||
            !same_text(x->event_id, y->event_id) || !same_text(x->customer_id, y->customer_id) ||
            !same_text(x->time, y->time) || !same_text(x->invoice, y->invoice) ||
            !same_text(x->product, y->product) || !same_text(x->type, y->type) ||
            x->has_amount != y->has_amount || !same_double(x->amount, y->amount) ||
            !same_double(x->quantity, y->quantity) || !same_double(x->price, y->price))
            return (long)i;
    }
    return -1;
}

#endif
