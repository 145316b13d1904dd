/* csv.c - streaming RFC 4180 reader over plain or gzip input.
 *
 * Bytes flow: a byte source (a file by fread, a file descriptor such as
 * standard input, or a caller's producer such as a database stream; 256 KiB
 * at a time, on the reader thread) -> sha256 of the raw bytes -> inflate
 * when the input starts with the gzip magic (ISA-L's igzip: about 2.7x
 * zlib's speed on the bundled export, which made the read inflate-bound;
 * each member's CRC-32 and length checked, members concatenated) -> the
 * record parser, which copies one record at a time into `rec` (fields
 * NUL-terminated).
 *
 * The parser has two paths. The fast one (fast_record) takes a record that
 * lies whole in the current block: it copies 16 bytes at a time (8 without
 * SSE2) into `rec` while finding the next byte that matters (separator,
 * quote, CR, LF, NUL) in the same chunk, with no refill, no bounds check per
 * byte and no growth of the buffers. Before it, with SSE2 and a separator,
 * fast_line takes a record that is one plain line (no quote or control
 * byte) 64 bytes at a time as bit masks of its separators and special
 * bytes: the common export line, with no branch that depends on a field's
 * length (the 16-byte scan mispredicts on every field crossing a chunk:
 * the bundled read's parse thread 21 % fewer instructions, half the
 * mispredicted branches). A record that reaches the end of the block,
 * needs more room, or is malformed is parsed again from its start by the
 * byte-by-byte path (which also words every error), so all give the same
 * records and the same messages.
 *
 * With the reader thread (a file or a descriptor), the finding of fields
 * is split between the threads: the thread indexes each block's plain
 * lines after inflating it (index_block: where each line starts and each
 * of its fields ends), and the parser, finding an entry where it stands,
 * copies the line and cuts it at those ends (indexed_record) before trying
 * the paths above. The bundled export's read was bound by the parser
 * (busy throughout) while the inflating thread idled a third of the time;
 * with the index both are about equally busy (read 8 % faster in paired
 * runs). The first block is short (FIRST_CHUNK), so that parsing starts
 * after 64 KiB rather than 1 MiB.
 */
#include "csv.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <isa-l/igzip_lib.h>

#include "sha256.h"

#if defined(__SSE2__) && !defined(CSV_PORTABLE_SCAN)
#include <emmintrin.h>
#define CSV_INDEX 1 /* the producer indexes lines (index_block) */
#else
#define CSV_INDEX 0
#endif

#define RAW_CHUNK (256u * 1024u)
#define DAT_CHUNK (1024u * 1024u)
/* Memory input (tests, the fuzzer) reads and inflates in small blocks: a
 * reader then costs 128 KiB instead of 4.25 MiB, and records crossing
 * block boundaries are exercised by small gzip inputs. */
#define MEM_CHUNK (64u * 1024u)
#define REC_MAX (16u * 1024u * 1024u) /* longest record accepted */
#define FIELDS_MAX 4096u              /* most fields in a record */

#define NBUF 4                    /* decompressed blocks in flight between the two threads */
#define FIRST_CHUNK (64u * 1024u) /* the reader thread's first block */
/* Room in a block's line index, in 16-bit words: a byte for each byte of
 * the block (a line of 8 fields takes 12 words). */
#define IDX_CAP(blkcap) ((blkcap) / 2)

/* Input layer state, touched only by the producer (the reader thread for
 * a byte source, the caller's thread for memory input). */
typedef struct {
    csv_read_fn read; /* NULL for memory input */
    csv_close_fn close;
    void *ctx;
    const uint8_t *mem;
    size_t memlen, mempos;
    int checked, gz, zend, src_eof;
    struct inflate_state *zs; /* gzip input: igzip's state (about 40 KiB) */
    uint8_t *raw;
    size_t rawcap; /* <= blkcap, so the first raw read fits a block */
    sha256_ctx sha;
    int unhashed; /* csv_skip_sha256 */
} source;

struct csv_reader {
    char *name;
    source src;
    /* Decompressed blocks: the producer fills block produced % NBUF while
     * produced - consumed < NBUF; the parser owns block consumed % NBUF. */
    uint8_t *blk[NBUF]; /* only blk[0] without the thread */
    size_t blklen[NBUF], blkcap;
    /* The producer's index of each block's plain lines (index_block),
     * idxlen words, made for the separator idxsep (-1: none); isep is the
     * separator to index with (under mu once the thread runs). */
    uint16_t *idx[NBUF];
    size_t idxlen[NBUF];
    int idxsep[NBUF], isep;
    uint64_t produced, consumed;
    int threaded, done, stop, thread_started;
    rfm_status src_st; /* producer's final status */
    char src_err[RFM_ERRLEN];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t bytes; /* raw bytes read (atomic: read by the parser) */
    uint8_t digest[32];
    /* Parser state. */
    const uint8_t *dat; /* block being parsed */
    size_t datlen, datpos;
    uint64_t datbase; /* decompressed offset of dat[0] */
    int started, have_blk;
    /* The current block's index (the parser's cursor ip up to ipend; none
     * when it was made for another separator than the dialect's). */
    const uint16_t *ip, *ipend;
    /* The record's columns: fcol, or, for one from the index (colline not
     * NULL), col0 plus a field's offset from colline. */
    const char *colline;
    uint64_t col0;
    int partial, incomplete; /* csv_open_view: a piece of a longer input */
    int finalised;           /* the digest is taken */
    char *rec;
    size_t reccap;
    csv_field *fields;
    size_t *fofs;         /* field offsets in rec while the record is built */
    uint64_t *fcol;       /* field start columns */
    size_t nfields, fcap; /* fields in the record; room in fields, fofs and fcol */
    uint64_t line;        /* current physical line */
    uint64_t linestart;   /* decompressed offset of the current line's start */
    uint64_t recline, records, indexed, size;
    uint64_t recstart; /* decompressed offset of the last record's start */
    /* Dialect (csv_set_separator). */
    unsigned char special[256]; /* bytes that end a span of unquoted text */
    int sep;                    /* separator byte; -1 in line mode */
    int ws, quotes;             /* whitespace runs separate; quotes are special */
};

