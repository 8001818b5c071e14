/*
 * Whisper equivalence with whisper.cpp: for every model x audio x variant in
 * $HARK_SHARED/whisper/reference/ (greedy / beam5, -l en / -l auto), the
 * Whisper engine runs with whisper-cli's settings (-t 2 -nf, -bs 1 or 5) on
 * the same PCM, and every segment must have whisper.cpp's token ids (JSON
 * convention: opening timestamp dropped, closing kept), its from/to times in
 * ms (no-timestamps mode: the garbage start is replaced by the window start)
 * and its exact text bytes; -l auto must detect the same language. The raw
 * decoder logits for the fixed prompt + forced tokens must be within 2e-3
 * (f16/f32) or 1e-2 (quantised) of reference/<model>/jfk.logits.f32.
 * A summary table of all cases is printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "asr/engine.h"
#include "asr/whisper/wmel.h"
#include "asr/whisper/wmodel.h"
#include "asr/whisper/wnet.h"
#include "format/transcript.h"
#include "wd_util.h"

#define N_AUDIO 4
static const char *audio_names[N_AUDIO] = {"jfk", "pyannote_sample", "2412-153948-0000", "concat75"};
static float *audio_pcm[N_AUDIO];
static size_t audio_n[N_AUDIO];

static int load_audio(void)
{
	char p[1024];
	const char *sh = wd_shared_dir();
	snprintf(p, sizeof(p), "%s/audio/jfk/jfk.wav", sh);
	if (wd_read_wav16(p, &audio_pcm[0], &audio_n[0]))
		return -1;
	snprintf(p, sizeof(p), "%s/audio/conversation/pyannote_sample.wav", sh);
	if (wd_read_wav16(p, &audio_pcm[1], &audio_n[1]))
		return -1;
	snprintf(p, sizeof(p), "%s/audio/librispeech/dev-clean/2412-153948-0000.flac", sh);
	if (wd_decode_audio(p, &audio_pcm[2], &audio_n[2]))
		return -1;
	/* concat75 = jfk + pyannote + 2412 + jfk + 2412, first 1,200,000 samples */
	const int order[5] = {0, 1, 2, 0, 2};
	audio_n[3] = 1200000;
	audio_pcm[3] = malloc(sizeof(float) * audio_n[3]);
	size_t k = 0;
	for (int i = 0; i < 5 && k < audio_n[3]; i++) {
		size_t take = audio_n[order[i]];
		if (take > audio_n[3] - k)
			take = audio_n[3] - k;
		memcpy(audio_pcm[3] + k, audio_pcm[order[i]], sizeof(float) * take);
		k += take;
	}
	return k == audio_n[3] ? 0 : -1;
}

struct result_row {
	char model[48], cas[64];
	int segs_ok, n_segs, n_ref_segs, tok_ok, time_ok, text_ok, lang_ok;
	double secs;
	int pass;
};

static struct result_row rows[256];
static int n_rows;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int list_dir(const char *dir, char **names, int max, int want_dirs)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		if (e->d_name[0] == '.')
			continue;
		const size_t l = strlen(e->d_name);
		if (want_dirs) {
			if (!strchr(e->d_name, '.') || strncmp(e->d_name, "micro", 5) == 0)
				if (strcmp(e->d_name, "SHA256SUMS"))
					names[n++] = strdup(e->d_name);
		} else if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0 && strncmp(e->d_name, "jfk.logits", 10) &&
			   strncmp(e->d_name, "jfk.mel", 7)) {
			names[n++] = strdup(e->d_name);
		}
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof(char *), cmp_str);
	return n;
}

