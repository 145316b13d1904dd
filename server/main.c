/* rfm-serve - the scoring service: loads models/ once, serves JSON over
 * HTTP with token auth and validation against openapi.yaml.
 *
 * Exit status: 0 after a clean shutdown (SIGTERM or SIGINT: stop
 * accepting, finish requests in flight), 1 when models or the contract
 * cannot be loaded or the port cannot be bound, 2 on bad usage or config.
 */
#include <getopt.h>
#include <cblas.h>
#include <gsl/gsl_errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <errno.h>
#include <unistd.h>

#include <faiss/c_api/utils/distances_c.h>

#include "api.h"
#include "config.h"
#include "date.h"
#include "erasure.h"
#include "http.h"
#include "kafka.h"
#include "live.h"
#include "livefeed.h"
#include "oas.h"
#include "ops.h"
#include "ui.h"

/* The models being served, swapped on SIGHUP. */
typedef struct {
    pthread_mutex_t mu;
    api *current;
} holder;

static void *acquire(void *ctx, void **user, const http_route **routes, size_t *nroutes)
{
    holder *h = ctx;
    pthread_mutex_lock(&h->mu);
    api *a = h->current;
    api_retain(a);
    pthread_mutex_unlock(&h->mu);
    *user = a;
    *routes = api_routes(a, nroutes);
    return a;
}

static void release(void *ctx, void *lease)
{
    (void)ctx;
    api_release(lease);
}

/* With epoll a connection costs a file descriptor and a little memory:
 * raise the open-file limit (up to the hard limit) to fit
 * server.connection_limit, or lower that to what the system allows. */
static void fit_fd_limit(server_options *o)
{
    const rlim_t spare = 256; /* models, logs, listening and epoll sockets, threads */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)o->connection_limit + spare;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        int fit = (int)(rl.rlim_cur > 2 * spare ? rl.rlim_cur - spare : rl.rlim_cur / 2);
        fprintf(stderr,
                "rfm-serve: warning: open files are limited to %llu (ulimit -n, hard limit "
                "%llu): server.connection_limit lowered from %d to %d\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
                o->connection_limit, fit > 0 ? fit : 1);
        o->connection_limit = fit > 0 ? fit : 1;
    }
}

/* The /ui/ app's files from dir (--ui or server.ui_assets), or when dir is
 * NULL from the default folders (ui.h): a folder named but unusable stops
 * the start; none found by default serves /ui/ as 404, with a warning.
 * Returns 0 or 1 after printing why. */
