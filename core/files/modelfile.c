/* modelfile.c - the writers' lock, staging, manifest and atomic swap of the
 * models/ folder. */
#include "modelfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "jsonout.h"
#include "jsonx.h"
#include "sha256.h"

/* A staging folder without an owner file (older builds) counts as left
 * behind after this long. */
#define STALE_SECONDS 3600
/* The file in a staging folder that names the run writing it. */
#define OWNER_FILE "owner"

struct modelfile_lock {
    int fd; /* open on <dir>.lock, flock'ed exclusive */
};

struct modelfile_stage {
    char *dir;   /* target, e.g. "models" (no trailing slash) */
    char *stage; /* e.g. "models.tmp-Ab12Cd" */
    json_t *manifest;
    json_t *models; /* borrowed from manifest */
    modelfile_lock *lock;
};

/* dir without trailing slashes ("models/" and "models" are one folder,
 * with one lock file and staging folders beside it); new string. */
static char *dir_name(const char *dir)
{
    char *d = strdup(dir);
    if (d)
        for (size_t n = strlen(d); n > 1 && d[n - 1] == '/'; n--)
            d[n - 1] = '\0';
    return d;
}

/* ---- who is writing ------------------------------------------------------ */

/* A running process, told apart from a later one with the same pid by its
 * start time (clock ticks after boot) and the boot it belongs to. */
typedef struct {
    char program[64];
    long pid;
    long long start;
    char boot[64];
    char host[256];
    char since[32]; /* ISO-8601 UTC */
} holder_rec;

/* Start time and state of pid from /proc/<pid>/stat (fields 22 and 3):
 * 0, or -1 when the process is not there or the file does not parse. */
static int proc_start(long pid, long long *start, char *state)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold anything */
    if (!p || sscanf(p + 1, " %c", state) != 1)
        return -1;
    p += 2; /* at field 3, the state */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return -1;
        p++;
    }
    char *end;
    *start = strtoll(p, &end, 10);
    return end == p ? -1 : 0;
}

static void boot_id(char out[64])
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    out[0] = '\0';
    if (f) {
        if (!fgets(out, 64, f))
            out[0] = '\0';
        fclose(f);
    }
    out[strcspn(out, "\n")] = '\0';
}

static void iso_now(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* This process as a record, one "key value" line each. */
static void self_record(char *buf, size_t cap)
{
    char boot[64], host[256] = "", since[32], state;
    long long start = -1;
    boot_id(boot);
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    iso_now(since);
    if (proc_start((long)getpid(), &start, &state) != 0)
        start = -1;
    snprintf(buf, cap, "program %s\npid %ld\nstart %lld\nboot %s\nhost %s\nsince %s\n",
             program_invocation_short_name, (long)getpid(), start, boot, host, since);
}

/* 0 when text has at least a pid, else -1; missing keys stay empty. */
static int parse_record(const char *text, holder_rec *r)
{
    memset(r, 0, sizeof *r);
    r->pid = -1;
    r->start = -1;
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *sp = memchr(p, ' ', len);
        if (sp) {
            size_t kl = (size_t)(sp - p), vl = len - kl - 1;
            const char *v = sp + 1;
            if (kl == 3 && !strncmp(p, "pid", 3))
                r->pid = strtol(v, NULL, 10);
            else if (kl == 5 && !strncmp(p, "start", 5))
                r->start = strtoll(v, NULL, 10);
            else if (kl == 7 && !strncmp(p, "program", 7))
                snprintf(r->program, sizeof r->program, "%.*s", (int)vl, v);
            else if (kl == 4 && !strncmp(p, "boot", 4))
                snprintf(r->boot, sizeof r->boot, "%.*s", (int)vl, v);
            else if (kl == 4 && !strncmp(p, "host", 4))
                snprintf(r->host, sizeof r->host, "%.*s", (int)vl, v);
            else if (kl == 5 && !strncmp(p, "since", 5))
                snprintf(r->since, sizeof r->since, "%.*s", (int)vl, v);
        }
        p = eol ? eol + 1 : NULL;
    }
    return r->pid > 0 ? 0 : -1;
}

/* Whether the run named by the owner file of a staging folder is gone: 1
 * gone, 0 still running, -1 cannot tell (no owner file, or it was written
 * on another host sharing the folder). */
