/* test_campaign.c - campaign CSV loading: encoding, errors with positions,
 * request encoding, JSON round trip, and the bundled Hillstrom file. */
#include "testutil.h"

#include <gsl/gsl_errno.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "campaign.h"
#include "sim.h"

static const campaign_feature FEATS[] = {
    {"recency", CAMPAIGN_NUMBER}, {"zip", CAMPAIGN_CATEGORY}, {"newbie", CAMPAIGN_NUMBER}};
static const char *const ARMS[] = {"Mens", "Womens"};
static const campaign_spec SPEC = {FEATS, 3, "segment", "None", ARMS, 2, "visit"};

static rfm_status load(const char *text, campaign_data **d, char *err, size_t errlen)
{
    char path[64];
    write_temp(path, ".csv", text, strlen(text));
    rfm_status st = campaign_read(path, &SPEC, d, err, errlen);
    unlink(path);
    return st;
}

static void test_encoding(void **state)
{
    (void)state;
    /* Extra column, columns out of spec order, quoted field, levels unsorted. */
    const char *csv = "visit,zip,extra,recency,segment,newbie\n"
                      "1,Urban,x,3,Mens,0\n"
                      "0,Rural,y,10,None,1\n"
                      "0,\"Sub, urban\",z,2.5,Womens,1\n"
                      "1,Rural,w,1,Mens,0\n";
    campaign_data *d = NULL;
    char err[RFM_ERRLEN];
    if (load(csv, &d, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    assert_int_equal(d->n, 4);
    assert_int_equal(d->d, 5); /* recency, zip x 3 levels, newbie */
    const campaign_encoding *e = d->enc;
    const char *names[5] = {"recency", "zip=Rural", "zip=Sub, urban", "zip=Urban", "newbie"};
    for (size_t j = 0; j < 5; j++)
        assert_string_equal(campaign_column_name(e, j), names[j]);
    double want[4][5] = {{3, 0, 0, 1, 0}, {10, 1, 0, 0, 1}, {2.5, 0, 1, 0, 1}, {1, 1, 0, 0, 0}};
    int want_arm[4] = {1, 0, 2, 1};
    double want_y[4] = {1, 0, 0, 1};
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 5; j++)
            assert_true(d->X[i * 5 + j] == want[i][j]);
        assert_int_equal(d->arm[i], want_arm[i]);
        assert_true(d->y[i] == want_y[i]);
    }
    assert_int_equal(campaign_n_arms(e), 2);
    assert_string_equal(campaign_arm_name(e, 0), "None");
    assert_string_equal(campaign_arm_name(e, 2), "Womens");
    assert_int_equal(strlen(d->sha256), 64);

    /* Request encoding, and the same after a JSON round trip of the encoding. */
    json_t *enc_j = NULL;
    assert_int_equal(campaign_encoding_to_json(e, &enc_j, err, sizeof err), RFM_OK);
    char *s = json_dumps(enc_j, JSON_COMPACT);
    json_t *back = json_loads(s, 0, NULL);
    campaign_encoding *e2 = NULL;
    assert_int_equal(campaign_encoding_from_json(back, &e2, err, sizeof err), RFM_OK);
    json_t *req = json_loads("{\"recency\": 4, \"zip\": \"Sub, urban\", \"newbie\": 1}", 0, NULL);
    double x[5], x2[5], r[5] = {4, 0, 1, 0, 1};
    assert_int_equal(campaign_encode_json(e, req, x, err, sizeof err), RFM_OK);
    assert_int_equal(campaign_encode_json(e2, req, x2, err, sizeof err), RFM_OK);
    assert_memory_equal(x, r, sizeof r);
    assert_memory_equal(x2, r, sizeof r);
    for (size_t j = 0; j < 5; j++)
        assert_string_equal(campaign_column_name(e2, j), names[j]);

    /* Each 422 case names its field; x stays as it was. */
    const struct {
        const char *body, *msg;
    } bad[] = {
        {"{\"recency\": 4, \"zip\": \"Mars\", \"newbie\": 1}",
         "features.zip: unknown category 'Mars'"},
        {"{\"recency\": 4, \"newbie\": 1}", "features.zip: missing"},
        {"{\"recency\": \"4\", \"zip\": \"Rural\", \"newbie\": 1}",
         "features.recency: expected a number"},
        {"{\"recency\": 4, \"zip\": 3, \"newbie\": 1}", "features.zip: expected a string"},
        {"{\"recency\": 4, \"zip\": \"Rural\", \"newbie\": 1, \"age\": 3}",
         "features.age: unknown feature"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        json_t *b = json_loads(bad[k].body, 0, NULL);
        double y[5] = {9, 9, 9, 9, 9};
        assert_int_equal(campaign_encode_json(e, b, y, err, sizeof err), RFM_EINVAL);
        assert_string_equal(err, bad[k].msg);
        assert_true(y[0] == 9 && y[1] == 9);
        json_decref(b);
    }
    /* A defective stored encoding is refused, naming the field. */
    json_array_clear(
        json_object_get(json_array_get(json_object_get(back, "features"), 1), "levels"));
    campaign_encoding *e3 = NULL;
    assert_int_equal(campaign_encoding_from_json(back, &e3, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "features[1].levels"));
    json_object_del(back, "control");
    assert_int_equal(campaign_encoding_from_json(back, &e3, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "'control'"));
    json_decref(req);
    json_decref(back);
    json_decref(enc_j);
    free(s);
    campaign_encoding_free(e2);
    campaign_data_free(d);
}

static void test_errors_name_position(void **state)
{
    (void)state;
    const struct {
        const char *csv, *msg;
        rfm_status st;
    } cases[] = {
        {"recency,zip,segment,newbie,visit\n3,Urban,Mens,0,1\n4x,Urban,None,0,0\n",
         ":3:1: column 'recency': '4x' is not a number", RFM_EPARSE},
        {"recency,zip,segment,newbie,visit\n3,Urban,Kids,0,1\n",
         ":2:9: treatment 'Kids' is neither the control 'None' nor an arm", RFM_EPARSE},
        {"recency,zip,segment,newbie,visit\n3,,Mens,0,1\n", ":2:3: column 'zip' is empty",
         RFM_EPARSE},
        {"recency,zip,segment,newbie,visit\n3,Urban,Mens,0,yes\n",
         ":2:16: outcome 'visit': 'yes' is not a number", RFM_EPARSE},
        {"recency,zip,segment,newbie,visit\n3,Urban,Mens,0\n", ":2:1: 4 fields, the header has 5",
         RFM_EPARSE},
        {"recency,zip,segment,visit\n3,Urban,Mens,1\n", ": column 'newbie' not in the header",
         RFM_EINVAL},
        {"recency,zip,segment,newbie,visit\n", ": no data rows", RFM_EDATA},
        {"recency,zip,segment,newbie,visit\nnan,Urban,Mens,0,1\n", "'nan' is not a number",
         RFM_EPARSE},
    };
    char err[RFM_ERRLEN];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        campaign_data *d = NULL;
        assert_int_equal(load(cases[k].csv, &d, err, sizeof err), cases[k].st);
        if (!strstr(err, cases[k].msg))
            fail_msg("case %zu: '%s' lacks '%s'", k, err, cases[k].msg);
        assert_null(d);
    }
    campaign_feature dup[2] = {{"a", CAMPAIGN_NUMBER}, {"a", CAMPAIGN_NUMBER}};
    campaign_spec s = SPEC;
    s.features = dup;
    s.n_features = 2;
    assert_non_null(campaign_check_spec(&s));
    campaign_data *d = NULL;
    assert_int_equal(campaign_read("/nonexistent.csv", &s, &d, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "listed twice"));
    s = SPEC;
    assert_int_equal(campaign_read("/nonexistent.csv", &s, &d, err, sizeof err), RFM_EIO);
}

