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

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "date.h"
#include "hash.h"
#include "numfmt.h"
#include "sha256.h"

#define EMPTY UINT32_MAX

/* ---- string interning ------------------------------------------------ */

typedef struct {
    char *arena;
    size_t alen, acap;
    size_t *ofs;    /* per entry: offset of its NUL-terminated string */
    uint64_t *hash; /* per entry */
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
    uint64_t ih; /* txn_invoice_key, for txn_each_purchase */
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
    day_entry *rets; /* returns netted per customer-day (TXN_RETURNS_SUBTRACT) */
    size_t nrets, rets_cap;
    /* CSR of products per customer (sorted positions), built after the pass */
    size_t *cp_row;
    uint32_t *cp_prod, *cp_count, *cp_last;
    int32_t first_day, last_day, snapshot_day;
};

const char *txn_reason_name(txn_reason r)
{
    static const char *const names[TXN_NREASONS] = {
        "missing_customer_id",
        "cancelled",
        "bad_number",
        "bad_date",
        "nonpositive_quantity",
        "nonpositive_price",
        "zero_amount",
        "duplicate",
        "after_snapshot",
        "return",
        "erased",
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
    free(d->rets);
    free(d->cp_row);
    free(d->cp_prod);
    free(d->cp_count);
    free(d->cp_last);
    free(d);
}

static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* parse_number below, all of it: the numbers its first loop leaves. */
static __attribute__((noinline)) int parse_number_rest(const char *s, size_t len, char dec,
                                                       double *out)
{
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
        } else if (c == dec && !seen_dot) {
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
    char other = dec == ',' ? '.' : ',';
    size_t k = s[0] == '-' || s[0] == '+', digits = 0, others = 0;
    for (; k < len && ((s[k] >= '0' && s[k] <= '9') || s[k] == '.' || s[k] == ','); k++) {
        digits += s[k] >= '0' && s[k] <= '9';
        others += s[k] == other;
    }
    if (k == len && digits > 0 && others > 0)
        return -1;
    char buf[64];
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (dec == ',') { /* strtod reads '.' (the programs keep the "C" locale) */
        char *c = memchr(buf, ',', len);
        if (c)
            *c = '.';
    }
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + len || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}
}

/* Decimal number with decimal mark dec ('.' or ','): the fast exact path
 * of Clinger (mantissa < 2^53, power of ten <= 22 is exactly representable,
 * so one division rounds correctly); anything else goes to strtod. Returns
 * 1 with *out finite, 0 when s is not a number, and -1 when it is digits
 * with the other mark ("1.234,50" with ','; "1,234.50" with '.'): a
 * thousands separator, refused rather than guessed. */
static inline int parse_number(const char *s, size_t len, char dec, double *out)
{
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    if (len == 0)
        return 0;
    size_t i = s[0] == '-' || s[0] == '+';
    int neg = s[0] == '-';
    uint64_t mant = 0;
    /* Up to 15 digits, the common case: below 2^53 with no check per digit.
     * The others go to parse_number_rest (with the same arithmetic). */
    {
        size_t j = i, nfrac = 0;
        unsigned dg;
        for (; j < len && (dg = (unsigned)(s[j] - '0')) < 10; j++)
            mant = mant * 10 + dg;
        size_t nint = j - i;
        if (j < len && s[j] == dec) {
            size_t f0 = ++j;
            for (; j < len && (dg = (unsigned)(s[j] - '0')) < 10; j++)
                mant = mant * 10 + dg;
            nfrac = j - f0;
        }
        if (j == len && nint + nfrac > 0 && nint + nfrac <= 15) {
            *out = (double)mant / p10[nfrac];
            if (neg)
                *out = -*out;
            return 1;
        }
    }
    return parse_number_rest(s, len, dec, out);
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
    /* Digits up to the first dot (at least one), then only zeros: one pass. */
    size_t i = 0;
    while (i < len && (unsigned)(s[i] - '0') < 10)
        i++;
    if (i == 0 || i == len || s[i] != '.')
        return len;
    for (size_t j = i + 1; j < len; j++)
        if (s[j] != '0')
            return len;
    return i;
}

size_t txn_pseudonym(const char *key, size_t keylen, const char *id, size_t len, char out[33])
{
    out[0] = '\0';
    len = normalise_id(&id, len);
    if (len == 0)
        return 0;
    uint8_t mac[32];
    hmac_sha256(key, keylen, id, len, mac);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < TXN_PSEUDONYM_LEN / 2; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[TXN_PSEUDONYM_LEN] = '\0';
    return TXN_PSEUDONYM_LEN;
}