/* Next raw bytes of the file or memory, hashed on the way. */
static rfm_status read_raw(csv_reader *r, uint8_t *buf, size_t cap, size_t *got, char *err,
                           size_t errlen)
{
    source *s = &r->src;
    size_t n;
    if (s->read) {
        rfm_status st = s->read(s->ctx, buf, cap, &n, err, errlen);
        if (st != RFM_OK)
            return st;
    } else {
        n = s->memlen - s->mempos < cap ? s->memlen - s->mempos : cap;
        memcpy(buf, s->mem + s->mempos, n);
        s->mempos += n;
    }
    if (n == 0)
        s->src_eof = 1;
    if (!s->unhashed)
        sha256_update(&s->sha, buf, n);
    __atomic_add_fetch(&r->bytes, n, __ATOMIC_RELAXED);
    *got = n;
    return RFM_OK;
}

/* Fill out with up to cap decompressed bytes; *got = 0 at the end. A
 * truncated gzip stream is RFM_EPARSE with an empty message (the parser
 * adds the line it had reached). */
static rfm_status produce(csv_reader *r, uint8_t *out, size_t cap, size_t *got, char *err,
                          size_t errlen)
{
    source *s = &r->src;
    rfm_status st;
    *got = 0;
    if (!s->checked) { /* gzip is known by its magic bytes, not by the name */
        size_t n;
        if ((st = read_raw(r, s->raw, s->rawcap < cap ? s->rawcap : cap, &n, err, errlen)) !=
            RFM_OK)
            return st;
        s->checked = 1;
        if (n >= 2 && s->raw[0] == 0x1f && s->raw[1] == 0x8b) {
            s->gz = 1;
            if (!(s->zs = malloc(sizeof *s->zs)))
                return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", r->name);
            isal_inflate_init(s->zs);
            s->zs->crc_flag = ISAL_GZIP; /* header, CRC-32 and length checked */
            s->zs->next_in = s->raw;
            s->zs->avail_in = (uint32_t)n;
        } else {
            memcpy(out, s->raw, n); /* n <= cap */
            *got = n;
            return RFM_OK;
        }
    }
    if (!s->gz) {
        if (s->src_eof)
            return RFM_OK;
        return read_raw(r, out, cap, got, err, errlen);
    }
    struct inflate_state *z = s->zs;
    while (*got == 0) {
        if (z->avail_in == 0) {
            if (s->src_eof) {
                if (!s->zend)
                    return rfm_fail(err, errlen, RFM_EPARSE, "%s", "");
                return RFM_OK;
            }
            size_t n;
            if ((st = read_raw(r, s->raw, s->rawcap, &n, err, errlen)) != RFM_OK)
                return st;
            z->next_in = s->raw;
            z->avail_in = (uint32_t)n;
            continue;
        }
        if (s->zend) { /* another gzip member follows */
            uint8_t *in = z->next_in;
            uint32_t avail = z->avail_in;
            /* Known by its first bytes even when too few follow for a header. */
            if (in[0] != 0x1f || (avail > 1 && in[1] != 0x8b))
                return rfm_fail(err, errlen, RFM_EPARSE,
                                "%s: corrupt gzip data: invalid gzip header", r->name);
            isal_inflate_reset(z);
            z->crc_flag = ISAL_GZIP;
            z->next_in = in;
            z->avail_in = avail;
            s->zend = 0;
        }
        z->next_out = out;
        z->avail_out = (uint32_t)cap;
        int zr = isal_inflate(z);
        if (zr != ISAL_DECOMP_OK)
            return rfm_fail(err, errlen, RFM_EPARSE, "%s: corrupt gzip data: %s", r->name,
                            zr == ISAL_INCORRECT_CHECKSUM ? "incorrect checksum"
                            : zr == ISAL_INVALID_WRAPPER || zr == ISAL_UNSUPPORTED_METHOD
                                ? "invalid gzip header"
                            : zr == ISAL_INVALID_LOOKBACK ? "invalid distance too far back"
                                                          : "invalid deflate data");
        if (z->block_state == ISAL_BLOCK_FINISH)
            s->zend = 1;
        *got = cap - z->avail_out;
    }
    return RFM_OK;
}

static size_t index_block(const uint8_t *d, size_t len, uint16_t *idx, size_t cap, int sep);

/* The reader thread: read, hash and inflate ahead of the parser, and
 * index each block's plain lines for it (index_block). */
static void *producer(void *arg)
{
    csv_reader *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (!r->stop && r->produced - r->consumed >= NBUF)
            pthread_cond_wait(&r->cv, &r->mu);
        int stop = r->stop, isep = r->isep;
        size_t slot = (size_t)(r->produced % NBUF);
        pthread_mutex_unlock(&r->mu);
        if (stop)
            return NULL;
        size_t got;
        /* The first block short, so that the parser starts sooner. */
        size_t cap = r->produced == 0 && r->blkcap > FIRST_CHUNK ? FIRST_CHUNK : r->blkcap;
        rfm_status st = produce(r, r->blk[slot], cap, &got, r->src_err, sizeof r->src_err);
        r->idxlen[slot] = 0;
        r->idxsep[slot] = isep;
        if (st == RFM_OK && got > 0 && isep >= 0 && r->idx[slot])
            r->idxlen[slot] =
                index_block(r->blk[slot], got, r->idx[slot], IDX_CAP(r->blkcap), isep);
        pthread_mutex_lock(&r->mu);
        if (st != RFM_OK || got == 0) {
            r->src_st = st;
            r->done = 1;
        } else {
            r->blklen[slot] = got;
            r->produced++;
        }
        pthread_cond_broadcast(&r->cv);
        int fin = r->done;
        pthread_mutex_unlock(&r->mu);
        if (fin)
            return NULL;
    }
}

