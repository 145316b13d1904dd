/* test_modelfile.c - staged writes, manifest checks, and that a run which
 * fails or dies midway leaves the previous models/ exactly as it was. */
#include "testutil.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "modelfile.h"
#include "syncwrap.h"

static char root[64];
static char dir[128];

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/rfmtest_mf_XXXXXX");
    assert_non_null(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/models", root);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_version(const char *tag)
{
    modelfile_stage *s;
    char err[RFM_ERRLEN];
    assert_int_equal(modelfile_begin(dir, 0, &s, err, sizeof err), RFM_OK);
    json_t *j = json_pack("{s:s,s:f}", "tag", tag, "x", 0.1);
    assert_int_equal(modelfile_write_json(s, "a.json", j, err, sizeof err), RFM_OK);
    json_decref(j);
    assert_int_equal(modelfile_write_text(s, "a.md", tag, strlen(tag), err, sizeof err), RFM_OK);
    assert_int_equal(
        modelfile_add_model(s, "a", "1.0.0", "a.json", "a.md", NULL, NULL, err, sizeof err),
        RFM_OK);
    assert_int_equal(modelfile_commit(s, err, sizeof err), RFM_OK);
}

static const char *tag_of(void)
{
    static char tag[32];
    json_t *m, *j;
    char err[RFM_ERRLEN];
    if (modelfile_open(dir, &m, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    assert_int_equal(modelfile_load(dir, m, "a", &j, err, sizeof err), RFM_OK);
    snprintf(tag, sizeof tag, "%s", json_string_value(json_object_get(j, "tag")));
    /* 0.1 reads back bit for bit */
    assert_true(json_real_value(json_object_get(j, "x")) == 0.1);
    json_decref(j);
    json_decref(m);
    return tag;
}

/* Folders beside models/ and models/ itself; the lock file models.lock
 * stays for good and is not counted. */
static int count_siblings(void)
{
    DIR *d = opendir(root);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.' && strcmp(e->d_name, "models.lock") != 0;
    closedir(d);
    return n;
}

static void test_round_trip_and_replace(void **state)
{
    (void)state;
    write_version("v1");
    assert_string_equal(tag_of(), "v1");
    write_version("v2");
    assert_string_equal(tag_of(), "v2");
    assert_int_equal(count_siblings(), 1); /* the old version was removed */
}

static void test_abort_keeps_old(void **state)
{
    (void)state;
    write_version("v1");
    modelfile_stage *s;
    char err[RFM_ERRLEN];
    assert_int_equal(modelfile_begin(dir, 0, &s, err, sizeof err), RFM_OK);
    assert_int_equal(modelfile_write_text(s, "a.json", "{\"tag\":\"broken", 14, err, sizeof err),
                     RFM_OK);
    modelfile_abort(s); /* the failure path of a run */
    assert_string_equal(tag_of(), "v1");
    assert_int_equal(count_siblings(), 1);
}

/* A commit is durable: every file of the version and the staging folder
 * itself are on the disk before the rename that makes it the version, and
 * the folder holding models/ after it (else a machine stopped right after
 * rfm-train said "wrote" could come back with the old version). Both the
 * first version (rename) and a replacement (exchange). */
static void test_commit_is_durable(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        sync_events_clear();
        write_version(round ? "v2" : "v1");
        int r = sync_event_find('r', NULL, 0);
        assert_true(r >= 0);
        char stage[512], path[1024];
        snprintf(stage, sizeof stage, "%s", sync_events[r].path);
        static const char *const files[] = {"a.json", "a.md", "manifest.json"};
        for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
            snprintf(path, sizeof path, "%s/%s", stage, files[f]);
            int k = sync_event_find('s', path, 0);
            if (k < 0 || k > r)
                fail_msg("round %d: %s not synced before the rename", round, path);
        }
        int k = sync_event_find('s', stage, 0);
        if (k < 0 || k > r)
            fail_msg("round %d: the staging folder not synced before the rename", round);
        if (sync_event_find('s', root, r) < 0)
            fail_msg("round %d: %s not synced after the rename", round, root);
        assert_string_equal(tag_of(), round ? "v2" : "v1");
    }
}

/* A disk error while the commit syncs a file: the commit fails naming it,
 * and the old version is left as it was, with no staging folder. */
static void test_sync_error_keeps_old(void **state)
{
    (void)state;
    write_version("v1");
    modelfile_stage *s;
    char err[RFM_ERRLEN], path[512];
    assert_int_equal(modelfile_begin(dir, 0, &s, err, sizeof err), RFM_OK);
    assert_int_equal(
        modelfile_write_text(s, "a.json", "{\"tag\":\"v2\",\"x\":0.1}", 20, err, sizeof err),
        RFM_OK);
    snprintf(path, sizeof path, "%s/a.json", modelfile_stage_dir(s));
    sync_fail_path = path;
    rfm_status st = modelfile_commit(s, err, sizeof err);
    sync_fail_path = NULL;
    assert_int_equal(st, RFM_EIO);
    assert_non_null(strstr(err, "a.json"));
    assert_string_equal(tag_of(), "v1");
    assert_int_equal(count_siblings(), 1);
}

static void test_crash_midway_keeps_old(void **state)
{
    (void)state;
    write_version("v1");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* a run that dies after writing half its files */
        modelfile_stage *s;
        char err[RFM_ERRLEN];
        if (modelfile_begin(dir, 0, &s, err, sizeof err) != RFM_OK)
            _exit(3);
        modelfile_write_text(s, "a.json", "{}", 2, err, sizeof err);
        _exit(9);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_int_equal(WEXITSTATUS(status), 9);
    assert_string_equal(tag_of(), "v1");
    assert_int_equal(count_siblings(), 2); /* models + the dead run's staging folder */
    write_version("v2");                   /* a new run still works */
    assert_string_equal(tag_of(), "v2");
    /* and removed the dead run's folder at once, not an hour later */
    assert_int_equal(count_siblings(), 1);
}

static void test_detects_tampering(void **state)
{
    (void)state;
    write_version("v1");
    char path[256], err[RFM_ERRLEN];
    json_t *m;
    snprintf(path, sizeof path, "%s/a.json", dir);
    FILE *f = fopen(path, "ab");
    fputs(" ", f);
    fclose(f);
    assert_int_equal(modelfile_open(dir, &m, err, sizeof err), RFM_ECHECKSUM);
    assert_non_null(strstr(err, "a.json"));
    assert_non_null(strstr(err, "does not match"));
    remove(path);
    assert_int_equal(modelfile_open(dir, &m, err, sizeof err), RFM_ECHECKSUM);
    assert_non_null(strstr(err, "missing"));
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    remove(path);
    assert_int_equal(modelfile_open(dir, &m, err, sizeof err), RFM_ENOTFOUND);
}

static void test_keep_existing(void **state)
{
    (void)state;
    write_version("v1");
    modelfile_stage *s;
    char err[RFM_ERRLEN];
    json_t *m;
    assert_int_equal(modelfile_begin(dir, 1, &s, err, sizeof err), RFM_OK);
    assert_int_equal(modelfile_write_text(s, "b.json", "{}", 2, err, sizeof err), RFM_OK);
    assert_int_equal(
        modelfile_add_model(s, "b", "1.0.0", "b.json", NULL, NULL, NULL, err, sizeof err), RFM_OK);
    assert_int_equal(modelfile_commit(s, err, sizeof err), RFM_OK);
    assert_string_equal(tag_of(), "v1"); /* a was carried over */
    assert_int_equal(modelfile_open(dir, &m, err, sizeof err), RFM_OK);
    assert_non_null(json_object_get(json_object_get(m, "models"), "b"));
    json_decref(m);
    /* Names with a path are refused. */
    assert_int_equal(modelfile_begin(dir, 1, &s, err, sizeof err), RFM_OK);
    assert_int_equal(modelfile_write_text(s, "../x", "", 0, err, sizeof err), RFM_EINVAL);
    assert_int_equal(modelfile_write_text(s, "manifest.json", "", 0, err, sizeof err), RFM_EINVAL);
    modelfile_abort(s);
}

static int has_entry(const char *folder, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", folder, name);
    return access(p, F_OK) == 0;
}

static void copy_owner(const char *from_stage, const char *to_stage, const char *start_line)
{
    char from[512], to[512], text[1024];
    snprintf(from, sizeof from, "%s/owner", from_stage);
    snprintf(to, sizeof to, "%s/owner", to_stage);
    FILE *f = fopen(from, "rb");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_int_equal(mkdir(to_stage, 0755), 0);
    FILE *o = fopen(to, "wb");
    assert_non_null(o);
    for (char *line = text; *line;) {
        char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) + 1 : strlen(line);
        if (start_line && strncmp(line, "start ", 6) == 0)
            fputs(start_line, o);
        else
            fwrite(line, 1, len, o);
        line += len;
    }
    fclose(o);
}

