/* events_fixture.h - the bundled export (data/online_retail.csv.gz) cut at
 * a day, for the integration tests that replay its tail as events
 * (test_events, test_redis, test_kafka): the lines before the cut are the
 * file the daemon is trained and seeded on, the lines from the cut on are
 * sent as events, and rfm-train on the whole file gives the reference.
 * Tests run in tests/. Include after testutil.h, daemon.h, csv.h and rng.h. */
#ifndef RFM_TEST_EVENTS_FIXTURE_H
#define RFM_TEST_EVENTS_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A line of the export as an event (fields as text, as in the file). */
typedef struct {
    char id[16], cust[24], time[24], invoice[16], product[24];
    char quantity[16], price[16];
} line;

/* A row of a customers.csv that rfm-train wrote. */
typedef struct {
    char id[24];
    double recency, frequency, monetary;
} ref_row;

static inline void fixture_copy_field(char *to, size_t cap, const csv_field *f)
{
    snprintf(to, cap, "%.*s", (int)(f->len < cap ? f->len : cap - 1), f->s);
}

/* Writes dir/head.csv: the header and the lines dated before cut
 * ("YYYY-MM-DD"), every field quoted. Returns the lines from cut on, in
 * file order with ids L0, L1, ... (the caller frees), their count in *n;
 * there must be more than 10,000. */
static inline line *fixture_split(const char *dir, const char *cut, size_t *ntail)
{
    char err[RFM_ERRLEN], path[256];
    csv_reader *csv;
    if (csv_open("../data/online_retail.csv.gz", &csv, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    snprintf(path, sizeof path, "%s/head.csv", dir);
    FILE *head = fopen(path, "w");
    assert_non_null(head);
    size_t cap = 1 << 17;
    line *tail = malloc(cap * sizeof *tail);
    assert_non_null(tail);
    const csv_field *f;
    size_t n;
    int first = 1;
    *ntail = 0;
    while (csv_next(csv, &f, &n, err, sizeof err) == RFM_OK && n > 0) {
        if (first || (n >= 8 && strncmp(f[4].s, cut, 10) < 0)) {
            for (size_t i = 0; i < n; i++) {
                fputs(i ? ",\"" : "\"", head);
                for (const char *p = f[i].s; *p; p++) /* quotes inside doubled */
                    fputs(*p == '"' ? "\"\"" : (char[2]){*p, 0}, head);
                fputc('"', head);
            }
            fputc('\n', head);
            first = 0;
            continue;
        }
        if (n < 8)
            continue;
        if (*ntail == cap) {
            tail = realloc(tail, (cap *= 2) * sizeof *tail);
            assert_non_null(tail);
        }
        line *l = &tail[*ntail];
        snprintf(l->id, sizeof l->id, "L%zu", *ntail);
        fixture_copy_field(l->invoice, sizeof l->invoice, &f[0]);
        fixture_copy_field(l->product, sizeof l->product, &f[1]);
        fixture_copy_field(l->quantity, sizeof l->quantity, &f[3]);
        fixture_copy_field(l->time, sizeof l->time, &f[4]);
        fixture_copy_field(l->price, sizeof l->price, &f[5]);
        fixture_copy_field(l->cust, sizeof l->cust, &f[6]);
        (*ntail)++;
    }
    csv_close(csv);
    fclose(head);
    assert_true(*ntail > 10000);
    return tail;
}

/* rfm-train (segments and churn) with dir/rfm.yaml on file into models. */
static inline void fixture_train(const char *dir, const char *file, const char *models)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --quiet --config %s/rfm.yaml --transactions %s "
             "--only segments,churn --models %s",
             dir, file, models);
    assert_int_equal(system(cmd), 0);
}

/* The first 8192 rows of the customers.csv at path (the caller frees),
 * their count in *n; there must be more than 4,000. */
static inline ref_row *fixture_reference(const char *path, size_t *n)
{
    FILE *c = fopen(path, "r");
    assert_non_null(c);
    char row[512];
    ref_row *ref = malloc(8192 * sizeof *ref);
    assert_non_null(ref);
    assert_non_null(fgets(row, sizeof row, c)); /* header */
    *n = 0;
    while (*n < 8192 && fgets(row, sizeof row, c)) {
        ref_row *r = &ref[*n];
        if (sscanf(row, "%23[^,],%lf,%lf,%lf", r->id, &r->recency, &r->frequency, &r->monetary) ==
            4)
            (*n)++;
    }
    fclose(c);
    assert_true(*n > 4000);
    return ref;
}

