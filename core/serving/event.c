/* event.c - an event of the POST /events item schema from JSON (event.h). */
#include "event.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* The members of the Event schema an event is read from. */
enum {
    F_EVENT_ID,
    F_CUSTOMER_ID,
    F_TIME,
    F_INVOICE,
    F_PRODUCT,
    F_TYPE,
    F_AMOUNT,
    F_QUANTITY,
    F_PRICE,
    NFIELDS
};
static const char *const FIELD_NAME[NFIELDS] = {
    "event_id", "customer_id", "time", "invoice", "product", "type", "amount", "quantity", "price"};

/* A member's value as the checks see it: its JSON type and, for strings
 * and numbers, the value. V_OTHER: true, false, an object or an array. */
typedef enum { V_ABSENT = 0, V_NULL, V_STRING, V_INTEGER, V_REAL, V_OTHER } vtype;
typedef struct {
    vtype t;
    const char *s; /* V_STRING: NUL-terminated */
    long long i;   /* V_INTEGER */
    double d;      /* V_REAL */
} value;

static int is_number(const value *v) { return v->t == V_INTEGER || v->t == V_REAL; }
/* As jansson's json_number_value: an integer converted to double. */
static double number(const value *v) { return v->t == V_INTEGER ? (double)v->i : v->d; }
static int given(const value *v) { return v->t != V_ABSENT && v->t != V_NULL; }

/* Text of an id: a string as it is, an integer in decimal (ids exported as
 * numbers); else NULL. */
static const char *id_text(const value *v, char *buf, size_t len)
{
    if (v->t == V_STRING)
        return v->s;
    if (v->t == V_INTEGER) {
        snprintf(buf, len, "%lld", v->i);
        return buf;
    }
    return NULL;
}

/* The one set of checks of an event's members (f, indexed by F_*), from a
 * JSON object (event_from_json) or from the body's text (event_batch_read). */
static state_reason event_check(const value *f, const engagement_options *types, state_event *e,
                                event_ids *ids, const char **why)
{
    memset(e, 0, sizeof *e);
    if (f[F_EVENT_ID].t != V_STRING)
        return *why = "event_id: a string is required", STATE_BAD_EVENT_ID;
    e->event_id = f[F_EVENT_ID].s;
    if (!(e->customer_id = id_text(&f[F_CUSTOMER_ID], ids->text[0], sizeof ids->text[0])))
        return *why = "customer_id: a string (or integer) is required", STATE_MISSING_CUSTOMER;
    if (f[F_TIME].t != V_STRING)
        return *why = "time: an RFC 3339 string is required", STATE_BAD_TIME;
    e->time = f[F_TIME].s;
    if (given(&f[F_INVOICE]) &&
        !(e->invoice = id_text(&f[F_INVOICE], ids->text[1], sizeof ids->text[1])))
        return *why = "invoice: must be a string, an integer or null", STATE_BAD_TEXT;
    if (given(&f[F_PRODUCT])) {
        if (f[F_PRODUCT].t != V_STRING)
            return *why = "product: must be a string or null", STATE_BAD_TEXT;
        e->product = f[F_PRODUCT].s;
    }
    if (given(&f[F_TYPE])) {
        if (f[F_TYPE].t != V_STRING)
            return *why = "type: must be a string (a kind of events.types) or null", STATE_BAD_TYPE;
        e->type = f[F_TYPE].s;
    }
    int ti = types ? engagement_type_index(types, e->type, e->type ? strlen(e->type) : 0) : 0;
    if (ti < 0)
        return *why = "type: not a kind of events.types (the config)", STATE_BAD_TYPE;
    if (types && !types->type[ti].monetary)
        return STATE_OK; /* an interaction: no spend to read */
    const value *am = &f[F_AMOUNT], *q = &f[F_QUANTITY], *pr = &f[F_PRICE];
    if (am->t != V_ABSENT && (q->t != V_ABSENT || pr->t != V_ABSENT))
        return *why = "give amount, or quantity and price, not both", STATE_BAD_NUMBER;
    if (am->t != V_ABSENT) {
        if (!is_number(am))
            return *why = "amount: must be a number", STATE_BAD_NUMBER;
        e->has_amount = 1;
        e->amount = number(am);
    } else {
        if (!is_number(q) || !is_number(pr))
            return *why = "amount, or quantity and price, must be numbers", STATE_BAD_NUMBER;
        e->quantity = number(q);
        e->price = number(pr);
    }
    return STATE_OK;
}

