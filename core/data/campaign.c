/* campaign.c - campaign CSV to X, arm, y with learned category levels (see campaign.h). */
#include "campaign.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "sha256.h"

typedef struct {
    char *name;
    campaign_ftype type;
    char **levels; /* sorted, category only */
    size_t n_levels;
    size_t col; /* first encoded column */
} enc_feature;

struct campaign_encoding {
    enc_feature *f;
    size_t n_features;
    size_t d;
    char **colnames; /* d */
    char *treatment, *outcome;
    char **arm_names; /* n_arms + 1: [0] is control */
    size_t n_arms;
};

void campaign_encoding_free(campaign_encoding *e)
{
    if (!e)
        return;
    for (size_t i = 0; e->f && i < e->n_features; i++) {
        free(e->f[i].name);
        for (size_t l = 0; l < e->f[i].n_levels; l++)
            free(e->f[i].levels[l]);
        free(e->f[i].levels);
    }
    free(e->f);
    for (size_t j = 0; e->colnames && j < e->d; j++)
        free(e->colnames[j]);
    free(e->colnames);
    for (size_t k = 0; e->arm_names && k <= e->n_arms; k++)
        free(e->arm_names[k]);
    free(e->arm_names);
    free(e->treatment);
    free(e->outcome);
    free(e);
}

void campaign_data_free(campaign_data *d)
{
    if (!d)
        return;
    free(d->X);
    free(d->arm);
    free(d->y);
    campaign_encoding_free(d->enc);
    free(d);
}

size_t campaign_n_columns(const campaign_encoding *e) { return e->d; }
const char *campaign_column_name(const campaign_encoding *e, size_t j)
{
    return j < e->d ? e->colnames[j] : NULL;
}
size_t campaign_n_arms(const campaign_encoding *e) { return e->n_arms; }
const char *campaign_arm_name(const campaign_encoding *e, size_t k)
{
    return k <= e->n_arms ? e->arm_names[k] : NULL;
}
const char *campaign_outcome_name(const campaign_encoding *e) { return e->outcome; }

const char *campaign_check_spec(const campaign_spec *s)
{
    if (!s->features || s->n_features == 0)
        return "campaign needs at least one feature";
    if (!s->treatment || !s->control || !s->outcome)
        return "campaign needs treatment, control and outcome";
    if (!s->arms || s->n_arms == 0 || s->n_arms > 64)
        return "campaign needs 1..64 arms";
    for (size_t i = 0; i < s->n_features; i++) {
        const char *n = s->features[i].name;
        if (!n || !*n)
            return "a campaign feature has no name";
        if (s->features[i].type != CAMPAIGN_NUMBER && s->features[i].type != CAMPAIGN_CATEGORY)
            return "a campaign feature type is neither number nor category";
        if (!strcmp(n, s->treatment) || !strcmp(n, s->outcome))
            return "a campaign feature is also the treatment or outcome column";
        for (size_t j = 0; j < i; j++)
            if (!strcmp(n, s->features[j].name))
                return "a campaign feature is listed twice";
    }
    if (!strcmp(s->treatment, s->outcome))
        return "treatment and outcome are the same column";
    for (size_t k = 0; k < s->n_arms; k++) {
        if (!s->arms[k])
            return "a campaign arm has no level";
        if (!strcmp(s->arms[k], s->control))
            return "a campaign arm is the control level";
        for (size_t j = 0; j < k; j++)
            if (!strcmp(s->arms[k], s->arms[j]))
                return "a campaign arm is listed twice";
    }
    return NULL;
}

/* A finite decimal number with optional blanks around it; hex, inf and nan
 * (which strtod would take) are refused. */
