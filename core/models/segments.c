/* segments.c - RFM segments and named k-means clusters. */
#include "segments.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "kmeans.h"
#include "rng.h"

#define KMAX 16

typedef struct {
    char *name, *strategy;
    size_t customers;
    double share, mean[3], median[3];
    ruletree_rule rule;
    int has_rule; /* 0 in a model file written before rules (1.0) */
} cluster_info;

struct segments_model {
    rfm_bounds bounds;
    char *names[125]; /* segment name of each code, index (r-1)*25+(f-1)*5+(m-1) */
    size_t k;
    double mean[3], sd[3]; /* standardisation of log1p features */
    double *centroids;     /* k x 3 in standard units */
    cluster_info *clusters;
    double inertia, silhouette;
    int iterations, converged;
    size_t n;
    double sil_by_k[KMAX + 1];   /* NaN where not measured */
    double share_by_k[KMAX + 1]; /* smallest cluster's share; NaN where not fitted */
    segments_selection sel;
};

static size_t code_index(const int s[3])
{
    return (size_t)((s[0] - 1) * 25 + (s[1] - 1) * 5 + (s[2] - 1));
}

const char *segments_check(const segments_options *opt, char *buf, size_t len)
{
    if (opt->nrules == 0) {
        snprintf(buf, len, "the RFM segment map has no segments");
        return buf;
    }
    for (size_t r = 0; r < opt->nrules; r++) {
        const segments_rule *u = &opt->rules[r];
        if (!u->name || !*u->name) {
            snprintf(buf, len, "segment %zu has no name", r + 1);
            return buf;
        }
        for (int j = 0; j < 3; j++)
            if (u->lo[j] < 1 || u->hi[j] > 5 || u->lo[j] > u->hi[j]) {
                snprintf(buf, len, "segment '%s': %c range %d-%d is not within 1-5", u->name,
                         "RFM"[j], u -> lo[j], u -> hi[j]);
                return buf;
            }
    }
    /* Total and disjoint: each of the 125 codes matches exactly one rule. */
    for (int a = 1; a <= 5; a++)
        for (int b = 1; b <= 5; b++)
            for (int c = 1; c <= 5; c++) {
                int s[3] = {a, b, c};
                const char *first = NULL;
                for (size_t r = 0; r < opt->nrules; r++) {
                    const segments_rule *u = &opt->rules[r];
                    int in = 1;
                    for (int j = 0; j < 3; j++)
                        in &= s[j] >= u->lo[j] && s[j] <= u->hi[j];
                    if (!in)
                        continue;
                    if (first) {
                        snprintf(buf, len, "RFM code %d%d%d is in two segments: '%s' and '%s'", a,
                                 b, c, first, u->name);
                        return buf;
                    }
                    first = u->name;
                }
                if (!first) {
                    snprintf(buf, len, "RFM code %d%d%d is in no segment", a, b, c);
                    return buf;
                }
            }
    if (opt->k < 0 || opt->k > KMAX) {
        snprintf(buf, len, "k must be 0 (auto) or 1..%d", KMAX);
        return buf;
    }
    if (opt->k == 0 && (opt->k_min < 2 || opt->k_max < opt->k_min || opt->k_max > KMAX)) {
        snprintf(buf, len, "k_min and k_max must satisfy 2 <= k_min <= k_max <= %d", KMAX);
        return buf;
    }
    size_t need = (size_t)(opt->k ? opt->k : opt->k_max);
    if (opt->nprofiles < need) {
        snprintf(buf, len,
                 "%zu cluster profiles for up to %zu clusters: every cluster needs a name",
                 opt->nprofiles, need);
        return buf;
    }
    for (size_t p = 0; p < opt->nprofiles; p++)
        if (!opt->profiles[p].name || !*opt->profiles[p].name || !opt->profiles[p].strategy) {
            snprintf(buf, len, "cluster profile %zu needs a name and a strategy", p + 1);
            return buf;
        }
    if (opt->silhouette_sample < 100 || opt->silhouette_sample > 8000) {
        snprintf(buf, len, "silhouette_sample must be from 100 to 8000 customers");
        return buf;
    }
    for (size_t p = 0; p < opt->nprofiles; p++)
        for (size_t q = 0; q < p; q++)
            if (strcmp(opt->profiles[p].name, opt->profiles[q].name) == 0) {
                snprintf(buf, len,
                         "cluster profiles %zu and %zu are both named '%s': cluster "
                         "names must be distinct",
                         q + 1, p + 1, opt->profiles[p].name);
                return buf;
            }
    if (!(opt->min_share >= 0 && opt->min_share <= 0.5)) {
        snprintf(buf, len, "min_cluster_share must be from 0 to 0.5");
        return buf;
    }
    if (opt->restarts < 1 || opt->max_iter < 1) {
        snprintf(buf, len, "restarts and max_iter must be at least 1");
        return buf;
    }
    return NULL;
}

void segments_free(segments_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < 125; i++)
        free(m->names[i]);
    if (m->clusters)
        for (size_t c = 0; c < m->k; c++) {
            free(m->clusters[c].name);
            free(m->clusters[c].strategy);
        }
    free(m->clusters);
    free(m->centroids);
    free(m);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Cluster value for ordering: recent, frequent and high spend is best. */
