/* test_state.c - the customer-state store against the trainer.
 *
 * The reference is txn_read on a file: the store seeded from a prefix of
 * it and fed the rest as events (shuffled, resent, in batches) must give
 * every customer the features txn_features_asof gives on the whole file:
 * counts and days exactly, spend to 1e-9 relative (summation order). Then
 * the event rules by hand, the id retention, the fold of the customer rows
 * and the replay of the log after a crash, readers beside the writer, the
 * walk over every customer, kill -9 during ingest, a full disk (SQLite's
 * max_page_count standing in for it) and bad files.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "date.h"
#include "rng.h"
#include "state.h"
#include "txn.h"

#include "state_fixture.h"

static char *tmp_store(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/rfmstate_XXXXXX");
    assert_non_null(mkdtemp(dir));
    char *path = malloc(strlen(dir) + 16);
    assert_non_null(path);
    sprintf(path, "%s/state.db", dir);
    return path;
}

static void rm_store(const char *dir, const char *path)
{
    char p[256];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[k]);
        unlink(p);
    }
    rmdir(dir);
}

static state_store *open_store(const char *path, const state_options *o)
{
    state_options def;
    state_default_options(&def);
    state_store *st;
    char err[RFM_ERRLEN] = "";
    if (state_open(path, o ? o : &def, &st, err, sizeof err) != RFM_OK)
        fail_msg("state_open: %s", err);
    return st;
}

static void apply_ok(state_store *st, const state_event *ev, size_t n, state_result *res)
{
    char err[RFM_ERRLEN] = "";
    if (state_apply(st, ev, n, res, err, sizeof err) != RFM_OK)
        fail_msg("state_apply: %s", err);
}

/* ---- exactness ------------------------------------------------------ */

/* Seed from the lines before day D less some held-out invoices and lines
 * (late data), then send everything else as events: shuffled, a fifth sent
 * twice, in batches of 1 to 300. */
static void test_exact_after_any_order(void **state)
{
    (void)state;
    fixture fx;
    fx_generate(&fx, 42, 150, 1500);
    rfm_rng r;
    rfm_rng_seed(&r, 7);
    int32_t D = fx.day0 + 250;
    char *seed = calloc(fx.n, 1);
    int held_inv = -1, nheld = 0;
    for (size_t i = 0; i < fx.n; i++) {
        const fx_line *l = &fx.l[i];
        if (l->day >= D)
            continue;
        if (l->inv != held_inv && (i == 0 || fx.l[i - 1].inv != l->inv) &&
            rfm_rng_uniform(&r) < 0.05)
            held_inv = l->inv; /* a whole invoice arrives late */
        if (l->inv == held_inv) {
            nheld++;
            continue;
        }
        if (!l->twin && rfm_rng_uniform(&r) < 0.03) { /* one line of a seeded invoice */
            nheld++;
            continue;
        }
        seed[i] = 1;
    }
    txn_data *ref = fx_read(&fx, NULL), *train = fx_read(&fx, seed);
    assert_true(txn_snapshot_day(train) <= D);

    size_t nev = 0;
    state_event *ev = malloc(2 * fx.n * sizeof *ev);
    char(*ids)[32] = malloc(fx.n * sizeof *ids);
    for (size_t i = 0; i < fx.n; i++)
        if (!seed[i]) {
            ev[nev] = fx_event(&fx.l[i], ids[i], i);
            nev++;
        }
    size_t nuniq = nev;
    for (size_t i = 0; i < nuniq; i++)
        if (rfm_rng_uniform(&r) < 0.2)
            ev[nev++] = ev[i];
    rfm_rng_shuffle(&r, ev, nev, nev, sizeof *ev);
    printf("    %zu lines: %zu seeded, %zu events (%d before the snapshot), %zu resent\n", fx.n,
           fx.n - nuniq, nuniq, nheld, nev - nuniq);

    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    state_store *st = open_store(path, NULL);
    char err[RFM_ERRLEN] = "";
    int seeded = 0;
    assert_int_equal(state_seed(st, train, &seeded, err, sizeof err), RFM_OK);
    assert_true(seeded);
    assert_int_equal(state_snapshot_day(st), txn_snapshot_day(train));
    state_result *res = malloc(nev * sizeof *res);
    size_t count[4] = {0};
    for (size_t at = 0; at < nev;) {
        size_t b = 1 + (size_t)rfm_rng_below(&r, 300);
        if (b > nev - at)
            b = nev - at;
        apply_ok(st, ev + at, b, res + at);
        at += b;
    }
    for (size_t i = 0; i < nev; i++)
        count[res[i].outcome]++;
    printf("    outcomes: %zu applied, %zu ignored, %zu duplicate, %zu rejected\n", count[0],
           count[1], count[2], count[3]);
    assert_true(count[STATE_DUPLICATE] > 0 && count[STATE_REJECTED] > 0);
    compare_days(fx_sqlite(st), ref, fx.day0);

    /* Everything once more: nothing changes. */
    apply_ok(st, ev, nev, res);
    for (size_t i = 0; i < nev; i++)
        assert_true(res[i].outcome == STATE_DUPLICATE || res[i].outcome == STATE_REJECTED);
    compare_days(fx_sqlite(st), ref, fx.day0);

    /* Reopened, the same. */
    state_close(st);
    st = open_store(path, NULL);
    assert_int_equal(state_snapshot_day(st), txn_snapshot_day(train));
    assert_int_equal(state_seed(st, train, &seeded, err, sizeof err), RFM_OK);
    assert_false(seeded); /* same snapshot: left alone */
    compare_days(fx_sqlite(st), ref, fx.day0);
    assert_int_equal(state_check(st, err, sizeof err), RFM_OK);

    /* A retrain on everything before D + 60 (late data included): re-seeded,
     * the events after its snapshot applied again, still the whole file. */
    char *seed2 = calloc(fx.n, 1);
    for (size_t i = 0; i < fx.n; i++)
        seed2[i] = fx.l[i].day < D + 60;
    txn_data *train2 = fx_read(&fx, seed2);
    assert_int_equal(state_seed(st, train2, &seeded, err, sizeof err), RFM_OK);
    assert_true(seeded);
    compare_days(fx_sqlite(st), ref, fx.day0);
    /* An older run than the store's is refused. */
    assert_int_equal(state_seed(st, train, &seeded, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "older"));
    compare_days(fx_sqlite(st), ref, fx.day0);

    state_close(st);
    rm_store(dir, path);
    free(path);
    txn_free(ref);
    txn_free(train);
    txn_free(train2);
    free(seed);
    free(seed2);
    free(ev);
    free(ids);
    free(res);
    free(fx.l);
}

/* The bundled real export's first 30,000 lines: seeded up to 2010-12-08,
 * the rest as shuffled events resent once each. The file's own columns
 * other than the event's are dropped (they would tell lines apart). */