static int parse_number(const char *s, double *out)
{
    const char *p = s;
    int digits = 0;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits = 1;
        else if (!strchr("+-.eE \t", *p))
            return 0;
    }
    if (!digits)
        return 0;
    char *end;
    double v = strtod(s, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Build colnames and column offsets once the levels are final. */
static int finish_encoding(campaign_encoding *e)
{
    size_t d = 0;
    for (size_t i = 0; i < e->n_features; i++) {
        e->f[i].col = d;
        d += e->f[i].type == CAMPAIGN_NUMBER ? 1 : e->f[i].n_levels;
    }
    e->colnames = calloc(d ? d : 1, sizeof *e->colnames);
    if (!e->colnames)
        return -1;
    e->d = d;
    for (size_t i = 0; i < e->n_features; i++) {
        const enc_feature *f = &e->f[i];
        if (f->type == CAMPAIGN_NUMBER) {
            e->colnames[f->col] = strdup(f->name);
            if (!e->colnames[f->col])
                return -1;
            continue;
        }
        for (size_t l = 0; l < f->n_levels; l++) {
            size_t len = strlen(f->name) + strlen(f->levels[l]) + 2;
            char *s = malloc(len);
            if (!s)
                return -1;
            snprintf(s, len, "%s=%s", f->name, f->levels[l]);
            e->colnames[f->col + l] = s;
        }
    }
    return 0;
}

/* Encoding skeleton from the spec (levels still empty). */
static campaign_encoding *encoding_from_spec(const campaign_spec *s)
{
    campaign_encoding *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->f = calloc(s->n_features, sizeof *e->f);
    e->arm_names = calloc(s->n_arms + 1, sizeof *e->arm_names);
    if (!e->f || !e->arm_names) {
        free(e->f);
        free(e->arm_names);
        free(e);
        return NULL;
    }
    e->n_features = s->n_features;
    e->n_arms = s->n_arms;
    int bad = !(e->treatment = strdup(s->treatment)) || !(e->outcome = strdup(s->outcome)) ||
              !(e->arm_names[0] = strdup(s->control));
    for (size_t k = 0; !bad && k < s->n_arms; k++)
        bad = !(e->arm_names[k + 1] = strdup(s->arms[k]));
    for (size_t i = 0; !bad && i < s->n_features; i++) {
        e->f[i].type = s->features[i].type;
        bad = !(e->f[i].name = strdup(s->features[i].name));
    }
    if (bad) {
        campaign_encoding_free(e);
        return NULL;
    }
    return e;
}

rfm_status campaign_read(const char *path, const campaign_spec *spec, campaign_data **out,
                         char *err, size_t errlen)
{
    const char *why = campaign_check_spec(spec);
    if (why)
        return rfm_fail(err, errlen, RFM_EINVAL, "%s", why);
    csv_reader *r = NULL;
    rfm_status st = csv_open(path, &r, err, errlen);
    if (st != RFM_OK)
        return st;
    size_t nf = spec->n_features, cap = 0, n = 0;
    campaign_encoding *e = encoding_from_spec(spec);
    int *col = malloc((nf + 2) * sizeof *col);
    double *raw = NULL; /* n x nf: numbers, or level index in first-seen order */
    int *arm = NULL;
    double *y = NULL, *X = NULL;
    char ***seen = calloc(nf, sizeof *seen); /* first-seen levels per feature */
    size_t *nseen = calloc(nf, sizeof *nseen);
    campaign_data *d = NULL;
    st = RFM_ENOMEM;
    if (!e || !col || !seen || !nseen)
        goto oom;

    const csv_field *fl;
    size_t nfields, header_n;
    st = csv_next(r, &fl, &nfields, err, errlen);
    if (st != RFM_OK)
        goto out;
    if (nfields == 0) {
        st = rfm_fail(err, errlen, RFM_EDATA, "%s: empty file", path);
        goto out;
    }
    header_n = nfields;
    for (size_t i = 0; i < nf + 2; i++) {
        const char *name = i < nf    ? spec->features[i].name
                           : i == nf ? spec->treatment
                                     : spec->outcome;
        col[i] = csv_find(fl, nfields, name);
        if (col[i] < 0) {
            st = rfm_fail(err, errlen, RFM_EINVAL, "%s:%llu: column '%s' not in the header", path,
                          (unsigned long long)csv_line(r), name);
            goto out;
        }
    }
    for (;;) {
        st = csv_next(r, &fl, &nfields, err, errlen);
        if (st != RFM_OK)
            goto out;
        if (nfields == 0)
            break;
        unsigned long long line = (unsigned long long)csv_line(r);
        if (nfields != header_n) {
            st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu:1: %zu fields, the header has %zu",
                          path, line, nfields, header_n);
            goto out;
        }
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 1024;
            double *nr = realloc(raw, nc * nf * sizeof *nr);
            if (!nr)
                goto oom;
            raw = nr;
            int *na = realloc(arm, nc * sizeof *na);
            if (!na)
                goto oom;
            arm = na;
            double *ny = realloc(y, nc * sizeof *ny);
            if (!ny)
                goto oom;
            y = ny;
            cap = nc;
        }
        for (size_t i = 0; i < nf; i++) {
            const csv_field *v = &fl[col[i]];
            unsigned long long c = (unsigned long long)csv_column(r, (size_t)col[i]);
            if (spec->features[i].type == CAMPAIGN_NUMBER) {
                if (!parse_number(v->s, &raw[n * nf + i])) {
                    st = rfm_fail(err, errlen, RFM_EPARSE,
                                  "%s:%llu:%llu: column '%s': '%.40s' is not a number", path, line,
                                  c, spec->features[i].name, v->s);
                    goto out;
                }
                continue;
            }
            if (v->len == 0) {
                st = rfm_fail(err, errlen, RFM_EPARSE, "%s:%llu:%llu: column '%s' is empty", path,
                              line, c, spec->features[i].name);
                goto out;
            }
            size_t l = 0;
            while (l < nseen[i] && strcmp(seen[i][l], v->s))
                l++;
            if (l == nseen[i]) {
                if (l == CAMPAIGN_MAX_LEVELS) {
                    st = rfm_fail(err, errlen, RFM_EDATA,
                                  "%s:%llu:%llu: column '%s' has more than %d levels", path, line,
                                  c, spec->features[i].name, CAMPAIGN_MAX_LEVELS);
                    goto out;
                }
                if (l == 0) {
                    seen[i] = malloc(CAMPAIGN_MAX_LEVELS * sizeof *seen[i]);
                    if (!seen[i])
                        goto oom;
                }
                if (!(seen[i][l] = strdup(v->s)))
                    goto oom;
                nseen[i]++;
            }
            raw[n * nf + i] = (double)l;
        }
        const csv_field *t = &fl[col[nf]];
        int a = -1;
        for (size_t k = 0; k <= spec->n_arms && a < 0; k++)
            if (!strcmp(t->s, e->arm_names[k]))
                a = (int)k;
        if (a < 0) {
            st = rfm_fail(err, errlen, RFM_EPARSE,
                          "%s:%llu:%llu: treatment '%.40s' is neither the control '%s' nor an arm",
                          path, line, (unsigned long long)csv_column(r, (size_t)col[nf]), t->s,
                          spec->control);
            goto out;
        }
        arm[n] = a;
        if (!parse_number(fl[col[nf + 1]].s, &y[n])) {
            st = rfm_fail(err, errlen, RFM_EPARSE,
                          "%s:%llu:%llu: outcome '%s': '%.40s' is not a number", path, line,
                          (unsigned long long)csv_column(r, (size_t)col[nf + 1]), spec->outcome,
                          fl[col[nf + 1]].s);
            goto out;
        }
        n++;
    }
    if (n == 0) {
        st = rfm_fail(err, errlen, RFM_EDATA, "%s: no data rows", path);
        goto out;
    }

    /* Sorted levels, so a shuffled file encodes identically. */
    for (size_t i = 0; i < nf; i++) {
        if (spec->features[i].type != CAMPAIGN_CATEGORY)
            continue;
        enc_feature *f = &e->f[i];
        f->levels = malloc(nseen[i] * sizeof *f->levels);
        size_t *rank = malloc(nseen[i] * sizeof *rank);
        if (!f->levels || !rank) {
            free(rank);
            goto oom;
        }
        memcpy(f->levels, seen[i], nseen[i] * sizeof *f->levels);
        f->n_levels = nseen[i];
        nseen[i] = 0; /* the strings now belong to the encoding */
        qsort(f->levels, f->n_levels, sizeof *f->levels, cmp_str);
        for (size_t l = 0; l < f->n_levels; l++)
            for (size_t m = 0; m < f->n_levels; m++)
                if (seen[i][l] == f->levels[m])
                    rank[l] = m;
        for (size_t row = 0; row < n; row++)
            raw[row * nf + i] = (double)rank[(size_t)raw[row * nf + i]];
        free(rank);
    }
    if (finish_encoding(e))
        goto oom;
    X = calloc(n * e->d, sizeof *X);
    d = calloc(1, sizeof *d);
    if (!X || !d)
        goto oom;
    for (size_t row = 0; row < n; row++)
        for (size_t i = 0; i < nf; i++) {
            const enc_feature *f = &e->f[i];
            double v = raw[row * nf + i];
            if (f->type == CAMPAIGN_NUMBER)
                X[row * e->d + f->col] = v;
            else
                X[row * e->d + f->col + (size_t)v] = 1.0;
        }
    uint8_t dg[32];
    csv_sha256(r, dg);
    sha256_hex(dg, d->sha256);
    d->n = n;
    d->d = e->d;
    d->X = X;
    d->arm = arm;
    d->y = y;
    d->enc = e;
    *out = d;
    X = NULL;
    arm = NULL;
    y = NULL;
    e = NULL;
    d = NULL;
    st = RFM_OK;
    goto out; /* shared cleanup: what was handed over is NULL now */
