/* test_ruletree.c - the exact rule search against a brute force written
 * here: every rule of at most two conditions on small data, counted point
 * by point, the first by the order ruletree.h documents (restated here,
 * not borrowed from ruletree_cmp). */
#include "testutil.h"

#include "ruletree.h"
#include "rng.h"

#define D 3
#define NMAX 64

typedef struct {
    int nc, f[2], op[2];
    double v[2];
    long long score;
    size_t tp, fp;
} cand;

/* The documented order: larger score, fewer conditions, then per
 * condition feature, op (<= first), smaller value. */
static int before(const cand *a, const cand *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    if (a->nc != b->nc)
        return a->nc < b->nc;
    for (int c = 0; c < a->nc; c++) {
        if (a->f[c] != b->f[c])
            return a->f[c] < b->f[c];
        if (a->op[c] != b->op[c])
            return a->op[c] < b->op[c];
        if (a->v[c] != b->v[c])
            return a->v[c] < b->v[c];
    }
    return 0;
}

static int meets(double x, int op, double v) { return op == RULETREE_LE ? x <= v : x >= v; }

static void count(cand *c, double x[D][NMAX], size_t n, const int *lab, int cls, size_t npos,
                  size_t nneg)
{
    c->tp = c->fp = 0;
    for (size_t i = 0; i < n; i++) {
        int in = 1;
        for (int k = 0; k < c->nc; k++)
            in &= meets(x[c->f[k]][i], c->op[k], c->v[k]);
        if (in)
            lab[i] == cls ? c->tp++ : c->fp++;
    }
    c->score = (long long)c->tp * (long long)nneg - (long long)c->fp * (long long)npos;
}

/* Distinct values of column f, ascending; returns how many. */
static size_t distinct(const double *col, size_t n, double *out)
{
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < u && out[j] != col[i])
            j++;
        if (j == u)
            out[u++] = col[i];
    }
    for (size_t a = 1; a < u; a++)
        for (size_t b = a; b > 0 && out[b] < out[b - 1]; b--) {
            double t = out[b];
            out[b] = out[b - 1];
            out[b - 1] = t;
        }
    return u;
}

/* A condition is vacuous when it matches every point: <= the largest
 * value, >= the smallest. */
static int vacuous(int op, double v, const double *vals, size_t u)
{
    return op == RULETREE_LE ? v == vals[u - 1] : v == vals[0];
}

static cand brute(double x[D][NMAX], size_t n, const int *lab, int cls)
{
    size_t npos = 0;
    for (size_t i = 0; i < n; i++)
        npos += lab[i] == cls;
    size_t nneg = n - npos;
    double vals[D][NMAX];
    size_t u[D];
    for (int f = 0; f < D; f++)
        u[f] = distinct(x[f], n, vals[f]);
    cand best = {0};
    count(&best, x, n, lab, cls, npos, nneg); /* the empty rule */
    for (int f = 0; f < D; f++)
        for (int op = 0; op < 2; op++)
            for (size_t a = 0; a < u[f]; a++) {
                if (vacuous(op, vals[f][a], vals[f], u[f]))
                    continue;
                cand c = {1, {f, 0}, {op, 0}, {vals[f][a], 0}, 0, 0, 0};
                count(&c, x, n, lab, cls, npos, nneg);
                if (before(&c, &best))
                    best = c;
                /* a second condition: another feature, or an interval */
                for (int g = f; g < D; g++)
                    for (int op2 = 0; op2 < 2; op2++)
                        for (size_t b = 0; b < u[g]; b++) {
                            if (vacuous(op2, vals[g][b], vals[g], u[g]))
                                continue;
                            if (g == f && !(op == RULETREE_LE && op2 == RULETREE_GE &&
                                            vals[g][b] <= vals[f][a]))
                                continue;
                            cand c2 = {2, {f, g}, {op, op2}, {vals[f][a], vals[g][b]}, 0, 0, 0};
                            count(&c2, x, n, lab, cls, npos, nneg);
                            if (before(&c2, &best))
                                best = c2;
                        }
            }
    return best;
}

static void check_same(const ruletree_rule *r, const cand *b, int trial)
{
    if (r->nconds != b->nc || r->tp != b->tp || r->fp != b->fp)
        fail_msg("trial %d: search has %d conditions tp %zu fp %zu, brute force %d tp %zu fp %zu",
                 trial, r->nconds, r->tp, r->fp, b->nc, b->tp, b->fp);
    for (int c = 0; c < b->nc; c++)
        if (r->cond[c].feature != b->f[c] || r->cond[c].op != b->op[c] ||
            r->cond[c].value != b->v[c])
            fail_msg("trial %d: condition %d: search f%d op%d %g, brute force f%d op%d %g", trial,
                     c, r->cond[c].feature, r->cond[c].op, r->cond[c].value, b->f[c], b->op[c],
                     b->v[c]);
}

/* Random small data with many ties (few distinct values), labels with and
 * without structure: the search equals the brute force, rule and counts. */