static double value_of(const double *c) { return -c[0] + c[1] + c[2]; }

static rfm_status alloc_model(segments_model **out, size_t k, char *err, size_t errlen)
{
    segments_model *m = calloc(1, sizeof *m);
    if (m) {
        m->k = k;
        m->centroids = calloc(k * 3, sizeof *m->centroids);
        m->clusters = calloc(k, sizeof *m->clusters);
    }
    if (!m || !m->centroids || !m->clusters) {
        segments_free(m);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    for (int i = 0; i <= KMAX; i++)
        m->sil_by_k[i] = m->share_by_k[i] = NAN;
    m->silhouette = NAN;
    *out = m;
    return RFM_OK;
}

typedef struct {
    const double *z;
    size_t n;
    const segments_options *opt;
    size_t kmin, kmax;
    const float *dist;
    size_t ms;
    const size_t *sidx;
    size_t step;
    kmeans_model models[KMAX + 1];
    int *labels[KMAX + 1];
    double sil[KMAX + 1], smallest[KMAX + 1];
    rfm_status st[KMAX + 1];
    char err[KMAX + 1][RFM_ERRLEN];
} sweep;

typedef struct {
    sweep *sw;
    size_t first;
} sweep_arg;

/* Fit k = kmin + first, + step, ... and measure each on the sample. */
static void *sweep_run(void *p)
{
    sweep_arg *a = p;
    sweep *sw = a->sw;
    int *slab = sw->ms ? malloc(sw->ms * sizeof *slab) : NULL;
    for (size_t k = sw->kmin + a->first; k <= sw->kmax; k += sw->step) {
        rfm_rng rng;
        rfm_rng_seed(&rng, sw->opt->seed + 0x9e3779b97f4a7c15ULL * k);
        sw->labels[k] = malloc(sw->n * sizeof *sw->labels[k]);
        if (!sw->labels[k] || (sw->ms && !slab)) {
            sw->st[k] =
                rfm_fail(sw->err[k], RFM_ERRLEN, RFM_ENOMEM, "out of memory for k = %zu", k);
            continue;
        }
        sw->st[k] = kmeans_fit(sw->z, sw->n, 3, k, sw->opt->restarts, sw->opt->max_iter, &rng,
                               &sw->models[k], sw->labels[k], sw->err[k], RFM_ERRLEN);
        if (sw->st[k] != RFM_OK)
            continue;
        size_t cnt[KMAX] = {0}, least = sw->n;
        for (size_t i = 0; i < sw->n; i++)
            cnt[sw->labels[k][i]]++;
        for (size_t c = 0; c < k; c++)
            least = cnt[c] < least ? cnt[c] : least;
        sw->smallest[k] = (double)least / (double)sw->n;
        for (size_t i = 0; i < sw->ms; i++)
            slab[i] = sw->labels[k][sw->sidx[i]];
        sw->sil[k] = kmeans_silhouette_matrix(sw->dist, sw->ms, slab, k);
    }
    free(slab);
    return NULL;
}

/* The inputs segments_fit accepts: options, enough customers for the
 * largest k, non-negative finite values. Sets *kmin, *kmax. */
static rfm_status check_fit_input(const double *const raw[3], size_t n, const segments_options *opt,
                                  size_t *kmin, size_t *kmax, char *err, size_t errlen)
{
    char why[256];
    if (segments_check(opt, why, sizeof why))
        return rfm_fail(err, errlen, RFM_EINVAL, "segments options: %s", why);
    *kmin = (size_t)(opt->k ? opt->k : opt->k_min);
    *kmax = (size_t)(opt->k ? opt->k : opt->k_max);
    if (n < *kmax + 1)
        return rfm_fail(err, errlen, RFM_EDATA, "%zu customers are too few for %zu clusters", n,
                        *kmax);
    for (size_t i = 0; i < n; i++)
        if (!(raw[0][i] >= 0) || !(raw[1][i] >= 0) || !(raw[2][i] >= 0) ||
            !isfinite(raw[0][i] + raw[1][i] + raw[2][i]))
            return rfm_fail(err, errlen, RFM_EDATA,
                            "customer %zu has a negative or non-finite "
                            "recency, frequency or monetary value",
                            i);
    return RFM_OK;
}

/* z (n x 3) = standardised log1p of the raw features, with the mean and
 * population sd used (sd 1 for a constant feature). */
static void standardise(const double *const raw[3], size_t n, double *z, double mean[3],
                        double sd[3])
{
    for (int j = 0; j < 3; j++) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < n; i++)
            s += log1p(raw[j][i]);
        mean[j] = s / (double)n;
        for (size_t i = 0; i < n; i++) {
            double t = log1p(raw[j][i]) - mean[j];
            ss += t * t;
        }
        sd[j] = sqrt(ss / (double)n);
        if (!(sd[j] > 0))
            sd[j] = 1; /* a constant feature carries no information */
        for (size_t i = 0; i < n; i++)
            z[i * 3 + (size_t)j] = (log1p(raw[j][i]) - mean[j]) / sd[j];
    }
}