/* Move the parser to the next decompressed block. *got = 0 at the end. */
static rfm_status refill(csv_reader *r, size_t *got, char *err, size_t errlen)
{
    rfm_status st = RFM_OK;
    r->datbase += r->datlen;
    r->datpos = r->datlen = 0;
    *got = 0;
    if (!r->threaded) {
        if (r->done)
            st = r->src_st;
        else
            st = produce(r, r->blk[0], r->blkcap, got, r->src_err, sizeof r->src_err);
        if (r->done) {
            /* the end again (csv_take after csv_next): the same answer */
        } else if (st != RFM_OK || *got == 0) {
            r->done = 1;
            r->src_st = st;
        } else {
            r->dat = r->blk[0];
            r->datlen = *got;
            return RFM_OK;
        }
    } else {
        pthread_mutex_lock(&r->mu);
        if (r->have_blk) {
            r->consumed++;
            r->have_blk = 0;
            pthread_cond_broadcast(&r->cv);
        }
        while (r->produced == r->consumed && !r->done)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->produced > r->consumed) {
            size_t slot = (size_t)(r->consumed % NBUF);
            r->dat = r->blk[slot];
            r->datlen = r->blklen[slot];
            r->have_blk = 1;
            r->ip = r->idx[slot];
            r->ipend = r->ip ? r->ip + r->idxlen[slot] : NULL;
            if (r->idxsep[slot] != r->isep)
                r->ip = r->ipend = NULL;
            *got = r->datlen;
            pthread_mutex_unlock(&r->mu);
            return RFM_OK;
        }
        pthread_mutex_unlock(&r->mu);
        st = r->src_st;
    }
    if (st == RFM_EPARSE && r->src_err[0] == '\0')
        return rfm_fail(err, errlen, RFM_EPARSE,
                        "%s:%llu:1: gzip data ends early (truncated file?)", r->name,
                        (unsigned long long)r->line);
    if (st != RFM_OK)
        return rfm_fail(err, errlen, st, "%s", r->src_err);
    if (!r->finalised) {
        sha256_final(&r->src.sha, r->digest);
        r->finalised = 1;
    }
    return RFM_OK;
}

static rfm_status start(csv_reader *r, char *err, size_t errlen)
{
    r->started = 1;
    if (r->src.read) {
        if (pthread_mutex_init(&r->mu, NULL) != 0 || pthread_cond_init(&r->cv, NULL) != 0)
            return rfm_fail(err, errlen, RFM_ENOMEM, "%s: cannot create a lock", r->name);
        r->threaded = 1;
#if CSV_INDEX
        for (int i = 0; i < NBUF; i++)
            if (!(r->idx[i] = malloc(IDX_CAP(r->blkcap) * sizeof *r->idx[i])))
                return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", r->name);
#endif
        if (pthread_create(&r->thread, NULL, producer, r) != 0)
            return rfm_fail(err, errlen, RFM_ENOMEM, "%s: cannot start the reader thread", r->name);
        r->thread_started = 1;
    }
    size_t got;
    rfm_status st = refill(r, &got, err, errlen);
    if (st != RFM_OK)
        return st;
    r->datbase = 0;
    /* A UTF-8 byte order mark is not part of the first column's name. */
    if (r->datlen >= 3 && r->dat[0] == 0xef && r->dat[1] == 0xbb && r->dat[2] == 0xbf) {
        r->datpos = 3;
        r->linestart = 3;
    }
    return RFM_OK;
}

static rfm_status alloc_reader(const char *name, int nblk, size_t rawcap, size_t blkcap,
                               csv_reader **out, char *err, size_t errlen)
{
    csv_reader *r = calloc(1, sizeof *r);
    if (!r)
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", name);
    r->name = strdup(name);
    r->src.raw = malloc(rawcap);
    r->src.rawcap = rawcap;
    r->blkcap = blkcap;
    int blocks_ok = 1;
    for (int i = 0; i < nblk; i++)
        blocks_ok &= (r->blk[i] = malloc(blkcap)) != NULL;
    r->reccap = 4096;
    r->rec = malloc(r->reccap);
    r->fields = malloc(64 * sizeof *r->fields);
    r->fofs = malloc(64 * sizeof *r->fofs);
    r->fcol = malloc(64 * sizeof *r->fcol);
    r->fcap = 64;
    if (!r->name || !r->src.raw || !blocks_ok || !r->rec || !r->fields || !r->fofs || !r->fcol) {
        csv_close(r);
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", name);
    }
    r->line = 1;
    csv_set_separator(r, ',');
    sha256_init(&r->src.sha);
    *out = r;
    return RFM_OK;
}

/* A byte source's context: a file or a descriptor, with the name for
 * messages. */
typedef struct {
    FILE *f;
    int fd;
    char name[256];
} file_src;

static rfm_status file_read(void *ctx, uint8_t *buf, size_t cap, size_t *got, char *err,
                            size_t errlen)
{
    file_src *fs = ctx;
    size_t n = fread(buf, 1, cap, fs->f);
    *got = n;
    if (n < cap && ferror(fs->f))
        return rfm_fail(err, errlen, RFM_EIO, "%s: read error: %s", fs->name, strerror(errno));
    return RFM_OK;
}

/* A pipe gives what its writer has written so far: read until the block is
 * full or the writer has closed, so the first block holds the gzip magic. */
