/* uplift.c - T-, X- and DR-learners, causal forest and single-feature rule
 * uplift models; Qini/AUUC evaluation with bootstrap intervals (see uplift.h). */
#include "uplift.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

struct uplift_model {
    uplift_learner learner;
    size_t d;
    int n_arms;
    int centre;
    forest *control;
    forest **arms;      /* n_arms forests: regression (T: mu_k; X: tau1; DR: tau) or causal */
    forest **arms0;     /* X-learner: tau0 per arm */
    double *prop;       /* X-learner: e_k per arm */
    uplift_rule *rules; /* rule: one per arm (arms is then NULL) */
    int tuned_leaf, tuned_mtry;
    double tuned_qini;
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
    p->folds = 2;
    p->nuisance_trees = 50;
    p->rule_min_share = 0.05;
    p->holdout = 0.3;
    p->n_boot = 200;
}

const char *uplift_check_params(const uplift_params *p)
{
    if ((int)p->learner < 0 || p->learner >= UPLIFT_N_LEARNERS)
        return "learner must be t_learner, causal_forest, x_learner, dr_learner or rule";
    if (p->tune != 0 && p->tune != 1)
        return "tune must be 0 or 1";
    if (p->folds < 2 || p->folds > 10)
        return "folds must be in 2..10";
    if (p->nuisance_trees < 0 || p->nuisance_trees > 100000)
        return "nuisance_trees must be in 0..100000";
    if (!(p->rule_min_share > 0.0 && p->rule_min_share <= 0.5))
        return "rule_min_share must be in (0, 0.5]";
    if (p->n_boot < 0 || p->n_boot > 10000)
        return "n_boot must be in 0..10000";
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

static const char *const LEARNER_NAMES[UPLIFT_N_LEARNERS] = {"t_learner", "causal_forest",
                                                             "x_learner", "dr_learner", "rule"};

const char *uplift_learner_name(uplift_learner l)
{
    return (int)l >= 0 && l < UPLIFT_N_LEARNERS ? LEARNER_NAMES[l] : "unknown";
}

int uplift_learner_from_name(const char *name)
{
    for (int l = 0; name && l < UPLIFT_N_LEARNERS; l++)
        if (!strcmp(name, LEARNER_NAMES[l]))
            return l;
    return -1;
}

rfm_status uplift_get_rule(const uplift_model *m, int k, uplift_rule *out)
{
    if (m->learner != UPLIFT_RULE || k < 1 || k > m->n_arms)
        return RFM_EINVAL;
    *out = m->rules[k - 1];
    return RFM_OK;
}

void uplift_get_tuning(const uplift_model *m, int *min_leaf, int *mtry, double *inner_qini)
{
    *min_leaf = m->tuned_leaf;
    *mtry = m->tuned_mtry;
    *inner_qini = m->tuned_qini;
}

uplift_learner uplift_get_learner(const uplift_model *m) { return m->learner; }
int uplift_n_arms(const uplift_model *m) { return m->n_arms; }
size_t uplift_n_features(const uplift_model *m) { return m->d; }

void uplift_free(uplift_model *m)
{
    if (!m)
        return;
    forest_free(m->control);
    for (int k = 0; k < m->n_arms; k++) {
        if (m->arms)
            forest_free(m->arms[k]);
        if (m->arms0)
            forest_free(m->arms0[k]);
    }
    free(m->arms);
    free(m->arms0);
    free(m->prop);
    free(m->rules);
    free(m);
}

/* Distinct seeds per forest role (0 = control, k = arm k). */
static uint64_t role_seed(uint64_t seed, int role)
{
    rfm_rng r;
    rfm_rng_seed(&r, seed ^ (0xd1b54a32d192ed03ULL * (uint64_t)(role + 1)));
    return rfm_rng_u64(&r);
}

/* ---- predictions over many rows, on threads ------------------------------ */

typedef struct {
    const forest *f;
    const uplift_model *m;
    const double *X;
    size_t d;
    const size_t *rows;
    double *out; /* forest: one per row; model: n_arms per row */
    size_t lo, hi;
} predict_job;

static void *predict_chunk(void *arg)
{
    const predict_job *j = arg;
    for (size_t r = j->lo; r < j->hi; r++) {
        const double *x = j->X + j->rows[r] * j->d;
        if (j->f)
            j->out[r] = forest_predict(j->f, x);
        else
            uplift_predict(j->m, x, j->out + r * (size_t)j->m->n_arms, NULL, NULL, 0);
    }
    return NULL;
}

/* out[r] = forest_predict(f, X + rows[r] * d) for r < m (f NULL: the model m's
 * uplift, n_arms values per row, x already checked finite), on up to
 * n_threads threads over contiguous chunks; a thread that cannot start has
 * its chunk done on this one, so the result never depends on threads. */
static void predict_rows(const forest *f, const uplift_model *um, const double *X, size_t d,
                         const size_t *rows, size_t m, double *out, int n_threads)
{
    enum { MAXT = 64 };
    predict_job job[MAXT];
    pthread_t th[MAXT];
    int started[MAXT] = {0};
    int T = n_threads < 1 ? 1 : n_threads > MAXT ? MAXT : n_threads;
    if (m < 1024)
        T = 1;
    for (int t = 0; t < T; t++)
        job[t] = (predict_job){
            f, um, X, d, rows, out, m * (size_t)t / (size_t)T, m * (size_t)(t + 1) / (size_t)T};
    for (int t = 1; t < T; t++)
        started[t] = pthread_create(&th[t], NULL, predict_chunk, &job[t]) == 0;
    predict_chunk(&job[0]);
    for (int t = 1; t < T; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            predict_chunk(&job[t]);
    }
}

/* Copy the rows sel[0..m) of X into Xs and fit a forest on them with
 * targets t (m values in sel's order) and treatment w (causal only). */
static rfm_status fit_rows(const double *X, size_t d, const size_t *sel, size_t m, const double *t,
                           const uint8_t *w, const forest_params *fp, double *oob, double *Xs,
                           forest **out, char *err, size_t errlen)
{
    for (size_t r = 0; r < m; r++)
        memcpy(Xs + r * d, X + sel[r] * d, d * sizeof *Xs);
    return forest_fit(Xs, m, d, t, w, fp, oob, out, err, errlen);
}

/* Rows with arm a or b (a == b: one arm) into sel; their count. */
static size_t select_arms(const int *arm, size_t n, int a, int b, size_t *sel)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (arm[i] == a || arm[i] == b)
            sel[m++] = i;
    return m;
}

/* An outcome model's settings (the T-learner's, the nuisance models'). */
static forest_params outcome_params(const uplift_params *p, int role)
{
    forest_params fp = p->outcome;
    fp.seed = role_seed(p->seed, role);
    fp.n_threads = p->n_threads;
    return fp;
}

/* A nuisance outcome model (X- and DR-learner, tuning): fewer trees, since
 * its errors average out in the effect forest fitted on top. */
static forest_params nuisance_params(const uplift_params *p, int role)
{
    forest_params fp = outcome_params(p, role);
    if (p->nuisance_trees && p->nuisance_trees < fp.n_trees)
        fp.n_trees = p->nuisance_trees;
    return fp;
}

/* An effect regression (X- and DR-learner): the pseudo-outcomes are noisy, so
 * the forest is honest with the causal forest's leaf size. */
