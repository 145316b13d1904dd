/* alog.c - the access log's per-thread buffers and background writer
 * (alog.h has the contract).
 *
 * The workload: one line of about 200 bytes per request, 10^5 requests a
 * second across the libmicrohttpd threads. One write() per line cost a
 * quarter of the throughput (issue 19); here a request takes its slot's
 * lock (contended only by the writer's swap, ten times a second) and
 * copies the line. The writer swaps the slot's filled buffer for its
 * spare, which it emptied on its previous pass, so a swap is two pointer
 * moves under the lock and the write happens outside it.
 *
 * Pipes, sockets and terminals are polled before each write and given at
 * most PIPE_BUF bytes at a line boundary, so the writer never sleeps
 * inside write() on them and can give up at close; regular files get
 * the whole buffer in one call.
 */
#include "alog.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Threads past this many share slots (each slot has its own lock). */
#define MAX_SLOTS 64

typedef struct {
    pthread_mutex_t mu;
    char *buf, *spare;  /* ALOG_THREAD_BYTES each; spare is the writer's */
    size_t len, nlines; /* of buf */
    int ready;          /* atomic: buffers allocated */
    /* Written under mu with atomic stores, read by alog_get_counts. */
    unsigned long long lines, dropped;
} slot;

struct alog {
    int fd, regular;
    unsigned long gen;
    pthread_t writer;
    pthread_mutex_t mu; /* with cv: the writer's sleep */
    pthread_cond_t cv;
    int wake, stop;
    long long stop_at_ms;                        /* atomic: give up on a stalled pipe after this */
    unsigned nclaimed;                           /* atomic */
    unsigned long long written, dropped, errors; /* the writer's (atomic) */
    slot slots[MAX_SLOTS];
};

static unsigned long generation; /* atomic: tells logs at one address apart */
static __thread const alog *tl_log;
static __thread unsigned long tl_gen;
static __thread slot *tl_slot;

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static unsigned long long count_lines(const char *p, size_t n)
{
    unsigned long long k = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        k++;
    return k;
}

/* Write n bytes of whole lines; the lines not written (a file error, or
 * a pipe still stalled past the close deadline) are counted dropped. */
static void write_out(alog *l, const char *p, size_t n, unsigned long long nlines)
{
    size_t off = 0;
    while (off < n) {
        size_t chunk = n - off;
        if (!l->regular) {
            int ms = ALOG_FLUSH_MS;
            long long stop_at = __atomic_load_n(&l->stop_at_ms, __ATOMIC_ACQUIRE);
            if (stop_at) {
                long long left = stop_at - now_ms();
                if (left <= 0)
                    break;
                ms = left < ALOG_FLUSH_MS ? (int)left : ALOG_FLUSH_MS;
            }
            struct pollfd pf = {l->fd, POLLOUT, 0};
            int pr = poll(&pf, 1, ms);
            if (pr == 0 || (pr < 0 && errno == EINTR))
                continue;
            if (pr < 0 || (pf.revents & (POLLERR | POLLNVAL))) {
                __atomic_add_fetch(&l->errors, 1, __ATOMIC_RELAXED);
                break;
            }
            if (chunk > PIPE_BUF) { /* at most PIPE_BUF: a pipe takes it without waiting */
                const char *nl = memrchr(p + off, '\n', PIPE_BUF);
                chunk = nl ? (size_t)(nl - (p + off)) + 1 : PIPE_BUF;
            }
        }
        ssize_t w = write(l->fd, p + off, chunk);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w <= 0) {
            __atomic_add_fetch(&l->errors, 1, __ATOMIC_RELAXED);
            break;
        }
        off += (size_t)w;
    }
    unsigned long long lost = off == n ? 0 : count_lines(p + off, n - off);
    __atomic_add_fetch(&l->written, nlines - lost, __ATOMIC_RELAXED);
    __atomic_add_fetch(&l->dropped, lost, __ATOMIC_RELAXED);
}

/* One pass: each slot's buffer swapped for its empty spare, then written. */
static void flush(alog *l)
{
    unsigned n = __atomic_load_n(&l->nclaimed, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n && i < MAX_SLOTS; i++) {
        slot *s = &l->slots[i];
        if (!__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE))
            continue;
        pthread_mutex_lock(&s->mu);
        char *full = s->buf;
        size_t len = s->len;
        unsigned long long lines = s->nlines;
        s->buf = s->spare;
        s->spare = full;
        s->len = 0;
        s->nlines = 0;
        pthread_mutex_unlock(&s->mu);
        if (len)
            write_out(l, full, len, lines);
    }
}

