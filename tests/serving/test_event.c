/* test_event.c - core/serving/event.c: event_batch_read (a POST /events
 * body read straight into events) against the general path it stands in
 * for (event_ref.h: jansson, the contract's schema, event_from_json).
 *
 * The property: whenever event_batch_read decides a body (EVENT_BODY_OK),
 * the general path accepts it too and gives every item the same event or
 * the same refusal. Bodies come from a generator of near-valid events
 * (every member name, values of every JSON type, escapes, non-ASCII,
 * overflowing numbers, unknown and repeated members, white space) and
 * from random byte edits of them; the test also counts that most plain
 * bodies are decided, so it fails if the fast path stops being used.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"
#include "event_ref.h"
#include "oas.h"
#include "rng.h"
#include "testutil.h"

static oas_spec *spec;
static engagement_options types;

static int setup(void **state)
{
    (void)state;
    char err[RFM_ERRLEN];
    if (oas_load("../openapi.yaml", &spec, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    engagement_default_options(&types);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    oas_free(spec);
    return 0;
}

/* ---- bodies ------------------------------------------------------------ */

static const char *pick(rfm_rng *g, const char *const *a, size_t n)
{
    return a[rfm_rng_below(g, n)];
}
#define PICK(g, a) pick(g, a, sizeof a / sizeof *a)

static void ws(rfm_rng *g, tbuf *b)
{
    static const char *const W[] = {"", "", "", " ", "\n", "\t", "\r\n  "};
    tbuf_put(b, "%s", PICK(g, W));
}

/* A value: mostly the kind the member wants, sometimes any other. In an
 * odd body (odd set) also what the fast path leaves to jansson: escapes,
 * bad UTF-8, overflowing or malformed numbers, nesting. Each pool lists
 * the plain values first (nplain of them). */
static int odd;
static const char *pick_pool(rfm_rng *g, const char *const *a, size_t n, size_t nplain)
{
    return a[rfm_rng_below(g, odd ? n : nplain)];
}

static void value(rfm_rng *g, tbuf *b, const char *name)
{
    static const char *const STR[] = {
        "\"e-1\"", "\"17850\"", "\"2011-12-01T08:26:00Z\"", "\"2011-12-01T08:26:00+01:00\"", "\"\"",
        "\"536365\"", "\"web_visit\"", "\"lead\"", "\"purchase\"", "\"nope\"", "\"C536379\"",
        "\"nan\"", "\"caf\xc3\xa9\"", "\"\xe2\x82\xac 5\"",
        /* odd */
        "\"a\\\"b\"", "\"\\u00e9\"", "\"bad \xc3\x28\"", "\"\xed\xa0\x80\""};
    static const char *const NUM[] = {"15.3", "3", "-0", "0", "2.1", "-1", "1e3", "1E-2", "0.5e+1",
                                      "1.5e-320", "-9223372036854775808", "9223372036854775807",
                                      "17850",
                                      /* odd */
                                      "1e400", "-1e400", "12345678901234567890", "01", "1.", "-",
                                      ".5", "1e", "0x10", "Infinity", "NaN"};
    static const char *const OTHER[] = {"true", "false", "null",
                                        /* odd */
                                        "{}", "[]", "[1]", "{\"a\":1}", "nul", "tru"};
    int want_num =
        strcmp(name, "amount") == 0 || strcmp(name, "quantity") == 0 || strcmp(name, "price") == 0;
    uint64_t k = rfm_rng_below(g, 10);
    const char *const *pool = k < 6   ? (want_num ? NUM : STR)
                              : k < 8 ? (want_num ? STR : NUM)
                                      : OTHER;
    size_t n = pool == NUM   ? sizeof NUM / sizeof *NUM
               : pool == STR ? sizeof STR / sizeof *STR
                             : sizeof OTHER / sizeof *OTHER;
    size_t nplain = pool == NUM ? 13 : pool == STR ? 14 : 3;
    tbuf_put(b, "%s", pick_pool(g, pool, n, nplain));
}

