/* uplift.c - T-learner and causal forest uplift models, Qini/AUUC evaluation. */
#include "uplift.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

struct uplift_model {
    uplift_learner learner;
    size_t d;
    int n_arms;
    int centre;
    forest *control;
    forest **arms; /* n_arms forests: regression (T) or causal */
};

void uplift_default_params(uplift_params *p, uplift_learner learner)
{
    memset(p, 0, sizeof *p);
    p->learner = learner;
    forest_default_params(&p->outcome, FOREST_REGRESSION);
    forest_default_params(&p->effect, FOREST_CAUSAL);
    p->centre = 1;
    p->seed = 1;
    p->n_threads = 2;
    p->holdout = 0.3;
}

const char *uplift_check_params(const uplift_params *p)
{
    if (p->learner != UPLIFT_T_LEARNER && p->learner != UPLIFT_CAUSAL_FOREST)
        return "learner must be t_learner or causal_forest";
    if (p->centre != 0 && p->centre != 1)
        return "centre must be 0 or 1";
    if (p->n_threads < 1 || p->n_threads > 64)
        return "n_threads must be in 1..64";
    if (p->choose_learner != 0 && p->choose_learner != 1)
        return "choose_learner must be 0 or 1";
    if (!(p->holdout >= 0.05 && p->holdout <= 0.9))
        return "holdout must be a number from 0.05 to 0.9";
    if (p->outcome.kind != FOREST_REGRESSION)
        return "outcome forest must be a regression forest";
    if (p->effect.kind != FOREST_CAUSAL)
        return "effect forest must be a causal forest";
    const char *why = forest_check_params(&p->outcome);
    if (why)
        return why;
    return forest_check_params(&p->effect);
}

const char *uplift_learner_name(uplift_learner l)
{
    return l == UPLIFT_CAUSAL_FOREST ? "causal_forest" : "t_learner";
}

uplift_learner uplift_get_learner(const uplift_model *m) { return m->learner; }
int uplift_n_arms(const uplift_model *m) { return m->n_arms; }
size_t uplift_n_features(const uplift_model *m) { return m->d; }

void uplift_free(uplift_model *m)
{
    if (!m)
        return;
    forest_free(m->control);
    if (m->arms)
        for (int k = 0; k < m->n_arms; k++)
            forest_free(m->arms[k]);
    free(m->arms);
    free(m);
}

/* Distinct seeds per forest role (0 = control, k = arm k). */
static uint64_t role_seed(uint64_t seed, int role)
{
    rfm_rng r;
    rfm_rng_seed(&r, seed ^ (0xd1b54a32d192ed03ULL * (uint64_t)(role + 1)));
    return rfm_rng_u64(&r);
}

/* Rows with arm a or b copied into Xs/ys, their indices into rows; ws (if
 * non-NULL) gets the treatment indicator 1{arm == b} (b != a). */
static size_t gather(const double *X, const double *y, const int *arm, size_t n, size_t d, int a,
                     int b, double *Xs, double *ys, uint8_t *ws, size_t *rows)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (arm[i] != a && arm[i] != b)
            continue;
        memcpy(Xs + m * d, X + i * d, d * sizeof *Xs);
        ys[m] = y[i];
        if (ws)
            ws[m] = (uint8_t)(arm[i] == b && b != a);
        rows[m] = i;
        m++;
    }
    return m;
}

