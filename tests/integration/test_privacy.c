/* test_privacy.c - integration: pseudonymous ids end to end. A slice of the
 * bundled transactions has one customer's id replaced by an e-mail address
 * and a column the config does not name (Country) by a marker. Trained
 * with privacy.pseudonymize_ids and served with a state store and an
 * access log file, the address is sent as a clear id to every kind of
 * endpoint; then every file the programs wrote (models/, the store, the
 * access log, their stderr) is searched for the address and the marker.
 * The same slice trained without pseudonymisation is the control: there
 * the search finds the address, and the trainer warns about it. */
#include "testutil.h"
#include "net.h"
#include "daemon.h"

#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "txn.h"

#define TOKEN "privacy-token"
#define EMAIL "planted.person@example.com"
#define MARKER "Secretland-Q7"
#define KEY "test-key-0123456789abcdef"

static char dir[64];
static char pseudonym[33]; /* of EMAIL under KEY, by openssl */

/* Output of a shell command (first line, newline cut) into out. */
static void shell_line(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    if (!fgets(out, (int)cap, p))
        out[0] = '\0';
    pclose(p);
    out[strcspn(out, "\n")] = '\0';
}

/* A copy of ../config/rfm.yaml into dir/name with each `from` replaced by
 * `to` (pairs, NULL-ended). */
static void derive(const char *name, const char *const *pairs)
{
    FILE *f = fopen("../config/rfm.yaml", "rb");
    assert_non_null(f);
    static char text[65536], out[65536 + 4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    for (; pairs[0]; pairs += 2) {
        char *at = strstr(text, pairs[0]);
        if (!at)
            fail_msg("config has no '%s'", pairs[0]);
        snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, pairs[1],
                 at + strlen(pairs[0]));
        memcpy(text, out, strlen(out) + 1 < sizeof text ? strlen(out) + 1 : sizeof text);
        text[sizeof text - 1] = '\0';
    }
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rfmtest_privacy_XXXXXX");
    assert_non_null(mkdtemp(dir));
    char cmd[1024];
    /* The input lives apart from the outputs searched later. */
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/in %s/out/state && zcat ../data/online_retail.csv.gz | "
             "sed -e 's/,17850\\.0,/," EMAIL ",/' -e 's/,United Kingdom$/," MARKER "/' "
             "> %s/in/tx.csv",
             dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    /* The pseudonym as docs/security.md tells a CRM to compute it. */
    snprintf(cmd, sizeof cmd,
             "printf %%s '" EMAIL "' | openssl dgst -sha256 -hmac '" KEY "' | sed 's/.*= //' | "
             "cut -c1-32");
    shell_line(cmd, pseudonym, sizeof pseudonym);
    assert_int_equal(strlen(pseudonym), 32);
    char access[160], store[160];
    snprintf(access, sizeof access, "access_log: %s/out/access.log", dir);
    snprintf(store, sizeof store, "path: %s/out/state/state.db", dir);
    const char *const on[] = {"pseudonymize_ids: false",
                              "pseudonymize_ids: true",
                              "access_log: null",
                              access,
                              "path: state/state.db",
                              store,
                              NULL};
    derive("on.yaml", on);
    const char *const off[] = {"path: state/state.db", "path: null", NULL};
    derive("off.yaml", off);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* rfm-train on the slice with config (in dir) into models, RFM_ID_KEY
 * set to key (NULL: unset); stderr into dir/out/err (or, for a control,
 * where err says). Returns the exit status. */
static int train(const char *config, const char *models, const char *key, const char *err,
                 char *out, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s%s%s ../bin/rfm-train --config %s/%s --transactions %s/in/tx.csv "
             "--only segments,churn,embeddings --models %s 2>%s",
             key ? "RFM_ID_KEY='" : "env -u RFM_ID_KEY", key ? key : "", key ? "'" : "", dir,
             config, dir, models, err);
    int rc = system(cmd);
    FILE *f = fopen(err, "rb");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static pid_t serve(const char *config, const char *models, const char *key, int port)
{
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char cfg[160], p[16], log[160];
        snprintf(cfg, sizeof cfg, "%s/%s", dir, config);
        snprintf(p, sizeof p, "%d", port);
        snprintf(log, sizeof log, "%s/out/serve.err", dir);
        if (key)
            setenv("RFM_ID_KEY", key, 1);
        else
            unsetenv("RFM_ID_KEY");
        daemon_exec(log, "a", TOKEN,
                    (const char *[]){"--config", cfg, "--port", p, "--models", models, NULL});
    }
    return daemon_wait(pid, port, NULL);
}

