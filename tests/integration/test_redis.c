/* test_redis.c - integration: two real rfm-serve replicas sharing one real
 * redis-server (--state redis://...), over raw sockets. The bundled file is
 * cut at a day as in test_events.c: the replicas are trained and seeded on
 * the lines before it (one of them seeds), the rest is sent as POST
 * /events, each batch to one replica or the other (A on Redis's TCP port,
 * B on its Unix socket: redis+unix://), while one replica is
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
#include "daemon.h"
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
#include "monotime.h"
#include "rng.h"
#include "events_fixture.h"

#define TOKEN "events-token"
#define CUT "2011-11-15"  /* lines on or after it are events */
#define LAST "2011-12-09" /* last day of the file: as_of of the comparison */
#define BATCH 500

static char dir[64];

static line *tail; /* the events, in file order */
static size_t ntail;

static ref_row *ref; /* customers.csv of the training run on the whole file */
static size_t nref;

/* One request on a new connection; 0 on an answer, -1 when the connection
 * failed or closed first (the daemon died). */
static int request(int port, const char *method, const char *path, const char *body, response *r)
{
    return daemon_request(port, TOKEN, method, path, body, r);
}

static test_redis srv; /* the shared store */

static pid_t start(const char *models, const char *state, int port)
{
    return daemon_start(dir, "rfm.yaml", models, state, TOKEN, port, NULL);
}

static void stop(pid_t pid) { daemon_stop(pid); }

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rfmtest_redis_XXXXXX");
    assert_non_null(mkdtemp(dir));
    /* Products off (no embeddings needed), no uplift campaign; head.csv:
     * the lines before CUT, the rest become events. */
    fixture_cut(dir, CUT, &tail, &ntail, &ref, &nref);
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
    return fixture_batch_json(tail, order, from, to, suffix);
}

static double num(const char *body, const char *key) { return fixture_num(body, key); }

/* Every customer of the whole-file training run, through GET
 * /customers/{id}: recency, frequency and monetary as rfm-train's. */
static void compare_all(int port) { fixture_compare_all(port, TOKEN, ref, nref, LAST); }

static size_t *shuffled(uint64_t seed) { return fixture_shuffled(ntail, seed); }

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
    pid[1] = start(models, srv.sock_url, port[1]); /* B through the Unix socket */
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
                pid[i] = start(models, i ? srv.sock_url : srv.url, port[i]);
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
            pid[i] = start(models, i ? srv.sock_url : srv.url, port[i]);
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
    double t0 = monotime_s();
    assert_int_equal(request(port, "GET", "/customers/12348?as_of=2011-12-21", NULL, &r), 0);
    double waited = monotime_s() - t0;
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
