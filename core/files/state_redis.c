/* state_redis.c - the customer-state store in Redis (layout and contract in
 * state_redis.h, design in docs/events.md).
 *
 * The C side cleans and keys each event (state_classify, shared with the
 * SQLite store) and sends the usable ones to a Lua script that does the
 * rest on the server: duplicate check, repeated lines, and the same fold
 * of a purchase into days, invoices and aggregates as state.c's
 * add_purchase. Numbers cross as text: days and times as integers, spend
 * as the shortest text that reads back exactly (numfmt_double here,
 * %.17g in Lua), so the sums are the same double additions as SQLite's.
 * Hashes (invoice, line) cross as 16 hex digits: Lua's numbers are
 * doubles and cannot hold 64 bits.
 *
 * Every key a script touches is built inside it from the prefix and the
 * customer id; they are not declared in KEYS. That is fine on one server
 * (this client talks to one); on Redis Cluster a batch would have to be
 * cut by hash slot (docs/events.md).
 */
#include "state_redis.h"

#include <hiredis/hiredis.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "date.h"
#include "numfmt.h"
#include "state_event.h"
#include "monotime.h"

/* ---- the scripts ----------------------------------------------------- */

/* add(k, cid, ih, day, spend, at): one purchase line into the customer's
 * days, invoices and aggregates, as state.c's add_purchase. */
#define LUA_ADD                                                                                    \
    "local function f17(x) return string.format('%.17g', x) end\n"                                 \
    "local function add(P, k, cid, ih, day, spend, at)\n"                                          \
    "  local ds = string.format('%d', day)\n"                                                      \
    "  local old = redis.call('HGET', k .. 'd', ds)\n"                                             \
    "  local dayspend, newday = spend, 1\n"                                                        \
    "  if old then dayspend = tonumber(old) + spend; newday = 0 end\n"                             \
    "  redis.call('HSET', k .. 'd', ds, f17(dayspend))\n"                                          \
    "  local oi = redis.call('HGET', k .. 'i', ih)\n"                                              \
    "  local newinv = 0\n"                                                                         \
    "  if not oi then redis.call('HSET', k .. 'i', ih, ds); newinv = 1\n"                          \
    "  elseif day < tonumber(oi) then redis.call('HSET', k .. 'i', ih, ds) end\n"                  \
    "  local a = redis.call('HMGET', k .. 'c', 'fd', 'ld', 'nd', 'ni', 'm', 'fs', 'at')\n"         \
    "  local nd = tonumber(a[3] or '0')\n"                                                         \
    "  local fd, ld = tonumber(a[1] or '0'), tonumber(a[2] or '0')\n"                              \
    "  local ni, m, fs = tonumber(a[4] or '0'), tonumber(a[5] or '0'), tonumber(a[6] or '0')\n"    \
    "  if nd == 0 or day < fd then fd = day; fs = dayspend\n"                                      \
    "  elseif day == fd then fs = dayspend end\n"                                                  \
    "  if nd == 0 or day > ld then ld = day end\n"                                                 \
    "  if nd == 0 then redis.call('SADD', P .. 'customers', cid) end\n"                            \
    "  local lat = a[7] and tonumber(a[7])\n"                                                      \
    "  if at and (not lat or at > lat) then lat = at end\n"                                        \
    "  local c = {k .. 'c', 'fd', string.format('%d', fd), 'ld', string.format('%d', ld),\n"       \
    "    'nd', string.format('%d', nd + newday), 'ni', string.format('%d', ni + newinv),\n"        \
    "    'm', f17(m + spend), 'fs', f17(fs)}\n"                                                    \
    "  if lat then c[14] = 'at'; c[15] = string.format('%d', lat) end\n"                           \
    "  redis.call('HSET', unpack(c))\n"                                                            \
    "end\n"

/* ARGV: prefix, ids kept per customer, n, then 8 per event: id, customer,
 * kind ("a" a purchase, "i" ignored by the cleaning), invoice key, line
 * hash, day, time, spend. Answers per event: 0 applied, 1 ignored, 2
 * duplicate, 3 repeated line. */
static const char LUA_APPLY[] =
    LUA_ADD "local P, smax, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
            "local base = redis.call('INCRBY', P .. 'seq', n) - n\n"
            "local out = {}\n"
            "for i = 1, n do\n"
            "  local b = 3 + (i - 1) * 8\n"
            "  local id, cid = ARGV[b + 1], ARGV[b + 2]\n"
            "  local k = P .. '{' .. cid .. '}:'\n"
            "  if redis.call('ZADD', k .. 's', 'NX', string.format('%d', base + i), id) == 0 then\n"
            "    out[i] = 2\n"
            "  else\n"
            "    local card = redis.call('ZCARD', k .. 's')\n"
            "    if card > smax then\n"
            "      redis.call('ZREMRANGEBYRANK', k .. 's', 0, card - smax - 1)\n"
            "    end\n"
            "    if ARGV[b + 3] ~= 'a' then\n"
            "      out[i] = 1\n"
            "    elseif redis.call('HSETNX', k .. 'l', ARGV[b + 5], ARGV[b + 4] .. ' ' ..\n"
            "        ARGV[b + 6] .. ' ' .. ARGV[b + 7] .. ' ' .. ARGV[b + 8]) == 0 then\n"
            "      out[i] = 3\n"
            "    else\n"
            "      add(P, k, cid, ARGV[b + 4], tonumber(ARGV[b + 6]), tonumber(ARGV[b + 8]),\n"
            "          tonumber(ARGV[b + 7]))\n"
            "      out[i] = 0\n"
            "    end\n"
            "  end\n"
            "end\n"
            "return out\n";

/* ARGV: prefix, customer, snapshot day, nd, then nd (day, spend), ni, then
 * ni (invoice key, day): the customer reset to the training run's
 * purchases, its lines before the snapshot dropped and the others applied
 * again; deleted when nothing is left. Answers 1 if it still exists. */
static const char LUA_SEED[] =
    LUA_ADD "local P, cid, snap = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
            "local k = P .. '{' .. cid .. '}:'\n"
            "local lat = redis.call('HGET', k .. 'c', 'at')\n"
            "redis.call('DEL', k .. 'c', k .. 'd', k .. 'i')\n"
            "local nd = tonumber(ARGV[4])\n"
            "local fd, ld, m, fs = 0, 0, 0, 0\n"
            "for j = 1, nd do\n"
            "  local ds, sp = ARGV[4 + 2 * j - 1], ARGV[4 + 2 * j]\n"
            "  local day, spend = tonumber(ds), tonumber(sp)\n"
            "  redis.call('HSET', k .. 'd', ds, sp)\n"
            "  if j == 1 or day < fd then fd = day; fs = spend end\n"
            "  if j == 1 or day > ld then ld = day end\n"
            "  m = m + spend\n"
            "end\n"
            "local b = 4 + 2 * nd + 1\n"
            "local ni = tonumber(ARGV[b])\n"
            "for j = 1, ni do\n"
            "  redis.call('HSET', k .. 'i', ARGV[b + 2 * j - 1], ARGV[b + 2 * j])\n"
            "end\n"
            "if nd > 0 then\n"
            "  redis.call('HSET', k .. 'c', 'fd', string.format('%d', fd), 'ld',\n"
            "    string.format('%d', ld), 'nd', string.format('%d', nd), 'ni',\n"
            "    string.format('%d', ni), 'm', f17(m), 'fs', f17(fs))\n"
            "end\n"
            "if lat then redis.call('HSET', k .. 'c', 'at', lat) end\n"
            "local lines = redis.call('HGETALL', k .. 'l')\n"
            "for j = 1, #lines, 2 do\n"
            "  local ih, day, at, spend = string.match(lines[j + 1], '(%S+) (%S+) (%S+) (%S+)')\n"
            "  day = tonumber(day)\n"
            "  if day < snap then redis.call('HDEL', k .. 'l', lines[j])\n"
            "  else add(P, k, cid, ih, day, tonumber(spend), tonumber(at)) end\n"
            "end\n"
            "if redis.call('HEXISTS', k .. 'c', 'nd') == 1 then\n"
            "  redis.call('SADD', P .. 'customers', cid)\n"
            "  return 1\n"
            "end\n"
            "redis.call('DEL', k .. 'c')\n"
            "redis.call('SREM', P .. 'customers', cid)\n"
            "return 0\n";

