/* date.h - calendar dates as day numbers (days since 1970-01-01,
 * proleptic Gregorian). All model time is in whole days: a time of day is
 * read only to find the calendar day in the configured zone.
 *
 * Zones are fixed offsets from UTC (UTC itself is offset 0): a time
 * written with an offset ("Z", "+02:00") or a Unix time is an instant and
 * is moved into the zone; a time written without one is already the zone's
 * wall-clock time. Named zones with daylight saving (Europe/Berlin) are
 * not read: they would need the tz database, and core keeps no global
 * state (no setenv TZ).
 */
#ifndef RFM_DATE_H
#define RFM_DATE_H

#include <stddef.h>
#include <stdint.h>

#define DATE_NONE INT32_MIN
/* date_parse_in: a day/month form that auto cannot read without guessing
 * (03/04/2024 or 03.04.2024): the caller asks for data.date_format. */
#define DATE_AMBIGUOUS (INT32_MIN + 1)

/* Day number of a valid y-m-d (no range check). */
int32_t date_from_ymd(int y, int m, int d);
/* Inverse of date_from_ymd. */
void date_to_ymd(int32_t day, int *y, int *m, int *d);

/* How to read a date column. pattern NULL is auto:
 *   ISO 8601: YYYY-MM-DD, then optionally T or space, H:MM[:SS[.fff]] and
 *             an optional Z, +HH:MM, +HHMM or +HH (also -)
 *   YYYYMMDD
 *   the UCI form M/D/YYYY H:MM[:SS] (a time is required: a bare
 *             03/04/2024 is DATE_AMBIGUOUS, as is D.M.YYYY)
 *   Unix time: 9-10 digits are seconds, 12-13 digits milliseconds.
 * Otherwise a strptime-style pattern (date_check_pattern): %Y %y %m %d %b
 * %H %M %S %f %z %s %%; a blank matches any run of blanks (or none);
 * every other byte matches itself. */
typedef struct {
    const char *pattern;
    int32_t zone_s; /* the zone's offset east of UTC, seconds */
} date_spec;

/* Day number in the zone of the len bytes at s (blanks around are
 * ignored), DATE_NONE when the text is in no accepted form or names no real
 * date or time (2011-02-30, 25:00) or a year outside 1900..9999, and
 * DATE_AMBIGUOUS as above. Thread-safe. */
int32_t date_parse_in(const char *s, size_t len, const date_spec *spec);
/* date_parse_in with auto and UTC; DATE_AMBIGUOUS becomes DATE_NONE. */
int32_t date_parse(const char *s, size_t len);
/* Reason the pattern cannot be used, or NULL: unknown directive, or no
 * way to find year, month and day (%s alone is enough). */
const char *date_check_pattern(const char *pattern);
/* Zone text "UTC", "Z", "+HH:MM", "-HHMM", "+HH" to an offset east of UTC
 * in seconds (at most 18 hours); returns 0 when not one of these. */
int date_parse_zone(const char *s, int32_t *offset_s);
/* Format as "YYYY-MM-DD" into out (at least 11 bytes). */
void date_format(int32_t day, char out[11]);
/* Format Unix time t (seconds) as UTC "YYYY-MM-DDTHH:MM:SSZ" into out (at
 * least 21 bytes), as strftime("%Y-%m-%dT%H:%M:%SZ") of gmtime(t) writes
 * it for years 1000..9999 (earlier years are written with four digits,
 * 0999; instants outside years 0..9999 are clamped to those years' ends). */
void date_format_instant(int64_t t, char out[21]);

#endif
