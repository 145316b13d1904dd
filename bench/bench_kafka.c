/* bench_kafka.c - Kafka ingest rate of rfm-serve: N synthetic purchase
 * events (100,000 customers, keyed by customer) produced to a topic of
 * librdkafka's mock cluster (in this process), then bin/rfm-serve started
 * with a fresh store and events.kafka on that topic. Durable commits: each
 * batch is applied with the store's fsync before its offsets are
 * committed.
 *
 * The clock runs from the moment /metrics shows the partitions assigned
 * (the group joined: a one-off of a few hundred ms, printed apart as
 * join_s) until it shows every message committed. The daemon's CPU time
 * over that window (utime + stime of /proc/PID/stat) is printed beside
 * the wall time: the machine is shared, and CPU microseconds per event
 * say more than events/s on a loaded one. The mock cluster runs in this
 * process on the same cores: its CPU time (ours, getrusage) is printed
 * too.
 *
 * Limits of the mock: a partition keeps at most 100,000 messages and
 * 5 MB (older ones are dropped), so N / PARTITIONS must stay below about
 * 35,000 (a message is about 140 bytes); the bench refuses more.
 *
 * usage: bench_kafka CONFIG MODELS OUTDIR N [BATCH_MAX [PARTITIONS]]
 * prints one line of name=value: events, seconds, events_per_s, cpu_s and
 * cpu_us_per_event of the daemon, mock_cpu_s, join_s, the store's commits
 * and their share of the time, events per commit, Kafka commits, and the
 * 30,000 events/s target (target_met=yes|no). The daemon's log and pid go
 * to OUTDIR/kafka_bench.log and OUTDIR/kafka_bench.pid (for perf record
 * -p). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tests/kafka_mock.h"
#include "bench.h"

#define TARGET 30000.0 /* events/s, issue 15 */

static double metric(const char *text, const char *name)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, strlen(name)) == 0 && p[strlen(name)] == ' ')
            return strtod(p + strlen(name) + 1, NULL);
    return -1;
}

/* GET /metrics on 127.0.0.1:port (one connection, HTTP/1.0); NULL while
 * the daemon does not answer. A socket, not curl: a fork and exec every
 * few ms would take CPU from the daemon being measured. */
static char *metrics(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    const char *req = "GET /metrics HTTP/1.0\r\nHost: b\r\n\r\n";
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    ssize_t k;
    while (b && (k = recv(fd, b + n, cap - n - 1, 0)) > 0)
        if ((n += (size_t)k) + 1 == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb)
                free(b);
            b = nb;
        }
    close(fd);
    if (!b)
        return NULL;
    b[n] = '\0';
    char *body = strstr(b, "\r\n\r\n");
    if (!body || strncmp(b, "HTTP/1.", 7) != 0 || strncmp(b + 9, "200", 3) != 0) {
        free(b);
        return NULL;
    }
    memmove(b, body + 4, strlen(body + 4) + 1);
    return b;
}