static int load_ui(const char *dir, ui_assets **ui)
{
    char exe[4096], found[4200], err[RFM_ERRLEN];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    const char *use = dir ? dir : ui_default_dir(n > 0 ? exe : ".", found, sizeof found);
    if (!use) {
        fprintf(stderr, "rfm-serve: warning: no web app files (build/ui-assets: run make): "
                        "/ui/ answers 404\n");
        return 0;
    }
    if (ui_load(use, ui, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-serve: %s\n", err);
        return 1;
    }
    size_t bytes, files = ui_count(*ui, &bytes);
    fprintf(stderr, "rfm-serve: web app at /ui/ from %s: %zu files, %zu bytes compressed\n", use,
            files, bytes);
    return 0;
}

/* /metrics of the store, the live feed, when configured, the Kafka
 * consumer and the producer of the feed's records, and the access log. */
typedef struct {
    live *live;
    livefeed *feed;
    kafka *kafka;
    kafka_scores *scores;
    alog *log;
} extra_metrics;

static void state_metrics(void *ctx, FILE *f)
{
    const extra_metrics *m = ctx;
    if (m->live)
        live_metrics(m->live, f);
    if (m->feed)
        livefeed_metrics(m->feed, f);
    if (m->kafka)
        kafka_metrics(m->kafka, f);
    if (m->scores)
        kafka_scores_metrics(m->scores, f);
    if (m->log)
        alog_metrics(m->log, f);
}

static const char *kafka_not_ready(void *ctx, char *buf, size_t len)
{
    long long lag, max;
    if (kafka_ready(ctx, &lag, &max))
        return NULL;
    snprintf(buf, len,
             "the Kafka consumer is %lld messages behind, more than events.kafka.ready_max_lag "
             "(%lld)",
             lag, max);
    return buf;
}

/* Replace *dst (owned) by a copy of src; 0 when out of memory. */
static int set_str(char **dst, const char *src)
{
    char *d = strdup(src);
    if (!d)
        return 0;
    free(*dst);
    *dst = d;
    return 1;
}

/* Whether the models' ids are what this config makes of request ids:
 * pseudonyms under the same key (the manifest's id_key_check), or clear
 * ids both. 0, or 1 with the reason in err. */
static int privacy_mismatch(const json_t *manifest, const rfm_config *cfg, char *err, size_t len)
{
    const json_t *p = json_object_get(manifest, "privacy");
    int trained = json_is_true(json_object_get(p, "pseudonymized_ids"));
    const char *check = json_string_value(json_object_get(p, "id_key_check"));
    const char *key = cfg->txn.id_key;
    if (trained != (key != NULL)) {
        snprintf(err, len,
                 "the models were trained with %s ids but privacy.pseudonymize_ids is %s: "
                 "serve with the config they were trained with, or train again",
                 trained ? "pseudonymous" : "clear", key ? "true" : "false");
        return 1;
    }
    if (key) {
        char mine[TXN_PSEUDONYM_LEN + 1];
        txn_pseudonym(key, strlen(key), "rfm-id-key-check", 16, mine);
        if (!check || strcmp(check, mine) != 0) {
            snprintf(err, len,
                     "RFM_ID_KEY is not the key the models were trained with (the manifest's "
                     "privacy.id_key_check differs): request ids would match no customer");
            return 1;
        }
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: rfm-serve [--config FILE] [--host ADDR] [--port N] [--models DIR]\n"
               "                 [--state PATH] [--ui DIR] [--kafka-brokers HOST:PORT[,...]\n"
               "                 --kafka-topic NAME [--kafka-group ID]]\n"
               "\n"
               "Serves the models in DIR (default from the config: models/) over HTTP.\n"
               "Tokens: RFM_API_TOKENS=tok1,tok2 in the environment (tok1:score+events\n"
               "limits tok1 to those scopes) and/or server.tokens and server.tokens_sha256\n"
               "in the config (docs/security.md). SIGTERM or SIGINT stops it cleanly.\n"
               "\n"
               "  --config FILE   configuration (default config/rfm.yaml)\n"
               "  --host ADDR     override server.host (0.0.0.0: every interface)\n"
               "  --port N        override server.port (0 = any free port)\n"
               "  --models DIR    override models_dir\n"
               "  --state PATH    the customer-state store (default state.path); seeded from\n"
               "                  the models' training file when it is newer (docs/events.md);\n"
               "                  redis://HOST:PORT[/DB]: kept in Redis, shared by replicas;\n"
               "                  redis+unix:///PATH/redis.sock[?db=N]: the same, a local\n"
               "                  Redis through its Unix socket\n"
               "  --ui DIR        the /ui/ web app's files (default server.ui_assets, else\n"
               "                  BIN/../ui-assets, BIN/../build/ui-assets or build/ui-assets)\n"
               "  --kafka-brokers HOST:PORT[,...]  consume events from Kafka into the store\n"
               "                  (events.kafka.brokers; docs/events.md)\n"
               "  --kafka-topic NAME  the topic of the events (events.kafka.topic)\n"
               "  --kafka-group ID    the consumer group (events.kafka.group_id, rfm-serve)\n"
               "  --help          this text\n");
}

/* The uplift gains of the exports (uplift.id_column, docs/exports.md):
 * a failure leaves by=uplift_gain answering 503, with a warning. */
static void load_gains(api *a, const rfm_config *cfg, const char *when)
{
    if (!cfg->uplift_id_column || !cfg->campaign)
        return;
    char err[RFM_ERRLEN];
    size_t n = 0;
    if (api_load_gains(a, cfg->campaign, cfg->uplift_id_column, cfg->uplift_value, cfg->uplift_cost,
                       &n, err, sizeof err) != RFM_OK)
        fprintf(stderr, "rfm-serve: %swarning: no uplift gains for the exports: %s\n", when, err);
    else
        fprintf(stderr, "rfm-serve: %suplift gains of %zu customers from %s\n", when, n,
                cfg->campaign);
}

/* live_open on a thread of its own (main: while the models load). */
typedef struct {
    const char *path;
    const rfm_config *cfg;
    live *lv;
    rfm_status st;
    char err[RFM_ERRLEN];
} opener;

static void *open_store(void *arg)
{
    opener *op = arg;
    op->st = live_open(op->path, &op->cfg->state, &op->cfg->state_redis, &op->lv, op->err,
                       sizeof op->err);
    return NULL;
}

/* The main thread, which takes SIGHUP, SIGTERM and SIGINT with sigwait once
 * serving. A signal that lands on another thread goes on to it (blocked
 * there: pending until sigwait). One that lands on it while it does not
 * block it (SIGTERM or SIGINT during start-up) does what it did before
 * there was a handler: it ends the process. Async-signal-safe calls only. */
static pid_t main_tid;

static void forward_signal(int sig)
{
    int saved = errno;
    if ((pid_t)syscall(SYS_gettid) != main_tid) {
        syscall(SYS_tgkill, getpid(), main_tid, sig);
        errno = saved;
        return;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    const char *config_path = "config/rfm.yaml", *models_dir = NULL, *host = NULL;
    const char *state_path = NULL, *ui_dir = NULL;
    const char *kafka_brokers = NULL, *kafka_topic = NULL, *kafka_group = NULL;
    long port = -1;
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"port", required_argument, 0, 'p'},
                                         {"host", required_argument, 0, 'H'},
                                         {"models", required_argument, 0, 'm'},
                                         {"state", required_argument, 0, 's'},
                                         {"kafka-brokers", required_argument, 0, 'K'},
                                         {"kafka-topic", required_argument, 0, 'T'},
                                         {"kafka-group", required_argument, 0, 'G'},
                                         {"ui", required_argument, 0, 'u'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    /* Signals are taken by sigwait in this thread once serving (below).
     * SIGHUP (reload) is blocked from here on, so every thread made later
     * inherits the block; but OpenBLAS starts a thread before main, with
     * nothing blocked, and the kernel hands a process signal to any thread
     * not blocking it when this one is not in sigwait: a SIGHUP would have
     * killed the daemon (or, under nohup, been lost) and a SIGTERM would
     * have ended it without finishing requests in flight. So each of the
     * three has a handler that sends it on to this thread (forward_signal). */
    main_tid = (pid_t)syscall(SYS_gettid);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, NULL);
    int ch;
    while ((ch = getopt_long(argc, argv, "c:p:m:H:s:u:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': config_path = optarg; break;
        case 'm': models_dir = optarg; break;
        case 'H': host = optarg; break;
        case 's': state_path = optarg; break;
        case 'K': kafka_brokers = optarg; break;
        case 'T': kafka_topic = optarg; break;
        case 'G': kafka_group = optarg; break;
        case 'u': ui_dir = optarg; break;
        case 'p': {
            char *end;
            port = strtol(optarg, &end, 10);
            if (*end || port < 0 || port > 65535) {
                fprintf(stderr, "rfm-serve: --port must be from 0 to 65535\n");
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    gsl_set_error_handler_off();
    /* Process-wide numeric libraries, set once before any worker thread:
     * one-query exact searches through BLAS (vectorised), and BLAS on the
     * calling thread only, so one request never takes every core. */
    faiss_set_distance_compute_blas_threshold(1);
    openblas_set_num_threads(1);
    char err[RFM_ERRLEN];
    rfm_config *cfg;
    if (config_load(config_path, &cfg, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-serve: %s\n", err);
        return 2;
    }
    if (port >= 0)
        cfg->server.port = (int)port;
    if (host) {
        char *h2 = strdup(host);
        if (!h2) {
            config_free(cfg);
            return 1;
        }
        free(cfg->server.host);
        cfg->server.host = h2;
    }
    if (config_id_key(cfg, getenv("RFM_ID_KEY"), err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-serve: %s\n", err);
        config_free(cfg);
        return 2;
    }
    cfg->server.id_key = cfg->txn.id_key;
    if ((kafka_brokers && !set_str(&cfg->kafka.brokers, kafka_brokers)) ||
        (kafka_topic && !set_str(&cfg->kafka.topic, kafka_topic)) ||
        (kafka_group && !set_str(&cfg->kafka.group_id, kafka_group))) {
        config_free(cfg);
        return 1;
    }
    char why[256];
    if (kafka_check(&cfg->kafka, why, sizeof why)) {
        fprintf(stderr, "rfm-serve: events.kafka (or --kafka-*): %s\n", why);
        config_free(cfg);
        return 2;
    }
    if (!models_dir)
        models_dir = cfg->models_dir;
    if (!state_path)
        state_path = cfg->state_path; /* NULL: state.path: null, no store */
    if (cfg->kafka.brokers && cfg->kafka.topic && !state_path) {
        fprintf(stderr, "rfm-serve: events from Kafka need the customer-state store: give "
                        "--state PATH (or state.path in the config)\n");
        config_free(cfg);
        return 2;
    }
    fit_fd_limit(&cfg->server);

    int rc = 1;
    oas_spec *spec = NULL;
    api *a = NULL;
    http_tokens tokens = {0};
    http_server *srv = NULL;
    ops *o = NULL;
    live *lv = NULL;
    livefeed *lf = NULL;
    kafka *kc = NULL;
    kafka_scores *ks = NULL;
    extra_metrics em = {0};
    ui_assets *ui = NULL;
    erasure *erased = NULL;
    FILE *log = stderr;
    alog *alg = NULL;
    /* The erasure list: consulted by lookups, and by the store's open and
     * seeding below. */
    if (cfg->privacy.erasure_list) {
        if (erasure_open(cfg->privacy.erasure_list, &erased, err, sizeof err) != RFM_OK) {
            fprintf(stderr, "rfm-serve: privacy.erasure_list: %s\n", err);
            goto out;
        }
        cfg->txn.erased = erased;
        cfg->txn.is_erased = cfg->txn.id_key ? erasure_txn_pseudonymous : erasure_txn_clear;
        /* The store drops listed customers at open and ignores their events. */
        cfg->state.is_erased = cfg->txn.is_erased;
        cfg->state.erased = erased;
    }
    if (state_path && !rstate_is_url(state_path)) {
        /* The store's folder (state/ by default) is made if missing, one level. */
        char folder[4096];
        snprintf(folder, sizeof folder, "%s", state_path);
        char *slash = strrchr(folder, '/');
        if (slash && slash != folder) {
            *slash = '\0';
            if (mkdir(folder, 0755) != 0 && errno != EEXIST) {
                fprintf(stderr, "rfm-serve: state: cannot make the folder %s: %s\n", folder,
                        strerror(errno));
                goto out;
            }
        }
    }
    /* The store opens on a thread of its own while the models load: with a
     * million customers each is about half of the time to ready. */
    opener op = {state_path, cfg, NULL, RFM_OK, ""};
    pthread_t opener_thread;
    int opening = state_path && pthread_create(&opener_thread, NULL, open_store, &op) == 0;
    if (state_path && !opening)
        open_store(&op);
    int models_ok = oas_load(cfg->server.openapi, &spec, err, sizeof err) == RFM_OK &&
                    http_tokens_init(&tokens, &cfg->server, getenv("RFM_API_TOKENS"), err,
                                     sizeof err) == RFM_OK &&
                    api_load(models_dir, cfg->server.openapi, &a, err, sizeof err) == RFM_OK &&
                    api_check_contract(a, spec, cfg->server.openapi, err, sizeof err) == RFM_OK &&
                    !privacy_mismatch(api_manifest(a), cfg, err, sizeof err) &&
                    ops_new(&cfg->server, spec, &o, err, sizeof err) == RFM_OK &&
                    ops_set_models(o, api_manifest(a), api_customers(a), err, sizeof err) == RFM_OK;
    if (opening)
        pthread_join(opener_thread, NULL);
    lv = op.lv;
    if (!models_ok) {
        fprintf(stderr, "rfm-serve: %s\n", err);
        goto out;
    }
    if (state_path && op.st != RFM_OK) {
        fprintf(stderr, "rfm-serve: %s\n", op.err);
        goto out;
    }
    if (load_ui(ui_dir ? ui_dir : cfg->server.ui_assets, &ui) != 0)
        goto out;
    ops_set_ui(o, ui);
    if (erased)
        api_set_erasure(a, erased, cfg->txn.id_key != NULL);
    load_gains(a, cfg, "");
    if (state_path) {
        int seeded = 0;
        if (live_seed(lv, api_manifest(a), &cfg->txn, &seeded, err, sizeof err) != RFM_OK) {
            fprintf(stderr, "rfm-serve: %s\n", err);
            goto out;
        }
        char day[11] = "none";
        if (live_snapshot_day(lv) != DATE_NONE)
            date_format(live_snapshot_day(lv), day);
        /* A Redis password stays out of the log. */
        const char *at = rstate_is_url(state_path) ? strchr(state_path, '@') : NULL;
        int scheme = at ? (int)(strstr(state_path, "://") + 3 - state_path) : 0;
        fprintf(stderr, "rfm-serve: state %.*s%s%s: %s (snapshot %s)\n", scheme, state_path,
                at ? ":***" : "", at ? at : state_path,
                seeded ? "seeded from the training data" : "opened", day);
        api_set_live(a, lv, cfg->server.batch_limit, &cfg->events);
    }
    if (tokens.n == 0)
        fprintf(stderr,
                "rfm-serve: warning: no tokens (set RFM_API_TOKENS or "
                "server.tokens or server.tokens_sha256): every scoring request will get 401\n");
    if (cfg->server.access_log && !(log = fopen(cfg->server.access_log, "a"))) {
        fprintf(stderr, "rfm-serve: cannot open access log %s\n", cfg->server.access_log);
        log = stderr;
        goto out;
    }
    /* Signals go to this thread only: block them before the pool starts. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    holder h = {PTHREAD_MUTEX_INITIALIZER, a};
    http_provider prov = {acquire, release, &h, NULL, api_respond};
    /* The live feed (GET /feed): fed by the store's batches and sweep. */
    if (livefeed_new(&cfg->feed, cfg->feed.enabled ? lv : NULL, &prov, &lf, err, sizeof err) !=
        RFM_OK) {
        fprintf(stderr, "rfm-serve: %s\n", err);
        goto out;
    }
    prov.stream = livefeed_stream(lf);
    /* The feed's records to Kafka: subscribed before anything publishes. */
    if (cfg->kafka.brokers && cfg->kafka.scores_topic) {
        if (!lv || !cfg->feed.enabled) {
            fprintf(stderr, "rfm-serve: events.kafka.scores_topic: the live feed makes the "
                            "records: it needs the customer-state store (--state PATH) and "
                            "feed.enabled: true\n");
            rc = 2;
            goto out;
        }
        if (kafka_scores_start(&cfg->kafka, livefeed_feed(lf), &ks, err, sizeof err) != RFM_OK) {
            fprintf(stderr, "rfm-serve: %s\n", err);
            goto out;
        }
        fprintf(stderr, "rfm-serve: the live feed's records to %s on %s\n", cfg->kafka.scores_topic,
                cfg->kafka.brokers);
    }
    /* Kafka after the feed: its batches go through the feed's hook. */
    if (lv && cfg->kafka.brokers && cfg->kafka.topic) {
        if (kafka_start(&cfg->kafka, lv, &kc, err, sizeof err) != RFM_OK) {
            fprintf(stderr, "rfm-serve: %s\n", err);
            goto out;
        }
        api_set_not_ready(a, kafka_not_ready, kc);
        fprintf(stderr, "rfm-serve: consuming %s from %s (group %s)\n", cfg->kafka.topic,
                cfg->kafka.brokers, cfg->kafka.group_id);
    }
    /* The access log: lines gathered per thread, written by its own thread. */
    if (alog_open(fileno(log), &alg, err, sizeof err) != RFM_OK) {
        fprintf(stderr, "rfm-serve: %s\n", err);
        goto out;
    }
    em = (extra_metrics){lv, lf, kc, ks, alg};
    ops_set_extra(o, state_metrics, &em);
    int bound;
    if (http_start(&cfg->server, spec, &tokens, &prov, o, alg, &srv, &bound, err, sizeof err) !=
        RFM_OK) {
        fprintf(stderr, "rfm-serve: %s\n", err);
        goto out;
    }
    char desc[256];
    api_describe(a, desc, sizeof desc);
    fprintf(stderr, "rfm-serve: listening on %s://%s:%d (%s)\n",
            cfg->server.tls_cert_file ? "https" : "http", cfg->server.host, bound, desc);
    int sig;
    for (;;) {
        sigwait(&set, &sig);
        if (sig != SIGHUP)
            break;
        /* Hot reload: load and check the new models completely first; only
         * then swap. Requests in flight finish on the old ones, which are
         * freed by the last of them. A broken models/ changes nothing. */
        api *fresh = NULL;
        /* Metrics follow the new models: versions, and a new drift
         * reference with an empty window. */
        int seeded = 0;
        if (api_load(models_dir, cfg->server.openapi, &fresh, err, sizeof err) != RFM_OK ||
            privacy_mismatch(api_manifest(fresh), cfg, err, sizeof err) ||
            (lv &&
             live_seed(lv, api_manifest(fresh), &cfg->txn, &seeded, err, sizeof err) != RFM_OK) ||
            ops_set_models(o, api_manifest(fresh), api_customers(fresh), err, sizeof err) !=
                RFM_OK) {
            api_release(fresh);
            ops_reload_done(o, 0);
            fprintf(stderr,
                    "rfm-serve: SIGHUP: reload refused, still serving the old models: "
                    "%s\n",
                    err);
            continue;
        }
        api_set_erasure(fresh, erased, cfg->txn.id_key != NULL);
        load_gains(fresh, cfg, "SIGHUP: ");
        if (lv) {
            api_set_live(fresh, lv, cfg->server.batch_limit, &cfg->events);
            if (kc)
                api_set_not_ready(fresh, kafka_not_ready, kc);
            if (seeded)
                fprintf(stderr, "rfm-serve: SIGHUP: state re-seeded from the new training data\n");
        }
        pthread_mutex_lock(&h.mu);
        api *old = h.current;
        h.current = fresh;
        pthread_mutex_unlock(&h.mu);
        api_release(old);
        ops_reload_done(o, 1);
        api_describe(fresh, desc, sizeof desc);
        fprintf(stderr, "rfm-serve: SIGHUP: reloaded %s (%s)\n", models_dir, desc);
    }
    a = h.current; /* released below, after the server stops */
    fprintf(stderr, "rfm-serve: %s: finishing requests in flight\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    guard_counts gc = http_guard_counts(srv);
    fprintf(stderr,
            "rfm-serve: connections closed early: %lu at the head deadline "
            "(server.header_timeout_s), %lu kept alive past server.timeout_s, %lu to make room "
            "near server.connection_limit\n",
            gc.head, gc.idle, gc.evicted);
    if (kc) {
        fprintf(stderr, "rfm-serve: kafka: committing what is durable and leaving the group\n");
        kafka_stop(kc);
        kc = NULL;
    }
    http_stop(srv, 30);
    srv = NULL;
    /* Every request has completed: the log's last lines are written. */
    alog_counts lc = alog_close(alg);
    alg = NULL;
    if (lc.dropped)
        fprintf(stderr,
                "rfm-serve: access log: %llu lines written, %llu dropped (the file did not take "
                "them in time)\n",
                lc.written, lc.dropped);
    fprintf(stderr, "rfm-serve: stopped\n");
    rc = 0;
out:
    (void)alog_close(alg); /* a start that failed: nothing was logged */
    if (log && log != stderr)
        fclose(log);
    kafka_stop(kc);               /* first: its thread applies events through the feed's hook */
    livefeed_free(lf);            /* before the models and the store: its sweep reads them */
    kafka_scores_stop(ks, 10000); /* after: the feed publishes no more */
    api_release(a);
    live_close(lv);
    erasure_free(erased);
    ops_free(o);
    ui_free(ui);
    http_tokens_free(&tokens);
    oas_free(spec);
    config_free(cfg);
    return rc;
}