static void test_exact_real_file_head(void **state)
{
    (void)state;
    FILE *p = popen("gzip -dc ../data/online_retail.csv.gz | head -n 30001", "r");
    assert_non_null(p);
    csv_reader *csv;
    char err[RFM_ERRLEN] = "";
    fixture fx = {0};
    fx.day0 = date_from_ymd(2010, 12, 1);
    char *buf = NULL;
    size_t blen = 0;
    FILE *m = open_memstream(&buf, &blen);
    char line[1024];
    while (fgets(line, sizeof line, p))
        fputs(line, m);
    assert_int_equal(pclose(p), 0);
    fclose(m);
    assert_int_equal(csv_open_mem(buf, blen, "online_retail head", &csv, err, sizeof err), RFM_OK);
    const csv_field *f;
    size_t nf;
    assert_int_equal(csv_next(csv, &f, &nf, err, sizeof err), RFM_OK); /* header */
    int lastinv = -1;
    char previnv[24] = "";
    while (csv_next(csv, &f, &nf, err, sizeof err) == RFM_OK && nf == 8) {
        fx_line *l = fx_add(&fx);
        snprintf(l->invoice, sizeof l->invoice, "%.*s", (int)f[0].len, f[0].s);
        snprintf(l->product, sizeof l->product, "%.*s", (int)f[1].len, f[1].s);
        snprintf(l->qty, sizeof l->qty, "%.*s", (int)f[3].len, f[3].s);
        snprintf(l->price, sizeof l->price, "%.*s", (int)f[5].len, f[5].s);
        snprintf(l->cid, sizeof l->cid, "%.*s", (int)f[6].len, f[6].s);
        int32_t day = date_parse(f[4].s, f[4].len);
        assert_true(day != DATE_NONE);
        int hh = atoi(f[4].s + 11), mm = atoi(f[4].s + 14);
        set_time(l, day, hh * 3600 + mm * 60);
        if (strcmp(previnv, l->invoice) != 0)
            lastinv++;
        snprintf(previnv, sizeof previnv, "%s", l->invoice);
        l->inv = lastinv;
    }
    csv_close(csv);
    free(buf);
    assert_true(fx.n > 29000);
    int32_t D = date_from_ymd(2010, 12, 8);
    char *seed = calloc(fx.n, 1);
    size_t nev = 0;
    state_event *ev = malloc(2 * fx.n * sizeof *ev);
    char(*ids)[32] = malloc(fx.n * sizeof *ids);
    for (size_t i = 0; i < fx.n; i++) {
        seed[i] = fx.l[i].day < D;
        if (!seed[i]) {
            ev[nev] = fx_event(&fx.l[i], ids[i], i);
            nev++;
        }
    }
    size_t nuniq = nev;
    for (size_t i = 0; i < nuniq; i++)
        ev[nev++] = ev[i];
    rfm_rng r;
    rfm_rng_seed(&r, 11);
    rfm_rng_shuffle(&r, ev, nev, nev, sizeof *ev);
    txn_data *ref = fx_read(&fx, NULL), *train = fx_read(&fx, seed);
    printf("    %zu lines, %zu customers: %zu seeded, %zu events, each sent twice\n", fx.n,
           txn_ncustomers(ref), fx.n - nuniq, nuniq);
    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    state_store *st = open_store(path, NULL);
    assert_int_equal(state_seed(st, train, NULL, err, sizeof err), RFM_OK);
    state_result *res = malloc(500 * sizeof *res);
    for (size_t at = 0; at < nev; at += 500)
        apply_ok(st, ev + at, nev - at < 500 ? nev - at : 500, res);
    double maxrel = 0;
    int32_t days[] = {date_from_ymd(2010, 12, 3), D, date_from_ymd(2010, 12, 10),
                      txn_snapshot_day(ref)};
    for (size_t k = 0; k < 4; k++)
        compare(fx_sqlite(st), ref, days[k], &maxrel);
    report_maxdiff("spend, relative", maxrel, 1e-9);
    state_close(st);
    rm_store(dir, path);
    free(path);
    txn_free(ref);
    txn_free(train);
    free(seed);
    free(ev);
    free(ids);
    free(res);
    free(fx.l);
}

/* ---- the event rules by hand ---------------------------------------- */