/* Silhouette on one seeded sample of ms rows of z, measured among itself
 * as scikit-learn's silhouette_score(sample_size=) does; its distance
 * matrix (new in *dist, sample rows in *sidx) is computed once and serves
 * every k. */
static rfm_status silhouette_sample(const double *z, size_t n, size_t ms, uint64_t seed,
                                    size_t **sidx, float **dist, char *err, size_t errlen)
{
    size_t *idx = malloc(n * sizeof *idx);
    float *dm = malloc(ms * ms * sizeof *dm);
    double *xs = malloc(ms * 3 * sizeof *xs);
    if (!idx || !dm || !xs) {
        free(idx), free(dm), free(xs);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for the silhouette sample");
    }
    rfm_rng srng;
    rfm_rng_seed(&srng, seed ^ 0x5111u);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    if (ms < n)
        rfm_rng_shuffle(&srng, idx, n, ms, sizeof *idx);
    for (size_t i = 0; i < ms; i++)
        memcpy(xs + i * 3, z + idx[i] * 3, 3 * sizeof *xs);
    kmeans_distances(xs, ms, 3, dm);
    free(xs);
    *sidx = idx, *dist = dm;
    return RFM_OK;
}

size_t segments_choose_k(size_t kmin, size_t kmax, const double *sil, const double *smallest,
                         double min_share, int *none_eligible)
{
    int any = 0;
    for (size_t k = kmin; k <= kmax; k++)
        any |= smallest[k] >= min_share;
    *none_eligible = !any;
    double top = -INFINITY;
    for (size_t k = kmin; k <= kmax; k++)
        if ((!any || smallest[k] >= min_share) && sil[k] > top)
            top = sil[k];
    for (size_t k = kmin; k <= kmax; k++)
        if ((!any || smallest[k] >= min_share) && sil[k] >= top - SEGMENTS_SIL_TOLERANCE)
            return k;
    return kmin; /* not reached: the best k itself qualifies */
}

/* Fit every k of the sweep, measure each, and keep the k segments_choose_k
 * picks (the only k when kmin == kmax): *best (caller frees), its labels
 * into best_labels, sil_by_k[k] and share_by_k[k] (NAN outside the sweep),
 * *none_eligible. */
static rfm_status sweep_k(const double *z, size_t n, const segments_options *opt, size_t kmin,
                          size_t kmax, const float *dist, size_t ms, const size_t *sidx,
                          kmeans_model *best, int *best_labels, double sil_by_k[KMAX + 1],
                          double share_by_k[KMAX + 1], int *none_eligible, char *err, size_t errlen)
{
    /* The k sweep runs on two threads, each k with its own generator, so
     * the result does not depend on scheduling. */
    sweep sw = {z, n, opt, kmin, kmax, dist, ms, sidx, 2, {{0}}, {0}, {0}, {0}, {0}, {{0}}};
    pthread_t th;
    sweep_arg a1 = {&sw, 1};
    int threaded = kmax > kmin && pthread_create(&th, NULL, sweep_run, &a1) == 0;
    sweep_arg a0 = {&sw, 0};
    if (!threaded)
        sw.step = 1;
    sweep_run(&a0);
    if (threaded)
        pthread_join(th, NULL);
    rfm_status st = RFM_OK;
    for (size_t k = 0; k <= KMAX; k++)
        sil_by_k[k] = share_by_k[k] = NAN;
    for (size_t k = kmin; k <= kmax; k++)
        if (sw.st[k] != RFM_OK) {
            st = rfm_fail(err, errlen, sw.st[k], "%s", sw.err[k]);
            goto done;
        }
    for (size_t k = kmin; k <= kmax; k++)
        sil_by_k[k] = sw.sil[k], share_by_k[k] = sw.smallest[k];
    size_t bestk =
        segments_choose_k(kmin, kmax, sw.sil, sw.smallest, opt->min_share, none_eligible);
    *best = sw.models[bestk];
    sw.models[bestk].centroids = NULL;
    memcpy(best_labels, sw.labels[bestk], n * sizeof *best_labels);
done:
    for (size_t k = kmin; k <= kmax; k++) {
        kmeans_free(&sw.models[k]);
        free(sw.labels[k]);
    }
    return st;
}

/* m's centroids = best's renumbered by value, best first (ties by old
 * index); rank[old] = new number. */
