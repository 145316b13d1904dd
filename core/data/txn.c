/* txn.c - one streaming pass: CSV lines -> cleaned, aggregated purchases.
 *
 * Tables (all open addressing, grown at half load):
 *   customers: id string -> customer index (ids kept in one arena)
 *   days:      (customer, day) -> spend that day
 *   invoices:  hash(customer, invoice) -> day of the invoice
 *   products:  id string -> product index; (customer, product) -> counts
 *   lines:     hashes of the lines of the current invoice (repeat check)
 * After the pass, customers and products are sorted by id and every table
 * is renumbered, so results do not depend on line order.
 */
#include "txn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "date.h"
#include "hash.h"
#include "sha256.h"

#define EMPTY UINT32_MAX

/* ---- string interning ------------------------------------------------ */

typedef struct {
    char *arena;
    size_t alen, acap;
    size_t *ofs;     /* per entry: offset of its NUL-terminated string */
    uint64_t *hash;  /* per entry */
    size_t n, ncap;
    uint32_t *slots; /* entry index or EMPTY */
    size_t mask;
} strtab;

static void strtab_free(strtab *t)
{
    free(t->arena);
    free(t->ofs);
    free(t->hash);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static int strtab_grow_slots(strtab *t)
{
    size_t cap = t->mask ? 2 * (t->mask + 1) : 1024;
    uint32_t *s = malloc(cap * sizeof *s);
    if (!s)
        return 0;
    memset(s, 0xff, cap * sizeof *s);
    for (size_t i = 0; i < t->n; i++) {
        size_t j = t->hash[i] & (cap - 1);
        while (s[j] != EMPTY)
            j = (j + 1) & (cap - 1);
        s[j] = (uint32_t)i;
    }
    free(t->slots);
    t->slots = s;
    t->mask = cap - 1;
    return 1;
}

/* Index of s (len bytes), adding it if new; -1 when out of memory. */
static long strtab_intern(strtab *t, const char *s, size_t len, int *added)
{
    *added = 0;
    if (2 * (t->n + 1) > t->mask + 1 && !strtab_grow_slots(t))
        return -1;
    uint64_t h = hash_bytes(s, len, 0x5eed);
    size_t j = h & t->mask;
    while (t->slots[j] != EMPTY) {
        uint32_t e = t->slots[j];
        if (t->hash[e] == h && strncmp(t->arena + t->ofs[e], s, len) == 0 &&
            t->arena[t->ofs[e] + len] == '\0')
            return e;
        j = (j + 1) & t->mask;
    }
    if (t->n == t->ncap) {
        size_t nc = t->ncap ? 2 * t->ncap : 1024;
        size_t *o = realloc(t->ofs, nc * sizeof *o);
        if (o)
            t->ofs = o;
        uint64_t *hh = realloc(t->hash, nc * sizeof *hh);
        if (hh)
            t->hash = hh;
        if (!o || !hh)
            return -1;
        t->ncap = nc;
    }
    if (t->alen + len + 1 > t->acap) {
        size_t nc = t->acap ? 2 * t->acap : 65536;
        while (nc < t->alen + len + 1)
            nc *= 2;
        char *a = realloc(t->arena, nc);
        if (!a)
            return -1;
        t->arena = a;
        t->acap = nc;
    }
    memcpy(t->arena + t->alen, s, len);
    t->arena[t->alen + len] = '\0';
    t->ofs[t->n] = t->alen;
    t->hash[t->n] = h;
    t->alen += len + 1;
    t->slots[j] = (uint32_t)t->n;
    *added = 1;
    return (long)t->n++;
}

static long strtab_find(const strtab *t, const char *s)
{
    if (!t->slots)
        return -1;
    size_t len = strlen(s);
    uint64_t h = hash_bytes(s, len, 0x5eed);
    for (size_t j = h & t->mask; t->slots[j] != EMPTY; j = (j + 1) & t->mask) {
        uint32_t e = t->slots[j];
        if (t->hash[e] == h && strcmp(t->arena + t->ofs[e], s) == 0)
            return e;
    }
    return -1;
}

/* ---- u64 key -> payload index ---------------------------------------- */

typedef struct {
    uint64_t *keys;
    uint32_t *idx; /* payload index or EMPTY */
    size_t mask, n;
} u64map;

static void u64map_free(u64map *m)
{
    free(m->keys);
    free(m->idx);
    memset(m, 0, sizeof *m);
}

static int u64map_grow(u64map *m)
{
    size_t cap = m->mask ? 2 * (m->mask + 1) : 4096;
    uint64_t *k = malloc(cap * sizeof *k);
    uint32_t *x = malloc(cap * sizeof *x);
    if (!k || !x) {
        free(k);
        free(x);
        return 0;
    }
    memset(x, 0xff, cap * sizeof *x);
    for (size_t i = 0; m->idx && i <= m->mask; i++) {
        if (m->idx[i] == EMPTY)
            continue;
        size_t j = hash_mix(m->keys[i]) & (cap - 1);
        while (x[j] != EMPTY)
            j = (j + 1) & (cap - 1);
        k[j] = m->keys[i];
        x[j] = m->idx[i];
    }
    free(m->keys);
    free(m->idx);
    m->keys = k;
    m->idx = x;
    m->mask = cap - 1;
    return 1;
}

/* Payload index of key; a new key gets index m->n (the caller then fills
 * payload n). Returns -1 when out of memory; *added says which. */
static long u64map_get(u64map *m, uint64_t key, int *added)
{
    *added = 0;
    if (2 * (m->n + 1) > m->mask + 1 && !u64map_grow(m))
        return -1;
    size_t j = hash_mix(key) & m->mask;
    while (m->idx[j] != EMPTY) {
        if (m->keys[j] == key)
            return m->idx[j];
        j = (j + 1) & m->mask;
    }
    m->keys[j] = key;
    m->idx[j] = (uint32_t)m->n;
    *added = 1;
    return (long)m->n++;
}

/* Grow a payload array to hold at least n elements of size sz. */
static int reserve(void **p, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap)
        return 1;
    size_t nc = *cap ? *cap : 1024;
    while (nc < n)
        nc *= 2;
    void *q = realloc(*p, nc * sz);
    if (!q)
        return 0;
    *p = q;
    *cap = nc;
    return 1;
}

