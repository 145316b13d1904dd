/* test_report.c - bin/rfm-report end to end: models trained from the
 * bundled transactions and a slice of the bundled campaign; the HTML is
 * self-contained (no script, no http(s) reference), has every section and
 * a well-formed SVG per chart; drift from a state store seeded here reads
 * stable at the snapshot and shifted half a year later; the PDF printed by
 * Chromium has pages and every section title; bad usage and missing
 * pieces get clear errors. The programs come from the build folder of
 * RFM_SERVE (build/bin or build/san/bin), as test_score finds rfm-score. */
#include "testutil.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "state.h"
#include "versions.h"

static char dir[64], bin[256];

static int run(const char *cmd, char *out, size_t cap) { return run_in(dir, cmd, out, cap); }

static const char *const SECTIONS[] = {"Segments and clusters", "Churn model performance",
                                       "Lifetime value (CLTV)", "Uplift",
                                       "Input drift",           "Model cards"};
#define NSECTIONS (sizeof SECTIONS / sizeof *SECTIONS)

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rfmtest_report_XXXXXX");
    assert_non_null(mkdtemp(dir));
    const char *serve = getenv("RFM_SERVE") ? getenv("RFM_SERVE") : "bin/rfm-serve";
    snprintf(bin, sizeof bin, "%.*s", (int)(strlen(serve) - strlen("rfm-serve")), serve);
    char cmd[2048];
    /* 6,000 rows of the campaign are enough for both uplift learners. */
    snprintf(cmd, sizeof cmd,
             "cd .. && zcat data/hillstrom.csv.gz | head -n 6001 > %s/campaign.csv && "
             "%srfm-train --quiet --config config/rfm.yaml --transactions "
             "data/online_retail.csv.gz --campaign %s/campaign.csv --models %s/models "
             "--only segments,churn,cltv,uplift",
             dir, bin, dir, dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *report(const char *args)
{
    char cmd[2048], out[4096], path[128];
    snprintf(cmd, sizeof cmd, "cd .. && %srfm-report --models %s/models --out %s/r.html %s", bin,
             dir, dir, args);
    int rc = run(cmd, out, sizeof out);
    if (rc != 0)
        fail_msg("rfm-report %s: exit %d: %s", args, rc, out);
    snprintf(path, sizeof path, "%s/r.html", dir);
    char *html;
    size_t len;
    char err[RFM_ERRLEN];
    if (fileio_read(path, &html, &len, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    return html;
}

static size_t count(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

/* One <svg>...</svg>: every tag closed in order, attributes quoted, text
 * without a bare '<' or '&'. Returns the end of the element or fails. */
static const char *check_svg(const char *p)
{
    const char *stack[64];
    int depth = 0;
    char title[128] = "";
    while (*p) {
        if (*p == '&') {
            const char *semi = strchr(p, ';');
            assert_true(semi && semi - p < 10);
            p = semi + 1;
            continue;
        }
        if (*p != '<') {
            p++;
            continue;
        }
        const char *end = p + 1;
        int quoted = 0;
        while (*end && (quoted || *end != '>')) {
            if (*end == '"')
                quoted = !quoted;
            if (!quoted && *end == '<')
                fail_msg("'<' inside a tag near: %.60s", p);
            end++;
        }
        assert_true(*end == '>');
        if (p[1] == '/') { /* closing: matches the open one */
            size_t n = strcspn(p + 2, " >");
            assert_true(depth > 0);
            depth--;
            if (strncmp(stack[depth], p + 2, n) ||
                (stack[depth][n] != ' ' && stack[depth][n] != '>' && stack[depth][n] != '/'))
                fail_msg("</%.*s> closes <%.20s (in chart '%s')", (int)n, p + 2, stack[depth],
                         title);
            if (depth == 0)
                return end + 1;
        } else if (end[-1] != '/') { /* opening */
            assert_true(depth < 64);
            stack[depth++] = p + 1;
            if (!strncmp(p + 1, "title>", 6))
                snprintf(title, sizeof title, "%.*s", (int)strcspn(end + 1, "<"), end + 1);
        }
        p = end + 1;
    }
    fail_msg("an <svg> is not closed (chart '%s')", title);
    return p;
}

static void test_html(void **state)
{
    (void)state;
    char *html = report("");
    /* Self-contained: nothing to run, nothing to fetch. */
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "url("));
    for (size_t i = 0; i < NSECTIONS; i++)
        if (!strstr(html, SECTIONS[i]))
            fail_msg("no section '%s'", SECTIONS[i]);
    /* The charts: clusters, RFM segments; ROC, calibration, gains, lift,
     * importance; holdout tracking and per group; a Qini curve per arm (2). */
    static const char *const charts[] = {"Customers per cluster",
                                         "ROC curve (held-out)",
                                         "Calibration by decile",
                                         "Cumulative gains",
                                         "Cumulative lift by decile",
                                         "Global importance",
                                         "Holdout: cumulative repeat purchase days",
                                         "Qini curve: Mens E-Mail",
                                         "Qini curve: Womens E-Mail"};
    for (size_t i = 0; i < sizeof charts / sizeof *charts; i++) {
        char t[128];
        snprintf(t, sizeof t, "<title>%s</title>", charts[i]);
        if (!strstr(html, t))
            fail_msg("no chart '%s'", charts[i]);
    }
    size_t nsvg = count(html, "<svg");
    assert_int_equal(nsvg, count(html, "</svg>"));
    assert_true(nsvg >= 11);
    size_t checked = 0;
    for (const char *p = strstr(html, "<svg"); p; p = strstr(p, "<svg")) {
        const char *e = check_svg(p);
        /* A chart draws something: a line, bars or dots. */
        size_t len = (size_t)(e - p);
        char *one = strndup(p, len);
        assert_true(strstr(one, "<polyline") || strstr(one, "<rect x"));
        free(one);
        p = e, checked++;
    }
    printf("    %zu charts, each well-formed\n", checked);
    /* Without --state the drift section says so; every model card is in. */
    assert_non_null(strstr(html, "No state store was given"));
    assert_non_null(strstr(html, "Model card: churn " CHURN_FILE_VERSION));
    assert_non_null(strstr(html, "Model card: uplift"));
    /* The churn figures are the model file's: its AUC, to 4 places. */
    assert_non_null(strstr(html, "AUC 0."));
    free(html);
}

/* PSI of a feature as the drift table prints it. */
static double psi_of(const char *html, const char *feature)
{
    char key[64];
    snprintf(key, sizeof key, "<tr><td>%s</td><td>", feature);
    const char *p = strstr(html, key);
    if (!p)
        fail_msg("no drift row for %s", feature);
    double v = NAN;
    sscanf(p + strlen(key), "%lf", &v);
    return v;
}

static void test_drift(void **state)
{
    (void)state;
    /* The store rfm-serve would keep, seeded from the same transactions. */
    char path[128], err[RFM_ERRLEN];
    snprintf(path, sizeof path, "%s/state.db", dir);
    txn_options o = {.invoice = "InvoiceNo",
                     .customer_id = "CustomerID",
                     .date = "InvoiceDate",
                     .quantity = "Quantity",
                     .price = "UnitPrice",
                     .cancel_prefix = "C",
                     .snapshot_day = DATE_NONE};
    txn_data *d = NULL;
    txn_report rep;
    assert_int_equal(
        txn_read("../data/online_retail.csv.gz", &o, NULL, NULL, &d, &rep, err, sizeof err),
        RFM_OK);
    state_options so;
    state_default_options(&so);
    so.synchronous = STATE_SYNC_NORMAL;
    state_store *st = NULL;
    assert_int_equal(state_open(path, &so, &st, err, sizeof err), RFM_OK);
    assert_int_equal(state_seed(st, d, NULL, err, sizeof err), RFM_OK);
    state_close(st);
    txn_free(d);

    /* At the snapshot the live customers are the training ones. */
    char args[256];
    snprintf(args, sizeof args, "--state %s --as-of 2011-12-10", path);
    char *html = report(args);
    assert_null(strstr(html, "No state store was given"));
    double r0 = psi_of(html, "recency"), f0 = psi_of(html, "frequency"),
           m0 = psi_of(html, "monetary");
    printf("    at the snapshot: PSI recency %.4f frequency %.4f monetary %.4f\n", r0, f0, m0);
    assert_true(r0 < 0.01 && f0 < 0.01 && m0 < 0.01);
    assert_int_equal(count(html, "<td>stable</td>"), 3);
    free(html);
    /* Half a year on with no purchase: recency shifts, the rest stays. */
    snprintf(args, sizeof args, "--state %s --as-of 2012-06-10", path);
    html = report(args);
    double r1 = psi_of(html, "recency"), f1 = psi_of(html, "frequency");
    printf("    six months later: PSI recency %.4f frequency %.4f\n", r1, f1);
    assert_true(r1 > 0.25);
    assert_true(f1 < 0.01);
    assert_non_null(strstr(html, "<td>recency</td><td>"));
    assert_non_null(strstr(html, "significant shift"));
    free(html);
}

static void test_pdf(void **state)
{
    (void)state;
    if (access("/usr/bin/chromium", X_OK) != 0) {
        printf("    SKIPPED: /usr/bin/chromium is absent (make deps installs it)\n");
        skip();
    }
    char args[128], cmd[512], out[4096];
    snprintf(args, sizeof args, "--pdf %s/r.pdf", dir);
    free(report(args));
    snprintf(cmd, sizeof cmd, "(pdfinfo %s/r.pdf > %s/info.txt)", dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    char path[128], *info, *text, err[RFM_ERRLEN];
    size_t len;
    snprintf(path, sizeof path, "%s/info.txt", dir);
    assert_int_equal(fileio_read(path, &info, &len, err, sizeof err), RFM_OK);
    const char *pg = strstr(info, "Pages:");
    assert_non_null(pg);
    int pages = atoi(pg + 6);
    printf("    PDF: %d pages\n", pages);
    assert_true(pages >= 1);
    free(info);
    snprintf(cmd, sizeof cmd, "pdftotext %s/r.pdf %s/r.txt", dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    snprintf(path, sizeof path, "%s/r.txt", dir);
    assert_int_equal(fileio_read(path, &text, &len, err, sizeof err), RFM_OK);
    for (size_t i = 0; i < NSECTIONS; i++)
        if (!strstr(text, SECTIONS[i]))
            fail_msg("the PDF's text has no '%s'", SECTIONS[i]);
    free(text);
    /* No temporary file left beside it. */
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp- > /dev/null", dir);
    assert_int_not_equal(system(cmd), 0);
}

static void test_errors(void **state)
{
    (void)state;
    char cmd[1024], out[4096];
    /* No --out: usage, 2. --as-of without --state: 2. */
    snprintf(cmd, sizeof cmd, "cd .. && %srfm-report --models %s/models", bin, dir);
    assert_int_equal(run(cmd, out, sizeof out), 2);
    assert_non_null(strstr(out, "--out"));
    snprintf(cmd, sizeof cmd,
             "cd .. && %srfm-report --models %s/models --out %s/x.html --as-of 2011-01-01", bin,
             dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 2);
    assert_non_null(strstr(out, "--as-of needs --state"));
    /* A folder without models: 1, naming what is missing. */
    snprintf(cmd, sizeof cmd, "cd .. && %srfm-report --models %s/nothing --out %s/x.html", bin, dir,
             dir);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "manifest.json"));
    /* A state store that is not there is refused, not created. */
    snprintf(cmd, sizeof cmd,
             "cd .. && %srfm-report --models %s/models --out %s/x.html --state %s/none.db", bin,
             dir, dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "none.db"));
    char path[128];
    snprintf(path, sizeof path, "%s/none.db", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    /* No browser: 1 with the way to get one; the HTML is written all the same. */
    snprintf(cmd, sizeof cmd,
             "cd .. && %srfm-report --models %s/models --out %s/x.html --pdf %s/x.pdf "
             "--chromium /nonexistent/chromium",
             bin, dir, dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "needs Chromium at /nonexistent/chromium"));
    snprintf(path, sizeof path, "%s/x.html", dir);
    assert_int_equal(access(path, F_OK), 0);
    /* A folder with segments only: the other sections say what is missing. */
    snprintf(cmd, sizeof cmd,
             "cd .. && %srfm-train --quiet --config config/rfm.yaml --transactions "
             "data/online_retail.csv.gz --models %s/seg --only segments && "
             "%srfm-report --models %s/seg --out %s/seg.html",
             bin, dir, bin, dir, dir);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    snprintf(path, sizeof path, "%s/seg.html", dir);
    char *html, err[RFM_ERRLEN];
    size_t len;
    assert_int_equal(fileio_read(path, &html, &len, err, sizeof err), RFM_OK);
    assert_non_null(strstr(html, "No <code>churn</code> model"));
    assert_non_null(strstr(html, "No <code>uplift</code> model"));
    assert_non_null(strstr(html, "Customers per cluster"));
    free(html);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_drift),
        cmocka_unit_test(test_pdf),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
