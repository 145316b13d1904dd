/* test_yamljson.c - YAML to JSON: types, nesting, errors with positions. */
#include "testutil.h"

#include <string.h>

#include "yamljson.h"

static json_t *parse_ok(const char *y)
{
    json_t *j = NULL;
    char err[RFM_ERRLEN] = "";
    rfm_status st = yamljson_parse(y, strlen(y), "t.yaml", &j, err, sizeof err);
    if (st != RFM_OK)
        fail_msg("unexpected error: %s", err);
    return j;
}

static void test_scalars_and_nesting(void **state)
{
    (void)state;
    json_t *j = parse_ok("a: 1\nb: -2.5\nc: true\nd: ~\ne: '12'\nf: hello world\n"
                         "g: [1, x, {h: 3}]\ni:\n  - j: k\n  - 2e3\n");
    assert_int_equal(json_integer_value(json_object_get(j, "a")), 1);
    assert_true(json_real_value(json_object_get(j, "b")) == -2.5);
    assert_true(json_is_true(json_object_get(j, "c")));
    assert_true(json_is_null(json_object_get(j, "d")));
    assert_string_equal(json_string_value(json_object_get(j, "e")), "12");
    assert_string_equal(json_string_value(json_object_get(j, "f")), "hello world");
    json_t *g = json_object_get(j, "g");
    assert_int_equal(json_array_size(g), 3);
    assert_string_equal(json_string_value(json_array_get(g, 1)), "x");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(g, 2), "h")), 3);
    json_t *i = json_object_get(j, "i");
    assert_string_equal(json_string_value(json_object_get(json_array_get(i, 0), "j")), "k");
    assert_true(json_real_value(json_array_get(i, 1)) == 2000.0);
    json_decref(j);
}

static void test_errors_name_position(void **state)
{
    (void)state;
    json_t *j = NULL;
    char err[RFM_ERRLEN] = "";
    const char *bad = "a: 1\nb: [1, 2\n";
    assert_int_equal(yamljson_parse(bad, strlen(bad), "bad.yaml", &j, err, sizeof err), RFM_EPARSE);
    assert_null(j);
    assert_non_null(strstr(err, "bad.yaml:"));
    const char *dup = "a: 1\na: 2\n";
    assert_int_equal(yamljson_parse(dup, strlen(dup), "dup.yaml", &j, err, sizeof err), RFM_EPARSE);
    assert_non_null(strstr(err, "dup.yaml:2:"));
    assert_non_null(strstr(err, "duplicate key 'a'"));
    const char *alias = "a: &x 1\nb: *x\n";
    assert_int_equal(yamljson_parse(alias, strlen(alias), "al.yaml", &j, err, sizeof err),
                     RFM_EPARSE);
}

static void test_load_missing_file(void **state)
{
    (void)state;
    json_t *j = NULL;
    char err[RFM_ERRLEN] = "";
    assert_int_equal(yamljson_load("/nonexistent/x.yaml", &j, err, sizeof err), RFM_EIO);
    assert_non_null(strstr(err, "/nonexistent/x.yaml"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars_and_nesting),
        cmocka_unit_test(test_errors_name_position),
        cmocka_unit_test(test_load_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