/* ARGV: lock key, token: delete the lock only if it is still ours. */
static const char LUA_UNLOCK[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

enum { SC_APPLY, SC_SEED, SC_UNLOCK, SC_N };
static const char *const SCRIPTS[SC_N] = {LUA_APPLY, LUA_SEED, LUA_UNLOCK};

struct rstate {
    redisContext *c; /* NULL: not connected (the next call connects) */
    char *url;       /* as given, for messages */
    char *host, *password;
    char *sock; /* redis+unix://: the server's Unix socket (host NULL) */
    int port, db;
    /* The read path's wire (rstate_get): its request as RESP text and its
     * answer, parsed in place; kept between calls, so a read allocates
     * nothing once they fit. rb holds rcap + 1 bytes (a NUL after the
     * answer). */
    char *wb, *rb;
    size_t wcap, wlen, rcap, rlen;
    int stale; /* the last read's connection was found closed or reset */
    rstate_options opt;
    char *cancel_prefix, *prefix; /* owned copies */
    char sha[SC_N][41];
    int32_t snapshot_day;
    engagement_options types; /* a copy of opt.types */
    int pk;                   /* the index of the purchase kind in types */
};

/* ---- options and URL ------------------------------------------------- */

void rstate_default_options(rstate_options *o)
{
    o->timeout_ms = 1000;
    o->seen_per_customer = 10000;
    o->cancel_prefix = "C";
    o->prefix = "rfm:";
    o->types = NULL;
}

const char *rstate_check_options(const rstate_options *o, char *buf, size_t len)
{
    if (o->timeout_ms < 1 || o->timeout_ms > 600000)
        snprintf(buf, len, "timeout_ms must be from 1 to 600000");
    else if (o->seen_per_customer < 10 || o->seen_per_customer > (uint64_t)1 << 40)
        snprintf(buf, len, "seen_ids_per_customer must be from 10 to 2^40");
    else if (!o->prefix || strlen(o->prefix) > 64)
        snprintf(buf, len, "the key prefix must be at most 64 bytes");
    else
        return NULL;
    return buf;
}

#define UNIX_SCHEME "redis+unix://"

int rstate_is_url(const char *path)
{
    return path && (strncmp(path, "redis://", 8) == 0 ||
                    strncmp(path, UNIX_SCHEME, sizeof UNIX_SCHEME - 1) == 0);
}

/* redis+unix://[:PASSWORD@]/PATH[?db=N]: the socket path and database. */
static const char *parse_unix(rstate *st, const char *p)
{
    if (*p != '/')
        return "the socket must be an absolute path: redis+unix:///run/redis/redis.sock";
    size_t pl = strcspn(p, "?");
    st->sock = strndup(p, pl);
    if (!st->sock)
        return "out of memory";
    if (pl >= sizeof((struct sockaddr_un *)0)->sun_path)
        return "the socket path is too long for a Unix socket";
    p += pl;
    if (*p == '?') {
        char *end;
        if (strncmp(p, "?db=", 4) != 0)
            return "the only query is ?db=N (redis+unix:///PATH?db=0)";
        long v = strtol(p + 4, &end, 10);
        if (end == p + 4 || *end || v < 0 || v > 1 << 20)
            return "the database must be a number (redis+unix:///PATH?db=0)";
        st->db = (int)v;
    }
    return NULL;
}

/* redis://[:PASSWORD@]HOST[:PORT][/DB] or redis+unix://[:PASSWORD@]/PATH
 * [?db=N] into st; a reason on failure. */
static const char *parse_url(rstate *st, const char *url)
{
    if (!rstate_is_url(url))
        return "must start with redis:// or redis+unix://";
    int unix_sock = strncmp(url, UNIX_SCHEME, sizeof UNIX_SCHEME - 1) == 0;
    const char *p = url + (unix_sock ? sizeof UNIX_SCHEME - 1 : 8), *at = strchr(p, '@');
    if (at) {
        if (*p != ':')
            return "a user name is not supported: redis://:PASSWORD@HOST:PORT/DB";
        st->password = strndup(p + 1, (size_t)(at - p - 1));
        if (!st->password)
            return "out of memory";
        p = at + 1;
    }
    if (unix_sock)
        return parse_unix(st, p);
    size_t hl = strcspn(p, ":/");
    if (hl == 0)
        return "no host: redis://HOST:PORT/DB";
    st->host = strndup(p, hl);
    if (!st->host)
        return "out of memory";
    p += hl;
    st->port = 6379;
    if (*p == ':') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v < 1 || v > 65535)
            return "the port must be from 1 to 65535";
        st->port = (int)v;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || v < 0 || v > 1 << 20)
            return "the database must be a number (redis://HOST:PORT/0)";
        st->db = (int)v;
        p = end;
    } else if (*p == '/') {
        p++;
    }
    if (*p)
        return "unexpected text after the host and port";
    return NULL;
}

/* ---- connection ------------------------------------------------------- */

static void drop(rstate *st)
{
    if (st->c)
        redisFree(st->c);
    st->c = NULL;
}

/* A failure of the connection (no answer, closed, timed out): dropped, so
 * that the next call connects again. */
static rfm_status io_fail(rstate *st, const char *what, char *err, size_t errlen)
{
    rfm_status s = rfm_fail(err, errlen, RFM_EIO,
                            "state %s: %s: %s (Redis unreachable or slower "
                            "than state.timeout_ms)",
                            st->url, what, st->c && st->c->errstr[0] ? st->c->errstr : "no answer");
    drop(st);
    return s;
}

/* An error reply: out of memory (maxmemory) is a full store. */
static rfm_status reply_fail(rstate *st, const char *what, const redisReply *r, char *err,
                             size_t errlen)
{
    const char *msg = r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply";
    if (strncmp(msg, "OOM", 3) == 0)
        return rfm_fail(err, errlen, RFM_ENOSPC,
                        "state %s: %s: Redis is full (maxmemory): %s; nothing of the batch was "
                        "written",
                        st->url, what, msg);
    return rfm_fail(err, errlen, RFM_EIO, "state %s: %s: %s", st->url, what, msg);
}

static redisReply *cmd(rstate *st, int argc, const char **argv, const size_t *len)
{
    return redisCommandArgv(st->c, argc, argv, len);
}

/* A command of plain C strings. */
static redisReply *cmdv(rstate *st, int argc, ...)
{
    const char *argv[8];
    size_t len[8];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc && i < 8; i++) {
        argv[i] = va_arg(ap, const char *);
        len[i] = strlen(argv[i]);
    }
    va_end(ap);
    return cmd(st, argc, argv, len);
}

