/*
 * check.h - minimal assertions for the C tests: report every failed check
 * (file, line, expression, optional detail) and keep going, so that one run
 * shows all problems; main() returns check_exit_code().
 */
#ifndef KCPX_C_TESTS_CHECK_H
#define KCPX_C_TESTS_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			check_failures++;                                                    \
		}                                                                            \
	} while (0)

/* CHECK that two integers are equal, printing both values on failure. */
#define CHECK_EQ(actual, expected)                                                                      \
	do {                                                                                            \
		long long check_a_ = (long long)(actual), check_e_ = (long long)(expected);             \
		if (check_a_ != check_e_) {                                                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (got %lld, expected %lld)\n",    \
				__FILE__, __LINE__, #actual, #expected, check_a_, check_e_);            \
			check_failures++;                                                               \
		}                                                                                       \
	} while (0)

static inline int check_exit_code(const char *program)
{
	if (check_failures) {
		fprintf(stderr, "%s: %d check(s) FAILED\n", program, check_failures);
		return 1;
	}
	printf("%s: all checks passed\n", program);
	return 0;
}

#endif
