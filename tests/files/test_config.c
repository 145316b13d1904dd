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
    assert_int_equal(c->segments.k_min, 4);
    assert_int_equal(c->segments.k_max, 8);
    assert_true(c->segments.min_share == 0.03);
    assert_true(c->segments.nprofiles >= 8);
    assert_int_equal(c->server.metrics_token_required, 0);
    assert_int_equal(c->server.drift_window, 10000);
    assert_true(c->server.rate_per_second == 0);
    assert_null(c->server.tls_cert_file);
    assert_non_null(strstr(c->server.tls_priorities, "+VERS-TLS1.2"));
    assert_int_equal(c->server.connection_limit, 10000);
    assert_int_equal(c->server.per_address_limit, 0);
    assert_string_equal(c->currency, "GBP");
    assert_null(c->server.ui_assets); /* found by default (server/ui.h) */
    assert_int_equal(c->server.header_timeout_s, 10);
    assert_string_equal(c->state_path, "state/state.db");
    assert_int_equal(c->state.synchronous, STATE_SYNC_FULL);
    assert_int_equal(c->state.seen_ids_max, 10000000);
    assert_string_equal(c->state.cancel_prefix, "C");
    assert_int_equal(c->events.ntypes, 3);
    assert_string_equal(c->events.type[1].name, "web_visit");
    assert_true(c->events.type[0].monetary && !c->events.type[2].monetary);
    assert_true(c->events.type[2].weight == 5.0 && c->events.recency_days[3] == 180);
    assert_true(c->state.types == &c->events);
    /* The modules' own structs, with the shipped values. */
    assert_int_equal(c->cltv.holdout_days, 90);
    assert_true(c->churn.threshold_medium == 0.3 && c->churn.counterfactual_threshold == 0.6);
    assert_int_equal(c->churn.max_iter, 100); /* not in the YAML: the module's default */
    assert_int_equal(c->embed.dim, 32);
    assert_int_equal(c->ann.hnsw_m, 32);
    assert_int_equal(c->uplift.choose_learner, 1);
    assert_int_equal(c->uplift.seed, 42);
    assert_near(c->uplift_value, 30, 0); /* uplift.value, uplift.cost of the simulator */
    assert_near(c->uplift_cost, 0.5, 0);
    assert_null(c->uplift_id_column); /* Hillstrom has no customer ids */
    assert_string_equal(c->campaign, "data/hillstrom.csv.gz");
    assert_int_equal(c->campaign_spec.n_arms, 2);
    assert_string_equal(c->campaign_spec.arms[1], "Womens E-Mail");
    config_free(c);
}

/* A config with only the segments section: every other section gets its
 * module's defaults. */
/* state.path: null written out is no store (rfm-serve then runs without
 * one); test_shipped sees the default. */
