/* status.h - status codes shared by every core/ module.
 *
 * core/ never prints or exits: each fallible function returns an rfm_status
 * and, when it fails, writes a one-line human message into a buffer the
 * caller owns (char *err, size_t errlen; err may be NULL). Programs get the
 * code, people get the message.
 *
 * The numbers are part of the interface: never renumber or reuse one, only
 * append. docs/errors.md gives each a cause and a fix.
 */
#ifndef RFM_STATUS_H
#define RFM_STATUS_H

#include <stddef.h>

typedef enum {
    RFM_OK = 0,
    RFM_ENOMEM = 1,      /* allocation failed; objects left unchanged */
    RFM_EIO = 2,         /* open/read/write/rename failed (errno in message) */
    RFM_EPARSE = 3,      /* malformed input file: message names file:line:column */
    RFM_EINVAL = 4,      /* invalid argument or configuration value */
    RFM_EFORMAT = 5,     /* model file of the wrong format or version */
    RFM_ECHECKSUM = 6,   /* model file does not match the manifest's sha256 */
    RFM_ENOCONVERGE = 7, /* an optimiser did not converge */
    RFM_ENOTFOUND = 8,   /* a looked-up key (customer id, model) is absent */
    RFM_ELIBRARY = 9,    /* a library (GSL, FAISS, XGBoost) failed, or libpq cannot load */
    RFM_EDATA = 10,      /* data valid in form but unusable (too few rows...) */
    RFM_EBUSY = 11,      /* another process holds the lock (holder in message) */
    RFM_ENOSPC = 12,     /* the disk (or the store's size cap) is full; nothing was
                            written, the store is still valid */
} rfm_status;

#define RFM_ERRLEN 512 /* a comfortable size for err buffers */

/* Short fixed description of a status, e.g. "out of memory". Never NULL. */
const char *rfm_strstatus(rfm_status st);

/* Format a message into err (if err != NULL and errlen > 0) and return st,
 * so that failure paths read `return rfm_fail(err, errlen, RFM_EINVAL, ...)`. */
rfm_status rfm_fail(char *err, size_t errlen, rfm_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
