/* state.c - the customer-state store (design in state.h and docs/events.md).
 *
 * Memory: every customer (cust) in an array indexed by cid - 1, found by
 * id through an open-addressing table; per customer its purchase days
 * sorted by day (with the day's spend), its invoices sorted by invoice hash
 * (with the earliest day), and the sorted hashes of its applied event lines
 * (to tell a repeated line). The seen event ids are 64-bit hashes in a set
 * with a ring of the newest seen_ids_max in arrival order.
 *
 * Disk (one SQLite file, WAL journal):
 *   meta      key -> value: format, snapshot day, applied_upto
 *   log       seq (rowid): one row per committed batch, its recorded event
 *             ids (hashes) and its applied lines; appended, so a commit
 *             writes a few pages. Kept until a re-seed: the lines are
 *             applied again on top of a newer training run, the ids give
 *             the seen set at an open.
 *   customers cid (rowid), id, seq, data: a customer's memory as of log
 *             row seq (days, invoices, line hashes, spend, last event)
 * A batch is one transaction: its log row plus a slice of the fold, which
 * sweeps the customers in cid order and writes those changed since their
 * row; the slice's size makes a sweep take at most fold_events events.
 * When a sweep ends, every log row up to the seq at which it began is in
 * the rows: applied_upto. An open loads the rows and replays the log after
 * applied_upto, each line only into a customer whose row is older than it.
 *
 * The writer's steps: (1) classify the batch against memory and a
 * batch-local overlay, without a lock (only the writer changes memory);
 * (2) append and commit, without a lock; (3) change memory under the write
 * lock, a few hundred lines at a time. So readers wait for memory changes
 * only, never for the disk.
 */
#include "state.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "date.h"
#include "hash.h"
#include "state_event.h"

enum { S_BEGIN, S_COMMIT, S_ROLLBACK, S_META_GET, S_META_PUT, S_LOG_INS, S_CUST_PUT, S_N };

static const char *const SQL[S_N] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [S_META_PUT] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
    [S_LOG_INS] = "INSERT INTO log(seq, ids, lines) VALUES (?1, ?2, ?3)",
    [S_CUST_PUT] = "INSERT OR REPLACE INTO customers(cid, id, seq, data) VALUES (?1, ?2, ?3, ?4)",
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS customers(cid INTEGER PRIMARY KEY, id TEXT NOT NULL,"
    " seq INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS log(seq INTEGER PRIMARY KEY, ids BLOB NOT NULL,"
    " lines BLOB NOT NULL);";

/* Seeds of the persisted hashes: never change them (the log holds them). */
#define SEED_EVENT_ID 0x5eed1d5ULL
#define SEED_CUST 0xc0570e5ULL

/* Smallest fold slice, bytes of customer rows visited per commit. */
#define FOLD_MIN_BYTES (64 * 1024)
/* Lines applied to memory per hold of the write lock. */
#define LOCK_CHUNK 256
/* Customers state_each reads per hold of the read lock. */
#define EACH_CHUNK 4096

/* ---- small containers ---------------------------------------------- */

/* A set of nonzero 64-bit hashes: open addressing, linear probing, load at
 * most 1/2, deletion by backward shift. */
typedef struct {
    uint64_t *slot;
    size_t mask, n; /* mask + 1 slots (0 when none) */
} u64set;

static uint64_t nz(uint64_t h) { return h ? h : 1; }

static int set_has(const u64set *s, uint64_t h)
{
    if (!s->slot)
        return 0;
    h = nz(h);
    for (size_t i = h & s->mask;; i = (i + 1) & s->mask) {
        if (s->slot[i] == h)
            return 1;
        if (!s->slot[i])
            return 0;
    }
}

static int set_resize(u64set *s, size_t cap)
{
    uint64_t *slot = calloc(cap, sizeof *slot);
    if (!slot)
        return -1;
    size_t mask = cap - 1;
    for (size_t i = 0; s->slot && i <= s->mask; i++)
        if (s->slot[i]) {
            size_t j = s->slot[i] & mask;
            while (slot[j])
                j = (j + 1) & mask;
            slot[j] = s->slot[i];
        }
    free(s->slot);
    s->slot = slot;
    s->mask = mask;
    return 0;
}

/* Room for need elements at load 1/2; -1 out of memory. */
static int set_reserve(u64set *s, size_t need)
{
    size_t cap = s->slot ? s->mask + 1 : 0;
    if (2 * need <= cap)
        return 0;
    size_t c = cap ? cap : 16;
    while (c < 2 * need)
        c *= 2;
    return set_resize(s, c);
}

/* 1 added, 0 present already, -1 out of memory. */
static int set_add(u64set *s, uint64_t h)
{
    if (set_reserve(s, s->n + 1) != 0)
        return -1;
    h = nz(h);
    size_t i = h & s->mask;
    for (; s->slot[i]; i = (i + 1) & s->mask)
        if (s->slot[i] == h)
            return 0;
    s->slot[i] = h;
    s->n++;
    return 1;
}

static void set_del(u64set *s, uint64_t h)
{
    if (!s->slot)
        return;
    h = nz(h);
    size_t i = h & s->mask;
    for (; s->slot[i] != h; i = (i + 1) & s->mask)
        if (!s->slot[i])
            return;
    for (size_t j = i;;) {
        j = (j + 1) & s->mask;
        if (!s->slot[j])
            break;
        size_t k = s->slot[j] & s->mask; /* its home */
        /* Leave it when its home lies cyclically in (i, j]. */
        int stay = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stay) {
            s->slot[i] = s->slot[j];
            i = j;
        }
    }
    s->slot[i] = 0;
    s->n--;
}

static void set_clear(u64set *s)
{
    if (s->slot)
        memset(s->slot, 0, (s->mask + 1) * sizeof *s->slot);
    s->n = 0;
}

/* A growable byte buffer (the log row being built, a customer row). */
typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const void *v, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (b->n + n > b->cap) {
        size_t c = b->cap ? 2 * b->cap : 4096;
        while (c < b->n + n)
            c *= 2;
        unsigned char *p = realloc(b->p, c);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p, b->cap = c;
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}

#define PUT(b, v)                                                                                  \
    do {                                                                                           \
        __typeof__(v) v_ = (v);                                                                    \
        put((b), &v_, sizeof v_);                                                                  \
    } while (0)

/* A bounds-checked reader of the same bytes. */
typedef struct {
    const unsigned char *p;
    size_t n, at;
    int bad;
} rd;

static void get(rd *r, void *v, size_t n)
{
    if (r->bad || r->n - r->at < n) {
        r->bad = 1;
        memset(v, 0, n);
        return;
    }
    memcpy(v, r->p + r->at, n);
    r->at += n;
}

/* ---- customers ------------------------------------------------------ */

typedef struct {
    int32_t day;
    double spend; /* that day's */
} sday;

typedef struct {
    uint64_t ih;
    int32_t day;   /* of its earliest line */
    uint16_t type; /* the smallest kind code of its lines (order-free) */
} sinv;

/* Interactions of a kind other than a purchase, per day. */
typedef struct {
    int32_t day;
    uint16_t code; /* the kind */
    uint32_t count;
} sint;

typedef struct {
    char *id; /* NUL-terminated, owned; NULL: an empty slot */
    uint32_t idlen;
    uint32_t ndays, ninv, nlh, nit;
    uint32_t capd, capi, capl, capt;
    sday *days;   /* sorted by day */
    sinv *inv;    /* sorted by ih */
    uint64_t *lh; /* hashes of the applied event lines, sorted */
    sint *it;     /* interactions, sorted by day and kind */
    double monetary;
    int64_t last_at; /* unix seconds of the latest applied event; INT64_MIN: none */
    int64_t seq;     /* log row its stored row reflects; -1: no row */
    int dirty;       /* changed since its row was written */
    int gone;        /* to be erased (purge) */
} cust;

/* A slot of the id table: the customer's index + 1 (0: empty) and the high
 * half of its id hash, so most probes compare no text. */
typedef struct {
    uint32_t idx1, tag;
} cslot;

/* The customers: everything readers see. */
typedef struct {
    cust *c;
    size_t n, cap; /* cids 1..n */
    cslot *slot;
    size_t mask;  /* mask + 1 slots */
    size_t nlive; /* customers (non-empty slots of c) */
    /* Totals for the size of the customer rows (the fold's pace). */
    uint64_t tdays, tinv, tlh, tid, tit;
} custs;

static void cust_free(cust *c)
{
    free(c->id);
    free(c->days);
    free(c->inv);
    free(c->lh);
    free(c->it);
    memset(c, 0, sizeof *c);
}

static void custs_free(custs *cs)
{
    for (size_t i = 0; i < cs->n; i++)
        cust_free(&cs->c[i]);
    free(cs->c);
    free(cs->slot);
    memset(cs, 0, sizeof *cs);
}

static uint64_t id_hash(const char *id, size_t len) { return hash_bytes(id, len, SEED_CUST); }

/* Index of the customer id (len bytes), or -1. */
static long custs_find(const custs *cs, const char *id, size_t len)
{
    if (!cs->slot)
        return -1;
    uint64_t h = id_hash(id, len);
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = h & cs->mask;; i = (i + 1) & cs->mask) {
        const cslot *s = &cs->slot[i];
        if (!s->idx1)
            return -1;
        const cust *c = &cs->c[s->idx1 - 1];
        if (s->tag == tag && c->idlen == len && memcmp(c->id, id, len) == 0)
            return (long)s->idx1 - 1;
    }
}

static void slot_put(cslot *slot, size_t mask, const cust *c, uint32_t idx1)
{
    uint64_t h = id_hash(c->id, c->idlen);
    size_t i = h & mask;
    while (slot[i].idx1)
        i = (i + 1) & mask;
    slot[i] = (cslot){idx1, (uint32_t)(h >> 32)};
}

/* Take customer idx (its id still set) out of the id table: backward
 * shift, as set_del. */
