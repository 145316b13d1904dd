/* livefeed.c - the batch hook, the sweep and the GET /feed streams of the
 * live feed (livefeed.h). */
#include "livefeed.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api.h"
#include "date.h"
#include "hash.h"

#define READ_BATCH 64 /* records a stream takes from the ring at a time */
#define RETRY_MS 2000 /* the reconnection delay a stream asks of its client */

typedef struct stream {
    livefeed *lf;
    struct MHD_Connection *c;
    uint64_t pos;         /* id of the last record sent (or queued in out) */
    char *out;            /* formatted, not yet sent */
    size_t len, off, cap; /* of out */
    time_t last_write;
    int waiting; /* suspended, in the wake list (under lf->mu) */
    struct stream *prev, *next;
} stream;

struct livefeed {
    feed_options opt;
    live *lv;
    http_provider models;
    feed *f;
    http_stream route;
    pthread_mutex_t mu; /* streams, stopping, the threads' sleep */
    pthread_cond_t cv;  /* the heartbeat and sweep threads wait on it */
    stream *streams;
    long nstreams;
    int stopping;
    pthread_t heart, sweeper;
    int have_heart, have_sweeper;
    int32_t swept_day; /* the day the last sweep scored as of */
    /* Counters (atomic). */
    uint64_t gaps, sweeps, sweep_errors, hook_errors, refused;
};

static int32_t today_utc(void) { return (int32_t)(time(NULL) / 86400); }

static void now_text(char buf[32]) { date_format_instant((int64_t)time(NULL), buf); }

/* ---- waking the streams ----------------------------------------------- */

/* Resume every suspended stream: it looks for records (or a heartbeat, or
 * the end) again. Under lf->mu. */
static void wake_all_locked(livefeed *lf)
{
    for (stream *s = lf->streams; s; s = s->next)
        if (s->waiting) {
            s->waiting = 0;
            MHD_resume_connection(s->c);
        }
}

/* A record was published: wake the streams (a feed subscriber). */
static void on_record(void *ctx, uint64_t id, const char *customer_id, const char *event,
                      const char *data)
{
    livefeed *lf = ctx;
    (void)id, (void)customer_id, (void)event, (void)data;
    pthread_mutex_lock(&lf->mu);
    wake_all_locked(lf);
    pthread_mutex_unlock(&lf->mu);
}

static void *heart_main(void *arg)
{
    livefeed *lf = arg;
    pthread_mutex_lock(&lf->mu);
    while (!lf->stopping) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += lf->opt.heartbeat_seconds;
        pthread_cond_timedwait(&lf->cv, &lf->mu, &t);
        wake_all_locked(lf);
    }
    pthread_mutex_unlock(&lf->mu);
    return NULL;
}

/* ---- scoring around a batch ------------------------------------------- */

/* The touched customers of a batch and their labels before it, with the
 * models they were scored with (held until after). */
typedef struct {
    void *lease;
    const api *a;
    size_t n;
    char **ids;
    int *have;           /* ids[i] was scored before */
    feed_labels *before; /* borrow from a's models */
    /* ids by hash (open addressing, slots a power of 2 >= 2 n events; -1
     * empty): a batch of 500 events touches up to 500 customers, and a
     * scan of the list per event was most of the hook's time. */
    long *slot;
    size_t mask;
} batch;

/* Index in b->ids of id (len bytes), or -1; *at: its slot or the empty
 * one where it would go. */
static long batch_find(const batch *b, const char *id, size_t *at)
{
    size_t len = strlen(id);
    size_t j = (size_t)hash_bytes(id, len, 0x5eed) & b->mask;
    for (; b->slot[j] >= 0; j = (j + 1) & b->mask) {
        const char *k = b->ids[b->slot[j]];
        if (strncmp(k, id, len) == 0 && k[len] == '\0')
            break;
    }
    *at = j;
    return b->slot[j];
}

static void batch_free(livefeed *lf, batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->ids[i]);
    free(b->ids);
    free(b->have);
    free(b->before);
    free(b->slot);
    if (b->lease)
        lf->models.release(lf->models.ctx, b->lease);
    free(b);
}

/* Labels (and the scores object, when scores is not NULL) of id as of the
 * end of today; 0 when scored. */
static int score_now(const api *a, const char *id, feed_labels *l, json_t **scores)
{
    score_result r;
    json_t *j = NULL;
    char msg[256];
    int st = api_score_id(a, id, today_utc(), &r, scores ? &j : NULL, msg, sizeof msg);
    if (st == 0)
        feed_labels_of(&r, l);
    if (scores)
        *scores = j;
    return st;
}

