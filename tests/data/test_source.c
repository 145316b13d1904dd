/* test_source.c - core/data/source.c and the byte sources of csv.c:
 * standard input (a pipe, plain and gzip), a producer callback, SQLite
 * queries written as CSV, and the checks of a source string. PostgreSQL
 * needs a running server: tests/integration/test_sources.c starts one. */
#include "testutil.h"

#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "csv.h"
#include "sha256.h"
#include "source.h"

/* Every record of r as "f1|f2|...\n" text, and the reader's sha256. */
static rfm_status slurp(csv_reader *r, char *out, size_t cap, char hex[65], char *err)
{
    const csv_field *f;
    size_t n, len = 0;
    rfm_status st;
    out[0] = '\0';
    while ((st = csv_next(r, &f, &n, err, RFM_ERRLEN)) == RFM_OK && n > 0)
        for (size_t i = 0; i < n; i++)
            len += (size_t)snprintf(out + len, cap - len, "%s%c", f[i].s, i + 1 < n ? '|' : '\n');
    if (st == RFM_OK && hex) {
        uint8_t d[32];
        csv_sha256(r, d);
        sha256_hex(d, hex);
    }
    return st;
}

static void sha_of(const void *p, size_t n, char hex[65])
{
    uint8_t d[32];
    sha256_of(p, n, d, hex);
}

static void test_check(void **state)
{
    (void)state;
    char buf[256];
    const char *key;
    assert_null(source_check("data/x.csv", NULL, &key, buf, sizeof buf));
    assert_null(source_check("-", NULL, &key, buf, sizeof buf));
    assert_null(source_check("postgresql://u@h/db", "SELECT 1", &key, buf, sizeof buf));
    assert_null(
        source_check("postgres://u@h:5433/db?sslmode=require", "SELECT 1", &key, buf, sizeof buf));
    assert_null(source_check("sqlite:///tmp/a.db", "SELECT 1", &key, buf, sizeof buf));
    /* A query without a database, a database without a query. */
    assert_non_null(source_check("data/x.csv", "SELECT 1", &key, buf, sizeof buf));
    assert_string_equal(key, "query");
    assert_non_null(source_check("-", "SELECT 1", &key, buf, sizeof buf));
    assert_string_equal(key, "query");
    assert_non_null(source_check("postgresql://u@h/db", NULL, &key, buf, sizeof buf));
    assert_string_equal(key, "query");
    assert_non_null(strstr(buf, "required"));
    assert_non_null(source_check("sqlite:///a.db", "  \n", &key, buf, sizeof buf));
    assert_string_equal(key, "query");
    /* Passwords, in the user part or as a parameter, never in the string;
     * a colon elsewhere (a port) is fine. */
    assert_non_null(source_check("postgresql://u:secret@h/db", "SELECT 1", &key, buf, sizeof buf));
    assert_string_equal(key, "transactions");
    assert_non_null(strstr(buf, "PGPASSWORD"));
    assert_null(strstr(buf, "secret"));
    assert_non_null(source_check("postgresql://u@h/db?sslmode=disable&password=secret", "SELECT 1",
                                 &key, buf, sizeof buf));
    assert_non_null(source_check("postgresql:///db?password=x", "SELECT 1", &key, buf, sizeof buf));
    assert_null(source_check("postgresql://u@h:5432/db", "SELECT 1", &key, buf, sizeof buf));
    assert_non_null(source_check("sqlite://", "SELECT 1", &key, buf, sizeof buf));

    assert_int_equal(source_kind_of("-"), SOURCE_STDIN);
    assert_int_equal(source_kind_of("postgres://h/d"), SOURCE_POSTGRESQL);
    assert_int_equal(source_kind_of("sqlite:///x"), SOURCE_SQLITE);
    assert_int_equal(source_kind_of("./-"), SOURCE_FILE);

    /* source_open refuses the same before connecting, without the password. */
    csv_reader *r;
    char err[RFM_ERRLEN];
    assert_int_equal(
        source_open("postgresql://u:hunter2@127.0.0.1:1/db", "SELECT 1", &r, err, sizeof err),
        RFM_EINVAL);
    assert_null(r);
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(source_open("sqlite:///tmp/x.db", NULL, &r, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "sqlite:///tmp/x.db: data.query"));
}

static const char TEXT[] = "InvoiceNo,CustomerID,Note\n1,17850,\"a, b\"\n2,,\"say \"\"hi\"\"\"\n"
                           "3,12000,\"two\nlines\"\n";

