/* test_train.c - bin/rfm-train end to end on small fixtures: exit codes,
 * messages that name file, line and column, --only keeping models, and
 * runs into one models folder taking turns. */
#include "testutil.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "modelfile.h"
#include "segments.h"

static char dir[64];

/* Run a shell command; returns its exit status and its stderr in out. */
static int run(const char *cmd, char *out, size_t cap) { return run_in(dir, cmd, out, cap); }

static void write_fixture(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rfmtest_train_XXXXXX");
    assert_non_null(mkdtemp(dir));
    /* 30 customers in three kinds, enough for k-means with k up to 8. */
    static char csv[65536];
    size_t n = (size_t)snprintf(csv, sizeof csv,
                                "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,"
                                "UnitPrice,CustomerID,Country\n");
    int inv = 1000;
    for (int c = 0; c < 30; c++)
        for (int k = 0; k <= (c % 3) * 4; k++)
            n += (size_t)snprintf(
                csv + n, sizeof csv - n, "%d,A,Thing,%d,2011-%02d-%02d 10:00:00,%d.50,%d.0,UK\n",
                inv++, 1 + c % 5, 1 + (c * 7 + k) % 12, 1 + (c + k) % 28, 1 + c, 12000 + c);
    write_fixture("tx.csv", csv);
    /* The same customers, each with one invoice of several lines: nobody
     * buys twice, so BG/NBD has nothing to fit on any machine. */
    n = (size_t)snprintf(csv, sizeof csv,
                         "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,"
                         "UnitPrice,CustomerID,Country\n");
    for (int c = 0; c < 30; c++)
        for (int k = 0; k <= (c % 3) * 4; k++)
            n += (size_t)snprintf(
                csv + n, sizeof csv - n, "%d,A%d,Thing,%d,2011-%02d-%02d 10:00:00,%d.50,%d.0,UK\n",
                2000 + c, k, 1 + (c + k) % 5, 1 + (c * 7) % 12, 1 + c % 28, 1 + c, 12000 + c);
    write_fixture("once.csv", csv);
    write_fixture("bad.csv", "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,"
                             "CustomerID,Country\n1,A,\"open,1,2011-01-01,1,1,UK\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_train_and_only(void **state)
{
    (void)state;
    char cmd[1024], out[8192], err[RFM_ERRLEN];
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config ../config/rfm.yaml --transactions %s/tx.csv "
             "--models %s/models --only segments",
             dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "used"));
    json_t *m;
    snprintf(cmd, sizeof cmd, "%s/models", dir);
    assert_int_equal(modelfile_open(cmd, &m, err, sizeof err), RFM_OK);
    json_t *seg = json_object_get(json_object_get(m, "models"), "segments");
    assert_non_null(seg);
    const char *sha = json_string_value(json_object_get(seg, "sha256"));
    char sha1[65];
    snprintf(sha1, sizeof sha1, "%s", sha);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "cleaning"), "lines")),
                     150);
    /* The web app's figures follow the segments: refitted with them, with
     * the segment mix and without the figures of models not trained. */
    json_t *an;
    assert_int_equal(modelfile_load(cmd, m, "analytics", &an, err, sizeof err), RFM_OK);
    const json_t *ov = json_object_get(an, "overview");
    assert_non_null(json_object_get(ov, "segments"));
    assert_null(json_object_get(ov, "cltv"));
    assert_null(json_object_get(ov, "churn_risk"));
    assert_true(json_array_size(json_object_get(ov, "monthly")) > 0);
    json_decref(an);
    json_decref(m);
    m = NULL;

    /* Customers who never bought twice cannot fit BG/NBD (a reason that
     * holds on every CPU, unlike a borderline fit): the run fails, says
     * why, and leaves the models folder as it was. */
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config ../config/rfm.yaml --transactions %s/once.csv "
             "--models %s/models",
             dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    if (!strstr(out, "cltv: BG/NBD: no customer made a repeat purchase"))
        fail_msg("stderr '%s' lacks the repeat-purchase reason", out);
    snprintf(cmd, sizeof cmd, "%s/models", dir);
    assert_int_equal(modelfile_open(cmd, &m, err, sizeof err), RFM_OK);
    seg = json_object_get(json_object_get(m, "models"), "segments");
    assert_string_equal(json_string_value(json_object_get(seg, "sha256")), sha1);
    assert_null(json_object_get(json_object_get(m, "models"), "cltv"));
    json_decref(m);

    /* --only segments refits into the same folder; still valid. */
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config ../config/rfm.yaml --transactions %s/tx.csv "
             "--models %s/models --only segments --quiet",
             dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, ""); /* --quiet */
    snprintf(cmd, sizeof cmd, "%s/models", dir);
    assert_int_equal(modelfile_open(cmd, &m, err, sizeof err), RFM_OK);
    json_decref(m);
}

