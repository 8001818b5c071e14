/*
 * `hark serve`: parses the command line (and the --config file, whose values
 * the flags override) into server parameters and runs the HTTP job service
 * until SIGTERM or SIGINT has drained it. See docs/SERVER.md.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "server/config.h"
#include "llm/config.h"
#include "server/server.h"

int hark_cli_serve(int argc, char **argv);

static void serve_usage(FILE *f)
{
	fprintf(f,
		"usage: hark serve [options]\n\n"
		"  --listen HOST:PORT    address to listen on (default 127.0.0.1:8080; port 0 = any)\n"
		"  --data DIR            data directory (default ./hark-data)\n"
		"  --workers N           jobs processed at once (default: number of cores)\n"
		"  --threads N           compute threads per job (default 1)\n"
		"  --engine NAME         default engine: auto, pocketsphinx, whisper\n"
		"  --model NAME          default model\n"
		"  --config FILE         JSON config file (flags override it; its LLM providers\n"
		"                        serve the analyze and run jobs)\n"
		"  --no-auth             no API keys (local use; per-IP rate limits apply)\n"
		"  --max-body-mb N       upload cap in MB (default 100)\n"
		"  --ttl-days N          retention of finished jobs (default 7, 0 = keep)\n"
		"  --cors ORIGIN         allowed browser origin (repeatable; * for any)\n"
		"  --drain-timeout S     seconds SIGTERM waits for running jobs (default 30)\n"
		"  --port-file FILE      write the bound port there once listening\n"
		"  -h, --help            this help\n\n"
		"Jobs: transcribe, transcript, analyze (minutes and knowledge graph of a\n"
		"transcript), run (transcribe, then analyze); GET /v1/search finds analysed\n"
		"meetings. API keys: hark keys create --data DIR --name NAME. See docs/SERVER.md.\n");
}

static int want_num(const char *opt, const char *v, double lo, double hi, double *out)
{
	char *end;
	double d = strtod(v, &end);

	if (end == v || *end || !(d >= lo && d <= hi)) {
		fprintf(stderr, "hark serve: %s: expected a number in [%g, %g], got \"%s\"\n", opt, lo,
			hi, v);
		return -1;
	}
	*out = d;
	return 0;
}

int hark_cli_serve(int argc, char **argv)
{
	enum {
		O_LISTEN = 1000, O_DATA, O_WORKERS, O_THREADS, O_ENGINE, O_MODEL, O_CONFIG,
		O_NOAUTH, O_MAXBODY, O_TTL, O_CORS, O_DRAIN, O_PORTFILE
	};
	static const struct option opts[] = {
		{"listen", required_argument, NULL, O_LISTEN},
		{"data", required_argument, NULL, O_DATA},
		{"workers", required_argument, NULL, O_WORKERS},
		{"threads", required_argument, NULL, O_THREADS},
		{"engine", required_argument, NULL, O_ENGINE},
		{"model", required_argument, NULL, O_MODEL},
		{"config", required_argument, NULL, O_CONFIG},
		{"no-auth", no_argument, NULL, O_NOAUTH},
		{"max-body-mb", required_argument, NULL, O_MAXBODY},
		{"ttl-days", required_argument, NULL, O_TTL},
		{"cors", required_argument, NULL, O_CORS},
		{"drain-timeout", required_argument, NULL, O_DRAIN},
		{"port-file", required_argument, NULL, O_PORTFILE},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct hark_server_params p = hark_server_default_params();
	struct hark_server_config *cfg = NULL;
	struct hark_llm_config *llm_cfg = NULL;
	const char *config = NULL;
	char host[256], err[512] = "";
	int c, rc = 0, n_cors_flags = 0;
	double d;

	/* the config file first, so that flags override it */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config = argv[i + 1];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			config = argv[i] + 9;
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			serve_usage(stdout);
			return 0;
		}
	}
	if (config) {
		rc = hark_server_config_load(config, &p, &cfg, err, sizeof(err));
		if (rc) {
			hark_cli_error(config, rc, err);
			return hark_cli_exit_code(rc);
		}
	}
	/* LLM providers: the same file's providers/routes/llm (or $HARK_CONFIG) */
	rc = hark_llm_config_load(config, &llm_cfg, err, sizeof(err));
	if (rc) {
		hark_cli_error("serve", rc, err);
		hark_server_config_free(cfg);
		return hark_cli_exit_code(rc);
	}
	p.llm_config = llm_cfg;

	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN:
			if (hark_server_parse_listen(optarg, host, sizeof(host), &p.port)) {
				fprintf(stderr, "hark serve: --listen: expected HOST:PORT, got \"%s\"\n",
					optarg);
				rc = HARK_ERR_INVALID_ARG;
				goto out;
			}
			p.host = host;
			break;
		case O_DATA: p.data_dir = optarg; break;
		case O_ENGINE: p.engine = optarg; break;
		case O_MODEL: p.model = optarg; break;
		case O_CONFIG: break;
		case O_NOAUTH: p.auth = 0; break;
		case O_PORTFILE: p.port_file = optarg; break;
		case O_CORS:
			if (n_cors_flags == 0)
				p.n_cors = 0; /* flags replace the file's list */
			if (p.n_cors >= HARK_SERVER_MAX_CORS) {
				fprintf(stderr, "hark serve: at most %d --cors origins\n",
					HARK_SERVER_MAX_CORS);
				rc = HARK_ERR_INVALID_ARG;
				goto out;
			}
			p.cors[p.n_cors++] = optarg;
			n_cors_flags++;
			break;
		case O_WORKERS:
			if (want_num("--workers", optarg, 0, 1024, &d)) {
				rc = HARK_ERR_INVALID_ARG;
				goto out;
			}
			p.workers = (int)d;
			break;
		case O_THREADS:
			if (want_num("--threads", optarg, 1, 256, &d)) {
				rc = HARK_ERR_INVALID_ARG;
				goto out;
			}
			p.threads = (int)d;
			break;
		case O_MAXBODY:
			if (want_num("--max-body-mb", optarg, 1, 1 << 20, &d)) {
				rc = HARK_ERR_INVALID_ARG;
				goto out;
			}
			p.max_body_bytes = (int64_t)(d * 1048576.0);
			break;
		case O_TTL:
			if (want_num("--ttl-days", optarg, 0, 36500, &d)) {
				rc = HARK_ERR_INVALID_ARG;
				goto out;
			}
			p.ttl_s = d * 86400.0;
			break;
		case O_DRAIN:
			if (want_num("--drain-timeout", optarg, 0, 86400, &d)) {
				rc = HARK_ERR_INVALID_ARG;
				goto out;
			}
			p.drain_timeout_s = d;
			break;
		case 'h':
			serve_usage(stdout);
			goto out;
		default:
			serve_usage(stderr);
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "hark serve: unexpected argument \"%s\"\n", argv[optind]);
		serve_usage(stderr);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	rc = hark_server_run(&p, err, sizeof(err));
	if (rc)
		hark_cli_error("serve", rc, err);
out:
	hark_llm_config_free(llm_cfg);
	hark_server_config_free(cfg);
	return hark_cli_exit_code(rc);
}
