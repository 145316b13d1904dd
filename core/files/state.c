/* state.c - the customer-state store on SQLite (design in docs/events.md).
 *
 * Tables (one file, WAL journal):
 *   meta      key -> value: format, snapshot day
 *   customers cid (rowid), id, and the aggregates of all its purchases:
 *             first and last day, distinct days, distinct invoices, spend,
 *             spend of the first day, latest event time. Enough for the
 *             features as of any day after the last purchase (the usual
 *             question: "now") without reading anything else.
 *   days      (cid, day) -> spend that day        } the purchases themselves,
 *   invoices  (cid, invoice hash) -> earliest day } for an as-of day inside
 *             a customer's history, and to keep frequency exact
 *   lines     (cid, line hash) -> invoice, day, time, spend: every applied
 *             event, to find repeated lines and to apply them again after
 *             a re-seed; those before the snapshot go at the next re-seed
 *   seen      seq (rowid), event_id: the newest seen_ids_max ids
 * Every statement is prepared once at open; a batch is one transaction.
 */
#include "state.h"

#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "date.h"
#include "hash.h"

enum {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_META_GET,
    S_META_PUT,
    S_SEEN_INS,
    S_SEEN_PRUNE,
    S_CUST_GET,
    S_CUST_BY_CID,
    S_CUST_INS,
    S_CUST_PUT,
    S_LINE_INS,
    S_DAY_INS,
    S_DAY_ADD,
    S_INV_INS,
    S_INV_MIN,
    S_DAYS_OF,
    S_NINV_BEFORE,
    S_COUNT,
    S_N
};

static const char *const SQL[S_N] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [S_META_PUT] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
    [S_SEEN_INS] = "INSERT OR IGNORE INTO seen(id) VALUES (?1)",
    [S_SEEN_PRUNE] = "DELETE FROM seen WHERE seq <= ?1",
    [S_CUST_GET] = "SELECT cid, first_day, last_day, ndays, ninv, monetary, first_spend, last_at "
                   "FROM customers WHERE id = ?1",
    [S_CUST_BY_CID] = "SELECT cid, first_day, last_day, ndays, ninv, monetary, first_spend, "
                      "last_at FROM customers WHERE cid = ?1",
    [S_CUST_INS] = "INSERT INTO customers(id, first_day, last_day, ndays, ninv, monetary, "
                   "first_spend, last_at) VALUES (?1, 0, 0, 0, 0, 0.0, 0.0, NULL)",
    [S_CUST_PUT] = "UPDATE customers SET first_day = ?2, last_day = ?3, ndays = ?4, ninv = ?5, "
                   "monetary = ?6, first_spend = ?7, last_at = ?8 WHERE cid = ?1",
    [S_LINE_INS] = "INSERT OR IGNORE INTO lines(cid, lh, ih, day, at, spend) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_DAY_INS] = "INSERT OR IGNORE INTO days(cid, day, spend) VALUES (?1, ?2, ?3)",
    [S_DAY_ADD] = "UPDATE days SET spend = spend + ?3 WHERE cid = ?1 AND day = ?2 "
                  "RETURNING spend",
    [S_INV_INS] = "INSERT OR IGNORE INTO invoices(cid, ih, day) VALUES (?1, ?2, ?3)",
    [S_INV_MIN] = "UPDATE invoices SET day = ?3 WHERE cid = ?1 AND ih = ?2 AND day > ?3",
    [S_DAYS_OF] = "SELECT day, spend FROM days WHERE cid = ?1",
    [S_NINV_BEFORE] = "SELECT count(*) FROM invoices WHERE cid = ?1 AND day < ?2",
    [S_COUNT] = "SELECT count(*) FROM customers",
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS customers(cid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    " first_day INTEGER NOT NULL, last_day INTEGER NOT NULL, ndays INTEGER NOT NULL,"
    " ninv INTEGER NOT NULL, monetary REAL NOT NULL, first_spend REAL NOT NULL, last_at INTEGER);"
    "CREATE TABLE IF NOT EXISTS days(cid INTEGER NOT NULL, day INTEGER NOT NULL,"
    " spend REAL NOT NULL, PRIMARY KEY(cid, day)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS invoices(cid INTEGER NOT NULL, ih INTEGER NOT NULL,"
    " day INTEGER NOT NULL, PRIMARY KEY(cid, ih)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS lines(cid INTEGER NOT NULL, lh INTEGER NOT NULL,"
    " ih INTEGER NOT NULL, day INTEGER NOT NULL, at INTEGER NOT NULL, spend REAL NOT NULL,"
    " PRIMARY KEY(cid, lh)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS seen(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE);";

struct state_store {
    sqlite3 *db;
    sqlite3_stmt *s[S_N];
    state_options opt;
    char *cancel_prefix; /* owned copy */
    char *path;
    int32_t snapshot_day;
};

/* One customer's aggregates, as in its row. */
typedef struct {
    int64_t cid;
    int32_t first_day, last_day;
    int64_t ndays, ninv;
    double monetary, first_spend;
    int64_t last_at; /* INT64_MIN: none */
} cust_row;

void state_default_options(state_options *o)
{
    o->synchronous = STATE_SYNC_FULL;
    o->seen_ids_max = 10000000;
    o->cancel_prefix = "C";
    o->max_pages = 0;
    o->cache_mb = 256;
}

const char *state_check_options(const state_options *o, char *buf, size_t len)
{
    if (o->synchronous != STATE_SYNC_FULL && o->synchronous != STATE_SYNC_NORMAL)
        snprintf(buf, len, "synchronous must be full or normal");
    else if (o->seen_ids_max < 1000 || o->seen_ids_max > (uint64_t)1 << 40)
        snprintf(buf, len, "seen_ids_max must be from 1000 to 2^40");
    else if (o->cache_mb < 1 || o->cache_mb > 1 << 20)
        snprintf(buf, len, "cache_mb must be from 1 to 1048576");
    else if (o->max_pages > (uint64_t)INT32_MAX * 2)
        snprintf(buf, len, "max_pages must be at most 2^32 - 2 (SQLite's limit)");
    else
        return NULL;
    return buf;
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
    };
    return (unsigned)r < STATE_NREASONS ? names[r] : "unknown";
}