/* ---- the data set ---------------------------------------------------- */

typedef struct {
    uint32_t cust;
    int32_t day;
    double spend;
} day_entry;

typedef struct {
    uint32_t cust;
    int32_t day;
    uint64_t ih; /* txn_invoice_hash, for txn_each_purchase */
} inv_entry;

typedef struct {
    uint32_t cust, prod;
    uint32_t count, last_count;
    int32_t last_day;
} cp_entry;

struct txn_data {
    strtab cust, prod;
    uint32_t *cust_order; /* sorted position -> interned index */
    uint32_t *cust_rank;  /* interned index -> sorted position */
    uint32_t *prod_order, *prod_rank;
    day_entry *days;
    size_t ndays, days_cap;
    inv_entry *invs;
    size_t ninvs, invs_cap;
    cp_entry *cps;
    size_t ncps, cps_cap;
    /* CSR of products per customer (sorted positions), built after the pass */
    size_t *cp_row;
    uint32_t *cp_prod, *cp_count, *cp_last;
    int32_t first_day, last_day, snapshot_day;
};

const char *txn_reason_name(txn_reason r)
{
    static const char *const names[TXN_NREASONS] = {
        "missing_customer_id", "cancelled",          "bad_number",
        "bad_date",            "nonpositive_quantity", "nonpositive_price",
        "duplicate",           "after_snapshot",
    };
    return (unsigned)r < TXN_NREASONS ? names[r] : "unknown";
}

void txn_free(txn_data *d)
{
    if (!d)
        return;
    strtab_free(&d->cust);
    strtab_free(&d->prod);
    free(d->cust_order);
    free(d->cust_rank);
    free(d->prod_order);
    free(d->prod_rank);
    free(d->days);
    free(d->invs);
    free(d->cps);
    free(d->cp_row);
    free(d->cp_prod);
    free(d->cp_count);
    free(d->cp_last);
    free(d);
}

/* Decimal number: the fast exact path of Clinger (mantissa < 2^53, power
 * of ten <= 22 is exactly representable, so one division rounds correctly);
 * anything else goes to strtod. Returns 0 when s is not a finite number. */
