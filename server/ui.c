/* ui.c - the /ui/ app's static files from memory (see ui.h). The folder
 * is small and fixed while serving, so it is read once: lookups are a
 * scan of a few dozen names, and no request ever opens a file. */
#include "ui.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "sha256.h"

#define UI_MAX_FILES 256
#define UI_MAX_BYTES (16u << 20)

typedef struct {
    char *name;
    char *body, *gz; /* gz: the gzip twin, or NULL */
    size_t len, gz_len;
    char etag[24], gz_etag[28];
    const char *type;
    int hashed; /* a content hash in the name: cached for good */
} ui_file;

struct ui_assets {
    ui_file f[UI_MAX_FILES];
    size_t n;
};

static const char *media_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } T[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof T / sizeof *T; i++)
        if (strcmp(dot, T[i].ext) == 0)
            return T[i].type;
    return "text/plain; charset=utf-8"; /* LICENSE, NOTICE */
}

/* "echarts.3f9a0c1d2e.min.js": a part of 8 or more lower-case hex digits
 * between dots (not the extension) marks a name that changes with its
 * content. */
static int has_hash(const char *name)
{
    const char *p = strchr(name, '.');
    while (p) {
        const char *q = strchr(p + 1, '.');
        if (!q)
            return 0;
        size_t n = (size_t)(q - p - 1);
        if (n >= 8 && strspn(p + 1, "0123456789abcdef") >= n)
            return 1;
        p = q;
    }
    return 0;
}

static ui_file *find(const ui_assets *u, const char *name)
{
    for (size_t i = 0; u && i < u->n; i++)
        if (strcmp(u->f[i].name, name) == 0)
            return (ui_file *)&u->f[i];
    return NULL;
}

static void etag_of(const char *body, size_t len, char *out, size_t outlen, const char *suffix)
{
    uint8_t d[32];
    char hex[65];
    sha256_of(body, len, d, hex);
    snprintf(out, outlen, "\"%.16s%s\"", hex, suffix);
}

void ui_free(ui_assets *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n; i++) {
        free(u->f[i].name);
        free(u->f[i].body);
        free(u->f[i].gz);
    }
    free(u);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

rfm_status ui_load(const char *dir, ui_assets **out, char *err, size_t errlen)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return rfm_fail(err, errlen, errno == ENOENT ? RFM_ENOTFOUND : RFM_EIO, "ui assets %s: %s",
                        dir, strerror(errno));
    ui_assets *u = calloc(1, sizeof *u);
    char *names[2 * UI_MAX_FILES];
    size_t nn = 0;
    rfm_status st = u ? RFM_OK : rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    struct dirent *e;
    while (st == RFM_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (nn == 2 * UI_MAX_FILES)
            st = rfm_fail(err, errlen, RFM_EINVAL, "ui assets %s: more than %d files", dir,
                          2 * UI_MAX_FILES);
        else if (!(names[nn] = strdup(e->d_name)))
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        else
            nn++;
    }
    closedir(d);
    /* Sorted: NAME comes before NAME.gz, so each twin finds its file. */
    qsort(names, nn, sizeof *names, by_name);
    for (size_t i = 0; st == RFM_OK && i < nn; i++) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (sb.st_size > (off_t)UI_MAX_BYTES) {
            st = rfm_fail(err, errlen, RFM_EINVAL, "ui assets: %s is larger than %u bytes", path,
                          UI_MAX_BYTES);
            break;
        }
        char *body;
        size_t len;
        if ((st = fileio_read(path, &body, &len, err, errlen)) != RFM_OK)
            break;
        size_t nl = strlen(names[i]);
        ui_file *twin = NULL;
        if (nl > 3 && strcmp(names[i] + nl - 3, ".gz") == 0) {
            names[i][nl - 3] = '\0';
            twin = find(u, names[i]);
            names[i][nl - 3] = '.';
        }
        if (twin) {
            twin->gz = body;
            twin->gz_len = len;
            etag_of(body, len, twin->gz_etag, sizeof twin->gz_etag, "-gz");
            continue;
        }
        if (u->n == UI_MAX_FILES) {
            free(body);
            st = rfm_fail(err, errlen, RFM_EINVAL, "ui assets %s: more than %d files", dir,
                          UI_MAX_FILES);
            break;
        }
        ui_file *f = &u->f[u->n++];
        f->name = names[i];
        names[i] = NULL;
        f->body = body;
        f->len = len;
        f->type = media_type(f->name);
        f->hashed = has_hash(f->name);
        etag_of(body, len, f->etag, sizeof f->etag, "");
    }
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    if (st == RFM_OK && !find(u, "index.html"))
        st = rfm_fail(err, errlen, RFM_ENOTFOUND, "ui assets %s: no index.html", dir);
    if (st != RFM_OK) {
        ui_free(u);
        return st;
    }
    *out = u;
    return RFM_OK;
}