static void *hook_before(void *ctx, const state_event *ev, size_t n)
{
    livefeed *lf = ctx;
    batch *b = calloc(1, sizeof *b);
    size_t nslots = 16;
    while (nslots < 2 * n)
        nslots *= 2;
    if (!b || !(b->ids = calloc(n, sizeof *b->ids)) || !(b->have = calloc(n, sizeof *b->have)) ||
        !(b->before = calloc(n, sizeof *b->before)) ||
        !(b->slot = malloc(nslots * sizeof *b->slot))) {
        __atomic_add_fetch(&lf->hook_errors, 1, __ATOMIC_RELAXED);
        batch_free(lf, b);
        return NULL;
    }
    void *user = NULL;
    const http_route *routes;
    size_t nroutes;
    b->lease = lf->models.acquire(lf->models.ctx, &user, &routes, &nroutes);
    b->a = user;
    b->mask = nslots - 1;
    memset(b->slot, 0xff, nslots * sizeof *b->slot); /* -1: empty */
    for (size_t i = 0; i < n; i++) {
        const char *id = ev[i].customer_id;
        size_t at;
        if (!id || batch_find(b, id, &at) >= 0)
            continue;
        if (!(b->ids[b->n] = strdup(id))) {
            __atomic_add_fetch(&lf->hook_errors, 1, __ATOMIC_RELAXED);
            break;
        }
        b->slot[at] = (long)b->n;
        b->have[b->n] = score_now(b->a, id, &b->before[b->n], NULL) == 0;
        b->n++;
    }
    return b;
}

static void hook_after(void *ctx, void *token, const state_event *ev, const state_result *res,
                       size_t n, rfm_status s)
{
    livefeed *lf = ctx;
    batch *b = token;
    if (!b)
        return;
    if (s == RFM_OK) {
        char now[32];
        now_text(now);
        /* Only customers whose purchases changed can have moved: have[k]
         * gets bit 2 when one of their events was applied. */
        for (size_t i = 0; i < n; i++) {
            size_t at;
            long k = res[i].outcome == STATE_APPLIED && ev[i].customer_id
                         ? batch_find(b, ev[i].customer_id, &at)
                         : -1;
            if (k >= 0)
                b->have[k] |= 2;
        }
        for (size_t k = 0; k < b->n; k++) {
            int applied = (b->have[k] & 2) != 0;
            b->have[k] &= 1;
            feed_labels after;
            json_t *scores = NULL;
            if (!applied || score_now(b->a, b->ids[k], &after, &scores) != 0)
                continue;
            if (feed_publish(lf->f, b->ids[k], now, b->have[k] ? &b->before[k] : NULL, &after,
                             scores, NULL) != RFM_OK)
                __atomic_add_fetch(&lf->hook_errors, 1, __ATOMIC_RELAXED);
            json_decref(scores);
        }
    }
    batch_free(lf, b);
}

/* ---- the sweep -------------------------------------------------------- */

/* One sweep's walk (live_each calls sweep_one with no lock of the store
 * held, so scoring may read it). */
typedef struct {
    livefeed *lf;
    const api *a;
    int32_t today, was;
    const char *now;
    size_t scored;
} sweep_ctx;

static int sweep_one(void *user, const char *id, const state_customer *c)
{
    sweep_ctx *w = user;
    if (c->f.active) { /* no purchase by the end of today: nothing to score */
        score_result r;
        json_t *scores = NULL;
        char msg[256];
        feed_labels before, cur;
        if (api_score_id(w->a, id, w->today, &r, &scores, msg, sizeof msg) == 0) {
            feed_labels_of(&r, &cur);
            /* Before: as of the last sweep's day (labels remembered by
             * the feed take precedence). */
            score_result rb;
            json_t *sb = NULL;
            int have = w->was != w->today &&
                       api_score_id(w->a, id, w->was, &rb, &sb, msg, sizeof msg) == 0;
            json_decref(sb);
            if (have)
                feed_labels_of(&rb, &before);
            else
                before = cur;
            feed_publish(w->lf->f, id, w->now, &before, &cur, scores, NULL);
            json_decref(scores);
            w->scored++;
        }
    }
    pthread_mutex_lock(&w->lf->mu);
    int stop = w->lf->stopping;
    pthread_mutex_unlock(&w->lf->mu);
    return stop;
}

