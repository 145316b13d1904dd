/* guard.h - deadlines for the connections of rfm-serve, beside libmicrohttpd.
 *
 * libmicrohttpd 0.9.75 closes a connection idle for timeout_s, but every
 * byte received starts that clock again, and it has no deadline for a whole
 * request head: a client sending one header byte every few seconds keeps
 * its connection for ever, and a thousand such clients fill the connection
 * limit (slowloris). The guard adds, per connection:
 *   - waiting for its first request head: closed head_timeout_s after it
 *     connected (TLS handshake included), however it trickles;
 *   - kept alive after a response: closed idle_timeout_s after that
 *     response unless the next request head is complete by then;
 *   - serving a request (head complete, response not yet sent): left to
 *     libmicrohttpd's own timeout.
 * Near the connection limit (over `watermark` open), each new connection
 * closes the one that has waited longest without a request in progress:
 * kept-alive ones first, then those still sending their first head, so
 * that there is always room to accept.
 *
 * Closing is shutdown(2) of the socket: libmicrohttpd then sees the end of
 * the stream and closes the connection in its own thread, with the usual
 * notifications. libmicrohttpd closes a socket only after its CLOSED
 * notification, which takes the guard's mutex, so a socket the guard
 * shuts down is never one already closed and reused by a new connection.
 *
 * Workload: up to a few hundred thousand connections; every operation is
 * O(1) but the watchdog's (10 times a second, O(connections past their
 * deadline): the lists are kept in deadline order).
 * Threads: every function may be called from any thread.
 */
#ifndef RFM_GUARD_H
#define RFM_GUARD_H

#include <microhttpd.h>

#include "status.h"

typedef struct guard guard;

typedef struct {
    long open;             /* connections now */
    unsigned long head;    /* closed at the head deadline */
    unsigned long idle;    /* kept-alive ones closed at their deadline */
    unsigned long evicted; /* closed to make room near the limit */
} guard_counts;

/* Start the watchdog thread. watermark: connections open above which a new
 * one evicts another (below libmicrohttpd's connection limit). */
rfm_status guard_new(long watermark, double head_timeout_s, double idle_timeout_s, guard **out,
                     char *err, size_t errlen);
/* Stop the watchdog and free. Only after the daemon has stopped: its
 * CLOSED notifications still use the guard. NULL is a no-op. */
void guard_free(guard *g);

/* MHD_OPTION_NOTIFY_CONNECTION callback, with the guard as cls. */
void guard_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                         enum MHD_ConnectionNotificationCode code);
/* A request head on c is complete (the first access-handler call). */
void guard_head_done(guard *g, struct MHD_Connection *c);
/* The request on c is over (the completion notification): the
 * connection waits, kept alive, for its next request. */
void guard_request_done(guard *g, struct MHD_Connection *c);

guard_counts guard_get_counts(guard *g);

#endif
