/* test_state_redis.c - the Redis customer-state store (state_redis.h) on a
 * real redis-server started for the test (tests/redis.h).
 *
 * The same references as test_state.c: the store seeded from a prefix of a
 * synthetic export and fed the rest as events (shuffled, resent, in
 * batches) gives every customer the trainer's features on the whole file;
 * the event rules by hand. Then what is Redis's own: the same events into
 * SQLite and Redis give the same customers; ids kept per customer; two
 * replicas seeding at once (one seeds, the other waits); a server killed
 * (kill -9, appendfsync always) and restarted on its port: calls fail fast
 * meanwhile, the store reconnects by itself, nothing acknowledged is lost.
 */
#include "testutil.h"
#include "net.h"
#include "redis.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "csv.h"
#include "date.h"
#include "monotime.h"
#include "rng.h"
#include "state.h"
#include "state_redis.h"
#include "txn.h"

#include "state_fixture.h"

static test_redis srv;

static int setup(void **state)
{
    (void)state;
    if (redis_present())
        redis_start(&srv, "everysec");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    redis_stop(&srv);
    return 0;
}

#define NEED_REDIS()                                                                               \
    do {                                                                                           \
        if (srv.pid <= 0)                                                                          \
            skip();                                                                                \
    } while (0)

static rfm_status get_r(void *st, const char *id, int32_t asof, state_customer *out, char *err,
                        size_t errlen)
{
    return rstate_get(st, id, asof, out, err, errlen);
}
static rfm_status count_r(void *st, uint64_t *n, char *err, size_t errlen)
{
    return rstate_count(st, n, err, errlen);
}

/* A store on the test's server under its own key prefix (tests do not see
 * each other's keys). */
static rstate *open_r(const char *prefix, const rstate_options *o)
{
    rstate_options def;
    rstate_default_options(&def);
    if (!o)
        o = &def;
    rstate_options oo = *o;
    oo.prefix = prefix;
    rstate *st;
    char err[RFM_ERRLEN] = "";
    if (rstate_open(srv.url, &oo, &st, err, sizeof err) != RFM_OK)
        fail_msg("rstate_open: %s", err);
    return st;
}

static void apply_r(rstate *st, const state_event *ev, size_t n, state_result *res)
{
    char err[RFM_ERRLEN] = "";
    if (rstate_apply(st, ev, n, res, err, sizeof err) != RFM_OK)
        fail_msg("rstate_apply: %s", err);
}

static fx_store as_fx(rstate *st) { return (fx_store){st, get_r, count_r}; }

/* ---- the same cases as test_state.c ---------------------------------- */

static void test_event_rules(void **state)
{
    (void)state;
    NEED_REDIS();
    rstate *st = open_r("rules:", NULL);
    char err[RFM_ERRLEN] = "";
    char longid[STATE_ID_MAX + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    state_event ev[] = {
        {"a1", "7", "2011-12-01T08:00:00Z", NULL, NULL, 1, 10.0, 0, 0, NULL},
        {"a2", "7", "2011-12-01T09:00:00Z", NULL, NULL, 0, 0, 2, 2.5, NULL},
        {"a1", "7", "2011-12-01T08:00:00Z", NULL, NULL, 1, 10.0, 0, 0, NULL},
        {"a3", "7.0", "2011-12-01T08:00:00Z", NULL, NULL, 1, 10.0, 0, 0, NULL},
        {"a4", "7", "2011-12-01T23:30:00-02:00", "", "P1", 1, 4.0, 0, 0, NULL},
        {"a5", "7", "2011-12-03T08:00:00Z", "C9", NULL, 0, 0, -1, 3, NULL},
        {"a6", "7", "2011-12-03T08:00:00Z", "9", NULL, 1, 0.0, 0, 0, NULL},
        {"", "7", "2011-12-03T08:00:00Z", NULL, NULL, 1, 1.0, 0, 0, NULL},
        {"r2", "nan", "2011-12-03T08:00:00Z", NULL, NULL, 1, 1.0, 0, 0, NULL},
        {"r3", "7", "2011-12-03 25:00", NULL, NULL, 1, 1.0, 0, 0, NULL},
        {"r4", "7", "2011-12-03", NULL, NULL, 1, NAN, 0, 0, NULL},
        {"r5", "7", "2011-12-03", longid, NULL, 1, 1.0, 0, 0, NULL},
        {longid, "7", "2011-12-03", NULL, NULL, 1, 1.0, 0, 0, NULL},
        {"b1", "8", "2011-12-02", "100", NULL, 0, 0, 3, 1.5, NULL},
        /* 14: a cancellation of a customer never seen: ignored, no customer */
        {"c1", "99", "2011-12-03T08:00:00Z", "C10", NULL, 0, 0, -1, 3, NULL},
    };
    size_t n = sizeof ev / sizeof *ev;
    state_result res[sizeof ev / sizeof *ev];
    apply_r(st, ev, n, res);
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
        {STATE_IGNORED, STATE_CANCELLED},
    };
    for (size_t i = 0; i < n; i++)
        if (res[i].outcome != want[i].outcome || res[i].reason != want[i].reason)
            fail_msg("event %zu: %s/%s, wanted %s/%s", i, state_outcome_name(res[i].outcome),
                     state_reason_name(res[i].reason), state_outcome_name(want[i].outcome),
                     state_reason_name(want[i].reason));
    int32_t d1 = date_from_ymd(2011, 12, 1);
    state_customer c;
    assert_int_equal(rstate_get(st, "7.0", d1 + 10, &c, err, sizeof err), RFM_OK);
    assert_near(c.f.frequency, 2, 0);
    assert_near(c.f.monetary, 19, 0);
    assert_near(c.f.recency, 9, 0);
    assert_near(c.f.tenure, 10, 0);
    assert_near(c.f.bg_x, 1, 0);
    assert_near(c.f.bg_mean_spend, 4, 0);
    int64_t t;
    assert_true(state_parse_time("2011-12-02T01:30:00Z", &t));
    assert_int_equal(c.last_event_at, t);
    assert_int_equal(rstate_get(st, "7", d1 + 1, &c, err, sizeof err), RFM_OK);
    assert_near(c.f.frequency, 1, 0);
    assert_near(c.f.monetary, 15, 0);
    assert_near(c.f.future_spend, 4, 0);
    assert_int_equal(rstate_get(st, "7", d1, &c, err, sizeof err), RFM_OK);
    assert_false(c.f.active);
    assert_int_equal(rstate_get(st, "9", d1, &c, err, sizeof err), RFM_ENOTFOUND);
    assert_int_equal(rstate_get(st, "99", d1 + 10, &c, err, sizeof err), RFM_ENOTFOUND);
    assert_int_equal(rstate_get(st, "", d1, &c, err, sizeof err), RFM_ENOTFOUND);
    uint64_t nc;
    assert_int_equal(rstate_count(st, &nc, err, sizeof err), RFM_OK);
    assert_int_equal(nc, 2);
    ev[10].amount = 5.0;
    apply_r(st, ev + 10, 1, res);
    assert_int_equal(res[0].outcome, STATE_APPLIED);
    apply_r(st, ev + 5, 1, res);
    assert_int_equal(res[0].outcome, STATE_DUPLICATE);
    rstate_close(st);
}