static int parse_number(const char *s, size_t len, double *out)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    if (len == 0)
        return 0;
    size_t i = 0;
    int neg = 0;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        i++;
    }
    uint64_t mant = 0;
    int nd = 0, frac = 0, seen_dot = 0;
    for (; i < len; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (mant > (UINT64_C(1) << 53) / 10)
                goto slow;
            mant = mant * 10 + (uint64_t)(c - '0');
            nd++;
            frac += seen_dot;
        } else if (c == '.' && !seen_dot) {
            seen_dot = 1;
        } else {
            goto slow;
        }
    }
    if (nd == 0 || frac > 22)
        goto slow;
    *out = (double)mant / p10[frac];
    if (neg)
        *out = -*out;
    return 1;
slow : {
    char buf[64];
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + len || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}
}

/* Normalise a customer id in place: trim blanks; an integer written as a
 * float ("17850.0") becomes "17850". Returns the new length; 0 = missing. */
static size_t normalise_id(const char **sp, size_t len)
{
    const char *s = *sp;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    *sp = s;
    if ((len == 3 && strncasecmp(s, "nan", 3) == 0) ||
        (len == 4 && (strncasecmp(s, "null", 4) == 0 || strncasecmp(s, "none", 4) == 0)))
        return 0;
    const char *dot = memchr(s, '.', len);
    if (dot && dot > s) {
        for (const char *p = s; p < dot; p++)
            if (*p < '0' || *p > '9')
                return len;
        for (const char *p = dot + 1; p < s + len; p++)
            if (*p != '0')
                return len;
        return (size_t)(dot - s);
    }
    return len;
}

/* Set of line hashes of the current invoice; cleared by bumping `gen`. */
typedef struct {
    uint64_t *h;
    uint32_t *gen;
    size_t mask, n;
    uint32_t cur;
    uint64_t invoice; /* hash of the current invoice */
} lineset;

static int lineset_add(lineset *s, uint64_t h, int *dup)
{
    *dup = 0;
    if (2 * (s->n + 1) > s->mask + 1) {
        size_t cap = s->mask ? 2 * (s->mask + 1) : 256;
        uint64_t *nh = malloc(cap * sizeof *nh);
        uint32_t *ng = calloc(cap, sizeof *ng);
        if (!nh || !ng) {
            free(nh);
            free(ng);
            return 0;
        }
        for (size_t i = 0; s->h && i <= s->mask; i++) {
            if (s->gen[i] != s->cur)
                continue;
            size_t j = hash_mix(s->h[i]) & (cap - 1);
            while (ng[j] == s->cur)
                j = (j + 1) & (cap - 1);
            nh[j] = s->h[i];
            ng[j] = s->cur;
        }
        free(s->h);
        free(s->gen);
        s->h = nh;
        s->gen = ng;
        s->mask = cap - 1;
    }
    size_t j = hash_mix(h) & s->mask;
    while (s->gen[j] == s->cur) {
        if (s->h[j] == h) {
            *dup = 1;
            return 1;
        }
        j = (j + 1) & s->mask;
    }
    s->h[j] = h;
    s->gen[j] = s->cur;
    s->n++;
    return 1;
}

static void lineset_clear(lineset *s, uint64_t invoice)
{
    s->invoice = invoice;
    s->n = 0;
    if (++s->cur == 0) { /* generation wrapped: really clear */
        if (s->gen)
            memset(s->gen, 0, (s->mask + 1) * sizeof *s->gen);
        s->cur = 1;
    }
}

static int cmp_str_idx(const void *a, const void *b, void *arg)
{
    const strtab *t = arg;
    return strcmp(t->arena + t->ofs[*(const uint32_t *)a], t->arena + t->ofs[*(const uint32_t *)b]);
}

static int sort_table(const strtab *t, uint32_t **order, uint32_t **rank)
{
    *order = malloc((t->n + 1) * sizeof **order);
    *rank = malloc((t->n + 1) * sizeof **rank);
    if (!*order || !*rank)
        return 0;
    for (size_t i = 0; i < t->n; i++)
        (*order)[i] = (uint32_t)i;
    qsort_r(*order, t->n, sizeof **order, cmp_str_idx, (void *)t);
    for (size_t i = 0; i < t->n; i++)
        (*rank)[(*order)[i]] = (uint32_t)i;
    return 1;
}

