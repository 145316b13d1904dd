/* say.h - progress and reports on stderr for the command-line programs
 * (rfm-train, rfm-score, rfm-report), silent with --quiet. Header-only:
 * each program that includes it has its own say_quiet. Not for core/,
 * which never prints, nor for rfm-serve, which logs. */
#ifndef RFM_SAY_H
#define RFM_SAY_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int say_quiet; /* --quiet: say() prints nothing */

/* A thread working beside others (rfm-train's steps) sets say_to: its
 * lines gather there, and the program prints them in a fixed order when
 * the work is done, not interleaved by who finished first. */
typedef struct {
    char *s;
    size_t len, cap;
} say_text;
static __thread say_text *say_to;

static inline void say_v(const char *fmt, va_list ap)
{
    if (!say_to) {
        vfprintf(stderr, fmt, ap);
        return;
    }
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    say_text *t = say_to;
    if (n < 0)
        return;
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->len + (size_t)n + 1) * 2;
        char *s = realloc(t->s, cap);
        if (!s) { /* out of memory: the line goes straight out */
            vfprintf(stderr, fmt, ap);
            return;
        }
        t->s = s, t->cap = cap;
    }
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    t->len += (size_t)n;
}

/* Progress and reports: nothing with --quiet. */
__attribute__((format(printf, 1, 2))) static inline void say(const char *fmt, ...)
{
    if (say_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    say_v(fmt, ap);
    va_end(ap);
}

/* Errors: printed with --quiet too. */
__attribute__((format(printf, 1, 2))) static inline void tell(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say_v(fmt, ap);
    va_end(ap);
}

/* What t gathered, to stderr; t emptied. */
static inline void say_flush(say_text *t)
{
    if (t->len)
        fwrite(t->s, 1, t->len, stderr);
    free(t->s);
    memset(t, 0, sizeof *t);
}

#endif
