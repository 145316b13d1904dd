/* date.h - calendar dates as day numbers (days since 1970-01-01, UTC,
 * proleptic Gregorian). All model time is in whole days. */
#ifndef RFM_DATE_H
#define RFM_DATE_H

#include <stddef.h>
#include <stdint.h>

#define DATE_NONE INT32_MIN

/* Day number of a valid y-m-d (no range check). */
int32_t date_from_ymd(int y, int m, int d);
/* Inverse of date_from_ymd. */
void date_to_ymd(int32_t day, int *y, int *m, int *d);
/* Parse "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS]", "YYYY-MM-DDTHH:MM[:SS]" and
 * the UCI form "M/D/YYYY H:MM[:SS]" (len bytes of s). Returns the day number
 * or DATE_NONE when the text is not one of these or names no real date or
 * time (2011-02-30, 25:00). */
int32_t date_parse(const char *s, size_t len);
/* Format as "YYYY-MM-DD" into out (at least 11 bytes). */
void date_format(int32_t day, char out[11]);

#endif