static void test_equals_brute_force(void **state)
{
    (void)state;
    rfm_rng rng;
    rfm_rng_seed(&rng, 2024);
    int depth2 = 0, intervals = 0, empty = 0;
    for (int trial = 0; trial < 600; trial++) {
        size_t n = 2 + (size_t)(rfm_rng_uniform(&rng) * (NMAX - 2));
        int levels[D];
        for (int f = 0; f < D; f++)
            levels[f] = 1 + (int)(rfm_rng_uniform(&rng) * (trial % 3 == 0 ? 40 : 6));
        double x[D][NMAX];
        int lab[NMAX];
        for (size_t i = 0; i < n; i++) {
            for (int f = 0; f < D; f++)
                x[f][i] = floor(rfm_rng_uniform(&rng) * levels[f]) * (f == 2 ? 12.5 : 1);
            if (trial % 2) /* structured: class by a box, with noise */
                lab[i] = (x[0][i] < levels[0] / 2.0 && x[1][i] >= levels[1] / 3.0) ^
                         (rfm_rng_uniform(&rng) < 0.1);
            else
                lab[i] = (int)(rfm_rng_uniform(&rng) * 3);
        }
        const double *cols[D] = {x[0], x[1], x[2]};
        int cls = trial % 3 == 2 ? 2 : 1;
        ruletree_rule r;
        char err[RFM_ERRLEN];
        assert_int_equal(ruletree_fit(cols, D, n, lab, cls, &r, err, sizeof err), RFM_OK);
        cand b = brute(x, n, lab, cls);
        check_same(&r, &b, trial);
        /* Every class at once (the ranks shared, two threads): each class's
         * rule the brute force's, and the one-class search's exactly. */
        int k = trial % 2 ? 2 : 3;
        ruletree_rule all[3];
        assert_int_equal(ruletree_fit_all(cols, D, n, lab, (size_t)k, all, err, sizeof err),
                         RFM_OK);
        for (int c = 0; c < k; c++) {
            cand bc = brute(x, n, lab, c);
            check_same(&all[c], &bc, trial);
            ruletree_rule one;
            assert_int_equal(ruletree_fit(cols, D, n, lab, c, &one, err, sizeof err), RFM_OK);
            assert_int_equal(ruletree_cmp(&all[c], &one), 0);
            assert_true(all[c].tp == one.tp && all[c].fp == one.fp && all[c].npos == one.npos);
        }
        /* the counts are the rule's own */
        size_t tp = 0, fp = 0;
        for (size_t i = 0; i < n; i++) {
            double v[D] = {x[0][i], x[1][i], x[2][i]};
            if (ruletree_match(&r, v))
                lab[i] == cls ? tp++ : fp++;
        }
        assert_int_equal(tp, r.tp);
        assert_int_equal(fp, r.fp);
        depth2 += r.nconds == 2;
        intervals += r.nconds == 2 && r.cond[0].feature == r.cond[1].feature;
        empty += r.nconds == 0;
    }
    printf("    600 data sets: %d two-condition rules (%d intervals), %d empty\n", depth2,
           intervals, empty);
    /* the trials exercise every kind of rule */
    assert_true(depth2 > 50 && intervals > 5 && empty > 0);
}

/* A planted box in RFM units is found with its thresholds, and reads in
 * those units. */
static void test_planted_box(void **state)
{
    (void)state;
    enum { n = 2000 };
    static double r[n], f[n], m[n];
    static int lab[n];
    rfm_rng rng;
    rfm_rng_seed(&rng, 9);
    for (size_t i = 0; i < n; i++) {
        r[i] = 1 + floor(rfm_rng_uniform(&rng) * 365);
        f[i] = 1 + floor(rfm_rng_uniform(&rng) * 20);
        m[i] = floor(rfm_rng_uniform(&rng) * 500000) / 100;
        lab[i] = r[i] <= 30 && f[i] >= 5 ? 3 : (int)(i % 3);
    }
    const double *cols[3] = {r, f, m};
    ruletree_rule rule;
    char err[RFM_ERRLEN], text[200];
    assert_int_equal(ruletree_fit(cols, 3, n, lab, 3, &rule, err, sizeof err), RFM_OK);
    static const char *const names[3] = {"recency", "frequency", "monetary"};
    static const char *const units[3] = {"days", "invoices", ""};
    ruletree_format(&rule, names, units, text, sizeof text);
    printf("    %s: %zu of %zu in the class, %zu of %zu others\n", text, rule.tp, rule.npos,
           rule.fp, rule.nneg);
    assert_string_equal(text, "recency <= 30 days and frequency >= 5 invoices");
    assert_int_equal(rule.tp, rule.npos);
    assert_int_equal(rule.fp, 0);

    /* An interval on one feature. */
    for (size_t i = 0; i < n; i++)
        lab[i] = r[i] >= 60 && r[i] <= 120;
    assert_int_equal(ruletree_fit(cols, 3, n, lab, 1, &rule, err, sizeof err), RFM_OK);
    ruletree_format(&rule, names, units, text, sizeof text);
    assert_string_equal(text, "60 <= recency <= 120 days");
    /* Money in its units, the value as in the data. */
    for (size_t i = 0; i < n; i++)
        lab[i] = m[i] >= 1234.5;
    assert_int_equal(ruletree_fit(cols, 3, n, lab, 1, &rule, err, sizeof err), RFM_OK);
    ruletree_format(&rule, names, units, text, sizeof text);
    assert_int_equal(rule.nconds, 1);
    assert_true(rule.cond[0].value >= 1234.5 && rule.fp == 0 && rule.tp == rule.npos);
    assert_non_null(strstr(text, "monetary >= "));

    /* One class only: the empty rule. */
    for (size_t i = 0; i < n; i++)
        lab[i] = 0;
    assert_int_equal(ruletree_fit(cols, 3, n, lab, 0, &rule, err, sizeof err), RFM_OK);
    assert_int_equal(rule.nconds, 0);
    ruletree_format(&rule, names, units, text, sizeof text);
    assert_string_equal(text, "everyone");
    r[5] = NAN;
    assert_int_equal(ruletree_fit(cols, 3, n, lab, 0, &rule, err, sizeof err), RFM_EINVAL);
    ruletree_rule rules[2];
    assert_int_equal(ruletree_fit_all(cols, 3, n, lab, 2, rules, err, sizeof err), RFM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equals_brute_force),
        cmocka_unit_test(test_planted_box),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
