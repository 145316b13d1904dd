/* syncwrap.h - the file system calls core/ makes that decide what survives
 * a crash, recorded in order: each fsync by the path of its file
 * descriptor, each rename by its source; and a disk error on one path's
 * fsync, when asked for. A test including it is linked
 * with -Wl,--wrap=fsync,--wrap=rename,--wrap=renameat2 (the Makefile). */
#ifndef RFM_TEST_SYNCWRAP_H
#define RFM_TEST_SYNCWRAP_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { SYNC_MAX_EVENTS = 256 };
static struct {
    char kind; /* 's' fsync, 'r' rename */
    char path[512];
} sync_events[SYNC_MAX_EVENTS];
static int sync_nevents;
/* A path whose fsync fails with EIO (a disk error), or NULL. */
static const char *sync_fail_path;

static void sync_events_clear(void) { sync_nevents = 0; }

static void sync_record(char kind, const char *path)
{
    if (sync_nevents < SYNC_MAX_EVENTS) {
        sync_events[sync_nevents].kind = kind;
        snprintf(sync_events[sync_nevents].path, sizeof sync_events[sync_nevents].path, "%s", path);
        sync_nevents++;
    }
}

/* Index of the first event of kind (for path; any path when NULL) at or
 * after from, else -1. */
static int sync_event_find(char kind, const char *path, int from)
{
    for (int i = from; i < sync_nevents; i++)
        if (sync_events[i].kind == kind && (!path || strcmp(sync_events[i].path, path) == 0))
            return i;
    return -1;
}

int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __wrap_fsync(int fd)
{
    char link[64], path[512];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    path[n > 0 ? n : 0] = '\0';
    sync_record('s', path);
    if (sync_fail_path && strcmp(path, sync_fail_path) == 0) {
        errno = EIO;
        return -1;
    }
    return __real_fsync(fd);
}

int __real_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to)
{
    sync_record('r', from);
    return __real_rename(from, to);
}

int __real_renameat2(int fd1, const char *from, int fd2, const char *to, unsigned flags);
int __wrap_renameat2(int fd1, const char *from, int fd2, const char *to, unsigned flags);
int __wrap_renameat2(int fd1, const char *from, int fd2, const char *to, unsigned flags)
{
    sync_record('r', from);
    return __real_renameat2(fd1, from, fd2, to, flags);
}

#endif