oom:
    st = rfm_fail(err, errlen, RFM_ENOMEM, "%s: out of memory", path);
out:
    csv_close(r);
    for (size_t i = 0; seen && i < nf; i++) {
        for (size_t l = 0; nseen && l < nseen[i]; l++)
            free(seen[i][l]);
        free(seen[i]);
    }
    free(seen);
    free(nseen);
    free(col);
    free(raw);
    free(arm);
    free(y);
    free(X);
    free(d);
    campaign_encoding_free(e);
    return st;
}

rfm_status campaign_encode_json(const campaign_encoding *e, const json_t *features, double *x,
                                char *err, size_t errlen)
{
    if (!json_is_object(features))
        return rfm_fail(err, errlen, RFM_EINVAL, "features: expected an object");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)features, key, v)
    {
        size_t i = 0;
        while (i < e->n_features && strcmp(e->f[i].name, key))
            i++;
        if (i == e->n_features)
            return rfm_fail(err, errlen, RFM_EINVAL, "features.%s: unknown feature", key);
    }
    /* Validate everything before writing, so x is unchanged on failure. */
    for (size_t i = 0; i < e->n_features; i++) {
        const enc_feature *f = &e->f[i];
        v = json_object_get(features, f->name);
        if (!v)
            return rfm_fail(err, errlen, RFM_EINVAL, "features.%s: missing", f->name);
        if (f->type == CAMPAIGN_NUMBER) {
            if (!json_is_number(v) || !isfinite(json_number_value(v)))
                return rfm_fail(err, errlen, RFM_EINVAL, "features.%s: expected a number", f->name);
        } else {
            const char *s = json_string_value(v);
            if (!s)
                return rfm_fail(err, errlen, RFM_EINVAL, "features.%s: expected a string", f->name);
            if (!bsearch(&s, f->levels, f->n_levels, sizeof *f->levels, cmp_str))
                return rfm_fail(err, errlen, RFM_EINVAL, "features.%s: unknown category '%.60s'",
                                f->name, s);
        }
    }
    for (size_t i = 0; i < e->n_features; i++) {
        const enc_feature *f = &e->f[i];
        v = json_object_get(features, f->name);
        if (f->type == CAMPAIGN_NUMBER) {
            x[f->col] = json_number_value(v);
            continue;
        }
        const char *s = json_string_value(v);
        char **hit = bsearch(&s, f->levels, f->n_levels, sizeof *f->levels, cmp_str);
        for (size_t l = 0; l < f->n_levels; l++)
            x[f->col + l] = 0.0;
        x[f->col + (size_t)(hit - f->levels)] = 1.0;
    }
    return RFM_OK;
}