rfm_status livefeed_sweep(livefeed *lf, size_t *scored, char *err, size_t errlen)
{
    *scored = 0;
    if (!lf->lv)
        return RFM_OK;
    void *user = NULL;
    const http_route *routes;
    size_t nroutes;
    void *lease = lf->models.acquire(lf->models.ctx, &user, &routes, &nroutes);
    char now[32];
    now_text(now);
    sweep_ctx w = {lf, user, today_utc(), 0, now, 0};
    pthread_mutex_lock(&lf->mu);
    w.was = lf->swept_day;
    pthread_mutex_unlock(&lf->mu);
    /* As of the day after: purchases on or before today, as by id. */
    rfm_status s = live_each(lf->lv, w.today + 1, sweep_one, &w, err, errlen);
    lf->models.release(lf->models.ctx, lease);
    *scored = w.scored;
    if (s == RFM_OK) {
        pthread_mutex_lock(&lf->mu);
        lf->swept_day = w.today;
        pthread_mutex_unlock(&lf->mu);
        __atomic_add_fetch(&lf->sweeps, 1, __ATOMIC_RELAXED);
    } else {
        __atomic_add_fetch(&lf->sweep_errors, 1, __ATOMIC_RELAXED);
    }
    return s;
}

static void *sweep_main(void *arg)
{
    livefeed *lf = arg;
    pthread_mutex_lock(&lf->mu);
    while (!lf->stopping) {
        /* Until the next period or just past the next UTC midnight. */
        time_t now = time(NULL);
        time_t next = now + lf->opt.sweep_seconds, midnight = (now / 86400 + 1) * 86400 + 1;
        struct timespec t = {next < midnight ? next : midnight, 0};
        while (!lf->stopping && time(NULL) < t.tv_sec)
            pthread_cond_timedwait(&lf->cv, &lf->mu, &t);
        if (lf->stopping)
            break;
        pthread_mutex_unlock(&lf->mu);
        size_t n;
        char err[256];
        (void)livefeed_sweep(lf, &n, err, sizeof err); /* counted in its metrics */
        pthread_mutex_lock(&lf->mu);
    }
    pthread_mutex_unlock(&lf->mu);
    return NULL;
}

/* ---- GET /feed -------------------------------------------------------- */

static int out_printf(stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int out_printf(stream *s, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(s->out ? s->out + s->len : NULL, s->out ? s->cap - s->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0)
            return -1;
        if (s->out && s->len + (size_t)k < s->cap) {
            s->len += (size_t)k;
            return 0;
        }
        size_t cap = s->cap ? s->cap : 4096;
        while (cap <= s->len + (size_t)k)
            cap *= 2;
        char *o = realloc(s->out, cap);
        if (!o)
            return -1;
        s->out = o, s->cap = cap;
    }
}

/* Fill s->out with what comes next: a gap, records; 1 when something was
 * added, 0 when nothing is there, -1 when out of memory. */
static int fill(stream *s)
{
    feed_record rec[READ_BATCH];
    uint64_t missed, from = s->pos;
    int gap;
    long n = feed_since(s->lf->f, &s->pos, READ_BATCH, rec, &missed, &gap);
    if (n < 0)
        return -1;
    int bad = 0;
    if (gap) {
        __atomic_add_fetch(&s->lf->gaps, 1, __ATOMIC_RELAXED);
        /* The gap's id is where the reader now stands: a reconnect with it
         * goes on after what was lost. */
        uint64_t at = s->pos - (uint64_t)n;
        if (gap == 1)
            bad |= out_printf(s,
                              "id: %llu\nevent: gap\ndata: {\"reason\":\"behind\",\"missed\":%llu,"
                              "\"last_event_id\":%llu,\"resume_id\":%llu}\n\n",
                              (unsigned long long)at, (unsigned long long)missed,
                              (unsigned long long)from, (unsigned long long)at);
        else
            bad |= out_printf(s,
                              "id: %llu\nevent: gap\ndata: {\"reason\":\"unknown_id\",\"missed\":"
                              "null,\"last_event_id\":%llu,\"resume_id\":%llu}\n\n",
                              (unsigned long long)at, (unsigned long long)from,
                              (unsigned long long)at);
    }
    for (long i = 0; i < n; i++) {
        bad |= out_printf(s, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)rec[i].id,
                          rec[i].event, rec[i].data);
        feed_record_clear(&rec[i]);
    }
    if (bad)
        return -1;
    return n > 0 || gap ? 1 : 0;
}