static void test_errors_and_exit_codes(void **state)
{
    (void)state;
    char cmd[1024], out[8192], want[256];
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config ../config/rfm.yaml --transactions %s/bad.csv "
             "--models %s/m2",
             dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    snprintf(want, sizeof want, "%s/bad.csv:2:5: quoted field not closed", dir);
    if (!strstr(out, want))
        fail_msg("stderr '%s' lacks '%s'", out, want);
    snprintf(cmd, sizeof cmd, "%s/m2", dir);
    assert_int_equal(access(cmd, F_OK), -1); /* nothing half-written */

    assert_int_equal(run("../bin/rfm-train --bogus", out, sizeof out), 2);
    assert_non_null(strstr(out, "usage:"));
    assert_int_equal(run("../bin/rfm-train --only nonsense", out, sizeof out), 2);
    assert_non_null(strstr(out, "unknown model 'nonsense'"));
    assert_int_equal(run("../bin/rfm-train --config /nonexistent.yaml", out, sizeof out), 2);
    assert_non_null(strstr(out, "/nonexistent.yaml"));
    snprintf(
        cmd, sizeof cmd,
        "../bin/rfm-train --config ../config/rfm.yaml --transactions %s/none.csv --models %s/m3",
        dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "none.csv"));
    assert_int_equal(run("../bin/rfm-train --help", out, sizeof out), 0);

    /* A value the churn module refuses stops rfm-train at load (exit 2),
     * before the transactions are opened (a missing file would be exit 1). */
    snprintf(cmd, sizeof cmd,
             "sed 's/threshold_medium: 0.3/threshold_medium: 0/' ../config/rfm.yaml > "
             "%s/bad_churn.yaml",
             dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config %s/bad_churn.yaml --transactions %s/none.csv "
             "--models %s/m4",
             dir, dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 2);
    snprintf(want, sizeof want, "%s/bad_churn.yaml: churn.threshold_medium: must be in (0, 1)",
             dir);
    if (!strstr(out, want) || strstr(out, "none.csv"))
        fail_msg("stderr '%s' lacks '%s' or reads the data", out, want);
}

/* The warehouse road: a customer summary gives the same lifetime-value
 * parameters as the transactions it summarises. */
