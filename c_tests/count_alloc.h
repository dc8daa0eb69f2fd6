/*
 * count_alloc.h - counting ikcp_allocator hooks.
 *
 * ikcp_allocator() takes bare malloc/free pointers with no context argument, so
 * one pair of hook functions exists per "slot": the differential harness gives
 * pristine ikcp.c and libkcpx a slot each and checks both for leaks.
 * Each block carries a header with a magic number and its size, so the hooks
 * can count outstanding bytes and notice a free of memory they never handed out
 * (or a double free) instead of corrupting the heap.
 */
#ifndef KCPX_C_TESTS_COUNT_ALLOC_H
#define KCPX_C_TESTS_COUNT_ALLOC_H

#include <stddef.h>

#define COUNT_ALLOC_SLOTS 2

struct alloc_stats {
	unsigned long long mallocs;     /* successful hook mallocs */
	unsigned long long frees;       /* hook frees of non-NULL pointers */
	long long outstanding_bytes;    /* sum of sizes allocated and not yet freed */
	unsigned long long bad_frees;   /* frees of pointers without our header */
	unsigned long long null_frees;  /* free(NULL): harmless, counted apart */
	unsigned long long refused;     /* mallocs failed on purpose (count_alloc_fail_after) */
};

typedef void *(*count_malloc_fn)(size_t size);
typedef void (*count_free_fn)(void *ptr);

/* The hook pair of one slot, to pass to ikcp_allocator. */
count_malloc_fn count_alloc_malloc(int slot);
count_free_fn count_alloc_free(int slot);

/* Live statistics of one slot. */
struct alloc_stats *count_alloc_stats(int slot);

/*
 * Makes the slot's malloc hook return NULL once `successes` more calls have
 * succeeded (0: the next call fails); a negative value never fails (default).
 */
void count_alloc_fail_after(int slot, long long successes);

/* Prints the slot's statistics and returns 1 if balanced and clean, else 0. */
int count_alloc_balanced(int slot, const char *label);

#endif