static void slot_del(custs *cs, size_t idx)
{
    const cust *c = &cs->c[idx];
    size_t i = id_hash(c->id, c->idlen) & cs->mask;
    for (; cs->slot[i].idx1 != idx + 1; i = (i + 1) & cs->mask)
        if (!cs->slot[i].idx1)
            return;
    for (size_t j = i;;) {
        j = (j + 1) & cs->mask;
        if (!cs->slot[j].idx1)
            break;
        const cust *o = &cs->c[cs->slot[j].idx1 - 1];
        size_t k = id_hash(o->id, o->idlen) & cs->mask; /* its home */
        int stay = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stay) {
            cs->slot[i] = cs->slot[j];
            i = j;
        }
    }
    cs->slot[i] = (cslot){0, 0};
}

/* Room for n customers in the array; -1 out of memory. */
static int custs_reserve_array(custs *cs, size_t n)
{
    if (n > UINT32_MAX - 1)
        return -1;
    if (n > cs->cap) {
        size_t cap = cs->cap ? 2 * cs->cap : 1024;
        while (cap < n)
            cap *= 2;
        cust *c = realloc(cs->c, cap * sizeof *c);
        if (!c)
            return -1;
        memset(c + cs->cap, 0, (cap - cs->cap) * sizeof *c);
        cs->c = c, cs->cap = cap;
    }
    return 0;
}

/* The id table anew for room for n customers, from the array: 0, -1 out
 * of memory (the old table kept), -2 two customers with one id. The ids'
 * slots are fetched some customers ahead: at an open the table is far
 * larger than the caches, and each insert is a miss. */
static int custs_index(custs *cs, size_t n)
{
    size_t s = 2048;
    while (s < 2 * n)
        s *= 2;
    cslot *slot = calloc(s, sizeof *slot);
    if (!slot)
        return -1;
    size_t mask = s - 1;
    enum { AHEAD = 16 };
    uint64_t h[AHEAD];
    for (size_t i = 0; i < cs->n + AHEAD; i++) {
        /* Insert customer i - AHEAD, then hash and fetch for i (same place
         * of h). */
        if (i >= AHEAD && cs->c[i - AHEAD].id) {
            size_t k = i - AHEAD;
            const cust *c = &cs->c[k];
            uint64_t hk = h[k % AHEAD];
            uint32_t tag = (uint32_t)(hk >> 32);
            size_t j = hk & mask;
            for (; slot[j].idx1; j = (j + 1) & mask) {
                const cust *o = &cs->c[slot[j].idx1 - 1];
                if (slot[j].tag == tag && o->idlen == c->idlen &&
                    memcmp(o->id, c->id, c->idlen) == 0) {
                    free(slot);
                    return -2;
                }
            }
            slot[j] = (cslot){(uint32_t)k + 1, tag};
        }
        if (i < cs->n && cs->c[i].id) {
            h[i % AHEAD] = id_hash(cs->c[i].id, cs->c[i].idlen);
            __builtin_prefetch(&slot[h[i % AHEAD] & mask], 1);
        }
    }
    free(cs->slot);
    cs->slot = slot, cs->mask = mask;
    return 0;
}

/* Room for n customers (array and table); -1 out of memory. */
static int custs_reserve(custs *cs, size_t n)
{
    if (custs_reserve_array(cs, n) != 0)
        return -1;
    size_t slots = cs->slot ? cs->mask + 1 : 0;
    if (2 * n > slots && custs_index(cs, n > 2 * cs->n ? n : 2 * cs->n) != 0)
        return -1;
    return 0;
}

/* Put a customer at cid (>= 1; the array grows to it), taking id. -1 out
 * of memory (id freed). */
static int custs_put(custs *cs, int64_t cid, char *id, size_t len)
{
    if (cid < 1 || (uint64_t)cid > UINT32_MAX - 1 || custs_reserve(cs, (size_t)cid) != 0) {
        free(id);
        return -1;
    }
    cust *c = &cs->c[cid - 1];
    c->id = id;
    c->idlen = (uint32_t)len;
    c->last_at = INT64_MIN;
    c->seq = -1;
    if ((size_t)cid > cs->n)
        cs->n = (size_t)cid;
    slot_put(cs->slot, cs->mask, c, (uint32_t)cid);
    cs->nlive++;
    cs->tid += len;
    return 0;
}

/* The customer id, created (at the next cid) when absent; -1 out of memory. */
static long custs_get(custs *cs, const char *id, size_t len)
{
    long k = custs_find(cs, id, len);
    if (k >= 0)
        return k;
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, id, len);
    copy[len] = '\0';
    if (custs_put(cs, (int64_t)cs->n + 1, copy, len) != 0)
        return -1;
    return (long)cs->n - 1;
}

static int grow(void **p, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    uint32_t c = *cap ? *cap : 2;
    while (c < need)
        c = c > UINT32_MAX / 2 ? UINT32_MAX : 2 * c;
    void *q = realloc(*p, (size_t)c * size);
    if (!q)
        return -1;
    *p = q, *cap = c;
    return 0;
}

/* First index whose key is >= k, in a sorted array. */
#define LOWER_BOUND(arr, n, field, k)                                                              \
    ({                                                                                             \
        uint32_t lo_ = 0, hi_ = (n);                                                               \
        while (lo_ < hi_) {                                                                        \
            uint32_t mid_ = lo_ + (hi_ - lo_) / 2;                                                 \
            if ((arr)[mid_] field < (k))                                                           \
                lo_ = mid_ + 1;                                                                    \
            else                                                                                   \
                hi_ = mid_;                                                                        \
        }                                                                                          \
        lo_;                                                                                       \
    })

static int has_line(const cust *c, uint64_t lh)
{
    uint32_t i = LOWER_BOUND(c->lh, c->nlh, , lh);
    return i < c->nlh && c->lh[i] == lh;
}

/* Add a day's spend (a new day, or more spend on one). */
static int add_day(custs *cs, cust *c, int32_t day, double spend)
{
    uint32_t i = LOWER_BOUND(c->days, c->ndays, .day, day);
    if (i < c->ndays && c->days[i].day == day) {
        c->days[i].spend += spend;
        return 0;
    }
    if (grow((void **)&c->days, &c->capd, c->ndays + 1, sizeof *c->days) != 0)
        return -1;
    memmove(c->days + i + 1, c->days + i, (c->ndays - i) * sizeof *c->days);
    c->days[i] = (sday){day, spend};
    c->ndays++;
    cs->tdays++;
    return 0;
}

/* Add an invoice, or date a known one by its earliest line (and give it
 * the smallest kind code of its lines). */
static int add_invoice(custs *cs, cust *c, uint64_t ih, int32_t day, uint16_t code)
{
    uint32_t i = LOWER_BOUND(c->inv, c->ninv, .ih, ih);
    if (i < c->ninv && c->inv[i].ih == ih) {
        if (day < c->inv[i].day)
            c->inv[i].day = day;
        if (code < c->inv[i].type)
            c->inv[i].type = code;
        return 0;
    }
    if (grow((void **)&c->inv, &c->capi, c->ninv + 1, sizeof *c->inv) != 0)
        return -1;
    memmove(c->inv + i + 1, c->inv + i, (c->ninv - i) * sizeof *c->inv);
    c->inv[i] = (sinv){ih, day, code};
    c->ninv++;
    cs->tinv++;
    return 0;
}

/* One more interaction of kind code on day. */
static int add_interaction(custs *cs, cust *c, int32_t day, uint16_t code)
{
    uint32_t lo = 0, hi = c->nit;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const sint *t = &c->it[mid];
        if (t->day < day || (t->day == day && t->code < code))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->nit && c->it[lo].day == day && c->it[lo].code == code) {
        c->it[lo].count++;
        return 0;
    }
    if (grow((void **)&c->it, &c->capt, c->nit + 1, sizeof *c->it) != 0)
        return -1;
    memmove(c->it + lo + 1, c->it + lo, (c->nit - lo) * sizeof *c->it);
    c->it[lo] = (sint){day, code, 1};
    c->nit++;
    cs->tit++;
    return 0;
}

/* 1 added, 0 known, -1 out of memory. */
static int add_lh(custs *cs, cust *c, uint64_t lh)
{
    uint32_t i = LOWER_BOUND(c->lh, c->nlh, , lh);
    if (i < c->nlh && c->lh[i] == lh)
        return 0;
    if (grow((void **)&c->lh, &c->capl, c->nlh + 1, sizeof *c->lh) != 0)
        return -1;
    memmove(c->lh + i + 1, c->lh + i, (c->nlh - i) * sizeof *c->lh);
    c->lh[i] = lh;
    c->nlh++;
    cs->tlh++;
    return 1;
}

/* One applied event, as the log keeps it: a purchase line (kind 0) or an
 * interaction of another kind (kind 1: no lh, ih, spend). */
enum { REC_PURCHASE = 0, REC_INTERACTION = 1 };
typedef struct {
    uint8_t kind;
    uint16_t code; /* the event's kind code (the store's, not the config's index) */
    const char *cid;
    uint16_t cidlen;
    uint64_t lh, ih;
    int32_t day;
    int64_t at;
    double spend;
} line_rec;

/* Apply a line to customer c: the same fold as txn_read's (a day's spend
 * sums its lines, an invoice is dated by its earliest line). A line known
 * already changes nothing. -1 out of memory (c may then hold part of it:
 * the caller reloads). */
static int apply_line(custs *cs, cust *c, const line_rec *l)
{
    if (l->kind == REC_INTERACTION) {
        if (add_interaction(cs, c, l->day, l->code) != 0)
            return -1;
        if (l->at > c->last_at)
            c->last_at = l->at;
        c->dirty = 1;
        return 0;
    }
    int k = add_lh(cs, c, l->lh);
    if (k <= 0)
        return k;
    if (add_day(cs, c, l->day, l->spend) != 0 || add_invoice(cs, c, l->ih, l->day, l->code) != 0)
        return -1;
    c->monetary += l->spend;
    if (l->at > c->last_at)
        c->last_at = l->at;
    c->dirty = 1;
    return 0;
}