/* test_state.c's test_exact_after_any_order against Redis: seeded from the
 * lines before day D less some held out (late data), the rest as shuffled
 * events, a fifth twice, batches of 1 to 300; then everything again; a
 * second handle (another replica) sees the same; a newer retrain re-seeds,
 * an older one is refused. */
static void test_exact_after_any_order(void **state)
{
    (void)state;
    NEED_REDIS();
    fixture fx;
    fx_generate(&fx, 42, 150, 1500);
    rfm_rng r;
    rfm_rng_seed(&r, 7);
    int32_t D = fx.day0 + 250;
    char *seed = calloc(fx.n, 1);
    int held_inv = -1;
    for (size_t i = 0; i < fx.n; i++) {
        const fx_line *l = &fx.l[i];
        if (l->day >= D)
            continue;
        if (l->inv != held_inv && (i == 0 || fx.l[i - 1].inv != l->inv) &&
            rfm_rng_uniform(&r) < 0.05)
            held_inv = l->inv;
        if (l->inv == held_inv)
            continue;
        if (!l->twin && rfm_rng_uniform(&r) < 0.03)
            continue;
        seed[i] = 1;
    }
    txn_data *ref = fx_read(&fx, NULL), *train = fx_read(&fx, seed);
    size_t nev = 0;
    state_event *ev = malloc(2 * fx.n * sizeof *ev);
    char(*ids)[32] = malloc(fx.n * sizeof *ids);
    for (size_t i = 0; i < fx.n; i++)
        if (!seed[i])
            ev[nev++] = fx_event(&fx.l[i], ids[i], i);
    size_t nuniq = nev;
    for (size_t i = 0; i < nuniq; i++)
        if (rfm_rng_uniform(&r) < 0.2)
            ev[nev++] = ev[i];
    rfm_rng_shuffle(&r, ev, nev, nev, sizeof *ev);

    rstate *st = open_r("exact:", NULL);
    char err[RFM_ERRLEN] = "";
    int seeded = 0;
    assert_int_equal(rstate_snapshot_day(st), DATE_NONE);
    assert_int_equal(rstate_seed(st, train, &seeded, err, sizeof err), RFM_OK);
    assert_true(seeded);
    assert_int_equal(rstate_snapshot_day(st), txn_snapshot_day(train));
    state_result *res = malloc(nev * sizeof *res);
    size_t count[4] = {0};
    for (size_t at = 0; at < nev;) {
        size_t b = 1 + (size_t)rfm_rng_below(&r, 300);
        if (b > nev - at)
            b = nev - at;
        apply_r(st, ev + at, b, res + at);
        at += b;
    }
    for (size_t i = 0; i < nev; i++)
        count[res[i].outcome]++;
    printf("    outcomes: %zu applied, %zu ignored, %zu duplicate, %zu rejected\n", count[0],
           count[1], count[2], count[3]);
    assert_true(count[STATE_DUPLICATE] > 0 && count[STATE_REJECTED] > 0);
    compare_days(as_fx(st), ref, fx.day0);

    apply_r(st, ev, nev, res);
    for (size_t i = 0; i < nev; i++)
        assert_true(res[i].outcome == STATE_DUPLICATE || res[i].outcome == STATE_REJECTED);

    /* Another replica: opened after, sees it all, does not seed again. */
    rstate *other = open_r("exact:", NULL);
    assert_int_equal(rstate_snapshot_day(other), txn_snapshot_day(train));
    assert_int_equal(rstate_seed(other, train, &seeded, err, sizeof err), RFM_OK);
    assert_false(seeded);
    compare_days(as_fx(other), ref, fx.day0);

    char *seed2 = calloc(fx.n, 1);
    for (size_t i = 0; i < fx.n; i++)
        seed2[i] = fx.l[i].day < D + 60;
    txn_data *train2 = fx_read(&fx, seed2);
    assert_int_equal(rstate_seed(st, train2, &seeded, err, sizeof err), RFM_OK);
    assert_true(seeded);
    compare_days(as_fx(other), ref, fx.day0);
    assert_int_equal(rstate_seed(other, train, &seeded, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "older"));

    rstate_close(other);
    rstate_close(st);
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

/* ---- Redis's own ------------------------------------------------------ */

/* The same events, in the same batches, into SQLite and Redis: the same
 * outcome for every event, and the same customers on every day tried
 * (counts and days exactly, spend to 1e-12 relative). */
static void test_same_as_sqlite(void **state)
{
    (void)state;
    NEED_REDIS();
    fixture fx;
    fx_generate(&fx, 1234, 400, 3000);
    rfm_rng r;
    rfm_rng_seed(&r, 17);
    int32_t D = fx.day0 + 200;
    char *seed = calloc(fx.n, 1);
    for (size_t i = 0; i < fx.n; i++)
        seed[i] = fx.l[i].day < D &&
                  (fx.l[i].twin || rfm_rng_uniform(&r) < 0.9); /* late lines, as test_state.c */
    txn_data *train = fx_read(&fx, seed);
    size_t nev = 0;
    state_event *ev = malloc(2 * fx.n * sizeof *ev);
    char(*ids)[32] = malloc(fx.n * sizeof *ids);
    for (size_t i = 0; i < fx.n; i++)
        if (!seed[i])
            ev[nev++] = fx_event(&fx.l[i], ids[i], i);
    size_t nuniq = nev;
    for (size_t i = 0; i < nuniq; i++)
        if (rfm_rng_uniform(&r) < 0.1)
            ev[nev++] = ev[i];
    rfm_rng_shuffle(&r, ev, nev, nev, sizeof *ev);

    char dir[64] = "/tmp/rfmsame_XXXXXX", path[96], err[RFM_ERRLEN] = "";
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/state.db", dir);
    state_options so;
    state_default_options(&so);
    so.synchronous = STATE_SYNC_NORMAL;
    state_store *sq;
    assert_int_equal(state_open(path, &so, &sq, err, sizeof err), RFM_OK);
    rstate *rd = open_r("same:", NULL);
    assert_int_equal(state_seed(sq, train, NULL, err, sizeof err), RFM_OK);
    assert_int_equal(rstate_seed(rd, train, NULL, err, sizeof err), RFM_OK);
    state_result *a = malloc(nev * sizeof *a), *b = malloc(nev * sizeof *b);
    for (size_t at = 0; at < nev;) {
        size_t k = 1 + (size_t)rfm_rng_below(&r, 500);
        if (k > nev - at)
            k = nev - at;
        assert_int_equal(state_apply(sq, ev + at, k, a + at, err, sizeof err), RFM_OK);
        apply_r(rd, ev + at, k, b + at);
        at += k;
    }
    for (size_t i = 0; i < nev; i++)
        if (a[i].outcome != b[i].outcome || a[i].reason != b[i].reason)
            fail_msg("event %zu (%s): SQLite %s/%s, Redis %s/%s", i, ev[i].event_id,
                     state_outcome_name(a[i].outcome), state_reason_name(a[i].reason),
                     state_outcome_name(b[i].outcome), state_reason_name(b[i].reason));
    uint64_t na, nb;
    assert_int_equal(state_count(sq, &na, err, sizeof err), RFM_OK);
    assert_int_equal(rstate_count(rd, &nb, err, sizeof err), RFM_OK);
    assert_int_equal(na, nb);
    txn_data *ref = fx_read(&fx, NULL);
    double maxrel = 0;
    size_t ncomp = 0;
    int32_t days[] = {fx.day0 + 30, D - 1, D, D + 50, txn_snapshot_day(ref) + 10};
    for (size_t k = 0; k < sizeof days / sizeof *days; k++)
        for (size_t i = 0; i < txn_ncustomers(ref); i++) {
            const char *id = txn_customer_id(ref, i);
            state_customer x, y;
            assert_int_equal(state_get(sq, id, days[k], &x, err, sizeof err), RFM_OK);
            assert_int_equal(rstate_get(rd, id, days[k], &y, err, sizeof err), RFM_OK);
            const txn_features *p = &x.f, *q = &y.f;
            if (p->active != q->active || p->recency != q->recency ||
                p->frequency != q->frequency || p->tenure != q->tenure || p->bg_x != q->bg_x ||
                p->bg_t_x != q->bg_t_x || p->bg_T != q->bg_T || p->future_days != q->future_days ||
                x.last_event_at != y.last_event_at)
                fail_msg("customer %s as of %d differs between SQLite and Redis", id, days[k]);
            double e = fmax(fmax(relerr(p->monetary, q->monetary, 0), relerr(p->aov, q->aov, 0)),
                            fmax(relerr(p->bg_mean_spend, q->bg_mean_spend, p->monetary),
                                 relerr(p->future_spend, q->future_spend, 0)));
            maxrel = fmax(maxrel, e);
            ncomp++;
        }
    printf("    %zu events, %llu customers, %zu comparisons\n", nev, (unsigned long long)na, ncomp);
    report_maxdiff("spend, SQLite vs Redis, relative", maxrel, 1e-12);
    /* And both equal the trainer. */
    compare_days(as_fx(rd), ref, fx.day0);
    compare_days(fx_sqlite(sq), ref, fx.day0);
    state_close(sq);
    rstate_close(rd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    txn_free(train);
    txn_free(ref);
    free(seed);
    free(ev);
    free(ids);
    free(a);
    free(b);
    free(fx.l);
}

/* The newest seen_per_customer ids of each customer are kept; a retry of a
 * forgotten one is still not counted twice (its line is kept). */
/* Kinds: purchases of the purchase kind (no type, or "purchase") are kept
 * as in SQLite, with the same engagement fields; an interaction kind and a
 * second monetary kind of the config are rejected (STATE_BAD_TYPE, the
 * Redis store keeps purchases only), as is a kind not in the config. */
static void test_kinds_and_engagement(void **state)
{
    (void)state;
    NEED_REDIS();
    engagement_options types;
    engagement_default_options(&types);
    types.ntypes = 0;
    types.type[types.ntypes++] = (engagement_type){"web_visit", 0.5, 0};
    types.type[types.ntypes++] = (engagement_type){"purchase", 2.0, 1};
    types.type[types.ntypes++] = (engagement_type){"refill", 3.0, 1};
    rstate_options ro;
    rstate_default_options(&ro);
    ro.types = &types;
    rstate *rd = open_r("kinds:", &ro);
    char dir[64] = "/tmp/rfmkinds_XXXXXX", path[96], err[RFM_ERRLEN] = "";
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/state.db", dir);
    state_options so;
    state_default_options(&so);
    so.synchronous = STATE_SYNC_NORMAL;
    so.types = &types;
    state_store *sq;
    assert_int_equal(state_open(path, &so, &sq, err, sizeof err), RFM_OK);
    state_event buy[] = {
        {"k1", "5", "2011-12-01T08:00:00Z", "100", NULL, 1, 10.0, 0, 0, NULL},
        {"k2", "5", "2011-12-03T08:00:00Z", "101", NULL, 1, 4.0, 0, 0, "purchase"},
        {"k3", "5", "2011-12-07T08:00:00Z", NULL, NULL, 1, 6.0, 0, 0, "purchase"},
    };
    state_result a[3], b[3];
    apply_r(rd, buy, 3, a);
    assert_int_equal(state_apply(sq, buy, 3, b, err, sizeof err), RFM_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a[i].outcome, STATE_APPLIED);
        assert_int_equal(b[i].outcome, STATE_APPLIED);
    }
    state_event other[] = {
        {"k4", "5", "2011-12-05T08:00:00Z", NULL, NULL, 0, 0, 0, 0, "web_visit"},
        {"k5", "5", "2011-12-05T08:00:00Z", "102", NULL, 1, 1.0, 0, 0, "refill"},
        {"k6", "5", "2011-12-05T08:00:00Z", NULL, NULL, 0, 0, 0, 0, "no_such_kind"},
    };
    apply_r(rd, other, 3, a);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a[i].outcome, STATE_REJECTED);
        assert_int_equal(a[i].reason, STATE_BAD_TYPE);
    }
    /* Nothing recorded: the same ids as purchases are applied later. */
    state_event again = {"k4", "5", "2011-12-08T08:00:00Z", NULL, NULL, 1, 2.0, 0, 0, NULL};
    apply_r(rd, &again, 1, a);
    assert_int_equal(a[0].outcome, STATE_APPLIED);
    assert_int_equal(state_apply(sq, &again, 1, b, err, sizeof err), RFM_OK);
    int32_t d0 = date_parse("2011-12-01", 10);
    int32_t days[] = {d0, d0 + 1, d0 + 4, d0 + 7, d0 + 8, d0 + 30};
    for (size_t k = 0; k < sizeof days / sizeof *days; k++) {
        state_customer x, y;
        assert_int_equal(rstate_get(rd, "5", days[k], &x, err, sizeof err), RFM_OK);
        assert_int_equal(state_get(sq, "5", days[k], &y, err, sizeof err), RFM_OK);
        assert_true(x.f.frequency == y.f.frequency);
        for (size_t t = 0; t < types.ntypes; t++)
            assert_true(x.type_count[t] == y.type_count[t]);
        assert_true(x.interactions == y.interactions);
        assert_true(x.weighted == y.weighted);
        assert_int_equal(x.last_interaction_day, y.last_interaction_day);
    }
    state_customer x;
    assert_int_equal(rstate_get(rd, "5", d0 + 30, &x, err, sizeof err), RFM_OK);
    assert_true(x.type_count[1] == 4 && x.interactions == 4 && x.weighted == 8);
    assert_true(x.type_count[0] == 0 && x.type_count[2] == 0);
    assert_int_equal(x.last_interaction_day, d0 + 7);
    assert_int_equal(rstate_get(rd, "5", d0, &x, err, sizeof err), RFM_OK);
    assert_int_equal(x.last_interaction_day, DATE_NONE);
    state_close(sq);
    rstate_close(rd);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_seen_retention(void **state)
{
    (void)state;
    NEED_REDIS();
    rstate_options o;
    rstate_default_options(&o);
    o.seen_per_customer = 10;
    rstate *st = open_r("seen:", &o);
    enum { N = 300 };
    static char ids[N][16], cids[N][16];
    static state_event ev[N];
    static state_result res[N];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "id%d", i);
        snprintf(cids[i], sizeof cids[i], "%d", i % 10);
        ev[i] = (state_event){ids[i], cids[i], "2011-06-01T10:00:00Z", NULL, NULL, 1, 1.0 + i, 0,
                              0,      NULL};
    }
    for (int b = 0; b < N; b += 50)
        apply_r(st, ev + b, 50, res + b);
    /* 30 events a customer, 10 ids kept each: ZCARD through a raw socket. */
    int fd = dial_for(srv.port, 5);
    assert_true(fd >= 0);
    const char *q = "ZCARD seen:{3}:s\r\n";
    assert_int_equal(write(fd, q, strlen(q)), (ssize_t)strlen(q));
    char buf[32] = "";
    assert_true(read(fd, buf, sizeof buf - 1) > 0);
    close(fd);
    assert_string_equal(buf, ":10\r\n");
    char err[RFM_ERRLEN];
    state_customer before, after;
    assert_int_equal(rstate_get(st, "0", 20000, &before, err, sizeof err), RFM_OK);
    apply_r(st, ev + 0, 1, res); /* forgotten id, known line */
    assert_int_equal(res[0].outcome, STATE_IGNORED);
    assert_int_equal(res[0].reason, STATE_REPEATED_LINE);
    apply_r(st, ev + N - 1, 1, res); /* kept id */
    assert_int_equal(res[0].outcome, STATE_DUPLICATE);
    assert_int_equal(rstate_get(st, "0", 20000, &after, err, sizeof err), RFM_OK);
    assert_memory_equal(&before, &after, sizeof before);
    rstate_close(st);
}

