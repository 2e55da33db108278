/*
 * slora_rate.h: a tenant's request rate (the catalog's `rate`, requests a
 * second) as a token bucket.
 *
 * The one idea: the bucket holds one second's requests (at least one) and
 * fills at the rate, so a quiet tenant may send that many at once and a
 * busy one gets the rate on average; a request takes one. A request the
 * bucket refuses is told how long until one will be there, which the
 * client hears as Retry-After. The bucket is two numbers kept by its
 * owner (the engine keeps one on each tenant's catalog entry); a bucket
 * never used is full.
 */

#ifndef SLORA_RATE_H
#define SLORA_RATE_H


#include <stdint.h>


typedef struct {
    double     tokens;          /* requests it may start now */
    int64_t    at_ns;           /* when tokens was reckoned
                                   (CLOCK_MONOTONIC); 0: never, full */
} slora_rate_t;


/* Takes one request from b at rate (requests a second, > 0) at now_ns:
 * 1 if it goes; 0 if not, with *retry_ms (at least 1) until it would.
 * A rate changed since the last take applies from now. */
int slora_rate_take(slora_rate_t *b, double rate, int64_t now_ns,
    int32_t *retry_ms);


#endif /* SLORA_RATE_H */