static int is_str(const redisReply *r)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

static rfm_status load_scripts(rstate *st, char *err, size_t errlen)
{
    for (int k = 0; k < SC_N; k++) {
        redisReply *r = cmdv(st, 3, "SCRIPT", "LOAD", SCRIPTS[k]);
        if (!r)
            return io_fail(st, "SCRIPT LOAD", err, errlen);
        if (!is_str(r) || r->len != 40) {
            rfm_status s = reply_fail(st, "SCRIPT LOAD", r, err, errlen);
            freeReplyObject(r);
            return s;
        }
        memcpy(st->sha[k], r->str, 41);
        freeReplyObject(r);
    }
    return RFM_OK;
}

static rfm_status read_meta(rstate *st, char *err, size_t errlen)
{
    char key[96], fmt[16];
    snprintf(key, sizeof key, "%smeta", st->prefix);
    snprintf(fmt, sizeof fmt, "%d", RSTATE_FORMAT);
    redisReply *r = cmdv(st, 4, "HSETNX", key, "format", fmt);
    if (!r)
        return io_fail(st, "meta", err, errlen);
    freeReplyObject(r);
    r = cmdv(st, 4, "HMGET", key, "format", "snapshot_day");
    if (!r)
        return io_fail(st, "meta", err, errlen);
    rfm_status s = RFM_OK;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !is_str(r->element[0])) {
        s = reply_fail(st, "meta", r, err, errlen);
    } else if (atoi(r->element[0]->str) != RSTATE_FORMAT) {
        s = rfm_fail(err, errlen, RFM_EFORMAT,
                     "state %s: %s holds format %s, this build reads format %d: use another "
                     "database or prefix (it is seeded from the models and the events are sent "
                     "again)",
                     st->url, key, r->element[0]->str, RSTATE_FORMAT);
    } else {
        st->snapshot_day =
            is_str(r->element[1]) ? (int32_t)atoi(r->element[1]->str) : (int32_t)DATE_NONE;
    }
    freeReplyObject(r);
    return s;
}

/* Connect, authenticate, select the database, load the scripts, read the
 * meta hash. On failure st->c is NULL. */