/* ---- time ---------------------------------------------------------- */

static int two(const char *s, int *v)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return 0;
    *v = (s[0] - '0') * 10 + (s[1] - '0');
    return 1;
}

/* Unix seconds and nanoseconds of an event time (state_parse_time). */
static int parse_time(const char *s, int64_t *secs, int32_t *nanos)
{
    size_t len = strlen(s);
    if (len < 10 || s[4] != '-' || s[7] != '-')
        return 0;
    int32_t day = date_parse(s, 10);
    if (day == DATE_NONE)
        return 0;
    int hh = 0, mm = 0, ss = 0;
    int32_t ns = 0;
    int64_t off = 0;
    size_t i = 10;
    if (i < len) {
        if ((s[i] != 'T' && s[i] != 't' && s[i] != ' ') || len < i + 6 || !two(s + i + 1, &hh) ||
            s[i + 3] != ':' || !two(s + i + 4, &mm))
            return 0;
        i += 6;
        if (i < len && s[i] == ':') {
            if (len < i + 3 || !two(s + i + 1, &ss))
                return 0;
            i += 3;
            if (i < len && s[i] == '.') {
                int nd = 0;
                for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nd++)
                    if (nd < 9)
                        ns = ns * 10 + (s[i] - '0');
                if (nd == 0)
                    return 0;
                for (; nd < 9; nd++)
                    ns *= 10;
            }
        }
        if (hh > 23 || mm > 59 || ss > 60)
            return 0;
        if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
            i++;
        } else if (i < len && (s[i] == '+' || s[i] == '-')) {
            int oh, om;
            if (len != i + 6 || !two(s + i + 1, &oh) || s[i + 3] != ':' || !two(s + i + 4, &om) ||
                oh > 23 || om > 59)
                return 0;
            off = (s[i] == '+' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60);
            i += 6;
        }
        if (i != len)
            return 0;
    }
    *secs = (int64_t)day * 86400 + hh * 3600 + mm * 60 + ss - off;
    *nanos = ns;
    return 1;
}

