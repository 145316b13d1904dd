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
#include "numfmt.h"
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
    /* ".0" exactly where numfmt's text has neither a point nor an exponent:
     * whole numbers at the edges (2^53, 1e21) and random ones of every size. */
    rfm_rng r;
    rfm_rng_seed(&r, 21);
    const double edge[] = {0.0,        -0.0,
                           1.0,        -3.0,
                           0x1p53 - 1, 0x1p53,
                           1e20,       999999999999999868928.0,
                           1e21,       1e22,
                           -1e21,      0.5,
                           1e-7,       123456789012345678.0,
                           0x1p63,     0x1p64,
                           -0x1p70,    1.5e300};
    for (size_t i = 0; i < 200000 + sizeof edge / sizeof *edge; i++) {
        double x = i < sizeof edge / sizeof *edge ? edge[i] : rand_real(&r);
        if (i >= sizeof edge / sizeof *edge && i % 3 == 0)
            x = trunc(x);
        char want[NUMFMT_LEN + 4];
        size_t n = numfmt_double(x, want);
        if (!memchr(want, '.', n) && !memchr(want, 'e', n))
            strcpy(want + n, ".0");
        json_t *a = json_pack("[f]", x);
        char *got = jsonout_dumps(a, JSON_COMPACT);
        if (strlen(got) != strlen(want) + 2 || strncmp(got + 1, want, strlen(want)) != 0)
            fail_msg("%a: wrote %s, numfmt's text %s", x, got, want);
        free(got);
        json_decref(a);
    }
}

/* t written through jsonw, member by member in the tree's order. */
static void walk(jsonw *w, const json_t *t)
{
    switch (json_typeof(t)) {
    case JSON_NULL: jsonw_null(w); break;
    case JSON_TRUE: jsonw_bool(w, 1); break;
    case JSON_FALSE: jsonw_bool(w, 0); break;
    case JSON_INTEGER: jsonw_int(w, json_integer_value(t)); break;
    case JSON_REAL: jsonw_real(w, json_real_value(t)); break;
    case JSON_STRING: jsonw_str(w, json_string_value(t)); break;
    case JSON_ARRAY:
        jsonw_arr(w);
        for (size_t i = 0; i < json_array_size(t); i++)
            walk(w, json_array_get(t, i));
        jsonw_end(w);
        break;
    case JSON_OBJECT: {
        const char *k;
        const json_t *v;
        jsonw_obj(w);
        json_object_foreach((json_t *)t, k, v)
        {
            /* A key that needs no escape as its text (jsonw_key_raw, what
             * JSONW_KEY passes), the others through jsonw_key; a third of
             * either kind as jsonw_key_text made it (the keys of a model's
             * features, made at load). */
            size_t kl = strlen(k), kq;
            int plain = kl < 200 && !strpbrk(k, "\"\\");
            for (size_t c = 0; plain && c < kl; c++)
                plain = (unsigned char)k[c] >= 0x20;
            if (kl % 3 == 1) {
                char *q = jsonw_key_text(k, &kq);
                assert_non_null(q);
                assert_int_equal(strlen(q), kq);
                jsonw_key_raw(w, q, kq);
                free(q);
            } else if (plain) {
                char q[256];
                int qn = snprintf(q, sizeof q, "\"%s\":", k);
                jsonw_key_raw(w, q, (size_t)qn);
            } else {
                jsonw_key(w, k);
            }
            walk(w, v);
        }
        jsonw_end(w);
        break;
    }
    }
}

/* The writer without a tree gives jsonout_dumps' compact text of the tree
 * with the same members, byte for byte (nesting, commas, escapes, reals,
 * -0, integers down to INT64_MIN). */
static void test_writer_equals_dumps(void **state)
{
    (void)state;
    rfm_rng r;
    rfm_rng_seed(&r, 13);
    for (int i = 0; i < 5000; i++) {
        json_t *t = rand_tree(&r, 0, (int)(i & 1));
        if (i == 0)
            json_decref(t), t = json_pack("[I,I,{}]", (json_int_t)INT64_MIN, (json_int_t)INT64_MAX);
        char *want = jsonout_dumps(t, JSON_COMPACT);
        jsonw w;
        jsonw_init(&w);
        walk(&w, t);
        size_t n = 0;
        char *got = jsonw_finish(&w, &n);
        assert_non_null(want);
        assert_non_null(got);
        if (strcmp(want, got) != 0)
            fail_msg("dumps: %s\njsonw: %s", want, got);
        assert_int_equal(n, strlen(want));
        free(want);
        free(got);
        json_decref(t);
    }
}

/* What the writer refuses: containers left open, an end without a
 * container, nesting past JSONW_DEPTH; a non-finite real is null. */
static void test_writer_edges(void **state)
{
    (void)state;
    jsonw w;
    jsonw_init(&w);
    jsonw_obj(&w);
    jsonw_key(&w, "a");
    jsonw_arr(&w);
    assert_null(jsonw_finish(&w, NULL));
    jsonw_init(&w);
    jsonw_end(&w);
    assert_null(jsonw_finish(&w, NULL));
    jsonw_init(&w);
    for (int d = 0; d < JSONW_DEPTH + 1; d++)
        jsonw_arr(&w);
    for (int d = 0; d < JSONW_DEPTH + 1; d++)
        jsonw_end(&w);
    assert_null(jsonw_finish(&w, NULL));
    jsonw_init(&w);
    for (int d = 0; d < JSONW_DEPTH; d++)
        jsonw_arr(&w);
    for (int d = 0; d < JSONW_DEPTH; d++)
        jsonw_end(&w);
    char *s = jsonw_finish(&w, NULL);
    assert_non_null(s);
    assert_int_equal(strlen(s), 2 * JSONW_DEPTH);
    free(s);
    jsonw_init(&w);
    jsonw_obj(&w);
    jsonw_key(&w, "nan");
    jsonw_real(&w, NAN);
    jsonw_key(&w, "inf");
    jsonw_real(&w, -INFINITY);
    JSONW_KEY(&w, "x");
    jsonw_real(&w, 3.0);
    jsonw_end(&w);
    s = jsonw_finish(&w, NULL);
    assert_string_equal(s, "{\"nan\":null,\"inf\":null,\"x\":3.0}");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_text_as_jansson_without_reals),
        cmocka_unit_test(test_reals_read_back_through_jansson),
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_writer_equals_dumps),
        cmocka_unit_test(test_writer_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