static rfm_status connect_to(rstate *st, char *err, size_t errlen)
{
    struct timeval tv = {st->opt.timeout_ms / 1000, (st->opt.timeout_ms % 1000) * 1000};
    st->c = st->sock ? redisConnectUnixWithTimeout(st->sock, tv)
                     : redisConnectWithTimeout(st->host, st->port, tv);
    if (!st->c)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    /* The timeout holds for every later answer too: SO_RCVTIMEO and
     * SO_SNDTIMEO on the socket, which the read path's own recv and send
     * obey as hiredis's calls do. */
    if (st->c->err || redisSetTimeout(st->c, tv) != REDIS_OK)
        return io_fail(st, "connect", err, errlen);
    if (!st->sock) {
        /* A request is one small write then a wait for the answer: no
         * Nagle delay (hiredis sets it too; said here since the latency
         * depends on it); keepalive finds a peer gone without a word. */
        int one = 1;
        setsockopt(st->c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        redisEnableKeepAlive(st->c);
    }
    redisReply *r;
    if (st->password) {
        if (!(r = cmdv(st, 2, "AUTH", st->password)))
            return io_fail(st, "AUTH", err, errlen);
        if (r->type == REDIS_REPLY_ERROR) {
            rfm_status s = reply_fail(st, "AUTH", r, err, errlen);
            freeReplyObject(r);
            drop(st);
            return s;
        }
        freeReplyObject(r);
    }
    if (st->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", st->db);
        if (!(r = cmdv(st, 2, "SELECT", db)))
            return io_fail(st, "SELECT", err, errlen);
        if (r->type == REDIS_REPLY_ERROR) {
            rfm_status s = reply_fail(st, "SELECT", r, err, errlen);
            freeReplyObject(r);
            drop(st);
            return s;
        }
        freeReplyObject(r);
    }
    rfm_status s = load_scripts(st, err, errlen);
    if (s == RFM_OK)
        s = read_meta(st, err, errlen);
    if (s != RFM_OK)
        drop(st);
    return s;
}

static rfm_status ready(rstate *st, char *err, size_t errlen)
{
    return st->c ? RFM_OK : connect_to(st, err, errlen);
}

void rstate_close(rstate *st)
{
    if (!st)
        return;
    drop(st);
    free(st->url);
    free(st->host);
    free(st->sock);
    free(st->wb);
    free(st->rb);
    free(st->password);
    free(st->cancel_prefix);
    free(st->prefix);
    free(st);
}

rfm_status rstate_open(const char *url, const rstate_options *opt, rstate **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    char why[128];
    if (rstate_check_options(opt, why, sizeof why))
        return rfm_fail(err, errlen, RFM_EINVAL, "state: %s", why);
    rstate *st = calloc(1, sizeof *st);
    if (!st)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    st->opt = *opt;
    if (opt->types)
        st->types = *opt->types;
    else
        engagement_default_options(&st->types);
    st->opt.types = &st->types;
    /* The kind SQLite gives seeded purchases (state.c load_types). */
    st->pk = engagement_type_index(&st->types, NULL, 0);
    if (st->pk < 0 || !st->types.type[st->pk].monetary)
        for (st->pk = 0; st->pk < (int)st->types.ntypes && !st->types.type[st->pk].monetary;
             st->pk++)
            ;
    if (st->pk >= (int)st->types.ntypes) {
        free(st);
        return rfm_fail(err, errlen, RFM_EINVAL, "state: events.types has no monetary kind");
    }
    /* Messages name the URL without its password. */
    const char *pw_end = rstate_is_url(url) ? strchr(url, '@') : NULL;
    const char *scheme =
        strncmp(url, UNIX_SCHEME, sizeof UNIX_SCHEME - 1) == 0 ? UNIX_SCHEME : "redis://";
    size_t ulen = pw_end ? strlen(pw_end) + 24 : 0;
    if (pw_end && (st->url = malloc(ulen)) != NULL)
        snprintf(st->url, ulen, "%s:***%s", scheme, pw_end);
    else if (!pw_end)
        st->url = strdup(url);
    st->cancel_prefix = strdup(opt->cancel_prefix ? opt->cancel_prefix : "");
    st->prefix = strdup(opt->prefix);
    st->snapshot_day = DATE_NONE;
    if (!st->url || !st->cancel_prefix || !st->prefix) {
        rstate_close(st);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    const char *bad = parse_url(st, url);
    if (bad) {
        rfm_status s = rfm_fail(err, errlen, RFM_EINVAL,
                                "state %s: %s (redis://[:PASSWORD@]HOST[:PORT][/DB] or "
                                "redis+unix://[:PASSWORD@]/PATH[?db=N])",
                                url, bad);
        rstate_close(st);
        return s;
    }
    rfm_status s = connect_to(st, err, errlen);
    if (s != RFM_OK) {
        rstate_close(st);
        return s;
    }
    *out = st;
    return RFM_OK;
}

int32_t rstate_snapshot_day(const rstate *st) { return st->snapshot_day; }

rfm_status rstate_check(rstate *st, char *err, size_t errlen)
{
    rfm_status s = ready(st, err, errlen);
    if (s != RFM_OK)
        return s;
    redisReply *r = cmdv(st, 1, "PING");
    if (!r)
        return io_fail(st, "PING", err, errlen);
    s = is_str(r) ? RFM_OK : reply_fail(st, "PING", r, err, errlen);
    freeReplyObject(r);
    return s;
}

/* ---- scripts ------------------------------------------------------------ */

/* EVALSHA of script k with argv[3..] set by the caller (argv[0..2] are
 * filled here); loaded again and retried once on NOSCRIPT (a server
 * restarted or flushed since connect). NULL: the connection failed. */
static redisReply *eval(rstate *st, int k, int argc, const char **argv, size_t *len)
{
    argv[0] = "EVALSHA", len[0] = 7;
    argv[1] = st->sha[k], len[1] = 40;
    argv[2] = "0", len[2] = 1;
    redisReply *r = cmd(st, argc, argv, len);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        char e[8];
        if (load_scripts(st, e, sizeof e) != RFM_OK)
            return NULL;
        argv[1] = st->sha[k];
        r = cmd(st, argc, argv, len);
    }
    return r;
}

/* ---- apply -------------------------------------------------------------- */

typedef struct {
    char ih[17], lh[17], day[12], at[24], spend[NUMFMT_LEN];
} line_text;

/* One script's worth: ev[0..n), n <= RSTATE_SCRIPT_MAX. */
static rfm_status apply_chunk(rstate *st, const state_event *ev, size_t n, state_result *results,
                              char *err, size_t errlen)
{
    size_t cap = 6 + 8 * n;
    const char **argv = malloc(cap * sizeof *argv);
    size_t *len = malloc(cap * sizeof *len);
    line_text *t = malloc((n ? n : 1) * sizeof *t);
    size_t *slot = malloc((n ? n : 1) * sizeof *slot); /* event -> script item, or SIZE_MAX */
    if (!argv || !len || !t || !slot) {
        free(argv), free(len), free(t), free(slot);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    }
    char smax[24], count[24];
    snprintf(smax, sizeof smax, "%llu", (unsigned long long)st->opt.seen_per_customer);
    int argc = 6;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        state_line l;
        int ti = engagement_type_index(&st->types, ev[i].type, ev[i].type ? strlen(ev[i].type) : 0);
        if (ti == st->pk)
            results[i] = state_classify(&ev[i], st->cancel_prefix, &l);
        else /* not in the config, or a kind kept in SQLite only (RSTATE_TYPE_REFUSAL) */
            results[i] = state_bad_type(&ev[i]);
        slot[i] = SIZE_MAX;
        if (results[i].outcome == STATE_REJECTED)
            continue;
        const char *cid = ev[i].customer_id;
        size_t cidlen = strlen(cid);
        int applied = results[i].outcome == STATE_APPLIED;
        if (applied) {
            cid = l.cid, cidlen = l.cidlen;
            snprintf(t[m].ih, sizeof t[m].ih, "%016llx", (unsigned long long)l.ih);
            snprintf(t[m].lh, sizeof t[m].lh, "%016llx", (unsigned long long)l.lh);
            snprintf(t[m].day, sizeof t[m].day, "%d", (int)l.day);
            snprintf(t[m].at, sizeof t[m].at, "%lld", (long long)l.at);
            numfmt_double(l.spend, t[m].spend);
        } else {
            /* Ignored: only the id is recorded, under the normalised customer. */
            if (!state_norm_id(ev[i].customer_id, &cid, &cidlen))
                cid = ev[i].customer_id, cidlen = strlen(cid);
            t[m].ih[0] = t[m].lh[0] = t[m].day[0] = t[m].at[0] = t[m].spend[0] = '\0';
        }
        const char *v[8] = {ev[i].event_id, cid,     applied ? "a" : "i", t[m].ih, t[m].lh,
                            t[m].day,       t[m].at, t[m].spend};
        for (int k = 0; k < 8; k++) {
            argv[argc] = v[k];
            len[argc] = k == 1 ? cidlen : strlen(v[k]);
            argc++;
        }
        slot[i] = m++;
    }
    rfm_status s = RFM_OK;
    if (m > 0) {
        snprintf(count, sizeof count, "%zu", m);
        argv[3] = st->prefix, len[3] = strlen(st->prefix);
        argv[4] = smax, len[4] = strlen(smax);
        argv[5] = count, len[5] = strlen(count);
        redisReply *r = eval(st, SC_APPLY, argc, argv, len);
        if (!r) {
            s = io_fail(st, "apply", err, errlen);
        } else if (r->type != REDIS_REPLY_ARRAY || r->elements != m) {
            s = reply_fail(st, "apply", r, err, errlen);
        } else {
            for (size_t i = 0; i < n; i++) {
                if (slot[i] == SIZE_MAX)
                    continue;
                const redisReply *e = r->element[slot[i]];
                long long code = e->type == REDIS_REPLY_INTEGER ? e->integer : -1;
                if (code == 2)
                    results[i] = (state_result){STATE_DUPLICATE, STATE_OK};
                else if (code == 3)
                    results[i] = (state_result){STATE_IGNORED, STATE_REPEATED_LINE};
                else if (code != 0 && code != 1)
                    s = rfm_fail(err, errlen, RFM_EIO, "state %s: apply: unexpected answer",
                                 st->url);
                /* 0 and 1: as classified (applied; ignored with its reason). */
            }
        }
        if (r)
            freeReplyObject(r);
    }
    free(argv), free(len), free(t), free(slot);
    return s;
}

rfm_status rstate_apply(rstate *st, const state_event *ev, size_t n, state_result *results,
                        char *err, size_t errlen)
{
    rfm_status s = ready(st, err, errlen);
    for (size_t at = 0; s == RFM_OK && at < n; at += RSTATE_SCRIPT_MAX)
        s = apply_chunk(st, ev + at, n - at < RSTATE_SCRIPT_MAX ? n - at : RSTATE_SCRIPT_MAX,
                        results + at, err, errlen);
    return s;
}

/* ---- read: the wire ------------------------------------------------------ */

/* A read is the hot path of every replica (GET /customers/{id}), so it
 * skips hiredis: it writes its commands as RESP text into st->wb and parses
 * the answer in place in st->rb, buffers kept between calls; no allocation
 * once they fit, one send and usually one recv. It uses the socket of the
 * hiredis connection while hiredis has nothing pending on it (every other
 * call waits for all its answers before returning), so the two never
 * interleave; a failure drops the connection for both. */

#define RB_START 16384             /* the answer buffer at first */
#define RB_KEEP (256u << 10)       /* larger after a read: given back */
#define RB_MAX ((size_t)256 << 20) /* an answer larger than this is refused */

/* A connection failure on the read path: as io_fail, with the reason the
 * system call gave (errno 0: closed by the server). st->stale: whether
 * the connection was found closed or reset (not a timeout). */
static rfm_status wire_fail(rstate *st, int e, char *err, size_t errlen)
{
    st->stale = e != EAGAIN && e != EWOULDBLOCK;
    const char *why = e == 0                            ? "connection closed by the server"
                      : e == EAGAIN || e == EWOULDBLOCK ? "no answer within state.timeout_ms"
                                                        : strerror(e);
    rfm_status s = rfm_fail(err, errlen, RFM_EIO,
                            "state %s: get: %s (Redis unreachable or slower than "
                            "state.timeout_ms)",
                            st->url, why);
    drop(st);
    return s;
}