rfm_status uplift_fit(const double *X, size_t n, size_t d, const int *arm, int n_arms,
                      const double *y, const uplift_params *p, uplift_model **out, char *err,
                      size_t errlen)
{
    const char *why = uplift_check_params(p);
    if (why)
        return rfm_fail(err, errlen, RFM_EINVAL, "uplift: %s", why);
    if (!X || !arm || !y || !out || d == 0)
        return rfm_fail(err, errlen, RFM_EINVAL, "uplift: need X, arm, y and >= 1 feature");
    if (n_arms < 1 || n_arms > UPLIFT_MAX_ARMS)
        return rfm_fail(err, errlen, RFM_EINVAL, "uplift: n_arms %d not in 1..%d", n_arms,
                        UPLIFT_MAX_ARMS);
    size_t count[UPLIFT_MAX_ARMS + 1] = {0};
    for (size_t i = 0; i < n; i++) {
        if (arm[i] < 0 || arm[i] > n_arms)
            return rfm_fail(err, errlen, RFM_EINVAL, "uplift: arm[%zu] = %d not in 0..%d", i,
                            arm[i], n_arms);
        count[arm[i]]++;
    }
    for (int k = 0; k <= n_arms; k++)
        if (count[k] < 2)
            return rfm_fail(err, errlen, RFM_EDATA, "uplift: %s has %zu rows (need >= 2)",
                            k == 0 ? "control" : "an arm", count[k]);

    rfm_status st = RFM_ENOMEM;
    uplift_model *m = calloc(1, sizeof *m);
    double *Xs = malloc(n * d * sizeof *Xs), *ys = malloc(n * sizeof *ys);
    double *mu0 = malloc(n * sizeof *mu0), *oob = malloc(n * sizeof *oob);
    uint8_t *ws = malloc(n);
    size_t *rows = malloc(n * sizeof *rows);
    if (!m || !Xs || !ys || !mu0 || !oob || !ws || !rows) {
        rfm_fail(err, errlen, st, "uplift: out of memory");
        goto done;
    }
    m->learner = p->learner;
    m->d = d;
    m->n_arms = n_arms;
    m->centre = p->learner == UPLIFT_CAUSAL_FOREST && p->centre;
    m->arms = calloc((size_t)n_arms, sizeof *m->arms);
    if (!m->arms) {
        rfm_fail(err, errlen, st, "uplift: out of memory");
        goto done;
    }

    forest_params fp = p->outcome;
    fp.seed = role_seed(p->seed, 0);
    fp.n_threads = p->n_threads;
    size_t nc = gather(X, y, arm, n, d, 0, 0, Xs, ys, NULL, rows);
    st = forest_fit(Xs, nc, d, ys, NULL, &fp, m->centre ? oob : NULL, &m->control, err, errlen);
    if (st != RFM_OK)
        goto done;
    if (m->centre) {
        /* Control rows centre on out-of-bag predictions, treated rows on the
         * full forest (they were never in its sample). */
        for (size_t i = 0; i < n; i++)
            if (arm[i] != 0)
                mu0[i] = forest_predict(m->control, X + i * d);
        for (size_t r = 0; r < nc; r++)
            mu0[rows[r]] = oob[r];
    }

    for (int k = 1; k <= n_arms; k++) {
        if (p->learner == UPLIFT_T_LEARNER) {
            fp = p->outcome;
            size_t nk = gather(X, y, arm, n, d, k, k, Xs, ys, NULL, rows);
            fp.seed = role_seed(p->seed, k);
            fp.n_threads = p->n_threads;
            st = forest_fit(Xs, nk, d, ys, NULL, &fp, NULL, &m->arms[k - 1], err, errlen);
        } else {
            fp = p->effect;
            size_t nk = gather(X, y, arm, n, d, 0, k, Xs, ys, ws, rows);
            if (m->centre)
                for (size_t r = 0; r < nk; r++)
                    ys[r] -= mu0[rows[r]];
            fp.seed = role_seed(p->seed, k);
            fp.n_threads = p->n_threads;
            st = forest_fit(Xs, nk, d, ys, ws, &fp, NULL, &m->arms[k - 1], err, errlen);
        }
        if (st != RFM_OK)
            goto done;
    }
    *out = m;
    m = NULL;
done:
    uplift_free(m);
    free(Xs);
    free(ys);
    free(mu0);
    free(oob);
    free(ws);
    free(rows);
    return st;
}

rfm_status uplift_predict(const uplift_model *m, const double *x, double *uplift,
                          double *outcome_control, char *err, size_t errlen)
{
    for (size_t f = 0; f < m->d; f++)
        if (!isfinite(x[f]))
            return rfm_fail(err, errlen, RFM_EINVAL, "uplift: feature %zu is not finite", f);
    double c =
        m->learner == UPLIFT_T_LEARNER || outcome_control ? forest_predict(m->control, x) : 0.0;
    for (int k = 0; k < m->n_arms; k++) {
        double v = forest_predict(m->arms[k], x);
        uplift[k] = m->learner == UPLIFT_T_LEARNER ? v - c : v;
    }
    if (outcome_control)
        *outcome_control = c;
    return RFM_OK;
}