rfm_status campaign_encoding_to_json(const campaign_encoding *e, json_t **out, char *err,
                                     size_t errlen)
{
    json_t *j = json_object(), *fs = json_array(), *arms = json_array();
    int bad = !j || !fs || !arms;
    for (size_t i = 0; !bad && i < e->n_features; i++) {
        const enc_feature *f = &e->f[i];
        json_t *o = json_object();
        bad = !o || json_array_append_new(fs, o);
        if (bad)
            break;
        bad |= json_object_set_new(o, "name", json_string(f->name));
        bad |= json_object_set_new(o, "type",
                                   json_string(f->type == CAMPAIGN_NUMBER ? "number" : "category"));
        if (f->type == CAMPAIGN_CATEGORY) {
            json_t *lv = json_array();
            bad |= !lv || json_object_set_new(o, "levels", lv);
            for (size_t l = 0; !bad && l < f->n_levels; l++)
                bad |= json_array_append_new(lv, json_string(f->levels[l]));
        }
    }
    for (size_t k = 1; !bad && k <= e->n_arms; k++)
        bad |= json_array_append_new(arms, json_string(e->arm_names[k]));
    if (!bad) {
        bad |= json_object_set(j, "features", fs);
        bad |= json_object_set_new(j, "treatment", json_string(e->treatment));
        bad |= json_object_set_new(j, "control", json_string(e->arm_names[0]));
        bad |= json_object_set(j, "arms", arms);
        bad |= json_object_set_new(j, "outcome", json_string(e->outcome));
    }
    json_decref(fs);
    json_decref(arms);
    if (bad) {
        json_decref(j);
        return rfm_fail(err, errlen, RFM_ENOMEM, "campaign: out of memory writing JSON");
    }
    *out = j;
    return RFM_OK;
}