static ssize_t stream_read(void *cls, uint64_t at, char *buf, size_t max)
{
    stream *s = cls;
    livefeed *lf = s->lf;
    (void)at;
    for (;;) {
        if (s->off < s->len) {
            size_t k = s->len - s->off < max ? s->len - s->off : max;
            memcpy(buf, s->out + s->off, k);
            s->off += k;
            s->last_write = time(NULL);
            return (ssize_t)k;
        }
        s->off = s->len = 0;
        pthread_mutex_lock(&lf->mu);
        int stop = lf->stopping;
        pthread_mutex_unlock(&lf->mu);
        if (stop)
            return MHD_CONTENT_READER_END_OF_STREAM;
        int got = fill(s);
        if (got < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (got > 0)
            continue;
        if (time(NULL) - s->last_write >= (lf->opt.heartbeat_seconds + 1) / 2) {
            if (out_printf(s, ": heartbeat\n\n") != 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        /* A suspended connection is not watched: a client gone since is
         * seen here, at a wake-up (it sends nothing after its request, so
         * a readable end of stream means it closed). */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(s->c, MHD_CONNECTION_INFO_CONNECTION_FD);
        char b;
        ssize_t k = ci ? recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) : -1;
        if (k == 0 || (k < 0 && ci && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        /* Nothing to send: out of the event loop until woken. A record
         * pushed after fill() looked is seen here, under the same mutex its
         * wake-up takes. */
        pthread_mutex_lock(&lf->mu);
        if (feed_last_id(lf->f) != s->pos || lf->stopping) {
            pthread_mutex_unlock(&lf->mu);
            continue;
        }
        s->waiting = 1;
        MHD_suspend_connection(s->c);
        pthread_mutex_unlock(&lf->mu);
        return 0;
    }
}

static void stream_free(void *cls)
{
    stream *s = cls;
    livefeed *lf = s->lf;
    pthread_mutex_lock(&lf->mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        lf->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    lf->nstreams--;
    pthread_mutex_unlock(&lf->mu);
    free(s->out);
    free(s);
}

/* A Last-Event-ID: decimal digits only, else not an id. */
static int parse_id(const char *t, uint64_t *id)
{
    if (!t || !*t || strspn(t, "0123456789") != strlen(t) || strlen(t) > 19)
        return 0;
    *id = strtoull(t, NULL, 10);
    return 1;
}

static void *stream_respond(void *ctx, void *connection, const char *last_event_id, int *status,
                            char *msg, size_t msglen)
{
    livefeed *lf = ctx;
    if (!lf->lv) {
        *status = 503;
        snprintf(msg, msglen, "%s",
                 lf->opt.enabled ? "no customer-state store: the feed follows its events; start "
                                   "rfm-serve with --state PATH (or state.path in the config)"
                                 : "the feed is off (feed.enabled: false in the config)");
        return NULL;
    }
    uint64_t pos = feed_last_id(lf->f);
    if (last_event_id && !parse_id(last_event_id, &pos)) {
        *status = 400;
        snprintf(msg, msglen, "Last-Event-ID (or last_event_id) must be a record id, not '%.40s'",
                 last_event_id);
        return NULL;
    }
    stream *s = calloc(1, sizeof *s);
    if (!s) {
        *status = 503;
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    s->lf = lf;
    s->c = connection;
    s->pos = pos;
    s->last_write = time(NULL);
    if (out_printf(s, "retry: %d\n: rfm feed after id %llu\n\n", RETRY_MS,
                   (unsigned long long)pos) != 0) {
        free(s);
        *status = 503;
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&lf->mu);
    if (lf->nstreams >= lf->opt.max_readers || lf->stopping) {
        int stopping = lf->stopping;
        pthread_mutex_unlock(&lf->mu);
        free(s->out);
        free(s);
        __atomic_add_fetch(&lf->refused, 1, __ATOMIC_RELAXED);
        *status = 503;
        snprintf(msg, msglen,
                 stopping ? "the server is stopping"
                          : "too many feed readers (feed.max_readers = %d): retry later",
                 lf->opt.max_readers);
        return NULL;
    }
    s->next = lf->streams;
    if (lf->streams)
        lf->streams->prev = s;
    lf->streams = s;
    lf->nstreams++;
    pthread_mutex_unlock(&lf->mu);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
    if (!r) {
        stream_free(s);
        *status = 503;
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* nginx: do not buffer the stream */
    return r;
}

static void stream_stop(void *ctx)
{
    livefeed *lf = ctx;
    pthread_mutex_lock(&lf->mu);
    lf->stopping = 1;
    wake_all_locked(lf);
    pthread_cond_broadcast(&lf->cv);
    pthread_mutex_unlock(&lf->mu);
}

/* ---- life cycle ------------------------------------------------------- */

rfm_status livefeed_new(const feed_options *o, live *lv, const http_provider *models,
                        livefeed **out, char *err, size_t errlen)
{
    *out = NULL;
    livefeed *lf = calloc(1, sizeof *lf);
    if (!lf)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    /* Ids go on growing across restarts: microseconds since 1970 at start. */
    uint64_t base = (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
    lf->opt = *o;
    lf->lv = lv;
    lf->models = *models;
    lf->swept_day = today_utc();
    lf->route = (http_stream){"/feed", stream_respond, stream_stop, lf};
    pthread_mutex_init(&lf->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&lf->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!(lf->f = feed_new(o->buffer, base, o->published_max)) ||
        feed_subscribe(lf->f, on_record, lf) != RFM_OK) {
        livefeed_free(lf);
        return rfm_fail(err, errlen, RFM_ENOMEM, "feed: out of memory for %zu records", o->buffer);
    }
    lf->have_heart = pthread_create(&lf->heart, NULL, heart_main, lf) == 0;
    /* The sweep walks every customer: the SQLite store only (live_each). */
    int sweep = lv && o->sweep_seconds > 0 && live_can_walk(lv);
    if (sweep)
        lf->have_sweeper = pthread_create(&lf->sweeper, NULL, sweep_main, lf) == 0;
    if (!lf->have_heart || (sweep && !lf->have_sweeper)) {
        livefeed_free(lf);
        return rfm_fail(err, errlen, RFM_ENOMEM, "feed: cannot start its threads");
    }
    if (lv) {
        live_hook h = {hook_before, hook_after, lf};
        live_set_hook(lv, &h);
    }
    *out = lf;
    return RFM_OK;
}

void livefeed_free(livefeed *lf)
{
    if (!lf)
        return;
    stream_stop(lf);
    if (lf->have_heart)
        pthread_join(lf->heart, NULL);
    if (lf->have_sweeper)
        pthread_join(lf->sweeper, NULL);
    if (lf->lv) {
        live_hook none = {NULL, NULL, NULL};
        live_set_hook(lf->lv, &none);
    }
    feed_free(lf->f);
    pthread_cond_destroy(&lf->cv);
    pthread_mutex_destroy(&lf->mu);
    free(lf);
}

const http_stream *livefeed_stream(livefeed *lf) { return &lf->route; }

feed *livefeed_feed(livefeed *lf) { return lf->f; }

void livefeed_metrics(livefeed *lf, FILE *f)
{
    feed_stats st;
    feed_get_stats(lf->f, &st);
    pthread_mutex_lock(&lf->mu);
    long readers = lf->nstreams;
    pthread_mutex_unlock(&lf->mu);
    fprintf(f,
            "# HELP rfm_feed_records_total Change records published to GET /feed.\n"
            "# TYPE rfm_feed_records_total counter\nrfm_feed_records_total %llu\n"
            "# HELP rfm_feed_gaps_total Gap events sent to readers that fell behind the buffer "
            "(or came back with an id of another run).\n"
            "# TYPE rfm_feed_gaps_total counter\nrfm_feed_gaps_total %llu\n"
            "# HELP rfm_feed_readers GET /feed streams open now.\n"
            "# TYPE rfm_feed_readers gauge\nrfm_feed_readers %ld\n"
            "# HELP rfm_feed_readers_refused_total GET /feed refused with 503 "
            "(feed.max_readers).\n"
            "# TYPE rfm_feed_readers_refused_total counter\nrfm_feed_readers_refused_total %llu\n"
            "# HELP rfm_feed_buffer_records Capacity of the record buffer (feed.buffer).\n"
            "# TYPE rfm_feed_buffer_records gauge\nrfm_feed_buffer_records %llu\n"
            "# HELP rfm_feed_published_customers Customers whose last published labels are "
            "remembered.\n"
            "# TYPE rfm_feed_published_customers gauge\nrfm_feed_published_customers %llu\n"
            "# HELP rfm_feed_sweeps_total Re-scorings of every customer, by result.\n"
            "# TYPE rfm_feed_sweeps_total counter\nrfm_feed_sweeps_total{result=\"ok\"} %llu\n"
            "rfm_feed_sweeps_total{result=\"error\"} %llu\n"
            "# HELP rfm_feed_hook_errors_total Batches or customers the feed could not score "
            "or publish (out of memory).\n"
            "# TYPE rfm_feed_hook_errors_total counter\nrfm_feed_hook_errors_total %llu\n",
            (unsigned long long)st.records,
            (unsigned long long)__atomic_load_n(&lf->gaps, __ATOMIC_RELAXED), readers,
            (unsigned long long)__atomic_load_n(&lf->refused, __ATOMIC_RELAXED),
            (unsigned long long)st.capacity, (unsigned long long)st.published_customers,
            (unsigned long long)__atomic_load_n(&lf->sweeps, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&lf->sweep_errors, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&lf->hook_errors, __ATOMIC_RELAXED));
}