static void test_event_rules(void **state)
{
    (void)state;
    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    state_store *st = open_store(path, NULL);
    char err[RFM_ERRLEN] = "";
    char longid[STATE_ID_MAX + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    state_event ev[] = {
        /* 0: applied, no invoice: the day is the invoice */
        {"a1", "7", "2011-12-01T08:00:00Z", NULL, NULL, 1, 10.0, 0, 0, NULL},
        /* 1: applied, the same day, no invoice: same invoice, another line */
        {"a2", "7", "2011-12-01T09:00:00Z", NULL, NULL, 0, 0, 2, 2.5, NULL},
        /* 2: duplicate of 0 in the same batch */
        {"a1", "7", "2011-12-01T08:00:00Z", NULL, NULL, 1, 10.0, 0, 0, NULL},
        /* 3: the same line as 0 under a new id: a repeated line */
        {"a3", "7.0", "2011-12-01T08:00:00Z", NULL, NULL, 1, 10.0, 0, 0, NULL},
        /* 4: 23:30 at -02:00 is 01:30 UTC the next day: a new day and invoice */
        {"a4", "7", "2011-12-01T23:30:00-02:00", "", "P1", 1, 4.0, 0, 0, NULL},
        /* 5: ignored: a cancellation */
        {"a5", "7", "2011-12-03T08:00:00Z", "C9", NULL, 0, 0, -1, 3, NULL},
        /* 6: ignored: non-positive amount (a zero or a return, as rfm-train counts it) */
        {"a6", "7", "2011-12-03T08:00:00Z", "9", NULL, 1, 0.0, 0, 0, NULL},
        /* 7..12: rejected */
        {"", "7", "2011-12-03T08:00:00Z", NULL, NULL, 1, 1.0, 0, 0, NULL},
        {"r2", "nan", "2011-12-03T08:00:00Z", NULL, NULL, 1, 1.0, 0, 0, NULL},
        {"r3", "7", "2011-12-03 25:00", NULL, NULL, 1, 1.0, 0, 0, NULL},
        {"r4", "7", "2011-12-03", NULL, NULL, 1, NAN, 0, 0, NULL},
        {"r5", "7", "2011-12-03", longid, NULL, 1, 1.0, 0, 0, NULL},
        {longid, "7", "2011-12-03", NULL, NULL, 1, 1.0, 0, 0, NULL},
        /* 13: another customer, invoice given */
        {"b1", "8", "2011-12-02", "100", NULL, 0, 0, 3, 1.5, NULL},
    };
    size_t n = sizeof ev / sizeof *ev;
    state_result res[sizeof ev / sizeof *ev];
    apply_ok(st, ev, n, res);
    const state_result want[] = {
        {STATE_APPLIED, STATE_OK},
        {STATE_APPLIED, STATE_OK},
        {STATE_DUPLICATE, STATE_OK},
        {STATE_IGNORED, STATE_REPEATED_LINE},
        {STATE_APPLIED, STATE_OK},
        {STATE_IGNORED, STATE_CANCELLED},
        {STATE_IGNORED, STATE_NONPOS_QUANTITY},
        {STATE_REJECTED, STATE_BAD_EVENT_ID},
        {STATE_REJECTED, STATE_MISSING_CUSTOMER},
        {STATE_REJECTED, STATE_BAD_TIME},
        {STATE_REJECTED, STATE_BAD_NUMBER},
        {STATE_REJECTED, STATE_BAD_TEXT},
        {STATE_REJECTED, STATE_BAD_EVENT_ID},
        {STATE_APPLIED, STATE_OK},
    };
    for (size_t i = 0; i < n; i++)
        if (res[i].outcome != want[i].outcome || res[i].reason != want[i].reason)
            fail_msg("event %zu: %s/%s, wanted %s/%s", i, state_outcome_name(res[i].outcome),
                     state_reason_name(res[i].reason), state_outcome_name(want[i].outcome),
                     state_reason_name(want[i].reason));
    int32_t d1 = date_from_ymd(2011, 12, 1);
    state_customer c;
    assert_int_equal(state_get(st, "7.0", d1 + 10, &c, err, sizeof err), RFM_OK);
    assert_near(c.f.frequency, 2, 0); /* the day-1 invoice and the day-2 one */
    assert_near(c.f.monetary, 19, 0); /* 10 + 2 * 2.5 + 4 */
    assert_near(c.f.recency, 9, 0);
    assert_near(c.f.tenure, 10, 0);
    assert_near(c.f.bg_x, 1, 0);
    assert_near(c.f.bg_mean_spend, 4, 0);
    int64_t t;
    assert_true(state_parse_time("2011-12-02T01:30:00Z", &t));
    assert_int_equal(c.last_event_at, t);
    /* As of day 2: only day 1, through the per-day path. */
    assert_int_equal(state_get(st, "7", d1 + 1, &c, err, sizeof err), RFM_OK);
    assert_near(c.f.frequency, 1, 0);
    assert_near(c.f.monetary, 15, 0);
    assert_near(c.f.future_spend, 4, 0);
    assert_int_equal(state_get(st, "7", d1, &c, err, sizeof err), RFM_OK);
    assert_false(c.f.active);
    assert_int_equal(state_get(st, "9", d1, &c, err, sizeof err), RFM_ENOTFOUND);
    assert_int_equal(state_get(st, "", d1, &c, err, sizeof err), RFM_ENOTFOUND);
    /* A rejected event was not recorded: sent again fixed, it applies. */
    ev[10].amount = 5.0;
    apply_ok(st, ev + 10, 1, res);
    assert_int_equal(res[0].outcome, STATE_APPLIED);
    /* An ignored one was: sent again it is a duplicate. */
    apply_ok(st, ev + 5, 1, res);
    assert_int_equal(res[0].outcome, STATE_DUPLICATE);
    state_close(st);
    rm_store(dir, path);
    free(path);
}

/* ---- state_each ------------------------------------------------------- */

typedef struct {
    state_store *st;
    int32_t day;
    int seen, stop_after;
    char ids[8][8];
} each_log;

static int each_one(void *user, const char *id, const state_customer *c)
{
    each_log *l = user;
    char err[RFM_ERRLEN];
    state_customer g;
    assert_true(l->seen < 8);
    snprintf(l->ids[l->seen++], sizeof l->ids[0], "%s", id);
    /* What state_get gives for the id and day, field for field. */
    assert_int_equal(state_get(l->st, id, l->day, &g, err, sizeof err), RFM_OK);
    assert_memory_equal(&g, c, sizeof g);
    return l->seen == l->stop_after;
}

/* Every customer once, in the order they first appeared, with state_get's
 * features as of the day (inactive before the first purchase); the
 * callback can stop the walk. */
static void test_each_order(void **state)
{
    (void)state;
    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    state_store *st = open_store(path, NULL);
    char err[RFM_ERRLEN] = "";
    state_event ev[] = {
        {"e1", "30", "2011-12-01", NULL, NULL, 1, 10.0, 0, 0, NULL},
        {"e2", "10", "2011-12-03", NULL, NULL, 1, 20.0, 0, 0, NULL},
        {"e3", "30", "2011-12-05", NULL, NULL, 1, 5.0, 0, 0, NULL},
        {"e4", "20", "2011-12-02", "7", NULL, 0, 0, 2, 1.5, NULL},
    };
    state_result res[4];
    apply_ok(st, ev, 4, res);
    int32_t d = date_parse("2011-12-03", 10);
    each_log l = {st, d, 0, 0, {""}};
    assert_int_equal(state_each(st, d, each_one, &l, err, sizeof err), RFM_OK);
    assert_int_equal(l.seen, 3);
    assert_string_equal(l.ids[0], "30");
    assert_string_equal(l.ids[1], "10");
    assert_string_equal(l.ids[2], "20");
    /* "10" bought on the day itself: not before it. */
    state_customer c;
    assert_int_equal(state_get(st, "10", d, &c, err, sizeof err), RFM_OK);
    assert_false(c.f.active);
    assert_int_equal(state_get(st, "30", d, &c, err, sizeof err), RFM_OK);
    assert_true(c.f.active);
    /* Another day; and a stop after the first customer. */
    each_log l2 = {st, d + 10, 0, 1, {""}};
    assert_int_equal(state_each(st, d + 10, each_one, &l2, err, sizeof err), RFM_OK);
    assert_int_equal(l2.seen, 1);
    state_close(st);
    rm_store(dir, path);
    free(path);
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t t, base = (int64_t)date_from_ymd(2011, 12, 1) * 86400;
    assert_true(state_parse_time("2011-12-01", &t) && t == base);
    assert_true(state_parse_time("2011-12-01T08:26:00Z", &t) && t == base + 8 * 3600 + 26 * 60);
    assert_true(state_parse_time("2011-12-01 08:26", &t) && t == base + 8 * 3600 + 26 * 60);
    assert_true(state_parse_time("2011-12-01T08:26:00.123456789+01:00", &t) &&
                t == base + 7 * 3600 + 26 * 60);
    assert_true(state_parse_time("2011-12-01T00:10:00+01:00", &t) && t == base - 50 * 60);
    const char *bad[] = {"",
                         "2011-12-1",
                         "2011-13-01",
                         "2011-12-01T",
                         "2011-12-01T8:26",
                         "2011-12-01T24:00:00Z",
                         "2011-12-01T08:26:00.Z",
                         "2011-12-01T08:26+1",
                         "2011-12-01T08:26:00ZZ",
                         "12/1/2011 8:26",
                         "1800-01-01"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (state_parse_time(bad[i], &t))
            fail_msg("'%s' parsed", bad[i]);
}

/* Ids beyond the retention are forgotten; their lines still are not
 * counted twice; the retention is the same after a reopen (the ids are
 * read back from the log). */
static void test_seen_retention(void **state)
{
    (void)state;
    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    state_options o;
    state_default_options(&o);
    o.seen_ids_max = 1000;
    state_store *st = open_store(path, &o);
    enum { N = 3000 };
    static char ids[N][16], cids[N][16];
    static state_event ev[N];
    static state_result res[N];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "id%d", i);
        snprintf(cids[i], sizeof cids[i], "%d", i % 100);
        ev[i] = (state_event){ids[i], cids[i], "2011-06-01T10:00:00Z", NULL, NULL, 1, 1.0 + i, 0,
                              0,      NULL};
    }
    /* Event 1 is a cancellation: ignored, recorded by its id alone. */
    ev[1].invoice = "C1";
    for (int b = 0; b < N; b += 500)
        apply_ok(st, ev + b, 500, res + b);
    assert_int_equal(res[1].outcome, STATE_IGNORED);
    state_customer before, after;
    char err[RFM_ERRLEN];
    assert_int_equal(state_get(st, "0", 20000, &before, err, sizeof err), RFM_OK);
    for (int round = 0; round < 2; round++) {
        apply_ok(st, ev + N - 1, 1, res); /* kept id */
        assert_int_equal(res[0].outcome, STATE_DUPLICATE);
        apply_ok(st, ev + N - 1000, 1, res); /* the oldest kept */
        assert_int_equal(res[0].outcome, STATE_DUPLICATE);
        if (round == 0) {
            /* Reopened: the same ids are kept. */
            state_close(st);
            st = open_store(path, &o);
        }
    }
    apply_ok(st, ev + 0, 1, res); /* forgotten id, known line */
    assert_int_equal(res[0].outcome, STATE_IGNORED);
    assert_int_equal(res[0].reason, STATE_REPEATED_LINE);
    apply_ok(st, ev + 1, 1, res); /* forgotten id of an ignored event: recorded again */
    assert_int_equal(res[0].outcome, STATE_IGNORED);
    assert_int_equal(res[0].reason, STATE_CANCELLED);
    assert_int_equal(state_get(st, "0", 20000, &after, err, sizeof err), RFM_OK);
    assert_memory_equal(&before, &after, sizeof before);
    state_close(st);
    rm_store(dir, path);
    free(path);
}

