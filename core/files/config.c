/* config.c - config/rfm.yaml into typed options, with messages naming keys. */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "date.h"
#include "source.h"
#include "yamljson.h"

int32_t config_date(const char *s)
{
    size_t n = strlen(s);
    if (n != 10 || s[4] != '-' || s[7] != '-')
        return DATE_NONE;
    return date_parse(s, n);
}

const char *server_check(const server_options *o, char *buf, size_t len)
{
    if (o->port < 0 || o->port > 65535)
        snprintf(buf, len, "port must be from 0 to 65535");
    else if (o->threads < 0 || o->threads > 256)
        snprintf(buf, len, "threads must be from 0 (number of cores) to 256");
    else if (o->connection_limit < 1)
        snprintf(buf, len, "connection_limit must be at least 1");
    else if (o->per_address_limit < 0)
        snprintf(buf, len, "per_address_limit must be 0 (no limit) or more");
    else if (o->timeout_s < 1 || o->timeout_s > 3600)
        snprintf(buf, len, "timeout_s must be from 1 to 3600");
    else if (o->header_timeout_s < 1 || o->header_timeout_s > 3600)
        snprintf(buf, len, "header_timeout_s must be from 1 to 3600");
    else if (o->body_limit_bytes < 1024)
        snprintf(buf, len, "body_limit_bytes must be at least 1024");
    else if (o->header_limit_bytes < 4096 || o->header_limit_bytes > (1u << 20))
        snprintf(buf, len, "header_limit_bytes must be from 4096 to 1048576");
    else if (o->batch_limit < 1)
        snprintf(buf, len, "batch_limit must be at least 1");
    else if (o->max_json_depth < 2 || o->max_json_depth > 1000)
        snprintf(buf, len, "max_json_depth must be from 2 to 1000");
    else if (o->drift_window < 100 || o->drift_window > 100000000)
        snprintf(buf, len, "drift_window must be from 100 to 100000000");
    else if (!(o->rate_per_second >= 0 && o->rate_per_second <= 1e9))
        snprintf(buf, len, "rate_limit.requests_per_second must be from 0 (no limit) to 1e9");
    else if (o->rate_per_second > 0 && !(o->rate_burst >= 1 && o->rate_burst <= 1e9))
        snprintf(buf, len,
                 "rate_limit.burst must be from 1 to 1e9 when requests_per_second "
                 "is set");
    else if (o->tls_priorities && o->tls_priorities[0] == '\0')
        snprintf(buf, len, "tls_priorities must be a GnuTLS priority string, not empty");
    else if ((o->tls_cert_file == NULL) != (o->tls_key_file == NULL))
        snprintf(buf, len,
                 "tls_cert_file and tls_key_file go together: set both for HTTPS, "
                 "or neither for HTTP");
    else {
        for (size_t i = 0; i < o->ntokens; i++) {
            const char *t = o->tokens_sha256[i];
            size_t k = 0;
            while (t[k] && strchr("0123456789abcdef", t[k]))
                k++;
            if (k != 64 || t[k]) {
                snprintf(buf, len,
                         "tokens_sha256[%zu] must be 64 lower-case hex digits "
                         "(printf %%s TOKEN | sha256sum)",
                         i);
                return buf;
            }
        }
        for (size_t i = 0; i < o->nnamed; i++) {
            const server_token *t = &o->named_tokens[i];
            if (strlen(t->sha256) != 64 || strspn(t->sha256, "0123456789abcdef") != 64) {
                snprintf(buf, len,
                         "tokens[%zu].sha256 must be 64 lower-case hex digits "
                         "(printf %%s TOKEN | sha256sum)",
                         i);
                return buf;
            }
            size_t n = strlen(t->name);
            if (n == 0 || n > 32 ||
                strspn(t->name,
                       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n) {
                snprintf(buf, len, "tokens[%zu].name must be 1 to 32 of A-Z a-z 0-9 . _ -", i);
                return buf;
            }
            for (size_t k = 0; k < i; k++)
                if (strcmp(o->named_tokens[k].name, t->name) == 0) {
                    snprintf(buf, len, "tokens[%zu].name '%s' is used twice", i, t->name);
                    return buf;
                }
        }
        return NULL;
    }
    return buf;
}

const char *kafka_check(const kafka_options *o, char *buf, size_t len)
{
    if (!o->brokers && !o->topic)
        return NULL; /* off */
    if (!o->brokers)
        snprintf(buf, len, "brokers is needed with a topic (HOST:PORT[,...])");
    else if (!o->brokers[0])
        snprintf(buf, len, "brokers must be HOST:PORT[,...], not empty");
    else if ((!o->topic || !o->topic[0]) && !o->scores_topic)
        snprintf(buf, len,
                 "topic is needed with brokers: the topic the events are in (or scores_topic "
                 "alone: the live feed to Kafka)");
    else if (o->topic && !o->topic[0])
        snprintf(buf, len, "topic must not be empty");
    else if (o->scores_topic && !o->scores_topic[0])
        snprintf(buf, len, "scores_topic must not be empty");
    else if (!o->group_id || !o->group_id[0])
        snprintf(buf, len, "group_id must not be empty");
    else if (o->dead_letter_topic && o->topic && strcmp(o->dead_letter_topic, o->topic) == 0)
        snprintf(buf, len,
                 "dead_letter_topic must differ from topic (a poison message would "
                 "come back forever)");
    else if (o->scores_topic && o->topic && strcmp(o->scores_topic, o->topic) == 0)
        snprintf(buf, len,
                 "scores_topic must differ from topic (the change records would come back as "
                 "poison events)");
    else if (o->scores_topic && o->dead_letter_topic &&
             strcmp(o->scores_topic, o->dead_letter_topic) == 0)
        snprintf(buf, len, "scores_topic must differ from dead_letter_topic");
    else if (o->scores_queue_max < 1 || o->scores_queue_max > 10000000)
        snprintf(buf, len, "scores_queue_max must be from 1 to 10000000");
    else if (o->ready_max_lag < 0)
        snprintf(buf, len, "ready_max_lag must be 0 or more");
    else if (o->batch_max < 1 || o->batch_max > 100000)
        snprintf(buf, len, "batch_max must be from 1 to 100000");
    else if (o->batch_wait_ms < 0 || o->batch_wait_ms > 60000)
        snprintf(buf, len, "batch_wait_ms must be from 0 to 60000");
    else
        return NULL;
    return buf;
}

static const char *const SCOPE_NAMES[] = {"score", "events", "analytics", "admin"};

unsigned config_scope_bit(const char *name, size_t len)
{
    for (unsigned i = 0; i < 4; i++)
        if (strlen(SCOPE_NAMES[i]) == len && strncmp(SCOPE_NAMES[i], name, len) == 0)
            return 1u << i;
    return 0;
}

const char *config_scope_name(unsigned bit)
{
    for (unsigned i = 0; i < 4; i++)
        if (bit == 1u << i)
            return SCOPE_NAMES[i];
    return NULL;
}

void config_free(rfm_config *c)
{
    if (!c)
        return;
    free(c->kafka.brokers);
    free(c->kafka.topic);
    free(c->kafka.group_id);
    free(c->kafka.dead_letter_topic);
    free(c->kafka.scores_topic);
    for (char **p = c->kafka.properties; p && *p; p++) /* NULL-ended */
        free(*p);
    free(c->kafka.properties);
    free(c->campaign);
    free(c->uplift_id_column);
    free((void *)c->campaign_spec.features);
    free((void *)c->campaign_spec.arms);
    free(c->state_path);
    free(c->privacy.erasure_list);
    free(c->server.host);
    free(c->server.access_log);
    free(c->server.openapi);
    free(c->server.ui_assets);
    free(c->server.tls_cert_file);
    free(c->server.tls_key_file);
    free(c->server.tls_priorities);
    for (size_t i = 0; i < c->server.ntokens; i++)
        free(c->server.tokens_sha256[i]);
    free(c->server.tokens_sha256);
    for (size_t i = 0; i < c->server.nnamed; i++) {
        free(c->server.named_tokens[i].sha256);
        free(c->server.named_tokens[i].name);
    }
    free(c->server.named_tokens);
    for (size_t i = 0; i < c->segments.nrules; i++)
        free(c->segments.rules[i].name);
    free(c->segments.rules);
    for (size_t i = 0; i < c->segments.nprofiles; i++) {
        free(c->segments.profiles[i].name);
        free(c->segments.profiles[i].strategy);
    }
    free(c->segments.profiles);
    free(c->transactions);
    free(c->currency);
    free(c->query);
    free(c->models_dir);
    free(c->path);
    json_decref(c->root);
    free(c);
}

/* Helpers: read an optional member with a default; fail naming the key. */
typedef struct {
    const char *file;
    char *err;
    size_t errlen;
    rfm_status st;
} ctx;

static int bad(ctx *x, const char *key, const char *why)
{
    if (x->st == RFM_OK)
        x->st = rfm_fail(x->err, x->errlen, RFM_EINVAL, "%s: %s: %s", x->file, key, why);
    return 0;
}

/* Out of memory wins over any earlier message: it is why a later value
 * looked wrong. */
static void oom(ctx *x)
{
    x->st = rfm_fail(x->err, x->errlen, RFM_ENOMEM, "%s: out of memory", x->file);
}

/* strdup(s), NULL for NULL; out of memory is recorded in x. */
static char *dup(ctx *x, const char *s)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        oom(x);
    return d;
}