/* ---- JSON ------------------------------------------------------------- */

#define UPLIFT_FORMAT "rfm-uplift"
#define UPLIFT_VERSION 1

rfm_status uplift_to_json(const uplift_model *m, json_t **out, char *err, size_t errlen)
{
    json_t *j = json_object(), *arms = json_array(), *fj = NULL;
    rfm_status st = RFM_ENOMEM;
    if (!j || !arms)
        goto fail;
    int bad = json_object_set_new(j, "format", json_string(UPLIFT_FORMAT));
    bad |= json_object_set_new(j, "version", json_integer(UPLIFT_VERSION));
    bad |= json_object_set_new(j, "learner", json_string(uplift_learner_name(m->learner)));
    bad |= json_object_set_new(j, "n_features", json_integer((json_int_t)m->d));
    bad |= json_object_set_new(j, "n_arms", json_integer(m->n_arms));
    bad |= json_object_set_new(j, "centre", json_boolean(m->centre));
    if (bad)
        goto fail;
    st = forest_to_json(m->control, &fj, err, errlen);
    if (st != RFM_OK)
        goto fail;
    st = RFM_ENOMEM;
    if (json_object_set_new(j, "control", fj))
        goto fail;
    for (int k = 0; k < m->n_arms; k++) {
        st = forest_to_json(m->arms[k], &fj, err, errlen);
        if (st != RFM_OK)
            goto fail;
        st = RFM_ENOMEM;
        if (json_array_append_new(arms, fj))
            goto fail;
    }
    if (json_object_set(j, "arms", arms))
        goto fail;
    json_decref(arms);
    *out = j;
    return RFM_OK;
fail:
    json_decref(j);
    json_decref(arms);
    if (st == RFM_ENOMEM)
        rfm_fail(err, errlen, st, "uplift: out of memory writing JSON");
    return st;
}

rfm_status uplift_from_json(const json_t *j, uplift_model **out, char *err, size_t errlen)
{
    const char *fmt = json_string_value(json_object_get(j, "format"));
    const json_t *ver = json_object_get(j, "version");
    if (!fmt || strcmp(fmt, UPLIFT_FORMAT) || !json_is_integer(ver) ||
        json_integer_value(ver) != UPLIFT_VERSION)
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "uplift: not an %s version %d model (field 'format'/'version'); "
                        "regenerate it with bin/rfm-train --only uplift",
                        UPLIFT_FORMAT, UPLIFT_VERSION);
    uplift_model *m = calloc(1, sizeof *m);
    if (!m)
        return rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory");
    rfm_status st = RFM_EFORMAT;
    const char *ln = json_string_value(json_object_get(j, "learner"));
    const json_t *nf = json_object_get(j, "n_features"), *na = json_object_get(j, "n_arms");
    const json_t *ce = json_object_get(j, "centre"), *arms = json_object_get(j, "arms");
    if (ln && !strcmp(ln, "t_learner"))
        m->learner = UPLIFT_T_LEARNER;
    else if (ln && !strcmp(ln, "causal_forest"))
        m->learner = UPLIFT_CAUSAL_FOREST;
    else {
        rfm_fail(err, errlen, st, "uplift: field 'learner' missing or invalid");
        goto fail;
    }
    if (!json_is_integer(nf) || json_integer_value(nf) < 1) {
        rfm_fail(err, errlen, st, "uplift: field 'n_features' missing or invalid");
        goto fail;
    }
    m->d = (size_t)json_integer_value(nf);
    if (!json_is_integer(na) || json_integer_value(na) < 1 ||
        json_integer_value(na) > UPLIFT_MAX_ARMS) {
        rfm_fail(err, errlen, st, "uplift: field 'n_arms' missing or invalid");
        goto fail;
    }
    int K = (int)json_integer_value(na);
    if (!json_is_boolean(ce)) {
        rfm_fail(err, errlen, st, "uplift: field 'centre' missing or invalid");
        goto fail;
    }
    m->centre = json_is_true(ce);
    if (!json_is_array(arms) || json_array_size(arms) != (size_t)K) {
        rfm_fail(err, errlen, st, "uplift: field 'arms' missing or not %d forests", K);
        goto fail;
    }
    m->arms = calloc((size_t)K, sizeof *m->arms);
    if (!m->arms) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory");
        goto fail;
    }
    st = forest_from_json(json_object_get(j, "control"), &m->control, err, errlen);
    if (st != RFM_OK)
        goto fail;
    st = RFM_EFORMAT;
    if (forest_get_kind(m->control) != FOREST_REGRESSION || forest_n_features(m->control) != m->d) {
        rfm_fail(err, errlen, st, "uplift: field 'control' is not a %zu-feature regression forest",
                 m->d);
        goto fail;
    }
    forest_kind want = m->learner == UPLIFT_T_LEARNER ? FOREST_REGRESSION : FOREST_CAUSAL;
    for (int k = 0; k < K; k++) {
        st = forest_from_json(json_array_get(arms, (size_t)k), &m->arms[k], err, errlen);
        m->n_arms = k + 1; /* so uplift_free releases what was loaded */
        if (st != RFM_OK)
            goto fail;
        if (forest_get_kind(m->arms[k]) != want || forest_n_features(m->arms[k]) != m->d) {
            st = rfm_fail(err, errlen, RFM_EFORMAT,
                          "uplift: field 'arms[%d]' has the wrong kind or size", k);
            goto fail;
        }
    }
    *out = m;
    return RFM_OK;
