/* bench_kafka.c - Kafka ingest rate of rfm-serve: N synthetic purchase
 * events (100,000 customers) produced to a 4-partition topic of
 * librdkafka's mock cluster (in this process), then bin/rfm-serve started
 * with a fresh store and events.kafka on that topic; the clock runs from
 * the daemon's first answer (seeded, listening) until /metrics shows every
 * message committed. Durable commits: each batch is applied with the
 * store's fsync before its offsets are committed.
 *
 * usage: bench_kafka CONFIG MODELS OUTDIR N [BATCH_MAX]
 * prints: events, seconds, events/s, commits of the store and their share
 * of the time, events per commit. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tests/kafka_mock.h"
#include "bench.h"

static double metric(const char *text, const char *name)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, strlen(name)) == 0 && p[strlen(name)] == ' ')
            return strtod(p + strlen(name) + 1, NULL);
    return -1;
}

/* /metrics through curl; NULL while the daemon does not answer. */
static char *metrics(int port)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "curl -sf http://127.0.0.1:%d/metrics", port);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    size_t k;
    while ((k = fread(b + n, 1, cap - n - 1, p)) > 0)
        if ((n += k) + 1 == cap)
            b = realloc(b, cap *= 2);
    b[n] = '\0';
    if (pclose(p) != 0 || n == 0) {
        free(b);
        return NULL;
    }
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_kafka CONFIG MODELS OUTDIR N [BATCH_MAX]\n");
        return 2;
    }
    const char *config = argv[1], *models = argv[2], *out = argv[3];
    long n = atol(argv[4]);
    const char *batch_max = argc > 5 ? argv[5] : "5000";
    kmock *m = kmock_start();
    if (!m || kmock_topic(m, "bench", 4) != 0) {
        fprintf(stderr, "bench_kafka: cannot start the mock cluster\n");
        return 1;
    }
    uint64_t x = 88172645463325252ull;
    char ev[256];
    for (long i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int len = snprintf(ev, sizeof ev,
                           "{\"event_id\": \"b%ld\", \"customer_id\": \"C%llu\", \"time\": "
                           "\"2011-12-%02dT%02d:00:00Z\", \"invoice\": \"I%ld\", \"amount\": %.2f}",
                           i, (unsigned long long)(x % 100000), 10 + (int)((x >> 40) % 20),
                           (int)((x >> 20) % 24), i / 3, 1 + (double)(x % 10000) / 100);
        char key[16];
        snprintf(key, sizeof key, "C%llu", (unsigned long long)(x % 100000));
        kmock_produce(m, "bench", RD_KAFKA_PARTITION_UA, key, ev, (size_t)len);
    }
    if (kmock_flush(m) != 0) {
        fprintf(stderr, "bench_kafka: produce failed\n");
        return 1;
    }
    char cfg[512], store[512], cmd[4096];
    snprintf(cfg, sizeof cfg, "%s/kafka_bench.yaml", out);
    snprintf(store, sizeof store, "%s/kafka_bench.db", out);
    snprintf(cmd, sizeof cmd,
             "awk '{print} /^events:$/ {print \"  kafka:\"; print \"    brokers: \\\"%s\\\"\"; "
             "print \"    topic: bench\"; print \"    batch_max: %s\"}' %s > %s && rm -f %s %s-wal %s-shm",
             m->bootstraps, batch_max, config, cfg, store, store, store);
    if (system(cmd) != 0)
        return 1;
    int port = 20000 + (int)(getpid() % 20000);
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        char log[512];
        snprintf(log, sizeof log, "%s/kafka_bench.log", out);
        if (!freopen(log, "w", stderr))
            _exit(97);
        execl("bin/rfm-serve", "rfm-serve", "--config", cfg, "--models", models, "--state", store,
              "--port", p, (char *)NULL);
        _exit(98);
    }
    char *t = NULL;
    for (int i = 0; i < 6000 && !(t = metrics(port)); i++)
        usleep(10000);
    if (!t) {
        fprintf(stderr, "bench_kafka: rfm-serve did not start (%s/kafka_bench.log)\n", out);
        kill(pid, SIGKILL);
        return 1;
    }
    double t0 = now_s(), c0 = metric(t, "rfm_state_seconds_sum{op=\"commit\"}"), t1 = 0;
    free(t);
    double done = 0;
    while (now_s() - t0 < 600) {
        usleep(20000);
        if (!(t = metrics(port)))
            continue;
        done = metric(t, "rfm_kafka_messages_total{result=\"applied\"}") +
               metric(t, "rfm_kafka_messages_total{result=\"ignored\"}") +
               metric(t, "rfm_kafka_messages_total{result=\"duplicate\"}") +
               metric(t, "rfm_kafka_messages_total{result=\"poison\"}");
        if (done >= (double)n) {
            t1 = now_s();
            double commit_s = metric(t, "rfm_state_seconds_sum{op=\"commit\"}") - c0;
            double commits = metric(t, "rfm_state_commits_total{result=\"ok\"}");
            double kcommits = metric(t, "rfm_kafka_commits_total{result=\"ok\"}");
            printf("events=%ld seconds=%.3f events_per_s=%.0f store_commits=%.0f "
                   "store_commit_share=%.2f events_per_commit=%.0f kafka_commits=%.0f "
                   "batch_max=%s\n",
                   n, t1 - t0, (double)n / (t1 - t0), commits, commit_s / (t1 - t0),
                   (double)n / (commits > 0 ? commits : 1), kcommits, batch_max);
            free(t);
            break;
        }
        free(t);
    }
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    kmock_stop(m);
    if (!t1) {
        fprintf(stderr, "bench_kafka: only %.0f of %ld messages in 600 s\n", done, n);
        return 1;
    }
    return 0;
}
