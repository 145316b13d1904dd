/* state_fixture.h - a synthetic export with every cleaning case, its lines
 * as events, and the comparison of a store with the trainer, for the tests
 * of the customer-state stores (tests/files/test_state.c and
 * test_state_redis.c; the store's calls passed in, so the Redis store is
 * held to the same cases). Include after testutil.h, csv.h, rng.h and
 * state.h. */
#ifndef RFM_TEST_STATE_FIXTURE_H
#define RFM_TEST_STATE_FIXTURE_H

static const txn_options OPT = {.invoice = "InvoiceNo",
                                .customer_id = "CustomerID",
                                .date = "InvoiceDate",
                                .quantity = "Quantity",
                                .price = "UnitPrice",
                                .cancel_prefix = "C",
                                .snapshot_day = DATE_NONE};

/* ---- a synthetic export and its lines as events ---------------------- */

typedef struct {
    char invoice[24], product[16], cid[24], qty[16], price[24];
    char date[64]; /* "YYYY-MM-DD HH:MM:SS" in the file */
    char time[64]; /* "YYYY-MM-DDTHH:MM:SSZ" in the event */
    int32_t day;
    int amount_form; /* sent as amount (quantity 1) */
    int twin;        /* another line of its invoice has the same text */
    int inv;         /* invoice number */
} fx_line;

typedef struct {
    fx_line *l;
    size_t n, cap;
    int32_t day0;
} fixture;

static fx_line *fx_add(fixture *fx)
{
    if (fx->n == fx->cap) {
        fx->cap = fx->cap ? 2 * fx->cap : 1024;
        fx->l = realloc(fx->l, fx->cap * sizeof *fx->l);
        assert_non_null(fx->l);
    }
    memset(&fx->l[fx->n], 0, sizeof *fx->l);
    return &fx->l[fx->n++];
}

static void set_time(fx_line *l, int32_t day, int sec)
{
    int y, m, d;
    date_to_ymd(day, &y, &m, &d);
    l->day = day;
    snprintf(l->date, sizeof l->date, "%04d-%02d-%02d %02d:%02d:%02d", y, m, d, sec / 3600,
             sec / 60 % 60, sec % 60);
    snprintf(l->time, sizeof l->time, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, sec / 3600,
             sec / 60 % 60, sec % 60);
}

/* ninv invoices of ncust customers over a year, with every cleaning case:
 * cancellations, zero quantities and prices, missing ids, ids written as
 * floats, repeated lines, invoices spanning two days, amounts. */
static void fx_generate(fixture *fx, uint64_t seed, int ncust, int ninv)
{
    rfm_rng r;
    rfm_rng_seed(&r, seed);
    memset(fx, 0, sizeof *fx);
    fx->day0 = date_from_ymd(2011, 1, 1);
    for (int k = 0; k < ninv; k++) {
        int cust = 10000 + (int)rfm_rng_below(&r, (uint64_t)ncust);
        int32_t day = fx->day0 + (int32_t)rfm_rng_below(&r, 365);
        int sec = (int)rfm_rng_below(&r, 86400);
        int cancel = rfm_rng_uniform(&r) < 0.03;
        int span = rfm_rng_uniform(&r) < 0.04;
        int nl = 1 + (int)rfm_rng_below(&r, 4);
        size_t first = fx->n;
        for (int j = 0; j < nl; j++) {
            fx_line *l = fx_add(fx);
            l->inv = k;
            snprintf(l->invoice, sizeof l->invoice, "%s%d", cancel ? "C" : "", 500000 + k);
            snprintf(l->product, sizeof l->product, "P%d", (int)rfm_rng_below(&r, 40));
            double u = rfm_rng_uniform(&r);
            if (u < 0.02)
                l->cid[0] = '\0';
            else
                snprintf(l->cid, sizeof l->cid, u < 0.1 ? "%d.0" : "%d", cust);
            int q = 1 + (int)rfm_rng_below(&r, 10);
            l->amount_form = rfm_rng_uniform(&r) < 0.15;
            if (l->amount_form)
                q = 1;
            if (rfm_rng_uniform(&r) < 0.01)
                q = 0;
            if (q != 1 || cancel)
                l->amount_form = 0;
            snprintf(l->qty, sizeof l->qty, "%d", cancel ? -q : q);
            double p =
                rfm_rng_uniform(&r) < 0.02 ? 0.0 : 0.5 + (double)rfm_rng_below(&r, 2000) / 100;
            snprintf(l->price, sizeof l->price, "%.2f", p);
            set_time(l, span && j == nl - 1 && nl > 1 ? day + 1 : day,
                     span && j == nl - 1 && nl > 1 ? (sec + 3600) % 86400 : sec);
            if (rfm_rng_uniform(&r) < 0.03) { /* the export repeats the line */
                fx_line *t = fx_add(fx);
                *t = fx->l[fx->n - 2];
            }
        }
        for (size_t a = first; a < fx->n; a++)
            for (size_t b = first; b < fx->n; b++)
                if (a != b && !strcmp(fx->l[a].cid, fx->l[b].cid) &&
                    !strcmp(fx->l[a].product, fx->l[b].product) &&
                    !strcmp(fx->l[a].qty, fx->l[b].qty) &&
                    !strcmp(fx->l[a].price, fx->l[b].price) &&
                    !strcmp(fx->l[a].date, fx->l[b].date))
                    fx->l[a].twin = 1;
    }
}

