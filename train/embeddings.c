/* embeddings.c - rfm-train's embeddings step: core/embed's evaluation on
 * all but each customer's last basket (hit rate at 10 against popularity),
 * then the served fit on every purchase, its FAISS index written into the
 * staging folder, its metrics and card. */
#include "embeddings.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ann.h"
#include "embed.h"
#include "rng.h"

rfm_status train_embeddings(const txn_data *d, const embed_params *ep, const ann_params *ap,
                            const char *stage_dir, const char *data_desc, json_t **metrics,
                            char **card, char *err, size_t errlen)
{
    *metrics = NULL;
    *card = NULL;
    size_t n = txn_ncustomers(d);
    if ((size_t)ep->dim >= n || (size_t)ep->dim >= txn_nproducts(d))
        return rfm_fail(err, errlen, RFM_EDATA,
                        "embeddings.dim %d needs more customers (%zu) and products (%zu)", ep->dim,
                        n, txn_nproducts(d));
    const char **ids = malloc(n * sizeof *ids);
    if (!ids)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        ids[i] = txn_customer_id(d, i);

    embed_csr *full = NULL;
    embed_model *em = NULL;
    ann_index *ix = NULL;
    embed_eval ev;
    rfm_rng rng;
    rfm_status st;
    /* 1. Evaluation: fitted without each customer's last basket. */
    if ((st = embed_holdout_eval(d, ep, ap, 10, &ev, err, errlen)))
        goto out;
    /* 2. The served model: every purchase. */
    rfm_rng_seed(&rng, ep->seed);
    if ((st = embed_txn_counts(d, 0, &full, NULL, NULL, err, errlen)) ||
        (st = embed_fit(full, ep, &rng, &em, err, errlen)) ||
        (st =
             ann_build(embed_customer_vectors(em), (int64_t)n, ep->dim, ids, ap, &ix, err, errlen)))
        goto out;
    char path[4096];
    snprintf(path, sizeof path, "%s/customer2vec.faiss", stage_dir);
    if ((st = ann_save(ix, path, err, errlen)))
        goto out;
    const double *sv = embed_singular_values(em);
    *metrics = json_pack("{s:i,s:I,s:I,s:I,s:s,s:{s:I,s:i,s:i,s:f,s:f,s:f,s:f}}", "dim", ep->dim,
                         "customers", (json_int_t)n, "products", (json_int_t)txn_nproducts(d),
                         "customers_without_vector", (json_int_t)embed_n_zero_customers(em),
                         "index", ann_is_hnsw(ix) ? "hnsw" : "exact", "last_basket_holdout",
                         "customers", (json_int_t)ev.n_eval, "neighbors", ev.n_neighbors, "top_n",
                         ev.top_n, "hit_rate_neighbors", ev.hit_neighbors, "hit_rate_popular",
                         ev.hit_popular, "hit_rate_neighbors_new_products", ev.hit_neighbors_new,
                         "hit_rate_popular_new_products", ev.hit_popular_new);
    text t = {0};
    text_add(&t, "# Model card: embeddings %s\n\n", EMBEDDINGS_VERSION);
    text_add(&t,
             "## What it is\nCustomer vectors (dimension %d) from a truncated SVD of the "
             "customer x product positive-PMI matrix (context smoothing 0.75; randomized SVD, "
             "seed %llu), rows of U S^(1/2) normalised to unit length so that inner product is "
             "cosine similarity; a FAISS %s inner-product index over them serves "
             "`/similar_customers`. Why PPMI + SVD: docs/embeddings.md.\n\n",
             ep->dim, (unsigned long long)ep->seed,
             ann_is_hnsw(ix) ? "HNSW" : "exact (IDMap, Flat)");
    text_add(&t,
             "## Data\n%s\n- %zu customers, %zu products; %d customers have no vector (no "
             "product with positive PMI).\n- Top singular values: %.4g, %.4g, %.4g, %.4g.\n\n",
             data_desc, n, txn_nproducts(d), (int)embed_n_zero_customers(em), sv[0], sv[1], sv[2],
             sv[3]);
    text_add(&t,
             "## Evaluation\nEach customer's last basket (the products of their last purchase "
             "day) is held out; the model is fitted on the rest; each customer gets the 10 "
             "products most bought by their %d nearest neighbours (weighted by similarity). "
             "A hit is at least one held-out product among the 10.\n\n"
             "| recommender | hit rate at 10 | new products only |\n|---|---|---|\n"
             "| nearest neighbours | %.4f | %.4f |\n| most popular products | %.4f | %.4f |\n\n"
             "%lld customers evaluated (a held-out basket and a history before it). The "
             "served model is refitted on every purchase.\n\n",
             ev.n_neighbors, ev.hit_neighbors, ev.hit_neighbors_new, ev.hit_popular,
             ev.hit_popular_new, (long long)ev.n_eval);
    text_add(&t, "## Limits\n- Customers with one basket of rare products have noisy vectors; "
                 "customers with no vector cannot be queried (422).\n- Similarity is about "
                 "what people buy, not how much or how often: combine with /segment.\n"
                 "- The segment filter over-fetches candidates, so a very small segment may "
                 "return fewer than k neighbours.\n");
    if (t.oom || !*metrics) {
        free(t.s);
        json_decref(*metrics);
        *metrics = NULL;
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto out;
    }
    *card = t.s;
out:
    ann_free(ix);
    embed_free(em);
    embed_csr_free(full);
    free(ids);
    return st;
}