/* ---- the fold and the log ----------------------------------------------- */

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

/* A small fold_events, so that sweeps over the customer rows take many
 * batches: a writer killed after many batches leaves rows of mixed ages
 * and a log to replay; the reopened store equals the trainer's figures,
 * replays only the log after applied_upto, and a clean close leaves
 * nothing to replay. */
static void test_fold_and_replay(void **state)
{
    (void)state;
    fixture fx;
    fx_generate(&fx, 17, 3000, 6000);
    state_event *ev = malloc(fx.n * sizeof *ev);
    char(*ids)[32] = malloc(fx.n * sizeof *ids);
    for (size_t i = 0; i < fx.n; i++)
        ev[i] = fx_event(&fx.l[i], ids[i], i);
    rfm_rng r;
    rfm_rng_seed(&r, 5);
    rfm_rng_shuffle(&r, ev, fx.n, fx.n, sizeof *ev);
    txn_data *ref = fx_read(&fx, NULL);
    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    state_options o;
    state_default_options(&o);
    o.fold_events = 1000;
    o.synchronous = STATE_SYNC_NORMAL; /* a killed process loses nothing either way */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        state_store *st;
        char err[RFM_ERRLEN];
        state_result res[50];
        if (state_open(path, &o, &st, err, sizeof err) != RFM_OK)
            _exit(3);
        for (size_t at = 0; at < fx.n; at += 50)
            if (state_apply(st, ev + at, fx.n - at < 50 ? fx.n - at : 50, res, err, sizeof err) !=
                RFM_OK)
                _exit(4);
        _exit(0); /* no state_close: as a kill after the last acknowledgement */
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    int64_t seq = sql_int(path, "SELECT max(seq) FROM log");
    int64_t upto = sql_int(path, "SELECT value FROM meta WHERE key = 'applied_upto'");
    int64_t mixed = sql_int(path, "SELECT count(DISTINCT seq) FROM customers");
    printf("    %zu events in %lld batches: rows folded up to batch %lld, rows of %lld ages\n",
           fx.n, (long long)seq, (long long)upto, (long long)mixed);
    assert_true(upto > 0 && upto < seq); /* folds completed, and a log left to replay */
    assert_true(mixed > 1);
    state_store *st = open_store(path, &o);
    double maxrel = 0;
    compare(fx_sqlite(st), ref, txn_snapshot_day(ref), &maxrel);
    compare(fx_sqlite(st), ref, fx.day0 + 100, &maxrel);
    report_maxdiff("spend after the replay, relative", maxrel, 1e-9);
    /* Every event again: duplicates all (the ids came back from the log). */
    state_result *res = malloc(fx.n * sizeof *res);
    apply_ok(st, ev, fx.n, res);
    for (size_t i = 0; i < fx.n; i++)
        assert_true(res[i].outcome == STATE_DUPLICATE || res[i].outcome == STATE_REJECTED);
    state_close(st);
    assert_int_equal(sql_int(path, "SELECT value FROM meta WHERE key = 'applied_upto'"),
                     sql_int(path, "SELECT max(seq) FROM log"));
    st = open_store(path, &o);
    compare(fx_sqlite(st), ref, txn_snapshot_day(ref), &maxrel);
    assert_int_equal(state_check(st, NULL, 0), RFM_OK);
    state_close(st);
    rm_store(dir, path);
    free(path);
    free(res);
    txn_free(ref);
    free(ev);
    free(ids);
    free(fx.l);
}

/* A damaged customer row is refused at open, naming it. */
static void test_damaged_row(void **state)
{
    (void)state;
    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    state_store *st = open_store(path, NULL);
    state_event e = {"x1", "42", "2011-06-01", NULL, NULL, 1, 3.0, 0, 0, NULL};
    state_result res;
    apply_ok(st, &e, 1, &res);
    state_close(st);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE customers SET data = x'0102'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    state_options o;
    state_default_options(&o);
    char err[RFM_ERRLEN] = "";
    assert_int_equal(state_open(path, &o, &st, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "customer row 1 is damaged"));
    rm_store(dir, path);
    free(path);
}

/* ---- readers beside the writer ----------------------------------------- */

typedef struct {
    state_store *st;
    int stop; /* atomic */
    long reads, bad;
} reader_ctx;

/* Each batch gives customers 1..20 one more invoice of 2.0 each: a reader
 * must always see monetary = 2 * frequency (a whole number of events),
 * and frequency never going back. */