static forest_params tau_params(const uplift_params *p, int role)
{
    forest_params fp = p->outcome;
    fp.honest = 1;
    fp.min_leaf = p->effect.min_leaf;
    fp.seed = role_seed(p->seed, role);
    fp.n_threads = p->n_threads;
    return fp;
}

/* The causal forest of arm k against control over the rows whose is_out is 0
 * (is_out NULL: all), on the (centred) outcomes yc. */
static rfm_status fit_cf_arm(const double *X, size_t n, size_t d, const int *arm, int k,
                             const double *yc, const uint8_t *is_out, const forest_params *fp,
                             double *Xs, double *ys, uint8_t *ws, size_t *sel, forest **out,
                             char *err, size_t errlen)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if ((arm[i] == 0 || arm[i] == k) && !(is_out && is_out[i])) {
            sel[m] = i;
            ys[m] = yc[i];
            ws[m] = (uint8_t)(arm[i] == k);
            m++;
        }
    return fit_rows(X, d, sel, m, ys, ws, fp, NULL, Xs, out, err, errlen);
}

/* y centred on a control outcome forest fitted on the rows whose is_out is 0
 * (NULL: all): control rows on its out-of-bag predictions, the others on
 * the forest. The forest is returned in *control (or freed when control is
 * NULL). */
static rfm_status centre_on_control(const double *X, size_t n, size_t d, const int *arm,
                                    const double *y, const uint8_t *is_out, const forest_params *fp,
                                    double *Xs, double *ys, size_t *sel, double *oob, double *yc,
                                    forest **control, char *err, size_t errlen)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (arm[i] == 0 && !(is_out && is_out[i])) {
            sel[m] = i;
            ys[m++] = y[i];
        }
    forest *f = NULL;
    rfm_status st = fit_rows(X, d, sel, m, ys, NULL, fp, oob, Xs, &f, err, errlen);
    if (st != RFM_OK)
        return st;
    for (size_t r = 0; r < m; r++)
        yc[sel[r]] = y[sel[r]] - oob[r];
    /* The other rows on the whole forest (sel and oob are free again). */
    m = 0;
    for (size_t i = 0; i < n; i++)
        if (arm[i] != 0 || (is_out && is_out[i]))
            sel[m++] = i;
    predict_rows(f, NULL, X, d, sel, m, oob, fp->n_threads);
    for (size_t r = 0; r < m; r++)
        yc[sel[r]] = y[sel[r]] - oob[r];
    if (control)
        *control = f;
    else
        forest_free(f);
    return RFM_OK;
}

/* Tuning of the causal forest on the rows given (the caller's training rows
 * only): an inner split stratified by arm and outcome (30 % validation), y
 * centred on a control forest of the inner training rows (nuisance_trees), and
 * for each min_leaf in {L, L/2, 2L, 4L} (L = effect.min_leaf) and mtry in
 * {effect's, ceil(sqrt(d))} the per-arm forests (nuisance_trees / 2 trees: the
 * grid is 8 fits per arm) fitted on the inner training rows; the setting with
 * the best mean normalised Qini on the inner validation rows wins (the default
 * first, so it wins ties). */
static rfm_status tune_cf(const double *X, size_t n, size_t d, const int *arm, int K,
                          const double *y, const uplift_params *p, double *Xs, double *ys,
                          uint8_t *ws, size_t *sel, double *oob, int *best_leaf, int *best_mtry,
                          double *best_q, char *err, size_t errlen)
{
    uint8_t *is_val = malloc(n);
    double *yc = malloc(n * sizeof *yc), *score = malloc(n * sizeof *score);
    double *yv = malloc(n * sizeof *yv);
    int *av = malloc(n * sizeof *av);
    rfm_status st = RFM_ENOMEM;
    if (!is_val || !yc || !score || !yv || !av) {
        rfm_fail(err, errlen, st, "uplift: out of memory");
        goto out;
    }
    if ((st = uplift_holdout(arm, y, n, 0.3, role_seed(p->seed, 5000), is_val, err, errlen)))
        goto out;
    size_t nv = 0;
    for (size_t i = 0; i < n; i++)
        if (is_val[i]) {
            yv[nv] = y[i];
            av[nv++] = arm[i];
        }
    forest_params cp = nuisance_params(p, 5001);
    if (p->centre) {
        if ((st = centre_on_control(X, n, d, arm, y, is_val, &cp, Xs, ys, sel, oob, yc, NULL, err,
                                    errlen)))
            goto out;
    } else
        memcpy(yc, y, n * sizeof *yc);
    int def_mtry = (int)ceil(sqrt((double)d) + 20.0);
    if ((size_t)def_mtry > d)
        def_mtry = (int)d;
    int small_mtry = (int)ceil(sqrt((double)d));
    int L0 = p->effect.min_leaf;
    const int leaves[4] = {L0, L0 / 2 > 0 ? L0 / 2 : 1, 2 * L0, 4 * L0};
    const int mtrys[2] = {p->effect.mtry ? p->effect.mtry : def_mtry, small_mtry};
    *best_q = -INFINITY;
    *best_leaf = leaves[0];
    *best_mtry = mtrys[0];
    for (int g = 0; g < 8; g++) {
        int leaf = leaves[g / 2], mtry = mtrys[g % 2];
        if ((g >= 2 && leaf == leaves[0]) || (g % 2 && mtry == mtrys[0]))
            continue;
        forest_params fp = p->effect;
        fp.min_leaf = leaf;
        fp.mtry = mtry;
        if (p->nuisance_trees && fp.n_trees > p->nuisance_trees / 2)
            fp.n_trees = p->nuisance_trees / 2 > 0 ? p->nuisance_trees / 2 : 1;
        fp.n_threads = p->n_threads;
        double q = 0;
        for (int k = 1; k <= K; k++) {
            forest *f = NULL;
            fp.seed = role_seed(p->seed, 5100 + k);
            if ((st = fit_cf_arm(X, n, d, arm, k, yc, is_val, &fp, Xs, ys, ws, sel, &f, err,
                                 errlen)))
                goto out;
            size_t j = 0;
            for (size_t i = 0; i < n; i++)
                if (is_val[i])
                    sel[j++] = i;
            predict_rows(f, NULL, X, d, sel, j, score, p->n_threads);
            forest_free(f);
            uplift_eval e;
            if ((st = uplift_evaluate(yv, av, score, nv, k, &e, err, errlen)))
                goto out;
            q += e.qini_norm / K;
        }
        if (q > *best_q) {
            *best_q = q;
            *best_leaf = leaf;
            *best_mtry = mtry;
        }
    }
    st = RFM_OK;
out:
    free(is_val), free(yc), free(score), free(yv), free(av);
    return st;
}

/* Folds for cross-fitting: within each stratum arm x (y > 0), a seeded
 * shuffle dealt round-robin into F parts. */
static rfm_status make_folds(const int *arm, const double *y, size_t n, int F, uint64_t seed,
                             uint8_t *fold)
{
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx)
        return RFM_ENOMEM;
    rfm_rng r;
    rfm_rng_seed(&r, seed);
    for (int a = 0; a <= UPLIFT_MAX_ARMS; a++)
        for (int pos = 0; pos < 2; pos++) {
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (arm[i] == a && (y[i] > 0) == pos)
                    idx[m++] = i;
            rfm_rng_shuffle(&r, idx, m, m, sizeof *idx);
            for (size_t j = 0; j < m; j++)
                fold[idx[j]] = (uint8_t)(j % (size_t)F);
        }
    free(idx);
    return RFM_OK;
}