static void test_state_path_null(void **state)
{
    (void)state;
    FILE *f = fopen("../config/rfm.yaml", "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *at = strstr(buf, "  path: state/state.db");
    assert_non_null(at);
    memcpy(at, "  path: null          ", 22);
    /* uplift.id_column (rfm-score --by uplift_gain), commented out as shipped. */
    char *id = strstr(buf, "  # id_column: customer_id");
    assert_non_null(id);
    memcpy(id, "  id_column: customer_id  ", 26);
    char path[64], err[RFM_ERRLEN];
    write_temp(path, ".yaml", buf, n);
    rfm_config *c;
    rfm_status st = config_load(path, &c, err, sizeof err);
    remove(path);
    if (st != RFM_OK)
        fail_msg("%s", err);
    assert_null(c->state_path);
    assert_string_equal(c->uplift_id_column, "customer_id");
    config_free(c);
}

static void test_sections_default_to_modules(void **state)
{
    (void)state;
    FILE *f = fopen("../config/rfm.yaml", "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *seg = strstr(buf, "\nsegments:"), *end = strstr(buf, "\ncltv:");
    assert_true(seg && end && end > seg);
    *end = '\0';
    char path[64], err[RFM_ERRLEN];
    write_temp(path, ".yaml", seg, strlen(seg));
    rfm_config *c;
    rfm_status st = config_load(path, &c, err, sizeof err);
    remove(path);
    if (st != RFM_OK)
        fail_msg("%s", err);
    churn_params cp;
    memset(&cp, 0, sizeof cp); /* padding, as in the calloc'd config */
    churn_default_params(&cp);
    assert_memory_equal(&c->churn, &cp, sizeof cp);
    cltv_options co;
    memset(&co, 0, sizeof co); /* padding, as in the calloc'd config */
    cltv_default_options(&co);
    assert_memory_equal(&c->cltv, &co, sizeof co);
    embed_params ep;
    memset(&ep, 0, sizeof ep); /* padding, as in the calloc'd config */
    embed_params_default(&ep);
    assert_memory_equal(&c->embed, &ep, sizeof ep);
    ann_params ap;
    memset(&ap, 0, sizeof ap); /* padding, as in the calloc'd config */
    ann_params_default(&ap);
    assert_memory_equal(&c->ann, &ap, sizeof ap);
    assert_null(c->campaign);
    assert_int_equal(c->campaign_spec.n_arms, 0);
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

/* As expect_bad, replacing from `from` up to `until` (kept). */
static void expect_bad_block(const char *from, const char *until, const char *to, const char *key)
{
    FILE *f = fopen("../config/rfm.yaml", "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *at = strstr(buf, from), *end = at ? strstr(at, until) : NULL;
    assert_non_null(end);
    static char out[65536 + 256];
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - buf), buf, to, end + 1);
    char path[64], err[RFM_ERRLEN] = "";
    write_temp(path, ".yaml", out, strlen(out));
    rfm_config *c;
    rfm_status st = config_load(path, &c, err, sizeof err);
    remove(path);
    assert_int_not_equal(st, RFM_OK);
    if (!strstr(err, key))
        fail_msg("error '%s' does not name '%s'", err, key);
}

/* server.tokens: each token's digest, name and scopes; no scopes = all. */
static void test_tokens(void **state)
{
    (void)state;
    FILE *f = fopen("../config/rfm.yaml", "rb");
    assert_non_null(f);
    static char buf[65536], out[65536 + 512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *at = strstr(buf, "tokens: []");
    assert_non_null(at);
    snprintf(out, sizeof out,
             "%.*stokens: [{sha256: %s, name: crm, scopes: [score, events]},\n"
             "           {sha256: %s, name: ops.1}]%s",
             (int)(at - buf), buf,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
             at + strlen("tokens: []"));
    char path[64], err[RFM_ERRLEN];
    write_temp(path, ".yaml", out, strlen(out));
    rfm_config *c;
    rfm_status st = config_load(path, &c, err, sizeof err);
    remove(path);
    if (st != RFM_OK)
        fail_msg("%s", err);
    assert_int_equal(c->server.nnamed, 2);
    assert_string_equal(c->server.named_tokens[0].name, "crm");
    assert_int_equal(c->server.named_tokens[0].scopes, RFM_SCOPE_SCORE | RFM_SCOPE_EVENTS);
    assert_string_equal(c->server.named_tokens[1].name, "ops.1");
    assert_int_equal(c->server.named_tokens[1].scopes, RFM_SCOPE_ALL);
    assert_int_equal(c->server.named_tokens[1].sha256[0], 'b');
    config_free(c);
    assert_int_equal(config_scope_bit("admin", 5), RFM_SCOPE_ADMIN);
    assert_int_equal(config_scope_bit("admins", 6), 0);
    assert_int_equal(config_scope_bit("adminx", 5), RFM_SCOPE_ADMIN); /* by length */
    assert_string_equal(config_scope_name(RFM_SCOPE_ANALYTICS), "analytics");
    assert_null(config_scope_name(RFM_SCOPE_SCORE | RFM_SCOPE_ADMIN));
}

/* privacy: off by default, the erasure list beside the store; the key
 * only from the caller (the environment), refused when missing or short,
 * never quoted. */
static void test_privacy(void **state)
{
    (void)state;
    rfm_config *c;
    char err[RFM_ERRLEN];
    assert_int_equal(config_load("../config/rfm.yaml", &c, err, sizeof err), RFM_OK);
    assert_int_equal(c->privacy.pseudonymize_ids, 0);
    assert_string_equal(c->privacy.erasure_list, "state/state.db.erased");
    assert_int_equal(config_id_key(c, "any-key-at-all-long-enough", err, sizeof err), RFM_OK);
    assert_null(c->txn.id_key); /* off: ignored */
    c->privacy.pseudonymize_ids = 1;
    assert_int_equal(config_id_key(c, NULL, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "RFM_ID_KEY is not set"));
    assert_int_equal(config_id_key(c, "", err, sizeof err), RFM_EINVAL);
    assert_int_equal(config_id_key(c, "short-secret", err, sizeof err), RFM_EINVAL);
    assert_null(strstr(err, "short-secret"));
    assert_int_equal(config_id_key(c, "0123456789abcdef", err, sizeof err), RFM_OK);
    assert_string_equal(c->txn.id_key, "0123456789abcdef");
    config_free(c);
}

static void test_bad_values_name_keys(void **state)
{
    (void)state;
    expect_bad("k: auto", "k: many", "segments.k");
    expect_bad("k_max: 8", "k_max: 99", "segments.k_max");
    expect_bad("min_cluster_share: 0.03", "min_cluster_share: 0.7", "segments.min_cluster_share");
    expect_bad("- name: Loyal regulars", "- name: Best customers",
               "cluster profiles 1 and 2 are both named 'Best customers'");
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
    expect_bad("per_address_limit: 0", "per_address_limit: -1", "server.per_address_limit");
    expect_bad(
        "tokens: []",
        "tokens: [{sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, name: "
        "crm, scopes: [read]}]",
        "server.tokens[0].scopes: unknown scope");
    expect_bad(
        "tokens: []",
        "tokens: [{sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, name: "
        "crm, scopes: []}]",
        "server.tokens[0].scopes: must be a non-empty list");
    expect_bad(
        "tokens: []",
        "tokens: [{sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}]",
        "server.tokens[0]: must be a mapping");
    expect_bad("tokens: []", "tokens: [{sha256: ABC, name: crm}]",
               "tokens[0].sha256 must be 64 lower-case hex");
    expect_bad("tokens: []",
               "tokens: [{sha256: "
               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, name: 'c r m'}]",
               "tokens[0].name must be");
    expect_bad(
        "tokens: []",
        "tokens: [{sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, name: "
        "a}, {sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, name: a}]",
        "tokens[1].name 'a' is used twice");
    expect_bad(
        "tokens: []",
        "tokens: [{sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, name: "
        "a, scope: [score]}]",
        "server.tokens[0].scope: unknown key; did you mean server.tokens[0].scopes?");
    expect_bad("pseudonymize_ids: false", "pseudonymize_ids: yes please",
               "privacy.pseudonymize_ids");
    expect_bad("erasure_list: null", "erasure_list: ''", "privacy.erasure_list");
    expect_bad("erasure_list: null", "erasure_lst: null", "did you mean privacy.erasure_list");
    expect_bad("synchronous: full", "synchronous: off", "state.synchronous");
    expect_bad("seen_ids_max: 10000000", "seen_ids_max: 5", "state.seen_ids_max");
    expect_bad("currency: GBP", "currency: pounds", "data.currency");
    expect_bad("value: 30 ", "value: -1 ", "uplift.value");
    expect_bad("cost: 0.5 ", "cost: cheap ", "uplift.cost");
    expect_bad("currency: GBP", "currency: gbp", "data.currency");
    expect_bad("ui_assets: null", "ui_assets: [a]", "server.ui_assets");
    expect_bad("cache_mb: 256", "cache_mb: 0",
               "state.cache_mb"); /* YAML syntax error names the file */
    expect_bad("web_visit: {weight: 0.1}", "web_visit: {weight: -0.1}", "web_visit.weight");
    expect_bad("web_visit: {weight: 0.1}", "Web-Visit: {weight: 0.1}", "not a name");
    expect_bad("web_visit: {weight: 0.1}", "web_visit: {wieght: 0.1}", "events.types.web_visit");
    expect_bad("purchase: {weight: 1.0, monetary: true}", "purchase: {weight: 1.0}", "monetary");
    expect_bad("count: [2, 5, 10, 25]", "count: [2, 5, 5, 25]", "engagement.count");
    expect_bad("recency_days: [7, 30, 90, 180]", "recency_days: [7, 30]",
               "events.engagement.recency_days");
}

/* Each model section is checked by its module's check at load, not later
 * inside training or serving: one bad key per section, named with the
 * module's reason. */
static void test_sections_checked_at_load(void **state)
{
    (void)state;
    /* Was accepted, then failed in training after the data was read. */
    expect_bad("threshold_medium: 0.3", "threshold_medium: 0",
               "churn.threshold_medium: must be in (0, 1)");
    /* Was accepted, then every /predict_churn answered 422. */
    expect_bad("counterfactual_threshold: 0.6", "counterfactual_threshold: 0",
               "churn.counterfactual_threshold: must be in (0, 1)");
    expect_bad("threshold_high: 0.6", "threshold_high: 0.2",
               "churn.threshold_medium: must be <= threshold_high");
    expect_bad("cut_days: 90", "cut_days: ninety", "churn.cut_days: must be an integer");
    expect_bad("holdout_days: 90", "holdout_days: 3",
               "cltv.holdout_days: must be an integer from 7 to 3650");
    expect_bad("discount_rate: 0.01", "discount_rate: 1.5", "cltv.discount_rate");
    expect_bad("neighbors: 10", "neighbors: 0", "embeddings.neighbors: must be in 1..100");
    expect_bad("hnsw_m: 32", "hnsw_m: 2", "embeddings.hnsw_m: must be in 4..128");
    expect_bad("dim: 32", "dim: 513", "embeddings.dim: must be in 1..512");
    expect_bad("holdout: 0.3", "holdout: 0.99",
               "uplift.holdout: must be a number from 0.05 to 0.9");
    expect_bad(
        "learner: auto", "learner: magic",
        "uplift.learner: must be auto, t_learner, causal_forest, x_learner, dr_learner or rule");
    expect_bad("cltv:\n", "cltv: 3\nold_cltv:\n",
               "old_cltv: unknown key (known here: data, models_dir, segments, cltv,");
    expect_bad_block("cltv:\n", "\nchurn:", "cltv: 3\n", "cltv: must be a mapping");
}

/* feed: the shipped values, and a bad one names its key. */
static void test_feed_section(void **state)
{
    (void)state;
    rfm_config *c;
    char err[RFM_ERRLEN];
    assert_int_equal(config_load("../config/rfm.yaml", &c, err, sizeof err), RFM_OK);
    assert_int_equal(c->feed.enabled, 1);
    assert_int_equal(c->feed.buffer, 10000);
    assert_int_equal(c->feed.max_readers, 64);
    assert_int_equal(c->feed.sweep_seconds, 3600);
    assert_int_equal(c->feed.heartbeat_seconds, 15);
    assert_int_equal(c->feed.published_max, 1000000);
    config_free(c);
    expect_bad("  buffer: 10000", "  buffer: 0", "feed.buffer: must be an integer from 1 to");
    expect_bad("  heartbeat_seconds: 15", "  heartbeat_seconds: 0",
               "feed.heartbeat_seconds: must be an integer from 1 to 3600");
    expect_bad("  sweep_seconds: 3600", "  sweep_secs: 3600",
               "feed.sweep_secs: unknown key; did you mean feed.sweep_seconds?");
}

/* Every key is known to its section: a typo is refused naming its path,
 * with the nearest key, in every section (one per section), and a key far
 * from any lists what the section knows. */
static void test_unknown_keys(void **state)
{
    (void)state;
    expect_bad("separator: \",\"", "seperator: \";\"",
               "data.seperator: unknown key; did you mean data.separator?");
    expect_bad("amount: null", "ammount: Total",
               "data.columns.ammount: unknown key; did you mean data.columns.amount?");
    expect_bad("k_max: 8", "k_maks: 8",
               "segments.k_maks: unknown key; did you mean segments.k_max?");
    expect_bad(
        "{name: Champions,            r: [5, 5], f: [4, 5]}",
        "{name: Champions,            r: [5, 5], f: [4, 5], mm: 3}",
        "segments.rfm_segments[0].mm: unknown key; did you mean segments.rfm_segments[0].m?");
    expect_bad("      strategy: Reward", "      stratgy: Reward",
               "segments.cluster_profiles[0].stratgy: unknown key; did you mean "
               "segments.cluster_profiles[0].strategy?");
    expect_bad("holdout_days: 90", "holdout_day: 90",
               "cltv.holdout_day: unknown key; did you mean cltv.holdout_days?");
    expect_bad("cut_days: 90", "cutdays: 90",
               "churn.cutdays: unknown key; did you mean churn.cut_days?");
    expect_bad("hnsw_m: 32", "hnsw_n: 32",
               "embeddings.hnsw_n: unknown key; did you mean embeddings.hnsw_m?");
    expect_bad("learner: auto", "lerner: auto",
               "uplift.lerner: unknown key; did you mean uplift.learner?");
    expect_bad("{name: recency, type: number}", "{name: recency, typ: number}",
               "uplift.features[0].typ: unknown key; did you mean uplift.features[0].type?");
    expect_bad("port: 8080", "prot: 8080", "server.prot: unknown key; did you mean server.port?");
    expect_bad("burst: 0", "bursts: 0",
               "server.rate_limit.bursts: unknown key; did you mean server.rate_limit.burst?");
    expect_bad("models_dir: models", "model_dir: models",
               "model_dir: unknown key; did you mean models_dir?");
    expect_bad("separator: \",\"", "colour: blue",
               "data.colour: unknown key (known here: transactions, format, separator");
}

/* events.kafka: off unless set (the shipped file has it commented out);
 * every key read when given; contradictions refused naming the key. */
static void test_events_kafka(void **state)
{
    (void)state;
    rfm_config *c;
    char err[RFM_ERRLEN];
    assert_int_equal(config_load("../config/rfm.yaml", &c, err, sizeof err), RFM_OK);
    assert_null(c->kafka.brokers);
    assert_null(c->kafka.topic);
    config_free(c);
    const char *on = "events:\n  kafka:\n    brokers: 127.0.0.1:9092,127.0.0.1:9093\n"
                     "    topic: purchases\n    dead_letter_topic: purchases-dlq\n"
                     "    scores_topic: rfm-changes\n    scores_queue_max: 300\n"
                     "    ready_max_lag: 50\n    batch_max: 700\n    batch_wait_ms: 5\n"
                     "    properties: {session.timeout.ms: 6000, enable.partition.eof: false,"
                     " security.protocol: plaintext}\n";
    FILE *f = fopen("../config/rfm.yaml", "rb");
    assert_non_null(f);
    static char buf[65536], out[65536 + 512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Into the shipped events section (types and engagement). */
    char *at = strstr(buf, "\nevents:\n");
    assert_non_null(at);
    snprintf(out, sizeof out, "%.*s\n%s%s", (int)(at - buf), buf, on, at + 9);
    char path[64];
    write_temp(path, ".yaml", out, strlen(out));
    rfm_status st = config_load(path, &c, err, sizeof err);
    remove(path);
    if (st != RFM_OK)
        fail_msg("%s", err);
    assert_string_equal(c->kafka.brokers, "127.0.0.1:9092,127.0.0.1:9093");
    assert_string_equal(c->kafka.topic, "purchases");
    assert_string_equal(c->kafka.group_id, "rfm-serve"); /* the default */
    assert_string_equal(c->kafka.dead_letter_topic, "purchases-dlq");
    assert_string_equal(c->kafka.scores_topic, "rfm-changes");
    assert_int_equal(c->kafka.scores_queue_max, 300);
    assert_int_equal(c->kafka.ready_max_lag, 50);
    assert_int_equal(c->kafka.batch_max, 700);
    assert_int_equal(c->kafka.batch_wait_ms, 5);
    assert_int_equal(c->kafka.nproperties, 3);
    assert_string_equal(c->kafka.properties[0], "session.timeout.ms");
    assert_string_equal(c->kafka.properties[1], "6000");
    assert_string_equal(c->kafka.properties[3], "false");
    assert_string_equal(c->kafka.properties[5], "plaintext");
    config_free(c);
    expect_bad("\nevents:\n", "\nevents:\n  kafka: {topic: purchases}\n",
               "events.kafka.brokers: is needed with a topic");
    expect_bad("\nevents:\n", "\nevents:\n  kafka: {brokers: 'h:1'}\n",
               "events.kafka.topic: is needed with brokers");
    expect_bad("\nevents:\n", "\nevents:\n  kafka: {brokers: 'h:1', topic: t, dead_letter_topic: t}\n",
               "events.kafka.dead_letter_topic: must differ from topic");
    expect_bad("\nevents:\n", "\nevents:\n  kafka: {brokers: 'h:1', topic: t, scores_topic: t}\n",
               "events.kafka.scores_topic: must differ from topic");
    expect_bad("\nevents:\n",
               "\nevents:\n  kafka: {brokers: 'h:1', scores_topic: s, scores_queue_max: 0}\n",
               "events.kafka.scores_queue_max: must be from 1 to 10000000");
    expect_bad("\nevents:\n", "\nevents:\n  kafka: {brokers: 'h:1', topic: t, batch_max: 0}\n",
               "events.kafka.batch_max: must be from 1 to 100000");
    expect_bad("\nevents:\n", "\nevents:\n  kafka: {brokres: 'h:1', topic: t}\n",
               "events.kafka.brokres: unknown key; did you mean events.kafka.brokers?");
    expect_bad("\nevents:\n", "\nevents:\n  kafka: {brokers: 'h:1', topic: t, properties: {a: [1]}}\n",
               "events.kafka.properties: each value must be a string");
    expect_bad("\nevents:\n", "\nevents:\n  kafka: 3\n", "events.kafka: must be a mapping");
}

/* The data section's values and contradictions, each refused at load with
 * its reason. */
static void test_data_refusals(void **state)
{
    (void)state;
    expect_bad("amount: null", "amount: Total",
               "data.columns.amount: cannot be used with columns.quantity or columns.price");
    expect_bad("quantity: Quantity         # null together with price when amount is set\n"
               "    price: UnitPrice\n    amount: null",
               "quantity: null\n    price: null\n    amount: CustomerID",
               "data.columns.amount: names the same column as columns.customer_id ('CustomerID')");
    expect_bad("price: UnitPrice", "price: Quantity",
               "data.columns.price: names the same column as columns.quantity ('Quantity')");
    expect_bad("quantity: Quantity ", "quantity: null ",
               "data.columns.quantity: and columns.price must both name a column, or "
               "columns.amount must");
    expect_bad("header: true", "header: false",
               "data.columns.invoice: must be a 1-based column position with header: false "
               "(got 'InvoiceNo')");
    expect_bad("separator: \",\"", "separator: \";;\"", "data.separator: must be one character");
    expect_bad("decimal: \".\"", "decimal: \";\"", "data.decimal: must be \".\" or \",\"");
    expect_bad("date_format: auto", "date_format: \"%Y-%m-%Q\"",
               "data.date_format: has a directive other than");
    expect_bad("date_format: auto", "date_format: \"%H:%M\"",
               "data.date_format: needs %Y (or %y), %m (or %b) and %d, or %s");
    expect_bad("timezone: UTC", "timezone: Europe/Berlin",
               "data.timezone: must be UTC or a fixed offset");
    expect_bad("format: auto", "format: xml", "data.format: must be auto, csv or jsonl");
    expect_bad("format: auto", "format: jsonl",
               "data.format: jsonl takes no separator or header (they are for CSV)");
    expect_bad("returns: drop", "returns: keep", "data.returns: must be drop");
    expect_bad("snapshot_date: null", "snapshot_date: \"1704067200\"", "data.snapshot_date");
    expect_bad("returns: drop", "returns: drop\n  query: SELECT 1",
               "data.query: is only for a database source");
}

/* A CRM's dialect, positions without a header, and a query with a
 * database URL load into the options. */
static void test_data_dialect_loads(void **state)
{
    (void)state;
    const char *yaml = "data:\n"
                       "  transactions: crm.csv\n"
                       "  separator: \";\"\n"
                       "  decimal: \",\"\n"
                       "  date_format: \"%d.%m.%Y %H:%M\"\n"
                       "  timezone: \"+02:00\"\n"
                       "  returns: subtract\n"
                       "  cancellation_prefix: null\n"
                       "  columns: {invoice: null, customer_id: Email, date: Time, amount: Total,"
                       " product: null}\n"
                       "segments:\n"
                       "  rfm_segments: [{name: All, r: [1, 5], f: [1, 5]}]\n"
                       "  k_min: 2\n"
                       "  k_max: 2\n"
                       "  cluster_profiles: [{name: A, strategy: s}, {name: B, strategy: t}]\n";
    char path[64], err[RFM_ERRLEN];
    write_temp(path, ".yaml", yaml, strlen(yaml));
    rfm_config *c;
    rfm_status st = config_load(path, &c, err, sizeof err);
    remove(path);
    if (st != RFM_OK)
        fail_msg("%s", err);
    assert_int_equal(c->txn.separator, ';');
    assert_int_equal(c->txn.decimal, ',');
    assert_string_equal(c->txn.date_format, "%d.%m.%Y %H:%M");
    assert_int_equal(c->txn.zone_s, 7200);
    assert_int_equal(c->txn.returns, TXN_RETURNS_SUBTRACT);
    assert_null(c->txn.invoice);
    assert_null(c->txn.quantity);
    assert_null(c->txn.price);
    assert_null(c->txn.cancel_prefix);
    assert_string_equal(c->txn.amount, "Total");
    config_free(c);
    const char *pos = "data:\n  transactions: db\n  header: false\n  separator: whitespace\n"
                      "  columns: {invoice: null, customer_id: 2, date: 1, quantity: null,"
                      " price: null, amount: 3}\n"
                      "segments:\n"
                      "  rfm_segments: [{name: All, r: [1, 5], f: [1, 5]}]\n"
                      "  k_min: 2\n  k_max: 2\n"
                      "  cluster_profiles: [{name: A, strategy: s}, {name: B, strategy: t}]\n";
    write_temp(path, ".yaml", pos, strlen(pos));
    st = config_load(path, &c, err, sizeof err);
    remove(path);
    if (st != RFM_OK)
        fail_msg("%s", err);
    assert_int_equal(c->txn.no_header, 1);
    assert_int_equal(c->txn.separator, CSV_SEP_WHITESPACE);
    assert_string_equal(c->txn.customer_id, "2");
    assert_string_equal(c->txn.amount, "3");
    config_free(c);
}

/* data.query goes with a database URL in data.transactions, and only
 * with one; a URL never holds a password. */
static void test_data_sources(void **state)
{
    (void)state;
    static const char from[] = "  transactions: data/online_retail.csv.gz\n";
    expect_bad(from, "  transactions: data/online_retail.csv.gz\n  query: SELECT 1\n",
               "data.query: is only for a database source");
    expect_bad(from, "  transactions: postgresql://rfm@db.example/shop\n",
               "data.query: is required with a database URL");
    expect_bad(from, "  transactions: sqlite:///srv/shop.db\n  query: \" \"\n",
               "data.query: is required");
    expect_bad(from, "  transactions: postgresql://rfm:pw@db.example/shop\n  query: SELECT 1\n",
               "data.transactions: must not hold a password");
    expect_bad(from, "  transactions: postgresql://rfm@db/shop\n  query: [SELECT 1]\n",
               "data.query: must be a string");

    FILE *f = fopen("../config/rfm.yaml", "rb");
    assert_non_null(f);
    static char buf[65536], out[65536 + 256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *at = strstr(buf, from);
    assert_non_null(at);
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - buf), buf,
             "  transactions: postgresql://rfm@db.example:5433/shop?sslmode=require\n"
             "  query: SELECT * FROM sales\n",
             at + strlen(from));
    char path[64], err[RFM_ERRLEN];
    write_temp(path, ".yaml", out, strlen(out));
    rfm_config *c;
    rfm_status st = config_load(path, &c, err, sizeof err);
    remove(path);
    if (st != RFM_OK)
        fail_msg("%s", err);
    assert_string_equal(c->transactions, "postgresql://rfm@db.example:5433/shop?sslmode=require");
    assert_string_equal(c->query, "SELECT * FROM sales");
    config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_privacy),
        cmocka_unit_test(test_data_sources),
        cmocka_unit_test(test_bad_values_name_keys),
        cmocka_unit_test(test_sections_checked_at_load),
        cmocka_unit_test(test_sections_default_to_modules),
        cmocka_unit_test(test_state_path_null),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_feed_section),
        cmocka_unit_test(test_events_kafka),
        cmocka_unit_test(test_data_refusals),
        cmocka_unit_test(test_data_dialect_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
