/* live.c - group commit, seeding and counters of the customer state
 * (live.h). Reads go straight to the store: state_get takes only its read
 * lock, which the writer holds while it changes memory after a commit,
 * never across the disk write and its fsync; in Redis a read takes its
 * thread's connection of a pool (an rstate is one connection). */
#include "live.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "date.h"
#include "event.h"
#include "source.h"
#include "state_redis.h"
#include "monotime.h"

/* Events one commit takes at most: past it, the batches still waiting go
 * into the next commit (a bound on the memory of one transaction). */
#define MAX_COMMIT_EVENTS 100000

static const double LAT_BUCKETS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                     0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
#define NLAT (sizeof LAT_BUCKETS / sizeof *LAT_BUCKETS)

typedef struct {
    uint64_t bucket[NLAT + 1]; /* atomic */
    uint64_t sum_ns;           /* atomic */
} histogram;

/* ---- the store: SQLite (state.h) or Redis (state_redis.h) ------------ */

/* The same calls on either store, through an opaque handle: state.path
 * (or --state) that is a redis:// URL picks Redis, anything else SQLite. */
typedef struct {
    int32_t (*snapshot_day)(const void *st);
    rfm_status (*seed)(void *st, const txn_data *d, int *seeded, char *err, size_t errlen);
    rfm_status (*apply)(void *st, const state_event *ev, size_t n, state_result *res, char *err,
                        size_t errlen);
    rfm_status (*get)(void *st, const char *id, int32_t asof, state_customer *out, char *err,
                      size_t errlen);
    rfm_status (*count)(void *st, uint64_t *n, char *err, size_t errlen);
    void (*close)(void *st);
    size_t max_commit; /* events one commit takes at most */
} store_ops;

static int32_t sq_snapshot_day(const void *st) { return state_snapshot_day(st); }
static rfm_status sq_seed(void *st, const txn_data *d, int *seeded, char *err, size_t errlen)
{
    return state_seed(st, d, seeded, err, errlen);
}
static rfm_status sq_apply(void *st, const state_event *ev, size_t n, state_result *res, char *err,
                           size_t errlen)
{
    return state_apply(st, ev, n, res, err, errlen);
}
static rfm_status sq_get(void *st, const char *id, int32_t asof, state_customer *out, char *err,
                         size_t errlen)
{
    return state_get(st, id, asof, out, err, errlen);
}
static rfm_status sq_count(void *st, uint64_t *n, char *err, size_t errlen)
{
    return state_count(st, n, err, errlen);
}
static void sq_close(void *st) { state_close(st); }
static const store_ops SQLITE_OPS = {sq_snapshot_day, sq_seed,  sq_apply,         sq_get,
                                     sq_count,        sq_close, MAX_COMMIT_EVENTS};

static int32_t rd_snapshot_day(const void *st) { return rstate_snapshot_day(st); }
static rfm_status rd_seed(void *st, const txn_data *d, int *seeded, char *err, size_t errlen)
{
    return rstate_seed(st, d, seeded, err, errlen);
}
static rfm_status rd_apply(void *st, const state_event *ev, size_t n, state_result *res, char *err,
                           size_t errlen)
{
    return rstate_apply(st, ev, n, res, err, errlen);
}
static rfm_status rd_get(void *st, const char *id, int32_t asof, state_customer *out, char *err,
                         size_t errlen)
{
    return rstate_get(st, id, asof, out, err, errlen);
}
static rfm_status rd_count(void *st, uint64_t *n, char *err, size_t errlen)
{
    return rstate_count(st, n, err, errlen);
}
static void rd_close(void *st) { rstate_close(st); }
/* Events one commit merges at most in Redis. A script holds the server
 * (about 50 us of Redis CPU an event measured, bench/bench_redis.sh), and
 * every replica's reads wait behind it; merged up to 10,000 events a script
 * took over a second on a loaded machine, past state.timeout_ms: 503 for
 * batches that had in fact committed. 2,000 keeps a script near 0.1 s;
 * merging more saves little (a round trip a script). A request's batch
 * larger than this is still one job and never cut (the writer always takes
 * one job whole; RSTATE_SCRIPT_MAX, the default server.batch_limit, is one
 * script). */
#define REDIS_MERGE_MAX 2000
static const store_ops REDIS_OPS = {rd_snapshot_day, rd_seed,  rd_apply,       rd_get,
                                    rd_count,        rd_close, REDIS_MERGE_MAX};