static const char *get_str(ctx *x, const json_t *o, const char *name, const char *key,
                           const char *def)
{
    const json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return def;
    if (!json_is_string(v)) {
        bad(x, key, "must be a string");
        return def;
    }
    return json_string_value(v);
}

static long long get_int(ctx *x, const json_t *o, const char *name, const char *key, long long def,
                         long long lo, long long hi)
{
    const json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return def;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char why[96];
        snprintf(why, sizeof why, "must be an integer from %lld to %lld", lo, hi);
        bad(x, key, why);
        return def;
    }
    return json_integer_value(v);
}

static double get_num(ctx *x, const json_t *o, const char *name, const char *key, double def,
                      double lo, double hi)
{
    const json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return def;
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
        char why[96];
        snprintf(why, sizeof why, "must be a number from %g to %g", lo, hi);
        bad(x, key, why);
        return def;
    }
    return json_number_value(v);
}

/* Type only: the ranges are the owning module's check. */
static int get_type_int(ctx *x, const json_t *o, const char *name, const char *key, int def)
{
    const json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return def;
    if (!json_is_integer(v) || json_integer_value(v) < INT_MIN || json_integer_value(v) > INT_MAX) {
        bad(x, key, "must be an integer");
        return def;
    }
    return (int)json_integer_value(v);
}

static double get_type_num(ctx *x, const json_t *o, const char *name, const char *key, double def)
{
    const json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return def;
    if (!json_is_number(v)) {
        bad(x, key, "must be a number");
        return def;
    }
    return json_number_value(v);
}

static uint64_t get_seed(ctx *x, const json_t *o, const char *name, const char *key, uint64_t def)
{
    return (uint64_t)get_int(x, o, name, key, (long long)def, 0, INT64_MAX);
}

/* A section's check failed with why, which starts with the field's name
 * ("threshold_medium must be in (0, 1)"): report "section.field: must...". */
static void section_check(ctx *x, const char *section, const char *why)
{
    if (!why || x->st != RFM_OK)
        return;
    size_t n = strspn(why, "abcdefghijklmnopqrstuvwxyz_0123456789.");
    if (n > 0 && why[n] == ' ') {
        char key[128];
        snprintf(key, sizeof key, "%s.%.*s", section, (int)n, why);
        bad(x, key, why + n + 1);
    } else {
        bad(x, section, why);
    }
}

/* ---- unknown keys ------------------------------------------------------
 * Each section's known keys are a table next to its reader; a key in none
 * is refused naming its path, with the nearest known key when one is close
 * (a typo like data.seperator would otherwise be silently ignored). */

/* Levenshtein distance of two short keys (longer ones count as far). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63)
        return SIZE_MAX;
    size_t row[64];
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

/* Refuse every member of o (a mapping, or NULL) not in known (NULL-ended). */
static void check_keys(ctx *x, const json_t *o, const char *path, const char *const *known)
{
    const char *k;
    const json_t *v;
    if (!json_is_object(o))
        return;
    json_object_foreach((json_t *)o, k, v)
    {
        size_t i = 0, best = SIZE_MAX, bi = 0;
        for (; known[i] && strcmp(known[i], k) != 0; i++) {
            size_t d = edit_distance(k, known[i]);
            if (d < best) {
                best = d;
                bi = i;
            }
        }
        if (known[i])
            continue;
        char key[160], why[512];
        snprintf(key, sizeof key, "%s%s%s", path, *path ? "." : "", k);
        size_t len = strlen(k) > strlen(known[bi]) ? strlen(k) : strlen(known[bi]);
        if (best <= 2 || best <= len / 3) {
            snprintf(why, sizeof why, "unknown key; did you mean %s%s%s?", path, *path ? "." : "",
                     known[bi]);
        } else {
            size_t n = (size_t)snprintf(why, sizeof why, "unknown key (known here:");
            for (i = 0; known[i] && n < sizeof why; i++)
                n += (size_t)snprintf(why + n, sizeof why - n, "%s %s", i ? "," : "", known[i]);
            if (n < sizeof why)
                snprintf(why + n, sizeof why - n, ")");
        }
        bad(x, key, why);
        return;
    }
}

/* check_keys on each item of the list o[name], as path.name[i]. */
static void check_item_keys(ctx *x, const json_t *o, const char *path, const char *name,
                            const char *const *known)
{
    const json_t *list = json_object_get(o, name);
    for (size_t i = 0; json_is_array(list) && i < json_array_size(list); i++) {
        char p[128];
        snprintf(p, sizeof p, "%s.%s[%zu]", path, name, i);
        check_keys(x, json_array_get(list, i), p, known);
    }
}

