/* test_embed.c - PPMI + randomized SVD embeddings and the hit-rate evaluation.
 *
 * References independent of core/models/embed.c: a dense PPMI written from the
 * formula, GSL's dense SVD of that matrix, brute-force cosine neighbours,
 * shoppers simulated from planted taste groups, and an evaluation worked
 * out by hand.
 */
#include "testutil.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <string.h>
#include <time.h>

#include "embed.h"
#include "rng.h"

/* ---- synthetic shoppers ------------------------------------------- */

typedef struct {
    int32_t nc, np, groups;
    int32_t *group; /* per customer */
    embed_csr *train;
    int64_t *hold_ptr;
    int32_t *hold_items;
} shoppers;

/* Customer c is in group c % groups; group g owns products
 * [g*block, (g+1)*block). Each purchase comes from the own block with
 * probability loyalty (a skewed pick inside it), else from any product. The
 * last `hold` purchases of each customer form the held-out basket. */
static shoppers make_shoppers(int32_t nc, int groups, int32_t block, int per_customer, int hold,
                              double loyalty, uint64_t seed)
{
    shoppers s = {0};
    s.nc = nc;
    s.groups = groups;
    s.np = groups * block;
    s.group = malloc((size_t)nc * sizeof *s.group);
    size_t n_train = (size_t)nc * (size_t)(per_customer - hold);
    int32_t *cu = malloc(n_train * sizeof *cu), *pr = malloc(n_train * sizeof *pr);
    s.hold_ptr = malloc(((size_t)nc + 1) * sizeof *s.hold_ptr);
    s.hold_items = malloc((size_t)nc * (size_t)(hold > 0 ? hold : 1) * sizeof *s.hold_items);
    rfm_rng rng;
    rfm_rng_seed(&rng, seed);
    size_t k = 0;
    s.hold_ptr[0] = 0;
    for (int32_t c = 0; c < nc; c++) {
        s.group[c] = c % groups;
        for (int i = 0; i < per_customer; i++) {
            int32_t p;
            if (rfm_rng_uniform(&rng) < loyalty) {
                double u = rfm_rng_uniform(&rng);
                p = s.group[c] * block + (int32_t)(u * u * block); /* popular items first */
            } else {
                p = (int32_t)rfm_rng_below(&rng, (uint64_t)s.np);
            }
            if (i < per_customer - hold) {
                cu[k] = c;
                pr[k] = p;
                k++;
            } else {
                s.hold_items[s.hold_ptr[c] + (i - (per_customer - hold))] = p;
            }
        }
        s.hold_ptr[c + 1] = s.hold_ptr[c] + hold;
    }
    char err[RFM_ERRLEN];
    assert_int_equal(embed_csr_from_pairs(nc, s.np, cu, pr, NULL, k, &s.train, err, sizeof err),
                     RFM_OK);
    free(cu);
    free(pr);
    return s;
}

static void free_shoppers(shoppers *s)
{
    free(s->group);
    free(s->hold_ptr);
    free(s->hold_items);
    embed_csr_free(s->train);
}

/* Dense PPMI straight from the definition: P(c,p) = n/N, P(c) = r_c/N,
 * P_alpha(p) = s_p^alpha / sum s^alpha, PPMI = max(0, log P(c,p)/(P(c)P_alpha(p))). */
static double *dense_ppmi(const embed_csr *m, double alpha)
{
    int32_t nc = m->n_customers, np = m->n_products;
    double *n = calloc((size_t)nc * np, sizeof *n);
    double *r = calloc((size_t)nc, sizeof *r), *s = calloc((size_t)np, sizeof *s);
    double total = 0;
    for (int32_t c = 0; c < nc; c++)
        for (int64_t e = m->row_ptr[c]; e < m->row_ptr[c + 1]; e++)
            n[(size_t)c * np + m->col_idx[e]] += m->counts[e];
    for (int32_t c = 0; c < nc; c++)
        for (int32_t p = 0; p < np; p++) {
            r[c] += n[(size_t)c * np + p];
            s[p] += n[(size_t)c * np + p];
            total += n[(size_t)c * np + p];
        }
    double z = 0;
    for (int32_t p = 0; p < np; p++)
        z += pow(s[p], alpha);
    for (int32_t c = 0; c < nc; c++)
        for (int32_t p = 0; p < np; p++) {
            double v = n[(size_t)c * np + p];
            if (v == 0)
                continue;
            double pmi = log((v / total) / ((r[c] / total) * (pow(s[p], alpha) / z)));
            n[(size_t)c * np + p] = pmi > 0 ? pmi : 0;
        }
    free(r);
    free(s);
    return n;
}

