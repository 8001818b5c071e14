/*
 * Meeting-analysis benchmark on the shared meetings ($HARK_SHARED/meetings:
 * QMSum JSON with general-query reference summaries, AMI transcripts with
 * abstractive summaries). Quality: ROUGE-1/2/L F1 of the offline summary
 * (filtered TextRank + MMR, the minutes' summary) against each human
 * reference, next to a plain TextRank baseline and a lead-N baseline, all at
 * the same word budget and scored by the same code. Coverage: what the
 * offline pipeline finds per meeting (topics, decisions, action items, open
 * questions, entities, relations). Speed: the whole offline pipeline
 * (reading, chunking, minutes, entities, graph resolution, store and search
 * index) over every meeting in one run, as meetings per second (best of
 * --repeat runs, each on a fresh store).
 *
 *   usage: bench_analyze [--shared DIR] [--budget WORDS] [--repeat N] [--table]
 * Prints a summary block, with --table a per-meeting Markdown table, and ends
 * with one line "RESULT key=value ...".
 *
 * LLM mode (--llm CONFIG --sim-log FILE [--batch N] [--rpm R] [--tpm T]
 * [--runs 2] [--dir DIR]; --dir takes the .txt files of DIR instead of the shared
 * meetings): the same meetings through the LLM path of the pipeline against
 * hark-llm-sim (started by bench/bench_analyze.sh), on a fresh store; the
 * second run on the same store must send nothing. Reports, in simulated time
 * (wall x the config's time_scale), the run time against the rate-limit
 * bound max(calls / RPM, counted tokens / TPM) computed from the simulator's
 * own request log, and the per-meeting counts the LLM path produced.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "analyze/meeting_text.h"
#include "analyze/pipeline.h"
#include "analyze/rouge.h"
#include "analyze/summarize.h"
#include "llm/config.h"
#include "llm/llm.h"
#include "hark/hark.h"
#include "store/store.h"

struct meeting {
	char path[1024];
	char name[160];        /* "<corpus>_<id>": QMSum and AMI share meeting ids */
	struct hark_meeting_text mt;
	double r[3][3];        /* method x (R1, R2, RL) F1 */
	size_t counts[6];      /* topics, decisions, actions, questions, entities, relations */
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int add_glob(const char *pat, struct meeting **v, size_t *n)
{
	glob_t g;

	if (glob(pat, 0, NULL, &g) != 0)
		return 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct meeting *nv = realloc(*v, (*n + 1) * sizeof(**v));

		if (!nv)
			break;
		*v = nv;
		memset(&(*v)[*n], 0, sizeof(**v));
		snprintf((*v)[*n].path, sizeof((*v)[*n].path), "%s", g.gl_pathv[i]);
		(*n)++;
	}
	globfree(&g);
	return 0;
}

static size_t arr_len(const json_t *o, const char *k)
{
	return json_array_size(json_object_get(o, k));
}

struct log_sums {
	int64_t admitted, rate_limited, counted_tokens;
};

/* Sums the chat requests the simulator logged after byte offset from. */
static void log_sums_read(const char *path, long from, struct log_sums *s)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;

	memset(s, 0, sizeof(*s));
	if (!f)
		return;
	if (fseek(f, from, SEEK_SET) == 0) {
		while (getline(&line, &cap, f) > 0) {
			json_t *j = json_loads(line, 0, NULL);
			const char *ps;

			if (!j)
				continue;
			ps = json_string_value(json_object_get(j, "path"));
			if (ps && strstr(ps, "chat/completions")) {
				if (json_integer_value(json_object_get(j, "status")) == 429)
					s->rate_limited++;
				else {
					s->admitted++;
					s->counted_tokens +=
						json_integer_value(json_object_get(j, "counted_tokens"));
				}
			}
			json_decref(j);
		}
	}
	free(line);
	fclose(f);
}

static long fsize(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = 0;

	if (f && fseek(f, 0, SEEK_END) == 0)
		n = ftell(f);
	if (f)
		fclose(f);
	return n;
}

