/* test_sources.c - bin/rfm-train reading the same transactions from a
 * CSV file, from standard input (gzip), from SQLite and from a throwaway
 * PostgreSQL 15 cluster gives the same models byte for byte; the warehouse
 * road (the summary SQL of docs/cltv.md run on that cluster, then
 * --summary) gives the lifetime-value parameters of --transactions.
 *
 * The cluster: initdb in a temporary folder (as `nobody` when the suite
 * runs as root: initdb refuses root), password authentication, TCP on a
 * free port of 127.0.0.1 and its Unix socket in the same folder, so a
 * system cluster (Debian starts one on a normal machine) is neither needed
 * nor touched. A watchdog child stops it and removes the folder when this
 * process ends, however it ends. */
#include "testutil.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "csv.h"
#include "date.h"
#include "modelfile.h"
#include "sha256.h"
#include "sim_clv.h"

#define PASSWORD "s3cret-for-tests"

static char dir[64], pgbin[128], asuser[64], url[128], conninfo[256];
static int port, watchdog_fd = -1;
static pid_t watchdog = -1;

/* Run a shell command; its exit status, its stderr in out. */
static int run(const char *cmd, char *out, size_t cap) { return run_in(dir, cmd, out, cap); }

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = b ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    if (b)
        b[got] = '\0';
    *len = got;
    return b;
}

/* The transactions: customers simulated from BG/NBD and Gamma-Gamma's
 * stories over 2011, an invoice of one to three lines per purchase day,
 * and some lines the cleaning drops (cancellations, no customer). */
static void write_fixture(void)
{
    char path[128], d[11];
    snprintf(path, sizeof path, "%s/tx.csv", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "invoice_no,stock_code,quantity,invoice_ts,unit_price,customer_id\n");
    rfm_rng g;
    rfm_rng_seed(&g, 13);
    int32_t day0 = date_parse("2011-01-01", 10);
    int inv = 500000;
    for (int c = 0; c < 600; c++) {
        double lambda = sim_gamma(&g, 0.9) / 14, p = sim_beta(&g, 1.2, 5);
        double base = exp(2 + 0.6 * rfm_rng_normal(&g));
        double t = (double)rfm_rng_below(&g, 250);
        for (;;) {
            date_format(day0 + (int32_t)t, d);
            int lines = 1 + (int)rfm_rng_below(&g, 3), stock = (int)rfm_rng_below(&g, 40);
            inv++;
            for (int k = 0; k < lines; k++) {
                int cents = (int)(100 * base * (0.5 + rfm_rng_uniform(&g))) + 1;
                fprintf(f, "%d,P%d,%d,%s %02d:%02d:00,%d.%02d,%d\n", inv, stock + k,
                        1 + (int)rfm_rng_below(&g, 4), d, 8 + c % 10, k, cents / 100, cents % 100,
                        10000 + c);
            }
            if (inv % 40 == 0) /* a cancellation of the first line */
                fprintf(f, "C%d,P%d,-1,%s 18:00:00,1.00,%d\n", inv, stock, d, 10000 + c);
            if (inv % 55 == 0) /* a line without a customer */
                fprintf(f, "%d,P99,1,%s 19:00:00,2.00,\n", inv, d);
            if (rfm_rng_uniform(&g) < p)
                break; /* gone */
            t += ceil(-log(1 - rfm_rng_uniform(&g)) / lambda);
            if (t > 364)
                break;
        }
    }
    assert_int_equal(fclose(f), 0);
}

/* config/rfm.yaml with its data section replaced. */
static void write_config(const char *name, const char *transactions, const char *query)
{
    size_t n;
    char *y = slurp("../config/rfm.yaml", &n);
    assert_non_null(y);
    char *a = strstr(y, "\ndata:\n");
    assert_non_null(a);
    char *b = a + 7;
    while (*b && !(b[0] == '\n' && b[1] >= 'a' && b[1] <= 'z'))
        b++;
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f,
            "%.*s\ndata:\n  transactions: %s\n  query: %s\n  columns:\n    invoice: invoice_no\n"
            "    customer_id: customer_id\n    date: invoice_ts\n    quantity: quantity\n"
            "    price: unit_price\n    product: null\n  cancellation_prefix: \"C\"\n%s",
            (int)(a - y), y, transactions, query, b);
    assert_int_equal(fclose(f), 0);
    free(y);
}