static rfm_status fd_read(void *ctx, uint8_t *buf, size_t cap, size_t *got, char *err,
                          size_t errlen)
{
    file_src *fs = ctx;
    size_t n = 0;
    while (n < cap) {
        ssize_t k = read(fs->fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            *got = n;
            return rfm_fail(err, errlen, RFM_EIO, "%s: read error: %s", fs->name, strerror(errno));
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    *got = n;
    return RFM_OK;
}

static void file_close(void *ctx)
{
    file_src *fs = ctx;
    if (fs->f)
        fclose(fs->f);
    free(fs);
}

rfm_status csv_open(const char *path, csv_reader **out, char *err, size_t errlen)
{
    *out = NULL;
    file_src *fs = calloc(1, sizeof *fs);
    if (!fs)
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", path);
    snprintf(fs->name, sizeof fs->name, "%s", path);
    fs->f = fopen(path, "rb");
    if (!fs->f) {
        rfm_status st = rfm_fail(err, errlen, RFM_EIO, "%s: %s", path, strerror(errno));
        free(fs);
        return st;
    }
    rfm_status st = csv_open_source(file_read, file_close, fs, path, out, err, errlen);
    if (st != RFM_OK)
        return st;
    struct stat sb;
    if (fstat(fileno(fs->f), &sb) == 0)
        (*out)->size = (uint64_t)sb.st_size;
    return RFM_OK;
}

rfm_status csv_open_fd(int fd, const char *name, csv_reader **out, char *err, size_t errlen)
{
    *out = NULL;
    file_src *fs = calloc(1, sizeof *fs);
    if (!fs)
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", name);
    snprintf(fs->name, sizeof fs->name, "%s", name);
    fs->fd = fd;
    rfm_status st = csv_open_source(fd_read, file_close, fs, name, out, err, errlen);
    if (st != RFM_OK)
        return st;
    struct stat sb; /* a file redirected in has a size; a pipe has none */
    int known = fstat(fd, &sb) == 0;
    if (known && S_ISREG(sb.st_mode))
        (*out)->size = (uint64_t)sb.st_size;
    /* A pipe's 64 KiB buffer makes writer and reader take turns every 64
     * KiB, each turn a wake-up of the other: 10 M generated lines (880 MB)
     * through `cat` took 7.1 s here, 2.5 s with 1 MiB, which is Linux's
     * default limit for an unprivileged process (fs.pipe-max-size). At best
     * effort: a smaller limit leaves the pipe as it is. */
    if (known && S_ISFIFO(sb.st_mode))
        (void)fcntl(fd, F_SETPIPE_SZ, 1 << 20);
    return RFM_OK;
}

rfm_status csv_open_source(csv_read_fn read, csv_close_fn close, void *ctx, const char *name,
                           csv_reader **out, char *err, size_t errlen)
{
    csv_reader *r;
    *out = NULL;
    rfm_status st = alloc_reader(name, NBUF, RAW_CHUNK, DAT_CHUNK, &r, err, errlen);
    if (st != RFM_OK) {
        if (close)
            close(ctx);
        return st;
    }
    r->src.read = read;
    r->src.close = close;
    r->src.ctx = ctx;
    *out = r;
    return RFM_OK;
}

rfm_status csv_open_mem(const void *data, size_t len, const char *name, csv_reader **out, char *err,
                        size_t errlen)
{
    csv_reader *r;
    *out = NULL;
    rfm_status st = alloc_reader(name, 1, MEM_CHUNK, MEM_CHUNK, &r, err, errlen);
    if (st != RFM_OK)
        return st;
    r->src.mem = data;
    r->src.memlen = len;
    r->size = len;
    *out = r;
    return RFM_OK;
}

rfm_status csv_open_view(const void *data, size_t len, const char *name, int sep,
                         uint64_t first_line, int partial, csv_reader **out, char *err,
                         size_t errlen)
{
    csv_reader *r;
    *out = NULL;
    rfm_status st = alloc_reader(name, 0, 16, 0, &r, err, errlen);
    if (st != RFM_OK)
        return st;
    if (!csv_set_separator(r, sep)) {
        csv_close(r);
        return rfm_fail(err, errlen, RFM_EINVAL, "%s: separator %d cannot be used", name, sep);
    }
    r->dat = data;
    r->datlen = len;
    r->size = len;
    r->started = r->done = r->finalised = 1;
    r->partial = partial;
    r->line = first_line;
    *out = r;
    return RFM_OK;
}

int csv_incomplete(const csv_reader *r) { return r->incomplete; }
int csv_reads_apart(const csv_reader *r) { return r->threaded; }
uint64_t csv_offset(const csv_reader *r) { return r->recstart; }
uint64_t csv_line_next(const csv_reader *r) { return r->line; }
void csv_set_line(csv_reader *r, uint64_t line) { r->line = line; }

rfm_status csv_take(csv_reader *r, uint8_t *buf, size_t cap, size_t *got, char *err, size_t errlen)
{
    rfm_status st;
    *got = 0;
    if (!r->started && (st = start(r, err, errlen)) != RFM_OK)
        return st;
    while (*got < cap) {
        if (r->datpos == r->datlen) {
            size_t n;
            if ((st = refill(r, &n, err, errlen)) != RFM_OK)
                return st;
            if (n == 0)
                break;
        }
        size_t m = r->datlen - r->datpos < cap - *got ? r->datlen - r->datpos : cap - *got;
        memcpy(buf + *got, r->dat + r->datpos, m);
        r->datpos += m;
        *got += m;
    }
    return RFM_OK;
}

int csv_set_separator(csv_reader *r, int sep)
{
    if (sep != CSV_SEP_WHITESPACE && sep != CSV_SEP_LINES &&
        (sep <= 0 || sep > 255 || sep == '"' || sep == '\r' || sep == '\n'))
        return 0;
    memset(r->special, 0, sizeof r->special);
    r->special['\r'] = r->special['\n'] = r->special[0] = 1;
    r->ws = sep == CSV_SEP_WHITESPACE;
    r->quotes = sep != CSV_SEP_LINES;
    r->sep = sep == CSV_SEP_LINES ? -1 : r->ws ? ' ' : sep;
    if (r->quotes)
        r->special['"'] = 1;
    if (r->sep >= 0)
        r->special[r->sep] = 1;
    if (r->ws)
        r->special['\t'] = 1;
    /* Lines are indexed for a separated dialect (not whitespace runs, not
     * line mode). The current block's index, kept only when made for the
     * old r->isep, is dropped when that changes. */
    int isep = r->ws ? -1 : r->sep;
    if (isep != r->isep)
        r->ip = r->ipend = NULL;
    if (r->thread_started)
        pthread_mutex_lock(&r->mu);
    r->isep = isep;
    if (r->thread_started)
        pthread_mutex_unlock(&r->mu);
    return 1;
}

void csv_close(csv_reader *r)
{
    if (!r)
        return;
    if (r->thread_started) {
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
    }
    if (r->threaded) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
    }
    if (r->src.close)
        r->src.close(r->src.ctx);
    free(r->src.zs);
    free(r->name);
    free(r->src.raw);
    for (int i = 0; i < NBUF; i++) {
        free(r->blk[i]);
        free(r->idx[i]);
    }
    free(r->rec);
    free(r->fields);
    free(r->fofs);
    free(r->fcol);
    free(r);
}

static rfm_status rec_reserve(csv_reader *r, size_t need, char *err, size_t errlen)
{
    if (need <= r->reccap)
        return RFM_OK;
    if (need > REC_MAX)
        return rfm_fail(err, errlen, RFM_EPARSE,
                        "%s:%llu:1: record longer than %u bytes (unterminated quote?)", r->name,
                        (unsigned long long)r->recline, REC_MAX);
    size_t cap = r->reccap;
    while (cap < need)
        cap *= 2;
    char *n = realloc(r->rec, cap);
    if (!n)
        return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", r->name);
    r->rec = n;
    r->reccap = cap;
    return RFM_OK;
}

static rfm_status push_field(csv_reader *r, size_t ofs, uint64_t col, char *err, size_t errlen)
{
    size_t n = r->nfields;
    if (n >= 64 && (n & (n - 1)) == 0) { /* grow at powers of two past 64 */
        if (n >= FIELDS_MAX)
            return rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu:%llu: more than %u fields", r->name,
                            (unsigned long long)r->recline, (unsigned long long)col, FIELDS_MAX);
        csv_field *f = realloc(r->fields, 2 * n * sizeof *f);
        if (f)
            r->fields = f;
        size_t *o = realloc(r->fofs, 2 * n * sizeof *o);
        if (o)
            r->fofs = o;
        uint64_t *c = realloc(r->fcol, 2 * n * sizeof *c);
        if (c)
            r->fcol = c;
        if (!f || !o || !c)
            return rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", r->name);
        r->fcap = 2 * n;
    }
    r->fofs[n] = ofs;
    r->fcol[n] = col;
    r->nfields = n + 1;
    return RFM_OK;
}