/* Share of each customer's top-10 cosine neighbours (brute force over the
 * model's vectors) that belong to the customer's own group. */
static double same_group_share(const float *x, int dim, const shoppers *s)
{
    int hits = 0, total = 0;
    double *sim = malloc((size_t)s->nc * sizeof *sim);
    for (int32_t c = 0; c < s->nc; c++) {
        for (int32_t o = 0; o < s->nc; o++) {
            double d = 0;
            for (int j = 0; j < dim; j++)
                d += (double)x[(size_t)c * dim + j] * x[(size_t)o * dim + j];
            sim[o] = o == c ? -INFINITY : d;
        }
        for (int t = 0; t < 10; t++) {
            int32_t best = 0;
            for (int32_t o = 1; o < s->nc; o++)
                if (sim[o] > sim[best])
                    best = o;
            hits += s->group[best] == s->group[c];
            total++;
            sim[best] = -INFINITY;
        }
    }
    free(sim);
    return (double)hits / total;
}

/* ---- tests ---------------------------------------------------------- */

static void test_csr_from_pairs(void **state)
{
    (void)state;
    /* Unsorted pairs with repeats; customer 1 buys nothing. */
    int32_t cu[] = {2, 0, 2, 0, 2, 0};
    int32_t pr[] = {3, 1, 0, 1, 3, 2};
    double w[] = {1, 2, 1, 0.5, 4, 1};
    embed_csr *m = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(embed_csr_from_pairs(3, 4, cu, pr, w, 6, &m, err, sizeof err), RFM_OK);
    int64_t rp[] = {0, 2, 2, 4};
    int32_t ci[] = {1, 2, 0, 3};
    double ct[] = {2.5, 1, 1, 5};
    for (int i = 0; i < 4; i++)
        assert_int_equal(m->row_ptr[i], rp[i]);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(m->col_idx[i], ci[i]);
        assert_near(m->counts[i], ct[i], 0);
    }
    assert_int_equal(embed_csr_check(m, err, sizeof err), RFM_OK);
    embed_csr_free(m);

    embed_csr *keep = (embed_csr *)0x1;
    int32_t badp[] = {3, 1, 0, 9, 3, 2};
    assert_int_equal(embed_csr_from_pairs(3, 4, cu, badp, NULL, 6, &keep, err, sizeof err),
                     RFM_EINVAL);
    assert_non_null(strstr(err, "pair 3"));
    assert_ptr_equal(keep, (embed_csr *)0x1);
    w[2] = -1;
    assert_int_equal(embed_csr_from_pairs(3, 4, cu, pr, w, 6, &keep, err, sizeof err), RFM_EINVAL);
    assert_non_null(strstr(err, "weight"));
    printf("    %s\n", err);
}

static void test_ppmi_matches_definition(void **state)
{
    (void)state;
    shoppers s = make_shoppers(60, 3, 10, 25, 0, 0.8, 11);
    double alphas[] = {0.75, 1.0};
    for (int a = 0; a < 2; a++) {
        embed_csr *pp = NULL;
        char err[RFM_ERRLEN];
        assert_int_equal(embed_ppmi(s.train, alphas[a], &pp, err, sizeof err), RFM_OK);
        double *ref = dense_ppmi(s.train, alphas[a]);
        double *got = calloc((size_t)s.nc * s.np, sizeof *got);
        for (int32_t c = 0; c < s.nc; c++)
            for (int64_t e = pp->row_ptr[c]; e < pp->row_ptr[c + 1]; e++) {
                assert_true(pp->counts[e] > 0);
                got[(size_t)c * s.np + pp->col_idx[e]] = pp->counts[e];
            }
        double maxd = 0;
        for (size_t i = 0; i < (size_t)s.nc * s.np; i++)
            maxd = fmax(maxd, fabs(got[i] - ref[i]));
        printf("    alpha %.2f:", alphas[a]);
        report_maxdiff("PPMI vs dense definition", maxd, 1e-12);
        free(ref);
        free(got);
        embed_csr_free(pp);
    }
    free_shoppers(&s);
}