/* One request; the status, the body into body (cap bytes). */
static int request(int port, const char *method, const char *path, const char *json, char *body,
                   size_t cap)
{
    int fd = dial_for(port, 10);
    assert_true(fd >= 0);
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " TOKEN "\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     method, path, json ? strlen(json) : 0, json ? json : "");
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    static char buf[1 << 20];
    size_t got = 0;
    for (;;) {
        ssize_t k = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    buf[got] = '\0';
    int status = 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    const char *b = strstr(buf, "\r\n\r\n");
    snprintf(body, cap, "%s", b ? b + 4 : "");
    return status;
}

/* Files under root holding text (grep -rlF), one a line, into out. */
static void files_with(const char *root, const char *text, char *out, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "grep -rlF -a '%s' '%s' 2>/dev/null | tr '\\n' ' '", text, root);
    shell_line(cmd, out, cap);
}

/* Without RFM_ID_KEY (or with a short one), pseudonymisation on refuses
 * to train, naming the variable. */
static void test_train_needs_key(void **state)
{
    (void)state;
    char models[128], err[160], out[4096];
    snprintf(models, sizeof models, "%s/nokey", dir);
    snprintf(err, sizeof err, "%s/nokey.err", dir);
    assert_int_equal(train("on.yaml", models, NULL, err, out, sizeof out), 2);
    assert_non_null(strstr(out, "RFM_ID_KEY is not set"));
    assert_int_equal(train("on.yaml", models, "short", err, out, sizeof out), 2);
    assert_non_null(strstr(out, "at least 16"));
    assert_null(strstr(out, "short")); /* the key is never quoted */
    printf("    %s", out);
}

static void test_pseudonyms_everywhere(void **state)
{
    (void)state;
    char models[128], err[160], out[8192], found[4096], body[1 << 16], path[256];
    snprintf(models, sizeof models, "%s/out/models", dir);
    snprintf(err, sizeof err, "%s/out/train.err", dir);
    if (train("on.yaml", models, KEY, err, out, sizeof out) != 0)
        fail_msg("rfm-train: %s", out);
    assert_null(strstr(out, "look like e-mail")); /* pseudonymous: no warning */
    /* The manifest says so; customers.csv has the pseudonym openssl gave. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "grep -c '^%s,' %s/customers.csv", pseudonym, models);
    shell_line(cmd, found, sizeof found);
    assert_string_equal(found, "1");
    snprintf(cmd, sizeof cmd, "grep -o '\"pseudonymized_ids\": *true' %s/manifest.json", models);
    shell_line(cmd, found, sizeof found);
    assert_true(found[0] != '\0');

    int port = free_port();
    pid_t pid = serve("on.yaml", models, KEY, port);
    assert_true(pid > 0);
    /* By clear id and by pseudonym: the same customer, answered with the
     * pseudonym. */
    assert_int_equal(request(port, "GET", "/customers/" EMAIL, NULL, body, sizeof body), 200);
    assert_non_null(strstr(body, pseudonym));
    assert_null(strstr(body, EMAIL));
    snprintf(path, sizeof path, "/customers/%s", pseudonym);
    char again[1 << 16];
    assert_int_equal(request(port, "GET", path, NULL, again, sizeof again), 200);
    assert_string_equal(body, again);
    assert_int_equal(
        request(port, "POST", "/segment", "{\"customer_id\": \"" EMAIL "\"}", body, sizeof body),
        200);
    assert_non_null(strstr(body, pseudonym));
    assert_int_equal(request(port, "POST", "/predict_churn/batch",
                             "{\"customers\": [{\"customer_id\": \"" EMAIL "\"}]}", body,
                             sizeof body),
                     200);
    assert_null(strstr(body, EMAIL));
    /* Lookalikes list pseudonyms only: 32 hex digits each. */
    assert_int_equal(request(port, "POST", "/similar_customers",
                             "{\"customer_id\": \" " EMAIL " \", \"k\": 5}", body, sizeof body),
                     200);
    size_t listed = 0;
    for (const char *p = body; (p = strstr(p, "\"customer_id\":\"")) != NULL; listed++) {
        p += 15;
        assert_true(txn_is_pseudonym(p, strcspn(p, "\"")));
    }
    assert_true(listed >= 5);
    assert_int_equal(request(port, "POST", "/events",
                             "{\"events\": [{\"event_id\": \"p1\", \"customer_id\": \"" EMAIL
                             "\", \"time\": \"2011-12-01\", \"amount\": 7}]}",
                             body, sizeof body),
                     200);
    /* The event landed on the pseudonymous customer. */
    assert_int_equal(request(port, "GET", path, NULL, body, sizeof body), 200);
    assert_string_not_equal(body, again);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(WEXITSTATUS(st), 0);

    /* Everything written: no address, no unconfigured column. */
    snprintf(path, sizeof path, "%s/out", dir);
    files_with(path, EMAIL, found, sizeof found);
    if (found[0])
        fail_msg("the planted address is in: %s", found);
    files_with(path, MARKER, found, sizeof found);
    if (found[0])
        fail_msg("the unconfigured column is in: %s", found);
    snprintf(cmd, sizeof cmd, "ls -R %s/out | wc -l", dir);
    shell_line(cmd, found, sizeof found);
    printf("    %s entries under out/ (models, state store, access log, stderr): no '" EMAIL
           "', no '" MARKER "'\n",
           found);
    /* The search can find it: it is in the input. */
    snprintf(path, sizeof path, "%s/in", dir);
    files_with(path, EMAIL, found, sizeof found);
    assert_true(found[0] != '\0');
}