static const char QUERY[] = "SELECT invoice_no, stock_code, quantity, invoice_ts, unit_price, "
                            "customer_id FROM transactions ORDER BY line_no";

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        return -1;
    close(s);
    return ntohs(a.sin_port);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Forked before the cluster starts; waits for the end of this process (its
 * pipe closes), then stops the cluster and removes the folder. */
static void start_watchdog(void)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    watchdog = fork();
    assert_true(watchdog >= 0);
    if (watchdog == 0) {
        close(fds[1]);
        char c;
        while (read(fds[0], &c, 1) != 0)
            ;
        sh("%s %s/pg_ctl -D %s/cluster -m immediate stop >/dev/null 2>&1", asuser, pgbin, dir);
        sh("rm -rf '%s'", dir);
        _exit(0);
    }
    close(fds[0]);
    watchdog_fd = fds[1];
}

static void pg_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

/* The fixture into a PostgreSQL table, typed as a shop's database would
 * type it, through COPY FROM STDIN. */
static void load_postgresql(void)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("%s", PQerrorMessage(c));
    pg_ok(c, "CREATE TABLE transactions (line_no bigserial PRIMARY KEY, invoice_no text, "
             "stock_code text, quantity integer, invoice_ts timestamp, unit_price numeric(12,2), "
             "customer_id text)");
    PGresult *r = PQexec(c, "COPY transactions (invoice_no, stock_code, quantity, invoice_ts, "
                            "unit_price, customer_id) FROM STDIN WITH (FORMAT csv, HEADER)");
    assert_int_equal(PQresultStatus(r), PGRES_COPY_IN);
    PQclear(r);
    char path[128];
    size_t n;
    snprintf(path, sizeof path, "%s/tx.csv", dir);
    char *text = slurp(path, &n);
    assert_non_null(text);
    assert_int_equal(PQputCopyData(c, text, (int)n), 1);
    assert_int_equal(PQputCopyEnd(c, NULL), 1);
    free(text);
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("COPY: %s", PQresultErrorMessage(r));
    PQclear(r);
    while ((r = PQgetResult(c)))
        PQclear(r);
    PQfinish(c);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rfmtest_sources_XXXXXX");
    assert_non_null(mkdtemp(dir));
    chmod(dir, 0755);
    write_fixture();
    char out[8192], cmd[1024];
    /* The reference: the CSV file. */
    write_config("cfg_file.yaml", "unused.csv", "null");
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config %s/cfg_file.yaml --transactions %s/tx.csv --models "
             "%s/ref --only segments,cltv",
             dir, dir, dir);
    if (run(cmd, out, sizeof out) != 0)
        fail_msg("reference training: %s", out);

    /* PostgreSQL 15 from Debian's package (make deps). */
    snprintf(pgbin, sizeof pgbin, "/usr/lib/postgresql/15/bin");
    snprintf(cmd, sizeof cmd, "%s/initdb", pgbin);
    if (access(cmd, X_OK) != 0)
        fail_msg("%s not found: PostgreSQL 15 is installed by `make deps` (Debian package "
                 "postgresql)",
                 cmd);
    char pg[128];
    snprintf(pg, sizeof pg, "%s/cluster", dir);
    assert_int_equal(mkdir(pg, 0700), 0);
    snprintf(cmd, sizeof cmd, "%s/pw", dir);
    FILE *f = fopen(cmd, "wb");
    fputs(PASSWORD "\n", f);
    fclose(f);
    if (geteuid() == 0) { /* initdb and the server refuse to run as root */
        struct passwd *pw = getpwnam("nobody");
        assert_non_null(pw);
        assert_int_equal(chown(pg, pw->pw_uid, pw->pw_gid), 0);
        assert_int_equal(chown(cmd, pw->pw_uid, pw->pw_gid), 0);
        assert_int_equal(chown(dir, pw->pw_uid, pw->pw_gid), 0); /* for the socket and log */
        snprintf(asuser, sizeof asuser, "runuser -u nobody --");
    }
    if (sh("%s %s/initdb -D %s -U rfm --pwfile=%s/pw -A scram-sha-256 --no-locale -E UTF8 "
           "--no-sync >%s/initdb.log 2>&1",
           asuser, pgbin, pg, dir, dir) != 0)
        fail_msg("initdb failed: see %s/initdb.log", dir);
    port = free_port();
    assert_true(port > 0);
    start_watchdog();
    if (sh("%s %s/pg_ctl -D %s -l %s/pg.log -w -t 30 -o \"-p %d -k %s -c "
           "listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null",
           asuser, pgbin, pg, dir, port, dir) != 0)
        fail_msg("pg_ctl start failed: see %s/pg.log", dir);
    snprintf(url, sizeof url, "postgresql://rfm@127.0.0.1:%d/postgres", port);
    snprintf(conninfo, sizeof conninfo, "%s?password=%s", url, PASSWORD);
    load_postgresql();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (watchdog > 0) { /* it stops the cluster and removes the folder */
        close(watchdog_fd);
        int ws;
        waitpid(watchdog, &ws, 0);
        return 0;
    }
    return sh("rm -rf '%s'", dir) == 0 ? 0 : -1;
}