/* The bundled file: 64,000 rows, arms about a third each (Hillstrom's
 * design), visit rate 14.7% overall; history_segment, zip_code and channel
 * one-hot. */
static void test_hillstrom(void **state)
{
    (void)state;
    campaign_spec s = sim_hillstrom_spec();
    campaign_data *d = NULL;
    char err[RFM_ERRLEN];
    if (campaign_read("../data/hillstrom.csv.gz", &s, &d, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    assert_int_equal(d->n, 64000);
    assert_int_equal(d->d, 5 + 7 + 3 + 3);
    size_t cnt[3] = {0};
    double visits = 0;
    for (size_t i = 0; i < d->n; i++) {
        cnt[d->arm[i]]++;
        visits += d->y[i];
    }
    printf("    hillstrom: %zu rows, %zu columns, control %zu, mens %zu, womens %zu, visit rate "
           "%.4f\n",
           d->n, d->d, cnt[0], cnt[1], cnt[2], visits / (double)d->n);
    for (int a = 0; a < 3; a++)
        assert_true(cnt[a] > 21000 && cnt[a] < 21700);
    assert_near(visits / (double)d->n, 0.1468, 0.001);
    assert_string_equal(campaign_column_name(d->enc, 1), "history_segment=1) $0 - $100");
    campaign_data_free(d);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_errors_name_position),
        cmocka_unit_test(test_hillstrom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
