/* modelfile.c - staging, manifest and atomic swap of the models/ folder. */
#include "modelfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "jsonout.h"
#include "jsonx.h"
#include "sha256.h"

#define STALE_SECONDS 3600

struct modelfile_stage {
    char *dir;   /* target, e.g. "models" */
    char *stage; /* e.g. "models.tmp-Ab12Cd" */
    json_t *manifest;
    json_t *models; /* borrowed from manifest */
};

const char *modelfile_stage_dir(const modelfile_stage *s) { return s->stage; }

/* Remove a flat folder and its files. */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        char p[4096];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(path);
}

/* Staging folders of runs that died, found next to dir and old enough not
 * to belong to a run still going. */
static void remove_stale(const char *dir)
{
    char parent[4096], base[1024];
    const char *slash = strrchr(dir, '/');
    if (slash) {
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - dir), dir);
        snprintf(base, sizeof base, "%s.tmp-", slash + 1);
    } else {
        snprintf(parent, sizeof parent, ".");
        snprintf(base, sizeof base, "%s.tmp-", dir);
    }
    if (!parent[0])
        snprintf(parent, sizeof parent, "/");
    DIR *d = opendir(parent);
    if (!d)
        return;
    struct dirent *e;
    time_t now = time(NULL);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, base, strlen(base)) != 0)
            continue;
        char p[8192];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", parent, e->d_name);
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode) && now - sb.st_mtime > STALE_SECONDS)
            remove_tree(p);
    }
    closedir(d);
}