/* Serving pseudonymous models with another key, or with pseudonymisation
 * off, is refused at start with the reason. */
static void test_serve_refuses_other_key(void **state)
{
    (void)state;
    char models[128], cmd[512], out[1024];
    snprintf(models, sizeof models, "%s/out/models", dir);
    assert_true(serve("on.yaml", models, "another-key-0123456789", free_port()) < 0);
    snprintf(cmd, sizeof cmd, "tail -n 1 %s/out/serve.err", dir);
    shell_line(cmd, out, sizeof out);
    assert_non_null(strstr(out, "not the key the models were trained with"));
    assert_true(serve("off.yaml", models, NULL, free_port()) < 0);
    shell_line(cmd, out, sizeof out);
    assert_non_null(strstr(out, "trained with pseudonymous ids"));
    assert_true(serve("on.yaml", models, NULL, free_port()) < 0);
    shell_line(cmd, out, sizeof out);
    assert_non_null(strstr(out, "RFM_ID_KEY is not set"));
}

/* The customer ids (pseudonyms) of a /similar_customers answer, joined by
 * spaces, into out. */
static void neighbours(int port, const char *id, int k, char *out, size_t cap)
{
    char req[256], body[1 << 16];
    snprintf(req, sizeof req, "{\"customer_id\": \"%s\", \"k\": %d}", id, k);
    assert_int_equal(request(port, "POST", "/similar_customers", req, body, sizeof body), 200);
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = body; (p = strstr(p, "\"customer_id\":\"")) != NULL;) {
        p += 15;
        n += (size_t)snprintf(out + n, cap - n, "%.32s ", p);
    }
}

/* DELETE /customers/{id}: 204, listed on the erasure list beside the
 * store and removed from the store (its pseudonym gone from state.db and
 * its WAL, events sent later ignored as "erased"); from then on every
 * by-id endpoint says 404 and no lookalike answer lists the customer; rfm-score leaves them out; a
 * retrain from the same (old) export drops their lines as "erased", and no model file has them. */
