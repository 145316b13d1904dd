/* test_csv.c - RFC 4180 edge cases, gzip, positions in errors, checksums. */
#include "testutil.h"

#include <string.h>
#include <zlib.h>

#include "csv.h"
#include "sha256.h"

static int sep = ','; /* the separator parse_all sets */

/* Parse text fully; returns records joined as "a|b|c\n" for comparison. */
static char *parse_all(const char *text, size_t len, rfm_status *st, char *err)
{
    csv_reader *r;
    *st = csv_open_mem(text, len, "mem.csv", &r, err, RFM_ERRLEN);
    assert_int_equal(*st, RFM_OK);
    assert_true(csv_set_separator(r, sep));
    size_t cap = 2 * len + 64, n = 0;
    char *out = calloc(cap, 1);
    const csv_field *f;
    size_t nf;
    while ((*st = csv_next(r, &f, &nf, err, RFM_ERRLEN)) == RFM_OK && nf > 0) {
        for (size_t i = 0; i < nf; i++) {
            if (n + f[i].len + 2 >= cap) {
                cap = 2 * (n + f[i].len + 2);
                out = realloc(out, cap);
            }
            memcpy(out + n, f[i].s, f[i].len);
            n += f[i].len;
            assert_int_equal(strlen(f[i].s), f[i].len); /* NUL-terminated */
            out[n++] = i + 1 < nf ? '|' : '\n';
        }
        out[n] = '\0';
    }
    csv_close(r);
    return out;
}

static void check(const char *in, const char *want)
{
    rfm_status st;
    char err[RFM_ERRLEN] = "";
    char *got = parse_all(in, strlen(in), &st, err);
    if (st != RFM_OK)
        fail_msg("parse error: %s", err);
    assert_string_equal(got, want);
    free(got);
}

static void test_rfc4180(void **state)
{
    (void)state;
    check("a,b,c\n1,2,3\n", "a|b|c\n1|2|3\n");
    check("a,\"b,c\",d\n", "a|b,c|d\n");                       /* comma in quotes */
    check("\"say \"\"hi\"\"\",x\n", "say \"hi\"|x\n");          /* doubled quotes */
    check("\"line1\nline2\",x\ny,z\n", "line1\nline2|x\ny|z\n"); /* newline in quotes */
    check("a,b\r\nc,d\r\n", "a|b\nc|d\n");                     /* CRLF */
    check("\xef\xbb\xbf" "id,v\n1,2\n", "id|v\n1|2\n");        /* BOM */
    check("a,b\n\n\nc,d", "a|b\nc|d\n");                       /* blank lines, no final newline */
    check(",,\n", "||\n");                                     /* empty fields */
    check("12\" PLATE,3\n", "12\" PLATE|3\n");                 /* bare quote kept */
    check("\"\",x\n", "|x\n");
}

/* Other separators: any byte, tabs, runs of blanks, and whole lines. */
static void test_separators(void **state)
{
    (void)state;
    sep = ';';
    check("a;\"b;c\";d,e\r\n1;2;3,5\r\n", "a|b;c|d,e\n1|2|3,5\n");
    check(";;\n", "||\n");
    sep = '\t';
    check("a\tb c\t\"x\ty\"\n", "a|b c|x\ty\n");
    sep = CSV_SEP_WHITESPACE;
    check("  a   b\t\tc  \n1 \t 2 3\r\n", "a|b|c\n1|2|3\n"); /* runs; blanks at the ends */
    check("x \"two words\" \"\" y\n", "x|two words||y\n");   /* quotes keep blanks, "" empty */
    check("a b\n   \n\t\nc d\n", "a|b\nc|d\n");              /* blank-only lines skipped */
    sep = CSV_SEP_LINES;
    check("{\"a\": \"x,y\"}\r\n\n\"q\" z\n", "{\"a\": \"x,y\"}\n\"q\" z\n");
    sep = ',';
    csv_reader *r;
    char err[RFM_ERRLEN];
    assert_int_equal(csv_open_mem("", 0, "x", &r, err, sizeof err), RFM_OK);
    assert_false(csv_set_separator(r, '"'));
    assert_false(csv_set_separator(r, '\n'));
    assert_false(csv_set_separator(r, 0));
    const uint8_t *p;
    size_t n;
    assert_int_equal(csv_peek(r, &p, &n, err, sizeof err), RFM_OK); /* empty: found by fuzz_csv */
    assert_int_equal(n, 0);
    csv_close(r);
    /* a peek does not consume, and skips the byte order mark */
    const char *text = "\xef\xbb\xbf{\"a\":1}\n";
    assert_int_equal(csv_open_mem(text, strlen(text), "x", &r, err, sizeof err), RFM_OK);
    assert_int_equal(csv_peek(r, &p, &n, err, sizeof err), RFM_OK);
    assert_int_equal(n, 8);
    assert_int_equal(p[0], '{');
    assert_true(csv_set_separator(r, CSV_SEP_LINES));
    const csv_field *f;
    size_t nf;
    assert_int_equal(csv_next(r, &f, &nf, err, sizeof err), RFM_OK);
    assert_int_equal(nf, 1);
    assert_string_equal(f[0].s, "{\"a\":1}");
    csv_close(r);
}