/* CPU seconds (user + system) of process pid so far; -1 when unknown. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec * 1e-6 +
           (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec * 1e-6;
}

static double consumed(const char *t)
{
    return metric(t, "rfm_kafka_messages_total{result=\"applied\"}") +
           metric(t, "rfm_kafka_messages_total{result=\"ignored\"}") +
           metric(t, "rfm_kafka_messages_total{result=\"duplicate\"}") +
           metric(t, "rfm_kafka_messages_total{result=\"poison\"}");
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_kafka CONFIG MODELS OUTDIR N [BATCH_MAX [PARTITIONS]]\n");
        return 2;
    }
    const char *config = argv[1], *models = argv[2], *out = argv[3];
    long n = atol(argv[4]);
    const char *batch_max = argc > 5 ? argv[5] : "5000";
    int parts = argc > 6 ? atoi(argv[6]) : 4;
    if (n < 1 || parts < 1 || n / parts > 35000) {
        fprintf(stderr,
                "bench_kafka: N / PARTITIONS must be from 1 to 35,000 (the mock cluster keeps "
                "5 MB a partition)\n");
        return 2;
    }
    kmock *m = kmock_start();
    if (!m || kmock_topic(m, "bench", parts) != 0) {
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
             "print \"    topic: bench\"; print \"    batch_max: %s\"}' %s > %s && rm -f %s %s-wal "
             "%s-shm",
             m->bootstraps, batch_max, config, cfg, store, store, store);
    if (system(cmd) != 0)
        return 1;
    /* A port free now (bound to 0 and closed). */
    int port = 0, pfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in pa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t plen = sizeof pa;
    if (pfd >= 0 && bind(pfd, (struct sockaddr *)&pa, sizeof pa) == 0 &&
        getsockname(pfd, (struct sockaddr *)&pa, &plen) == 0)
        port = ntohs(pa.sin_port);
    if (pfd >= 0)
        close(pfd);
    if (!port) {
        fprintf(stderr, "bench_kafka: no free port\n");
        return 1;
    }
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    fflush(stdout);
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
    char pidfile[512];
    snprintf(pidfile, sizeof pidfile, "%s/kafka_bench.pid", out);
    FILE *pf = fopen(pidfile, "w");
    if (pf)
        fprintf(pf, "%d\n", (int)pid), fclose(pf);
    char *t = NULL;
    for (int i = 0; i < 6000 && !(t = metrics(port)); i++)
        usleep(10000);
    if (!t) {
        fprintf(stderr, "bench_kafka: rfm-serve did not start (%s/kafka_bench.log)\n", out);
        kill(pid, SIGKILL);
        return 1;
    }
    free(t);
    /* Wait for the group to be joined, then time the consumption. */
    double t_up = now_s(), t0 = 0, t1 = 0, cpu0 = 0, mock0 = 0, c0 = 0, done = 0;
    while (now_s() - t_up < 600) {
        if (!(t = metrics(port))) {
            usleep(5000);
            continue;
        }
        if (!t0 && metric(t, "rfm_kafka_partitions_assigned") > 0) {
            t0 = now_s(), cpu0 = proc_cpu_s(pid), mock0 = self_cpu_s();
            c0 = metric(t, "rfm_state_seconds_sum{op=\"commit\"}");
        }
        if (t0 && (done = consumed(t)) >= (double)n) {
            t1 = now_s();
            double cpu = proc_cpu_s(pid) - cpu0, mock = self_cpu_s() - mock0;
            double commit_s = metric(t, "rfm_state_seconds_sum{op=\"commit\"}") - c0;
            double commits = metric(t, "rfm_state_commits_total{result=\"ok\"}");
            double kcommits = metric(t, "rfm_kafka_commits_total{result=\"ok\"}");
            double rate = (double)n / (t1 - t0);
            printf("events=%ld partitions=%d batch_max=%s seconds=%.3f events_per_s=%.0f "
                   "cpu_s=%.2f cpu_us_per_event=%.1f mock_cpu_s=%.2f join_s=%.2f "
                   "store_commits=%.0f store_commit_share=%.2f events_per_commit=%.0f "
                   "kafka_commits=%.0f target=%.0f target_met=%s\n",
                   n, parts, batch_max, t1 - t0, rate, cpu, 1e6 * cpu / (double)n, mock, t0 - t_up,
                   commits, commit_s / (t1 - t0), (double)n / (commits > 0 ? commits : 1), kcommits,
                   TARGET, rate >= TARGET ? "yes" : "no");
            free(t);
            break;
        }
        free(t);
        usleep(t0 ? 10000 : 2000);
    }
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    kmock_stop(m);
    if (!t1) {
        fprintf(stderr, "bench_kafka: only %.0f of %ld messages in 600 s (%s/kafka_bench.log)\n",
                done, n, out);
        return 1;
    }
    return 0;
}