/* DR-learner (see uplift.h): cross-fitted mu_0, mu_k, e_k; AIPW
 * pseudo-outcomes; one honest regression forest per arm into m->arms. */
static rfm_status dr_fit(const double *X, size_t n, size_t d, const int *arm, int K,
                         const double *y, const uplift_params *p, uplift_model *m, double *Xs,
                         double *ys, size_t *sel, char *err, size_t errlen)
{
    int F = p->folds;
    uint8_t *fold = malloc(n);
    double *mu0h = malloc(n * sizeof *mu0h), *mukh = malloc(n * sizeof *mukh);
    double *eh = malloc(n * sizeof *eh), *phi = malloc(n * sizeof *phi);
    forest *f = NULL;
    rfm_status st = RFM_ENOMEM;
    if (!fold || !mu0h || !mukh || !eh || !phi ||
        make_folds(arm, y, n, F, role_seed(p->seed, 300), fold) != RFM_OK) {
        rfm_fail(err, errlen, st, "uplift: out of memory");
        goto out;
    }
    /* Control outcome per fold, shared by the arms. */
    for (int g = 0; g < F; g++) {
        size_t mm = 0;
        for (size_t i = 0; i < n; i++)
            if (arm[i] == 0 && fold[i] != g) {
                sel[mm] = i;
                ys[mm++] = y[i];
            }
        forest_params fp = nuisance_params(p, 310 + g);
        if (mm < 2) {
            st = rfm_fail(err, errlen, RFM_EDATA, "uplift: too few control rows for %d folds", F);
            goto out;
        }
        if ((st = fit_rows(X, d, sel, mm, ys, NULL, &fp, NULL, Xs, &f, err, errlen)))
            goto out;
        mm = 0;
        for (size_t i = 0; i < n; i++)
            if (fold[i] == g)
                sel[mm++] = i;
        predict_rows(f, NULL, X, d, sel, mm, ys, p->n_threads);
        for (size_t r = 0; r < mm; r++)
            mu0h[sel[r]] = ys[r];
        forest_free(f);
        f = NULL;
    }
    for (int k = 1; k <= K; k++) {
        for (int g = 0; g < F; g++) {
            size_t mm = 0, n0 = 0;
            for (size_t i = 0; i < n; i++) {
                if (fold[i] == g)
                    continue;
                n0 += arm[i] == 0;
                if (arm[i] == k) {
                    sel[mm] = i;
                    ys[mm++] = y[i];
                }
            }
            if (mm < 2) {
                st = rfm_fail(err, errlen, RFM_EDATA, "uplift: too few rows of arm %d for %d folds",
                              k, F);
                goto out;
            }
            forest_params fp = nuisance_params(p, 400 + g * (K + 1) + k);
            if ((st = fit_rows(X, d, sel, mm, ys, NULL, &fp, NULL, Xs, &f, err, errlen)))
                goto out;
            double e = (double)mm / (double)(mm + n0);
            mm = 0;
            for (size_t i = 0; i < n; i++)
                if (fold[i] == g && (arm[i] == 0 || arm[i] == k))
                    sel[mm++] = i;
            predict_rows(f, NULL, X, d, sel, mm, ys, p->n_threads);
            for (size_t r = 0; r < mm; r++) {
                mukh[sel[r]] = ys[r];
                eh[sel[r]] = e;
            }
            forest_free(f);
            f = NULL;
        }
        size_t mm = 0;
        for (size_t i = 0; i < n; i++) {
            if (arm[i] != 0 && arm[i] != k)
                continue;
            double w = arm[i] == k;
            phi[mm] = mukh[i] - mu0h[i] + w * (y[i] - mukh[i]) / eh[i] -
                      (1 - w) * (y[i] - mu0h[i]) / (1 - eh[i]);
            sel[mm++] = i;
        }
        forest_params fp = tau_params(p, 1000 + k);
        if ((st = fit_rows(X, d, sel, mm, phi, NULL, &fp, NULL, Xs, &m->arms[k - 1], err, errlen)))
            goto out;
    }
    st = RFM_OK;
out:
    forest_free(f);
    free(fold), free(mu0h), free(mukh), free(eh), free(phi);
    return st;
}

/* X-learner for arm k (see uplift.h), mu_0 = m->control. */
static rfm_status x_fit_arm(const double *X, size_t n, size_t d, const int *arm, int k,
                            const double *y, const uplift_params *p, uplift_model *m, double *Xs,
                            double *ys, size_t *sel, char *err, size_t errlen)
{
    forest *muk = NULL;
    size_t nk = select_arms(arm, n, k, k, sel);
    for (size_t r = 0; r < nk; r++)
        ys[r] = y[sel[r]];
    forest_params fp = nuisance_params(p, k);
    rfm_status st = fit_rows(X, d, sel, nk, ys, NULL, &fp, NULL, Xs, &muk, err, errlen);
    if (st != RFM_OK)
        return st;
    predict_rows(m->control, NULL, X, d, sel, nk, ys, p->n_threads);
    for (size_t r = 0; r < nk; r++)
        ys[r] = y[sel[r]] - ys[r];
    fp = tau_params(p, 100 + k);
    if ((st = fit_rows(X, d, sel, nk, ys, NULL, &fp, NULL, Xs, &m->arms[k - 1], err, errlen)))
        goto out;
    size_t n0 = select_arms(arm, n, 0, 0, sel);
    predict_rows(muk, NULL, X, d, sel, n0, ys, p->n_threads);
    for (size_t r = 0; r < n0; r++)
        ys[r] = ys[r] - y[sel[r]];
    fp = tau_params(p, 200 + k);
    if ((st = fit_rows(X, d, sel, n0, ys, NULL, &fp, NULL, Xs, &m->arms0[k - 1], err, errlen)))
        goto out;
    m->prop[k - 1] = (double)nk / (double)(nk + n0);
out:
    forest_free(muk);
    return st;
}

static rfm_status fit_core(const double *X, size_t n, size_t d, const int *arm, int n_arms,
                           const double *y, const uplift_params *p, const forest *ctl,
                           const double *yc_in, uplift_model **out, char *err, size_t errlen);

/* The checks of uplift_fit (see uplift.h). */
static rfm_status check_fit_input(const double *X, size_t n, size_t d, const int *arm, int n_arms,
                                  const double *y, const uplift_params *p, uplift_model **out,
                                  char *err, size_t errlen)
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
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i]))
            return rfm_fail(err, errlen, RFM_EINVAL, "uplift: y[%zu] is not finite", i);
        for (size_t f = 0; f < d; f++)
            if (!isfinite(X[i * d + f]))
                return rfm_fail(err, errlen, RFM_EINVAL, "uplift: X[%zu][%zu] is not finite", i, f);
    }
    return RFM_OK;
}

rfm_status uplift_fit(const double *X, size_t n, size_t d, const int *arm, int n_arms,
                      const double *y, const uplift_params *p, uplift_model **out, char *err,
                      size_t errlen)
{
    rfm_status st = check_fit_input(X, n, d, arm, n_arms, y, p, out, err, errlen);
    return st != RFM_OK ? st : fit_core(X, n, d, arm, n_arms, y, p, NULL, NULL, out, err, errlen);
}

