/* daemon.h - the real rfm-serve for the integration tests that start it
 * with a customer-state store (test_events, test_redis, test_kafka,
 * test_feed; test_accesslog and test_privacy start it with daemon_exec and
 * daemon_wait), and HTTP/1.1 to it over a raw socket: one request per
 * connection (Connection: close), a bearer token, the whole reply read
 * until the daemon closes. Raw sockets on purpose: the tests kill the
 * daemon mid-request and must tell "no answer" from an answer.
 * Include after testutil.h and net.h. */
#ifndef RFM_TEST_DAEMON_H
#define RFM_TEST_DAEMON_H

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* A reply: the status and the body (NUL-terminated; the caller frees). */
typedef struct {
    int status;
    char *body;
} response;

/* Sends METHOD path with a JSON body (or none) and the bearer token on a
 * new connection to 127.0.0.1:port (reads time out after 20 s); the
 * connection, for daemon_receive, or -1 when it could not be made or sent. */
static inline int daemon_send(int port, const char *token, const char *method, const char *path,
                              const char *body)
{
    int fd = dial_for(port, 20);
    if (fd < 0)
        return -1;
    size_t blen = body ? strlen(body) : 0;
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      method, path, token, blen);
    if (send(fd, head, (size_t)hn, MSG_NOSIGNAL) != hn) {
        close(fd);
        return -1;
    }
    for (size_t o = 0; o < blen;) {
        ssize_t w = send(fd, body + o, blen - o, MSG_NOSIGNAL);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        o += (size_t)w;
    }
    return fd;
}

/* The reply on fd, which it closes: 0 with *r filled, or -1 (r->body
 * NULL) when the connection closed before a whole head came (the daemon
 * died). */
static inline int daemon_receive(int fd, response *r)
{
    memset(r, 0, sizeof *r);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (n + 4096 > cap) {
            buf = realloc(buf, cap *= 2);
            assert_non_null(buf);
        }
        ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (!end || sscanf(buf, "HTTP/1.1 %d", &r->status) != 1) {
        free(buf);
        r->status = 0;
        return -1;
    }
    r->body = strdup(end + 4);
    free(buf);
    return 0;
}

/* One request on a new connection: daemon_send, then daemon_receive. */
static inline int daemon_request(int port, const char *token, const char *method, const char *path,
                                 const char *body, response *r)
{
    memset(r, 0, sizeof *r);
    int fd = daemon_send(port, token, method, path, body);
    return fd < 0 ? -1 : daemon_receive(fd, r);
}

/* In a forked child: to the repository root (tests run in tests/; the
 * configs' paths are the root's), stderr to log (fopen mode "a" or "w"),
 * stdout to /dev/null, the API token token, then rfm-serve ($RFM_SERVE,
 * else bin/rfm-serve) with args (after argv[0], NULL-terminated). Never
 * returns: _exit 99, 97 or 98 when a step fails. The caller sets any other
 * variable (RFM_ID_KEY) before. */
static inline void daemon_exec(const char *log, const char *mode, const char *token,
                               const char *const *args)
{
    if (chdir("..") != 0)
        _exit(99);
    if (!freopen(log, mode, stderr) || !freopen("/dev/null", "w", stdout))
        _exit(97);
    setenv("RFM_API_TOKENS", token, 1);
    const char *serve = getenv("RFM_SERVE") ? getenv("RFM_SERVE") : "bin/rfm-serve";
    const char *argv[32] = {"rfm-serve"};
    for (size_t i = 0; args[i] && i + 2 < sizeof argv / sizeof argv[0]; i++)
        argv[i + 1] = args[i];
    execv(serve, (char *const *)argv);
    _exit(98);
}

/* Waits (up to 30 s) until the forked daemon pid accepts connections on
 * port. Its pid; or -1 when it exited first (*exit_status, if given, gets
 * its exit status) or never listened (it is killed; *exit_status -1). */
static inline pid_t daemon_wait(pid_t pid, int port, int *exit_status)
{
    for (int i = 0; i < 3000; i++) {
        int fd = dial_for(port, 20);
        if (fd >= 0) {
            close(fd);
            return pid;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            if (exit_status)
                *exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            return -1;
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (exit_status)
        *exit_status = -1;
    return -1;
}

/* Starts rfm-serve from the repository root (daemon_exec) with --config
 * dir/config --port port --models models --state state, the API token
 * token, stderr appended to dir/serve.log, and waits for it (daemon_wait). */
static inline pid_t daemon_start(const char *dir, const char *config, const char *models,
                                 const char *state, const char *token, int port, int *exit_status)
{
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char cfg[256], p[16], log[256];
        snprintf(cfg, sizeof cfg, "%s/%s", dir, config);
        snprintf(p, sizeof p, "%d", port);
        snprintf(log, sizeof log, "%s/serve.log", dir);
        daemon_exec(log, "a", token,
                    (const char *[]){"--config", cfg, "--port", p, "--models", models, "--state",
                                     state, NULL});
    }
    return daemon_wait(pid, port, exit_status);
}

/* SIGTERM, and the daemon's wait status once it has exited; -1 for a pid
 * that is not a child's (<= 0: kill() would signal a whole group, or
 * every process). */
static inline int daemon_stop(pid_t pid)
{
    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

#endif
