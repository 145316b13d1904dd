/* ann.h - lookalike index: nearest customers by cosine similarity, over
 * FAISS through its official C API (faiss/c_api; implemented for Debian's
 * libfaiss in core/models/faiss_capi.cpp).
 *
 * Vectors are unit length (embed.h), so inner product is cosine similarity.
 * Up to exact_max customers the index is exact ("IDMap2,Flat", inner
 * product); above it, HNSW ("IDMap2,HNSW<m>,Flat", inner product, efSearch
 * from the parameters). FAISS id i is row i of the vectors given to
 * ann_build, and the index keeps the customer id string of every row.
 *
 * One query on the exact index is answered without FAISS's search (which
 * packs the whole matrix for BLAS on every call): the vectors are packed
 * once at build/load (a second copy: n x dim floats) and scanned with the
 * inner products summed in the order OpenBLAS's Haswell/Zen sgemm uses and
 * FAISS's heap, so answers are FAISS's bit for bit (ann.c: on the CPUs
 * where OpenBLAS takes those kernels; elsewhere, and for HNSW, FAISS
 * searches as before).
 *
 * Workload: built once by the trainer (thousands to millions of rows,
 * dim 8..256), loaded once by the server, then read by many threads, one
 * query each: a single query must take microseconds to a couple of
 * milliseconds and not spread over every core, so searches run FAISS with
 * query_threads OpenMP threads (set for the calling thread during the call
 * and restored after).
 *
 * A customer's query (ann_search_row) on an exact index of at most
 * memo_rows rows is memoised: its first query keeps the row's
 * ANN_MEMO_K + 2 best (itself included) as the search found them, and
 * later queries of that row with k <= ANN_MEMO_K, filtered or not, read
 * their answer there whenever it is certainly the search's own, rows and
 * float bits (no tie at the k-th answer's cut; ann.c says why that is
 * enough); else they search. Up to 280 bytes a queried row, kept until
 * ann_free; the vectors never change under a loaded index.
 *
 * Filtering (e.g. by segment) is by over-fetching and filtering: FAISS
 * 1.7.3's C API has no search-with-IDSelector call. On the exact index the
 * fetch grows until k matches are found or every row was seen; on HNSW it
 * stops at max_fetch candidates, so a very selective filter may return
 * fewer than k neighbours (n_found says how many).
 *
 * File (models/customer2vec.faiss), little-endian:
 *   0  "RFMANN\0\0"   8  u32 version (1)   12 u32 dim   16 u64 count
 *   24 u32 kind (0 exact, 1 HNSW)   28 u32 hnsw_m   32 u64 faiss_len
 *   40 u64 ids_len   48 u32 0   52 u32 CRC-32 of bytes [0,52) and [56,end)
 *   56 FAISS index as written by faiss_write_index (faiss_len bytes)
 *      id map: count x (u32 byte length, customer id bytes) (ids_len bytes)
 * Written to a temporary file in the same directory, fsync'd and renamed.
 * On load the size, CRC, dimension, count and metric are checked before
 * use. The FAISS part is a standard FAISS serialisation (readable by
 * faiss.deserialize_index on those bytes).
 *
 * Errors: every FAISS call is checked; a FAISS exception becomes
 * RFM_ELIBRARY with FAISS's message. Nothing here prints or aborts.
 * Thread safety: build/load/free are single-threaded; every const function
 * may be called from many threads at once on one loaded index (a customer
 * query publishes its row's memo with one atomic compare-and-swap).
 */
#ifndef RFM_ANN_H
#define RFM_ANN_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define ANN_MAX_DIM 4096
#define ANN_MAX_K 10000
#define ANN_MAX_ID_LEN 1024 /* bytes of one customer id */
#define ANN_MEMO_K 32       /* most neighbours a customer query answers from its memo */

typedef struct {
    int64_t exact_max; /* exact index up to this many rows, HNSW above; default 100000 */
    int hnsw_m;        /* HNSW links per node, 4..128; default 32 */
    int ef_search;     /* HNSW search breadth, >= 1; default 128 */
    int query_threads; /* OpenMP threads per query, >= 1; default 1 */
    int build_threads; /* OpenMP threads for building and ann_neighbors_all; 0 = all */
    int64_t max_fetch; /* filtered HNSW search: most candidates fetched; default 4096 */
    int64_t memo_rows; /* memoise customer queries on exact indexes of at most this many
                          rows (0: never); default 100000 */
} ann_params;

/* Keep a candidate row? Nonzero keeps. Called from the searching thread;
 * must be thread-safe if searches run concurrently. */
typedef int (*ann_filter)(int64_t row, void *ctx);

