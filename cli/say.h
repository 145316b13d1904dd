/* say.h - progress and reports on stderr for the command-line programs
 * (rfm-train, rfm-score, rfm-report), silent with --quiet. Header-only:
 * each program that includes it has its own say_quiet. Not for core/,
 * which never prints, nor for rfm-serve, which logs. */
#ifndef RFM_SAY_H
#define RFM_SAY_H

#include <stdarg.h>
#include <stdio.h>

static int say_quiet; /* --quiet: say() prints nothing */

__attribute__((format(printf, 1, 2))) static inline void say(const char *fmt, ...)
{
    if (say_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

#endif
