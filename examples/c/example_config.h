/*
 * Shared by the kcpx session examples: command-line settings and the
 * kcpx_config they describe (the interop Go peer's defaults: nodelay
 * 1,10,2,1, windows 1024, stream mode, key = kcptun's PBKDF2 of a password).
 */
#ifndef KCPX_EXAMPLE_CONFIG_H
#define KCPX_EXAMPLE_CONFIG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcpx.h"

struct example_options {
	const char *addr;
	const char *crypt, *password;
	int ds, ps;
	int message_mode;
	unsigned idle_ms;
	long bytes;
	unsigned long long seed;
	int timeout_s;
};

/* The key length kcptun gives each -crypt method: a prefix of its 32-byte
 * PBKDF2 key (0 for "none" and unknown names). */
static inline size_t example_key_len(const char *crypt)
{
	static const struct {
		const char *name;
		size_t len;
	} table[] = {
		{"aes-128", 16}, {"aes-192", 24}, {"aes-256", 32}, {"aes", 32},  {"salsa20", 32},
		{"blowfish", 32}, {"twofish", 32}, {"cast5", 16},  {"3des", 24}, {"tea", 16},
		{"xtea", 16},    {"sm4", 16},     {"xor", 32},
	};
	size_t i;
	for (i = 0; crypt != NULL && i < sizeof table / sizeof table[0]; i++)
		if (strcmp(crypt, table[i].name) == 0) return table[i].len;
	return 0;
}

/* Parses "ADDR [options]"; returns 0, or -1 on a bad command line. */
static inline int example_parse(int argc, char **argv, struct example_options *o)
{
	int i;
	memset(o, 0, sizeof *o);
	if (argc < 2) return -1;
	o->addr = argv[1];
	o->password = "kcpx-interop";
	o->bytes = 1 << 20;
	o->seed = 1;
	o->timeout_s = 60;
	for (i = 2; i < argc; i++) {
		int more = i + 1 < argc;
		if (!strcmp(argv[i], "--crypt") && more) o->crypt = argv[++i];
		else if (!strcmp(argv[i], "--password") && more) o->password = argv[++i];
		else if (!strcmp(argv[i], "--fec") && i + 2 < argc) { o->ds = atoi(argv[++i]); o->ps = atoi(argv[++i]); }
		else if (!strcmp(argv[i], "--message")) o->message_mode = 1;
		else if (!strcmp(argv[i], "--idle") && more) o->idle_ms = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--bytes") && more) o->bytes = atol(argv[++i]);
		else if (!strcmp(argv[i], "--seed") && more) o->seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--timeout") && more) o->timeout_s = atoi(argv[++i]);
		else return -1;
	}
	return 0;
}

/* The configuration both ends must agree on; NULL (and a message) if refused. */
static inline kcpx_config *example_config(const struct example_options *o)
{
	uint8_t key[32];
	size_t key_len = example_key_len(o->crypt);
	int rc;
	kcpx_config *cfg = kcpx_config_new();
	if (cfg == NULL) return NULL;
	if (key_len > 0)
		kcpx_key_from_password((const uint8_t *)o->password, strlen(o->password), key, sizeof key);
	if ((rc = kcpx_config_set_crypt(cfg, o->crypt, key, key_len)) != KCPX_OK ||
	    (rc = kcpx_config_set_fec(cfg, o->ds, o->ps)) != KCPX_OK ||
	    (rc = kcpx_config_set_nodelay(cfg, 1, 10, 2, 1)) != KCPX_OK ||
	    (rc = kcpx_config_set_window(cfg, 1024, 1024)) != KCPX_OK ||
	    (rc = kcpx_config_set_stream(cfg, !o->message_mode)) != KCPX_OK ||
	    (rc = kcpx_config_set_idle_timeout(cfg, o->idle_ms)) != KCPX_OK ||
	    (rc = kcpx_config_validate(cfg)) != KCPX_OK) {
		fprintf(stderr, "configuration refused: %s\n", kcpx_strerror(rc));
		kcpx_config_free(cfg);
		return NULL;
	}
	return cfg;
}

#endif