#define NEED(k)                                                                                    \
    do {                                                                                           \
        if ((st = rec_reserve(r, len + (k), err, errlen)) != RFM_OK)                               \
            return st;                                                                             \
    } while (0)

/* Peek at the next byte, refilling as needed; -1 at end of input. */
static inline int peekc(csv_reader *r, rfm_status *st, char *err, size_t errlen)
{
    if (r->datpos < r->datlen)
        return r->dat[r->datpos];
    size_t got;
    *st = refill(r, &got, err, errlen);
    if (*st != RFM_OK || got == 0)
        return -1;
    return r->dat[r->datpos];
}

/* Whitespace mode: skip blanks; returns the next byte as peekc does. */
static int skip_blanks(csv_reader *r, rfm_status *st, char *err, size_t errlen)
{
    int c;
    while ((c = peekc(r, st, err, errlen)) == ' ' || c == '\t')
        r->datpos++;
    return c;
}

rfm_status csv_peek(csv_reader *r, const uint8_t **p, size_t *n, char *err, size_t errlen)
{
    rfm_status st;
    *p = NULL;
    *n = 0;
    if (!r->started && (st = start(r, err, errlen)) != RFM_OK)
        return st;
    if (!r->dat) /* empty input */
        return RFM_OK;
    *p = r->dat + r->datpos;
    *n = r->datlen - r->datpos;
    return RFM_OK;
}

/* Scanning for the bytes that matter, SCAN_W bytes at a time: scan()
 * copies the chunk at q to o (the caller guarantees room for it) and
 * returns a mask of its bytes equal to a or b or at most 13 (CR, LF, NUL and
 * tab, plus a few other control bytes the caller passes over);
 * SCAN_FIRST(m) is the index of the first such byte. SSE2 is part of
 * x86-64; elsewhere (or with -DCSV_PORTABLE_SCAN) the same is done in a
 * 64-bit word with exact per-byte tests (no carry between bytes). */
#if defined(__SSE2__) && !defined(CSV_PORTABLE_SCAN)
#define SCAN_W 16
typedef unsigned scan_mask;
#define SCAN_FIRST(m) ((size_t)__builtin_ctz(m))
typedef struct {
    __m128i a, b, ctl;
} scan_set;
static inline scan_set scan_set_of(uint8_t a, uint8_t b)
{
    return (scan_set){_mm_set1_epi8((char)a), _mm_set1_epi8((char)b), _mm_set1_epi8(13)};
}
static inline scan_mask scan(const uint8_t *q, char *o, const scan_set *s)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
    _mm_storeu_si128((__m128i *)(void *)o, v);
    __m128i m = _mm_or_si128(_mm_cmpeq_epi8(v, s->a), _mm_cmpeq_epi8(v, s->b));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(_mm_min_epu8(v, s->ctl), v));
    return (scan_mask)_mm_movemask_epi8(m);
}
#else
#define SCAN_W 8
typedef uint64_t scan_mask;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define SCAN_FIRST(m) ((size_t)__builtin_clzll(m) >> 3)
#else
#define SCAN_FIRST(m) ((size_t)__builtin_ctzll(m) >> 3)
#endif
#define ONES UINT64_C(0x0101010101010101)
#define LOW7 UINT64_C(0x7f7f7f7f7f7f7f7f)
typedef struct {
    uint64_t a, b;
} scan_set;
static inline scan_set scan_set_of(uint8_t a, uint8_t b) { return (scan_set){a * ONES, b * ONES}; }
/* 0x80 in each byte of x that is 0 (exact: the sum stays within each byte). */
static inline uint64_t zero_bytes(uint64_t x) { return ~(((x & LOW7) + LOW7) | x) & ~LOW7; }
static inline scan_mask scan(const uint8_t *q, char *o, const scan_set *s)
{
    uint64_t w;
    memcpy(&w, q, 8);
    memcpy(o, &w, 8);
    uint64_t le13 = ~(((w & LOW7) + (0x7f - 13) * ONES) | w) & ~LOW7; /* bytes <= 13 */
    return zero_bytes(w ^ s->a) | zero_bytes(w ^ s->b) | le13;
}
#endif

/* The fast path of csv_next (see the top of the file): the next record,
 * when it lies whole in the current block and is well formed. Returns 1
 * with r->fields, r->nfields and *len (bytes of rec used) set and the
 * position moved past the record; 0, having changed nothing, when the
 * byte-by-byte path must parse it. rec is filled no further than the bytes
 * read (a separator or line end becomes the NUL, quotes are dropped), so
 * reading at most reccap - 2 bytes keeps every record within what
 * rec_reserve accepts, and the chunk stores within rec. ws is a constant in
 * each of the two instances below. */
