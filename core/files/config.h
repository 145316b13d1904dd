/* config.h - config/rfm.yaml, read once and checked before any work.
 *
 * Each module owns the options of its section, their defaults and their
 * check (segments_check, cltv_check_options, churn_check_params,
 * embed_check_params and ann_check_params, campaign_check_spec and
 * uplift_check_params, server_check). config_load only maps YAML keys onto
 * those structs (checking types) and then runs every section's check, so a
 * bad value is refused at load, before any data is read, with
 * "file: section.key: reason"; train/ and server/ share one set of rules.
 */
#ifndef RFM_CONFIG_H
#define RFM_CONFIG_H

#include <jansson.h>
#include <stdint.h>

#include "ann.h"
#include "campaign.h"
#include "churn.h"
#include "cltv.h"
#include "embed.h"
#include "engagement.h"
#include "segments.h"
#include "state.h"
#include "state_redis.h"
#include "status.h"
#include "txn.h"
#include "uplift.h"

/* Token scopes (docs/security.md): bits of server_token.scopes. */
enum {
    RFM_SCOPE_SCORE = 1,     /* the scoring endpoints and by-id lookups */
    RFM_SCOPE_EVENTS = 2,    /* POST /events */
    RFM_SCOPE_ANALYTICS = 4, /* the web app's data and exports */
    RFM_SCOPE_ADMIN = 8,     /* erasure, /metrics when protected, routes declaring none */
    RFM_SCOPE_ALL = 15
};
/* The bit of the scope named by the len bytes at name, 0 when unknown. */
unsigned config_scope_bit(const char *name, size_t len);
/* The name of one scope bit ("score"), NULL when not a single known bit. */
const char *config_scope_name(unsigned bit);

/* A token of server.tokens: its digest, a name for logs and metrics, and
 * its scopes. */
typedef struct {
    char *sha256; /* 64 lower-case hex digits */
    char *name;   /* 1 to 32 of [A-Za-z0-9._-] */
    unsigned scopes;
} server_token;

typedef struct {
    char *host; /* address to bind, e.g. 127.0.0.1 or 0.0.0.0 */
    int port;
    int threads; /* worker threads; 0 = number of cores */
    int connection_limit;
    int per_address_limit;     /* connections from one client address; 0 = no limit */
    int timeout_s;             /* idle or stalled connections are dropped after it */
    int header_timeout_s;      /* a new connection's first request head must be in by then */
    size_t body_limit_bytes;   /* larger bodies get 413 */
    size_t header_limit_bytes; /* libmicrohttpd's memory a connection: larger heads get 431 */
    size_t batch_limit;        /* customers per batch; more get 413 */
    int max_json_depth;        /* deeper request bodies get 400 */
    char **tokens_sha256;      /* accepted token digests (lower-case hex) */
    size_t ntokens;
    server_token *named_tokens; /* server.tokens: digest, name and scopes each */
    size_t nnamed;
    char *access_log; /* file for the access log, NULL = stderr */
    char *openapi;    /* the contract, served and enforced */
    char *ui_assets;  /* the /ui/ app's folder (server/ui.h); NULL: found by default */
    /* Operations (docs/operations.md). */
    int metrics_token_required; /* GET /metrics asks for a bearer token (0: open) */
    int drift_window;           /* recent customers behind rfm_input_psi (two halves) */
    double rate_per_second;     /* per token; 0 = no rate limit */
    double rate_burst;          /* bucket size in requests; >= 1 when limiting */
    char *tls_cert_file;        /* PEM certificate (chain); NULL with tls_key_file = HTTP */
    char *tls_key_file;         /* PEM private key */
    char *tls_priorities;       /* GnuTLS priority string: versions and cipher suites */
    const char *id_key; /* the txn.id_key of config_id_key (never from the file): request ids
                           are pseudonymised with it; NULL: clear ids */
} server_options;

/* Reason the server options cannot be used, or NULL. */
const char *server_check(const server_options *o, char *buf, size_t len);

/* feed: the live feed of score changes (GET /feed, docs/events.md). */
typedef struct {
    int enabled;           /* 0: no scoring around batches, no sweep; GET /feed 503 */
    size_t buffer;         /* change records kept for readers to catch up (>= 1) */
    int max_readers;       /* GET /feed streams open at once; more get 503 */
    int sweep_seconds;     /* period of the re-scoring of every customer (and at
                              each UTC day change); 0 = no sweep */
    int heartbeat_seconds; /* a comment line on an idle stream this often */
    size_t published_max;  /* customers whose last published labels are kept */
} feed_options;