int state_parse_time(const char *s, int64_t *unix_s)
{
    int32_t ns;
    return s && parse_time(s, unix_s, &ns);
}

static int32_t day_of(int64_t secs)
{
    int64_t d = secs / 86400;
    if (secs % 86400 < 0)
        d--;
    return (int32_t)d;
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

static int bind_id(sqlite3_stmt *q, int k, const char *s, size_t len)
{
    return sqlite3_bind_text(q, k, s, (int)len, SQLITE_STATIC);
}

static void rollback(state_store *st)
{
    if (st->db && !sqlite3_get_autocommit(st->db))
        (void)run(st->s[S_ROLLBACK]);
}

/* Read a customers row at the current step of q into *c. */
static void read_row(sqlite3_stmt *q, cust_row *c)
{
    c->cid = sqlite3_column_int64(q, 0);
    c->first_day = sqlite3_column_int(q, 1);
    c->last_day = sqlite3_column_int(q, 2);
    c->ndays = sqlite3_column_int64(q, 3);
    c->ninv = sqlite3_column_int64(q, 4);
    c->monetary = sqlite3_column_double(q, 5);
    c->first_spend = sqlite3_column_double(q, 6);
    c->last_at = sqlite3_column_type(q, 7) == SQLITE_NULL ? INT64_MIN : sqlite3_column_int64(q, 7);
}

/* The row of customer id (len bytes), created empty when absent (create).
 * Returns SQLITE_OK, SQLITE_NOTFOUND (absent, !create) or an error. */
static int cust_get(state_store *st, const char *id, size_t len, int create, cust_row *c)
{
    sqlite3_stmt *q = st->s[S_CUST_GET];
    bind_id(q, 1, id, len);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        read_row(q, c);
        sqlite3_reset(q);
        return SQLITE_OK;
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return rc;
    if (!create)
        return SQLITE_NOTFOUND;
    q = st->s[S_CUST_INS];
    bind_id(q, 1, id, len);
    if ((rc = run(q)) != SQLITE_OK)
        return rc;
    memset(c, 0, sizeof *c);
    c->cid = sqlite3_last_insert_rowid(st->db);
    c->last_at = INT64_MIN;
    return SQLITE_OK;
}

static int cust_put(state_store *st, const cust_row *c)
{
    sqlite3_stmt *q = st->s[S_CUST_PUT];
    sqlite3_bind_int64(q, 1, c->cid);
    sqlite3_bind_int(q, 2, c->first_day);
    sqlite3_bind_int(q, 3, c->last_day);
    sqlite3_bind_int64(q, 4, c->ndays);
    sqlite3_bind_int64(q, 5, c->ninv);
    sqlite3_bind_double(q, 6, c->monetary);
    sqlite3_bind_double(q, 7, c->first_spend);
    if (c->last_at == INT64_MIN)
        sqlite3_bind_null(q, 8);
    else
        sqlite3_bind_int64(q, 8, c->last_at);
    return run(q);
}

/* Add one purchase line (invoice hash ih, day, spend, event time at or
 * INT64_MIN) to the customer's days, invoices and aggregates in *c; the
 * caller writes *c back. The same fold as txn_read's, so the features
 * agree: a day's spend sums its lines, an invoice is dated by its
 * earliest line. */
static int add_purchase(state_store *st, cust_row *c, uint64_t ih, int32_t day, double spend,
                        int64_t at)
{
    sqlite3_stmt *q = st->s[S_DAY_INS];
    sqlite3_bind_int64(q, 1, c->cid);
    sqlite3_bind_int(q, 2, day);
    sqlite3_bind_double(q, 3, spend);
    int rc = run(q);
    if (rc != SQLITE_OK)
        return rc;
    int new_day = sqlite3_changes(st->db) > 0;
    double day_spend = spend;
    if (!new_day) {
        q = st->s[S_DAY_ADD];
        sqlite3_bind_int64(q, 1, c->cid);
        sqlite3_bind_int(q, 2, day);
        sqlite3_bind_double(q, 3, spend);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            day_spend = sqlite3_column_double(q, 0);
        sqlite3_reset(q);
        if (rc != SQLITE_ROW)
            return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
    }
    q = st->s[S_INV_INS];
    sqlite3_bind_int64(q, 1, c->cid);
    sqlite3_bind_int64(q, 2, (int64_t)ih);
    sqlite3_bind_int(q, 3, day);
    if ((rc = run(q)) != SQLITE_OK)
        return rc;
    if (sqlite3_changes(st->db) > 0) {
        c->ninv++;
    } else {
        q = st->s[S_INV_MIN];
        sqlite3_bind_int64(q, 1, c->cid);
        sqlite3_bind_int64(q, 2, (int64_t)ih);
        sqlite3_bind_int(q, 3, day);
        if ((rc = run(q)) != SQLITE_OK)
            return rc;
    }
    if (c->ndays == 0 || day < c->first_day) {
        c->first_day = day;
        c->first_spend = day_spend;
    } else if (day == c->first_day) {
        c->first_spend = day_spend;
    }
    if (c->ndays == 0 || day > c->last_day)
        c->last_day = day;
    c->ndays += new_day;
    c->monetary += spend;
    if (at > c->last_at)
        c->last_at = at;
    return SQLITE_OK;
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

/* ---- open / close -------------------------------------------------- */

void state_close(state_store *st)
{
    if (!st)
        return;
    for (int k = 0; k < S_N; k++)
        sqlite3_finalize(st->s[k]);
    if (st->db) {
        /* Fold the WAL into the file so the next open starts small; a
         * failure here loses nothing (the WAL stays and is replayed). */
        sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sqlite3_close(st->db);
    }
    free(st->cancel_prefix);
    free(st->path);
    free(st);
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

/* Open st->path with st->opt: pragmas, schema, statements, meta. On
 * failure the connection is closed again. */
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
    /* The hot pages of a few million customers stay in memory; the WAL is
     * folded into the file every ~40 MB rather than every 4 MB, so fewer
     * checkpoints (each an fsync of the file) interrupt the batches. */
    snprintf(sql, sizeof sql, "PRAGMA cache_size=-%llu",
             (unsigned long long)(opt->cache_mb ? opt->cache_mb : 1) * 1024);
    if ((rc = exec_pragma(st, sql, NULL, 0)) != SQLITE_OK ||
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
    st->snapshot_day = DATE_NONE;
    rc = meta_get_int(st, "snapshot_day", &v);
    if (rc == SQLITE_OK)
        st->snapshot_day = (int32_t)v;
    else if (rc != SQLITE_NOTFOUND)
        goto sqlerr;
    return RFM_OK;
sqlerr:
    s = sqlfail(st, rc, "open", err, errlen);
    disconnect(st);
    return s;
}

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
    st->opt = *opt;
    st->path = strdup(path);
    st->cancel_prefix = strdup(opt->cancel_prefix ? opt->cancel_prefix : "");
    st->opt.cancel_prefix = st->cancel_prefix;
    st->snapshot_day = DATE_NONE;
    if (!st->path || !st->cancel_prefix) {
        state_close(st);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    rfm_status s = connect(st, err, errlen);
    if (s != RFM_OK) {
        state_close(st);
        return s;
    }
    *out = st;
    return RFM_OK;
}

/* After a failed write: roll back, and when the failure came from the
 * disk, open the connection again so that it reads the file and its log
 * as they are (a connection whose log write failed can keep a stale view
 * of the log). A failed reconnect leaves st->db NULL: later calls answer
 * RFM_EIO until the store is opened again. */
/* A store whose reconnect failed tries again at its next call. */
static rfm_status ready(state_store *st, char *err, size_t errlen)
{
    return st->db ? RFM_OK : connect(st, err, errlen);
}

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

int32_t state_snapshot_day(const state_store *st) { return st->snapshot_day; }

/* ---- seed ---------------------------------------------------------- */

typedef struct {
    state_store *st;
    int64_t *cid;  /* per training customer */
    cust_row *agg; /* per training customer */
    int rc;
} seed_ctx;

static int seed_day(void *u, size_t c, int32_t day, double spend)
{
    seed_ctx *x = u;
    sqlite3_stmt *q = x->st->s[S_DAY_INS];
    sqlite3_bind_int64(q, 1, x->cid[c]);
    sqlite3_bind_int(q, 2, day);
    sqlite3_bind_double(q, 3, spend);
    if ((x->rc = run(q)) != SQLITE_OK)
        return 1;
    cust_row *a = &x->agg[c];
    if (a->ndays == 0 || day < a->first_day) {
        a->first_day = day;
        a->first_spend = spend;
    }
    if (a->ndays == 0 || day > a->last_day)
        a->last_day = day;
    a->ndays++;
    a->monetary += spend;
    return 0;
}

static int seed_invoice(void *u, size_t c, uint64_t ih, int32_t day)
{
    seed_ctx *x = u;
    sqlite3_stmt *q = x->st->s[S_INV_INS];
    sqlite3_bind_int64(q, 1, x->cid[c]);
    sqlite3_bind_int64(q, 2, (int64_t)ih);
    sqlite3_bind_int(q, 3, day);
    if ((x->rc = run(q)) != SQLITE_OK)
        return 1;
    x->agg[c].ninv++;
    return 0;
}

/* Apply again every kept event line (those on or after the snapshot). */
static int reapply_lines(state_store *st)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db, "SELECT cid, ih, day, at, spend FROM lines ORDER BY cid",
                                -1, &q, NULL);
    if (rc != SQLITE_OK)
        return rc;
    cust_row c = {0};
    int have = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t cid = sqlite3_column_int64(q, 0);
        if (!have || cid != c.cid) {
            if (have && (rc = cust_put(st, &c)) != SQLITE_OK)
                break;
            sqlite3_stmt *g = st->s[S_CUST_BY_CID];
            sqlite3_bind_int64(g, 1, cid);
            rc = sqlite3_step(g);
            if (rc == SQLITE_ROW)
                read_row(g, &c);
            sqlite3_reset(g);
            if (rc != SQLITE_ROW) {
                rc = rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
                break;
            }
            have = 1;
        }
        rc = add_purchase(st, &c, (uint64_t)sqlite3_column_int64(q, 1), sqlite3_column_int(q, 2),
                          sqlite3_column_double(q, 4), sqlite3_column_int64(q, 3));
        if (rc != SQLITE_OK)
            break;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return rc;
    return have ? cust_put(st, &c) : SQLITE_OK;
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
    size_t nc = txn_ncustomers(d);
    seed_ctx x = {st, calloc(nc + 1, sizeof *x.cid), calloc(nc + 1, sizeof *x.agg), SQLITE_OK};
    if (!x.cid || !x.agg) {
        free(x.cid);
        free(x.agg);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory seeding %zu customers", nc);
    }
    rfm_status s = RFM_OK;
    int rc = run(st->s[S_BEGIN]);
    if (rc != SQLITE_OK)
        goto sqlerr;
    /* Purchases before the snapshot are the training run's now; the rest
     * are events it has not seen. Customer rows stay (lines name them by
     * cid); their aggregates start again. */
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM lines WHERE day < %d", (int)snap);
    if ((rc = sqlite3_exec(st->db,
                           "DELETE FROM days; DELETE FROM invoices; UPDATE customers SET "
                           "first_day = 0, last_day = 0, ndays = 0, ninv = 0, monetary = 0.0, "
                           "first_spend = 0.0",
                           NULL, NULL, NULL)) != SQLITE_OK ||
        (rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL)) != SQLITE_OK)
        goto sqlerr;
    for (size_t i = 0; i < nc; i++) {
        const char *id = txn_customer_id(d, i);
        cust_row c;
        if ((rc = cust_get(st, id, strlen(id), 1, &c)) != SQLITE_OK)
            goto sqlerr;
        x.cid[i] = c.cid;
        x.agg[i] = c;
        x.agg[i].ndays = x.agg[i].ninv = 0;
        x.agg[i].monetary = x.agg[i].first_spend = 0;
    }
    if (txn_each_purchase(d, seed_day, seed_invoice, &x) != 0) {
        rc = x.rc;
        goto sqlerr;
    }
    for (size_t i = 0; i < nc; i++)
        if ((rc = cust_put(st, &x.agg[i])) != SQLITE_OK)
            goto sqlerr;
    if ((rc = reapply_lines(st)) != SQLITE_OK)
        goto sqlerr;
    if ((rc = sqlite3_exec(st->db, "DELETE FROM customers WHERE ndays = 0", NULL, NULL, NULL)) !=
            SQLITE_OK ||
        (rc = meta_put_int(st, "snapshot_day", snap)) != SQLITE_OK ||
        (rc = run(st->s[S_COMMIT])) != SQLITE_OK)
        goto sqlerr;
    st->snapshot_day = snap;
    if (seeded)
        *seeded = 1;
    free(x.cid);
    free(x.agg);
    return RFM_OK;
sqlerr:
    s = sqlfail(st, rc, "seed", err, errlen);
    recover(st, rc);
    free(x.cid);
    free(x.agg);
    return s;
}