static void test_summary_road(void **state)
{
    (void)state;
    char cmd[2048], out[8192], err[RFM_ERRLEN];
    snprintf(
        cmd, sizeof cmd,
        "../bin/rfm-train --config ../config/rfm.yaml --transactions ../data/online_retail.csv.gz "
        "--models %s/full --only cltv",
        dir);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    /* customers.csv columns 1, 5-8 are lifetimes' summary. */
    snprintf(
        cmd, sizeof cmd,
        "(echo customer_id,frequency,recency,T,monetary_value; tail -n +2 %s/full/customers.csv"
        " | cut -d, -f1,5-8) > %s/summary.csv",
        dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(
        cmd, sizeof cmd,
        "../bin/rfm-train --config ../config/rfm.yaml --models %s/sum --summary %s/summary.csv "
        "--only segments,cltv",
        dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "segments: skipped"));
    assert_non_null(strstr(out, "analytics: skipped (a customer summary has no purchase dates)"));
    json_t *a, *b, *ja, *jb;
    char p1[128], p2[128];
    snprintf(p1, sizeof p1, "%s/full", dir);
    snprintf(p2, sizeof p2, "%s/sum", dir);
    assert_int_equal(modelfile_open(p1, &a, err, sizeof err), RFM_OK);
    assert_int_equal(modelfile_open(p2, &b, err, sizeof err), RFM_OK);
    assert_int_equal(modelfile_load(p1, a, "cltv", &ja, err, sizeof err), RFM_OK);
    assert_int_equal(modelfile_load(p2, b, "cltv", &jb, err, sizeof err), RFM_OK);
    const char *keys[4] = {"r", "alpha", "a", "b"};
    for (int k = 0; k < 4; k++) {
        double x = json_real_value(json_object_get(json_object_get(ja, "bgnbd"), keys[k]));
        double y = json_real_value(json_object_get(json_object_get(jb, "bgnbd"), keys[k]));
        /* Two fits of the same likelihood summed in another order: equal
         * far inside the optimiser's tolerance, not to the last bit. */
        assert_near(x, y, 1e-6 * fabs(x));
    }
    assert_null(json_object_get(json_object_get(b, "models"), "segments"));
    assert_null(json_object_get(json_object_get(b, "models"), "analytics"));
    /* --only cltv from transactions refits the figures with the CLTV sum. */
    json_decref(ja);
    assert_int_equal(modelfile_load(p1, a, "analytics", &ja, err, sizeof err), RFM_OK);
    assert_non_null(json_object_get(json_object_get(ja, "overview"), "cltv"));
    assert_null(json_object_get(json_object_get(ja, "overview"), "segments"));
    json_decref(a), json_decref(b), json_decref(ja), json_decref(jb);
    /* A bad summary line names file and line. */
    snprintf(
        cmd, sizeof cmd,
        "printf 'customer_id,frequency,recency,T,monetary_value\\n1,2,50,10,5\\n' > %s/bad.csv && "
        "../bin/rfm-train --config ../config/rfm.yaml --models %s/bad --summary %s/bad.csv",
        dir, dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "bad.csv:2: days_first_to_last_purchase cannot exceed"));
}

/* Start `sh -c cmd` without waiting for it. */
static pid_t spawn(const char *cmd)
{
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int file_has(const char *path, const char *what)
{
    char text[8192];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    return strstr(text, what) != NULL;
}

/* Two --only runs into one models folder: while the folder is being
 * written (here: its lock held by this test), a run exits 1 naming the
 * holder before reading any data; with --wait both runs queue, take turns,
 * and the manifest ends with both fits. */
static void test_concurrent_only(void **state)
{
    (void)state;
    char models[128], cmd[1024], out[8192], err[RFM_ERRLEN], want[128], log[2][160];
    snprintf(models, sizeof models, "%s/conc", dir);
    modelfile_lock *l;
    assert_int_equal(modelfile_lock_take(models, 0, &l, err, sizeof err), RFM_OK);
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config ../config/rfm.yaml --transactions "
             "../data/online_retail.csv.gz --models %s --only cltv",
             models);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    printf("    %s", out);
    snprintf(want, sizeof want, "conc/ is being written by test_train pid %ld on ", (long)getpid());
    if (!strstr(out, want) || !strstr(out, "--wait"))
        fail_msg("stderr '%s' lacks '%s' and --wait", out, want);
    assert_null(strstr(out, "used")); /* gave up before reading the data */
    assert_int_equal(access(models, F_OK), -1);

    /* Both queue behind the lock, then run at once when it is released. */
    static const char *const only[2] = {"cltv", "churn"};
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        snprintf(log[i], sizeof log[i], "%s/conc_%s.log", dir, only[i]);
        snprintf(cmd, sizeof cmd,
                 "exec ../bin/rfm-train --config ../config/rfm.yaml --transactions "
                 "../data/online_retail.csv.gz --models %s --only %s --wait 2>%s >/dev/null",
                 models, only[i], log[i]);
        pid[i] = spawn(cmd);
    }
    for (int i = 0; i < 2; i++) { /* a state to reach, not a time: bounded at 60 s */
        int k = 0;
        while (!file_has(log[i], "; waiting") && k++ < 6000)
            usleep(10000);
        if (!file_has(log[i], "; waiting"))
            fail_msg("%s: the run did not wait for the lock", log[i]);
    }
    modelfile_lock_release(l);
    for (int i = 0; i < 2; i++) {
        int st;
        assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            snprintf(cmd, sizeof cmd, "cat %s", log[i]);
            (void)!system(cmd);
            fail_msg("--only %s --wait: exit %d", only[i], WEXITSTATUS(st));
        }
    }
    json_t *m;
    assert_int_equal(modelfile_open(models, &m, err, sizeof err), RFM_OK);
    const json_t *fits = json_object_get(m, "models");
    assert_non_null(json_object_get(fits, "cltv"));
    assert_non_null(json_object_get(fits, "churn"));
    json_decref(m);
    /* No staging folder is left behind. */
    snprintf(cmd, sizeof cmd, "ls -d %s.tmp-* 2>/dev/null | grep -q .", models);
    assert_int_not_equal(system(cmd), 0);
}

