/* html.c - escaping and the model cards' Markdown subset as HTML. */
#include "html.h"

#include <string.h>

void html_escape(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i]; i++) {
        switch (s[i]) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(s[i], f);
        }
    }
}

/* One line's inline text: **bold** and `code`, the rest escaped. */
static void inline_text(FILE *f, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *rest = s + i;
        size_t left = n - i;
        if (left > 4 && !strncmp(rest, "**", 2)) {
            const char *end = memmem(rest + 2, left - 2, "**", 2);
            if (end) {
                fputs("<strong>", f);
                inline_text(f, rest + 2, (size_t)(end - rest - 2));
                fputs("</strong>", f);
                i += (size_t)(end - rest) + 2;
                continue;
            }
        }
        if (left > 2 && *rest == '`') {
            const char *end = memchr(rest + 1, '`', left - 1);
            if (end) {
                fputs("<code>", f);
                html_escape(f, rest + 1, (size_t)(end - rest - 1));
                fputs("</code>", f);
                i += (size_t)(end - rest) + 1;
                continue;
            }
        }
        html_escape(f, rest, 1);
        i++;
    }
}

/* The cells of a table row "| a | b |" in turn. */
static void table_row(FILE *f, const char *s, size_t n, const char *tag)
{
    fputs("<tr>", f);
    size_t i = 0;
    if (i < n && s[i] == '|')
        i++;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '|')
            j++;
        if (j == n && i == j)
            break;
        size_t a = i, b = j;
        while (a < b && s[a] == ' ')
            a++;
        while (b > a && s[b - 1] == ' ')
            b--;
        fprintf(f, "<%s>", tag);
        inline_text(f, s + a, b - a);
        fprintf(f, "</%s>", tag);
        i = j + 1;
    }
    fputs("</tr>\n", f);
}

static int is_separator(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr("|-: ", s[i]))
            return 0;
    return n > 0;
}

void html_markdown(FILE *f, const char *md, int top)
{
    enum { NONE, PARA, LIST, TABLE } open = NONE;
    static const char *const close[] = {"", "</p>\n", "</ul>\n", "</tbody></table>\n"};
    const char *p = md;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *next = nl ? nl + 1 : p + n;
        int level = 0;
        while (level < (int)n && p[level] == '#')
            level++;
        int heading = level > 0 && level < (int)n && p[level] == ' ';
        int item = n >= 2 && p[0] == '-' && p[1] == ' ';
        int row = n >= 1 && p[0] == '|';
        int blank = n == 0;
        /* Close what this line does not continue. */
        if (open != NONE && (blank || heading || (open == LIST && !item) ||
                             (open == TABLE && !row) || (open == PARA && (item || row)))) {
            fputs(close[open], f);
            open = NONE;
        }
        if (heading) {
            int h = top + level - 1 > 6 ? 6 : top + level - 1;
            fprintf(f, "<h%d>", h);
            inline_text(f, p + level + 1, n - (size_t)level - 1);
            fprintf(f, "</h%d>\n", h);
        } else if (item) {
            if (open != LIST)
                fputs("<ul>\n", f), open = LIST;
            fputs("<li>", f);
            inline_text(f, p + 2, n - 2);
            fputs("</li>\n", f);
        } else if (row) {
            if (open != TABLE) {
                fputs("<table><thead>", f);
                table_row(f, p, n, "th");
                fputs("</thead><tbody>\n", f);
                open = TABLE;
            } else if (!is_separator(p, n)) {
                table_row(f, p, n, "td");
            }
        } else if (!blank) {
            if (open != PARA)
                fputs("<p>", f), open = PARA;
            else
                fputc('\n', f);
            inline_text(f, p, n);
        }
        p = next;
    }
    fputs(close[open], f);
}