/* Room for n more bytes in st->wb. */
static int wb_room(rstate *st, size_t n)
{
    if (st->wlen + n <= st->wcap)
        return 0;
    size_t cap = st->wcap ? st->wcap : 512;
    while (cap < st->wlen + n)
        cap *= 2;
    char *b = realloc(st->wb, cap);
    if (!b)
        return -1;
    st->wb = b, st->wcap = cap;
    return 0;
}

/* A RESP header line: the type byte t, n in decimal, CRLF (sprintf
 * costs ten times as much). */
static char *put_head(char *w, char t, size_t n)
{
    *w++ = t;
    w += numfmt_int64((int64_t)n, w);
    *w++ = '\r', *w++ = '\n';
    return w;
}

/* Append one command (argv[0..argc), lengths len) as RESP. */
static int wb_cmd(rstate *st, int argc, const char *const *argv, const size_t *len)
{
    size_t need = 16;
    for (int i = 0; i < argc; i++)
        need += len[i] + 24;
    if (wb_room(st, need) != 0)
        return -1;
    char *w = st->wb + st->wlen;
    w = put_head(w, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        w = put_head(w, '$', len[i]);
        memcpy(w, argv[i], len[i]);
        w += len[i];
        *w++ = '\r', *w++ = '\n';
    }
    st->wlen = (size_t)(w - st->wb);
    return 0;
}

/* The number of a RESP header line b[0..e) (after its type byte): 1, or 0
 * when it is not a decimal integer. */
static int resp_num(const char *b, const char *e, long long *n)
{
    int neg = b < e && *b == '-';
    b += neg;
    if (b == e || e - b > 18)
        return 0;
    long long v = 0;
    for (; b < e; b++) {
        if (*b < '0' || *b > '9')
            return 0;
        v = v * 10 + (*b - '0');
    }
    *n = neg ? -v : v;
    return 1;
}

/* Past one whole RESP value at b[*pos..len): 1 (*pos after it), 0 when
 * it is not all there yet (*pos unchanged), -1 when it is not RESP.
 * Arrays nest at most 4 deep (the read's answers nest 2). */
static int resp_skip(const char *b, size_t len, size_t *pos, int depth)
{
    size_t i = *pos;
    const char *e = i < len ? memchr(b + i, '\r', len - i) : NULL;
    if (!e || (size_t)(e - b) + 1 >= len)
        return 0;
    if (e[1] != '\n')
        return -1;
    size_t next = (size_t)(e - b) + 2;
    long long n = 0;
    switch (b[i]) {
    case '+':
    case '-':
    case ':': *pos = next; return 1;
    case '$':
        if (!resp_num(b + i + 1, e, &n) || n < -1)
            return -1;
        if (n >= 0) {
            if (len - next < (size_t)n + 2)
                return 0;
            if (b[next + (size_t)n] != '\r' || b[next + (size_t)n + 1] != '\n')
                return -1;
            next += (size_t)n + 2;
        }
        *pos = next;
        return 1;
    case '*':
        if (!resp_num(b + i + 1, e, &n) || n < -1 || depth >= 4)
            return -1;
        *pos = next;
        for (long long k = 0; k < n; k++) {
            int r = resp_skip(b, len, pos, depth + 1);
            if (r <= 0) {
                *pos = i;
                return r;
            }
        }
        return 1;
    default: return -1;
    }
}

/* Send st->wb and read until nrep whole answers are in st->rb (and
 * nothing more). A connection failure drops it (wire_fail). */
