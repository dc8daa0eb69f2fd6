/*
 * prng.h - tiny deterministic PRNG (splitmix64) for the C tests.
 *
 * Every random decision of the harness goes through one of these so that a run
 * is reproduced exactly from its printed seed, independently of libc's rand().
 */
#ifndef KCPX_C_TESTS_PRNG_H
#define KCPX_C_TESTS_PRNG_H

#include <stdint.h>

struct prng {
	uint64_t state;
};

static inline uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static inline uint64_t prng_next(struct prng *r)
{
	return splitmix64(&r->state);
}

static inline uint32_t prng_u32(struct prng *r)
{
	return (uint32_t)(prng_next(r) >> 32);
}

/* Uniform in [0, n); n == 0 yields 0. Multiply-shift: no modulo bias worth caring about. */
static inline uint32_t prng_below(struct prng *r, uint32_t n)
{
	return (uint32_t)(((uint64_t)prng_u32(r) * n) >> 32);
}

/* Uniform in [lo, hi] (inclusive); requires lo <= hi. */
static inline long long prng_range(struct prng *r, long long lo, long long hi)
{
	return lo + (long long)(prng_next(r) % (uint64_t)(hi - lo + 1));
}

/* True with probability num/den. */
static inline int prng_chance(struct prng *r, uint32_t num, uint32_t den)
{
	return prng_below(r, den) < num;
}

/* Picks one element of a small constant array. */
#define PRNG_PICK(r, array) ((array)[prng_below((r), (uint32_t)(sizeof(array) / sizeof((array)[0])))])

#endif