/* The section name of the YAML, a mapping or absent (NULL). */
static const json_t *section(ctx *x, const json_t *root, const char *name)
{
    const json_t *s = json_object_get(root, name);
    if (s && !json_is_object(s))
        bad(x, name, "must be a mapping");
    return json_is_object(s) ? s : NULL;
}

static int get_bool(ctx *x, const json_t *o, const char *name, const char *key, int def)
{
    const json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return def;
    if (!json_is_boolean(v)) {
        bad(x, key, "must be true or false");
        return def;
    }
    return json_is_true(v);
}

static double level(ctx *x, const json_t *v, const char *key)
{
    if (json_is_number(v))
        return json_number_value(v);
    const char *s = json_string_value(v);
    if (s && strcmp(s, "low") == 0)
        return -1;
    if (s && strcmp(s, "mid") == 0)
        return 0;
    if (s && strcmp(s, "high") == 0)
        return 1;
    bad(x, key, "must be low, mid, high or a number of standard deviations");
    return 0;
}

static void read_range(ctx *x, const json_t *rule, const char *name, const char *key, int *lo,
                       int *hi)
{
    const json_t *v = json_object_get(rule, name);
    *lo = 1;
    *hi = 5;
    if (!v)
        return;
    if (json_is_integer(v)) {
        *lo = *hi = (int)json_integer_value(v);
        return;
    }
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
        !json_is_integer(json_array_get(v, 1))) {
        bad(x, key, "must be a score or a range [low, high] of scores 1-5");
        return;
    }
    *lo = (int)json_integer_value(json_array_get(v, 0));
    *hi = (int)json_integer_value(json_array_get(v, 1));
}

static const char *const KEYS_SEGMENTS[] = {"k",
                                            "k_min",
                                            "k_max",
                                            "min_cluster_share",
                                            "restarts",
                                            "max_iter",
                                            "seed",
                                            "silhouette_sample",
                                            "rfm_segments",
                                            "cluster_profiles",
                                            NULL};
static const char *const KEYS_RULE[] = {"name", "r", "f", "m", NULL};
static const char *const KEYS_PROFILE[] = {"name",     "recency",  "frequency",
                                           "monetary", "strategy", NULL};

static void read_segments(ctx *x, const json_t *s, segments_options *o)
{
    char key[128];
    const json_t *k = json_object_get(s, "k");
    if (!k || json_is_null(k) || (json_is_string(k) && strcmp(json_string_value(k), "auto") == 0))
        o->k = 0;
    else if (json_is_integer(k) && json_integer_value(k) >= 1 && json_integer_value(k) <= 16)
        o->k = (int)json_integer_value(k);
    else
        bad(x, "segments.k", "must be auto or an integer from 1 to 16");
    o->k_min = (int)get_int(x, s, "k_min", "segments.k_min", 4, 2, 16);
    o->k_max = (int)get_int(x, s, "k_max", "segments.k_max", 8, 2, 16);
    o->min_share = get_num(x, s, "min_cluster_share", "segments.min_cluster_share", 0.03, 0, 0.5);
    o->restarts = (int)get_int(x, s, "restarts", "segments.restarts", 5, 1, 1000);
    o->max_iter = (int)get_int(x, s, "max_iter", "segments.max_iter", 300, 1, 100000);
    o->seed = (uint64_t)get_int(x, s, "seed", "segments.seed", 42, 0, INT64_MAX);
    o->silhouette_sample =
        (size_t)get_int(x, s, "silhouette_sample", "segments.silhouette_sample", 2000, 100, 8000);

    const json_t *rules = json_object_get(s, "rfm_segments");
    if (!json_is_array(rules) || json_array_size(rules) == 0) {
        bad(x, "segments.rfm_segments", "must be a list of {name, r, f, m}");
        return;
    }
    o->rules = calloc(json_array_size(rules), sizeof *o->rules);
    if (!o->rules) {
        oom(x);
        return;
    }
    for (size_t i = 0; i < json_array_size(rules); i++) {
        const json_t *r = json_array_get(rules, i);
        snprintf(key, sizeof key, "segments.rfm_segments[%zu]", i);
        const char *name = get_str(x, r, "name", key, NULL);
        segments_rule *u = &o->rules[o->nrules++];
        u->name = dup(x, name ? name : "");
        if (!name)
            bad(x, key, "needs a name");
        static const char *const dims[3] = {"r", "f", "m"};
        for (int j = 0; j < 3; j++) {
            char k2[160];
            snprintf(k2, sizeof k2, "%s.%s", key, dims[j]);
            read_range(x, r, dims[j], k2, &u->lo[j], &u->hi[j]);
        }
    }
    const json_t *profs = json_object_get(s, "cluster_profiles");
    if (!json_is_array(profs) || json_array_size(profs) == 0) {
        bad(x, "segments.cluster_profiles",
            "must be a list of {name, recency, frequency, monetary, strategy}");
        return;
    }
    o->profiles = calloc(json_array_size(profs), sizeof *o->profiles);
    if (!o->profiles) {
        oom(x);
        return;
    }
    for (size_t i = 0; i < json_array_size(profs); i++) {
        const json_t *p = json_array_get(profs, i);
        snprintf(key, sizeof key, "segments.cluster_profiles[%zu]", i);
        segments_profile *q = &o->profiles[o->nprofiles++];
        const char *name = get_str(x, p, "name", key, NULL);
        const char *strategy = get_str(x, p, "strategy", key, NULL);
        if (!name || !strategy)
            bad(x, key, "needs a name and a strategy");
        q->name = dup(x, name ? name : "");
        q->strategy = dup(x, strategy ? strategy : "");
        static const char *const feats[3] = {"recency", "frequency", "monetary"};
        for (int j = 0; j < 3; j++) {
            char k2[160];
            snprintf(k2, sizeof k2, "%s.%s", key, feats[j]);
            const json_t *v = json_object_get(p, feats[j]);
            q->target[j] = v ? level(x, v, k2) : 0;
        }
    }
}

static const char *const KEYS_CLTV[] = {"penalizer_coef", "holdout_days", "horizon_days",
                                        "discount_rate", NULL};

static void read_cltv(ctx *x, const json_t *s, cltv_options *o)
{
    cltv_default_options(o);
    o->penalizer_coef =
        get_type_num(x, s, "penalizer_coef", "cltv.penalizer_coef", o->penalizer_coef);
    o->holdout_days = get_type_int(x, s, "holdout_days", "cltv.holdout_days", o->holdout_days);
    o->horizon_days = get_type_num(x, s, "horizon_days", "cltv.horizon_days", o->horizon_days);
    o->discount_rate = get_type_num(x, s, "discount_rate", "cltv.discount_rate", o->discount_rate);
    section_check(x, "cltv", cltv_check_options(o));
}

static const char *const KEYS_CHURN[] = {"cut_days",
                                         "lambda",
                                         "test_share",
                                         "seed",
                                         "threshold_medium",
                                         "threshold_high",
                                         "counterfactual_threshold",
                                         "max_purchases",
                                         NULL};

