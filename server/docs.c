/* docs.c - the /docs page of rfm-serve: openapi.yaml as one HTML page,
 * each operation with its parameters, request and response schemas as
 * tables, and examples. Rendered once at start (ops_new), served as is. */
#include "docs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonout.h"

static void html(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* Markdown-ish text: paragraphs at blank lines, `code` spans. */
static void prose(FILE *f, const char *s)
{
    if (!s)
        return;
    fputs("<p>", f);
    int code = 0;
    for (const char *p = s; *p; p++) {
        if (p[0] == '\n' && p[1] == '\n') {
            fputs(code ? "</code></p>\n<p>" : "</p>\n<p>", f);
            code = 0;
            while (p[1] == '\n')
                p++;
        } else if (*p == '`') {
            fputs(code ? "</code>" : "<code>", f);
            code = !code;
        } else {
            char one[2] = {*p, 0};
            html(f, one);
        }
    }
    fputs(code ? "</code></p>\n" : "</p>\n", f);
}

static const char *ref_name(const json_t *schema)
{
    const char *ref = json_string_value(json_object_get(schema, "$ref"));
    const char *slash = ref ? strrchr(ref, '/') : NULL;
    return slash ? slash + 1 : NULL;
}

/* A short type expression: SegmentRequest, number, array of X, A | B. */
static void type_expr(FILE *f, const json_t *s)
{
    const char *name = ref_name(s);
    if (name) {
        fprintf(f, "<a href=\"#schema-%s\">", name);
        html(f, name);
        fputs("</a>", f);
        return;
    }
    const char *alt[] = {"oneOf", "anyOf", "allOf"};
    for (int k = 0; k < 3; k++) {
        const json_t *a = json_object_get(s, alt[k]);
        if (json_is_array(a)) {
            size_t i;
            const json_t *x;
            json_array_foreach(a, i, x)
            {
                if (i)
                    fputs(k == 2 ? " &amp; " : " | ", f);
                type_expr(f, x);
            }
            return;
        }
    }
    const json_t *t = json_object_get(s, "type");
    if (json_is_array(t)) {
        size_t i;
        const json_t *x;
        json_array_foreach(t, i, x)
        {
            if (i)
                fputs(" | ", f);
            html(f, json_string_value(x));
        }
    } else if (json_is_string(t)) {
        html(f, json_string_value(t));
        if (strcmp(json_string_value(t), "array") == 0 && json_object_get(s, "items")) {
            fputs(" of ", f);
            type_expr(f, json_object_get(s, "items"));
        }
    } else {
        fputs("any", f);
    }
}

static void constraints(FILE *f, const json_t *s)
{
    static const char *const keys[] = {"minimum",   "exclusiveMinimum",
                                       "maximum",   "exclusiveMaximum",
                                       "minLength", "maxLength",
                                       "minItems",  "maxItems",
                                       "enum",      "const",
                                       "default"};
    int first = 1;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const json_t *v = json_object_get(s, keys[k]);
        if (!v)
            continue;
        char *t = jsonout_dumps(v, JSON_COMPACT);
        fprintf(f, "%s%s: <code>", first ? "" : "; ", keys[k]);
        html(f, t ? t : "");
        fputs("</code>", f);
        free(t);
        first = 0;
    }
}

