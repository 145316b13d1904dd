/* bench_events_parse - CPU per event of reading a POST /events body: the
 * general path (jansson's tree with the flags rfm-serve uses, then
 * event_from_json per item) against event_batch_read (core/serving/event.h,
 * no tree), on the same 500-event bodies bench/events.lua sends.
 *
 * usage: bench_events_parse [BODIES]   (default 2000)
 * Prints one line: microseconds of CPU per event each way (this thread's
 * CPU clock, so other load on the machine does not count) and the ratio.
 * Under valgrind --tool=callgrind the instruction counts of the two
 * functions compare the same way. The schema check of the general path
 * (oas_validate) is not counted: it is the fast path's gain on top.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engagement.h"
#include "event.h"
#include "rng.h"

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A body as bench/events.lua makes one: 500 events of random customers,
 * days, amounts, 7 invoices. */
static char *make_body(rfm_rng *g, int req, size_t *len)
{
    size_t cap = 500 * 160 + 64, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(s + n, cap - n, "{\"events\":[");
    for (int i = 1; i <= 500; i++)
        n += (size_t)snprintf(
            s + n, cap - n,
            "%s{\"event_id\":\"b1-%d-%d\",\"customer_id\":\"%d\",\"time\":"
            "\"2011-12-%02dT10:00:00Z\",\"invoice\":\"B1-%d-%d\",\"amount\":%d.5}",
            i > 1 ? "," : "", req, i, 12346 + (int)rfm_rng_below(g, 6000),
            10 + (int)rfm_rng_below(g, 19), req, i % 7, 1 + (int)rfm_rng_below(g, 200));
    n += (size_t)snprintf(s + n, cap - n, "]}");
    *len = n;
    return s;
}

/* The general path's reading: the tree, then each item. */
__attribute__((noinline)) static size_t read_tree(const char *text, size_t len,
                                                  const engagement_options *types, state_event *ev,
                                                  event_ids *ids)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    const json_t *evs = json_object_get(j, "events");
    size_t ok = 0;
    for (size_t i = 0; i < json_array_size(evs); i++) {
        const char *why;
        ok += event_from_json(json_array_get(evs, i), types, &ev[i], &ids[i], &why) == STATE_OK;
    }
    json_decref(j);
    return ok;
}

__attribute__((noinline)) static size_t read_direct(const char *text, size_t len,
                                                    const engagement_options *types)
{
    event_batch b;
    size_t ok = 0;
    if (event_batch_read(text, len, 10000, types, &b) == EVENT_BODY_OK)
        for (size_t i = 0; i < b.n; i++)
            ok += b.reason[i] == STATE_OK;
    event_batch_free(&b);
    return ok;
}

int main(int argc, char **argv)
{
    int nb = argc > 1 ? atoi(argv[1]) : 2000;
    if (nb < 1) {
        fprintf(stderr, "usage: bench_events_parse [BODIES]\n");
        return 2;
    }
    engagement_options types;
    engagement_default_options(&types);
    rfm_rng g;
    rfm_rng_seed(&g, 14);
    enum { NT = 8 };
    char *body[NT];
    size_t len[NT];
    for (int t = 0; t < NT; t++)
        body[t] = make_body(&g, t, &len[t]);
    state_event *ev = malloc(500 * sizeof *ev);
    event_ids *ids = malloc(500 * sizeof *ids);
    size_t ok_tree = 0, ok_direct = 0;
    double t0 = cpu_s();
    for (int k = 0; k < nb; k++)
        ok_tree += read_tree(body[k % NT], len[k % NT], &types, ev, ids);
    double t1 = cpu_s();
    for (int k = 0; k < nb; k++)
        ok_direct += read_direct(body[k % NT], len[k % NT], &types);
    double t2 = cpu_s();
    double events = 500.0 * nb;
    printf("bodies=%d events=%.0f tree_us_per_event=%.3f direct_us_per_event=%.3f "
           "tree/direct=%.2f same_accepted=%s\n",
           nb, events, (t1 - t0) * 1e6 / events, (t2 - t1) * 1e6 / events, (t1 - t0) / (t2 - t1),
           ok_tree == ok_direct && ok_tree == (size_t)events ? "yes" : "NO");
    for (int t = 0; t < NT; t++)
        free(body[t]);
    free(ev);
    free(ids);
    return ok_tree == ok_direct ? 0 : 1;
}