fail:
    uplift_free(m);
    return st;
}

/* ---- held-out split ---------------------------------------------------- */

rfm_status uplift_holdout(const int *arm, size_t n, double test_frac, uint64_t seed,
                          uint8_t *is_test, char *err, size_t errlen)
{
    if (!(test_frac >= 0.0 && test_frac <= 1.0))
        return rfm_fail(err, errlen, RFM_EINVAL, "uplift: test_frac %g not in [0, 1]", test_frac);
    for (size_t i = 0; i < n; i++)
        if (arm[i] < 0 || arm[i] > UPLIFT_MAX_ARMS)
            return rfm_fail(err, errlen, RFM_EINVAL, "uplift: arm[%zu] = %d out of range", i,
                            arm[i]);
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx)
        return rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory");
    rfm_rng rng;
    rfm_rng_seed(&rng, seed);
    memset(is_test, 0, n);
    for (int a = 0; a <= UPLIFT_MAX_ARMS; a++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (arm[i] == a)
                idx[m++] = i;
        size_t want = (size_t)floor(test_frac * (double)m + 0.5);
        rfm_rng_shuffle(&rng, idx, m, want, sizeof *idx);
        for (size_t i = 0; i < want; i++)
            is_test[idx[i]] = 1;
    }
    free(idx);
    return RFM_OK;
}

/* ---- evaluation -------------------------------------------------------- */

typedef struct {
    double s;
    double y;
    uint8_t t;
} evrow;

/* Descending score. The order inside a tie group is irrelevant: the curves
 * are only evaluated at the end of each group. */
static int cmp_evrow(const void *a, const void *b)
{
    double x = ((const evrow *)a)->s, y = ((const evrow *)b)->s;
    return (x < y) - (x > y);
}

typedef struct {
    size_t np; /* points incl. (0, 0) */
    double *x; /* N */
    double *q; /* Qini */
    double *u; /* uplift */
} curve;

/* Curves of rows r (sorted here by r[i].s) at the end of each tie group. */
static void curves(evrow *r, size_t m, curve *c)
{
    qsort(r, m, sizeof *r, cmp_evrow);
    double nt = 0, nc = 0, yt = 0, yc = 0;
    c->x[0] = c->q[0] = c->u[0] = 0.0;
    size_t np = 1;
    for (size_t i = 0; i < m; i++) {
        if (r[i].t) {
            nt += 1;
            yt += r[i].y;
        } else {
            nc += 1;
            yc += r[i].y;
        }
        if (i + 1 < m && r[i + 1].s == r[i].s)
            continue;
        double N = (double)(i + 1);
        c->x[np] = N;
        c->q[np] = yt - (nc > 0 ? yc * nt / nc : 0.0);
        c->u[np] = ((nt > 0 ? yt / nt : 0.0) - (nc > 0 ? yc / nc : 0.0)) * N;
        np++;
    }
    c->np = np;
}