static void read_churn(ctx *x, const json_t *s, churn_params *o)
{
    churn_default_params(o);
    o->cut_days = get_type_int(x, s, "cut_days", "churn.cut_days", o->cut_days);
    o->lambda = get_type_num(x, s, "lambda", "churn.lambda", o->lambda);
    o->test_share = get_type_num(x, s, "test_share", "churn.test_share", o->test_share);
    o->seed = get_seed(x, s, "seed", "churn.seed", o->seed);
    o->threshold_medium =
        get_type_num(x, s, "threshold_medium", "churn.threshold_medium", o->threshold_medium);
    o->threshold_high =
        get_type_num(x, s, "threshold_high", "churn.threshold_high", o->threshold_high);
    o->counterfactual_threshold =
        get_type_num(x, s, "counterfactual_threshold", "churn.counterfactual_threshold",
                     o->counterfactual_threshold);
    o->max_purchases = get_type_int(x, s, "max_purchases", "churn.max_purchases", o->max_purchases);
    section_check(x, "churn", churn_check_params(o));
}

static const char *const KEYS_EMBEDDINGS[] = {"dim",       "seed",      "exact_max", "hnsw_m",
                                              "ef_search", "neighbors", NULL};

static void read_embeddings(ctx *x, const json_t *s, embed_params *e, ann_params *a)
{
    embed_params_default(e);
    ann_params_default(a);
    e->dim = get_type_int(x, s, "dim", "embeddings.dim", e->dim);
    e->seed = get_seed(x, s, "seed", "embeddings.seed", e->seed);
    e->neighbors = get_type_int(x, s, "neighbors", "embeddings.neighbors", e->neighbors);
    a->exact_max = get_int(x, s, "exact_max", "embeddings.exact_max", a->exact_max, 0, INT64_MAX);
    a->hnsw_m = get_type_int(x, s, "hnsw_m", "embeddings.hnsw_m", a->hnsw_m);
    a->ef_search = get_type_int(x, s, "ef_search", "embeddings.ef_search", a->ef_search);
    section_check(x, "embeddings", embed_check_params(e));
    section_check(x, "embeddings", ann_check_params(a));
}

static const char *const KEYS_UPLIFT[] = {"campaign", "treatment", "control", "arms", "outcome",
                                          "features", "learner",   "holdout", "seed", "value",
                                          "cost",     "id_column", NULL};
static const char *const KEYS_FEATURE[] = {"name", "type", NULL};

/* uplift: the campaign file and its columns (campaign_spec), the learner
 * (uplift_params). Without the section there is no spec, and rfm-train
 * skips uplift. */
static void read_uplift(ctx *x, const json_t *u, char **campaign, campaign_spec *spec,
                        uplift_params *o, double *value, double *cost)
{
    *value = 1, *cost = 0;
    uplift_default_params(o, UPLIFT_T_LEARNER);
    o->choose_learner = 1; /* learner: auto */
    o->tune = 1;
    o->seed = 42;
    if (!u)
        return;
    const char *camp = get_str(x, u, "campaign", "uplift.campaign", NULL);
    *campaign = dup(x, camp);
    spec->treatment = get_str(x, u, "treatment", "uplift.treatment", NULL);
    spec->control = get_str(x, u, "control", "uplift.control", NULL);
    spec->outcome = get_str(x, u, "outcome", "uplift.outcome", NULL);
    const char *learner = get_str(x, u, "learner", "uplift.learner", "auto");
    o->choose_learner = strcmp(learner, "auto") == 0;
    int l = uplift_learner_from_name(learner);
    if (l >= 0)
        o->learner = (uplift_learner)l;
    else if (!o->choose_learner)
        bad(x, "uplift.learner",
            "must be auto, t_learner, causal_forest, x_learner, dr_learner or rule");
    o->holdout = get_type_num(x, u, "holdout", "uplift.holdout", o->holdout);
    o->seed = get_seed(x, u, "seed", "uplift.seed", o->seed);
    *value = get_type_num(x, u, "value", "uplift.value", *value);
    *cost = get_type_num(x, u, "cost", "uplift.cost", *cost);
    if (!(isfinite(*value) && *value >= 0))
        bad(x, "uplift.value", "must be a number >= 0 (money per unit of outcome)");
    if (!(isfinite(*cost) && *cost >= 0))
        bad(x, "uplift.cost", "must be a number >= 0 (money per contact)");
    section_check(x, "uplift", uplift_check_params(o));
    const json_t *arms = json_object_get(u, "arms"), *feats = json_object_get(u, "features");
    if (!json_is_array(arms) || json_array_size(arms) == 0) {
        bad(x, "uplift.arms", "must list the treatment levels that are arms");
        return;
    }
    if (!json_is_array(feats) || json_array_size(feats) == 0) {
        bad(x, "uplift.features", "must list {name, type: number | category}");
        return;
    }
    const char **av = calloc(json_array_size(arms), sizeof *av);
    campaign_feature *fv = calloc(json_array_size(feats), sizeof *fv);
    spec->arms = av;
    spec->features = fv;
    if (!av || !fv) {
        oom(x);
        return;
    }
    for (size_t i = 0; i < json_array_size(arms); i++) {
        const char *a = json_string_value(json_array_get(arms, i));
        if (!a)
            bad(x, "uplift.arms", "must be strings");
        av[i] = a;
    }
    for (size_t i = 0; i < json_array_size(feats); i++) {
        const json_t *f = json_array_get(feats, i);
        char key[64];
        snprintf(key, sizeof key, "uplift.features[%zu]", i);
        const char *name = get_str(x, f, "name", key, NULL);
        const char *type = get_str(x, f, "type", key, "number");
        if (!name || (strcmp(type, "number") && strcmp(type, "category")))
            bad(x, key, "needs a name and type number or category");
        fv[i].name = name;
        fv[i].type = type && strcmp(type, "category") == 0 ? CAMPAIGN_CATEGORY : CAMPAIGN_NUMBER;
    }
    spec->n_features = json_array_size(feats);
    spec->n_arms = json_array_size(arms);
    const char *why = x->st == RFM_OK ? campaign_check_spec(spec) : NULL;
    if (why)
        bad(x, "uplift", why);
}

/* ---- data: the transaction export and its dialect (txn_options) ------ */

static const char *const KEYS_DATA[] = {
    "transactions", "format",  "separator",           "header",        "decimal", "date_format",
    "timezone",     "columns", "cancellation_prefix", "snapshot_date", "returns", "query",
    "currency",     NULL};
static const char *const KEYS_COLUMNS[] = {"invoice", "customer_id", "date",    "quantity",
                                           "price",   "amount",      "product", NULL};

/* A column: absent is def, null is NULL (not read), a string is a name, a
 * positive integer a position (header: false), kept as its text in root. */
static const char *get_col(ctx *x, const json_t *cols, const char *name, const char *def)
{
    char key[64];
    snprintf(key, sizeof key, "data.columns.%s", name);
    json_t *v = json_object_get(cols, name);
    if (!v)
        return def;
    if (json_is_null(v))
        return NULL;
    if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 9999) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", (int)json_integer_value(v));
        if (json_object_set_new((json_t *)cols, name, json_string(buf)) != 0) {
            oom(x);
            return NULL;
        }
        return json_string_value(json_object_get(cols, name));
    }
    if (!json_is_string(v)) {
        bad(x, key, "must be a column name, a 1-based position (header: false) or null");
        return def;
    }
    return json_string_value(v);
}