/* The CSV text of the lines with keep[i] (all when keep is NULL). */
static char *fx_csv(const fixture *fx, const char *keep, size_t *len)
{
    size_t cap = 64 + fx->n * 96, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    n +=
        (size_t)snprintf(s, cap, "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n");
    for (size_t i = 0; i < fx->n; i++) {
        if (keep && !keep[i])
            continue;
        const fx_line *l = &fx->l[i];
        n += (size_t)snprintf(s + n, cap - n, "%s,%s,%s,%s,%s,%s\n", l->invoice, l->product, l->qty,
                              l->date, l->price, l->cid);
        assert_true(n < cap);
    }
    *len = n;
    return s;
}

static txn_data *fx_read(const fixture *fx, const char *keep)
{
    size_t len;
    char *text = fx_csv(fx, keep, &len);
    csv_reader *r;
    txn_data *d;
    txn_report rep;
    char err[RFM_ERRLEN] = "";
    assert_int_equal(csv_open_mem(text, len, "fx.csv", &r, err, sizeof err), RFM_OK);
    rfm_status st = txn_read_csv(r, &OPT, NULL, NULL, &d, &rep, err, sizeof err);
    if (st != RFM_OK)
        fail_msg("txn_read: %s", err);
    csv_close(r);
    free(text);
    return d;
}

static state_event fx_event(const fx_line *l, char *idbuf, size_t i)
{
    snprintf(idbuf, 32, "ev-%zu", i);
    state_event e = {idbuf, l->cid, l->time, l->invoice, l->product, 0, 0, 0, 0, NULL};
    if (l->amount_form) {
        e.has_amount = 1;
        e.amount = strtod(l->price, NULL);
    } else {
        e.quantity = strtod(l->qty, NULL);
        e.price = strtod(l->price, NULL);
    }
    return e;
}

/* ---- comparing with the trainer ----------------------------------- */

static double relerr(double a, double b, double scale)
{
    double s = fmax(fmax(fabs(a), fabs(b)), scale);
    return s > 0 ? fabs(a - b) / s : 0;
}

/* A store under test: its get and count calls (state_get, rstate_get...). */
typedef struct {
    void *st;
    rfm_status (*get)(void *st, const char *id, int32_t asof, state_customer *out, char *err,
                      size_t errlen);
    rfm_status (*count)(void *st, uint64_t *n, char *err, size_t errlen);
} fx_store;

static rfm_status fx_sqlite_get(void *st, const char *id, int32_t asof, state_customer *out,
                                char *err, size_t errlen)
{
    return state_get(st, id, asof, out, err, errlen);
}
static rfm_status fx_sqlite_count(void *st, uint64_t *n, char *err, size_t errlen)
{
    return state_count(st, n, err, errlen);
}

/* The SQLite store (state.h) as a store under test. */
static inline fx_store fx_sqlite(state_store *st)
{
    return (fx_store){st, fx_sqlite_get, fx_sqlite_count};
}

/* Every customer of ref as of asof: the store's get equals txn_features_asof. */
static void compare(fx_store st, const txn_data *ref, int32_t asof, double *maxrel)
{
    size_t nc = txn_ncustomers(ref);
    txn_features *f = calloc(nc, sizeof *f);
    assert_non_null(f);
    txn_features_asof(ref, asof, f);
    char err[RFM_ERRLEN];
    for (size_t i = 0; i < nc; i++) {
        state_customer c;
        const char *id = txn_customer_id(ref, i);
        if (st.get(st.st, id, asof, &c, err, sizeof err) != RFM_OK)
            fail_msg("customer %s: %s", id, err);
        const txn_features *a = &c.f, *b = &f[i];
        if (a->active != b->active || a->recency != b->recency || a->frequency != b->frequency ||
            a->tenure != b->tenure || a->bg_x != b->bg_x || a->bg_t_x != b->bg_t_x ||
            a->bg_T != b->bg_T || a->future_days != b->future_days)
            fail_msg("customer %s as of %d: state (active %d r %g f %g t %g x %g tx %g T %g fd "
                     "%g) != trainer (active %d r %g f %g t %g x %g tx %g T %g fd %g)",
                     id, asof, a->active, a->recency, a->frequency, a->tenure, a->bg_x, a->bg_t_x,
                     a->bg_T, a->future_days, b->active, b->recency, b->frequency, b->tenure,
                     b->bg_x, b->bg_t_x, b->bg_T, b->future_days);
        double e = fmax(fmax(relerr(a->monetary, b->monetary, 0), relerr(a->aov, b->aov, 0)),
                        fmax(relerr(a->bg_mean_spend, b->bg_mean_spend, b->monetary),
                             relerr(a->future_spend, b->future_spend, 0)));
        if (e > *maxrel)
            *maxrel = e;
    }
    uint64_t n;
    assert_int_equal(st.count(st.st, &n, err, sizeof err), RFM_OK);
    assert_int_equal(n, nc); /* no customer the trainer does not have */
    free(f);
}

static void compare_days(fx_store st, const txn_data *ref, int32_t day0)
{
    double maxrel = 0;
    int32_t days[] = {day0 + 40,
                      day0 + 200,
                      day0 + 251,
                      day0 + 300,
                      txn_snapshot_day(ref),
                      txn_snapshot_day(ref) + 30};
    for (size_t k = 0; k < sizeof days / sizeof *days; k++)
        compare(st, ref, days[k], &maxrel);
    report_maxdiff("spend, relative (monetary, aov, mean repeat spend, future)", maxrel, 1e-9);
}

#endif
