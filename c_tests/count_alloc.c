/* count_alloc.c - see count_alloc.h. */
#include "count_alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE_MAGIC 0x6b63707841484452ull /* "kcpxAHDR" */
#define DEAD_MAGIC 0x6465616462656566ull /* "deadbeef" */

/* 16 bytes keep the returned pointer as aligned as malloc's own. */
struct block_header {
	uint64_t magic;
	uint64_t size;
};

static struct alloc_stats stats[COUNT_ALLOC_SLOTS];
static long long fail_after[COUNT_ALLOC_SLOTS] = {-1, -1};

static void *hook_malloc(int slot, size_t size)
{
	struct block_header *h;
	if (fail_after[slot] == 0) {
		stats[slot].refused++;
		return NULL;
	}
	if (fail_after[slot] > 0) fail_after[slot]--;
	h = malloc(sizeof(*h) + size);
	if (h == NULL) return NULL;
	h->magic = LIVE_MAGIC;
	h->size = size;
	stats[slot].mallocs++;
	stats[slot].outstanding_bytes += (long long)size;
	return h + 1;
}

static void hook_free(int slot, void *ptr)
{
	struct block_header *h;
	if (ptr == NULL) {
		stats[slot].null_frees++;
		return;
	}
	h = (struct block_header *)ptr - 1;
	if (h->magic != LIVE_MAGIC) {
		/* Not ours, or already freed: leak it rather than corrupt the heap. */
		stats[slot].bad_frees++;
		return;
	}
	h->magic = DEAD_MAGIC;
	stats[slot].frees++;
	stats[slot].outstanding_bytes -= (long long)h->size;
	free(h);
}

static void *malloc0(size_t size) { return hook_malloc(0, size); }
static void *malloc1(size_t size) { return hook_malloc(1, size); }
static void free0(void *ptr) { hook_free(0, ptr); }
static void free1(void *ptr) { hook_free(1, ptr); }

count_malloc_fn count_alloc_malloc(int slot)
{
	return slot == 0 ? malloc0 : malloc1;
}

count_free_fn count_alloc_free(int slot)
{
	return slot == 0 ? free0 : free1;
}

struct alloc_stats *count_alloc_stats(int slot)
{
	return &stats[slot];
}

void count_alloc_fail_after(int slot, long long successes)
{
	fail_after[slot] = successes;
}

int count_alloc_balanced(int slot, const char *label)
{
	const struct alloc_stats *s = &stats[slot];
	int ok = s->mallocs == s->frees && s->outstanding_bytes == 0 && s->bad_frees == 0;
	printf("%s allocator: mallocs=%llu frees=%llu outstanding=%lld bad_frees=%llu null_frees=%llu%s\n",
	       label, s->mallocs, s->frees, s->outstanding_bytes, s->bad_frees, s->null_frees,
	       ok ? "" : "  <-- UNBALANCED");
	return ok;
}