/* Bytes of a customer's row (its data blob and id). */
static uint64_t row_bytes(const cust *c)
{
    return 36 + c->idlen + 12 * (uint64_t)c->ndays + 14 * (uint64_t)c->ninv + 8 * (uint64_t)c->nlh +
           10 * (uint64_t)c->nit;
}

static uint64_t table_bytes(const custs *cs)
{
    return 36 * (uint64_t)cs->nlive + cs->tid + 12 * cs->tdays + 14 * cs->tinv + 8 * cs->tlh +
           10 * cs->tit;
}

#define ROW_VERSION 1

static void encode_cust(const cust *c, buf *b)
{
    b->n = 0;
    PUT(b, (uint8_t)ROW_VERSION);
    PUT(b, c->monetary);
    PUT(b, c->last_at);
    PUT(b, c->ndays);
    PUT(b, c->ninv);
    PUT(b, c->nlh);
    PUT(b, c->nit);
    for (uint32_t i = 0; i < c->ndays; i++) {
        PUT(b, c->days[i].day);
        PUT(b, c->days[i].spend);
    }
    for (uint32_t i = 0; i < c->ninv; i++) {
        PUT(b, c->inv[i].ih);
        PUT(b, c->inv[i].day);
        PUT(b, c->inv[i].type);
    }
    put(b, c->lh, (size_t)c->nlh * sizeof *c->lh);
    for (uint32_t i = 0; i < c->nit; i++) {
        PUT(b, c->it[i].day);
        PUT(b, c->it[i].code);
        PUT(b, c->it[i].count);
    }
}

/* Fill c (empty, id set) from its row; 0, -1 damaged, -2 out of memory. */
static int decode_cust(custs *cs, cust *c, const void *p, size_t n)
{
    rd r = {p, n, 0, 0};
    uint8_t v;
    uint32_t nd, ni, nl, nt;
    get(&r, &v, 1);
    get(&r, &c->monetary, 8);
    get(&r, &c->last_at, 8);
    get(&r, &nd, 4);
    get(&r, &ni, 4);
    get(&r, &nl, 4);
    get(&r, &nt, 4);
    if (r.bad || v != ROW_VERSION ||
        (uint64_t)nd * 12 + (uint64_t)ni * 14 + (uint64_t)nl * 8 + (uint64_t)nt * 10 != r.n - r.at)
        return -1;
    if ((nd && !(c->days = malloc((size_t)nd * sizeof *c->days))) ||
        (ni && !(c->inv = malloc((size_t)ni * sizeof *c->inv))) ||
        (nl && !(c->lh = malloc((size_t)nl * sizeof *c->lh))) ||
        (nt && !(c->it = malloc((size_t)nt * sizeof *c->it))))
        return -2;
    c->ndays = c->capd = nd;
    c->ninv = c->capi = ni;
    c->nlh = c->capl = nl;
    c->nit = c->capt = nt;
    /* The length was checked above: read the arrays without more checks. */
    const unsigned char *q = r.p + r.at;
    for (uint32_t i = 0; i < nd; i++, q += 12) {
        memcpy(&c->days[i].day, q, 4);
        memcpy(&c->days[i].spend, q + 4, 8);
        if (i && c->days[i].day <= c->days[i - 1].day)
            return -1;
    }
    for (uint32_t i = 0; i < ni; i++, q += 14) {
        memcpy(&c->inv[i].ih, q, 8);
        memcpy(&c->inv[i].day, q + 8, 4);
        memcpy(&c->inv[i].type, q + 12, 2);
        if (i && c->inv[i].ih <= c->inv[i - 1].ih)
            return -1;
    }
    if (nl)
        memcpy(c->lh, q, (size_t)nl * 8);
    q += (size_t)nl * 8;
    for (uint32_t i = 1; i < nl; i++)
        if (c->lh[i] <= c->lh[i - 1])
            return -1;
    for (uint32_t i = 0; i < nt; i++, q += 10) {
        memcpy(&c->it[i].day, q, 4);
        memcpy(&c->it[i].code, q + 4, 2);
        memcpy(&c->it[i].count, q + 6, 4);
        if (i && (c->it[i].day < c->it[i - 1].day ||
                  (c->it[i].day == c->it[i - 1].day && c->it[i].code <= c->it[i - 1].code)))
            return -1;
    }
    cs->tdays += nd, cs->tinv += ni, cs->tlh += nl, cs->tit += nt;
    return 0;
}

static void encode_line(buf *b, const line_rec *l)
{
    PUT(b, l->kind);
    PUT(b, l->code);
    PUT(b, l->cidlen);
    put(b, l->cid, l->cidlen);
    PUT(b, l->day);
    PUT(b, l->at);
    if (l->kind == REC_PURCHASE) {
        PUT(b, l->lh);
        PUT(b, l->ih);
        PUT(b, l->spend);
    }
}

/* The next line of a log row; 1 read, 0 at the end, -1 damaged. */
static int decode_line(rd *r, line_rec *l)
{
    if (r->at == r->n)
        return 0;
    memset(l, 0, sizeof *l);
    get(r, &l->kind, 1);
    get(r, &l->code, 2);
    get(r, &l->cidlen, 2);
    if (r->bad || l->kind > REC_INTERACTION || r->n - r->at < l->cidlen)
        return -1;
    l->cid = (const char *)r->p + r->at;
    r->at += l->cidlen;
    get(r, &l->day, 4);
    get(r, &l->at, 8);
    if (l->kind == REC_PURCHASE) {
        get(r, &l->lh, 8);
        get(r, &l->ih, 8);
        get(r, &l->spend, 8);
    }
    return r->bad ? -1 : 1;
}

/* ---- the seen ids ----------------------------------------------------- */

/* The newest max event ids (hashes): a set, and a ring in arrival order
 * to forget the oldest. Only the writer uses it. */
typedef struct {
    u64set set;
    uint64_t *ring;
    size_t cap, head, n, max;
} seen_ids;

static void seen_free(seen_ids *s)
{
    free(s->set.slot);
    free(s->ring);
    memset(s, 0, sizeof *s);
}

/* Record an id known to be new; -1 out of memory (nothing changed). */
static int seen_push(seen_ids *s, uint64_t h)
{
    if (s->n == s->max) {
        set_del(&s->set, s->ring[s->head]);
        s->head = (s->head + 1) % s->cap;
        s->n--;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 4096;
        if (cap > s->max)
            cap = s->max;
        uint64_t *r = malloc(cap * sizeof *r);
        if (!r)
            return -1;
        for (size_t i = 0; i < s->n; i++)
            r[i] = s->ring[(s->head + i) % s->cap];
        free(s->ring);
        s->ring = r, s->cap = cap, s->head = 0;
    }
    if (set_add(&s->set, h) < 0)
        return -1;
    s->ring[(s->head + s->n) % s->cap] = nz(h);
    s->n++;
    return 0;
}

/* The ids of an open, oldest first, into an empty set; as seen_push each,
 * with the slots fetched ahead (as custs_index). -1 out of memory. */
static int seen_load(seen_ids *s, const uint64_t *ids, size_t n)
{
    if (n > s->max)
        ids += n - s->max, n = s->max;
    if (set_reserve(&s->set, n) != 0 || (n && !(s->ring = malloc(n * sizeof *s->ring))))
        return -1;
    s->cap = n;
    enum { AHEAD = 16 };
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n)
            __builtin_prefetch(&s->set.slot[nz(ids[i + AHEAD]) & s->set.mask], 1);
        /* An id recorded twice (resent after it was forgotten) once. */
        if (set_add(&s->set, ids[i]) == 1)
            s->ring[s->n++] = nz(ids[i]);
    }
    return 0;
}

static uint64_t event_hash(const char *id) { return hash_bytes(id, strlen(id), SEED_EVENT_ID); }

/* ---- the store -------------------------------------------------------- */

struct state_store {
    sqlite3 *db;
    sqlite3_stmt *s[S_N];
    state_options opt;
    char *cancel_prefix; /* owned copy */
    char *path;
    int32_t snapshot_day; /* atomic: read by any thread */
    /* The kinds: the config's, and the store's codes for their names
     * (meta "type:NAME" -> code, never reused). */
    engagement_options types;
    uint16_t code_of[ENGAGEMENT_TYPES_MAX]; /* config index -> code */
    int index_of[256];                      /* code -> config index, or -1 */
    uint16_t seed_code;                     /* of the seeded invoices */
    pthread_rwlock_t lock;                  /* cs: readers against the writer's changes */
    custs cs;
    seen_ids seen;
    int64_t seq;          /* the last log row in memory */
    int64_t applied_upto; /* every log row up to it is in the customer rows */
    /* The fold's sweep: the next cid - 1 to visit, and the seq when the
     * sweep began. */
    size_t sweep;
    int64_t sweep_seq;
    /* Scratch of the writer, kept between batches. */
    u64set batch_ids, batch_lines;
    buf ids, lines, row;
    uint32_t *folded;
    size_t nfolded, capfolded;
};

void state_default_options(state_options *o)
{
    o->synchronous = STATE_SYNC_FULL;
    o->seen_ids_max = 10000000;
    o->cancel_prefix = "C";
    o->max_pages = 0;
    o->cache_mb = 256;
    o->fold_events = 250000;
    o->types = NULL;
    o->is_erased = NULL;
    o->erased = NULL;
}

const char *state_check_options(const state_options *o, char *buf_, size_t len)
{
    if (o->synchronous != STATE_SYNC_FULL && o->synchronous != STATE_SYNC_NORMAL)
        snprintf(buf_, len, "synchronous must be full or normal");
    else if (o->seen_ids_max < 1000 || o->seen_ids_max > (uint64_t)1 << 40)
        snprintf(buf_, len, "seen_ids_max must be from 1000 to 2^40");
    else if (o->cache_mb < 1 || o->cache_mb > 1 << 20)
        snprintf(buf_, len, "cache_mb must be from 1 to 1048576");
    else if (o->max_pages > (uint64_t)INT32_MAX * 2)
        snprintf(buf_, len, "max_pages must be at most 2^32 - 2 (SQLite's limit)");
    else if (o->fold_events < 1000 || o->fold_events > (uint64_t)1 << 40)
        snprintf(buf_, len, "fold_events must be from 1000 to 2^40");
    else
        return NULL;
    return buf_;
}

