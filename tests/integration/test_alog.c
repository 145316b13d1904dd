/* test_alog.c - the access log's buffers and writer (server/alog.c):
 * every line of several threads is in the file after alog_close, whole
 * and in each thread's order; a pipe nobody reads does not block the
 * threads writing lines, their lines are counted dropped, and close gives
 * up after its deadline instead of hanging. */
#include "testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../server/alog.h"

/* A thread's lines of the first case fit its buffer (ALOG_THREAD_BYTES),
 * so that none may be dropped however late the writer runs; the second
 * case writes ten times that. */
enum { THREADS = 6, FEW = 2000, MANY = 20000 };

typedef struct {
    alog *l;
    int id, lines;
} job;

static void *writer(void *arg)
{
    const job *j = arg;
    char line[128];
    for (int i = 0; i < j->lines; i++) {
        int n = snprintf(line, sizeof line, "{\"thread\":%d,\"seq\":%d,\"pad\":\"%.*s\"}\n", j->id,
                         i, i % 60, "------------------------------------------------------------");
        alog_write(j->l, line, (size_t)n);
    }
    return NULL;
}

static void run_writers(alog *l, int lines)
{
    pthread_t t[THREADS];
    job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (job){l, i, lines};
        assert_int_equal(pthread_create(&t[i], NULL, writer, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* A regular file: all lines there, none dropped, each thread's in order. */
static void test_every_line_after_close(void **state)
{
    (void)state;
    char path[] = "/tmp/rfmtest_alog_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    alog *l;
    char err[RFM_ERRLEN];
    assert_int_equal(alog_open(fd, &l, err, sizeof err), RFM_OK);
    run_writers(l, FEW);
    alog_counts c = alog_close(l); /* no sleep: the last lines are the close's to write */
    assert_int_equal(c.lines, (unsigned long long)THREADS * FEW);
    assert_int_equal(c.written, c.lines);
    assert_int_equal(c.dropped, 0);
    close(fd);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    int next[THREADS] = {0};
    char line[256];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        int th, seq;
        assert_int_equal(sscanf(line, "{\"thread\":%d,\"seq\":%d,", &th, &seq), 2);
        assert_true(th >= 0 && th < THREADS);
        assert_int_equal(seq, next[th]); /* whole lines, in the thread's order */
        next[th]++;
        assert_int_equal(line[strlen(line) - 1], '\n');
        n++;
    }
    fclose(f);
    unlink(path);
    assert_int_equal(n, (size_t)THREADS * FEW);
    printf("    %zu lines of %d threads, all written in each thread's order\n", n, THREADS);
}

/* A pipe nobody reads: the writing threads finish (they would block
 * forever if a line waited for the pipe), the lines past the pipe's and
 * the buffers' room are dropped and counted, and close returns after its
 * deadline. */
static void test_stalled_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    alog *l;
    char err[RFM_ERRLEN];
    assert_int_equal(alog_open(p[1], &l, err, sizeof err), RFM_OK);
    run_writers(l, MANY);
    alog_counts mid = alog_get_counts(l);
    assert_true(mid.dropped > 0);
    double t0 = now_s();
    alog_counts c = alog_close(l);
    double waited = now_s() - t0;
    assert_int_equal(c.lines, (unsigned long long)THREADS * MANY);
    assert_int_equal(c.written + c.dropped, c.lines); /* every line accounted for */
    assert_true(c.written > 0);
    assert_true(waited < 30); /* gave up (ALOG_CLOSE_WAIT_MS), did not hang */
    /* What went into the pipe is whole lines. */
    static char buf[1 << 20];
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    ssize_t n = read(p[0], buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(buf[n - 1], '\n');
    size_t lines = 0;
    for (ssize_t i = 0; i < n; i++)
        lines += buf[i] == '\n';
    assert_int_equal(lines, c.written);
    close(p[0]);
    close(p[1]);
    printf("    stalled pipe: %llu lines written, %llu dropped, close waited %.1f s\n", c.written,
           c.dropped, waited);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_line_after_close),
        cmocka_unit_test(test_stalled_pipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