static inline __attribute__((always_inline)) int fast_record_in(csv_reader *r, size_t *len,
                                                                const int ws)
{
    const uint8_t *dat = r->dat, *q = dat + r->datpos;
    /* lim stops one byte short of the data, so *lim may be read. */
    size_t avail = r->datlen - r->datpos - 1, room = r->reccap - 2;
    const uint8_t *lim = q + (avail < room ? avail : room);
    char *o = r->rec;
    csv_field *f = r->fields, *fend = r->fields + r->fcap;
    uint64_t *fc = r->fcol;
    uint64_t line = r->line;
    /* A field's column is its offset in the block plus colofs. */
    uint64_t colofs = r->datbase + 1 - r->linestart;
    const int sep = r->sep, qc = r->quotes ? '"' : 256;
    /* Outside quotes: the separator and the quote (in line mode neither:
     * LF again); tab, CR, LF and NUL are among the bytes <= 13. Inside
     * quotes: the quote, LF and NUL. */
    const scan_set out = scan_set_of(sep >= 0 ? (uint8_t)sep : '\n', r->quotes ? '"' : '\n');
    const scan_set in = scan_set_of('"', '"');
    if (ws)
        while (q < lim && (*q == ' ' || *q == '\t'))
            q++;
    for (;;) { /* one iteration per field */
        int c;
        if (f == fend)
            return 0;
        f->s = o;
        *fc++ = colofs + (uint64_t)(q - dat);
        if (__builtin_expect(*q == qc, 0)) {
            q++;
            for (;;) {
                if (lim - q < SCAN_W)
                    return 0;
                scan_mask m = scan(q, o, &in);
                if (!m) {
                    q += SCAN_W;
                    o += SCAN_W;
                    continue;
                }
                size_t k = SCAN_FIRST(m);
                q += k;
                o += k;
                c = *q;
                if (c == '"') {
                    if (lim - q < 2)
                        return 0;
                    if (q[1] == '"') { /* a doubled quote is one quote */
                        *o++ = '"';
                        q += 2;
                        continue;
                    }
                    c = *++q; /* after the closing quote */
                    if (c == sep || c == '\r' || c == '\n' || (ws && c == '\t'))
                        break;
                    return 0; /* text after the closing quote: an error */
                }
                if (c == 0)
                    return 0;
                q++; /* LF (a line inside the field), CR or another control byte: */
                o++; /* copied already */
                if (c == '\n') {
                    line++;
                    colofs = 1 - (uint64_t)(q - dat); /* the line starts at q */
                }
            }
        } else {
            for (;;) {
                if (lim - q < SCAN_W)
                    return 0;
                scan_mask m = scan(q, o, &out);
                if (!m) {
                    q += SCAN_W;
                    o += SCAN_W;
                    continue;
                }
                size_t k = SCAN_FIRST(m);
                q += k;
                o += k;
                c = *q;
                if (c == sep || c == '\r' || c == '\n' || (ws && c == '\t'))
                    break;
                if (c == 0)
                    return 0;
                q++; /* a quote inside unquoted text (12" PLATE) is kept, as is */
                o++; /* another control byte */
            }
        }
        /* q is at the byte c that ends the field. */
        *o = '\0';
        f->len = (size_t)(o - f->s);
        f++;
        o++;
        q++;
        if (c == sep || (ws && c == '\t')) {
            if (!ws)
                continue;
            /* A run of blanks is one separator; blanks before the line end
             * are not a field. */
            while (q < lim && (*q == ' ' || *q == '\t'))
                q++;
            if (q == lim)
                return 0;
            c = *q;
            if (c != '\r' && c != '\n')
                continue;
            q++;
        }
        if (c == '\r' && *q == '\n') /* CR, LF or CRLF ends the record (*lim is data) */
            q++;
        break;
    }
    r->datpos = (size_t)(q - dat);
    r->line = line + 1;
    r->linestart = r->datbase + r->datpos;
    r->nfields = (size_t)(f - r->fields);
    *len = (size_t)(o - r->rec);
    return 1;
}

#if defined(__SSE2__) && !defined(CSV_PORTABLE_SCAN)
/* The 64 bytes at q copied to o (unless NULL), and two masks of them (bit
 * i for byte i): the separator, and every other byte that matters (LF, CR,
 * NUL, the other bytes <= 13, and the quote when quotes are special). */
typedef struct {
    uint64_t sep, other;
} line_masks;
static inline line_masks masks64(const uint8_t *q, char *o, __m128i vsep, __m128i vquote)
{
    const __m128i ctl = _mm_set1_epi8(13);
    line_masks m = {0, 0};
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(q + 16 * k));
        if (o)
            _mm_storeu_si128((__m128i *)(void *)(o + 16 * k), v);
        __m128i sp =
            _mm_or_si128(_mm_cmpeq_epi8(v, vquote), _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v));
        m.sep |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vsep)) << (16 * k);
        m.other |= (uint64_t)(unsigned)_mm_movemask_epi8(sp) << (16 * k);
    }
    m.other &= ~m.sep; /* a tab separator is <= 13 */
    return m;
}

/* The path before fast_record for a separated dialect (not whitespace
 * runs, not line mode): a record that is one line ending in LF or CR LF,
 * with no quote (when quotes are special), NUL or other control byte, and
 * that lies whole in the block within 64-byte steps. Each 64 bytes are
 * copied to rec and turned into two bit masks whose set bits are walked,
 * so there is no branch per byte or per chunk whose outcome depends on a
 * field's length (fast_record mispredicts there on every field that
 * crosses a chunk). Returns 1 with the same fields, rec bytes, columns
 * and position fast_record gives such a line; 0, having moved nothing,
 * for any other record (fast_record then takes it). */
static int fast_line(csv_reader *r, size_t *len)
{
    const uint8_t *q = r->dat + r->datpos;
    size_t avail = r->datlen - r->datpos - 1, room = r->reccap - 2;
    /* bytes that may be loaded from q and stored to rec; q[lim] is data */
    size_t lim = avail < room ? avail : room;
    char *rec = r->rec;
    csv_field *f = r->fields, *fend = r->fields + r->fcap;
    uint64_t *fc = r->fcol;
    uint64_t col0 = r->datbase + 1 - r->linestart + r->datpos; /* column of the line's byte 0 */
    const __m128i vsep = _mm_set1_epi8((char)r->sep);
    const __m128i vquote = _mm_set1_epi8(r->quotes ? '"' : '\n'); /* LF: in the set anyway */
    size_t fs = 0; /* the open field's first byte in the line */
    for (size_t b = 0; b + 64 <= lim; b += 64) {
        line_masks m = masks64(q + b, rec + b, vsep, vquote);
        uint64_t seps = m.sep;
        size_t end = 0, lf = 0;
        if (m.other) { /* the first must end the line: LF, or CR then LF */
            end = (size_t)__builtin_ctzll(m.other);
            lf = b + end + (q[b + end] == '\r'); /* q[b + 64] is data */
            if (q[lf] != '\n')
                return 0;
            seps &= (UINT64_C(1) << end) - 1;
        }
        for (; seps; seps &= seps - 1) {
            size_t at = b + (size_t)__builtin_ctzll(seps);
            if (f == fend)
                return 0;
            f->s = rec + fs;
            f->len = at - fs;
            *fc++ = col0 + fs;
            f++;
            rec[at] = '\0';
            fs = at + 1;
        }
        if (!m.other)
            continue;
        if (f == fend)
            return 0;
        size_t at = b + end;
        f->s = rec + fs;
        f->len = at - fs;
        *fc++ = col0 + fs;
        f++;
        rec[at] = '\0';
        r->datpos += lf + 1;
        r->line++;
        r->linestart = r->datbase + r->datpos;
        r->nfields = (size_t)(f - r->fields);
        *len = at + 1;
        return 1;
    }
    return 0;
}