static void read_data(ctx *x, const json_t *data, rfm_config *c)
{
    txn_options *o = &c->txn;
    const json_t *cols = json_object_get(data, "columns");
    if (cols && !json_is_object(cols))
        bad(x, "data.columns", "must be a mapping");
    if (!json_is_object(cols))
        cols = NULL;
    const char *t = get_str(x, data, "transactions", "data.transactions", NULL);
    c->transactions = dup(x, t);

    const char *fmt = get_str(x, data, "format", "data.format", "auto");
    o->format = strcmp(fmt, "csv") == 0     ? TXN_FORMAT_CSV
                : strcmp(fmt, "jsonl") == 0 ? TXN_FORMAT_JSONL
                                            : TXN_FORMAT_AUTO;
    if (o->format == TXN_FORMAT_AUTO && strcmp(fmt, "auto") != 0)
        bad(x, "data.format", "must be auto, csv or jsonl");
    const char *sep = get_str(x, data, "separator", "data.separator", NULL);
    if (sep) {
        if (strcmp(sep, "whitespace") == 0)
            o->separator = CSV_SEP_WHITESPACE;
        else if (strcmp(sep, "\\t") == 0 || strcmp(sep, "tab") == 0)
            o->separator = '\t';
        else if (strlen(sep) == 1 && !strchr("\"\r\n", sep[0]))
            o->separator = (unsigned char)sep[0];
        else
            bad(x, "data.separator",
                "must be one character other than a quote or a line end, "
                "\"\\t\", or whitespace (runs of spaces and tabs)");
    }
    o->no_header = !get_bool(x, data, "header", "data.header", 1);
    const char *dec = get_str(x, data, "decimal", "data.decimal", ".");
    if (strcmp(dec, ".") && strcmp(dec, ","))
        bad(x, "data.decimal", "must be \".\" or \",\" (thousands separators are refused)");
    o->decimal = dec[0] == ',' ? ',' : '.';
    const char *df = get_str(x, data, "date_format", "data.date_format", "auto");
    o->date_format = strcmp(df, "auto") == 0 ? NULL : df;
    const char *tz = get_str(x, data, "timezone", "data.timezone", "UTC");
    if (!date_parse_zone(tz, &o->zone_s))
        bad(x, "data.timezone",
            "must be UTC or a fixed offset such as +02:00 or -0500 (named "
            "zones with daylight saving are not read)");
    const char *ret = get_str(x, data, "returns", "data.returns", "drop");
    o->returns = strcmp(ret, "subtract") == 0 ? TXN_RETURNS_SUBTRACT : TXN_RETURNS_COUNT;
    if (strcmp(ret, "subtract") && strcmp(ret, "drop"))
        bad(x, "data.returns",
            "must be drop (counted, left out) or subtract (also netted "
            "against monetary)");
    const char *query = get_str(x, data, "query", "data.query", NULL);
    c->query = dup(x, query);
    const char *cur = get_str(x, data, "currency", "data.currency", NULL);
    if (cur && !(strlen(cur) == 3 && strspn(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 3))
        bad(x, "data.currency",
            "must be an ISO 4217 code of three capital letters (GBP, EUR) or null");
    c->currency = dup(x, cur);
    if (x->st == RFM_OK && (t || query)) {
        char why[256];
        const char *key;
        if (source_check(t ? t : "", query, &key, why, sizeof why))
            bad(x, strcmp(key, "query") == 0 ? "data.query" : "data.transactions", why);
    }

    o->amount = get_col(x, cols, "amount", NULL);
    o->invoice = get_col(x, cols, "invoice", "InvoiceNo");
    o->customer_id = get_col(x, cols, "customer_id", "CustomerID");
    o->date = get_col(x, cols, "date", "InvoiceDate");
    o->quantity = get_col(x, cols, "quantity", o->amount ? NULL : "Quantity");
    o->price = get_col(x, cols, "price", o->amount ? NULL : "UnitPrice");
    o->product = get_col(x, cols, "product", NULL);
    o->cancel_prefix = get_str(x, data, "cancellation_prefix", "data.cancellation_prefix", "C");
    if (json_is_null(json_object_get(data, "cancellation_prefix")))
        o->cancel_prefix = NULL;
    const char *snap = get_str(x, data, "snapshot_date", "data.snapshot_date", NULL);
    o->snapshot_day = DATE_NONE;
    if (snap && (o->snapshot_day = config_date(snap)) == DATE_NONE)
        bad(x, "data.snapshot_date", "must be a date YYYY-MM-DD");
    if (x->st == RFM_OK) {
        char why[256];
        section_check(x, "data", txn_check_options(o, why, sizeof why));
    }
}

/* The lead adds keys of other branches here (e.g. server.tls_priorities). */
static const char *const KEYS_SERVER[] = {"host",
                                          "port",
                                          "threads",
                                          "connection_limit",
                                          "timeout_s",
                                          "body_limit_bytes",
                                          "header_limit_bytes",
                                          "batch_limit",
                                          "max_json_depth",
                                          "tokens_sha256",
                                          "tokens",
                                          "access_log",
                                          "openapi",
                                          "metrics_token_required",
                                          "drift_window",
                                          "rate_limit",
                                          "tls_cert_file",
                                          "tls_key_file",
                                          "tls_priorities",
                                          "per_address_limit",
                                          "header_timeout_s",
                                          "ui_assets",
                                          NULL};
static const char *const KEYS_RATE_LIMIT[] = {"requests_per_second", "burst", NULL};
static const char *const KEYS_TOKEN[] = {"sha256", "name", "scopes", NULL};

/* server.tokens: [{sha256, name, scopes: [score, ...]}]; scopes absent =
 * every scope. The digest and the name are checked by server_check. */
static void read_tokens(ctx *x, const json_t *toks, server_options *o)
{
    if (!toks || json_is_null(toks))
        return;
    if (!json_is_array(toks)) {
        bad(x, "server.tokens", "must be a list of {sha256, name, scopes}");
        return;
    }
    o->named_tokens = calloc(json_array_size(toks) + 1, sizeof *o->named_tokens);
    if (!o->named_tokens) {
        oom(x);
        return;
    }
    for (size_t i = 0; i < json_array_size(toks); i++) {
        const json_t *t = json_array_get(toks, i);
        char key[64];
        snprintf(key, sizeof key, "server.tokens[%zu]", i);
        const char *sha = json_string_value(json_object_get(t, "sha256"));
        const char *name = json_string_value(json_object_get(t, "name"));
        if (!json_is_object(t) || !sha || !name) {
            bad(x, key, "must be a mapping with sha256 and name (and scopes)");
            return;
        }
        server_token *st = &o->named_tokens[o->nnamed];
        st->scopes = RFM_SCOPE_ALL;
        const json_t *sc = json_object_get(t, "scopes");
        if (sc && !json_is_null(sc)) {
            snprintf(key, sizeof key, "server.tokens[%zu].scopes", i);
            if (!json_is_array(sc) || json_array_size(sc) == 0) {
                bad(x, key, "must be a non-empty list of score, events, analytics, admin");
                return;
            }
            st->scopes = 0;
            for (size_t k = 0; k < json_array_size(sc); k++) {
                const char *n = json_string_value(json_array_get(sc, k));
                unsigned bit = n ? config_scope_bit(n, strlen(n)) : 0;
                if (!bit) {
                    bad(x, key, "unknown scope (known: score, events, analytics, admin)");
                    return;
                }
                st->scopes |= bit;
            }
        }
        if (!(st->sha256 = dup(x, sha)) || !(st->name = dup(x, name)))
            return;
        o->nnamed++;
    }
}

static void read_server(ctx *x, const json_t *s, server_options *o)
{
    const char *host = get_str(x, s, "host", "server.host", "127.0.0.1");
    o->host = dup(x, host);
    o->port = (int)get_int(x, s, "port", "server.port", 8080, 0, 65535);
    o->threads = (int)get_int(x, s, "threads", "server.threads", 0, 0, 256);
    o->connection_limit =
        (int)get_int(x, s, "connection_limit", "server.connection_limit", 10000, 1, 1000000);
    o->per_address_limit =
        (int)get_int(x, s, "per_address_limit", "server.per_address_limit", 0, 0, 1000000);
    o->timeout_s = (int)get_int(x, s, "timeout_s", "server.timeout_s", 15, 1, 3600);
    o->header_timeout_s =
        (int)get_int(x, s, "header_timeout_s", "server.header_timeout_s", 10, 1, 3600);
    o->body_limit_bytes = (size_t)get_int(x, s, "body_limit_bytes", "server.body_limit_bytes",
                                          1 << 20, 1024, (long long)1 << 32);
    o->header_limit_bytes = (size_t)get_int(x, s, "header_limit_bytes", "server.header_limit_bytes",
                                            16384, 4096, 1 << 20);
    o->batch_limit =
        (size_t)get_int(x, s, "batch_limit", "server.batch_limit", 10000, 1, 100000000);
    o->max_json_depth = (int)get_int(x, s, "max_json_depth", "server.max_json_depth", 32, 2, 1000);
    const char *log = get_str(x, s, "access_log", "server.access_log", NULL);
    o->access_log = dup(x, log);
    o->ui_assets = dup(x, get_str(x, s, "ui_assets", "server.ui_assets", NULL));
    const char *spec = get_str(x, s, "openapi", "server.openapi", "openapi.yaml");
    o->openapi = dup(x, spec);
    o->metrics_token_required =
        get_bool(x, s, "metrics_token_required", "server.metrics_token_required", 0);
    o->drift_window =
        (int)get_int(x, s, "drift_window", "server.drift_window", 10000, 100, 100000000);
    const json_t *rl = json_object_get(s, "rate_limit");
    if (rl && !json_is_null(rl) && !json_is_object(rl))
        bad(x, "server.rate_limit", "must be a mapping {requests_per_second, burst}");
    o->rate_per_second =
        get_num(x, rl, "requests_per_second", "server.rate_limit.requests_per_second", 0, 0, 1e9);
    o->rate_burst = get_num(x, rl, "burst", "server.rate_limit.burst", 0, 0, 1e9);
    const char *cert = get_str(x, s, "tls_cert_file", "server.tls_cert_file", NULL);
    const char *key = get_str(x, s, "tls_key_file", "server.tls_key_file", NULL);
    o->tls_cert_file = dup(x, cert);
    o->tls_key_file = dup(x, key);
    /* TLS 1.2 and 1.3, forward-secret AEAD suites only. */
    o->tls_priorities =
        dup(x, get_str(x, s, "tls_priorities", "server.tls_priorities",
                       "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:"
                       "+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-RSA:"
                       "+ECDHE-ECDSA:-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1"));
    read_tokens(x, json_object_get(s, "tokens"), o);
    const json_t *toks = json_object_get(s, "tokens_sha256");
    if (toks && !json_is_null(toks)) {
        if (!json_is_array(toks)) {
            bad(x, "server.tokens_sha256", "must be a list of sha256 hex digests");
            return;
        }
        o->tokens_sha256 = calloc(json_array_size(toks) + 1, sizeof *o->tokens_sha256);
        if (!o->tokens_sha256)
            oom(x);
        for (size_t i = 0; o->tokens_sha256 && i < json_array_size(toks); i++) {
            const char *t = json_string_value(json_array_get(toks, i));
            if (!t) {
                bad(x, "server.tokens_sha256", "must be a list of sha256 hex digests");
                return;
            }
            if (!(o->tokens_sha256[o->ntokens] = dup(x, t)))
                return;
            o->ntokens++;
        }
    }
}

/* state: the customer-state store (docs/events.md). */
static void read_state(ctx *x, const json_t *s, rfm_config *c)
{
    state_options *o = &c->state;
    state_default_options(o);
    o->cancel_prefix = c->txn.cancel_prefix;
    /* path: null (written out) runs without a store; absent is the default. */
    const json_t *pv = json_object_get(s, "path");
    c->state_path = pv && json_is_null(pv)
                        ? NULL
                        : dup(x, get_str(x, s, "path", "state.path", "state/state.db"));
    const char *sync = get_str(x, s, "synchronous", "state.synchronous", "full");
    if (strcmp(sync, "full") == 0)
        o->synchronous = STATE_SYNC_FULL;
    else if (strcmp(sync, "normal") == 0)
        o->synchronous = STATE_SYNC_NORMAL;
    else
        bad(x, "state.synchronous",
            "must be full or normal (normal may lose the last "
            "batches on power loss)");
    o->seen_ids_max = (uint64_t)get_int(x, s, "seen_ids_max", "state.seen_ids_max",
                                        (long long)o->seen_ids_max, 0, INT64_MAX);
    o->cache_mb =
        (uint64_t)get_int(x, s, "cache_mb", "state.cache_mb", (long long)o->cache_mb, 0, INT64_MAX);
    /* max_mb: a cap on the store's file; a full cap answers like a full disk. */
    o->max_pages = (uint64_t)get_int(x, s, "max_mb", "state.max_mb", 0, 0, INT64_MAX / 256) * 256;
    /* A redis:// path (state_redis.h): the wait for each answer, and the
     * event ids kept per customer. */
    rstate_options *r = &c->state_redis;
    rstate_default_options(r);
    r->cancel_prefix = c->txn.cancel_prefix;
    r->timeout_ms = (int)get_int(x, s, "timeout_ms", "state.timeout_ms", r->timeout_ms, 1, 600000);
    r->seen_per_customer =
        (uint64_t)get_int(x, s, "seen_ids_per_customer", "state.seen_ids_per_customer",
                          (long long)r->seen_per_customer, 10, (long long)1 << 40);
    char why[128];
    if (x->st == RFM_OK)
        section_check(x, "state", state_check_options(o, why, sizeof why));
    if (x->st == RFM_OK)
        section_check(x, "state", rstate_check_options(r, why, sizeof why));
}

/* feed: the live feed of score changes (docs/events.md, "Live feed"). */
static void read_feed(ctx *x, const json_t *s, feed_options *o)
{
    o->enabled = get_bool(x, s, "enabled", "feed.enabled", 1);
    o->buffer = (size_t)get_int(x, s, "buffer", "feed.buffer", 10000, 1, 1 << 24);
    o->max_readers = (int)get_int(x, s, "max_readers", "feed.max_readers", 64, 0, 100000);
    o->sweep_seconds = (int)get_int(x, s, "sweep_seconds", "feed.sweep_seconds", 3600, 0, 86400);
    o->heartbeat_seconds =
        (int)get_int(x, s, "heartbeat_seconds", "feed.heartbeat_seconds", 15, 1, 3600);
    o->published_max =
        (size_t)get_int(x, s, "published_max", "feed.published_max", 1000000, 0, 1 << 28);
}

/* events.kafka: the Kafka consumer (docs/events.md). */
static void read_kafka(ctx *x, const json_t *k, kafka_options *o)
{
    o->brokers = dup(x, get_str(x, k, "brokers", "events.kafka.brokers", NULL));
    o->topic = dup(x, get_str(x, k, "topic", "events.kafka.topic", NULL));
    o->group_id = dup(x, get_str(x, k, "group_id", "events.kafka.group_id", "rfm-serve"));
    o->dead_letter_topic =
        dup(x, get_str(x, k, "dead_letter_topic", "events.kafka.dead_letter_topic", NULL));
    o->scores_topic = dup(x, get_str(x, k, "scores_topic", "events.kafka.scores_topic", NULL));
    o->scores_queue_max =
        get_type_int(x, k, "scores_queue_max", "events.kafka.scores_queue_max", 100000);
    o->ready_max_lag =
        get_int(x, k, "ready_max_lag", "events.kafka.ready_max_lag", 10000, 0, INT64_MAX);
    o->batch_max = get_type_int(x, k, "batch_max", "events.kafka.batch_max", 5000);
    o->batch_wait_ms = get_type_int(x, k, "batch_wait_ms", "events.kafka.batch_wait_ms", 20);
    const json_t *props = json_object_get(k, "properties");
    if (props && !json_is_null(props)) {
        if (!json_is_object(props)) {
            bad(x, "events.kafka.properties", "must be a mapping of librdkafka settings");
            return;
        }
        o->properties = calloc(2 * json_object_size(props) + 1, sizeof *o->properties);
        if (!o->properties) {
            oom(x);
            return;
        }
        const char *name;
        const json_t *v;
        json_object_foreach((json_t *)props, name, v)
        {
            char num[64];
            const char *text = json_string_value(v);
            if (json_is_integer(v))
                snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)), text = num;
            else if (json_is_boolean(v))
                text = json_is_true(v) ? "true" : "false";
            if (!text) {
                bad(x, "events.kafka.properties",
                    "each value must be a string, an integer or a boolean");
                return;
            }
            if (!(o->properties[o->nproperties] = dup(x, name)))
                return;
            o->nproperties++;
            if (!(o->properties[o->nproperties] = dup(x, text)))
                return;
            o->nproperties++;
        }
        o->nproperties /= 2;
    }
    char why[160];
    if (x->st == RFM_OK)
        section_check(x, "events.kafka", kafka_check(o, why, sizeof why));
}

