/* erasure.h - the erasure list: customers erased on request (DELETE
 * /customers/{id}), kept as a text file beside the state store
 * (privacy.erasure_list; docs/security.md) and as an in-memory set that
 * rfm-serve consults on every by-id lookup and lookalike search, and that
 * rfm-train drops from its input (txn cleaning reason "erased").
 *
 * An entry is 32 lower-case hex digits, one a line: with pseudonymous ids
 * the customer's pseudonym itself; with clear ids the first 128 bits of
 * HMAC-SHA256 under the empty key of the normalised id, so that the list
 * of people who asked to be forgotten holds no clear id either.
 *
 * Workload: a few entries a day, thousands in all; a lookup per request.
 * Not a replacement for removing rows from the state store: it hides them
 * until the next training and reseed drop them.
 * Thread safety: erasure_has and erasure_add may be called from any
 * thread at once (a read-write lock inside).
 */
#ifndef RFM_ERASURE_H
#define RFM_ERASURE_H

#include <stddef.h>

#include "status.h"

typedef struct erasure erasure;

/* Read the list at path (a missing file is an empty list; it is created by
 * the first erasure_add). A line that is not 32 lower-case hex digits is
 * RFM_EPARSE naming the file and line. */
rfm_status erasure_open(const char *path, erasure **out, char *err, size_t errlen);
void erasure_free(erasure *e);

/* The entry of a customer id as the models keep it (len bytes): the id
 * itself when pseudonymous (it is a pseudonym), else its hash as above.
 * out is 33 bytes; returns 0 for a missing id (empty, nan, ...), else 32. */
size_t erasure_entry(int pseudonymous, const char *id, size_t len, char out[33]);

/* Whether entry (32 hex digits; anything else is never listed) is listed. */
int erasure_has(erasure *e, const char *entry, size_t len);
/* erasure_has of erasure_entry(pseudonymous, id): the form txn_options
 * and rfm-serve's lookups use. */
int erasure_has_id(erasure *e, int pseudonymous, const char *id, size_t len);
/* txn_options.is_erased for ids as kept, pseudonymous or clear; e is the
 * erasure list. */
int erasure_txn_pseudonymous(void *e, const char *id, size_t len);
int erasure_txn_clear(void *e, const char *id, size_t len);
/* Entries listed. */
size_t erasure_count(erasure *e);

/* List entry: appended to the file and flushed to disk (fsync) before it
 * joins the set, so that an answered erasure survives a crash. Listing an
 * entry again changes nothing. RFM_EIO naming the file; RFM_ENOMEM. */
rfm_status erasure_add(erasure *e, const char *entry, char *err, size_t errlen);

#endif