/* ---- apply --------------------------------------------------------- */

static int too_long(const char *s) { return s && strnlen(s, STATE_ID_MAX + 1) > STATE_ID_MAX; }

/* The cleaning of one event, shared with txn_read (txn_classify). Fills the
 * line's customer id, day, time, invoice hash, line hash and spend. */
typedef struct {
    const char *cid;
    size_t cidlen;
    int32_t day;
    int64_t at;
    uint64_t ih, lh;
    double spend;
} event_line;

static state_result classify(const state_store *st, const state_event *e, event_line *l)
{
    state_result r = {STATE_REJECTED, STATE_OK};
    if (!e->event_id || !e->event_id[0] || too_long(e->event_id)) {
        r.reason = STATE_BAD_EVENT_ID;
        return r;
    }
    if (too_long(e->customer_id)) {
        r.reason = STATE_MISSING_CUSTOMER;
        return r;
    }
    if (too_long(e->invoice) || too_long(e->product)) {
        r.reason = STATE_BAD_TEXT;
        return r;
    }
    int32_t nanos = 0;
    int32_t day = DATE_NONE;
    if (e->time && parse_time(e->time, &l->at, &nanos))
        day = day_of(l->at);
    double qty = e->has_amount ? e->amount : e->quantity; /* txn_classify: amount as qty */
    double price = e->has_amount ? 1.0 : e->price;
    const char *inv = e->invoice ? e->invoice : "";
    const char *cid = e->customer_id ? e->customer_id : "";
    txn_line tl;
    const char *cp = st->cancel_prefix ? st->cancel_prefix : "";
    txn_reason why = txn_classify(cid, strlen(cid), inv[0] ? inv : NULL, strlen(inv), cp,
                                  strlen(cp), 1, qty, price, e->has_amount, day, &tl);
    if (why == TXN_NREASONS && tl.spend < 0)
        why = TXN_RETURN; /* a return: counted and left out, as rfm-train does by default */
    switch (why) {
    case TXN_MISSING_ID: r.reason = STATE_MISSING_CUSTOMER; return r;
    case TXN_BAD_NUMBER: r.reason = STATE_BAD_NUMBER; return r;
    case TXN_BAD_DATE: r.reason = STATE_BAD_TIME; return r;
    case TXN_CANCELLED:
        r.outcome = STATE_IGNORED;
        r.reason = STATE_CANCELLED;
        return r;
    case TXN_NONPOS_QUANTITY:
    case TXN_ZERO_AMOUNT:
    case TXN_RETURN:
        r.outcome = STATE_IGNORED;
        r.reason = STATE_NONPOS_QUANTITY;
        return r;
    case TXN_NONPOS_PRICE:
        r.outcome = STATE_IGNORED;
        r.reason = STATE_NONPOS_PRICE;
        return r;
    default: break;
    }
    l->cid = tl.cid;
    l->cidlen = tl.cidlen;
    l->day = day;
    l->spend = tl.spend;
    /* Without an invoice, the customer's calendar day is the invoice, keyed
     * as rfm-train keys it (txn_invoice_key), so seeded and live purchases
     * of one day are one purchase. */
    l->ih = txn_invoice_key(inv[0] ? inv : NULL, strlen(inv), tl.cid, tl.cidlen, day);
    /* The line: what the trainer would compare of it (customer apart, which
     * keys the table): invoice, time, product, quantity, price. */
    struct {
        uint64_t ih;
        int64_t at;
        int64_t nanos;
        double qty, price;
    } key = {l->ih, l->at, nanos, e->has_amount ? 1.0 : qty, e->has_amount ? e->amount : price};
    uint64_t h = hash_bytes(&key, sizeof key, 0x11e5);
    if (e->product)
        h = hash_mix(h ^ hash_bytes(e->product, strlen(e->product), 0x9a0d));
    l->lh = h;
    r.outcome = STATE_APPLIED;
    return r;
}

