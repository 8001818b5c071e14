/*
 * `hark analyze`, `hark run` and `hark search`: meeting intelligence on the
 * command line. analyze turns transcripts (files or folders of them) into
 * minutes and a knowledge graph through the analysis pipeline, with the
 * offline analyzer or, when a provider is configured, the LLM layer; run
 * transcribes audio/video first (transcripts are cached in the data
 * directory by the audio's content hash); search ranks chunks and minutes
 * items of every analysed meeting. All three share the data directory's
 * store, which also makes analyze/run resumable: Ctrl-C stops cleanly and the
 * same command continues where it stopped.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "analyze/graph.h"
#include "audio/audio.h"
#include "analyze/pipeline.h"
#include "analyze/search.h"
#include "cli/cli.h"
#include "format/format.h"
#include "hark/transcribe.h"
#include "llm/config.h"
#include "llm/llm.h"
#include "store/store.h"
#include "util/errbuf.h"

#define DEFAULT_DATA "./hark-data"
#define MAX_INPUTS 100000

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	g_interrupted = 1;
}

static int cancel_cb(void *ud)
{
	(void)ud;
	return g_interrupted != 0;
}

/* ---- options ------------------------------------------------------------------------- */

struct aopts {
	const char *cmd;         /* "analyze" or "run" */
	const char *out_dir;
	const char *data;
	const char *config;
	const char *date;
	const char *engine, *model, *language;
	int threads;
	int offline, force, no_cache, quiet, recursive, json;
	int export_graphml, export_neo4j;
	size_t batch, chunk_tokens, overlap_tokens;
	char **inputs;
	size_t n_inputs, cap_inputs;
	int dir_input;           /* a folder was given */
};

static void analyze_help(FILE *f, const char *cmd)
{
	int run = !strcmp(cmd, "run");

	fprintf(f,
		"usage: hark %s %s... [options]\n\n"
		"%s\n\n"
		"options:\n"
		"  -o, --output-dir DIR   where <name>.minutes.json, <name>.minutes.md and\n"
		"                         <name>.graph.json go (default: current directory); several\n"
		"                         meetings also get corpus.graph.json, corpus.graphml,\n"
		"                         corpus.nodes.csv and corpus.relationships.csv\n"
		"  --date YYYY-MM-DD      meeting date, so \"next Friday\" resolves to a date\n"
		"                         (default: from the input's metadata)\n"
		"  --data DIR             data directory: analysis state, LLM cache, search index\n"
		"                         (default " DEFAULT_DATA ")\n"
		"  --config FILE          hark config with LLM `providers`/`routes` (or $HARK_CONFIG,\n"
		"                         $HARK_LLM_BASE_URL); without a provider the offline\n"
		"                         analyzer runs\n"
		"  --offline              use the offline analyzer even when a provider is configured\n"
		"  --batch N              chunks per LLM extraction request (10; 1..50)\n"
		"  --chunk-tokens N       chunk size in tokens (1200)\n"
		"  --overlap-tokens N     overlap between chunks (100)\n"
		"  --no-cache             do not answer LLM requests from the cache\n"
		"  --force                analyse again even meetings that did not change\n"
		"  --export LIST          graph exports: graphml,neo4j,none (graphml,neo4j)\n"
		"  -r, --recursive        descend into sub-folders\n"
		"  --json                 print a JSON report of the run on stdout\n"
		"  -q, --quiet            no progress bars or summary\n",
		cmd, run ? "AUDIO" : "TRANSCRIPT",
		run ? "Transcribes meeting audio/video, then analyses it like `hark analyze`."
		    : "Turns transcripts (hark JSON, SRT/VTT, plain \"Speaker: text\" lines, QMSum JSON,\n"
		      "or folders of them) into minutes and a knowledge graph.");
	if (run)
		fprintf(f, "  -e, --engine NAME      speech engine: auto, whisper, pocketsphinx (auto)\n"
			   "  -m, --model PATH       speech model\n"
			   "  -l, --language LANG    spoken language (en)\n"
			   "  -t, --threads N        compute threads (all cores)\n");
	fprintf(f, "\nCtrl-C stops cleanly; running the same command again continues where it stopped.\n");
}

static int usage_error(const char *cmd, const char *msg)
{
	fprintf(stderr, "hark %s: %s (see --help)\n", cmd, msg);
	return HARK_EXIT_USAGE;
}

static int add_input(struct aopts *o, const char *path)
{
	if (o->n_inputs == o->cap_inputs) {
		size_t cap = o->cap_inputs ? o->cap_inputs * 2 : 16;
		char **n;

		if (cap > MAX_INPUTS)
			return HARK_ERR_LIMIT;
		n = realloc(o->inputs, cap * sizeof(*n));
		if (!n)
			return HARK_ERR_NOMEM;
		o->inputs = n;
		o->cap_inputs = cap;
	}
	o->inputs[o->n_inputs] = strdup(path);
	if (!o->inputs[o->n_inputs])
		return HARK_ERR_NOMEM;
	o->n_inputs++;
	return HARK_OK;
}