rfm_status campaign_encoding_from_json(const json_t *j, campaign_encoding **out, char *err,
                                       size_t errlen)
{
    const json_t *fs = json_object_get(j, "features"), *arms = json_object_get(j, "arms");
    const char *tr = json_string_value(json_object_get(j, "treatment"));
    const char *ctl = json_string_value(json_object_get(j, "control"));
    const char *oc = json_string_value(json_object_get(j, "outcome"));
    if (!json_is_array(fs) || json_array_size(fs) == 0 || json_array_size(fs) > 10000)
        return rfm_fail(err, errlen, RFM_EFORMAT, "campaign: field 'features' missing or invalid");
    if (!json_is_array(arms) || json_array_size(arms) == 0 || json_array_size(arms) > 64)
        return rfm_fail(err, errlen, RFM_EFORMAT, "campaign: field 'arms' missing or invalid");
    if (!tr)
        return rfm_fail(err, errlen, RFM_EFORMAT, "campaign: field 'treatment' missing or invalid");
    if (!ctl)
        return rfm_fail(err, errlen, RFM_EFORMAT, "campaign: field 'control' missing or invalid");
    if (!oc)
        return rfm_fail(err, errlen, RFM_EFORMAT, "campaign: field 'outcome' missing or invalid");
    size_t nf = json_array_size(fs), na = json_array_size(arms);
    campaign_feature *spec_f = calloc(nf, sizeof *spec_f);
    const char **arm_lv = calloc(na, sizeof *arm_lv);
    campaign_encoding *e = NULL;
    rfm_status st = RFM_EFORMAT;
    if (!spec_f || !arm_lv) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "campaign: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < nf; i++) {
        const json_t *o = json_array_get(fs, i);
        const char *t = json_string_value(json_object_get(o, "type"));
        spec_f[i].name = json_string_value(json_object_get(o, "name"));
        if (!spec_f[i].name || !t || (strcmp(t, "number") && strcmp(t, "category"))) {
            rfm_fail(err, errlen, st, "campaign: field 'features[%zu]' missing name or type", i);
            goto fail;
        }
        spec_f[i].type = strcmp(t, "number") ? CAMPAIGN_CATEGORY : CAMPAIGN_NUMBER;
    }
    for (size_t k = 0; k < na; k++)
        if (!(arm_lv[k] = json_string_value(json_array_get(arms, k)))) {
            rfm_fail(err, errlen, st, "campaign: field 'arms[%zu]' is not a string", k);
            goto fail;
        }
    campaign_spec s = {spec_f, nf, tr, ctl, arm_lv, na, oc};
    const char *why = campaign_check_spec(&s);
    if (why) {
        rfm_fail(err, errlen, st, "campaign: %s", why);
        goto fail;
    }
    e = encoding_from_spec(&s);
    if (!e) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "campaign: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < nf; i++) {
        if (spec_f[i].type != CAMPAIGN_CATEGORY)
            continue;
        const json_t *lv = json_object_get(json_array_get(fs, i), "levels");
        size_t nl = json_array_size(lv);
        if (!json_is_array(lv) || nl == 0 || nl > CAMPAIGN_MAX_LEVELS) {
            rfm_fail(err, errlen, st, "campaign: field 'features[%zu].levels' missing or invalid",
                     i);
            goto fail;
        }
        enc_feature *f = &e->f[i];
        f->levels = calloc(nl, sizeof *f->levels);
        if (!f->levels) {
            st = rfm_fail(err, errlen, RFM_ENOMEM, "campaign: out of memory");
            goto fail;
        }
        for (size_t l = 0; l < nl; l++) {
            const char *v = json_string_value(json_array_get(lv, l));
            /* Sorted and distinct, as campaign_read writes them: bsearch relies on it. */
            if (!v || (l > 0 && strcmp(f->levels[l - 1], v) >= 0)) {
                rfm_fail(err, errlen, st,
                         "campaign: field 'features[%zu].levels' not sorted distinct strings", i);
                goto fail;
            }
            if (!(f->levels[l] = strdup(v))) {
                st = rfm_fail(err, errlen, RFM_ENOMEM, "campaign: out of memory");
                goto fail;
            }
            f->n_levels = l + 1;
        }
    }
    if (finish_encoding(e)) {
        st = rfm_fail(err, errlen, RFM_ENOMEM, "campaign: out of memory");
        goto fail;
    }
    free(spec_f);
    free(arm_lv);
    *out = e;
    return RFM_OK;
fail:
    free(spec_f);
    free(arm_lv);
    campaign_encoding_free(e);
    return st;
}
