/* test_analytics.c - the analyst pages' figures against naive
 * recomputations: a seeded fixture of 300 customers' invoices (written
 * as a CSV and read back through txn), models fitted on it, and every
 * count, sum, share, quantile and heatmap cell of analytics_compute
 * recomputed here from the fixture's own lines or by scoring each
 * customer one at a time. Sums of money are compared to 1e-9 relative:
 * the order of additions differs. */
#include "testutil.h"

#include <gsl/gsl_eigen.h>
#include <gsl/gsl_errno.h>
#include <string.h>

#include "analytics.h"
#include "bgnbd.h"
#include "config.h"
#include "csv.h"
#include "rng.h"
#include "sim_clv.h"

#define NCUST 300
#define MAXLINES 4000

/* The fixture's purchases as plain data (one line each). */
typedef struct {
    int cust;
    int32_t day;
    double amount;
} line;

static line lines[MAXLINES];
static size_t nlines;
static char csvtext[MAXLINES * 80];

static txn_data *d;
static customer_row rows[NCUST];
static char *ids[NCUST];
static size_t nrows;
static segments_model *seg;
static cltv_model *cm;
static churn_model *ch;
static score_models models;
static json_t *out;
static analytics_options opt;

static int month_of(int32_t day)
{
    int y, m, dd;
    date_to_ymd(day, &y, &m, &dd);
    return y * 12 + m - 1;
}