static void run_case(const struct hark_engine_ops *ops, void *model, const struct hark_wmodel *wm,
		     const char *model_name, const char *refdir, const char *file)
{
	struct result_row *r = &rows[n_rows++];
	memset(r, 0, sizeof(*r));
	snprintf(r->model, sizeof(r->model), "%s", model_name);
	snprintf(r->cas, sizeof(r->cas), "%.*s", (int)(strlen(file) - 5), file);
	int ai = -1;
	for (int i = 0; i < N_AUDIO; i++) {
		const size_t l = strlen(audio_names[i]);
		if (strncmp(file, audio_names[i], l) == 0 && file[l] == '.')
			ai = i;
	}
	assert_true(ai >= 0);
	const int beam = strstr(file, ".beam5") != NULL;
	const char *lang = strstr(file, ".lang-auto") ? "auto" : "en";

	char path[2048];
	snprintf(path, sizeof(path), "%s/%s", refdir, file);
	json_t *ref = wd_json_load_lenient(path);
	assert_non_null(ref);
	json_t *tr = json_object_get(ref, "transcription");
	const char *ref_lang = json_string_value(json_object_get(json_object_get(ref, "result"), "language"));

	struct hark_engine_run_params rp;
	memset(&rp, 0, sizeof(rp));
	rp.language = lang;
	rp.n_threads = 2;
	rp.beam_size = beam ? 5 : 1;
	rp.best_of = 5;
	rp.no_fallback = 1;
	rp.word_timestamps = 1;
	char err[512] = "";
	void *st = NULL;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(ops->state_new(model, &rp, &st, err, sizeof(err)), 0);
	for (size_t i = 0; i < audio_n[ai]; i += 16000) {
		size_t n = audio_n[ai] - i < 16000 ? audio_n[ai] - i : 16000;
		assert_int_equal(ops->feed(st, audio_pcm[ai] + i, n, err, sizeof(err)), 0);
	}
	struct hark_transcript *t;
	assert_int_equal(hark_transcript_new(&t), 0);
	int rc = ops->finish(st, t, err, sizeof(err));
	if (rc)
		fprintf(stderr, "finish: %s\n", err);
	assert_int_equal(rc, 0);
	ops->state_free(st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);

	const size_t nref = json_array_size(tr);
	r->n_ref_segs = (int)nref;
	r->n_segs = (int)t->n_segments;
	r->lang_ok = ref_lang && t->language && strcmp(ref_lang, t->language) == 0;
	const int64_t garbage = -20LL * wm->sp.beg; /* whisper.cpp's no-timestamps t0 offset */
	int all_tok = 1, all_time = 1, all_text = 1;
	for (size_t i = 0; i < nref && i < t->n_segments; i++) {
		json_t *js = json_array_get(tr, i);
		const struct hark_segment *sg = &t->segments[i];
		json_t *off = json_object_get(js, "offsets");
		int64_t from = json_integer_value(json_object_get(off, "from"));
		const int64_t to = json_integer_value(json_object_get(off, "to"));
		if (from < 0)
			from -= garbage; /* the window start */
		const int64_t my_from = llround(sg->start * 1000.0), my_to = llround(sg->end * 1000.0);
		int time_ok = my_from == from && my_to == to;
		json_t *toks = json_object_get(js, "tokens");
		int tok_ok = json_array_size(toks) == sg->n_tokens;
		for (size_t k = 0; tok_ok && k < sg->n_tokens; k++)
			tok_ok = json_integer_value(json_object_get(json_array_get(toks, k), "id")) == sg->tokens[k];
		const char *rt = json_string_value(json_object_get(js, "text"));
		int text_ok = rt && sg->text && strcmp(rt, sg->text) == 0;
		if (!time_ok || !tok_ok || !text_ok) {
			if (all_tok && all_time && all_text)
				fprintf(stderr, "  %s/%s: first mismatch in segment %zu: time %d (%lld-%lld vs %lld-%lld) "
						"tokens %d text %d\n",
					model_name, file, i, time_ok, (long long)my_from, (long long)my_to,
					(long long)from, (long long)to, tok_ok, text_ok);
		}
		all_tok &= tok_ok;
		all_time &= time_ok;
		all_text &= text_ok;
		r->segs_ok += time_ok && tok_ok && text_ok;
	}
	r->tok_ok = all_tok && nref == t->n_segments;
	r->time_ok = all_time && nref == t->n_segments;
	r->text_ok = all_text && nref == t->n_segments;
	r->pass = r->tok_ok && r->time_ok && r->text_ok && r->lang_ok;
	hark_transcript_free(t);
	json_decref(ref);
}