static void schema_table(FILE *f, const json_t *s)
{
    const json_t *props = json_object_get(s, "properties");
    if (!json_is_object(props)) {
        fputs("<p>Type: ", f);
        type_expr(f, s);
        fputs("</p>\n", f);
        return;
    }
    fputs("<table><tr><th>field</th><th>type</th><th>required</th><th>constraints</th>"
          "<th>description</th></tr>\n",
          f);
    const json_t *req = json_object_get(s, "required");
    const char *name;
    const json_t *p;
    json_object_foreach((json_t *)props, name, p)
    {
        int required = 0;
        size_t i;
        const json_t *r;
        json_array_foreach(req, i, r) required |=
            json_is_string(r) && strcmp(json_string_value(r), name) == 0;
        fputs("<tr><td><code>", f);
        html(f, name);
        fputs("</code></td><td>", f);
        type_expr(f, p);
        fprintf(f, "</td><td>%s</td><td>", required ? "yes" : "");
        constraints(f, p);
        fputs("</td><td>", f);
        html(f, json_string_value(json_object_get(p, "description")));
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
    const json_t *ap = json_object_get(s, "additionalProperties");
    if (json_is_false(ap))
        fputs("<p class=note>No other fields are accepted.</p>\n", f);
}

static void example(FILE *f, const json_t *v)
{
    char *t = jsonout_dumps(v, JSON_INDENT(2));
    fputs("<pre>", f);
    html(f, t ? t : "");
    fputs("</pre>\n", f);
    free(t);
}

static void operation(FILE *f, const json_t *root, const char *method, const char *path,
                      const json_t *op)
{
    char upper[8];
    size_t i;
    for (i = 0; method[i] && i < sizeof upper - 1; i++)
        upper[i] = (char)(method[i] - ('a' <= method[i] && method[i] <= 'z' ? 32 : 0));
    upper[i] = '\0';
    fprintf(f, "<section id=\"op-%s\"><h2><span class=m>%s</span> ",
            json_string_value(json_object_get(op, "operationId")) ?: "", upper);
    html(f, path);
    fputs("</h2>\n", f);
    prose(f, json_string_value(json_object_get(op, "summary")));
    prose(f, json_string_value(json_object_get(op, "description")));
    const json_t *sec = json_object_get(op, "security");
    if (!sec)
        sec = json_object_get(root, "security");
    /* [] is none; [{}, {bearer}] is optional (configurable). */
    int optional = json_array_size(sec) > 1 && json_object_size(json_array_get(sec, 0)) == 0;
    fputs(!json_array_size(sec) ? "<p><b>Auth:</b> none</p>\n"
          : optional            ? "<p><b>Auth:</b> none by default; <code>Authorization: Bearer "
                                  "&lt;token&gt;</code> when the configuration asks for it</p>\n"
                     : "<p><b>Auth:</b> <code>Authorization: Bearer &lt;token&gt;</code></p>\n",
          f);
    const json_t *media = json_object_get(
        json_object_get(json_object_get(op, "requestBody"), "content"), "application/json");
    /* A curl line to paste: the first example, the first server. */
    const char *server = json_string_value(
        json_object_get(json_array_get(json_object_get(root, "servers"), 0), "url"));
    const json_t *ex1 = json_object_get(media, "example");
    if (!ex1) {
        void *it = json_object_iter((json_t *)json_object_get(media, "examples"));
        ex1 = it ? json_object_get(json_object_iter_value(it), "value") : NULL;
    }
    fputs("<pre>curl -sS", f);
    if (json_array_size(sec) && json_object_size(json_array_get(sec, 0)))
        fputs(" -H &quot;Authorization: Bearer $TOKEN&quot;", f); /* the shell expands it */
    if (ex1) {
        char *t = jsonout_dumps(ex1, JSON_COMPACT);
        fputs(" -H 'Content-Type: application/json' \\\n  -d '", f);
        html(f, t ? t : "");
        fputs("'", f);
        free(t);
    }
    fputc(' ', f);
    html(f, server ? server : "");
    html(f, path);
    fputs("</pre>\n", f);
    if (media) {
        fputs("<h3>Request body (application/json)</h3>\n<p>", f);
        type_expr(f, json_object_get(media, "schema"));
        fputs("</p>\n", f);
        const char *ex;
        const json_t *e;
        json_object_foreach((json_t *)json_object_get(media, "examples"), ex, e)
        {
            fputs("<p>Example <i>", f);
            html(f, ex);
            fputs("</i>:</p>\n", f);
            example(f, json_object_get(e, "value"));
        }
        if (json_object_get(media, "example"))
            example(f, json_object_get(media, "example"));
    }
    fputs("<h3>Responses</h3>\n<table><tr><th>status</th><th>meaning</th><th>body</th></tr>\n", f);
    const char *code;
    const json_t *r;
    json_object_foreach((json_t *)json_object_get(op, "responses"), code, r)
    {
        const char *rn = ref_name(r);
        if (rn)
            r = json_object_get(json_object_get(json_object_get(root, "components"), "responses"),
                                rn);
        fputs("<tr><td>", f);
        html(f, code);
        fputs("</td><td>", f);
        html(f, json_string_value(json_object_get(r, "description")));
        fputs("</td><td>", f);
        const char *mt;
        const json_t *m;
        json_object_foreach((json_t *)json_object_get(r, "content"), mt, m)
        {
            html(f, mt);
            fputs(": ", f);
            type_expr(f, json_object_get(m, "schema"));
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
    const json_t *ok = json_object_get(json_object_get(op, "responses"), "200");
    const json_t *okjson = json_object_get(json_object_get(ok, "content"), "application/json");
    if (json_object_get(okjson, "example")) {
        fputs("<p>Example 200 response:</p>\n", f);
        example(f, json_object_get(okjson, "example"));
    }
    const char *ex;
    const json_t *e;
    json_object_foreach((json_t *)json_object_get(okjson, "examples"), ex, e)
    {
        fputs("<p>Example 200 response to <i>", f);
        html(f, ex);
        fputs("</i>:</p>\n", f);
        example(f, json_object_get(e, "value"));
    }
    fputs("</section>\n", f);
}

char *docs_render(const oas_spec *spec, size_t *len)
{
    const json_t *root = oas_root(spec);
    const json_t *info = json_object_get(root, "info");
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    fputs("<!doctype html>\n<html lang=en><head><meta charset=utf-8>\n"
          "<meta name=viewport content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    html(f, json_string_value(json_object_get(info, "title")));
    fputs("</title>\n<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:auto;"
          "padding:1rem;color:#222}code,pre{font:13px ui-monospace,monospace;background:#f4f4f4}"
          "pre{padding:.5rem;overflow:auto}table{border-collapse:collapse;margin:.5rem 0}"
          "td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}"
          "section{border-top:2px solid #ccc;margin-top:2rem}.m{color:#05a}"
          ".note{color:#666}</style></head><body>\n<h1>",
          f);
    html(f, json_string_value(json_object_get(info, "title")));
    fputs(" <small>", f);
    html(f, json_string_value(json_object_get(info, "version")));
    fputs("</small></h1>\n", f);
    prose(f, json_string_value(json_object_get(info, "summary")));
    prose(f, json_string_value(json_object_get(info, "description")));
    fputs("<p>Machine-readable contract: <a href=\"/openapi.yaml\">/openapi.yaml</a>.</p>\n"
          "<h2>Endpoints</h2>\n<ul>\n",
          f);
    const json_t *paths = json_object_get(root, "paths");
    const char *path, *method;
    const json_t *item, *op;
    json_object_foreach((json_t *)paths, path, item) json_object_foreach((json_t *)item, method, op)
    {
        fprintf(f, "<li><a href=\"#op-%s\">",
                json_string_value(json_object_get(op, "operationId")) ?: "");
        for (const char *m = method; *m; m++)
            fputc(*m >= 'a' && *m <= 'z' ? *m - 32 : *m, f);
        fputc(' ', f);
        html(f, path);
        fputs("</a> - ", f);
        html(f, json_string_value(json_object_get(op, "summary")));
        fputs("</li>\n", f);
    }
    fputs("</ul>\n", f);
    json_object_foreach((json_t *)paths, path, item) json_object_foreach((json_t *)item, method, op)
        operation(f, root, method, path, op);
    fputs("<section><h2>Schemas</h2>\n", f);
    const char *name;
    const json_t *s;
    json_object_foreach((json_t *)json_object_get(json_object_get(root, "components"), "schemas"),
                        name, s)
    {
        fprintf(f, "<h3 id=\"schema-%s\">", name);
        html(f, name);
        fputs("</h3>\n", f);
        prose(f, json_string_value(json_object_get(s, "description")));
        schema_table(f, s);
    }
    fputs("</section>\n</body></html>\n", f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