static void test_erasure(void **state)
{
    (void)state;
    char models[128], path[256], body[1 << 16], list[4096], cmd[1024], found[4096];
    snprintf(models, sizeof models, "%s/out/models", dir);
    int port = free_port();
    pid_t pid = serve("on.yaml", models, KEY, port);
    assert_true(pid > 0);
    /* A customer who lists the erased one among their lookalikes. */
    char mine[4096], theirs[4096], q[33] = "";
    neighbours(port, EMAIL, 10, mine, sizeof mine);
    for (const char *p = mine; *p && !q[0]; p += 33) {
        neighbours(port, (snprintf(q, sizeof q, "%.32s", p), q), 100, theirs, sizeof theirs);
        if (!strstr(theirs, pseudonym))
            q[0] = '\0';
    }
    assert_true(q[0] != '\0');
    /* The store has them (seeded, and the event of the test above). */
    char db[256], wal[256], had[4096];
    snprintf(db, sizeof db, "%s/out/state/state.db", dir);
    snprintf(wal, sizeof wal, "%s/out/state/state.db-wal", dir);
    files_with(db, pseudonym, had, sizeof had);
    files_with(wal, pseudonym, found, sizeof found);
    assert_true(had[0] || found[0]);
    assert_int_equal(request(port, "DELETE", "/customers/" EMAIL, NULL, body, sizeof body), 204);
    assert_string_equal(body, "");
    /* Listed once, by pseudonym, flushed before the answer. */
    snprintf(cmd, sizeof cmd, "cat %s/out/state/state.db.erased", dir);
    shell_line(cmd, list, sizeof list);
    assert_string_equal(list, pseudonym);
    snprintf(path, sizeof path, "/customers/%s", pseudonym);
    assert_int_equal(request(port, "DELETE", path, NULL, body, sizeof body), 204);
    snprintf(cmd, sizeof cmd, "wc -l < %s/out/state/state.db.erased", dir);
    shell_line(cmd, list, sizeof list);
    assert_string_equal(list, "1");
    /* Every by-id endpoint, by clear id and by pseudonym. */
    assert_int_equal(request(port, "GET", "/customers/" EMAIL, NULL, body, sizeof body), 404);
    assert_int_equal(request(port, "GET", path, NULL, body, sizeof body), 404);
    const char *posts[] = {"/segment", "/predict_churn", "/similar_customers"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(
            request(port, "POST", posts[i], "{\"customer_id\": \"" EMAIL "\"}", body, sizeof body),
            404);
        assert_null(strstr(body, EMAIL));
    }
    assert_int_equal(request(port, "POST", "/segment/batch",
                             "{\"customers\": [{\"customer_id\": \"" EMAIL "\"}]}", body,
                             sizeof body),
                     200);
    assert_non_null(strstr(body, "\"code\":404"));
    /* No lookalike answer lists them, also the one that did. */
    neighbours(port, q, 100, theirs, sizeof theirs);
    assert_null(strstr(theirs, pseudonym));
    assert_non_null(strstr(theirs, " ")); /* still an answer */
    /* An event for them now: ignored as erased, not stored. */
    assert_int_equal(request(port, "POST", "/events",
                             "{\"events\": [{\"event_id\": \"p2\", \"customer_id\": \"" EMAIL
                             "\", \"time\": \"2011-12-02\", \"amount\": 9}]}",
                             body, sizeof body),
                     200);
    assert_non_null(strstr(body, "\"reason\":\"erased\""));
    assert_int_equal(request(port, "GET", path, NULL, body, sizeof body), 404);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(WEXITSTATUS(st), 0);
    /* Out of the store's files (the list beside it holds the pseudonym,
     * by design). */
    files_with(db, pseudonym, found, sizeof found);
    assert_string_equal(found, "");
    files_with(wal, pseudonym, found, sizeof found);
    assert_string_equal(found, "");

    /* An export of the old models leaves them out. */
    snprintf(cmd, sizeof cmd,
             "cd .. && bin/rfm-score --quiet --config %s/on.yaml --models %s --out "
             "%s/out/export.csv 2>%s/out/score.err",
             dir, models, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "grep -c . %s/out/export.csv", dir);
    shell_line(cmd, found, sizeof found);
    assert_true(atoi(found) > 1000);
    snprintf(path, sizeof path, "%s/out/export.csv", dir);
    files_with(path, pseudonym, found, sizeof found);
    assert_string_equal(found, "");

    /* A retrain from the same export: dropped as "erased", in no file. */
    char err[160], out[8192];
    snprintf(err, sizeof err, "%s/out/retrain.err", dir);
    if (train("on.yaml", models, KEY, err, out, sizeof out) != 0)
        fail_msg("rfm-train: %s", out);
    const char *line = strstr(out, "  erased ");
    assert_non_null(line);
    printf("    retrain: %.*s\n", (int)strcspn(line, "\n"), line);
    assert_true(strtoull(line + 8, NULL, 10) > 0);
    files_with(models, pseudonym, found, sizeof found);
    if (found[0])
        fail_msg("the erased customer is still in: %s", found);
    snprintf(cmd, sizeof cmd,
             "tr -d ' \\n' < %s/manifest.json | grep -o '\"erased\":{\"count\":[1-9]'", models);
    shell_line(cmd, found, sizeof found);
    assert_true(found[0] != '\0');
}

/* The control: without pseudonymisation the address is stored in clear
 * (so the search above would have found it), and the trainer says so on
 * stderr and in the manifest. */
static void test_clear_ids_warned(void **state)
{
    (void)state;
    char models[128], err[160], out[8192], found[4096], cmd[512];
    snprintf(models, sizeof models, "%s/clear", dir);
    snprintf(err, sizeof err, "%s/clear.err", dir);
    if (train("off.yaml", models, KEY, err, out, sizeof out) != 0)
        fail_msg("rfm-train: %s", out);
    const char *w = strstr(out, "1 customer ids look like e-mail addresses");
    assert_non_null(w);
    assert_null(strstr(w + 20, "look like e-mail")); /* once */
    assert_null(strstr(out, EMAIL));                 /* counted, never quoted */
    printf("    %.*s\n", (int)strcspn(w, "\n"), w);
    snprintf(cmd, sizeof cmd, "grep -o '\"email\": *1' %s/manifest.json", models);
    shell_line(cmd, found, sizeof found);
    assert_true(found[0] != '\0');
    files_with(models, EMAIL, found, sizeof found);
    assert_non_null(strstr(found, "customers.csv"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_needs_key),
        cmocka_unit_test(test_pseudonyms_everywhere),
        cmocka_unit_test(test_serve_refuses_other_key),
        cmocka_unit_test(test_erasure),
        cmocka_unit_test(test_clear_ids_warned),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
