/* embed.h - customer and product embeddings from purchase counts
 * ("Customer2Vec"), by truncated SVD of the positive-PMI matrix.
 *
 * Method. From a sparse customer x product count matrix n(c,p):
 *   PMI(c,p)  = log( n(c,p) / n(c) / q(p) ),   n(c) = sum_p n(c,p),
 *   q(p)      = n(p)^alpha / sum_p' n(p')^alpha  (context smoothing, Levy,
 *               Goldberg & Dagan 2015; alpha = 1 is plain PMI),
 *   PPMI(c,p) = max(PMI(c,p), 0), and 0 where n(c,p) = 0.
 * PPMI ~= U S V^T is truncated to rank `dim` by randomized SVD (Halko,
 * Martinsson & Tropp 2011, algorithm 4.4: a Gaussian test matrix, `oversample`
 * extra columns, `power_iters` re-orthonormalised power iterations, then an
 * exact SVD of the small projected matrix). Customer vectors are rows of
 * U S^(1/2), product vectors rows of V S^(1/2) (symmetric weighting: customer
 * . product then approximates PPMI, and Levy et al. 2015 found it better than
 * U S for similarity), each L2-normalised so that inner product = cosine.
 * Skip-gram with negative sampling implicitly factorises a shifted PMI matrix
 * (Levy & Goldberg 2014); factorising it explicitly is deterministic, needs no
 * learning rate and takes well under a second at the bundled data's size.
 *
 * Workload: thousands to a few hundred thousand customers and products,
 * up to a few million non-zero counts; dim 8..256. Memory O(nnz + (n_c + n_p)
 * * (dim + oversample)) doubles. Single-threaded, plain loops, so one seed
 * gives bit-identical vectors on one machine.
 *
 * Non-goals: online updates, cold-start customers (a customer whose PPMI row
 * is empty gets a zero vector and is counted in embed_n_zero), sequence order
 * within baskets.
 *
 * Thread safety: every function is reentrant; a fitted model is read-only.
 */
#ifndef RFM_EMBED_H
#define RFM_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "ann.h"
#include "rng.h"
#include "status.h"
#include "txn.h"

/* Sparse customer x product matrix in CSR form: row c holds columns
 * col_idx[row_ptr[c] .. row_ptr[c+1]) (strictly increasing) with values
 * counts[...] (> 0, finite). Rows are customers, columns products, both
 * 0-based dense indices chosen by the caller. */
typedef struct {
    int32_t n_customers;
    int32_t n_products;
    int64_t *row_ptr; /* n_customers + 1 entries */
    int32_t *col_idx; /* nnz = row_ptr[n_customers] entries */
    double *counts;   /* nnz entries */
} embed_csr;

/* Largest dimension: rfm-serve's contract takes query vectors of up to 512
 * numbers (openapi.yaml, SimilarByVector). */
#define EMBED_MAX_DIM 512

typedef struct {
    int dim;         /* embedding dimension, 1..min(n_customers, n_products, 512); default 32 */
    double alpha;    /* context smoothing exponent in (0, 1]; default 0.75 */
    int oversample;  /* extra random columns for the SVD, >= 0; default 10 */
    int power_iters; /* power iterations, 0..50; default 5 */
    uint64_t seed;   /* rfm-train seeds embed_fit's rng with it; default 42 */
    int neighbors;   /* neighbours per customer in rfm-train's hit-rate evaluation,
                        1..100; default 10 */
} embed_params;

typedef struct embed_model embed_model;

/* Hit rate at top_n of neighbour-based recommendations against popularity,
 * from embed_eval_hitrate. "new" variants exclude products the customer
 * bought in training (discovery); the others allow repeat purchases. */
typedef struct {
    int64_t n_eval;                    /* customers with a held-out basket and a training history */
    int n_neighbors;                   /* neighbours used per customer */
    int top_n;                         /* recommendations per customer */
    double hit_neighbors, hit_popular; /* shares in [0, 1] */
    double hit_neighbors_new, hit_popular_new; /* shares in [0, 1] */
} embed_eval;

/* --- sparse counts --------------------------------------------------- */

/* Build a CSR matrix from n_pairs (customer[i], product[i]) observations,
 * each weighing weight[i] (> 0, finite) or 1 when weight is NULL; repeated
 * pairs are summed. Indices must lie in [0, n_customers) x [0, n_products).
 * On success *out is owned by the caller (embed_csr_free). On failure
 * (RFM_EINVAL naming the pair, RFM_ENOMEM) *out is unchanged. */
rfm_status embed_csr_from_pairs(int32_t n_customers, int32_t n_products, const int32_t *customer,
                                const int32_t *product, const double *weight, size_t n_pairs,
                                embed_csr **out, char *err, size_t errlen);

/* Check a caller-made CSR: shapes, increasing columns, positive finite
 * values. RFM_OK or RFM_EINVAL naming the first offending row/entry. */
rfm_status embed_csr_check(const embed_csr *m, char *err, size_t errlen);

/* Free a matrix made by this module (NULL is fine). */
void embed_csr_free(embed_csr *m);

