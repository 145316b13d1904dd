/* test_redis.c - integration: two real rfm-serve replicas sharing one real
 * redis-server (--state redis://...), over raw sockets. The bundled file is
 * cut at a day as in test_events.c: the replicas are trained and seeded on
 * the lines before it (one of them seeds), the rest is sent as POST
 * /events, each batch to one replica or the other, while one replica is
 * killed with SIGKILL and restarted at random moments; the client resends
 * every batch it got no 200 for, to the other replica. Reads go through
 * the replica that did not take the batch. At the end every customer, read
 * through each replica, is what rfm-train gives on the whole file. Then
 * Redis itself killed (appendfsync always): state calls answer 503 with a
 * JSON error within state.timeout_ms, scoring by features goes on, and
 * once Redis is back on its port both replicas answer again by themselves
 * with nothing acknowledged lost. Skips only without /usr/bin/redis-server. */
#include "testutil.h"
#include "net.h"
#include "redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "csv.h"
#include "rng.h"

#define TOKEN "events-token"
#define CUT "2011-11-15"  /* lines on or after it are events */
#define LAST "2011-12-09" /* last day of the file: as_of of the comparison */
#define BATCH 500

static char dir[64];

typedef struct {
    char id[16], cust[24], time[24], invoice[16], product[24];
    char quantity[16], price[16];
} line;

static line *tail; /* the events, in file order */
static size_t ntail;

typedef struct {
    char id[24];
    double recency, frequency, monetary;
} ref_row;
static ref_row *ref; /* customers.csv of the training run on the whole file */
static size_t nref;

typedef struct {
    int status;
    char *body;
} response;

static int dial(int port) { return dial_for(port, 20); }

/* One request on a new connection; 0 on an answer, -1 when the connection
 * failed or closed first (the daemon died). */
static int request(int port, const char *method, const char *path, const char *body, response *r)
{
    memset(r, 0, sizeof *r);
    int fd = dial(port);
    if (fd < 0)
        return -1;
    size_t blen = body ? strlen(body) : 0;
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " TOKEN "\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      method, path, blen);
    if (send(fd, head, (size_t)hn, MSG_NOSIGNAL) != hn) {
        close(fd);
        return -1;
    }
    for (size_t o = 0; o < blen;) {
        ssize_t w = send(fd, body + o, blen - o, MSG_NOSIGNAL);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        o += (size_t)w;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (!end || sscanf(buf, "HTTP/1.1 %d", &r->status) != 1) {
        free(buf);
        return -1;
    }
    r->body = strdup(end + 4);
    free(buf);
    return 0;
}

static const char *config_name = "rfm.yaml"; /* in dir */
static test_redis srv;                       /* the shared store */

static pid_t start(const char *models, const char *state, int port)
{
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir("..") != 0) /* the config's paths are the repository root's */
            _exit(99);
        char cfg[128], p[16], log[128];
        snprintf(cfg, sizeof cfg, "%s/%s", dir, config_name);
        snprintf(p, sizeof p, "%d", port);
        snprintf(log, sizeof log, "%s/serve.log", dir);
        if (!freopen(log, "a", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(97);
        setenv("RFM_API_TOKENS", TOKEN, 1);
        const char *serve = getenv("RFM_SERVE") ? getenv("RFM_SERVE") : "bin/rfm-serve";
        execl(serve, "rfm-serve", "--config", cfg, "--port", p, "--models", models, "--state",
              state, (char *)NULL);
        _exit(98);
    }
    for (int i = 0; i < 3000; i++) {
        int fd = dial(port);
        if (fd >= 0) {
            close(fd);
            return pid;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return -1;
        usleep(10000);
    }
    return -1;
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
}

static void train(const char *file, const char *models)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "../bin/rfm-train --quiet --config %s/rfm.yaml --transactions %s "
             "--only segments,churn --models %s",
             dir, file, models);
    assert_int_equal(system(cmd), 0);
}