int txn_is_pseudonym(const char *s, size_t len)
{
    if (len != TXN_PSEUDONYM_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

txn_id_kind txn_id_looks_like(const char *id)
{
    const char *at = strchr(id, '@');
    if (at && at > id && !strchr(at + 1, '@') && !strpbrk(id, " \t,;<>")) {
        const char *dot = strrchr(at + 1, '.');
        if (dot && dot > at + 1 && dot[1] != '\0')
            return TXN_ID_EMAIL;
    }
    size_t digits = 0, seps = 0;
    const char *p = id;
    while (*p == ' ')
        p++;
    int plus = *p == '+';
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits++;
        else if (strchr("+-.() ", *p) && (*p != '+' || p == id || p[-1] == ' '))
            seps++;
        else
            return TXN_ID_OTHER;
    }
    if (digits >= 8 && digits <= 15 && (plus || seps > 0))
        return TXN_ID_PHONE;
    return TXN_ID_OTHER;
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

uint64_t txn_invoice_key(const char *invoice, size_t invlen, const char *cid, size_t cidlen,
                         int32_t day)
{
    if (invoice)
        return hash_bytes(invoice, invlen, 0x1a7);
    return hash_bytes(cid, cidlen, 0x1a7) ^ hash_mix((uint64_t)(uint32_t)day + 1);
}

txn_reason txn_classify(const char *cid, size_t cidlen, const char *invoice, size_t invlen,
                        const char *cancel_prefix, size_t cplen, int numbers_ok, double qty,
                        double price, int amount, int32_t day, txn_line *out)
{
    cidlen = normalise_id(&cid, cidlen);
    out->cid = cid;
    out->cidlen = cidlen;
    out->spend = qty * price;
    if (cidlen == 0)
        return TXN_MISSING_ID;
    if (invoice && cplen && invlen >= cplen && invoice[0] == cancel_prefix[0] &&
        (cplen == 1 || memcmp(invoice, cancel_prefix, cplen) == 0))
        return TXN_CANCELLED;
    double spend = out->spend;
    if (!numbers_ok ||
        (qty != 0 && price > 0 && !(fabs(spend) > 0 && fabs(spend) <= TXN_SPEND_MAX)))
        return TXN_BAD_NUMBER;
    if (day == DATE_NONE)
        return TXN_BAD_DATE;
    if (qty == 0)
        return amount ? TXN_ZERO_AMOUNT : TXN_NONPOS_QUANTITY;
    if (!(price > 0))
        return TXN_NONPOS_PRICE;
    return TXN_NREASONS;
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

txn_reason txn_leading_reason(const txn_report *rep)
{
    txn_reason best = TXN_NREASONS;
    for (int i = 0; i < TXN_NREASONS; i++)
        if (rep->count[i] > 0 && (best == TXN_NREASONS || rep->count[i] > rep->count[best]))
            best = (txn_reason)i;
    return best;
}

static int is_position(const char *s)
{
    if (!s || !*s || *s == '0')
        return 0;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return strlen(s) <= 4;
}

enum { C_INVOICE, C_CUSTOMER, C_DATE, C_QUANTITY, C_PRICE, C_AMOUNT, C_PRODUCT, NCOL };
static const char *const col_key[NCOL] = {"invoice", "customer_id", "date",   "quantity",
                                          "price",   "amount",      "product"};

static void col_names(const txn_options *o, const char *name[NCOL])
{
    name[C_INVOICE] = o->invoice;
    name[C_CUSTOMER] = o->customer_id;
    name[C_DATE] = o->date;
    name[C_QUANTITY] = o->quantity;
    name[C_PRICE] = o->price;
    name[C_AMOUNT] = o->amount;
    name[C_PRODUCT] = o->product;
}

const char *txn_check_options(const txn_options *o, char *buf, size_t len)
{
    const char *name[NCOL];
    col_names(o, name);
    if (!o->customer_id || !o->date)
        snprintf(buf, len, "columns.%s must name a column",
                 o->customer_id ? "date" : "customer_id");
    else if (o->amount && (o->quantity || o->price))
        snprintf(buf, len,
                 "columns.amount cannot be used with columns.quantity or columns.price: "
                 "a line's value is either amount or quantity x price; set the other "
                 "to null");
    else if (!o->amount && (!o->quantity || !o->price))
        snprintf(buf, len,
                 "columns.quantity and columns.price must both name a column, or "
                 "columns.amount must");
    else if (o->decimal != 0 && o->decimal != '.' && o->decimal != ',')
        snprintf(buf, len, "decimal must be \".\" or \",\"");
    else if (o->format == TXN_FORMAT_JSONL && (o->separator || o->no_header))
        snprintf(buf, len, "format jsonl takes no separator or header (they are for CSV)");
    else {
        for (int i = 0; i < NCOL; i++) {
            if (!name[i])
                continue;
            if (o->no_header && !is_position(name[i])) {
                snprintf(buf, len,
                         "columns.%s must be a 1-based column position with header: "
                         "false (got '%s')",
                         col_key[i], name[i]);
                return buf;
            }
            for (int j = 0; j < i; j++)
                if (name[j] && strcmp(name[i], name[j]) == 0) {
                    snprintf(buf, len, "columns.%s names the same column as columns.%s ('%s')",
                             col_key[i], col_key[j], name[i]);
                    return buf;
                }
        }
        const char *why = o->date_format ? date_check_pattern(o->date_format) : NULL;
        if (!why)
            return NULL;
        snprintf(buf, len, "date_format %s", why);
    }
    return buf;
}

/* ---- one read, in phases: dialect, columns, clean each line, fold it --- */

typedef struct {
    csv_reader *csv;
    const txn_options *opt;
    txn_report *rep;
    const char *name;
    int jsonl;
    int col[NCOL];  /* field index per column, -1 when not read */
    size_t nfields; /* fields of every record (CSV) */
    int pending;    /* the first record (no header) is still to be used */
    const csv_field *first;
    char sep; /* for example texts */
    char dec;
    date_spec ds;
    const char *cprefix;
    size_t cplen;
    /* JSON Lines: the record made of the members, back to back */
    csv_field jf[NCOL];
    char *jbuf;
    size_t jcap;
    /* the previous line's date, parsed */
    char last_date[40];
    size_t last_date_len;
    int32_t last_day;
    lineset lines;
    int have_invoice;
} reader;

/* What clean_line found in a used line (or a return). */
typedef struct {
    const char *cid;
    size_t cidlen;
    uint64_t group; /* the invoice's hash, or the customer-day's */
    int32_t day;
    double spend; /* negative for a return */
    const csv_field *prod;
} line_value;

static void count_reason(reader *rd, txn_reason r, uint64_t line, const csv_field *f, size_t nf)
{
    txn_report *rep = rd->rep;
    uint64_t k = rep->count[r]++;
    if (k < TXN_EXAMPLES)
        rep->examples[r][k] = line;
    if (k == 0 && rd->opt->id_key) {
        /* The line holds a clear customer id, and columns not configured. */
        snprintf(rep->example_text[r], sizeof rep->example_text[r],
                 "(text withheld: privacy.pseudonymize_ids)");
    } else if (k == 0) {
        char *t = rep->example_text[r];
        size_t n = 0;
        for (size_t i = 0; i < nf && n < TXN_EXAMPLE_TEXT; i++) {
            if (i > 0)
                t[n++] = rd->sep;
            size_t m = f[i].len < TXN_EXAMPLE_TEXT - n ? f[i].len : TXN_EXAMPLE_TEXT - n;
            memcpy(t + n, f[i].s, m);
            n += m;
        }
        t[n] = '\0';
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Phase 1: CSV or JSON Lines, and the reader's separator. */
static rfm_status open_dialect(reader *rd, char *err, size_t errlen)
{
    const txn_options *o = rd->opt;
    rd->jsonl = o->format == TXN_FORMAT_JSONL;
    if (o->format == TXN_FORMAT_AUTO) {
        rd->jsonl = ends_with(rd->name, ".jsonl") || ends_with(rd->name, ".jsonl.gz") ||
                    ends_with(rd->name, ".ndjson") || ends_with(rd->name, ".ndjson.gz");
        if (!rd->jsonl && !o->no_header && !o->separator) {
            const uint8_t *p;
            size_t n;
            rfm_status st = csv_peek(rd->csv, &p, &n, err, errlen);
            if (st != RFM_OK)
                return st;
            size_t i = 0;
            while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
                i++;
            rd->jsonl = i < n && p[i] == '{';
        }
    }
    int sep = rd->jsonl ? CSV_SEP_LINES : o->separator ? o->separator : ',';
    if (!csv_set_separator(rd->csv, sep))
        return rfm_fail(err, errlen, RFM_EINVAL, "%s: separator %d cannot be used", rd->name, sep);
    rd->sep = sep == CSV_SEP_WHITESPACE ? ' ' : rd->jsonl ? ',' : (char)sep;
    return RFM_OK;
}

/* Phase 2: where each column is. */
static rfm_status find_columns(reader *rd, char *err, size_t errlen)
{
    const char *want[NCOL];
    col_names(rd->opt, want);
    for (int k = 0; k < NCOL; k++)
        rd->col[k] = want[k] ? (rd->jsonl ? k : -1) : -1;
    if (rd->jsonl)
        return RFM_OK;
    const csv_field *f;
    size_t nf;
    rfm_status st = csv_next(rd->csv, &f, &nf, err, errlen);
    if (st != RFM_OK)
        return st;
    if (nf == 0)
        return rfm_fail(err, errlen, RFM_EDATA, "%s: empty file (no %s line)", rd->name,
                        rd->opt->no_header ? "data" : "header");
    rd->nfields = nf;
    rd->pending = rd->opt->no_header;
    rd->first = f;
    for (int k = 0; k < NCOL; k++) {
        if (!want[k])
            continue;
        if (rd->opt->no_header) {
            long pos = strtol(want[k], NULL, 10);
            if (pos >= 1 && (size_t)pos <= nf)
                rd->col[k] = (int)(pos - 1);
            else
                return rfm_fail(err, errlen, RFM_EINVAL,
                                "%s:%llu: column %s (columns.%s) not found: the first line has "
                                "%zu fields (check separator and the columns section of the "
                                "config)",
                                rd->name, (unsigned long long)csv_line(rd->csv), want[k],
                                col_key[k], nf);
        } else if ((rd->col[k] = csv_find(f, nf, want[k])) < 0) {
            return rfm_fail(err, errlen, RFM_EINVAL,
                            "%s:%llu: column '%s' (columns.%s) not found in the header, which "
                            "has %zu field%s (check separator, header and the columns section "
                            "of the config)",
                            rd->name, (unsigned long long)csv_line(rd->csv), want[k], col_key[k],
                            nf, nf == 1 ? "" : "s");
        }
    }
    return RFM_OK;
}

/* A JSON value as field text: strings as they are, numbers in their
 * shortest exact form (with the decimal mark dec), true/false, and null or a missing member empty.
 */
static size_t json_text(const json_t *v, char dec, char *out, size_t cap, const char **s)
{
    *s = out;
    if (json_is_string(v)) {
        *s = json_string_value(v);
        return json_string_length(v);
    }
    if (json_is_integer(v))
        return (size_t)snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (json_is_real(v)) { /* in the text's decimal mark, as a string member would be */
        size_t n = numfmt_double(json_real_value(v), out);
        char *dot = memchr(out, '.', n);
        if (dot)
            *dot = dec;
        return n;
    }
    if (json_is_boolean(v))
        return (size_t)snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
    out[0] = '\0';
    return 0;
}

/* Phase 3a: the next record, *nf 0 at the end. */
static rfm_status next_record(reader *rd, const csv_field **f, size_t *nf, char *err, size_t errlen)
{
    if (rd->pending) { /* no header: the first record, still the reader's current one */
        rd->pending = 0;
        *f = rd->first;
        *nf = rd->nfields;
        return RFM_OK;
    }
    rfm_status st = csv_next(rd->csv, f, nf, err, errlen);
    if (st != RFM_OK || *nf == 0 || !rd->jsonl)
        return st;
    json_error_t je;
    json_t *obj = json_loadb((*f)[0].s, (*f)[0].len, 0, &je);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu:%d: %s", rd->name,
                        (unsigned long long)csv_line(rd->csv),
                        obj             ? 1
                        : je.column > 0 ? je.column
                                        : 1,
                        obj ? "a JSON Lines line must be one JSON object" : je.text);
    }
    const char *want[NCOL];
    col_names(rd->opt, want);
    size_t need = (*f)[0].len + NCOL * (NUMFMT_LEN + 1);
    if (need > rd->jcap) {
        char *b = realloc(rd->jbuf, need);
        if (!b) {
            json_decref(obj);
            return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", rd->name);
        }
        rd->jbuf = b;
        rd->jcap = need;
    }
    size_t at = 0;
    for (int k = 0; k < NCOL; k++) {
        char num[NUMFMT_LEN + 1];
        const char *t;
        size_t n =
            want[k] ? json_text(json_object_get(obj, want[k]), rd->dec, num, sizeof num, &t) : 0;
        if (!want[k])
            t = "";
        if (at + n + 1 > rd->jcap) { /* escapes make a string shorter, never longer */
            json_decref(obj);
            return rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu:1: line too long", rd->name,
                            (unsigned long long)csv_line(rd->csv));
        }
        memcpy(rd->jbuf + at, t, n);
        rd->jbuf[at + n] = '\0';
        rd->jf[k].s = rd->jbuf + at;
        rd->jf[k].len = n;
        at += n + 1;
    }
    json_decref(obj);
    *f = rd->jf;
    *nf = NCOL;
    return RFM_OK;
}

/* The error for a thousands separator in column k (kept out of number(),
 * which runs twice a line). */
static __attribute__((noinline, cold)) rfm_status
thousands_error(reader *rd, const csv_field *x, int k, uint64_t line, char *err, size_t errlen)
{
    return rfm_fail(err, errlen, RFM_EINVAL,
                    "%s:%llu:%llu: '%.40s' in columns.%s has a thousands separator (data.decimal "
                    "is \"%c\"): thousands separators are refused, not guessed; export without "
                    "them, or set data.decimal",
                    rd->name, (unsigned long long)line,
                    (unsigned long long)(rd->jsonl ? 1 : csv_column(rd->csv, (size_t)rd->col[k])),
                    x->s, col_key[k], rd->dec);
}

/* Column k of a line as a number: 1 read, 0 not a number (counted), and 0
 * with *st set for a thousands separator, which stops the read. */
static int number(reader *rd, const csv_field *f, int k, uint64_t line, double *out, rfm_status *st,
                  char *err, size_t errlen)
{
    const csv_field *x = &f[rd->col[k]];
    int r = parse_number(x->s, x->len, rd->dec, out);
    if (__builtin_expect(r >= 0, 1))
        return r;
    *st = thousands_error(rd, x, k, line, err, errlen);
    return 0;
}

/* clean_pre's answer for a line that reaches the repeat check. */
#define TXN_REACHES_REPEATS (TXN_NREASONS + 1)

/* Phase 3b, up to the repeat check: the reason a line is not used, or
 * TXN_REACHES_REPEATS with v->cid, v->group, v->day and v->spend set. A
 * thousands separator or an ambiguous date stops the read: RFM_EINVAL in
 * *st. Changes nothing but caches. */
static int clean_pre(reader *rd, const csv_field *f, uint64_t line, line_value *v, rfm_status *st,
                     char *err, size_t errlen)
{
    const int *col = rd->col;
    *st = RFM_OK;
    const csv_field *inv = col[C_INVOICE] >= 0 ? &f[col[C_INVOICE]] : NULL;
    double qty = 1, price = 1; /* with an amount column: qty = amount */
    int ok = col[C_AMOUNT] >= 0 ? number(rd, f, C_AMOUNT, line, &qty, st, err, errlen)
                                : number(rd, f, C_QUANTITY, line, &qty, st, err, errlen) &&
                                      number(rd, f, C_PRICE, line, &price, st, err, errlen);
    if (*st != RFM_OK)
        return TXN_NREASONS;
    /* Lines of one invoice repeat the date and the customer: compare
     * with the previous line before parsing or hashing again. */
    const csv_field *df = &f[col[C_DATE]];
    int32_t day;
    if (df->len == rd->last_date_len && memcmp(df->s, rd->last_date, df->len) == 0) {
        day = rd->last_day;
    } else {
        day = date_parse_in(df->s, df->len, &rd->ds);
        if (df->len < sizeof rd->last_date) {
            memcpy(rd->last_date, df->s, df->len);
            rd->last_date_len = df->len;
            rd->last_day = day;
        }
    }
    /* The checks every line and every live event share (txn_classify);
     * an ambiguous date matters only to a line that reached the date. */
    txn_line tl;
    txn_reason r = txn_classify(f[col[C_CUSTOMER]].s, f[col[C_CUSTOMER]].len, inv ? inv->s : NULL,
                                inv ? inv->len : 0, rd->cprefix, rd->cplen, ok, qty, price,
                                col[C_AMOUNT] >= 0, day == DATE_AMBIGUOUS ? 0 : day, &tl);
    if (r < TXN_BAD_DATE)
        return r;
    if (day == DATE_AMBIGUOUS) {
        *st = rfm_fail(
            err, errlen, RFM_EINVAL,
            "%s:%llu:%llu: date '%.40s' in columns.date could be day/month or "
            "month/day: set data.date_format, e.g. \"%%d/%%m/%%Y\" or \"%%m/%%d/%%Y\" "
            "(\"%%d.%%m.%%Y\" for 31.12.2024)",
            rd->name, (unsigned long long)line,
            (unsigned long long)(rd->jsonl ? 1 : csv_column(rd->csv, (size_t)col[C_DATE])), df->s);
        return TXN_NREASONS;
    }
    if (r != TXN_NREASONS)
        return r;
    v->cid = tl.cid;
    v->cidlen = tl.cidlen;
    v->spend = tl.spend;
    v->day = day;
    v->group = txn_invoice_key(inv ? inv->s : NULL, inv ? inv->len : 0, v->cid, v->cidlen, day);
    return TXN_REACHES_REPEATS;
}

/* Phase 3b from the repeat check on, for a line clean_pre let through. */
static txn_reason clean_post(reader *rd, const csv_field *f, size_t nf, line_value *v,
                             rfm_status *st, char *err, size_t errlen)
{
    const txn_options *o = rd->opt;
    const int *col = rd->col;
    double spend = v->spend;
    int32_t day = v->day;
    if (!rd->have_invoice || v->group != rd->lines.invoice) {
        lineset_clear(&rd->lines, v->group);
        rd->have_invoice = 1;
    }
    /* The record's fields lie back to back (csv.h), so one call hashes
     * the whole line. */
    uint64_t lh =
        hash_wide(f[0].s, (size_t)(f[nf - 1].s + f[nf - 1].len - f[0].s), 0x2545f4914f6cdd1dULL);
    int dup;
    if (!lineset_add(&rd->lines, lh, &dup)) {
        *st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory after %llu lines", rd->name,
                       (unsigned long long)rd->rep->lines);
        return TXN_NREASONS;
    }
    if (dup)
        return TXN_DUPLICATE;
    if (o->snapshot_day != DATE_NONE && day >= o->snapshot_day)
        return TXN_AFTER_SNAPSHOT;
    v->prod = col[C_PRODUCT] >= 0 ? &f[col[C_PRODUCT]] : NULL;
    return spend < 0 ? TXN_RETURN : TXN_NREASONS;
}

/* The tables the used lines are folded into, and the previous line's
 * keys (lines of one invoice follow each other). */
/* Phase 3b: the reason a line is not used, TXN_NREASONS when it is (then
 * *v is filled; TXN_RETURN also fills it). A thousands separator or an
 * ambiguous date stops the read: RFM_EINVAL in *st. */
static txn_reason clean_line(reader *rd, const csv_field *f, size_t nf, uint64_t line,
                             line_value *v, rfm_status *st, char *err, size_t errlen)
{
    int r = clean_pre(rd, f, line, v, st, err, errlen);
    if (r != TXN_REACHES_REPEATS)
        return (txn_reason)r;
    return clean_post(rd, f, nf, v, st, err, errlen);
}

/* A part's used line (or netted return) as it was added into its
 * customer-day: replayed in order when parts are merged, so every sum is
 * taken in the order one thread would take it. */
typedef struct {
    uint32_t k; /* the part's day (or return) entry */
    double spend;
} fold_log;

typedef struct {
    txn_data *d;
    u64map days, invs, cps, rets;
    int logging; /* a part of a parallel read: keep dlog and rlog */
    fold_log *dlog, *rlog;
    size_t ndlog, dlogcap, nrlog, rlogcap;
    const char *id_key; /* NULL: clear ids */
    char er_cid[64];    /* the previous line's id for the erasure check, and its answer */
    size_t er_cid_len;
    int er_last;
    char last_cid[64];
    size_t last_cid_len;
    long last_c, last_dk, last_ik;
    uint64_t last_dkey, last_ikey;
} accum;

static void accum_free(accum *a)
{
    free(a->dlog);
    free(a->rlog);
    u64map_free(&a->days);
    u64map_free(&a->invs);
    u64map_free(&a->cps);
    u64map_free(&a->rets);
}

static long customer_index(accum *a, const line_value *v)
{
    int added;
    long c;
    if (v->cidlen == a->last_cid_len && memcmp(v->cid, a->last_cid, v->cidlen) == 0)
        return a->last_c;
    if (a->id_key) {
        /* The clear id goes no further than this line's buffer. */
        char p[TXN_PSEUDONYM_LEN + 1];
        txn_pseudonym(a->id_key, strlen(a->id_key), v->cid, v->cidlen, p);
        c = strtab_intern(&a->d->cust, p, TXN_PSEUDONYM_LEN, &added);
    } else {
        c = strtab_intern(&a->d->cust, v->cid, v->cidlen, &added);
    }
    if (c < 0)
        return -1;
    if (v->cidlen < sizeof a->last_cid) {
        memcpy(a->last_cid, v->cid, v->cidlen);
        a->last_cid_len = v->cidlen;
        a->last_c = c;
    } else {
        a->last_cid_len = SIZE_MAX;
    }
    return c;
}

/* Is the line's customer on the erasure list (opt->is_erased)? Asked
 * once per run of lines of one customer. */
static int line_erased(accum *a, const txn_options *opt, const line_value *v)
{
    if (v->cidlen == a->er_cid_len && memcmp(v->cid, a->er_cid, v->cidlen) == 0)
        return a->er_last;
    int er;
    if (a->id_key) {
        char p[TXN_PSEUDONYM_LEN + 1];
        txn_pseudonym(a->id_key, strlen(a->id_key), v->cid, v->cidlen, p);
        er = opt->is_erased(opt->erased, p, TXN_PSEUDONYM_LEN);
    } else {
        er = opt->is_erased(opt->erased, v->cid, v->cidlen);
    }
    if (v->cidlen < sizeof a->er_cid) {
        memcpy(a->er_cid, v->cid, v->cidlen);
        a->er_cid_len = v->cidlen;
        a->er_last = er;
    } else {
        a->er_cid_len = SIZE_MAX;
    }
    return er;
}

/* Phase 3c: a return netted into its customer-day (TXN_RETURNS_SUBTRACT).
 * Returns 0 when out of memory. */
static int fold_return(accum *a, const line_value *v)
{
    txn_data *d = a->d;
    int added;
    long c = customer_index(a, v);
    if (c < 0)
        return 0;
    long k = u64map_get(&a->rets, ((uint64_t)c << 32) | (uint32_t)v->day, &added);
    if (k < 0 || !reserve((void **)&d->rets, &d->rets_cap, (size_t)k + 1, sizeof *d->rets))
        return 0;
    if (added) {
        d->rets[k] = (day_entry){(uint32_t)c, v->day, 0.0};
        d->nrets++;
    }
    d->rets[k].spend += v->spend;
    if (a->logging) {
        if (!reserve((void **)&a->rlog, &a->rlogcap, a->nrlog + 1, sizeof *a->rlog))
            return 0;
        a->rlog[a->nrlog++] = (fold_log){(uint32_t)k, v->spend};
    }
    return 1;
}

/* Phase 3c: a used line into the customer, day, invoice and product
 * tables. Returns 0 when out of memory. */
static int fold_line(accum *a, const line_value *v)
{
    txn_data *d = a->d;
    int added;
    long c = customer_index(a, v), k;
    if (c < 0)
        return 0;
    int32_t day = v->day;
    uint64_t dkey = ((uint64_t)c << 32) | (uint32_t)day;
    if (dkey == a->last_dkey) {
        k = a->last_dk;
    } else {
        k = u64map_get(&a->days, dkey, &added);
        if (k < 0 || !reserve((void **)&d->days, &d->days_cap, (size_t)k + 1, sizeof *d->days))
            return 0;
        if (added) {
            d->days[k] = (day_entry){(uint32_t)c, day, 0.0};
            d->ndays++;
        }
        a->last_dkey = dkey;
        a->last_dk = k;
    }
    d->days[k].spend += v->spend;
    if (a->logging) {
        if (!reserve((void **)&a->dlog, &a->dlogcap, a->ndlog + 1, sizeof *a->dlog))
            return 0;
        a->dlog[a->ndlog++] = (fold_log){(uint32_t)k, v->spend};
    }
    uint64_t ikey = v->group ^ hash_mix((uint64_t)c + 1);
    if (ikey == a->last_ikey) {
        k = a->last_ik;
    } else {
        k = u64map_get(&a->invs, ikey, &added);
        if (k < 0 || !reserve((void **)&d->invs, &d->invs_cap, (size_t)k + 1, sizeof *d->invs))
            return 0;
        if (added) {
            d->invs[k] = (inv_entry){(uint32_t)c, day, v->group};
            d->ninvs++;
        }
        a->last_ikey = ikey;
        a->last_ik = k;
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
    if (v->prod) {
        long p = strtab_intern(&d->prod, v->prod->s, v->prod->len, &added);
        if (p < 0)
            return 0;
        k = u64map_get(&a->cps, ((uint64_t)c << 32) | (uint32_t)p, &added);
        if (k < 0 || !reserve((void **)&d->cps, &d->cps_cap, (size_t)k + 1, sizeof *d->cps))
            return 0;
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
    return 1;
}

/* Phase 4: the digest and the verdict on an empty result. */
static rfm_status finish_report(reader *rd, char *err, size_t errlen)
{
    txn_report *rep = rd->rep;
    rep->bytes = csv_bytes(rd->csv);
    uint8_t dg[32];
    csv_sha256(rd->csv, dg);
    sha256_hex(dg, rep->sha256);
    if (rep->used > 0)
        return RFM_OK;
    txn_reason r = txn_leading_reason(rep);
    if (r == TXN_NREASONS)
        return rfm_fail(err, errlen, RFM_EDATA, "%s: no data line", rd->name);
    return rfm_fail(err, errlen, RFM_EDATA,
                    "%s: no usable line among %llu: %llu dropped as %s, e.g. line %llu: %s",
                    rd->name, (unsigned long long)rep->lines, (unsigned long long)rep->count[r],
                    txn_reason_name(r), (unsigned long long)rep->examples[r][0],
                    rep->example_text[r]);
}

/* ---- the same read on several threads -----------------------------------
 *
 * The decompressed input goes in windows of PAR_WINDOW bytes (plus the
 * start of a record the previous window cut). Each window is cut at line
 * ends into one part per thread; each part is read into tables of its own
 * (customers, days, invoices, products, returns, and the order its lines
 * were added in), and the parts are merged in file order, replaying the
 * additions, so every table, sum and count is what one thread makes.
 *
 * A part does not start exactly at its cut: the repeat check keeps the
 * lines of the current invoice, so part i starts at its handover, the
 * first line after its cut that reaches the repeat check with an invoice
 * other than the first such line's. Part i - 1 reads on past the cut up to
 * that line, finding it the same way; the two must agree (a cut inside a
 * quoted field that holds a line end makes part i read garbage, and the
 * handovers then differ). Any disagreement, and any error, reads the whole
 * window again on one thread, which words errors with their true lines.
 * The last part of a window stops at a record the window cuts; the next
 * window starts there. */

#define PAR_WINDOW (16u << 20) /* new bytes per window (txn_options.window) */
/* A window is cut into parts of at least window / 16 bytes (1 MiB). */
#define PAR_MAX_THREADS 16

typedef struct {
    /* in */
    const reader *main;
    const uint8_t *buf; /* the window */
    size_t len, start;  /* the part is read from start on */
    size_t next;        /* the next part's cut; SIZE_MAX for the last part */
    int first, last, final;
    uint64_t line0;
    int sep;
    /* state */
    reader rd;
    accum a;
    txn_report rep;
    /* out */
    rfm_status st;
    char err[RFM_ERRLEN];
    size_t begin; /* where it began reading (its handover); SIZE_MAX: none found */
    uint64_t begin_line;
    size_t stop; /* the next part's handover; SIZE_MAX: none found */
    uint64_t stop_line;
    size_t carry; /* the last part: the start of the record the window cuts, or len */
    uint64_t carry_line;
} part;

static void part_free(part *p)
{
    accum_free(&p->a);
    txn_free(p->a.d);
    p->a.d = NULL;
    free(p->rd.lines.h);
    free(p->rd.lines.gen);
    p->rd.lines.h = NULL;
    p->rd.lines.gen = NULL;
}

static void *part_read(void *arg)
{
    part *p = arg;
    csv_reader *csv = NULL;
    char *err = p->err;
    size_t errlen = sizeof p->err;
    p->begin = p->first ? 0 : SIZE_MAX;
    p->begin_line = p->line0;
    p->stop = SIZE_MAX;
    p->carry = p->len;
    rfm_status st = csv_open_view(p->buf + p->start, p->len - p->start, p->main->name, p->sep,
                                  p->line0, p->last && !p->final, &csv, err, errlen);
    if (st != RFM_OK)
        goto out;
    p->rd.csv = csv;
    int skipping = !p->first, watching = 0, have_g0 = 0;
    uint64_t g0 = 0;
    for (;;) {
        const csv_field *f;
        size_t nf;
        if ((st = csv_next(csv, &f, &nf, err, errlen)) != RFM_OK)
            goto out;
        if (nf == 0) {
            if (csv_incomplete(csv)) {
                p->carry = p->start + (size_t)csv_offset(csv);
                p->carry_line = csv_line(csv);
            } else {
                p->carry_line = csv_line_next(csv);
            }
            break;
        }
        size_t at = p->start + (size_t)csv_offset(csv);
        uint64_t line = csv_line(csv);
        if (!skipping && !watching && at >= p->next) {
            /* The next part's first group starts here: a part in the middle
             * saw its own first group at its start. */
            watching = 1, have_g0 = 0;
        }
        if (!skipping)
            p->rep.lines++;
        if (nf != p->rd.nfields) {
            st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu:%llu: expected %zu fields, found %zu",
                          p->rd.name, (unsigned long long)line,
                          (unsigned long long)csv_column(csv, nf - 1), p->rd.nfields, nf);
            goto out;
        }
        line_value v;
        int r = clean_pre(&p->rd, f, line, &v, &st, err, errlen);
        if (st != RFM_OK)
            goto out;
        if ((skipping || watching) && r == TXN_REACHES_REPEATS) {
            if (!have_g0) {
                have_g0 = 1;
                g0 = v.group;
            } else if (v.group != g0) {
                if (watching) { /* the next part's handover: stop before it */
                    p->stop = at;
                    p->stop_line = line;
                    p->rep.lines--;
                    break;
                }
                skipping = 0;
                p->rep.lines++;
                p->begin = at;
                p->begin_line = line;
            }
        }
        if (skipping)
            continue;
        if (r == TXN_REACHES_REPEATS) {
            r = clean_post(&p->rd, f, nf, &v, &st, err, errlen);
            if (st != RFM_OK)
                goto out;
        }
        const txn_options *opt = p->rd.opt;
        if ((r == TXN_NREASONS || r == TXN_RETURN) && opt->is_erased && line_erased(&p->a, opt, &v))
            r = TXN_ERASED;
        if (r != TXN_NREASONS) {
            count_reason(&p->rd, (txn_reason)r, line, f, nf);
            if (r == TXN_RETURN && opt->returns == TXN_RETURNS_SUBTRACT && !fold_return(&p->a, &v))
                goto nomem;
            continue;
        }
        p->rep.used++;
        if (!fold_line(&p->a, &v))
            goto nomem;
    }
    st = RFM_OK;
    goto out;
nomem:
    st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory after %llu lines", p->rd.name,
                  (unsigned long long)p->rep.lines);
out:
    csv_close(csv);
    p->rd.csv = NULL;
    p->st = st;
    return NULL;
}

/* A part's reader and tables; lines is the repeat state it starts with
 * (moved in), or NULL for an empty one. */
static int part_init(part *p, const reader *main, const lineset *lines, int have_invoice)
{
    memset(p, 0, sizeof *p);
    p->main = main;
    p->rd = *main;
    p->rd.rep = &p->rep;
    p->rd.last_date_len = SIZE_MAX;
    p->rd.last_day = DATE_NONE;
    p->rd.pending = 0;
    memset(&p->rd.lines, 0, sizeof p->rd.lines);
    p->rd.lines.cur = 1;
    p->rd.have_invoice = 0;
    if (lines) {
        p->rd.lines = *lines;
        p->rd.have_invoice = have_invoice;
    }
    p->a.id_key = main->opt->id_key;
    p->a.er_cid_len = SIZE_MAX;
    p->a.last_cid_len = SIZE_MAX;
    p->a.last_c = p->a.last_dk = p->a.last_ik = -1;
    p->a.last_dkey = p->a.last_ikey = UINT64_MAX;
    p->a.logging = 1;
    txn_data *d = p->a.d = calloc(1, sizeof *d);
    if (!d)
        return 0;
    d->first_day = INT32_MAX;
    d->last_day = INT32_MIN;
    return 1;
}

/* A copy of a repeat set (the window's first part gets one, so a window
 * read again starts from the same state). */
static int lineset_copy(lineset *to, const lineset *from)
{
    *to = *from;
    to->h = NULL;
    to->gen = NULL;
    if (!from->h)
        return 1;
    size_t cap = from->mask + 1;
    to->h = malloc(cap * sizeof *to->h);
    to->gen = malloc(cap * sizeof *to->gen);
    if (!to->h || !to->gen) {
        free(to->h);
        free(to->gen);
        to->h = NULL;
        to->gen = NULL;
        return 0;
    }
    memcpy(to->h, from->h, cap * sizeof *to->h);
    memcpy(to->gen, from->gen, cap * sizeof *to->gen);
    return 1;
}

/* Part p's tables into a's, its line numbers moved by off. Returns 0 when
 * out of memory. */
static int part_merge(accum *a, txn_report *rep, part *p, uint64_t off)
{
    txn_data *d = a->d, *l = p->a.d;
    int ok = 0, added;
    uint32_t *cmap = malloc((l->cust.n + 1) * sizeof *cmap);
    uint32_t *pmap = malloc((l->prod.n + 1) * sizeof *pmap);
    uint32_t *dmap = malloc((l->ndays + 1) * sizeof *dmap);
    uint32_t *rmap = malloc((l->nrets + 1) * sizeof *rmap);
    if (!cmap || !pmap || !dmap || !rmap)
        goto out;
    for (size_t i = 0; i < l->cust.n; i++) {
        const char *s = l->cust.arena + l->cust.ofs[i];
        long c = strtab_intern(&d->cust, s, strlen(s), &added);
        if (c < 0)
            goto out;
        cmap[i] = (uint32_t)c;
    }
    for (size_t i = 0; i < l->prod.n; i++) {
        const char *s = l->prod.arena + l->prod.ofs[i];
        long c = strtab_intern(&d->prod, s, strlen(s), &added);
        if (c < 0)
            goto out;
        pmap[i] = (uint32_t)c;
    }
    for (size_t i = 0; i < l->ndays; i++) {
        const day_entry *e = &l->days[i];
        uint32_t c = cmap[e->cust];
        long k = u64map_get(&a->days, ((uint64_t)c << 32) | (uint32_t)e->day, &added);
        if (k < 0 || !reserve((void **)&d->days, &d->days_cap, (size_t)k + 1, sizeof *d->days))
            goto out;
        if (added) {
            d->days[k] = (day_entry){c, e->day, 0.0};
            d->ndays++;
        }
        dmap[i] = (uint32_t)k;
    }
    for (size_t i = 0; i < p->a.ndlog; i++)
        d->days[dmap[p->a.dlog[i].k]].spend += p->a.dlog[i].spend;
    for (size_t i = 0; i < l->nrets; i++) {
        const day_entry *e = &l->rets[i];
        uint32_t c = cmap[e->cust];
        long k = u64map_get(&a->rets, ((uint64_t)c << 32) | (uint32_t)e->day, &added);
        if (k < 0 || !reserve((void **)&d->rets, &d->rets_cap, (size_t)k + 1, sizeof *d->rets))
            goto out;
        if (added) {
            d->rets[k] = (day_entry){c, e->day, 0.0};
            d->nrets++;
        }
        rmap[i] = (uint32_t)k;
    }
    for (size_t i = 0; i < p->a.nrlog; i++)
        d->rets[rmap[p->a.rlog[i].k]].spend += p->a.rlog[i].spend;
    for (size_t i = 0; i < l->ninvs; i++) {
        const inv_entry *e = &l->invs[i];
        uint32_t c = cmap[e->cust];
        long k = u64map_get(&a->invs, e->ih ^ hash_mix((uint64_t)c + 1), &added);
        if (k < 0 || !reserve((void **)&d->invs, &d->invs_cap, (size_t)k + 1, sizeof *d->invs))
            goto out;
        if (added) {
            d->invs[k] = (inv_entry){c, e->day, e->ih};
            d->ninvs++;
        } else if (e->day < d->invs[k].day) {
            d->invs[k].day = e->day;
        }
    }
    for (size_t i = 0; i < l->ncps; i++) {
        const cp_entry *e = &l->cps[i];
        uint32_t c = cmap[e->cust], q = pmap[e->prod];
        long k = u64map_get(&a->cps, ((uint64_t)c << 32) | q, &added);
        if (k < 0 || !reserve((void **)&d->cps, &d->cps_cap, (size_t)k + 1, sizeof *d->cps))
            goto out;
        cp_entry *g = &d->cps[k];
        if (added) {
            *g = *e;
            g->cust = c;
            g->prod = q;
            d->ncps++;
        } else {
            g->count += e->count;
            if (e->last_day > g->last_day) {
                g->last_day = e->last_day;
                g->last_count = e->last_count;
            } else if (e->last_day == g->last_day) {
                g->last_count += e->last_count;
            }
        }
    }
    if (l->first_day < d->first_day)
        d->first_day = l->first_day;
    if (l->last_day > d->last_day)
        d->last_day = l->last_day;
    const txn_report *pr = &p->rep;
    rep->lines += pr->lines;
    rep->used += pr->used;
    for (int r = 0; r < TXN_NREASONS; r++) {
        if (pr->count[r] == 0)
            continue;
        if (rep->count[r] == 0)
            memcpy(rep->example_text[r], pr->example_text[r], sizeof rep->example_text[r]);
        for (uint64_t j = 0; j < pr->count[r] && j < TXN_EXAMPLES; j++)
            if (rep->count[r] + j < TXN_EXAMPLES)
                rep->examples[r][rep->count[r] + j] = pr->examples[r][j] + off;
        rep->count[r] += pr->count[r];
    }
    ok = 1;
out:
    free(cmap);
    free(pmap);
    free(dmap);
    free(rmap);
    return ok;
}

/* One window, buf[0, len): parts read (on nthreads threads when it is
 * large enough), merged into a and rep; rd->lines carries the repeat state
 * from window to window. *carry is where the next window starts (len when
 * nothing is left), on line *carry_line. */
static rfm_status window_read(reader *rd, accum *a, txn_report *rep, const uint8_t *buf, size_t len,
                              int final, uint64_t line0, int nthreads, size_t min_part, int sep,
                              size_t *carry, uint64_t *carry_line, char *err, size_t errlen)
{
    part parts[PAR_MAX_THREADS];
    pthread_t th[PAR_MAX_THREADS];
    int started[PAR_MAX_THREADS] = {0};
    size_t cut[PAR_MAX_THREADS + 1];
    int n = 0;
    rfm_status st = RFM_OK;
    if (nthreads > PAR_MAX_THREADS)
        nthreads = PAR_MAX_THREADS;
    /* Cuts just after a line end near each len * i / n. */
    cut[n++] = 0;
    if (len >= (size_t)nthreads * min_part)
        for (int i = 1; i < nthreads; i++) {
            size_t at = len / (size_t)nthreads * (size_t)i;
            if (at <= cut[n - 1])
                continue;
            const uint8_t *nl = memchr(buf + at, '\n', len - at);
            if (!nl || (size_t)(nl + 1 - buf) >= len)
                break;
            cut[n++] = (size_t)(nl + 1 - buf);
        }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt == 1)
            n = 1; /* the window again on one thread */
        int ok = 1;
        for (int i = 0; i < n; i++) {
            lineset first;
            if (i == 0 && !lineset_copy(&first, &rd->lines))
                ok = 0;
            if (!part_init(&parts[i], rd, i == 0 && ok ? &first : NULL, rd->have_invoice))
                ok = 0; /* part_free frees what it has */
            part *p = &parts[i];
            p->buf = buf;
            p->len = len;
            p->start = cut[i];
            p->next = i + 1 < n ? cut[i + 1] : SIZE_MAX;
            p->first = i == 0;
            p->last = i == n - 1;
            p->final = final;
            p->line0 = i == 0 ? line0 : 1;
            p->sep = sep;
            p->st = RFM_ENOMEM;
            snprintf(p->err, sizeof p->err, "%s: out of memory", rd->name);
        }
        for (int i = 1; ok && i < n; i++)
            started[i] = pthread_create(&th[i], NULL, part_read, &parts[i]) == 0;
        if (ok)
            part_read(&parts[0]);
        for (int i = 1; i < n; i++) {
            if (started[i])
                pthread_join(th[i], NULL);
            else
                parts[i].st = RFM_ENOMEM; /* the window again on one thread */
            started[i] = 0;
        }
        /* Every part read, and each handover found the same by both sides. */
        int agree = ok;
        for (int i = 0; agree && i < n; i++)
            agree =
                parts[i].st == RFM_OK &&
                (i == 0 || (parts[i - 1].stop != SIZE_MAX && parts[i].begin == parts[i - 1].stop));
        if (!agree && n > 1 && attempt == 0) {
            rep->rereads++;
            for (int i = 0; i < n; i++)
                part_free(&parts[i]);
            continue;
        }
        if (!agree) {
            st = ok ? parts[0].st : RFM_ENOMEM;
            rfm_fail(err, errlen, st, "%s", ok ? parts[0].err : "out of memory");
            if (ok) /* the lines up to the error, counted as one thread counts them */
                part_merge(a, rep, &parts[0], 0);
            for (int i = 0; i < n; i++)
                part_free(&parts[i]);
            return st;
        }
        uint64_t off = 0;
        rep->parts += (uint64_t)n;
        for (int i = 0; i < n; i++) {
            if (i > 0)
                off = parts[i - 1].stop_line + off - parts[i].begin_line;
            if (!part_merge(a, rep, &parts[i], off)) {
                st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory after %llu lines",
                              rd->name, (unsigned long long)rep->lines);
                break;
            }
        }
        part *lp = &parts[n - 1];
        *carry = lp->carry;
        *carry_line = lp->carry_line + off;
        /* The repeat state goes on from the last part. */
        free(rd->lines.h);
        free(rd->lines.gen);
        rd->lines = lp->rd.lines;
        rd->have_invoice = lp->rd.have_invoice;
        lp->rd.lines.h = NULL;
        lp->rd.lines.gen = NULL;
        for (int i = 0; i < n; i++)
            part_free(&parts[i]);
        return st;
    }
    return st;
}