/* ---- two real-world exports, through config alone ---------------------- */

/* The shipped config with its data section replaced by data_yaml. */
static void write_config(const char *name, const char *data_yaml)
{
    FILE *f = fopen("../config/rfm.yaml", "rb");
    assert_non_null(f);
    static char buf[65536], out[70000];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *a = strstr(buf, "data:\n"), *b = strstr(buf, "\nmodels_dir:");
    assert_true(a && b);
    snprintf(out, sizeof out, "%.*s%s%s", (int)(a - buf), buf, data_yaml, b + 1);
    write_fixture(name, out);
}

typedef struct {
    char id[32];
    int days[64], ndays, orders;
    double monetary;
    int last;
} expect_row;

static void add_purchase(expect_row *r, int day, double v)
{
    int seen = 0;
    for (int i = 0; i < r->ndays; i++)
        seen |= r->days[i] == day;
    if (!seen)
        r->days[r->ndays++] = day;
    r->monetary += v;
    if (day > r->last)
        r->last = day;
}

/* Train segments with the config, then compare every customer's
 * recency, frequency and monetary in models/customers.csv. by_day: a
 * purchase is a customer-day (no invoice column), else an order. */
static void train_and_compare(const char *config, const char *tx, expect_row *rows, int n,
                              int by_day)
{
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config %s/%s --transactions %s/%s --models %s/m_%s "
             "--only segments",
             dir, config, dir, tx, dir, tx);
    int rc = run(cmd, out, sizeof out);
    if (rc != 0)
        fail_msg("rfm-train exit %d: %s", rc, out);
    int snap = 0;
    for (int i = 0; i < n; i++)
        if (rows[i].last + 1 > snap)
            snap = rows[i].last + 1;
    snprintf(cmd, sizeof cmd, "%s/m_%s/customers.csv", dir, tx);
    FILE *f = fopen(cmd, "rb");
    assert_non_null(f);
    static char text[65536];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    for (int i = 0; i < n; i++) {
        char want[128];
        snprintf(want, sizeof want, "\n%s,%d,%d,%.17g,", rows[i].id, snap - rows[i].last,
                 by_day ? rows[i].ndays : rows[i].orders, rows[i].monetary);
        /* numfmt writes the shortest form; halves and whole numbers print
         * the same with %.17g */
        if (!strstr(text, want))
            fail_msg("customers.csv lacks '%s'", want + 1);
    }
}