const char *state_outcome_name(state_outcome o)
{
    static const char *const names[] = {"applied", "ignored", "duplicate", "rejected"};
    return (unsigned)o < 4 ? names[o] : "unknown";
}

const char *state_reason_name(state_reason r)
{
    static const char *const names[STATE_NREASONS] = {
        "ok",       "bad_event_id", "missing_customer_id",  "bad_time",          "bad_number",
        "bad_text", "cancelled",    "nonpositive_quantity", "nonpositive_price", "repeated_line",
        "bad_type", "erased",
    };
    return (unsigned)r < STATE_NREASONS ? names[r] : "unknown";
}

/* ---- SQLite helpers ------------------------------------------------ */

/* The status of a failed SQLite call, with "state PATH: what: message". */
static rfm_status sqlfail(state_store *st, int rc, const char *what, char *err, size_t errlen)
{
    int base = rc & 0xff;
    const char *msg = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
    rfm_status s = base == SQLITE_FULL                               ? RFM_ENOSPC
                   : base == SQLITE_NOMEM                            ? RFM_ENOMEM
                   : base == SQLITE_NOTADB || base == SQLITE_CORRUPT ? RFM_EFORMAT
                   : base == SQLITE_BUSY || base == SQLITE_LOCKED    ? RFM_EBUSY
                                                                     : RFM_EIO;
    if (s == RFM_ENOSPC)
        return rfm_fail(err, errlen, s,
                        "state %s: %s: the disk (or the cap, state.max_mb) is full "
                        "(%s); nothing of the batch was written",
                        st->path, what, msg);
    return rfm_fail(err, errlen, s, "state %s: %s: %s", st->path, what, msg);
}

/* Step a statement that returns no row (or whose row is not wanted), then
 * reset it. Returns the SQLite code: SQLITE_DONE or SQLITE_ROW is success. */
static int run(sqlite3_stmt *q)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void rollback(state_store *st)
{
    if (st->db && !sqlite3_get_autocommit(st->db))
        (void)run(st->s[S_ROLLBACK]);
}

static int meta_get_int(state_store *st, const char *key, int64_t *v)
{
    sqlite3_stmt *q = st->s[S_META_GET];
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? SQLITE_OK : rc == SQLITE_DONE ? SQLITE_NOTFOUND : rc;
}

static int meta_put_int(state_store *st, const char *key, int64_t v)
{
    sqlite3_stmt *q = st->s[S_META_PUT];
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, v);
    return run(q);
}

static int exec_pragma(state_store *st, const char *sql, char *answer, size_t len)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &q, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(q);
    if (answer && len) {
        answer[0] = '\0';
        if (rc == SQLITE_ROW && sqlite3_column_text(q, 0))
            snprintf(answer, len, "%s", (const char *)sqlite3_column_text(q, 0));
    }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Close the connection, keeping the rest of st. */
static void disconnect(state_store *st)
{
    for (int k = 0; k < S_N; k++) {
        sqlite3_finalize(st->s[k]);
        st->s[k] = NULL;
    }
    if (st->db)
        sqlite3_close(st->db);
    st->db = NULL;
}

/* Open st->path with st->opt: pragmas, schema, statements, format. On
 * failure the connection is closed again. Memory is not touched. */
static rfm_status connect(state_store *st, char *err, size_t errlen)
{
    const char *path = st->path;
    const state_options *opt = &st->opt;
    rfm_status s;
    int rc = sqlite3_open_v2(
        path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        s = rfm_fail(err, errlen, RFM_EIO, "state %s: cannot open: %s", path,
                     st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        disconnect(st);
        return s;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, 5000);
    char mode[16], sql[64];
    if ((rc = exec_pragma(st, "PRAGMA journal_mode=WAL", mode, sizeof mode)) != SQLITE_OK)
        goto sqlerr;
    if (strcmp(mode, "wal") != 0) {
        s = rfm_fail(err, errlen, RFM_EIO,
                     "state %s: the WAL journal cannot be used here "
                     "(journal mode %s): put the store on a local file system",
                     path, mode);
        disconnect(st);
        return s;
    }
    if ((rc = exec_pragma(st,
                          opt->synchronous == STATE_SYNC_FULL ? "PRAGMA synchronous=FULL"
                                                              : "PRAGMA synchronous=NORMAL",
                          NULL, 0)) != SQLITE_OK)
        goto sqlerr;
    /* The WAL is folded into the file every ~40 MB rather than every 4 MB,
     * so fewer checkpoints (each an fsync of the file) interrupt batches. */
    snprintf(sql, sizeof sql, "PRAGMA cache_size=-%llu",
             (unsigned long long)(opt->cache_mb ? opt->cache_mb : 1) * 1024);
    /* Deleted content is zeroed (also in freed pages), so that an erased
     * customer's bytes do not stay in the file (state_erase). */
    if ((rc = exec_pragma(st, sql, NULL, 0)) != SQLITE_OK ||
        (rc = exec_pragma(st, "PRAGMA secure_delete=ON", NULL, 0)) != SQLITE_OK ||
        (rc = exec_pragma(st, "PRAGMA wal_autocheckpoint=10000", NULL, 0)) != SQLITE_OK ||
        (rc = exec_pragma(st, "PRAGMA temp_store=MEMORY", NULL, 0)) != SQLITE_OK)
        goto sqlerr;
    if (opt->max_pages) {
        snprintf(sql, sizeof sql, "PRAGMA max_page_count=%llu", (unsigned long long)opt->max_pages);
        if ((rc = exec_pragma(st, sql, NULL, 0)) != SQLITE_OK)
            goto sqlerr;
    }
    if ((rc = sqlite3_exec(st->db, SCHEMA, NULL, NULL, NULL)) != SQLITE_OK)
        goto sqlerr;
    for (int k = 0; k < S_N; k++)
        if ((rc = sqlite3_prepare_v3(st->db, SQL[k], -1, SQLITE_PREPARE_PERSISTENT, &st->s[k],
                                     NULL)) != SQLITE_OK)
            goto sqlerr;
    int64_t v;
    rc = meta_get_int(st, "format", &v);
    if (rc == SQLITE_NOTFOUND) {
        if ((rc = meta_put_int(st, "format", STATE_FORMAT)) != SQLITE_OK)
            goto sqlerr;
    } else if (rc != SQLITE_OK) {
        goto sqlerr;
    } else if (v != STATE_FORMAT) {
        s = rfm_fail(err, errlen, RFM_EFORMAT,
                     "state %s: format %lld, this build reads format "
                     "%d: move the file away and start again (it is seeded from the models "
                     "and the events are sent again)",
                     path, (long long)v, STATE_FORMAT);
        disconnect(st);
        return s;
    }
    return RFM_OK;
sqlerr:
    s = sqlfail(st, rc, "open", err, errlen);
    disconnect(st);
    return s;
}

/* A store whose reconnect failed tries again at its next call. */
static rfm_status ready(state_store *st, char *err, size_t errlen)
{
    return st->db ? RFM_OK : connect(st, err, errlen);
}

/* After a failed write: roll back, and when the failure came from the
 * disk, open the connection again so that it reads the file and its log
 * as they are (a connection whose log write failed can keep a stale view
 * of the log). A failed reconnect leaves st->db NULL: later calls answer
 * RFM_EIO until it succeeds. Memory is unchanged: it changes only after a
 * commit. */
static void recover(state_store *st, int rc)
{
    rollback(st);
    int base = rc & 0xff;
    if (base == SQLITE_FULL || base == SQLITE_IOERR) {
        disconnect(st);
        char err[8];
        (void)connect(st, err, sizeof err);
    }
}

/* ---- load ------------------------------------------------------------- */

static rfm_status damaged(state_store *st, const char *what, int64_t key, char *err, size_t errlen)
{
    return rfm_fail(err, errlen, RFM_EFORMAT,
                    "state %s: %s %lld is damaged: restore a backup, or move the file away "
                    "(it is seeded again from the models and the events are sent again)",
                    st->path, what, (long long)key);
}

static rfm_status load_tables(state_store *st, char *err, size_t errlen);

/* Memory from the file: customer rows, the newest ids, the log replayed
 * after applied_upto. */
static rfm_status load(state_store *st, char *err, size_t errlen)
{
    rfm_status s;
    /* The file read through a mapping while loading (a third less time at
     * a million customers); not while serving, where a read error of a
     * mapping would be a signal rather than an error code. */
    int rc = exec_pragma(st, "PRAGMA mmap_size=1073741824", NULL, 0);
    if (rc != SQLITE_OK)
        goto sqlerr;
    s = load_tables(st, err, errlen);
    rc = exec_pragma(st, "PRAGMA mmap_size=0", NULL, 0);
    if (s == RFM_OK && rc != SQLITE_OK)
        goto sqlerr;
    return s;
sqlerr:
    return sqlfail(st, rc, "load", err, errlen);
}

static rfm_status load_tables(state_store *st, char *err, size_t errlen)
{
    int64_t v;
    int rc;
    rfm_status s = RFM_OK;
    sqlite3_stmt *q = NULL;
    st->snapshot_day = DATE_NONE;
    st->applied_upto = 0;
    if ((rc = meta_get_int(st, "snapshot_day", &v)) == SQLITE_OK)
        st->snapshot_day = (int32_t)v;
    else if (rc != SQLITE_NOTFOUND)
        goto sqlerr;
    if ((rc = meta_get_int(st, "applied_upto", &v)) == SQLITE_OK)
        st->applied_upto = v;
    else if (rc != SQLITE_NOTFOUND)
        goto sqlerr;
    /* Customers. */
    if ((rc = sqlite3_prepare_v2(st->db, "SELECT max(cid), count(*) FROM customers", -1, &q,
                                 NULL)) != SQLITE_OK ||
        (rc = sqlite3_step(q)) != SQLITE_ROW)
        goto sqlerr;
    int64_t maxcid = sqlite3_column_int64(q, 0), count = sqlite3_column_int64(q, 1);
    sqlite3_finalize(q);
    q = NULL;
    if (maxcid < 0 || maxcid >= UINT32_MAX - 1 || count > maxcid)
        return damaged(st, "the customers table, cid", maxcid, err, errlen);
    if (maxcid && custs_reserve_array(&st->cs, (size_t)maxcid) != 0)
        goto oom;
    if ((rc = sqlite3_prepare_v2(st->db, "SELECT cid, id, seq, data FROM customers", -1, &q,
                                 NULL)) != SQLITE_OK)
        goto sqlerr;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t cid = sqlite3_column_int64(q, 0);
        const char *id = (const char *)sqlite3_column_text(q, 1);
        size_t len = (size_t)sqlite3_column_bytes(q, 1);
        if (cid < 1 || cid > maxcid || !id || len > STATE_ID_MAX || st->cs.c[cid - 1].id)
            return sqlite3_finalize(q), damaged(st, "customer row", cid, err, errlen);
        /* Placed by cid; the id table is built once they are all in. */
        cust *c = &st->cs.c[cid - 1];
        if (!(c->id = strdup(id)))
            goto oom;
        c->idlen = (uint32_t)len;
        if ((size_t)cid > st->cs.n)
            st->cs.n = (size_t)cid;
        st->cs.nlive++;
        st->cs.tid += len;
        c->seq = sqlite3_column_int64(q, 2);
        int d =
            decode_cust(&st->cs, c, sqlite3_column_blob(q, 3), (size_t)sqlite3_column_bytes(q, 3));
        if (d == -2)
            goto oom;
        if (d != 0)
            return sqlite3_finalize(q), damaged(st, "customer row", cid, err, errlen);
    }
    if (rc != SQLITE_DONE)
        goto sqlerr;
    sqlite3_finalize(q);
    q = NULL;
    int ix = custs_index(&st->cs, st->cs.n);
    if (ix == -1)
        goto oom;
    if (ix == -2)
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "state %s: the customers table has a customer id twice: restore a "
                        "backup, or move the file away (it is seeded again from the models and "
                        "the events are sent again)",
                        st->path);
    /* The newest ids, read from the end of the log. */
    uint64_t *ids = NULL;
    size_t nids = 0, capids = 0;
    if ((rc = sqlite3_prepare_v2(st->db, "SELECT seq, ids FROM log ORDER BY seq DESC", -1, &q,
                                 NULL)) != SQLITE_OK)
        goto sqlerr;
    st->seq = 0;
    while (nids < st->seen.max && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(q, 0);
        if (seq > st->seq)
            st->seq = seq;
        const unsigned char *p = sqlite3_column_blob(q, 1);
        size_t n = (size_t)sqlite3_column_bytes(q, 1);
        if (n % 8) {
            free(ids);
            return sqlite3_finalize(q), damaged(st, "log row", seq, err, errlen);
        }
        for (size_t k = n / 8; k-- > 0 && nids < st->seen.max;) {
            if (nids == capids) {
                size_t c = capids ? 2 * capids : 4096;
                uint64_t *x = realloc(ids, c * sizeof *x);
                if (!x) {
                    free(ids);
                    goto oom;
                }
                ids = x, capids = c;
            }
            memcpy(&ids[nids++], p + 8 * k, 8);
        }
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        free(ids);
        goto sqlerr;
    }
    sqlite3_finalize(q);
    q = NULL;
    for (size_t k = 0; k < nids / 2; k++) { /* oldest first */
        uint64_t t = ids[k];
        ids[k] = ids[nids - 1 - k], ids[nids - 1 - k] = t;
    }
    int sl = seen_load(&st->seen, ids, nids);
    free(ids);
    if (sl != 0)
        goto oom;
    if ((rc = sqlite3_prepare_v2(st->db, "SELECT max(seq) FROM log", -1, &q, NULL)) != SQLITE_OK ||
        (rc = sqlite3_step(q)) != SQLITE_ROW)
        goto sqlerr;
    st->seq = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    q = NULL;
    if (st->seq < st->applied_upto)
        st->seq = st->applied_upto;
    /* The log after the last complete fold, each line into a customer
     * whose row is older than it. */
    if ((rc = sqlite3_prepare_v2(st->db, "SELECT seq, lines FROM log WHERE seq > ?1 ORDER BY seq",
                                 -1, &q, NULL)) != SQLITE_OK)
        goto sqlerr;
    sqlite3_bind_int64(q, 1, st->applied_upto);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(q, 0);
        rd r = {sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1), 0, 0};
        line_rec l;
        int k;
        while ((k = decode_line(&r, &l)) == 1) {
            long ci = custs_get(&st->cs, l.cid, l.cidlen);
            if (ci < 0)
                goto oom;
            cust *c = &st->cs.c[ci];
            if (seq > c->seq && apply_line(&st->cs, c, &l) != 0)
                goto oom;
        }
        if (k < 0)
            return sqlite3_finalize(q), damaged(st, "log row", seq, err, errlen);
    }
    if (rc != SQLITE_DONE)
        goto sqlerr;
    sqlite3_finalize(q);
    st->sweep = 0;
    st->sweep_seq = st->seq;
    return RFM_OK;