/* Two replicas start at once on an empty store: exactly one seeds, the
 * other waits for it and finds the store seeded. */
static void test_one_replica_seeds(void **state)
{
    (void)state;
    NEED_REDIS();
    fixture fx;
    fx_generate(&fx, 77, 3000, 20000);
    txn_data *train = fx_read(&fx, NULL);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t kid[2];
    for (int k = 0; k < 2; k++) {
        fflush(stdout);
        kid[k] = fork();
        assert_true(kid[k] >= 0);
        if (kid[k] == 0) {
            rstate_options o;
            rstate_default_options(&o);
            o.prefix = "twice:";
            rstate *st;
            char err[RFM_ERRLEN];
            int seeded = -1;
            if (rstate_open(srv.url, &o, &st, err, sizeof err) != RFM_OK ||
                rstate_seed(st, train, &seeded, err, sizeof err) != RFM_OK)
                _exit(3);
            char c = (char)('0' + seeded);
            if (write(pfd[1], &c, 1) != 1)
                _exit(4);
            rstate_close(st);
            _exit(0);
        }
    }
    close(pfd[1]);
    int ws, nseeded = 0;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(waitpid(kid[k], &ws, 0), kid[k]);
        assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    }
    char c;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(read(pfd[0], &c, 1), 1);
        nseeded += c == '1';
    }
    close(pfd[0]);
    assert_int_equal(nseeded, 1);
    rstate *st = open_r("twice:", NULL);
    double maxrel = 0;
    compare(as_fx(st), train, txn_snapshot_day(train), &maxrel);
    report_maxdiff("spend after two replicas started, relative", maxrel, 1e-9);
    rstate_close(st);
    txn_free(train);
    free(fx.l);
}

