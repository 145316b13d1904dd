/* svg.h - rfm-report's charts: a small writer of inline SVG (line charts
 * and grouped bar charts) for a self-contained, print-friendly HTML page.
 *
 * Every chart is one <svg> element of fixed size with a viewBox (it scales
 * with the page), a <title>, axes with "nice" ticks, a legend, and no
 * scripts, fonts or links. Non-goals: interaction, log axes, stacking. */
#ifndef RFM_REPORT_SVG_H
#define RFM_REPORT_SVG_H

#include <stddef.h>
#include <stdio.h>

enum { SVG_SOLID = 0, SVG_DASHED = 1, SVG_MARKERS = 2 };

/* One series: n points (x[i], y[i]) for lines; for bars y[i] is the value
 * of category i and x is unused. */
typedef struct {
    const char *name; /* legend text */
    const double *x, *y;
    size_t n;
    int style; /* SVG_SOLID, SVG_DASHED (a reference line), SVG_MARKERS (line and dots) */
} svg_series;

typedef struct {
    const char *title; /* the chart's <title> and heading inside it */
    const char *xlabel, *ylabel;
    double xmin, xmax, ymin, ymax; /* visible ranges (bars: x unused) */
    int xpercent, ypercent;        /* tick labels as percentages of 1 */
} svg_axes;

/* A line chart of ns series. */
void svg_lines(FILE *f, const svg_axes *a, const svg_series *s, size_t ns);

/* Grouped bars: category i has one bar per series, s[j].y[i]; cats[i]
 * labels the group. */
void svg_bars(FILE *f, const svg_axes *a, const char *const *cats, size_t ncat, const svg_series *s,
              size_t ns);

/* A "nice" upper bound at or above v (1, 2, 2.5 or 5 times a power of 10);
 * 1 when v <= 0 or not finite. */
double svg_nice_max(double v);

#endif