oom:
    sqlite3_finalize(q);
    return rfm_fail(err, errlen, RFM_ENOMEM, "state %s: out of memory loading the store", st->path);
sqlerr:
    s = sqlfail(st, rc, "load", err, errlen);
    sqlite3_finalize(q);
    return s;
}

/* ---- open / close ----------------------------------------------------- */

/* The store's code of every kind of the config: read from meta ("type:
 * NAME"), new names given the next code. A code is never reused, so a
 * kind taken out of the config and put back finds its interactions. */
static rfm_status load_types(state_store *st, char *err, size_t errlen)
{
    for (int k = 0; k < 256; k++)
        st->index_of[k] = -1;
    int64_t next = 0;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db, "SELECT max(value) FROM meta WHERE key LIKE 'type:%'", -1,
                                &q, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_type(q, 0) != SQLITE_NULL)
            next = sqlite3_column_int64(q, 0) + 1;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    for (size_t i = 0; rc == SQLITE_OK && i < st->types.ntypes; i++) {
        char key[ENGAGEMENT_NAME_MAX + 8];
        snprintf(key, sizeof key, "type:%s", st->types.type[i].name);
        int64_t code;
        rc = meta_get_int(st, key, &code);
        if (rc == SQLITE_NOTFOUND) {
            code = next++;
            if (code > 255)
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "state %s: more than 256 interaction kinds over the store's life: "
                                "move the file away to seed it again",
                                st->path);
            rc = meta_put_int(st, key, code);
        }
        if (rc == SQLITE_OK) {
            if (code < 0 || code > 255)
                return damaged(st, "kind code", code, err, errlen);
            st->code_of[i] = (uint16_t)code;
            st->index_of[code] = (int)i;
        }
    }
    if (rc != SQLITE_OK)
        return sqlfail(st, rc, "open", err, errlen);
    /* Seeded purchases are of the default kind if it is monetary, else of
     * the first monetary kind. */
    int d = engagement_type_index(&st->types, NULL, 0);
    if (d < 0 || !st->types.type[d].monetary)
        for (d = 0; !st->types.type[d].monetary; d++)
            ;
    st->seed_code = st->code_of[d];
    return RFM_OK;
}

static void store_free(state_store *st)
{
    disconnect(st);
    custs_free(&st->cs);
    seen_free(&st->seen);
    free(st->batch_ids.slot);
    free(st->batch_lines.slot);
    free(st->ids.p);
    free(st->lines.p);
    free(st->row.p);
    free(st->folded);
    pthread_rwlock_destroy(&st->lock);
    free(st->cancel_prefix);
    free(st->path);
    free(st);
}

static rfm_status purge_listed(state_store *st, char *err, size_t errlen);

rfm_status state_open(const char *path, const state_options *opt, state_store **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    char why[128];
    if (state_check_options(opt, why, sizeof why))
        return rfm_fail(err, errlen, RFM_EINVAL, "state: %s", why);
    state_store *st = calloc(1, sizeof *st);
    if (!st)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    /* Writers first: a stream of readers must not starve the commits. */
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&st->lock, &a);
    pthread_rwlockattr_destroy(&a);
    st->opt = *opt;
    st->path = strdup(path);
    st->cancel_prefix = strdup(opt->cancel_prefix ? opt->cancel_prefix : "");
    st->opt.cancel_prefix = st->cancel_prefix;
    st->snapshot_day = DATE_NONE;
    st->seen.max = (size_t)opt->seen_ids_max;
    if (opt->types)
        st->types = *opt->types;
    else
        engagement_default_options(&st->types);
    st->opt.types = &st->types;
    if (engagement_check_options(&st->types, why, sizeof why)) {
        store_free(st);
        return rfm_fail(err, errlen, RFM_EINVAL, "state: events.%s", why);
    }
    if (!st->path || !st->cancel_prefix) {
        store_free(st);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    rfm_status s = connect(st, err, errlen);
    if (s == RFM_OK)
        s = load_types(st, err, errlen);
    if (s == RFM_OK)
        s = load(st, err, errlen);
    if (s == RFM_OK)
        s = purge_listed(st, err, errlen);
    if (s != RFM_OK) {
        store_free(st);
        return s;
    }
    *out = st;
    return RFM_OK;
}

int32_t state_snapshot_day(const state_store *st)
{
    return __atomic_load_n(&st->snapshot_day, __ATOMIC_RELAXED);
}