rfm_status state_apply(state_store *st, const state_event *ev, size_t n, state_result *results,
                       char *err, size_t errlen)
{
    int rc = run(st->s[S_BEGIN]);
    if (rc != SQLITE_OK)
        return sqlfail(st, rc, "begin", err, errlen);
    int64_t last_seq = -1;
    for (size_t i = 0; i < n; i++) {
        const state_event *e = &ev[i];
        event_line l;
        state_result r = classify(st, e, &l);
        results[i] = r;
        if (r.outcome == STATE_REJECTED)
            continue;
        sqlite3_stmt *q = st->s[S_SEEN_INS];
        sqlite3_bind_text(q, 1, e->event_id, -1, SQLITE_STATIC);
        if ((rc = run(q)) != SQLITE_OK)
            goto fail;
        if (sqlite3_changes(st->db) == 0) {
            results[i] = (state_result){STATE_DUPLICATE, STATE_OK};
            continue;
        }
        last_seq = sqlite3_last_insert_rowid(st->db);
        if (r.outcome == STATE_IGNORED)
            continue;
        cust_row c;
        if ((rc = cust_get(st, l.cid, l.cidlen, 1, &c)) != SQLITE_OK)
            goto fail;
        q = st->s[S_LINE_INS];
        sqlite3_bind_int64(q, 1, c.cid);
        sqlite3_bind_int64(q, 2, (int64_t)l.lh);
        sqlite3_bind_int64(q, 3, (int64_t)l.ih);
        sqlite3_bind_int(q, 4, l.day);
        sqlite3_bind_int64(q, 5, l.at);
        sqlite3_bind_double(q, 6, l.spend);
        if ((rc = run(q)) != SQLITE_OK)
            goto fail;
        if (sqlite3_changes(st->db) == 0) {
            /* A repeated line is one of an existing customer, whose row
             * cust_get did not create. */
            results[i] = (state_result){STATE_IGNORED, STATE_REPEATED_LINE};
            continue;
        }
        if ((rc = add_purchase(st, &c, l.ih, l.day, l.spend, l.at)) != SQLITE_OK ||
            (rc = cust_put(st, &c)) != SQLITE_OK)
            goto fail;
    }
    if (last_seq > (int64_t)st->opt.seen_ids_max) {
        sqlite3_stmt *q = st->s[S_SEEN_PRUNE];
        sqlite3_bind_int64(q, 1, last_seq - (int64_t)st->opt.seen_ids_max);
        if ((rc = run(q)) != SQLITE_OK)
            goto fail;
    }
    if ((rc = run(st->s[S_COMMIT])) != SQLITE_OK)
        goto fail;
    return RFM_OK;
fail:;
    rfm_status s = sqlfail(st, rc, "apply", err, errlen);
    recover(st, rc);
    return s;
}