static void copy_field(char *to, size_t cap, const csv_field *f)
{
    snprintf(to, cap, "%.*s", (int)(f->len < cap ? f->len : cap - 1), f->s);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rfmtest_redis_XXXXXX");
    assert_non_null(mkdtemp(dir));
    char cmd[512], path[256];
    /* Products off (no embeddings needed), no uplift campaign. */
    snprintf(cmd, sizeof cmd,
             "sed 's/^\\(    product:\\).*/\\1 null/' ../config/rfm.yaml > %s/rfm.yaml", dir);
    assert_int_equal(system(cmd), 0);
    /* head.csv: the lines before CUT; the rest become events. */
    char err[RFM_ERRLEN];
    csv_reader *csv;
    if (csv_open("../data/online_retail.csv.gz", &csv, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    snprintf(path, sizeof path, "%s/head.csv", dir);
    FILE *head = fopen(path, "w");
    assert_non_null(head);
    size_t cap = 1 << 17;
    tail = malloc(cap * sizeof *tail);
    const csv_field *f;
    size_t n;
    int first = 1;
    while (csv_next(csv, &f, &n, err, sizeof err) == RFM_OK && n > 0) {
        if (first || (n >= 8 && strncmp(f[4].s, CUT, 10) < 0)) {
            for (size_t i = 0; i < n; i++) {
                fputs(i ? ",\"" : "\"", head);
                for (const char *p = f[i].s; *p; p++) /* quotes inside doubled */
                    fputs(*p == '"' ? "\"\"" : (char[2]){*p, 0}, head);
                fputc('"', head);
            }
            fputc('\n', head);
            first = 0;
            continue;
        }
        if (n < 8)
            continue;
        if (ntail == cap)
            tail = realloc(tail, (cap *= 2) * sizeof *tail);
        line *l = &tail[ntail];
        snprintf(l->id, sizeof l->id, "L%zu", ntail);
        copy_field(l->invoice, sizeof l->invoice, &f[0]);
        copy_field(l->product, sizeof l->product, &f[1]);
        copy_field(l->quantity, sizeof l->quantity, &f[3]);
        copy_field(l->time, sizeof l->time, &f[4]);
        copy_field(l->price, sizeof l->price, &f[5]);
        copy_field(l->cust, sizeof l->cust, &f[6]);
        ntail++;
    }
    csv_close(csv);
    fclose(head);
    assert_true(ntail > 10000);
    char models[128];
    snprintf(models, sizeof models, "%s/models", dir);
    train(path, models);
    snprintf(models, sizeof models, "%s/full", dir);
    char full[256];
    snprintf(full, sizeof full, "%s/../data/online_retail.csv.gz", getcwd(path, sizeof path));
    train(full, models);
    snprintf(path, sizeof path, "%s/full/customers.csv", dir);
    FILE *c = fopen(path, "r");
    assert_non_null(c);
    char row[512];
    ref = malloc(8192 * sizeof *ref);
    assert_non_null(fgets(row, sizeof row, c)); /* header */
    while (nref < 8192 && fgets(row, sizeof row, c)) {
        ref_row *r = &ref[nref];
        if (sscanf(row, "%23[^,],%lf,%lf,%lf", r->id, &r->recency, &r->frequency, &r->monetary) ==
            4)
            nref++;
    }
    fclose(c);
    assert_true(nref > 4000);
    if (redis_present())
        redis_start(&srv, "always");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    redis_stop(&srv);
    free(tail);
    free(ref);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

/* JSON of the events order[from..to) (indices into tail). */
static char *batch_json(const size_t *order, size_t from, size_t to, const char *suffix)
{
    size_t cap = 256 + (to - from) * 256, n = 0;
    char *b = malloc(cap);
    n += (size_t)snprintf(b + n, cap - n, "{\"events\": [");
    for (size_t i = from; i < to; i++) {
        const line *l = &tail[order[i]];
        n += (size_t)snprintf(b + n, cap - n,
                              "%s{\"event_id\": \"%s%s\", \"customer_id\": \"%s\", \"time\": "
                              "\"%s\", \"invoice\": \"%s\", \"product\": \"%s\", \"quantity\": "
                              "%s, \"price\": %s}",
                              i > from ? ", " : "", l->id, suffix, l->cust, l->time, l->invoice,
                              l->product, l->quantity, l->price);
    }
    snprintf(b + n, cap - n, "]}");
    return b;
}

static double num(const char *body, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(body, k);
    return p ? strtod(p + strlen(k), NULL) : NAN;
}

/* Every customer of the whole-file training run, through GET
 * /customers/{id}: recency, frequency and monetary as rfm-train's. */
static void compare_all(int port)
{
    size_t bad = 0;
    double worst = 0;
    for (size_t i = 0; i < nref; i++) {
        char path[128];
        snprintf(path, sizeof path, "/customers/%s?as_of=" LAST, ref[i].id);
        response r;
        assert_int_equal(request(port, "GET", path, NULL, &r), 0);
        if (r.status != 200) {
            if (bad++ < 5)
                print_message("customer %s: %d %s\n", ref[i].id, r.status, r.body);
            free(r.body);
            continue;
        }
        double rec = num(r.body, "recency"), fr = num(r.body, "frequency"),
               mon = num(r.body, "monetary");
        double rel = fabs(mon - ref[i].monetary) / fmax(1, fabs(ref[i].monetary));
        worst = fmax(worst, rel);
        if (rec != ref[i].recency || fr != ref[i].frequency || !(rel <= 1e-9)) {
            if (bad++ < 5)
                print_message("customer %s: state %g %g %.10g, rfm-train %g %g %.10g\n", ref[i].id,
                              rec, fr, mon, ref[i].recency, ref[i].frequency, ref[i].monetary);
        }
        free(r.body);
    }
    print_message("  %zu customers compared, %zu differ; largest relative monetary difference "
                  "%.2g (tolerance 1e-9)\n",
                  nref, bad, worst);
    assert_int_equal(bad, 0);
}

static size_t *shuffled(uint64_t seed)
{
    size_t *o = malloc(ntail * sizeof *o);
    for (size_t i = 0; i < ntail; i++)
        o[i] = i;
    rfm_rng g;
    rfm_rng_seed(&g, seed);
    for (size_t i = ntail - 1; i > 0; i--) {
        size_t j = (size_t)(rfm_rng_uniform(&g) * (double)(i + 1));
        if (j > i)
            j = i;
        size_t t = o[i];
        o[i] = o[j], o[j] = t;
    }
    return o;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Batches to replica A or B at random; one of them killed with SIGKILL at
 * random moments and restarted; a batch without a 200 goes to the other. */
static void test_two_replicas_one_killed(void **state)
{
    (void)state;
    if (srv.pid <= 0)
        skip();
    char models[128];
    snprintf(models, sizeof models, "%s/models", dir);
    int port[2] = {free_port(), free_port()};
    pid_t pid[2];
    /* The first seeds; the second finds the store seeded (both at once:
     * test_state_redis.c, test_one_replica_seeds). */
    pid[0] = start(models, srv.url, port[0]);
    pid[1] = start(models, srv.url, port[1]);
    assert_true(pid[0] > 0 && pid[1] > 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "grep -c 'seeded from the training data' %s/serve.log", dir);
    FILE *p = popen(cmd, "r");
    int nseeded = -1;
    assert_int_equal(fscanf(p, "%d", &nseeded), 1);
    pclose(p);
    assert_int_equal(nseeded, 1);

    /* An event through A is read at once through B. */
    response r;
    assert_int_equal(request(port[0], "POST", "/events",
                             "{\"events\": [{\"event_id\": \"x1\", \"customer_id\": \"12347\", "
                             "\"time\": \"2011-12-20T10:00:00Z\", \"amount\": 10}]}",
                             &r),
                     0);
    assert_int_equal(r.status, 200);
    free(r.body);
    assert_int_equal(request(port[1], "GET", "/customers/12347?as_of=2011-12-20", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(num(r.body, "recency") == 1);
    assert_non_null(strstr(r.body, "\"last_event_at\":\"2011-12-20T10:00:00Z\""));
    free(r.body);

    size_t *order = shuffled(13);
    rfm_rng g;
    rfm_rng_seed(&g, 21);
    int kills = 0, resent = 0;
    pid_t killer = -1;
    int victim_i = 0;
#define ARM_KILLER()                                                                               \
    do {                                                                                           \
        double at = 0.05 + 0.5 * rfm_rng_uniform(&g);                                              \
        victim_i = (int)rfm_rng_below(&g, 2);                                                      \
        pid_t victim = pid[victim_i];                                                              \
        if ((killer = fork()) == 0) {                                                              \
            usleep((useconds_t)(at * 1e6));                                                        \
            kill(victim, SIGKILL);                                                                 \
            _exit(0);                                                                              \
        }                                                                                          \
    } while (0)
    ARM_KILLER();
    size_t nb = 0;
    for (size_t from = 0; from < ntail; nb++) {
        size_t to = from + BATCH < ntail ? from + BATCH : ntail;
        char *b = batch_json(order, from, to, "");
        int k = (int)rfm_rng_below(&g, 2);
        int got = request(port[k], "POST", "/events", b, &r);
        if (got != 0) { /* replica k died: the client sends the batch to the other */
            got = request(port[1 - k], "POST", "/events", b, &r);
            resent++;
        }
        free(b);
        assert_int_equal(got, 0);
        if (r.status != 200)
            fail_msg("POST /events: %d %s", r.status, r.body);
        free(r.body);
        /* A customer of the batch, read through the other replica (when up). */
        char path[128];
        snprintf(path, sizeof path, "/customers/%s?as_of=" LAST, tail[order[from]].cust);
        if (tail[order[from]].cust[0] && request(port[1 - k], "GET", path, NULL, &r) == 0) {
            assert_true(r.status == 200 || r.status == 404);
            free(r.body);
        }
        from = to;
        /* The killed replica restarts. */
        for (int i = 0; i < 2; i++) {
            int st;
            if (waitpid(pid[i], &st, WNOHANG) == pid[i]) {
                waitpid(killer, NULL, 0);
                kills++;
                pid[i] = start(models, srv.url, port[i]);
                assert_true(pid[i] > 0);
                if (kills < 6)
                    ARM_KILLER();
                else
                    killer = -1;
            }
        }
    }
    if (killer > 0) {
        kill(killer, SIGKILL);
        waitpid(killer, NULL, 0);
    }
    for (int i = 0; i < 2; i++)
        if (waitpid(pid[i], NULL, WNOHANG) == pid[i]) {
            kills++;
            pid[i] = start(models, srv.url, port[i]);
            assert_true(pid[i] > 0);
        }
    print_message("  %zu batches over two replicas; %d kills, %d batches resent to the other\n", nb,
                  kills, resent);
    assert_true(kills >= 2);
    /* x1 is an extra purchase of 12347 after LAST: as of LAST it does not
     * count, so every customer equals rfm-train on the whole file. */
    compare_all(port[0]);
    compare_all(port[1]);
    stop(pid[0]);
    stop(pid[1]);
    free(order);
}

/* Redis killed: 503 with a JSON error within the timeout, scoring by
 * features still 200; Redis back on its port: both answer again, and the
 * state is what was acknowledged. */
static void test_redis_down_and_back(void **state)
{
    (void)state;
    if (srv.pid <= 0)
        skip();
    char models[128];
    snprintf(models, sizeof models, "%s/models", dir);
    int port = free_port();
    pid_t pid = start(models, srv.url, port);
    assert_true(pid > 0);
    response r;
    const char *ev = "{\"events\": [{\"event_id\": \"down-1\", \"customer_id\": \"12348\", "
                     "\"time\": \"2011-12-21T10:00:00Z\", \"amount\": 7}]}";
    assert_int_equal(request(port, "POST", "/events", ev, &r), 0);
    assert_int_equal(r.status, 200);
    free(r.body);
    assert_int_equal(request(port, "GET", "/customers/12348?as_of=2011-12-21", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    double freq = num(r.body, "frequency");
    free(r.body);

    redis_kill(&srv, SIGKILL);
    double t0 = now_s();
    assert_int_equal(request(port, "GET", "/customers/12348?as_of=2011-12-21", NULL, &r), 0);
    double waited = now_s() - t0;
    print_message("  Redis down: %d %s (%.3f s)\n", r.status, r.body, waited);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "{\"error\":{\"code\":503"));
    assert_non_null(strstr(r.body, srv.url));
    assert_true(waited < 3);
    free(r.body);
    const char *ev2 = "{\"events\": [{\"event_id\": \"down-2\", \"customer_id\": \"12348\", "
                      "\"time\": \"2011-12-22T10:00:00Z\", \"amount\": 3}]}";
    assert_int_equal(request(port, "POST", "/events", ev2, &r), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "nothing of this batch was written"));
    free(r.body);
    assert_int_equal(request(port, "POST", "/predict_churn", "{\"customer_id\": \"12348\"}", &r),
                     0);
    assert_int_equal(r.status, 503);
    free(r.body);
    /* Scoring by features needs no store. */
    assert_int_equal(request(port, "POST", "/segment",
                             "{\"recency\": 12, \"frequency\": 7, \"monetary\": 4310}", &r),
                     0);
    assert_int_equal(r.status, 200);
    free(r.body);

    redis_start(&srv, "always");
    assert_int_equal(request(port, "GET", "/customers/12348?as_of=2011-12-21", NULL, &r), 0);
    assert_int_equal(r.status, 200); /* reconnected by itself */
    assert_true(num(r.body, "frequency") == freq);
    free(r.body);
    assert_int_equal(request(port, "POST", "/events", ev, &r), 0); /* acknowledged: kept */
    assert_int_equal(r.status, 200);
    assert_true(num(r.body, "duplicates") == 1);
    free(r.body);
    assert_int_equal(request(port, "POST", "/events", ev2, &r), 0); /* refused: goes in now */
    assert_int_equal(r.status, 200);
    assert_true(num(r.body, "accepted") == 1);
    free(r.body);
    assert_int_equal(request(port, "GET", "/customers/12348?as_of=2011-12-22", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(num(r.body, "frequency") == freq + 1);
    free(r.body);
    stop(pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_replicas_one_killed),
        cmocka_unit_test(test_redis_down_and_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
