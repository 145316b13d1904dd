/* engagement.c - engagement scores (engagement.h). */
#include "engagement.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void engagement_default_options(engagement_options *o)
{
    memset(o, 0, sizeof *o);
    static const engagement_type def[] = {
        {"purchase", 1.0, 1}, {"web_visit", 0.1, 0}, {"lead", 5.0, 0}};
    memcpy(o->type, def, sizeof def);
    o->ntypes = sizeof def / sizeof *def;
    const double r[4] = {7, 30, 90, 180}, c[4] = {2, 5, 10, 25};
    memcpy(o->recency_days, r, sizeof r);
    memcpy(o->count, c, sizeof c);
    memcpy(o->weighted, c, sizeof c);
}

static int increasing(const double e[4])
{
    for (int i = 0; i < 4; i++)
        if (!isfinite(e[i]) || e[i] < 0 || (i && e[i] <= e[i - 1]))
            return 0;
    return 1;
}

const char *engagement_check_options(const engagement_options *o, char *buf, size_t len)
{
    int monetary = 0;
    if (o->ntypes < 1 || o->ntypes > ENGAGEMENT_TYPES_MAX) {
        snprintf(buf, len, "types: from 1 to %d kinds", ENGAGEMENT_TYPES_MAX);
        return buf;
    }
    for (size_t i = 0; i < o->ntypes; i++) {
        const engagement_type *t = &o->type[i];
        size_t n = strnlen(t->name, sizeof t->name);
        if (n == 0 || n > ENGAGEMENT_NAME_MAX ||
            strspn(t->name, "abcdefghijklmnopqrstuvwxyz"
                            "0123456789_") != n) {
            snprintf(buf, len, "types: '%.64s' is not a name of 1-64 letters a-z, digits or _",
                     t->name);
            return buf;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(o->type[j].name, t->name) == 0) {
                snprintf(buf, len, "types: %s twice", t->name);
                return buf;
            }
        if (!isfinite(t->weight) || t->weight < 0) {
            snprintf(buf, len, "types.%s.weight must be a number >= 0", t->name);
            return buf;
        }
        monetary |= t->monetary;
    }
    if (!monetary)
        snprintf(buf, len, "types: at least one kind must be monetary (the purchases)");
    else if (!increasing(o->recency_days))
        snprintf(buf, len, "engagement.recency_days: four increasing numbers >= 0");
    else if (!increasing(o->count))
        snprintf(buf, len, "engagement.count: four increasing numbers >= 0");
    else if (!increasing(o->weighted))
        snprintf(buf, len, "engagement.weighted: four increasing numbers >= 0");
    else
        return NULL;
    return buf;
}

int engagement_type_index(const engagement_options *o, const char *name, size_t len)
{
    if (!name)
        name = ENGAGEMENT_DEFAULT_TYPE, len = strlen(name);
    for (size_t i = 0; i < o->ntypes; i++)
        if (strlen(o->type[i].name) == len && memcmp(o->type[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* 1 + the number of edges at or below v. */
static int above(const double e[4], double v)
{
    int s = 1;
    for (int i = 0; i < 4; i++)
        s += v >= e[i];
    return s;
}

void engagement_score(const engagement_options *o, int32_t last_day, int32_t asof_day, double count,
                      double weighted, engagement_result *r)
{
    memset(r, 0, sizeof *r);
    r->recency_score = r->count_score = r->weighted_score = 1;
    r->segment = ENGAGEMENT_DORMANT;
    if (count <= 0)
        return;
    r->count = count;
    r->weighted = weighted;
    r->recency = (double)asof_day - (double)last_day;
    /* recency: 5 up to the first edge (inclusive), 1 past the last. */
    int rs = 5;
    for (int i = 0; i < 4; i++)
        rs -= r->recency > o->recency_days[i];
    r->recency_score = rs;
    r->count_score = above(o->count, count);
    r->weighted_score = above(o->weighted, weighted);
    if (rs >= 4 && (r->count_score >= 4 || r->weighted_score >= 4))
        r->segment = ENGAGEMENT_HIGHLY_ENGAGED;
    else if (rs >= 3)
        r->segment = ENGAGEMENT_ENGAGED;
    else if (rs == 2)
        r->segment = ENGAGEMENT_COOLING;
}

const char *engagement_segment_name(engagement_segment s)
{
    static const char *const names[] = {"highly_engaged", "engaged", "cooling", "dormant"};
    return (unsigned)s < 4 ? names[s] : "unknown";
}