/* The server killed with SIGKILL (appendfsync always: what it answered is
 * on disk): calls fail within the timeout, naming the URL; restarted on
 * the same port and folder, the same handle reconnects by itself and
 * every acknowledged event is there (resent, each is a duplicate). */
static void test_server_killed_and_back(void **state)
{
    (void)state;
    NEED_REDIS();
    test_redis own = {0};
    redis_start(&own, "always");
    rstate_options o;
    rstate_default_options(&o);
    o.timeout_ms = 300;
    rstate *st;
    char err[RFM_ERRLEN] = "";
    assert_int_equal(rstate_open(own.url, &o, &st, err, sizeof err), RFM_OK);
    fixture fx;
    fx_generate(&fx, 5, 100, 300);
    state_event *ev = malloc(fx.n * sizeof *ev);
    char(*ids)[32] = malloc(fx.n * sizeof *ids);
    for (size_t i = 0; i < fx.n; i++)
        ev[i] = fx_event(&fx.l[i], ids[i], i);
    state_result *res = malloc(fx.n * sizeof *res);
    size_t half = fx.n / 2;
    apply_r(st, ev, half, res);
    redis_kill(&own, SIGKILL);
    state_customer c;
    double t0 = monotime_s();
    rfm_status s = rstate_apply(st, ev + half, fx.n - half, res, err, sizeof err);
    assert_int_equal(s, RFM_EIO);
    assert_non_null(strstr(err, own.url));
    s = rstate_get(st, "10001", 30000, &c, err, sizeof err);
    assert_int_equal(s, RFM_EIO);
    double waited = monotime_s() - t0;
    printf("    down: %s (two calls in %.3f s)\n", err, waited);
    assert_true(waited < 5); /* refused at once; bounded by the timeout anyway */
    redis_start(&own, "always");
    /* Acknowledged: all there; the rest goes in now. */
    apply_r(st, ev, half, res);
    for (size_t i = 0; i < half; i++)
        assert_true(res[i].outcome == STATE_DUPLICATE || res[i].outcome == STATE_REJECTED);
    apply_r(st, ev + half, fx.n - half, res);
    txn_data *ref = fx_read(&fx, NULL);
    double maxrel = 0;
    compare(as_fx(st), ref, txn_snapshot_day(ref), &maxrel);
    report_maxdiff("spend after the restart, relative", maxrel, 1e-9);
    rstate_close(st);
    redis_stop(&own);
    txn_free(ref);
    free(ev);
    free(ids);
    free(res);
    free(fx.l);
}

