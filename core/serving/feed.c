/* feed.c - change detection, the ring of change records and the last
 * published labels (feed.h). */
#include "feed.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "jsonout.h"

#define MAX_SUBSCRIBERS 8

/* A customer's last published labels, in a chained hash table. */
typedef struct pub {
    struct pub *next;
    uint64_t h;
    char *label[FEED_NFIELDS];
    char id[];
} pub;

struct feed {
    pthread_mutex_t mu; /* the ring */
    feed_record *ring;
    size_t cap;
    uint64_t base, last; /* ids: the ring holds (max(base, last - cap), last] */
    pthread_mutex_t pmu; /* publishing: the map, push order, subscribers */
    pub **table;
    size_t nbuckets, npub, pub_max;
    struct {
        feed_subscriber fn;
        void *ctx;
    } sub[MAX_SUBSCRIBERS];
    size_t nsub;
};

static const char *const FIELD_NAMES[FEED_NFIELDS] = {"rfm_segment", "cluster", "churn_risk"};

const char *feed_field_name(feed_field f)
{
    return (unsigned)f < FEED_NFIELDS ? FIELD_NAMES[f] : "unknown";
}

void feed_labels_of(const score_result *r, feed_labels *out)
{
    memset(out, 0, sizeof *out);
    if (r->done & SCORE_SEGMENTS) {
        out->label[FEED_RFM_SEGMENT] = r->seg.rfm_segment;
        out->label[FEED_CLUSTER] = r->seg.segment;
    }
    if (r->done & SCORE_CHURN)
        out->label[FEED_CHURN_RISK] = churn_risk_name(r->risk);
}

size_t feed_diff(const feed_labels *a, const feed_labels *b, feed_change out[FEED_NFIELDS])
{
    size_t n = 0;
    for (int k = 0; k < FEED_NFIELDS; k++) {
        const char *x = a->label[k], *y = b->label[k];
        if (x && y && strcmp(x, y) != 0)
            out[n++] = (feed_change){(feed_field)k, x, y};
    }
    return n;
}

feed *feed_new(size_t capacity, uint64_t base, size_t published_max)
{
    if (capacity < 1 || capacity > ((size_t)1 << 30))
        return NULL;
    feed *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->cap = capacity;
    f->base = f->last = base;
    f->pub_max = published_max;
    f->nbuckets = 1024;
    while (f->nbuckets < published_max && f->nbuckets < ((size_t)1 << 24))
        f->nbuckets *= 2;
    f->ring = calloc(capacity, sizeof *f->ring);
    f->table = published_max ? calloc(f->nbuckets, sizeof *f->table) : NULL;
    if (!f->ring || (published_max && !f->table)) {
        free(f->ring);
        free(f->table);
        free(f);
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->pmu, NULL);
    return f;
}

void feed_record_clear(feed_record *r)
{
    free(r->event);
    free(r->data);
    memset(r, 0, sizeof *r);
}

void feed_free(feed *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->cap; i++)
        feed_record_clear(&f->ring[i]);
    for (size_t b = 0; f->table && b < f->nbuckets; b++)
        for (pub *p = f->table[b], *next; p; p = next) {
            next = p->next;
            for (int k = 0; k < FEED_NFIELDS; k++)
                free(p->label[k]);
            free(p);
        }
    free(f->ring);
    free(f->table);
    pthread_mutex_destroy(&f->mu);
    pthread_mutex_destroy(&f->pmu);
    free(f);
}

rfm_status feed_subscribe(feed *f, feed_subscriber fn, void *ctx)
{
    pthread_mutex_lock(&f->pmu);
    rfm_status s = RFM_ENOMEM;
    if (f->nsub < MAX_SUBSCRIBERS) {
        f->sub[f->nsub].fn = fn;
        f->sub[f->nsub].ctx = ctx;
        f->nsub++;
        s = RFM_OK;
    }
    pthread_mutex_unlock(&f->pmu);
    return s;
}

rfm_status feed_push(feed *f, const char *event, const char *data, uint64_t *id)
{
    /* Copies are made before the lock: readers wait only for the swap. */
    char *e = strdup(event), *d = strdup(data);
    if (!e || !d) {
        free(e);
        free(d);
        return RFM_ENOMEM;
    }
    pthread_mutex_lock(&f->mu);
    uint64_t nid = f->last + 1;
    feed_record *slot = &f->ring[nid % f->cap];
    feed_record old = *slot;
    *slot = (feed_record){nid, e, d};
    f->last = nid;
    pthread_mutex_unlock(&f->mu);
    feed_record_clear(&old);
    if (id)
        *id = nid;
    return RFM_OK;
}

uint64_t feed_last_id(feed *f)
{
    pthread_mutex_lock(&f->mu);
    uint64_t id = f->last;
    pthread_mutex_unlock(&f->mu);
    return id;
}