/* The data lines after the header, on nthreads threads (see above). */
static rfm_status read_parallel(reader *rd, accum *a, int nthreads, txn_progress_fn progress,
                                void *user, char *err, size_t errlen)
{
    csv_reader *csv = rd->csv;
    txn_report *rep = rd->rep;
    const txn_options *o = rd->opt;
    int sep = o->separator ? o->separator : ',';
    size_t window = o->window ? o->window : PAR_WINDOW, cap = window, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", rd->name);
    uint64_t line = csv_line_next(csv);
    rfm_status st = RFM_OK;
    for (;;) {
        /* A record longer than a window: a window twice as long. */
        if (cap - len < window / 2) {
            uint8_t *b = realloc(buf, 2 * cap);
            if (!b) {
                st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", rd->name);
                break;
            }
            buf = b;
            cap *= 2;
        }
        size_t got;
        char terr[RFM_ERRLEN];
        rfm_status tst = csv_take(csv, buf + len, cap - len, &got, terr, sizeof terr);
        len += got; /* what came before an error is read first */
        int final = tst == RFM_OK && len < cap;
        size_t carry = len;
        uint64_t carry_line = line;
        if (len > 0 && (st = window_read(rd, a, rep, buf, len, final, line, nthreads,
                                         window / 16 ? window / 16 : 1, sep, &carry, &carry_line,
                                         err, errlen)) != RFM_OK)
            break;
        if (progress && rep->lines > 0)
            progress(rep->lines, csv_bytes(csv), csv_size(csv), user);
        memmove(buf, buf + carry, len - carry);
        len -= carry;
        line = carry_line;
        if (tst != RFM_OK) {
            /* As one thread says it: on the line the input ended in. */
            for (size_t i = 0; i < len; i++)
                line += buf[i] == '\n';
            csv_set_line(csv, line);
            st = csv_take(csv, buf, cap, &got, err, errlen);
            if (st == RFM_OK)
                st = rfm_fail(err, errlen, tst, "%s", terr);
            break;
        }
        if (final)
            break;
    }
    free(buf);
    return st;
}