static void renumber(segments_model *m, const kmeans_model *best, size_t rank[KMAX])
{
    size_t k = best->k, order[KMAX];
    for (size_t c = 0; c < k; c++)
        order[c] = c;
    for (size_t a = 1; a < k; a++)
        for (size_t b = a; b > 0 && value_of(best->centroids + order[b] * 3) >
                                        value_of(best->centroids + order[b - 1] * 3);
             b--) {
            size_t t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    for (size_t c = 0; c < k; c++) {
        rank[order[c]] = c;
        memcpy(m->centroids + c * 3, best->centroids + order[c] * 3, 3 * sizeof(double));
    }
}

/* Name m's clusters from opt's profiles: greedily pair the closest
 * (cluster, profile) first. */
static rfm_status name_clusters(segments_model *m, const segments_options *opt, char *err,
                                size_t errlen)
{
    size_t k = m->k;
    int taken_c[KMAX] = {0};
    int *taken_p = calloc(opt->nprofiles, sizeof *taken_p);
    if (!taken_p)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    for (size_t round = 0; round < k; round++) {
        size_t bc = 0, bp = 0;
        double bd = INFINITY;
        for (size_t c = 0; c < k; c++) {
            if (taken_c[c])
                continue;
            for (size_t p = 0; p < opt->nprofiles; p++) {
                if (taken_p[p])
                    continue;
                double dd = 0;
                for (int j = 0; j < 3; j++) {
                    double t = m->centroids[c * 3 + (size_t)j] - opt->profiles[p].target[j];
                    dd += t * t;
                }
                if (dd < bd) {
                    bd = dd;
                    bc = c;
                    bp = p;
                }
            }
        }
        taken_c[bc] = 1;
        taken_p[bp] = 1;
        m->clusters[bc].name = strdup(opt->profiles[bp].name);
        m->clusters[bc].strategy = strdup(opt->profiles[bp].strategy);
        if (!m->clusters[bc].name || !m->clusters[bc].strategy) {
            free(taken_p);
            return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        }
    }
    free(taken_p);
    return RFM_OK;
}

/* Per-cluster summary of the raw features: size, share, mean, median.
 * labels[i] is customer i's (renumbered) cluster; work holds n doubles. */
static void summarise_clusters(segments_model *m, const double *const raw[3], size_t n,
                               const int *labels, double *work)
{
    for (size_t c = 0; c < m->k; c++) {
        cluster_info *ci = &m->clusters[c];
        for (int j = 0; j < 3; j++) {
            size_t cnt = 0;
            double s = 0;
            for (size_t i = 0; i < n; i++)
                if ((size_t)labels[i] == c) {
                    work[cnt++] = raw[j][i];
                    s += raw[j][i];
                }
            ci->customers = cnt;
            ci->share = (double)cnt / (double)n;
            ci->mean[j] = cnt ? s / (double)cnt : 0;
            qsort(work, cnt, sizeof *work, cmp_double);
            ci->median[j] = rfm_quantile(work, cnt, 0.5);
        }
    }
}

/* Each cluster's rule against the others, on the raw features. */
static rfm_status rule_clusters(segments_model *m, const double *const raw[3], size_t n,
                                const int *labels, char *err, size_t errlen)
{
    ruletree_rule rules[KMAX];
    rfm_status st = ruletree_fit_all(raw, 3, n, labels, m->k, rules, err, errlen);
    if (st != RFM_OK)
        return st;
    for (size_t c = 0; c < m->k; c++) {
        m->clusters[c].rule = rules[c];
        m->clusters[c].has_rule = 1;
    }
    return RFM_OK;
}

/* The RFM code -> segment table: each of the 125 codes gets the first
 * rule of opt that covers it. */
static rfm_status map_codes(segments_model *m, const segments_options *opt, char *err,
                            size_t errlen)
{
    for (int a = 1; a <= 5; a++)
        for (int b = 1; b <= 5; b++)
            for (int c = 1; c <= 5; c++) {
                int s[3] = {a, b, c};
                for (size_t r = 0; r < opt->nrules; r++) {
                    const segments_rule *u = &opt->rules[r];
                    if (s[0] >= u->lo[0] && s[0] <= u->hi[0] && s[1] >= u->lo[1] &&
                        s[1] <= u->hi[1] && s[2] >= u->lo[2] && s[2] <= u->hi[2]) {
                        m->names[code_index(s)] = strdup(u->name);
                        break;
                    }
                }
                if (!m->names[code_index(s)])
                    return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            }
    return RFM_OK;
}

rfm_status segments_fit(const double *recency, const double *frequency, const double *monetary,
                        size_t n, const segments_options *opt, segments_model **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    const double *const raw[3] = {recency, frequency, monetary};
    size_t kmin = 0, kmax = 0;
    rfm_status st = check_fit_input(raw, n, opt, &kmin, &kmax, err, errlen);
    if (st != RFM_OK)
        return st;
    double *z = malloc(n * 3 * sizeof *z), *work = malloc(n * sizeof *work);
    int *labels = malloc(n * sizeof *labels), *best_labels = malloc(n * sizeof *best_labels);
    segments_model *m = NULL;
    kmeans_model best = {0};
    size_t *sidx = NULL;
    float *dist = NULL;
    if (!z || !work || !labels || !best_labels) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory for %zu customers", n);
        goto done;
    }
    double mean[3], sd[3];
    standardise(raw, n, z, mean, sd);
    size_t ms =
        n < opt->silhouette_sample || opt->silhouette_sample == 0 ? n : opt->silhouette_sample;
    /* Measured for a fixed k too: the chosen k's quality is reported. */
    if ((st = silhouette_sample(z, n, ms, opt->seed, &sidx, &dist, err, errlen)) != RFM_OK)
        goto done;
    double sil_by_k[KMAX + 1], share_by_k[KMAX + 1];
    int none_eligible = 0;
    if ((st = sweep_k(z, n, opt, kmin, kmax, dist, ms, sidx, &best, best_labels, sil_by_k,
                      share_by_k, &none_eligible, err, errlen)) != RFM_OK ||
        (st = alloc_model(&m, best.k, err, errlen)) != RFM_OK)
        goto done;
    memcpy(m->sil_by_k, sil_by_k, sizeof sil_by_k);
    memcpy(m->share_by_k, share_by_k, sizeof share_by_k);
    m->silhouette = sil_by_k[best.k];
    m->sel = (segments_selection){kmin,           kmax,
                                  opt->k != 0,    opt->k == 0 && none_eligible,
                                  opt->min_share, SEGMENTS_SIL_TOLERANCE};
    m->inertia = best.inertia;
    m->iterations = best.iterations;
    m->converged = best.converged;
    m->n = n;
    memcpy(m->mean, mean, sizeof mean);
    memcpy(m->sd, sd, sizeof sd);
    size_t rank[KMAX];
    renumber(m, &best, rank);
    if ((st = name_clusters(m, opt, err, errlen)) != RFM_OK)
        goto done;
    for (size_t i = 0; i < n; i++)
        labels[i] = (int)rank[best_labels[i]];
    summarise_clusters(m, raw, n, labels, work);
    if ((st = rule_clusters(m, raw, n, labels, err, errlen)) != RFM_OK ||
        (st = rfm_fit(recency, frequency, monetary, n, &m->bounds, err, errlen)) != RFM_OK ||
        (st = map_codes(m, opt, err, errlen)) != RFM_OK)
        goto done;
    *out = m;
    m = NULL;
done:
    segments_free(m);
    kmeans_free(&best);
    free(z);
    free(work);
    free(labels);
    free(best_labels);
    free(sidx);
    free(dist);
    return st;
}

