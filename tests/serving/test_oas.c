/* test_oas.c - each JSON Schema keyword, pointers and their escaping, and
 * the shipped openapi.yaml: its examples satisfy its own schemas. */
#include "testutil.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "../json_strict.h"
#include "oas.h"
#include "rng.h"

static const char *SPEC =
    "openapi: 3.1.0\n"
    "info: {title: t, version: '1'}\n"
    "paths:\n"
    "  /x:\n"
    "    post:\n"
    "      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/A'}}}}\n"
    "      responses: {'200': {description: ok, content: {application/json: {schema: {type: "
    "string}}}}}\n"
    "    get: {responses: {default: {description: d}}}\n"
    "  /alt:\n"
    "    post:\n"
    "      requestBody: {content: {application/json: {schema: {oneOf: [{$ref: "
    "'#/components/schemas/One'}, {$ref: '#/components/schemas/Many'}]}}}}\n"
    "  /tree:\n"
    "    post:\n"
    "      requestBody: {content: {application/json: {schema: {$ref: "
    "'#/components/schemas/Tree'}}}}\n"
    "  /misc:\n"
    "    post:\n"
    "      requestBody: {content: {application/json: {schema: {$ref: "
    "'#/components/schemas/Misc'}}}}\n"
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
    "    B: {type: object, required: [k], properties: {k: {type: number}}}\n"
    "    One:\n"
    "      type: object\n"
    "      required: [r, f, m]\n"
    "      additionalProperties: false\n"
    "      properties: {r: {type: number, minimum: 0}, f: {type: number, minimum: 0}, m: {type: "
    "number, minimum: 0}}\n"
    "    Many:\n"
    "      type: object\n"
    "      required: [customers]\n"
    "      additionalProperties: false\n"
    "      properties: {customers: {type: array, minItems: 1, items: {$ref: "
    "'#/components/schemas/One'}}}\n"
    "    Tree: {type: object, properties: {v: {type: integer}, kids: {type: array, items: {$ref: "
    "'#/components/schemas/Tree'}}}}\n"
    "    Misc:\n"
    "      type: object\n"
    "      properties:\n"
    "        never: false\n"
    "        always: true\n"
    "        gt: {exclusiveMinimum: 0, maximum: 1}\n"
    "        num: {enum: [1, 2.5, [1, {a: 2}]]}\n"
    "        c: {const: 3}\n"
    "        ni: {type: [integer, 'null']}\n"
    "        esc: {$ref: '#/components/schemas/we~1ird~0name'}\n"
    "    we/ird~name: {type: string}\n";

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

/* Validate JSON text against path's request schema; return violations. */
static size_t check_at(const char *path, const char *text, oas_violation *v, size_t max)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, je.text);
    const json_t *schema = oas_request_schema(spec, oas_operation(spec, "POST", path));
    assert_non_null(schema);
    size_t n = oas_validate(spec, schema, j, v, max);
    json_decref(j);
    return n;
}

static size_t check(const char *text, oas_violation *v, size_t max)
{
    return check_at("/x", text, v, max);
}

static void expect_at(const char *path, const char *text, const char *pointer, const char *msg)
{
    oas_violation v[16];
    size_t n = check_at(path, text, v, 16);
    for (size_t i = 0; i < n && i < 16; i++)
        if (strcmp(v[i].pointer, pointer) == 0 && strstr(v[i].message, msg))
            return;
    fail_msg("%s: no violation '%s' at '%s' (got %zu, first: '%s' %s)", text, msg, pointer, n,
             n ? v[0].pointer : "", n ? v[0].message : "");
}

static void expect(const char *text, const char *pointer, const char *msg)
{
    expect_at("/x", text, pointer, msg);
}