typedef struct ann_index ann_index;

void ann_params_default(ann_params *p);
/* NULL if usable, else a static reason naming the field. */
const char *ann_check_params(const ann_params *p);

/* Build an index over n rows of dim floats (row-major), each of L2 norm 1
 * (within 1e-3) or exactly 0 (a customer without an embedding: similarity 0
 * to everything, never returned as a customer's own query). ids[i] is row
 * i's customer id: non-empty, at most ANN_MAX_ID_LEN bytes, unique; copied.
 * On success *out is owned by the caller (ann_free). Failures: RFM_EINVAL
 * naming the row (bad norm, non-finite value, bad or duplicate id, params),
 * RFM_ELIBRARY (FAISS), RFM_ENOMEM; *out unchanged. */
rfm_status ann_build(const float *vectors, int64_t n, int dim, const char *const *ids,
                     const ann_params *p, ann_index **out, char *err, size_t errlen);

void ann_free(ann_index *ix);

/* Write the index to path (temporary file + rename). RFM_EIO (errno in the
 * message), RFM_ELIBRARY (FAISS serialisation), RFM_ENOMEM. On failure path
 * is untouched and no temporary file is left. */
rfm_status ann_save(const ann_index *ix, const char *path, char *err, size_t errlen);

/* Load an index written by ann_save, using p's query-time settings
 * (ef_search, query_threads, build_threads, max_fetch; exact_max and hnsw_m
 * come from the file). Failures: RFM_EIO, RFM_EFORMAT (bad magic/version,
 * truncated, dimension or count disagreeing with the FAISS index, bad id
 * map), RFM_ECHECKSUM (CRC mismatch), RFM_ELIBRARY (FAISS could not read
 * its part), RFM_ENOMEM, RFM_EINVAL (params). *out unchanged on failure. */
rfm_status ann_load(const char *path, const ann_params *p, ann_index **out, char *err,
                    size_t errlen);

int ann_dim(const ann_index *ix);
int64_t ann_count(const ann_index *ix);
int ann_is_hnsw(const ann_index *ix);
/* Customer id of a row, NULL if row is out of range. Owned by the index. */
const char *ann_customer_id(const ann_index *ix, int64_t row);
/* Row of a customer id: RFM_OK, or RFM_ENOTFOUND naming the id. */
rfm_status ann_lookup(const ann_index *ix, const char *customer_id, int64_t *row, char *err,
                      size_t errlen);
/* Copy row's vector (dim floats) into out. RFM_EINVAL if out of range,
 * RFM_ELIBRARY from FAISS. */
rfm_status ann_vector(const ann_index *ix, int64_t row, float *out, char *err, size_t errlen);

/* The k (1..ANN_MAX_K) rows most similar to query (len floats; len must
 * equal ann_dim, else RFM_EINVAL saying both lengths). The query is
 * L2-normalised first (a zero or non-finite query is RFM_EINVAL), so sims
 * are cosines. keep may be NULL. Writes *n_found <= k results, best first,
 * into rows[] and sims[] (k entries each, caller-owned). Thread-safe. */
rfm_status ann_search_vector(const ann_index *ix, const float *query, int len, int k,
                             ann_filter keep, void *ctx, int64_t *rows, float *sims, int *n_found,
                             char *err, size_t errlen);

/* As ann_search_vector with row's own vector as the query, never returning
 * row itself. RFM_EINVAL if row is out of range, RFM_EDATA if row has a zero
 * vector (no embedding). */
rfm_status ann_search_row(const ann_index *ix, int64_t row, int k, ann_filter keep, void *ctx,
                          int64_t *rows, float *sims, int *n_found, char *err, size_t errlen);

/* The memo of customer queries (exact indexes of at most memo_rows rows):
 * how many rows have one, and the sum over them of the positions among
 * their first ANN_MEMO_K + 1 neighbours (the row itself counted) that are
 * strictly more similar than the next (a query whose k-th answer sits at
 * such a position is answered from the memo). A scan of every row, for
 * tests and diagnostics. */
void ann_memo_stats(const ann_index *ix, int64_t *rows, int64_t *cuts);

/* For evaluation: the k nearest other rows of every row, in one batched
 * search using build_threads. rows/sims are n x k row-major (caller-owned);
 * missing entries (zero-vector rows, or fewer than k others) are -1 / 0.
 * Single-threaded caller; RFM_EINVAL, RFM_ELIBRARY, RFM_ENOMEM. */
rfm_status ann_neighbors_all(const ann_index *ix, int k, int64_t *rows, float *sims, char *err,
                             size_t errlen);

#endif
