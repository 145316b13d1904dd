/* test_jsonout.c - jsonout_dumps against jansson's own writer and parser.
 *
 * Without reals, the text must be jansson's byte for byte, for every flag
 * combination the code uses (layout, escaping, key order). With reals,
 * jansson's parser must read the text back to an equal tree whose reals
 * are the same doubles bit for bit, written in their shortest form.
 */
#include "testutil.h"

#include <jansson.h>
#include <string.h>

#include "jsonout.h"
#include "rng.h"

static const size_t FLAGS[] = {0,
                               JSON_COMPACT,
                               JSON_INDENT(1),
                               JSON_INDENT(2),
                               JSON_INDENT(1) | JSON_SORT_KEYS,
                               JSON_COMPACT | JSON_SORT_KEYS,
                               JSON_COMPACT | JSON_INDENT(2)};

/* A string of random bytes from every class jansson escapes or keeps:
 * controls, quote, backslash, slash, ASCII, two- and three-byte UTF-8. */
static json_t *rand_string(rfm_rng *r)
{
    static const char *const parts[] = {
        "a",  "Z",  " ",    "\"",   "\\",   "/",        "\n",           "\t",           "\r",
        "\b", "\f", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xe2\x80\xa8", "key",
        "0.5"};
    char s[128] = "";
    size_t n = rfm_rng_below(r, 8);
    for (size_t i = 0; i < n; i++)
        strcat(s, parts[rfm_rng_below(r, sizeof parts / sizeof parts[0])]);
    return json_string(s);
}

static double rand_real(rfm_rng *r)
{
    switch (rfm_rng_below(r, 4)) {
    case 0: return (double)rfm_rng_below(r, 100000) / 100; /* 2058.17 */
    case 1: return rfm_rng_normal(r) * pow(10, (double)rfm_rng_below(r, 40) - 20);
    case 2: return (double)rfm_rng_below(r, 1000) - 500; /* integral: "3.0" */
    default: {
        double x;
        do {
            uint64_t b = rfm_rng_u64(r);
            memcpy(&x, &b, sizeof x);
        } while (!isfinite(x));
        return x;
    }
    }
}

static json_t *rand_tree(rfm_rng *r, int depth, int reals)
{
    int kind = (int)rfm_rng_below(r, depth >= 4 ? 6 : 8);
    switch (kind) {
    case 0: return json_null();
    case 1: return json_true();
    case 2: return json_false();
    case 3: return json_integer((json_int_t)rfm_rng_u64(r) >> rfm_rng_below(r, 64));
    case 4: return rand_string(r);
    case 5: return reals ? json_real(rand_real(r)) : json_integer(-7);
    case 6: {
        json_t *a = json_array();
        for (size_t i = rfm_rng_below(r, 5); i > 0; i--)
            json_array_append_new(a, rand_tree(r, depth + 1, reals));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (size_t i = rfm_rng_below(r, 5); i > 0; i--) {
            json_t *k = rand_string(r);
            json_object_set_new(o, json_string_value(k), rand_tree(r, depth + 1, reals));
            json_decref(k);
        }
        return o;
    }
    }
}

static void test_same_text_as_jansson_without_reals(void **state)
{
    (void)state;
    rfm_rng r;
    rfm_rng_seed(&r, 7);
    for (int i = 0; i < 3000; i++) {
        json_t *t = rand_tree(&r, 0, 0);
        for (size_t f = 0; f < sizeof FLAGS / sizeof FLAGS[0]; f++) {
            char *want = json_dumps(t, FLAGS[f] | JSON_ENCODE_ANY);
            char *got = jsonout_dumps(t, FLAGS[f]);
            assert_non_null(want);
            assert_non_null(got);
            if (strcmp(want, got) != 0)
                fail_msg("flags %zx:\njansson: %s\njsonout: %s", FLAGS[f], want, got);
            free(want);
            free(got);
        }
        json_decref(t);
    }
}

/* Same shape, same values, reals equal bit for bit (so -0 stays -0). */
static void assert_same(const json_t *a, const json_t *b)
{
    assert_int_equal(json_typeof(a), json_typeof(b));
    if (json_is_real(a)) {
        double x = json_real_value(a), y = json_real_value(b);
        if (memcmp(&x, &y, sizeof x) != 0)
            fail_msg("real %.17g read back as %.17g", x, y);
    } else if (json_is_array(a)) {
        assert_int_equal(json_array_size(a), json_array_size(b));
        for (size_t i = 0; i < json_array_size(a); i++)
            assert_same(json_array_get(a, i), json_array_get(b, i));
    } else if (json_is_object(a)) {
        assert_int_equal(json_object_size(a), json_object_size(b));
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            const json_t *w = json_object_get(b, k);
            assert_non_null(w);
            assert_same(v, w);
        }
    } else {
        assert_true(json_equal((json_t *)a, (json_t *)b));
    }
}

static void test_reals_read_back_through_jansson(void **state)
{
    (void)state;
    rfm_rng r;
    rfm_rng_seed(&r, 11);
    size_t shorter = 0, total = 0;
    for (int i = 0; i < 3000; i++) {
        json_t *t = rand_tree(&r, 0, 1);
        for (size_t f = 0; f < sizeof FLAGS / sizeof FLAGS[0]; f++) {
            char *got = jsonout_dumps(t, FLAGS[f]);
            assert_non_null(got);
            json_error_t e;
            json_t *back = json_loads(got, JSON_DECODE_ANY, &e);
            if (!back)
                fail_msg("jansson cannot read back %s: %s", got, e.text);
            assert_same(t, back);
            json_decref(back);
            char *old = json_dumps(t, FLAGS[f] | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
            shorter += strlen(got) < strlen(old);
            total++;
            free(old);
            free(got);
        }
        json_decref(t);
    }
    printf("    %zu of %zu texts shorter than jansson's %%.17g\n", shorter, total);
}

static void test_examples(void **state)
{
    (void)state;
    json_t *j = json_pack("{s:f,s:f,s:f,s:I,s:f,s:f,s:[]}", "threshold", 0.6, "median", 2058.17,
                          "three", 3.0, "n", (json_int_t)3, "neg", -0.0, "big", 1e300, "empty");
    char *s = jsonout_dumps(j, JSON_COMPACT);
    assert_string_equal(s, "{\"threshold\":0.6,\"median\":2058.17,\"three\":3.0,\"n\":3,"
                           "\"neg\":-0.0,\"big\":1e+300,\"empty\":[]}");
    free(s);
    s = jsonout_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
    assert_string_equal(s, "{\n \"big\": 1e+300,\n \"empty\": [],\n \"median\": 2058.17,\n"
                           " \"n\": 3,\n \"neg\": -0.0,\n \"three\": 3.0,\n \"threshold\": 0.6\n}");
    free(s);
    json_decref(j);
    assert_null(jsonout_dumps(NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_text_as_jansson_without_reals),
        cmocka_unit_test(test_reals_read_back_through_jansson),
        cmocka_unit_test(test_examples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