static int setup(void **state)
{
    (void)state;
    rfm_rng g;
    rfm_rng_seed(&g, 7);
    int32_t d0 = date_from_ymd(2010, 12, 1);
    size_t o = (size_t)snprintf(csvtext, sizeof csvtext,
                                "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n");
    int inv = 1000;
    /* BG/NBD's and Gamma-Gamma's story, so that the fits are well posed:
     * a purchase rate and a dropout chance per customer, a spend level
     * per customer and a spread around it per purchase. */
    for (int c = 0; c < NCUST; c++) {
        double rate = sim_gamma(&g, 0.9) / 12, drop = sim_beta(&g, 1, 3);
        double level = 20 * sim_gamma(&g, 4) / 4;
        int32_t day = d0 + (int32_t)rfm_rng_below(&g, 200);
        while (day < d0 + 365 && nlines < MAXLINES) {
            double price = round(100 * level * sim_gamma(&g, 6) / 6 + 1) / 100;
            char date[11];
            date_format(day, date);
            o += (size_t)snprintf(csvtext + o, sizeof csvtext - o, "%d,P%d,1,%s 10:00,%.2f,C%03d\n",
                                  inv++, (int)rfm_rng_below(&g, 20), date, price, c);
            lines[nlines++] = (line){c, day, price};
            if (rfm_rng_uniform(&g) < drop)
                break;
            day += 1 + (int32_t)floor(-log(1 - rfm_rng_uniform(&g)) / rate);
        }
    }
    txn_options to = {.invoice = "InvoiceNo",
                      .customer_id = "CustomerID",
                      .date = "InvoiceDate",
                      .quantity = "Quantity",
                      .price = "UnitPrice",
                      .cancel_prefix = "C",
                      .snapshot_day = DATE_NONE};
    csv_reader *r;
    char err[RFM_ERRLEN];
    txn_report rep;
    assert_int_equal(csv_open_mem(csvtext, o, "fx.csv", &r, err, sizeof err), RFM_OK);
    if (txn_read_csv(r, &to, NULL, NULL, &d, &rep, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    csv_close(r);
    assert_int_equal(rep.used, nlines);
    /* The training customers as rfm-train makes them. */
    size_t n = txn_ncustomers(d);
    txn_features *f = calloc(n, sizeof *f);
    txn_features_asof(d, txn_snapshot_day(d), f);
    double rec[NCUST], fr[NCUST], mo[NCUST], bx[NCUST], btx[NCUST], bT[NCUST], bm[NCUST];
    for (size_t i = 0; i < n; i++) {
        if (!f[i].active)
            continue;
        ids[nrows] = strdup(txn_customer_id(d, i));
        rows[nrows] =
            (customer_row){f[i].recency, f[i].frequency,     f[i].monetary, f[i].bg_x, f[i].bg_t_x,
                           f[i].bg_T,    f[i].bg_mean_spend, NAN,           NAN};
        rec[nrows] = f[i].recency, fr[nrows] = f[i].frequency, mo[nrows] = f[i].monetary;
        bx[nrows] = f[i].bg_x, btx[nrows] = f[i].bg_t_x, bT[nrows] = f[i].bg_T;
        bm[nrows] = f[i].bg_mean_spend;
        nrows++;
    }
    free(f);
    assert_int_equal(nrows, NCUST);
    rfm_config *cfg;
    if (config_load("../config/rfm.yaml", &cfg, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    cfg->segments.k = 4;
    if (segments_fit(rec, fr, mo, nrows, &cfg->segments, &seg, err, sizeof err) != RFM_OK)
        fail_msg("segments: %s", err);
    if (cltv_fit(bx, btx, bT, bm, nrows, &cfg->cltv, &cm, err, sizeof err) != RFM_OK)
        fail_msg("cltv: %s", err);
    /* A churn model of recency, frequency, monetary: label "no purchase
     * in the last 60 days" (the fit's quality does not matter here). */
    double x[NCUST * 3];
    int y[NCUST];
    for (size_t i = 0; i < nrows; i++) {
        x[3 * i] = rec[i], x[3 * i + 1] = fr[i], x[3 * i + 2] = mo[i];
        y[i] = rec[i] > 60;
    }
    const char *names[3] = {"recency", "frequency", "monetary"};
    if (churn_fit(x, y, nrows, 3, names, &cfg->churn, &ch, err, sizeof err) != RFM_OK)
        fail_msg("churn: %s", err);
    config_free(cfg);
    models = (score_models){seg, cm, ch, 365, 0.01, NULL};
    analytics_default_options(&opt);
    opt.active_days = 45;
    opt.currency = "GBP";
    if (analytics_compute(d, rows, nrows, &models, &opt, &out, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(out);
    segments_free(seg);
    cltv_free(cm);
    churn_free(ch);
    txn_free(d);
    for (size_t i = 0; i < nrows; i++)
        free(ids[i]);
    return 0;
}

static const json_t *at(const json_t *j, const char *a, const char *b)
{
    const json_t *v = json_object_get(json_object_get(j, a), b);
    if (!v)
        fail_msg("%s.%s missing", a, b);
    return v;
}

static void assert_rel(double a, double b, double rel)
{
    assert_near(a, b, rel * fmax(1, fabs(b)));
}

/* analytics_quantile: the interpolated quantile on hand-worked cases. */
static void test_quantile(void **state)
{
    (void)state;
    const double v[] = {1, 2, 3, 4}, one[] = {7};
    assert_near(analytics_quantile(v, 4, 0.5), 2.5, 0);
    assert_near(analytics_quantile(v, 4, 0.25), 1.75, 0); /* h = 0.75 */
    assert_near(analytics_quantile(v, 4, 0.75), 3.25, 0);
    assert_near(analytics_quantile(v, 4, 0), 1, 0);
    assert_near(analytics_quantile(v, 4, 1), 4, 0);
    assert_near(analytics_quantile(one, 1, 0.3), 7, 0);
    assert_true(isnan(analytics_quantile(v, 0, 0.5)));
}

/* Customers, active share and revenue from the rows; monthly revenue,
 * buyers, new customers and cohort retention from the fixture's lines. */
static void test_overview_from_lines(void **state)
{
    (void)state;
    const json_t *ov = json_object_get(out, "overview");
    assert_int_equal(json_integer_value(json_object_get(out, "format_version")), 1);
    assert_string_equal(json_string_value(json_object_get(out, "currency")), "GBP");
    assert_int_equal(json_integer_value(json_object_get(ov, "customers")), NCUST);
    size_t active = 0;
    double revenue = 0;
    for (size_t i = 0; i < nlines; i++)
        revenue += lines[i].amount;
    int32_t snap = txn_snapshot_day(d);
    for (int c = 0; c < NCUST; c++) {
        int32_t last = INT32_MIN;
        for (size_t i = 0; i < nlines; i++)
            if (lines[i].cust == c && lines[i].day > last)
                last = lines[i].day;
        active += snap - last <= 45;
    }
    assert_int_equal(json_integer_value(json_object_get(ov, "active_customers")), active);
    assert_near(json_real_value(json_object_get(ov, "active_share")), (double)active / NCUST,
                1e-15);
    assert_rel(json_real_value(json_object_get(ov, "revenue")), revenue, 1e-9);

    int m0 = INT32_MAX, m1 = INT32_MIN;
    for (size_t i = 0; i < nlines; i++) {
        int m = month_of(lines[i].day);
        m0 = m < m0 ? m : m0, m1 = m > m1 ? m : m1;
    }
    const json_t *monthly = json_object_get(ov, "monthly");
    assert_int_equal(json_array_size(monthly), (size_t)(m1 - m0 + 1));
    int first[NCUST];
    for (int c = 0; c < NCUST; c++) {
        first[c] = INT32_MAX;
        for (size_t i = 0; i < nlines; i++)
            if (lines[i].cust == c && month_of(lines[i].day) < first[c])
                first[c] = month_of(lines[i].day);
    }
    const json_t *cohorts = json_object_get(ov, "cohorts");
    size_t ci = 0;
    for (int m = m0; m <= m1; m++) {
        const json_t *e = json_array_get(monthly, (size_t)(m - m0));
        double rev = 0;
        size_t buyers = 0, fresh = 0;
        for (int c = 0; c < NCUST; c++) {
            int bought = 0;
            for (size_t i = 0; i < nlines; i++)
                if (lines[i].cust == c && month_of(lines[i].day) == m)
                    bought = 1, rev += lines[i].amount;
            buyers += bought;
            fresh += first[c] == m;
        }
        char name[32];
        snprintf(name, sizeof name, "%04d-%02d", m / 12, m % 12 + 1);
        assert_string_equal(json_string_value(json_object_get(e, "month")), name);
        assert_rel(json_real_value(json_object_get(e, "revenue")), rev, 1e-9);
        assert_int_equal(json_integer_value(json_object_get(e, "customers")), buyers);
        assert_int_equal(json_integer_value(json_object_get(e, "new_customers")), fresh);
        if (!fresh)
            continue;
        const json_t *co = json_array_get(cohorts, ci++);
        assert_string_equal(json_string_value(json_object_get(co, "cohort")), name);
        assert_int_equal(json_integer_value(json_object_get(co, "customers")), fresh);
        const json_t *ret = json_object_get(co, "retention");
        assert_int_equal(json_array_size(ret), (size_t)(m1 - m + 1));
        for (int k = m; k <= m1; k++) {
            size_t back = 0;
            for (int c = 0; c < NCUST; c++) {
                int bought = 0;
                for (size_t i = 0; first[c] == m && i < nlines; i++)
                    bought |= lines[i].cust == c && month_of(lines[i].day) == k;
                back += bought;
            }
            assert_near(json_real_value(json_array_get(ret, (size_t)(k - m))),
                        (double)back / (double)fresh, 1e-15);
        }
        assert_near(json_real_value(json_array_get(ret, 0)), 1, 0);
    }
    assert_int_equal(ci, json_array_size(cohorts));
}

/* Segment, cluster, risk and grid counts and the CLTV sum, each customer
 * scored alone. */
static void test_scores_one_by_one(void **state)
{
    (void)state;
    const json_t *ov = json_object_get(out, "overview"), *rm = json_object_get(out, "rfm_matrix");
    const json_t *segnames = json_object_get(rm, "segments"),
                 *counts = json_object_get(rm, "counts");
    size_t nseg = json_array_size(segnames), nclu = segments_nclusters(seg);
    assert_true(nseg >= 2);
    assert_int_equal(json_array_size(json_object_get(rm, "clusters")), nclu);
    size_t risk[3] = {0, 0, 0}, grid[5][5] = {{0}};
    size_t *cross = calloc(nseg * nclu, sizeof *cross), *segn = calloc(nseg, sizeof *segn);
    size_t clun[16] = {0};
    double tot = 0, lo = 0, hi = 0;
    for (size_t i = 0; i < nrows; i++) {
        char err[256];
        segments_result r;
        assert_int_equal(segments_predict(seg, rows[i].recency, rows[i].frequency, rows[i].monetary,
                                          &r, err, sizeof err),
                         RFM_OK);
        size_t k = 0;
        while (k < nseg &&
               strcmp(json_string_value(json_array_get(segnames, k)), r.rfm_segment) != 0)
            k++;
        assert_true(k < nseg);
        cross[k * nclu + r.cluster]++;
        segn[k]++;
        clun[r.cluster]++;
        grid[r.rfm_score[0] - '1'][r.rfm_score[1] - '1']++;
        double x[3] = {rows[i].recency, rows[i].frequency, rows[i].monetary}, p;
        assert_int_equal(churn_predict(ch, x, &p, err, sizeof err), RFM_OK);
        risk[churn_risk_level(ch, p)]++;
        cltv_prediction cp;
        assert_int_equal(cltv_predict(cm, rows[i].repeat_purchases, rows[i].days_first_to_last,
                                      rows[i].days_since_first, rows[i].mean_repeat_spend, 365,
                                      0.01, &cp, err, sizeof err),
                         RFM_OK);
        tot += cp.cltv, lo += cp.lower, hi += cp.upper;
    }
    for (size_t k = 0; k < nseg; k++) {
        for (size_t c = 0; c < nclu; c++)
            assert_int_equal(json_integer_value(json_array_get(json_array_get(counts, k), c)),
                             cross[k * nclu + c]);
        const json_t *e = json_array_get(json_object_get(ov, "segments"), k);
        assert_int_equal(json_integer_value(json_object_get(e, "customers")), segn[k]);
    }
    for (size_t c = 0; c < nclu; c++)
        assert_int_equal(json_integer_value(json_object_get(
                             json_array_get(json_object_get(ov, "clusters"), c), "customers")),
                         clun[c]);
    for (int r = 0; r < 5; r++)
        for (int f = 0; f < 5; f++)
            assert_int_equal(
                json_integer_value(json_array_get(
                    json_array_get(json_object_get(rm, "grid"), (size_t)r), (size_t)f)),
                grid[r][f]);
    assert_int_equal(json_integer_value(at(ov, "churn_risk", "low")), risk[0]);
    assert_int_equal(json_integer_value(at(ov, "churn_risk", "medium")), risk[1]);
    assert_int_equal(json_integer_value(at(ov, "churn_risk", "high")), risk[2]);
    assert_rel(json_real_value(at(ov, "cltv", "total")), tot, 1e-9);
    assert_rel(json_real_value(at(ov, "cltv", "lower")), lo, 1e-9);
    assert_rel(json_real_value(at(ov, "cltv", "upper")), hi, 1e-9);
    assert_true(lo <= tot && tot <= hi);
    free(cross);
    free(segn);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Textbook type-7 quantile, written apart from analytics_quantile. */
static double q7(const double *s, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t a = (size_t)pos, b = a + 1 < n ? a + 1 : a;
    return s[a] * (1 - (pos - (double)a)) + s[b] * (pos - (double)a);
}

/* The churn and CLTV box plots per segment, the churn histogram, and
 * every heatmap cell against bgnbd directly. */
static void test_cltv_churn(void **state)
{
    (void)state;
    const json_t *cc = json_object_get(out, "cltv_churn");
    const json_t *by = json_object_get(cc, "by_segment");
    size_t hist[20] = {0};
    for (size_t k = 0; k < json_array_size(by); k++) {
        const json_t *e = json_array_get(by, k);
        const char *name = json_string_value(json_object_get(e, "segment"));
        double p[NCUST], v[NCUST];
        size_t n = 0;
        for (size_t i = 0; i < nrows; i++) {
            char err[256];
            segments_result r;
            segments_predict(seg, rows[i].recency, rows[i].frequency, rows[i].monetary, &r, err,
                             sizeof err);
            if (strcmp(r.rfm_segment, name) != 0)
                continue;
            double x[3] = {rows[i].recency, rows[i].frequency, rows[i].monetary};
            churn_predict(ch, x, &p[n], err, sizeof err);
            cltv_prediction cp;
            cltv_predict(cm, rows[i].repeat_purchases, rows[i].days_first_to_last,
                         rows[i].days_since_first, rows[i].mean_repeat_spend, 365, 0.01, &cp, err,
                         sizeof err);
            v[n++] = cp.cltv;
        }
        assert_int_equal(json_integer_value(json_object_get(e, "customers")), n);
        if (n == 0)
            continue;
        qsort(p, n, sizeof *p, cmp);
        qsort(v, n, sizeof *v, cmp);
        const char *keys[] = {"min", "q1", "median", "q3", "max"};
        const double qs[] = {0, 0.25, 0.5, 0.75, 1};
        for (int t = 0; t < 5; t++) {
            assert_near(json_real_value(at(e, "churn_probability", keys[t])), q7(p, n, qs[t]),
                        1e-12);
            assert_rel(json_real_value(at(e, "cltv", keys[t])), q7(v, n, qs[t]), 1e-12);
        }
        for (size_t i = 0; i < n; i++)
            hist[p[i] >= 1 ? 19 : (int)(p[i] * 20)]++;
    }
    const json_t *h = json_object_get(json_object_get(cc, "churn_histogram"), "counts");
    for (int b = 0; b < 20; b++)
        assert_int_equal(json_integer_value(json_array_get(h, (size_t)b)), hist[b]);

    const bgnbd_params *bp = &cltv_bgnbd(cm)->p;
    const char *maps[2] = {"p_alive", "expected_purchases"};
    for (int w = 0; w < 2; w++) {
        const json_t *m = json_object_get(cc, maps[w]);
        double T = json_real_value(json_object_get(m, "T_days"));
        const json_t *fx = json_object_get(m, "frequency"),
                     *ds = json_object_get(m, "days_since_last");
        const json_t *vals = json_object_get(m, "values");
        assert_int_equal(json_array_size(ds), (size_t)opt.grid_steps + 1);
        assert_near(json_real_value(json_array_get(ds, 0)), 0, 0);
        assert_near(json_real_value(json_array_get(ds, (size_t)opt.grid_steps)), T, 0);
        size_t cells = 0;
        for (size_t s = 0; s < json_array_size(ds); s++)
            for (size_t x = 0; x < json_array_size(fx); x++) {
                const json_t *cell = json_array_get(json_array_get(vals, s), x);
                double since = json_real_value(json_array_get(ds, s)), t_x = T - since;
                int possible = x == 0 ? t_x == 0 : t_x > 0;
                assert_int_equal(!json_is_null(cell), possible);
                if (!possible)
                    continue;
                double want = w == 0 ? bgnbd_p_alive(bp, (double)x, t_x, T)
                                     : bgnbd_expected(bp, 365, (double)x, t_x, T);
                assert_rel(json_real_value(cell), want, 1e-12);
                cells++;
            }
        assert_true(cells > 20);
    }
}

/* The holdout check's groups as means per customer, and nothing when the
 * check did not run. */
static void test_holdout(void **state)
{
    (void)state;
    json_t *j = json_deep_copy(out);
    cltv_holdout h;
    memset(&h, 0, sizeof h);
    char err[RFM_ERRLEN];
    assert_int_equal(analytics_add_holdout(j, &h, err, sizeof err), RFM_OK);
    assert_null(json_object_get(json_object_get(j, "cltv_churn"), "holdout"));
    h.ok = 1, h.days = 90;
    snprintf(h.cut, sizeof h.cut, "2011-09-11");
    h.n[0] = 4, h.actual[0] = 2, h.predicted[0] = 3;
    h.n[CLTV_HOLDOUT_GROUPS - 1] = 2, h.actual[CLTV_HOLDOUT_GROUPS - 1] = 10;
    h.predicted[CLTV_HOLDOUT_GROUPS - 1] = 8;
    h.total_n = 6, h.total_actual = 12, h.total_predicted = 11;
    assert_int_equal(analytics_add_holdout(j, &h, err, sizeof err), RFM_OK);
    const json_t *ho = json_object_get(json_object_get(j, "cltv_churn"), "holdout");
    const json_t *g = json_object_get(ho, "groups");
    assert_int_equal(json_array_size(g), 2); /* groups without customers left out */
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(g, 0), "repeat_purchases")), "0");
    assert_near(json_real_value(json_object_get(json_array_get(g, 0), "actual_mean")), 0.5, 0);
    assert_near(json_real_value(json_object_get(json_array_get(g, 0), "predicted_mean")), 0.75, 0);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(g, 1), "repeat_purchases")), "7+");
    assert_near(json_real_value(json_object_get(json_array_get(g, 1), "actual_mean")), 5, 0);
    assert_near(json_real_value(json_object_get(json_array_get(g, 1), "predicted_mean")), 4, 0);
    assert_int_equal(json_integer_value(json_object_get(ho, "customers")), 6);
    assert_string_equal(json_string_value(json_object_get(ho, "cut")), "2011-09-11");
    json_decref(j);
}

/* Without models, only the transaction figures; bad options refused. */
static void test_models_missing(void **state)
{
    (void)state;
    score_models none = {NULL, NULL, NULL, 365, 0.01, NULL};
    json_t *j;
    char err[RFM_ERRLEN];
    assert_int_equal(analytics_compute(d, rows, nrows, &none, &opt, &j, err, sizeof err), RFM_OK);
    const json_t *ov = json_object_get(j, "overview");
    assert_null(json_object_get(ov, "cltv"));
    assert_null(json_object_get(ov, "churn_risk"));
    assert_null(json_object_get(ov, "segments"));
    assert_non_null(json_object_get(ov, "monthly"));
    assert_int_equal(analytics_check(j, err, sizeof err), RFM_OK);
    json_object_set_new(j, "format_version", json_integer(2));
    assert_int_equal(analytics_check(j, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "--only analytics"));
    json_decref(j);
    analytics_options bad = opt;
    bad.active_days = 0;
    assert_int_equal(analytics_compute(d, rows, nrows, &none, &bad, &j, err, sizeof err),
                     RFM_EINVAL);
    assert_non_null(strstr(err, "active_days"));
    assert_int_equal(analytics_compute(d, rows, 0, &none, &opt, &j, err, sizeof err), RFM_EDATA);
}

/* The SHAP sample: each sampled customer's contributions are
 * churn_explain's for that customer's row (found by id), they add up with
 * the base value to the logit of the probability, the ids are distinct
 * and in row order, and the importance is churn_global_importance over
 * every customer (the fixture's rows all score). */
static void test_shap_sample(void **state)
{
    (void)state;
    json_t *j = json_object();
    char err[RFM_ERRLEN];
    assert_int_equal(
        analytics_add_shap(j, ch, (const char *const *)ids, rows, nrows, 50, 3, err, sizeof err),
        RFM_OK);
    const json_t *s = json_object_get(j, "shap_sample"), *sm = json_object_get(s, "sample");
    assert_int_equal(json_integer_value(json_object_get(s, "customers")), NCUST);
    const json_t *sid = json_object_get(sm, "ids");
    assert_int_equal(json_array_size(sid), 50);
    double x[3 * NCUST], imp[3];
    for (size_t i = 0; i < nrows; i++)
        x[3 * i] = rows[i].recency, x[3 * i + 1] = rows[i].frequency,
              x[3 * i + 2] = rows[i].monetary;
    assert_int_equal(churn_global_importance(ch, x, nrows, imp, err, sizeof err), RFM_OK);
    for (int f = 0; f < 3; f++)
        assert_near(json_real_value(json_array_get(json_object_get(s, "importance"), (size_t)f)),
                    imp[f], 1e-12 * (1 + imp[f]));
    double base = json_real_value(json_object_get(s, "base_value"));
    long prev = -1;
    for (size_t k = 0; k < 50; k++) {
        const char *id = json_string_value(json_array_get(sid, k));
        long i = -1;
        for (size_t r = 0; r < nrows; r++)
            if (strcmp(ids[r], id) == 0)
                i = (long)r;
        assert_true(i > prev); /* distinct, in row order */
        prev = i;
        double b, c[3], logit, p;
        assert_int_equal(churn_explain(ch, x + 3 * i, &b, c, &logit, &p, err, sizeof err), RFM_OK);
        const json_t *cr = json_array_get(json_object_get(sm, "contributions"), k);
        double sum = base;
        for (size_t f = 0; f < 3; f++) {
            assert_near(json_real_value(json_array_get(cr, f)), c[f], 0);
            sum += json_real_value(json_array_get(cr, f));
            assert_near(json_real_value(
                            json_array_get(json_array_get(json_object_get(sm, "values"), k), f)),
                        x[3 * i + f], 0);
        }
        double pk = json_real_value(json_array_get(json_object_get(sm, "probability"), k));
        assert_near(pk, p, 0);
        assert_near(sum, log(pk / (1 - pk)), 1e-9);
    }
    /* a sample larger than the customers takes them all; each is
     * churn_explain's, whichever of the two threads (halves of the rows,
     * from 256 customers) explained it */
    assert_int_equal(
        analytics_add_shap(j, ch, (const char *const *)ids, rows, nrows, 1000, 3, err, sizeof err),
        RFM_OK);
    sm = json_object_get(json_object_get(j, "shap_sample"), "sample");
    assert_true(nrows >= 256);
    assert_int_equal(json_array_size(json_object_get(sm, "ids")), NCUST);
    for (size_t i = 0; i < nrows; i++) {
        double b, c[3], logit, p;
        assert_int_equal(churn_explain(ch, x + 3 * i, &b, c, &logit, &p, err, sizeof err), RFM_OK);
        assert_string_equal(json_string_value(json_array_get(json_object_get(sm, "ids"), i)),
                            ids[i]);
        for (size_t f = 0; f < 3; f++)
            assert_near(json_real_value(json_array_get(
                            json_array_get(json_object_get(sm, "contributions"), i), f)),
                        c[f], 0);
        assert_near(json_real_value(json_array_get(json_object_get(sm, "probability"), i)), p, 0);
    }
    /* no customer it can score: refused (logistic, NaN recency) */
    customer_row nanrow = rows[0];
    nanrow.recency = NAN;
    assert_int_equal(
        analytics_add_shap(j, ch, (const char *const *)ids, &nanrow, 1, 10, 3, err, sizeof err),
        RFM_EDATA);
    json_decref(j);
}

/* The churn curves: the evaluation block of churn.json, member by member. */
static void test_churn_curves(void **state)
{
    (void)state;
    json_t *j = json_deep_copy(out);
    json_t *cj = json_pack("{s:s,s:{s:{s:f,s:[[f,f],[f,f]],s:[],s:[],s:s},s:{s:f,s:[],s:[],s:[]}}}",
                           "learner", "boosted", "evaluation", "logistic", "auc", 0.7, "roc", 0.0,
                           0.0, 1.0, 1.0, "calibration", "gains", "other", "dropped", "boosted",
                           "auc", 0.8, "roc", "calibration", "gains");
    char err[RFM_ERRLEN];
    assert_int_equal(analytics_add_churn_curves(j, cj, err, sizeof err), RFM_OK);
    const json_t *e = json_object_get(json_object_get(j, "cltv_churn"), "evaluation");
    assert_string_equal(json_string_value(json_object_get(e, "served")), "boosted");
    const json_t *l = json_object_get(e, "logistic");
    assert_near(json_real_value(json_object_get(l, "auc")), 0.7, 0);
    assert_true(json_equal(
        json_object_get(l, "roc"),
        json_object_get(json_object_get(json_object_get(cj, "evaluation"), "logistic"), "roc")));
    assert_null(json_object_get(l, "other"));
    assert_near(json_real_value(json_object_get(json_object_get(e, "boosted"), "auc")), 0.8, 0);
    json_decref(cj);
    /* a churn file without an evaluation adds nothing */
    json_t *k = json_deep_copy(out), *none = json_pack("{s:s}", "learner", "logistic");
    assert_int_equal(analytics_add_churn_curves(k, none, err, sizeof err), RFM_OK);
    assert_null(json_object_get(json_object_get(k, "cltv_churn"), "evaluation"));
    json_decref(none), json_decref(k), json_decref(j);
}

/* Qini: a hand-made curve of 11 points (share 0..1 by 0.1) with known
 * uplift values; the random line, uplift rates and deciles recomputed
 * here; the comparison sorted best first; missing curves refused. */
static void test_qini(void **state)
{
    (void)state;
    const double n = 1000;
    json_t *pts = json_array();
    double U[11], Q[11];
    for (int k = 0; k <= 10; k++) {
        double f = k / 10.0;
        U[k] = 100 * sqrt(f), Q[k] = 50 * f * (2 - f); /* concave: a ranking that works */
        json_array_append_new(pts, json_pack("[f,f,f]", f, Q[k], U[k]));
    }
    json_t *met =
        json_pack("{s:s,s:i,s:{s:{s:{s:o,s:f,s:f,s:[f,f]}}}}", "served_learner", "t_learner",
                  "customers", 64000, "holdout", "t_learner", "Arm A", "curve_frac_qini_uplift",
                  pts, "customers", n, "qini_normalised", 0.2, "qini_interval_90", 0.1, 0.3);
    json_t *file =
        json_pack("{s:[s],s:s,s:{s:{s:{s:f,s:{s:{s:f}}},s:{s:f,s:{s:{s:f}}}}}}", "arms", "Arm A",
                  "outcome", "visit", "holdout", "comparison", "random", "mean_qini_normalised",
                  0.0, "arms", "Arm A", "qini_normalised", 0.0, "t_learner", "mean_qini_normalised",
                  0.2, "arms", "Arm A", "qini_normalised", 0.2);
    json_t *j = json_object();
    char err[RFM_ERRLEN];
    assert_int_equal(analytics_add_qini(j, met, file, 30, 0.5, err, sizeof err), RFM_OK);
    const json_t *q = json_object_get(j, "qini");
    assert_near(json_real_value(json_object_get(q, "value")), 30, 0);
    assert_near(json_real_value(json_object_get(q, "cost")), 0.5, 0);
    assert_int_equal(json_integer_value(json_object_get(q, "customers")), 64000);
    const json_t *a = json_array_get(json_object_get(q, "arms"), 0);
    assert_string_equal(json_string_value(json_object_get(a, "arm")), "Arm A");
    const json_t *qc = json_object_get(a, "qini"), *ur = json_object_get(a, "uplift_rate");
    assert_int_equal(json_array_size(qc), 11);
    assert_int_equal(json_array_size(ur), 10); /* share 0 has no rate */
    for (int k = 0; k <= 10; k++) {
        const json_t *p = json_array_get(qc, (size_t)k);
        assert_near(json_real_value(json_array_get(p, 1)), Q[k], 0);
        assert_near(json_real_value(json_array_get(p, 2)), Q[10] * k / 10.0, 1e-12);
        if (k)
            assert_near(json_real_value(json_array_get(json_array_get(ur, (size_t)k - 1), 1)),
                        U[k] / (k / 10.0 * n), 1e-12);
    }
    const json_t *dec = json_object_get(a, "uplift_by_decile");
    assert_int_equal(json_array_size(dec), 10);
    for (int k = 1; k <= 10; k++)
        assert_near(json_real_value(json_array_get(dec, (size_t)k - 1)), (U[k] - U[k - 1]) / 100,
                    1e-12);
    const json_t *cmp = json_object_get(q, "comparison");
    assert_int_equal(json_array_size(cmp), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cmp, 0), "learner")),
                        "t_learner");
    /* a served learner without curves: refused, naming what to do */
    json_object_del(
        json_object_get(json_object_get(json_object_get(met, "holdout"), "t_learner"), "Arm A"),
        "curve_frac_qini_uplift");
    assert_int_equal(analytics_add_qini(j, met, file, 30, 0.5, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "retrain uplift"));
    json_decref(met), json_decref(file), json_decref(j);
}

