/* ui.h - the analyst web app's static files, served by rfm-serve at /ui/.
 *
 * The files are those `make` writes to build/ui-assets (ui/build.sh): the
 * app's own HTML, CSS and JavaScript and ECharts, each with a content hash
 * in its name, a gzip -9 twin (NAME.gz) of each compressible one, and the
 * licence texts. They hold no data: every figure the pages show comes from
 * the token-protected API. The whole folder is read into memory at start
 * (a few hundred KiB compressed) and never changes while serving; a new
 * build is picked up at the next start.
 *
 * Answers: hashed names are cached for a year (immutable), everything
 * else (index.html, the licences) is revalidated on each use (no-cache);
 * each body has a strong ETag and answers If-None-Match with 304; the
 * gzip twin is sent when the client accepts gzip. Names are looked up in
 * the table read at start, so no request can reach another file; one that
 * tries (a "/" or ".." in the name) is refused with 400.
 *
 * Threads: ui_lookup only reads; any number of threads may call it.
 */
#ifndef RFM_UI_H
#define RFM_UI_H

#include <stddef.h>

#include "status.h"

typedef struct ui_assets ui_assets;

/* Read every regular file of dir (at most 256, each at most 16 MiB).
 * RFM_ENOTFOUND when dir does not exist or has no index.html; RFM_EIO or
 * RFM_ENOMEM with err naming the file otherwise. */
rfm_status ui_load(const char *dir, ui_assets **out, char *err, size_t errlen);
void ui_free(ui_assets *u);
/* Files loaded (the gzip twins not counted) and their bytes, compressed
 * where a twin exists: what a first visit downloads at most. */
size_t ui_count(const ui_assets *u, size_t *compressed_bytes);

/* The folder rfm-serve serves by default, when neither --ui nor
 * server.ui_assets names one: the first of exe_dir/../ui-assets (the
 * build folder's bin/), exe_dir/../build/ui-assets (bin/ of the
 * repository) and build/ui-assets under the working folder that has an
 * index.html; NULL when none has. Written into buf. */
const char *ui_default_dir(const char *exe_dir, char *buf, size_t len);

/* Whether path is the app's: "/ui" or anything under "/ui/". */
int ui_is_path(const char *path);

typedef struct {
    int status;       /* 200, 301, 304, 400, 404 */
    const char *body; /* owned by the assets (200 only) */
    size_t len;
    const char *type;     /* Content-Type */
    const char *encoding; /* "gzip" or NULL */
    const char *etag;     /* quoted */
    const char *cache;    /* Cache-Control */
    int vary;             /* Vary: Accept-Encoding */
    const char *location; /* of a 301 */
    char msg[200];        /* of a 400 or 404 */
} ui_reply;

/* The answer to GET path (ui_is_path) with the request's Accept-Encoding
 * and If-None-Match headers (each may be NULL). u may be NULL (no app
 * installed): 404 saying how to build it. */
void ui_lookup(const ui_assets *u, const char *path, const char *accept_encoding,
               const char *if_none_match, ui_reply *out);

#endif