/* Randomized SVD against GSL's dense SVD of the same PPMI matrix. */
static void test_svd_against_dense(void **state)
{
    (void)state;
    shoppers s = make_shoppers(120, 4, 20, 30, 0, 0.85, 12);
    double *a = dense_ppmi(s.train, 0.75);
    gsl_matrix_view av = gsl_matrix_view_array(a, (size_t)s.nc, (size_t)s.np);
    gsl_matrix *v = gsl_matrix_alloc((size_t)s.np, (size_t)s.np);
    gsl_vector *sv = gsl_vector_alloc((size_t)s.np);
    assert_int_equal(gsl_linalg_SV_decomp_jacobi(&av.matrix, v, sv), GSL_SUCCESS);

    /* Truncated: the leading singular values. */
    embed_params p;
    embed_params_default(&p);
    p.dim = 8;
    rfm_rng rng;
    rfm_rng_seed(&rng, 5);
    embed_model *m = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(embed_fit(s.train, &p, &rng, &m, err, sizeof err), RFM_OK);
    /* The 4 group components stand far above the noise bulk and must be
     * nearly exact; inside the bulk (sigma 5..8 within a few percent of each
     * other and of sigma 9) the randomized range finder is only accurate to
     * about 1e-2 relative (Halko et al. 2011, sec. 10). */
    double maxrel = 0, maxbulk = 0;
    for (int j = 0; j < p.dim; j++) {
        double rel = fabs(embed_singular_values(m)[j] - gsl_vector_get(sv, (size_t)j)) /
                     gsl_vector_get(sv, (size_t)j);
        if (j < 4)
            maxrel = fmax(maxrel, rel);
        else
            maxbulk = fmax(maxbulk, rel);
    }
    printf("    sigma_1..8 = %.4f %.4f %.4f %.4f %.4f %.4f %.4f %.4f\n", gsl_vector_get(sv, 0),
           gsl_vector_get(sv, 1), gsl_vector_get(sv, 2), gsl_vector_get(sv, 3),
           gsl_vector_get(sv, 4), gsl_vector_get(sv, 5), gsl_vector_get(sv, 6),
           gsl_vector_get(sv, 7));
    report_maxdiff("dim 8: relative error of sigma_1..4 (groups)", maxrel, 1e-9);
    report_maxdiff("dim 8: relative error of sigma_5..8 (noise bulk)", maxbulk, 1e-2);
    embed_free(m);

    /* Full rank (dim = n_products): the customer cosine matrix must equal the
     * one from GSL's U S^(1/2) rows, whatever the signs of the vectors. */
    p.dim = s.np;
    rfm_rng_seed(&rng, 5);
    assert_int_equal(embed_fit(s.train, &p, &rng, &m, err, sizeof err), RFM_OK);
    int d = s.np;
    double *ref = malloc((size_t)s.nc * d * sizeof *ref);
    for (int32_t c = 0; c < s.nc; c++) {
        double nrm = 0;
        for (int j = 0; j < d; j++) {
            double x = gsl_matrix_get(&av.matrix, (size_t)c, (size_t)j) *
                       sqrt(gsl_vector_get(sv, (size_t)j));
            ref[(size_t)c * d + j] = x;
            nrm += x * x;
        }
        for (int j = 0; j < d; j++)
            ref[(size_t)c * d + j] /= sqrt(nrm);
    }
    const float *x = embed_customer_vectors(m);
    double maxd = 0;
    for (int32_t c = 0; c < s.nc; c++)
        for (int32_t o = 0; o < s.nc; o++) {
            double g = 0, r = 0;
            for (int j = 0; j < d; j++) {
                g += (double)x[(size_t)c * d + j] * x[(size_t)o * d + j];
                r += ref[(size_t)c * d + j] * ref[(size_t)o * d + j];
            }
            maxd = fmax(maxd, fabs(g - r));
        }
    report_maxdiff("full rank: customer cosines vs GSL dense SVD", maxd, 1e-5);
    free(ref);
    embed_free(m);
    gsl_matrix_free(v);
    gsl_vector_free(sv);
    free(a);
    free_shoppers(&s);
}

