/* test_score.c - integration: bin/rfm-score on models trained from the
 * bundled data, checked against the real rfm-serve (every customer's
 * figures, to the last digit), against a brute-force percentile, and in
 * every format against its CSV (Parquet read back by DuckDB through
 * integration/parquet_csv.mjs). Runs from tests/ like the unit target;
 * RFM_SERVE names the daemon of the build folder, rfm-score is beside it. */
#include "testutil.h"
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <jansson.h>

#include "csv.h"
#include "jsonout.h"

#define TOKEN "score-test-token"

static char dir[64];
static char score_bin[512];
static pid_t server_pid = -1;
static int server_port;

/* ---- a table read back from a CSV file -------------------------------- */

typedef struct {
    size_t nrows, ncols;
    char **cell; /* nrows x ncols, row-major */
    char **head;
} table;

static void table_free(table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cell[i]);
    for (size_t j = 0; j < t->ncols; j++)
        free(t->head[j]);
    free(t->cell), free(t->head);
    memset(t, 0, sizeof *t);
}

static void table_read(const char *path, table *t)
{
    char err[RFM_ERRLEN];
    csv_reader *r;
    memset(t, 0, sizeof *t);
    if (csv_open(path, &r, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    const csv_field *f;
    size_t n, cap = 0;
    assert_int_equal(csv_next(r, &f, &n, err, sizeof err), RFM_OK);
    t->ncols = n;
    t->head = calloc(n, sizeof *t->head);
    for (size_t j = 0; j < n; j++)
        t->head[j] = strdup(f[j].s);
    while (csv_next(r, &f, &n, err, sizeof err) == RFM_OK && n) {
        assert_int_equal(n, t->ncols);
        if ((t->nrows + 1) * t->ncols > cap) {
            cap = cap ? 2 * cap : 1024 * t->ncols;
            t->cell = realloc(t->cell, cap * sizeof *t->cell);
        }
        for (size_t j = 0; j < n; j++)
            t->cell[t->nrows * t->ncols + j] = strdup(f[j].s);
        t->nrows++;
    }
    csv_close(r);
}

static int col(const table *t, const char *name)
{
    for (size_t j = 0; j < t->ncols; j++)
        if (!strcmp(t->head[j], name))
            return (int)j;
    fail_msg("no column %s", name);
    return -1;
}

static const char *cell(const table *t, size_t i, const char *name)
{
    return t->cell[i * t->ncols + (size_t)col(t, name)];
}

static double num(const table *t, size_t i, const char *name)
{
    const char *s = cell(t, i, name);
    return *s ? strtod(s, NULL) : NAN;
}

/* ---- running things ----------------------------------------------------- */

/* Run rfm-score with args (from the repository root); its exit status. */
static int run_score(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd .. && %s --quiet --models %s/models %s", score_bin, dir, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int dial(int port) { return dial_for(port, 30); }

/* Everything the peer sends on fd until it closes, NUL-terminated; *len
 * its length. fd is closed; the caller frees the text. */
static char *read_to_close(int fd, size_t *len)
{
    size_t n = 0, cap = 1 << 20;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (n + 1 == cap) {
            buf = realloc(buf, cap *= 2);
            assert_non_null(buf);
        }
        ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* method path (with body, or none for a GET) to the daemon on port, on a
 * new connection; the reply's JSON (status 200). */
static json_t *request_json(int port, const char *method, const char *path, const char *body)
{
    int fd = dial(port);
    assert_true(fd >= 0);
    size_t blen = body ? strlen(body) : 0, cap = blen + 512;
    char *req = malloc(cap);
    int n = body ? snprintf(req, cap,
                            "%s %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " TOKEN
                            "\r\nContent-Type: application/json\r\nConnection: close\r\n"
                            "Content-Length: %zu\r\n\r\n%s",
                            method, path, blen, body)
                 : snprintf(req, cap,
                            "%s %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " TOKEN
                            "\r\nConnection: close\r\n\r\n",
                            method, path);
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
        assert_true(w > 0);
        off += (size_t)w;
    }
    free(req);
    size_t len;
    char *buf = read_to_close(fd, &len);
    int status = 0;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    char *bodyp = strstr(buf, "\r\n\r\n");
    assert_non_null(bodyp);
    if (status != 200)
        fail_msg("%s %s: %d %s", method, path, status, bodyp + 4);
    json_error_t je;
    json_t *j = json_loads(bodyp + 4, 0, &je);
    if (!j)
        fail_msg("%s %s: reply not JSON: %s", method, path, je.text);
    free(buf);
    return j;
}

static json_t *post(const char *path, const char *body)
{
    return request_json(server_port, "POST", path, body);
}

/* ---- GET /exports/customers.csv ------------------------------------------ */

typedef struct {
    int status;
    char *head; /* the status line and headers */
    char *body; /* de-chunked */
    size_t len;
} reply;

static void reply_free(reply *r)
{
    free(r->head), free(r->body);
    memset(r, 0, sizeof *r);
}

/* GET path from the daemon on port with the bearer token (none when
 * NULL), on a new connection read to its end; a chunked body is decoded. */
static void get_raw(int port, const char *path, const char *token, reply *out)
{
    memset(out, 0, sizeof *out);
    int fd = dial(port);
    assert_true(fd >= 0);
    char req[2048], auth[256] = "";
    if (token)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n",
                     path, auth);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    size_t len;
    char *buf = read_to_close(fd, &len);
    sscanf(buf, "HTTP/1.%*d %d", &out->status);
    char *b = strstr(buf, "\r\n\r\n");
    assert_non_null(b);
    out->head = strndup(buf, (size_t)(b - buf));
    b += 4;
    size_t blen = len - (size_t)(b - buf);
    out->body = malloc(blen + 1);
    if (strcasestr(out->head, "Transfer-Encoding: chunked")) {
        char *p = b, *end = b + blen;
        for (;;) {
            char *e;
            unsigned long sz = strtoul(p, &e, 16);
            assert_true(e > p && e + 2 <= end && e[0] == '\r' && e[1] == '\n');
            p = e + 2;
            if (!sz)
                break;
            assert_true(p + sz + 2 <= end);
            memcpy(out->body + out->len, p, sz);
            out->len += sz;
            p += sz + 2;
        }
    } else {
        memcpy(out->body, b, blen);
        out->len = blen;
    }
    out->body[out->len] = '\0';
    free(buf);
}

/* The whole text of path, or fail. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return s;
}

/* The endpoint's CSV for query equals rfm-score's for args, byte for byte;
 * returns the rows (lines after the header). */
static size_t export_equals_score(int port, const char *query, const char *args)
{
    char path[512], cmd[1024];
    snprintf(path, sizeof path, "%s/cli.csv", dir);
    snprintf(cmd, sizeof cmd, "%s --out %s", args, path);
    assert_int_equal(run_score(cmd), 0);
    size_t n;
    char *want = slurp(path, &n);
    reply r;
    snprintf(path, sizeof path, "/exports/customers.csv%s%s", *query ? "?" : "", query);
    get_raw(port, path, TOKEN, &r);
    if (r.status != 200)
        fail_msg("GET %s: %d %s", path, r.status, r.body);
    if (r.len != n || memcmp(r.body, want, n) != 0)
        fail_msg("GET %s: %zu bytes, not rfm-score %s's %zu (or other bytes)", path, r.len, args,
                 n);
    size_t rows = 0;
    for (size_t i = 0; i < n; i++)
        rows += want[i] == '\n';
    reply_free(&r);
    free(want);
    return rows - 1;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rfmtest_score_XXXXXX");
    assert_non_null(mkdtemp(dir));
    const char *serve = getenv("RFM_SERVE") ? getenv("RFM_SERVE") : "bin/rfm-serve";
    snprintf(score_bin, sizeof score_bin, "%.*srfm-score", (int)(strlen(serve) - 9), serve);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd .. && bin/rfm-train --quiet --config config/rfm.yaml --transactions "
             "data/online_retail.csv.gz --models %s/models --only segments,churn,cltv",
             dir);
    assert_int_equal(system(cmd), 0);
    /* rfm-score answers as of the training snapshot; so does the daemon
     * without a live store (with one it would answer as of today). */
    snprintf(cmd, sizeof cmd,
             "sed 's|^  path: state/state.db|  path: null|' ../config/rfm.yaml > %s/serve.yaml",
             dir);
    assert_int_equal(system(cmd), 0);
    server_port = free_port();
    fflush(stdout);
    server_pid = fork();
    assert_true(server_pid >= 0);
    if (server_pid == 0) {
        char p[16], models[128], log[128], cfg[128];
        snprintf(p, sizeof p, "%d", server_port);
        snprintf(cfg, sizeof cfg, "%s/serve.yaml", dir);
        snprintf(models, sizeof models, "%s/models", dir);
        snprintf(log, sizeof log, "%s/serve.log", dir);
        if (chdir("..") != 0 || !freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(97);
        setenv("RFM_API_TOKENS", TOKEN, 1);
        execl(serve, "rfm-serve", "--config", cfg, "--port", p, "--models", models, (char *)NULL);
        _exit(98);
    }
    for (int i = 0; i < 1000; i++) {
        int fd = dial(server_port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        usleep(10000);
    }
    fail_msg("rfm-serve did not start (%s/serve.log)", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static const char *const COLUMNS[] = {
    "customer_id",        "recency",       "frequency",        "monetary",
    "rfm_score",          "rfm_segment",   "cluster",          "segment",
    "churn_probability",  "churn_risk",    "churn_percentile", "p_alive",
    "expected_purchases", "cltv",          "cltv_lower",       "cltv_upper",
    "cltv_percentile",    "model_version", "scored_at"};
#define NCOLUMNS (sizeof COLUMNS / sizeof *COLUMNS)

/* Every customer of customers.csv, in its order, with the pinned columns. */
static void test_one_row_per_customer(void **state)
{
    (void)state;
    char args[256], path[128];
    snprintf(path, sizeof path, "%s/all.csv", dir);
    snprintf(args, sizeof args, "--out %s", path);
    assert_int_equal(run_score(args), 0);
    table t, c;
    table_read(path, &t);
    snprintf(path, sizeof path, "%s/models/customers.csv", dir);
    table_read(path, &c);
    assert_int_equal(t.ncols, NCOLUMNS);
    for (size_t j = 0; j < NCOLUMNS; j++)
        assert_string_equal(t.head[j], COLUMNS[j]);
    assert_int_equal(t.nrows, c.nrows);
    for (size_t i = 0; i < t.nrows; i++) {
        assert_string_equal(cell(&t, i, "customer_id"), cell(&c, i, "customer_id"));
        assert_string_equal(cell(&t, i, "recency"), cell(&c, i, "recency"));
        assert_string_equal(cell(&t, i, "scored_at"), "2011-12-10");
    }
    table_free(&t);
    table_free(&c);
}

/* Every figure equals the daemon's answer for the same customer: churn and
 * CLTV by customer_id, the segment from the row's recency, frequency and
 * monetary; doubles compared exactly (the same shortest text). */
static void test_equals_daemon(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/all.csv", dir);
    table t;
    table_read(path, &t);
    assert_true(t.nrows > 4000);
    size_t compared = 0;
    for (size_t start = 0; start < t.nrows; start += 1000) {
        size_t end = start + 1000 < t.nrows ? start + 1000 : t.nrows;
        json_t *ids = json_array(), *rfm = json_array();
        for (size_t i = start; i < end; i++) {
            json_array_append_new(ids,
                                  json_pack("{s:s}", "customer_id", cell(&t, i, "customer_id")));
            json_array_append_new(rfm, json_pack("{s:f,s:f,s:f}", "recency", num(&t, i, "recency"),
                                                 "frequency", num(&t, i, "frequency"), "monetary",
                                                 num(&t, i, "monetary")));
        }
        json_t *b1 = json_pack("{s:o}", "customers", ids),
               *b2 = json_pack("{s:o}", "customers", rfm);
        char *s1 = jsonout_dumps(b1, JSON_COMPACT), *s2 = jsonout_dumps(b2, JSON_COMPACT);
        json_t *churn = post("/predict_churn/batch", s1), *cltv = post("/predict_cltv/batch", s1);
        json_t *seg = post("/segment/batch", s2);
        free(s1), free(s2), json_decref(b1), json_decref(b2);
        for (size_t i = start; i < end; i++) {
            const json_t *ch = json_array_get(json_object_get(churn, "results"), i - start);
            const json_t *cl = json_array_get(json_object_get(cltv, "results"), i - start);
            const json_t *sg = json_array_get(json_object_get(seg, "results"), i - start);
            assert_string_equal(json_string_value(json_object_get(ch, "customer_id")),
                                cell(&t, i, "customer_id"));
            assert_true(json_real_value(json_object_get(ch, "churn_probability")) ==
                        num(&t, i, "churn_probability"));
            assert_string_equal(json_string_value(json_object_get(ch, "risk")),
                                cell(&t, i, "churn_risk"));
            assert_true(json_number_value(json_object_get(cl, "p_alive")) == num(&t, i, "p_alive"));
            assert_true(json_number_value(json_object_get(cl, "expected_purchases")) ==
                        num(&t, i, "expected_purchases"));
            assert_true(json_number_value(json_object_get(cl, "cltv")) == num(&t, i, "cltv"));
            const json_t *iv = json_object_get(cl, "cltv_interval");
            assert_true(json_number_value(json_object_get(iv, "lower")) ==
                        num(&t, i, "cltv_lower"));
            assert_true(json_number_value(json_object_get(iv, "upper")) ==
                        num(&t, i, "cltv_upper"));
            assert_true(json_integer_value(json_object_get(sg, "cluster")) ==
                        (json_int_t)num(&t, i, "cluster"));
            assert_string_equal(json_string_value(json_object_get(sg, "segment")),
                                cell(&t, i, "segment"));
            assert_string_equal(json_string_value(json_object_get(sg, "rfm_score")),
                                cell(&t, i, "rfm_score"));
            assert_string_equal(json_string_value(json_object_get(sg, "rfm_segment")),
                                cell(&t, i, "rfm_segment"));
            /* One version when the models agree, else each "name=version":
             * either way churn's is the daemon's. */
            const char *cv = json_string_value(json_object_get(ch, "model_version"));
            const char *col = cell(&t, i, "model_version");
            char want[160];
            snprintf(want, sizeof want, "churn=%s", cv);
            if (strcmp(col, cv) != 0 && !strstr(col, want))
                fail_msg("model_version '%s' names neither '%s' nor '%s'", col, cv, want);
            compared++;
        }
        json_decref(churn), json_decref(cltv), json_decref(seg);
    }
    printf("    %zu customers: every figure equal to rfm-serve's\n", compared);
    table_free(&t);
}

/* --state and --as-of: a store seeded by rfm-serve from the training data
 * and given events (a new customer, purchases of known ones after the
 * snapshot); rfm-score on it equals GET /customers/{id} at the same as_of
 * for a sample, every figure the endpoint has. */
static void test_state_equals_daemon(void **state)
{
    (void)state;
    char store[128], cmd[1024], out[128];
    snprintf(store, sizeof store, "%s/state.db", dir);
    int port = free_port();
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char p[16], models[128], log[128], cfg[128];
        snprintf(p, sizeof p, "%d", port);
        snprintf(cfg, sizeof cfg, "%s/serve.yaml", dir);
        snprintf(models, sizeof models, "%s/models", dir);
        snprintf(log, sizeof log, "%s/serve_state.log", dir);
        if (chdir("..") != 0 || !freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(97);
        setenv("RFM_API_TOKENS", TOKEN, 1);
        execl(getenv("RFM_SERVE") ? getenv("RFM_SERVE") : "bin/rfm-serve", "rfm-serve", "--config",
              cfg, "--port", p, "--models", models, "--state", store, (char *)NULL);
        _exit(98);
    }
    int up = 0;
    for (int i = 0; i < 3000 && !up; i++) {
        int fd = dial_for(port, 1);
        if (fd >= 0)
            close(fd), up = 1;
        else
            usleep(10000);
    }
    assert_true(up);
    json_t *r = request_json(
        port, "POST", "/events",
        "{\"events\": [{\"event_id\": \"s1\", \"customer_id\": \"17850\", \"time\": "
        "\"2011-12-15T10:00:00Z\", \"amount\": 40}, {\"event_id\": \"s2\", \"customer_id\": "
        "\"new-customer\", \"time\": \"2011-12-12T10:00:00Z\", \"amount\": 25}, {\"event_id\": "
        "\"s3\", \"customer_id\": \"new-customer\", \"time\": \"2011-12-18\", \"quantity\": 2, "
        "\"price\": 9.5}, {\"event_id\": \"s4\", \"customer_id\": \"12347\", \"time\": "
        "\"2011-12-19\", \"amount\": 100}]}");
    assert_int_equal(json_integer_value(json_object_get(r, "accepted")), 4);
    json_decref(r);
    snprintf(out, sizeof out, "%s/state.csv", dir);
    snprintf(cmd, sizeof cmd, "--state %s --as-of 2011-12-20 --out %s", store, out);
    assert_int_equal(run_score(cmd), 0);
    table t;
    table_read(out, &t);
    assert_true(t.nrows > 4000);
    size_t compared = 0, events_seen = 0;
    for (size_t i = 0; i < t.nrows; i++) {
        const char *id = cell(&t, i, "customer_id");
        int ev = !strcmp(id, "17850") || !strcmp(id, "new-customer") || !strcmp(id, "12347");
        events_seen += ev;
        assert_string_equal(cell(&t, i, "scored_at"), "2011-12-20");
        if (i % 97 != 0 && !ev)
            continue;
        char path[256];
        snprintf(path, sizeof path, "/customers/%s?as_of=2011-12-20", id);
        json_t *c = request_json(port, "GET", path, NULL);
        static const char *const NUM[] = {
            "recency", "frequency",          "monetary", "churn_probability",
            "p_alive", "expected_purchases", "cltv"};
        for (size_t k = 0; k < sizeof NUM / sizeof *NUM; k++)
            if (json_number_value(json_object_get(c, NUM[k])) != num(&t, i, NUM[k]))
                fail_msg("%s %s: rfm-score %s, GET /customers %.17g", id, NUM[k],
                         cell(&t, i, NUM[k]), json_number_value(json_object_get(c, NUM[k])));
        static const char *const STR[] = {"rfm_score", "rfm_segment", "segment", "churn_risk"};
        for (size_t k = 0; k < sizeof STR / sizeof *STR; k++)
            assert_string_equal(json_string_value(json_object_get(c, STR[k])), cell(&t, i, STR[k]));
        assert_true(json_integer_value(json_object_get(c, "cluster")) ==
                    (json_int_t)num(&t, i, "cluster"));
        json_decref(c);
        compared++;
    }
    /* The endpoint with the store: rfm-score --state's bytes for the day. */
    snprintf(cmd, sizeof cmd, "--state %s --as-of 2011-12-20", store);
    size_t live_rows = export_equals_score(port, "as_of=2011-12-20", cmd);
    assert_int_equal(live_rows, t.nrows);
    snprintf(cmd, sizeof cmd, "--state %s --as-of 2011-12-20 --top 30 --by value_at_risk", store);
    assert_int_equal(export_equals_score(port, "as_of=2011-12-20&by=value_at_risk&limit=30", cmd),
                     30);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    assert_int_equal(events_seen, 3);
    printf("    %zu of %zu live customers as of 2011-12-20: equal to GET /customers/{id}\n",
           compared, t.nrows);
    table_free(&t);
    /* --as-of alone, and a store that is not there, are refused. */
    assert_int_equal(run_score("--as-of 2011-12-20 --out /tmp/x.csv"), 2);
    snprintf(cmd, sizeof cmd, "--state %s/none.db --out %s/none.csv", dir, dir);
    assert_int_equal(run_score(cmd), 1);
    snprintf(cmd, sizeof cmd, "--state %s --as-of 2011-13-01 --out %s/none.csv", store, dir);
    assert_int_equal(run_score(cmd), 2);
}

/* Percentiles against a brute-force count over the whole column. */
static void test_percentiles(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/all.csv", dir);
    table t;
    table_read(path, &t);
    const char *pairs[2][2] = {{"churn_probability", "churn_percentile"},
                               {"cltv", "cltv_percentile"}};
    for (int k = 0; k < 2; k++) {
        double lo = 100, hi = 0;
        for (size_t i = 0; i < t.nrows; i += 7) {
            double x = num(&t, i, pairs[k][0]);
            size_t below = 0, equal = 0;
            for (size_t r = 0; r < t.nrows; r++) {
                double y = num(&t, r, pairs[k][0]);
                below += y < x, equal += y == x;
            }
            double want =
                round(10000.0 * ((double)below + 0.5 * (double)equal) / (double)t.nrows) / 100;
            assert_true(fabs(num(&t, i, pairs[k][1]) - want) < 1e-9);
            lo = fmin(lo, want), hi = fmax(hi, want);
        }
        assert_true(lo < 1 && hi > 99); /* the whole range is used */
    }
    table_free(&t);
}

/* .csv.gz inflates to the CSV; every .jsonl line holds the CSV row's
 * values; the Parquet file read by DuckDB prints as the CSV, byte for byte. */
static void test_formats_agree(void **state)
{
    (void)state;
    char args[512], csv[128], path[128], cmd[512];
    snprintf(csv, sizeof csv, "%s/all.csv", dir);
    snprintf(path, sizeof path, "%s/all.csv.gz", dir);
    snprintf(args, sizeof args, "--out %s", path);
    assert_int_equal(run_score(args), 0);
    snprintf(cmd, sizeof cmd, "gzip -dc %s | cmp -s - %s", path, csv);
    assert_int_equal(system(cmd), 0);

    snprintf(path, sizeof path, "%s/all.parquet", dir);
    snprintf(args, sizeof args, "--out %s", path);
    assert_int_equal(run_score(args), 0);
    snprintf(cmd, sizeof cmd, "node integration/parquet_csv.mjs %s > %s/pq.csv && cmp %s/pq.csv %s",
             path, dir, dir, csv);
    assert_int_equal(system(cmd), 0);

    snprintf(path, sizeof path, "%s/all.jsonl", dir);
    snprintf(args, sizeof args, "--out %s", path);
    assert_int_equal(run_score(args), 0);
    table t;
    table_read(csv, &t);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[8192];
    size_t i = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        assert_non_null(j);
        assert_int_equal(json_object_size(j), NCOLUMNS);
        for (size_t c = 0; c < NCOLUMNS; c++) {
            const json_t *v = json_object_get(j, COLUMNS[c]);
            const char *want = cell(&t, i, COLUMNS[c]);
            if (json_is_string(v))
                assert_string_equal(json_string_value(v), want);
            else if (json_is_null(v))
                assert_string_equal(want, "");
            else
                assert_true(json_number_value(v) == strtod(want, NULL));
        }
        json_decref(j);
        i++;
    }
    fclose(f);
    assert_int_equal(i, t.nrows);
    table_free(&t);
}

/* --top N --by: the N highest of the key, highest first, ties in table
 * order; --segment: exactly that segment's customers. */
static void test_top_and_segment(void **state)
{
    (void)state;
    char args[512], path[128];
    table all, top;
    snprintf(path, sizeof path, "%s/all.csv", dir);
    table_read(path, &all);
    static const char *const BY[] = {"cltv", "churn", "value_at_risk"};
    for (int b = 0; b < 3; b++) {
        snprintf(path, sizeof path, "%s/top.csv", dir);
        snprintf(args, sizeof args, "--out %s --top 25 --by %s", path, BY[b]);
        assert_int_equal(run_score(args), 0);
        table_read(path, &top);
        assert_int_equal(top.nrows, 25);
        double prev = INFINITY;
        for (size_t i = 0; i < top.nrows; i++) {
            double p = num(&top, i, "churn_probability"), v = num(&top, i, "cltv");
            double k = b == 0 ? v : b == 1 ? p : p * v;
            assert_true(k <= prev);
            prev = k;
        }
        size_t higher = 0; /* customers of the whole table above the list's last key */
        for (size_t i = 0; i < all.nrows; i++) {
            double p = num(&all, i, "churn_probability"), v = num(&all, i, "cltv");
            higher += (b == 0 ? v : b == 1 ? p : p * v) > prev;
        }
        assert_true(higher <= 24);
        table_free(&top);
    }
    snprintf(args, sizeof args, "--out %s --segment Champions --segment 'Best customers'", path);
    assert_int_equal(run_score(args), 0);
    table_read(path, &top);
    size_t want = 0;
    for (size_t i = 0; i < all.nrows; i++)
        want += !strcmp(cell(&all, i, "rfm_segment"), "Champions") ||
                !strcmp(cell(&all, i, "segment"), "Best customers");
    assert_true(want > 0 && want < all.nrows);
    assert_int_equal(top.nrows, want);
    table_free(&top);
    table_free(&all);
}

/* --changed-since: nothing against its own output; a customer whose risk
 * band differs and one missing from the previous file come out, alone. */
static void test_changed_since(void **state)
{
    (void)state;
    char args[512], cmd[1024];
    snprintf(args, sizeof args, "--out %s/same.csv --changed-since %s/all.csv", dir, dir);
    assert_int_equal(run_score(args), 0);
    table t;
    snprintf(cmd, sizeof cmd, "%s/same.csv", dir);
    table_read(cmd, &t);
    assert_int_equal(t.nrows, 0);
    table_free(&t);
    /* 12347's risk band edited, 12348 removed. */
    snprintf(cmd, sizeof cmd,
             "sed -e '/^12347,/s/,low,/,high,/' -e '/^12348,/d' %s/all.csv > %s/prev.csv", dir,
             dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "--out %s/changed.csv --changed-since %s/prev.csv", dir, dir);
    assert_int_equal(run_score(args), 0);
    snprintf(cmd, sizeof cmd, "%s/changed.csv", dir);
    table_read(cmd, &t);
    assert_int_equal(t.nrows, 2);
    assert_string_equal(cell(&t, 0, "customer_id"), "12347");
    assert_string_equal(cell(&t, 1, "customer_id"), "12348");
    table_free(&t);
}

/* GET /exports/customers.csv: the bytes of rfm-score --out x.csv for the
 * same filters (the daemon has no store: both as of the training
 * snapshot), streamed chunked as a download; bad parameters 400 naming
 * the parameter; no token 401. */
static void test_export_endpoint(void **state)
{
    (void)state;
    reply r;
    get_raw(server_port, "/exports/customers.csv", TOKEN, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strcasestr(r.head, "\r\nContent-Type: text/csv"));
    assert_non_null(strcasestr(
        r.head, "\r\nContent-Disposition: attachment; filename=\"customers-2011-12-10.csv\""));
    assert_non_null(strcasestr(r.head, "\r\nTransfer-Encoding: chunked"));
    reply_free(&r);
    static const struct {
        const char *query, *args;
    } SAME[] = {
        {"", ""},
        {"by=value_at_risk&limit=25", "--top 25 --by value_at_risk"},
        {"limit=7&by=churn&as_of=2011-12-10", "--top 7 --by churn"},
        {"segment=Champions&segment=Best%20customers",
         "--segment Champions --segment 'Best customers'"},
        {"min_p_alive=0.999", "--min-p-alive 0.999"},
        {"by=cltv&limit=100&segment=Champions&min_p_alive=0.5",
         "--top 100 --by cltv --segment Champions --min-p-alive 0.5"},
    };
    size_t rows[sizeof SAME / sizeof *SAME];
    for (size_t i = 0; i < sizeof SAME / sizeof *SAME; i++)
        rows[i] = export_equals_score(server_port, SAME[i].query, SAME[i].args);
    char path[128];
    snprintf(path, sizeof path, "%s/all.csv", dir);
    table all;
    table_read(path, &all);
    size_t alive = 0, customers = all.nrows;
    for (size_t i = 0; i < all.nrows; i++)
        alive += num(&all, i, "p_alive") >= 0.999;
    table_free(&all);
    assert_int_equal(rows[0], customers);
    assert_int_equal(rows[1], 25);
    assert_int_equal(rows[2], 7);
    assert_true(rows[3] > 0 && rows[3] < rows[0]);
    assert_true(alive > 0 && alive < rows[0]);
    assert_int_equal(rows[4], alive);
    assert_true(rows[5] > 0 && rows[5] <= 100);
    printf("    %zu exports equal to rfm-score's CSV, byte for byte (%zu, 25, 7, %zu, %zu, %zu "
           "rows)\n",
           sizeof SAME / sizeof *SAME, rows[0], rows[3], rows[4], rows[5]);
    static const struct {
        const char *query, *names;
    } BAD[] = {
        {"by=cltvx&limit=3", "by:"},
        {"by=cltv", "limit:"},
        {"limit=3", "by:"},
        {"by=cltv&limit=0", "limit:"},
        {"by=cltv&limit=12abc", "limit:"},
        {"segment=Nobody", "segment:"},
        {"min_p_alive=1.5", "min_p_alive:"},
        {"min_p_alive=", "min_p_alive:"},
        {"as_of=2011-02-30", "as_of:"},
        {"as_of=2011-12-20", "as_of:"}, /* no store: only the snapshot day */
        {"color=red", "color:"},
        {"by=cltv&by=churn&limit=2", "by:"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
        snprintf(path, sizeof path, "/exports/customers.csv?%s", BAD[i].query);
        get_raw(server_port, path, TOKEN, &r);
        json_t *j = json_loads(r.body, 0, NULL);
        const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        if (r.status != 400 || !m || strncmp(m, BAD[i].names, strlen(BAD[i].names)) != 0)
            fail_msg("GET %s: %d %s, expected 400 naming %s", path, r.status, r.body, BAD[i].names);
        json_decref(j);
        reply_free(&r);
    }
    get_raw(server_port, "/exports/customers.csv", NULL, &r);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    get_raw(server_port, "/exports/customers.csv", "not-a-token", &r);
    assert_int_equal(r.status, 401);
    reply_free(&r);
}

/* Peak resident memory of process pid (VmHWM), in kB. */
static long peak_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* A big export (the bundled customers 40 times over under other ids: 173,520
 * rows, about 45 MB of CSV) streams without being held in memory: the
 * daemon's peak resident memory grows by less than half the CSV (pass 1's
 * arrays, the lifetime-value cache and a worker thread's heap may come on
 * top of what a first small export from the same table used). */
static void test_big_export(void **state)
{
    (void)state;
    char cmd[2048], models[128];
    snprintf(models, sizeof models, "%s/big", dir);
    /* customers.csv x 40, its sha256 put in the manifest in place of the old. */
    snprintf(cmd, sizeof cmd,
             "cp -r %s/models %s && cd %s && old=$(sha256sum customers.csv | cut -c1-64) && "
             "awk -F, 'NR==1{h=$0; next} {r[NR]=$0} END{print h; for(k=0;k<40;k++) for(i in r) "
             "{n=split(r[i],f,\",\"); s=f[1] \"-\" k; for(j=2;j<=n;j++) s=s \",\" f[j]; print s}}' "
             "customers.csv > c.tmp && mv c.tmp customers.csv && "
             "new=$(sha256sum customers.csv | cut -c1-64) && sed -i \"s/$old/$new/\" manifest.json",
             dir, models, models);
    assert_int_equal(system(cmd), 0);
    int port = free_port();
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char p[16], log[128], cfg[128];
        snprintf(p, sizeof p, "%d", port);
        snprintf(cfg, sizeof cfg, "%s/serve.yaml", dir);
        snprintf(log, sizeof log, "%s/serve_big.log", dir);
        if (chdir("..") != 0 || !freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(97);
        setenv("RFM_API_TOKENS", TOKEN, 1);
        execl(getenv("RFM_SERVE") ? getenv("RFM_SERVE") : "bin/rfm-serve", "rfm-serve", "--config",
              cfg, "--port", p, "--models", models, (char *)NULL);
        _exit(98);
    }
    int up = 0;
    for (int i = 0; i < 3000 && !up; i++) {
        int fd = dial_for(port, 1);
        if (fd >= 0)
            close(fd), up = 1;
        else
            usleep(10000);
    }
    assert_true(up);
    reply r;
    get_raw(port, "/exports/customers.csv?by=cltv&limit=10", TOKEN, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    long before = peak_kb(pid);
    get_raw(port, "/exports/customers.csv", TOKEN, &r);
    long after = peak_kb(pid);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    assert_int_equal(r.status, 200);
    size_t rows = 0;
    for (size_t i = 0; i < r.len; i++)
        rows += r.body[i] == '\n';
    assert_int_equal(rows, 1 + 40 * 4338);
    printf("    %zu rows, %.1f MB of CSV: the daemon's peak RSS %.1f -> %.1f MB\n", rows - 1,
           (double)r.len / 1e6, (double)before / 1024, (double)after / 1024);
    assert_true((double)(after - before) * 1024 < (double)r.len / 2);
    reply_free(&r);
}

/* Start rfm-serve on port with config cfg and models (no store); its pid. */
static pid_t start_daemon(int port, const char *cfg, const char *models, const char *log)
{
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        if (chdir("..") != 0 || !freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(97);
        setenv("RFM_API_TOKENS", TOKEN, 1);
        execl(getenv("RFM_SERVE") ? getenv("RFM_SERVE") : "bin/rfm-serve", "rfm-serve", "--config",
              cfg, "--port", p, "--models", models, (char *)NULL);
        _exit(98);
    }
    for (int i = 0; i < 3000; i++) {
        int fd = dial_for(port, 1);
        if (fd >= 0) {
            close(fd);
            return pid;
        }
        usleep(10000);
    }
    fail_msg("rfm-serve did not start (%s)", log);
    return -1;
}

/* --by uplift_gain: a campaign log whose rows name customers (the first
 * 1,500 of the table, in its order, plus a duplicate id, an id the table
 * does not have and a row with a bad number) trains the uplift model
 * (learner rule, fast); with uplift.id_column the list is those customers
 * ranked by the expected net gain that POST /uplift_score answers for
 * their row's features with the configured value and costs, ties in table
 * order; the endpoint gives the same bytes. */
static void test_uplift_gain(void **state)
{
    (void)state;
    enum { N = 1500, TOP = 40 };
    char path[256], cmd[2048], cfg[128], models[128];
    table cust;
    snprintf(path, sizeof path, "%s/models/customers.csv", dir);
    table_read(path, &cust);
    assert_true(cust.nrows > N);
    /* train.csv: the rows the model learns from; campaign.csv (the config's
     * uplift.campaign, which the gains are read from): the same rows and
     * three more. */
    char tpath[256];
    snprintf(path, sizeof path, "%s/campaign.csv", dir);
    snprintf(tpath, sizeof tpath, "%s/train.csv", dir);
    FILE *f = fopen(path, "w"), *tf = fopen(tpath, "w");
    assert_non_null(f);
    assert_non_null(tf);
    fprintf(f, "customer_id,recency,history,mens,womens,zip_code,newbie,channel,segment,visit\n");
    fprintf(tf, "customer_id,recency,history,mens,womens,zip_code,newbie,channel,segment,visit\n");
    static const char *const ZIP[] = {"Rural", "Urban", "Surburban"};
    static const char *const CH[] = {"Web", "Phone", "Multichannel"};
    static const char *const ARM[] = {"No E-Mail", "Mens E-Mail", "Womens E-Mail"};
    uint64_t s = 42;
#define RND() ((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 33)
    static char feats[N][160];
    for (int i = 0; i < N + 3; i++) {
        int rec = (int)(RND() % 12) + 1, mens = (int)(RND() % 2), womens = (int)(RND() % 2);
        int zip = (int)(RND() % 3), newbie = (int)(RND() % 2), ch = (int)(RND() % 3), arm = i % 3;
        double hist = (double)(RND() % 200000) / 100;
        int p = 10 + (arm == 1 && mens ? 30 : 0) + (arm == 2 && rec < 6 ? 25 : 0);
        int visit = (int)(RND() % 100) < p;
        const char *id = i < N    ? cell(&cust, (size_t)i, "customer_id")
                         : i == N ? cell(&cust, 7, "customer_id") /* duplicate: not counted */
                                  : "not-a-customer";
        char fv[160];
        snprintf(fv, sizeof fv, "%d,%.2f,%d,%d,%s,%d,%s", rec, hist, mens, womens, ZIP[zip], newbie,
                 CH[ch]);
        if (i == N + 2)
            snprintf(fv, sizeof fv, "soon,1,0,0,Rural,0,Web"); /* refused */
        else if (i < N)
            snprintf(feats[i], sizeof feats[i], "%s", fv);
        fprintf(f, "%s,%s,%s,%d\n", id, fv, ARM[arm], visit);
        if (i < N)
            fprintf(tf, "%s,%s,%s,%d\n", id, fv, ARM[arm], visit);
    }
#undef RND
    fclose(f);
    fclose(tf);
    snprintf(cfg, sizeof cfg, "%s/uplift.yaml", dir);
    snprintf(cmd, sizeof cmd,
             "sed -e 's|^  campaign: .*|  campaign: %s|' -e 's|^  learner: .*|  learner: "
             "rule\\n  id_column: customer_id|' -e 's|^  path: state/state.db.*|  path: null|' "
             "../config/rfm.yaml > %s && grep -q '^  id_column: customer_id' %s",
             path, cfg, cfg);
    assert_int_equal(system(cmd), 0);
    snprintf(models, sizeof models, "%s/upmodels", dir);
    snprintf(cmd, sizeof cmd,
             "cd .. && bin/rfm-train --quiet --config %s --transactions data/online_retail.csv.gz "
             "--models %s --only segments,churn,cltv,uplift --campaign %s",
             cfg, models, tpath);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/serve_uplift.log", dir);
    int port = free_port();
    pid_t pid = start_daemon(port, cfg, models, path);
    /* Every customer's gain from the API: the largest expected net gain. */
    static double gain[N];
    for (int lo = 0; lo < N; lo += 500) {
        json_t *items = json_array();
        for (int i = lo; i < lo + 500; i++) {
            int rec, mens, womens, newbie;
            double hist;
            char zip[16], ch[16];
            assert_int_equal(sscanf(feats[i], "%d,%lf,%d,%d,%15[^,],%d,%15s", &rec, &hist, &mens,
                                    &womens, zip, &newbie, ch),
                             7);
            json_array_append_new(
                items, json_pack("{s:{s:i,s:f,s:i,s:i,s:s,s:i,s:s},s:f,s:{s:f,s:f}}", "features",
                                 "recency", rec, "history", hist, "mens", mens, "womens", womens,
                                 "zip_code", zip, "newbie", newbie, "channel", ch, "value", 30.0,
                                 "costs", "Mens E-Mail", 0.5, "Womens E-Mail", 0.5));
        }
        json_t *body = json_pack("{s:o}", "customers", items);
        char *text = jsonout_dumps(body, JSON_COMPACT);
        json_t *res = request_json(port, "POST", "/uplift_score/batch", text);
        free(text), json_decref(body);
        for (int i = lo; i < lo + 500; i++) {
            const json_t *g =
                json_object_get(json_array_get(json_object_get(res, "results"), (size_t)(i - lo)),
                                "expected_net_gain");
            double m = json_number_value(json_object_get(g, "Mens E-Mail")),
                   w = json_number_value(json_object_get(g, "Womens E-Mail"));
            gain[i] = m > w ? m : w;
        }
        json_decref(res);
    }
    /* The expected list: by gain, highest first, ties in table order. */
    int order[N];
    for (int i = 0; i < N; i++)
        order[i] = i;
    for (int i = 1; i < N; i++) /* insertion sort: stable */
        for (int j = i; j > 0 && gain[order[j]] > gain[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    snprintf(path, sizeof path, "%s/uplift_top.csv", dir);
    snprintf(cmd, sizeof cmd,
             "cd .. && %s --quiet --config %s --models %s --out %s --top %d --by "
             "uplift_gain",
             score_bin, cfg, models, path, TOP);
    assert_int_equal(system(cmd), 0);
    table top;
    table_read(path, &top);
    assert_int_equal(top.nrows, TOP);
    for (int k = 0; k < TOP; k++)
        if (strcmp(cell(&top, (size_t)k, "customer_id"),
                   cell(&cust, (size_t)order[k], "customer_id")))
            fail_msg("uplift_gain list row %d: %s, expected %s (gain %g)", k,
                     cell(&top, (size_t)k, "customer_id"),
                     cell(&cust, (size_t)order[k], "customer_id"), gain[order[k]]);
    assert_true(gain[order[0]] > gain[order[N - 1]]);
    printf("    --top %d --by uplift_gain: the API's gains in order (%.4g down to %.4g; lowest "
           "%.4g)\n",
           TOP, gain[order[0]], gain[order[TOP - 1]], gain[order[N - 1]]);
    table_free(&top);
    /* A list longer than the customers with a gain: exactly those. */
    snprintf(cmd, sizeof cmd,
             "cd .. && %s --quiet --config %s --models %s --out %s --top 100000 "
             "--by uplift_gain",
             score_bin, cfg, models, path);
    assert_int_equal(system(cmd), 0);
    table_read(path, &top);
    assert_int_equal(top.nrows, N);
    size_t levels = 1;
    for (int k = 0; k < N; k++) {
        if (strcmp(cell(&top, (size_t)k, "customer_id"),
                   cell(&cust, (size_t)order[k], "customer_id")))
            fail_msg("uplift_gain list row %d: %s, expected %s", k,
                     cell(&top, (size_t)k, "customer_id"),
                     cell(&cust, (size_t)order[k], "customer_id"));
        levels += k && gain[order[k]] != gain[order[k - 1]];
    }
    assert_true(levels >= 2);
    printf("    all %d customers with a gain in the API's order (%zu distinct gains)\n", N, levels);
    table_free(&top);
    /* The endpoint: the same bytes. */
    size_t n;
    char *want = slurp(path, &n);
    reply r;
    get_raw(port, "/exports/customers.csv?by=uplift_gain&limit=100000", TOKEN, &r);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_true(r.len == n && memcmp(r.body, want, n) == 0);
    free(want);
    reply_free(&r);
    table_free(&cust);
    /* Without uplift.id_column (the bundled config): refused, exit 2. */
    char args[256];
    snprintf(args, sizeof args, "--out %s/r.csv --top 5 --by uplift_gain", dir);
    assert_int_equal(run_score(args), 2);
}

/* Usage mistakes exit 2 with a message, before writing anything. */
static void test_refusals(void **state)
{
    (void)state;
    static const char *const BAD[] = {
        "--out x.txt",
        "--out %s/r.csv --state s.db --as-of someday",
        "--out %s/r.csv --as-of 2011-12-01",
        "--out %s/r.csv --top 5 --by uplift_gain",
        "--out %s/r.csv --top 5",
        "--out %s/r.csv --top 0 --by cltv",
        "--out %s/r.csv --segment Nobody",
        "--out %s/r.csv --by cltv",
        "",
    };
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
        char args[512], path[128];
        snprintf(args, sizeof args, BAD[i], dir);
        assert_int_equal(run_score(args), 2);
        snprintf(path, sizeof path, "%s/r.csv", dir);
        assert_int_equal(access(path, F_OK), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_row_per_customer),
        cmocka_unit_test(test_equals_daemon),
        cmocka_unit_test(test_percentiles),
        cmocka_unit_test(test_formats_agree),
        cmocka_unit_test(test_top_and_segment),
        cmocka_unit_test(test_changed_since),
        cmocka_unit_test(test_export_endpoint),
        cmocka_unit_test(test_big_export),
        cmocka_unit_test(test_uplift_gain),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_state_equals_daemon),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
