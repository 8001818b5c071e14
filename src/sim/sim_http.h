/*
 * The HTTP side of hark-llm-sim: one libwebsockets context with a single
 * service thread serving the OpenAI-compatible endpoints
 * (/v1/chat/completions, /v1/embeddings, /v1/models) and the admin
 * endpoints (/_sim/...), with keep-alive, deferred responses timed by
 * lws_sul timers in simulated time (latency, SSE delta spacing, held
 * "timeout" requests), the per-model rate limiter, directives and random
 * faults. Nothing sleeps in the service thread.
 */
#ifndef HARK_SIM_HTTP_H
#define HARK_SIM_HTTP_H

#include <signal.h>
#include <stdint.h>

#include "sim/sim_config.h"

struct hark_sim_params {
	const char *host;       /* listen address ("127.0.0.1") */
	int port;               /* 0 = any free port */
	const char *port_file;  /* NULL = none */
	const char *log_path;   /* NULL = no request log */
	double time_scale;      /* simulated seconds per real second (> 0) */
	uint64_t seed;          /* RNG seed for latency draws and random faults */
	const char *api_key;    /* NULL = no authentication */
};

/*
 * Runs the simulator until *stop becomes non-zero (set from a signal
 * handler). cfg is used (and may be changed by /_sim/config) for the whole
 * run; the caller keeps ownership. Prints "hark-llm-sim listening on
 * HOST:PORT" on stdout once listening. Returns 0 after a clean stop, or an
 * error code with err filled when it could not start.
 */
int hark_sim_run(const struct hark_sim_params *p, struct hark_sim_config *cfg,
		 volatile sig_atomic_t *stop, char *err, size_t errlen);

#endif /* HARK_SIM_HTTP_H */
