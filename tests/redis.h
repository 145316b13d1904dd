/* redis.h - a real redis-server for the tests: on a free port and a Unix
 * socket (sock_url), in a fresh temporary folder, with the append-only file on (the durable setting
 * docs/events.md recommends), stopped whatever happens. Tests that need it
 * skip, saying why, only when /usr/bin/redis-server is absent (make deps
 * installs it). Include after cmocka and net.h. */
#ifndef RFM_TEST_REDIS_H
#define RFM_TEST_REDIS_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define REDIS_SERVER "/usr/bin/redis-server"

typedef struct {
    pid_t pid;
    int port;
    char dir[64];
    char url[64];
    char sock_url[128]; /* the same server through its Unix socket (DIR/redis.sock) */
} test_redis;

static int redis_present(void)
{
    if (access(REDIS_SERVER, X_OK) == 0)
        return 1;
    print_message("skipped: %s is absent (make deps installs redis-server)\n", REDIS_SERVER);
    return 0;
}

/* Start (or restart, on the same port and folder when r->port is set) a
 * server; fsync "always" or "everysec". Waits up to 10 s for PONG. */
static void redis_start(test_redis *r, const char *fsync)
{
    if (!r->port) {
        r->port = free_port();
        snprintf(r->dir, sizeof r->dir, "/tmp/rfmredis_XXXXXX");
        assert_non_null(mkdtemp(r->dir));
        snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
        snprintf(r->sock_url, sizeof r->sock_url, "redis+unix://%s/redis.sock?db=0", r->dir);
    }
    fflush(stdout);
    r->pid = fork();
    assert_true(r->pid >= 0);
    if (r->pid == 0) {
        char port[16], log[128], sock[128];
        snprintf(port, sizeof port, "%d", r->port);
        snprintf(log, sizeof log, "%s/redis.log", r->dir);
        snprintf(sock, sizeof sock, "%s/redis.sock", r->dir);
        execl(REDIS_SERVER, "redis-server", "--port", port, "--bind", "127.0.0.1", "--unixsocket",
              sock, "--unixsocketperm", "700", "--save", "", "--appendonly", "yes", "--appendfsync",
              fsync, "--dir", r->dir, "--logfile", log, "--daemonize", "no", (char *)NULL);
        _exit(98);
    }
    for (int i = 0; i < 1000; i++) {
        int fd = dial_for(r->port, 1);
        if (fd >= 0) {
            char buf[16] = "";
            ssize_t n = write(fd, "PING\r\n", 6) == 6 ? read(fd, buf, sizeof buf - 1) : -1;
            close(fd);
            if (n > 0 && strncmp(buf, "+PONG", 5) == 0)
                return;
        }
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid)
            fail_msg("redis-server exited at start (see %s/redis.log)", r->dir);
        usleep(10000);
    }
    fail_msg("redis-server did not answer within 10 s (see %s/redis.log)", r->dir);
}

/* Stop the server with sig (SIGTERM: a clean shutdown; SIGKILL: a crash). */
static void redis_kill(test_redis *r, int sig)
{
    if (r->pid > 0) {
        kill(r->pid, sig);
        waitpid(r->pid, NULL, 0);
    }
    r->pid = -1;
}

/* Stop it and remove its folder. */
static void redis_stop(test_redis *r)
{
    redis_kill(r, SIGKILL);
    if (r->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", r->dir);
        if (system(cmd) != 0)
            print_message("could not remove %s\n", r->dir);
    }
    memset(r, 0, sizeof *r);
}

#endif