rfm_status segments_predict(const segments_model *m, double recency, double frequency,
                            double monetary, segments_result *res, char *err, size_t errlen)
{
    const double v[3] = {recency, frequency, monetary};
    static const char *const names[3] = {"recency", "frequency", "monetary"};
    double z[3];
    for (int j = 0; j < 3; j++) {
        if (!isfinite(v[j]) || v[j] < 0)
            return rfm_fail(err, errlen, RFM_EINVAL, "%s must be a finite number >= 0", names[j]);
        z[j] = (log1p(v[j]) - m->mean[j]) / m->sd[j];
    }
    size_t c = kmeans_nearest(m->centroids, m->k, 3, z);
    res->cluster = c;
    res->segment = m->clusters[c].name;
    res->strategy = m->clusters[c].strategy;
    rfm_score(&m->bounds, recency, frequency, monetary, res->scores);
    rfm_code(res->scores, res->rfm_score);
    res->rfm_segment = m->names[code_index(res->scores)];
    return RFM_OK;
}

int segments_rule_text(const ruletree_rule *r, char *buf, size_t len)
{
    static const char *const names[3] = {"recency", "frequency", "monetary"};
    static const char *const units[3] = {"days", "invoices", ""};
    return ruletree_format(r, names, units, buf, len);
}

size_t segments_nclusters(const segments_model *m) { return m->k; }
void segments_get_selection(const segments_model *m, segments_selection *out) { *out = m->sel; }
int segments_k_quality(const segments_model *m, size_t k, double *silhouette,
                       double *smallest_share)
{
    if (k > KMAX || isnan(m->share_by_k[k]))
        return 0;
    *silhouette = m->sil_by_k[k];
    *smallest_share = m->share_by_k[k];
    return 1;
}
double segments_silhouette(const segments_model *m) { return m->silhouette; }
long segments_find(const segments_model *m, const char *segment)
{
    for (size_t c = 0; segment && c < m->k; c++)
        if (strcmp(m->clusters[c].name, segment) == 0)
            return (long)c;
    return -1;
}

const char *segments_cluster_name(const segments_model *m, long c)
{
    return c >= 0 && (size_t)c < m->k ? m->clusters[c].name : NULL;
}

long segments_customer_cluster(const segments_model *m, const customer_row *c)
{
    segments_result r;
    char err[128];
    if (!c || segments_predict(m, c->recency, c->frequency, c->monetary, &r, err, sizeof err))
        return -1;
    return (long)r.cluster;
}

size_t segments_ncustomers(const segments_model *m) { return m->n; }
const rfm_bounds *segments_bounds(const segments_model *m) { return &m->bounds; }

const char *segments_rfm_segment(const segments_model *m, const int scores[3])
{
    for (int j = 0; j < 3; j++)
        if (scores[j] < 1 || scores[j] > 5)
            return NULL;
    return m->names[code_index(scores)];
}

void segments_cluster(const segments_model *m, size_t i, segments_cluster_info *out)
{
    const cluster_info *c = &m->clusters[i];
    out->cluster = i;
    out->segment = c->name;
    out->strategy = c->strategy;
    out->customers = c->customers;
    out->share = c->share;
    memcpy(out->mean, c->mean, sizeof c->mean);
    memcpy(out->median, c->median, sizeof c->median);
    out->rule = c->has_rule ? &c->rule : NULL;
}