static int cmp_cp(const void *a, const void *b)
{
    const cp_entry *x = a, *y = b;
    if (x->cust != y->cust)
        return x->cust < y->cust ? -1 : 1;
    return x->prod < y->prod ? -1 : x->prod > y->prod;
}

/* Sort customers and products by id and build the per-customer CSR. */
static int finish(txn_data *d)
{
    if (!sort_table(&d->cust, &d->cust_order, &d->cust_rank) ||
        !sort_table(&d->prod, &d->prod_order, &d->prod_rank))
        return 0;
    size_t nc = d->cust.n;
    d->cp_row = calloc(nc + 1, sizeof *d->cp_row);
    d->cp_prod = malloc((d->ncps + 1) * sizeof *d->cp_prod);
    d->cp_count = malloc((d->ncps + 1) * sizeof *d->cp_count);
    d->cp_last = malloc((d->ncps + 1) * sizeof *d->cp_last);
    int32_t *cust_last = malloc((nc + 1) * sizeof *cust_last);
    if (!d->cp_row || !d->cp_prod || !d->cp_count || !d->cp_last || !cust_last) {
        free(cust_last);
        return 0;
    }
    for (size_t i = 0; i < nc; i++)
        cust_last[i] = INT32_MIN;
    for (size_t i = 0; i < d->ndays; i++)
        if (d->days[i].day > cust_last[d->days[i].cust])
            cust_last[d->days[i].cust] = d->days[i].day;
    for (size_t i = 0; i < d->ncps; i++) {
        cp_entry *e = &d->cps[i];
        if (e->last_day != cust_last[e->cust])
            e->last_count = 0;
        e->cust = d->cust_rank[e->cust];
        e->prod = d->prod_rank[e->prod];
    }
    free(cust_last);
    if (d->ncps)
        qsort(d->cps, d->ncps, sizeof *d->cps, cmp_cp);
    for (size_t i = 0; i < d->ncps; i++) {
        d->cp_row[d->cps[i].cust + 1]++;
        d->cp_prod[i] = d->cps[i].prod;
        d->cp_count[i] = d->cps[i].count;
        d->cp_last[i] = d->cps[i].last_count;
    }
    for (size_t i = 0; i < nc; i++)
        d->cp_row[i + 1] += d->cp_row[i];
    free(d->cps);
    d->cps = NULL;
    d->cps_cap = 0;
    return 1;
}

uint64_t txn_invoice_hash(const char *invoice, size_t len)
{
    return hash_bytes(invoice, len, 0x1a7);
}

txn_reason txn_classify(const char *cid, size_t cidlen, const char *invoice, size_t invlen,
                        const char *cancel_prefix, int numbers_ok, double qty, double price,
                        int32_t day, txn_line *out)
{
    cidlen = normalise_id(&cid, cidlen);
    if (cidlen == 0)
        return TXN_MISSING_ID;
    size_t cplen = cancel_prefix ? strlen(cancel_prefix) : 0;
    if (cplen && invlen >= cplen && memcmp(invoice, cancel_prefix, cplen) == 0)
        return TXN_CANCELLED;
    if (!numbers_ok || !isfinite(qty) || !isfinite(price) ||
        (qty > 0 && price > 0 && !(qty * price > 0 && qty * price <= TXN_SPEND_MAX)))
        return TXN_BAD_NUMBER;
    if (day == DATE_NONE)
        return TXN_BAD_DATE;
    if (!(qty > 0))
        return TXN_NONPOS_QUANTITY;
    if (!(price > 0))
        return TXN_NONPOS_PRICE;
    out->cid = cid;
    out->cidlen = cidlen;
    out->spend = qty * price;
    return TXN_NREASONS;
}

static void count_reason(txn_report *rep, txn_reason r, uint64_t line)
{
    uint64_t k = rep->count[r]++;
    if (k < TXN_EXAMPLES)
        rep->examples[r][k] = line;
}

