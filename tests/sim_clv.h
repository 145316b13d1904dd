/* sim_clv.h - simulate customers from known BG/NBD and Gamma-Gamma
 * parameters (Fader, Hardie and Lee's generative stories), as an
 * independent reference for the fits and predictions. */
#ifndef RFM_SIM_CLV_H
#define RFM_SIM_CLV_H

#include <math.h>

#include "rng.h"

/* Gamma(shape k, scale 1) by Marsaglia and Tsang (2000). */
static inline double sim_gamma(rfm_rng *g, double k)
{
    if (k < 1) /* boost: Gamma(k) = Gamma(k + 1) U^(1/k) */
        return sim_gamma(g, k + 1) * pow(rfm_rng_uniform(g) + 1e-300, 1 / k);
    double d = k - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double z = rfm_rng_normal(g), v = 1 + c * z;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = rfm_rng_uniform(g);
        if (log(u + 1e-300) < 0.5 * z * z + d - d * v + d * log(v))
            return d * v;
    }
}

static inline double sim_beta(rfm_rng *g, double a, double b)
{
    double x = sim_gamma(g, a), y = sim_gamma(g, b);
    return x / (x + y);
}

typedef struct {
    double x, t_x, T; /* observed history at T */
    int alive;        /* still alive at T */
    double future;    /* purchases in (T, T + horizon] */
    double m;         /* mean spend of the repeat purchases (0 when x = 0) */
} sim_customer;

/* One customer: rate ~ Gamma(r, 1/alpha), dropout p ~ Beta(a, b); after
 * every purchase it dies with probability p. Spend per purchase ~
 * Gamma(gp, rate nu), nu ~ Gamma(gq, rate gv). */
static inline sim_customer sim_one(rfm_rng *g, double r, double alpha, double a, double b,
                                   double gp, double gq, double gv, double T, double horizon)
{
    /* After every repeat purchase it dies with probability p. */
    sim_customer c = {0, 0, T, 1, 0, 0};
    double lambda = sim_gamma(g, r) / alpha, p = sim_beta(g, a, b);
    double nu = sim_gamma(g, gq) / gv, spend = 0;
    double t = 0;
    int alive = 1;
    /* Dropout happens only after a repeat purchase (not the first one). */
    for (;;) {
        t += -log(1 - rfm_rng_uniform(g)) / lambda;
        if (t > T + horizon)
            break;
        if (t <= T) {
            c.x += 1;
            c.t_x = t;
            spend += sim_gamma(g, gp) / nu;
        } else {
            c.future += 1;
        }
        if (rfm_rng_uniform(g) < p) {
            alive = t > T; /* alive at T if it died only after T */
            break;
        }
    }
    c.alive = alive;
    c.m = c.x > 0 ? spend / c.x : 0;
    return c;
}

#endif