/* The whole set-up of test_events and test_redis: dir/rfm.yaml (the
 * shipped config, products off: no embeddings needed), the split at cut,
 * dir/models trained on head.csv, dir/full on the whole file and its
 * customers as the reference. */
static inline void fixture_cut(const char *dir, const char *cut, line **tail, size_t *ntail,
                               ref_row **ref, size_t *nref)
{
    char cmd[512], path[256];
    snprintf(cmd, sizeof cmd,
             "sed 's/^\\(    product:\\).*/\\1 null/' ../config/rfm.yaml > %s/rfm.yaml", dir);
    assert_int_equal(system(cmd), 0);
    *tail = fixture_split(dir, cut, ntail);
    char models[128];
    snprintf(path, sizeof path, "%s/head.csv", dir);
    snprintf(models, sizeof models, "%s/models", dir);
    fixture_train(dir, path, models);
    snprintf(models, sizeof models, "%s/full", dir);
    char full[256];
    snprintf(full, sizeof full, "%s/../data/online_retail.csv.gz", getcwd(path, sizeof path));
    fixture_train(dir, full, models);
    snprintf(path, sizeof path, "%s/full/customers.csv", dir);
    *ref = fixture_reference(path, nref);
}

/* JSON of the events order[from..to) (indices into tail), each event id
 * followed by suffix (the caller frees). */
static inline char *fixture_batch_json(const line *tail, const size_t *order, size_t from,
                                       size_t to, const char *suffix)
{
    size_t cap = 256 + (to - from) * 256, n = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    n += (size_t)snprintf(b + n, cap - n, "{\"events\": [");
    for (size_t i = from; i < to; i++) {
        const line *l = &tail[order[i]];
        n += (size_t)snprintf(b + n, cap - n,
                              "%s{\"event_id\": \"%s%s\", \"customer_id\": \"%s\", \"time\": "
                              "\"%s\", \"invoice\": \"%s\", \"product\": \"%s\", \"quantity\": "
                              "%s, \"price\": %s}",
                              i > from ? ", " : "", l->id, suffix, l->cust, l->time, l->invoice,
                              l->product, l->quantity, l->price);
    }
    snprintf(b + n, cap - n, "]}");
    return b;
}

/* The number after "key": in a JSON text; NAN when the key is not there. */
static inline double fixture_num(const char *body, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(body, k);
    return p ? strtod(p + strlen(k), NULL) : NAN;
}

/* Every customer of ref through GET /customers/{id}?as_of=asof of the
 * daemon on port: recency and frequency equal to rfm-train's, monetary to
 * 1e-9 relative; prints the first five that differ and the largest
 * difference. */
static inline void fixture_compare_all(int port, const char *token, const ref_row *ref, size_t nref,
                                       const char *asof)
{
    size_t bad = 0;
    double worst = 0;
    for (size_t i = 0; i < nref; i++) {
        char path[128];
        snprintf(path, sizeof path, "/customers/%s?as_of=%s", ref[i].id, asof);
        response r;
        assert_int_equal(daemon_request(port, token, "GET", path, NULL, &r), 0);
        if (r.status != 200) {
            if (bad++ < 5)
                print_message("customer %s: %d %s\n", ref[i].id, r.status, r.body);
            free(r.body);
            continue;
        }
        double rec = fixture_num(r.body, "recency"), fr = fixture_num(r.body, "frequency"),
               mon = fixture_num(r.body, "monetary");
        double rel = fabs(mon - ref[i].monetary) / fmax(1, fabs(ref[i].monetary));
        worst = fmax(worst, rel);
        if (rec != ref[i].recency || fr != ref[i].frequency || !(rel <= 1e-9)) {
            if (bad++ < 5)
                print_message("customer %s: state %g %g %.10g, rfm-train %g %g %.10g\n", ref[i].id,
                              rec, fr, mon, ref[i].recency, ref[i].frequency, ref[i].monetary);
        }
        free(r.body);
    }
    print_message("  %zu customers compared, %zu differ; largest relative monetary difference "
                  "%.2g (tolerance 1e-9)\n",
                  nref, bad, worst);
    assert_int_equal(bad, 0);
}

/* 0..n-1 in the order of a seeded Fisher-Yates shuffle (the caller frees). */
static inline size_t *fixture_shuffled(size_t n, uint64_t seed)
{
    size_t *o = malloc(n * sizeof *o);
    assert_non_null(o);
    for (size_t i = 0; i < n; i++)
        o[i] = i;
    rfm_rng g;
    rfm_rng_seed(&g, seed);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rfm_rng_uniform(&g) * (double)(i + 1));
        if (j > i)
            j = i;
        size_t t = o[i];
        o[i] = o[j], o[j] = t;
    }
    return o;
}

#endif