/* Transcript files a folder may hold (analyze); run takes every regular file. */
static int is_transcript_name(const char *n)
{
	static const char *const ext[] = {".json", ".txt", ".srt", ".vtt", NULL};
	size_t l = strlen(n);

	if (l > 13 && !strcmp(n + l - 13, ".minutes.json"))
		return 0;
	if (l > 11 && !strcmp(n + l - 11, ".graph.json"))
		return 0;
	if (l > 12 && !strcmp(n + l - 12, ".abssumm.txt"))
		return 0;
	if (!strncmp(n, "corpus.", 7))
		return 0;
	for (int i = 0; ext[i]; i++) {
		size_t e = strlen(ext[i]);

		if (l > e && !strcasecmp(n + l - e, ext[i]))
			return 1;
	}
	return 0;
}

static int accept_name(const char *name, void *ud)
{
	const struct aopts *o = ud;

	return !strcmp(o->cmd, "run") || is_transcript_name(name);
}

static int add_path(const char *path, void *ud)
{
	return add_input(ud, path);
}

static int parse_size(const char *s, size_t lo, size_t hi, size_t *out)
{
	char *end = NULL;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || !end || *end || *s == '-' || v < lo || v > hi)
		return -1;
	*out = (size_t)v;
	return 0;
}

static int parse_exports(const char *s, struct aopts *o)
{
	char buf[128], *tok, *save = NULL;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -1;
	o->export_graphml = o->export_neo4j = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "graphml"))
			o->export_graphml = 1;
		else if (!strcmp(tok, "neo4j"))
			o->export_neo4j = 1;
		else if (strcmp(tok, "none") != 0)
			return -1;
	}
	return 0;
}

/* 0 ok, 1 help printed, -1 usage error (printed). */
static int parse_args(int argc, char **argv, struct aopts *o)
{
	enum { O_DATE = 1000, O_DATA, O_CONFIG, O_OFFLINE, O_BATCH, O_CHUNK, O_OVERLAP, O_NOCACHE,
	       O_FORCE, O_EXPORT, O_JSON };
	static const struct option opts[] = {
		{"output-dir", required_argument, NULL, 'o'},
		{"date", required_argument, NULL, O_DATE},
		{"data", required_argument, NULL, O_DATA},
		{"config", required_argument, NULL, O_CONFIG},
		{"offline", no_argument, NULL, O_OFFLINE},
		{"batch", required_argument, NULL, O_BATCH},
		{"chunk-tokens", required_argument, NULL, O_CHUNK},
		{"overlap-tokens", required_argument, NULL, O_OVERLAP},
		{"no-cache", no_argument, NULL, O_NOCACHE},
		{"force", no_argument, NULL, O_FORCE},
		{"export", required_argument, NULL, O_EXPORT},
		{"json", no_argument, NULL, O_JSON},
		{"recursive", no_argument, NULL, 'r'},
		{"quiet", no_argument, NULL, 'q'},
		{"engine", required_argument, NULL, 'e'},
		{"model", required_argument, NULL, 'm'},
		{"language", required_argument, NULL, 'l'},
		{"threads", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int run = !strcmp(o->cmd, "run"), opt;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, run ? "o:rqhe:m:l:t:" : "o:rqh", opts, NULL)) != -1) {
		switch (opt) {
		case 'o': o->out_dir = optarg; break;
		case O_DATE: {
			struct hark_date d;

			if (strlen(optarg) != 10 || sscanf(optarg, "%4d-%2d-%2d", &d.year, &d.month, &d.day) != 3 ||
			    optarg[4] != '-' || optarg[7] != '-' || !hark_date_valid(d.year, d.month, d.day)) {
				usage_error(o->cmd, "--date must be a valid YYYY-MM-DD date");
				return -1;
			}
			o->date = optarg;
			break;
		}
		case O_DATA: o->data = optarg; break;
		case O_CONFIG: o->config = optarg; break;
		case O_OFFLINE: o->offline = 1; break;
		case O_BATCH:
			if (parse_size(optarg, 1, 50, &o->batch)) {
				usage_error(o->cmd, "--batch must be 1..50");
				return -1;
			}
			break;
		case O_CHUNK:
			if (parse_size(optarg, 64, 100000, &o->chunk_tokens)) {
				usage_error(o->cmd, "--chunk-tokens must be 64..100000");
				return -1;
			}
			break;
		case O_OVERLAP:
			if (parse_size(optarg, 0, 50000, &o->overlap_tokens)) {
				usage_error(o->cmd, "--overlap-tokens must be 0..50000");
				return -1;
			}
			break;
		case O_NOCACHE: o->no_cache = 1; break;
		case O_FORCE: o->force = 1; break;
		case O_EXPORT:
			if (parse_exports(optarg, o)) {
				usage_error(o->cmd, "--export takes graphml, neo4j or none");
				return -1;
			}
			break;
		case O_JSON: o->json = 1; break;
		case 'r': o->recursive = 1; break;
		case 'q': o->quiet = 1; break;
		case 'e': o->engine = optarg; break;
		case 'm': o->model = optarg; break;
		case 'l': o->language = optarg; break;
		case 't': {
			size_t t;

			if (parse_size(optarg, 1, 1024, &t)) {
				usage_error(o->cmd, "--threads must be 1..1024");
				return -1;
			}
			o->threads = (int)t;
			break;
		}
		case 'h': analyze_help(stdout, o->cmd); return 1;
		default: {
			char m[160];

			snprintf(m, sizeof(m), "unknown or incomplete option '%s'",
				 optind > 0 && optind <= argc ? argv[optind - 1] : "?");
			usage_error(o->cmd, m);
			return -1;
		}
		}
	}
	if (o->chunk_tokens && o->overlap_tokens > o->chunk_tokens / 2) {
		usage_error(o->cmd, "--overlap-tokens must be at most half of --chunk-tokens");
		return -1;
	}
	for (int i = optind; i < argc; i++) {
		struct stat st;
		int rc;

		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			size_t before = o->n_inputs;

			o->dir_input = 1;
			rc = hark_cli_expand_dir(argv[i], o->recursive, accept_name, add_path, o);
			if (rc == HARK_OK && o->n_inputs == before) {
				hark_cli_error(argv[i], HARK_ERR_IS_DIR,
					       run ? "folder holds no files"
						   : "folder holds no transcripts (.json, .txt, .srt, .vtt)");
				return -2;
			}
		} else {
			rc = add_input(o, argv[i]);
		}
		if (rc != HARK_OK) {
			hark_cli_error(argv[i], rc, NULL);
			return -2;
		}
	}
	if (o->n_inputs == 0) {
		usage_error(o->cmd, run ? "no audio files given" : "no transcripts given");
		return -1;
	}
	return 0;
}

