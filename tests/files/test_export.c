/* test_export.c - core/files/export.c and parquet.c: a table of awkward
 * values (nulls, NaN, quotes, commas, line breaks, UTF-8, int64 extremes,
 * tiny and huge doubles) over several row groups, written as CSV and as
 * Parquet; DuckDB reads the Parquet file back (integration/parquet_csv.mjs)
 * and must print exactly the CSV. Also: the format by the name's ending,
 * and no file at all after an abort; rows formatted in parts and spliced
 * give the file one writer gives; the file is on the disk under its name
 * before export_commit returns. */
#include "testutil.h"

#include <unistd.h>
#include <zlib.h>

#include "export.h"
#include "syncwrap.h"

static const parquet_column COLS[] = {
    {"id", PARQUET_STRING, 0},    /* unique: PLAIN */
    {"label", PARQUET_STRING, 1}, /* few values: dictionary */
    {"count", PARQUET_INT64, 1},  /* nulls, extremes */
    {"x", PARQUET_DOUBLE, 1},     /* unique-ish doubles, NaN as null */
    {"band", PARQUET_DOUBLE, 0},  /* few values: dictionary */
};
#define NC (sizeof COLS / sizeof *COLS)

static const char *const LABELS[] = {"plain",      "with, comma", "with \"quote\"",
                                     "two\nlines", "Zürich €",    ""};

static void make_row(size_t i, char *id, parquet_value *v)
{
    memset(v, 0, NC * sizeof *v);
    snprintf(id, 32, "C%07zu", i);
    v[0].s = id, v[0].len = strlen(id);
    v[1].s = LABELS[i % 6], v[1].len = strlen(LABELS[i % 6]), v[1].is_null = i % 11 == 3;
    static const int64_t EXTREMES[] = {INT64_MIN, INT64_MAX, 0, -1};
    v[2].i = i % 13 < 4 ? EXTREMES[i % 13] : (int64_t)(i * 7919);
    v[2].is_null = i % 17 == 5;
    double xs[] = {0.1, 1e300, 5e-324, NAN, 1.0 / 3.0, 2058.17, (double)i * 1.25e-7};
    v[3].d = xs[i % 7];
    v[4].d = (double)(i % 5) * 0.5;
}