/* Open one handle of the store at path. */
static rfm_status store_open(const store_ops *ops, const char *path, const state_options *opt,
                             const rstate_options *ropt, void **out, char *err, size_t errlen)
{
    if (ops == &REDIS_OPS) {
        rstate_options ro;
        if (ropt)
            ro = *ropt;
        else
            rstate_default_options(&ro);
        ro.cancel_prefix = opt->cancel_prefix;
        return rstate_open(path, &ro, (rstate **)out, err, errlen);
    }
    return state_open(path, opt, (state_store **)out, err, errlen);
}

/* A request's batch waiting for the writer. */
typedef struct job {
    const state_event *ev;
    size_t n;
    state_result *results;
    rfm_status status;
    char err[256];
    int done;
    struct job *next;
} job;

/* A Redis connection of the read pool (an rstate is one connection, its
 * calls must not overlap), opened by the first read that needs it. SQLite
 * needs none: state_get and state_count are safe from any thread beside
 * the writer (its read lock). */
typedef struct {
    pthread_mutex_t mu;
    void *st; /* NULL until first used */
} reader;

/* Connections of the Redis read pool at most. Each thread that reads is
 * given a slot of its own on its first read (the worker threads, up to
 * this many), so a read takes an uncontended lock and never waits for
 * another thread's round trip; with more threads than slots they share,
 * a busy slot passed over for a free one. Unused slots cost nothing. */
#define REDIS_READERS 64

struct live {
    const store_ops *ops;
    void *writer;
    pthread_mutex_t wmu; /* the writer connection: commits and seeding */
    pthread_t thread;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;    /* the writer waits for jobs */
    pthread_cond_t donecv; /* requests wait for their job */
    job *head, *tail;
    int stop;
    /* Counters (atomic). */
    uint64_t outcome[4];
    uint64_t reason[STATE_NREASONS];
    uint64_t commits, commit_failed_full, commit_failed_io;
    histogram commit_lat, get_lat;
    uint64_t commit_events_sum;
    const engagement_options *types; /* events.types (not owned), or NULL */
    reader *readers;                 /* Redis: the read pool; SQLite: none */
    int nreaders;
    unsigned next_reader;   /* atomic: the slot the next new thread gets */
    pthread_key_t slot_key; /* a thread's slot + 1 (Redis only) */
    char *path;             /* Redis: the URL, to open the pool's connections */
    rstate_options ropt;    /* and their options (pointers: the copies below) */
    char *cancel_prefix, *prefix;
    live_hook hook;
};

void live_set_hook(live *l, const live_hook *h) { l->hook = *h; }

static void observe(histogram *h, double s)
{
    size_t k = 0;
    while (k < NLAT && s > LAT_BUCKETS[k])
        k++;
    __atomic_add_fetch(&h->bucket[k], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->sum_ns, (uint64_t)(s * 1e9), __ATOMIC_RELAXED);
}

/* One commit of every job waiting (up to MAX_COMMIT_EVENTS events). */
static void commit(live *l, job *first)
{
    size_t total = 0, njobs = 0;
    for (job *j = first; j; j = j->next)
        total += j->n, njobs++;
    const state_event *ev = first->ev;
    state_result *res = first->results;
    state_event *merged = NULL;
    state_result *mres = NULL;
    if (njobs > 1) {
        merged = malloc(total * sizeof *merged);
        mres = malloc(total * sizeof *mres);
        if (!merged || !mres) {
            free(merged), free(mres);
            for (job *j = first; j; j = j->next) {
                j->status = RFM_ENOMEM;
                snprintf(j->err, sizeof j->err, "out of memory");
            }
            return;
        }
        size_t o = 0;
        for (job *j = first; j; j = j->next) {
            memcpy(merged + o, j->ev, j->n * sizeof *merged);
            o += j->n;
        }
        ev = merged, res = mres;
    }
    char err[256] = "";
    double t0 = monotime_s();
    pthread_mutex_lock(&l->wmu);
    rfm_status s = l->ops->apply(l->writer, ev, total, res, err, sizeof err);
    pthread_mutex_unlock(&l->wmu);
    observe(&l->commit_lat, monotime_s() - t0);
    if (s == RFM_OK) {
        __atomic_add_fetch(&l->commits, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&l->commit_events_sum, total, __ATOMIC_RELAXED);
        for (size_t i = 0; i < total; i++) {
            __atomic_add_fetch(&l->outcome[res[i].outcome], 1, __ATOMIC_RELAXED);
            if (res[i].reason != STATE_OK)
                __atomic_add_fetch(&l->reason[res[i].reason], 1, __ATOMIC_RELAXED);
        }
    } else {
        __atomic_add_fetch(s == RFM_ENOSPC ? &l->commit_failed_full : &l->commit_failed_io, 1,
                           __ATOMIC_RELAXED);
    }
    size_t o = 0;
    for (job *j = first; j; j = j->next) {
        j->status = s;
        snprintf(j->err, sizeof j->err, "%s", err);
        if (s == RFM_OK && merged)
            memcpy(j->results, mres + o, j->n * sizeof *mres);
        o += j->n;
    }
    free(merged);
    free(mres);
}