static void *reader_main(void *arg)
{
    reader_ctx *x = arg;
    double last[21] = {0};
    char err[RFM_ERRLEN];
    while (!__atomic_load_n(&x->stop, __ATOMIC_ACQUIRE)) {
        for (int k = 1; k <= 20; k++) {
            char id[8];
            snprintf(id, sizeof id, "%d", k);
            state_customer c;
            rfm_status s = state_get(x->st, id, 30000, &c, err, sizeof err);
            x->reads++;
            if (s == RFM_ENOTFOUND)
                continue;
            if (s != RFM_OK || c.f.monetary != 2 * c.f.frequency || c.f.frequency < last[k])
                x->bad++;
            last[k] = c.f.frequency;
        }
    }
    return NULL;
}

static void test_readers_beside_writer(void **state)
{
    (void)state;
    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    state_options o;
    state_default_options(&o);
    o.synchronous = STATE_SYNC_NORMAL;
    state_store *st = open_store(path, &o);
    reader_ctx x = {st, 0, 0, 0};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &x), 0);
    enum { B = 200, PER = 20 * 30 };
    static char ids[PER][24], invs[PER][24], cids[PER][8];
    state_event ev[PER];
    state_result res[PER];
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < PER; i++) {
            snprintf(ids[i], sizeof ids[i], "b%d-%d", b, i);
            snprintf(invs[i], sizeof invs[i], "%d-%d", b, i);
            snprintf(cids[i], sizeof cids[i], "%d", 1 + i % 20);
            ev[i] = (state_event){ids[i], cids[i], "2011-06-01T10:00:00Z", invs[i], NULL, 1, 2.0, 0,
                                  0,      NULL};
        }
        apply_ok(st, ev, PER, res);
    }
    __atomic_store_n(&x.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    printf("    %ld reads beside %d batches, %ld inconsistent\n", x.reads, B, x.bad);
    assert_int_equal(x.bad, 0);
    state_customer c;
    char err[RFM_ERRLEN];
    assert_int_equal(state_get(st, "7", 30000, &c, err, sizeof err), RFM_OK);
    assert_near(c.f.frequency, B * 30, 0);
    state_close(st);
    rm_store(dir, path);
    free(path);
}

/* ---- every customer ------------------------------------------------------ */

typedef struct {
    state_store *st;
    int32_t asof;
    size_t n, mismatched;
    int stop_after;
} each_ctx;

static int each_check(void *user, const char *id, const state_customer *c)
{
    each_ctx *x = user;
    state_customer g;
    char err[RFM_ERRLEN];
    if (state_get(x->st, id, x->asof, &g, err, sizeof err) != RFM_OK ||
        memcmp(&g, c, sizeof g) != 0)
        x->mismatched++;
    x->n++;
    return x->stop_after && (int)x->n == x->stop_after;
}

/* state_each visits every customer once with state_get's features, and
 * stops when asked. */
static void test_each(void **state)
{
    (void)state;
    fixture fx;
    fx_generate(&fx, 23, 5000, 9000);
    txn_data *ref = fx_read(&fx, NULL);
    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    state_store *st = open_store(path, NULL);
    char err[RFM_ERRLEN] = "";
    assert_int_equal(state_seed(st, ref, NULL, err, sizeof err), RFM_OK);
    state_event e[2] = {{"new-1", "new customer", "2011-06-01", NULL, NULL, 1, 3.0, 0, 0, NULL},
                        {"new-2", "10001", "2012-06-01", NULL, NULL, 1, 3.0, 0, 0, NULL}};
    state_result res[2];
    apply_ok(st, e, 2, res);
    each_ctx x = {st, fx.day0 + 200, 0, 0, 0};
    assert_int_equal(state_each(st, x.asof, each_check, &x, err, sizeof err), RFM_OK);
    uint64_t n;
    assert_int_equal(state_count(st, &n, err, sizeof err), RFM_OK);
    printf("    %zu customers visited of %llu\n", x.n, (unsigned long long)n);
    assert_int_equal(x.n, n);
    assert_int_equal(n, txn_ncustomers(ref) + 1);
    assert_int_equal(x.mismatched, 0);
    each_ctx y = {st, fx.day0 + 200, 0, 0, 4097};
    assert_int_equal(state_each(st, y.asof, each_check, &y, err, sizeof err), RFM_OK);
    assert_int_equal(y.n, 4097);
    state_close(st);
    rm_store(dir, path);
    free(path);
    txn_free(ref);
    free(fx.l);
}

/* ---- interactions of several kinds ---------------------------------------- */

/* Kinds from the options: purchases per distinct invoice, other kinds per
 * event, duplicates once, an unknown kind rejected; as of a day; kept
 * through a reopen (rows and log) and a re-seed; two monetary kinds. */
