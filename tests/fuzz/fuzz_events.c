/* fuzz_events.c - libFuzzer target: event_batch_read, the POST /events
 * body read without a JSON tree (core/serving/event.h), against the
 * general path it stands in for (tests/serving/event_ref.h: jansson, the
 * contract's EventsRequest schema from openapi.yaml, event_from_json).
 *
 * The first input byte is the batch limit (1 to 256), the rest the body.
 * Besides the sanitizers, the target traps when the fast path decides a
 * body the general path refuses (a syntax error, a schema violation, over
 * the limit) or gives any item another event or refusal. Run from the
 * repository root (openapi.yaml).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../serving/event_ref.h"
#include "engagement.h"
#include "event.h"
#include "oas.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read-only after LLVMFuzzerInitialize; reachable, so not leaks. */
static oas_spec *spec;
static engagement_options types;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char err[RFM_ERRLEN];
    if (oas_load("openapi.yaml", &spec, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "fuzz_events: contract: %s\n", err);
        exit(2);
    }
    engagement_default_options(&types);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max_items = 1 + data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    event_batch b;
    ref_batch r;
    event_body st = event_batch_read(text, len, max_items, &types, &b);
    int ok = ref_read(spec, text, len, max_items, &types, &r);
    if (st == EVENT_BODY_OK && !ok) {
        fprintf(stderr, "fuzz_events: decided a body the general path refuses: %.*s\n", (int)len,
                text);
        abort();
    }
    if (st == EVENT_BODY_OK) {
        long i = ref_first_difference(&b, &r.b);
        if (i >= 0) {
            fprintf(stderr, "fuzz_events: item %ld differs from the general path: %.*s\n", i,
                    (int)len, text);
            abort();
        }
    } else if (st != EVENT_BODY_OTHER && st != EVENT_BODY_ENOMEM) {
        abort();
    }
    event_batch_free(&b);
    ref_free(&r);
    return 0;
}