/* The PPMI matrix of counts as CSR with the same sparsity pattern minus
 * the entries that are 0 after clipping. RFM_EINVAL on bad counts or alpha,
 * RFM_EDATA on a matrix without any count. *out as above. */
rfm_status embed_ppmi(const embed_csr *counts, double alpha, embed_csr **out, char *err,
                      size_t errlen);

/* --- fitting --------------------------------------------------------- */

void embed_params_default(embed_params *p);

/* NULL if p is usable, else a static reason naming the field. Shape
 * limits (dim <= min(n_customers, n_products)) are checked by embed_fit. */
const char *embed_check_params(const embed_params *p);

/* Fit embeddings to counts. rng seeds the random test matrix; the same
 * seed state and input give bit-identical output. On success *out is owned
 * by the caller (embed_free). Failures: RFM_EINVAL (params, malformed
 * counts, dim too large for the shape), RFM_EDATA (no positive PPMI entry),
 * RFM_ELIBRARY (GSL SVD failed), RFM_ENOMEM; *out unchanged. */
rfm_status embed_fit(const embed_csr *counts, const embed_params *p, rfm_rng *rng,
                     embed_model **out, char *err, size_t errlen);

void embed_free(embed_model *m);

int embed_dim(const embed_model *m);
int32_t embed_n_customers(const embed_model *m);
int32_t embed_n_products(const embed_model *m);
/* Row-major n_customers x dim (resp. n_products x dim) unit vectors, or
 * zero rows for customers/products without signal. Owned by the model. */
const float *embed_customer_vectors(const embed_model *m);
const float *embed_product_vectors(const embed_model *m);
/* The dim leading singular values of the PPMI matrix, descending. */
const double *embed_singular_values(const embed_model *m);
/* Customers (resp. products) left with a zero vector. */
int32_t embed_n_zero_customers(const embed_model *m);
int32_t embed_n_zero_products(const embed_model *m);

/* --- evaluation ------------------------------------------------------ */

/* Hit rate at top_n for "recommend what my neighbours bought" versus
 * "recommend the most popular products", on held-out baskets.
 *
 * train: counts used for fitting (customer rows as in the model).
 * holdout_ptr/holdout_items: CSR-like lists, customer c's held-out products
 *   are holdout_items[holdout_ptr[c] .. holdout_ptr[c+1]) (any order,
 *   duplicates allowed), holdout_ptr has n_customers + 1 entries.
 * nbr_ids/nbr_sims: row-major n_customers x n_neighbors, customer c's
 *   neighbours as customer rows (best first, -1 for none) and their
 *   similarities (from ann_neighbors_all, or any other source).
 * Neighbour score of product p for c: sum of sim over neighbours with
 * positive similarity who bought p in training (bought = count > 0, so one
 * heavy buyer does not dominate). Popularity: number of training customers
 * who bought p. Ties go to the lower product index. Neighbour lists
 * recommend only products with a positive score, so they may hold fewer
 * than top_n items; popularity always has top_n. A hit: at least one
 * held-out product among the recommendations. Evaluated customers: those
 * with a non-empty held-out basket and a non-empty training row.
 * Failures: RFM_EINVAL (shapes, ids out of range, top_n < 1), RFM_EDATA (no
 * customer to evaluate), RFM_ENOMEM; *out unchanged on failure. */
rfm_status embed_eval_hitrate(const embed_csr *train, const int64_t *holdout_ptr,
                              const int32_t *holdout_items, const int64_t *nbr_ids,
                              const float *nbr_sims, int n_neighbors, int top_n, embed_eval *out,
                              char *err, size_t errlen);

/* --- from transactions ----------------------------------------------- */

/* Counts per (customer, product) from d (read with the product column):
 * rows are d's customers, columns its products, values the number of used
 * lines. With holdout, each customer's last basket (the lines of their last
 * purchase day, txn_customer_products' last_counts) is left out of the
 * counts, and its distinct products are listed CSR-like in
 * (*holdout_ptr)[c] .. (*holdout_ptr)[c+1] of *holdout_items, as
 * embed_eval_hitrate takes them (both new, the caller frees them); without
 * holdout, holdout_ptr and holdout_items may be NULL and are not written.
 * *out as embed_csr_from_pairs. RFM_ENOMEM; nothing to free on failure. */
rfm_status embed_txn_counts(const txn_data *d, int holdout, embed_csr **out, int64_t **holdout_ptr,
                            int32_t **holdout_items, char *err, size_t errlen);

/* The last-basket evaluation rfm-train reports: the counts of d without
 * each customer's last basket (embed_txn_counts), embed_fit with an rng
 * seeded by p->seed, an ann index over the customer vectors (ap), each
 * customer's p->neighbors nearest neighbours (ann_neighbors_all), and
 * embed_eval_hitrate at top_n into *out. Failures are those of the steps;
 * *out unchanged on failure. */
rfm_status embed_holdout_eval(const txn_data *d, const embed_params *p, const ann_params *ap,
                              int top_n, embed_eval *out, char *err, size_t errlen);

#endif
