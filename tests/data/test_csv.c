/* test_csv.c - RFC 4180 edge cases, gzip, positions in errors, checksums. */
#include "testutil.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>
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
    check("a,\"b,c\",d\n", "a|b,c|d\n");                         /* comma in quotes */
    check("\"say \"\"hi\"\"\",x\n", "say \"hi\"|x\n");           /* doubled quotes */
    check("\"line1\nline2\",x\ny,z\n", "line1\nline2|x\ny|z\n"); /* newline in quotes */
    check("a,b\r\nc,d\r\n", "a|b\nc|d\n");                       /* CRLF */
    check("\xef\xbb\xbf"
          "id,v\n1,2\n",
          "id|v\n1|2\n");                      /* BOM */
    check("a,b\n\n\nc,d", "a|b\nc|d\n");       /* blank lines, no final newline */
    check(",,\n", "||\n");                     /* empty fields */
    check("12\" PLATE,3\n", "12\" PLATE|3\n"); /* bare quote kept */
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
    check("{}\n{\"b\": 2}", "{}\n{\"b\": 2}\n"); /* no final newline (was: 4096 fields) */
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

static size_t gzip_level(const char *in, size_t len, char *out, size_t cap, int level)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = z.total_out;
    deflateEnd(&z);
    return n;
}