/* Write data to a pipe from a child in small pieces; read it as stdin would be. */
static void read_pipe(const void *data, size_t n, char *out, size_t cap, char hex[65])
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        for (size_t i = 0; i < n; i += 7) { /* the reader must gather short reads */
            if (write(fds[1], (const char *)data + i, n - i < 7 ? n - i : 7) < 0)
                _exit(1);
            if (i % 700 == 0)
                usleep(100);
        }
        _exit(0);
    }
    close(fds[1]);
    csv_reader *r;
    char err[RFM_ERRLEN];
    assert_int_equal(csv_open_fd(fds[0], "stdin", &r, err, sizeof err), RFM_OK);
    rfm_status st = slurp(r, out, cap, hex, err);
    if (st != RFM_OK)
        fail_msg("%s", err);
    assert_int_equal(csv_bytes(r), n);
    csv_close(r);
    close(fds[0]);
    int ws;
    waitpid(pid, &ws, 0);
}

static void test_stdin_pipe(void **state)
{
    (void)state;
    char want[1024], got[1024], hex[65], hexw[65], err[RFM_ERRLEN];
    csv_reader *r;
    assert_int_equal(csv_open_mem(TEXT, strlen(TEXT), "m", &r, err, sizeof err), RFM_OK);
    assert_int_equal(slurp(r, want, sizeof want, NULL, err), RFM_OK);
    csv_close(r);
    assert_string_equal(want, "InvoiceNo|CustomerID|Note\n1|17850|a, b\n2||say \"hi\"\n"
                              "3|12000|two\nlines\n");

    read_pipe(TEXT, strlen(TEXT), got, sizeof got, hex);
    assert_string_equal(got, want);
    sha_of(TEXT, strlen(TEXT), hexw);
    assert_string_equal(hex, hexw);

    /* gzip by its magic, through the same pipe; the sha256 is of the raw bytes. */
    uint8_t gz[1024];
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)TEXT;
    zs.avail_in = (uInt)strlen(TEXT);
    zs.next_out = gz;
    zs.avail_out = sizeof gz;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t gzn = sizeof gz - zs.avail_out;
    deflateEnd(&zs);
    read_pipe(gz, gzn, got, sizeof got, hex);
    assert_string_equal(got, want);
    sha_of(gz, gzn, hexw);
    assert_string_equal(hex, hexw);
}

/* A producer that gives two lines, then fails. */
typedef struct {
    int calls, closed;
} prod;

static rfm_status failing_read(void *ctx, uint8_t *buf, size_t cap, size_t *got, char *err,
                               size_t errlen)
{
    prod *p = ctx;
    if (p->calls++ == 0) {
        memcpy(buf, "a,b\n1,2\n", 8);
        *got = 8 < cap ? 8 : cap;
        return RFM_OK;
    }
    *got = 0;
    return rfm_fail(err, errlen, RFM_EIO, "db://x: connection lost");
}

static void close_prod(void *ctx) { ((prod *)ctx)->closed++; }

static void test_producer_error(void **state)
{
    (void)state;
    prod p = {0, 0};
    csv_reader *r;
    char err[RFM_ERRLEN], out[256];
    assert_int_equal(csv_open_source(failing_read, close_prod, &p, "db://x", &r, err, sizeof err),
                     RFM_OK);
    assert_int_equal(slurp(r, out, sizeof out, NULL, err), RFM_EIO);
    assert_string_equal(err, "db://x: connection lost");
    csv_close(r);
    assert_int_equal(p.closed, 1);
}

static char dbpath[64], url[128];

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *e = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK)
        fail_msg("%s: %s", sql, e);
}

static int setup_db(void **state)
{
    (void)state;
    snprintf(dbpath, sizeof dbpath, "/tmp/rfmtest_src_XXXXXX");
    int fd = mkstemp(dbpath);
    if (fd < 0)
        return -1;
    close(fd);
    snprintf(url, sizeof url, "sqlite://%s", dbpath);
    sqlite3 *db;
    if (sqlite3_open(dbpath, &db) != SQLITE_OK)
        return -1;
    exec_sql(db, "CREATE TABLE t (inv TEXT, cust INTEGER, price REAL, note TEXT);"
                 "INSERT INTO t VALUES ('1', 17850, 2.55, 'a, b'), ('2', NULL, 0.1, 'say \"hi\"'),"
                 " ('3', 9007199254740993, 1e300, 'two' || char(10) || 'lines'),"
                 " ('4', -1, 3.0, '');");
    /* Enough rows to cross the reader's 256 KiB blocks several times. */
    exec_sql(db, "CREATE TABLE big (i INTEGER, s TEXT);"
                 "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 50000)"
                 " INSERT INTO big SELECT i, 'row ' || i || ', \"q\"' FROM c;");
    sqlite3_close(db);
    return 0;
}