/* ---- output files --------------------------------------------------------------------- */

static int write_out(const char *dir, const char *name, const char *data, size_t len, char *err,
		     size_t errlen)
{
	return hark_cli_write_file(dir, name, data, len, err, errlen);
}

/* Writes a graph export through a FILE callback into a memory buffer first. */
static int write_graph_exports(const struct aopts *o, const char *dir, const char *base,
			       const struct hark_graph *g, char *err, size_t errlen)
{
	char name[512];
	int rc = HARK_OK;

	if (o->export_graphml) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);

		if (!f)
			return HARK_ERR_NOMEM;
		rc = hark_graph_write_graphml(g, f);
		if (fclose(f) != 0 && rc == HARK_OK)
			rc = HARK_ERR_NOMEM;
		snprintf(name, sizeof(name), "%s.graphml", base);
		if (rc == HARK_OK)
			rc = write_out(dir, name, buf, len, err, errlen);
		free(buf);
		if (rc != HARK_OK)
			return rc;
	}
	if (o->export_neo4j) {
		char *nb = NULL, *rb = NULL;
		size_t nl = 0, rl = 0;
		FILE *nf = open_memstream(&nb, &nl), *rf = open_memstream(&rb, &rl);

		if (!nf || !rf) {
			if (nf)
				fclose(nf);
			if (rf)
				fclose(rf);
			free(nb);
			free(rb);
			return HARK_ERR_NOMEM;
		}
		rc = hark_graph_write_neo4j_csv(g, nf, rf);
		if (fclose(nf) != 0 && rc == HARK_OK)
			rc = HARK_ERR_NOMEM;
		if (fclose(rf) != 0 && rc == HARK_OK)
			rc = HARK_ERR_NOMEM;
		if (rc == HARK_OK) {
			snprintf(name, sizeof(name), "%s.nodes.csv", base);
			rc = write_out(dir, name, nb, nl, err, errlen);
		}
		if (rc == HARK_OK) {
			snprintf(name, sizeof(name), "%s.relationships.csv", base);
			rc = write_out(dir, name, rb, rl, err, errlen);
		}
		free(nb);
		free(rb);
	}
	return rc;
}

static int write_meeting(const char *dir, const struct hark_pipeline_meeting *m, char *err,
			 size_t errlen)
{
	char name[300];
	int rc;

	snprintf(name, sizeof(name), "%s.minutes.json", m->name);
	rc = write_out(dir, name, m->minutes_json, strlen(m->minutes_json), err, errlen);
	if (rc == HARK_OK) {
		snprintf(name, sizeof(name), "%s.minutes.md", m->name);
		rc = write_out(dir, name, m->minutes_md, strlen(m->minutes_md), err, errlen);
	}
	if (rc == HARK_OK) {
		snprintf(name, sizeof(name), "%s.graph.json", m->name);
		rc = write_out(dir, name, m->graph_json, strlen(m->graph_json), err, errlen);
	}
	return rc;
}

/* ---- progress --------------------------------------------------------------------------- */

struct prog {
	int quiet;
	int stage;
	struct hark_progress *bar;
};