/* A server that answers nothing (SIGSTOP): a call gives up after
 * timeout_ms, not later. */
static void test_slow_server_times_out(void **state)
{
    (void)state;
    NEED_REDIS();
    rstate_options o;
    rstate_default_options(&o);
    o.timeout_ms = 200;
    o.prefix = "slow:";
    rstate *st;
    char err[RFM_ERRLEN] = "";
    assert_int_equal(rstate_open(srv.url, &o, &st, err, sizeof err), RFM_OK);
    kill(srv.pid, SIGSTOP);
    state_customer c;
    double t0 = monotime_s();
    rfm_status s = rstate_get(st, "1", 20000, &c, err, sizeof err);
    double waited = monotime_s() - t0;
    kill(srv.pid, SIGCONT);
    printf("    stopped server: %s after %.3f s\n", err, waited);
    assert_int_equal(s, RFM_EIO);
    assert_true(waited >= 0.15 && waited < 3);
    assert_int_equal(rstate_get(st, "1", 20000, &c, err, sizeof err), RFM_ENOTFOUND);
    rstate_close(st);
}

static void test_bad_urls_and_options(void **state)
{
    (void)state;
    rstate_options o;
    rstate_default_options(&o);
    rstate *st;
    char err[RFM_ERRLEN] = "";
    const char *bad[] = {"redis://",      "redis://host:0",      "redis://host:99999",
                         "redis://h:1/x", "redis://user:pw@h:1", "redis://h:1/0/extra",
                         "http://h:1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(rstate_open(bad[i], &o, &st, err, sizeof err), RFM_EINVAL);
        assert_non_null(strstr(err, "redis://"));
    }
    assert_true(rstate_is_url("redis://127.0.0.1:6379/0"));
    assert_false(rstate_is_url("state/state.db"));
    /* Nothing listens: RFM_EIO at once. */
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", free_port());
    assert_int_equal(rstate_open(url, &o, &st, err, sizeof err), RFM_EIO);
    assert_non_null(strstr(err, url));
    o.timeout_ms = 0;
    assert_int_equal(rstate_open(url, &o, &st, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "timeout_ms"));
}