static int owner_gone(const char *stage)
{
    char path[8200], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/" OWNER_FILE, stage);
    if (fileio_read(path, &text, &len, NULL, 0) != RFM_OK)
        return -1;
    holder_rec r;
    int ok = parse_record(text, &r);
    free(text);
    if (ok != 0 || !r.boot[0])
        return -1;
    char boot[64], host[256] = "", state = '?';
    if (gethostname(host, sizeof host - 1) != 0 || strcmp(host, r.host) != 0)
        return -1;
    boot_id(boot);
    if (strcmp(boot, r.boot) != 0)
        return 1; /* this machine restarted since */
    if (kill((pid_t)r.pid, 0) != 0 && errno == ESRCH)
        return 1;
    long long start;
    if (proc_start(r.pid, &start, &state) == 0 &&
        ((r.start >= 0 && start != r.start) || state == 'Z' || state == 'X'))
        return 1; /* the pid names a later process, or a dead one not yet reaped */
    return 0;
}

/* ---- the writers' lock ---------------------------------------------------- */

rfm_status modelfile_lock_take(const char *dir, int flags, modelfile_lock **out, char *err,
                               size_t errlen)
{
    *out = NULL;
    char *d = dir_name(dir);
    if (!d)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s.lock", d);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        rfm_status st =
            rfm_fail(err, errlen, RFM_EIO, "cannot open lock file %s: %s", path, strerror(errno));
        free(d);
        return st;
    }
    int r;
    while ((r = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
        ;
    if (r != 0 && errno == EWOULDBLOCK && (flags & MODELFILE_WAIT))
        while ((r = flock(fd, LOCK_EX)) != 0 && errno == EINTR)
            ;
    if (r != 0) {
        rfm_status st;
        if (errno == EWOULDBLOCK) {
            char text[1024];
            ssize_t n = pread(fd, text, sizeof text - 1, 0);
            text[n > 0 ? n : 0] = '\0';
            holder_rec h;
            if (parse_record(text, &h) == 0)
                st = rfm_fail(err, errlen, RFM_EBUSY,
                              "%s/ is being written by %s pid %ld on %s since %s (lock file %s)", d,
                              h.program[0] ? h.program : "?", h.pid, h.host[0] ? h.host : "?",
                              h.since[0] ? h.since : "?", path);
            else /* taken a moment ago, the holder not yet written */
                st = rfm_fail(err, errlen, RFM_EBUSY,
                              "%s/ is being written by another process (lock file %s)", d, path);
        } else {
            st = rfm_fail(err, errlen, RFM_EIO, "cannot lock %s: %s", path, strerror(errno));
        }
        close(fd);
        free(d);
        return st;
    }
    free(d);
    modelfile_lock *l = malloc(sizeof *l);
    if (!l) {
        close(fd);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    l->fd = fd;
    /* The holder, for the message of whoever finds the lock taken; the
     * lock works without it, so a failed write is not an error. */
    char rec[1024];
    self_record(rec, sizeof rec);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, rec, strlen(rec), 0) < 0) {
        /* nothing: see above */
    }
    *out = l;
    return RFM_OK;
}

void modelfile_lock_release(modelfile_lock *l)
{
    if (!l)
        return;
    if (ftruncate(l->fd, 0) != 0) { /* no stale holder in the file */
    }
    close(l->fd); /* drops the flock */
    free(l);
}

const char *modelfile_stage_dir(const modelfile_stage *s) { return s->stage; }

const json_t *modelfile_stage_model(const modelfile_stage *s, const char *model)
{
    return json_object_get(s->models, model);
}

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

/* Staging folders of runs that are gone, found next to dir. Called under
 * dir's lock: a run of this build that is still going holds the lock, so
 * the owner check only guards against older builds and other hosts. */
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
        if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        int gone = owner_gone(p);
        if (gone == 1 || (gone < 0 && now - sb.st_mtime > STALE_SECONDS))
            remove_tree(p);
    }
    closedir(d);
}

static int plain_name(const char *name)
{
    return name && *name && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* A name a model may write: plain, and not one of the folder's own. */
static int model_name(const char *name)
{
    return plain_name(name) && strcmp(name, "manifest.json") != 0 && strcmp(name, OWNER_FILE) != 0;
}

/* path's data, written without waiting for the disk: modelfile_commit
 * syncs every file of the stage at once (sync_stage) before the rename
 * that makes them the folder's version, so a run killed or a machine
 * stopped before it leaves only a staging folder. The write-back starts
 * here (sync_file_range), so that little is left for the commit. */
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
    sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* a hint: the commit syncs */
    if (close(fd) != 0)
        return rfm_fail(err, errlen, RFM_EIO, "%s: %s", path, strerror(errno));
    return RFM_OK;
}