static void test_planted_groups_unit_deterministic(void **state)
{
    (void)state;
    shoppers s = make_shoppers(400, 4, 50, 40, 0, 0.8, 21);
    embed_params p;
    embed_params_default(&p);
    p.dim = 16;
    rfm_rng rng;
    rfm_rng_seed(&rng, 99);
    embed_model *m1 = NULL, *m2 = NULL, *m3 = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(embed_fit(s.train, &p, &rng, &m1, err, sizeof err), RFM_OK);
    rfm_rng_seed(&rng, 99);
    assert_int_equal(embed_fit(s.train, &p, &rng, &m2, err, sizeof err), RFM_OK);
    rfm_rng_seed(&rng, 100);
    assert_int_equal(embed_fit(s.train, &p, &rng, &m3, err, sizeof err), RFM_OK);

    size_t nb = (size_t)s.nc * p.dim * sizeof(float);
    assert_memory_equal(embed_customer_vectors(m1), embed_customer_vectors(m2), nb);
    assert_memory_equal(embed_product_vectors(m1), embed_product_vectors(m2),
                        (size_t)s.np * p.dim * sizeof(float));
    printf("    same seed: customer and product vectors bit-identical\n");

    assert_int_equal(embed_n_zero_customers(m1), 0);
    double maxd = 0;
    for (int32_t c = 0; c < s.nc; c++) {
        double n2 = 0;
        for (int j = 0; j < p.dim; j++)
            n2 += (double)embed_customer_vectors(m1)[(size_t)c * p.dim + j] *
                  embed_customer_vectors(m1)[(size_t)c * p.dim + j];
        maxd = fmax(maxd, fabs(sqrt(n2) - 1));
    }
    for (int32_t q = 0; q < s.np; q++) {
        double n2 = 0;
        const float *v = embed_product_vectors(m1) + (size_t)q * p.dim;
        for (int j = 0; j < p.dim; j++)
            n2 += (double)v[j] * v[j];
        if (n2 > 0)
            maxd = fmax(maxd, fabs(sqrt(n2) - 1));
    }
    report_maxdiff("| |vector| - 1 | (customers and products)", maxd, 1e-6);

    double share1 = same_group_share(embed_customer_vectors(m1), p.dim, &s);
    double share3 = same_group_share(embed_customer_vectors(m3), p.dim, &s);
    printf("    top-10 neighbours from the query's group: %.3f (seed 99), %.3f (seed 100); "
           "chance 0.25\n",
           share1, share3);
    assert_true(share1 > 0.9);
    assert_true(share3 > 0.9);
    embed_free(m1);
    embed_free(m2);
    embed_free(m3);
    free_shoppers(&s);
}

