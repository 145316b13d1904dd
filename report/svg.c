/* svg.c - line and bar charts as inline SVG. */
#include "svg.h"

#include <math.h>
#include <string.h>

#include "html.h"

/* Size in SVG units (the viewBox), and the plot area inside it. */
enum { W = 640, H = 340, ML = 70, MR = 20, MT = 34, MB = 52 };
static const char *const COLORS[] = {"#1f5fa8", "#d2691e", "#2e8b57", "#8b3a8b", "#8c8c8c"};
#define NCOLORS (sizeof COLORS / sizeof *COLORS)

double svg_nice_max(double v)
{
    if (!(v > 0) || !isfinite(v))
        return 1.0;
    double e = pow(10.0, floor(log10(v)));
    static const double m[] = {1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0};
    for (size_t i = 0; i < sizeof m / sizeof *m; i++)
        if (m[i] * e >= v * (1 - 1e-12))
            return m[i] * e;
    return 10.0 * e;
}

static double tick_step(double lo, double hi)
{
    double raw = (hi - lo) / 5.0;
    if (!(raw > 0) || !isfinite(raw))
        return 1.0;
    double e = pow(10.0, floor(log10(raw)));
    double r = raw / e;
    return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 2.5 ? 2.5 : r <= 5 ? 5 : 10) * e;
}

static void tick_label(FILE *f, double v, int percent, double step)
{
    if (percent)
        fprintf(f, "%.*f%%", step * 100 < 1 ? 1 : 0, v * 100);
    else if (fabs(v) >= 1e6)
        fprintf(f, "%.3gM", v / 1e6);
    else if (fabs(v) >= 1e4)
        fprintf(f, "%.4gk", v / 1e3);
    else
        fprintf(f, "%.4g", fabs(v) < 1e-12 ? 0.0 : v);
}

typedef struct {
    double x0, x1, y0, y1;
} frame;

static double px(const frame *fr, double x)
{
    double t = fr->x1 > fr->x0 ? (x - fr->x0) / (fr->x1 - fr->x0) : 0;
    return ML + t * (W - ML - MR);
}

static double py(const frame *fr, double y)
{
    double t = fr->y1 > fr->y0 ? (y - fr->y0) / (fr->y1 - fr->y0) : 0;
    return H - MB - t * (H - MT - MB);
}

static void open_chart(FILE *f, const svg_axes *a)
{
    fprintf(f,
            "<svg class=\"chart\" viewBox=\"0 0 %d %d\" "
            "width=\"%d\" height=\"%d\" role=\"img\">\n<title>",
            W, H, W, H);
    html_text(f, a->title);
    fprintf(f, "</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", W,
            H);
    fprintf(f, "<text x=\"%d\" y=\"18\" font-size=\"14\" font-weight=\"bold\">", ML);
    html_text(f, a->title);
    fputs("</text>\n", f);
}

/* Grid, ticks and axis labels; x ticks only when xticks is set. */
static void axes(FILE *f, const svg_axes *a, const frame *fr, int xticks)
{
    fputs("<g font-size=\"11\" fill=\"#333\">\n", f);
    double ys = tick_step(fr->y0, fr->y1);
    for (double v = ceil(fr->y0 / ys) * ys; v <= fr->y1 + ys * 1e-9; v += ys) {
        double y = py(fr, v);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">",
                ML, y, W - MR, y, ML - 6, y + 4);
        tick_label(f, v, a->ypercent, ys);
        fputs("</text>\n", f);
    }
    if (xticks) {
        double xs = tick_step(fr->x0, fr->x1);
        for (double v = ceil(fr->x0 / xs) * xs; v <= fr->x1 + xs * 1e-9; v += xs) {
            double x = px(fr, v);
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>"
                    "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                    x, MT, x, H - MB, x, H - MB + 16);
            tick_label(f, v, a->xpercent, xs);
            fputs("</text>\n", f);
        }
    }
    fprintf(f,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>"
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n",
            ML, H - MB, W - MR, H - MB, ML, MT, ML, H - MB);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (ML + W - MR) / 2, H - 12);
    html_text(f, a->xlabel ? a->xlabel : "");
    fprintf(f,
            "</text>\n<text transform=\"translate(16 %d) rotate(-90)\" "
            "text-anchor=\"middle\">",
            (MT + H - MB) / 2);
    html_text(f, a->ylabel ? a->ylabel : "");
    fputs("</text>\n</g>\n", f);
}