static void test_line_numbers_and_columns(void **state)
{
    (void)state;
    const char *in = "h1,h2\n\"a\nb\",c\nd,e\n";
    csv_reader *r;
    char err[RFM_ERRLEN];
    const csv_field *f;
    size_t nf;
    assert_int_equal(csv_open_mem(in, strlen(in), "x.csv", &r, err, sizeof err), RFM_OK);
    assert_int_equal(csv_next(r, &f, &nf, err, sizeof err), RFM_OK);
    assert_int_equal(csv_line(r), 1);
    assert_int_equal(csv_next(r, &f, &nf, err, sizeof err), RFM_OK);
    assert_int_equal(csv_line(r), 2); /* the record starts on line 2, spans 2-3 */
    assert_int_equal(csv_next(r, &f, &nf, err, sizeof err), RFM_OK);
    assert_int_equal(csv_line(r), 4);
    assert_int_equal(csv_column(r, 0), 1);
    assert_int_equal(csv_column(r, 1), 3);
    assert_int_equal(csv_next(r, &f, &nf, err, sizeof err), RFM_OK);
    assert_int_equal(nf, 0);
    assert_int_equal(csv_records(r), 3);
    csv_close(r);
}

static void expect_error(const char *in, size_t len, const char *where, const char *what)
{
    csv_reader *r;
    char err[RFM_ERRLEN] = "";
    const csv_field *f;
    size_t nf;
    rfm_status st;
    assert_int_equal(csv_open_mem(in, len, "bad.csv", &r, err, sizeof err), RFM_OK);
    while ((st = csv_next(r, &f, &nf, err, sizeof err)) == RFM_OK && nf > 0)
        ;
    csv_close(r);
    assert_int_equal(st, RFM_EPARSE);
    if (!strstr(err, where) || !strstr(err, what))
        fail_msg("error '%s' lacks '%s' or '%s'", err, where, what);
}

static void test_malformed(void **state)
{
    (void)state;
    const char *a = "a,b\n1,\"open\n2,3\n";
    expect_error(a, strlen(a), "bad.csv:2:3:", "not closed");
    const char *b = "a,b\n1,\"x\"y\n";
    expect_error(b, strlen(b), "bad.csv:2:6:", "after the closing quote");
    const char c[] = "a,b\n1,x\0y\n";
    expect_error(c, sizeof c - 1, "bad.csv:2:4:", "NUL");
}

static size_t gzip_mem(const char *in, size_t len, char *out, size_t cap)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = z.total_out;
    deflateEnd(&z);
    return n;
}

/* A few MB with long quoted fields, so records straddle every buffer edge;
 * the gzip copy must parse to the same records, and a truncated copy must
 * fail rather than end quietly. */
static void test_gzip_and_buffer_edges(void **state)
{
    (void)state;
    size_t cap = 6u << 20, n = 0;
    char *plain = malloc(cap);
    n += (size_t)sprintf(plain, "id,text\n");
    for (int i = 0; n + 5000 < cap - 100000; i++) {
        n += (size_t)sprintf(plain + n, "%d,\"", i);
        int len = (i * 7919) % 3000;
        for (int k = 0; k < len; k++)
            plain[n++] = (k % 97 == 0) ? ',' : (k % 89 == 0 ? '\n' : (char)('a' + k % 26));
        n += (size_t)sprintf(plain + n, "\"\"q\"\"\"\r\n");
    }
    char *gz = malloc(cap);
    size_t gzn = gzip_mem(plain, n, gz, cap);
    rfm_status st;
    char err[RFM_ERRLEN] = "";
    char *a = parse_all(plain, n, &st, err);
    assert_int_equal(st, RFM_OK);
    char *b = parse_all(gz, gzn, &st, err);
    if (st != RFM_OK)
        fail_msg("%s", err);
    assert_string_equal(a, b);
    printf("    %zu plain bytes, %zu gzip bytes parse identically\n", n, gzn);
    expect_error(gz, gzn / 2, "bad.csv", "gzip data ends early");
    free(a);
    free(b);

    /* The checksum is of the raw bytes on disk. */
    char path[64], hex[65], hex2[65];
    write_temp(path, ".csv.gz", gz, gzn);
    csv_reader *r;
    const csv_field *f;
    size_t nf;
    assert_int_equal(csv_open(path, &r, err, sizeof err), RFM_OK);
    while (csv_next(r, &f, &nf, err, sizeof err) == RFM_OK && nf > 0)
        ;
    uint8_t d[32];
    csv_sha256(r, d);
    sha256_hex(d, hex);
    assert_int_equal(csv_bytes(r), gzn);
    csv_close(r);
    assert_int_equal(sha256_file(path, hex2, err, sizeof err), RFM_OK);
    assert_string_equal(hex, hex2);
    remove(path);
    free(plain);
    free(gz);
}

static void test_open_missing(void **state)
{
    (void)state;
    csv_reader *r;
    char err[RFM_ERRLEN];
    assert_int_equal(csv_open("/nonexistent/t.csv", &r, err, sizeof err), RFM_EIO);
    assert_null(r);
    assert_non_null(strstr(err, "/nonexistent/t.csv"));
}

static void test_find(void **state)
{
    (void)state;
    csv_field f[3] = {{"a", 1}, {"CustomerID", 10}, {"c", 1}};
    assert_int_equal(csv_find(f, 3, "CustomerID"), 1);
    assert_int_equal(csv_find(f, 3, "customerid"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4180),
        cmocka_unit_test(test_separators),
        cmocka_unit_test(test_line_numbers_and_columns),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_gzip_and_buffer_edges),
        cmocka_unit_test(test_open_missing),
        cmocka_unit_test(test_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