static int llm_mode(struct meeting *m, size_t n, const char *config, const char *sim_log,
		    size_t batch, double rpm, double tpm, int runs, int table)
{
	struct hark_llm_config *cfg = NULL;
	struct hark_llm *llm = NULL;
	struct hark_store *st = NULL;
	char err[512] = "", d[] = "/tmp/hark-bench-analyze-llm-XXXXXX", cmd[128];
	int rc = 1;

	if (hark_llm_config_load(config, &cfg, err, sizeof(err)) != HARK_OK || !cfg->n_providers) {
		fprintf(stderr, "bench_analyze: config: %s\n", err);
		goto out;
	}
	if (!mkdtemp(d) || hark_store_open(d, NULL, &st, err, sizeof(err)) != HARK_OK) {
		fprintf(stderr, "bench_analyze: store: %s\n", err);
		goto out;
	}
	{
		struct hark_llm_params lp = hark_llm_default_params();

		lp.config = cfg;
		lp.store = st;
		lp.seed = 2;
		if (hark_llm_init(&lp, &llm, err, sizeof(err)) != HARK_OK) {
			fprintf(stderr, "bench_analyze: llm: %s\n", err);
			goto out;
		}
	}
	double first_min = 0, first_bound = 0;

	for (int r = 0; r < runs; r++) {
		struct hark_pipeline_input *in = calloc(n, sizeof(*in));
		struct hark_pipeline_meeting *out = calloc(n, sizeof(*out));
		struct hark_pipeline_params pp = hark_pipeline_default_params();
		struct hark_pipeline_stats stats;
		struct log_sums ls;
		long off = fsize(sim_log);
		double t0, wall, sim_min, bound_min;
		int prc;

		if (!in || !out) {
			free(in);
			free(out);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			in[i].path = m[i].path;
			in[i].name = m[i].name;
		}
		pp.llm = llm;
		pp.batch_chunks = batch;
		/* no force: the rerun finds every meeting unchanged, as a user would */
		t0 = mono();
		prc = hark_pipeline_run(st, in, n, &pp, out, NULL, &stats, err, sizeof(err));
		wall = mono() - t0;
		usleep(300000); /* let the simulator flush its log */
		log_sums_read(sim_log, off, &ls);
		/* the LLM steps in provider time; the local CPU work (reading,
		 * chunking, the offline pass, indexing) is reported in real seconds,
		 * since scaling it by the simulator's time factor would inflate it */
		sim_min = stats.llm_seconds * cfg->time_scale / 60.0;
		bound_min = (double)ls.admitted / rpm;
		if ((double)ls.counted_tokens / tpm > bound_min)
			bound_min = (double)ls.counted_tokens / tpm;
		printf("llm run %d (batch %zu): %zu meetings, %zu chunks (%zu unique, %zu sent, %zu "
		       "stored), %lld calls, %lld counted tokens, %lld 429s, %zu failed chunks\n",
		       r + 1, batch, n, stats.chunks, stats.chunks_unique, stats.chunks_sent,
		       stats.chunks_cached, (long long)ls.admitted, (long long)ls.counted_tokens,
		       (long long)ls.rate_limited, stats.chunks_failed);
		printf("  LLM steps %.2f min simulated, rate-limit bound %.2f min, time/bound %.2f "
		       "(whole run %.1f s wall, of which %.1f s local work)\n",
		       sim_min, bound_min, bound_min > 0 ? sim_min / bound_min : 0, wall,
		       wall - stats.llm_seconds);
		if (r == 0 && table) {
			printf("\n| meeting | topics | decisions | actions | questions | entities | "
			       "relations |\n|---|---|---|---|---|---|---|\n");
			for (size_t i = 0; i < n; i++) {
				json_error_t je;
				json_t *mj = out[i].minutes_json ? json_loads(out[i].minutes_json, 0, &je)
								 : NULL;
				json_t *gj = out[i].graph_json ? json_loads(out[i].graph_json, 0, &je)
							       : NULL;

				printf("| %s | %zu | %zu | %zu | %zu | %zu | %zu |\n", out[i].name,
				       arr_len(mj, "topics"), arr_len(mj, "decisions"),
				       arr_len(mj, "action_items"), arr_len(mj, "open_questions"),
				       arr_len(gj, "entities"), arr_len(gj, "relations"));
				json_decref(mj);
				json_decref(gj);
			}
			printf("\n");
		}
		if (r == 0) {
			first_min = sim_min;
			first_bound = bound_min;
		}
		if (r == runs - 1)
			printf("RESULT llm batch=%zu time_min=%.2f bound_min=%.2f time_over_bound=%.2f "
			       "rerun_calls=%lld\n",
			       batch, first_min, first_bound, first_bound > 0 ? first_min / first_bound : 0,
			       runs > 1 ? (long long)ls.admitted : -1LL);
		for (size_t i = 0; i < n; i++) {
			if (out[i].err)
				fprintf(stderr, "  %s: %s\n", out[i].name, out[i].error);
			hark_pipeline_meeting_clear(&out[i]);
		}
		free(in);
		free(out);
		if (prc != HARK_OK) {
			fprintf(stderr, "bench_analyze: pipeline: %s\n", err);
			goto out;
		}
	}
	rc = 0;
out:
	hark_llm_free(llm);
	hark_store_close(st);
	hark_llm_config_free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	if (d[sizeof(d) - 7] != 'X' && system(cmd) != 0)
		fprintf(stderr, "bench_analyze: could not remove %s\n", d);
	return rc;
}