/* A public transaction log: runs of blanks, a header, YYYYMMDD dates, no
 * invoice column, one dollar amount per line, CRLF. */
static void test_transaction_log_export(void **state)
{
    (void)state;
    static char tx[65536];
    expect_row rows[30];
    memset(rows, 0, sizeof rows);
    size_t n = (size_t)snprintf(tx, sizeof tx, "date      account    amount\r\n");
    for (int c = 0; c < 30; c++) {
        snprintf(rows[c].id, sizeof rows[c].id, "acct%02d", c);
        for (int k = 0; k <= (c % 3) * 3; k++) {
            int day = 1 + (k / 2) * 3 + c % 5; /* two lines a day: one purchase */
            double usd = 1 + c + k % 4;
            n += (size_t)snprintf(tx + n, sizeof tx - n, "202401%02d  %s  \t %g\r\n", day,
                                  rows[c].id, usd);
            add_purchase(&rows[c], day, usd);
        }
    }
    write_fixture("log.txt", tx);
    write_config("log.yaml", "data:\n"
                             "  separator: whitespace\n"
                             "  columns:\n"
                             "    invoice: null\n"
                             "    customer_id: account\n"
                             "    date: date\n"
                             "    quantity: null\n"
                             "    price: null\n"
                             "    amount: amount\n");
    train_and_compare("log.yaml", "log.txt", rows, 30, 1);
}

/* A CRM export: semicolons, decimal commas, quoted fields, ISO 8601 times
 * with Z, +02:00 and fractions, e-mail addresses as ids, an order number
 * and one amount column. */