/* Write customer i of cs (st->cs, or a new memory being seeded). */
static int put_row(state_store *st, const custs *cs, size_t i, int64_t seq)
{
    const cust *c = &cs->c[i];
    encode_cust(c, &st->row);
    if (st->row.oom)
        return SQLITE_NOMEM;
    sqlite3_stmt *q = st->s[S_CUST_PUT];
    sqlite3_bind_int64(q, 1, (int64_t)i + 1);
    sqlite3_bind_text(q, 2, c->id, (int)c->idlen, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, seq);
    sqlite3_bind_blob(q, 4, st->row.p, (int)st->row.n, SQLITE_STATIC);
    return run(q);
}

/* Every changed customer into its row, applied_upto = seq, in one
 * transaction; SQLite's code. */
static int fold_all(state_store *st)
{
    int rc = run(st->s[S_BEGIN]);
    for (size_t i = 0; rc == SQLITE_OK && i < st->cs.n; i++)
        if (st->cs.c[i].id && st->cs.c[i].dirty)
            rc = put_row(st, &st->cs, i, st->seq);
    if (rc == SQLITE_OK)
        rc = meta_put_int(st, "applied_upto", st->seq);
    if (rc == SQLITE_OK)
        rc = run(st->s[S_COMMIT]);
    if (rc != SQLITE_OK) {
        rollback(st);
        return rc;
    }
    for (size_t i = 0; i < st->cs.n; i++)
        if (st->cs.c[i].id && st->cs.c[i].dirty)
            st->cs.c[i].dirty = 0, st->cs.c[i].seq = st->seq;
    st->applied_upto = st->seq;
    st->sweep = 0;
    st->sweep_seq = st->seq;
    return SQLITE_OK;
}

void state_close(state_store *st)
{
    if (!st)
        return;
    if (st->db) {
        /* Fold so the next open replays nothing; then the WAL into the
         * file so it starts small. A failure of either loses nothing. */
        if (st->applied_upto < st->seq)
            (void)fold_all(st);
        for (int k = 0; k < S_N; k++) {
            sqlite3_finalize(st->s[k]);
            st->s[k] = NULL;
        }
        sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    }
    store_free(st);
}

/* ---- apply --------------------------------------------------------- */

/* Is the customer id (as kept) on the erasure list? */
static int is_erased(const state_store *st, const char *id, size_t len)
{
    return st->opt.is_erased && st->opt.is_erased(st->opt.erased, id, len);
}

/* One slice of the fold, inside the batch's transaction: the customers
 * from the sweep on, visited in cid order until the slice's bytes are
 * reached, the changed ones written as of st->seq (memory before this
 * batch). The slice is large enough that a sweep takes at most
 * fold_events events, and at least FOLD_MIN_BYTES and twice the batch's
 * log bytes. *next is where the sweep goes on; *done whether it ended
 * (then applied_upto becomes the seq it began at). SQLite's code. */
static int fold_step(state_store *st, size_t nrec, size_t *next, int *done)
{
    if (st->sweep == 0)
        st->sweep_seq = st->seq;
    uint64_t budget = FOLD_MIN_BYTES;
    uint64_t b = 2 * (uint64_t)(st->lines.n + st->ids.n);
    if (b > budget)
        budget = b;
    b = table_bytes(&st->cs) / st->opt.fold_events * nrec;
    if (b > budget)
        budget = b;
    st->nfolded = 0;
    size_t i = st->sweep;
    uint64_t visited = 0;
    int rc = SQLITE_OK;
    for (; i < st->cs.n && visited < budget; i++) {
        const cust *c = &st->cs.c[i];
        if (!c->id)
            continue;
        visited += row_bytes(c);
        if (!c->dirty)
            continue;
        if (st->nfolded == st->capfolded) {
            size_t cap = st->capfolded ? 2 * st->capfolded : 1024;
            uint32_t *f = realloc(st->folded, cap * sizeof *f);
            if (!f)
                return SQLITE_NOMEM;
            st->folded = f, st->capfolded = cap;
        }
        st->folded[st->nfolded++] = (uint32_t)i;
        if ((rc = put_row(st, &st->cs, i, st->seq)) != SQLITE_OK)
            return rc;
    }
    *next = i;
    *done = i >= st->cs.n;
    if (*done)
        rc = meta_put_int(st, "applied_upto", st->sweep_seq);
    return rc;
}

/* After a failure to change memory for a committed batch (out of memory):
 * memory again from the file, which has the batch. */
static rfm_status reload(state_store *st, char *err, size_t errlen)
{
    custs_free(&st->cs);
    seen_free(&st->seen);
    st->seen.max = (size_t)st->opt.seen_ids_max;
    return load(st, err, errlen);
}

rfm_status state_apply(state_store *st, const state_event *ev, size_t n, state_result *results,
                       char *err, size_t errlen)
{
    rfm_status s0 = ready(st, err, errlen);
    if (s0 != RFM_OK)
        return s0;
    /* (1) The outcomes, against memory and this batch. */
    set_clear(&st->batch_ids);
    set_clear(&st->batch_lines);
    st->ids.n = st->lines.n = 0;
    st->ids.oom = st->lines.oom = 0;
    if (set_reserve(&st->batch_ids, n) != 0 || set_reserve(&st->batch_lines, n) != 0)
        return rfm_fail(err, errlen, RFM_ENOMEM, "state: out of memory for a batch of %zu", n);
    size_t nrec = 0;
    for (size_t i = 0; i < n; i++) {
        const state_event *e = &ev[i];
        state_line l;
        int ti = engagement_type_index(&st->types, e->type, e->type ? strlen(e->type) : 0);
        state_result r = ti < 0                        ? state_bad_type(e)
                         : st->types.type[ti].monetary ? state_classify(e, st->cancel_prefix, &l)
                                                       : state_classify_interaction(e, &l);
        results[i] = r;
        if (r.outcome == STATE_REJECTED)
            continue;
        uint64_t h = event_hash(e->event_id);
        if (set_has(&st->seen.set, h) || set_add(&st->batch_ids, h) == 0) {
            results[i] = (state_result){STATE_DUPLICATE, STATE_OK};
            continue;
        }
        PUT(&st->ids, h);
        nrec++;
        if (r.outcome == STATE_APPLIED && is_erased(st, l.cid, l.cidlen))
            results[i] = (state_result){STATE_IGNORED, STATE_ERASED};
        if (results[i].outcome == STATE_IGNORED)
            continue;
        if (!st->types.type[ti].monetary) {
            line_rec lr = {
                REC_INTERACTION, st->code_of[ti], l.cid, (uint16_t)l.cidlen, 0, 0, l.day, l.at, 0};
            encode_line(&st->lines, &lr);
            continue;
        }
        long ci = custs_find(&st->cs, l.cid, l.cidlen);
        uint64_t key = hash_mix(id_hash(l.cid, l.cidlen) ^ hash_mix(l.lh));
        if ((ci >= 0 && has_line(&st->cs.c[ci], l.lh)) || set_add(&st->batch_lines, key) == 0) {
            results[i] = (state_result){STATE_IGNORED, STATE_REPEATED_LINE};
            continue;
        }
        line_rec lr = {REC_PURCHASE, st->code_of[ti], l.cid, (uint16_t)l.cidlen, l.lh, l.ih, l.day,
                       l.at,         l.spend};
        encode_line(&st->lines, &lr);
    }
    if (st->ids.oom || st->lines.oom)
        return rfm_fail(err, errlen, RFM_ENOMEM, "state: out of memory for a batch of %zu", n);
    if (nrec == 0)
        return RFM_OK; /* duplicates and rejections only: nothing to record */
    /* (2) One transaction: the log row and a slice of the fold. */
    size_t next = 0;
    int done = 0;
    int rc = run(st->s[S_BEGIN]);
    if (rc == SQLITE_OK) {
        sqlite3_stmt *q = st->s[S_LOG_INS];
        sqlite3_bind_int64(q, 1, st->seq + 1);
        sqlite3_bind_blob(q, 2, st->ids.p, (int)st->ids.n, SQLITE_STATIC);
        sqlite3_bind_blob(q, 3, st->lines.p ? (const void *)st->lines.p : "", (int)st->lines.n,
                          SQLITE_STATIC);
        rc = run(q);
    }
    if (rc == SQLITE_OK)
        rc = fold_step(st, nrec, &next, &done);
    if (rc == SQLITE_OK)
        rc = run(st->s[S_COMMIT]);
    if (rc != SQLITE_OK) {
        rfm_status s = sqlfail(st, rc, "apply", err, errlen);
        recover(st, rc);
        return s;
    }
    /* (3) Memory, under the write lock a slice at a time. */
    int oom = 0;
    pthread_rwlock_wrlock(&st->lock);
    for (size_t k = 0; k < st->nfolded; k++) {
        cust *c = &st->cs.c[st->folded[k]];
        c->dirty = 0;
        c->seq = st->seq;
    }
    st->seq++;
    if (done) {
        st->applied_upto = st->sweep_seq;
        st->sweep = 0;
    } else {
        st->sweep = next;
    }
    rd r = {st->lines.p, st->lines.n, 0, 0};
    line_rec l;
    for (int k = 0; !oom && decode_line(&r, &l) == 1; k++) {
        if (k % LOCK_CHUNK == LOCK_CHUNK - 1) {
            pthread_rwlock_unlock(&st->lock);
            pthread_rwlock_wrlock(&st->lock);
        }
        long ci = custs_get(&st->cs, l.cid, l.cidlen);
        oom = ci < 0 || apply_line(&st->cs, &st->cs.c[ci], &l) != 0;
    }
    pthread_rwlock_unlock(&st->lock);
    for (size_t k = 0; !oom && k < st->ids.n / 8; k++) {
        uint64_t h;
        memcpy(&h, st->ids.p + 8 * k, 8);
        oom = seen_push(&st->seen, h) != 0;
    }
    if (oom) {
        pthread_rwlock_wrlock(&st->lock);
        rfm_status s = reload(st, err, errlen);
        pthread_rwlock_unlock(&st->lock);
        if (s != RFM_OK)
            return s;
    }
    return RFM_OK;
}

/* ---- seed ---------------------------------------------------------- */

typedef struct {
    custs *cs;
    uint16_t code; /* of the seeded invoices */
    int oom;
} seed_ctx;

