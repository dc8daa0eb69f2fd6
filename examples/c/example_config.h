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

/* Counters that point at a misconfiguration of one end (see
 * docs/troubleshooting.md): what the examples check before they exit. */
struct example_symptoms {
	unsigned long long received;       /* payload bytes (or sessions) received */
	unsigned long long in_pkts;        /* datagrams read */
	unsigned long long in_csum_errors; /* failed the checksum */
	unsigned long long not_kcp;        /* in_errs + kcp_in_errors */
	unsigned long long dropped_unknown; /* a dialer: from another address */
	unsigned long long fec_pattern_mismatches;
};

/* Prints one line to stderr for each counter that explains why nothing was
 * received (and for an FEC mismatch, which only costs recovery); returns
 * how many lines it printed. */
static inline int example_hint(const char *who, const struct example_symptoms *s)
{
	const int none = s->received == 0;
	const struct {
		int show;
		const char *name;
		unsigned long long value;
		const char *cause;
	} hints[] = {
		{ none && s->in_pkts == 0, "nothing was received", 0,
		  "is the peer running and reachable, with the same --crypt, --password and --fec? "
		  "A server with another key or cipher answers nothing" },
		{ none && s->in_csum_errors > 0, "in_csum_errors", s->in_csum_errors,
		  "the peer uses another key (--password) or cipher (--crypt), or a cipher where this end has none" },
		{ none && s->not_kcp > 0, "in_errs + kcp_in_errors", s->not_kcp,
		  "the datagrams are not KCP: the peer uses a cipher where this end has none "
		  "(kcp-go's \"none\" cipher is not \"no cipher\")" },
		{ none && s->dropped_unknown > 0, "dropped_unknown", s->dropped_unknown,
		  "datagrams came from another address than the one dialed "
		  "(a multi-homed server answering from another address, or NAT)" },
		{ s->fec_pattern_mismatches > 0, "fec_pattern_mismatches", s->fec_pattern_mismatches,
		  "the peer uses other FEC shard counts (--fec): data flows, but nothing lost is rebuilt" },
	};
	size_t i;
	int n = 0;
	for (i = 0; i < sizeof hints / sizeof hints[0]; i++) {
		if (!hints[i].show) continue;
		if (hints[i].value > 0)
			fprintf(stderr, "%s: hint: %s %llu: %s (see docs/troubleshooting.md)\n", who, hints[i].name,
				hints[i].value, hints[i].cause);
		else
			fprintf(stderr, "%s: hint: %s: %s (see docs/troubleshooting.md)\n", who, hints[i].name,
				hints[i].cause);
		n++;
	}
	return n;
}

#endif