/* The worked example in the comments: 4 customers, 5 products. */
static void test_eval_by_hand(void **state)
{
    (void)state;
    int32_t cu[] = {0, 0, 1, 1, 2, 2, 3};
    int32_t pr[] = {0, 1, 1, 2, 2, 3, 4};
    embed_csr *t = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(embed_csr_from_pairs(4, 5, cu, pr, NULL, 7, &t, err, sizeof err), RFM_OK);
    int64_t hp[] = {0, 1, 2, 2, 3};
    int32_t hi[] = {2, 4, 0};
    int64_t ids[] = {1, 2, 0, 3, -1, -1, 2, 0};
    float sims[] = {0.9f, 0.5f, 0.8f, 0.1f, 0, 0, 0.3f, -0.2f};
    /* Popularity order 1,2,0,3,4 (customers per product 1,2,2,1,1; ties to
     * the lower index). top 1: pop -> p1 for all (no hit); pop new -> c0 p2
     * (hit), c1 p0, c3 p1. Neighbours: c0 scores p2 1.4, p1 .9, p3 .5 ->
     * p2 hit; c1 p0 .8, p1 .8, p4 .1 -> p0; c3 p2 .3, p3 .3 (c0 negative,
     * ignored) -> p2. c2 has no held-out basket and is not evaluated. */
    embed_eval ev;
    assert_int_equal(embed_eval_hitrate(t, hp, hi, ids, sims, 2, 1, &ev, err, sizeof err), RFM_OK);
    assert_int_equal(ev.n_eval, 3);
    assert_near(ev.hit_popular, 0, 1e-15);
    assert_near(ev.hit_popular_new, 1.0 / 3, 1e-15);
    assert_near(ev.hit_neighbors, 1.0 / 3, 1e-15);
    assert_near(ev.hit_neighbors_new, 1.0 / 3, 1e-15);
    /* top 2: pop {1,2} hits c0; pop new c0 {2,3} hit, c1 {0,3}, c3 {1,2};
     * neighbours c0 {2,1} hit, c1 {0,1}, c3 {2,3}; neighbours new c0 {2,3}
     * hit, c1 {0,4} hit, c3 {2,3}. */
    assert_int_equal(embed_eval_hitrate(t, hp, hi, ids, sims, 2, 2, &ev, err, sizeof err), RFM_OK);
    assert_near(ev.hit_popular, 1.0 / 3, 1e-15);
    assert_near(ev.hit_popular_new, 1.0 / 3, 1e-15);
    assert_near(ev.hit_neighbors, 1.0 / 3, 1e-15);
    assert_near(ev.hit_neighbors_new, 2.0 / 3, 1e-15);

    embed_eval keep = {.n_eval = -7};
    ids[3] = 4;
    assert_int_equal(embed_eval_hitrate(t, hp, hi, ids, sims, 2, 2, &keep, err, sizeof err),
                     RFM_EINVAL);
    assert_int_equal(keep.n_eval, -7);
    printf("    %s\n", err);
    ids[3] = 3;
    hi[1] = 5;
    assert_int_equal(embed_eval_hitrate(t, hp, hi, ids, sims, 2, 2, &keep, err, sizeof err),
                     RFM_EINVAL);
    printf("    %s\n", err);
    embed_csr_free(t);
}

/* On planted groups, neighbours' purchases beat popularity. Neighbours by
 * brute force over the fitted vectors. */
static void test_eval_planted(void **state)
{
    (void)state;
    shoppers s = make_shoppers(400, 4, 50, 40, 3, 0.8, 31);
    embed_params p;
    embed_params_default(&p);
    p.dim = 16;
    rfm_rng rng;
    rfm_rng_seed(&rng, 1);
    embed_model *m = NULL;
    char err[RFM_ERRLEN];
    assert_int_equal(embed_fit(s.train, &p, &rng, &m, err, sizeof err), RFM_OK);
    const int kn = 10;
    int64_t *ids = malloc((size_t)s.nc * kn * sizeof *ids);
    float *sims = malloc((size_t)s.nc * kn * sizeof *sims);
    double *sim = malloc((size_t)s.nc * sizeof *sim);
    const float *x = embed_customer_vectors(m);
    for (int32_t c = 0; c < s.nc; c++) {
        for (int32_t o = 0; o < s.nc; o++) {
            double d = 0;
            for (int j = 0; j < p.dim; j++)
                d += (double)x[(size_t)c * p.dim + j] * x[(size_t)o * p.dim + j];
            sim[o] = o == c ? -INFINITY : d;
        }
        for (int t = 0; t < kn; t++) {
            int32_t best = 0;
            for (int32_t o = 1; o < s.nc; o++)
                if (sim[o] > sim[best])
                    best = o;
            ids[(size_t)c * kn + t] = best;
            sims[(size_t)c * kn + t] = (float)sim[best];
            sim[best] = -INFINITY;
        }
    }
    embed_eval ev;
    assert_int_equal(embed_eval_hitrate(s.train, s.hold_ptr, s.hold_items, ids, sims, kn, 10, &ev,
                                        err, sizeof err),
                     RFM_OK);
    printf("    hit@10 over %lld customers: neighbours %.3f vs popular %.3f; "
           "new products only: %.3f vs %.3f\n",
           (long long)ev.n_eval, ev.hit_neighbors, ev.hit_popular, ev.hit_neighbors_new,
           ev.hit_popular_new);
    assert_int_equal(ev.n_eval, s.nc);
    assert_true(ev.hit_neighbors > ev.hit_popular + 0.1);
    assert_true(ev.hit_neighbors_new > ev.hit_popular_new + 0.1);
    free(ids);
    free(sims);
    free(sim);
    embed_free(m);
    free_shoppers(&s);
}

