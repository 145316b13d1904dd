/* ratelimit.c - sharded token buckets. */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NSHARDS 16
#define NCHAINS 64

typedef struct bucket {
    struct bucket *next;
    uint8_t key[32];
    double tokens, last;
} bucket;

typedef struct {
    pthread_mutex_t mu;
    bucket *chains[NCHAINS];
} shard;

struct ratelimit {
    double rate, burst;
    shard shards[NSHARDS];
};

ratelimit *ratelimit_new(double rate, double burst)
{
    if (!(rate > 0) || !(burst >= 1))
        return NULL;
    ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    rl->rate = rate;
    rl->burst = burst;
    for (int i = 0; i < NSHARDS; i++) {
        if (pthread_mutex_init(&rl->shards[i].mu, NULL) != 0) {
            while (i-- > 0)
                pthread_mutex_destroy(&rl->shards[i].mu);
            free(rl);
            return NULL;
        }
    }
    return rl;
}

void ratelimit_free(ratelimit *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < NSHARDS; i++) {
        for (int c = 0; c < NCHAINS; c++) {
            for (bucket *b = rl->shards[i].chains[c], *n; b; b = n) {
                n = b->next;
                free(b);
            }
        }
        pthread_mutex_destroy(&rl->shards[i].mu);
    }
    free(rl);
}

double ratelimit_take(ratelimit *rl, const uint8_t key[32], double now)
{
    /* The key is a digest: its bytes are already uniformly spread. */
    shard *s = &rl->shards[key[0] % NSHARDS];
    bucket **chain = &s->chains[key[1] % NCHAINS];
    double wait = 0;
    pthread_mutex_lock(&s->mu);
    bucket *b = *chain;
    while (b && memcmp(b->key, key, 32) != 0)
        b = b->next;
    if (!b) {
        b = malloc(sizeof *b);
        if (!b) {
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
        memcpy(b->key, key, 32);
        b->tokens = rl->burst;
        b->last = now;
        b->next = *chain;
        *chain = b;
    }
    if (now > b->last) { /* a clock read on another thread may lag by a hair */
        b->tokens += (now - b->last) * rl->rate;
        if (b->tokens > rl->burst)
            b->tokens = rl->burst;
        b->last = now;
    }
    if (b->tokens >= 1)
        b->tokens -= 1;
    else
        wait = (1 - b->tokens) / rl->rate;
    pthread_mutex_unlock(&s->mu);
    return wait;
}
