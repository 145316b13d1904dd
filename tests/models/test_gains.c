/* test_gains.c - core/models/gains.c: an uplift model fitted on a small
 * campaign log (the rule learner: arm 1 works when x > 5), then a scoring
 * file with ids: each customer's gain equals max_k (u_k x value - cost)
 * from uplift_predict on the row's own features; the first row of an id
 * counts, duplicates and refused rows are counted, unknown ids are NaN;
 * a missing id or feature column is refused naming it. */
#include "testutil.h"

#include <math.h>
#include <unistd.h>

#include "campaign.h"
#include "gains.h"
#include "uplift.h"

static const campaign_feature FEATS[] = {{"x", CAMPAIGN_NUMBER}, {"c", CAMPAIGN_CATEGORY}};
static const char *const ARMS[] = {"mail"};

static void fit(const char *dir, uplift_model **m, campaign_encoding **enc)
{
    char path[128], err[RFM_ERRLEN];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "who,x,c,treat,y\n");
    for (int i = 0; i < 800; i++) {
        int x = i % 10, t = (i / 10) % 2;
        int y = (i * 7919) % 100 < 20 + (t && x > 5 ? 40 : 0);
        fprintf(f, "p%d,%d,%s,%s,%d\n", i, x, i % 3 ? "red" : "blue", t ? "mail" : "none", y);
    }
    fclose(f);
    campaign_spec spec = {FEATS, 2, "treat", "none", ARMS, 1, "y"};
    campaign_data *d;
    if (campaign_read(path, &spec, &d, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    uplift_params p;
    uplift_default_params(&p, UPLIFT_RULE);
    if (uplift_fit(d->X, d->n, d->d, d->arm, 1, d->y, &p, m, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    *enc = d->enc, d->enc = NULL;
    campaign_data_free(d);
    unlink(path);
}

/* The gain of features {x, c} by hand: the model's uplift x value - cost. */
static double by_hand(const uplift_model *m, const campaign_encoding *enc, double x, const char *c)
{
    char err[RFM_ERRLEN];
    json_t *o = json_pack("{s:f,s:s}", "x", x, "c", c);
    double v[16], u[1];
    assert_int_equal(campaign_encode_json(enc, o, v, err, sizeof err), RFM_OK);
    assert_int_equal(uplift_predict(m, v, u, NULL, err, sizeof err), RFM_OK);
    json_decref(o);
    return u[0] * 10 - 1;
}

static void test_gains(void **state)
{
    (void)state;
    char dir[] = "/tmp/rfmtest_gains_XXXXXX", path[128], err[RFM_ERRLEN];
    assert_non_null(mkdtemp(dir));
    uplift_model *m;
    campaign_encoding *enc;
    fit(dir, &m, &enc);
    snprintf(path, sizeof path, "%s/score.csv", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "c,customer,extra,x\n"
               "red,a,1,7\n"
               "blue,b,2,2\n"
               "red,a,3,1\n"     /* a again: a duplicate, not counted */
               "red,c,4,oops\n"  /* not a number */
               "red,,5,3\n"      /* no id */
               "green,d,6,3\n"); /* a category the model never saw */
    fclose(f);
    gains *g;
    gains_counts n;
    if (gains_load(path, "customer", m, enc, 10, 1, &g, &n, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    assert_int_equal(n.rows, 6);
    assert_int_equal(n.customers, 2);
    assert_int_equal(n.duplicates, 1);
    assert_int_equal(n.refused, 3);
    double ga = gains_of(g, "a"), gb = gains_of(g, "b");
    assert_true(ga == by_hand(m, enc, 7, "red"));
    assert_true(gb == by_hand(m, enc, 2, "blue"));
    assert_true(ga > gb); /* the rule: the mail works for x > 5 */
    assert_true(gains_lookup(g, "a") == ga);
    assert_true(isnan(gains_of(g, "c")) && isnan(gains_of(g, "d")) && isnan(gains_of(g, "zz")));
    gains_free(g);
    /* Many ids: the table grows and keeps every one. */
    f = fopen(path, "w");
    fprintf(f, "customer,x,c\n");
    for (int i = 0; i < 5000; i++)
        fprintf(f, "id%d,%d,red\n", i, i % 10);
    fclose(f);
    assert_int_equal(gains_load(path, "customer", m, enc, 10, 1, &g, &n, err, sizeof err), RFM_OK);
    assert_int_equal(n.customers, 5000);
    for (int i = 0; i < 5000; i += 499) {
        char id[16];
        snprintf(id, sizeof id, "id%d", i);
        assert_true(gains_of(g, id) == by_hand(m, enc, i % 10, "red"));
    }
    gains_free(g);
    /* Columns missing from the header are named. */
    assert_int_equal(gains_load(path, "who", m, enc, 10, 1, &g, NULL, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "no column who (uplift.id_column)"));
    f = fopen(path, "w");
    fprintf(f, "customer,x\na,1\n");
    fclose(f);
    assert_int_equal(gains_load(path, "customer", m, enc, 10, 1, &g, NULL, err, sizeof err),
                     RFM_EINVAL);
    assert_non_null(strstr(err, "no column c"));
    unlink(path);
    rmdir(dir);
    uplift_free(m);
    campaign_encoding_free(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_gains)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