size_t ui_count(const ui_assets *u, size_t *compressed_bytes)
{
    size_t bytes = 0;
    for (size_t i = 0; i < u->n; i++)
        bytes += u->f[i].gz ? u->f[i].gz_len : u->f[i].len;
    *compressed_bytes = bytes;
    return u->n;
}

const char *ui_default_dir(const char *exe_dir, char *buf, size_t len)
{
    const char *fmt[] = {"%s/../ui-assets", "%s/../build/ui-assets", "build/ui-assets"};
    for (size_t i = 0; i < 3; i++) {
        char index[4200];
        snprintf(buf, len, fmt[i], exe_dir);
        snprintf(index, sizeof index, "%s/index.html", buf);
        if (access(index, R_OK) == 0)
            return buf;
    }
    return NULL;
}

int ui_is_path(const char *path)
{
    return strcmp(path, "/ui") == 0 || strncmp(path, "/ui/", 4) == 0;
}

/* Whether Accept-Encoding lists gzip without q=0 (RFC 9110 12.5.3). */
static int accepts_gzip(const char *h)
{
    for (const char *p = h; p && *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",");
        size_t name = strcspn(p, " \t;,");
        if (name == 4 && strncasecmp(p, "gzip", 4) == 0) {
            const char *q = strstr(p, "q=");
            int zero = q && q < p + n && strtod(q + 2, NULL) == 0;
            return !zero;
        }
        p += n;
    }
    return 0;
}

/* Whether If-None-Match lists etag (or is "*"); weak forms compare too. */
static int matches(const char *inm, const char *etag)
{
    if (!inm)
        return 0;
    if (strcmp(inm, "*") == 0)
        return 1;
    size_t n = strlen(etag);
    for (const char *p = strstr(inm, etag); p; p = strstr(p + 1, etag))
        if ((p[n] == '\0' || p[n] == ',' || p[n] == ' ') &&
            (p == inm || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/'))
            return 1;
    return 0;
}

void ui_lookup(const ui_assets *u, const char *path, const char *accept_encoding,
               const char *if_none_match, ui_reply *out)
{
    memset(out, 0, sizeof *out);
    if (strcmp(path, "/ui") == 0) {
        out->status = 301;
        out->location = "/ui/";
        return;
    }
    const char *name = path + 4;
    if (*name == '\0')
        name = "index.html";
    if (strchr(name, '/') || strstr(name, "..") || name[0] == '.') {
        out->status = 400;
        snprintf(out->msg, sizeof out->msg,
                 "path traversal refused: /ui/ serves only the files of its own folder");
        return;
    }
    const ui_file *f = find(u, name);
    if (!f) {
        out->status = 404;
        if (!u)
            snprintf(out->msg, sizeof out->msg,
                     "the web app is not installed: build it with make (build/ui-assets) or "
                     "name its folder with --ui or server.ui_assets");
        else
            snprintf(out->msg, sizeof out->msg, "no such asset: /ui/%.120s", name);
        return;
    }
    int gz = f->gz && accepts_gzip(accept_encoding);
    out->type = f->type;
    out->cache = f->hashed ? "public, max-age=31536000, immutable" : "no-cache";
    out->vary = f->gz != NULL;
    out->etag = gz ? f->gz_etag : f->etag;
    out->encoding = gz ? "gzip" : NULL;
    if (matches(if_none_match, out->etag)) {
        out->status = 304;
        return;
    }
    out->status = 200;
    out->body = gz ? f->gz : f->body;
    out->len = gz ? f->gz_len : f->len;
}
