/* fuzz_request.c - libFuzzer target: the body stage of every scoring POST.
 *
 * The first input byte picks the route (modulo the five POST endpoints),
 * the rest is the request body. http_answer_json runs what rfm-serve runs
 * once the headers are accepted: depth limit, strict JSON, batch limit,
 * OpenAPI validation and the real handler of server/api.c, scoring with
 * real models. Besides the sanitizers, the target traps when the reply
 * breaks the contract: a 500, a status the operation does not declare, a
 * body that does not match the response schema of its status, a NaN or
 * infinite number, or a second identical request answered differently
 * (handlers must be pure on read-only models).
 *
 * Set-up, once per process (LLVMFuzzerInitialize), from the repository
 * root: the server options of $RFM_FUZZ_CONFIG (config/rfm.yaml), the
 * contract they name, and the models of $RFM_FUZZ_MODELS (build/fuzz/models,
 * trained by `make fuzz`). Valid bodies also feed the drift windows of
 * server/ops.c, and every 4096th input renders /metrics from them.
 */
#include <cblas.h>
#include <faiss/c_api/utils/distances_c.h>
#include <gsl/gsl_errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "http.h"
#include "oas.h"
#include "ops.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const POSTS[] = {"/segment",
                                    "/predict_cltv",
                                    "/predict_churn",
                                    "/similar_customers",
                                    "/uplift_score",
                                    "/segment/batch",
                                    "/predict_cltv/batch",
                                    "/predict_churn/batch",
                                    "/similar_customers/batch",
                                    "/uplift_score/batch"};
#define NPOSTS (sizeof POSTS / sizeof *POSTS)

/* Read-only after LLVMFuzzerInitialize; reachable, so not leaks. */
static rfm_config *cfg;
static oas_spec *spec;
static api *models;
static ops *metrics; /* drift windows fed by every valid body, as in rfm-serve */
static const http_route *route[NPOSTS];

static void die(const char *what, const char *err)
{
    fprintf(stderr, "fuzz_request: %s: %s\n", what, err);
    exit(2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    gsl_set_error_handler_off();
    /* As rfm-serve sets them before its workers start. */
    faiss_set_distance_compute_blas_threshold(1);
    openblas_set_num_threads(1);
    const char *config_path = getenv("RFM_FUZZ_CONFIG");
    const char *models_dir = getenv("RFM_FUZZ_MODELS");
    if (!config_path)
        config_path = "config/rfm.yaml";
    if (!models_dir)
        models_dir = "build/fuzz/models";
    char err[RFM_ERRLEN];
    if (config_load(config_path, &cfg, err, sizeof err) != RFM_OK)
        die("config", err);
    if (oas_load(cfg->server.openapi, &spec, err, sizeof err) != RFM_OK)
        die("contract", err);
    if (api_load(models_dir, cfg->server.openapi, &models, err, sizeof err) != RFM_OK)
        die("models (train them with `make fuzz-models`)", err);
    if (ops_new(&cfg->server, spec, &metrics, err, sizeof err) != RFM_OK ||
        ops_set_models(metrics, api_manifest(models), api_customers(models), err, sizeof err) !=
            RFM_OK)
        die("metrics", err);
    size_t n;
    const http_route *rt = api_routes(models, &n);
    for (size_t k = 0; k < NPOSTS; k++) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(rt[i].method, "POST") == 0 && strcmp(rt[i].path, POSTS[k]) == 0)
                route[k] = &rt[i];
        if (!route[k] || !oas_operation(spec, "post", POSTS[k]))
            die(POSTS[k], "no such POST route in the server or in the contract");
    }
    return 0;
}

/* Every number of a reply must be finite (JSON has no NaN or Inf). */
static int all_finite(const json_t *j)
{
    size_t i;
    const char *key;
    const json_t *v;
    switch (json_typeof(j)) {
    case JSON_REAL: return isfinite(json_real_value(j));
    case JSON_ARRAY: json_array_foreach(j, i, v) if (!all_finite(v)) return 0; return 1;
    case JSON_OBJECT:
        json_object_foreach((json_t *)(uintptr_t)j, key, v) if (!all_finite(v)) return 0;
        return 1;
    default: return 1;
    }
}

static void fail(const char *path, int status, const json_t *reply, const char *why)
{
    char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
    fprintf(stderr, "fuzz_request: POST %s: %d: %s\n  reply: %.2000s\n", path, status, why,
            text ? text : "(none)");
    free(text);
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static unsigned long runs;
    if (++runs % 4096 == 0) {
        size_t n;
        const char *type;
        char *page = ops_page(metrics, OPS_METRICS, 1, &n, &type);
        if (!page || strlen(page) != n || !strstr(page, "rfm_input_psi{feature=\"recency\"}"))
            fail("/metrics", 200, NULL, "metrics page missing or without drift");
        free(page);
    }
    size_t k = data[0] % NPOSTS;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    json_t *reply = NULL, *again = NULL;
    int status = http_answer_json(&cfg->server, spec, metrics, route[k], models, body, len, &reply);
    if (!reply)
        fail(POSTS[k], status, NULL, "no reply");
    if (status == 500)
        fail(POSTS[k], status, reply, "internal error");
    /* The reply is held to the operation that answers the body: a batch in
     * the deprecated form sent to a single operation is answered by its
     * /batch twin. */
    json_t *parsed = json_loadb(body, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);
    char buf[160];
    const char *answering = http_operation_path(route[k], parsed, buf, sizeof buf);
    const json_t *schema =
        oas_response_schema(spec, oas_operation(spec, "post", answering), status);
    json_decref(parsed);
    if (!schema)
        fail(POSTS[k], status, reply, "status not declared in openapi.yaml");
    oas_violation v[4];
    size_t nv = oas_validate(spec, schema, reply, v, 4);
    if (nv > 0) {
        fprintf(stderr, "fuzz_request: first violation: %s: %s\n", v[0].pointer, v[0].message);
        fail(POSTS[k], status, reply, "reply does not match the response schema");
    }
    if (!all_finite(reply))
        fail(POSTS[k], status, reply, "non-finite number in the reply");
    char *text = json_dumps(reply, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!text)
        fail(POSTS[k], status, reply, "reply cannot be serialised");
    free(text);
    int status2 =
        http_answer_json(&cfg->server, spec, metrics, route[k], models, body, len, &again);
    if (status2 != status || !json_equal(reply, again))
        fail(POSTS[k], status, reply, "a second identical request got a different reply");
    json_decref(again);
    json_decref(reply);
    return 0;
}