long feed_since(feed *f, uint64_t *pos, size_t max, feed_record *out, uint64_t *missed, int *gap)
{
    *missed = 0;
    *gap = 0;
    pthread_mutex_lock(&f->mu);
    uint64_t p = *pos;
    uint64_t oldest = f->last - f->base > f->cap ? f->last - f->cap + 1 : f->base + 1;
    if (p > f->last) {
        *gap = 2, p = f->last;
    } else if (p < f->base) {
        *gap = 2, p = oldest - 1;
    } else if (p + 1 < oldest) {
        *gap = 1, *missed = oldest - 1 - p, p = oldest - 1;
    }
    size_t n = 0;
    for (uint64_t id = p + 1; id <= f->last && n < max; id++, n++) {
        const feed_record *r = &f->ring[id % f->cap];
        out[n].id = id;
        out[n].event = strdup(r->event);
        out[n].data = strdup(r->data);
        if (!out[n].event || !out[n].data) {
            pthread_mutex_unlock(&f->mu);
            for (size_t k = 0; k <= n; k++)
                feed_record_clear(&out[k]);
            *missed = 0, *gap = 0;
            return -1;
        }
    }
    pthread_mutex_unlock(&f->mu);
    *pos = p + n;
    return (long)n;
}

/* The remembered entry of id (hash h), or NULL; under pmu. */
static pub *pub_find(feed *f, const char *id, uint64_t h)
{
    for (pub *p = f->table[h & (f->nbuckets - 1)]; p; p = p->next)
        if (p->h == h && strcmp(p->id, id) == 0)
            return p;
    return NULL;
}

/* Remember labels for id; out of memory or past pub_max leaves it
 * unremembered, which only makes the next comparison use the labels
 * before. Under pmu. */
static void pub_set(feed *f, const char *id, uint64_t h, pub *p, const feed_labels *l)
{
    if (!p) {
        if (f->npub >= f->pub_max)
            return;
        size_t len = strlen(id);
        if (!(p = calloc(1, sizeof *p + len + 1)))
            return;
        memcpy(p->id, id, len + 1);
        p->h = h;
        p->next = f->table[h & (f->nbuckets - 1)];
        f->table[h & (f->nbuckets - 1)] = p;
        f->npub++;
    }
    for (int k = 0; k < FEED_NFIELDS; k++) {
        if (!l->label[k])
            continue; /* not scored now: the last published label stays */
        if (p->label[k] && strcmp(p->label[k], l->label[k]) == 0)
            continue;
        char *c = strdup(l->label[k]);
        if (c) {
            free(p->label[k]);
            p->label[k] = c;
        }
    }
}

rfm_status feed_publish(feed *f, const char *customer_id, const char *time,
                        const feed_labels *before, const feed_labels *after, const json_t *scores,
                        size_t *published)
{
    if (published)
        *published = 0;
    pthread_mutex_lock(&f->pmu);
    uint64_t h = hash_bytes(customer_id, strlen(customer_id), 0x66656564);
    pub *p = f->table ? pub_find(f, customer_id, h) : NULL;
    feed_labels base = {{NULL}};
    if (p) {
        for (int k = 0; k < FEED_NFIELDS; k++)
            base.label[k] = p->label[k] ? p->label[k] : (before ? before->label[k] : NULL);
    } else if (before) {
        base = *before;
    }
    feed_change ch[FEED_NFIELDS];
    size_t n = feed_diff(&base, after, ch);
    rfm_status s = RFM_OK;
    json_t *empty = scores ? NULL : json_object();
    for (size_t i = 0; i < n && s == RFM_OK; i++) {
        json_t *rec = json_pack("{s:s,s:s,s:s,s:s,s:s,s:O}", "customer_id", customer_id, "time",
                                time, "field", feed_field_name(ch[i].field), "from", ch[i].from,
                                "to", ch[i].to, "scores", scores ? scores : empty);
        char *text = rec ? jsonout_dumps(rec, JSON_COMPACT) : NULL;
        json_decref(rec);
        uint64_t id = 0;
        s = text ? feed_push(f, "change", text, &id) : RFM_ENOMEM;
        if (s == RFM_OK) {
            for (size_t k = 0; k < f->nsub; k++)
                f->sub[k].fn(f->sub[k].ctx, id, customer_id, "change", text);
            if (published)
                (*published)++;
        }
        free(text);
    }
    json_decref(empty);
    /* Remembered: a customer with a published change (or one already
     * remembered, or with no before to compare with); an unchanged one
     * would only repeat its before, so the map stays small. */
    if (s == RFM_OK && f->table && (p || n > 0 || !before))
        pub_set(f, customer_id, h, p, after);
    pthread_mutex_unlock(&f->pmu);
    return s;
}

void feed_get_stats(feed *f, feed_stats *out)
{
    pthread_mutex_lock(&f->mu);
    out->records = f->last - f->base;
    out->capacity = f->cap;
    pthread_mutex_unlock(&f->mu);
    pthread_mutex_lock(&f->pmu);
    out->published_customers = f->npub;
    pthread_mutex_unlock(&f->pmu);
}