int main(int argc, char **argv)
{
	const char *shared = getenv("HARK_SHARED");
	size_t budget = 150, n = 0;
	int repeat = 3, table = 0, rc = 1;
	struct meeting *m = NULL;
	char pat[2048], dir[] = "/tmp/hark-bench-analyze-XXXXXX";
	double best = 1e30, sum[3][3] = {{0}};
	static const char *const method_names[3] = {"hark offline", "TextRank", "lead-N"};
	static const int methods[3] = {HARK_SUMMARIZE_FULL, HARK_SUMMARIZE_TEXTRANK,
				       HARK_SUMMARIZE_LEAD};
	size_t scored = 0, tot[6] = {0}, batch = 10;
	const char *llm_config = NULL, *sim_log = NULL, *dir_in = NULL;
	double rpm = 500, tpm = 1000000;
	int runs = 2;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--shared") && i + 1 < argc)
			shared = argv[++i];
		else if (!strcmp(argv[i], "--budget") && i + 1 < argc)
			budget = (size_t)atol(argv[++i]);
		else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
			repeat = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--table"))
			table = 1;
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir_in = argv[++i];
		else if (!strcmp(argv[i], "--llm") && i + 1 < argc)
			llm_config = argv[++i];
		else if (!strcmp(argv[i], "--sim-log") && i + 1 < argc)
			sim_log = argv[++i];
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			batch = (size_t)atol(argv[++i]);
		else if (!strcmp(argv[i], "--rpm") && i + 1 < argc)
			rpm = atof(argv[++i]);
		else if (!strcmp(argv[i], "--tpm") && i + 1 < argc)
			tpm = atof(argv[++i]);
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_analyze [--shared DIR] [--budget WORDS] "
					"[--repeat N] [--table] [--llm CONFIG --sim-log FILE [--batch N] "
					"[--rpm R] [--tpm T] [--runs N] [--dir DIR]]\n");
			return 2;
		}
	}
	if (!shared)
		shared = "../shared";
	if (budget == 0 || repeat < 1) {
		fprintf(stderr, "bench_analyze: bad --budget or --repeat\n");
		return 2;
	}
	if (dir_in) {
		snprintf(pat, sizeof(pat), "%s/*.txt", dir_in);
		add_glob(pat, &m, &n);
	} else {
		snprintf(pat, sizeof(pat), "%s/meetings/qmsum/*.json", shared);
		add_glob(pat, &m, &n);
		snprintf(pat, sizeof(pat), "%s/meetings/ami/*.transcript.txt", shared);
		add_glob(pat, &m, &n);
	}
	if (n == 0) {
		fprintf(stderr, "bench_analyze: no meetings under %s/meetings\n", shared);
		return 1;
	}

	if (llm_config) {
		for (size_t i = 0; i < n; i++) {
			char err[256];

			if (hark_meeting_text_read(m[i].path, NULL, &m[i].mt, err, sizeof(err)) != HARK_OK) {
				fprintf(stderr, "bench_analyze: %s\n", err);
				goto out;
			}
			snprintf(m[i].name, sizeof(m[i].name), "%s_%s",
				 dir_in ? "corpus" : strstr(m[i].path, "/qmsum/") ? "qmsum" : "ami",
				 m[i].mt.id);
		}
		if (!sim_log || batch < 1 || batch > 50 || runs < 1 || rpm <= 0 || tpm <= 0) {
			fprintf(stderr, "bench_analyze: --llm needs --sim-log, --batch 1..50\n");
			goto out;
		}
		rc = llm_mode(m, n, llm_config, sim_log, batch, rpm, tpm, runs, table);
		goto out;
	}

	/* quality */
	for (size_t i = 0; i < n; i++) {
		char err[256];
		struct hark_chunk_turn *turns;

		if (hark_meeting_text_read(m[i].path, NULL, &m[i].mt, err, sizeof(err)) != HARK_OK) {
			fprintf(stderr, "bench_analyze: %s\n", err);
			goto out;
		}
		snprintf(m[i].name, sizeof(m[i].name), "%s_%s",
			 strstr(m[i].path, "/qmsum/") ? "qmsum" : "ami", m[i].mt.id);
		if (!m[i].mt.reference_summary)
			continue;
		turns = calloc(m[i].mt.n_turns, sizeof(*turns));
		if (!turns)
			goto out;
		for (size_t k = 0; k < m[i].mt.n_turns; k++) {
			turns[k].speaker = m[i].mt.turns[k].speaker;
			turns[k].text = m[i].mt.turns[k].text;
			turns[k].start_s = turns[k].end_s = -1;
		}
		for (int k = 0; k < 3; k++) {
			struct hark_summarize_params sp = hark_summarize_default_params();
			struct hark_summary s;
			struct hark_rouge_result rr;
			char *text;

			sp.method = methods[k];
			sp.max_words = budget;
			if (hark_summarize(turns, m[i].mt.n_turns, &sp, &s, err, sizeof(err)) != HARK_OK) {
				fprintf(stderr, "bench_analyze: %s: %s\n", m[i].mt.id, err);
				free(turns);
				goto out;
			}
			text = hark_summary_text(&s);
			if (!text || hark_rouge_compute(text, m[i].mt.reference_summary, NULL, &rr, err,
							sizeof(err)) != HARK_OK) {
				free(text);
				hark_summary_clear(&s);
				free(turns);
				goto out;
			}
			m[i].r[k][0] = rr.rouge1.f1;
			m[i].r[k][1] = rr.rouge2.f1;
			m[i].r[k][2] = rr.rougel.f1;
			for (int j = 0; j < 3; j++)
				sum[k][j] += m[i].r[k][j];
			free(text);
			hark_summary_clear(&s);
		}
		scored++;
		free(turns);
	}

	/* speed + coverage: the whole offline pipeline, fresh store per run */
	for (int r = 0; r < repeat; r++) {
		struct hark_store *st = NULL;
		struct hark_pipeline_input *in = calloc(n, sizeof(*in));
		struct hark_pipeline_meeting *out = calloc(n, sizeof(*out));
		struct hark_pipeline_params pp = hark_pipeline_default_params();
		struct hark_pipeline_stats stats;
		char err[512] = "", d[sizeof(dir)], cmd[128];
		double t0, t;
		int prc;

		memcpy(d, dir, sizeof(dir));
		if (!in || !out || !mkdtemp(d)) {
			free(in);
			free(out);
			goto out;
		}
		if (hark_store_open(d, NULL, &st, err, sizeof(err)) != HARK_OK) {
			fprintf(stderr, "bench_analyze: store: %s\n", err);
			free(in);
			free(out);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			in[i].path = m[i].path;
			in[i].name = m[i].name;
		}
		t0 = mono();
		prc = hark_pipeline_run(st, in, n, &pp, out, NULL, &stats, err, sizeof(err));
		t = mono() - t0;
		if (prc != HARK_OK || stats.failed) {
			fprintf(stderr, "bench_analyze: pipeline: %s (%zu failed)\n", err, stats.failed);
			for (size_t i = 0; i < n; i++)
				if (out[i].err)
					fprintf(stderr, "  %s: %s\n", out[i].name, out[i].error);
		}
		if (t < best)
			best = t;
		for (size_t i = 0; r == 0 && i < n; i++) {
			json_error_t je;
			json_t *mj = out[i].minutes_json ? json_loads(out[i].minutes_json, 0, &je) : NULL;
			json_t *gj = out[i].graph_json ? json_loads(out[i].graph_json, 0, &je) : NULL;

			m[i].counts[0] = arr_len(mj, "topics");
			m[i].counts[1] = arr_len(mj, "decisions");
			m[i].counts[2] = arr_len(mj, "action_items");
			m[i].counts[3] = arr_len(mj, "open_questions");
			m[i].counts[4] = arr_len(gj, "entities");
			m[i].counts[5] = arr_len(gj, "relations");
			for (int k = 0; k < 6; k++)
				tot[k] += m[i].counts[k];
			json_decref(mj);
			json_decref(gj);
		}
		for (size_t i = 0; i < n; i++)
			hark_pipeline_meeting_clear(&out[i]);
		free(in);
		free(out);
		hark_store_close(st);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_analyze: could not remove %s\n", d);
		if (prc != HARK_OK)
			goto out;
	}

	printf("meetings: %zu (%zu with a reference summary), budget %zu words\n", n, scored, budget);
	printf("\n| summary | ROUGE-1 F1 | ROUGE-2 F1 | ROUGE-L F1 |\n|---|---|---|---|\n");
	for (int k = 0; k < 3; k++)
		printf("| %s | %.4f | %.4f | %.4f |\n", method_names[k],
		       scored ? sum[k][0] / (double)scored : 0, scored ? sum[k][1] / (double)scored : 0,
		       scored ? sum[k][2] / (double)scored : 0);
	if (table) {
		printf("\n| meeting | R-1 hark | R-1 TextRank | R-1 lead | R-L hark | topics | decisions | "
		       "actions | questions | entities | relations |\n"
		       "|---|---|---|---|---|---|---|---|---|---|---|\n");
		for (size_t i = 0; i < n; i++)
			printf("| %s | %.3f | %.3f | %.3f | %.3f | %zu | %zu | %zu | %zu | %zu | %zu |\n",
			       m[i].name, m[i].r[0][0], m[i].r[1][0], m[i].r[2][0], m[i].r[0][2],
			       m[i].counts[0], m[i].counts[1], m[i].counts[2], m[i].counts[3],
			       m[i].counts[4], m[i].counts[5]);
	}
	printf("\noffline pipeline: %zu meetings in %.3f s (best of %d) = %.1f meetings/s\n", n, best,
	       repeat, (double)n / best);
	printf("found: %zu topics, %zu decisions, %zu action items, %zu open questions, %zu entities, "
	       "%zu relations\n",
	       tot[0], tot[1], tot[2], tot[3], tot[4], tot[5]);
	printf("RESULT meetings=%zu rouge1=%.4f rouge2=%.4f rougeL=%.4f textrank_rouge1=%.4f "
	       "lead_rouge1=%.4f meetings_per_s=%.2f\n",
	       n, scored ? sum[0][0] / (double)scored : 0, scored ? sum[0][1] / (double)scored : 0,
	       scored ? sum[0][2] / (double)scored : 0, scored ? sum[1][0] / (double)scored : 0,
	       scored ? sum[2][0] / (double)scored : 0, (double)n / best);
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		hark_meeting_text_clear(&m[i].mt);
	free(m);
	return rc;
}
