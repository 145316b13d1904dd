/* state_event.c - the pure part of the customer-state stores (state_event.h):
 * event times, validation and cleaning of one event (txn_classify), and the
 * invoice and line keys. Shared by the SQLite store (state.c) and the Redis
 * one (state_redis.c), so both clean and key events alike. */
#include "state_event.h"

#include <string.h>

#include "date.h"
#include "hash.h"

/* ---- time ---------------------------------------------------------- */

static int two(const char *s, int *v)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return 0;
    *v = (s[0] - '0') * 10 + (s[1] - '0');
    return 1;
}

/* Unix seconds and nanoseconds of an event time (state_parse_time). */
static int parse_time(const char *s, int64_t *secs, int32_t *nanos)
{
    size_t len = strlen(s);
    if (len < 10 || s[4] != '-' || s[7] != '-')
        return 0;
    int32_t day = date_parse(s, 10);
    if (day == DATE_NONE)
        return 0;
    int hh = 0, mm = 0, ss = 0;
    int32_t ns = 0;
    int64_t off = 0;
    size_t i = 10;
    if (i < len) {
        if ((s[i] != 'T' && s[i] != 't' && s[i] != ' ') || len < i + 6 || !two(s + i + 1, &hh) ||
            s[i + 3] != ':' || !two(s + i + 4, &mm))
            return 0;
        i += 6;
        if (i < len && s[i] == ':') {
            if (len < i + 3 || !two(s + i + 1, &ss))
                return 0;
            i += 3;
            if (i < len && s[i] == '.') {
                int nd = 0;
                for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nd++)
                    if (nd < 9)
                        ns = ns * 10 + (s[i] - '0');
                if (nd == 0)
                    return 0;
                for (; nd < 9; nd++)
                    ns *= 10;
            }
        }
        if (hh > 23 || mm > 59 || ss > 60)
            return 0;
        if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
            i++;
        } else if (i < len && (s[i] == '+' || s[i] == '-')) {
            int oh, om;
            if (len != i + 6 || !two(s + i + 1, &oh) || s[i + 3] != ':' || !two(s + i + 4, &om) ||
                oh > 23 || om > 59)
                return 0;
            off = (s[i] == '+' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60);
            i += 6;
        }
        if (i != len)
            return 0;
    }
    *secs = (int64_t)day * 86400 + hh * 3600 + mm * 60 + ss - off;
    *nanos = ns;
    return 1;
}

int state_parse_time(const char *s, int64_t *unix_s)
{
    int32_t ns;
    return s && parse_time(s, unix_s, &ns);
}

int32_t state_day_of(int64_t secs)
{
    int64_t d = secs / 86400;
    if (secs % 86400 < 0)
        d--;
    return (int32_t)d;
}

/* ---- one event ------------------------------------------------------ */

static int too_long(const char *s) { return s && strnlen(s, STATE_ID_MAX + 1) > STATE_ID_MAX; }

