/* test_segments.c - the shipped segment map is total, bad maps are
 * refused, clusters are named by profile and survive the JSON round trip;
 * k is chosen for use (planted structures recovered, tiny clusters left
 * out), every cluster has a rule that describes it, names are distinct. */
#include "testutil.h"

#include <string.h>

#include "config.h"
#include "rng.h"
#include "segments.h"

static rfm_config *shipped(void)
{
    rfm_config *c;
    char err[RFM_ERRLEN];
    if (config_load("../config/rfm.yaml", &c, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    return c;
}

/* Count, for each of the 125 codes, how many rules contain it. */
static void test_shipped_map_is_total(void **state)
{
    (void)state;
    rfm_config *c = shipped();
    const segments_options *o = &c->segments;
    int names_seen = 0;
    for (int a = 1; a <= 5; a++)
        for (int b = 1; b <= 5; b++)
            for (int m = 1; m <= 5; m++) {
                int s[3] = {a, b, m}, hits = 0;
                for (size_t r = 0; r < o->nrules; r++) {
                    int in = 1;
                    for (int j = 0; j < 3; j++)
                        in &= s[j] >= o->rules[r].lo[j] && s[j] <= o->rules[r].hi[j];
                    hits += in;
                }
                if (hits != 1)
                    fail_msg("code %d%d%d is in %d segments", a, b, m, hits);
                names_seen++;
            }
    assert_int_equal(names_seen, 125);
    assert_int_equal(o->nrules, 11); /* the standard eleven */
    char buf[256];
    assert_null(segments_check(o, buf, sizeof buf));
    config_free(c);
}

static void test_bad_maps_refused(void **state)
{
    (void)state;
    rfm_config *c = shipped();
    segments_options *o = &c->segments;
    char buf[256];
    assert_string_equal(o->rules[0].name, "Champions");
    o->rules[0].lo[1] = 5; /* Champions R5 F5 only: codes 54x now in no segment */
    const char *why = segments_check(o, buf, sizeof buf);
    assert_non_null(why);
    assert_non_null(strstr(why, "541 is in no segment"));
    o->rules[0].lo[1] = 4;
    assert_string_equal(o->rules[1].name, "Loyal Customers");
    o->rules[1].lo[0] = 2; /* Loyal Customers R 2-4 F 4-5 overlaps At Risk (R 1-2, F 3-4) */
    why = segments_check(o, buf, sizeof buf);
    assert_non_null(why);
    assert_non_null(strstr(why, "in two segments"));
    o->rules[1].lo[0] = 3;
    o->rules[2].hi[2] = 6;
    assert_non_null(segments_check(o, buf, sizeof buf));
    o->rules[2].hi[2] = 5;
    o->k = 0;
    o->k_max = (int)o->nprofiles + 1; /* more clusters than names */
    why = segments_check(o, buf, sizeof buf);
    assert_non_null(why);
    assert_non_null(strstr(why, "needs a name"));
    config_free(c);
}

/* Three well-separated customer groups in log space. */
static void make_customers(double *r, double *f, double *m, size_t n)
{
    rfm_rng rng;
    rfm_rng_seed(&rng, 11);
    for (size_t i = 0; i < n; i++) {
        double e = 0.15 * rfm_rng_normal(&rng);
        switch (i % 3) {
        case 0: r[i] = 5 * exp(e), f[i] = 30 * exp(e), m[i] = 9000 * exp(e); break; /* best */
        case 1: r[i] = 300 * exp(e), f[i] = 1, m[i] = 40 * exp(e); break;           /* lost */
        default: r[i] = 10 * exp(e), f[i] = 1, m[i] = 60 * exp(e); break;           /* new */
        }
    }
}

/* Three clusters on 900 make_customers customers, with the shipped options. */
static segments_model *fit_three(rfm_config *c)
{
    enum { n = 900 };
    double r[n], f[n], m[n];
    make_customers(r, f, m, n);
    c->segments.k = 3;
    segments_model *s;
    char err[RFM_ERRLEN];
    if (segments_fit(r, f, m, n, &c->segments, &s, err, sizeof err) != RFM_OK)
        fail_msg("segments_fit: %s", err);
    return s;
}

static void test_fit_names_and_round_trip(void **state)
{
    (void)state;
    rfm_config *c = shipped();
    enum { n = 900 };
    segments_model *s = fit_three(c), *s2;
    char err[RFM_ERRLEN];
    assert_int_equal(segments_nclusters(s), 3);
    segments_result a, b;
    assert_int_equal(segments_predict(s, 5, 30, 9000, &a, err, sizeof err), RFM_OK);
    assert_int_equal(a.cluster, 0); /* the most valuable cluster is numbered 0 */
    assert_string_equal(a.segment, "Best customers");
    assert_string_equal(a.rfm_score, "555");
    assert_string_equal(a.rfm_segment, "Champions");
    assert_int_equal(segments_predict(s, 300, 1, 40, &a, err, sizeof err), RFM_OK);
    assert_string_equal(a.segment, "Lost low-value");
    assert_int_equal(segments_predict(s, 10, 1, 60, &a, err, sizeof err), RFM_OK);
    assert_string_equal(a.segment, "New customers");
    size_t total = 0;
    for (size_t k = 0; k < 3; k++) {
        segments_cluster_info ci;
        segments_cluster(s, k, &ci);
        assert_int_equal(ci.customers, n / 3);
        total += ci.customers;
    }
    assert_int_equal(total, n);
    assert_int_equal(segments_predict(s, -1, 1, 1, &a, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "recency"));
    assert_int_equal(segments_predict(s, 1, NAN, 1, &a, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "frequency"));

    /* Round trip through text: every prediction identical. */
    json_t *j;
    assert_int_equal(segments_to_json(s, &j, err, sizeof err), RFM_OK);
    char *text = json_dumps(j, JSON_REAL_PRECISION(17));
    json_decref(j);
    j = json_loads(text, 0, NULL);
    free(text);
    assert_int_equal(segments_from_json(j, &s2, err, sizeof err), RFM_OK);
    rfm_rng rng;
    rfm_rng_seed(&rng, 5);
    for (int i = 0; i < 2000; i++) {
        double x = 400 * rfm_rng_uniform(&rng), y = 1 + 40 * rfm_rng_uniform(&rng),
               z = 10000 * rfm_rng_uniform(&rng);
        assert_int_equal(segments_predict(s, x, y, z, &a, err, sizeof err), RFM_OK);
        assert_int_equal(segments_predict(s2, x, y, z, &b, err, sizeof err), RFM_OK);
        assert_int_equal(a.cluster, b.cluster);
        assert_string_equal(a.segment, b.segment);
        assert_string_equal(a.rfm_score, b.rfm_score);
        assert_string_equal(a.rfm_segment, b.rfm_segment);
    }
    for (size_t k = 0; k < 3; k++) { /* rules too */
        segments_cluster_info c1, c2;
        segments_cluster(s, k, &c1);
        segments_cluster(s2, k, &c2);
        assert_non_null(c1.rule);
        assert_non_null(c2.rule);
        assert_int_equal(ruletree_cmp(c1.rule, c2.rule), 0);
        assert_int_equal(c1.rule->tp, c2.rule->tp);
        assert_int_equal(c1.rule->fp, c2.rule->fp);
        assert_int_equal(c1.rule->nneg, c2.rule->nneg);
    }
    /* A damaged file names the field. */
    json_object_del(json_object_get(j, "kmeans"), "sd");
    segments_model *bad;
    assert_int_equal(segments_from_json(j, &bad, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "kmeans.sd"));
    json_decref(j);
    segments_free(s);
    segments_free(s2);
    config_free(c);
}

/* The lookups behind /similar_customers: a segment name to its cluster, a
 * cluster to its name, a customers.csv row to its cluster. Expected values
 * from the hand-made customers of make_customers (cluster 0 is the most
 * valuable; the three names are the profiles they match). */
static void test_cluster_lookups(void **state)
{
    (void)state;
    rfm_config *c = shipped();
    segments_model *s = fit_three(c);
    assert_int_equal(segments_find(s, "Best customers"), 0);
    long lost = segments_find(s, "Lost low-value"), fresh = segments_find(s, "New customers");
    assert_true(lost >= 1 && lost <= 2 && fresh >= 1 && fresh <= 2 && lost != fresh);
    assert_int_equal(segments_find(s, "Champions"), -1); /* an RFM segment, not a cluster */
    assert_int_equal(segments_find(s, "best customers"), -1);
    assert_int_equal(segments_find(s, NULL), -1);
    assert_string_equal(segments_cluster_name(s, 0), "Best customers");
    assert_string_equal(segments_cluster_name(s, lost), "Lost low-value");
    assert_null(segments_cluster_name(s, -1));
    assert_null(segments_cluster_name(s, 3));

    customer_row best = {5, 30, 9000, 29, 700, 720, 310, NAN, NAN};
    customer_row gone = {300, 1, 40, 0, 0, 300, 0, NAN, NAN};
    customer_row summary_only = {NAN, NAN, NAN, 3,  100,
                                 200, 25,  NAN, NAN}; /* trained from a summary */
    assert_int_equal(segments_customer_cluster(s, &best), 0);
    assert_int_equal(segments_customer_cluster(s, &gone), lost);
    assert_int_equal(segments_customer_cluster(s, &summary_only), -1);
    assert_int_equal(segments_customer_cluster(s, NULL), -1);
    segments_free(s);
    config_free(c);
}

static void test_auto_k_and_determinism(void **state)
{
    (void)state;
    rfm_config *c = shipped();
    enum { n = 600 };
    double r[n], f[n], m[n];
    make_customers(r, f, m, n);
    c->segments.k_min = 2; /* three planted groups: the range must reach down to them */
    segments_model *s1, *s2;
    char err[RFM_ERRLEN];
    assert_int_equal(segments_fit(r, f, m, n, &c->segments, &s1, err, sizeof err), RFM_OK);
    assert_int_equal(segments_fit(r, f, m, n, &c->segments, &s2, err, sizeof err), RFM_OK);
    printf("    auto k = %zu, silhouette %.4f\n", segments_nclusters(s1), segments_silhouette(s1));
    assert_int_equal(segments_nclusters(s1), 3); /* three planted groups */
    json_t *j1, *j2;
    assert_int_equal(segments_to_json(s1, &j1, err, sizeof err), RFM_OK);
    assert_int_equal(segments_to_json(s2, &j2, err, sizeof err), RFM_OK);
    assert_true(json_equal(j1, j2));
    json_decref(j1);
    json_decref(j2);
    segments_free(s1);
    segments_free(s2);
    config_free(c);
}

/* Planted customer groups in RFM units: group g's centre, lognormal noise
 * (sd 0.15 in log), rounded as real data is: whole days and invoices (at
 * least 1), cents. */
typedef struct {
    double r, f, m, share;
} group;

static void plant(const group *g, size_t ng, size_t n, uint64_t seed, double *r, double *f,
                  double *m, int *truth)
{
    rfm_rng rng;
    rfm_rng_seed(&rng, seed);
    size_t i = 0;
    for (size_t k = 0; k < ng; k++) {
        size_t end = k + 1 == ng ? n : i + (size_t)(g[k].share * (double)n + 0.5);
        for (; i < end; i++) {
            r[i] = fmax(1, round(g[k].r * exp(0.15 * rfm_rng_normal(&rng))));
            f[i] = fmax(1, round(g[k].f * exp(0.15 * rfm_rng_normal(&rng))));
            m[i] = round(100 * g[k].m * exp(0.15 * rfm_rng_normal(&rng))) / 100;
            truth[i] = (int)k;
        }
    }
}

/* Of each planted group, the share in its most common cluster; the least
 * of these over groups, and whether no two groups share that cluster. */
static double purity(const segments_model *s, const double *r, const double *f, const double *m,
                     const int *truth, size_t n, size_t ng, int *distinct)
{
    size_t cnt[8][16] = {{0}}, size[8] = {0};
    char err[RFM_ERRLEN];
    for (size_t i = 0; i < n; i++) {
        segments_result res;
        assert_int_equal(segments_predict(s, r[i], f[i], m[i], &res, err, sizeof err), RFM_OK);
        cnt[truth[i]][res.cluster]++;
        size[truth[i]]++;
    }
    double least = 1;
    size_t top[8];
    *distinct = 1;
    for (size_t g = 0; g < ng; g++) {
        top[g] = 0;
        for (size_t c = 1; c < 16; c++)
            if (cnt[g][c] > cnt[g][top[g]])
                top[g] = c;
        least = fmin(least, (double)cnt[g][top[g]] / (double)size[g]);
        for (size_t h = 0; h < g; h++)
            *distinct &= top[h] != top[g];
    }
    return least;
}

static const group FIVE[5] = {
    {5, 25, 8000, 0.30},  /* recent big spenders */
    {10, 1, 80, 0.25},    /* new one-time buyers */
    {60, 6, 1200, 0.20},  /* mid-recency regulars */
    {300, 1, 60, 0.15},   /* long-lapsed one-time buyers */
    {250, 8, 5000, 0.10}, /* lapsed big spenders */
};

/* Five planted groups of unequal size: the shipped range (4-8) settles on
 * five, each group lands whole in its own cluster, the names are
 * distinct, and each cluster's rule captures its group. */
static void test_recovers_planted_structure(void **state)
{
    (void)state;
    rfm_config *c = shipped();
    enum { n = 3000 };
    static double r[n], f[n], m[n];
    static int truth[n];
    plant(FIVE, 5, n, 21, r, f, m, truth);
    segments_model *s;
    char err[RFM_ERRLEN];
    assert_int_equal(segments_fit(r, f, m, n, &c->segments, &s, err, sizeof err), RFM_OK);
    double sil, small;
    for (size_t k = 4; k <= 8; k++) {
        assert_true(segments_k_quality(s, k, &sil, &small));
        printf("    k = %zu: silhouette %.4f, smallest cluster %.3f\n", k, sil, small);
    }
    assert_int_equal(segments_nclusters(s), 5);
    int distinct;
    double p = purity(s, r, f, m, truth, n, 5, &distinct);
    printf("    least purity %.4f\n", p);
    assert_true(p >= 0.99 && distinct);
    for (size_t a = 0; a < 5; a++) {
        segments_cluster_info ca;
        segments_cluster(s, a, &ca);
        assert_non_null(ca.rule);
        char text[256];
        segments_rule_text(ca.rule, text, sizeof text);
        double cover = (double)ca.rule->tp / (double)ca.rule->npos,
               leak = (double)ca.rule->fp / (double)ca.rule->nneg;
        printf("    %-22s %4zu  %s: %.3f of it, %.3f of others\n", ca.segment, ca.customers, text,
               cover, leak);
        assert_int_equal(ca.rule->npos, ca.customers);
        assert_true(cover >= 0.95 && leak <= 0.02);
        for (size_t b = 0; b < a; b++) {
            segments_cluster_info cb;
            segments_cluster(s, b, &cb);
            assert_string_not_equal(ca.segment, cb.segment);
        }
    }
    segments_free(s);
    config_free(c);
}

/* Four groups and a far 2.5 % group: with the shipped minimum share (3 %)
 * the solution that gives the small group its own cluster is left out;
 * with no minimum it is the best. */
static void test_tiny_cluster_left_out(void **state)
{
    (void)state;
    rfm_config *c = shipped();
    static const group G[5] = {
        {5, 25, 8000, 0.245}, {10, 1, 80, 0.245},      {60, 6, 1200, 0.245},
        {300, 1, 60, 0.24},   {3, 200, 300000, 0.025},
    };
    enum { n = 4000 };
    static double r[n], f[n], m[n];
    static int truth[n];
    plant(G, 5, n, 33, r, f, m, truth);
    size_t far = 0;
    for (size_t i = 0; i < n; i++)
        far += truth[i] == 4;
    printf("    far group: %zu customers (%.1f%%)\n", far, 100.0 * (double)far / n);
    segments_model *s;
    char err[RFM_ERRLEN];
    double sil, small;
    c->segments.min_share = 0;
    assert_int_equal(segments_fit(r, f, m, n, &c->segments, &s, err, sizeof err), RFM_OK);
    printf("    no minimum: k = %zu\n", segments_nclusters(s));
    assert_int_equal(segments_nclusters(s), 5);
    assert_true(segments_k_quality(s, 5, &sil, &small) && small < 0.03);
    segments_free(s);
    c->segments.min_share = 0.03;
    assert_int_equal(segments_fit(r, f, m, n, &c->segments, &s, err, sizeof err), RFM_OK);
    segments_selection sel;
    segments_get_selection(s, &sel);
    printf("    minimum 3%%: k = %zu\n", segments_nclusters(s));
    assert_true(segments_nclusters(s) != 5 && !sel.none_eligible);
    assert_true(segments_k_quality(s, segments_nclusters(s), &sil, &small) && small >= 0.03);
    segments_free(s);
    config_free(c);
}

/* The choice itself on made-up figures: the tolerance, the tie to the
 * smaller k, the minimum share, and the case where no k meets it. */
static void test_choose_k(void **state)
{
    (void)state;
    double sil[9] = {0}, small[9] = {0};
    int none;
    double s0[] = {0.30, 0.304, 0.31, 0.20, 0.10}, m0[] = {0.1, 0.1, 0.1, 0.1, 0.1};
    for (int k = 4; k <= 8; k++)
        sil[k] = s0[k - 4], small[k] = m0[k - 4];
    assert_int_equal(segments_choose_k(4, 8, sil, small, 0.03, &none), 6);
    assert_int_equal(none, 0);
    sil[5] = 0.3075; /* within 0.005 of 0.31: the smaller k */
    assert_int_equal(segments_choose_k(4, 8, sil, small, 0.03, &none), 5);
    small[5] = 0.02; /* too small a cluster: out */
    assert_int_equal(segments_choose_k(4, 8, sil, small, 0.03, &none), 6);
    small[6] = 0.01;
    assert_int_equal(segments_choose_k(4, 8, sil, small, 0.03, &none), 4);
    for (int k = 4; k <= 8; k++)
        small[k] = 0.001; /* none meets the minimum: all compete */
    assert_int_equal(segments_choose_k(4, 8, sil, small, 0.03, &none), 5);
    assert_int_equal(none, 1);
    assert_int_equal(segments_choose_k(7, 7, sil, small, 0.03, &none), 7);
}

/* A fixed k still has its silhouette measured (it was NaN). */
static void test_fixed_k_silhouette(void **state)
{
    (void)state;
    rfm_config *c = shipped();
    segments_model *s = fit_three(c);
    double sil, small;
    printf("    k = 3 fixed: silhouette %.4f\n", segments_silhouette(s));
    assert_true(segments_silhouette(s) > 0.7 && segments_silhouette(s) <= 1);
    assert_true(segments_k_quality(s, 3, &sil, &small));
    assert_true(sil == segments_silhouette(s) && small > 0.3);
    assert_false(segments_k_quality(s, 4, &sil, &small));
    segments_selection sel;
    segments_get_selection(s, &sel);
    assert_true(sel.fixed && sel.k_min == 3 && sel.k_max == 3);
    segments_free(s);
    config_free(c);
}

/* As many clusters as profiles on shapeless data: every name once; a
 * model file with two clusters of one name is refused. */
static void test_names_distinct(void **state)
{
    (void)state;
    rfm_config *c = shipped();
    enum { n = 1500 };
    static double r[n], f[n], m[n];
    rfm_rng rng;
    rfm_rng_seed(&rng, 4);
    for (size_t i = 0; i < n; i++) {
        r[i] = 1 + 364 * rfm_rng_uniform(&rng);
        f[i] = 1 + floor(20 * rfm_rng_uniform(&rng));
        m[i] = 10 + 5000 * rfm_rng_uniform(&rng);
    }
    c->segments.k = (int)c->segments.nprofiles;
    segments_model *s, *s2;
    char err[RFM_ERRLEN];
    assert_int_equal(segments_fit(r, f, m, n, &c->segments, &s, err, sizeof err), RFM_OK);
    size_t k = segments_nclusters(s);
    for (size_t a = 0; a < k; a++)
        for (size_t b = 0; b < a; b++)
            assert_string_not_equal(segments_cluster_name(s, (long)a),
                                    segments_cluster_name(s, (long)b));
    json_t *j;
    assert_int_equal(segments_to_json(s, &j, err, sizeof err), RFM_OK);
    json_t *cl = json_object_get(j, "clusters");
    json_object_set_new(
        json_array_get(cl, 1), "segment",
        json_string(json_string_value(json_object_get(json_array_get(cl, 0), "segment"))));
    assert_int_equal(segments_from_json(j, &s2, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "both named"));
    json_decref(j);
    segments_free(s);
    config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_map_is_total),
        cmocka_unit_test(test_bad_maps_refused),
        cmocka_unit_test(test_fit_names_and_round_trip),
        cmocka_unit_test(test_auto_k_and_determinism),
        cmocka_unit_test(test_cluster_lookups),
        cmocka_unit_test(test_recovers_planted_structure),
        cmocka_unit_test(test_tiny_cluster_left_out),
        cmocka_unit_test(test_choose_k),
        cmocka_unit_test(test_fixed_k_silhouette),
        cmocka_unit_test(test_names_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