/* events.kafka: the consumer of events from Kafka and the producer of the
 * live feed's records (rfm-serve, docs/events.md); off while brokers is
 * NULL. */
typedef struct {
    char *brokers;           /* HOST:PORT[,...]; NULL: no consumer, no producer */
    char *topic;             /* the events, one per message; NULL: no consumer */
    char *group_id;          /* consumer group (default "rfm-serve") */
    char *dead_letter_topic; /* poison messages go there; NULL: only counted and logged */
    char *scores_topic;      /* the live feed's change records go there; NULL: none */
    int scores_queue_max;    /* records waiting for the broker, at most; more are dropped */
    long long ready_max_lag; /* /ready is 503 while the total lag is above it */
    int batch_max;           /* messages applied (and committed) together, at most */
    int batch_wait_ms;       /* longest wait for a batch to fill before applying it */
    char **properties;       /* librdkafka settings, name and value in turn (security, */
    size_t nproperties;      /* timeouts); applied after ours, so they win */
} kafka_options;

/* Reason the Kafka options cannot be used, or NULL. */
const char *kafka_check(const kafka_options *o, char *buf, size_t len);

/* privacy (docs/security.md). */
typedef struct {
    int pseudonymize_ids; /* customer ids replaced at ingest by their pseudonym */
    char *erasure_list;   /* the erased customers' pseudonyms, one a line: by default
                             state.path + ".erased" (NULL without a store) */
} privacy_options;

typedef struct {
    char *path; /* the file read, for messages */
    json_t *root;
    char *transactions; /* data.transactions (may be NULL): a file, "-" or a database
                           URL (source.h) */
    char *query;        /* data.query: the SELECT for a database URL, else NULL */
    char *currency;     /* data.currency: ISO 4217 code of the money amounts, or NULL */
    char *models_dir;
    txn_options txn; /* column names borrow from root */
    segments_options segments;
    cltv_options cltv;
    churn_params churn;
    embed_params embed;          /* embeddings: dim, seed, neighbors */
    ann_params ann;              /* embeddings: exact_max, hnsw_m, ef_search */
    char *campaign;              /* uplift.campaign, the default campaign file (may be NULL) */
    campaign_spec campaign_spec; /* uplift: treatment, control, arms, outcome, features;
                                    the arrays are owned here, names borrow from root */
    uplift_params uplift;        /* uplift: learner, holdout, seed */
    double uplift_value;         /* uplift.value: money per unit of outcome (default 1) */
    double uplift_cost;          /* uplift.cost: money per contact (default 0) */
    char *uplift_id_column;      /* uplift.id_column: the campaign file's customer-id column,
                                    for rfm-score --by uplift_gain (gains.h); NULL: none */
    server_options server;
    char *state_path;           /* state.path: the customer-state store (state.h) */
    state_options state;        /* state: synchronous, seen_ids_max, cache_mb; cancel_prefix
                                   borrows data.cancellation_prefix, types points to events */
    rstate_options state_redis; /* state: timeout_ms, seen_ids_per_customer (a redis://
                                   state.path); cancel_prefix and types as above */
    engagement_options events;  /* events: interaction kinds and engagement edges */
    kafka_options kafka;        /* events.kafka */
    feed_options feed;          /* feed: buffer, readers, sweep, heartbeat */
    privacy_options privacy;
} rfm_config;

/* Read and check a config file. On failure *out is NULL and err says
 * "file: key: reason". */
rfm_status config_load(const char *path, rfm_config **out, char *err, size_t errlen);
void config_free(rfm_config *c);

/* The pseudonymisation key, given by the program from the environment
 * (RFM_ID_KEY; never a config file): with privacy.pseudonymize_ids, key
 * must be at least 16 bytes and becomes c->txn.id_key (borrowed: it must
 * outlive c); otherwise it is ignored and ids stay clear. RFM_EINVAL with
 * the reason when the key is missing or short (it is never quoted). */
rfm_status config_id_key(rfm_config *c, const char *key, char *err, size_t errlen);

/* Parse "YYYY-MM-DD" into a day number; DATE_NONE when invalid. */
int32_t config_date(const char *s);

#endif