/* The embedding map: every point's coordinates are its projection on the
 * first two eigenvectors of a naively computed covariance (GSL's
 * eigensolver; up to each axis' sign, to the 4 decimals kept), its
 * cluster that of its customer's row; the sample is capped and in index
 * order. */
static void test_embedding_map(void **state)
{
    (void)state;
    enum { DIM = 4 };
    static float v[NCUST * DIM];
    const char *vid[NCUST];
    rfm_rng g;
    rfm_rng_seed(&g, 5);
    for (size_t i = 0; i < nrows; i++) {
        double z0 = 3 * rfm_rng_normal(&g), z1 = rfm_rng_normal(&g);
        v[i * DIM] = (float)(z0 + 0.1 * rfm_rng_normal(&g));
        v[i * DIM + 1] = (float)(z0 - z1);
        v[i * DIM + 2] = (float)(0.5 * z1 + 0.2 * rfm_rng_normal(&g));
        v[i * DIM + 3] = (float)(0.3 * rfm_rng_normal(&g));
        vid[i] = ids[nrows - 1 - i]; /* another order than the rows' */
    }
    json_t *j = json_object();
    char err[RFM_ERRLEN];
    assert_int_equal(analytics_add_embedding_map(j, v, nrows, DIM, vid, (const char *const *)ids,
                                                 rows, nrows, seg, 120, 9, err, sizeof err),
                     RFM_OK);
    /* naive: covariance, GSL eigenvectors */
    double mu[DIM] = {0}, c[DIM * DIM] = {0};
    for (size_t i = 0; i < nrows; i++)
        for (int a = 0; a < DIM; a++)
            mu[a] += v[i * DIM + a] / (double)nrows;
    for (int a = 0; a < DIM; a++)
        for (int b = 0; b < DIM; b++)
            for (size_t i = 0; i < nrows; i++)
                c[a * DIM + b] +=
                    (v[i * DIM + a] - mu[a]) * (v[i * DIM + b] - mu[b]) / (double)(nrows - 1);
    double tr = c[0] + c[5] + c[10] + c[15];
    gsl_matrix_view m = gsl_matrix_view_array(c, DIM, DIM);
    gsl_vector *ev = gsl_vector_alloc(DIM);
    gsl_matrix *evec = gsl_matrix_alloc(DIM, DIM);
    gsl_eigen_symmv_workspace *ws = gsl_eigen_symmv_alloc(DIM);
    gsl_eigen_symmv(&m.matrix, ev, evec, ws);
    gsl_eigen_symmv_sort(ev, evec, GSL_EIGEN_SORT_VAL_DESC);
    const json_t *e = json_object_get(j, "embedding_map"), *p = json_object_get(e, "points");
    const json_t *evar = json_object_get(e, "explained_variance");
    assert_near(json_real_value(json_array_get(evar, 0)), gsl_vector_get(ev, 0) / tr, 1e-9);
    assert_near(json_real_value(json_array_get(evar, 1)), gsl_vector_get(ev, 1) / tr, 1e-9);
    assert_int_equal(json_integer_value(json_object_get(e, "customers")), NCUST);
    assert_int_equal(json_array_size(json_object_get(e, "segments")), segments_nclusters(seg));
    size_t np = json_array_size(json_object_get(p, "ids"));
    assert_int_equal(np, 120);
    double sign[2] = {0, 0};
    long prev = -1;
    for (size_t k = 0; k < np; k++) {
        const char *id = json_string_value(json_array_get(json_object_get(p, "ids"), k));
        long i = -1, r = -1;
        for (size_t t = 0; t < nrows; t++) {
            if (strcmp(vid[t], id) == 0)
                i = (long)t;
            if (strcmp(ids[t], id) == 0)
                r = (long)t;
        }
        assert_true(i > prev);
        prev = i;
        for (int axis = 0; axis < 2; axis++) {
            double want = 0;
            for (int a = 0; a < DIM; a++)
                want += gsl_matrix_get(evec, (size_t)a, (size_t)axis) * (v[i * DIM + a] - mu[a]);
            double got = json_real_value(json_array_get(json_object_get(p, axis ? "y" : "x"), k));
            if (sign[axis] == 0 && fabs(want) > 1e-3)
                sign[axis] = got * want > 0 ? 1 : -1;
            assert_near(got, sign[axis] ? sign[axis] * want : fabs(want) * (got < 0 ? -1 : 1),
                        0.5e-4 + 1e-9);
        }
        assert_int_equal(json_integer_value(json_array_get(json_object_get(p, "segment"), k)),
                         segments_customer_cluster(seg, &rows[r]));
    }
    gsl_eigen_symmv_free(ws);
    gsl_matrix_free(evec);
    gsl_vector_free(ev);
    /* without a segments model every point is -1; too few vectors: refused */
    assert_int_equal(analytics_add_embedding_map(j, v, nrows, DIM, vid, (const char *const *)ids,
                                                 rows, nrows, NULL, 10, 9, err, sizeof err),
                     RFM_OK);
    assert_int_equal(
        json_integer_value(json_array_get(
            json_object_get(json_object_get(json_object_get(j, "embedding_map"), "points"),
                            "segment"),
            0)),
        -1);
    assert_int_equal(analytics_add_embedding_map(j, v, 1, DIM, vid, (const char *const *)ids, rows,
                                                 nrows, seg, 10, 9, err, sizeof err),
                     RFM_EINVAL);
    json_decref(j);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_overview_from_lines),
        cmocka_unit_test(test_scores_one_by_one),
        cmocka_unit_test(test_cltv_churn),
        cmocka_unit_test(test_holdout),
        cmocka_unit_test(test_models_missing),
        cmocka_unit_test(test_shap_sample),
        cmocka_unit_test(test_churn_curves),
        cmocka_unit_test(test_qini),
        cmocka_unit_test(test_embedding_map),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