static int teardown_db(void **state)
{
    (void)state;
    return remove(dbpath);
}

static void test_sqlite(void **state)
{
    (void)state;
    csv_reader *r;
    char err[RFM_ERRLEN], out[4096], hex[65], hexw[65];
    rfm_status st = source_open(url,
                                "SELECT inv AS \"InvoiceNo\", cust, price, note FROM t "
                                "ORDER BY inv;",
                                &r, err, sizeof err);
    if (st != RFM_OK)
        fail_msg("%s", err);
    assert_string_equal(csv_name(r), url);
    assert_int_equal(slurp(r, out, sizeof out, hex, err), RFM_OK);
    csv_close(r);
    /* Header from the column names; NULL empty; integers in full; reals
     * as the shortest text reading back the same; text quoted as needed. */
    assert_string_equal(out, "InvoiceNo|cust|price|note\n1|17850|2.55|a, b\n2||0.1|say \"hi\"\n"
                             "3|9007199254740993|1e+300|two\nlines\n4|-1|3|\n");
    /* The sha256 is of the CSV text streamed. */
    static const char csvtext[] = "InvoiceNo,cust,price,note\n1,17850,2.55,\"a, b\"\n"
                                  "2,,0.1,\"say \"\"hi\"\"\"\n3,9007199254740993,1e+300,\"two\n"
                                  "lines\"\n4,-1,3,\n";
    sha_of(csvtext, strlen(csvtext), hexw);
    assert_string_equal(hex, hexw);

    /* Many rows, across blocks: every one arrives, in order. */
    assert_int_equal(source_open(url, "SELECT i, s FROM big ORDER BY i", &r, err, sizeof err),
                     RFM_OK);
    const csv_field *f;
    size_t n;
    long want = 0;
    while ((st = csv_next(r, &f, &n, err, sizeof err)) == RFM_OK && n > 0) {
        if (want > 0) {
            char s[64];
            snprintf(s, sizeof s, "row %ld, \"q\"", want);
            assert_int_equal(atol(f[0].s), want);
            assert_string_equal(f[1].s, s);
        }
        want++;
    }
    assert_int_equal(st, RFM_OK);
    assert_int_equal(want, 50001);
    csv_close(r);
}

static void test_sqlite_errors(void **state)
{
    (void)state;
    csv_reader *r;
    char err[RFM_ERRLEN];
    assert_int_equal(source_open("sqlite:///nonexistent/x.db", "SELECT 1", &r, err, sizeof err),
                     RFM_EIO);
    assert_null(r);
    assert_non_null(strstr(err, "sqlite:///nonexistent/x.db: cannot open"));
    assert_int_equal(access("/nonexistent/x.db", F_OK), -1); /* not created */

    char want[256];
    assert_int_equal(source_open(url, "SELECT * FROM nope", &r, err, sizeof err), RFM_EINVAL);
    snprintf(want, sizeof want, "%s: data.query: no such table: nope", url);
    assert_string_equal(err, want);
    assert_int_equal(source_open(url, "SELECT 1; DELETE FROM t", &r, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "one statement only"));
    assert_int_equal(source_open(url, "DELETE FROM t", &r, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "no columns"));
    /* Read-only: the DELETE above changed nothing, and an error found
     * while stepping comes from csv_next naming the URL. */
    assert_int_equal(source_open(url, "SELECT count(*) FROM t", &r, err, sizeof err), RFM_OK);
    char out[64];
    assert_int_equal(slurp(r, out, sizeof out, NULL, err), RFM_OK);
    assert_string_equal(out, "count(*)\n4\n");
    csv_close(r);
    assert_int_equal(source_open(url, "SELECT abs(-9223372036854775807 - 1)", &r, err, sizeof err),
                     RFM_OK);
    assert_int_equal(slurp(r, out, sizeof out, NULL, err), RFM_EIO);
    assert_non_null(strstr(err, "query failed while streaming: integer overflow"));
    csv_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),          cmocka_unit_test(test_stdin_pipe),
        cmocka_unit_test(test_producer_error), cmocka_unit_test(test_sqlite),
        cmocka_unit_test(test_sqlite_errors),
    };
    return cmocka_run_group_tests(tests, setup_db, teardown_db);
}
