/* html.h - rfm-report's HTML text: escaping and the small Markdown subset
 * the model cards use (headings, paragraphs, "- " lists, pipe tables,
 * **bold** and `code`). Presentation only; writes to a FILE. Not a
 * Markdown implementation: anything else is shown as plain text. */
#ifndef RFM_REPORT_HTML_H
#define RFM_REPORT_HTML_H

#include <stddef.h>
#include <stdio.h>

/* s with &, <, >, " escaped (n bytes, or up to the NUL when n is (size_t)-1). */
void html_escape(FILE *f, const char *s, size_t n);
#define html_text(f, s) html_escape((f), (s), (size_t)-1)

/* Markdown text md as HTML; headings start at level top (a card's "#"
 * becomes <h{top}>, "##" <h{top+1}>, at most <h6>). */
void html_markdown(FILE *f, const char *md, int top);

#endif