/* The trained files of models/ that hold the models, byte for byte. */
static void same_models(const char *models)
{
    static const char *const files[] = {"segments.json", "cltv.json", "customers.csv"};
    for (size_t i = 0; i < 3; i++) {
        char a[256], b[256];
        size_t na, nb;
        snprintf(a, sizeof a, "%s/ref/%s", dir, files[i]);
        snprintf(b, sizeof b, "%s/%s/%s", dir, models, files[i]);
        char *x = slurp(a, &na), *y = slurp(b, &nb);
        assert_non_null(x);
        if (!y)
            fail_msg("%s missing", b);
        size_t k = 0;
        while (k < na && k < nb && x[k] == y[k])
            k++;
        if (na != nb || k < na)
            fail_msg("%s differs from %s at byte %zu", b, a, k);
        printf("    %s/%s: %zu bytes, same as from the CSV file\n", models, files[i], na);
        free(x);
        free(y);
    }
}

static json_t *manifest_source(const char *models)
{
    char p[256], err[RFM_ERRLEN];
    json_t *m;
    snprintf(p, sizeof p, "%s/%s", dir, models);
    assert_int_equal(modelfile_open(p, &m, err, sizeof err), RFM_OK);
    json_t *t = json_deep_copy(json_object_get(json_object_get(m, "data"), "transactions"));
    json_decref(m);
    assert_non_null(t);
    return t;
}

static void test_stdin_gzip(void **state)
{
    (void)state;
    char cmd[1024], out[8192], hex[65], err[RFM_ERRLEN];
    snprintf(cmd, sizeof cmd,
             "gzip -nc %s/tx.csv > %s/tx.csv.gz && cat %s/tx.csv.gz | ../bin/rfm-train "
             "--config %s/cfg_file.yaml --transactions - --models %s/stdin --only segments,cltv",
             dir, dir, dir, dir, dir);
    if (run(cmd, out, sizeof out) != 0)
        fail_msg("%s", out);
    assert_non_null(strstr(out, "read -: "));
    same_models("stdin");
    json_t *t = manifest_source("stdin");
    assert_string_equal(json_string_value(json_object_get(t, "path")), "-");
    snprintf(cmd, sizeof cmd, "%s/tx.csv.gz", dir);
    assert_int_equal(sha256_file(cmd, hex, err, sizeof err), RFM_OK);
    assert_string_equal(json_string_value(json_object_get(t, "sha256")), hex); /* bytes piped */
    json_decref(t);
}