/* Staging folders left behind: the one of a run that is gone goes at the
 * next run whatever its age; one whose owner still runs stays; so does one
 * without an owner file until it is an hour old; a pid now naming another
 * process (a start time that differs) counts as gone. */
static void test_stale_by_owner(void **state)
{
    (void)state;
    write_version("v1");
    char err[RFM_ERRLEN], live[128], reused[128], legacy[128];
    modelfile_stage *s;
    /* A folder owned by this test process, which is alive; later one whose
     * owner has this pid but another start time. */
    assert_int_equal(modelfile_begin(dir, 0, &s, err, sizeof err), RFM_OK);
    assert_true(has_entry(modelfile_stage_dir(s), "owner"));
    assert_int_equal(modelfile_write_text(s, "owner", "x", 1, err, sizeof err), RFM_EINVAL);
    snprintf(live, sizeof live, "%s/models.tmp-live01", root);
    snprintf(reused, sizeof reused, "%s/models.tmp-reuse1", root);
    copy_owner(modelfile_stage_dir(s), live, NULL);
    modelfile_abort(s);
    snprintf(legacy, sizeof legacy, "%s/models.tmp-legacy", root);
    assert_int_equal(mkdir(legacy, 0755), 0);
    /* A run killed midway: its folder names a process that is gone. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (modelfile_begin(dir, 0, &s, err, sizeof err) != RFM_OK)
            _exit(3);
        modelfile_write_text(s, "a.json", "{}", 2, err, sizeof err);
        _exit(9);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_int_equal(WEXITSTATUS(status), 9);
    copy_owner(live, reused, "start 1\n"); /* after the child's run, which would remove it */
    assert_int_equal(count_siblings(), 5);
    write_version("v2");
    assert_true(has_entry(root, "models.tmp-live01"));
    assert_true(has_entry(root, "models.tmp-legacy"));
    assert_false(has_entry(root, "models.tmp-reuse1"));
    assert_int_equal(count_siblings(), 3); /* models, live01, legacy */
    /* The owner file never reaches the models folder. */
    assert_false(has_entry(dir, "owner"));
    assert_string_equal(tag_of(), "v2");
}