/* The producer's half of the plain-line path, so that the parser's thread
 * only copies a line and cuts it into fields: on the bundled export the
 * parser was the read's bottleneck (busy throughout) while the producer,
 * inflating, was idle a third of the time. Each plain line of the block
 * d[0, len) (as fast_line takes them: ending in LF or CR LF, with no
 * quote, NUL or other control byte) gets an entry in idx: its start (two
 * words, low first), its field count, its length to the next line, then
 * each field's end (separator, CR or LF) from the line's start. One pass
 * over the block, 64 bytes at a time as two bit masks (the separators;
 * every other byte that matters) whose set bits are walked in order.
 * Every LF is taken as a line's end, also one inside a quoted field: an
 * entry is only used by a parser standing at its start, where a plain line
 * is that record whatever came before it. A line that is not plain, is 64
 * KiB or longer, or runs past the block has no entry (the parser takes it
 * the usual way), nor have the lines after the one that would overflow
 * idx. Returns the words of idx used (at most cap). */
static size_t index_block(const uint8_t *d, size_t len, uint16_t *idx, size_t cap, int sep)
{
    const __m128i vsep = _mm_set1_epi8((char)sep), vquote = _mm_set1_epi8('"');
    size_t w = 0;           /* words of idx used */
    size_t ls = 0, n = 0;   /* the current line's start and fields so far */
    int bad = 0;            /* it is not plain */
    size_t crlf = SIZE_MAX; /* the LF after a CR that ended a line's last field */
    uint8_t in[64];         /* the block's last, short, chunk */
    for (size_t b = 0; b < len; b += 64) {
        const uint8_t *src = d + b;
        size_t k = len - b;
        uint64_t valid = ~UINT64_C(0);
        if (k < 64) {
            memset(in, 'x', sizeof in);
            memcpy(in, src, k);
            src = in;
            valid = (UINT64_C(1) << k) - 1;
        }
        line_masks mk = masks64(src, NULL, vsep, vquote);
        uint64_t msep = mk.sep & valid, moth = mk.other & valid;
        if (cap - w < 4 + n + 64)
            return w; /* idx may not hold this chunk's fields */
        uint16_t *ends = idx + w + 4;
        /* The separators before each other byte, then that byte. */
        for (;;) {
            uint64_t upto = moth ? (moth & -moth) - 1 : ~UINT64_C(0);
            for (uint64_t m = msep & upto; m; m &= m - 1)
                ends[n++] = (uint16_t)(b + (size_t)__builtin_ctzll(m) - ls);
            if (!moth)
                break;
            msep &= ~upto;
            size_t at = b + (size_t)__builtin_ctzll(moth);
            moth &= moth - 1;
            uint8_t c = d[at];
            if (c == '\n') {
                size_t next = at + 1 - ls;
                if (crlf != at) /* the LF ends the last field */
                    ends[n++] = (uint16_t)(at - ls);
                if (!bad && next <= 0xffff) {
                    idx[w] = (uint16_t)ls;
                    idx[w + 1] = (uint16_t)(ls >> 16);
                    idx[w + 2] = (uint16_t)n;
                    idx[w + 3] = (uint16_t)next;
                    w += 4 + n;
                }
                ls = at + 1;
                n = 0;
                bad = 0;
                if (cap - w < 4 + 64)
                    return w;
                ends = idx + w + 4;
            } else if (c == '\r' && at + 1 < len && d[at + 1] == '\n') {
                ends[n++] = (uint16_t)(at - ls);
                crlf = at + 1;
            } else {
                bad = 1;
            }
        }
    }
    return w;
}

/* The record at the parser's position from the block's index, when the
 * producer indexed a line there: 1 with the same fields (in rec), columns
 * and position as fast_line gives; 0, having moved nothing but the cursor,
 * otherwise. */
static int indexed_record(csv_reader *r, size_t *len)
{
    const uint16_t *e = r->ip, *end = r->ipend;
    size_t pos = r->datpos, at = 0;
    while (e < end && (at = e[0] | (size_t)e[1] << 16) < pos)
        e += 4 + e[2];
    r->ip = e;
    if (e == end || at != pos || e[2] > r->fcap)
        return 0;
    size_t n = e[2];
    const uint16_t *ends = e + 4;
    size_t next = e[3];
    if (next + 1 > r->reccap)
        return 0;
    char *line = r->rec;
    memcpy(line, r->dat + pos, next);
    csv_field *f = r->fields;
    size_t fs = 0;
    for (size_t i = 0; i < n; i++) {
        f[i].s = line + fs;
        f[i].len = ends[i] - fs;
        line[ends[i]] = '\0';
        fs = ends[i] + 1u;
    }
    /* Columns are asked for by error messages only: csv_column works them
     * out from the fields. */
    r->colline = line;
    r->col0 = r->datbase + 1 - r->linestart + pos;
    r->datpos = pos + next;
    r->line++;
    r->linestart = r->datbase + r->datpos;
    r->nfields = n;
    *len = fs;
    r->ip = e + 4 + n;
    return 1;
}
#endif

static int fast_record(csv_reader *r, size_t *len)
{
#if CSV_INDEX
    if (r->ip != r->ipend && indexed_record(r, len)) {
        r->indexed += !(r->nfields == 1 && *len == 1); /* csv_next skips a blank line */
        return 1;
    }
    if (!r->ws && r->sep >= 0 && fast_line(r, len))
        return 1;
#endif
    return r->ws ? fast_record_in(r, len, 1) : fast_record_in(r, len, 0);
}

/* A piece (csv_open_view, partial) ends inside a record: no record, and
 * csv_offset and csv_line say where that record starts. */
static rfm_status incomplete(csv_reader *r)
{
    r->incomplete = 1;
    r->nfields = 0;
    return RFM_OK;
}