/* uplift_fit after its checks. ctl (NULL: fitted here) is the control outcome
 * forest uplift_fit would fit on these rows, copied into the model; yc_in
 * (with ctl, when the causal forest centres) y centred on it as
 * centre_on_control would. Sharing them between learners fitted on the same
 * rows gives the same models for less work (uplift_holdout_compare). */
static rfm_status fit_core(const double *X, size_t n, size_t d, const int *arm, int n_arms,
                           const double *y, const uplift_params *p, const forest *ctl,
                           const double *yc_in, uplift_model **out, char *err, size_t errlen)
{
    rfm_status st = RFM_ENOMEM;
    uplift_model *m = calloc(1, sizeof *m);
    double *Xs = malloc(n * d * sizeof *Xs), *ys = malloc(n * sizeof *ys);
    double *yc = malloc(n * sizeof *yc), *oob = malloc(n * sizeof *oob);
    uint8_t *ws = malloc(n);
    size_t *sel = malloc(n * sizeof *sel);
    if (!m || !Xs || !ys || !yc || !oob || !ws || !sel) {
        rfm_fail(err, errlen, st, "uplift: out of memory");
        goto done;
    }
    m->learner = p->learner;
    m->d = d;
    m->n_arms = n_arms;
    m->centre = p->learner == UPLIFT_CAUSAL_FOREST && p->centre;
    size_t K = (size_t)n_arms;
    if (p->learner == UPLIFT_RULE)
        m->rules = calloc(K, sizeof *m->rules);
    else
        m->arms = calloc(K, sizeof *m->arms);
    if (p->learner == UPLIFT_X_LEARNER) {
        m->arms0 = calloc(K, sizeof *m->arms0);
        m->prop = calloc(K, sizeof *m->prop);
    }
    if ((!m->rules && !m->arms) || (p->learner == UPLIFT_X_LEARNER && (!m->arms0 || !m->prop))) {
        rfm_fail(err, errlen, st, "uplift: out of memory");
        goto done;
    }

    /* The control outcome forest, which every learner keeps for outcome_control. */
    forest_params fp = outcome_params(p, 0);
    if (ctl) {
        if (!(m->control = forest_clone(ctl))) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory");
            goto done;
        }
        memcpy(yc, m->centre ? yc_in : y, n * sizeof *yc);
        st = RFM_OK;
    } else if (m->centre) {
        st = centre_on_control(X, n, d, arm, y, NULL, &fp, Xs, ys, sel, oob, yc, &m->control, err,
                               errlen);
    } else {
        size_t nc = select_arms(arm, n, 0, 0, sel);
        for (size_t r = 0; r < nc; r++)
            ys[r] = y[sel[r]];
        st = fit_rows(X, d, sel, nc, ys, NULL, &fp, NULL, Xs, &m->control, err, errlen);
        memcpy(yc, y, n * sizeof *yc);
    }
    if (st != RFM_OK)
        goto done;

    switch (p->learner) {
    case UPLIFT_T_LEARNER:
        for (int k = 1; k <= n_arms && st == RFM_OK; k++) {
            size_t nk = select_arms(arm, n, k, k, sel);
            for (size_t r = 0; r < nk; r++)
                ys[r] = y[sel[r]];
            fp = outcome_params(p, k);
            st = fit_rows(X, d, sel, nk, ys, NULL, &fp, NULL, Xs, &m->arms[k - 1], err, errlen);
        }
        break;
    case UPLIFT_CAUSAL_FOREST:
        fp = p->effect;
        fp.n_threads = p->n_threads;
        if (p->tune) {
            st = tune_cf(X, n, d, arm, n_arms, y, p, Xs, ys, ws, sel, oob, &m->tuned_leaf,
                         &m->tuned_mtry, &m->tuned_qini, err, errlen);
            fp.min_leaf = m->tuned_leaf;
            fp.mtry = m->tuned_mtry;
        }
        for (int k = 1; k <= n_arms && st == RFM_OK; k++) {
            fp.seed = role_seed(p->seed, k);
            st = fit_cf_arm(X, n, d, arm, k, yc, NULL, &fp, Xs, ys, ws, sel, &m->arms[k - 1], err,
                            errlen);
        }
        break;
    case UPLIFT_X_LEARNER:
        for (int k = 1; k <= n_arms && st == RFM_OK; k++)
            st = x_fit_arm(X, n, d, arm, k, y, p, m, Xs, ys, sel, err, errlen);
        break;
    case UPLIFT_DR_LEARNER:
        st = dr_fit(X, n, d, arm, n_arms, y, p, m, Xs, ys, sel, err, errlen);
        break;
    case UPLIFT_RULE:
        for (int k = 1; k <= n_arms && st == RFM_OK; k++)
            st = uplift_rule_search(X, n, d, arm, k, y, p->rule_min_share, &m->rules[k - 1], err,
                                    errlen);
        break;
    }
    if (st != RFM_OK)
        goto done;
    *out = m;
    m = NULL;
done:
    uplift_free(m);
    free(Xs);
    free(ys);
    free(yc);
    free(oob);
    free(ws);
    free(sel);
    return st;
}

/* ---- the single-feature rule ------------------------------------------- */

typedef struct {
    double x, y;
    uint8_t t;
} rulerow;

static int cmp_rulerow(const void *a, const void *b)
{
    double x = ((const rulerow *)a)->x, y = ((const rulerow *)b)->x;
    return (x > y) - (x < y);
}

/* A threshold t with a <= t < b (as forest.c's). */
static double mid_between(double a, double b)
{
    double m = 0.5 * a + 0.5 * b;
    return (m >= a && m < b) ? m : a;
}

