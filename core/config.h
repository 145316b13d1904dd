/* config.h - config/rfm.yaml, read once and checked before any work.
 *
 * Each section has a validator that returns the reason it is unusable or
 * NULL (segments_check for the segments section); config_load runs them
 * all, so train/ and server/ share one set of rules and messages. Sections
 * other modules own (server, later models) stay available as JSON in
 * `root`, to be checked by their own validators.
 */
#ifndef RFM_CONFIG_H
#define RFM_CONFIG_H

#include <jansson.h>
#include <stdint.h>

#include "campaign.h"
#include "segments.h"
#include "status.h"
#include "txn.h"

typedef struct {
    char *host;              /* address to bind, e.g. 127.0.0.1 or 0.0.0.0 */
    int port;
    int threads;             /* worker threads; 0 = number of cores */
    int connection_limit;
    int per_address_limit;   /* connections from one client address; 0 = no limit */
    int timeout_s;           /* idle or stalled connections are dropped after it */
    int header_timeout_s;    /* a new connection's first request head must be in by then */
    size_t body_limit_bytes; /* larger bodies get 413 */
    size_t batch_limit;      /* customers per batch; more get 413 */
    int max_json_depth;      /* deeper request bodies get 400 */
    char **tokens_sha256;    /* accepted token digests (lower-case hex) */
    size_t ntokens;
    char *access_log;        /* file for the access log, NULL = stderr */
    char *openapi;           /* the contract, served and enforced */
    /* Operations (docs/operations.md). */
    int metrics_token_required; /* GET /metrics asks for a bearer token (0: open) */
    int drift_window;           /* recent customers behind rfm_input_psi (two halves) */
    double rate_per_second;     /* per token; 0 = no rate limit */
    double rate_burst;          /* bucket size in requests; >= 1 when limiting */
    char *tls_cert_file;        /* PEM certificate (chain); NULL with tls_key_file = HTTP */
    char *tls_key_file;         /* PEM private key */
    char *tls_priorities;       /* GnuTLS priority string: versions and cipher suites */
} server_options;

/* Reason the server options cannot be used, or NULL. */
const char *server_check(const server_options *o, char *buf, size_t len);

typedef struct {
    double penalizer_coef; /* lifetimes' L2 penalty, for both models */
    int holdout_days;      /* calibration/holdout check: the last N days */
    double horizon_days;   /* default horizon of /predict_cltv */
    double discount_rate;  /* default discount per 30 days */
} cltv_config;

typedef struct {
    int dim;           /* embedding dimension */
    uint64_t seed;
    long exact_max;    /* exact index up to this many customers, HNSW above */
    int hnsw_m, ef_search;
    int neighbors;     /* neighbours used by the hit-rate evaluation */
} embeddings_config;

typedef struct {
    char *campaign;             /* default campaign file (may be NULL) */
    campaign_feature *features; /* names borrow from the config tree */
    size_t n_features;
    const char **arms;
    campaign_spec spec;         /* points into the fields above */
    char *learner;              /* "auto", "t_learner" or "causal_forest" */
    double holdout;             /* share of customers held out for evaluation */
    uint64_t seed;
} uplift_config;

typedef struct {
    int cut_days;            /* label: no purchase in the last cut_days days */
    double lambda;           /* L2 penalty on the standardised weights */
    double test_share;       /* customers held out for the evaluation */
    uint64_t seed;
    double threshold_medium, threshold_high; /* risk levels */
    double counterfactual_threshold;         /* counterfactuals for p above it */
    int max_purchases;       /* counterfactual search bound */
} churn_config;

typedef struct {
    char *path; /* the file read, for messages */
    json_t *root;
    char *transactions; /* data.transactions (may be NULL) */
    char *models_dir;
    txn_options txn;    /* column names borrow from root */
    segments_options segments;
    cltv_config cltv;
    churn_config churn;
    embeddings_config embeddings;
    uplift_config uplift;
    server_options server;
} rfm_config;

/* Read and check a config file. On failure *out is NULL and err says
 * "file: key: reason". */
rfm_status config_load(const char *path, rfm_config **out, char *err, size_t errlen);
void config_free(rfm_config *c);

/* Parse "YYYY-MM-DD" into a day number; DATE_NONE when invalid. */
int32_t config_date(const char *s);

#endif