state_reason event_from_json(const json_t *o, const engagement_options *types, state_event *e,
                             event_ids *ids, const char **why)
{
    if (!json_is_object(o)) {
        memset(e, 0, sizeof *e);
        return *why = "an event must be an object", STATE_BAD_EVENT_ID;
    }
    value f[NFIELDS];
    memset(f, 0, sizeof f);
    for (int k = 0; k < NFIELDS; k++) {
        const json_t *v = json_object_get(o, FIELD_NAME[k]);
        switch (v ? json_typeof(v) : JSON_NULL) {
        case JSON_NULL: f[k].t = v ? V_NULL : V_ABSENT; break;
        case JSON_STRING: f[k].t = V_STRING, f[k].s = json_string_value(v); break;
        case JSON_INTEGER: f[k].t = V_INTEGER, f[k].i = (long long)json_integer_value(v); break;
        case JSON_REAL: f[k].t = V_REAL, f[k].d = json_real_value(v); break;
        default: f[k].t = V_OTHER; break;
        }
    }
    return event_check(f, types, e, ids, why);
}

/* ---- the body read in one pass --------------------------------------------
 * A cursor over the body's copy; every function returns 0 on a byte it does
 * not take (the body is then EVENT_BODY_OTHER). */
typedef struct {
    char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int take(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A string without escapes at the cursor (after white space): *s is its
 * text, cut in place by a NUL over the closing quote, *n its length. */
static int read_string(cursor *c, const char **s, size_t *n)
{
    if (!take(c, '"'))
        return 0;
    char *start = c->p;
    for (;;) {
        if (c->p >= c->end)
            return 0;
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"')
            break;
        if (ch == '\\' || ch < 0x20)
            return 0;
        if (ch < 0x80) {
            c->p++;
        } else {
            size_t k = utf8_seq((const unsigned char *)c->p, (size_t)(c->end - c->p));
            if (!k)
                return 0;
            c->p += k;
        }
    }
    *s = start;
    *n = (size_t)(c->p - start);
    *c->p++ = '\0';
    return 1;
}

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* A number at the cursor, by jansson's grammar and conversions: without
 * '.', 'e' or 'E' an integer (strtoll; out of range is not taken: jansson
 * reads the whole body again with integers as reals), else a real (strtod;
 * overflow is not taken: jansson refuses it). */
static int read_number(cursor *c, value *v)
{
    const char *s = c->p, *e = c->end, *q = s;
    if (q < e && *q == '-')
        q++;
    if (q < e && *q == '0')
        q++;
    else if (q < e && is_digit(*q))
        while (q < e && is_digit(*q))
            q++;
    else
        return 0;
    int real = 0;
    if (q < e && *q == '.') {
        real = 1, q++;
        if (!(q < e && is_digit(*q)))
            return 0;
        while (q < e && is_digit(*q))
            q++;
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        real = 1, q++;
        if (q < e && (*q == '+' || *q == '-'))
            q++;
        if (!(q < e && is_digit(*q)))
            return 0;
        while (q < e && is_digit(*q))
            q++;
    }
    char buf[64];
    size_t n = (size_t)(q - s);
    if (n >= sizeof buf)
        return 0; /* a long one: left to jansson */
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *stop;
    errno = 0;
    if (real) {
        v->t = V_REAL, v->d = strtod(buf, &stop);
        if (!isfinite(v->d))
            return 0;
    } else {
        v->t = V_INTEGER, v->i = strtoll(buf, &stop, 10);
        if (errno == ERANGE)
            return 0;
    }
    if (stop != buf + n)
        return 0;
    c->p = (char *)q;
    return 1;
}

static int read_word(cursor *c, const char *w, size_t n)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

/* A scalar value: a string, a number, true, false or null. */
static int read_value(cursor *c, value *v)
{
    skip_ws(c);
    if (c->p >= c->end)
        return 0;
    size_t n;
    switch (*c->p) {
    case '"': return v->t = V_STRING, read_string(c, &v->s, &n);
    case 't': return v->t = V_OTHER, read_word(c, "true", 4);
    case 'f': return v->t = V_OTHER, read_word(c, "false", 5);
    case 'n': return v->t = V_NULL, read_word(c, "null", 4);
    default: return read_number(c, v);
    }
}

/* One event object: members of FIELD_NAME, each at most once. */
static int read_event(cursor *c, value *f)
{
    memset(f, 0, NFIELDS * sizeof *f);
    if (!take(c, '{'))
        return 0;
    if (take(c, '}'))
        return 1;
    do {
        const char *key;
        size_t n;
        if (!read_string(c, &key, &n) || !take(c, ':'))
            return 0;
        int k = 0;
        while (k < NFIELDS && !(strlen(FIELD_NAME[k]) == n && memcmp(FIELD_NAME[k], key, n) == 0))
            k++;
        if (k == NFIELDS || f[k].t != V_ABSENT || !read_value(c, &f[k]))
            return 0;
    } while (take(c, ','));
    return take(c, '}');
}

void event_batch_free(event_batch *b)
{
    free(b->ev);
    free(b->reason);
    free(b->why);
    free(b->ids);
    free(b->text);
    memset(b, 0, sizeof *b);
}

/* Room for the items of a batch: doubled as they come, up to max_items. */
static int grow(event_batch *b, size_t *cap, size_t max_items)
{
    size_t c = *cap ? *cap * 2 : 64;
    if (c > max_items)
        c = max_items;
    state_event *ev = realloc(b->ev, c * sizeof *ev);
    if (ev)
        b->ev = ev;
    state_reason *r = realloc(b->reason, c * sizeof *r);
    if (r)
        b->reason = r;
    const char **w = realloc(b->why, c * sizeof *w);
    if (w)
        b->why = w;
    /* Not realloc: the events' ids point into the old array until moved. */
    event_ids *ids = ev && r && w ? malloc(c * sizeof *ids) : NULL;
    if (!ids)
        return 0;
    for (size_t k = 0; k < b->n; k++) {
        ids[k] = b->ids[k];
        if (b->ev[k].customer_id == b->ids[k].text[0])
            b->ev[k].customer_id = ids[k].text[0];
        if (b->ev[k].invoice == b->ids[k].text[1])
            b->ev[k].invoice = ids[k].text[1];
    }
    free(b->ids);
    b->ids = ids;
    *cap = c;
    return 1;
}

event_body event_batch_read(const char *text, size_t len, size_t max_items,
                            const engagement_options *types, event_batch *b)
{
    memset(b, 0, sizeof *b);
    if (max_items == 0)
        return EVENT_BODY_OTHER;
    if (!(b->text = malloc(len + 1)))
        return EVENT_BODY_ENOMEM;
    memcpy(b->text, text, len);
    b->text[len] = '\0';
    cursor c = {b->text, b->text + len};
    const char *key;
    size_t n, cap = 0;
    if (!take(&c, '{') || !read_string(&c, &key, &n) || n != 6 || memcmp(key, "events", 6) != 0 ||
        !take(&c, ':') || !take(&c, '['))
        goto other;
    do {
        value f[NFIELDS];
        if (b->n == max_items || !read_event(&c, f))
            goto other;
        if (b->n == cap && !grow(b, &cap, max_items)) {
            event_batch_free(b);
            return EVENT_BODY_ENOMEM;
        }
        const char *why = NULL;
        b->reason[b->n] = event_check(f, types, &b->ev[b->n], &b->ids[b->n], &why);
        b->why[b->n] = b->reason[b->n] == STATE_OK ? NULL : why;
        b->n++;
    } while (take(&c, ','));
    if (!take(&c, ']') || !take(&c, '}'))
        goto other;
    skip_ws(&c);
    if (c.p != c.end)
        goto other;
    return EVENT_BODY_OK;
other:
    event_batch_free(b);
    return EVENT_BODY_OTHER;
}

const char *event_reason_message(state_reason r)
{
    switch (r) {
    case STATE_BAD_EVENT_ID: return "event_id: missing, empty or longer than 256 bytes";
    case STATE_MISSING_CUSTOMER: return "customer_id: missing, empty, nan/null/none or too long";
    case STATE_BAD_TIME:
        return "time: not an RFC 3339 time (2011-12-01T08:26:00Z) from 1900 to 9999";
    case STATE_BAD_NUMBER:
        return "amount, or quantity and price: one form only, finite, spend at most 1e298";
    case STATE_BAD_TEXT: return "invoice or product: longer than 256 bytes";
    case STATE_BAD_TYPE: return "type: not a kind of events.types (the config)";
    default: return state_reason_name(r);
    }
}