static void *writer_main(void *arg)
{
    live *l = arg;
    pthread_mutex_lock(&l->qmu);
    for (;;) {
        while (!l->head && !l->stop)
            pthread_cond_wait(&l->qcv, &l->qmu);
        if (!l->head && l->stop)
            break;
        /* Take the waiting jobs, up to the bound (always at least one). */
        job *first = l->head, *last = first;
        size_t total = first->n;
        while (last->next && total + last->next->n <= l->ops->max_commit) {
            last = last->next;
            total += last->n;
        }
        l->head = last->next;
        if (!l->head)
            l->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&l->qmu);
        commit(l, first);
        pthread_mutex_lock(&l->qmu);
        for (job *j = first; j; j = j->next)
            j->done = 1;
        pthread_cond_broadcast(&l->donecv);
    }
    pthread_mutex_unlock(&l->qmu);
    return NULL;
}

rfm_status live_apply(live *l, const state_event *ev, size_t n, state_result *results, char *err,
                      size_t errlen)
{
    if (n == 0)
        return RFM_OK;
    void *token = l->hook.before ? l->hook.before(l->hook.ctx, ev, n) : NULL;
    job j = {ev, n, results, RFM_OK, "", 0, NULL};
    pthread_mutex_lock(&l->qmu);
    if (l->tail)
        l->tail->next = &j;
    else
        l->head = &j;
    l->tail = &j;
    pthread_cond_signal(&l->qcv);
    while (!j.done)
        pthread_cond_wait(&l->donecv, &l->qmu);
    pthread_mutex_unlock(&l->qmu);
    if (l->hook.after)
        l->hook.after(l->hook.ctx, token, ev, results, n, j.status);
    if (j.status != RFM_OK)
        return rfm_fail(err, errlen, j.status, "%s", j.err);
    return RFM_OK;
}

const engagement_options *live_types(const live *l) { return l->types; }

rfm_status live_apply_batch(live *l, const event_batch *b, live_item *out, char *err, size_t errlen)
{
    size_t n = b->n;
    if (n == 0)
        return RFM_OK;
    state_event *ev = malloc(n * sizeof *ev);
    state_result *res = malloc(n * sizeof *res);
    size_t *index = malloc(n * sizeof *index);
    rfm_status s = RFM_OK;
    if (!ev || !res || !index) {
        s = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    size_t m = 0; /* events that go to the store; index[k]: their item */
    for (size_t i = 0; i < n; i++) {
        out[i] = (live_item){STATE_REJECTED, b->reason[i], b->why[i]};
        if (b->reason[i] != STATE_OK) {
            live_count_rejected(l, b->reason[i]);
        } else {
            ev[m] = b->ev[i];
            index[m++] = i;
        }
    }
    s = live_apply(l, ev, m, res, err, errlen);
    for (size_t k = 0; s == RFM_OK && k < m; k++) {
        const char *why =
            res[k].outcome == STATE_REJECTED ? event_reason_message(res[k].reason) : NULL;
        /* A kind of the config the Redis store does not keep (state_redis.h). */
        if (res[k].reason == STATE_BAD_TYPE && l->ops == &REDIS_OPS)
            why = RSTATE_TYPE_REFUSAL;
        out[index[k]] = (live_item){res[k].outcome, res[k].reason, why};
    }
out:
    free(ev);
    free(res);
    free(index);
    return s;
}

rfm_status live_apply_items(live *l, const json_t *const *items, size_t n, live_item *out,
                            char *err, size_t errlen)
{
    if (n == 0)
        return RFM_OK;
    event_batch b = {n,
                     malloc(n * sizeof *b.ev),
                     malloc(n * sizeof *b.reason),
                     malloc(n * sizeof *b.why),
                     malloc(n * sizeof *b.ids),
                     NULL};
    rfm_status s;
    if (!b.ev || !b.reason || !b.why || !b.ids) {
        s = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            const char *why = NULL;
            b.reason[i] = event_from_json(items[i], l->types, &b.ev[i], &b.ids[i], &why);
            b.why[i] = b.reason[i] == STATE_OK ? NULL : why;
        }
        s = live_apply_batch(l, &b, out, err, errlen);
    }
    event_batch_free(&b);
    return s;
}

