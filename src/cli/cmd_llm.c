/*
 * `hark llm`: the LLM provider layer from the command line. `check` loads
 * and prints the provider configuration (never key values); `chat` sends
 * one prompt through the full layer (routing, limits, retries, failover,
 * cache, schema validation) and prints the reply with a one-line account
 * of model, tokens, cost and cache use; `embed` prints embedding vectors;
 * `usage` sums the accounted calls of a data directory by job, API key or
 * model. The cache and the accounting live in the data directory's store.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "llm/config.h"
#include "llm/llm.h"
#include "llm/breaker.h"
#include "store/store.h"
#include "util/errbuf.h"

#define DEFAULT_DATA "./hark-data"
#define MAX_PROMPT_BYTES (16u << 20)

static void llm_usage(FILE *f)
{
	fprintf(f,
		"usage: hark llm <command> [options]\n\n"
		"commands:\n"
		"  check                 validate the provider configuration and list providers,\n"
		"                        models and routes (whether each API key is set)\n"
		"  chat [PROMPT|-]       send one prompt (default: read stdin) and print the reply\n"
		"  embed TEXT...         print one JSON line per text with its embedding\n"
		"  usage                 tokens, cost and calls accounted in the data directory\n\n"
		"options:\n"
		"  --config FILE         hark config file with `providers`/`routes`/`llm`\n"
		"                        (default $HARK_CONFIG; HARK_LLM_* variables override)\n"
		"  --data DIR            data directory holding the cache and accounting\n"
		"                        (default %s)\n"
		"  --task NAME           route to use (chat: default; embed: embed)\n"
		"  --system TEXT         chat: a system message\n"
		"  --schema FILE         chat: JSON Schema the reply must satisfy\n"
		"  --max-tokens N        chat: completion cap\n"
		"  --no-cache            do not answer from the cache\n"
		"  --job ID, --key ID    chat/embed: account the call to a job / API key;\n"
		"                        usage: only those calls\n"
		"  --model KEY           usage: only this provider/model\n"
		"  --json                machine-readable output\n",
		DEFAULT_DATA);
}

static int usage_error(const char *msg)
{
	hark_cli_error("llm", HARK_ERR_INVALID_ARG, msg);
	llm_usage(stderr);
	return HARK_EXIT_USAGE;
}

static char *read_stream(FILE *f, size_t cap, int *err)
{
	size_t len = 0, size = 4096;
	char *buf = malloc(size);

	*err = HARK_OK;
	if (!buf) {
		*err = HARK_ERR_NOMEM;
		return NULL;
	}
	for (;;) {
		size_t n;

		if (len + 1 >= size) {
			char *nb;

			if (size >= cap) {
				free(buf);
				*err = HARK_ERR_LIMIT;
				return NULL;
			}
			size *= 2;
			nb = realloc(buf, size);
			if (!nb) {
				free(buf);
				*err = HARK_ERR_NOMEM;
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, size - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		*err = HARK_ERR_IO;
		return NULL;
	}
	buf[len] = 0;
	return buf;
}

static char *read_file(const char *path, int *err)
{
	FILE *f = fopen(path, "rb");
	char *s;

	if (!f) {
		*err = HARK_ERR_NOT_FOUND;
		return NULL;
	}
	s = read_stream(f, MAX_PROMPT_BYTES, err);
	fclose(f);
	return s;
}

static const char *structured_name(int s)
{
	switch (s) {
	case HARK_LLM_STRUCT_JSON_OBJECT: return "json_object";
	case HARK_LLM_STRUCT_NONE: return "none";
	default: return "json_schema";
	}
}

static int cmd_check(const struct hark_llm_config *cfg, int json)
{
	if (json) {
		json_t *o = json_object(), *ps = json_array(), *rs = json_object();

		for (size_t i = 0; i < cfg->n_providers; i++) {
			const struct hark_llm_provider *p = &cfg->providers[i];
			json_t *ms = json_array();

			for (size_t k = 0; k < cfg->n_models; k++) {
				const struct hark_llm_model *m = &cfg->models[k];

				if (m->provider_index != i)
					continue;
				json_array_append_new(
					ms, json_pack("{s:s,s:f,s:f,s:i,s:f,s:f,s:I,s:I,s:s,s:b}", "key",
						      m->key, "rpm", m->rpm, "tpm", m->tpm,
						      "max_concurrency", m->max_concurrency, "price_in",
						      m->price_in, "price_out", m->price_out,
						      "context_window", (json_int_t)m->context_window,
						      "max_output_tokens", (json_int_t)m->max_output_tokens,
						      "structured", structured_name(m->structured),
						      "embedding", m->embedding));
			}
			json_array_append_new(ps, json_pack("{s:s,s:s,s:s?,s:b,s:o}", "name", p->name,
							   "base_url", p->base_url, "api_key_env",
							   p->api_key_env, "api_key_set",
							   p->api_key != NULL, "models", ms));
		}
		for (size_t r = 0; r < cfg->n_routes; r++) {
			json_t *a = json_array();

			for (size_t k = 0; k < cfg->routes[r].n_models; k++)
				json_array_append_new(
					a, json_string(cfg->models[cfg->routes[r].models[k]].key));
			json_object_set_new(rs, cfg->routes[r].task, a);
		}
		json_object_set_new(o, "providers", ps);
		json_object_set_new(o, "routes", rs);
		json_object_set_new(o, "time_scale", json_real(cfg->time_scale));
		json_dumpf(o, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(o);
		return 0;
	}
	if (cfg->n_providers == 0) {
		printf("no LLM provider configured: hark uses its offline analyzer\n");
		return 0;
	}
	for (size_t i = 0; i < cfg->n_providers; i++) {
		const struct hark_llm_provider *p = &cfg->providers[i];

		printf("provider %s  %s  key: %s%s\n", p->name, p->base_url,
		       p->api_key_env ? p->api_key_env : "(none)",
		       p->api_key_env ? (p->api_key ? " (set)" : " (NOT SET)") : "");
		for (size_t k = 0; k < cfg->n_models; k++) {
			const struct hark_llm_model *m = &cfg->models[k];

			if (m->provider_index != i)
				continue;
			printf("  model %-40s rpm %-6g tpm %-9g conc %-4d ctx %-7ld $%g/$%g per 1M%s\n",
			       m->key, m->rpm, m->tpm, m->max_concurrency, m->context_window,
			       m->price_in, m->price_out, m->embedding ? "  (embeddings)" : "");
		}
	}
	for (size_t r = 0; r < cfg->n_routes; r++) {
		printf("route %-12s", cfg->routes[r].task);
		for (size_t k = 0; k < cfg->routes[r].n_models; k++)
			printf("%s%s", k ? " -> " : " ", cfg->models[cfg->routes[r].models[k]].key);
		printf("\n");
	}
	return 0;
}

static int open_store(const char *data, struct hark_store **st)
{
	struct hark_store_params sp = hark_store_default_params();
	char msg[256] = "";
	int rc;

	if (mkdir(data, 0755) != 0) {
		struct stat sb;

		if (stat(data, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
			hark_cli_error(data, HARK_ERR_IO, "cannot create the data directory");
			return HARK_ERR_IO;
		}
	}
	rc = hark_store_open(data, &sp, st, msg, sizeof(msg));
	if (rc != HARK_OK)
		hark_cli_error(data, rc, msg);
	return rc;
}

static int cmd_usage(const char *data, const char *job, const char *key, const char *model,
		     int json)
{
	struct hark_store *st = NULL;
	struct hark_store_params sp = hark_store_default_params();
	struct hark_llm_usage u;
	char msg[256] = "";
	struct stat sb;
	int rc;

	if (stat(data, &sb) != 0) {
		hark_cli_error(data, HARK_ERR_NOT_FOUND, "no such data directory");
		return hark_cli_exit_code(HARK_ERR_NOT_FOUND);
	}
	rc = hark_store_open(data, &sp, &st, msg, sizeof(msg));
	if (rc != HARK_OK) {
		hark_cli_error(data, rc, msg);
		return hark_cli_exit_code(rc);
	}
	rc = hark_store_llm_usage(st, job, key, model, 0, &u);
	if (rc != HARK_OK) {
		hark_cli_error("usage", rc, hark_store_errmsg(st));
		hark_store_close(st);
		return hark_cli_exit_code(rc);
	}
	if (json)
		printf("{\"calls\":%lld,\"requests\":%lld,\"cached\":%lld,\"failed\":%lld,"
		       "\"tokens_in\":%lld,\"tokens_out\":%lld,\"cost_usd\":%.6f}\n",
		       (long long)u.calls, (long long)u.requests, (long long)u.cached,
		       (long long)u.failed, (long long)u.tokens_in, (long long)u.tokens_out,
		       u.cost_usd);
	else
		printf("calls %lld (requests %lld, cache hits %lld, failed %lld)\n"
		       "tokens in %lld, out %lld\ncost $%.6f\n",
		       (long long)u.calls, (long long)u.requests, (long long)u.cached,
		       (long long)u.failed, (long long)u.tokens_in, (long long)u.tokens_out,
		       u.cost_usd);
	hark_store_close(st);
	return 0;
}

int hark_cli_llm(int argc, char **argv)
{
	enum { O_CONFIG = 1000, O_DATA, O_TASK, O_SYSTEM, O_SCHEMA, O_MAXTOK, O_NOCACHE, O_JOB,
	       O_KEY, O_MODEL, O_JSON, O_HELP };
	static const struct option opts[] = {
		{"config", required_argument, NULL, O_CONFIG},
		{"data", required_argument, NULL, O_DATA},
		{"task", required_argument, NULL, O_TASK},
		{"system", required_argument, NULL, O_SYSTEM},
		{"schema", required_argument, NULL, O_SCHEMA},
		{"max-tokens", required_argument, NULL, O_MAXTOK},
		{"no-cache", no_argument, NULL, O_NOCACHE},
		{"job", required_argument, NULL, O_JOB},
		{"key", required_argument, NULL, O_KEY},
		{"model", required_argument, NULL, O_MODEL},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL, *data = DEFAULT_DATA, *task = NULL, *system = NULL;
	const char *schema_path = NULL, *job = NULL, *key = NULL, *model = NULL, *cmd;
	long max_tokens = 0;
	int no_cache = 0, json = 0, opt, rc = 0, err = 0;
	struct hark_llm_config *cfg = NULL;
	struct hark_store *st = NULL;
	struct hark_llm *llm = NULL;
	char msg[512] = "";
	char *prompt = NULL, *schema = NULL;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		llm_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? HARK_EXIT_USAGE : 0;
	}
	cmd = argv[1];
	argc--;
	argv++;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case O_CONFIG: config = optarg; break;
		case O_DATA: data = optarg; break;
		case O_TASK: task = optarg; break;
		case O_SYSTEM: system = optarg; break;
		case O_SCHEMA: schema_path = optarg; break;
		case O_MAXTOK: {
			char *end = NULL;

			max_tokens = strtol(optarg, &end, 10);
			if (!end || *end || max_tokens <= 0 || max_tokens > 10000000)
				return usage_error("--max-tokens must be a positive integer");
			break;
		}
		case O_NOCACHE: no_cache = 1; break;
		case O_JOB: job = optarg; break;
		case O_KEY: key = optarg; break;
		case O_MODEL: model = optarg; break;
		case O_JSON: json = 1; break;
		case O_HELP: llm_usage(stdout); return 0;
		default: return usage_error("unknown option");
		}
	}
	if (!strcmp(cmd, "usage")) {
		if (optind != argc)
			return usage_error("usage takes no arguments");
		return cmd_usage(data, job, key, model, json);
	}
	if (strcmp(cmd, "check") != 0 && strcmp(cmd, "chat") != 0 && strcmp(cmd, "embed") != 0)
		return usage_error("unknown llm command");
	rc = hark_llm_config_load(config, &cfg, msg, sizeof(msg));
	if (rc != HARK_OK) {
		hark_cli_error("llm", rc, msg);
		return hark_cli_exit_code(rc);
	}
	if (!strcmp(cmd, "check")) {
		rc = cmd_check(cfg, json);
		goto out;
	}
	if (cfg->n_providers == 0) {
		hark_cli_error("llm", HARK_ERR_INVALID_ARG,
			       "no LLM provider is configured (set `providers` in the config file "
			       "or HARK_LLM_BASE_URL)");
		rc = hark_cli_exit_code(HARK_ERR_INVALID_ARG);
		goto out;
	}
	if (!strcmp(cmd, "chat")) {
		if (argc - optind > 1) {
			rc = usage_error("chat takes one prompt (quote it) or - for stdin");
			goto out;
		}
		if (optind == argc || !strcmp(argv[optind], "-"))
			prompt = read_stream(stdin, MAX_PROMPT_BYTES, &err);
		else
			prompt = strdup(argv[optind]);
		if (!prompt) {
			hark_cli_error("prompt", err ? err : HARK_ERR_NOMEM, "cannot read the prompt");
			rc = hark_cli_exit_code(err ? err : HARK_ERR_NOMEM);
			goto out;
		}
		if (schema_path) {
			schema = read_file(schema_path, &err);
			if (!schema) {
				hark_cli_error(schema_path, err, "cannot read the schema");
				rc = hark_cli_exit_code(err);
				goto out;
			}
		}
	} else if (optind == argc) {
		rc = usage_error("embed needs at least one text");
		goto out;
	}
	if (open_store(data, &st) != HARK_OK) {
		rc = hark_cli_exit_code(HARK_ERR_IO);
		goto out;
	}
	{
		struct hark_llm_params lp = hark_llm_default_params();

		lp.config = cfg;
		lp.store = st;
		lp.no_cache = no_cache;
		rc = hark_llm_init(&lp, &llm, msg, sizeof(msg));
		if (rc != HARK_OK) {
			hark_cli_error("llm", rc, msg);
			rc = hark_cli_exit_code(rc);
			goto out;
		}
	}
	if (!strcmp(cmd, "chat")) {
		struct hark_llm_msg msgs[2];
		struct hark_llm_request rq;
		struct hark_llm_result res;
		size_t n = 0;

		if (system) {
			msgs[n].role = "system";
			msgs[n++].content = system;
		}
		msgs[n].role = "user";
		msgs[n++].content = prompt;
		memset(&rq, 0, sizeof(rq));
		rq.task = task;
		rq.messages = msgs;
		rq.n_messages = n;
		rq.schema = schema;
		rq.max_tokens = max_tokens;
		rq.job_id = job;
		rq.key_id = key;
		hark_llm_chat(llm, &rq, &res);
		if (json) {
			json_t *o = json_pack("{s:s?,s:s,s:I,s:I,s:f,s:b,s:i,s:i,s:f}", "content",
					      res.content, "model", res.model, "tokens_in",
					      (json_int_t)res.tokens_in, "tokens_out",
					      (json_int_t)res.tokens_out, "cost_usd", res.cost_usd,
					      "cached", res.cached, "attempts", res.attempts, "repairs",
					      res.repairs, "latency_s", res.latency_s);

			if (o && res.err) {
				json_object_set_new(o, "error",
						    json_pack("{s:s,s:s}", "code", hark_err_code(res.err),
							      "message", res.error));
			}
			if (o) {
				json_dumpf(o, stdout, JSON_COMPACT);
				fputc('\n', stdout);
				json_decref(o);
			}
		} else if (res.err == HARK_OK) {
			printf("%s\n", res.content);
		}
		if (res.err == HARK_OK)
			fprintf(stderr, "hark llm: %s  tokens %lld in / %lld out  $%.6f%s  %.2fs\n",
				res.model, (long long)res.tokens_in, (long long)res.tokens_out,
				res.cost_usd, res.cached ? "  (cached)" : "", res.latency_s);
		else if (!json)
			hark_cli_error("llm", res.err, res.error);
		rc = res.err ? hark_cli_exit_code(res.err) : 0;
		hark_llm_result_clear(&res);
	} else {
		struct hark_llm_embed_result er;
		int erc = hark_llm_embed(llm, task, (const char *const *)&argv[optind],
					 (size_t)(argc - optind), job, key, &er);

		if (erc != HARK_OK) {
			hark_cli_error("embed", erc, er.error);
			rc = hark_cli_exit_code(erc);
		} else {
			for (size_t i = 0; i < (size_t)(argc - optind); i++) {
				printf("{\"index\":%zu,\"dim\":%zu,\"embedding\":[", i, er.dim);
				for (size_t k = 0; k < er.dim; k++)
					printf("%s%.7g", k ? "," : "", er.vectors[i * er.dim + k]);
				printf("]}\n");
			}
			fprintf(stderr, "hark embed: %s  %zu inputs, %zu cached, %zu requests, "
					"tokens %lld  $%.6f\n",
				er.model, (size_t)(argc - optind), er.cached, er.requests,
				(long long)er.tokens_in, er.cost_usd);
		}
		hark_llm_embed_result_clear(&er);
	}
out:
	hark_llm_free(llm);
	if (st)
		hark_store_close(st);
	hark_llm_config_free(cfg);
	free(schema);
	free(prompt);
	return rc;
}