static void event(rfm_rng *g, tbuf *b)
{
    static const char *const NAMES[] = {"event_id", "customer_id", "time",     "invoice", "product",
                                        "type",     "amount",      "quantity", "price"};
    static const char *const ODD[] = {"currency", "event_id", "amount", "ev\\u0065nt_id",
                                      "Event_id"};
    if (odd && rfm_rng_below(g, 40) == 0) { /* an item that is not an object */
        value(g, b, "x");
        return;
    }
    tbuf_put(b, "{");
    int first = 1;
    for (int k = 0; k < 9; k++) {
        if (rfm_rng_below(g, 10) < 2) /* missing */
            continue;
        if (!first)
            tbuf_put(b, ",");
        first = 0;
        ws(g, b);
        const char *name = odd && rfm_rng_below(g, 60) == 0 ? PICK(g, ODD) : NAMES[k];
        tbuf_put(b, "\"%s\"", name);
        ws(g, b);
        tbuf_put(b, ":");
        ws(g, b);
        /* The usual fields mostly valid, so many events are accepted. */
        if (k == 0 && rfm_rng_below(g, 4))
            tbuf_put(b, "\"e-%llu\"", (unsigned long long)rfm_rng_below(g, 1000));
        else if (k == 1 && rfm_rng_below(g, 4))
            tbuf_put(b, rfm_rng_below(g, 2) ? "%llu" : "\"%llu\"",
                (unsigned long long)(12346 + rfm_rng_below(g, 6000)));
        else if (k == 2 && rfm_rng_below(g, 4))
            tbuf_put(b, "\"2011-12-%02dT10:00:00Z\"", 1 + (int)rfm_rng_below(g, 28));
        else
            value(g, b, name);
        ws(g, b);
    }
    tbuf_put(b, "}");
}

static void body(rfm_rng *g, tbuf *b)
{
    b->n = 0;
    odd = rfm_rng_below(g, 2) == 0;
    ws(g, b);
    uint64_t shape = odd ? rfm_rng_below(g, 50) : 99;
    tbuf_put(b, shape == 0 ? "[" : "{");
    ws(g, b);
    tbuf_put(b, "\"%s\"", shape == 1 ? "event" : "events");
    ws(g, b);
    tbuf_put(b, ":");
    ws(g, b);
    tbuf_put(b, "[");
    size_t n = rfm_rng_below(g, 8) == 0 ? 60 + rfm_rng_below(g, 150) : rfm_rng_below(g, 6);
    for (size_t i = 0; i < n; i++) {
        if (i)
            tbuf_put(b, ",");
        ws(g, b);
        event(g, b);
        ws(g, b);
    }
    tbuf_put(b, "]");
    if (shape == 2)
        tbuf_put(b, ",\"events\":[]");
    if (shape == 3)
        tbuf_put(b, ",\"extra\":1");
    ws(g, b);
    tbuf_put(b, shape == 0 ? "]" : "}");
    ws(g, b);
    if (shape == 4)
        tbuf_put(b, "x");
}

/* A random edit of b: a byte changed, removed or doubled. */
static void edit(rfm_rng *g, tbuf *b)
{
    if (b->n == 0)
        return;
    size_t at = rfm_rng_below(g, b->n);
    static const char BYTES[] = "{}[],:\" \\0123456789.eE-+tfnlu\x80\xc3\xff";
    switch (rfm_rng_below(g, 3)) {
    case 0: b->s[at] = BYTES[rfm_rng_below(g, sizeof BYTES - 1)]; break;
    case 1:
        memmove(b->s + at, b->s + at + 1, b->n - at - 1);
        b->n--;
        break;
    default:
        tbuf_put(b, " ");
        memmove(b->s + at + 1, b->s + at, b->n - at - 1);
        break;
    }
}

/* ---- tests ------------------------------------------------------------- */

/* Decide body (len bytes) both ways; returns 1 when the fast path decided. */
static int compare(const char *text, size_t len, size_t max_items, size_t *ref_ok)
{
    event_batch b;
    ref_batch r;
    event_body st = event_batch_read(text, len, max_items, &types, &b);
    int ok = ref_read(spec, text, len, max_items, &types, &r);
    *ref_ok += (size_t)ok;
    if (st == EVENT_BODY_OK) {
        if (!ok)
            fail_msg("decided a body the general path refuses: %.*s", (int)len, text);
        long i = ref_first_difference(&b, &r.b);
        if (i >= 0)
            fail_msg("item %ld differs from the general path: %.*s", i, (int)len, text);
    } else {
        assert_int_equal(st, EVENT_BODY_OTHER);
    }
    event_batch_free(&b);
    ref_free(&r);
    return st == EVENT_BODY_OK;
}

static void test_generated_bodies_agree(void **state)
{
    (void)state;
    rfm_rng g;
    rfm_rng_seed(&g, 20261202);
    tbuf b = {NULL, 0, 0};
    size_t decided = 0, ref_ok = 0, edited_decided = 0;
    const size_t N = 20000;
    for (size_t t = 0; t < N; t++) {
        body(&g, &b);
        tbuf_put(&b, "%s", ""); /* room for edits */
        int d = compare(b.s, b.n, 100, &ref_ok);
        decided += (size_t)d;
        for (int e = 0; e < 3; e++) {
            edit(&g, &b);
            edited_decided += (size_t)compare(b.s, b.n, 100, &ref_ok);
        }
    }
    printf("  %zu bodies: %zu decided by the fast path (general path accepts %zu of %zu with "
           "edits); %zu edited bodies decided\n",
           N, decided, ref_ok, 4 * N, edited_decided);
    /* The fast path must take a good share of the bodies: about half the
     * generated ones have nothing it leaves to jansson. */
    assert_true(decided > N / 5);
    assert_true(edited_decided > 0);
    free(b.s);
}