/* Every file of the stage, then the stage itself, on the disk. One journal
 * commit serves the files the steps wrote since the last, where a sync
 * after each file's write cost one each (11 on the bundled training, up to
 * a millisecond each, several on the critical path). */
static rfm_status sync_stage(const char *stage, char *err, size_t errlen)
{
    int dfd = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
    if (!d) {
        int e = errno;
        if (dfd >= 0)
            close(dfd);
        return rfm_fail(err, errlen, RFM_EIO, "%s: %s", stage, strerror(e));
    }
    rfm_status st = RFM_OK;
    struct dirent *e;
    while (st == RFM_OK && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        /* Not waiting on a FIFO's writer; what cannot be synced (not a
         * regular file or folder: EINVAL) holds no data to lose. */
        int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
            st = rfm_fail(err, errlen, RFM_EIO, "%s/%s: %s", stage, e->d_name, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    if (st == RFM_OK && fsync(dfd) != 0)
        st = rfm_fail(err, errlen, RFM_EIO, "%s: %s", stage, strerror(errno));
    closedir(d);
    return st;
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
    modelfile_lock_release(s->lock); /* after the removal: a waiting run finds none */
    free(s->dir);
    free(s->stage);
    json_decref(s->manifest);
    free(s);
}

rfm_status modelfile_begin(const char *dir_arg, int flags, modelfile_stage **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    rfm_status st;
    modelfile_stage *s = calloc(1, sizeof *s);
    if (!s)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    s->dir = dir_name(dir_arg);
    s->stage = s->dir ? malloc(strlen(s->dir) + 16) : NULL;
    if (!s->dir || !s->stage) {
        modelfile_abort(s);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    const char *dir = s->dir;
    /* First the lock: nothing of the current version is read before it. */
    if ((st = modelfile_lock_take(dir, flags & MODELFILE_WAIT, &s->lock, err, errlen)) != RFM_OK) {
        free(s->stage);
        s->stage = NULL;
        modelfile_abort(s);
        return st;
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
    char path[4096], to[4096], rec[1024];
    /* Who writes this folder, so that a later run can tell it was left
     * behind as soon as this process is gone. */
    self_record(rec, sizeof rec);
    snprintf(path, sizeof path, "%s/" OWNER_FILE, s->stage);
    if ((st = write_file(path, rec, strlen(rec), err, errlen)) != RFM_OK) {
        modelfile_abort(s);
        return st;
    }
    if ((flags & MODELFILE_KEEP) && stat(dir, &sb) == 0) {
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
            if (e->d_name[0] != '.' || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
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

rfm_status modelfile_write_text(modelfile_stage *s, const char *name, const char *text, size_t len,
                                char *err, size_t errlen)
{
    if (!model_name(name))
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

rfm_status modelfile_write_json(modelfile_stage *s, const char *name, const json_t *j, char *err,
                                size_t errlen)
{
    if (!model_name(name))
        return rfm_fail(err, errlen, RFM_EINVAL, "'%s' is not a model file name", name);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", s->stage, name);
    return write_json_path(path, j, err, errlen);
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
        /* The owner file belongs to the staging folder, not to the version. */
        snprintf(path, sizeof path, "%s/" OWNER_FILE, s->stage);
        if (unlink(path) != 0 && errno != ENOENT)
            st = rfm_fail(err, errlen, RFM_EIO, "%s: %s", path, strerror(errno));
    }
    if (st == RFM_OK)
        st = sync_stage(s->stage, err, errlen);
    if (st == RFM_OK) {
        struct stat sb;
        if (stat(s->dir, &sb) == 0) {
            /* Swap old and new in one step; the old now sits at stage. */
            if (renameat2(AT_FDCWD, s->stage, AT_FDCWD, s->dir, RENAME_EXCHANGE) != 0)
                st = rfm_fail(err, errlen, RFM_EIO, "cannot swap %s into %s: %s", s->stage, s->dir,
                              strerror(errno));
        } else if (rename(s->stage, s->dir) != 0) {
            st = rfm_fail(err, errlen, RFM_EIO, "cannot rename %s to %s: %s", s->stage, s->dir,
                          strerror(errno));
        } else {
            free(s->stage);
            s->stage = NULL;
        }
        /* The new version stays after a crash only once the rename is on
         * the disk too. */
        if (st == RFM_OK)
            st = fileio_sync_parent(s->dir, err, errlen);
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

rfm_status modelfile_load(const char *dir, const json_t *manifest, const char *model, json_t **out,
                          char *err, size_t errlen)
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