rfm_status uplift_rule_search(const double *X, size_t n, size_t d, const int *arm, int k,
                              const double *y, double min_share, uplift_rule *out, char *err,
                              size_t errlen)
{
    if (!X || !arm || !y || !out || d == 0 || k < 1 || !(min_share > 0 && min_share <= 0.5))
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "uplift: rule search needs X, arm, y, k >= 1 and "
                        "min_share in (0, 0.5]");
    size_t m = 0;
    double NT = 0, NC = 0, YT = 0, YC = 0;
    for (size_t i = 0; i < n; i++)
        if (arm[i] == 0 || arm[i] == k) {
            m++;
            if (arm[i] == k)
                NT += 1, YT += y[i];
            else
                NC += 1, YC += y[i];
        }
    rulerow *r = malloc((m ? m : 1) * sizeof *r);
    if (!r)
        return rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory");
    double Q = NC > 0 ? YT - YC * NT / NC : 0, N = (double)m;
    double least = ceil(min_share * N);
    int found = 0;
    uplift_rule best = {0, 0, 0, 0, -INFINITY};
    for (size_t f = 0; f < d; f++) {
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
            if (arm[i] == 0 || arm[i] == k)
                r[j++] = (rulerow){X[i * d + f], y[i], (uint8_t)(arm[i] == k)};
        qsort(r, m, sizeof *r, cmp_rulerow);
        size_t distinct = m ? 1 : 0;
        for (size_t i = 1; i < m; i++)
            distinct += r[i].x != r[i - 1].x;
        double nt = 0, nc = 0, yt = 0, yc = 0;
        size_t mark = 1, next = m / 64; /* quantile positions when many values */
        for (size_t i = 0; i + 1 < m; i++) {
            if (r[i].t)
                nt += 1, yt += r[i].y;
            else
                nc += 1, yc += r[i].y;
            if (r[i].x == r[i + 1].x)
                continue;
            if (distinct > 64) {
                if (i + 1 < next)
                    continue;
                while (next <= i + 1 && mark < 64)
                    next = ++mark * m / 64;
                if (next <= i + 1)
                    next = m;
            }
            double nl = (double)(i + 1), nr = N - nl;
            double ntr = NT - nt, ncr = NC - nc;
            if (nl < least || nr < least || nt < 1 || nc < 1 || ntr < 1 || ncr < 1)
                continue;
            double tl = yt / nt - yc / nc, tr = (YT - yt) / ntr - (YC - yc) / ncr;
            double coef = 0; /* equal effects: one tie group, the random line */
            if (tl > tr)     /* left first: Q1 = Y_T1 - Y_C1 N_T1 / N_C1 */
                coef = (N * (yt - yc * nt / nc) - nl * Q) / 2;
            else if (tr > tl)
                coef = (N * ((YT - yt) - (YC - yc) * ntr / ncr) - nr * Q) / 2;
            if (coef > best.train_qini) {
                best = (uplift_rule){(int)f, mid_between(r[i].x, r[i + 1].x), tl, tr, coef};
                found = 1;
            }
        }
    }
    free(r);
    if (!found)
        return rfm_fail(err, errlen, RFM_EDATA,
                        "uplift: no single-feature rule for arm %d leaves %.0f%% of rows and both "
                        "groups on each side",
                        k, 100 * min_share);
    *out = best;
    return RFM_OK;
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
        switch (m->learner) {
        case UPLIFT_T_LEARNER: uplift[k] = forest_predict(m->arms[k], x) - c; break;
        case UPLIFT_X_LEARNER:
            uplift[k] = m->prop[k] * forest_predict(m->arms0[k], x) +
                        (1 - m->prop[k]) * forest_predict(m->arms[k], x);
            break;
        case UPLIFT_RULE: {
            const uplift_rule *r = &m->rules[k];
            uplift[k] = x[r->feature] <= r->threshold ? r->uplift_le : r->uplift_gt;
            break;
        }
        default: uplift[k] = forest_predict(m->arms[k], x);
        }
    }
    if (outcome_control)
        *outcome_control = c;
    return RFM_OK;
}

/* ---- JSON ------------------------------------------------------------- */

#define UPLIFT_FORMAT "rfm-uplift"
#define UPLIFT_VERSION 2

static json_t *rule_json(const uplift_rule *r)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    int bad = json_object_set_new(j, "feature", json_integer(r->feature));
    bad |= json_object_set_new(j, "threshold", json_real(r->threshold));
    bad |= json_object_set_new(j, "uplift_le", json_real(r->uplift_le));
    bad |= json_object_set_new(j, "uplift_gt", json_real(r->uplift_gt));
    bad |= json_object_set_new(j, "train_qini", json_real(r->train_qini));
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Append the forests fs[0..K) to a new array set as j[name]. */
static rfm_status forests_json(json_t *j, const char *name, forest *const *fs, int K, char *err,
                               size_t errlen)
{
    json_t *a = json_array(), *fj = NULL;
    if (!a || json_object_set_new(j, name, a))
        return rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory writing JSON");
    for (int k = 0; k < K; k++) {
        rfm_status st = forest_to_json(fs[k], &fj, err, errlen);
        if (st != RFM_OK)
            return st;
        if (json_array_append_new(a, fj))
            return rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory writing JSON");
    }
    return RFM_OK;
}

rfm_status uplift_to_json(const uplift_model *m, json_t **out, char *err, size_t errlen)
{
    json_t *j = json_object(), *fj = NULL;
    rfm_status st = RFM_ENOMEM;
    if (!j)
        goto fail;
    int bad = json_object_set_new(j, "format", json_string(UPLIFT_FORMAT));
    bad |= json_object_set_new(j, "version", json_integer(UPLIFT_VERSION));
    bad |= json_object_set_new(j, "learner", json_string(uplift_learner_name(m->learner)));
    bad |= json_object_set_new(j, "n_features", json_integer((json_int_t)m->d));
    bad |= json_object_set_new(j, "n_arms", json_integer(m->n_arms));
    bad |= json_object_set_new(j, "centre", json_boolean(m->centre));
    if (m->tuned_leaf)
        bad |= json_object_set_new(j, "tuning",
                                   json_pack("{s:i,s:i,s:f}", "min_leaf", m->tuned_leaf, "mtry",
                                             m->tuned_mtry, "inner_qini", m->tuned_qini));
    if (bad)
        goto fail;
    st = forest_to_json(m->control, &fj, err, errlen);
    if (st != RFM_OK)
        goto fail;
    st = RFM_ENOMEM;
    if (json_object_set_new(j, "control", fj))
        goto fail;
    if (m->learner == UPLIFT_RULE) {
        json_t *a = json_array();
        if (!a || json_object_set_new(j, "arms", a))
            goto fail;
        for (int k = 0; k < m->n_arms; k++)
            if (json_array_append_new(a, rule_json(&m->rules[k])))
                goto fail;
    } else if ((st = forests_json(j, "arms", m->arms, m->n_arms, err, errlen)))
        goto fail;
    if (m->learner == UPLIFT_X_LEARNER) {
        if ((st = forests_json(j, "arms_control", m->arms0, m->n_arms, err, errlen)))
            goto fail;
        st = RFM_ENOMEM;
        json_t *a = json_array();
        if (!a || json_object_set_new(j, "propensity", a))
            goto fail;
        for (int k = 0; k < m->n_arms; k++)
            if (json_array_append_new(a, json_real(m->prop[k])))
                goto fail;
    }
    *out = j;
    return RFM_OK;
fail:
    json_decref(j);
    if (st == RFM_ENOMEM)
        rfm_fail(err, errlen, st, "uplift: out of memory writing JSON");
    return st;
}

/* Load K forests of a kind from j[name] into fs (allocated here). */
static rfm_status forests_from_json(const json_t *j, const char *name, int K, forest_kind want,
                                    size_t d, forest ***fs, char *err, size_t errlen)
{
    const json_t *a = json_object_get(j, name);
    if (!json_is_array(a) || json_array_size(a) != (size_t)K)
        return rfm_fail(err, errlen, RFM_EFORMAT, "uplift: field '%s' missing or not %d forests",
                        name, K);
    if (!(*fs = calloc((size_t)K, sizeof **fs)))
        return rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory");
    for (int k = 0; k < K; k++) {
        rfm_status st = forest_from_json(json_array_get(a, (size_t)k), &(*fs)[k], err, errlen);
        if (st != RFM_OK)
            return st;
        if (forest_get_kind((*fs)[k]) != want || forest_n_features((*fs)[k]) != d)
            return rfm_fail(err, errlen, RFM_EFORMAT,
                            "uplift: field '%s[%d]' has the wrong kind or size", name, k);
    }
    return RFM_OK;
}

static int finite_field(const json_t *o, const char *name, double *v)
{
    const json_t *x = json_object_get(o, name);
    if (!json_is_number(x))
        return -1;
    *v = json_number_value(x);
    return isfinite(*v) ? 0 : -1;
}