rfm_status txn_read_csv(csv_reader *csv, const txn_options *opt, txn_progress_fn progress,
                        void *user, txn_data **out, txn_report *rep, char *err, size_t errlen)
{
    *out = NULL;
    memset(rep, 0, sizeof *rep);
    reader rd;
    memset(&rd, 0, sizeof rd);
    rd.csv = csv;
    rd.opt = opt;
    rd.rep = rep;
    rd.name = csv_name(csv);
    rd.dec = opt->decimal ? opt->decimal : '.';
    rd.ds.pattern = opt->date_format;
    rd.ds.zone_s = opt->zone_s;
    rd.last_date_len = SIZE_MAX;
    rd.last_day = DATE_NONE;
    rd.lines.cur = 1;
    rd.cprefix = opt->invoice && opt->cancel_prefix ? opt->cancel_prefix : "";
    rd.cplen = strlen(rd.cprefix);
    accum a;
    memset(&a, 0, sizeof a);
    a.id_key = opt->id_key;
    a.er_cid_len = SIZE_MAX;
    a.last_cid_len = a.last_c = a.last_dk = a.last_ik = -1;
    a.last_cid_len = SIZE_MAX;
    a.last_dkey = a.last_ikey = UINT64_MAX;

    rfm_status st;
    if ((st = open_dialect(&rd, err, errlen)) != RFM_OK ||
        (st = find_columns(&rd, err, errlen)) != RFM_OK)
        return st;
    txn_data *d = a.d = calloc(1, sizeof *d);
    if (!d)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    d->first_day = INT32_MAX;
    d->last_day = INT32_MIN;
    /* The reader's own thread (reading, hashing, inflating) keeps a core of
     * the threads busy: one fewer parses. On 2 cores, parsing on one thread
     * beside it reads the bundled gzip export in 0.062 s (0.09 s on two),
     * 10 M plain lines at 8.1 M lines/s (6.4) and piped at 8.0 (5.6). */
    int par = opt->threads - (opt->threads > 1 && csv_reads_apart(rd.csv));
    if (par > 1 && !rd.jsonl && !rd.pending) {
        if ((st = read_parallel(&rd, &a, par, progress, user, err, errlen)) != RFM_OK)
            goto fail;
    }
    while (!(par > 1 && !rd.jsonl && !rd.pending)) {
        const csv_field *f;
        size_t nf;
        if ((st = next_record(&rd, &f, &nf, err, errlen)) != RFM_OK)
            goto fail;
        if (nf == 0)
            break;
        uint64_t line = csv_line(csv);
        rep->lines++;
        if (progress && (rep->lines & 0xfffff) == 0)
            progress(rep->lines, csv_bytes(csv), csv_size(csv), user);
        if (!rd.jsonl && nf != rd.nfields) {
            st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu:%llu: expected %zu fields, found %zu",
                          rd.name, (unsigned long long)line,
                          (unsigned long long)csv_column(csv, nf - 1), rd.nfields, nf);
            goto fail;
        }
        line_value v;
        txn_reason r = clean_line(&rd, f, nf, line, &v, &st, err, errlen);
        if (st != RFM_OK)
            goto fail;
        if ((r == TXN_NREASONS || r == TXN_RETURN) && opt->is_erased && line_erased(&a, opt, &v))
            r = TXN_ERASED;
        if (r != TXN_NREASONS) {
            count_reason(&rd, r, line, f, nf);
            if (r == TXN_RETURN && opt->returns == TXN_RETURNS_SUBTRACT && !fold_return(&a, &v))
                goto nomem;
            continue;
        }
        rep->used++;
        if (!fold_line(&a, &v))
            goto nomem;
    }
    if (progress)
        progress(rep->lines, csv_bytes(csv), csv_size(csv), user);
    if ((st = finish_report(&rd, err, errlen)) != RFM_OK)
        goto fail;
    d->snapshot_day = opt->snapshot_day != DATE_NONE ? opt->snapshot_day : d->last_day + 1;
    if (!finish(d))
        goto nomem;
    accum_free(&a);
    free(rd.lines.h);
    free(rd.lines.gen);
    free(rd.jbuf);
    *out = d;
    return RFM_OK;