/* logits rows of jfk.logits.f32 for the sidecar's prompt + forced tokens */
static int check_logits(const struct hark_wmodel *wm, const char *refdir, const char *model_name, double *maxd_out)
{
	char path[2048];
	snprintf(path, sizeof(path), "%s/jfk.logits.json", refdir);
	json_t *j = wd_json_load_lenient(path);
	if (!j)
		return -1;
	snprintf(path, sizeof(path), "%s/jfk.logits.f32", refdir);
	char *ref;
	size_t rl;
	assert_int_equal(wd_read_file(path, &ref, &rl), 0);
	const int nv = wm->hp.n_vocab;
	json_t *prompt = json_object_get(j, "prompt_ids"), *forced = json_object_get(j, "forced_ids");
	json_t *jrows = json_object_get(j, "rows");
	int32_t toks[16];
	const int np = (int)json_array_size(prompt), nf = (int)json_array_size(forced);
	assert_true(np + nf <= 16);
	for (int i = 0; i < np; i++)
		toks[i] = (int32_t)json_integer_value(json_array_get(prompt, i));
	for (int i = 0; i < nf; i++)
		toks[np + i] = (int32_t)json_integer_value(json_array_get(forced, i));

	float *pcm;
	size_t n;
	snprintf(path, sizeof(path), "%s/audio/jfk/jfk.wav", wd_shared_dir());
	assert_int_equal(wd_read_wav16(path, &pcm, &n), 0);
	struct hark_wmel *mel;
	assert_int_equal(hark_wmel_new(wm->hp.n_mels, wm->filters, &mel), 0);
	assert_int_equal(hark_wmel_feed(mel, pcm, n), 0);
	assert_int_equal(hark_wmel_finish(mel), 0);
	char err[256];
	struct hark_wnet *net;
	assert_int_equal(hark_wnet_new(wm, 1, NULL, &net, err, sizeof(err)), 0);
	hark_wmel_window(mel, 0, 2 * wm->hp.n_audio_ctx, hark_wnet_mel_buffer(net));
	assert_int_equal(hark_wnet_encode(net), 0);
	float *lg = malloc(sizeof(float) * (size_t)nv);
	double maxd = 0;
	for (int row = 0; row <= nf; row++) {
		int pos[16], seq[16] = {0};
		for (int i = 0; i < 16; i++)
			pos[i] = i;
		if (row == 0)
			assert_int_equal(hark_wnet_decode(net, toks, pos, seq, np, lg, 0), 0);
		else
			assert_int_equal(hark_wnet_decode(net, toks + np + row - 1, pos + np + row - 1, seq, 1, lg, 0), 0);
		for (size_t k = 0; k < json_array_size(jrows); k++) {
			json_t *jr = json_array_get(jrows, k);
			if (json_integer_value(json_object_get(jr, "row")) != row)
				continue;
			const int si = (int)json_integer_value(json_object_get(jr, "stored_index"));
			assert_true((size_t)(si + 1) * nv * sizeof(float) <= rl);
			const float *R = (const float *)ref + (size_t)si * nv;
			for (int i = 0; i < nv; i++) {
				const double d = fabs((double)lg[i] - R[i]);
				if (d > maxd)
					maxd = d;
			}
		}
	}
	*maxd_out = maxd;
	const int quant = wm->hp.ftype > 1;
	printf("logits %-16s max |diff| %.3g (tolerance %g)\n", model_name, maxd, quant ? 1e-2 : 2e-3);
	free(lg);
	hark_wnet_free(net);
	hark_wmel_free(mel);
	free(pcm);
	free(ref);
	json_decref(j);
	return maxd < (quant ? 1e-2 : 2e-3) ? 0 : 1;
}

