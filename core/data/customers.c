/* customers.c - write and index the per-customer table. */
#include "customers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "hash.h"
#include "numfmt.h"

/* Files written before the churn trends have the first OLD_NCOLS columns;
 * they load with the trends unknown (NaN). */
#define NCOLS 10
#define OLD_NCOLS 8
static const char *const COLS[NCOLS] = {"customer_id",
                                        "recency",
                                        "frequency",
                                        "monetary",
                                        "repeat_purchases",
                                        "days_first_to_last_purchase",
                                        "days_since_first_purchase",
                                        "mean_repeat_spend",
                                        "ipt_trend",
                                        "spend_trend"};

struct customers {
    char **ids;
    customer_row *rows;
    size_t n;
    uint32_t *slots; /* index + 1, 0 = empty */
    size_t mask;
};

char *customers_csv(const char *const *ids, const customer_row *rows, size_t n)
{
    size_t cap = 256 + n * 160, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    for (int k = 0; k < NCOLS; k++)
        len += (size_t)snprintf(s + len, cap - len, "%s%s", k ? "," : "", COLS[k]);
    s[len++] = '\n';
    for (size_t i = 0; i < n; i++) {
        size_t need = len + strlen(ids[i]) * 2 + NCOLS * (NUMFMT_LEN + 1) + 16;
        if (need > cap) {
            cap = 2 * need;
            char *t = realloc(s, cap);
            if (!t) {
                free(s);
                return NULL;
            }
            s = t;
        }
        int quote = strpbrk(ids[i], ",\"\r\n") != NULL;
        if (quote)
            s[len++] = '"';
        for (const char *p = ids[i]; *p; p++) {
            if (*p == '"')
                s[len++] = '"';
            s[len++] = *p;
        }
        if (quote)
            s[len++] = '"';
        const double v[NCOLS - 1] = {
            rows[i].recency,           rows[i].frequency,          rows[i].monetary,
            rows[i].repeat_purchases,  rows[i].days_first_to_last, rows[i].days_since_first,
            rows[i].mean_repeat_spend, rows[i].ipt_trend,          rows[i].spend_trend};
        for (int k = 0; k < NCOLS - 1; k++) {
            if (isnan(v[k]))
                s[len++] = ',';
            else {
                s[len++] = ',';
                len += numfmt_double(v[k], s + len);
            }
        }
        s[len++] = '\n';
    }
    s[len] = '\0';
    return s;
}

void customers_free(customers *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->ids[i]);
    free(c->ids);
    free(c->rows);
    free(c->slots);
    free(c);
}

size_t customers_count(const customers *c) { return c->n; }

const customer_row *customers_row(const customers *c, size_t i)
{
    return i < c->n ? &c->rows[i] : NULL;
}

const char *customers_id(const customers *c, size_t i) { return i < c->n ? c->ids[i] : NULL; }

const customer_row *customers_find(const customers *c, const char *id)
{
    if (!c->slots)
        return NULL;
    uint64_t h = hash_bytes(id, strlen(id), 7);
    for (size_t j = h & c->mask; c->slots[j]; j = (j + 1) & c->mask)
        if (strcmp(c->ids[c->slots[j] - 1], id) == 0)
            return &c->rows[c->slots[j] - 1];
    return NULL;
}

/* A field of the form -?D+(.D+)? with at most 15 digits in all (the table's
 * counts, days and amounts in cents) into *out as strtod reads it: the
 * digits as an integer m < 2^53 and 10^f (f <= 15) are exact doubles, so
 * m / 10^f rounds once, correctly, to the double nearest the decimal -
 * strtod's answer (Clinger's fast path). 0 for anything else (more digits,
 * exponents, blanks, words): strtod then. A million-row table has 9
 * million numbers; strtod's general path took most of its load time. */
static int short_decimal(const char *s, size_t len, double *out)
{
    static const double P10[16] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    size_t i = s[0] == '-', digits = 0, frac = 0;
    int point = 0;
    uint64_t m = 0;
    if (i == len)
        return 0;
    for (; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (++digits > 15)
                return 0;
            m = 10 * m + (uint64_t)(s[i] - '0');
            frac += (size_t)point;
        } else if (s[i] == '.' && !point && digits && i + 1 < len) {
            point = 1;
        } else {
            return 0;
        }
    }
    double x = (double)m / P10[frac];
    *out = s[0] == '-' ? -x : x;
    return 1;
}

rfm_status customers_load(const char *path, customers **out, char *err, size_t errlen)
{
    *out = NULL;
    csv_reader *r;
    rfm_status st = csv_open(path, &r, err, errlen);
    if (st != RFM_OK)
        return st;
    customers *c = calloc(1, sizeof *c);
    size_t cap = 1024;
    if (c) {
        c->ids = malloc(cap * sizeof *c->ids);
        c->rows = malloc(cap * sizeof *c->rows);
    }
    const csv_field *f;
    size_t nf;
    if (!c || !c->ids || !c->rows) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto fail;
    }
    if ((st = csv_next(r, &f, &nf, err, errlen)) != RFM_OK)
        goto fail;
    size_t ncols = nf;
    for (size_t k = 0; k < ncols; k++)
        if ((ncols != NCOLS && ncols != OLD_NCOLS) || strcmp(f[k].s, COLS[k]) != 0) {
            st = rfm_fail(err, errlen, RFM_EFORMAT, "%s:1: header must be %s,...", path, COLS[0]);
            goto fail;
        }
    while ((st = csv_next(r, &f, &nf, err, errlen)) == RFM_OK && nf > 0) {
        if (nf != ncols) {
            st = rfm_fail(err, errlen, RFM_EFORMAT, "%s:%llu: expected %zu fields", path,
                          (unsigned long long)csv_line(r), ncols);
            goto fail;
        }
        if (c->n == cap) {
            cap *= 2;
            char **ni = realloc(c->ids, cap * sizeof *ni);
            if (ni)
                c->ids = ni;
            customer_row *nr = realloc(c->rows, cap * sizeof *nr);
            if (nr)
                c->rows = nr;
            if (!ni || !nr) {
                st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
                goto fail;
            }
        }
        double v[NCOLS - 1] = {NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
        for (size_t k = 0; k + 1 < ncols; k++) {
            char *end;
            end = "";
            if (!f[k + 1].len)
                v[k] = NAN;
            else if (!short_decimal(f[k + 1].s, f[k + 1].len, &v[k]))
                v[k] = strtod(f[k + 1].s, &end);
            if (*end) {
                st = rfm_fail(err, errlen, RFM_EFORMAT, "%s:%llu:%llu: not a number", path,
                              (unsigned long long)csv_line(r),
                              (unsigned long long)csv_column(r, k + 1));
                goto fail;
            }
        }
        if (!(c->ids[c->n] = strdup(f[0].s))) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            goto fail;
        }
        c->rows[c->n++] = (customer_row){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]};
    }
    if (st != RFM_OK)
        goto fail;
    size_t slots = 16;
    while (slots < 2 * c->n)
        slots *= 2;
    c->slots = calloc(slots, sizeof *c->slots);
    if (!c->slots) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        goto fail;
    }
    c->mask = slots - 1;
    for (size_t i = 0; i < c->n; i++) {
        size_t j = hash_bytes(c->ids[i], strlen(c->ids[i]), 7) & c->mask;
        while (c->slots[j])
            j = (j + 1) & c->mask;
        c->slots[j] = (uint32_t)(i + 1);
    }
    csv_close(r);
    *out = c;
    return RFM_OK;
fail:
    csv_close(r);
    customers_free(c);
    return st;
}