static void test_values(void **state)
{
    (void)state;
    const char *text = "{\"events\": [{\"event_id\": \"e-1\", \"customer_id\": 17850, \"time\": "
                       "\"2011-12-01T08:26:00Z\", \"invoice\": 536365, \"amount\": 15.3},\n"
                       " {\"event_id\":\"e-2\",\"customer_id\":\"13047\",\"time\":\"t\","
                       "\"quantity\":-0,\"price\":2.1,\"product\":\"caf\xc3\xa9\"},"
                       " {\"event_id\":\"e-3\",\"customer_id\":\"1\",\"time\":\"t\","
                       "\"type\":\"web_visit\"},"
                       " {\"event_id\":\"e-4\",\"customer_id\":null,\"time\":\"t\"},"
                       " {\"event_id\":\"e-5\",\"customer_id\":\"1\",\"time\":\"t\","
                       "\"type\":\"visit\"}]} ";
    event_batch b;
    assert_int_equal(event_batch_read(text, strlen(text), 10, &types, &b), EVENT_BODY_OK);
    assert_int_equal(b.n, 5);
    assert_int_equal(b.reason[0], STATE_OK);
    assert_string_equal(b.ev[0].event_id, "e-1");
    assert_string_equal(b.ev[0].customer_id, "17850");
    assert_string_equal(b.ev[0].invoice, "536365");
    assert_true(b.ev[0].has_amount && b.ev[0].amount == 15.3);
    assert_int_equal(b.reason[1], STATE_OK);
    assert_false(b.ev[1].has_amount);
    /* -0 is jansson's integer 0: +0.0, as the general path reads it. */
    assert_false(signbit(b.ev[1].quantity));
    assert_true(b.ev[1].price == 2.1);
    assert_string_equal(b.ev[1].product, "caf\xc3\xa9");
    assert_int_equal(b.reason[2], STATE_OK);
    assert_string_equal(b.ev[2].type, "web_visit");
    assert_int_equal(b.reason[3], STATE_MISSING_CUSTOMER);
    assert_string_equal(b.why[3], "customer_id: a string (or integer) is required");
    assert_int_equal(b.reason[4], STATE_BAD_TYPE);
    size_t ok = 0;
    compare(text, strlen(text), 10, &ok);
    assert_int_equal(ok, 1);
    event_batch_free(&b);
}

/* Bodies left to the general path, each for its own reason. */
static void test_left_to_general_path(void **state)
{
    (void)state;
    static const char *const OTHER[] = {
        "",
        "{}",
        "{\"events\":[]}",
        "{\"events\":{}}",
        "[{\"events\":[]}]",
        "{\"events\":[{}],\"x\":1}",
        "{\"events\":[{}],\"events\":[{}]}",
        "{\"events\":[{\"event_id\":\"a\",\"event_id\":\"b\"}]}",
        "{\"events\":[{\"event_id\":\"a\\\"b\"}]}",
        "{\"events\":[{\"currency\":\"EUR\"}]}",
        "{\"events\":[{\"amount\":{}}]}",
        "{\"events\":[{\"amount\":1e400}]}",
        "{\"events\":[{\"customer_id\":12345678901234567890}]}",
        "{\"events\":[{\"amount\":01}]}",
        "{\"events\":[{\"amount\":1.}]}",
        "{\"events\":[{\"amount\":NaN}]}",
        "{\"events\":[{\"product\":\"\xc3\x28\"}]}",
        "{\"events\":[{\"product\":\"a\tb\"}]}",
        "{\"events\":[1]}",
        "{\"events\":[{}]} x",
        "{\"events\":[{},]}",
        "\xef\xbb\xbf{\"events\":[{}]}",
        "{\"events\":[{},{},{}]}", /* over the limit of 2 below */
    };
    for (size_t i = 0; i < sizeof OTHER / sizeof *OTHER; i++) {
        event_batch b;
        assert_int_equal(event_batch_read(OTHER[i], strlen(OTHER[i]), 2, &types, &b),
                         EVENT_BODY_OTHER);
        assert_null(b.ev);
        size_t ok = 0;
        compare(OTHER[i], strlen(OTHER[i]), 2, &ok);
    }
    /* Not a C string: the length bounds the read. */
    const char *cut = "{\"events\":[{}]}garbage";
    event_batch b;
    assert_int_equal(event_batch_read(cut, 15, 2, &types, &b), EVENT_BODY_OK);
    assert_int_equal(b.reason[0], STATE_BAD_EVENT_ID);
    event_batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_left_to_general_path),
        cmocka_unit_test(test_generated_bodies_agree),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