rfm_status uplift_from_json(const json_t *j, uplift_model **out, char *err, size_t errlen)
{
    const char *fmt = json_string_value(json_object_get(j, "format"));
    const json_t *ver = json_object_get(j, "version");
    if (!fmt || strcmp(fmt, UPLIFT_FORMAT) || !json_is_integer(ver) ||
        json_integer_value(ver) < 1 || json_integer_value(ver) > UPLIFT_VERSION)
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "uplift: not an %s version 1..%d model (field 'format'/'version'); "
                        "regenerate it with bin/rfm-train --only uplift",
                        UPLIFT_FORMAT, UPLIFT_VERSION);
    uplift_model *m = calloc(1, sizeof *m);
    if (!m)
        return rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory");
    rfm_status st = RFM_EFORMAT;
    const char *ln = json_string_value(json_object_get(j, "learner"));
    const json_t *nf = json_object_get(j, "n_features"), *na = json_object_get(j, "n_arms");
    const json_t *ce = json_object_get(j, "centre"), *tu = json_object_get(j, "tuning");
    int l = uplift_learner_from_name(ln);
    if (l < 0 || (json_integer_value(ver) == 1 && l > UPLIFT_CAUSAL_FOREST)) {
        rfm_fail(err, errlen, st, "uplift: field 'learner' missing or invalid");
        goto fail;
    }
    m->learner = (uplift_learner)l;
    if (!json_is_integer(nf) || json_integer_value(nf) < 1 || json_integer_value(nf) > 100000) {
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
    if (tu) {
        double q;
        const json_t *ml = json_object_get(tu, "min_leaf"), *mt = json_object_get(tu, "mtry");
        if (!json_is_integer(ml) || json_integer_value(ml) < 1 ||
            json_integer_value(ml) > INT32_MAX || !json_is_integer(mt) ||
            json_integer_value(mt) < 1 || json_integer_value(mt) > INT32_MAX ||
            finite_field(tu, "inner_qini", &q)) {
            rfm_fail(err, errlen, st, "uplift: field 'tuning' invalid");
            goto fail;
        }
        m->tuned_leaf = (int)json_integer_value(ml);
        m->tuned_mtry = (int)json_integer_value(mt);
        m->tuned_qini = q;
    }
    if ((st = forest_from_json(json_object_get(j, "control"), &m->control, err, errlen)))
        goto fail;
    st = RFM_EFORMAT;
    if (forest_get_kind(m->control) != FOREST_REGRESSION || forest_n_features(m->control) != m->d) {
        rfm_fail(err, errlen, st, "uplift: field 'control' is not a %zu-feature regression forest",
                 m->d);
        goto fail;
    }
    m->n_arms = K; /* uplift_free walks the arrays, whose missing entries are NULL */
    if (m->learner == UPLIFT_RULE) {
        const json_t *arms = json_object_get(j, "arms");
        if (!json_is_array(arms) || json_array_size(arms) != (size_t)K) {
            rfm_fail(err, errlen, st, "uplift: field 'arms' missing or not %d rules", K);
            goto fail;
        }
        if (!(m->rules = calloc((size_t)K, sizeof *m->rules))) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory");
            goto fail;
        }
        for (int k = 0; k < K; k++) {
            const json_t *r = json_array_get(arms, (size_t)k), *fe = json_object_get(r, "feature");
            uplift_rule *u = &m->rules[k];
            if (!json_is_integer(fe) || json_integer_value(fe) < 0 ||
                json_integer_value(fe) >= (json_int_t)m->d ||
                finite_field(r, "threshold", &u->threshold) ||
                finite_field(r, "uplift_le", &u->uplift_le) ||
                finite_field(r, "uplift_gt", &u->uplift_gt) ||
                finite_field(r, "train_qini", &u->train_qini)) {
                rfm_fail(err, errlen, st, "uplift: field 'arms[%d]' is not a rule", k);
                goto fail;
            }
            u->feature = (int)json_integer_value(fe);
        }
    } else {
        forest_kind want = m->learner == UPLIFT_CAUSAL_FOREST ? FOREST_CAUSAL : FOREST_REGRESSION;
        if ((st = forests_from_json(j, "arms", K, want, m->d, &m->arms, err, errlen)))
            goto fail;
    }
    if (m->learner == UPLIFT_X_LEARNER) {
        if ((st = forests_from_json(j, "arms_control", K, FOREST_REGRESSION, m->d, &m->arms0, err,
                                    errlen)))
            goto fail;
        st = RFM_EFORMAT;
        const json_t *pr = json_object_get(j, "propensity");
        if (!json_is_array(pr) || json_array_size(pr) != (size_t)K) {
            rfm_fail(err, errlen, st, "uplift: field 'propensity' missing or not %d numbers", K);
            goto fail;
        }
        if (!(m->prop = calloc((size_t)K, sizeof *m->prop))) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory");
            goto fail;
        }
        for (int k = 0; k < K; k++) {
            const json_t *v = json_array_get(pr, (size_t)k);
            m->prop[k] = json_number_value(v);
            if (!json_is_number(v) || !(m->prop[k] > 0 && m->prop[k] < 1)) {
                rfm_fail(err, errlen, st, "uplift: field 'propensity[%d]' not in (0, 1)", k);
                goto fail;
            }
        }
    }
    *out = m;
    return RFM_OK;
fail:
    uplift_free(m);
    return st;
}

/* ---- held-out split ---------------------------------------------------- */

