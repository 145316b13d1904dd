/* test_oom.c - failing-allocation mode, as curl's torture tests: for each
 * loader (config, the models folder and each model's JSON, the customers
 * table, the transaction pass, a campaign log), run it again and again,
 * making the Nth allocation fail for N = 1, 2, ... until a run makes fewer
 * than N allocations. Every failing run must end in RFM_ENOMEM with a
 * message, leave its output NULL, and give back every allocation it made
 * (counted here; `make san` also runs it under LeakSanitizer).
 *
 * The Makefile links this test with -Wl,--wrap for malloc, calloc,
 * realloc, strdup and free, so every call from core/ comes here; jansson
 * allocates through json_set_alloc_funcs, routed to the same counter.
 * Allocations inside libc, libyaml and zlib are not counted (their own
 * failure paths are theirs), nor FAISS's C++ new, nor those of jansson's
 * parser (json_load_file is wrapped to pause the counter): jansson 2.14's
 * lexer ignores a failed buffer growth and then asserts, or reports a
 * syntax error (akheron/jansson#362, fix not released).
 */
#include "testutil.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>

#include "campaign.h"
#include "churn.h"
#include "cltv.h"
#include "config.h"
#include "customers.h"
#include "date.h"
#include "modelfile.h"
#include "segments.h"
#include "txn.h"
#include "uplift.h"
#include "../server/api.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void __real_free(void *p);

static atomic_long fail_at;         /* 0: off; else the allocation number that fails */
static atomic_long count;           /* allocations since the run started */
static atomic_int failed;           /* the run met its failing allocation */
static atomic_long live;            /* allocations not yet freed */
static _Thread_local int in_parser; /* inside json_load_file: never fail */

json_t *__real_json_load_file(const char *path, size_t flags, json_error_t *error);
json_t *__wrap_json_load_file(const char *path, size_t flags, json_error_t *error)
{
    in_parser++;
    json_t *j = __real_json_load_file(path, flags, error);
    in_parser--;
    return j;
}

/* Where the Nth allocation fails: `break oom_hit if n == N` in gdb. */
__attribute__((noinline)) static void oom_hit(long n) { __asm__ volatile("" ::"r"(n)); }

static int fail_now(void)
{
    long n = atomic_load(&fail_at);
    if (n <= 0 || in_parser)
        return 0;
    if (atomic_fetch_add(&count, 1) + 1 != n)
        return 0;
    atomic_store(&failed, 1);
    oom_hit(n);
    return 1;
}