/* The handle a read uses in *st: SQLite's one store (no lock: its own
 * read lock), or a Redis connection of the pool, locked (*r, to unlock):
 * the thread's own slot, else a free one, else the own one when it frees.
 * A slot's connection is opened here the first time; failing that (Redis
 * down), the slot stays empty for the next read and the status says why. */
static rfm_status take_reader(live *l, reader **r, void **st, char *err, size_t errlen)
{
    *r = NULL;
    if (!l->nreaders) {
        *st = l->writer;
        return RFM_OK;
    }
    uintptr_t slot = (uintptr_t)pthread_getspecific(l->slot_key);
    if (!slot) {
        slot = __atomic_fetch_add(&l->next_reader, 1, __ATOMIC_RELAXED) % (unsigned)l->nreaders + 1;
        pthread_setspecific(l->slot_key, (void *)slot);
    }
    reader *own = &l->readers[slot - 1];
    if (pthread_mutex_trylock(&own->mu) == 0)
        *r = own;
    for (int i = 0; i < l->nreaders && !*r; i++)
        if (pthread_mutex_trylock(&l->readers[i].mu) == 0)
            *r = &l->readers[i];
    if (!*r) {
        *r = own;
        pthread_mutex_lock(&own->mu);
    }
    if (!(*r)->st) {
        rfm_status s = rstate_open(l->path, &l->ropt, (rstate **)&(*r)->st, err, errlen);
        if (s != RFM_OK) {
            pthread_mutex_unlock(&(*r)->mu);
            *r = NULL;
            return s;
        }
    }
    *st = (*r)->st;
    return RFM_OK;
}

rfm_status live_erase(live *l, const char *customer_id, char *err, size_t errlen)
{
    /* Redis: not erased from the shared store (docs/security.md); the
     * erasure list hides the customer from every answer. */
    if (l->nreaders)
        return rfm_fail(err, errlen, RFM_ENOTFOUND, "the Redis store keeps erased customers");
    pthread_mutex_lock(&l->wmu);
    rfm_status s = state_erase(l->writer, customer_id, err, errlen);
    pthread_mutex_unlock(&l->wmu);
    return s;
}

rfm_status live_get(live *l, const char *customer_id, int32_t asof_day, state_customer *out,
                    char *err, size_t errlen)
{
    double t0 = monotime_s();
    reader *r = NULL;
    void *st;
    rfm_status s = take_reader(l, &r, &st, err, errlen);
    if (s == RFM_OK)
        s = l->ops->get(st, customer_id, asof_day, out, err, errlen);
    if (r)
        pthread_mutex_unlock(&r->mu);
    observe(&l->get_lat, monotime_s() - t0);
    return s;
}

int32_t live_snapshot_day(live *l)
{
    /* Redis: the writer's handle holds the day it last read (a seed
     * changes it); SQLite's is read under the store's own lock. */
    if (!l->nreaders)
        return l->ops->snapshot_day(l->writer);
    pthread_mutex_lock(&l->wmu);
    int32_t d = l->ops->snapshot_day(l->writer);
    pthread_mutex_unlock(&l->wmu);
    return d;
}

int live_can_walk(const live *l) { return l->nreaders == 0; }

rfm_status live_each(live *l, int32_t asof_day, state_each_fn fn, void *user, char *err,
                     size_t errlen)
{
    if (l->nreaders) /* Redis: no walk over every customer (the feed's sweep is off) */
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "walking every customer needs the SQLite store (state.path a file); "
                        "the Redis store has none");
    return state_each(l->writer, asof_day, fn, user, err, errlen);
}

void live_count_rejected(live *l, state_reason r)
{
    __atomic_add_fetch(&l->outcome[STATE_REJECTED], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&l->reason[r], 1, __ATOMIC_RELAXED);
}