nomem:
    st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory after %llu lines", rd.name,
                  (unsigned long long)rep->lines);
fail:
    accum_free(&a);
    free(rd.lines.h);
    free(rd.lines.gen);
    free(rd.jbuf);
    txn_free(d);
    return st;
}

rfm_status txn_read(const char *path, const txn_options *opt, txn_progress_fn progress, void *user,
                    txn_data **out, txn_report *rep, char *err, size_t errlen)
{
    csv_reader *csv;
    *out = NULL;
    memset(rep, 0, sizeof *rep);
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
    /* Returns (TXN_RETURNS_SUBTRACT) lower monetary, never below 0; the
     * BG/NBD spend stays that of the purchases (Gamma-Gamma needs spends
     * above 0). */
    for (size_t k = 0; k < d->nrets; k++)
        if (d->rets[k].day < asof)
            feats[d->cust_rank[d->rets[k].cust]].aov += d->rets[k].spend; /* returns, for now */
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
        txn_features_finish(f, asof, f->bg_t_x, f->tenure, f->bg_x, f->monetary, f->bg_mean_spend,
                            f->aov);
    }
}

void txn_features_finish(txn_features *f, int32_t asof, double first, double last, double ndays,
                         double bought, double first_spend, double returns)
{
    f->active = 1;
    f->monetary = bought + returns > 0 ? bought + returns : 0.0;
    f->recency = asof - last;
    f->tenure = asof - first;
    f->aov = f->monetary / f->frequency;
    f->bg_x = ndays - 1;
    f->bg_t_x = last - first;
    f->bg_T = (asof - 1) - first;
    f->bg_mean_spend = ndays > 1 ? (bought - first_spend) / (ndays - 1) : 0.0;
}
