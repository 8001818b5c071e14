/*
 * LLM provider configuration: which OpenAI-compatible endpoints exist, the
 * models each one serves with their limits and prices, and which ordered
 * group of models each task uses. Read from the `providers`, `routes` and
 * `llm` members of the hark JSON config file (docs/LLM.md, "Configuration"),
 * then overridden by HARK_LLM_* environment variables. API keys are never
 * in the file: a provider names the environment variable holding its key
 * (`api_key_env`), resolved at load time. The loaded config is immutable and
 * may be shared by every thread.
 */
#ifndef HARK_LLM_CONFIG_H
#define HARK_LLM_CONFIG_H

#include <stddef.h>

enum hark_llm_structured {
	HARK_LLM_STRUCT_JSON_SCHEMA = 0, /* response_format {type: json_schema} (default) */
	HARK_LLM_STRUCT_JSON_OBJECT = 1, /* response_format {type: json_object} */
	HARK_LLM_STRUCT_NONE = 2,        /* no response_format; JSON asked for in the prompt */
};

/* One model at one provider. Limits of 0 mean "none". */
struct hark_llm_model {
	char *provider;          /* provider name (owned) */
	char *name;              /* model id sent on the wire, e.g. "gpt-4o-mini" (owned) */
	char *key;               /* "provider/name": the id used in routes, metrics, cache keys (owned) */
	double rpm;              /* requests per minute; 0 = unlimited */
	double tpm;              /* tokens per minute (prompt + max output); 0 = unlimited */
	int max_concurrency;     /* requests in flight at once; default 16 */
	double price_in;         /* USD per 1M input (prompt) tokens */
	double price_out;        /* USD per 1M output (completion) tokens */
	long context_window;     /* tokens; default 8192 */
	long max_output_tokens;  /* default completion cap when a request sets none; default 4096 */
	int structured;          /* enum hark_llm_structured */
	int embedding;           /* 1: an embeddings model (/embeddings), never used for chat */
	size_t provider_index;   /* index into hark_llm_config.providers */
};

struct hark_llm_provider {
	char *name;              /* unique, [A-Za-z0-9_.-]+ (owned) */
	char *base_url;          /* e.g. "https://api.openai.com/v1"; no trailing slash (owned) */
	char *api_key_env;       /* environment variable name, or NULL for no auth (owned) */
	char *api_key;           /* value of api_key_env at load time; NULL if unset (owned) */
	double connect_timeout_s; /* default 10 */
	double timeout_s;        /* whole request, default 120 */
	double idle_timeout_s;   /* no byte received for this long = timeout; default 60 */
	int stream;              /* 1: use SSE streaming for chat calls (default 0) */
};

/* A task's ordered model group: models[0] is preferred (the cheap one);
 * later entries are fallbacks and larger-context alternatives. */
struct hark_llm_route {
	char *task;              /* e.g. "extract", "summarize", "embed", "default" (owned) */
	size_t *models;          /* indices into hark_llm_config.models (owned) */
	size_t n_models;
};

struct hark_llm_config {
	struct hark_llm_provider *providers;
	size_t n_providers;
	struct hark_llm_model *models;      /* all models of all providers, in file order */
	size_t n_models;
	struct hark_llm_route *routes;
	size_t n_routes;

	/* `llm` options (defaults in parentheses) */
	double cache_ttl_s;        /* cached replies live this long; 0 = forever (30 days) */
	int max_attempts;          /* tries per model for one item, first included (4) */
	double backoff_base_s;     /* full-jitter backoff: uniform(0, min(max, base * 2^k)) (1) */
	double backoff_max_s;      /* (60) */
	int breaker_failures;      /* consecutive failures that open a breaker (5) */
	double breaker_open_s;     /* open -> half-open after this long (30) */
	int repair_attempts;       /* repair requests for an invalid structured reply (1) */
	double time_scale;         /* provider seconds per real second: 1 in production,
				    * e.g. 60 against a time-scaled simulator (1) */
	size_t max_response_bytes; /* response body cap (8 MiB) */
	double limit_window_s;     /* rate-limit window (60) */
	double limit_margin;       /* fraction of the window added as a safety margin (0.02) */
	size_t embed_batch;        /* inputs per /embeddings request (64) */
};

/*
 * Loads the LLM configuration. path: a hark JSON config file, or NULL to use
 * $HARK_CONFIG if set, else no file. Members other than `providers`,
 * `routes` and `llm` are ignored (they belong to other parts of hark);
 * unknown fields inside those three are rejected so typos do not pass.
 * Then applies the environment:
 *   HARK_LLM_BASE_URL   adds (or replaces) a provider "env" with one model
 *                       $HARK_LLM_MODEL (default "default"), key from the
 *                       variable named by $HARK_LLM_API_KEY_ENV (default
 *                       "HARK_LLM_API_KEY"), and makes it the "default" route
 *                       when the file defines none;
 *   HARK_LLM_TIME_SCALE, HARK_LLM_CACHE_TTL_S, HARK_LLM_MAX_ATTEMPTS override
 *                       the matching `llm` options.
 * A config with no providers is valid (n_providers == 0): callers then use
 * the offline paths. *out is heap-owned (hark_llm_config_free).
 * Errors: HARK_ERR_NOT_FOUND / HARK_ERR_IO (file), HARK_ERR_FORMAT (not
 * JSON), HARK_ERR_INVALID_ARG (unknown field, bad value, duplicate provider,
 * a route naming an unknown model); err (errlen bytes) names the field.
 */
int hark_llm_config_load(const char *path, struct hark_llm_config **out, char *err,
			 size_t errlen);

/* Same, from JSON text already in memory (no file, environment still
 * applied). text: NUL-terminated. */
int hark_llm_config_parse(const char *text, struct hark_llm_config **out, char *err,
			  size_t errlen);

/* NULL is a no-op. */
void hark_llm_config_free(struct hark_llm_config *c);

/* The route for task, else the route "default", else NULL. */
const struct hark_llm_route *hark_llm_config_route(const struct hark_llm_config *c,
						   const char *task);

/* Index of the model with key "provider/name" (or just "name" when unique),
 * or -1. */
long hark_llm_config_find_model(const struct hark_llm_config *c, const char *key);

#endif /* HARK_LLM_CONFIG_H */