static void test_sqlite(void **state)
{
    (void)state;
    char path[128], lurl[160], cmd[1024], out[8192], err[RFM_ERRLEN];
    snprintf(path, sizeof path, "%s/shop.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE transactions (line_no INTEGER PRIMARY KEY, "
                                  "invoice_no TEXT, stock_code TEXT, quantity INTEGER, "
                                  "invoice_ts TEXT, unit_price REAL, customer_id TEXT);"
                                  "BEGIN",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_stmt *ins;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO transactions (invoice_no, stock_code, "
                                        "quantity, invoice_ts, unit_price, customer_id) "
                                        "VALUES (?, ?, ?, ?, ?, ?)",
                                        -1, &ins, NULL),
                     SQLITE_OK);
    csv_reader *r;
    const csv_field *f;
    size_t n;
    snprintf(cmd, sizeof cmd, "%s/tx.csv", dir);
    assert_int_equal(csv_open(cmd, &r, err, sizeof err), RFM_OK);
    assert_int_equal(csv_next(r, &f, &n, err, sizeof err), RFM_OK); /* header */
    while (csv_next(r, &f, &n, err, sizeof err) == RFM_OK && n == 6) {
        sqlite3_bind_text(ins, 1, f[0].s, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 2, f[1].s, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(ins, 3, atoll(f[2].s));
        sqlite3_bind_text(ins, 4, f[3].s, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(ins, 5, strtod(f[4].s, NULL));
        if (f[5].len)
            sqlite3_bind_text(ins, 6, f[5].s, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(ins, 6);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
    }
    csv_close(r);
    sqlite3_finalize(ins);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    snprintf(lurl, sizeof lurl, "sqlite://%s", path);
    write_config("cfg_sqlite.yaml", lurl, QUERY);
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config %s/cfg_sqlite.yaml --models %s/sqlite "
             "--only segments,cltv",
             dir, dir);
    if (run(cmd, out, sizeof out) != 0)
        fail_msg("%s", out);
    same_models("sqlite");
    json_t *t = manifest_source("sqlite");
    assert_string_equal(json_string_value(json_object_get(t, "path")), lurl);
    assert_string_equal(json_string_value(json_object_get(t, "query")), QUERY);
    json_decref(t);
}

static void test_postgresql(void **state)
{
    (void)state;
    char cmd[1024], out[8192];
    write_config("cfg_pg.yaml", url, QUERY);
    /* No password anywhere: refused by the server, said with the URL. */
    snprintf(cmd, sizeof cmd,
             "env -u PGPASSWORD PGPASSFILE=%s/none ../bin/rfm-train --config %s/cfg_pg.yaml "
             "--models %s/pg --only segments,cltv",
             dir, dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    char want[256];
    snprintf(want, sizeof want, "rfm-train: %s: cannot connect: ", url);
    if (!strstr(out, want) || !strstr(out, "password"))
        fail_msg("stderr '%s' lacks '%s... password'", out, want);

    /* With PGPASSWORD: the same models as the CSV file. */
    snprintf(cmd, sizeof cmd,
             "PGPASSWORD=%s ../bin/rfm-train --config %s/cfg_pg.yaml --models %s/pg "
             "--only segments,cltv",
             PASSWORD, dir, dir);
    if (run(cmd, out, sizeof out) != 0)
        fail_msg("%s", out);
    same_models("pg");
    json_t *t = manifest_source("pg");
    assert_string_equal(json_string_value(json_object_get(t, "path")), url);
    json_decref(t);
    snprintf(cmd, sizeof cmd, "grep -rq '%s' %s/pg", PASSWORD, dir);
    assert_int_not_equal(sh("%s", cmd), 0); /* the password is in no file written */

    /* A query the server refuses: exit 2 (configuration), its message. */
    write_config("cfg_pg_bad.yaml", url, "SELECT * FROM no_such_table");
    snprintf(cmd, sizeof cmd,
             "PGPASSWORD=%s ../bin/rfm-train --config %s/cfg_pg_bad.yaml --models %s/pg_bad",
             PASSWORD, dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 2);
    snprintf(want, sizeof want, "%s: data.query: ERROR: relation \"no_such_table\" does not exist",
             url);
    if (!strstr(out, want))
        fail_msg("stderr '%s' lacks '%s'", out, want);
}

/* Largest relative difference of the named parameters of two objects. */
static double maxrel(const json_t *a, const json_t *b, const char *const *names, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double x = json_number_value(json_object_get(a, names[i]));
        double y = json_number_value(json_object_get(b, names[i]));
        assert_true(x > 0 && y > 0);
        double d = fabs(x - y) / fabs(x);
        printf("    %-5s %.10g (transactions) %.10g (summary)\n", names[i], x, y);
        m = d > m ? d : m;
    }
    return m;
}

static void test_warehouse_road(void **state)
{
    (void)state;
    size_t n;
    char *md = slurp("../docs/cltv.md", &n);
    assert_non_null(md);
    char *a = strstr(md, "```sql\n"), *b = a ? strstr(a + 7, "```") : NULL;
    assert_non_null(b);
    *b = '\0';
    const char *sql = a + 7;
    size_t len = strlen(sql);
    while (len && strchr(" \n;", sql[len - 1]))
        len--;
    char *copy = malloc(len + 64);
    snprintf(copy, len + 64, "COPY (%.*s) TO STDOUT WITH (FORMAT csv, HEADER)", (int)len, sql);
    free(md);

    PGconn *c = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, copy);
    free(copy);
    if (PQresultStatus(r) != PGRES_COPY_OUT)
        fail_msg("the SQL of docs/cltv.md: %s", PQresultErrorMessage(r));
    PQclear(r);
    char path[128], cmd[1024], out[8192];
    snprintf(path, sizeof path, "%s/summary.csv", dir);
    FILE *f = fopen(path, "wb");
    char *row;
    int k, rows = 0;
    while ((k = PQgetCopyData(c, &row, 0)) > 0) {
        fwrite(row, 1, (size_t)k, f);
        PQfreemem(row);
        rows++;
    }
    fclose(f);
    assert_int_equal(k, -1);
    r = PQgetResult(c);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);

    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config %s/cfg_file.yaml --summary %s --models %s/wh --only cltv",
             dir, path, dir);
    if (run(cmd, out, sizeof out) != 0)
        fail_msg("%s", out);
    json_t *ref, *wh;
    char p[256], err[RFM_ERRLEN];
    snprintf(p, sizeof p, "%s/ref/cltv.json", dir);
    assert_non_null(ref = json_load_file(p, 0, NULL));
    snprintf(p, sizeof p, "%s/wh/cltv.json", dir);
    assert_non_null(wh = json_load_file(p, 0, NULL));
    (void)err;
    /* Every customer of the transactions, one row each (plus the header). */
    json_t *m;
    snprintf(p, sizeof p, "%s/ref", dir);
    assert_int_equal(modelfile_open(p, &m, err, sizeof err), RFM_OK);
    json_int_t customers = json_integer_value(
        json_object_get(json_object_get(json_object_get(m, "data"), "transactions"), "customers"));
    json_decref(m);
    assert_int_equal(rows - 1, customers);
    printf("    %d customers from the summary SQL\n", rows - 1);
    static const char *const bg[] = {"r", "alpha", "a", "b"}, *const gg[] = {"p", "q", "v"};
    double d1 = maxrel(json_object_get(ref, "bgnbd"), json_object_get(wh, "bgnbd"), bg, 4);
    double d2 =
        maxrel(json_object_get(ref, "gamma_gamma"), json_object_get(wh, "gamma_gamma"), gg, 3);
    json_decref(ref);
    json_decref(wh);
    report_maxdiff("relative difference, BG/NBD + Gamma-Gamma parameters", fmax(d1, d2), 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stdin_gzip),
        cmocka_unit_test(test_sqlite),
        cmocka_unit_test(test_postgresql),
        cmocka_unit_test(test_warehouse_road),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