static void test_golden(void **state)
{
	(void)state;
	char refroot[512];
	snprintf(refroot, sizeof(refroot), "%s/whisper/reference", wd_shared_dir());
	char *models[64];
	const int nm = list_dir(refroot, models, 64, 1);
	if (nm == 0)
		skip();
	assert_int_equal(load_audio(), 0);
	const struct hark_engine_ops *ops = &hark_engine_whisper; /* direct reference links the engine in */
	assert_non_null(ops);
	int logit_fail = 0;
	const char *only = getenv("WD_GOLDEN_ONLY"); /* debugging: restrict to one model */
	for (int mi = 0; mi < nm; mi++) {
		if (only && strcmp(only, models[mi]))
			continue;
		char mpath[1024], refdir[1024], err[512];
		snprintf(mpath, sizeof(mpath), "%s/whisper/models/%s.bin", wd_shared_dir(), models[mi]);
		snprintf(refdir, sizeof(refdir), "%s/%s", refroot, models[mi]);
		void *model;
		int rc = ops->model_load(mpath, &model, err, sizeof(err));
		if (rc)
			fprintf(stderr, "%s: %s\n", mpath, err);
		assert_int_equal(rc, 0);
		struct hark_wmodel *wm;
		assert_int_equal(hark_wmodel_load(mpath, &wm, err, sizeof(err)), 0);
		double md;
		if (check_logits(wm, refdir, models[mi], &md) > 0)
			logit_fail++;
		char *files[64];
		const int nf = list_dir(refdir, files, 64, 0);
		for (int fi = 0; fi < nf; fi++) {
			run_case(ops, model, wm, models[mi], refdir, files[fi]);
			free(files[fi]);
		}
		hark_wmodel_free(wm);
		ops->model_free(model);
	}
	int n_pass = 0;
	printf("\n%-16s %-34s %9s %5s %5s %5s %5s %7s %s\n", "model", "case", "segs", "tok", "time", "text", "lang",
	       "secs", "result");
	for (int i = 0; i < n_rows; i++) {
		const struct result_row *r = &rows[i];
		printf("%-16s %-34s %4d/%-4d %5s %5s %5s %5s %7.2f %s\n", r->model, r->cas, r->segs_ok, r->n_ref_segs,
		       r->tok_ok ? "ok" : "FAIL", r->time_ok ? "ok" : "FAIL", r->text_ok ? "ok" : "FAIL",
		       r->lang_ok ? "ok" : "FAIL", r->secs, r->pass ? "PASS" : "FAIL");
		n_pass += r->pass;
	}
	printf("golden cases: %d/%d pass; logits: %d model(s) out of tolerance\n", n_pass, n_rows, logit_fail);
	for (int mi = 0; mi < nm; mi++)
		free(models[mi]);
	for (int i = 0; i < N_AUDIO; i++)
		free(audio_pcm[i]);
	assert_int_equal(logit_fail, 0);
	assert_int_equal(n_pass, n_rows);
	if (!only)
		assert_true(n_rows >= 50); /* every golden case of the shared data set */
}

struct prog {
	double last, max_seen;
	int calls, monotonic;
};

static void on_progress(double fraction, double done_s, void *ud)
{
	struct prog *p = ud;
	(void)done_s;
	if (fraction < p->last)
		p->monotonic = 0;
	p->last = fraction;
	if (fraction > p->max_seen)
		p->max_seen = fraction;
	p->calls++;
}

static int cancel_after;
static int cancel_polls;
static int on_cancel(void *ud)
{
	(void)ud;
	return ++cancel_polls > cancel_after;
}