rfm_status uplift_holdout(const int *arm, const double *y, size_t n, double test_frac,
                          uint64_t seed, uint8_t *is_test, char *err, size_t errlen)
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
    for (int a = 0; a <= UPLIFT_MAX_ARMS; a++)
        for (int pos = 0; pos < (y ? 2 : 1); pos++) {
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (arm[i] == a && (!y || (y[i] > 0) == pos))
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

/* ---- bootstrap ---------------------------------------------------------- */

typedef struct {
    double s;
    uint32_t i;
} sortkey;

static int cmp_sortkey(const void *a, const void *b)
{
    double x = ((const sortkey *)a)->s, y = ((const sortkey *)b)->s;
    return (x < y) - (x > y);
}

/* Qini area above the random line of the rows in order ord (tie groups end
 * where ends[j] is set), each row i counted wt[i] times; *last gets the
 * curve's last point. The weighted twin of curves() + trapezoid(). */
static double weighted_qini(const uint32_t *ord, const uint8_t *ends, size_t m, const double *y,
                            const uint8_t *t, const uint32_t *wt)
{
    double N = 0, nt = 0, nc = 0, yt = 0, yc = 0, px = 0, pq = 0, area = 0;
    for (size_t j = 0; j < m; j++) {
        uint32_t i = ord[j];
        double w = wt[i];
        N += w;
        if (t[i])
            nt += w, yt += w * y[i];
        else
            nc += w, yc += w * y[i];
        if (!ends[j])
            continue;
        double q = yt - (nc > 0 ? yc * nt / nc : 0.0);
        area += (N - px) * (q + pq) * 0.5;
        px = N;
        pq = q;
    }
    return area - N * pq * 0.5;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Percentile of sorted v[0..n) with linear interpolation (type 7). */
static double percentile(const double *v, size_t n, double p)
{
    double h = (double)(n - 1) * p;
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n)
        return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

rfm_status uplift_bootstrap(const double *y, const int *arm, const double *score, size_t n, int k,
                            int n_boot, uint64_t seed, uplift_eval *out, char *err, size_t errlen)
{
    if (!y || !arm || !score || !out || k < 1 || n_boot < 1 || n > UINT32_MAX)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "uplift: bootstrap needs y, arm, score, arm k >= 1 and n_boot >= 1");
    size_t m = 0, nt = 0;
    for (size_t i = 0; i < n; i++) {
        if (arm[i] != 0 && arm[i] != k)
            continue;
        if (!isfinite(y[i]) || !isfinite(score[i]))
            return rfm_fail(err, errlen, RFM_EINVAL, "uplift: y or score of row %zu is not finite",
                            i);
        m++;
        nt += arm[i] == k;
    }
    if (nt == 0 || nt == m)
        return rfm_fail(err, errlen, RFM_EDATA,
                        "uplift: bootstrap of arm %d needs treated and control rows", k);
    double *yy = malloc(m * sizeof *yy), *qs = malloc((size_t)n_boot * sizeof *qs);
    uint8_t *tt = malloc(m), *ends = malloc(2 * m);
    sortkey *key = malloc(m * sizeof *key);
    uint32_t *ord = malloc(2 * m * sizeof *ord), *wt = malloc(m * sizeof *wt);
    uint32_t *strat = malloc(m * sizeof *strat);
    if (!yy || !qs || !tt || !ends || !key || !ord || !wt || !strat) {
        free(yy), free(qs), free(tt), free(ends), free(key), free(ord), free(wt), free(strat);
        return rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory");
    }
    /* Two orders: by the score (the model's curve) and by the Qini oracle. */
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (arm[i] == 0 || arm[i] == k) {
            yy[j] = y[i];
            tt[j] = (uint8_t)(arm[i] == k);
            key[j] = (sortkey){score[i], (uint32_t)j};
            j++;
        }
    for (int o = 0; o < 2; o++) {
        if (o == 1)
            for (size_t i = 0; i < m; i++)
                key[i] = (sortkey){tt[i] ? yy[i] : -yy[i], (uint32_t)i};
        qsort(key, m, sizeof *key, cmp_sortkey);
        for (size_t i = 0; i < m; i++) {
            ord[o * m + i] = key[i].i;
            ends[o * m + i] = (uint8_t)(i + 1 == m || key[i + 1].s != key[i].s);
        }
    }
    /* Strata arm x (y > 0), laid out one after the other in strat. */
    size_t start[5] = {0};
    for (int g = 0; g < 4; g++) {
        start[g + 1] = start[g];
        for (size_t i = 0; i < m; i++)
            if (tt[i] * 2 + (yy[i] > 0) == g)
                strat[start[g + 1]++] = (uint32_t)i;
    }
    rfm_rng r;
    rfm_rng_seed(&r, seed);
    double sum = 0, sq = 0;
    for (int b = 0; b < n_boot; b++) {
        memset(wt, 0, m * sizeof *wt);
        for (int g = 0; g < 4; g++) {
            size_t len = start[g + 1] - start[g];
            for (size_t i = 0; i < len; i++)
                wt[strat[start[g] + rfm_rng_below(&r, len)]]++;
        }
        double coef = weighted_qini(ord, ends, m, yy, tt, wt);
        double perf = weighted_qini(ord + m, ends + m, m, yy, tt, wt);
        qs[b] = perf != 0.0 ? coef / perf : 0.0;
        sum += qs[b];
        sq += qs[b] * qs[b];
    }
    qsort(qs, (size_t)n_boot, sizeof *qs, cmp_dbl);
    out->n_boot = n_boot;
    out->qini_lo = percentile(qs, (size_t)n_boot, 0.05);
    out->qini_hi = percentile(qs, (size_t)n_boot, 0.95);
    double mean = sum / n_boot, var = sq / n_boot - mean * mean;
    out->qini_sd = n_boot > 1 ? sqrt(var > 0 ? var * n_boot / (n_boot - 1) : 0) : 0;
    free(yy), free(qs), free(tt), free(ends), free(key), free(ord), free(wt), free(strat);
    return RFM_OK;
}

rfm_status uplift_random_band(const double *y, const int *arm, size_t n, int k, int R,
                              uint64_t seed, uplift_eval *out, char *err, size_t errlen)
{
    if (!y || !arm || !out || k < 1 || R < 2)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "uplift: random band needs y, arm, k >= 1, R >= 2");
    rfm_rng r;
    rfm_rng_seed(&r, seed);
    double *s = calloc(n ? n : 1, sizeof *s), *q = malloc((size_t)R * sizeof *q);
    evrow *row = malloc((n ? n : 1) * sizeof *row);
    rfm_status st = RFM_ENOMEM;
    if (!s || !q || !row) {
        rfm_fail(err, errlen, st, "uplift: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        s[i] = rfm_rng_uniform(&r);
    uplift_eval e;
    if ((st = uplift_evaluate(y, arm, s, n, k, &e, err, errlen)))
        goto out;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (arm[i] == 0 || arm[i] == k)
            row[m++] = (evrow){0, y[i], (uint8_t)(arm[i] == k)};
    double qd = e.qini_perfect - e.qini_random, ud = e.uplift_perfect - e.uplift_random;
    double sq = 0, mq = 0, mc = 0, ma = 0, man = 0;
    for (int b = 0; b < R; b++) {
        rfm_rng_shuffle(&r, row, m, m, sizeof *row);
        double nt = 0, nc = 0, yt = 0, yc = 0, pq = 0, pu = 0, qa = 0, ua = 0;
        for (size_t i = 0; i < m; i++) {
            if (row[i].t)
                nt += 1, yt += row[i].y;
            else
                nc += 1, yc += row[i].y;
            double N = (double)(i + 1);
            double qv = yt - (nc > 0 ? yc * nt / nc : 0.0);
            double uv = ((nt > 0 ? yt / nt : 0.0) - (nc > 0 ? yc / nc : 0.0)) * N;
            qa += (qv + pq) * 0.5;
            ua += (uv + pu) * 0.5;
            pq = qv;
            pu = uv;
        }
        double coef = qa - e.qini_random, auuc = ua - e.uplift_random;
        q[b] = qd != 0.0 ? coef / qd : 0.0;
        mq += q[b] / R;
        sq += q[b] * q[b] / R;
        mc += coef / R;
        ma += auuc / R;
        man += (ud != 0.0 ? auuc / ud : 0.0) / R;
    }
    qsort(q, (size_t)R, sizeof *q, cmp_dbl);
    e.qini_norm = mq;
    e.qini_coef = mc;
    e.auuc = ma;
    e.auuc_norm = man;
    e.n_boot = R;
    e.qini_lo = percentile(q, (size_t)R, 0.05);
    e.qini_hi = percentile(q, (size_t)R, 0.95);
    e.qini_sd = sq - mq * mq > 0 ? sqrt((sq - mq * mq) * R / (R - 1)) : 0;
    *out = e;
    st = RFM_OK;
out:
    free(s), free(q), free(row);
    return st;
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

uint64_t uplift_boot_seed(uint64_t seed, int k) { return role_seed(seed, 9000 + k); }

/* uplift_holdout_eval for each of learners[0..nl) (ev: n_arms per learner,
 * mean: one per learner, models: NULL or one per learner). With share, the
 * control outcome forest (and the centred outcomes) are fitted once on the
 * training rows and given to every learner's fit (fit_core), else each learner
 * is fitted by uplift_fit alone. */
static rfm_status holdout_core(const double *X, size_t n, size_t d, const int *arm, int n_arms,
                               const double *y, const uint8_t *is_test, const uplift_params *p,
                               const uplift_learner *learners, int nl, int share, uplift_eval *ev,
                               double *mean, uplift_model **models, char *err, size_t errlen)
{
    size_t ntr = 0, nte = 0, K = n_arms > 0 ? (size_t)n_arms : 1;
    for (size_t i = 0; i < n; i++)
        is_test[i] ? nte++ : ntr++;
    size_t NTR = ntr ? ntr : 1, NTE = nte ? nte : 1;
    double *Xtr = malloc(NTR * d * sizeof *Xtr), *ytr = malloc(NTR * sizeof *ytr);
    int *atr = calloc(NTR, sizeof *atr), *ate = malloc(NTE * sizeof *ate);
    double *yte = malloc(NTE * sizeof *yte), *score = malloc(NTE * sizeof *score);
    double *u = malloc(K * sizeof *u), *scores = malloc(NTE * K * sizeof *scores);
    size_t *rows = malloc(NTE * sizeof *rows);
    double *Xs = NULL, *ys = NULL, *yc = NULL, *oob = NULL;
    size_t *sel = NULL;
    forest *ctl = NULL;
    uplift_model *m = NULL;
    rfm_status st = RFM_OK;
    if (!Xtr || !ytr || !atr || !ate || !yte || !score || !u || !scores || !rows) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    for (int j = 0; models && j < nl; j++)
        models[j] = NULL;
    size_t a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_test[i]) {
            ate[b] = arm[i], yte[b] = y[i];
            rows[b++] = i;
        } else {
            memcpy(Xtr + a * d, X + i * d, d * sizeof *Xtr);
            atr[a] = arm[i], ytr[a] = y[i];
            a++;
        }
    }
    /* A non-finite held-out feature is refused before any fit, as
     * uplift_predict would refuse it. */
    for (size_t r = 0; r < nte; r++)
        for (size_t f = 0; f < d; f++)
            if (!isfinite(X[rows[r] * d + f])) {
                st = rfm_fail(err, errlen, RFM_EINVAL, "uplift: feature %zu is not finite", f);
                goto out;
            }
    if (share) {
        for (int j = 0; j < nl; j++)
            if ((int)learners[j] < 0 || learners[j] >= UPLIFT_N_LEARNERS) {
                st = rfm_fail(err, errlen, RFM_EINVAL, "uplift: learner %d unknown", learners[j]);
                goto out;
            }
        if ((st = check_fit_input(Xtr, ntr, d, atr, n_arms, ytr, p, &m, err, errlen)))
            goto out;
        Xs = malloc(NTR * d * sizeof *Xs), ys = malloc(NTR * sizeof *ys);
        yc = malloc(NTR * sizeof *yc), oob = malloc(NTR * sizeof *oob);
        sel = malloc(NTR * sizeof *sel);
        if (!Xs || !ys || !yc || !oob || !sel) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "uplift: out of memory");
            goto out;
        }
        /* The forest uplift_fit fits for control: with out-of-bag predictions
         * the same trees (they do not change the fit), and the centred y. */
        forest_params fp = outcome_params(p, 0);
        if ((st = centre_on_control(Xtr, ntr, d, atr, ytr, NULL, &fp, Xs, ys, sel, oob, yc, &ctl,
                                    err, errlen)))
            goto out;
    }
    for (int j = 0; j < nl; j++) {
        uplift_params q = *p;
        q.learner = learners[j];
        st = share ? fit_core(Xtr, ntr, d, atr, n_arms, ytr, &q, ctl, yc, &m, err, errlen)
                   : uplift_fit(Xtr, ntr, d, atr, n_arms, ytr, &q, &m, err, errlen);
        if (st != RFM_OK)
            goto out;
        predict_rows(NULL, m, X, d, rows, nte, scores, p->n_threads);
        uplift_eval *e = ev + (size_t)j * K;
        mean[j] = 0;
        for (int k = 1; k <= n_arms; k++) {
            for (size_t i = 0; i < nte; i++)
                score[i] = scores[i * K + (size_t)(k - 1)];
            if ((st = uplift_evaluate(yte, ate, score, nte, k, &e[k - 1], err, errlen)))
                goto out;
            /* The same resamples for every learner (the seed depends on the
             * arm only), so their intervals are paired. */
            if (p->n_boot > 0 &&
                (st = uplift_bootstrap(yte, ate, score, nte, k, p->n_boot,
                                       uplift_boot_seed(p->seed, k), &e[k - 1], err, errlen)))
                goto out;
            mean[j] += e[k - 1].qini_norm / n_arms;
        }
        if (models)
            models[j] = m;
        else
            uplift_free(m);
        m = NULL;
    }