/* events: the interaction kinds of POST /events and the engagement scores
 * (engagement.h, docs/events.md). types replaces the defaults as a whole. */
static void read_edges(ctx *x, const json_t *e, const char *name, double out[4])
{
    const json_t *v = json_object_get(e, name);
    if (!v || json_is_null(v))
        return;
    char key[64];
    snprintf(key, sizeof key, "events.engagement.%s", name);
    if (!json_is_array(v) || json_array_size(v) != 4) {
        bad(x, key, "must be a list of four increasing numbers");
        return;
    }
    for (size_t i = 0; i < 4; i++) {
        if (!json_is_number(json_array_get(v, i))) {
            bad(x, key, "must be a list of four increasing numbers");
            return;
        }
        out[i] = json_number_value(json_array_get(v, i));
    }
}

static void read_events(ctx *x, const json_t *s, engagement_options *o)
{
    engagement_default_options(o);
    const json_t *types = json_object_get(s, "types");
    if (types && !json_is_null(types)) {
        if (!json_is_object(types) || json_object_size(types) == 0) {
            bad(x, "events.types", "must be a mapping of kind names to {weight, monetary}");
            return;
        }
        o->ntypes = 0;
        const char *name;
        const json_t *t;
        json_object_foreach((json_t *)types, name, t)
        {
            char key[128];
            snprintf(key, sizeof key, "events.types.%.64s", name);
            if (o->ntypes == ENGAGEMENT_TYPES_MAX) {
                bad(x, "events.types", "at most 16 kinds");
                return;
            }
            if (t && !json_is_null(t) && !json_is_object(t)) {
                bad(x, key, "must be a mapping {weight, monetary}");
                return;
            }
            static const char *const known[] = {"weight", "monetary", NULL};
            check_keys(x, t, key, known);
            engagement_type *k = &o->type[o->ntypes++];
            snprintf(k->name, sizeof k->name, "%.*s", ENGAGEMENT_NAME_MAX, name);
            if (strlen(name) > ENGAGEMENT_NAME_MAX)
                k->name[0] = '\0'; /* the check names it invalid */
            snprintf(key, sizeof key, "events.types.%.64s.weight", name);
            k->weight = get_type_num(x, t, "weight", key, 1.0);
            snprintf(key, sizeof key, "events.types.%.64s.monetary", name);
            k->monetary = get_bool(x, t, "monetary", key, 0);
        }
    }
    const json_t *e = json_object_get(s, "engagement");
    if (e && !json_is_null(e) && !json_is_object(e))
        bad(x, "events.engagement", "must be a mapping");
    static const char *const known[] = {"recency_days", "count", "weighted", NULL};
    check_keys(x, e, "events.engagement", known);
    read_edges(x, e, "recency_days", o->recency_days);
    read_edges(x, e, "count", o->count);
    read_edges(x, e, "weighted", o->weighted);
    char why[160];
    if (x->st == RFM_OK)
        section_check(x, "events", engagement_check_options(o, why, sizeof why));
}

