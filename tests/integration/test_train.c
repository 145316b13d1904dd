/* test_train.c - bin/rfm-train end to end on small fixtures: exit codes,
 * messages that name file, line and column, --only keeping models, and
 * runs into one models folder taking turns. */
#include "testutil.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "modelfile.h"

static char dir[64];

/* Run a shell command; returns its exit status and its stderr in out. */
static int run(const char *cmd, char *out, size_t cap)
{
    char full[2048];
    snprintf(full, sizeof full, "%s 2>%s/stderr.txt >/dev/null", cmd, dir);
    int rc = system(full);
    snprintf(full, sizeof full, "%s/stderr.txt", dir);
    FILE *f = fopen(full, "rb");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

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
            n += (size_t)snprintf(csv + n, sizeof csv - n,
                                  "%d,A,Thing,%d,2011-%02d-%02d 10:00:00,%d.50,%d.0,UK\n",
                                  inv++, 1 + c % 5, 1 + (c * 7 + k) % 12, 1 + (c + k) % 28,
                                  1 + c, 12000 + c);
    write_fixture("tx.csv", csv);
    /* The same customers, each with one invoice of several lines: nobody
     * buys twice, so BG/NBD has nothing to fit on any machine. */
    n = (size_t)snprintf(csv, sizeof csv,
                         "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,"
                         "UnitPrice,CustomerID,Country\n");
    for (int c = 0; c < 30; c++)
        for (int k = 0; k <= (c % 3) * 4; k++)
            n += (size_t)snprintf(csv + n, sizeof csv - n,
                                  "%d,A%d,Thing,%d,2011-%02d-%02d 10:00:00,%d.50,%d.0,UK\n",
                                  2000 + c, k, 1 + (c + k) % 5, 1 + (c * 7) % 12, 1 + c % 28,
                                  1 + c, 12000 + c);
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
    snprintf(cmd, sizeof cmd, "../bin/rfm-train --config ../config/rfm.yaml --transactions %s/none.csv --models %s/m3", dir,
             dir);
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
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config ../config/rfm.yaml --transactions ../data/online_retail.csv.gz "
             "--models %s/full --only cltv",
             dir);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    /* customers.csv columns 1, 5-8 are lifetimes' summary. */
    snprintf(cmd, sizeof cmd,
             "(echo customer_id,frequency,recency,T,monetary_value; tail -n +2 %s/full/customers.csv"
             " | cut -d, -f1,5-8) > %s/summary.csv",
             dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --config ../config/rfm.yaml --models %s/sum --summary %s/summary.csv "
             "--only segments,cltv",
             dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "segments: skipped"));
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
    json_decref(a), json_decref(b), json_decref(ja), json_decref(jb);
    /* A bad summary line names file and line. */
    snprintf(cmd, sizeof cmd,
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
    snprintf(want, sizeof want, "conc/ is being written by test_train pid %ld on ",
             (long)getpid());
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_and_only),
        cmocka_unit_test(test_errors_and_exit_codes),
        cmocka_unit_test(test_summary_road),
        cmocka_unit_test(test_concurrent_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