static void test_interactions(void **state)
{
    (void)state;
    engagement_options t;
    engagement_default_options(&t);
    /* A second monetary kind: an invoice with lines of both counts once,
     * under the first-configured kind. */
    t.type[t.ntypes++] = (engagement_type){"store_purchase", 2.0, 1};
    state_options o;
    state_default_options(&o);
    o.types = &t;
    o.fold_events = 1000;
    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    state_store *st = open_store(path, &o);
    char err[RFM_ERRLEN] = "";
    state_event ev[] = {
        /* 0-1: one invoice of two lines: one purchase */
        {"p1", "5", "2011-03-01T10:00:00Z", "I1", "A", 1, 10.0, 0, 0, NULL},
        {"p2", "5", "2011-03-01T10:00:00Z", "I1", "B", 1, 5.0, 0, 0, "store_purchase"},
        /* 2: another invoice in store */
        {"p3", "5", "2011-03-05T10:00:00Z", "I2", NULL, 1, 7.0, 0, 0, "store_purchase"},
        /* 3-5: three web visits, one sent twice; a lead later */
        {"w1", "5", "2011-03-02T09:00:00Z", NULL, NULL, 0, 0, 0, 0, "web_visit"},
        {"w2", "5.0", "2011-03-02T11:00:00Z", NULL, NULL, 0, 0, 0, 0, "web_visit"},
        {"w2", "5", "2011-03-02T11:00:00Z", NULL, NULL, 0, 0, 0, 0, "web_visit"},
        {"w3", "5", "2011-03-03T11:00:00Z", NULL, NULL, 0, 0, 0, 0, "web_visit"},
        {"l1", "5", "2011-03-10T12:00:00Z", NULL, NULL, 0, 0, 0, 0, "lead"},
        /* 8: a customer known only by a visit */
        {"w4", "6", "2011-03-02T09:00:00Z", NULL, NULL, 0, 0, 0, 0, "web_visit"},
        /* 9-11: rejected: an unknown kind, a visit without a time or a customer */
        {"x1", "5", "2011-03-02T09:00:00Z", NULL, NULL, 1, 1.0, 0, 0, "newsletter"},
        {"x2", "5", NULL, NULL, NULL, 0, 0, 0, 0, "web_visit"},
        {"x3", "null", "2011-03-02", NULL, NULL, 0, 0, 0, 0, "lead"},
    };
    size_t n = sizeof ev / sizeof *ev;
    state_result res[sizeof ev / sizeof *ev];
    apply_ok(st, ev, n, res);
    const state_result want[] = {
        {STATE_APPLIED, STATE_OK},        {STATE_APPLIED, STATE_OK},
        {STATE_APPLIED, STATE_OK},        {STATE_APPLIED, STATE_OK},
        {STATE_APPLIED, STATE_OK},        {STATE_DUPLICATE, STATE_OK},
        {STATE_APPLIED, STATE_OK},        {STATE_APPLIED, STATE_OK},
        {STATE_APPLIED, STATE_OK},        {STATE_REJECTED, STATE_BAD_TYPE},
        {STATE_REJECTED, STATE_BAD_TIME}, {STATE_REJECTED, STATE_MISSING_CUSTOMER},
    };
    for (size_t i = 0; i < n; i++)
        if (res[i].outcome != want[i].outcome || res[i].reason != want[i].reason)
            fail_msg("event %zu: %s/%s, wanted %s/%s", i, state_outcome_name(res[i].outcome),
                     state_reason_name(res[i].reason), state_outcome_name(want[i].outcome),
                     state_reason_name(want[i].reason));
    assert_string_equal(state_reason_name(STATE_BAD_TYPE), "bad_type");
    int32_t d = date_from_ymd(2011, 3, 1);
    for (int round = 0; round < 3; round++) {
        state_customer c;
        assert_int_equal(state_get(st, "5", d + 20, &c, err, sizeof err), RFM_OK);
        /* purchase 1 (I1: its lines are purchase and store_purchase),
         * web_visit 3, lead 1, store_purchase 1 (I2) */
        assert_near(c.type_count[0], 1, 0);
        assert_near(c.type_count[1], 3, 0);
        assert_near(c.type_count[2], 1, 0);
        assert_near(c.type_count[3], 1, 0);
        assert_near(c.interactions, 6, 0);
        assert_near(c.weighted, 1.0 + 3 * 0.1 + 5.0 + 2.0, 1e-12);
        assert_int_equal(c.last_interaction_day, d + 9); /* the lead */
        assert_near(c.f.frequency, 2, 0);                /* purchases unchanged by the rest */
        assert_near(c.f.monetary, 22, 0);
        /* As of 3 March: I1 and the two visits of the 2nd. */
        assert_int_equal(state_get(st, "5", d + 2, &c, err, sizeof err), RFM_OK);
        assert_near(c.interactions, 3, 0);
        assert_int_equal(c.last_interaction_day, d + 1);
        /* A customer with visits only: in the store, no purchase. */
        assert_int_equal(state_get(st, "6", d + 20, &c, err, sizeof err), RFM_OK);
        assert_false(c.f.active);
        assert_near(c.interactions, 1, 0);
        uint64_t nc;
        assert_int_equal(state_count(st, &nc, err, sizeof err), RFM_OK);
        assert_int_equal(nc, round == 2 ? 3 : 2); /* the re-seed's customer 7 */
        if (round == 0) {                         /* reopened after a clean close: the rows */
            state_close(st);
            st = open_store(path, &o);
        } else if (round == 1) { /* re-seeded: the interactions stay */
            txn_data *d0 = txn_from_text("InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,"
                                         "CustomerID\n9,X,1,2011-01-01 10:00:00,3.0,7\n");
            assert_int_equal(state_seed(st, d0, NULL, err, sizeof err), RFM_OK);
            txn_free(d0);
            state_close(st);
            st = open_store(path, &o);
            continue;
        }
    }
    /* Resent after a reopen: duplicates. */
    apply_ok(st, ev, n, res);
    for (size_t i = 0; i < n; i++)
        assert_true(res[i].outcome == STATE_DUPLICATE || res[i].outcome == STATE_REJECTED);
    /* A kind taken out of the config no longer counts; back, it does. */
    state_close(st);
    engagement_options t2 = t;
    t2.ntypes = 2; /* purchase, web_visit */
    o.types = &t2;
    st = open_store(path, &o);
    state_customer c;
    assert_int_equal(state_get(st, "5", d + 20, &c, err, sizeof err), RFM_OK);
    assert_near(c.interactions, 4, 0); /* the purchase I1 and 3 visits; I2 was store_purchase */
    state_close(st);
    o.types = &t;
    st = open_store(path, &o);
    assert_int_equal(state_get(st, "5", d + 20, &c, err, sizeof err), RFM_OK);
    assert_near(c.interactions, 6, 0);
    state_close(st);
    rm_store(dir, path);
    free(path);
}

/* ---- kill -9 ---------------------------------------------------------- */

enum { KB = 60, KN = 100 }; /* batches, events per batch */

static void child_ingest(const char *path, const state_event *ev, int from, int fd)
{
    state_options o;
    state_default_options(&o);
    state_store *st;
    char err[RFM_ERRLEN];
    state_result res[KN];
    if (state_open(path, &o, &st, err, sizeof err) != RFM_OK)
        _exit(3);
    for (int b = from; b < KB; b++) {
        if (state_apply(st, ev + (size_t)b * KN, KN, res, err, sizeof err) != RFM_OK)
            _exit(4);
        if (write(fd, &b, sizeof b) != sizeof b) /* acknowledged */
            _exit(5);
    }
    state_close(st);
    _exit(0);
}