static const char *const KEYS_TOP[] = {"data",       "models_dir", "segments", "cltv",  "churn",
                                       "embeddings", "uplift",     "server",   "state", "events",
                                       "privacy",    "feed",       NULL};
static const char *const KEYS_FEED[] = {
    "enabled",           "buffer",        "max_readers", "sweep_seconds",
    "heartbeat_seconds", "published_max", NULL};
static const char *const KEYS_PRIVACY[] = {"pseudonymize_ids", "erasure_list", NULL};

/* privacy: after state, whose path places the erasure list by default. */
static void read_privacy(ctx *x, const json_t *s, rfm_config *c)
{
    privacy_options *o = &c->privacy;
    o->pseudonymize_ids = get_bool(x, s, "pseudonymize_ids", "privacy.pseudonymize_ids", 0);
    const char *list = get_str(x, s, "erasure_list", "privacy.erasure_list", NULL);
    if (list && !*list)
        bad(x, "privacy.erasure_list", "must be a file path, or null for state.path + .erased");
    if (list) {
        o->erasure_list = dup(x, list);
    } else if (c->state_path && !rstate_is_url(c->state_path)) {
        /* A redis:// store has no folder of its own: no default list. */
        size_t n = strlen(c->state_path) + sizeof ".erased";
        if ((o->erasure_list = malloc(n)) != NULL)
            snprintf(o->erasure_list, n, "%s.erased", c->state_path);
        else
            oom(x);
    }
}

