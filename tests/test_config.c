/* test_config.c - the shipped config loads; bad values name their key. */
#include "testutil.h"

#include <string.h>

#include "config.h"
#include "date.h"

static void test_shipped(void **state)
{
    (void)state;
    rfm_config *c;
    char err[RFM_ERRLEN];
    assert_int_equal(config_load("../config/rfm.yaml", &c, err, sizeof err), RFM_OK);
    assert_string_equal(c->transactions, "data/online_retail.csv.gz");
    assert_string_equal(c->txn.customer_id, "CustomerID");
    assert_string_equal(c->txn.product, "StockCode");
    assert_int_equal(c->txn.snapshot_day, DATE_NONE);
    assert_int_equal(c->segments.k, 0);
    assert_int_equal(c->segments.k_max, 8);
    assert_true(c->segments.nprofiles >= 8);
    assert_int_equal(c->server.metrics_token_required, 0);
    assert_int_equal(c->server.drift_window, 10000);
    assert_true(c->server.rate_per_second == 0);
    assert_null(c->server.tls_cert_file);
    assert_non_null(strstr(c->server.tls_priorities, "+VERS-TLS1.2"));
    assert_int_equal(c->server.connection_limit, 10000);
    assert_int_equal(c->server.per_address_limit, 0);
    assert_int_equal(c->server.header_timeout_s, 10);
    config_free(c);
}

/* The shipped config with one line replaced must fail naming `key`. */
static void expect_bad(const char *from, const char *to, const char *key)
{
    FILE *f = fopen("../config/rfm.yaml", "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *at = strstr(buf, from);
    assert_non_null(at);
    static char out[65536 + 256];
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - buf), buf, to, at + strlen(from));
    char path[64], err[RFM_ERRLEN] = "";
    write_temp(path, ".yaml", out, strlen(out));
    rfm_config *c;
    rfm_status st = config_load(path, &c, err, sizeof err);
    remove(path);
    assert_int_not_equal(st, RFM_OK);
    assert_null(c);
    if (!strstr(err, key))
        fail_msg("error '%s' does not name '%s'", err, key);
}

static void test_bad_values_name_keys(void **state)
{
    (void)state;
    expect_bad("k: auto", "k: many", "segments.k");
    expect_bad("k_max: 8", "k_max: 99", "segments.k_max");
    expect_bad("snapshot_date: null", "snapshot_date: 2011-02-30", "data.snapshot_date");
    expect_bad("r: [5, 5], f: [4, 5]}", "r: [5, 5], f: four}", "segments.rfm_segments[0].f");
    expect_bad("recency: low", "recency: sideways", "segments.cluster_profiles[0].recency");
    expect_bad("{name: Lost,                 r: [1, 1], f: [1, 2]}",
               "{name: Lost,                 r: [1, 1], f: [1, 1]}", "121 is in no segment");
    expect_bad("seed: 42", "seed: [42", "rfm");
    expect_bad("metrics_token_required: false", "metrics_token_required: 1",
               "server.metrics_token_required");
    expect_bad("drift_window: 10000", "drift_window: 10", "server.drift_window");
    expect_bad("requests_per_second: 0", "requests_per_second: -1",
               "server.rate_limit.requests_per_second");
    expect_bad("requests_per_second: 0", "requests_per_second: 5", "rate_limit.burst");
    expect_bad("rate_limit:\n", "rate_limit: 5\n  old_rate_limit:\n", "server.rate_limit");
    expect_bad("tls_key_file: null", "tls_key_file: key.pem", "tls_cert_file and tls_key_file");
    expect_bad("tls_priorities: null", "tls_priorities: ''", "tls_priorities must be");
    expect_bad("header_timeout_s: 10", "header_timeout_s: 0", "server.header_timeout_s");
    expect_bad("per_address_limit: 0", "per_address_limit: -1", "server.per_address_limit"); /* YAML syntax error names the file */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped),
        cmocka_unit_test(test_bad_values_name_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