/* ---- cost: round trips and commands ----------------------------------- */

/* Send one inline command on fd and read its whole answer into buf (a bulk
 * string's body, or the line). */
static void raw_cmd(int fd, const char *q, char *buf, size_t cap)
{
    assert_int_equal(write(fd, q, strlen(q)), (ssize_t)strlen(q));
    size_t have = 0;
    long want = -1; /* bytes of the whole answer, once known */
    buf[0] = '\0';
    while (want < 0 || (long)have < want) {
        ssize_t k = read(fd, buf + have, cap - 1 - have);
        assert_true(k > 0);
        have += (size_t)k;
        buf[have] = '\0';
        char *eol = strstr(buf, "\r\n");
        if (want < 0 && eol)
            want =
                buf[0] == '$' ? (long)(eol - buf) + 2 + atol(buf + 1) + 2 : (long)(eol - buf) + 2;
        assert_true(have < cap - 1);
    }
}

/* calls=N of one command in an INFO commandstats answer (0 if absent). */
static long calls_of(const char *info, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "cmdstat_%s:calls=", name);
    const char *p = strstr(info, key);
    return p ? atol(p + strlen(key)) : 0;
}

/* Every command a script ran, and the scripts: the sum of the calls of
 * everything but evalsha and this connection's own config and info. */
static void count_commands(int fd, long *scripts, long *inner)
{
    static char info[16384];
    raw_cmd(fd, "INFO commandstats\r\n", info, sizeof info);
    *scripts = calls_of(info, "evalsha");
    *inner = 0;
    for (const char *p = info; (p = strstr(p, "cmdstat_")) != NULL; p++) {
        if (strncmp(p, "cmdstat_evalsha:", 16) == 0 || strncmp(p, "cmdstat_config", 14) == 0 ||
            strncmp(p, "cmdstat_info:", 13) == 0)
            continue;
        const char *c = strstr(p, ":calls=");
        if (c)
            *inner += atol(c + 7);
    }
}

/* A batch is one script of at most 10 commands an event (a new customer's
 * purchase: the seen-id insert with the duplicate check, its count, the
 * line, the day, the invoice, the aggregates, the customer set) plus one;
 * a read runs no script, on the connection the store already has: inside
 * the history MULTI, HMGET, HGETALL, HVALS, EXEC (one round trip), as of
 * today (the day after the wall clock's, as the server asks) the HMGET
 * alone, also for an unknown customer. */