static int seed_day(void *u, size_t c, int32_t day, double spend)
{
    seed_ctx *x = u;
    cust *k = &x->cs->c[c];
    if (add_day(x->cs, k, day, spend) != 0)
        return x->oom = 1;
    k->monetary += spend;
    return 0;
}

static int seed_invoice(void *u, size_t c, uint64_t ih, int32_t day)
{
    seed_ctx *x = u;
    return add_invoice(x->cs, &x->cs->c[c], ih, day, x->code) != 0 ? (x->oom = 1) : 0;
}

/* A log row kept through a re-seed. */
typedef struct {
    int64_t seq;
    void *ids, *lines;
    size_t nids, nlines; /* bytes */
} log_row;

static void rows_free(log_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(rows[i].ids), free(rows[i].lines);
    free(rows);
}

rfm_status state_seed(state_store *st, const txn_data *d, int *seeded, char *err, size_t errlen)
{
    int32_t snap = txn_snapshot_day(d);
    if (seeded)
        *seeded = 0;
    rfm_status s0 = ready(st, err, errlen);
    if (s0 != RFM_OK)
        return s0;
    if (st->snapshot_day != DATE_NONE && snap == st->snapshot_day)
        return RFM_OK;
    if (st->snapshot_day != DATE_NONE && snap < st->snapshot_day) {
        char a[11], b[11];
        date_format(snap, a);
        date_format(st->snapshot_day, b);
        return rfm_fail(err, errlen, RFM_EINVAL,
                        "state %s: the training run's snapshot %s is "
                        "older than the store's %s: serve newer models, or move the store away "
                        "to seed it again",
                        st->path, a, b);
    }
    /* The new memory: the training run's customers, then every kept line
     * (on or after the snapshot) again; lines before it are the run's. */
    custs nc = {0};
    log_row *rows = NULL;
    size_t nrows = 0, caprows = 0;
    sqlite3_stmt *q = NULL;
    buf kept = {0};
    rfm_status s = RFM_OK;
    int rc = SQLITE_OK;
    size_t ntc = txn_ncustomers(d);
    if (custs_reserve(&nc, ntc) != 0)
        goto oom;
    for (size_t i = 0; i < ntc; i++) {
        const char *id = txn_customer_id(d, i);
        char *copy = strdup(id);
        if (!copy || custs_put(&nc, (int64_t)i + 1, copy, strlen(id)) != 0)
            goto oom;
    }
    seed_ctx x = {&nc, st->seed_code, 0};
    if (txn_each_purchase(d, seed_day, seed_invoice, &x) != 0 || x.oom)
        goto oom;
    if ((rc = sqlite3_prepare_v2(st->db, "SELECT seq, ids, lines FROM log ORDER BY seq", -1, &q,
                                 NULL)) != SQLITE_OK)
        goto sqlerr;
    uint64_t total_ids = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(q, 0);
        rd r = {sqlite3_column_blob(q, 2), (size_t)sqlite3_column_bytes(q, 2), 0, 0};
        line_rec l;
        int k;
        kept.n = 0;
        while ((k = decode_line(&r, &l)) == 1) {
            /* Interactions come from memory below (the rows carry them);
             * purchase lines before the snapshot are the run's. */
            if (l.kind == REC_INTERACTION || l.day < snap || is_erased(st, l.cid, l.cidlen))
                continue;
            encode_line(&kept, &l);
            long ci = custs_get(&nc, l.cid, l.cidlen);
            if (ci < 0 || apply_line(&nc, &nc.c[ci], &l) != 0)
                goto oom;
        }
        if (k < 0) {
            s = damaged(st, "log row", seq, err, errlen);
            goto fail;
        }
        if (nrows == caprows) {
            size_t cap = caprows ? 2 * caprows : 256;
            log_row *x2 = realloc(rows, cap * sizeof *x2);
            if (!x2)
                goto oom;
            rows = x2, caprows = cap;
        }
        log_row *w = &rows[nrows++];
        memset(w, 0, sizeof *w);
        w->seq = seq;
        w->nids = (size_t)sqlite3_column_bytes(q, 1) / 8 * 8;
        w->nlines = kept.n;
        if ((w->nids && !(w->ids = malloc(w->nids))) ||
            (w->nlines && !(w->lines = malloc(w->nlines))) || kept.oom)
            goto oom;
        if (w->nids)
            memcpy(w->ids, sqlite3_column_blob(q, 1), w->nids);
        if (w->nlines)
            memcpy(w->lines, kept.p, w->nlines);
        total_ids += w->nids / 8;
    }
    if (rc != SQLITE_DONE)
        goto sqlerr;
    sqlite3_finalize(q);
    q = NULL;
    /* The interactions are not in any training file: they stay as they are
     * (their customers with them). */
    for (size_t i = 0; i < st->cs.n; i++) {
        const cust *o = &st->cs.c[i];
        if (!o->id || !o->nit || is_erased(st, o->id, o->idlen))
            continue;
        long ci = custs_get(&nc, o->id, o->idlen);
        if (ci < 0)
            goto oom;
        cust *c = &nc.c[ci];
        for (uint32_t k = 0; k < o->nit; k++)
            for (uint32_t m = 0; m < o->it[k].count; m++)
                if (add_interaction(&nc, c, o->it[k].day, o->it[k].code) != 0)
                    goto oom;
        if (o->last_at > c->last_at)
            c->last_at = o->last_at;
    }
    /* One transaction: the customer rows and the log anew (the lines kept,
     * the ids of the retention), the snapshot. */
    if ((rc = run(st->s[S_BEGIN])) != SQLITE_OK ||
        (rc = sqlite3_exec(st->db, "DELETE FROM customers; DELETE FROM log", NULL, NULL, NULL)) !=
            SQLITE_OK)
        goto sqlerr;
    uint64_t skip = total_ids > st->opt.seen_ids_max ? total_ids - st->opt.seen_ids_max : 0;
    for (size_t i = 0; i < nrows; i++) {
        log_row *w = &rows[i];
        size_t drop = skip > w->nids / 8 ? w->nids / 8 : (size_t)skip;
        skip -= drop;
        if (w->nids == drop * 8 && w->nlines == 0)
            continue;
        sqlite3_stmt *ins = st->s[S_LOG_INS];
        sqlite3_bind_int64(ins, 1, w->seq);
        sqlite3_bind_blob(ins, 2, w->ids ? (char *)w->ids + drop * 8 : "",
                          (int)(w->nids - drop * 8), SQLITE_STATIC);
        sqlite3_bind_blob(ins, 3, w->lines ? w->lines : "", (int)w->nlines, SQLITE_STATIC);
        if ((rc = run(ins)) != SQLITE_OK)
            goto sqlerr;
    }
    for (size_t i = 0; rc == SQLITE_OK && i < nc.n; i++)
        if (nc.c[i].id)
            rc = put_row(st, &nc, i, st->seq);
    if (rc != SQLITE_OK || (rc = meta_put_int(st, "snapshot_day", snap)) != SQLITE_OK ||
        (rc = meta_put_int(st, "applied_upto", st->seq)) != SQLITE_OK ||
        (rc = run(st->s[S_COMMIT])) != SQLITE_OK)
        goto sqlerr;
    for (size_t i = 0; i < nc.n; i++)
        nc.c[i].dirty = 0, nc.c[i].seq = st->seq;
    pthread_rwlock_wrlock(&st->lock);
    custs old = st->cs;
    st->cs = nc;
    st->applied_upto = st->seq;
    st->sweep = 0;
    st->sweep_seq = st->seq;
    __atomic_store_n(&st->snapshot_day, snap, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&st->lock);
    custs_free(&old);
    rows_free(rows, nrows);
    free(kept.p);
    if (seeded)
        *seeded = 1;
    return RFM_OK;
oom:
    s = rfm_fail(err, errlen, RFM_ENOMEM, "state %s: out of memory seeding %zu customers", st->path,
                 ntc);
    goto fail;
sqlerr:
    s = sqlfail(st, rc, "seed", err, errlen);
    sqlite3_finalize(q);
    q = NULL;
    recover(st, rc);
fail:
    sqlite3_finalize(q);
    custs_free(&nc);
    rows_free(rows, nrows);
    free(kept.p);
    return s;
}

/* ---- erase --------------------------------------------------------- */

/* Remove the customers marked gone: in one transaction their rows and
 * their lines of the log (the rows holding any rewritten without them),
 * then from memory, then the WAL into the file and truncated, so that no
 * earlier frame keeps their bytes (secure_delete zeroes what the
 * transaction deletes). On failure nothing changed (the marks cleared). */