/* ---- read ---------------------------------------------------------- */

rfm_status state_get(state_store *st, const char *customer_id, int32_t asof, state_customer *out,
                     char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->last_event_at = INT64_MIN;
    rfm_status s0 = ready(st, err, errlen);
    if (s0 != RFM_OK)
        return s0;
    txn_line tl;
    if (!customer_id || txn_classify(customer_id, strlen(customer_id), NULL, 0, "", 0, 1, 1, 1, 0,
                                     0, &tl) != TXN_NREASONS)
        return rfm_fail(err, errlen, RFM_ENOTFOUND, "no customer id");
    cust_row c;
    int rc = cust_get(st, tl.cid, tl.cidlen, 0, &c);
    if (rc == SQLITE_NOTFOUND)
        return rfm_fail(err, errlen, RFM_ENOTFOUND, "customer %.*s: not in the state",
                        (int)(tl.cidlen > 200 ? 200 : tl.cidlen), tl.cid);
    if (rc != SQLITE_OK)
        return sqlfail(st, rc, "get", err, errlen);
    out->last_event_at = c.last_at;
    txn_features *f = &out->f;
    double first, last, ndays, first_spend;
    if (asof > c.last_day) {
        /* Every purchase (and so every invoice) is before the day. */
        first = c.first_day;
        last = c.last_day;
        ndays = (double)c.ndays;
        first_spend = c.first_spend;
        f->monetary = c.monetary;
        f->frequency = (double)c.ninv;
    } else {
        /* Inside the history: the purchases themselves, as txn_features_asof. */
        sqlite3_stmt *q = st->s[S_DAYS_OF];
        sqlite3_bind_int64(q, 1, c.cid);
        first = INT32_MAX;
        last = INT32_MIN;
        ndays = 0;
        first_spend = 0;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            int32_t day = sqlite3_column_int(q, 0);
            double spend = sqlite3_column_double(q, 1);
            if (day >= asof) {
                f->future_days += 1;
                f->future_spend += spend;
                continue;
            }
            f->monetary += spend;
            ndays += 1;
            if (day < first) {
                first = day;
                first_spend = spend;
            }
            if (day > last)
                last = day;
        }
        sqlite3_reset(q);
        if (rc != SQLITE_DONE)
            return sqlfail(st, rc, "get", err, errlen);
        q = st->s[S_NINV_BEFORE];
        sqlite3_bind_int64(q, 1, c.cid);
        sqlite3_bind_int(q, 2, asof);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            f->frequency = (double)sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
        if (rc != SQLITE_ROW)
            return sqlfail(st, rc, "get", err, errlen);
        if (ndays == 0) {
            double fd = f->future_days, fs = f->future_spend;
            memset(f, 0, sizeof *f);
            f->future_days = fd;
            f->future_spend = fs;
            return RFM_OK;
        }
    }
    txn_features_finish(f, asof, first, last, ndays, f->monetary, first_spend, 0.0);
    return RFM_OK;
}

