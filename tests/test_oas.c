/* test_oas.c - each JSON Schema keyword, pointers and their escaping, and
 * the shipped openapi.yaml: its examples satisfy its own schemas. */
#include "testutil.h"

#include <string.h>

#include "oas.h"

static const char *SPEC =
    "openapi: 3.1.0\n"
    "info: {title: t, version: '1'}\n"
    "paths:\n"
    "  /x:\n"
    "    post:\n"
    "      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/A'}}}}\n"
    "      responses: {'200': {description: ok, content: {application/json: {schema: {type: string}}}}}\n"
    "    get: {responses: {default: {description: d}}}\n"
    "components:\n"
    "  schemas:\n"
    "    A:\n"
    "      type: object\n"
    "      required: [n, s]\n"
    "      additionalProperties: false\n"
    "      properties:\n"
    "        n: {type: number, minimum: 0, exclusiveMaximum: 10}\n"
    "        i: {type: integer}\n"
    "        s: {type: string, minLength: 2, maxLength: 3}\n"
    "        e: {enum: [red, green]}\n"
    "        a: {type: array, minItems: 1, maxItems: 2, items: {$ref: '#/components/schemas/B'}}\n"
    "        'we/ird~key': {type: [string, 'null']}\n"
    "        one: {oneOf: [{type: integer}, {type: number, minimum: 5}]}\n"
    "        any: {anyOf: [{type: string}, {type: boolean}]}\n"
    "        all: {allOf: [{minimum: 1}, {maximum: 2}]}\n"
    "        free: {additionalProperties: {type: integer}}\n"
    "    B: {type: object, required: [k], properties: {k: {type: number}}}\n";

static oas_spec *spec;

static int setup(void **state)
{
    (void)state;
    char path[64], err[RFM_ERRLEN];
    write_temp(path, ".yaml", SPEC, strlen(SPEC));
    rfm_status st = oas_load(path, &spec, err, sizeof err);
    remove(path);
    if (st != RFM_OK)
        fail_msg("%s", err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    oas_free(spec);
    return 0;
}

/* Validate JSON text against /x's request schema; return violations. */
static size_t check(const char *text, oas_violation *v, size_t max)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, je.text);
    const json_t *schema = oas_request_schema(spec, oas_operation(spec, "POST", "/x"));
    assert_non_null(schema);
    size_t n = oas_validate(spec, schema, j, v, max);
    json_decref(j);
    return n;
}

static void expect(const char *text, const char *pointer, const char *msg)
{
    oas_violation v[16];
    size_t n = check(text, v, 16);
    for (size_t i = 0; i < n && i < 16; i++)
        if (strcmp(v[i].pointer, pointer) == 0 && strstr(v[i].message, msg))
            return;
    fail_msg("%s: no violation '%s' at '%s' (got %zu, first: '%s' %s)", text, msg, pointer, n,
             n ? v[0].pointer : "", n ? v[0].message : "");
}

static void test_valid(void **state)
{
    (void)state;
    assert_int_equal(check("{\"n\": 0, \"s\": \"ab\"}", NULL, 0), 0);
    assert_int_equal(check("{\"n\": 9.99, \"s\": \"\xc3\xa9\xc3\xa9\xc3\xa9\", \"i\": 3.0, "
                           "\"e\": \"red\", \"a\": [{\"k\": 1}], \"we/ird~key\": null, "
                           "\"one\": 2, \"any\": true, \"all\": 1.5, \"free\": {\"z\": 1}}",
                           NULL, 0),
                     0); /* 3 code points in 6 bytes; 1.0-style integers */
}