rfm_status config_id_key(rfm_config *c, const char *key, char *err, size_t errlen)
{
    c->txn.id_key = NULL;
    if (!c->privacy.pseudonymize_ids)
        return RFM_OK;
    if (!key || !*key)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "%s: privacy.pseudonymize_ids is true but RFM_ID_KEY is not set: export "
                        "the pseudonymisation key (e.g. RFM_ID_KEY=$(openssl rand -hex 32), "
                        "kept in a secret store; docs/security.md)",
                        c->path);
    if (strlen(key) < 16)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "%s: RFM_ID_KEY is %zu bytes; a pseudonymisation key needs at least 16 "
                        "(e.g. openssl rand -hex 32)",
                        c->path, strlen(key));
    c->txn.id_key = key;
    return RFM_OK;
}
static const char *const KEYS_STATE[] = {
    "path",   "synchronous", "seen_ids_max",          "cache_mb",
    "max_mb", "timeout_ms",  "seen_ids_per_customer", NULL};
static const char *const KEYS_EVENTS[] = {"types", "engagement", "kafka", NULL};
static const char *const KEYS_KAFKA[] = {"brokers",
                                         "topic",
                                         "group_id",
                                         "dead_letter_topic",
                                         "scores_topic",
                                         "scores_queue_max",
                                         "ready_max_lag",
                                         "batch_max",
                                         "batch_wait_ms",
                                         "properties",
                                         NULL};

/* Before the values: a misspelt key is what to report, not the default
 * or missing value it caused. */
static void check_all_keys(ctx *x, const json_t *root)
{
    const json_t *data = json_object_get(root, "data"), *seg = json_object_get(root, "segments");
    const json_t *upl = json_object_get(root, "uplift"), *srv = json_object_get(root, "server");
    check_keys(x, root, "", KEYS_TOP);
    check_keys(x, data, "data", KEYS_DATA);
    check_keys(x, json_object_get(data, "columns"), "data.columns", KEYS_COLUMNS);
    check_keys(x, seg, "segments", KEYS_SEGMENTS);
    check_item_keys(x, seg, "segments", "rfm_segments", KEYS_RULE);
    check_item_keys(x, seg, "segments", "cluster_profiles", KEYS_PROFILE);
    check_keys(x, json_object_get(root, "cltv"), "cltv", KEYS_CLTV);
    check_keys(x, json_object_get(root, "churn"), "churn", KEYS_CHURN);
    check_keys(x, json_object_get(root, "embeddings"), "embeddings", KEYS_EMBEDDINGS);
    check_keys(x, upl, "uplift", KEYS_UPLIFT);
    check_item_keys(x, upl, "uplift", "features", KEYS_FEATURE);
    check_keys(x, srv, "server", KEYS_SERVER);
    check_keys(x, json_object_get(srv, "rate_limit"), "server.rate_limit", KEYS_RATE_LIMIT);
    check_item_keys(x, srv, "server", "tokens", KEYS_TOKEN);
    check_keys(x, json_object_get(root, "state"), "state", KEYS_STATE);
    check_keys(x, json_object_get(root, "feed"), "feed", KEYS_FEED);
    const json_t *ev = json_object_get(root, "events");
    check_keys(x, ev, "events", KEYS_EVENTS);
    check_keys(x, json_object_get(ev, "kafka"), "events.kafka", KEYS_KAFKA);
    check_keys(x, json_object_get(root, "privacy"), "privacy", KEYS_PRIVACY);
}

rfm_status config_load(const char *path, rfm_config **out, char *err, size_t errlen)
{
    *out = NULL;
    json_t *root;
    rfm_status st = yamljson_load(path, &root, err, errlen);
    if (st != RFM_OK)
        return st;
    rfm_config *c = calloc(1, sizeof *c);
    if (!c) {
        json_decref(root);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    c->root = root;
    ctx x = {path, err, errlen, RFM_OK};
    c->path = dup(&x, path);
    if (!json_is_object(root)) {
        bad(&x, "(top level)", "must be a mapping");
        goto done;
    }
    check_all_keys(&x, root); /* a typo's message, not what it caused */
    read_data(&x, section(&x, root, "data"), c);
    const char *md = get_str(&x, root, "models_dir", "models_dir", "models");
    c->models_dir = dup(&x, md);

    const json_t *seg = json_object_get(root, "segments");
    if (!json_is_object(seg))
        bad(&x, "segments", "missing: the segments section defines the RFM map and clusters");
    else
        read_segments(&x, seg, &c->segments);
    if (x.st == RFM_OK) {
        char why[256];
        if (segments_check(&c->segments, why, sizeof why))
            bad(&x, "segments", why);
    }
    read_cltv(&x, section(&x, root, "cltv"), &c->cltv);
    read_churn(&x, section(&x, root, "churn"), &c->churn);
    read_embeddings(&x, section(&x, root, "embeddings"), &c->embed, &c->ann);
    read_uplift(&x, section(&x, root, "uplift"), &c->campaign, &c->campaign_spec, &c->uplift,
                &c->uplift_value, &c->uplift_cost);
    /* uplift.id_column: the campaign file's customer-id column (gains.h). */
    if (json_is_object(json_object_get(root, "uplift")))
        c->uplift_id_column = dup(&x, get_str(&x, json_object_get(root, "uplift"), "id_column",
                                              "uplift.id_column", NULL));
    const json_t *srv = json_object_get(root, "server");
    if (srv && !json_is_object(srv))
        bad(&x, "server", "must be a mapping");
    read_server(&x, srv, &c->server);
    if (x.st == RFM_OK) {
        char why[256];
        if (server_check(&c->server, why, sizeof why))
            bad(&x, "server", why);
    }
    read_events(&x, section(&x, root, "events"), &c->events);
    read_state(&x, section(&x, root, "state"), c);
    read_feed(&x, section(&x, root, "feed"), &c->feed);
    const json_t *kafka = json_object_get(section(&x, root, "events"), "kafka");
    if (kafka && !json_is_object(kafka))
        bad(&x, "events.kafka", "must be a mapping");
    read_kafka(&x, json_is_object(kafka) ? kafka : NULL, &c->kafka);
    c->state.types = &c->events;
    c->state_redis.types = &c->events;
    read_privacy(&x, section(&x, root, "privacy"), c);
done:
    if (x.st != RFM_OK) {
        config_free(c);
        return x.st;
    }
    *out = c;
    return RFM_OK;
}