static void write_table(const char *path, size_t n)
{
    char err[RFM_ERRLEN], id[32];
    export_writer *w;
    if (export_open(path, COLS, NC, &w, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
    parquet_value v[NC];
    for (size_t i = 0; i < n; i++) {
        make_row(i, id, v);
        if (export_row(w, v, err, sizeof err) != RFM_OK)
            fail_msg("%s", err);
    }
    if (export_commit(w, err, sizeof err) != RFM_OK)
        fail_msg("%s", err);
}

static void test_parquet_read_back_by_duckdb(void **state)
{
    (void)state;
    char dir[] = "/tmp/rfmtest_export_XXXXXX", csv[64], pq[64], cmd[512];
    assert_non_null(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/t.csv", dir);
    snprintf(pq, sizeof pq, "%s/t.parquet", dir);
    size_t n = 150001; /* three row groups of 65536, the last one short */
    write_table(csv, n);
    write_table(pq, n);
    snprintf(cmd, sizeof cmd,
             "node integration/parquet_csv.mjs %s > %s/back.csv && cmp %s/back.csv %s", pq, dir,
             dir, csv);
    int rc = system(cmd);
    /* The CSV itself: the header and awkward fields quoted as RFC 4180 wants. */
    FILE *f = fopen(csv, "r");
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "id,label,count,x,band\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "C0000000,plain,-9223372036854775808,0.1,0\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "C0000001,\"with, comma\",9223372036854775807,1e+300,0.5\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(rc, 0);
}

static void test_format_of_name(void **state)
{
    (void)state;
    char err[RFM_ERRLEN];
    export_format f;
    assert_int_equal(export_format_of("a.csv", &f, err, sizeof err), RFM_OK);
    assert_int_equal(f, EXPORT_CSV);
    assert_int_equal(export_format_of("a.csv.gz", &f, err, sizeof err), RFM_OK);
    assert_int_equal(f, EXPORT_CSV_GZ);
    assert_int_equal(export_format_of("dir.x/a.jsonl", &f, err, sizeof err), RFM_OK);
    assert_int_equal(f, EXPORT_JSONL);
    assert_int_equal(export_format_of("a.parquet", &f, err, sizeof err), RFM_OK);
    assert_int_equal(f, EXPORT_PARQUET);
    assert_int_equal(export_format_of("a.gz", &f, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "a.gz: unknown format"));
    assert_int_equal(export_format_of(".csv", &f, err, sizeof err), RFM_EINVAL);
}

/* An aborted export leaves neither the file nor its temporary. */
static void test_abort_leaves_nothing(void **state)
{
    (void)state;
    char dir[] = "/tmp/rfmtest_export_XXXXXX", path[64], err[RFM_ERRLEN], id[32], cmd[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.parquet", dir);
    export_writer *w;
    assert_int_equal(export_open(path, COLS, NC, &w, err, sizeof err), RFM_OK);
    parquet_value v[NC];
    make_row(1, id, v);
    assert_int_equal(export_row(w, v, err, sizeof err), RFM_OK);
    v[0].is_null = 1; /* id is REQUIRED */
    assert_int_equal(export_row(w, v, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "'id'"));
    export_abort(w);
    snprintf(cmd, sizeof cmd, "[ -z \"$(ls -A %s)\" ]", dir);
    assert_int_equal(system(cmd), 0);
    rmdir(dir);
}

/* A committed export survives a crash: the temporary synced before the
 * rename to the file's name, the folder after it. */
static void test_commit_is_durable(void **state)
{
    (void)state;
    char dir[] = "/tmp/rfmtest_export_XXXXXX", path[64], cmd[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.csv", dir);
    sync_events_clear();
    write_table(path, 100);
    int r = sync_event_find('r', NULL, 0);
    assert_true(r >= 0);
    int k = sync_event_find('s', sync_events[r].path, 0); /* the temporary */
    if (k < 0 || k > r)
        fail_msg("%s not synced before the rename", sync_events[r].path);
    if (sync_event_find('s', dir, r) < 0)
        fail_msg("%s not synced after the rename", dir);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* A stream (export_open_sink) gets exactly the bytes of the file, for CSV
 * and JSON Lines, in pieces of at most 1 MiB, each flush handing over what
 * was buffered; Parquet and gzip are refused; a sink's error stops the
 * export with its status. */
typedef struct {
    char *buf;
    size_t len, cap, pieces, biggest;
    int fail_after; /* pieces accepted before failing; -1: never */
} sink_buf;

static rfm_status take(void *user, const char *p, size_t n, char *err, size_t errlen)
{
    sink_buf *b = user;
    if (b->fail_after >= 0 && (int)b->pieces >= b->fail_after)
        return rfm_fail(err, errlen, RFM_EIO, "client gone");
    if (b->len + n > b->cap) {
        b->cap = 2 * (b->len + n);
        b->buf = realloc(b->buf, b->cap);
        assert_non_null(b->buf);
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n, b->pieces++;
    b->biggest = n > b->biggest ? n : b->biggest;
    return RFM_OK;
}

static void test_sink_equals_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/rfmtest_export_XXXXXX", path[64], err[RFM_ERRLEN], id[32];
    assert_non_null(mkdtemp(dir));
    static const char *const ENDS[] = {"csv", "jsonl"};
    for (int f = 0; f < 2; f++) {
        enum { N = 30000 };
        snprintf(path, sizeof path, "%s/t.%s", dir, ENDS[f]);
        write_table(path, N);
        FILE *in = fopen(path, "rb");
        assert_non_null(in);
        static char want[8 << 20];
        size_t wlen = fread(want, 1, sizeof want, in);
        fclose(in);
        unlink(path);
        assert_true(wlen > (1u << 20)); /* more than one buffer */
        sink_buf b = {NULL, 0, 0, 0, 0, -1};
        export_writer *w;
        assert_int_equal(export_open_sink(f ? EXPORT_JSONL : EXPORT_CSV, COLS, NC, take, &b, &w,
                                          err, sizeof err),
                         RFM_OK);
        parquet_value v[NC];
        size_t flushed = 0;
        for (size_t i = 0; i < N; i++) {
            make_row(i, id, v);
            assert_int_equal(export_row(w, v, err, sizeof err), RFM_OK);
            if (i == 10) { /* a flush hands over every byte so far */
                assert_int_equal(export_flush(w, err, sizeof err), RFM_OK);
                flushed = b.len;
                assert_true(flushed > 0 && memchr(b.buf, '\n', flushed));
                assert_int_equal(b.buf[flushed - 1], '\n');
            }
        }
        assert_int_equal(export_commit(w, err, sizeof err), RFM_OK);
        assert_int_equal(b.len, wlen);
        assert_memory_equal(b.buf, want, wlen);
        assert_true(b.pieces >= 3 && b.biggest <= (1u << 20));
        free(b.buf);
    }
    rmdir(dir);
    export_writer *w = NULL;
    sink_buf b = {NULL, 0, 0, 0, 0, -1};
    assert_int_equal(export_open_sink(EXPORT_PARQUET, COLS, NC, take, &b, &w, err, sizeof err),
                     RFM_EINVAL);
    assert_int_equal(export_open_sink(EXPORT_CSV_GZ, COLS, NC, take, &b, &w, err, sizeof err),
                     RFM_EINVAL);
    assert_null(w);
    /* The sink fails on its second piece: the rows stop with its error. */
    b.fail_after = 1;
    assert_int_equal(export_open_sink(EXPORT_CSV, COLS, NC, take, &b, &w, err, sizeof err), RFM_OK);
    assert_int_equal(export_flush(w, err, sizeof err), RFM_OK); /* the header */
    parquet_value v[NC];
    make_row(1, id, v);
    rfm_status st = RFM_OK;
    for (size_t i = 0; i < 100 && st == RFM_OK; i++)
        if ((st = export_row(w, v, err, sizeof err)) == RFM_OK)
            st = export_flush(w, err, sizeof err);
    assert_int_equal(st, RFM_EIO);
    assert_non_null(strstr(err, "client gone"));
    export_abort(w);
    free(b.buf);
}

/* The whole text of path (gunzipped: gzread reads plain files as they are). */
static char *slurp_text(const char *path, size_t *len)
{
    gzFile g = gzopen(path, "rb");
    assert_non_null(g);
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    int got;
    while (buf && (got = gzread(g, buf + n, (unsigned)(cap - n))) > 0)
        if ((n += (size_t)got) == cap)
            buf = realloc(buf, cap *= 2);
    gzclose(g);
    assert_non_null(buf);
    *len = n;
    return buf;
}

/* Rows written by one writer, and the same rows with most of them
 * formatted in three parts (one of them left empty, one grown past the
 * writer's 1 MiB buffer) spliced in order between rows written directly:
 * the same text in every text format. Parquet is not written in parts. */
static void test_parts_equal_one_writer(void **state)
{
    (void)state;
    char dir[] = "/tmp/rfmtest_export_XXXXXX", path[64], err[RFM_ERRLEN], id[32];
    assert_non_null(mkdtemp(dir));
    static const char *const ENDS[] = {"csv", "csv.gz", "jsonl"};
    enum { N = 40000 };
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/one.%s", dir, ENDS[f]);
        write_table(path, N);
        size_t wlen, glen;
        char *want = slurp_text(path, &wlen);
        unlink(path);
        snprintf(path, sizeof path, "%s/parts.%s", dir, ENDS[f]);
        export_writer *w, *part[3];
        assert_int_equal(export_open(path, COLS, NC, &w, err, sizeof err), RFM_OK);
        for (int k = 0; k < 3; k++)
            assert_int_equal(export_open_part(w, &part[k], err, sizeof err), RFM_OK);
        parquet_value v[NC];
        size_t i = 0;
        for (; i < 10; i++) /* some rows before any part */
            make_row(i, id, v), assert_int_equal(export_row(w, v, err, sizeof err), RFM_OK);
        /* part 0: 25,000 rows (over 1 MiB of text), part 1: none, part 2: the rest but one */
        for (; i < 25010; i++)
            make_row(i, id, v), assert_int_equal(export_row(part[0], v, err, sizeof err), RFM_OK);
        for (; i < N - 1; i++)
            make_row(i, id, v), assert_int_equal(export_row(part[2], v, err, sizeof err), RFM_OK);
        for (int k = 0; k < 3; k++)
            assert_int_equal(export_splice(w, part[k], err, sizeof err), RFM_OK);
        assert_int_equal(export_splice(w, part[0], err, sizeof err), RFM_OK); /* emptied */
        make_row(i, id, v), assert_int_equal(export_row(w, v, err, sizeof err), RFM_OK);
        for (int k = 0; k < 3; k++)
            export_part_free(part[k]);
        assert_int_equal(export_commit(w, err, sizeof err), RFM_OK);
        char *got = slurp_text(path, &glen);
        unlink(path);
        assert_true(wlen > (1u << 20));
        assert_int_equal(glen, wlen);
        assert_memory_equal(got, want, wlen);
        free(got), free(want);
    }
    snprintf(path, sizeof path, "%s/t.parquet", dir);
    export_writer *w, *part = NULL;
    assert_int_equal(export_open(path, COLS, NC, &w, err, sizeof err), RFM_OK);
    assert_int_equal(export_open_part(w, &part, err, sizeof err), RFM_EINVAL);
    assert_null(part);
    export_abort(w);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parquet_read_back_by_duckdb),
        cmocka_unit_test(test_format_of_name),
        cmocka_unit_test(test_abort_leaves_nothing),
        cmocka_unit_test(test_sink_equals_file),
        cmocka_unit_test(test_parts_equal_one_writer),
        cmocka_unit_test(test_commit_is_durable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