static double trapezoid(const double *x, const double *v, size_t np)
{
    double a = 0;
    for (size_t i = 1; i < np; i++)
        a += (x[i] - x[i - 1]) * (v[i] + v[i - 1]) * 0.5;
    return a;
}

/* Linear interpolation of (x, v) at X (x ascending, x[0] = 0 <= X <= x[np-1]). */
static double interp(const double *x, const double *v, size_t np, double X, size_t *hint)
{
    size_t i = *hint;
    while (i + 1 < np && x[i + 1] < X)
        i++;
    *hint = i;
    if (i + 1 >= np)
        return v[np - 1];
    double span = x[i + 1] - x[i];
    return span > 0 ? v[i] + (v[i + 1] - v[i]) * (X - x[i]) / span : v[i + 1];
}

rfm_status uplift_evaluate(const double *y, const int *arm, const double *score, size_t n, int k,
                           uplift_eval *out, char *err, size_t errlen)
{
    if (!y || !arm || !score || !out || k < 1)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "uplift: evaluate needs y, arm, score and arm k >= 1");
    size_t m = 0, nt = 0;
    int binary = 1;
    for (size_t i = 0; i < n; i++) {
        if (arm[i] != 0 && arm[i] != k)
            continue;
        if (!isfinite(y[i]) || !isfinite(score[i]))
            return rfm_fail(err, errlen, RFM_EINVAL, "uplift: y or score of row %zu is not finite",
                            i);
        if (y[i] != 0.0 && y[i] != 1.0)
            binary = 0;
        m++;
        nt += arm[i] == k;
    }
    if (nt == 0 || nt == m)
        return rfm_fail(
            err, errlen, RFM_EDATA,
            "uplift: evaluating arm %d needs treated and control rows (%zu of %zu treated)", k, nt,
            m);
    evrow *r = malloc(m * sizeof *r);
    double *buf = malloc(3 * (m + 1) * sizeof *buf);
    double *pbuf = malloc(3 * (m + 1) * sizeof *pbuf);
    if (!r || !buf || !pbuf) {
        free(r);
        free(buf);
        free(pbuf);
        return rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory");
    }
    curve model = {0, buf, buf + m + 1, buf + 2 * (m + 1)};
    curve perf = {0, pbuf, pbuf + m + 1, pbuf + 2 * (m + 1)};
    uplift_eval e;
    memset(&e, 0, sizeof e);
    e.n = m;
    e.n_treated = nt;
    e.n_control = m - nt;

    size_t j = 0, cr = 0, tn = 0;
    for (size_t i = 0; i < n; i++) {
        if (arm[i] != 0 && arm[i] != k)
            continue;
        r[j++] = (evrow){score[i], y[i], (uint8_t)(arm[i] == k)};
        cr += arm[i] == 0 && y[i] == 1.0;
        tn += arm[i] == k && y[i] == 0.0;
    }
    curves(r, m, &model);
    e.qini_area = trapezoid(model.x, model.q, model.np);
    e.uplift_area = trapezoid(model.x, model.u, model.np);
    double last_q = model.q[model.np - 1], last_u = model.u[model.np - 1];
    e.qini_random = (double)m * last_q * 0.5;
    e.uplift_random = (double)m * last_u * 0.5;

    /* Qini oracle: treated by outcome first, control by outcome last. */
    for (size_t i = 0; i < m; i++)
        r[i].s = r[i].t ? r[i].y : -r[i].y;
    curves(r, m, &perf);
    e.qini_perfect = trapezoid(perf.x, perf.q, perf.np);
    if (binary) {
        int use_y = cr > tn;
        for (size_t i = 0; i < m; i++)
            r[i].s = 2.0 * ((r[i].y == 1.0) == (r[i].t == 1)) + (use_y ? r[i].y : (double)r[i].t);
        curves(r, m, &perf);
    }
    e.uplift_perfect = trapezoid(perf.x, perf.u, perf.np);

    e.qini_coef = e.qini_area - e.qini_random;
    e.auuc = e.uplift_area - e.uplift_random;
    double qd = e.qini_perfect - e.qini_random, ud = e.uplift_perfect - e.uplift_random;
    e.qini_norm = qd != 0.0 ? e.qini_coef / qd : 0.0;
    e.auuc_norm = ud != 0.0 ? e.auuc / ud : 0.0;

    e.n_points = UPLIFT_CURVE_POINTS;
    size_t hq = 0, hu = 0;
    for (int p = 0; p < UPLIFT_CURVE_POINTS; p++) {
        double fr = (double)p / (UPLIFT_CURVE_POINTS - 1);
        e.frac[p] = fr;
        e.qini[p] = interp(model.x, model.q, model.np, fr * (double)m, &hq);
        e.uplift[p] = interp(model.x, model.u, model.np, fr * (double)m, &hu);
    }
    free(r);
    free(buf);
    free(pbuf);
    *out = e;
    return RFM_OK;
}