rfm_status csv_next(csv_reader *r, const csv_field **fields, size_t *n, char *err, size_t errlen)
{
    rfm_status st = RFM_OK;
    *fields = NULL;
    *n = 0;
    if (!r->started && (st = start(r, err, errlen)) != RFM_OK)
        return st;
    for (;;) { /* one iteration per record; blank lines loop again */
        size_t len = 0;
        r->nfields = 0;
        r->colline = NULL;
        r->recline = r->line;
        r->recstart = r->datbase + r->datpos;
        if (r->datpos < r->datlen && fast_record(r, &len)) {
            if (r->nfields == 1 && len == 1)
                continue; /* blank line */
            r->records++;
            *fields = r->fields;
            *n = r->nfields;
            return RFM_OK;
        }
        int c = r->ws ? skip_blanks(r, &st, err, errlen) : peekc(r, &st, err, errlen);
        if (st != RFM_OK)
            return st;
        if (c < 0)
            return RFM_OK; /* the digest was taken when the input ended */
        for (;;) {         /* one iteration per field */
            uint64_t col = r->datbase + r->datpos - r->linestart + 1;
            if ((st = push_field(r, len, col, err, errlen)) != RFM_OK)
                return st;
            c = peekc(r, &st, err, errlen);
            if (st != RFM_OK)
                return st;
            if (c == '"' && r->quotes) {
                uint64_t qline = r->line;
                r->datpos++;
                for (;;) {
                    c = peekc(r, &st, err, errlen);
                    if (st != RFM_OK)
                        return st;
                    if (c < 0 && r->partial)
                        return incomplete(r);
                    if (c < 0)
                        return rfm_fail(err, errlen, RFM_EPARSE,
                                        "%s:%llu:%llu: quoted field not closed before end of file",
                                        r->name, (unsigned long long)qline,
                                        (unsigned long long)col);
                    const uint8_t *p = r->dat + r->datpos, *e = r->dat + r->datlen;
                    const uint8_t *q = p;
                    while (q < e && *q != '"' && *q != '\n' && *q != 0)
                        q++;
                    size_t span = (size_t)(q - p);
                    NEED(span + 2);
                    memcpy(r->rec + len, p, span);
                    len += span;
                    r->datpos += span;
                    if (q == e)
                        continue;
                    if (*q == 0)
                        return rfm_fail(
                            err, errlen, RFM_EPARSE, "%s:%llu:%llu: NUL byte in data", r->name,
                            (unsigned long long)r->line,
                            (unsigned long long)(r->datbase + r->datpos - r->linestart + 1));
                    r->datpos++;
                    if (*q == '\n') { /* newline inside quotes belongs to the field */
                        r->rec[len++] = '\n';
                        r->line++;
                        r->linestart = r->datbase + r->datpos;
                        continue;
                    }
                    c = peekc(r, &st, err, errlen); /* after a quote */
                    if (st != RFM_OK)
                        return st;
                    if (c == '"') {
                        r->rec[len++] = '"';
                        r->datpos++;
                        continue;
                    }
                    if (c < 0 || c == r->sep || c == '\r' || c == '\n' || (r->ws && c == '\t'))
                        break;
                    return rfm_fail(
                        err, errlen, RFM_EPARSE,
                        "%s:%llu:%llu: text after the closing quote of a field", r->name,
                        (unsigned long long)r->line,
                        (unsigned long long)(r->datbase + r->datpos - r->linestart + 1));
                }
            } else {
                /* Unquoted: copy spans up to the next special byte. A quote
                 * inside unquoted text (12" PLATE) is kept literally, as
                 * spreadsheet exports write it. */
                const unsigned char *special = r->special;
                for (;;) {
                    const uint8_t *p = r->dat + r->datpos, *e = r->dat + r->datlen;
                    const uint8_t *q = p;
                    while (q < e && !special[*q])
                        q++;
                    size_t span = (size_t)(q - p);
                    NEED(span + 2);
                    memcpy(r->rec + len, p, span);
                    len += span;
                    r->datpos += span;
                    if (q < e && *q == '"') {
                        r->rec[len++] = '"';
                        r->datpos++;
                        continue;
                    }
                    if (q < e && *q == 0)
                        return rfm_fail(
                            err, errlen, RFM_EPARSE, "%s:%llu:%llu: NUL byte in data", r->name,
                            (unsigned long long)r->line,
                            (unsigned long long)(r->datbase + r->datpos - r->linestart + 1));
                    if (q < e)
                        break;
                    c = peekc(r, &st, err, errlen);
                    if (st != RFM_OK)
                        return st;
                    if (c < 0)
                        break;
                }
                c = peekc(r, &st, err, errlen);
                if (st != RFM_OK)
                    return st;
            }
            r->rec[len++] = '\0';
            /* c >= 0: in line mode sep is -1, as c is at the end of input */
            if ((c == r->sep && c >= 0) || (r->ws && c == '\t')) {
                r->datpos++;
                if (!r->ws)
                    continue;
                /* A run of blanks is one separator; blanks before the
                 * line end are not a field. */
                c = skip_blanks(r, &st, err, errlen);
                if (st != RFM_OK)
                    return st;
                if (c >= 0 && c != '\r' && c != '\n')
                    continue;
            }
            /* End of record: CR, LF, CRLF or end of input. */
            if (c == '\r') {
                r->datpos++;
                c = peekc(r, &st, err, errlen);
                if (st != RFM_OK)
                    return st;
            }
            if (c < 0 && r->partial)
                return incomplete(r); /* the record may go on in the next piece */
            if (c == '\n')
                r->datpos++;
            r->line++;
            r->linestart = r->datbase + r->datpos;
            break;
        }
        if (r->nfields == 1 && len == 1)
            continue; /* blank line */
        for (size_t i = 0; i < r->nfields; i++) {
            r->fields[i].s = r->rec + r->fofs[i];
            size_t end = i + 1 < r->nfields ? r->fofs[i + 1] : len;
            r->fields[i].len = end - r->fofs[i] - 1;
        }
        r->records++;
        *fields = r->fields;
        *n = r->nfields;
        return RFM_OK;
    }
}

uint64_t csv_line(const csv_reader *r) { return r->recline; }
uint64_t csv_column(const csv_reader *r, size_t i)
{
    if (i >= r->nfields)
        return 1;
    return r->colline ? r->col0 + (uint64_t)(r->fields[i].s - r->colline) : r->fcol[i];
}
uint64_t csv_records(const csv_reader *r) { return r->records; }
uint64_t csv_indexed(const csv_reader *r) { return r->indexed; }
uint64_t csv_bytes(const csv_reader *r) { return __atomic_load_n(&r->bytes, __ATOMIC_RELAXED); }
uint64_t csv_size(const csv_reader *r) { return r->size; }
void csv_sha256(const csv_reader *r, uint8_t digest[32]) { memcpy(digest, r->digest, 32); }

void csv_skip_sha256(csv_reader *r) { r->src.unhashed = 1; }
const char *csv_name(const csv_reader *r) { return r->name; }

int csv_find(const csv_field *fields, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i].s, name) == 0)
            return (int)i;
    return -1;
}
