/* guard.c - connection deadlines and eviction; see guard.h. */
#include "guard.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "monotime.h"

enum { FRESH, BUSY, IDLE, DOOMED };

typedef struct conn {
    struct conn *prev, *next;
    int fd;
    int state;
    double since; /* seconds (monotonic): connected (FRESH) or last response (IDLE) */
} conn;

typedef struct {
    conn *head, *tail; /* oldest first: appended when a state starts */
} list;

struct guard {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t thread;
    int stop;
    list fresh, idle;
    long open, doomed;
    long watermark;
    double head_timeout, idle_timeout;
    guard_counts counts;
};

static void push(list *l, conn *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void unlink_conn(list *l, conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

static list *list_of(guard *g, conn *c)
{
    return c->state == FRESH ? &g->fresh : c->state == IDLE ? &g->idle : NULL;
}

/* Close c (under the mutex: its socket is still its own). */
static void doom(guard *g, conn *c)
{
    unlink_conn(list_of(g, c), c);
    c->state = DOOMED;
    g->doomed++;
    shutdown(c->fd, SHUT_RDWR);
}

static void *watchdog(void *arg)
{
    guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        double now = monotime_s();
        while (g->fresh.head && g->fresh.head->since + g->head_timeout <= now) {
            doom(g, g->fresh.head);
            g->counts.head++;
        }
        while (g->idle.head && g->idle.head->since + g->idle_timeout <= now) {
            doom(g, g->idle.head);
            g->counts.idle++;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 100000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->wake, &g->mu, &until);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

rfm_status guard_new(long watermark, double head_timeout_s, double idle_timeout_s, guard **out,
                     char *err, size_t errlen)
{
    *out = NULL;
    guard *g = calloc(1, sizeof *g);
    if (!g)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    g->watermark = watermark;
    g->head_timeout = head_timeout_s;
    g->idle_timeout = idle_timeout_s;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->wake, &ca);
    pthread_condattr_destroy(&ca);
    int e = pthread_create(&g->thread, NULL, watchdog, g);
    if (e != 0) {
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return rfm_fail(err, errlen, RFM_EIO, "cannot start the connection watchdog: %s",
                        strerror(e));
    }
    *out = g;
    return RFM_OK;
}

void guard_free(guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    /* The daemon has stopped: every connection was notified closed. */
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void guard_on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                         enum MHD_ConnectionNotificationCode code)
{
    guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = NULL;
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn *c = info ? calloc(1, sizeof *c) : NULL;
        if (!c)
            return; /* out of memory: this one goes unguarded */
        c->fd = info->connect_fd;
        c->state = FRESH;
        c->since = monotime_s();
        pthread_mutex_lock(&g->mu);
        g->open++;
        /* Make room: the longest-waiting connection without a request in
         * progress goes, kept-alive ones first. */
        while (g->open - g->doomed > g->watermark && (g->idle.head || g->fresh.head)) {
            doom(g, g->idle.head ? g->idle.head : g->fresh.head);
            g->counts.evicted++;
        }
        push(&g->fresh, c);
        pthread_mutex_unlock(&g->mu);
        *socket_context = c;
        return;
    }
    conn *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->state == DOOMED)
        g->doomed--;
    else if (list_of(g, c))
        unlink_conn(list_of(g, c), c);
    g->open--;
    pthread_mutex_unlock(&g->mu);
    free(c);
    *socket_context = NULL;
}

static conn *conn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

void guard_head_done(guard *g, struct MHD_Connection *mc)
{
    conn *c = conn_of(mc);
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->state == FRESH || c->state == IDLE) {
        unlink_conn(list_of(g, c), c);
        c->state = BUSY;
    }
    pthread_mutex_unlock(&g->mu);
}

void guard_request_done(guard *g, struct MHD_Connection *mc)
{
    conn *c = conn_of(mc);
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->state == BUSY) {
        c->state = IDLE;
        c->since = monotime_s();
        push(&g->idle, c);
    }
    pthread_mutex_unlock(&g->mu);
}

guard_counts guard_get_counts(guard *g)
{
    pthread_mutex_lock(&g->mu);
    guard_counts n = g->counts;
    n.open = g->open;
    pthread_mutex_unlock(&g->mu);
    return n;
}