static void test_cost(void **state)
{
    (void)state;
    NEED_REDIS();
    rstate *st = open_r("cost:", NULL);
    enum { N = 100 };
    static char ids[N][16], cids[N][16];
    static state_event ev[N];
    static state_result res[N];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "c%d", i);
        snprintf(cids[i], sizeof cids[i], "%d", 500 + i);
        ev[i] =
            (state_event){ids[i],  cids[i], i % 2 ? "2011-06-01T10:00:00Z" : "2011-07-01T10:00:00Z",
                          NULL,    NULL,    1,
                          2.5 + i, 0,       0,
                          NULL};
    }
    int fd = dial_for(srv.port, 5);
    assert_true(fd >= 0);
    char buf[16384];
    raw_cmd(fd, "CONFIG RESETSTAT\r\n", buf, sizeof buf);
    apply_r(st, ev, N, res);
    for (int i = 0; i < N; i++)
        assert_int_equal(res[i].outcome, STATE_APPLIED);
    long scripts, inner;
    count_commands(fd, &scripts, &inner);
    printf("    a batch of %d new customers' purchases: %ld script, %ld commands in it\n", N,
           scripts, inner);
    assert_int_equal(scripts, 1);
    assert_true(inner <= 10 * N + 1);

    raw_cmd(fd, "INFO stats\r\n", buf, sizeof buf);
    const char *cr = strstr(buf, "total_connections_received:");
    assert_non_null(cr);
    long conns = atol(cr + 27);
    raw_cmd(fd, "CONFIG RESETSTAT\r\n", buf, sizeof buf);
    char err[RFM_ERRLEN];
    int32_t june = date_parse("2011-06-15", 10), later = date_parse("2012-01-01", 10);
    for (int i = 0; i < N; i++) {
        state_customer c;
        assert_int_equal(rstate_get(st, cids[i], i % 3 ? later : june, &c, err, sizeof err),
                         RFM_OK);
        assert_int_equal(c.f.active, i % 3 || i % 2 ? 1 : 0); /* June 15: only June 1 buyers */
    }
    count_commands(fd, &scripts, &inner);
    printf("    %d reads inside the history: %ld scripts, %ld commands\n", N, scripts, inner);
    assert_int_equal(scripts, 0);
    assert_int_equal(inner, 5 * N);
    raw_cmd(fd, "CONFIG RESETSTAT\r\n", buf, sizeof buf);
    int32_t today = (int32_t)(time(NULL) / 86400) + 1;
    for (int i = 0; i < N; i++) {
        state_customer c;
        assert_int_equal(rstate_get(st, cids[i], today, &c, err, sizeof err), RFM_OK);
        assert_near(c.f.monetary, 2.5 + i, 0);
        assert_near(c.f.frequency, 1, 0);
    }
    state_customer none;
    assert_int_equal(rstate_get(st, "no-such-customer", today, &none, err, sizeof err),
                     RFM_ENOTFOUND);
    count_commands(fd, &scripts, &inner);
    printf("    %d reads as of today and an unknown customer: %ld scripts, %ld commands\n", N,
           scripts, inner);
    assert_int_equal(scripts, 0);
    assert_int_equal(inner, N + 1);
    /* An event dated after today: read again with the history, so that
     * today's answer leaves it out (a future day), as SQLite's. */
    state_event fe[2] = {{"f1", "900", "2011-06-01T10:00:00Z", NULL, NULL, 1, 3, 0, 0, NULL},
                         {"f2", "900", "2099-06-01T10:00:00Z", NULL, NULL, 1, 4, 0, 0, NULL}};
    state_result fr[2];
    apply_r(st, fe, 2, fr);
    state_customer fc;
    assert_int_equal(rstate_get(st, "900", today, &fc, err, sizeof err), RFM_OK);
    assert_near(fc.f.monetary, 3, 0);
    assert_near(fc.f.future_days, 1, 0);
    assert_near(fc.f.future_spend, 4, 0);
    assert_int_equal(rstate_get(st, "900", date_parse("2100-01-01", 10), &fc, err, sizeof err),
                     RFM_OK);
    assert_near(fc.f.monetary, 7, 0);
    assert_near(fc.f.future_days, 0, 0);
    raw_cmd(fd, "INFO stats\r\n", buf, sizeof buf);
    cr = strstr(buf, "total_connections_received:");
    assert_non_null(cr);
    assert_int_equal(atol(cr + 27), conns); /* no reconnect */
    close(fd);
    rstate_close(st);
}

/* The same server through its Unix socket (redis+unix://): what one
 * handle writes over TCP the other reads over the socket, bit for bit;
 * the URL's checks; a password kept out of messages. */
static void test_unix_socket(void **state)
{
    (void)state;
    NEED_REDIS();
    rstate_options o;
    rstate_default_options(&o);
    o.prefix = "unix:";
    rstate *tcp = open_r("unix:", NULL), *us;
    char err[RFM_ERRLEN] = "";
    assert_true(rstate_is_url(srv.sock_url));
    if (rstate_open(srv.sock_url, &o, &us, err, sizeof err) != RFM_OK)
        fail_msg("rstate_open %s: %s", srv.sock_url, err);
    enum { N = 50 };
    static char ids[N][16], cids[N][16], times[N][32];
    static state_event ev[N];
    static state_result res[N];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "u%d", i);
        snprintf(cids[i], sizeof cids[i], "%d", 700 + i % 10);
        snprintf(times[i], sizeof times[i], "2011-%02d-10T10:00:00Z", 1 + i % 12);
        ev[i] = (state_event){ids[i], cids[i], times[i], NULL, NULL, 1, 0.1 * (i + 1), 0, 0, NULL};
    }
    apply_r(tcp, ev, N, res);
    int32_t days[3] = {date_parse("2011-03-01", 10), date_parse("2011-08-15", 10),
                       (int32_t)(time(NULL) / 86400) + 1};
    for (int c = 0; c < 10; c++)
        for (int k = 0; k < 3; k++) {
            state_customer a, b;
            char id[16];
            snprintf(id, sizeof id, "%d", 700 + c);
            assert_int_equal(rstate_get(tcp, id, days[k], &a, err, sizeof err), RFM_OK);
            assert_int_equal(rstate_get(us, id, days[k], &b, err, sizeof err), RFM_OK);
            assert_memory_equal(&a.f, &b.f, sizeof a.f);
            assert_true(a.last_event_at == b.last_event_at);
        }
    uint64_t na = 0, nb = 0;
    assert_int_equal(rstate_count(tcp, &na, err, sizeof err), RFM_OK);
    assert_int_equal(rstate_count(us, &nb, err, sizeof err), RFM_OK);
    assert_true(na == nb && na >= 10);
    rstate_close(us);
    rstate_close(tcp);

    char longp[200] = "redis+unix:///";
    memset(longp + 14, 'x', sizeof longp - 15);
    longp[sizeof longp - 1] = '\0';
    const char *bad[] = {"redis+unix://",
                         "redis+unix://relative/redis.sock",
                         "redis+unix:///r.sock?db=x",
                         "redis+unix:///r.sock?timeout=1",
                         "redis+unix://user:pw@/r.sock",
                         longp};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(rstate_open(bad[i], &o, &us, err, sizeof err), RFM_EINVAL);
        assert_non_null(strstr(err, "redis+unix://"));
    }
    /* No such socket: RFM_EIO at once; a password shown as ***. */
    assert_int_equal(
        rstate_open("redis+unix://:secret@/nonexistent-dir/redis.sock", &o, &us, err, sizeof err),
        RFM_EIO);
    printf("    %s\n", err);
    assert_null(strstr(err, "secret"));
    assert_non_null(strstr(err, "redis+unix://:***@/nonexistent-dir/redis.sock"));
}