static void *writer_main(void *arg)
{
    alog *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        if (!l->wake) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            t.tv_nsec += ALOG_FLUSH_MS * 1000000L;
            if (t.tv_nsec >= 1000000000L)
                t.tv_sec++, t.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&l->cv, &l->mu, &t);
        }
        l->wake = 0;
        pthread_mutex_unlock(&l->mu);
        flush(l);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    flush(l); /* what came after the last pass: every writer has finished */
    return NULL;
}

rfm_status alog_open(int fd, alog **out, char *err, size_t errlen)
{
    *out = NULL;
    alog *l = calloc(1, sizeof *l);
    if (!l)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    struct stat st;
    l->fd = fd;
    l->regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    l->gen = __atomic_add_fetch(&generation, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < MAX_SLOTS; i++)
        pthread_mutex_init(&l->slots[i].mu, NULL);
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&l->writer, NULL, writer_main, l) != 0) {
        free(l);
        return rfm_fail(err, errlen, RFM_ENOMEM, "cannot start the access log's writer thread");
    }
    *out = l;
    return RFM_OK;
}

/* The calling thread's slot, claimed on its first line; NULL when out of
 * memory. */
static slot *my_slot(alog *l)
{
    if (tl_log == l && tl_gen == l->gen)
        return tl_slot;
    unsigned i = __atomic_fetch_add(&l->nclaimed, 1, __ATOMIC_ACQ_REL);
    slot *s;
    if (i >= MAX_SLOTS) {
        s = &l->slots[i % MAX_SLOTS]; /* shared; claimed already */
    } else {
        s = &l->slots[i];
        s->buf = malloc(ALOG_THREAD_BYTES);
        s->spare = malloc(ALOG_THREAD_BYTES);
        if (!s->buf || !s->spare) {
            free(s->buf);
            free(s->spare);
            s->buf = s->spare = NULL;
            return NULL; /* this slot stays unready; the thread tries again */
        }
        __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
    }
    tl_log = l;
    tl_gen = l->gen;
    tl_slot = s;
    return s;
}

void alog_write(alog *l, const char *line, size_t n)
{
    slot *s = my_slot(l);
    if (!s || !__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE)) {
        __atomic_add_fetch(&l->dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    pthread_mutex_lock(&s->mu);
    __atomic_store_n(&s->lines, s->lines + 1, __ATOMIC_RELAXED);
    if (s->len + n > ALOG_THREAD_BYTES) {
        __atomic_store_n(&s->dropped, s->dropped + 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    memcpy(s->buf + s->len, line, n);
    int half = s->len <= ALOG_THREAD_BYTES / 2 && s->len + n > ALOG_THREAD_BYTES / 2;
    s->len += n;
    s->nlines++;
    pthread_mutex_unlock(&s->mu);
    if (half) { /* write it before the 100 ms are up */
        pthread_mutex_lock(&l->mu);
        l->wake = 1;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
}

alog_counts alog_get_counts(alog *l)
{
    alog_counts c = {0, 0, 0, 0};
    for (int i = 0; i < MAX_SLOTS; i++) {
        c.lines += __atomic_load_n(&l->slots[i].lines, __ATOMIC_RELAXED);
        c.dropped += __atomic_load_n(&l->slots[i].dropped, __ATOMIC_RELAXED);
    }
    c.written = __atomic_load_n(&l->written, __ATOMIC_RELAXED);
    c.dropped += __atomic_load_n(&l->dropped, __ATOMIC_RELAXED);
    c.write_errors = __atomic_load_n(&l->errors, __ATOMIC_RELAXED);
    return c;
}

void alog_metrics(alog *l, FILE *f)
{
    alog_counts c = alog_get_counts(l);
    fprintf(f,
            "# HELP rfm_access_log_lines_total Access log lines written, or dropped (buffer full "
            "while the file did not take lines, or a write failed)\n"
            "# TYPE rfm_access_log_lines_total counter\n"
            "rfm_access_log_lines_total{result=\"written\"} %llu\n"
            "rfm_access_log_lines_total{result=\"dropped\"} %llu\n"
            "# HELP rfm_access_log_write_errors_total Writes of the access log that failed\n"
            "# TYPE rfm_access_log_write_errors_total counter\n"
            "rfm_access_log_write_errors_total %llu\n",
            c.written, c.dropped, c.write_errors);
}

alog_counts alog_close(alog *l)
{
    alog_counts c = {0, 0, 0, 0};
    if (!l)
        return c;
    __atomic_store_n(&l->stop_at_ms, now_ms() + ALOG_CLOSE_WAIT_MS, __ATOMIC_RELEASE);
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->writer, NULL);
    c = alog_get_counts(l);
    for (int i = 0; i < MAX_SLOTS; i++) {
        free(l->slots[i].buf);
        free(l->slots[i].spare);
        pthread_mutex_destroy(&l->slots[i].mu);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
    return c;
}