state_result state_classify(const state_event *e, const char *cancel_prefix, state_line *l)
{
    state_result r = {STATE_REJECTED, STATE_OK};
    if (!e->event_id || !e->event_id[0] || too_long(e->event_id)) {
        r.reason = STATE_BAD_EVENT_ID;
        return r;
    }
    if (too_long(e->customer_id)) {
        r.reason = STATE_MISSING_CUSTOMER;
        return r;
    }
    if (too_long(e->invoice) || too_long(e->product)) {
        r.reason = STATE_BAD_TEXT;
        return r;
    }
    int32_t nanos = 0;
    int32_t day = DATE_NONE;
    if (e->time && parse_time(e->time, &l->at, &nanos))
        day = state_day_of(l->at);
    double qty = e->has_amount ? e->amount : e->quantity; /* txn_classify: amount as qty */
    double price = e->has_amount ? 1.0 : e->price;
    const char *inv = e->invoice ? e->invoice : "";
    const char *cid = e->customer_id ? e->customer_id : "";
    txn_line tl;
    const char *cp = cancel_prefix ? cancel_prefix : "";
    txn_reason why = txn_classify(cid, strlen(cid), inv[0] ? inv : NULL, strlen(inv), cp,
                                  strlen(cp), 1, qty, price, e->has_amount, day, &tl);
    if (why == TXN_NREASONS && tl.spend < 0)
        why = TXN_RETURN; /* a return: counted and left out, as rfm-train does by default */
    switch (why) {
    case TXN_MISSING_ID: r.reason = STATE_MISSING_CUSTOMER; return r;
    case TXN_BAD_NUMBER: r.reason = STATE_BAD_NUMBER; return r;
    case TXN_BAD_DATE: r.reason = STATE_BAD_TIME; return r;
    case TXN_CANCELLED:
        r.outcome = STATE_IGNORED;
        r.reason = STATE_CANCELLED;
        return r;
    case TXN_NONPOS_QUANTITY:
    case TXN_ZERO_AMOUNT:
    case TXN_RETURN:
        r.outcome = STATE_IGNORED;
        r.reason = STATE_NONPOS_QUANTITY;
        return r;
    case TXN_NONPOS_PRICE:
        r.outcome = STATE_IGNORED;
        r.reason = STATE_NONPOS_PRICE;
        return r;
    default: break;
    }
    l->cid = tl.cid;
    l->cidlen = tl.cidlen;
    l->day = day;
    l->spend = tl.spend;
    /* Without an invoice, the customer's calendar day is the invoice, keyed
     * as rfm-train keys it (txn_invoice_key), so seeded and live purchases
     * of one day are one purchase. */
    l->ih = txn_invoice_key(inv[0] ? inv : NULL, strlen(inv), tl.cid, tl.cidlen, day);
    /* The line: what the trainer would compare of it (customer apart, which
     * keys the table): invoice, time, product, quantity, price. */
    struct {
        uint64_t ih;
        int64_t at;
        int64_t nanos;
        double qty, price;
    } key = {l->ih, l->at, nanos, e->has_amount ? 1.0 : qty, e->has_amount ? e->amount : price};
    uint64_t h = hash_bytes(&key, sizeof key, 0x11e5);
    if (e->product)
        h = hash_mix(h ^ hash_bytes(e->product, strlen(e->product), 0x9a0d));
    l->lh = h;
    r.outcome = STATE_APPLIED;
    return r;
}

/* An event of a kind not in the config. */
state_result state_bad_type(const state_event *e)
{
    state_result r = {STATE_REJECTED, STATE_BAD_TYPE};
    if (!e->event_id || !e->event_id[0] || too_long(e->event_id))
        r.reason = STATE_BAD_EVENT_ID;
    return r;
}

/* An interaction (a kind that is not monetary): an id, a customer and a
 * time; the rest of the event is not read. */
state_result state_classify_interaction(const state_event *e, state_line *l)
{
    state_result r = {STATE_REJECTED, STATE_OK};
    if (!e->event_id || !e->event_id[0] || too_long(e->event_id)) {
        r.reason = STATE_BAD_EVENT_ID;
        return r;
    }
    txn_line tl;
    const char *cid = e->customer_id ? e->customer_id : "";
    if (too_long(cid) ||
        txn_classify(cid, strlen(cid), NULL, 0, "", 0, 1, 1, 1, 0, 0, &tl) != TXN_NREASONS) {
        r.reason = STATE_MISSING_CUSTOMER;
        return r;
    }
    int32_t nanos;
    if (!e->time || !parse_time(e->time, &l->at, &nanos)) {
        r.reason = STATE_BAD_TIME;
        return r;
    }
    l->day = state_day_of(l->at);
    if (l->day < date_from_ymd(1900, 1, 1) || l->day > date_from_ymd(9999, 12, 31)) {
        r.reason = STATE_BAD_TIME;
        return r;
    }
    l->cid = tl.cid;
    l->cidlen = tl.cidlen;
    r.outcome = STATE_APPLIED;
    return r;
}

int state_norm_id(const char *customer_id, const char **cid, size_t *len)
{
    txn_line tl;
    if (!customer_id || txn_classify(customer_id, strlen(customer_id), NULL, 0, "", 0, 1, 1, 1, 0,
                                     0, &tl) != TXN_NREASONS)
        return 0;
    *cid = tl.cid;
    *len = tl.cidlen;
    return 1;
}