/* The read path's own wire (state_redis.c, rstate_get): an answer far
 * larger than its first buffer, read in many pieces and summed exactly
 * (spends in quarters: every order of addition gives the same sum); error
 * answers (a key of another type, in the aggregates and inside the
 * history's transaction) fail that read alone, on the same connection,
 * which the next read still uses; a connection the server closed is
 * replaced and the read sent again. */
static void test_wire(void **state)
{
    (void)state;
    NEED_REDIS();
    /* 12,000 events of one customer are one script of up to a second or
     * more on a loaded machine: the default timeout (1 s) is not what this
     * test is about (test_slow_server_times_out is). */
    rstate_options o;
    rstate_default_options(&o);
    o.timeout_ms = 60000;
    rstate *st = open_r("wire:", &o);
    enum { N = 12000 }; /* days of one customer: an answer of about 400 KB */
    state_event *ev = calloc(N, sizeof *ev);
    state_result *res = calloc(N, sizeof *res);
    char(*ids)[16] = calloc(N, sizeof *ids), (*times)[32] = calloc(N, sizeof *times);
    assert_true(ev && res && ids && times);
    int32_t day0 = date_parse("1980-01-01", 10), asof = day0 + N / 3;
    double before = 0, after = 0;
    for (int i = 0; i < N; i++) {
        char d[11];
        date_format(day0 + i, d);
        snprintf(ids[i], sizeof ids[i], "w%d", i);
        snprintf(times[i], sizeof times[i], "%sT12:00:00Z", d);
        double amount = 0.25 * (i % 7 + 1);
        ev[i] = (state_event){ids[i], "big", times[i], NULL, NULL, 1, amount, 0, 0, NULL};
        if (day0 + i < asof)
            before += amount;
        else
            after += amount;
    }
    apply_r(st, ev, N, res);
    for (int i = 0; i < N; i++)
        assert_int_equal(res[i].outcome, STATE_APPLIED);
    char err[RFM_ERRLEN] = "";
    state_customer c;
    for (int rep = 0; rep < 2; rep++) { /* the buffer grown, given back, grown again */
        assert_int_equal(rstate_get(st, "big", asof, &c, err, sizeof err), RFM_OK);
        assert_true(c.f.monetary == before);
        assert_true(c.f.frequency == N / 3);
        assert_true(c.f.future_days == N - N / 3);
        assert_true(c.f.future_spend == after);
        assert_true(c.f.recency == 1); /* the day before asof */
    }
    int32_t today = (int32_t)(time(NULL) / 86400) + 1;
    assert_int_equal(rstate_get(st, "big", today, &c, err, sizeof err), RFM_OK);
    assert_true(c.f.monetary == before + after && c.f.frequency == N);

    int fd = dial_for(srv.port, 5);
    assert_true(fd >= 0);
    char buf[16384];
    raw_cmd(fd, "INFO stats\r\n", buf, sizeof buf);
    long conns = atol(strstr(buf, "total_connections_received:") + 27);
    raw_cmd(fd, "SET wire:{77}:c x\r\n", buf, sizeof buf);
    raw_cmd(fd, "HSET wire:{78}:c fd 3650 ld 3650 nd 1 ni 1 m 2 fs 2\r\n", buf, sizeof buf);
    raw_cmd(fd, "SET wire:{78}:d x\r\n", buf, sizeof buf);
    assert_int_equal(rstate_get(st, "77", today, &c, err, sizeof err), RFM_EIO);
    printf("    aggregates of another type: %s\n", err);
    assert_non_null(strstr(err, "WRONGTYPE"));
    assert_int_equal(rstate_get(st, "77", asof, &c, err, sizeof err), RFM_EIO);
    assert_non_null(strstr(err, "WRONGTYPE"));
    assert_int_equal(rstate_get(st, "78", 3650, &c, err, sizeof err), RFM_EIO);
    printf("    days of another type: %s\n", err);
    assert_non_null(strstr(err, "WRONGTYPE"));
    assert_int_equal(rstate_get(st, "78", today, &c, err, sizeof err), RFM_OK);
    assert_true(c.f.monetary == 2);
    assert_int_equal(rstate_get(st, "big", asof, &c, err, sizeof err), RFM_OK);
    assert_true(c.f.monetary == before);
    raw_cmd(fd, "INFO stats\r\n", buf, sizeof buf);
    assert_int_equal(atol(strstr(buf, "total_connections_received:") + 27), conns);
    /* The connection closed by the server while idle (a Redis restart,
     * its client timeout): the read is sent again on a new one, once. */
    for (int pass = 0; pass < 2; pass++) {
        raw_cmd(fd, "CLIENT KILL TYPE normal SKIPME yes\r\n", buf, sizeof buf);
        assert_int_equal(rstate_get(st, "big", pass ? asof : today, &c, err, sizeof err), RFM_OK);
        assert_true(c.f.monetary == (pass ? before : before + after));
    }
    raw_cmd(fd, "INFO stats\r\n", buf, sizeof buf);
    assert_int_equal(atol(strstr(buf, "total_connections_received:") + 27), conns + 2);
    close(fd);
    rstate_close(st);
    free(ev), free(res), free(ids), free(times);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_urls_and_options),  cmocka_unit_test(test_event_rules),
        cmocka_unit_test(test_exact_after_any_order), cmocka_unit_test(test_same_as_sqlite),
        cmocka_unit_test(test_kinds_and_engagement),  cmocka_unit_test(test_seen_retention),
        cmocka_unit_test(test_one_replica_seeds),     cmocka_unit_test(test_server_killed_and_back),
        cmocka_unit_test(test_slow_server_times_out), cmocka_unit_test(test_cost),
        cmocka_unit_test(test_unix_socket),           cmocka_unit_test(test_wire),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