static rfm_status exchange(rstate *st, int nrep, char *err, size_t errlen)
{
    int fd = st->c->fd;
    const char *w = st->wb;
    size_t left = st->wlen;
    while (left) {
        ssize_t k = send(fd, w, left, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return wire_fail(st, k < 0 ? errno : EPIPE, err, errlen);
        w += k, left -= (size_t)k;
    }
    st->rlen = 0;
    size_t pos = 0; /* after the whole answers so far */
    int whole = 0;
    while (whole < nrep) {
        if (st->rlen == st->rcap) {
            size_t cap = st->rcap * 2;
            char *b = cap <= RB_MAX ? realloc(st->rb, cap + 1) : NULL;
            if (!b) {
                rfm_status s = rfm_fail(err, errlen, RFM_EIO,
                                        "state %s: get: an answer over %zu MiB (or out of "
                                        "memory)",
                                        st->url, RB_MAX >> 20);
                drop(st);
                return s;
            }
            st->rb = b, st->rcap = cap;
        }
        ssize_t k = recv(fd, st->rb + st->rlen, st->rcap - st->rlen, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return wire_fail(st, k < 0 ? errno : 0, err, errlen);
        st->rlen += (size_t)k;
        st->rb[st->rlen] = '\0';
        int r = 1;
        while (whole < nrep && (r = resp_skip(st->rb, st->rlen, &pos, 0)) == 1)
            whole++;
        if (r < 0 || (whole == nrep && pos != st->rlen)) {
            rfm_status s =
                rfm_fail(err, errlen, RFM_EIO, "state %s: get: not a Redis answer", st->url);
            drop(st);
            return s;
        }
    }
    return RFM_OK;
}

/* A cursor over answers exchange found whole. */
typedef struct {
    const char *b;
    size_t pos, len;
} cur;

/* One string of an answer (a bulk string or a status line); p NULL: nil
 * or another kind. */
typedef struct {
    const char *p;
    size_t n;
} slice;

/* The value at c: its type byte, its header's number (n, for '$' and '*')
 * and line (the text of a status or error); c moves past the header, and
 * past a bulk string's bytes. */
static char take(cur *c, long long *n, slice *line)
{
    const char *h = c->b + c->pos, *e = strchr(h, '\r');
    char t = *h;
    *n = 0;
    if (line)
        *line = (slice){h + 1, (size_t)(e - h - 1)};
    resp_num(h + 1, e, n);
    c->pos = (size_t)(e - c->b) + 2;
    if (t == '$' && *n > 0)
        c->pos += (size_t)*n + 2;
    else if (t == '$' && *n == 0)
        c->pos += 2;
    return t;
}

/* A bulk string at c (nil or another kind: p NULL; an array is skipped
 * whole). */
static slice take_str(cur *c)
{
    size_t at = c->pos;
    long long n;
    char t = take(c, &n, NULL);
    if (t == '*') {
        c->pos = at;
        resp_skip(c->b, c->len, &c->pos, 0);
    }
    if (t != '$' || n < 0)
        return (slice){NULL, 0};
    const char *h = strchr(c->b + at, '\n') + 1;
    return (slice){h, (size_t)n};
}

/* The number a string holds, as strtod reads it (nil: 0). Up to 15
 * digits without a sign or point (days, counts) are read here: exact
 * below 2^53, so the same double strtod gives, for a fifth of its cost. */
static double num_of(slice v)
{
    char t[64];
    if (!v.p)
        return 0;
    if (v.n >= 1 && v.n <= 15) {
        long long x = 0;
        size_t i = 0;
        while (i < v.n && v.p[i] >= '0' && v.p[i] <= '9')
            x = x * 10 + (v.p[i++] - '0');
        if (i == v.n)
            return (double)x;
    }
    size_t n = v.n < sizeof t ? v.n : sizeof t - 1;
    memcpy(t, v.p, n);
    t[n] = '\0';
    return strtod(t, NULL);
}

/* ---- read --------------------------------------------------------------- */

/* The customer's aggregates (a: fd ld nd ni m fs at, HMGET's seven
 * answers) and, when the day falls inside its history, the sums of its
 * days and invoices before the day (d: HGETALL of the days, nd2 strings;
 * iv: HVALS of the invoices, niv strings), summed in the hash's order (the
 * order the former read script summed them in: the same double additions).
 * d NULL: every purchase is before the day. */
static void fill(rstate *st, const slice *a, cur *d, long long nd2, cur *iv, long long niv,
                 int32_t asof, state_customer *out)
{
    if (a[6].p) {
        char t[32];
        size_t n = a[6].n < sizeof t ? a[6].n : sizeof t - 1;
        memcpy(t, a[6].p, n);
        t[n] = '\0';
        out->last_event_at = strtoll(t, NULL, 10);
    }
    txn_features *f = &out->f;
    double first, last, ndays, first_spend;
    if (!d) {
        first = num_of(a[0]);
        last = num_of(a[1]);
        ndays = num_of(a[2]);
        f->frequency = num_of(a[3]);
        f->monetary = num_of(a[4]);
        first_spend = num_of(a[5]);
    } else {
        double m = 0, fs = 0, fspend = 0;
        long long nd = 0, fdays = 0, ninv = 0;
        int32_t fd = 0, ld = 0;
        for (long long j = 0; j + 1 < nd2; j += 2) {
            int32_t day = (int32_t)num_of(take_str(d));
            double sp = num_of(take_str(d));
            if (day >= asof) {
                fdays++;
                fspend += sp;
            } else {
                m += sp;
                if (nd == 0 || day < fd)
                    fd = day, fs = sp;
                if (nd == 0 || day > ld)
                    ld = day;
                nd++;
            }
        }
        if (nd > 0)
            for (long long j = 0; j < niv; j++)
                if (num_of(take_str(iv)) < asof)
                    ninv++;
        f->future_days = (double)fdays;
        f->future_spend = fspend;
        if (nd == 0)
            return;
        f->monetary = m;
        f->frequency = (double)ninv;
        ndays = (double)nd;
        first = fd, last = ld, first_spend = fs;
    }
    /* Engagement: purchases of the one kind kept (RSTATE_TYPE_REFUSAL). */
    out->type_count[st->pk] = f->frequency;
    out->interactions = f->frequency;
    out->weighted = f->frequency * st->types.type[st->pk].weight;
    out->last_interaction_day = (int32_t)last;
    txn_features_finish(f, asof, first, last, ndays, f->monetary, first_spend, 0.0);
}

/* HMGET's seven answers at c into a: 1, or 0 when c holds another kind
 * (then *bad is its error line, if it is one). */
static int take_aggr(cur *c, slice *a, slice *bad)
{
    long long n;
    size_t at = c->pos;
    slice line;
    char t = take(c, &n, &line);
    if (t != '*' || n != 7) {
        if (t == '-' && !bad->p)
            *bad = line;
        c->pos = at;
        return 0;
    }
    for (int k = 0; k < 7; k++)
        a[k] = take_str(c);
    return 1;
}

/* An array of strings at c: its length (*n), c at its first element; 0
 * when c holds another kind (*bad its error line, if one). */
static int take_array(cur *c, long long *n, slice *bad)
{
    slice line;
    char t = take(c, n, &line);
    if (t == '-' && !bad->p)
        *bad = line;
    return t == '*' && *n >= 0;
}

/* The commands of a read into st->wb: as of today the HMGET alone; inside
 * the history MULTI, HMGET, HGETALL of the days, HVALS of the invoices,
 * EXEC. key (klen bytes, ending in 'c') is changed and put back. */
static int build_get(rstate *st, char *key, size_t klen, int history)
{
    static const char *const fields[7] = {"fd", "ld", "nd", "ni", "m", "fs", "at"};
    const char *argv[9] = {"HMGET", key};
    size_t len[9] = {5, klen};
    for (int k = 0; k < 7; k++)
        argv[2 + k] = fields[k], len[2 + k] = strlen(fields[k]);
    st->wlen = 0;
    const char *one[1] = {"MULTI"};
    size_t ol[1] = {5};
    if (history && wb_cmd(st, 1, one, ol) != 0)
        return -1;
    if (wb_cmd(st, 9, argv, len) != 0)
        return -1;
    if (history) {
        const char *hv[2] = {"HGETALL", key};
        size_t hl[2] = {7, klen};
        key[klen - 1] = 'd';
        int rc = wb_cmd(st, 2, hv, hl);
        hv[0] = "HVALS", hl[0] = 5;
        key[klen - 1] = 'i';
        rc = rc ? rc : wb_cmd(st, 2, hv, hl);
        key[klen - 1] = 'c';
        one[0] = "EXEC", ol[0] = 4;
        if (rc || wb_cmd(st, 1, one, ol) != 0)
            return -1;
    }
    return 0;
}

/* A read is plain commands, no script: Redis runs a script's commands
 * through Lua (more CPU, bench/bench_redis.sh), and a read needs no more
 * isolation MULTI/EXEC gives as well. A day after the wall clock's (a
 * read as of today) asks for the aggregates alone (HMGET, one command,
 * atomic); the rare customer with an event dated later is read again with
 * its history. An earlier day sends MULTI, the HMGET, HGETALL of the days,
 * HVALS of the invoices and EXEC in one write (one round trip; a batch
 * is seen whole or not at all, as with a script). An unknown customer is
 * the HMGET's nils either way: 404 after one round trip. */
rfm_status rstate_get(rstate *st, const char *customer_id, int32_t asof, state_customer *out,
                      char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->last_event_at = INT64_MIN;
    out->last_interaction_day = DATE_NONE;
    const char *id;
    size_t idlen;
    if (!state_norm_id(customer_id, &id, &idlen))
        return rfm_fail(err, errlen, RFM_ENOTFOUND, "no customer id");
    int reused = st->c != NULL; /* may have been closed by the server since */
    rfm_status s = ready(st, err, errlen);
    if (s != RFM_OK)
        return s;
    if (!st->rb) {
        if (!(st->rb = malloc(RB_START + 1)))
            return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
        st->rcap = RB_START;
    }
    size_t pl = strlen(st->prefix);
    char kbuf[256], *key = idlen + pl + 4 <= sizeof kbuf ? kbuf : malloc(idlen + pl + 4);
    if (!key)
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
    /* prefix {id}: then c, d or i (state_redis.h) */
    memcpy(key, st->prefix, pl);
    key[pl] = '{';
    memcpy(key + pl + 1, id, idlen);
    memcpy(key + pl + 1 + idlen, "}:c", 3);
    size_t klen = pl + idlen + 4;
    int64_t today = (int64_t)time(NULL) / 86400;
    int history = asof <= today;
    for (int pass = 0; pass < 2; pass++) {
        if (build_get(st, key, klen, history) != 0) {
            s = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            break;
        }
        /* history: MULTI, HMGET, HGETALL, HVALS, EXEC (5 answers, the
         * last the three results); else the HMGET's alone. */
        st->stale = 0;
        s = exchange(st, history ? 5 : 1, err, errlen);
        if (s != RFM_OK && st->stale && reused) {
            /* A connection closed while idle (Redis restarted, or its
             * client timeout): a read is safe to send again, once, on a
             * new connection; a timeout is not retried (the 503 comes
             * within state.timeout_ms). */
            reused = 0;
            if ((s = ready(st, err, errlen)) == RFM_OK && build_get(st, key, klen, history) != 0)
                s = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            if (s == RFM_OK)
                s = exchange(st, history ? 5 : 1, err, errlen);
        }
        if (s != RFM_OK)
            break;
        cur c = {st->rb, 0, st->rlen}, d = c, iv = c;
        slice a[7], bad = {NULL, 0};
        long long nd2 = 0, niv = 0, n;
        int ok = 1;
        if (history) {
            for (int k = 0; k < 4; k++) { /* +OK, +QUEUED x3, or errors */
                slice line;
                if (take(&c, &n, &line) == '-' && !bad.p)
                    bad = line;
            }
            ok = take_array(&c, &n, &bad) && n == 3 && take_aggr(&c, a, &bad) &&
                 take_array(&c, &nd2, &bad);
            if (ok) {
                d = c;
                for (long long j = 0; j < nd2; j++)
                    take_str(&c);
                ok = take_array(&c, &niv, &bad);
                iv = c;
            }
        } else {
            ok = take_aggr(&c, a, &bad);
        }
        if (!ok) {
            const char *msg = bad.p ? bad.p : "unexpected reply";
            int ml = bad.p ? (int)(bad.n > 200 ? 200 : bad.n) : (int)strlen(msg);
            s = rfm_fail(err, errlen, strncmp(msg, "OOM", 3) == 0 ? RFM_ENOSPC : RFM_EIO,
                         "state %s: get: %.*s", st->url, ml, msg);
            break;
        }
        int known = a[2].p != NULL;
        int later = known && !history && asof <= num_of(a[1]);
        if (!known) {
            s = rfm_fail(err, errlen, RFM_ENOTFOUND, "customer %.*s: not in the state",
                         (int)(idlen > 200 ? 200 : idlen), id);
            break;
        }
        if (!later) {
            int inside = history && asof <= num_of(a[1]);
            fill(st, a, inside ? &d : NULL, nd2, &iv, niv, asof, out);
            break;
        }
        history = 1; /* an event dated after the day: read with the history */
    }
    if (st->rb && st->rcap > RB_KEEP) { /* a rare large answer: its room given back */
        char *b = realloc(st->rb, RB_START + 1);
        if (b)
            st->rb = b, st->rcap = RB_START;
    }
    if (key != kbuf)
        free(key);
    return s;
}

rfm_status rstate_count(rstate *st, uint64_t *customers, char *err, size_t errlen)
{
    rfm_status s = ready(st, err, errlen);
    if (s != RFM_OK)
        return s;
    char key[96];
    snprintf(key, sizeof key, "%scustomers", st->prefix);
    redisReply *r = cmdv(st, 2, "SCARD", key);
    if (!r)
        return io_fail(st, "count", err, errlen);
    if (r->type == REDIS_REPLY_INTEGER)
        *customers = (uint64_t)r->integer;
    else
        s = reply_fail(st, "count", r, err, errlen);
    freeReplyObject(r);
    return s;
}

/* ---- seed --------------------------------------------------------------- */

/* The training run's purchases, per customer: days then invoices. */
typedef struct {
    size_t nc;
    size_t *nd, *ni;       /* per customer */
    size_t *doff, *ioff;   /* offsets into the arrays below */
    int32_t *dday, *iday;  /* days; invoices' days */
    double *dspend;        /* spend of each day */
    uint64_t *ih;          /* invoice keys */
    size_t fill_d, fill_i; /* counting pass (0) or filling pass (1) */
    int pass;
} purchases;

static int count_day(void *u, size_t c, int32_t day, double spend)
{
    purchases *p = u;
    if (p->pass == 0) {
        p->nd[c]++;
    } else {
        size_t k = p->doff[c]++;
        p->dday[k] = day;
        p->dspend[k] = spend;
    }
    return 0;
}

static int count_inv(void *u, size_t c, uint64_t ih, int32_t day)
{
    purchases *p = u;
    if (p->pass == 0) {
        p->ni[c]++;
    } else {
        size_t k = p->ioff[c]++;
        p->ih[k] = ih;
        p->iday[k] = day;
    }
    return 0;
}

static void purchases_free(purchases *p)
{
    free(p->nd), free(p->ni), free(p->doff), free(p->ioff);
    free(p->dday), free(p->iday), free(p->dspend), free(p->ih);
}

static int purchases_of(const txn_data *d, purchases *p)
{
    memset(p, 0, sizeof *p);
    p->nc = txn_ncustomers(d);
    size_t nc1 = p->nc + 1;
    p->nd = calloc(nc1, sizeof *p->nd), p->ni = calloc(nc1, sizeof *p->ni);
    p->doff = calloc(nc1, sizeof *p->doff), p->ioff = calloc(nc1, sizeof *p->ioff);
    if (!p->nd || !p->ni || !p->doff || !p->ioff)
        return -1;
    txn_each_purchase(d, count_day, count_inv, p);
    size_t td = 0, ti = 0;
    for (size_t c = 0; c < p->nc; c++) {
        p->doff[c] = td, td += p->nd[c];
        p->ioff[c] = ti, ti += p->ni[c];
    }
    p->dday = malloc((td + 1) * sizeof *p->dday), p->dspend = malloc((td + 1) * sizeof *p->dspend);
    p->iday = malloc((ti + 1) * sizeof *p->iday), p->ih = malloc((ti + 1) * sizeof *p->ih);
    if (!p->dday || !p->dspend || !p->iday || !p->ih)
        return -1;
    p->pass = 1;
    txn_each_purchase(d, count_day, count_inv, p);
    for (size_t c = 0; c < p->nc; c++) { /* back to the starts */
        p->doff[c] -= p->nd[c];
        p->ioff[c] -= p->ni[c];
    }
    return 0;
}

/* Queue the seed script of one customer (nd days, ni invoices from p's
 * customer c, or none when c is SIZE_MAX) on the connection. */
static int queue_seed(rstate *st, const purchases *p, size_t c, const char *id, size_t idlen,
                      const char *snap)
{
    size_t nd = c == SIZE_MAX ? 0 : p->nd[c], ni = c == SIZE_MAX ? 0 : p->ni[c];
    size_t argc = 8 + 2 * nd + 2 * ni;
    const char **argv = malloc(argc * sizeof *argv);
    size_t *len = malloc(argc * sizeof *len);
    size_t tcap = 32 + (nd + ni) * (40 + NUMFMT_LEN);
    char *text = malloc(tcap);
    if (!argv || !len || !text) {
        free(argv), free(len), free(text);
        return -1;
    }
    char *w = text;
#define PUT(s, n) (argv[k] = (s), len[k] = (n), k++)
#define PUTF(...)                                                                                  \
    do {                                                                                           \
        int wn = snprintf(w, tcap - (size_t)(w - text), __VA_ARGS__);                              \
        PUT(w, (size_t)wn);                                                                        \
        w += wn + 1;                                                                               \
    } while (0)
    size_t k = 0;
    PUT("EVALSHA", 7);
    PUT(st->sha[SC_SEED], 40);
    PUT("0", 1);
    PUT(st->prefix, strlen(st->prefix));
    PUT(id, idlen);
    PUT(snap, strlen(snap));
    PUTF("%zu", nd);
    for (size_t j = 0; j < nd; j++) {
        PUTF("%d", (int)p->dday[p->doff[c] + j]);
        size_t sl = numfmt_double(p->dspend[p->doff[c] + j], w);
        PUT(w, sl);
        w += sl + 1;
    }
    PUTF("%zu", ni);
    for (size_t j = 0; j < ni; j++) {
        PUTF("%016llx", (unsigned long long)p->ih[p->ioff[c] + j]);
        PUTF("%d", (int)p->iday[p->ioff[c] + j]);
    }
#undef PUT
#undef PUTF
    int rc = redisAppendCommandArgv(st->c, (int)k, argv, len);
    free(argv), free(len), free(text);
    return rc == REDIS_OK ? 0 : -1;
}

/* Read the answers of q queued commands; the first failure wins. */
static rfm_status drain(rstate *st, size_t q, char *err, size_t errlen)
{
    rfm_status s = RFM_OK;
    for (size_t i = 0; i < q; i++) {
        void *v;
        if (redisGetReply(st->c, &v) != REDIS_OK)
            return io_fail(st, "seed", err, errlen);
        redisReply *r = v;
        if (s == RFM_OK && r->type == REDIS_REPLY_ERROR)
            s = reply_fail(st, "seed", r, err, errlen);
        freeReplyObject(r);
    }
    return s;
}

#define SEED_LOCK_MS 30000 /* the lock's expiry, refreshed while seeding */
#define SEED_WAIT_S 600    /* how long a replica waits for another's seed */
#define SEED_PIPE 200      /* customers per pipelined round */

/* Take the seed lock: 1 taken, 0 held by another, -1 connection failed. */
static int lock_take(rstate *st, const char *key, const char *token)
{
    char ms[16];
    snprintf(ms, sizeof ms, "%d", SEED_LOCK_MS);
    redisReply *r = cmdv(st, 6, "SET", key, token, "NX", "PX", ms);
    if (!r)
        return -1;
    int got = is_str(r) && strcmp(r->str, "OK") == 0;
    freeReplyObject(r);
    return got;
}

static rfm_status seed_all(rstate *st, const txn_data *d, const char *lockkey, char *err,
                           size_t errlen);

rfm_status rstate_seed(rstate *st, const txn_data *d, int *seeded, char *err, size_t errlen)
{
    int32_t snap = txn_snapshot_day(d);
    if (seeded)
        *seeded = 0;
    rfm_status s = ready(st, err, errlen);
    if (s != RFM_OK)
        return s;
    char lockkey[96], token[64];
    snprintf(lockkey, sizeof lockkey, "%sseedlock", st->prefix);
    char host[40] = "";
    gethostname(host, sizeof host - 1);
    snprintf(token, sizeof token, "%.32s:%d:%lld", host, (int)getpid(), (long long)time(NULL));
    double t0 = monotime_s();
    for (;;) {
        if ((s = read_meta(st, err, errlen)) != RFM_OK)
            return s;
        if (st->snapshot_day != DATE_NONE && snap == st->snapshot_day)
            return RFM_OK;
        if (st->snapshot_day != DATE_NONE && snap < st->snapshot_day) {
            char a[11], b[11];
            date_format(snap, a);
            date_format(st->snapshot_day, b);
            return rfm_fail(err, errlen, RFM_EINVAL,
                            "state %s: the training run's snapshot %s is older than the "
                            "store's %s: serve newer models, or use another database to seed "
                            "it again",
                            st->url, a, b);
        }
        int got = lock_take(st, lockkey, token);
        if (got < 0)
            return io_fail(st, "seed lock", err, errlen);
        if (got)
            break;
        if (monotime_s() - t0 > SEED_WAIT_S)
            return rfm_fail(err, errlen, RFM_EBUSY,
                            "state %s: another replica has been seeding for %d s (%s); try "
                            "again later",
                            st->url, SEED_WAIT_S, lockkey);
        usleep(100000);
    }
    /* Ours: seeded by another meanwhile? */
    s = read_meta(st, err, errlen);
    if (s == RFM_OK && !(st->snapshot_day != DATE_NONE && st->snapshot_day >= snap)) {
        s = seed_all(st, d, lockkey, err, errlen);
        if (s == RFM_OK && seeded)
            *seeded = 1;
    }
    if (st->c) {
        const char *argv[5] = {0, 0, 0, lockkey, token};
        size_t len[5] = {0, 0, 0, strlen(lockkey), strlen(token)};
        argv[0] = "EVALSHA", len[0] = 7;
        argv[1] = st->sha[SC_UNLOCK], len[1] = 40;
        argv[2] = "1", len[2] = 1;
        redisReply *r = cmd(st, 5, argv, len);
        if (r)
            freeReplyObject(r);
    }
    return s;
}

/* Seed every customer of d, then every other customer of the store (its
 * lines before the snapshot dropped), then the snapshot in meta. */
static rfm_status seed_all(rstate *st, const txn_data *d, const char *lockkey, char *err,
                           size_t errlen)
{
    int32_t snap_day = txn_snapshot_day(d);
    char snap[16], ms[16];
    snprintf(snap, sizeof snap, "%d", (int)snap_day);
    snprintf(ms, sizeof ms, "%d", SEED_LOCK_MS);
    purchases p;
    if (purchases_of(d, &p) != 0) {
        purchases_free(&p);
        return rfm_fail(err, errlen, RFM_ENOMEM, "out of memory seeding %zu customers",
                        txn_ncustomers(d));
    }
    rfm_status s = RFM_OK;
    size_t q = 0;
    for (size_t c = 0; c < p.nc && s == RFM_OK; c++) {
        const char *id = txn_customer_id(d, c);
        if (queue_seed(st, &p, c, id, strlen(id), snap) != 0) {
            s = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            break;
        }
        if (++q == SEED_PIPE || c + 1 == p.nc) {
            s = drain(st, q, err, errlen);
            q = 0;
            redisReply *r = s == RFM_OK ? cmdv(st, 3, "PEXPIRE", lockkey, ms) : NULL;
            if (s == RFM_OK && !r)
                s = io_fail(st, "seed lock", err, errlen);
            if (r)
                freeReplyObject(r);
        }
    }
    /* The store's customers that the training run does not have. */
    char key[96], cursor[32] = "0";
    snprintf(key, sizeof key, "%scustomers", st->prefix);
    while (s == RFM_OK) {
        redisReply *r = cmdv(st, 5, "SSCAN", key, cursor, "COUNT", "1000");
        if (!r) {
            s = io_fail(st, "seed", err, errlen);
            break;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !is_str(r->element[0]) ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            s = reply_fail(st, "seed", r, err, errlen);
            freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        q = 0;
        for (size_t j = 0; j < r->element[1]->elements && s == RFM_OK; j++) {
            const redisReply *e = r->element[1]->element[j];
            if (!is_str(e) || txn_find(d, e->str) >= 0)
                continue;
            if (queue_seed(st, &p, SIZE_MAX, e->str, e->len, snap) != 0)
                s = rfm_fail(err, errlen, RFM_ENOMEM, "out of memory");
            else
                q++;
        }
        freeReplyObject(r);
        if (s == RFM_OK)
            s = drain(st, q, err, errlen);
        if (strcmp(cursor, "0") == 0)
            break;
    }
    purchases_free(&p);
    if (s != RFM_OK)
        return s;
    char meta[96];
    snprintf(meta, sizeof meta, "%smeta", st->prefix);
    redisReply *r = cmdv(st, 4, "HSET", meta, "snapshot_day", snap);
    if (!r)
        return io_fail(st, "seed", err, errlen);
    if (r->type == REDIS_REPLY_ERROR)
        s = reply_fail(st, "seed", r, err, errlen);
    else
        st->snapshot_day = snap_day;
    freeReplyObject(r);
    return s;
}