static void test_kill9_loses_nothing(void **state)
{
    (void)state;
    fixture fx;
    fx_generate(&fx, 99, 300, 2600);
    assert_true(fx.n >= (size_t)KB * KN);
    fx.n = (size_t)KB * KN;
    state_event *ev = malloc(fx.n * sizeof *ev);
    char(*ids)[32] = malloc(fx.n * sizeof *ids);
    for (size_t i = 0; i < fx.n; i++)
        ev[i] = fx_event(&fx.l[i], ids[i], i);
    rfm_rng r;
    rfm_rng_seed(&r, 3);
    rfm_rng_shuffle(&r, ev, fx.n, fx.n, sizeof *ev);
    txn_data *ref = fx_read(&fx, NULL);
    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    char err[RFM_ERRLEN] = "";
    int next = 0, kills = 0;
    state_result res[KN];
    for (int round = 0; round < 8 && next < KB; round++) {
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            child_ingest(path, ev, next, pfd[1]);
        }
        close(pfd[1]);
        int b, acked = next - 1;
        if (read(pfd[0], &b, sizeof b) == sizeof b) /* the first ack, then a random moment */
            acked = b;
        usleep((useconds_t)(rfm_rng_below(&r, 40000)));
        kill(pid, SIGKILL);
        int ws;
        assert_int_equal(waitpid(pid, &ws, 0), pid);
        while (read(pfd[0], &b, sizeof b) == sizeof b)
            acked = b;
        close(pfd[0]);
        if (WIFSIGNALED(ws))
            kills++;
        else
            assert_int_equal(WEXITSTATUS(ws), 0);
        /* Reopened: valid, and every acknowledged event is there (sent
         * again, each is a duplicate). */
        state_store *st = open_store(path, NULL);
        assert_int_equal(state_check(st, err, sizeof err), RFM_OK);
        for (int k = 0; k <= acked; k++) {
            apply_ok(st, ev + (size_t)k * KN, KN, res);
            for (int i = 0; i < KN; i++)
                if (res[i].outcome != STATE_DUPLICATE && res[i].outcome != STATE_REJECTED)
                    fail_msg("round %d: batch %d acknowledged, event %d is %s", round, k, i,
                             state_outcome_name(res[i].outcome));
        }
        state_close(st);
        next = acked + 1; /* the client resends from the first unacknowledged */
    }
    printf("    %d kills; the rest of the %d batches sent after\n", kills, KB);
    state_store *st = open_store(path, NULL);
    for (int k = next; k < KB; k++)
        apply_ok(st, ev + (size_t)k * KN, KN, res);
    double maxrel = 0;
    compare(fx_sqlite(st), ref, txn_snapshot_day(ref), &maxrel);
    compare(fx_sqlite(st), ref, fx.day0 + 180, &maxrel);
    report_maxdiff("spend after the kills, relative", maxrel, 1e-9);
    assert_int_equal(state_check(st, err, sizeof err), RFM_OK);
    state_close(st);
    rm_store(dir, path);
    free(path);
    txn_free(ref);
    free(ev);
    free(ids);
    free(fx.l);
}

/* ---- a full disk ------------------------------------------------------ */

/* max_page_count caps the file as a full disk would: SQLite answers
 * SQLITE_FULL either way. */
static void test_disk_full(void **state)
{
    (void)state;
    fixture fx;
    fx_generate(&fx, 5, 2000, 3000);
    state_event *ev = malloc(fx.n * sizeof *ev);
    char(*ids)[32] = malloc(fx.n * sizeof *ids);
    for (size_t i = 0; i < fx.n; i++)
        ev[i] = fx_event(&fx.l[i], ids[i], i);
    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    state_options o;
    state_default_options(&o);
    o.max_pages = 48; /* 192 KiB */
    state_store *st = open_store(path, &o);
    char err[RFM_ERRLEN] = "";
    state_result res[200];
    size_t at = 0;
    rfm_status s = RFM_OK;
    for (; at + 200 <= fx.n; at += 200)
        if ((s = state_apply(st, ev + at, 200, res, err, sizeof err)) != RFM_OK)
            break;
    assert_int_equal(s, RFM_ENOSPC);
    printf("    full after %zu events: %s\n", at, err);
    assert_non_null(strstr(err, "full"));
    assert_int_equal(state_check(st, err, sizeof err), RFM_OK);
    /* Still usable for reads, and what was acknowledged is exact. */
    char *keep = calloc(fx.n, 1);
    memset(keep, 1, at);
    txn_data *ref = fx_read(&fx, keep);
    double maxrel = 0;
    compare(fx_sqlite(st), ref, txn_snapshot_day(ref), &maxrel);
    state_close(st);
    /* With room again, the failed batch goes in: none of it was written. */
    st = open_store(path, NULL);
    apply_ok(st, ev + at, 200, res);
    for (int i = 0; i < 200; i++)
        assert_int_not_equal(res[i].outcome, STATE_DUPLICATE);
    memset(keep, 1, at + 200);
    txn_data *ref2 = fx_read(&fx, keep);
    compare(fx_sqlite(st), ref2, txn_snapshot_day(ref2), &maxrel);
    report_maxdiff("spend, relative", maxrel, 1e-9);
    assert_int_equal(state_check(st, err, sizeof err), RFM_OK);
    state_close(st);
    rm_store(dir, path);
    free(path);
    txn_free(ref);
    txn_free(ref2);
    free(keep);
    free(ev);
    free(ids);
    free(fx.l);
}

/* ---- erasure ------------------------------------------------------------ */

#define GONE_ID "zq9erase7me4711"

/* Whether the bytes of s are in the file at path (a missing file has
 * none). */
static int file_has(const char *path, const char *s)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = strlen(s), cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    size_t r;
    while ((r = fread(b + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            cap *= 2;
            b = realloc(b, cap);
            assert_non_null(b);
        }
    }
    fclose(f);
    int has = 0;
    for (size_t i = 0; !has && i + n <= len; i++)
        has = memcmp(b + i, s, n) == 0;
    free(b);
    return has;
}

/* The store's files (.db and -wal) hold s. */
static int store_has(const char *path, const char *s)
{
    char wal[256];
    snprintf(wal, sizeof wal, "%s-wal", path);
    return file_has(path, s) || file_has(wal, s);
}

/* nb batches of events, one a day from March day1: customers GONE_ID and
 * "keep" (purchases), GONE_ID a visit too, ids "tag-k-i". */
static void erase_feed(state_store *st, const char *tag, int day1, int nb)
{
    for (int k = 0; k < nb; k++) {
        char id[4][32], t[4][32];
        state_event ev[4];
        for (int i = 0; i < 4; i++) {
            snprintf(id[i], sizeof id[i], "%s-%d-%d", tag, k, i);
            snprintf(t[i], sizeof t[i], "2011-03-%02dT1%d:00:00Z", day1 + k, i);
        }
        ev[0] = (state_event){id[0], GONE_ID, t[0], NULL, "A", 1, 10.0 + k, 0, 0, NULL};
        ev[1] = (state_event){id[1], "keep", t[1], NULL, "A", 1, 5.0 + k, 0, 0, NULL};
        ev[2] = (state_event){id[2], GONE_ID, t[2], NULL, NULL, 0, 0, 0, 0, "web_visit"};
        ev[3] = (state_event){id[3], "keep", t[3], NULL, "B", 1, 1.0, 0, 0, NULL};
        state_result res[4];
        apply_ok(st, ev, 4, res);
        for (int i = 0; i < 4; i++)
            assert_int_equal(res[i].outcome, STATE_APPLIED);
    }
}

/* A store with GONE_ID in folded rows and in the log after them. */
static state_store *erase_setup(const char *path, const state_options *o)
{
    state_store *st = open_store(path, o);
    erase_feed(st, "a", 1, 5);
    state_close(st); /* folded into the rows */
    st = open_store(path, o);
    erase_feed(st, "b", 8, 5); /* in the log only */
    return st;
}

static int is_listed(void *list, const char *id, size_t len)
{
    return strlen((const char *)list) == len && memcmp(list, id, len) == 0;
}

