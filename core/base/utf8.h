/* utf8.h - one check of a UTF-8 sequence, shared by the event reader
 * (core/serving/event.c) and the HTTP layer's log cleaner (server/http.c).
 * Pure, no state: thread-safe. */
#ifndef RFM_UTF8_H
#define RFM_UTF8_H

#include <stddef.h>

/* Length of the well-formed UTF-8 sequence at s (n >= 1 bytes left): 1 for
 * an ASCII byte, 2 to 4 for a multi-byte sequence, or 0 when it is not a
 * complete, well-formed sequence. Overlong forms, surrogates and code points
 * past U+10FFFF are refused, as jansson refuses them. */
size_t utf8_seq(const unsigned char *s, size_t n);

#endif