/* Every violation of text at path has a pointer starting with prefix. */
static void expect_only_under(const char *path, const char *text, const char *prefix, size_t count)
{
    oas_violation v[16];
    size_t n = check_at(path, text, v, 16);
    if (n != count)
        fail_msg("%s: %zu violations, expected %zu (first: '%s' %s)", text, n, count,
                 n ? v[0].pointer : "", n ? v[0].message : "");
    for (size_t i = 0; i < n && i < 16; i++)
        if (strncmp(v[i].pointer, prefix, strlen(prefix)) != 0)
            fail_msg("%s: violation at '%s' (%s), expected all under '%s'", text, v[i].pointer,
                     v[i].message, prefix);
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
    expect("{\"n\": 1, \"s\": \"ab\", \"one\": 2.5}", "/one",
           "must be an integer"); /* tie: first */
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

/* Integers as JSON Schema defines them: a number with no fractional
 * part, whatever its spelling; booleans and null are not numbers. */
static void test_integer_and_number_edges(void **state)
{
    (void)state;
    static const char *const integer[] = {
        "1", "1.0", "-0.0", "1e2", "1E+2", "-7", "1.5e1", "9007199254740993", "9.0e15"};
    static const char *const not_integer[] = {"1.5",  "1e-1", "-0.25", "\"1\"",
                                              "true", "null", "[1]",   "{}"};
    char text[96];
    for (size_t i = 0; i < sizeof integer / sizeof *integer; i++) {
        snprintf(text, sizeof text, "{\"n\": 1, \"s\": \"ab\", \"i\": %s}", integer[i]);
        if (check(text, NULL, 0) != 0)
            fail_msg("%s should be an integer", integer[i]);
    }
    for (size_t i = 0; i < sizeof not_integer / sizeof *not_integer; i++) {
        snprintf(text, sizeof text, "{\"n\": 1, \"s\": \"ab\", \"i\": %s}", not_integer[i]);
        expect(text, "/i", "must be an integer");
    }
    expect("{\"n\": false, \"s\": \"ab\"}", "/n", "must be a number, not a boolean");
    expect("{\"n\": null, \"s\": \"ab\"}", "/n", "must be a number, not null");
    /* Bounds are inclusive; exclusive ones are numbers (3.1), not booleans. */
    assert_int_equal(check("{\"n\": 9.999999999999998, \"s\": \"ab\"}", NULL, 0), 0);
    assert_int_equal(check_at("/misc", "{\"gt\": 1}", NULL, 0), 0);
    assert_int_equal(check_at("/misc", "{\"gt\": 5e-324}", NULL, 0), 0);
    expect_at("/misc", "{\"gt\": 0}", "/gt", "must be > 0");
    expect_at("/misc", "{\"gt\": -0.0}", "/gt", "must be > 0");
    expect_at("/misc", "{\"gt\": 1.0000000000000002}", "/gt", "must be <= 1");
    /* Keywords for other types do not apply: a string has no minimum. */
    assert_int_equal(check_at("/misc", "{\"gt\": \"x\"}", NULL, 0), 0);
    assert_int_equal(check_at("/misc", "{\"ni\": null}", NULL, 0), 0);
    assert_int_equal(check_at("/misc", "{\"ni\": 4.0}", NULL, 0), 0);
    expect_at("/misc", "{\"ni\": 4.5}", "/ni", "must be an integer or null, not a number");
}

static void test_enum_const_and_boolean_schemas(void **state)
{
    (void)state;
    /* Numbers compare by value, also inside arrays and objects. */
    static const char *const ok[] = {"1", "1.0", "2.5", "[1, {\"a\": 2}]", "[1.0, {\"a\": 2.0}]"};
    static const char *const bad[] = {"2",   "\"1\"",           "true",
                                      "[1]", "[1, {\"a\": 3}]", "[1, {\"a\": 2, \"b\": 0}]"};
    char text[96];
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        snprintf(text, sizeof text, "{\"num\": %s}", ok[i]);
        if (check_at("/misc", text, NULL, 0) != 0)
            fail_msg("%s should be in the enum", ok[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(text, sizeof text, "{\"num\": %s}", bad[i]);
        expect_at("/misc", text, "/num", "must be one of");
    }
    assert_int_equal(check_at("/misc", "{\"c\": 3.0}", NULL, 0), 0);
    expect_at("/misc", "{\"c\": 4}", "/c", "must equal the constant value");
    /* false allows nothing, true anything. */
    expect_at("/misc", "{\"never\": null}", "/never", "is not allowed");
    assert_int_equal(check_at("/misc", "{\"always\": [{\"x\": null}]}", NULL, 0), 0);
}

static void test_refs(void **state)
{
    (void)state;
    /* Broken references stop the load, naming the reference. */
    static const char *const broken[][2] = {
        {"A: {$ref: '#/components/schemas/B'}\n    B: {$ref: '#/components/schemas/A'}\n",
         "is a cycle of references"},
        {"A: {type: object, properties: {x: {$ref: '#/components/schemas/Nowhere'}}}\n",
         "$ref #/components/schemas/Nowhere does not resolve"},
        {"A: {$ref: 'other.yaml#/A'}\n", "only references within the file"},
    };
    for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
        char text[512], path[64], err[RFM_ERRLEN] = "";
        snprintf(text, sizeof text,
                 "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n"
                 "components:\n  schemas:\n    %s",
                 broken[i][0]);
        write_temp(path, ".yaml", text, strlen(text));
        oas_spec *s = NULL;
        assert_int_equal(oas_load(path, &s, err, sizeof err), RFM_EFORMAT);
        remove(path);
        assert_null(s);
        if (!strstr(err, broken[i][1]))
            fail_msg("expected '%s' in: %s", broken[i][1], err);
    }
    /* A recursive schema: pointers follow the value down. */
    assert_int_equal(
        check_at("/tree", "{\"v\": 1, \"kids\": [{\"v\": 2, \"kids\": [{}]}]}", NULL, 0), 0);
    expect_at("/tree", "{\"kids\": [{}, {\"kids\": [{\"v\": 0.5}]}]}", "/kids/1/kids/0/v",
              "must be an integer");
    /* References name their target with RFC 6901 escapes; a dangling one
     * is refused at load (above). */
    assert_int_equal(check_at("/misc", "{\"esc\": \"s\"}", NULL, 0), 0);
    expect_at("/misc", "{\"esc\": 1}", "/esc", "must be a string");
}

/* A oneOf of a single request and a batch: the report is about the
 * alternative the body was meant to be. */
static void test_alternatives_report_nearest(void **state)
{
    (void)state;
    expect_only_under("/alt",
                      "{\"customers\": [{\"r\": -1, \"f\": 1, \"m\": 1}, "
                      "{\"r\": -1, \"f\": 1, \"m\": 1}, {\"r\": -1, \"f\": 1, \"m\": 1}, "
                      "{\"r\": 1, \"f\": 1, \"m\": 1}, {\"r\": -1, \"f\": 1, \"m\": 1}, "
                      "{\"r\": -1, \"f\": 1}]}",
                      "/customers/", 6);
    expect_at("/alt", "{\"customers\": [{\"r\": 1, \"f\": 1}]}", "/customers/0/m", "is required");
    expect_only_under("/alt", "{\"customers\": 5}", "/customers", 1);
    expect_only_under("/alt", "{\"customers\": []}", "/customers", 1);
    expect_only_under("/alt", "{\"r\": -1, \"f\": -1, \"m\": 1}", "/", 2);
    expect_at("/alt", "{\"r\": -1, \"f\": -1, \"m\": 1}", "/f", "must be >= 0");
    expect_at("/alt", "{\"r\": 1}", "/m", "is required"); /* not "/customers is required" */
    expect_at("/alt", "{}", "/r", "is required");         /* the first on a tie */
    expect_at("/alt", "[]", "", "must be an object");
    assert_int_equal(check_at("/alt", "{\"r\": 0, \"f\": 0, \"m\": 0}", NULL, 0), 0);
    assert_int_equal(check_at("/alt", "{\"customers\": [{\"r\": 0, \"f\": 0, \"m\": 0}]}", NULL, 0),
                     0);
}

/* The cap: the count is complete, the first max violations are written in
 * document order, nothing past max. Long pointers stay valid UTF-8. */
static void test_cap_and_long_pointers(void **state)
{
    (void)state;
    enum { N = 300 };
    char *text = malloc(N * 40 + 32);
    size_t o = (size_t)sprintf(text, "{\"customers\": [");
    for (int i = 0; i < N; i++)
        o += (size_t)sprintf(text + o, "%s{\"r\": -1, \"f\": 1, \"m\": 1}", i ? "," : "");
    sprintf(text + o, "]}");
    oas_violation v[51];
    memset(v, 0x5a, sizeof v);
    assert_int_equal(check_at("/alt", text, v, 50), N);
    for (int i = 0; i < 50; i++) {
        char want[32];
        snprintf(want, sizeof want, "/customers/%d/r", i);
        assert_string_equal(v[i].pointer, want);
    }
    assert_int_equal((unsigned char)v[50].pointer[0], 0x5a); /* untouched */
    assert_int_equal(check_at("/alt", text, NULL, 0), N);
    free(text);

    /* A 300-byte key of two-byte characters: cut at a character boundary. */
    char key[601] = "", body[700];
    for (int i = 0; i < 150; i++)
        strcat(key, "\xc3\xa9");
    snprintf(body, sizeof body, "{\"n\": 1, \"s\": \"ab\", \"%s\": 1}", key);
    assert_int_equal(check(body, v, 4), 1);
    size_t len = strlen(v[0].pointer);
    printf("    pointer to a 300-byte key cut to %zu bytes\n", len);
    assert_true(len > 150 && len < sizeof v[0].pointer);
    json_t *js = json_string(v[0].pointer); /* NULL if not valid UTF-8 */
    assert_non_null(js);
    json_decref(js);
}

/* oas_security: the operation's requirements, else the document's; {}
 * makes the token optional; scopes listed under bearer, admin when none;
 * an unknown scope is named. */
static void test_security(void **state)
{
    (void)state;
    const char *text =
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\nsecurity: [{bearer: []}]\npaths:\n"
        "  /open: {get: {security: [], responses: {}}}\n"
        "  /opt: {get: {security: [{}, {bearer: [admin]}], responses: {}}}\n"
        "  /two: {post: {security: [{bearer: [score, events]}], responses: {}}}\n"
        "  /later: {get: {responses: {}}}\n"
        "  /bad: {get: {security: [{bearer: [root]}], responses: {}}}\n"
        "components: {securitySchemes: {bearer: {type: http, scheme: bearer}}}\n";
    char path[64], err[RFM_ERRLEN];
    write_temp(path, ".yaml", text, strlen(text));
    oas_spec *s = NULL;
    rfm_status st = oas_load(path, &s, err, sizeof err);
    remove(path);
    if (st != RFM_OK)
        fail_msg("%s", err);
    unsigned need;
    const char *bad;
    assert_int_equal(oas_security(s, oas_operation(s, "get", "/open"), &need, &bad), OAS_AUTH_NONE);
    assert_int_equal(oas_security(s, oas_operation(s, "get", "/opt"), &need, &bad),
                     OAS_AUTH_OPTIONAL);
    assert_int_equal(need, RFM_SCOPE_ADMIN);
    assert_int_equal(oas_security(s, oas_operation(s, "post", "/two"), &need, &bad),
                     OAS_AUTH_REQUIRED);
    assert_int_equal(need, RFM_SCOPE_SCORE | RFM_SCOPE_EVENTS);
    assert_int_equal(oas_security(s, oas_operation(s, "get", "/later"), &need, &bad),
                     OAS_AUTH_REQUIRED);
    assert_int_equal(need, RFM_SCOPE_ADMIN); /* declared none: admin */
    assert_int_equal(oas_security(s, oas_operation(s, "get", "/bad"), &need, &bad), OAS_AUTH_BAD);
    assert_string_equal(bad, "root");
    oas_free(s);
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

/* oas_find, the table built at load, answers as the lookups in the
 * document do, for every operation of the shipped contract, each method
 * on each path (most absent) and paths it does not have. */
static void test_find_matches_document(void **state)
{
    (void)state;
    oas_spec *s;
    char err[RFM_ERRLEN];
    if (oas_load("../openapi.yaml", &s, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    static const char *const methods[] = {"GET", "post", "Delete", "PUT", "head", "BREW"};
    const char *path;
    const json_t *item;
    size_t found = 0, checked = 0;
    json_t *paths = json_object_get(oas_root(s), "paths");
    json_object_set_new(paths, "/zz-not-looked-up", json_object()); /* after load: unknown */
    json_object_foreach(paths, path, item)
    {
        const char *probe[] = {path, "/nope", "/segmentx", ""};
        for (size_t p = 0; p < 4; p++)
            for (size_t m = 0; m < 6; m++) {
                const json_t *op = oas_operation(s, methods[m], probe[p]);
                const oas_op *e = oas_find(s, methods[m], probe[p]);
                unsigned need;
                const char *bad;
                int auth = oas_security(s, op, &need, &bad);
                if (strcmp(probe[p], "/zz-not-looked-up") == 0)
                    op = NULL; /* added after the table was built */
                assert_ptr_equal(e->op, op);
                if (op)
                    assert_ptr_equal(e->request, oas_request_schema(s, op));
                assert_int_equal(e->auth, auth);
                assert_int_equal(e->scopes, need);
                found += op != NULL;
                checked++;
            }
    }
    printf("    %zu lookups, %zu operations found, all as in the document\n", checked, found);
    assert_true(found > 20);
    oas_free(s);
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
            const json_t *content = json_object_get(
                json_object_get(json_object_get(op, "requestBody"), "content"), "application/json");
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
                    fail_msg("%s %s response %s example: %s %s", method, path, code, v[0].pointer,
                             v[0].message);
                checked++;
            }
        }
    }
    printf("    %d examples of openapi.yaml validate against their schemas\n", checked);
    assert_true(checked >= 4);
    oas_free(s);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Validation runs on every request: a /segment body and a /segment/batch
 * body of 1000 are valid against the shipped contract, and the time is printed (the
 * speed target is make bench's /segment figure, not a timed assert). */
static void test_speed_on_shipped_contract(void **state)
{
    (void)state;
    oas_spec *s;
    char err[RFM_ERRLEN];
    if (oas_load("../openapi.yaml", &s, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    const json_t *schema = oas_request_schema(s, oas_operation(s, "POST", "/segment"));
    const json_t *bschema = oas_request_schema(s, oas_operation(s, "POST", "/segment/batch"));
    assert_non_null(schema);
    assert_non_null(bschema);
    json_t *one = json_loads("{\"recency\": 12, \"frequency\": 7, \"monetary\": 4310.5}", 0, NULL);
    json_t *batch = json_pack("{s:[]}", "customers");
    for (int i = 0; i < 1000; i++)
        json_array_append(json_object_get(batch, "customers"), one);
    oas_violation v[50];
    enum { N = 100000, NB = 100 };
    size_t bad = 0;
    double t0 = now_s();
    for (int i = 0; i < N; i++)
        bad += oas_validate(s, schema, one, v, 50);
    double t1 = now_s();
    for (int i = 0; i < NB; i++)
        bad += oas_validate(s, bschema, batch, v, 50);
    double t2 = now_s();
    double single_us = (t1 - t0) / N * 1e6, batch_us = (t2 - t1) / NB * 1e6;
    printf("    validate one /segment body: %.2f us; a batch of 1000: %.0f us (%.2f us each)\n",
           single_us, batch_us, batch_us / 1000);
    assert_int_equal(bad, 0);
    json_decref(one);
    json_decref(batch);
    oas_free(s);
}

/* oas_flat_read against the general path (jansson with the server's
 * flags, then oas_validate), on POST /segment's SegmentOrId: random bodies
 * made of the right and wrong names, numbers of every JSON form (and some
 * that are not JSON), whitespace, duplicates, missing and extra members.
 * Whenever the reader takes a body, the general path takes it too and
 * gives every value the same bits (absent: NAN); the plain bodies clients
 * send are taken; and the schema's flat alternative is found (three
 * names, all required, bounds from the document). */
static void test_flat_read_as_general_path(void **state)
{
    (void)state;
    oas_spec *s;
    char err[RFM_ERRLEN];
    if (oas_load("../openapi.yaml", &s, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    const oas_op *op = oas_find(s, "POST", "/segment");
    const oas_flat *f = &op->flat;
    assert_int_equal(f->n, 3);
    assert_int_equal(f->required, 7);
    assert_string_equal(f->name[0], "recency");
    assert_true(f->min[0] == 0 && f->max[0] == 1e9 && f->max[2] == 1e15);
    /* CltvRequest's CltvHistory: four required, two optional, exclusive
     * bounds kept as such; POST /similar_customers (customer_id, a
     * string) has none. */
    const oas_flat *fc = &oas_find(s, "POST", "/predict_cltv")->flat;
    assert_int_equal(fc->n, 6);
    assert_int_equal(fc->required, 15);
    assert_int_equal(fc->integer, 1);
    assert_true(fc->xmin == 1u << 4 && fc->xmax == 1u << 5 && fc->max[5] == 1);
    assert_int_equal(oas_find(s, "POST", "/similar_customers")->flat.n, 0);
    static const char *const names[] = {"recency",  "frequency", "monetary", "customer_id",
                                        "recency ", "Recency",   "monetar",  "x"};
    static const char *const nums[] = {"0",
                                       "-0",
                                       "12",
                                       "7",
                                       "4310.5",
                                       "1e3",
                                       "1E+3",
                                       "2.5e-3",
                                       "-1",
                                       "1e9",
                                       "1e9.0",
                                       "1000000000.0000001",
                                       "1e15",
                                       "1e16",
                                       "01",
                                       "1.",
                                       ".5",
                                       "+1",
                                       "0x10",
                                       "1e400",
                                       "-1e400",
                                       "1e-400",
                                       "123456789012345678901234567890",
                                       "9223372036854775807",
                                       "9223372036854775808",
                                       "-9223372036854775809",
                                       "3.14159265358979323846",
                                       "NaN",
                                       "true",
                                       "null",
                                       "\"5\"",
                                       "[1]",
                                       "1 2",
                                       "0.1e1",
                                       "4.9e-324",
                                       "999999999999999999",
                                       "-999999999999999999",
                                       "1234567890123456789"};
    static const char *const ws[] = {"", " ", "\n", "\t ", "\r\n"};
    rfm_rng g;
    rfm_rng_seed(&g, 11);
    size_t taken = 0, tried = 0;
    char body[1024];
    for (int it = 0; it < 60000; it++) {
        /* half the bodies: the three names once each, in any order */
        int three = rfm_rng_below(&g, 2) == 0;
        size_t n = 0, members = three ? 3 : rfm_rng_below(&g, 5), first = rfm_rng_below(&g, 3);
        size_t step = 1 + rfm_rng_below(&g, 2);
        n += (size_t)snprintf(body + n, sizeof body - n, "%s{", ws[rfm_rng_below(&g, 5)]);
        for (size_t m = 0; m < members; m++) {
            /* mostly the right names, in any order */
            const char *nm = three                  ? names[(first + m * step) % 3]
                             : rfm_rng_below(&g, 6) ? names[(m + rfm_rng_below(&g, 2)) % 3]
                                                    : names[rfm_rng_below(&g, 8)];
            const char *num =
                rfm_rng_below(&g, 3) ? nums[rfm_rng_below(&g, 7)] : nums[rfm_rng_below(&g, sizeof nums / sizeof *nums)];
            n += (size_t)snprintf(body + n, sizeof body - n, "%s%s\"%s\"%s:%s%s%s", m ? "," : "",
                                  ws[rfm_rng_below(&g, 5)], nm, ws[rfm_rng_below(&g, 5)],
                                  ws[rfm_rng_below(&g, 5)], num, ws[rfm_rng_below(&g, 5)]);
        }
        n += (size_t)snprintf(body + n, sizeof body - n, "%s}%s", rfm_rng_below(&g, 50) ? "" : ",",
                              ws[rfm_rng_below(&g, 5)]);
        if (rfm_rng_below(&g, 40) == 0)
            n -= 1 + rfm_rng_below(&g, n); /* cut short */
        tried++;
        double v[OAS_FLAT_MAX];
        if (!oas_flat_read(f, body, n, v, NULL))
            continue;
        taken++;
        json_t *j = json_strict(body, n);
        if (!j)
            fail_msg("taken, but not JSON to the server: %.*s", (int)n, body);
        if (oas_validate(s, op->request, j, NULL, 0) != 0)
            fail_msg("taken, but not valid: %.*s", (int)n, body);
        for (size_t i = 0; i < f->n; i++) {
            const json_t *m = json_object_get(j, f->name[i]);
            double want = m ? json_number_value(m) : NAN;
            if (memcmp(&want, &v[i], sizeof want) != 0 && !(isnan(want) && isnan(v[i])))
                fail_msg("%s: %.17g, the general path %.17g: %.*s", f->name[i], v[i], want, (int)n,
                         body);
        }
        json_decref(j);
    }
    printf("    %zu bodies, %zu read without a tree, each as the general path reads it\n", tried,
           taken);
    assert_true(taken > 1000);
    static const char *const plain[] = {
        "{\"recency\": 12, \"frequency\": 7, \"monetary\": 4310.5}",
        "{\"monetary\":0.5,\"recency\":0,\"frequency\":1e2}",
        " {\n  \"recency\": 300,\n  \"frequency\": 1,\n  \"monetary\": 50\n}\n"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
        double v[OAS_FLAT_MAX];
        if (!oas_flat_read(f, plain[i], strlen(plain[i]), v, NULL))
            fail_msg("not taken: %s", plain[i]);
    }
    double v[OAS_FLAT_MAX];
    const char *neg0 = "{\"recency\": -0, \"frequency\": 1, \"monetary\": 2}";
    assert_int_equal(oas_flat_read(f, neg0, strlen(neg0), v, NULL), 1);
    assert_false(signbit(v[0])); /* an integer, as jansson reads it */
    oas_free(s);
}

/* The flat alternatives with a string (oas_op.flat_str: SegmentById,
 * CltvById, SimilarById) against the general path, as above: random
 * bodies of the right and wrong names, strings of every kind (empty, at
 * and past maxLength, escapes, non-ASCII, control bytes, numbers where a
 * string is due and the reverse). Whenever the reader takes a body, the
 * general path takes it too, with the same numbers and the same strings;
 * plain by-id bodies are taken; a body of numbers alone is not. */
static void test_flat_strings_as_general_path(void **state)
{
    (void)state;
    oas_spec *s;
    char err[RFM_ERRLEN];
    if (oas_load("../openapi.yaml", &s, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    const oas_op *sim = oas_find(s, "POST", "/similar_customers");
    const oas_flat *fs = &sim->flat_str;
    assert_int_equal(fs->n, 3); /* customer_id, k, segment */
    assert_int_equal(fs->string, 1u | 4u);
    assert_int_equal(fs->required, 1);
    assert_true(fs->minlen[0] == 1 && fs->maxlen[0] == 256 && fs->minlen[2] == 1);
    assert_true(fs->min[1] == 1 && fs->max[1] == 100 && (fs->integer & 2));
    assert_int_equal(oas_find(s, "POST", "/segment")->flat_str.n, 1);
    assert_int_equal(oas_find(s, "POST", "/predict_churn")->flat_str.n, 1);
    assert_int_equal(oas_find(s, "POST", "/predict_cltv")->flat_str.n, 3);
    assert_int_equal(oas_find(s, "POST", "/predict_cltv")->flat.n, 6); /* still there */
    assert_int_equal(oas_find(s, "POST", "/segment/batch")->flat_str.n, 0);
    static const char *const names[] = {"customer_id", "k",           "segment",
                                        "vector",      "customer_ID", "x"};
    char longid[300];
    memset(longid, '7', sizeof longid);
    static const char *const strs[] = {"\"12347\"",
                                       "\"17850\"",
                                       "\"\"",
                                       "\"a b\"",
                                       "\"\\u0031\"",
                                       "\"\\\"\"",
                                       "\"caf\xc3\xa9\"",
                                       "\"\x01\"",
                                       "\"\x7f\"",
                                       "\"x\\n\"",
                                       "12347",
                                       "null",
                                       "true",
                                       "[\"1\"]",
                                       "\"Best customers\"",
                                       "\"unterminated",
                                       NULL /* 256, 257 */};
    static const char *const nums[] = {"1",   "10",  "100", "101",    "0",   "-1",
                                       "2.5", "1e1", "1.0", "\"10\"", "null"};
    static const char *const ws[] = {"", " ", "\n", "\t "};
    rfm_rng g;
    rfm_rng_seed(&g, 23);
    size_t taken = 0, tried = 0;
    char body[2048];
    for (int it = 0; it < 40000; it++) {
        size_t n = 0, members = rfm_rng_below(&g, 4);
        n += (size_t)snprintf(body + n, sizeof body - n, "%s{", ws[rfm_rng_below(&g, 4)]);
        for (size_t m = 0; m < members; m++) {
            size_t ni =
                rfm_rng_below(&g, 5) ? (m + rfm_rng_below(&g, 2)) % 3 : rfm_rng_below(&g, 6);
            const char *nm = names[ni];
            char val[400];
            int want_str = ni == 0 || ni == 2;
            if (rfm_rng_below(&g, 8) == 0)
                want_str = !want_str;
            if (want_str) {
                size_t si = rfm_rng_below(&g, 17);
                if (strs[si])
                    snprintf(val, sizeof val, "%s", strs[si]);
                else {
                    int l = 255 + (int)rfm_rng_below(&g, 3);
                    snprintf(val, sizeof val, "\"%.*s\"", l, longid);
                }
            } else {
                snprintf(val, sizeof val, "%s", nums[rfm_rng_below(&g, 11)]);
            }
            n += (size_t)snprintf(body + n, sizeof body - n, "%s%s\"%s\"%s:%s%s", m ? "," : "",
                                  ws[rfm_rng_below(&g, 4)], nm, ws[rfm_rng_below(&g, 4)], val,
                                  ws[rfm_rng_below(&g, 4)]);
        }
        n += (size_t)snprintf(body + n, sizeof body - n, "}%s", ws[rfm_rng_below(&g, 4)]);
        if (rfm_rng_below(&g, 40) == 0)
            n -= 1 + rfm_rng_below(&g, n); /* cut short */
        tried++;
        double v[OAS_FLAT_MAX];
        oas_str st[OAS_FLAT_MAX];
        if (!oas_flat_read(fs, body, n, v, st))
            continue;
        taken++;
        json_t *j = json_strict(body, n);
        if (!j)
            fail_msg("taken, but not JSON to the server: %.*s", (int)n, body);
        if (oas_validate(s, sim->request, j, NULL, 0) != 0)
            fail_msg("taken, but not valid: %.*s", (int)n, body);
        for (size_t i = 0; i < fs->n; i++) {
            const json_t *m = json_object_get(j, fs->name[i]);
            if (fs->string >> i & 1) {
                const char *want = json_string_value(m);
                if (!m != !st[i].p ||
                    (m && (json_string_length(m) != st[i].n || memcmp(want, st[i].p, st[i].n))))
                    fail_msg("%s read otherwise than the general path: %.*s", fs->name[i], (int)n,
                             body);
                assert_true(isnan(v[i]));
            } else {
                double want = m ? json_number_value(m) : NAN;
                if (memcmp(&want, &v[i], sizeof want) != 0 && !(isnan(want) && isnan(v[i])))
                    fail_msg("%s: %.17g, the general path %.17g: %.*s", fs->name[i], v[i], want,
                             (int)n, body);
            }
        }
        json_decref(j);
    }
    printf("    %zu bodies, %zu read without a tree, each as the general path reads it\n", tried,
           taken);
    assert_true(taken > 1000);
    double v[OAS_FLAT_MAX];
    oas_str st[OAS_FLAT_MAX];
    static const char *const plain[] = {"{\"customer_id\": \"12347\"}",
                                        "{\"customer_id\":\"12347\",\"k\":5}",
                                        "{\"k\": 3, \"segment\": \"Best customers\", "
                                        "\"customer_id\": \"12347\"}"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (!oas_flat_read(fs, plain[i], strlen(plain[i]), v, st))
            fail_msg("not taken: %s", plain[i]);
    assert_int_equal(st[0].n, 5);
    assert_memory_equal(st[0].p, "12347", 5);
    assert_int_equal(oas_flat_read(fs, plain[0], strlen(plain[0]), v, NULL), 0); /* no room */
    const oas_flat *fc = &oas_find(s, "POST", "/predict_cltv")->flat_str;
    const char *hist = "{\"repeat_purchases\": 1, \"days_first_to_last_purchase\": 2, "
                       "\"days_since_first_purchase\": 3, \"mean_repeat_spend\": 4}";
    assert_int_equal(oas_flat_read(fc, hist, strlen(hist), v, st), 0);
    oas_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_each_keyword),
        cmocka_unit_test(test_every_violation_listed),
        cmocka_unit_test(test_integer_and_number_edges),
        cmocka_unit_test(test_enum_const_and_boolean_schemas),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_alternatives_report_nearest),
        cmocka_unit_test(test_cap_and_long_pointers),
        cmocka_unit_test(test_security),
        cmocka_unit_test(test_operations),
        cmocka_unit_test(test_find_matches_document),
        cmocka_unit_test(test_flat_read_as_general_path),
        cmocka_unit_test(test_flat_strings_as_general_path),
        cmocka_unit_test(test_shipped_examples_validate),
        cmocka_unit_test(test_speed_on_shipped_contract),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