/* ---- JSON ------------------------------------------------------------ */

static const char *const FEAT[3] = {"recency", "frequency", "monetary"};

/* {"conditions": [{"feature", "op", "value"}...], "in_cluster", "others"} */
static json_t *rule_to_json(const ruletree_rule *r)
{
    json_t *conds = json_array();
    for (int c = 0; conds && c < r->nconds; c++)
        if (json_array_append_new(
                conds,
                json_pack("{s:s,s:s,s:f}", "feature", FEAT[r->cond[c].feature], "op",
                          r->cond[c].op == RULETREE_LE ? "<=" : ">=", "value", r->cond[c].value))) {
            json_decref(conds);
            return NULL;
        }
    return conds ? json_pack("{s:o,s:I,s:I}", "conditions", conds, "in_cluster", (json_int_t)r->tp,
                             "others", (json_int_t)r->fp)
                 : NULL;
}

static rfm_status rule_from_json(const json_t *o, const char *where, size_t npos, size_t nneg,
                                 ruletree_rule *r, char *err, size_t errlen)
{
    const json_t *conds;
    long long tp, fp;
    rfm_status st;
    if ((st = jsonx_array(o, "conditions", where, &conds, err, errlen)) ||
        (st = jsonx_int(o, "in_cluster", where, &tp, err, errlen)) ||
        (st = jsonx_int(o, "others", where, &fp, err, errlen)))
        return st;
    if (json_array_size(conds) > 2 || tp < 0 || fp < 0 || (size_t)tp > npos || (size_t)fp > nneg)
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "%s: at most two conditions, and counts within the customers", where);
    memset(r, 0, sizeof *r);
    r->nconds = (int)json_array_size(conds);
    r->tp = (size_t)tp, r->fp = (size_t)fp, r->npos = npos, r->nneg = nneg;
    for (int c = 0; c < r->nconds; c++) {
        const json_t *e = json_array_get(conds, (size_t)c);
        const char *f, *op;
        char w[128];
        snprintf(w, sizeof w, "%s.conditions[%d]", where, c);
        if ((st = jsonx_string(e, "feature", w, &f, err, errlen)) ||
            (st = jsonx_string(e, "op", w, &op, err, errlen)) ||
            (st = jsonx_number(e, "value", w, &r->cond[c].value, err, errlen)))
            return st;
        r->cond[c].feature = -1;
        for (int j = 0; j < 3; j++)
            if (strcmp(f, FEAT[j]) == 0)
                r->cond[c].feature = j;
        r->cond[c].op = strcmp(op, "<=") == 0   ? RULETREE_LE
                        : strcmp(op, ">=") == 0 ? RULETREE_GE
                                                : -1;
        if (r->cond[c].feature < 0 || r->cond[c].op < 0)
            return rfm_fail(
                err, errlen, RFM_EFORMAT,
                "%s: feature must be recency, frequency or monetary and op <= or >=", w);
    }
    return RFM_OK;
}