/* Engine contract: progress, cancel, words, language, bad arguments. */
static void test_engine_api(void **state)
{
	(void)state;
	char mpath[1024], err[512] = "";
	snprintf(mpath, sizeof(mpath), "%s/whisper/models/micro-en3.bin", wd_shared_dir());
	const struct hark_engine_ops *ops = &hark_engine_whisper;
	void *model;
	if (ops->model_load(mpath, &model, err, sizeof(err)))
		skip();
	assert_string_equal(ops->model_name(model), "micro-en3");
	assert_non_null(ops->version());
	float *pcm;
	size_t n;
	snprintf(mpath, sizeof(mpath), "%s/audio/jfk/jfk.wav", wd_shared_dir());
	assert_int_equal(wd_read_wav16(mpath, &pcm, &n), 0);

	struct prog pg = {0, 0, 0, 1};
	struct hark_engine_run_params rp;
	memset(&rp, 0, sizeof(rp));
	rp.language = "en";
	rp.n_threads = 2;
	rp.beam_size = 1;
	rp.best_of = 5;
	rp.no_fallback = 1;
	rp.word_timestamps = 1;
	rp.total_s = (double)n / 16000.0;
	rp.progress = on_progress;
	rp.progress_user_data = &pg;
	void *st;
	assert_int_equal(ops->state_new(model, &rp, &st, err, sizeof(err)), 0);
	for (size_t i = 0; i < n; i += 999)
		assert_int_equal(ops->feed(st, pcm + i, n - i < 999 ? n - i : 999, err, sizeof(err)), 0);
	struct hark_transcript *t;
	assert_int_equal(hark_transcript_new(&t), 0);
	assert_int_equal(ops->finish(st, t, err, sizeof(err)), 0);
	ops->state_free(st);
	assert_true(pg.calls >= 2);
	assert_true(pg.monotonic);
	assert_true(fabs(pg.max_seen - 1.0) < 1e-9);
	assert_string_equal(t->language, "en");
	assert_int_equal(t->n_segments, 1);
	/* micro-en3 jfk greedy: " 383" from 0.96 s to 18.68 s (golden) */
	assert_true(fabs(t->segments[0].start - 0.96) < 1e-9);
	assert_true(fabs(t->segments[0].end - 18.68) < 1e-9);
	assert_int_equal(t->n_words, 1);
	assert_string_equal(t->words[0].word, " 383");
	assert_true(t->words[0].start >= t->segments[0].start && t->words[0].end <= t->segments[0].end);
	assert_non_null(t->text);
	hark_transcript_free(t);

	/* cancel: polled while decoding, finish reports it */
	rp.progress = NULL;
	rp.cancel = on_cancel;
	cancel_after = 11 + 2; /* 11 feed polls, then cancel inside decoding */
	cancel_polls = 0;
	assert_int_equal(ops->state_new(model, &rp, &st, err, sizeof(err)), 0);
	for (size_t i = 0; i < n; i += 16000)
		assert_int_equal(ops->feed(st, pcm + i, n - i < 16000 ? n - i : 16000, err, sizeof(err)), 0);
	assert_int_equal(hark_transcript_new(&t), 0);
	assert_int_equal(ops->finish(st, t, err, sizeof(err)), HARK_ERR_CANCELED);
	assert_true(cancel_polls > 11);
	hark_transcript_free(t);
	ops->state_free(st);
	/* cancel while feeding */
	cancel_after = 2;
	cancel_polls = 0;
	assert_int_equal(ops->state_new(model, &rp, &st, err, sizeof(err)), 0);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i += 16000)
		rc = ops->feed(st, pcm + i, n - i < 16000 ? n - i : 16000, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_CANCELED);
	ops->state_free(st);

	/* words of a long segment (micro-en: 220 tokens in one 30 s window):
	 * ordered, inside their segment, covering the text */
	{
		char p2[1024];
		void *m2;
		snprintf(p2, sizeof(p2), "%s/whisper/models/micro-en.bin", wd_shared_dir());
		assert_int_equal(ops->model_load(p2, &m2, err, sizeof(err)), 0);
		rp.cancel = NULL;
		assert_int_equal(ops->state_new(m2, &rp, &st, err, sizeof(err)), 0);
		assert_int_equal(ops->feed(st, pcm, n, err, sizeof(err)), 0);
		assert_int_equal(hark_transcript_new(&t), 0);
		assert_int_equal(ops->finish(st, t, err, sizeof(err)), 0);
		assert_int_equal(t->n_segments, 1);
		const struct hark_segment *sg = &t->segments[0];
		assert_true(sg->start == 0.0 && sg->end == 30.0);
		assert_true(t->n_words > 100);
		size_t tl = 0;
		for (size_t w = 0; w < t->n_words; w++) {
			const struct hark_word *wd = &t->words[w];
			assert_true(wd->start >= sg->start && wd->end <= sg->end && wd->start <= wd->end);
			if (w > 0)
				assert_true(wd->start >= t->words[w - 1].start);
			tl += strlen(wd->word);
		}
		assert_int_equal(tl, strlen(sg->text));
		hark_transcript_free(t);
		ops->state_free(st);
		ops->model_free(m2);
	}

	/* unknown language */
	rp.cancel = NULL;
	rp.language = "xx";
	st = NULL;
	assert_int_equal(ops->state_new(model, &rp, &st, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	assert_null(st);

	/* too little audio: no segments, no error */
	rp.language = "en";
	assert_int_equal(ops->state_new(model, &rp, &st, err, sizeof(err)), 0);
	assert_int_equal(ops->feed(st, pcm, 100, err, sizeof(err)), 0);
	assert_int_equal(hark_transcript_new(&t), 0);
	assert_int_equal(ops->finish(st, t, err, sizeof(err)), 0);
	assert_int_equal(t->n_segments, 0);
	hark_transcript_free(t);
	ops->state_free(st);

	ops->model_free(model);
	void *bad;
	assert_int_not_equal(ops->model_load("/nonexistent/ggml-x.bin", &bad, err, sizeof(err)), 0);
	free(pcm);
}

struct par_run {
	const struct hark_engine_ops *ops;
	void *model;
	const float *pcm;
	size_t n;
	char *text;
	int rc;
};

static void *par_thread(void *arg)
{
	struct par_run *r = arg;
	char err[256];
	struct hark_engine_run_params rp;
	memset(&rp, 0, sizeof(rp));
	rp.language = "en";
	rp.n_threads = 1;
	rp.beam_size = 5;
	rp.best_of = 5;
	rp.no_fallback = 1;
	void *st = NULL;
	struct hark_transcript *t = NULL;
	r->rc = r->ops->state_new(r->model, &rp, &st, err, sizeof(err));
	if (!r->rc)
		r->rc = r->ops->feed(st, r->pcm, r->n, err, sizeof(err));
	if (!r->rc)
		r->rc = hark_transcript_new(&t);
	if (!r->rc)
		r->rc = r->ops->finish(st, t, err, sizeof(err));
	if (!r->rc)
		r->text = strdup(t->text ? t->text : "");
	hark_transcript_free(t);
	if (st)
		r->ops->state_free(st);
	return NULL;
}

/* Two states on one shared model, decoding at the same time (beam search,
 * one thread each), must both give the single-run golden result. */
static void test_concurrent_states(void **state)
{
	(void)state;
	char path[1024], err[256];
	snprintf(path, sizeof(path), "%s/whisper/models/micro-en3.bin", wd_shared_dir());
	const struct hark_engine_ops *ops = &hark_engine_whisper;
	void *model;
	if (ops->model_load(path, &model, err, sizeof(err)))
		skip();
	float *pcm;
	size_t n;
	snprintf(path, sizeof(path), "%s/audio/jfk/jfk.wav", wd_shared_dir());
	assert_int_equal(wd_read_wav16(path, &pcm, &n), 0);
	snprintf(path, sizeof(path), "%s/whisper/reference/micro-en3/jfk.beam5.json", wd_shared_dir());
	json_t *ref = wd_json_load_lenient(path);
	assert_non_null(ref);
	const char *want = json_string_value(json_object_get(json_array_get(json_object_get(ref, "transcription"), 0), "text"));
	assert_non_null(want);
	struct par_run r[2];
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		r[i] = (struct par_run){ops, model, pcm, n, NULL, -1};
		assert_int_equal(pthread_create(&th[i], NULL, par_thread, &r[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].rc, 0);
		/* the transcript text is the segment text without the leading space */
		assert_non_null(strstr(want, r[i].text));
		assert_true(strlen(r[i].text) > 0);
		free(r[i].text);
	}
	json_decref(ref);
	free(pcm);
	ops->model_free(model);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_engine_api),
		cmocka_unit_test(test_concurrent_states),
		cmocka_unit_test(test_golden),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