static void legend(FILE *f, const svg_series *s, size_t ns)
{
    fputs("<g font-size=\"11\">\n", f);
    double x = W - MR;
    for (size_t j = ns; j-- > 0;) { /* right-aligned, last series rightmost */
        double w = 22 + 6.2 * (double)(s[j].name ? strlen(s[j].name) : 0);
        x -= w + 10;
        const char *c = COLORS[j % NCOLORS];
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" "
                "stroke-width=\"3\"%s/><text x=\"%.1f\" y=\"%d\">",
                x, MT - 8, x + 16, MT - 8, c,
                s[j].style == SVG_DASHED ? " stroke-dasharray=\"5 4\"" : "", x + 20, MT - 4);
        html_text(f, s[j].name ? s[j].name : "");
        fputs("</text>\n", f);
    }
    fputs("</g>\n", f);
}

void svg_lines(FILE *f, const svg_axes *a, const svg_series *s, size_t ns)
{
    frame fr = {a->xmin, a->xmax, a->ymin, a->ymax};
    open_chart(f, a);
    axes(f, a, &fr, 1);
    for (size_t j = 0; j < ns; j++) {
        const char *c = COLORS[j % NCOLORS];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", c,
                s[j].style == SVG_DASHED ? " stroke-dasharray=\"5 4\"" : "");
        for (size_t i = 0; i < s[j].n; i++)
            if (isfinite(s[j].x[i]) && isfinite(s[j].y[i]))
                fprintf(f, "%s%.1f,%.1f", i ? " " : "", px(&fr, s[j].x[i]), py(&fr, s[j].y[i]));
        fputs("\"/>\n", f);
        if (s[j].style == SVG_MARKERS)
            for (size_t i = 0; i < s[j].n; i++)
                if (isfinite(s[j].x[i]) && isfinite(s[j].y[i]))
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                            px(&fr, s[j].x[i]), py(&fr, s[j].y[i]), c);
    }
    legend(f, s, ns);
    fputs("</svg>\n", f);
}

void svg_bars(FILE *f, const svg_axes *a, const char *const *cats, size_t ncat, const svg_series *s,
              size_t ns)
{
    frame fr = {0, 1, a->ymin, a->ymax};
    svg_axes ax = *a;
    if (ncat > 6) /* the slanted category names take the axis label's place */
        ax.xlabel = NULL;
    open_chart(f, &ax);
    axes(f, &ax, &fr, 0);
    double gw = (double)(W - ML - MR) / (double)(ncat ? ncat : 1);
    double bw = gw * 0.8 / (double)(ns ? ns : 1);
    double y0 = py(&fr, fr.y0 < 0 && fr.y1 > 0 ? 0 : fr.y0);
    fputs("<g font-size=\"11\">\n", f);
    for (size_t i = 0; i < ncat; i++) {
        double gx = ML + gw * (double)i + gw * 0.1;
        for (size_t j = 0; j < ns; j++) {
            if (i >= s[j].n || !isfinite(s[j].y[i]))
                continue;
            double y = py(&fr, s[j].y[i]);
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                    gx + bw * (double)j, y < y0 ? y : y0, bw * 0.92, fabs(y0 - y),
                    COLORS[j % NCOLORS]);
        }
        if (ncat > 6) /* long names would overlap: slanted */
            fprintf(f,
                    "<text transform=\"translate(%.1f %d) rotate(-25)\" text-anchor=\"end\" "
                    "font-size=\"10\">",
                    ML + gw * ((double)i + 0.5), H - MB + 12);
        else
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                    ML + gw * ((double)i + 0.5), H - MB + 16);
        html_text(f, cats[i]);
        fputs("</text>\n", f);
    }
    fputs("</g>\n", f);
    if (ns > 1 || (ns == 1 && s[0].name))
        legend(f, s, ns);
    fputs("</svg>\n", f);
}