static int plain_name(const char *name)
{
    return name && *name && !strchr(name, '/') && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

static rfm_status write_file(const char *path, const char *data, size_t len, char *err,
                             size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return rfm_fail(err, errlen, RFM_EIO, "%s: %s", path, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            return rfm_fail(err, errlen, RFM_EIO, "%s: write failed: %s", path, strerror(e));
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0)
        return rfm_fail(err, errlen, RFM_EIO, "%s: %s", path, strerror(errno));
    return RFM_OK;
}

static rfm_status copy_file(const char *from, const char *to, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    rfm_status st = fileio_read(from, &buf, &len, err, errlen);
    if (st == RFM_OK)
        st = write_file(to, buf, len, err, errlen);
    free(buf);
    return st;
}

void modelfile_abort(modelfile_stage *s)
{
    if (!s)
        return;
    if (s->stage)
        remove_tree(s->stage);
    free(s->dir);
    free(s->stage);
    json_decref(s->manifest);
    free(s);
}

rfm_status modelfile_begin(const char *dir, int keep_existing, modelfile_stage **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    rfm_status st;
    modelfile_stage *s = calloc(1, sizeof *s);
    if (!s)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    s->dir = strdup(dir);
    s->stage = malloc(strlen(dir) + 16);
    if (!s->dir || !s->stage) {
        modelfile_abort(s);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    remove_stale(dir);
    sprintf(s->stage, "%s.tmp-XXXXXX", dir); /* sized above */
    if (!mkdtemp(s->stage)) {
        st = rfm_fail(err, errlen, RFM_EIO, "cannot create %s: %s", s->stage, strerror(errno));
        free(s->stage);
        s->stage = NULL;
        modelfile_abort(s);
        return st;
    }
    chmod(s->stage, 0755);
    json_t *old = NULL;
    struct stat sb;
    char path[4096], to[4096];
    if (keep_existing && stat(dir, &sb) == 0) {
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        if (access(path, F_OK) == 0 && (st = modelfile_open(dir, &old, err, errlen)) != RFM_OK) {
            modelfile_abort(s);
            return st;
        }
    }
    /* Hidden files (.gitignore) belong to the folder, not to a version. */
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        st = RFM_OK;
        while (st == RFM_OK && (e = readdir(d)) != NULL) {
            if (e->d_name[0] != '.' || strcmp(e->d_name, ".") == 0 ||
                strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            snprintf(to, sizeof to, "%s/%s", s->stage, e->d_name);
            if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
                st = copy_file(path, to, err, errlen);
        }
        closedir(d);
        if (st != RFM_OK) {
            json_decref(old);
            modelfile_abort(s);
            return st;
        }
    }
    s->manifest = json_object();
    s->models = json_object();
    if (!s->manifest || !s->models || json_object_set_new(s->manifest, "models", s->models)) {
        json_decref(old);
        modelfile_abort(s);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    if (old) {
        /* Carry over every model and its files; this run replaces some. */
        const char *name;
        json_t *m;
        json_object_foreach(json_object_get(old, "models"), name, m)
        {
            static const char *const keys[2] = {"file", "card"};
            for (int k = 0; k < 2; k++) {
                const char *f = json_string_value(json_object_get(m, keys[k]));
                if (!f)
                    continue;
                snprintf(path, sizeof path, "%s/%s", dir, f);
                snprintf(to, sizeof to, "%s/%s", s->stage, f);
                if ((st = copy_file(path, to, err, errlen)) != RFM_OK) {
                    json_decref(old);
                    modelfile_abort(s);
                    return st;
                }
            }
            json_object_set(s->models, name, m);
        }
        json_t *v;
        const char *key;
        json_object_foreach(old, key, v) if (strcmp(key, "models") != 0)
            json_object_set(s->manifest, key, v);
        json_decref(old);
    }
    *out = s;
    return RFM_OK;
}

rfm_status modelfile_write_text(modelfile_stage *s, const char *name, const char *text,
                                size_t len, char *err, size_t errlen)
{
    if (!plain_name(name) || strcmp(name, "manifest.json") == 0)
        return rfm_fail(err, errlen, RFM_EINVAL, "'%s' is not a model file name", name);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", s->stage, name);
    return write_file(path, text, len, err, errlen);
}

/* JSON text of j with a final newline, written to path. */
static rfm_status write_json_path(const char *path, const json_t *j, char *err, size_t errlen)
{
    char *text = jsonout_dumps(j, JSONX_DUMP_FLAGS);
    if (!text)
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: cannot serialise", path);
    size_t len = strlen(text);
    char *t2 = realloc(text, len + 2);
    if (!t2) {
        free(text);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    t2[len] = '\n';
    t2[len + 1] = '\0';
    rfm_status st = write_file(path, t2, len + 1, err, errlen);
    free(t2);
    return st;
}

rfm_status modelfile_write_json(modelfile_stage *s, const char *name, const json_t *j,
                                char *err, size_t errlen)
{
    if (!plain_name(name) || strcmp(name, "manifest.json") == 0)
        return rfm_fail(err, errlen, RFM_EINVAL, "'%s' is not a model file name", name);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", s->stage, name);
    return write_json_path(path, j, err, errlen);
}

static void iso_now(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

rfm_status modelfile_add_model(modelfile_stage *s, const char *model, const char *version,
                               const char *file, const char *card, const char *data_sha256,
                               json_t *metrics, char *err, size_t errlen)
{
    char path[4096], hex[65], chex[65], now[32];
    rfm_status st;
    snprintf(path, sizeof path, "%s/%s", s->stage, file);
    if ((st = sha256_file(path, hex, err, errlen)) != RFM_OK) {
        json_decref(metrics);
        return st;
    }
    if (card) {
        snprintf(path, sizeof path, "%s/%s", s->stage, card);
        if ((st = sha256_file(path, chex, err, errlen)) != RFM_OK) {
            json_decref(metrics);
            return st;
        }
    }
    iso_now(now);
    json_t *m = json_pack("{s:s,s:s,s:s,s:s}", "version", version, "file", file, "sha256", hex,
                          "trained_at", now);
    if (m && card) {
        json_object_set_new(m, "card", json_string(card));
        json_object_set_new(m, "card_sha256", json_string(chex));
    }
    if (m && data_sha256)
        json_object_set_new(m, "data_sha256", json_string(data_sha256));
    if (m && metrics)
        json_object_set(m, "metrics", metrics);
    json_decref(metrics);
    if (!m || json_object_set_new(s->models, model, m))
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    return RFM_OK;
}

rfm_status modelfile_set(modelfile_stage *s, const char *key, json_t *value, char *err,
                         size_t errlen)
{
    if (strcmp(key, "models") == 0) {
        json_decref(value);
        return rfm_fail(err, errlen, RFM_EINVAL, "use modelfile_add_model for models");
    }
    if (json_object_set_new(s->manifest, key, value))
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    return RFM_OK;
}

rfm_status modelfile_commit(modelfile_stage *s, char *err, size_t errlen)
{
    char now[32];
    iso_now(now);
    json_object_set_new(s->manifest, "format_version", json_integer(MODELFILE_FORMAT));
    json_object_set_new(s->manifest, "created_at", json_string(now));
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", s->stage);
    rfm_status st = write_json_path(path, s->manifest, err, errlen);
    if (st == RFM_OK) {
        int dfd = open(s->stage, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        struct stat sb;
        if (stat(s->dir, &sb) == 0) {
            /* Swap old and new in one step; the old now sits at stage. */
            if (renameat2(AT_FDCWD, s->stage, AT_FDCWD, s->dir, RENAME_EXCHANGE) != 0)
                st = rfm_fail(err, errlen, RFM_EIO, "cannot swap %s into %s: %s", s->stage,
                              s->dir, strerror(errno));
        } else if (rename(s->stage, s->dir) != 0) {
            st = rfm_fail(err, errlen, RFM_EIO, "cannot rename %s to %s: %s", s->stage, s->dir,
                          strerror(errno));
        } else {
            free(s->stage);
            s->stage = NULL;
        }
    }
    modelfile_abort(s); /* removes the old version (or the failed stage) */
    return st;
}

/* A failed json_load_file ran out of memory. (jansson 2.14 reports some
 * failed allocations inside its lexer as syntax errors, or asserts:
 * akheron/jansson#362.) */
static int jansson_oom(const json_error_t *je)
{
    return json_error_code(je) == json_error_out_of_memory;
}

rfm_status modelfile_open(const char *dir, json_t **manifest, char *err, size_t errlen)
{
    char path[4096];
    json_error_t je;
    *manifest = NULL;
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    json_t *m = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!m) {
        if (jansson_oom(&je))
            return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", path);
        if (access(path, F_OK) != 0)
            return rfm_fail(err, errlen, RFM_ENOTFOUND,
                            "%s: missing: train first with bin/rfm-train --config "
                            "config/rfm.yaml",
                            path);
        return rfm_fail(err, errlen, RFM_EFORMAT, "%s:%d:%d: %s", path, je.line, je.column,
                        je.text);
    }
    long long fv;
    const json_t *models;
    rfm_status st;
    if ((st = jsonx_int(m, "format_version", path, &fv, err, errlen)) ||
        (st = jsonx_object(m, "models", path, &models, err, errlen))) {
        json_decref(m);
        return st;
    }
    if (fv != MODELFILE_FORMAT) {
        json_decref(m);
        return rfm_fail(err, errlen, RFM_EFORMAT,
                        "%s: format_version %lld, this build reads %d: retrain with "
                        "bin/rfm-train --config config/rfm.yaml",
                        path, fv, MODELFILE_FORMAT);
    }
    const char *name;
    json_t *e;
    json_object_foreach((json_t *)models, name, e)
    {
        static const char *const keys[2][2] = {{"file", "sha256"}, {"card", "card_sha256"}};
        for (int k = 0; k < 2; k++) {
            const json_t *fj = json_object_get(e, keys[k][0]);
            if (!fj && k == 1)
                continue;
            const char *f = json_string_value(fj);
            const char *want = json_string_value(json_object_get(e, keys[k][1]));
            if (!f || !want || !plain_name(f)) {
                rfm_fail(err, errlen, RFM_EFORMAT, "%s: models.%s: needs %s and %s", path, name,
                         keys[k][0], keys[k][1]);
                json_decref(m);
                return RFM_EFORMAT;
            }
            char fp[4096], hex[65];
            snprintf(fp, sizeof fp, "%s/%s", dir, f);
            if ((st = sha256_file(fp, hex, err, errlen)) != RFM_OK) {
                rfm_fail(err, errlen, RFM_ECHECKSUM,
                         "%s: model '%s' is listed in the manifest but cannot be read "
                         "(%s); retrain with bin/rfm-train",
                         fp, name, access(fp, F_OK) ? "missing" : "unreadable");
                json_decref(m); /* after the message: name points into m */
                return RFM_ECHECKSUM;
            }
            if (strcmp(hex, want) != 0) {
                rfm_fail(err, errlen, RFM_ECHECKSUM,
                         "%s: sha256 %s does not match the manifest's %s (changed or "
                         "corrupt since training); retrain with bin/rfm-train",
                         fp, hex, want);
                json_decref(m); /* after the message: want points into m */
                return RFM_ECHECKSUM;
            }
        }
    }
    *manifest = m;
    return RFM_OK;
}

rfm_status modelfile_load(const char *dir, const json_t *manifest, const char *model,
                          json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    const json_t *e = json_object_get(json_object_get(manifest, "models"), model);
    if (!e)
        return rfm_fail(err, errlen, RFM_ENOTFOUND, "model %s is not trained", model);
    const char *f = json_string_value(json_object_get(e, "file"));
    if (!f || !plain_name(f))
        return rfm_fail(err, errlen, RFM_EFORMAT, "manifest: models.%s.file is missing", model);
    char path[4096];
    json_error_t je;
    snprintf(path, sizeof path, "%s/%s", dir, f);
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!*out && jansson_oom(&je))
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", path);
    if (!*out)
        return rfm_fail(err, errlen, RFM_EFORMAT, "%s:%d:%d: %s", path, je.line, je.column,
                        je.text);
    return RFM_OK;
}