rfm_status txn_read_csv(csv_reader *csv, const txn_options *opt, txn_progress_fn progress,
                        void *user, txn_data **out, txn_report *rep, char *err, size_t errlen)
{
    const csv_field *f;
    size_t nf;
    rfm_status st;
    const char *name = csv_name(csv);
    *out = NULL;
    memset(rep, 0, sizeof *rep);

    if ((st = csv_next(csv, &f, &nf, err, errlen)) != RFM_OK)
        return st;
    if (nf == 0)
        return rfm_fail(err, errlen, RFM_EDATA, "%s: empty file (no header line)", name);
    const char *want[6] = {opt->invoice, opt->customer_id, opt->date,
                           opt->quantity, opt->price, opt->product};
    int col[6];
    for (int k = 0; k < 6; k++) {
        col[k] = -1;
        if (!want[k])
            continue;
        col[k] = csv_find(f, nf, want[k]);
        if (col[k] < 0)
            return rfm_fail(err, errlen, RFM_EINVAL,
                            "%s:%llu: column '%s' not found in the header (check the columns "
                            "section of the config)",
                            name, (unsigned long long)csv_line(csv), want[k]);
    }
    size_t nheader = nf;
    const char *cprefix = opt->cancel_prefix;

    txn_data *d = calloc(1, sizeof *d);
    if (!d)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    u64map days = {0}, invs = {0}, cps = {0};
    lineset lines = {0};
    lines.cur = 1;
    lines.invoice = 0;
    int have_invoice = 0;
    char last_date[32], last_cid[64];
    size_t last_date_len = SIZE_MAX, last_cid_len = SIZE_MAX;
    int32_t last_day = DATE_NONE;
    long last_c = -1, last_dk = -1, last_ik = -1;
    uint64_t last_dkey = UINT64_MAX, last_ikey = UINT64_MAX;
    d->first_day = INT32_MAX;
    d->last_day = INT32_MIN;
    st = RFM_OK;

    for (;;) {
        if ((st = csv_next(csv, &f, &nf, err, errlen)) != RFM_OK)
            goto fail;
        if (nf == 0)
            break;
        uint64_t line = csv_line(csv);
        rep->lines++;
        if (progress && (rep->lines & 0xfffff) == 0)
            progress(rep->lines, csv_bytes(csv), csv_size(csv), user);
        if (nf != nheader) {
            st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu:%llu: expected %zu fields, found %zu",
                          name, (unsigned long long)line,
                          (unsigned long long)csv_column(csv, nf - 1), nheader, nf);
            goto fail;
        }
        const csv_field *inv = &f[col[0]];
        double qty, price;
        int numbers_ok = parse_number(f[col[3]].s, f[col[3]].len, &qty) &&
                         parse_number(f[col[4]].s, f[col[4]].len, &price);
        /* Lines of one invoice repeat the date and the customer: compare
         * with the previous line before parsing or hashing again. */
        int32_t day;
        const csv_field *df = &f[col[2]];
        if (df->len == last_date_len && df->len < sizeof last_date &&
            memcmp(df->s, last_date, df->len) == 0) {
            day = last_day;
        } else {
            day = date_parse(df->s, df->len);
            if (df->len < sizeof last_date) {
                memcpy(last_date, df->s, df->len);
                last_date_len = df->len;
                last_day = day;
            }
        }
        txn_line tl;
        txn_reason why = txn_classify(f[col[1]].s, f[col[1]].len, inv->s, inv->len, cprefix,
                                      numbers_ok, qty, price, day, &tl);
        if (why != TXN_NREASONS) {
            count_reason(rep, why, line);
            continue;
        }
        const char *cid = tl.cid;
        size_t cidlen = tl.cidlen;
        uint64_t ih = txn_invoice_hash(inv->s, inv->len);
        if (!have_invoice || ih != lines.invoice) {
            lineset_clear(&lines, ih);
            have_invoice = 1;
        }
        /* The record's fields lie back to back (csv.h), so one call hashes
         * the whole line. */
        uint64_t lh = hash_bytes(f[0].s, (size_t)(f[nf - 1].s + f[nf - 1].len - f[0].s),
                                 0x2545f4914f6cdd1dULL);
        int dup;
        if (!lineset_add(&lines, lh, &dup))
            goto nomem;
        if (dup) {
            count_reason(rep, TXN_DUPLICATE, line);
            continue;
        }
        if (opt->snapshot_day != DATE_NONE && day >= opt->snapshot_day) {
            count_reason(rep, TXN_AFTER_SNAPSHOT, line);
            continue;
        }
        rep->used++;

        int added;
        long c, k;
        if (cidlen == last_cid_len && memcmp(cid, last_cid, cidlen) == 0) {
            c = last_c;
        } else {
            if ((c = strtab_intern(&d->cust, cid, cidlen, &added)) < 0)
                goto nomem;
            if (cidlen < sizeof last_cid) {
                memcpy(last_cid, cid, cidlen);
                last_cid_len = cidlen;
                last_c = c;
            } else {
                last_cid_len = SIZE_MAX;
            }
        }
        double spend = tl.spend;
        uint64_t dkey = ((uint64_t)c << 32) | (uint32_t)day;
        if (dkey == last_dkey) {
            k = last_dk;
        } else {
            k = u64map_get(&days, dkey, &added);
            if (k < 0 ||
                !reserve((void **)&d->days, &d->days_cap, (size_t)k + 1, sizeof *d->days))
                goto nomem;
            if (added) {
                d->days[k] = (day_entry){(uint32_t)c, day, 0.0};
                d->ndays++;
            }
            last_dkey = dkey;
            last_dk = k;
        }
        d->days[k].spend += spend;
        uint64_t ikey = ih ^ hash_mix((uint64_t)c + 1);
        if (ikey == last_ikey) {
            k = last_ik;
        } else {
            k = u64map_get(&invs, ikey, &added);
            if (k < 0 ||
                !reserve((void **)&d->invs, &d->invs_cap, (size_t)k + 1, sizeof *d->invs))
                goto nomem;
            if (added) {
                d->invs[k] = (inv_entry){(uint32_t)c, day, ih};
                d->ninvs++;
            }
            last_ikey = ikey;
            last_ik = k;
        }
        /* An invoice is dated by its earliest line, also when its lines
         * follow each other: then a customer active as of a day has an
         * invoice before it, and frequency is never 0 beside a purchase. */
        if (day < d->invs[k].day)
            d->invs[k].day = day;
        if (day < d->first_day)
            d->first_day = day;
        if (day > d->last_day)
            d->last_day = day;
        if (col[5] >= 0) {
            long p = strtab_intern(&d->prod, f[col[5]].s, f[col[5]].len, &added);
            if (p < 0)
                goto nomem;
            k = u64map_get(&cps, ((uint64_t)c << 32) | (uint32_t)p, &added);
            if (k < 0 || !reserve((void **)&d->cps, &d->cps_cap, (size_t)k + 1, sizeof *d->cps))
                goto nomem;
            cp_entry *e = &d->cps[k];
            if (added) {
                *e = (cp_entry){(uint32_t)c, (uint32_t)p, 0, 0, day};
                d->ncps++;
            }
            e->count++;
            if (day > e->last_day) {
                e->last_day = day;
                e->last_count = 1;
            } else if (day == e->last_day) {
                e->last_count++;
            }
        }
    }
    rep->bytes = csv_bytes(csv);
    {
        uint8_t dg[32];
        csv_sha256(csv, dg);
        sha256_hex(dg, rep->sha256);
    }
    if (progress)
        progress(rep->lines, csv_bytes(csv), csv_size(csv), user);
    if (rep->used == 0) {
        st = rfm_fail(err, errlen, RFM_EDATA, "%s: no usable line among %llu (see the cleaning "
                      "report: every line was dropped)", name, (unsigned long long)rep->lines);
        goto fail;
    }
    d->snapshot_day = opt->snapshot_day != DATE_NONE ? opt->snapshot_day : d->last_day + 1;
    if (!finish(d))
        goto nomem;
    u64map_free(&days);
    u64map_free(&invs);
    u64map_free(&cps);
    free(lines.h);
    free(lines.gen);
    *out = d;
    return RFM_OK;