static void test_crm_export(void **state)
{
    (void)state;
    static char tx[65536];
    expect_row rows[30];
    memset(rows, 0, sizeof rows);
    size_t n = (size_t)snprintf(tx, sizeof tx,
                                "\"OrderNo\";\"Email\";\"CreatedAt\";\"Note\";"
                                "\"Total\"\n");
    int order = 70000;
    for (int c = 0; c < 30; c++) {
        snprintf(rows[c].id, sizeof rows[c].id, "user%d@example.com", c);
        for (int o = 0; o <= c % 3 + (c % 7 == 0); o++, order++) {
            int day = 1 + (c + 5 * o) % 27, hour = (c + o) % 5; /* 0..4 */
            int lines = 1 + (c + o) % 2;
            for (int l = 0; l < lines; l++) {
                int utc_day = day;
                char when[64];
                if ((c + l) % 3 == 0) {
                    snprintf(when, sizeof when, "2024-02-%02dT%02d:15:00Z", day, hour);
                } else if ((c + l) % 3 == 1) {
                    snprintf(when, sizeof when, "2024-02-%02dT%02d:15:00+02:00", day, hour);
                    utc_day -= hour < 2; /* 01:15+02:00 is 23:15 the day before */
                } else {
                    snprintf(when, sizeof when, "2024-02-%02dT%02d:15:00.125Z", day, hour);
                }
                int euros = c + 1 + l;
                n += (size_t)snprintf(tx + n, sizeof tx - n,
                                      "%d;\"%s\";%s;\"gift; wrapped\";"
                                      "\"%d,50\"\n",
                                      order, rows[c].id, when, euros);
                add_purchase(&rows[c], utc_day, euros + 0.5);
            }
            rows[c].orders++;
        }
    }
    write_fixture("crm.csv", tx);
    write_config("crm.yaml", "data:\n"
                             "  separator: \";\"\n"
                             "  decimal: \",\"\n"
                             "  columns:\n"
                             "    invoice: OrderNo\n"
                             "    customer_id: Email\n"
                             "    date: CreatedAt\n"
                             "    quantity: null\n"
                             "    price: null\n"
                             "    amount: Total\n");
    train_and_compare("crm.yaml", "crm.csv", rows, 30, 0);

    /* The mistakes of the issue, each refused before any data is read
     * (the transactions file does not exist): exit 2 naming the key. */
    char cmd[1024], out[8192];
    const char *bad[][2] = {
        {"data:\n  seperator: \";\"\n",
         "data.seperator: unknown key; did you mean data.separator?"},
        {"data:\n  columns: {quantity: Total, price: Total}\n",
         "data.columns.price: names the same column as columns.quantity ('Total')"},
        {"data:\n  columns: {amount: Total, quantity: Qty}\n",
         "data.columns.amount: cannot be used with columns.quantity or columns.price"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_config("bad.yaml", bad[i][0]);
        snprintf(cmd, sizeof cmd,
                 "../bin/rfm-train --config %s/bad.yaml --transactions %s/nowhere.csv "
                 "--models %s/m_bad --only segments",
                 dir, dir, dir);
        int rc = run(cmd, out, sizeof out);
        if (rc != 2 || !strstr(out, bad[i][1]))
            fail_msg("exit %d, stderr '%s' lacks '%s'", rc, out, bad[i][1]);
    }
    /* Every line dropped: the report is printed, and the error names the
     * leading reason, an example line and its text. */
    write_config("drop.yaml", "data:\n"
                              "  separator: \";\"\n"
                              "  decimal: \",\"\n"
                              "  date_format: \"%d.%m.%Y\"\n"
                              "  columns: {invoice: OrderNo, customer_id: Email, date: CreatedAt,"
                              " quantity: null, price: null, amount: Total}\n");
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config %s/drop.yaml --transactions %s/crm.csv "
             "--models %s/m_drop --only segments",
             dir, dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    if (!strstr(out, "  bad_date ") || !strstr(out, "e.g. line 2, 3, 4, 5, 6") ||
        !strstr(out, "dropped as bad_date, e.g. line 2: 70000;user0@example.com;"
                     "2024-02-01T00:15:00Z;gift; wrapped;1,50"))
        fail_msg("stderr '%s' lacks the report or the example", out);
}

/* The bundled file: k is at least 4 and the typical customers a marketer
 * treats apart - a recent big spender, a new one-time buyer, a
 * mid-recency regular, a long-lapsed one-time buyer - land in four
 * different clusters with four different names; every cluster has a rule
 * (in /clusters/summary's words) that covers most of it, and
 * --print-clusters shows it. */
static void test_bundled_clusters(void **state)
{
    (void)state;
    char cmd[1024], out[8192], err[RFM_ERRLEN];
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config ../config/rfm.yaml --transactions "
             "../data/online_retail.csv.gz --models %s/m_bundled --only segments",
             dir);
    int rc = run(cmd, out, sizeof out);
    if (rc != 0)
        fail_msg("rfm-train exit %d: %s", rc, out);
    const char *line = strstr(out, "segments: k = ");
    assert_non_null(line);
    printf("    %.*s\n", (int)(strchr(line, '\n') - line), line);
    json_t *man, *j;
    snprintf(cmd, sizeof cmd, "%s/m_bundled", dir);
    assert_int_equal(modelfile_open(cmd, &man, err, sizeof err), RFM_OK);
    assert_int_equal(modelfile_load(cmd, man, "segments", &j, err, sizeof err), RFM_OK);
    json_decref(man);
    segments_model *s;
    assert_int_equal(segments_from_json(j, &s, err, sizeof err), RFM_OK);
    json_decref(j);
    size_t k = segments_nclusters(s);
    assert_true(k >= 4 && k <= 8);
    static const double typical[4][3] = {
        {5, 15, 6000}, /* recent big spender */
        {7, 1, 150},   /* new one-time buyer */
        {60, 5, 1500}, /* mid-recency regular */
        {300, 1, 150}, /* long-lapsed one-time buyer */
    };
    segments_result res[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(segments_predict(s, typical[i][0], typical[i][1], typical[i][2], &res[i],
                                          err, sizeof err),
                         RFM_OK);
        printf("    (%g days, %g invoices, %g): cluster %zu %s\n", typical[i][0], typical[i][1],
               typical[i][2], res[i].cluster, res[i].segment);
        for (int h = 0; h < i; h++) {
            assert_int_not_equal(res[h].cluster, res[i].cluster);
            assert_string_not_equal(res[h].segment, res[i].segment);
        }
    }
    for (size_t c = 0; c < k; c++) {
        segments_cluster_info ci;
        segments_cluster(s, c, &ci);
        assert_non_null(ci.rule);
        assert_true(ci.rule->nconds >= 1);
        assert_true(ci.share >= 0.03);
        /* a rule worth reading: most of the cluster, few of the others */
        assert_true((double)ci.rule->tp >= 0.7 * (double)ci.rule->npos);
        assert_true((double)ci.rule->fp <= 0.25 * (double)ci.rule->nneg);
    }
    segments_free(s);
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config ../config/rfm.yaml --models %s/m_bundled "
             "--print-clusters > %s/clusters.txt",
             dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/clusters.txt", dir);
    FILE *f = fopen(cmd, "rb");
    assert_non_null(f);
    size_t len = fread(out, 1, sizeof out - 1, f);
    fclose(f);
    out[len] = '\0';
    assert_non_null(strstr(out, "    rule: recency "));
}