rfm_status state_count(state_store *st, uint64_t *customers, char *err, size_t errlen)
{
    rfm_status s0 = ready(st, err, errlen);
    if (s0 != RFM_OK)
        return s0;
    sqlite3_stmt *q = st->s[S_COUNT];
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *customers = (uint64_t)sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? RFM_OK : sqlfail(st, rc, "count", err, errlen);
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

/* ---- feed branch: a minimal walk over the customer ids ------------------
 * (the state branch adds a fuller state_each; this is what the feed's sweep
 * needs until then) */
rfm_status state_ids(state_store *st, const char *after, size_t max,
                     void (*fn)(void *ctx, const char *id), void *ctx, size_t *n, char *err,
                     size_t errlen)
{
    *n = 0;
    rfm_status s0 = ready(st, err, errlen);
    if (s0 != RFM_OK)
        return s0;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db, "SELECT id FROM customers WHERE id > ? ORDER BY id LIMIT ?",
                                -1, &q, NULL);
    if (rc != SQLITE_OK)
        return sqlfail(st, rc, "ids", err, errlen);
    sqlite3_bind_text(q, 1, after ? after : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)max);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        fn(ctx, (const char *)sqlite3_column_text(q, 0));
        (*n)++;
    }
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? RFM_OK : sqlfail(st, rc, "ids", err, errlen);
}