static void test_errors(void **state)
{
    (void)state;
    char err[RFM_ERRLEN];
    embed_params p;
    embed_params_default(&p);
    shoppers s = make_shoppers(20, 2, 5, 10, 0, 0.8, 3);
    rfm_rng rng;
    rfm_rng_seed(&rng, 1);
    embed_model *m = (embed_model *)0x1;
    /* dim 32 > 10 products */
    assert_int_equal(embed_fit(s.train, &p, &rng, &m, err, sizeof err), RFM_EINVAL);
    printf("    %s\n", err);
    p.dim = 4;
    p.alpha = 0;
    assert_int_equal(embed_fit(s.train, &p, &rng, &m, err, sizeof err), RFM_EINVAL);
    printf("    %s\n", err);
    p.alpha = 0.75;
    assert_int_equal(embed_fit(s.train, &p, NULL, &m, err, sizeof err), RFM_EINVAL);
    assert_ptr_equal(m, (embed_model *)0x1);

    /* No purchases at all. */
    embed_csr *empty = NULL;
    assert_int_equal(embed_csr_from_pairs(3, 3, NULL, NULL, NULL, 0, &empty, err, sizeof err),
                     RFM_OK);
    p.dim = 2;
    assert_int_equal(embed_fit(empty, &p, &rng, &m, err, sizeof err), RFM_EDATA);
    printf("    %s\n", err);
    embed_csr_free(empty);

    /* Every customer buys the same single product: PMI = 0 everywhere. */
    int32_t cu[] = {0, 1, 2}, pr[] = {0, 0, 0};
    embed_csr *flat = NULL;
    assert_int_equal(embed_csr_from_pairs(3, 3, cu, pr, NULL, 3, &flat, err, sizeof err), RFM_OK);
    assert_int_equal(embed_fit(flat, &p, &rng, &m, err, sizeof err), RFM_EDATA);
    printf("    %s\n", err);
    embed_csr_free(flat);

    /* A malformed caller-made CSR. */
    s.train->col_idx[1] = s.train->col_idx[0];
    assert_int_equal(embed_fit(s.train, &p, &rng, &m, err, sizeof err), RFM_EINVAL);
    printf("    %s\n", err);
    assert_ptr_equal(m, (embed_model *)0x1);
    free_shoppers(&s);
}