out:
    if (st != RFM_OK)
        for (int j = 0; models && j < nl; j++) {
            uplift_free(models[j]);
            models[j] = NULL;
        }
    uplift_free(m);
    forest_free(ctl);
    free(Xtr), free(ytr), free(atr), free(ate), free(yte), free(score), free(u), free(scores);
    free(rows), free(Xs), free(ys), free(yc), free(oob), free(sel);
    return st;
}

rfm_status uplift_holdout_eval(const double *X, size_t n, size_t d, const int *arm, int n_arms,
                               const double *y, const uint8_t *is_test, const uplift_params *p,
                               uplift_learner learner, uplift_eval *ev, double *mean_qini_norm,
                               uplift_model **model, char *err, size_t errlen)
{
    return holdout_core(X, n, d, arm, n_arms, y, is_test, p, &learner, 1, 0, ev, mean_qini_norm,
                        model, err, errlen);
}

rfm_status uplift_holdout_compare(const double *X, size_t n, size_t d, const int *arm, int n_arms,
                                  const double *y, const uint8_t *is_test, const uplift_params *p,
                                  const uplift_learner *learners, int n_learners, uplift_eval *ev,
                                  double *mean_qini_norm, uplift_model **models, char *err,
                                  size_t errlen)
{
    if (n_learners < 1 || !learners)
        return rfm_fail(err, errlen, RFM_EINVAL, "uplift: compare needs >= 1 learner");
    return holdout_core(X, n, d, arm, n_arms, y, is_test, p, learners, n_learners, 1, ev,
                        mean_qini_norm, models, err, errlen);
}

uplift_learner uplift_choose_learner(const uplift_params *p,
                                     const double mean_qini_norm[UPLIFT_N_LEARNERS])
{
    if (!p->choose_learner)
        return p->learner;
    static const uplift_learner order[UPLIFT_N_LEARNERS] = {
        UPLIFT_CAUSAL_FOREST, UPLIFT_DR_LEARNER, UPLIFT_X_LEARNER, UPLIFT_T_LEARNER, UPLIFT_RULE};
    int best = -1;
    for (int j = 0; j < UPLIFT_N_LEARNERS; j++) {
        double q = mean_qini_norm[order[j]];
        if (!isnan(q) && (best < 0 || q > mean_qini_norm[best]))
            best = (int)order[j];
    }
    return best < 0 ? p->learner : (uplift_learner)best;
}
