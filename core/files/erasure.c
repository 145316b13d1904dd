/* erasure.c - the erasure list: a text file and an open-addressing set of
 * 16-byte keys (the entries' bits) behind a read-write lock. See erasure.h. */
#include "erasure.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "txn.h"

typedef struct {
    uint8_t b[16];
} key16;

struct erasure {
    char *path;
    pthread_rwlock_t mu;
    key16 *slot; /* cap slots, all-zero = free (the zero key is kept aside) */
    size_t cap, n;
    int has_zero;
};

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The bits of 32 lower-case hex digits; -1 for anything else. */
static int parse(const char *s, size_t len, key16 *k)
{
    if (len != 32)
        return -1;
    for (int i = 0; i < 16; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        k->b[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int is_zero(const key16 *k)
{
    static const key16 z;
    return memcmp(k, &z, sizeof z) == 0;
}

/* The slot of k, or of the free slot where it would go. */
static size_t find(const erasure *e, const key16 *k)
{
    uint64_t h;
    memcpy(&h, k->b, sizeof h); /* the bits of an HMAC: spread already */
    size_t i = (size_t)h & (e->cap - 1);
    while (!is_zero(&e->slot[i]) && memcmp(&e->slot[i], k, sizeof *k) != 0)
        i = (i + 1) & (e->cap - 1);
    return i;
}

static int insert(erasure *e, const key16 *k)
{
    if (is_zero(k)) {
        e->n += !e->has_zero;
        e->has_zero = 1;
        return 0;
    }
    if (2 * (e->n + 1) > e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 64;
        key16 *old = e->slot;
        size_t oldcap = e->cap;
        if (!(e->slot = calloc(cap, sizeof *e->slot))) {
            e->slot = old;
            return -1;
        }
        e->cap = cap;
        for (size_t i = 0; i < oldcap; i++)
            if (!is_zero(&old[i]))
                e->slot[find(e, &old[i])] = old[i];
        free(old);
    }
    size_t i = find(e, k);
    if (is_zero(&e->slot[i])) {
        e->slot[i] = *k;
        e->n++;
    }
    return 0;
}

static int contains(const erasure *e, const key16 *k)
{
    if (is_zero(k))
        return e->has_zero;
    return e->cap > 0 && !is_zero(&e->slot[find(e, k)]);
}

rfm_status erasure_open(const char *path, erasure **out, char *err, size_t errlen)
{
    *out = NULL;
    erasure *e = calloc(1, sizeof *e);
    if (!e || !(e->path = strdup(path))) {
        free(e);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    pthread_rwlock_init(&e->mu, NULL);
    FILE *f = fopen(path, "r");
    if (!f && errno != ENOENT) {
        rfm_status st = rfm_fail(err, errlen, RFM_EIO, "%s: %s", path, strerror(errno));
        erasure_free(e);
        return st;
    }
    char line[128];
    for (unsigned long no = 1; f && fgets(line, sizeof line, f); no++) {
        size_t len = strcspn(line, "\r\n");
        key16 k;
        if (parse(line, len, &k) != 0) {
            fclose(f);
            erasure_free(e);
            return rfm_fail(err, errlen, RFM_EPARSE,
                            "%s:%lu: not an erasure entry (32 lower-case hex digits a line)", path,
                            no);
        }
        if (insert(e, &k) != 0) {
            fclose(f);
            erasure_free(e);
            return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        }
    }
    if (f && (ferror(f) || fclose(f) != 0)) {
        erasure_free(e);
        return rfm_fail(err, errlen, RFM_EIO, "%s: read error", path);
    }
    *out = e;
    return RFM_OK;
}

void erasure_free(erasure *e)
{
    if (!e)
        return;
    pthread_rwlock_destroy(&e->mu);
    free(e->slot);
    free(e->path);
    free(e);
}

size_t erasure_entry(int pseudonymous, const char *id, size_t len, char out[33])
{
    if (pseudonymous) {
        out[0] = '\0';
        if (!txn_is_pseudonym(id, len))
            return 0;
        memcpy(out, id, 32);
        out[32] = '\0';
        return 32;
    }
    return txn_pseudonym("", 0, id, len, out);
}

int erasure_has(erasure *e, const char *entry, size_t len)
{
    key16 k;
    if (!e || parse(entry, len, &k) != 0)
        return 0;
    pthread_rwlock_rdlock(&e->mu);
    int has = contains(e, &k);
    pthread_rwlock_unlock(&e->mu);
    return has;
}

int erasure_has_id(erasure *e, int pseudonymous, const char *id, size_t len)
{
    char entry[33];
    if (!e || e->n == 0 || erasure_entry(pseudonymous, id, len, entry) == 0)
        return 0;
    return erasure_has(e, entry, 32);
}

int erasure_txn_pseudonymous(void *e, const char *id, size_t len)
{
    return erasure_has_id(e, 1, id, len);
}

int erasure_txn_clear(void *e, const char *id, size_t len) { return erasure_has_id(e, 0, id, len); }

size_t erasure_count(erasure *e)
{
    pthread_rwlock_rdlock(&e->mu);
    size_t n = e->n;
    pthread_rwlock_unlock(&e->mu);
    return n;
}

rfm_status erasure_add(erasure *e, const char *entry, char *err, size_t errlen)
{
    key16 k;
    if (parse(entry, strlen(entry), &k) != 0)
        return rfm_fail(err, errlen, RFM_EINVAL, "not an erasure entry: 32 lower-case hex digits");
    rfm_status st = RFM_OK;
    pthread_rwlock_wrlock(&e->mu);
    if (!contains(e, &k)) {
        /* The first entry creates the file: its folder is synced after it,
         * so that the file is there after a crash too. */
        int fd = open(e->path, O_WRONLY | O_APPEND | O_CLOEXEC), created = 0;
        if (fd < 0 && errno == ENOENT) {
            fd = open(e->path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            created = fd >= 0;
            if (fd < 0 && errno == EEXIST) /* another process made it since */
                fd = open(e->path, O_WRONLY | O_APPEND | O_CLOEXEC);
        }
        char line[34];
        memcpy(line, entry, 32);
        line[32] = '\n';
        if (fd < 0 || write(fd, line, 33) != 33 || fsync(fd) != 0)
            st = rfm_fail(err, errlen, RFM_EIO, "%s: %s", e->path, strerror(errno));
        if (fd >= 0 && close(fd) != 0 && st == RFM_OK)
            st = rfm_fail(err, errlen, RFM_EIO, "%s: %s", e->path, strerror(errno));
        if (st == RFM_OK && created)
            st = fileio_sync_parent(e->path, err, errlen);
        if (st == RFM_OK && insert(e, &k) != 0)
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    pthread_rwlock_unlock(&e->mu);
    return st;
}