int uplift_best_arm(const double *uplift, int n_arms, const double *value, const double *cost,
                    double *gain)
{
    int best = 0;
    double best_score = 0;
    for (int k = 1; k <= n_arms; k++) {
        double score = uplift[k - 1];
        if (value) {
            score = uplift[k - 1] * *value - (cost ? cost[k - 1] : 0);
            if (gain)
                gain[k - 1] = score;
        }
        if (score > best_score) {
            best_score = score;
            best = k;
        }
    }
    return best;
}

rfm_status uplift_holdout_eval(const double *X, size_t n, size_t d, const int *arm, int n_arms,
                               const double *y, const uint8_t *is_test, const uplift_params *p,
                               uplift_learner learner, uplift_eval *ev, double *mean_qini_norm,
                               char *err, size_t errlen)
{
    size_t ntr = 0, nte = 0, K = n_arms > 0 ? (size_t)n_arms : 1;
    for (size_t i = 0; i < n; i++)
        is_test[i] ? nte++ : ntr++;
    double *Xtr = malloc((ntr ? ntr : 1) * d * sizeof *Xtr),
           *ytr = malloc((ntr ? ntr : 1) * sizeof *ytr);
    int *atr = calloc(ntr ? ntr : 1, sizeof *atr), *ate = malloc((nte ? nte : 1) * sizeof *ate);
    double *yte = malloc((nte ? nte : 1) * sizeof *yte),
           *score = malloc((nte ? nte : 1) * sizeof *score);
    double *u = malloc(K * sizeof *u), *scores = malloc((nte ? nte : 1) * K * sizeof *scores);
    uplift_model *m = NULL;
    rfm_status st = RFM_OK;
    if (!Xtr || !ytr || !atr || !ate || !yte || !score || !u || !scores) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    size_t a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_test[i]) {
            ate[b] = arm[i], yte[b] = y[i];
            b++;
        } else {
            memcpy(Xtr + a * d, X + i * d, d * sizeof *Xtr);
            atr[a] = arm[i], ytr[a] = y[i];
            a++;
        }
    }
    uplift_params q = *p;
    q.learner = learner;
    if ((st = uplift_fit(Xtr, ntr, d, atr, n_arms, ytr, &q, &m, err, errlen)))
        goto out;
    b = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_test[i])
            continue;
        double oc;
        if ((st = uplift_predict(m, X + i * d, u, &oc, err, errlen)))
            goto out;
        memcpy(scores + b * K, u, K * sizeof *u);
        b++;
    }
    *mean_qini_norm = 0;
    for (int k = 1; k <= n_arms; k++) {
        for (size_t i = 0; i < nte; i++)
            score[i] = scores[i * K + (size_t)(k - 1)];
        if ((st = uplift_evaluate(yte, ate, score, nte, k, &ev[k - 1], err, errlen)))
            goto out;
        *mean_qini_norm += ev[k - 1].qini_norm / n_arms;
    }
out:
    uplift_free(m);
    free(Xtr), free(ytr), free(atr), free(ate), free(yte), free(score), free(u), free(scores);
    return st;
}

uplift_learner uplift_choose_learner(const uplift_params *p, const double mean_qini_norm[2])
{
    if (!p->choose_learner)
        return p->learner;
    return mean_qini_norm[UPLIFT_CAUSAL_FOREST] >= mean_qini_norm[UPLIFT_T_LEARNER]
               ? UPLIFT_CAUSAL_FOREST
               : UPLIFT_T_LEARNER;
}