/* Two writers of one folder take turns: while one holds the lock, another
 * fails at once naming it, or with MODELFILE_WAIT waits and then keeps
 * what the first one wrote. */
static void test_lock_turns(void **state)
{
    (void)state;
    write_version("v1");
    int locked[2], go[2];
    assert_int_equal(pipe(locked), 0);
    assert_int_equal(pipe(go), 0);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the first writer: adds model b */
        modelfile_stage *s;
        char err[RFM_ERRLEN], c;
        close(go[1]); /* so that a failing test's exit ends the read below */
        if (modelfile_begin(dir, MODELFILE_KEEP, &s, err, sizeof err) != RFM_OK)
            _exit(3);
        if (write(locked[1], "L", 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(4);
        if (modelfile_write_text(s, "b.json", "{}", 2, err, sizeof err) != RFM_OK ||
            modelfile_add_model(s, "b", "1.0.0", "b.json", NULL, NULL, NULL, err, sizeof err) !=
                RFM_OK ||
            modelfile_commit(s, err, sizeof err) != RFM_OK)
            _exit(5);
        _exit(0);
    }
    char c, err[RFM_ERRLEN], want[96];
    assert_int_equal(read(locked[0], &c, 1), 1);
    modelfile_stage *s;
    modelfile_lock *l;
    assert_int_equal(modelfile_begin(dir, MODELFILE_KEEP, &s, err, sizeof err), RFM_EBUSY);
    printf("    busy: %s\n", err);
    snprintf(want, sizeof want, "/models/ is being written by test_modelfile pid %ld on ",
             (long)pid);
    if (!strstr(err, want) || !strstr(err, " since ") || !strstr(err, "models.lock"))
        fail_msg("'%s' does not name the holder ('%s')", err, want);
    assert_int_equal(modelfile_lock_take(dir, 0, &l, err, sizeof err), RFM_EBUSY);
    /* "models/" is the same folder as "models", with the same lock. */
    char slash[160];
    snprintf(slash, sizeof slash, "%s/", dir);
    assert_int_equal(modelfile_lock_take(slash, 0, &l, err, sizeof err), RFM_EBUSY);
    /* Let the first writer finish while this one waits for the lock. */
    assert_int_equal(write(go[1], "G", 1), 1);
    assert_int_equal(modelfile_begin(dir, MODELFILE_KEEP | MODELFILE_WAIT, &s, err, sizeof err),
                     RFM_OK);
    int status;
    waitpid(pid, &status, 0);
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(modelfile_write_text(s, "c.json", "{}", 2, err, sizeof err), RFM_OK);
    assert_int_equal(
        modelfile_add_model(s, "c", "1.0.0", "c.json", NULL, NULL, NULL, err, sizeof err), RFM_OK);
    assert_int_equal(modelfile_commit(s, err, sizeof err), RFM_OK);
    json_t *m;
    assert_int_equal(modelfile_open(dir, &m, err, sizeof err), RFM_OK);
    const json_t *models = json_object_get(m, "models");
    assert_non_null(json_object_get(models, "a")); /* v1 */
    assert_non_null(json_object_get(models, "b")); /* the first writer */
    assert_non_null(json_object_get(models, "c")); /* the second */
    json_decref(m);
    /* Released by the commit: free to take, and again after a release. */
    assert_int_equal(modelfile_lock_take(dir, 0, &l, err, sizeof err), RFM_OK);
    modelfile_lock_release(l);
    assert_int_equal(modelfile_lock_take(slash, 0, &l, err, sizeof err), RFM_OK);
    modelfile_lock_release(l);
    close(locked[0]), close(locked[1]), close(go[0]), close(go[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_is_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_error_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_midway_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detects_tampering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_by_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_turns, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