static rfm_status purge(state_store *st, char *err, size_t errlen)
{
    log_row *rows = NULL;
    size_t nrows = 0, caprows = 0;
    buf kept = {0};
    sqlite3_stmt *q = NULL;
    rfm_status s = RFM_OK;
    int rc = run(st->s[S_BEGIN]);
    if (rc != SQLITE_OK)
        goto sqlerr;
    /* The log rows with a line of theirs, without those lines. */
    if ((rc = sqlite3_prepare_v2(st->db, "SELECT seq, lines FROM log ORDER BY seq", -1, &q,
                                 NULL)) != SQLITE_OK)
        goto sqlerr;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(q, 0);
        rd r = {sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1), 0, 0};
        line_rec l;
        int k, hit = 0;
        kept.n = 0;
        while ((k = decode_line(&r, &l)) == 1) {
            long ci = custs_find(&st->cs, l.cid, l.cidlen);
            if (ci >= 0 && st->cs.c[ci].gone)
                hit = 1;
            else
                encode_line(&kept, &l);
        }
        if (k < 0) {
            s = damaged(st, "log row", seq, err, errlen);
            goto fail;
        }
        if (!hit)
            continue;
        if (nrows == caprows) {
            size_t cap = caprows ? 2 * caprows : 64;
            log_row *x = realloc(rows, cap * sizeof *x);
            if (!x)
                goto oom;
            rows = x, caprows = cap;
        }
        log_row *w = &rows[nrows++];
        memset(w, 0, sizeof *w);
        w->seq = seq;
        w->nlines = kept.n;
        if (kept.oom || (w->nlines && !(w->lines = malloc(w->nlines))))
            goto oom;
        if (w->nlines)
            memcpy(w->lines, kept.p, w->nlines);
    }
    if (rc != SQLITE_DONE)
        goto sqlerr;
    sqlite3_finalize(q);
    q = NULL;
    if ((rc = sqlite3_prepare_v2(st->db, "UPDATE log SET lines = ?2 WHERE seq = ?1", -1, &q,
                                 NULL)) != SQLITE_OK)
        goto sqlerr;
    for (size_t i = 0; i < nrows; i++) {
        sqlite3_bind_int64(q, 1, rows[i].seq);
        sqlite3_bind_blob(q, 2, rows[i].lines ? rows[i].lines : "", (int)rows[i].nlines,
                          SQLITE_STATIC);
        if ((rc = run(q)) != SQLITE_OK)
            goto sqlerr;
    }
    sqlite3_finalize(q);
    q = NULL;
    if ((rc = sqlite3_prepare_v2(st->db, "DELETE FROM customers WHERE cid = ?1", -1, &q, NULL)) !=
        SQLITE_OK)
        goto sqlerr;
    for (size_t i = 0; i < st->cs.n; i++)
        if (st->cs.c[i].id && st->cs.c[i].gone) {
            sqlite3_bind_int64(q, 1, (int64_t)i + 1);
            if ((rc = run(q)) != SQLITE_OK)
                goto sqlerr;
        }
    sqlite3_finalize(q);
    q = NULL;
    if ((rc = run(st->s[S_COMMIT])) != SQLITE_OK)
        goto sqlerr;
    /* Memory. */
    pthread_rwlock_wrlock(&st->lock);
    custs *cs = &st->cs;
    for (size_t i = 0; i < cs->n; i++) {
        cust *c = &cs->c[i];
        if (!c->id || !c->gone)
            continue;
        slot_del(cs, i);
        cs->nlive--;
        cs->tid -= c->idlen;
        cs->tdays -= c->ndays, cs->tinv -= c->ninv, cs->tlh -= c->nlh, cs->tit -= c->nit;
        cust_free(c);
    }
    pthread_rwlock_unlock(&st->lock);
    rows_free(rows, nrows);
    free(kept.p);
    /* The frames before the erasure (with the id) out of the WAL. A
     * failure leaves them to the next checkpoint: the erasure stands. */
    (void)sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    return RFM_OK;
oom:
    s = rfm_fail(err, errlen, RFM_ENOMEM, "state %s: out of memory erasing", st->path);
    goto fail;
sqlerr:
    s = sqlfail(st, rc, "erase", err, errlen);
    sqlite3_finalize(q);
    q = NULL;
    recover(st, rc);
fail:
    sqlite3_finalize(q);
    rollback(st);
    for (size_t i = 0; i < st->cs.n; i++)
        st->cs.c[i].gone = 0;
    rows_free(rows, nrows);
    free(kept.p);
    return s;
}

/* Drop the customers of the erasure list (state_options.is_erased) that
 * the store still has: erased while the store was closed, or before a
 * crash between the list and the store. */
static rfm_status purge_listed(state_store *st, char *err, size_t errlen)
{
    if (!st->opt.is_erased)
        return RFM_OK;
    size_t n = 0;
    for (size_t i = 0; i < st->cs.n; i++) {
        cust *c = &st->cs.c[i];
        if (c->id && is_erased(st, c->id, c->idlen))
            c->gone = 1, n++;
    }
    return n ? purge(st, err, errlen) : RFM_OK;
}

rfm_status state_erase(state_store *st, const char *customer_id, char *err, size_t errlen)
{
    rfm_status s0 = ready(st, err, errlen);
    if (s0 != RFM_OK)
        return s0;
    txn_line tl;
    if (!customer_id || txn_classify(customer_id, strlen(customer_id), NULL, 0, "", 0, 1, 1, 1, 0,
                                     0, &tl) != TXN_NREASONS)
        return rfm_fail(err, errlen, RFM_ENOTFOUND, "no customer id");
    /* Only the writer changes memory: no lock to read it. */
    long k = custs_find(&st->cs, tl.cid, tl.cidlen);
    if (k < 0)
        return rfm_fail(err, errlen, RFM_ENOTFOUND, "customer: not in the state");
    st->cs.c[k].gone = 1;
    return purge(st, err, errlen);
}

/* ---- read ---------------------------------------------------------- */

/* The interactions before asof, by kind of the config. */
static void engagement_of(const state_store *st, const cust *c, int32_t asof, state_customer *out)
{
    out->last_interaction_day = DATE_NONE;
    for (uint32_t i = 0; i < c->ninv; i++)
        if (c->inv[i].day < asof && st->index_of[c->inv[i].type] >= 0)
            out->type_count[st->index_of[c->inv[i].type]] += 1;
    for (uint32_t i = 0; i < c->ndays && c->days[i].day < asof; i++)
        out->last_interaction_day = c->days[i].day;
    for (uint32_t i = 0; i < c->nit && c->it[i].day < asof; i++) {
        int k = st->index_of[c->it[i].code];
        if (k < 0)
            continue;
        out->type_count[k] += c->it[i].count;
        if (out->last_interaction_day == DATE_NONE || c->it[i].day > out->last_interaction_day)
            out->last_interaction_day = c->it[i].day;
    }
    for (size_t k = 0; k < st->types.ntypes; k++) {
        out->interactions += out->type_count[k];
        out->weighted += out->type_count[k] * st->types.type[k].weight;
    }
}

/* A customer's features as of asof (txn_features_asof's convention). */
static void features(const state_store *st, const cust *c, int32_t asof, state_customer *out)
{
    memset(out, 0, sizeof *out);
    out->last_event_at = c->last_at;
    engagement_of(st, c, asof, out);
    txn_features *f = &out->f;
    if (c->ndays == 0)
        return;
    double first, last, ndays, first_spend, bought = 0;
    if (asof > c->days[c->ndays - 1].day) {
        /* Every purchase (and so every invoice) is before the day. */
        first = c->days[0].day;
        last = c->days[c->ndays - 1].day;
        ndays = c->ndays;
        first_spend = c->days[0].spend;
        bought = c->monetary;
        f->frequency = c->ninv;
    } else {
        first = last = first_spend = ndays = 0;
        for (uint32_t i = 0; i < c->ndays; i++) {
            const sday *d = &c->days[i];
            if (d->day >= asof) {
                f->future_days += 1;
                f->future_spend += d->spend;
                continue;
            }
            if (ndays == 0)
                first = d->day, first_spend = d->spend;
            last = d->day;
            bought += d->spend;
            ndays += 1;
        }
        for (uint32_t i = 0; i < c->ninv; i++)
            f->frequency += c->inv[i].day < asof;
        if (ndays == 0) {
            double fd = f->future_days, fs = f->future_spend;
            memset(f, 0, sizeof *f);
            f->future_days = fd;
            f->future_spend = fs;
            return;
        }
    }
    txn_features_finish(f, asof, first, last, ndays, bought, first_spend, 0.0);
}

rfm_status state_get(state_store *st, const char *customer_id, int32_t asof, state_customer *out,
                     char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->last_event_at = INT64_MIN;
    const char *id;
    size_t idlen;
    if (!state_norm_id(customer_id, &id, &idlen))
        return rfm_fail(err, errlen, RFM_ENOTFOUND, "no customer id");
    pthread_rwlock_rdlock(&st->lock);
    long k = custs_find(&st->cs, id, idlen);
    if (k >= 0)
        features(st, &st->cs.c[k], asof, out);
    pthread_rwlock_unlock(&st->lock);
    if (k < 0)
        return rfm_fail(err, errlen, RFM_ENOTFOUND, "customer %.*s: not in the state",
                        (int)(idlen > 200 ? 200 : idlen), id);
    return RFM_OK;
}

rfm_status state_each(state_store *st, int32_t asof, state_each_fn fn, void *user, char *err,
                      size_t errlen)
{
    (void)err, (void)errlen;
    state_customer *cs = malloc(EACH_CHUNK * sizeof *cs);
    char(*ids)[STATE_ID_MAX + 1] = malloc(EACH_CHUNK * sizeof *ids);
    if (!cs || !ids) {
        free(cs);
        free(ids);
        return rfm_fail(err, errlen, RFM_ENOMEM, "state: out of memory");
    }
    int stop = 0;
    for (size_t at = 0; !stop;) {
        size_t m = 0;
        pthread_rwlock_rdlock(&st->lock);
        size_t n = st->cs.n;
        for (; at < n && m < EACH_CHUNK; at++) {
            const cust *c = &st->cs.c[at];
            if (!c->id)
                continue;
            memcpy(ids[m], c->id, c->idlen + 1);
            features(st, c, asof, &cs[m]);
            m++;
        }
        pthread_rwlock_unlock(&st->lock);
        for (size_t i = 0; i < m && !stop; i++)
            stop = fn(user, ids[i], &cs[i]) != 0;
        if (at >= n)
            break;
    }
    free(cs);
    free(ids);
    return RFM_OK;
}

rfm_status state_count(state_store *st, uint64_t *customers, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    pthread_rwlock_rdlock(&st->lock);
    *customers = st->cs.nlive;
    pthread_rwlock_unlock(&st->lock);
    return RFM_OK;
}

rfm_status state_check(state_store *st, char *err, size_t errlen)
{
    char answer[256];
    rfm_status s0 = ready(st, err, errlen);
    if (s0 != RFM_OK)
        return s0;
    int rc = exec_pragma(st, "PRAGMA integrity_check", answer, sizeof answer);
    if (rc != SQLITE_OK)
        return sqlfail(st, rc, "integrity_check", err, errlen);
    if (strcmp(answer, "ok") != 0)
        return rfm_fail(err, errlen, RFM_EFORMAT, "state %s: integrity_check: %s", st->path,
                        answer);
    return RFM_OK;
}
