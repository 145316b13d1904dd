/* sse.h - a client of GET /feed for the integration tests (test_feed,
 * test_kafka): the request over HTTP/1.0, so that the body is the event
 * stream itself (no chunked framing), read event by event over a raw
 * socket. Include after testutil.h and net.h. */
#ifndef RFM_TEST_SSE_H
#define RFM_TEST_SSE_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int fd, status;
    char buf[1 << 16];
    size_t len, off; /* bytes read; parsed up to off */
} sse;

typedef struct {
    unsigned long long id;
    char event[16];
    char data[2048];
} sse_event;

/* Connects to port (dial_for with dial_ms), sends the request head as it
 * is, and reads the reply's head. The reply's status (also in s->status),
 * or -1 when the connection closed before the head ended; close with
 * sse_close either way. */
static inline int sse_open_head(sse *s, int port, int dial_ms, const char *head)
{
    memset(s, 0, sizeof *s);
    s->fd = dial_for(port, dial_ms);
    assert_true(s->fd >= 0);
    assert_int_equal(send(s->fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    char *end;
    while (!(end = strstr(s->buf, "\r\n\r\n"))) {
        ssize_t k = recv(s->fd, s->buf + s->len, sizeof s->buf - s->len - 1, 0);
        if (k <= 0)
            return -1;
        s->len += (size_t)k;
        s->buf[s->len] = '\0';
    }
    sscanf(s->buf, "HTTP/1.%*d %d", &s->status);
    s->off = (size_t)(end + 4 - s->buf);
    return s->status;
}

/* The next event (comments and retry lines skipped); 0, or -1 when the
 * stream ended or nothing came within the socket's timeout. */
static inline int sse_next(sse *s, sse_event *e)
{
    for (;;) {
        char *end = strstr(s->buf + s->off, "\n\n");
        if (end) {
            *end = '\0';
            char *text = s->buf + s->off;
            s->off = (size_t)(end + 2 - s->buf);
            memset(e, 0, sizeof *e);
            int any = 0;
            while (text && *text) {
                char *nl = strchr(text, '\n');
                if (nl)
                    *nl = '\0';
                if (strncmp(text, "id: ", 4) == 0)
                    e->id = strtoull(text + 4, NULL, 10), any = 1;
                else if (strncmp(text, "event: ", 7) == 0)
                    snprintf(e->event, sizeof e->event, "%s", text + 7), any = 1;
                else if (strncmp(text, "data: ", 6) == 0)
                    snprintf(e->data, sizeof e->data, "%s", text + 6), any = 1;
                text = nl ? nl + 1 : NULL;
            }
            if (any)
                return 0;
            continue;
        }
        if (s->off > 0) { /* keep the unparsed tail at the start */
            memmove(s->buf, s->buf + s->off, s->len - s->off + 1);
            s->len -= s->off;
            s->off = 0;
        }
        if (s->len + 1 >= sizeof s->buf)
            return -1;
        ssize_t k = recv(s->fd, s->buf + s->len, sizeof s->buf - s->len - 1, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        s->len += (size_t)k;
        s->buf[s->len] = '\0';
    }
}

static inline void sse_close(sse *s) { close(s->fd); }

#endif
