/* test_segments.c - the shipped segment map is total, bad maps are
 * refused, clusters are named by profile and survive the JSON round trip. */
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
        case 0: r[i] = 5 * exp(e), f[i] = 30 * exp(e), m[i] = 9000 * exp(e); break;  /* best */
        case 1: r[i] = 300 * exp(e), f[i] = 1, m[i] = 40 * exp(e); break;             /* lost */
        default: r[i] = 10 * exp(e), f[i] = 1, m[i] = 60 * exp(e); break;             /* new */
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

    customer_row best = {5, 30, 9000, 29, 700, 720, 310};
    customer_row gone = {300, 1, 40, 0, 0, 300, 0};
    customer_row summary_only = {NAN, NAN, NAN, 3, 100, 200, 25}; /* trained from a summary */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_map_is_total),
        cmocka_unit_test(test_bad_maps_refused),
        cmocka_unit_test(test_fit_names_and_round_trip),
        cmocka_unit_test(test_auto_k_and_determinism),
        cmocka_unit_test(test_cluster_lookups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