void *__wrap_malloc(size_t n)
{
    void *p = fail_now() ? NULL : __real_malloc(n);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

void *__wrap_calloc(size_t a, size_t b)
{
    void *p = fail_now() ? NULL : __real_calloc(a, b);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

void *__wrap_realloc(void *old, size_t n)
{
    if (fail_now())
        return NULL;
    void *p = __real_realloc(old, n);
    if (p && !old)
        atomic_fetch_add(&live, 1);
    return p;
}

char *__wrap_strdup(const char *s)
{
    char *p = fail_now() ? NULL : __real_strdup(s);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

void __wrap_free(void *p)
{
    if (p)
        atomic_fetch_sub(&live, 1);
    __real_free(p);
}

/* One operation: does its work, frees what it made, returns its status. */
typedef rfm_status (*op_fn)(char *err, size_t errlen);

/* Fail each allocation of op in turn; returns the allocations of a full run. */
static long torture(const char *name, op_fn op)
{
    long n;
    for (n = 1;; n++) {
        char err[RFM_ERRLEN] = "";
        atomic_store(&count, 0);
        atomic_store(&failed, 0);
        long before = atomic_load(&live);
        atomic_store(&fail_at, n);
        rfm_status st = op(err, sizeof err);
        atomic_store(&fail_at, 0);
        long leaked = atomic_load(&live) - before;
        if (leaked)
            fail_msg("%s: allocation %ld failing: %ld allocations not freed (status %d: %s)", name,
                     n, leaked, (int)st, err);
        if (!atomic_load(&failed)) {
            if (st != RFM_OK)
                fail_msg("%s: fails without a failing allocation: %s", name, err);
            break;
        }
        if (st != RFM_ENOMEM || !err[0])
            fail_msg("%s: allocation %ld failing: status %d (%s), not RFM_ENOMEM with a "
                     "message",
                     name, n, (int)st, err);
    }
    printf("    %-18s %5ld allocations, each failed once: RFM_ENOMEM, nothing leaked\n", name,
           n - 1);
    return n - 1;
}

static char dir[64];
static char path_models[128], path_tx[128], path_campaign[128], path_customers[160];

/* ---- the operations ---------------------------------------------------- */

static rfm_status op_config(char *err, size_t errlen)
{
    rfm_config *c = (rfm_config *)1;
    rfm_status st = config_load("../config/rfm.yaml", &c, err, errlen);
    if (st != RFM_OK)
        assert_null(c);
    config_free(c);
    return st;
}

/* modelfile_open (manifest, every file's sha256), then one model's JSON
 * through its loader. */
static rfm_status load_model(const char *model, char *err, size_t errlen)
{
    json_t *man = NULL, *j = NULL;
    rfm_status st = modelfile_open(path_models, &man, err, errlen);
    if (st == RFM_OK)
        st = modelfile_load(path_models, man, model, &j, err, errlen);
    if (st == RFM_OK) {
        if (strcmp(model, "segments") == 0) {
            segments_model *m = NULL;
            st = segments_from_json(j, &m, err, errlen);
            assert_true((st == RFM_OK) == (m != NULL));
            segments_free(m);
        } else if (strcmp(model, "cltv") == 0) {
            cltv_model *m = NULL;
            st = cltv_from_json(j, &m, err, errlen);
            assert_true((st == RFM_OK) == (m != NULL));
            cltv_free(m);
        } else {
            churn_model *m = NULL;
            st = churn_from_json(j, &m, err, errlen);
            assert_true((st == RFM_OK) == (m != NULL));
            churn_free(m);
        }
    }
    json_decref(j);
    json_decref(man);
    return st;
}

static rfm_status op_segments(char *err, size_t errlen)
{
    return load_model("segments", err, errlen);
}
static rfm_status op_cltv(char *err, size_t errlen) { return load_model("cltv", err, errlen); }
static rfm_status op_churn(char *err, size_t errlen) { return load_model("churn", err, errlen); }

static rfm_status op_customers(char *err, size_t errlen)
{
    customers *c = NULL;
    rfm_status st = customers_load(path_customers, &c, err, errlen);
    assert_true((st == RFM_OK) == (c != NULL));
    customers_free(c);
    return st;
}

static rfm_status op_txn(char *err, size_t errlen)
{
    txn_options o = TXN_RETAIL_OPTIONS;
    txn_data *d = NULL;
    txn_report rep;
    rfm_status st = txn_read(path_tx, &o, NULL, NULL, &d, &rep, err, errlen);
    assert_true((st == RFM_OK) == (d != NULL));
    txn_free(d);
    return st;
}

static const campaign_feature FEATS[] = {{"recency", CAMPAIGN_NUMBER},
                                         {"channel", CAMPAIGN_CATEGORY}};
static const char *const ARMS[] = {"Mail"};
static const campaign_spec SPEC = {FEATS, 2, "segment", "None", ARMS, 1, "visit"};

static rfm_status op_campaign(char *err, size_t errlen)
{
    campaign_data *d = NULL;
    rfm_status st = campaign_read(path_campaign, &SPEC, &d, err, errlen);
    assert_true((st == RFM_OK) == (d != NULL));
    campaign_data_free(d);
    return st;
}

/* rfm-serve's whole start: contract text, manifest, every model, the FAISS
 * index and the per-row clusters. */
static rfm_status op_api(char *err, size_t errlen)
{
    api *a = NULL;
    rfm_status st = api_load(path_models, "../openapi.yaml", &a, err, errlen);
    assert_true((st == RFM_OK) == (a != NULL));
    api_free(a);
    return st;
}

static json_t *uplift_json, *encoding_json;
static json_t *uplift_kinds[2]; /* an X-learner and a rule */

/* The uplift model as rfm-serve loads it: forests, then the encoding. */
static rfm_status op_uplift(char *err, size_t errlen)
{
    uplift_model *m = NULL;
    campaign_encoding *e = NULL;
    rfm_status st = uplift_from_json(uplift_json, &m, err, errlen);
    for (int k = 0; k < 2 && st == RFM_OK; k++) {
        uplift_free(m);
        m = NULL;
        st = uplift_from_json(uplift_kinds[k], &m, err, errlen);
    }
    if (st == RFM_OK)
        st = campaign_encoding_from_json(encoding_json, &e, err, errlen);
    uplift_free(m);
    campaign_encoding_free(e);
    return st;
}

/* ---- fixtures ------------------------------------------------------------ */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rfmtest_oom_XXXXXX");
    assert_non_null(mkdtemp(dir));
    /* 80 customers over 2011, a third of them frequent buyers gone after
     * April: enough dropout that BG/NBD identifies every parameter (standard
     * errors of the log-parameters about 0.2, far from the line at 10) on
     * any CPU. */
    static char csv[1 << 18];
    size_t n = (size_t)snprintf(csv, sizeof csv,
                                "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,"
                                "UnitPrice,CustomerID,Country\n");
    int inv = 5000;
    for (int c = 0; c < 80; c++) {
        int months = c % 3 == 0 ? 4 : 12;
        for (int k = 0; k <= c % 6 + (c % 3 == 0 ? 4 : 0); k++)
            n += (size_t)snprintf(csv + n, sizeof csv - n,
                                  "%d,%c,Thing,%d,2011-%02d-%02d 10:00:00,%d.25,%d,UK\n", inv++,
                                  'A' + (c + k) % 7, 1 + (c + k) % 4, 1 + (c * 5 + k * 3) % months,
                                  1 + (c * 3 + k) % 28, 5 + (c * 7 + k) % 10, 13000 + c);
    }
    snprintf(path_tx, sizeof path_tx, "%s/tx.csv", dir);
    write_file(path_tx, csv);
    snprintf(path_models, sizeof path_models, "%s/models", dir);
    snprintf(path_customers, sizeof path_customers, "%s/customers.csv", path_models);
    char cmd[768];
    /* Every model, small: dimension 4 for 7 products, 1000 campaign rows. */
    snprintf(cmd, sizeof cmd,
             "sed -e 's/penalizer_coef: 0.0/penalizer_coef: 0.01/' -e 's/  dim: 32/  dim: 4/' "
             "../config/rfm.yaml > %s/c.yaml && "
             "zcat ../data/hillstrom.csv.gz | head -n 1001 > %s/hill.csv && "
             "../bin/rfm-train --quiet --config %s/c.yaml --transactions %s "
             "--campaign %s/hill.csv --models %s",
             dir, dir, dir, path_tx, dir, path_models);
    assert_int_equal(system(cmd), 0);

    /* A campaign log: 400 customers, a mail arm that lifts visits of the
     * web channel; and a small uplift model fitted on it. */
    n = (size_t)snprintf(csv, sizeof csv, "recency,channel,segment,visit\n");
    for (int i = 0; i < 400; i++)
        n += (size_t)snprintf(csv + n, sizeof csv - n, "%d,%s,%s,%d\n", 1 + i % 12,
                              i % 3 ? "Web" : "Phone", i % 2 ? "Mail" : "None",
                              (i % 2 && i % 3) ? i % 5 != 0 : i % 4 == 0);
    snprintf(path_campaign, sizeof path_campaign, "%s/campaign.csv", dir);
    write_file(path_campaign, csv);
    char err[RFM_ERRLEN];
    campaign_data *d;
    if (campaign_read(path_campaign, &SPEC, &d, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    uplift_params p;
    uplift_default_params(&p, UPLIFT_T_LEARNER);
    p.outcome.n_trees = p.effect.n_trees = 3;
    p.outcome.min_leaf = 20;
    uplift_model *m;
    if (uplift_fit(d->X, d->n, d->d, d->arm, 1, d->y, &p, &m, err, sizeof err) != RFM_OK ||
        uplift_to_json(m, &uplift_json, err, sizeof err) != RFM_OK ||
        campaign_encoding_to_json(d->enc, &encoding_json, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    uplift_free(m);
    const uplift_learner kinds[2] = {UPLIFT_X_LEARNER, UPLIFT_RULE};
    for (int k = 0; k < 2; k++) {
        p.learner = kinds[k];
        if (uplift_fit(d->X, d->n, d->d, d->arm, 1, d->y, &p, &m, err, sizeof err) != RFM_OK ||
            uplift_to_json(m, &uplift_kinds[k], err, sizeof err) != RFM_OK)
            fail_msg("%s", err);
        uplift_free(m);
    }
    campaign_data_free(d);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(uplift_json);
    json_decref(encoding_json);
    json_decref(uplift_kinds[0]);
    json_decref(uplift_kinds[1]);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_config(void **state)
{
    (void)state;
    assert_true(torture("config_load", op_config) > 100);
}

static void test_models(void **state)
{
    (void)state;
    assert_true(torture("segments model", op_segments) > 0);
    assert_true(torture("cltv model", op_cltv) > 0);
    assert_true(torture("churn model", op_churn) > 0);
    assert_true(torture("uplift model", op_uplift) > 0);
    assert_true(torture("customers table", op_customers) > 0);
    assert_true(torture("api_load", op_api) > 0);
}

static void test_data(void **state)
{
    (void)state;
    assert_true(torture("transactions", op_txn) > 0);
    assert_true(torture("campaign log", op_campaign) > 0);
}

int main(void)
{
    json_set_alloc_funcs(__wrap_malloc, __wrap_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_data),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