rfm_status live_open(const char *path, const state_options *opt, const rstate_options *ropt,
                     live **out, char *err, size_t errlen)
{
    *out = NULL;
    live *l = calloc(1, sizeof *l);
    if (!l)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    pthread_mutex_init(&l->wmu, NULL);
    pthread_mutex_init(&l->qmu, NULL);
    pthread_cond_init(&l->qcv, NULL);
    pthread_cond_init(&l->donecv, NULL);
    l->types = opt->types;
    l->ops = rstate_is_url(path) ? &REDIS_OPS : &SQLITE_OPS;
    rfm_status s = store_open(l->ops, path, opt, ropt, &l->writer, err, errlen);
    if (s != RFM_OK) {
        free(l);
        return s;
    }
    int key = 0;
    if (l->ops == &REDIS_OPS) {
        /* The pool's connections open as threads first read (take_reader),
         * with the options the writer's got. */
        if (ropt)
            l->ropt = *ropt;
        else
            rstate_default_options(&l->ropt);
        l->path = strdup(path);
        l->cancel_prefix = strdup(opt->cancel_prefix ? opt->cancel_prefix : "");
        l->prefix = strdup(l->ropt.prefix);
        l->ropt.cancel_prefix = l->cancel_prefix, l->ropt.prefix = l->prefix;
        l->readers = calloc(REDIS_READERS, sizeof *l->readers);
        if (!l->path || !l->cancel_prefix || !l->prefix || !l->readers)
            s = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        else if (pthread_key_create(&l->slot_key, NULL) != 0)
            s = rfm_fail(err, errlen, RFM_ENOMEM, "cannot make the read pool's thread key");
        else
            key = 1;
        for (int i = 0; s == RFM_OK && i < REDIS_READERS; i++)
            pthread_mutex_init(&l->readers[i].mu, NULL);
        if (s == RFM_OK)
            l->nreaders = REDIS_READERS;
    }
    if (s == RFM_OK && pthread_create(&l->thread, NULL, writer_main, l) != 0)
        s = rfm_fail(err, errlen, RFM_ENOMEM, "cannot start the state writer thread");
    if (s != RFM_OK) {
        if (key)
            pthread_key_delete(l->slot_key);
        free(l->readers);
        free(l->path), free(l->cancel_prefix), free(l->prefix);
        l->ops->close(l->writer);
        free(l);
        return s;
    }
    *out = l;
    return RFM_OK;
}

void live_close(live *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->qmu);
    l->stop = 1;
    pthread_cond_signal(&l->qcv);
    pthread_mutex_unlock(&l->qmu);
    pthread_join(l->thread, NULL);
    for (int i = 0; i < l->nreaders; i++)
        if (l->readers[i].st)
            l->ops->close(l->readers[i].st);
    if (l->nreaders)
        pthread_key_delete(l->slot_key);
    free(l->readers);
    free(l->path), free(l->cancel_prefix), free(l->prefix);
    l->ops->close(l->writer);
    free(l);
}

rfm_status live_seed(live *l, const json_t *manifest, const txn_options *topt, int *seeded,
                     char *err, size_t errlen)
{
    *seeded = 0;
    const json_t *tx = json_object_get(json_object_get(manifest, "data"), "transactions");
    if (!tx)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "state: the models were not trained from transactions (manifest.json "
                        "has no data.transactions): the store cannot be seeded; train from a "
                        "transactions file");
    const char *path = json_string_value(json_object_get(tx, "path"));
    const char *sha = json_string_value(json_object_get(tx, "sha256"));
    const char *snap = json_string_value(json_object_get(tx, "snapshot_date"));
    int32_t day = snap ? date_parse(snap, strlen(snap)) : DATE_NONE;
    if (!path || !sha || day == DATE_NONE)
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "state: manifest.json data.transactions lacks path, sha256 or "
                        "snapshot_date: train again with this version");
    int32_t have = live_snapshot_day(l);
    if (have != DATE_NONE && have >= day)
        return RFM_OK; /* seeded from this training run (or a newer one) already */
    source_kind k = source_kind_of(path);
    if (k != SOURCE_FILE)
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "state: the models were trained from %s, which cannot be read again to "
                        "seed the store: export it to a file and train from that",
                        strcmp(path, "-") == 0 ? "standard input" : "a database");
    txn_options o = *topt;
    o.product = NULL;
    txn_data *d = NULL;
    txn_report rep;
    rfm_status s = txn_read(path, &o, NULL, NULL, &d, &rep, err, errlen);
    if (s != RFM_OK)
        return s;
    if (strcmp(rep.sha256, sha) != 0) {
        txn_free(d);
        return rfm_fail(err, errlen, RFM_EDATA,
                        "state: %s changed since the models were trained (sha256 %.12s..., the "
                        "manifest says %.12s...): the store is seeded from the very data the "
                        "models saw; train again, or put the file back",
                        path, rep.sha256, sha);
    }
    if (txn_snapshot_day(d) != day) {
        txn_free(d);
        return rfm_fail(err, errlen, RFM_EDATA,
                        "state: %s read with this config gives another snapshot day than the "
                        "manifest's %s: serve with the config the models were trained with",
                        path, snap);
    }
    pthread_mutex_lock(&l->wmu);
    s = l->ops->seed(l->writer, d, seeded, err, errlen);
    pthread_mutex_unlock(&l->wmu);
    txn_free(d);
    return s;
}