nomem:
    st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory after %llu lines", name,
                  (unsigned long long)rep->lines);
fail:
    u64map_free(&days);
    u64map_free(&invs);
    u64map_free(&cps);
    free(lines.h);
    free(lines.gen);
    txn_free(d);
    return st;
}

rfm_status txn_read(const char *path, const txn_options *opt, txn_progress_fn progress,
                    void *user, txn_data **out, txn_report *rep, char *err, size_t errlen)
{
    csv_reader *csv;
    *out = NULL;
    rfm_status st = csv_open(path, &csv, err, errlen);
    if (st != RFM_OK)
        return st;
    st = txn_read_csv(csv, opt, progress, user, out, rep, err, errlen);
    csv_close(csv);
    return st;
}

size_t txn_ncustomers(const txn_data *d) { return d->cust.n; }

const char *txn_customer_id(const txn_data *d, size_t i)
{
    return d->cust.arena + d->cust.ofs[d->cust_order[i]];
}

long txn_find(const txn_data *d, const char *id)
{
    long e = strtab_find(&d->cust, id);
    return e < 0 ? -1 : (long)d->cust_rank[e];
}

int32_t txn_first_day(const txn_data *d) { return d->first_day; }
int32_t txn_last_day(const txn_data *d) { return d->last_day; }
int32_t txn_snapshot_day(const txn_data *d) { return d->snapshot_day; }
size_t txn_nproducts(const txn_data *d) { return d->prod.n; }