rfm_status segments_to_json(const segments_model *m, json_t **out, char *err, size_t errlen)
{
    json_t *j = json_object(), *rfm = json_object(), *bounds = json_object(), *map = json_object(),
           *km = json_object(), *cents = json_array(), *clusters = json_array(),
           *sil = json_object(), *shares = json_object();
    int bad = !j || !rfm || !bounds || !map || !km || !cents || !clusters || !sil || !shares;
    const double *b[3] = {m->bounds.recency, m->bounds.frequency, m->bounds.monetary};
    for (int f = 0; !bad && f < 3; f++)
        bad |= json_object_set_new(bounds, FEAT[f], jsonx_from_doubles(b[f], 4));
    for (int i = 0; !bad && i < 125; i++) {
        char code[4] = {(char)('1' + i / 25), (char)('1' + i / 5 % 5), (char)('1' + i % 5), 0};
        bad |= json_object_set_new(map, code, json_string(m->names[i]));
    }
    for (size_t c = 0; !bad && c < m->k; c++) {
        bad |= json_array_append_new(cents, jsonx_from_doubles(m->centroids + c * 3, 3));
        const cluster_info *ci = &m->clusters[c];
        json_t *o = json_pack("{s:I,s:s,s:s,s:I,s:f}", "cluster", (json_int_t)c, "segment",
                              ci->name, "strategy", ci->strategy, "customers",
                              (json_int_t)ci->customers, "share", ci->share);
        for (int f = 0; o && f < 3; f++)
            bad |= json_object_set_new(
                o, FEAT[f], json_pack("{s:f,s:f}", "mean", ci->mean[f], "median", ci->median[f]));
        if (o && ci->has_rule)
            bad |= json_object_set_new(o, "rule", rule_to_json(&ci->rule));
        bad |= !o || json_array_append_new(clusters, o);
    }
    for (int k = 0; !bad && k <= KMAX; k++) {
        char key[8];
        snprintf(key, sizeof key, "%d", k);
        if (!isnan(m->sil_by_k[k]))
            bad |= json_object_set_new(sil, key, json_real(m->sil_by_k[k]));
        if (!isnan(m->share_by_k[k]))
            bad |= json_object_set_new(shares, key, json_real(m->share_by_k[k]));
    }
    if (!bad) {
        bad |= json_object_set_new(rfm, "bounds", bounds);
        bounds = NULL;
        bad |= json_object_set_new(rfm, "map", map);
        map = NULL;
        bad |= json_object_set_new(km, "k", json_integer((json_int_t)m->k));
        bad |= json_object_set_new(
            km, "features",
            json_pack("[s,s,s]", "log1p_recency", "log1p_frequency", "log1p_monetary"));
        bad |= json_object_set_new(km, "mean", jsonx_from_doubles(m->mean, 3));
        bad |= json_object_set_new(km, "sd", jsonx_from_doubles(m->sd, 3));
        bad |= json_object_set_new(km, "centroids", cents);
        cents = NULL;
        bad |= json_object_set_new(km, "inertia", json_real(m->inertia));
        bad |= json_object_set_new(km, "iterations", json_integer(m->iterations));
        bad |= json_object_set_new(km, "converged", json_boolean(m->converged));
        bad |= json_object_set_new(km, "silhouette",
                                   isnan(m->silhouette) ? json_null() : json_real(m->silhouette));
        bad |= json_object_set_new(km, "silhouette_by_k", sil);
        sil = NULL;
        bad |= json_object_set_new(km, "smallest_share_by_k", shares);
        shares = NULL;
        const segments_selection *q = &m->sel;
        bad |= json_object_set_new(
            km, "selection",
            json_pack("{s:I,s:I,s:b,s:b,s:f,s:f}", "k_min", (json_int_t)q->k_min, "k_max",
                      (json_int_t)q->k_max, "fixed", q->fixed, "none_eligible", q->none_eligible,
                      "min_cluster_share", q->min_share, "tolerance", q->tolerance));
        bad |= json_object_set_new(j, "model", json_string("segments"));
        bad |= json_object_set_new(j, "version", json_string(SEGMENTS_VERSION));
        bad |= json_object_set_new(j, "customers", json_integer((json_int_t)m->n));
        bad |= json_object_set_new(j, "rfm", rfm);
        rfm = NULL;
        bad |= json_object_set_new(j, "kmeans", km);
        km = NULL;
        bad |= json_object_set_new(j, "clusters", clusters);
        clusters = NULL;
    }
    json_decref(rfm), json_decref(bounds), json_decref(map), json_decref(km);
    json_decref(cents), json_decref(clusters), json_decref(sil), json_decref(shares);
    if (bad) {
        json_decref(j);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory writing the segments model");
    }
    *out = j;
    return RFM_OK;
}

