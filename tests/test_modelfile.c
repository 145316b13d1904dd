/* test_modelfile.c - staged writes, manifest checks, and that a run which
 * fails or dies midway leaves the previous models/ exactly as it was. */
#include "testutil.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "modelfile.h"

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
    assert_int_equal(modelfile_add_model(s, "a", "1.0.0", "a.json", "a.md", NULL, NULL, err,
                                         sizeof err),
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

static int count_siblings(void)
{
    DIR *d = opendir(root);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
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
    assert_int_equal(modelfile_add_model(s, "b", "1.0.0", "b.json", NULL, NULL, NULL, err,
                                         sizeof err),
                     RFM_OK);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_midway_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detects_tampering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_existing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
