/* gains.c - the uplift model's expected net gain per customer (gains.h). */
#include "gains.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "hash.h"

struct gains {
    char **ids;
    double *gain;
    size_t n, cap;
    uint32_t *slots; /* open addressing: index + 1, 0 empty */
    size_t mask;
};

void gains_free(gains *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        free(g->ids[i]);
    free(g->ids), free(g->gain), free(g->slots);
    free(g);
}

static uint64_t id_hash(const char *id) { return hash_bytes(id, strlen(id), 11); }

/* The slot of id: its entry's, or the empty one it would take. */
static size_t slot_of(const gains *g, const char *id)
{
    size_t j = id_hash(id) & g->mask;
    while (g->slots[j] && strcmp(g->ids[g->slots[j] - 1], id) != 0)
        j = (j + 1) & g->mask;
    return j;
}

static int grow(gains *g)
{
    size_t cap = g->cap ? 2 * g->cap : 1024;
    char **ids = realloc(g->ids, cap * sizeof *ids);
    if (!ids)
        return 0;
    g->ids = ids;
    double *gain = realloc(g->gain, cap * sizeof *gain);
    if (!gain)
        return 0;
    g->gain = gain;
    uint32_t *slots = calloc(2 * cap, sizeof *slots);
    if (!slots)
        return 0;
    free(g->slots);
    g->slots = slots, g->mask = 2 * cap - 1, g->cap = cap;
    for (size_t i = 0; i < g->n; i++)
        g->slots[slot_of(g, g->ids[i])] = (uint32_t)(i + 1);
    return 1;
}

double gains_of(const gains *g, const char *id)
{
    if (!g || !g->slots || !id)
        return NAN;
    uint32_t s = g->slots[slot_of(g, id)];
    return s ? g->gain[s - 1] : NAN;
}

double gains_lookup(void *g, const char *id) { return gains_of(g, id); }

rfm_status gains_load(const char *path, const char *id_column, const uplift_model *m,
                      const campaign_encoding *enc, double value, double cost, gains **out,
                      gains_counts *counts, char *err, size_t errlen)
{
    *out = NULL;
    gains_counts c = {0, 0, 0, 0};
    int narms = uplift_n_arms(m);
    size_t d = campaign_n_columns(enc);
    if (narms < 1 || narms > 64 || d == 0 || d > 4096 || uplift_n_features(m) != d)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "the uplift model and its encoding do not agree (%zu columns)", d);
    json_t *ej = NULL;
    rfm_status st = campaign_encoding_to_json(enc, &ej, err, errlen);
    if (st != RFM_OK)
        return st;
    const json_t *feats = json_object_get(ej, "features");
    size_t nf = json_array_size(feats);
    int *pos = calloc(nf ? nf : 1, sizeof *pos), *isnum = calloc(nf ? nf : 1, sizeof *isnum);
    double *x = malloc(d * sizeof *x);
    json_t *obj = json_object();
    gains *g = calloc(1, sizeof *g);
    csv_reader *r = NULL;
    if (!pos || !isnum || !x || !obj || !g) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = csv_open(path, &r, err, errlen)) != RFM_OK)
        goto out;
    const csv_field *f;
    size_t n;
    if ((st = csv_next(r, &f, &n, err, errlen)) != RFM_OK)
        goto out;
    int idpos = n ? csv_find(f, n, id_column) : -1;
    if (idpos < 0) {
        st = rfm_fail(err, errlen, RFM_EINVAL, "%s:1: no column %s (uplift.id_column)", path,
                      id_column);
        goto out;
    }
    for (size_t k = 0; k < nf; k++) {
        const json_t *fe = json_array_get(feats, k);
        const char *name = json_string_value(json_object_get(fe, "name"));
        const char *type = json_string_value(json_object_get(fe, "type"));
        isnum[k] = type && !strcmp(type, "number");
        if ((pos[k] = name ? csv_find(f, n, name) : -1) < 0) {
            st = rfm_fail(err, errlen, RFM_EINVAL,
                          "%s:1: no column %s (a feature of the uplift model)", path,
                          name ? name : "?");
            goto out;
        }
    }
    double costs[64], u[64], gk[64];
    for (int k = 0; k < narms; k++)
        costs[k] = cost;
    while ((st = csv_next(r, &f, &n, err, errlen)) == RFM_OK && n) {
        c.rows++;
        const char *id = (size_t)idpos < n ? f[idpos].s : "";
        int ok = *id != '\0';
        for (size_t k = 0; ok && k < nf; k++) {
            const json_t *fe = json_array_get(feats, k);
            const char *name = json_string_value(json_object_get(fe, "name"));
            const char *s = (size_t)pos[k] < n ? f[pos[k]].s : "";
            json_t *v;
            if (isnum[k]) {
                char *end;
                double dv = strtod(s, &end);
                v = *s && !*end && isfinite(dv) ? json_real(dv) : NULL;
            } else {
                v = json_string(s);
            }
            ok = v && json_object_set_new(obj, name, v) == 0;
        }
        char why[256];
        if (!ok || campaign_encode_json(enc, obj, x, why, sizeof why) != RFM_OK ||
            uplift_predict(m, x, u, NULL, why, sizeof why) != RFM_OK) {
            c.refused++;
            continue;
        }
        if (g->n == g->cap && !grow(g)) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            goto out;
        }
        size_t j = slot_of(g, id);
        if (g->slots[j]) {
            c.duplicates++;
            continue;
        }
        uplift_best_arm(u, narms, &value, costs, gk);
        double best = gk[0];
        for (int k = 1; k < narms; k++)
            best = gk[k] > best ? gk[k] : best;
        if (!(g->ids[g->n] = strdup(id))) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            goto out;
        }
        g->gain[g->n] = best;
        g->slots[j] = (uint32_t)(++g->n);
    }
    c.customers = g->n;
out:
    csv_close(r);
    json_decref(obj);
    json_decref(ej);
    free(pos), free(isnum), free(x);
    if (st != RFM_OK) {
        gains_free(g);
        return st;
    }
    if (counts)
        *counts = c;
    *out = g;
    return RFM_OK;
}