static void put_hist(FILE *f, const char *name, const histogram *h)
{
    uint64_t b[NLAT + 1], total = 0, cum = 0;
    for (size_t k = 0; k <= NLAT; k++)
        total += b[k] = __atomic_load_n(&h->bucket[k], __ATOMIC_RELAXED);
    for (size_t k = 0; k < NLAT; k++) {
        cum += b[k];
        fprintf(f, "rfm_state_seconds_bucket{op=\"%s\",le=\"%g\"} %llu\n", name, LAT_BUCKETS[k],
                (unsigned long long)cum);
    }
    fprintf(f,
            "rfm_state_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n"
            "rfm_state_seconds_sum{op=\"%s\"} %.9f\n"
            "rfm_state_seconds_count{op=\"%s\"} %llu\n",
            name, (unsigned long long)total, name,
            (double)__atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED) / 1e9, name,
            (unsigned long long)total);
}

void live_metrics(live *l, FILE *f)
{
    fputs("# HELP rfm_events_total Events of POST /events by outcome (applied, ignored, "
          "duplicate, rejected).\n# TYPE rfm_events_total counter\n",
          f);
    for (int o = 0; o < 4; o++)
        fprintf(f, "rfm_events_total{outcome=\"%s\"} %llu\n", state_outcome_name((state_outcome)o),
                (unsigned long long)__atomic_load_n(&l->outcome[o], __ATOMIC_RELAXED));
    fputs("# HELP rfm_events_reason_total Events ignored or rejected, by reason.\n"
          "# TYPE rfm_events_reason_total counter\n",
          f);
    for (int r = 1; r < STATE_NREASONS; r++)
        fprintf(f, "rfm_events_reason_total{reason=\"%s\"} %llu\n",
                state_reason_name((state_reason)r),
                (unsigned long long)__atomic_load_n(&l->reason[r], __ATOMIC_RELAXED));
    fprintf(f,
            "# HELP rfm_state_commits_total Transactions of the state store (each one fsync "
            "with synchronous full), by result.\n# TYPE rfm_state_commits_total counter\n"
            "rfm_state_commits_total{result=\"ok\"} %llu\n"
            "rfm_state_commits_total{result=\"disk_full\"} %llu\n"
            "rfm_state_commits_total{result=\"error\"} %llu\n"
            "# HELP rfm_state_commit_events_total Events in the committed transactions (over "
            "rfm_state_commits_total: events merged per commit).\n"
            "# TYPE rfm_state_commit_events_total counter\n"
            "rfm_state_commit_events_total %llu\n",
            (unsigned long long)__atomic_load_n(&l->commits, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&l->commit_failed_full, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&l->commit_failed_io, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&l->commit_events_sum, __ATOMIC_RELAXED));
    fputs("# HELP rfm_state_seconds Latency of the state store: commit (a merged batch, "
          "durable) and get (one customer).\n# TYPE rfm_state_seconds histogram\n",
          f);
    put_hist(f, "commit", &l->commit_lat);
    put_hist(f, "get", &l->get_lat);
    uint64_t n = 0;
    char err[128];
    reader *r = NULL;
    void *st;
    rfm_status s = take_reader(l, &r, &st, err, sizeof err);
    if (s == RFM_OK)
        s = l->ops->count(st, &n, err, sizeof err);
    if (r)
        pthread_mutex_unlock(&r->mu);
    if (s == RFM_OK)
        fprintf(f,
                "# HELP rfm_state_customers Customers in the state store.\n"
                "# TYPE rfm_state_customers gauge\nrfm_state_customers %llu\n",
                (unsigned long long)n);
    int32_t snap = live_snapshot_day(l);
    if (snap != DATE_NONE)
        fprintf(f,
                "# HELP rfm_state_snapshot_day Snapshot of the training run the store was "
                "seeded from (days since 1970-01-01).\n"
                "# TYPE rfm_state_snapshot_day gauge\nrfm_state_snapshot_day %d\n",
                snap);
}