static size_t gzip_mem(const char *in, size_t len, char *out, size_t cap)
{
    return gzip_level(in, len, out, cap, 6);
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

/* Concatenated gzip members (`cat a.gz b.gz`, or a log rotated by parts)
 * read as one text, whatever each member's level (0 is stored blocks) and
 * with an empty member among them; a damaged member is an error, never
 * records quietly lost: a wrong CRC-32 or length in a trailer, deflate
 * data overwritten, bytes after the last member that are not a member. */
static void test_gzip_members_and_damage(void **state)
{
    (void)state;
    size_t cap = 1u << 20, n = 0;
    char *plain = malloc(cap);
    n += (size_t)sprintf(plain, "id,amount,note\n");
    for (int i = 0; n < 300000; i++)
        n += (size_t)sprintf(plain + n, "%d,%d.%02d,\"n%d, %d\"\n", i, (i * 7919) % 1000, i % 100,
                             i % 37, (i * 31) % 1013);
    rfm_status st;
    char err[RFM_ERRLEN] = "";
    char *want = parse_all(plain, n, &st, err);
    assert_int_equal(st, RFM_OK);

    /* Four members: levels 1, 0, 9 and an empty one between, cut mid-line. */
    size_t cut[4] = {0, 70001, 150003, n}, zcap = 2 * n + 4096, zn = 0;
    char *gz = malloc(zcap);
    const int level[3] = {1, 0, 9};
    size_t last = 0; /* start of the last member */
    for (int k = 0; k < 3; k++) {
        if (k == 2)
            zn += gzip_level("", 0, gz + zn, zcap - zn, 6);
        last = zn;
        zn += gzip_level(plain + cut[k], cut[k + 1] - cut[k], gz + zn, zcap - zn, level[k]);
    }
    char *got = parse_all(gz, zn, &st, err);
    if (st != RFM_OK)
        fail_msg("%s", err);
    assert_string_equal(got, want);
    free(got);

    char *bad = malloc(zn + 16);
    /* Each trailer byte: CRC-32 (4), then the length mod 2^32 (4). */
    for (size_t b = 8; b >= 1; b--) {
        memcpy(bad, gz, zn);
        bad[zn - b] ^= 0x10;
        expect_error(bad, zn, "bad.csv", "corrupt gzip data");
    }
    /* Deflate data of the first member overwritten. */
    memcpy(bad, gz, zn);
    memset(bad + 2000, 0xff, 64);
    expect_error(bad, zn, "bad.csv", "corrupt gzip data");
    /* Bytes after the last member, more or fewer than a header's ten. */
    memcpy(bad, gz, zn);
    memcpy(bad + zn, "id,amount,note\n", 15);
    expect_error(bad, zn + 15, "bad.csv", "invalid gzip header");
    expect_error(bad, zn + 3, "bad.csv", "invalid gzip header");
    bad[zn] = 0x1f; /* the magic's first byte, then the input ends */
    expect_error(bad, zn + 1, "bad.csv", "gzip data ends early");
    /* The last member cut anywhere in its body or trailer. */
    for (size_t end = last + 11; end < zn; end += (zn - last) / 7 + 1) {
        memcpy(bad, gz, end);
        expect_error(bad, end, "bad.csv", "gzip data ends early");
    }
    expect_error(gz, zn - 1, "bad.csv", "gzip data ends early");
    free(bad);
    free(gz);
    free(want);
    free(plain);
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

/* Input from a pipe (rfm-train --transactions -): the reader widens the
 * pipe to 1 MiB (Linux's limit for any process unless lowered), so a writer
 * does not stop every 64 KiB for the reader to wake; the records read are
 * those written. */
static void test_pipe_widened(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int before = fcntl(fds[0], F_GETPIPE_SZ);
    static const char TEXT[] = "a,b\n1,2\n3,4\n";
    assert_int_equal(write(fds[1], TEXT, sizeof TEXT - 1), (ssize_t)(sizeof TEXT - 1));
    close(fds[1]);
    csv_reader *r;
    char err[RFM_ERRLEN];
    assert_int_equal(csv_open_fd(fds[0], "pipe", &r, err, sizeof err), RFM_OK);
    FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
    long max = 0;
    if (f) {
        if (fscanf(f, "%ld", &max) != 1)
            max = 0;
        fclose(f);
    }
    int after = fcntl(fds[0], F_GETPIPE_SZ);
    printf("    pipe buffer %d -> %d bytes (pipe-max-size %ld)\n", before, after, max);
    if (max >= 1 << 20)
        assert_int_equal(after, 1 << 20);
    else /* refused, unless the process may pass the limit (CAP_SYS_RESOURCE) */
        assert_true(after == before || after == 1 << 20);
    const csv_field *fl;
    size_t nf, rows = 0;
    rfm_status st;
    while ((st = csv_next(r, &fl, &nf, err, sizeof err)) == RFM_OK && nf > 0)
        rows++;
    assert_int_equal(st, RFM_OK);
    assert_int_equal(rows, 3);
    csv_close(r);
}

/* ---- The parser against a byte-by-byte reference on random input ----
 *
 * The reader takes records that lie whole in a block through a fast path
 * (16 or 8 bytes at a time) and everything else byte by byte. ref_next
 * below is the format written out plainly, one byte at a time over the
 * whole input; random inputs are read both from memory (one block) and
 * from a producer handing out 1 to 40 (or 3000) bytes at a time (so fields
 * and records span blocks at every offset), and every record, field, line
 * and column must agree with it, and the two readers on every error. */

typedef struct {
    int sep, ws, quotes; /* sep: a byte, or -1 in line mode */
} ref_dialect;

typedef struct {
    char *buf; /* the fields back to back, NUL after each */
    size_t len, cap;
    size_t nf, fcap;
    size_t *ofs, *flen;
    uint64_t *col;
    uint64_t line;
} ref_rec;

static void ref_put(ref_rec *r, char c)
{
    if (r->len + 1 >= r->cap) {
        r->cap = 2 * r->cap + 64;
        r->buf = realloc(r->buf, r->cap);
        assert_non_null(r->buf);
    }
    r->buf[r->len++] = c;
}

/* 0 past the reader's limit of 4096 fields. */
static int ref_field(ref_rec *r, uint64_t col)
{
    if (r->nf == 4096)
        return 0;
    if (r->nf == r->fcap) {
        r->fcap = 2 * r->fcap + 16;
        r->ofs = realloc(r->ofs, r->fcap * sizeof *r->ofs);
        r->flen = realloc(r->flen, r->fcap * sizeof *r->flen);
        r->col = realloc(r->col, r->fcap * sizeof *r->col);
        assert_true(r->ofs && r->flen && r->col);
    }
    r->ofs[r->nf] = r->len;
    r->col[r->nf++] = col;
    return 1;
}

static int ref_blank(const ref_dialect *d, int c) { return d->ws && (c == ' ' || c == '\t'); }
static int ref_ends_field(const ref_dialect *d, int c)
{
    return c == d->sep || c == '\r' || c == '\n' || (d->ws && c == '\t');
}

/* The next record of s[0..n) from *pos: 1 with it in *r, 0 at the end, -1
 * for a malformed record. */
static int ref_next(const ref_dialect *d, const uint8_t *s, size_t n, size_t *pos, uint64_t *line,
                    size_t *linestart, ref_rec *r)
{
    size_t p = *pos;
#define AT(i) ((i) < n ? (int)s[i] : -1)
    for (;;) {
        r->len = r->nf = 0;
        r->line = *line;
        while (ref_blank(d, AT(p)))
            p++;
        if (p == n)
            return 0;
        for (;;) {
            if (!ref_field(r, p - *linestart + 1))
                return -1;
            if (d->quotes && AT(p) == '"') {
                p++;
                for (;;) {
                    int c = AT(p);
                    if (c < 0 || c == 0)
                        return -1;
                    if (c == '"') {
                        if (AT(p + 1) == '"') {
                            ref_put(r, '"');
                            p += 2;
                            continue;
                        }
                        p++;
                        if (AT(p) < 0 || ref_ends_field(d, AT(p)))
                            break;
                        return -1; /* text after the closing quote */
                    }
                    ref_put(r, (char)c);
                    p++;
                    if (c == '\n') {
                        ++*line;
                        *linestart = p;
                    }
                }
            } else {
                for (int c; (c = AT(p)) >= 0 && !ref_ends_field(d, c); p++) {
                    if (c == 0)
                        return -1;
                    ref_put(r, (char)c);
                }
            }
            r->flen[r->nf - 1] = r->len - r->ofs[r->nf - 1];
            ref_put(r, '\0');
            int c = AT(p);
            if (c >= 0 && (c == d->sep || (d->ws && c == '\t'))) {
                p++;
                if (!d->ws)
                    continue;
                while (ref_blank(d, AT(p)))
                    p++;
                c = AT(p);
                if (c >= 0 && c != '\r' && c != '\n')
                    continue;
            }
            if (c == '\r') {
                p++;
                c = AT(p);
            }
            if (c == '\n')
                p++;
            ++*line;
            *linestart = p;
            break;
        }
        *pos = p;
        if (r->nf == 1 && r->flen[0] == 0)
            continue; /* blank line */
        return 1;
    }
#undef AT
}

/* A producer handing out the input a few bytes at a time. */
typedef struct {
    const uint8_t *s;
    size_t n, pos, most; /* bytes per read: 1 to most */
    uint64_t rng;
} drip;

static uint64_t rnd(uint64_t *x) /* xorshift64* */
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545f4914f6cdd1dULL;
}

static rfm_status drip_read(void *ctx, uint8_t *buf, size_t cap, size_t *got, char *err,
                            size_t errlen)
{
    (void)err;
    (void)errlen;
    drip *d = ctx;
    size_t k = 1 + rnd(&d->rng) % d->most;
    if (d->pos == 0 && k < 2) /* the first two bytes come together (csv.h) */
        k = 2;
    if (k > cap)
        k = cap;
    if (k > d->n - d->pos)
        k = d->n - d->pos;
    memcpy(buf, d->s + d->pos, k);
    d->pos += k;
    *got = k;
    return RFM_OK;
}

/* Random input over a small alphabet: either raw bytes, or records of
 * random fields (some quoted, with doubled quotes and line ends inside)
 * with a few bytes then overwritten. Letters are weighted so that spans
 * longer than a scan chunk are common; some inputs hold long fields (past
 * the record buffer's first size) or many fields (past 64). */
static size_t random_input(uint64_t *x, const ref_dialect *d, uint8_t *out, size_t cap)
{
    static const char any[] = ",;\t \"\r\n\0";
    const char seps[] = {d->sep < 0 ? ',' : (char)d->sep, d->ws ? '\t' : ','};
    size_t n = 0, want = 1 + rnd(x) % (cap / 4);
    unsigned letters = 40 + (unsigned)(rnd(x) % 60); /* percent */
    int nul = rnd(x) % 8 == 0, longf = rnd(x) % 16 == 0;
    if (rnd(x) % 4 == 0) { /* raw bytes */
        while (n < want) {
            if (rnd(x) % 100 < letters)
                out[n++] = (uint8_t)('a' + rnd(x) % 3);
            else
                out[n++] = (uint8_t)any[rnd(x) % (sizeof any - (nul ? 1 : 2))];
        }
        return n;
    }
    /* Plain records (no quotes; reader's fast_line) in a third of the
     * inputs, of every length around its 64-byte steps. */
    int plain = rnd(x) % 3 == 0;
    while (n + 64 < cap && n < want) { /* records */
        size_t nf = rnd(x) % 10 == 0 ? 1 + rnd(x) % 150 : 1 + rnd(x) % 9;
        for (size_t i = 0; i < nf && n + 64 < cap; i++) {
            size_t flen = longf && rnd(x) % 4 == 0 ? rnd(x) % 6000 : rnd(x) % (plain ? 70 : 40);
            int quoted = !plain && d->quotes && rnd(x) % 4 == 0;
            if (quoted)
                out[n++] = '"';
            for (size_t j = 0; j < flen && n + 64 < cap; j++) {
                unsigned c = (unsigned)(rnd(x) % 100);
                if (c < letters)
                    out[n++] = (uint8_t)('a' + rnd(x) % 3);
                else if (!quoted) /* a quote inside unquoted text is kept */
                    out[n++] = j > 0 && c % 4 == 0 && !plain ? '"' : (uint8_t)('a' + rnd(x) % 3);
                else if (c % 3 == 0)
                    out[n++] = '"', out[n++] = '"';
                else /* separators and line ends inside quotes */
                    out[n++] = (uint8_t) ",;\t \r\n"[rnd(x) % 6];
            }
            if (quoted)
                out[n++] = '"';
            if (i + 1 < nf) {
                out[n++] = (uint8_t)seps[rnd(x) % 2];
                if (d->ws && rnd(x) % 2)
                    out[n++] = ' ';
            }
        }
        if (rnd(x) % 3 == 0)
            out[n++] = '\r';
        if (rnd(x) % 5 != 0)
            out[n++] = '\n';
    }
    for (unsigned k = rnd(x) % 3 ? 0 : 1 + (unsigned)(rnd(x) % 3); k > 0 && n > 0; k--) /* strays */
        out[rnd(x) % n] = (uint8_t)any[rnd(x) % (sizeof any - (nul ? 1 : 2))];
    return n;
}

/* Read in with the reader, comparing each record with the reference.
 * Returns the number of records; *st and err as csv_next left them. */
static size_t compare_with_ref(csv_reader *rd, const ref_dialect *d, const uint8_t *in, size_t n,
                               rfm_status *st, char *err)
{
    ref_rec ref = {0};
    size_t pos = 0, linestart = 0, count = 0;
    uint64_t line = 1;
    for (;;) {
        int want = ref_next(d, in, n, &pos, &line, &linestart, &ref);
        const csv_field *f;
        size_t nf;
        *st = csv_next(rd, &f, &nf, err, RFM_ERRLEN);
        if (want < 0) {
            if (*st != RFM_EPARSE)
                fail_msg("record %zu: the reference finds it malformed, the reader %s", count,
                         *st == RFM_OK ? "does not" : err);
            break;
        }
        if (*st != RFM_OK)
            fail_msg("record %zu: %s; the reference reads %zu fields from line %llu (separator %d)",
                     count, err, ref.nf, (unsigned long long)ref.line, d->sep);
        if (want == 0) {
            assert_int_equal(nf, 0);
            break;
        }
        if (nf != ref.nf)
            fail_msg("record %zu (line %llu): %zu fields, the reference %zu", count,
                     (unsigned long long)ref.line, nf, ref.nf);
        assert_int_equal(csv_line(rd), ref.line);
        for (size_t i = 0; i < nf; i++) {
            if (f[i].len != ref.flen[i] || memcmp(f[i].s, ref.buf + ref.ofs[i], f[i].len) != 0)
                fail_msg("record %zu (line %llu) field %zu: '%.*s', the reference '%.*s'", count,
                         (unsigned long long)ref.line, i, (int)f[i].len, f[i].s, (int)ref.flen[i],
                         ref.buf + ref.ofs[i]);
            assert_int_equal(f[i].s[f[i].len], '\0');
            if (i > 0) /* back to back (csv.h) */
                assert_ptr_equal(f[i].s, f[i - 1].s + f[i - 1].len + 1);
            assert_int_equal(csv_column(rd, i), ref.col[i]);
        }
        count++;
    }
    free(ref.buf);
    free(ref.ofs);
    free(ref.flen);
    free(ref.col);
    return count;
}

static void test_random_against_reference(void **state)
{
    (void)state;
    static const ref_dialect dialects[] = {
        {',', 0, 1}, {';', 0, 1}, {'\t', 0, 1}, {' ', 1, 1}, {-1, 0, 0}};
    static const int set[] = {',', ';', '\t', CSV_SEP_WHITESPACE, CSV_SEP_LINES};
    enum { CAP = 64 * 1024 - 1 }; /* one memory block */
    uint8_t *in = malloc(CAP);
    assert_non_null(in);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    size_t records = 0, errors = 0, indexed = 0;
    for (int it = 0; it < 600; it++) {
        for (size_t k = 0; k < sizeof set / sizeof set[0]; k++) {
            const ref_dialect *d = &dialects[k];
            size_t n = random_input(&x, d, in, it % 25 == 0 ? CAP : 8192);
            char err1[RFM_ERRLEN] = "", err2[RFM_ERRLEN] = "";
            rfm_status st1, st2;
            csv_reader *r1, *r2;
            assert_int_equal(csv_open_mem(in, n, "rnd.csv", &r1, err1, sizeof err1), RFM_OK);
            drip *dr = calloc(1, sizeof *dr);
            assert_non_null(dr);
            *dr = (drip){in, n, 0, it % 2 ? 40 : 3000, x | 1};
            assert_int_equal(
                csv_open_source(drip_read, free, dr, "rnd.csv", &r2, err2, sizeof err2), RFM_OK);
            assert_true(csv_set_separator(r1, set[k]));
            if (it % 3 == 0) { /* the reader thread starts, indexing for ',' */
                const uint8_t *pk;
                size_t pn;
                assert_int_equal(csv_peek(r2, &pk, &pn, err2, sizeof err2), RFM_OK);
            }
            assert_true(csv_set_separator(r2, set[k]));
            size_t c1 = compare_with_ref(r1, d, in, n, &st1, err1);
            size_t c2 = compare_with_ref(r2, d, in, n, &st2, err2);
            assert_int_equal(c1, c2);
            assert_int_equal(st1, st2);
            assert_string_equal(err1, err2); /* the same message, wherever the blocks end */
            records += c1;
            indexed += csv_indexed(r2);
            assert_int_equal(csv_indexed(r1), 0); /* memory: no reader thread */
            errors += st1 != RFM_OK;
            csv_close(r1);
            csv_close(r2);
        }
    }
    printf("    %zu records agreed (%zu of the threaded reader's from its line index); %zu "
           "inputs malformed, with the same error\n",
           records, indexed, errors);
    assert_true(records > 20000 && errors > 300); /* both kinds were exercised */
    assert_true(indexed > 1000);
    free(in);
}

/* The reader thread's line index (csv.c index_block) over 1 MiB blocks of
 * a file, plain and gzip: every kind of line around it, against the
 * reference. Plain lines of 1 to 12 fields (CR LF or LF, some over 64
 * bytes), blank lines, plain-looking lines inside quoted fields, quotes
 * inside unquoted text, tabs and other control bytes, lines of 3,000
 * fields (more than the reader's first field array) and of 65,400 to
 * 65,600 bytes (around the index's 16-bit offsets), a run of 300,000
 * two-byte lines (more entries than a block's index holds), and a last
 * line without its LF. Then the dialect set only after the thread has
 * indexed its first blocks for ',' (as txn.c sniffs it): those blocks'
 * entries must not be used for ';'. */
static size_t index_input(char *out, size_t cap, uint64_t *x)
{
    size_t n = 0;
    for (int i = 0; n + 70000 < cap; i++) {
        unsigned kind = (unsigned)(rnd(x) % 1000);
        if (i == 20000) { /* the run of short lines */
            for (int k = 0; k < 300000 && n + 3 < cap; k++)
                n += (size_t)sprintf(out + n, "%c\n", 'a' + k % 3);
            continue;
        }
        if (kind < 700) { /* plain */
            int nf = 1 + (int)(rnd(x) % 12);
            for (int f = 0; f < nf; f++) {
                int len = (int)(rnd(x) % (rnd(x) % 4 == 0 ? 60 : 12));
                for (int k = 0; k < len; k++)
                    out[n++] = (char)("ab;c1.2 -x"[rnd(x) % 10]);
                if (f + 1 < nf)
                    out[n++] = ',';
            }
        } else if (kind < 750) { /* blank */
        } else if (kind < 820) { /* quoted, with plain lines inside */
            n += (size_t)sprintf(out + n, "q,\"x\ny,z;w\n\nv,u\",t");
        } else if (kind < 870) { /* a quote inside unquoted text */
            n += (size_t)sprintf(out + n, "12\" PLATE,%d", i);
        } else if (kind < 920) { /* control bytes */
            n += (size_t)sprintf(out + n, "a\tb,c%cd", rnd(x) % 2 ? '\v' : '\t');
        } else if (kind < 922) { /* many fields */
            for (int f = 0; f < 3000; f++)
                n += (size_t)sprintf(out + n, f ? ",%d" : "%d", f % 7);
        } else if (kind < 923) { /* around 64 KiB */
            size_t len = 65400 + (size_t)(rnd(x) % 200);
            for (size_t k = 0; k < len; k++)
                out[n++] = k % 1000 == 999 ? ',' : 'y';
        } else { /* CR alone ends a record too */
            n += (size_t)sprintf(out + n, "r,s\rt,u");
        }
        if (rnd(x) % 3 == 0)
            out[n++] = '\r';
        out[n++] = '\n';
    }
    n += (size_t)sprintf(out + n, "last,line");
    return n;
}

static void test_line_index_against_reference(void **state)
{
    (void)state;
    size_t cap = 7u << 20;
    char *in = malloc(cap), *gz = malloc(cap);
    assert_true(in && gz);
    uint64_t x = 0x243f6a8885a308d3ULL;
    size_t n = index_input(in, cap, &x), gzn = gzip_mem(in, n, gz, cap);
    static const ref_dialect comma = {',', 0, 1}, semi = {';', 0, 1};
    for (int run = 0; run < 4; run++) {
        char path[64], err[RFM_ERRLEN] = "";
        int zip = run & 1, late = run >> 1;
        if (zip)
            write_temp(path, ".csv.gz", gz, gzn);
        else
            write_temp(path, ".csv", in, n);
        csv_reader *r;
        assert_int_equal(csv_open(path, &r, err, sizeof err), RFM_OK);
        if (late) { /* the thread starts (indexing for ','), then ';' */
            const uint8_t *pk;
            size_t pn;
            assert_int_equal(csv_peek(r, &pk, &pn, err, sizeof err), RFM_OK);
            assert_true(csv_set_separator(r, ';'));
        }
        rfm_status st;
        size_t count = compare_with_ref(r, late ? &semi : &comma, (const uint8_t *)in, n, &st, err);
        if (st != RFM_OK)
            fail_msg("%s", err);
        printf("    %s, %s: %zu records, %llu from the line index\n", zip ? "gzip" : "plain",
               late ? "';' set after the start" : "','", count, (unsigned long long)csv_indexed(r));
        assert_true(count > 100000);
        assert_true(csv_indexed(r) > count / 4);
        csv_close(r);
        remove(path);
    }
    free(in);
    free(gz);
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
        cmocka_unit_test(test_gzip_members_and_damage),
        cmocka_unit_test(test_open_missing),
        cmocka_unit_test(test_pipe_widened),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_line_index_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