rfm_status segments_from_json(const json_t *j, segments_model **out, char *err, size_t errlen)
{
    const char *W = "segments.json";
    const char *s;
    const json_t *rfm, *bounds, *map, *km, *cents, *clusters;
    long long k, n;
    rfm_status st;
    *out = NULL;
    if ((st = jsonx_string(j, "model", W, &s, err, errlen)) != RFM_OK)
        return st;
    if (strcmp(s, "segments") != 0)
        return rfm_fail(err, errlen, RFM_EFORMAT, "%s: not a segments model ('%s')", W, s);
    if ((st = jsonx_string(j, "version", W, &s, err, errlen)) != RFM_OK)
        return st;
    if (strncmp(s, "1.", 2) != 0)
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "%s: model version %s is not readable by this build (expects 1.x); "
                        "retrain with bin/rfm-train --only segments",
                        W, s);
    if ((st = jsonx_object(j, "rfm", W, &rfm, err, errlen)) ||
        (st = jsonx_object(rfm, "bounds", "segments.json: rfm", &bounds, err, errlen)) ||
        (st = jsonx_object(rfm, "map", "segments.json: rfm", &map, err, errlen)) ||
        (st = jsonx_object(j, "kmeans", W, &km, err, errlen)) ||
        (st = jsonx_int(km, "k", "segments.json: kmeans", &k, err, errlen)) ||
        (st = jsonx_int(j, "customers", W, &n, err, errlen)) ||
        (st = jsonx_array(km, "centroids", "segments.json: kmeans", &cents, err, errlen)) ||
        (st = jsonx_array(j, "clusters", W, &clusters, err, errlen)))
        return st;
    if (k < 1 || k > KMAX || json_array_size(cents) != (size_t)k ||
        json_array_size(clusters) != (size_t)k)
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "%s: kmeans.k, kmeans.centroids and clusters disagree", W);
    segments_model *m;
    if ((st = alloc_model(&m, (size_t)k, err, errlen)) != RFM_OK)
        return st;
    m->n = (size_t)n;
    double *b[3] = {m->bounds.recency, m->bounds.frequency, m->bounds.monetary};
    const char *KW = "segments.json: kmeans";
    for (int f = 0; f < 3 && !st; f++)
        st = jsonx_numbers(bounds, FEAT[f], "segments.json: rfm.bounds", b[f], 4, err, errlen);
    if (!st)
        st = jsonx_numbers(km, "mean", KW, m->mean, 3, err, errlen);
    if (!st)
        st = jsonx_numbers(km, "sd", KW, m->sd, 3, err, errlen);
    for (int f = 0; f < 3 && !st; f++)
        if (!(m->sd[f] > 0))
            st = rfm_fail(err, errlen, RFM_EFORMAT, "%s.sd[%d]: must be positive", KW, f);
    for (int i = 0; i < 125 && !st; i++) {
        char code[4] = {(char)('1' + i / 25), (char)('1' + i / 5 % 5), (char)('1' + i % 5), 0};
        const char *name;
        if ((st = jsonx_string(map, code, "segments.json: rfm.map", &name, err, errlen)) ==
                RFM_OK &&
            !(m->names[i] = strdup(name)))
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    for (size_t c = 0; c < (size_t)k && !st; c++) {
        char where[64];
        const json_t *o = json_array_get(clusters, c), *cent = json_array_get(cents, c);
        snprintf(where, sizeof where, "segments.json: kmeans.centroids[%zu]", c);
        st = jsonx_vec(cent, where, m->centroids + c * 3, 3, err, errlen);
        snprintf(where, sizeof where, "segments.json: clusters[%zu]", c);
        const char *name, *strategy;
        long long ncust;
        cluster_info *ci = &m->clusters[c];
        if (st || (st = jsonx_string(o, "segment", where, &name, err, errlen)) ||
            (st = jsonx_string(o, "strategy", where, &strategy, err, errlen)) ||
            (st = jsonx_int(o, "customers", where, &ncust, err, errlen)) ||
            (st = jsonx_number(o, "share", where, &ci->share, err, errlen)))
            break;
        ci->customers = (size_t)ncust;
        for (int f = 0; f < 3 && !st; f++) {
            const json_t *stats;
            char w2[96];
            snprintf(w2, sizeof w2, "%s.%s", where, FEAT[f]);
            if (!(st = jsonx_object(o, FEAT[f], where, &stats, err, errlen)) &&
                !(st = jsonx_number(stats, "mean", w2, &ci->mean[f], err, errlen)))
                st = jsonx_number(stats, "median", w2, &ci->median[f], err, errlen);
        }
        if (!st && (!(ci->name = strdup(name)) || !(ci->strategy = strdup(strategy))))
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        const json_t *rule = json_object_get(o, "rule"); /* none before 1.1 */
        if (!st && rule) {
            char w2[96];
            snprintf(w2, sizeof w2, "%s.rule", where);
            if (ci->customers > (size_t)n)
                st = rfm_fail(err, errlen, RFM_EFORMAT, "%s.customers: more than the model's",
                              where);
            else if (!(st = rule_from_json(rule, w2, ci->customers, (size_t)n - ci->customers,
                                           &ci->rule, err, errlen)))
                ci->has_rule = 1;
        }
        for (size_t o2 = 0; !st && o2 < c; o2++)
            if (strcmp(m->clusters[o2].name, ci->name) == 0)
                st = rfm_fail(err, errlen, RFM_EFORMAT,
                              "%s: clusters %zu and %zu are both named '%s'; retrain with "
                              "bin/rfm-train --only segments",
                              W, o2, c, ci->name);
    }
    if (!st) {
        const json_t *v = json_object_get(km, "silhouette");
        m->silhouette = json_is_number(v) ? json_number_value(v) : NAN;
        v = json_object_get(km, "inertia");
        m->inertia = json_is_number(v) ? json_number_value(v) : NAN;
        const json_t *sbk = json_object_get(km, "silhouette_by_k");
        const char *key;
        json_t *val;
        if (json_is_object(sbk))
            json_object_foreach((json_t *)sbk, key, val)
            {
                int kk = atoi(key);
                if (kk >= 0 && kk <= KMAX && json_is_number(val))
                    m->sil_by_k[kk] = json_number_value(val);
            }
        sbk = json_object_get(km, "smallest_share_by_k");
        if (json_is_object(sbk))
            json_object_foreach((json_t *)sbk, key, val)
            {
                int kk = atoi(key);
                if (kk >= 0 && kk <= KMAX && json_is_number(val))
                    m->share_by_k[kk] = json_number_value(val);
            }
        const json_t *q = json_object_get(km, "selection");
        m->sel = (segments_selection){(size_t)k, (size_t)k, 1, 0, NAN, NAN};
        if (json_is_object(q)) {
            json_int_t lo = json_integer_value(json_object_get(q, "k_min")),
                       hi = json_integer_value(json_object_get(q, "k_max"));
            if (lo >= 1 && lo <= hi && hi <= KMAX)
                m->sel.k_min = (size_t)lo, m->sel.k_max = (size_t)hi;
            m->sel.fixed = json_is_true(json_object_get(q, "fixed"));
            m->sel.none_eligible = json_is_true(json_object_get(q, "none_eligible"));
            m->sel.min_share = json_number_value(json_object_get(q, "min_cluster_share"));
            m->sel.tolerance = json_number_value(json_object_get(q, "tolerance"));
        }
    }
    if (st) {
        segments_free(m);
        return st;
    }
    *out = m;
    return RFM_OK;
}