static void on_stage(int stage, size_t done, size_t total, void *ud)
{
	struct prog *p = ud;

	if (p->quiet)
		return;
	if (stage != p->stage || !p->bar) {
		char label[64];

		hark_progress_free(p->bar);
		snprintf(label, sizeof(label), "%-8s", hark_pipeline_stage_name(stage));
		p->bar = hark_progress_new(label, p->quiet);
		p->stage = stage;
	}
	hark_progress_update(p->bar, total ? (double)done / (double)total : 1.0, 0);
}

/* ---- run: transcription with a content-hash cache ----------------------------------------- */

static int file_sha256(const char *path, char hex[65])
{
	static const char hx[] = "0123456789abcdef";
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	FILE *f = fopen(path, "rb");
	int ok = x && f && EVP_DigestInit_ex(x, EVP_sha256(), NULL);
	size_t n;

	while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		ok = EVP_DigestUpdate(x, buf, n);
	if (ok && f && ferror(f))
		ok = 0;
	if (ok)
		ok = EVP_DigestFinal_ex(x, md, &mdlen) && mdlen == 32;
	if (f)
		fclose(f);
	EVP_MD_CTX_free(x);
	if (!ok)
		return HARK_ERR_IO;
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = hx[md[i] >> 4];
		hex[2 * i + 1] = hx[md[i] & 15];
	}
	hex[64] = '\0';
	return HARK_OK;
}

struct tprog {
	struct hark_progress *bar;
};

static void on_tprogress(double fraction, double audio_done_s, void *ud)
{
	struct tprog *t = ud;

	hark_progress_update(t->bar, fraction, audio_done_s);
}

static int on_tcancel(void *ud)
{
	(void)ud;
	return g_interrupted != 0;
}

/* Transcribes (or loads from the cache) every input; failures are recorded
 * in errs[i] and the transcript left NULL. */
static int transcribe_all(const struct aopts *o, struct hark_store *st,
			  struct hark_transcript **ts, int *errs, char (*msgs)[512])
{
	struct hark_model *model = NULL;
	struct hark_ctx *ctx = NULL;
	char key[256], err[512] = "";
	int rc = HARK_OK;

	snprintf(key, sizeof(key), "transcript/%s/%s/%s", o->engine ? o->engine : "auto",
		 o->model ? o->model : "default", o->language ? o->language : "en");
	for (size_t i = 0; i < o->n_inputs; i++) {
		struct hark_transcribe_params tp = hark_transcribe_default_params();
		char sha[65], *cached = NULL, label[300];
		struct tprog tpg = {0};
		const char *base;

		if (g_interrupted) {
			rc = HARK_ERR_CANCELED;
			break;
		}
		errs[i] = file_sha256(o->inputs[i], sha);
		if (errs[i] != HARK_OK) {
			struct stat sb;

			errs[i] = stat(o->inputs[i], &sb) != 0 ? HARK_ERR_NOT_FOUND : HARK_ERR_IO;
			snprintf(msgs[i], sizeof(msgs[i]), "cannot read the file");
			continue;
		}
		if (hark_store_chunk_result_get(st, sha, key, &cached) == HARK_OK && cached) {
			char perr[256];

			errs[i] = hark_transcript_from_json(cached, strlen(cached), &ts[i], perr,
							   sizeof(perr));
			free(cached);
			if (errs[i] == HARK_OK)
				continue;
			errs[i] = HARK_OK;
		}
		if (!model) {
			struct hark_model_params mp = hark_model_default_params();

			mp.engine = o->engine;
			mp.model_path = o->model;
			if (o->language)
				mp.language = o->language;
			mp.n_threads = o->threads;
			rc = hark_model_load(&mp, &model, err, sizeof(err));
			if (rc == HARK_OK)
				rc = hark_ctx_init(model, &ctx);
			if (rc != HARK_OK) {
				hark_cli_error(o->model ? o->model : "model", rc, err);
				break;
			}
		}
		base = strrchr(o->inputs[i], '/');
		base = base ? base + 1 : o->inputs[i];
		snprintf(label, sizeof(label), "[%zu/%zu] %.200s", i + 1, o->n_inputs, base);
		tpg.bar = hark_progress_new(label, o->quiet);
		tp.language = o->language;
		tp.n_threads = o->threads;
		tp.progress = on_tprogress;
		tp.progress_user_data = &tpg;
		tp.cancel = on_tcancel;
		tp.cancel_user_data = NULL;
		errs[i] = hark_transcribe_file(ctx, o->inputs[i], &tp, &ts[i]);
		hark_progress_free(tpg.bar);
		if (errs[i] == HARK_ERR_CANCELED) {
			rc = HARK_ERR_CANCELED;
			break;
		}
		if (errs[i] != HARK_OK) {
			snprintf(msgs[i], sizeof(msgs[i]), "%s", hark_ctx_errmsg(ctx));
			continue;
		}
		{
			char *json = NULL;
			size_t len = 0;

			if (hark_transcript_render(ts[i], HARK_FORMAT_JSON, &json, &len) == HARK_OK) {
				hark_store_chunk_result_put(st, sha, key, "asr", json);
				if (o->out_dir) {
					char name[300], stem[256];
					const char *dot;

					snprintf(stem, sizeof(stem), "%s", base);
					dot = strrchr(stem, '.');
					if (dot && dot != stem)
						stem[dot - stem] = '\0';
					snprintf(name, sizeof(name), "%s.json", stem);
					write_out(o->out_dir, name, json, len, err, sizeof(err));
				}
			}
			free(json);
		}
	}
	hark_ctx_free(ctx);
	hark_model_free(model);
	return rc;
}