static void test_each_keyword(void **state)
{
    (void)state;
    expect("{\"s\": \"ab\"}", "/n", "is required");
    expect("{\"n\": -1, \"s\": \"ab\"}", "/n", "must be >= 0");
    expect("{\"n\": 10, \"s\": \"ab\"}", "/n", "must be < 10");
    expect("{\"n\": \"1\", \"s\": \"ab\"}", "/n", "must be a number, not a string");
    expect("{\"n\": true, \"s\": \"ab\"}", "/n", "not a boolean");
    expect("{\"n\": 1, \"s\": \"ab\", \"i\": 1.5}", "/i", "must be an integer");
    expect("{\"n\": 1, \"s\": \"a\"}", "/s", "at least 2 characters");
    expect("{\"n\": 1, \"s\": \"abcd\"}", "/s", "at most 3 characters");
    expect("{\"n\": 1, \"s\": \"ab\", \"e\": \"blue\"}", "/e", "must be one of 'red', 'green'");
    expect("{\"n\": 1, \"s\": \"ab\", \"a\": []}", "/a", "at least 1 items");
    expect("{\"n\": 1, \"s\": \"ab\", \"a\": [{\"k\":1},{\"k\":2},{\"k\":3}]}", "/a",
           "at most 2 items");
    expect("{\"n\": 1, \"s\": \"ab\", \"a\": [{\"k\":1},{}]}", "/a/1/k", "is required");
    expect("{\"n\": 1, \"s\": \"ab\", \"zz\": 1}", "/zz", "not an allowed field");
    expect("{\"n\": 1, \"s\": \"ab\", \"we/ird~key\": 3}", "/we~1ird~0key", "string or null");
    expect("{\"n\": 1, \"s\": \"ab\", \"one\": 6}", "/one", "matches 2 of the alternatives");
    expect("{\"n\": 1, \"s\": \"ab\", \"one\": 2.5}", "/one", "must be an integer"); /* tie: first */
    expect("{\"n\": 1, \"s\": \"ab\", \"any\": 3}", "/any", "must be a string");
    expect("{\"n\": 1, \"s\": \"ab\", \"all\": 3}", "/all", "must be <= 2");
    expect("{\"n\": 1, \"s\": \"ab\", \"free\": {\"q\": \"x\"}}", "/free/q", "integer");
    expect("[1]", "", "must be an object");
}

static void test_every_violation_listed(void **state)
{
    (void)state;
    oas_violation v[16];
    size_t n = check("{\"n\": -5, \"s\": \"\", \"i\": \"x\", \"bad\": 1}", v, 16);
    assert_int_equal(n, 4);
    assert_int_equal(check("{\"n\": -5, \"s\": \"\", \"i\": \"x\", \"bad\": 1}", v, 2), 4);
}

static void test_operations(void **state)
{
    (void)state;
    char allow[64];
    assert_non_null(oas_operation(spec, "post", "/x"));
    assert_null(oas_operation(spec, "DELETE", "/x"));
    assert_null(oas_operation(spec, "GET", "/nope"));
    assert_true(oas_path_allow(spec, "/x", allow, sizeof allow));
    assert_string_equal(allow, "GET, POST");
    assert_false(oas_path_allow(spec, "/nope", allow, sizeof allow));
    const json_t *op = oas_operation(spec, "POST", "/x");
    assert_non_null(oas_response_schema(spec, op, 200));
    assert_null(oas_response_schema(spec, op, 404));
}

/* The shipped contract: every example satisfies the schema beside it. */
static void test_shipped_examples_validate(void **state)
{
    (void)state;
    oas_spec *s;
    char err[RFM_ERRLEN];
    if (oas_load("../openapi.yaml", &s, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    const char *path;
    json_t *item;
    int checked = 0;
    json_object_foreach(json_object_get(oas_root(s), "paths"), path, item)
    {
        const char *method;
        json_t *op;
        json_object_foreach(item, method, op)
        {
            const json_t *rs = oas_request_schema(s, op);
            const json_t *content =
                json_object_get(json_object_get(json_object_get(op, "requestBody"), "content"),
                                "application/json");
            const char *name;
            json_t *ex;
            json_object_foreach(json_object_get(content, "examples"), name, ex)
            {
                oas_violation v[4];
                size_t n = oas_validate(s, rs, json_object_get(ex, "value"), v, 4);
                if (n)
                    fail_msg("%s %s example %s: %s %s", method, path, name, v[0].pointer,
                             v[0].message);
                checked++;
            }
            const char *code;
            json_t *resp;
            json_object_foreach(json_object_get(op, "responses"), code, resp)
            {
                const json_t *schema = oas_response_schema(s, op, atoi(code));
                const json_t *r = json_object_get(resp, "$ref") ? NULL : resp;
                const json_t *rex =
                    r ? json_object_get(
                            json_object_get(json_object_get(r, "content"), "application/json"),
                            "example")
                      : NULL;
                if (!rex || !schema)
                    continue;
                oas_violation v[4];
                size_t n = oas_validate(s, schema, rex, v, 4);
                if (n)
                    fail_msg("%s %s response %s example: %s %s", method, path, code,
                             v[0].pointer, v[0].message);
                checked++;
            }
        }
    }
    printf("    %d examples of openapi.yaml validate against their schemas\n", checked);
    assert_true(checked >= 4);
    oas_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_each_keyword),
        cmocka_unit_test(test_every_violation_listed),
        cmocka_unit_test(test_operations),
        cmocka_unit_test(test_shipped_examples_validate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
