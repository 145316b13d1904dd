/* fileio.c - read a whole file, growing the buffer by doubling; sync a
 * file's folder. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

rfm_status fileio_read(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return rfm_fail(err, errlen, RFM_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *nb = realloc(b, cap * 2 + 1);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b)
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", path);
    if (bad) {
        free(b);
        return rfm_fail(err, errlen, RFM_EIO, "%s: read error", path);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return RFM_OK;
}

rfm_status fileio_sync_parent(const char *path, char *err, size_t errlen)
{
    char parent[4096];
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(parent, sizeof parent, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    else
        snprintf(parent, sizeof parent, ".");
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return rfm_fail(err, errlen, RFM_EIO, "%s: %s", parent, strerror(e));
    }
    close(fd);
    return RFM_OK;
}