const char *txn_product_id(const txn_data *d, size_t j)
{
    return d->prod.arena + d->prod.ofs[d->prod_order[j]];
}

void txn_customer_products(const txn_data *d, size_t i, const uint32_t **products,
                           const uint32_t **counts, const uint32_t **last_counts, size_t *n)
{
    size_t a = d->cp_row[i], b = d->cp_row[i + 1];
    *products = d->cp_prod + a;
    *counts = d->cp_count + a;
    *last_counts = d->cp_last + a;
    *n = b - a;
}

void txn_features_asof(const txn_data *d, int32_t asof, txn_features *feats)
{
    size_t nc = d->cust.n;
    /* Per interned customer: first/last day, first-day spend, days. */
    for (size_t i = 0; i < nc; i++) {
        memset(&feats[i], 0, sizeof feats[i]);
        feats[i].bg_t_x = INT32_MAX; /* first day, temporarily */
        feats[i].tenure = INT32_MIN; /* last day, temporarily */
    }
    for (size_t k = 0; k < d->ndays; k++) {
        const day_entry *e = &d->days[k];
        txn_features *f = &feats[d->cust_rank[e->cust]];
        if (e->day >= asof) {
            f->future_days += 1;
            f->future_spend += e->spend;
            continue;
        }
        f->active = 1;
        f->monetary += e->spend;
        f->bg_x += 1; /* distinct days for now */
        if (e->day < f->bg_t_x) {
            f->bg_t_x = e->day;
            f->bg_mean_spend = e->spend; /* spend of the first day, for now */
        }
        if (e->day > f->tenure)
            f->tenure = e->day;
    }
    for (size_t k = 0; k < d->ninvs; k++)
        if (d->invs[k].day < asof)
            feats[d->cust_rank[d->invs[k].cust]].frequency += 1;
    for (size_t i = 0; i < nc; i++) {
        txn_features *f = &feats[i];
        if (!f->active) {
            double fd = f->future_days, fs = f->future_spend;
            memset(f, 0, sizeof *f);
            f->future_days = fd;
            f->future_spend = fs;
            continue;
        }
        double first = f->bg_t_x, last = f->tenure, ndays = f->bg_x;
        double first_spend = f->bg_mean_spend;
        f->recency = asof - last;
        f->tenure = asof - first;
        f->aov = f->monetary / f->frequency;
        f->bg_x = ndays - 1;
        f->bg_t_x = last - first;
        f->bg_T = (asof - 1) - first;
        f->bg_mean_spend = ndays > 1 ? (f->monetary - first_spend) / (ndays - 1) : 0.0;
    }
}

int txn_each_purchase(const txn_data *d, txn_day_fn day_fn, txn_invoice_fn inv_fn, void *user)
{
    for (size_t k = 0; k < d->ndays; k++) {
        const day_entry *e = &d->days[k];
        if (day_fn(user, d->cust_rank[e->cust], e->day, e->spend) != 0)
            return -1;
    }
    for (size_t k = 0; k < d->ninvs; k++) {
        const inv_entry *e = &d->invs[k];
        if (inv_fn(user, d->cust_rank[e->cust], e->ih, e->day) != 0)
            return -1;
    }
    return 0;
}