/* Bundled-data scale: ~4,400 customers x ~4,000 products x ~400k purchases. */
static void test_speed_at_retail_scale(void **state)
{
    (void)state;
    shoppers s = make_shoppers(4400, 40, 100, 91, 0, 0.7, 41);
    embed_params p;
    embed_params_default(&p);
    rfm_rng rng;
    rfm_rng_seed(&rng, 7);
    embed_model *m = NULL;
    char err[RFM_ERRLEN];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(embed_fit(s.train, &p, &rng, &m, err, sizeof err), RFM_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("    fit %d x %d, %lld non-zeros (%d purchases), dim %d: %.3f s\n", (int)s.nc, (int)s.np,
           (long long)s.train->row_ptr[s.nc], 4400 * 91, p.dim, secs);
    embed_free(m);
    free_shoppers(&s);
}

/* ---- from transactions -------------------------------------------- */

static size_t customer_index(const txn_data *d, const char *id)
{
    for (size_t i = 0; i < txn_ncustomers(d); i++)
        if (!strcmp(txn_customer_id(d, i), id))
            return i;
    fail_msg("no customer %s", id);
    return 0;
}

/* Counts worked out by hand. Products sort as P = 0, Q = 1, R = 2.
 *   A: P on 01-01, 01-03 and 01-05, Q on 01-05 (last basket {P, Q})
 *   B: R on 01-02 and 01-04, P on 01-04           (last basket {P, R}) */
static void test_txn_counts_by_hand(void **state)
{
    (void)state;
    txn_data *d = txn_from_text("InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
                                "1,P,1,2011-01-01,2.00,A\n"
                                "2,P,1,2011-01-03,2.00,A\n"
                                "3,Q,1,2011-01-05,2.00,A\n"
                                "3,P,1,2011-01-05,2.00,A\n"
                                "4,R,1,2011-01-02,1.00,B\n"
                                "5,R,1,2011-01-04,1.00,B\n"
                                "5,P,1,2011-01-04,1.00,B\n");
    size_t a = customer_index(d, "A"), b = customer_index(d, "B");
    char err[RFM_ERRLEN];
    embed_csr *m = NULL;
    int64_t *hp = NULL;
    int32_t *hi = NULL;
    /* Everything: A {P 3, Q 1}, B {P 1, R 2}. */
    assert_int_equal(embed_txn_counts(d, 0, &m, NULL, NULL, err, sizeof err), RFM_OK);
    assert_int_equal(m->n_customers, 2);
    assert_int_equal(m->n_products, 3);
    const int32_t want_col[2][2] = {{0, 1}, {0, 2}};
    const double want_all[2][2] = {{3, 1}, {1, 2}};
    for (int c = 0; c < 2; c++) {
        size_t row = c ? b : a;
        assert_int_equal(m->row_ptr[row + 1] - m->row_ptr[row], 2);
        for (int k = 0; k < 2; k++) {
            assert_int_equal(m->col_idx[m->row_ptr[row] + k], want_col[c][k]);
            assert_near(m->counts[m->row_ptr[row] + k], want_all[c][k], 0);
        }
    }
    embed_csr_free(m);
    /* Without the last baskets: A {P 2}, B {R 1}; held out A {P, Q}, B {P, R}. */
    assert_int_equal(embed_txn_counts(d, 1, &m, &hp, &hi, err, sizeof err), RFM_OK);
    const int32_t keep_col[2] = {0, 2};
    const double keep_n[2] = {2, 1};
    for (int c = 0; c < 2; c++) {
        size_t row = c ? b : a;
        assert_int_equal(m->row_ptr[row + 1] - m->row_ptr[row], 1);
        assert_int_equal(m->col_idx[m->row_ptr[row]], keep_col[c]);
        assert_near(m->counts[m->row_ptr[row]], keep_n[c], 0);
        assert_int_equal(hp[row + 1] - hp[row], 2);
        assert_int_equal(hi[hp[row]], want_col[c][0]);
        assert_int_equal(hi[hp[row] + 1], want_col[c][1]);
    }
    embed_csr_free(m);
    free(hp), free(hi);
    txn_free(d);
}

/* embed_holdout_eval against the evaluation done here with brute-force
 * cosine neighbours instead of the FAISS index, on shoppers with planted
 * taste groups (4 groups of 30 customers, each group favouring its own 10
 * of 40 products; four purchase days of three lines each). Neighbours that
 * tie in similarity may come in either order, so hit rates may differ by a
 * customer or two: the tolerance is 2 / customers evaluated. */
static void test_holdout_eval_brute_force(void **state)
{
    (void)state;
    enum { NC = 120, NP = 40, G = 4, DAYS = 4, LINES = 3 };
    size_t cap = 64 + (size_t)NC * DAYS * LINES * 48, len = 0;
    char *csv = malloc(cap);
    len += (size_t)snprintf(csv, cap,
                            "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n");
    rfm_rng g;
    rfm_rng_seed(&g, 5);
    for (int c = 0; c < NC; c++)
        for (int day = 0; day < DAYS; day++)
            for (int l = 0; l < LINES; l++) {
                int own = rfm_rng_uniform(&g) < 0.85;
                int prod = own ? (c % G) * (NP / G) + (int)rfm_rng_below(&g, NP / G)
                               : (int)rfm_rng_below(&g, NP);
                len +=
                    (size_t)snprintf(csv + len, cap - len, "%d,P%02d,1,2011-01-%02d,1.50,C%03d\n",
                                     c * DAYS + day + 1, prod, 1 + 7 * day + c % 7, c);
            }
    txn_data *d = txn_from_text(csv);
    free(csv);
    embed_params p;
    embed_params_default(&p);
    p.dim = 8;
    p.neighbors = 10;
    ann_params ap;
    ann_params_default(&ap);
    char err[RFM_ERRLEN];
    embed_eval ev;
    assert_int_equal(embed_holdout_eval(d, &p, &ap, 10, &ev, err, sizeof err), RFM_OK);

    /* Reference. */
    embed_csr *train = NULL;
    int64_t *hp = NULL;
    int32_t *hi = NULL;
    embed_model *m = NULL;
    rfm_rng rng;
    assert_int_equal(embed_txn_counts(d, 1, &train, &hp, &hi, err, sizeof err), RFM_OK);
    rfm_rng_seed(&rng, p.seed);
    assert_int_equal(embed_fit(train, &p, &rng, &m, err, sizeof err), RFM_OK);
    const int kn = p.neighbors;
    size_t n = txn_ncustomers(d);
    int64_t *ids = malloc(n * (size_t)kn * sizeof *ids);
    float *sims = malloc(n * (size_t)kn * sizeof *sims);
    double *sim = malloc(n * sizeof *sim);
    const float *x = embed_customer_vectors(m);
    for (size_t c = 0; c < n; c++) {
        for (size_t o = 0; o < n; o++) {
            double dot = 0;
            for (int j = 0; j < p.dim; j++)
                dot += (double)x[c * (size_t)p.dim + j] * x[o * (size_t)p.dim + j];
            sim[o] = o == c ? -INFINITY : dot;
        }
        for (int t = 0; t < kn; t++) {
            size_t best = 0;
            for (size_t o = 1; o < n; o++)
                if (sim[o] > sim[best])
                    best = o;
            ids[c * (size_t)kn + t] = (int64_t)best;
            sims[c * (size_t)kn + t] = (float)sim[best];
            sim[best] = -INFINITY;
        }
    }
    embed_eval ref;
    assert_int_equal(embed_eval_hitrate(train, hp, hi, ids, sims, kn, 10, &ref, err, sizeof err),
                     RFM_OK);
    assert_int_equal(ev.n_eval, ref.n_eval);
    assert_int_equal(ev.top_n, 10);
    assert_int_equal(ev.n_neighbors, kn);
    double maxdiff = fmax(fmax(fabs(ev.hit_neighbors - ref.hit_neighbors),
                               fabs(ev.hit_neighbors_new - ref.hit_neighbors_new)),
                          fmax(fabs(ev.hit_popular - ref.hit_popular),
                               fabs(ev.hit_popular_new - ref.hit_popular_new)));
    double tol = 2.0 / (double)ref.n_eval;
    report_maxdiff("hit rates vs brute-force neighbours", maxdiff, tol);
    assert_true(maxdiff <= tol);
    printf("    hit@10 over %lld customers: neighbours %.3f vs popular %.3f\n",
           (long long)ev.n_eval, ev.hit_neighbors, ev.hit_popular);
    assert_true(ev.hit_neighbors > ev.hit_popular + 0.1);
    free(ids), free(sims), free(sim), free(hp), free(hi);
    embed_free(m);
    embed_csr_free(train);
    txn_free(d);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csr_from_pairs),
        cmocka_unit_test(test_ppmi_matches_definition),
        cmocka_unit_test(test_svd_against_dense),
        cmocka_unit_test(test_planted_groups_unit_deterministic),
        cmocka_unit_test(test_eval_by_hand),
        cmocka_unit_test(test_eval_planted),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_txn_counts_by_hand),
        cmocka_unit_test(test_holdout_eval_brute_force),
        cmocka_unit_test(test_speed_at_retail_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