/* state_erase removes a customer from memory and both files at once
 * (the bytes of its id gone from the .db and the -wal), durably (a
 * reopen, a kill without close), leaves the others as they were, and is
 * idempotent; a customer of the erasure list is dropped at open and its
 * later events ignored as "erased", never stored. */
static void test_erase(void **state)
{
    (void)state;
    char err[RFM_ERRLEN] = "";
    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    state_options o;
    state_default_options(&o);
    int32_t asof = date_from_ymd(2011, 4, 1);
    state_store *st = erase_setup(path, &o);
    state_customer keep0, c;
    assert_int_equal(state_get(st, "keep", asof, &keep0, err, sizeof err), RFM_OK);
    assert_int_equal(state_get(st, GONE_ID, asof, &c, err, sizeof err), RFM_OK);
    assert_true(store_has(path, GONE_ID)); /* the check below can fail */
    assert_int_equal(state_erase(st, GONE_ID, err, sizeof err), RFM_OK);
    assert_int_equal(state_get(st, GONE_ID, asof, &c, err, sizeof err), RFM_ENOTFOUND);
    assert_false(store_has(path, GONE_ID));
    uint64_t n;
    assert_int_equal(state_count(st, &n, err, sizeof err), RFM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(state_get(st, "keep", asof, &c, err, sizeof err), RFM_OK);
    assert_memory_equal(&c.f, &keep0.f, sizeof c.f);
    /* Again: not there, nothing done. */
    assert_int_equal(state_erase(st, GONE_ID, err, sizeof err), RFM_ENOTFOUND);
    assert_int_equal(state_check(st, err, sizeof err), RFM_OK);
    state_close(st);
    st = open_store(path, &o);
    assert_int_equal(state_get(st, GONE_ID, asof, &c, err, sizeof err), RFM_ENOTFOUND);
    assert_int_equal(state_get(st, "keep", asof, &c, err, sizeof err), RFM_OK);
    assert_memory_equal(&c.f, &keep0.f, sizeof c.f);
    state_close(st);
    assert_false(store_has(path, GONE_ID));
    rm_store(dir, path);

    /* Killed right after the erasure (no close): the reopened store
     * replays a log without it. */
    path = (free(path), tmp_store(dir, sizeof dir));
    st = erase_setup(path, &o);
    state_close(st);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        state_store *s2;
        if (state_open(path, &o, &s2, err, sizeof err) != RFM_OK)
            _exit(3);
        erase_feed(s2, "c", 15, 3); /* a log to replay after the kill */
        _exit(state_erase(s2, GONE_ID, err, sizeof err) == RFM_OK ? 0 : 4);
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    assert_false(store_has(path, GONE_ID));
    st = open_store(path, &o);
    assert_int_equal(state_get(st, GONE_ID, asof, &c, err, sizeof err), RFM_ENOTFOUND);
    assert_int_equal(state_get(st, "keep", asof, &c, err, sizeof err), RFM_OK);
    assert_near(c.f.frequency, 13, 0); /* 5 + 5 + 3 days, one invoice a day */
    assert_int_equal(state_count(st, &n, err, sizeof err), RFM_OK);
    assert_int_equal(n, 1);
    state_close(st);
    rm_store(dir, path);

    /* On the erasure list while the store was closed: dropped at open;
     * its events from then on ignored ("erased") and not stored. */
    path = (free(path), tmp_store(dir, sizeof dir));
    st = erase_setup(path, &o);
    state_close(st);
    state_options ol = o;
    ol.is_erased = is_listed;
    ol.erased = GONE_ID;
    st = open_store(path, &ol);
    assert_int_equal(state_get(st, GONE_ID, asof, &c, err, sizeof err), RFM_ENOTFOUND);
    assert_false(store_has(path, GONE_ID));
    state_event ev[] = {
        {"d-1", GONE_ID, "2011-03-20T10:00:00Z", NULL, "A", 1, 3.0, 0, 0, NULL},
        {"d-2", GONE_ID, "2011-03-20T11:00:00Z", NULL, NULL, 0, 0, 0, 0, "web_visit"},
        {"d-3", "keep", "2011-03-20T10:00:00Z", NULL, "Z", 1, 3.0, 0, 0, NULL},
        {"d-1", GONE_ID, "2011-03-20T10:00:00Z", NULL, "A", 1, 3.0, 0, 0, NULL},
    };
    state_result res[4];
    apply_ok(st, ev, 4, res);
    assert_int_equal(res[0].outcome, STATE_IGNORED);
    assert_int_equal(res[0].reason, STATE_ERASED);
    assert_int_equal(res[1].outcome, STATE_IGNORED);
    assert_int_equal(res[1].reason, STATE_ERASED);
    assert_int_equal(res[2].outcome, STATE_APPLIED);
    assert_int_equal(res[3].outcome, STATE_DUPLICATE);
    assert_string_equal(state_reason_name(STATE_ERASED), "erased");
    assert_int_equal(state_get(st, GONE_ID, asof, &c, err, sizeof err), RFM_ENOTFOUND);
    assert_false(store_has(path, GONE_ID));
    state_close(st);
    assert_false(store_has(path, GONE_ID));
    rm_store(dir, path);
    free(path);
}

/* ---- bad files and options -------------------------------------------- */

static void test_bad_files(void **state)
{
    (void)state;
    char err[RFM_ERRLEN] = "";
    state_options o;
    state_default_options(&o);
    state_store *st;
    char dir[64];
    char *path = tmp_store(dir, sizeof dir);
    /* Not SQLite. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("InvoiceNo,CustomerID,not a database\n", f);
    fclose(f);
    assert_int_equal(state_open(path, &o, &st, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, path));
    unlink(path);
    /* Another format. */
    st = open_store(path, NULL);
    state_close(st);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "UPDATE meta SET value = 99 WHERE key = 'format'", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(state_open(path, &o, &st, err, sizeof err), RFM_EFORMAT);
    assert_non_null(strstr(err, "format 99"));
    /* No such folder. */
    assert_int_equal(state_open("/nonexistent/dir/state.db", &o, &st, err, sizeof err), RFM_EIO);
    /* Options. */
    o.seen_ids_max = 10;
    assert_int_equal(state_open(path, &o, &st, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "seen_ids_max"));
    state_default_options(&o);
    o.synchronous = (state_sync)7;
    assert_int_equal(state_open(path, &o, &st, err, sizeof err), RFM_EINVAL);
    rm_store(dir, path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_each_order),
        cmocka_unit_test(test_event_rules),
        cmocka_unit_test(test_exact_after_any_order),
        cmocka_unit_test(test_exact_real_file_head),
        cmocka_unit_test(test_seen_retention),
        cmocka_unit_test(test_fold_and_replay),
        cmocka_unit_test(test_damaged_row),
        cmocka_unit_test(test_readers_beside_writer),
        cmocka_unit_test(test_each),
        cmocka_unit_test(test_interactions),
        cmocka_unit_test(test_kill9_loses_nothing),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_erase),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