/* ---- analyze / run ---------------------------------------------------------------------- */

static void free_opts(struct aopts *o)
{
	for (size_t i = 0; i < o->n_inputs; i++)
		free(o->inputs[i]);
	free(o->inputs);
}

static int has_route(const struct hark_llm_config *cfg, const char *task)
{
	for (size_t i = 0; cfg && i < cfg->n_routes; i++)
		if (cfg->routes[i].task && !strcmp(cfg->routes[i].task, task))
			return 1;
	return 0;
}

static int open_store(const char *data, struct hark_store **st)
{
	struct hark_store_params sp = hark_store_default_params();
	char msg[256] = "";
	int rc;

	rc = hark_cli_mkdir_p(data);
	if (rc != HARK_OK) {
		hark_cli_error(data, rc, "cannot create the data directory");
		return rc;
	}
	rc = hark_store_open(data, &sp, st, msg, sizeof(msg));
	if (rc != HARK_OK)
		hark_cli_error(data, rc, msg);
	return rc;
}

static int cmd_analyze(int argc, char **argv, const char *cmd)
{
	struct aopts o;
	struct hark_llm_config *cfg = NULL;
	struct hark_llm *llm = NULL;
	struct hark_store *st = NULL;
	struct hark_pipeline_input *in = NULL;
	struct hark_pipeline_meeting *out = NULL;
	struct hark_transcript **ts = NULL;
	int *terr = NULL;
	char (*tmsg)[512] = NULL;
	struct hark_graph corpus = {0};
	struct hark_pipeline_stats stats;
	struct hark_pipeline_params p = hark_pipeline_default_params();
	struct prog pg = {0};
	struct sigaction sa, old_int, old_term;
	char err[1024] = "";
	int rc, exit_code = 0, first_err = HARK_OK, mixed = 0, run = !strcmp(cmd, "run");
	size_t n_failed = 0;

	memset(&o, 0, sizeof(o));
	memset(&stats, 0, sizeof(stats));
	o.cmd = cmd;
	o.data = DEFAULT_DATA;
	o.out_dir = ".";
	o.export_graphml = o.export_neo4j = 1;
	o.batch = 10;
	rc = parse_args(argc, argv, &o);
	if (rc != 0) {
		free_opts(&o);
		return rc == 1 ? 0 : rc == -1 ? HARK_EXIT_USAGE : hark_cli_exit_code(HARK_ERR_IS_DIR);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	g_interrupted = 0;

	rc = hark_cli_mkdir_p(o.out_dir);
	if (rc != HARK_OK) {
		hark_cli_error(o.out_dir, rc, "cannot create the output directory");
		exit_code = hark_cli_exit_code(rc);
		goto out;
	}
	if (open_store(o.data, &st) != HARK_OK) {
		exit_code = hark_cli_exit_code(HARK_ERR_IO);
		goto out;
	}
	if (!o.offline) {
		rc = hark_llm_config_load(o.config, &cfg, err, sizeof(err));
		if (rc != HARK_OK) {
			hark_cli_error(o.config ? o.config : "config", rc, err);
			exit_code = hark_cli_exit_code(rc);
			goto out;
		}
		if (cfg->n_providers > 0) {
			struct hark_llm_params lp = hark_llm_default_params();

			lp.config = cfg;
			lp.store = st;
			lp.no_cache = o.no_cache;
			rc = hark_llm_init(&lp, &llm, err, sizeof(err));
			if (rc != HARK_OK) {
				hark_cli_error("llm", rc, err);
				exit_code = hark_cli_exit_code(rc);
				goto out;
			}
		}
	}
	in = calloc(o.n_inputs, sizeof(*in));
	out = calloc(o.n_inputs, sizeof(*out));
	ts = calloc(o.n_inputs, sizeof(*ts));
	terr = calloc(o.n_inputs, sizeof(*terr));
	tmsg = calloc(o.n_inputs, sizeof(*tmsg));
	if (!in || !out || !ts || !terr || !tmsg) {
		hark_cli_error(NULL, HARK_ERR_NOMEM, NULL);
		exit_code = hark_cli_exit_code(HARK_ERR_NOMEM);
		goto out;
	}
	if (run) {
		rc = transcribe_all(&o, st, ts, terr, tmsg);
		if (rc == HARK_ERR_CANCELED) {
			hark_cli_error(NULL, rc, "canceled; run the same command again to continue");
			exit_code = hark_cli_exit_code(rc);
			goto out;
		}
		if (rc != HARK_OK) {
			exit_code = hark_cli_exit_code(rc);
			goto out;
		}
	}
	{
		/* names: the file's stem; a repeated stem gets -2, -3... */
		size_t n_in = 0;
		struct hark_pipeline_input *v = in;
		char (*names)[128] = calloc(o.n_inputs, sizeof(*names));
		char (*dates)[11] = calloc(o.n_inputs, sizeof(*dates));
		size_t *map = calloc(o.n_inputs, sizeof(*map));

		if (!names || !map || !dates) {
			free(names);
			free(dates);
			free(map);
			exit_code = hark_cli_exit_code(HARK_ERR_NOMEM);
			goto out;
		}
		for (size_t i = 0; i < o.n_inputs; i++) {
			const char *b = strrchr(o.inputs[i], '/');
			char *dot;
			int dup = 1;

			b = b ? b + 1 : o.inputs[i];
			snprintf(names[i], sizeof(names[i]), "%s", b);
			if (!strcmp(names[i] + (strlen(names[i]) > 15 ? strlen(names[i]) - 15 : 0),
				    ".transcript.txt") && strlen(names[i]) > 15)
				names[i][strlen(names[i]) - 15] = '\0';
			else if ((dot = strrchr(names[i], '.')) && dot != names[i])
				*dot = '\0';
			for (size_t j = 0; j < i; j++)
				if (!strcmp(names[j], names[i]))
					dup++;
			if (dup > 1) {
				size_t l = strlen(names[i]);

				snprintf(names[i] + l, sizeof(names[i]) - l, "-%d", dup);
			}
		}
		for (size_t i = 0; i < o.n_inputs; i++) {
			if (run && !ts[i]) {
				out[i].err = terr[i] ? terr[i] : HARK_ERR_CANCELED;
				continue;
			}
			map[n_in] = i;
			v[n_in].name = names[i];
			v[n_in].path = run ? NULL : o.inputs[i];
			v[n_in].transcript = run ? ts[i] : NULL;
			v[n_in].date = o.date;
			/* run: the recording date from the container's metadata */
			if (run && !o.date && hark_audio_probe_date(o.inputs[i], dates[i]))
				v[n_in].date = dates[i];
			n_in++;
		}
		p.batch_chunks = o.batch;
		if (o.chunk_tokens)
			p.chunk.max_tokens = o.chunk_tokens;
		if (o.overlap_tokens || o.chunk_tokens)
			p.chunk.overlap_tokens = o.overlap_tokens ? o.overlap_tokens
								  : (p.chunk.overlap_tokens > p.chunk.max_tokens / 2
									     ? p.chunk.max_tokens / 2
									     : p.chunk.overlap_tokens);
		p.llm = llm;
		p.embed = llm && has_route(cfg, "embed");
		p.force = o.force;
		p.progress = on_stage;
		p.cancel = cancel_cb;
		p.user_data = &pg;
		pg.quiet = o.quiet;
		pg.stage = -1;
		{
			struct hark_pipeline_meeting *res = calloc(n_in ? n_in : 1, sizeof(*res));
			int wants_corpus = o.dir_input || o.n_inputs > 1;

			if (!res) {
				free(names);
				free(dates);
				free(map);
				exit_code = hark_cli_exit_code(HARK_ERR_NOMEM);
				goto out;
			}
			rc = hark_pipeline_run(st, in, n_in, &p, res, &corpus, &stats, err, sizeof(err));
			hark_progress_free(pg.bar);
			pg.bar = NULL;
			for (size_t k = 0; k < n_in; k++) {
				struct hark_pipeline_meeting tmp = out[map[k]];

				out[map[k]] = res[k];
				res[k] = tmp;
			}
			free(res);
			if (rc == HARK_OK) {
				char werr[512] = "";

				for (size_t i = 0; i < o.n_inputs; i++) {
					if (out[i].err || !out[i].minutes_json)
						continue;
					if (write_meeting(o.out_dir, &out[i], werr, sizeof(werr)) != HARK_OK) {
						out[i].err = HARK_ERR_IO;
						snprintf(out[i].error, sizeof(out[i].error), "%s", werr);
					}
				}
				if (wants_corpus) {
					char *cj = NULL;
					json_t *j = hark_graph_to_json(&corpus);

					cj = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
					json_decref(j);
					if (!cj || write_out(o.out_dir, "corpus.graph.json", cj, strlen(cj), werr,
							     sizeof(werr)) != HARK_OK ||
					    write_graph_exports(&o, o.out_dir, "corpus", &corpus, werr,
								sizeof(werr)) != HARK_OK) {
						hark_cli_error("corpus", HARK_ERR_IO, werr[0] ? werr : NULL);
						if (first_err == HARK_OK)
							first_err = HARK_ERR_IO;
						n_failed++;
					}
					free(cj);
				} else if (o.n_inputs == 1 && !out[0].err && out[0].graph_json) {
					struct hark_graph g1 = {0};
					json_error_t je;
					json_t *j = json_loads(out[0].graph_json, 0, &je);
					char e2[128];

					if (j && hark_graph_from_json(j, &g1, e2, sizeof(e2)) == HARK_OK &&
					    write_graph_exports(&o, o.out_dir, out[0].name, &g1, werr,
								sizeof(werr)) != HARK_OK) {
						hark_cli_error(out[0].name, HARK_ERR_IO, werr);
						first_err = HARK_ERR_IO;
						n_failed++;
					}
					json_decref(j);
					hark_graph_clear(&g1);
				}
			}
		}
		free(names);
		free(dates);
		free(map);
	}
	if (rc == HARK_ERR_CANCELED) {
		hark_cli_error(NULL, rc, "canceled; finished work is stored, run the same command again to continue");
		exit_code = hark_cli_exit_code(rc);
		goto out;
	}
	if (rc != HARK_OK) {
		hark_cli_error(NULL, rc, err);
		exit_code = hark_cli_exit_code(rc);
		goto out;
	}
	for (size_t i = 0; i < o.n_inputs; i++) {
		if (!out[i].err) {
			if (out[i].warning[0] && !o.quiet)
				fprintf(stderr, "hark: %s: warning: %s\n", out[i].name, out[i].warning);
			continue;
		}
		n_failed++;
		if (run && terr[i])
			hark_cli_error(o.inputs[i], terr[i], tmsg[i][0] ? tmsg[i] : NULL);
		else
			hark_cli_error(o.inputs[i], out[i].err, out[i].error[0] ? out[i].error : NULL);
		if (first_err == HARK_OK)
			first_err = run && terr[i] ? terr[i] : out[i].err;
		else if (first_err != (run && terr[i] ? terr[i] : out[i].err))
			mixed = 1;
	}
	if (!o.quiet) {
		fprintf(stderr,
			"hark: %zu meeting%s analysed (%zu unchanged), %zu failed; %zu chunks, %zu sent to "
			"the LLM (%zu already stored)",
			o.n_inputs - n_failed, o.n_inputs - n_failed == 1 ? "" : "s", stats.reused,
			n_failed, stats.chunks, stats.chunks_sent, stats.chunks_cached);
		if (llm)
			fprintf(stderr, "; tokens in %lld, out %lld, cost $%.4f",
				(long long)stats.tokens_in, (long long)stats.tokens_out, stats.cost_usd);
		fprintf(stderr, " [%.2f s]\n", stats.seconds);
	}
	if (o.json) {
		json_t *r = json_object(), *arr = json_array();

		for (size_t i = 0; r && arr && i < o.n_inputs; i++) {
			json_t *e = json_object();

			json_object_set_new(e, "input", json_string(o.inputs[i]));
			json_object_set_new(e, "name", json_string(out[i].name));
			if (out[i].err) {
				json_object_set_new(e, "error", json_string(hark_err_code(out[i].err)));
				json_object_set_new(e, "message", json_string(out[i].error));
			} else {
				json_object_set_new(e, "method", json_string(out[i].method));
				json_object_set_new(e, "reused", json_boolean(out[i].reused));
				json_object_set_new(e, "chunks", json_integer((json_int_t)out[i].chunks));
				json_object_set_new(e, "chunks_sent",
						    json_integer((json_int_t)out[i].chunks_sent));
				if (out[i].warning[0])
					json_object_set_new(e, "warning", json_string(out[i].warning));
			}
			json_array_append_new(arr, e);
		}
		json_object_set_new(r, "meetings", arr);
		json_object_set_new(r, "failed", json_integer((json_int_t)n_failed));
		json_object_set_new(r, "chunks_sent", json_integer((json_int_t)stats.chunks_sent));
		json_object_set_new(r, "llm_requests", json_integer((json_int_t)stats.llm_requests));
		json_object_set_new(r, "tokens_in", json_integer(stats.tokens_in));
		json_object_set_new(r, "tokens_out", json_integer(stats.tokens_out));
		json_object_set_new(r, "cost_usd", json_real(stats.cost_usd));
		json_dumpf(r, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(r);
	}
	if (n_failed)
		exit_code = mixed ? 1 : hark_cli_exit_code(first_err);
out:
	for (size_t i = 0; out && i < o.n_inputs; i++)
		hark_pipeline_meeting_clear(&out[i]);
	for (size_t i = 0; ts && i < o.n_inputs; i++)
		hark_transcript_free(ts[i]);
	hark_graph_clear(&corpus);
	free(tmsg);
	free(terr);
	free(ts);
	free(out);
	free(in);
	hark_llm_free(llm);
	hark_llm_config_free(cfg);
	hark_store_close(st);
	free_opts(&o);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return exit_code;
}

int hark_cli_analyze(int argc, char **argv)
{
	return cmd_analyze(argc, argv, "analyze");
}

int hark_cli_run(int argc, char **argv)
{
	return cmd_analyze(argc, argv, "run");
}

/* ---- search -------------------------------------------------------------------------------- */

static void search_help(FILE *f)
{
	fprintf(f, "usage: hark search QUERY... [options]\n\n"
		   "Ranks chunks and minutes items (summary, topics, decisions, action items, open\n"
		   "questions) of every analysed meeting: BM25 over the full-text index, fused with\n"
		   "embedding similarity when an `embed` route is configured.\n\n"
		   "options:\n"
		   "  --data DIR       data directory (default " DEFAULT_DATA ")\n"
		   "  --limit N        results (10; 1..100)\n"
		   "  --kind KIND      only chunk, summary, topic, decision, action or question\n"
		   "  --meeting NAME   only this meeting\n"
		   "  --config FILE    hark config (for the embedding route)\n"
		   "  --json           JSON output\n");
}

static void fmt_time(double s, char *buf, size_t len)
{
	if (s < 0) {
		snprintf(buf, len, "--:--:--");
		return;
	}
	snprintf(buf, len, "%02d:%02d:%02d", (int)(s / 3600), (int)(s / 60) % 60, (int)s % 60);
}

int hark_cli_search(int argc, char **argv)
{
	enum { O_DATA = 1000, O_LIMIT, O_KIND, O_MEETING, O_CONFIG, O_JSON };
	static const struct option opts[] = {
		{"data", required_argument, NULL, O_DATA},
		{"limit", required_argument, NULL, O_LIMIT},
		{"kind", required_argument, NULL, O_KIND},
		{"meeting", required_argument, NULL, O_MEETING},
		{"config", required_argument, NULL, O_CONFIG},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *data = DEFAULT_DATA, *config = NULL;
	struct hark_search_params sp = hark_search_default_params();
	struct hark_llm_config *cfg = NULL;
	struct hark_llm *llm = NULL;
	struct hark_store *st = NULL;
	struct hark_search_hit *hits = NULL;
	size_t n = 0, qlen = 0;
	char *query = NULL, err[512] = "";
	int opt, json = 0, rc, exit_code = 0;
	struct stat sb;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case O_DATA: data = optarg; break;
		case O_LIMIT:
			if (parse_size(optarg, 1, 100, &sp.limit))
				return usage_error("search", "--limit must be 1..100");
			break;
		case O_KIND: sp.kind = optarg; break;
		case O_MEETING: sp.meeting = optarg; break;
		case O_CONFIG: config = optarg; break;
		case O_JSON: json = 1; break;
		case 'h': search_help(stdout); return 0;
		default: return usage_error("search", "unknown or incomplete option");
		}
	}
	if (optind >= argc)
		return usage_error("search", "no query given");
	for (int i = optind; i < argc; i++)
		qlen += strlen(argv[i]) + 1;
	query = calloc(qlen + 1, 1);
	if (!query)
		return hark_cli_exit_code(HARK_ERR_NOMEM);
	for (int i = optind; i < argc; i++) {
		if (i > optind)
			strcat(query, " ");
		strcat(query, argv[i]);
	}
	if (stat(data, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		hark_cli_error(data, HARK_ERR_NOT_FOUND,
			       "no data directory: analyse meetings first (hark analyze)");
		exit_code = hark_cli_exit_code(HARK_ERR_NOT_FOUND);
		goto out;
	}
	if (open_store(data, &st) != HARK_OK) {
		exit_code = hark_cli_exit_code(HARK_ERR_IO);
		goto out;
	}
	if (hark_llm_config_load(config, &cfg, err, sizeof(err)) == HARK_OK && cfg->n_providers &&
	    has_route(cfg, "embed")) {
		struct hark_llm_params lp = hark_llm_default_params();

		lp.config = cfg;
		lp.store = st;
		if (hark_llm_init(&lp, &llm, err, sizeof(err)) != HARK_OK)
			llm = NULL;
	}
	rc = hark_search_query(st, llm, query, &sp, &hits, &n, err, sizeof(err));
	if (rc != HARK_OK) {
		hark_cli_error("search", rc, err);
		exit_code = hark_cli_exit_code(rc);
		goto out;
	}
	if (json) {
		json_t *j = hark_search_hits_to_json(query, hits, n);

		if (!j || json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
			json_decref(j);
			exit_code = hark_cli_exit_code(HARK_ERR_IO);
			goto out;
		}
		fputc('\n', stdout);
		json_decref(j);
	} else {
		for (size_t i = 0; i < n; i++) {
			char t[16];

			fmt_time(hits[i].start_s, t, sizeof(t));
			printf("%2zu. %s  [%s]%s%s  (%s, turn %ld)\n    %s\n", i + 1, hits[i].meeting, t,
			       hits[i].speaker ? "  " : "", hits[i].speaker ? hits[i].speaker : "",
			       hits[i].kind, hits[i].turn,
			       hits[i].snippet ? hits[i].snippet : hits[i].text);
		}
		if (n == 0)
			fprintf(stderr, "hark: no match for \"%s\"\n", query);
	}
out:
	hark_search_hits_free(hits, n);
	hark_llm_free(llm);
	hark_llm_config_free(cfg);
	hark_store_close(st);
	free(query);
	return exit_code;
}