/* The cleaning report's lines (two spaces in), without the timing line. */
static void report_lines(const char *out, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (const char *p = out; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 2 && p[0] == ' ' && p[1] == ' ' && n + len + 2 < cap) {
            memcpy(buf + n, p, len);
            n += len;
            buf[n++] = '\n';
            buf[n] = '\0';
        }
        p += len + (e != NULL);
    }
}

/* The bundled file read on one thread and on three (the reader's own
 * thread counts as one: two parse, cut into parts, merged) gives the same
 * models, byte for byte: every file but the manifest and the model cards,
 * which hold times. */
static void test_threads_same_models(void **state)
{
    (void)state;
    char cmd[1024], out[2][8192], rep[2][4096];
    const int ts[2] = {1, 3};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd,
                 "../bin/rfm-train --config ../config/rfm.yaml --transactions "
                 "../data/online_retail.csv.gz --models %s/m_threads%d --only segments,churn,cltv "
                 "--threads %d",
                 dir, ts[i], ts[i]);
        int rc = run(cmd, out[i], sizeof out[i]);
        if (rc != 0)
            fail_msg("rfm-train --threads %d exit %d: %s", ts[i], rc, out[i]);
        report_lines(out[i], rep[i], sizeof rep[i]);
    }
    assert_non_null(strstr(rep[0], "duplicate"));
    assert_string_equal(rep[0], rep[1]);
    /* With three, segments, cltv and churn are fitted at once: their lines
     * still come in that order, once each. */
    const char *seg = strstr(out[1], "rfm-train: segments:"),
               *cltv = strstr(out[1], "rfm-train: cltv:"),
               *churn = strstr(out[1], "rfm-train: churn:"),
               *an = strstr(out[1], "rfm-train: analytics:");
    assert_true(seg && cltv && churn && an && seg < cltv && cltv < churn && churn < an);
    assert_null(strstr(seg + 1, "rfm-train: segments:"));
    static const char *const files[] = {"segments.json", "cltv.json", "churn.json", "customers.csv",
                                        "analytics.json"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(cmd, sizeof cmd, "cmp %s/m_threads1/%s %s/m_threads3/%s", dir, files[i], dir,
                 files[i]);
        if (system(cmd) != 0)
            fail_msg("%s differs between --threads 1 and --threads 3", files[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_and_only),         cmocka_unit_test(test_errors_and_exit_codes),
        cmocka_unit_test(test_summary_road),           cmocka_unit_test(test_concurrent_only),
        cmocka_unit_test(test_transaction_log_export), cmocka_unit_test(test_crm_export),
        cmocka_unit_test(test_bundled_clusters),       cmocka_unit_test(test_threads_same_models),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
