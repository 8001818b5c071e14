/*
 * hark-llm-sim: an OpenAI-compatible LLM provider simulator for testing and
 * benchmarking hark's LLM layer without a network (docs/LLM_SIM.md). This
 * file holds the command line, the configuration file loading and the
 * SIGTERM/SIGINT handling; the server is sim_http.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"
#include "sim/sim_config.h"
#include "sim/sim_http.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hark-llm-sim [options]\n"
		"  --listen HOST:PORT   listen address (default 127.0.0.1:0, 0 = a free port)\n"
		"  --port-file FILE     write the bound port to FILE once listening\n"
		"  --config FILE.json   models, limits, latency, faults (docs/LLM_SIM.md)\n"
		"  --log FILE.jsonl     request log, one JSON line per request\n"
		"  --time-scale X       simulated seconds per real second (default 1)\n"
		"  --seed N             seed for latency draws and random faults (default 1)\n"
		"  --api-key KEY        require \"Authorization: Bearer KEY\"\n"
		"  --help               this text\n");
}

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	size_t cap = 0, len = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			size_t nc = cap ? cap * 2 : 8192;
			char *nb;
			if (nc > ((size_t)16 << 20)) {
				free(b);
				fclose(f);
				errno = EFBIG;
				return NULL;
			}
			nb = realloc(b, nc);
			if (!nb) {
				free(b);
				fclose(f);
				return NULL;
			}
			b = nb;
			cap = nc;
		}
		size_t got = fread(b + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0)
			break;
	}
	fclose(f);
	b[len] = '\0';
	*n = len;
	return b;
}

/* Splits "HOST:PORT" (or ":PORT", "PORT", "[v6]:PORT") into host/port. */
static int parse_listen(const char *arg, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(arg, ':');
	char *end;
	long v;

	if (!colon) {
		snprintf(host, hostlen, "127.0.0.1");
		colon = arg - 1;
	} else if (colon == arg) {
		snprintf(host, hostlen, "127.0.0.1");
	} else {
		size_t n = (size_t)(colon - arg);
		if (arg[0] == '[' && colon[-1] == ']') {
			arg++;
			n -= 2;
		}
		if (n >= hostlen)
			return -1;
		memcpy(host, arg, n);
		host[n] = '\0';
	}
	v = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || v < 0 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

int main(int argc, char **argv)
{
	struct hark_sim_params p;
	struct hark_sim_config cfg;
	struct sigaction sa;
	char host[256] = "127.0.0.1", err[512] = "";
	const char *config_path = NULL;
	int rc;

	memset(&p, 0, sizeof(p));
	p.host = host;
	p.time_scale = 1;
	p.seed = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!v) {
			fprintf(stderr, "hark-llm-sim: %s: unknown option or missing value\n", a);
			usage(stderr);
			return 2;
		}
		if (!strcmp(a, "--listen")) {
			if (parse_listen(v, host, sizeof(host), &p.port)) {
				fprintf(stderr, "hark-llm-sim: --listen: expected HOST:PORT, got %s\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--port-file")) {
			p.port_file = v;
		} else if (!strcmp(a, "--config")) {
			config_path = v;
		} else if (!strcmp(a, "--log")) {
			p.log_path = v;
		} else if (!strcmp(a, "--time-scale")) {
			char *end;
			p.time_scale = strtod(v, &end);
			if (*end || !(p.time_scale > 0) || p.time_scale > 1e6) {
				fprintf(stderr, "hark-llm-sim: --time-scale: expected a number > 0\n");
				return 2;
			}
		} else if (!strcmp(a, "--seed")) {
			char *end;
			p.seed = strtoull(v, &end, 10);
			if (*end || !*v) {
				fprintf(stderr, "hark-llm-sim: --seed: expected an integer\n");
				return 2;
			}
		} else if (!strcmp(a, "--api-key")) {
			p.api_key = v;
		} else {
			fprintf(stderr, "hark-llm-sim: unknown option %s\n", a);
			usage(stderr);
			return 2;
		}
		i++;
	}
	if (config_path) {
		size_t n = 0;
		char *text = slurp(config_path, &n);
		if (!text) {
			fprintf(stderr, "hark-llm-sim: %s: %s\n", config_path, strerror(errno));
			return 2;
		}
		rc = hark_sim_config_parse(text, n, &cfg, err, sizeof(err));
		free(text);
		if (rc) {
			fprintf(stderr, "hark-llm-sim: %s: %s\n", config_path, err);
			return 2;
		}
	} else if (hark_sim_config_default(&cfg)) {
		fprintf(stderr, "hark-llm-sim: out of memory\n");
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	rc = hark_sim_run(&p, &cfg, &g_stop, err, sizeof(err));
	hark_sim_config_clear(&cfg);
	if (rc) {
		fprintf(stderr, "hark-llm-sim: %s\n", err[0] ? err : hark_strerror(rc));
		return 1;
	}
	return 0;
}
