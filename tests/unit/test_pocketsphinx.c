/*
 * The PocketSphinx engine through its ops table on real speech (jfk.wav):
 * model-directory errors are HARK_ERR_MODEL; a run yields non-empty text with
 * in-range, non-decreasing word and segment times; two states on one model in
 * two threads give exactly the sequential result; feeding 1-sample and
 * 16000-sample chunks gives the same transcript; cancel stops the run;
 * progress is monotonic. Keyword spotting finds words JFK says at the right
 * times (on PCM and on the file with an offset), not words he does not say,
 * and rejects unknown words by name; cancel stops it.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "asr/engine.h"
#include "asr/kws.h"
#include "audio/audio.h"
#include "format/transcript.h"

static const struct hark_engine_ops *ops = &hark_engine_pocketsphinx;
static void *model;
static float *pcm;
static size_t n_pcm;
static int have_data;
static struct hark_transcript *ref;  /* 16000-sample feed, sequential */

static int setup(void **state)
{
	const char *shared = getenv("HARK_SHARED");
	char path[4096], err[512];
	struct hark_audio_params ap = hark_audio_default_params();
	struct stat st;

	(void)state;
	snprintf(path, sizeof path, "%s/audio/jfk/jfk.wav", shared ? shared : "../shared");
	if (stat(path, &st) != 0)
		return 0;  /* tests skip */
	if (hark_audio_decode_all(path, &ap, 60 * HARK_AUDIO_RATE, &pcm, &n_pcm, err,
				  sizeof err) != HARK_OK) {
		fprintf(stderr, "decode %s: %s\n", path, err);
		return -1;
	}
	if (ops->model_load(NULL, &model, err, sizeof err) != HARK_OK) {
		fprintf(stderr, "model: %s\n", err);
		return -1;
	}
	have_data = 1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hark_transcript_free(ref);
	if (model)
		ops->model_free(model);
	free(pcm);
	return 0;
}

/* Runs one state over pcm in chunks of chunk samples. */
static int run(const struct hark_engine_run_params *p, size_t chunk,
	       struct hark_transcript **out)
{
	void *st = NULL;
	char err[512] = "";
	int rc;

	*out = NULL;
	rc = ops->state_new(model, p, &st, err, sizeof err);
	if (rc)
		return rc;
	for (size_t off = 0; off < n_pcm && rc == HARK_OK; off += chunk) {
		size_t k = n_pcm - off < chunk ? n_pcm - off : chunk;
		rc = ops->feed(st, pcm + off, k, err, sizeof err);
	}
	if (rc == HARK_OK && (rc = hark_transcript_new(out)) == HARK_OK)
		rc = ops->finish(st, *out, err, sizeof err);
	ops->state_free(st);
	if (rc) {
		hark_transcript_free(*out);
		*out = NULL;
	}
	return rc;
}

static struct hark_engine_run_params base_params(void)
{
	struct hark_engine_run_params p;
	memset(&p, 0, sizeof p);
	p.language = "en";
	p.n_threads = 1;
	p.word_timestamps = 1;
	p.total_s = (double)n_pcm / HARK_SAMPLE_RATE;
	return p;
}

static void assert_same(const struct hark_transcript *a, const struct hark_transcript *b)
{
	assert_string_equal(a->text, b->text);
	assert_int_equal(a->n_words, b->n_words);
	assert_int_equal(a->n_segments, b->n_segments);
	for (size_t i = 0; i < a->n_words; i++) {
		assert_string_equal(a->words[i].word, b->words[i].word);
		assert_true(a->words[i].start == b->words[i].start);
		assert_true(a->words[i].end == b->words[i].end);
		assert_true(a->words[i].probability == b->words[i].probability);
	}
}

static void test_model_errors(void **state)
{
	void *m = NULL;
	char err[512] = "";
	char dir[] = "/tmp/hark-ps-test-XXXXXX";
	(void)state;

	assert_int_equal(ops->model_load("/nonexistent/ps-model", &m, err, sizeof err),
			 HARK_ERR_MODEL);
	assert_null(m);
	assert_non_null(strstr(err, "/nonexistent/ps-model"));

	/* An existing but empty directory: no acoustic model. */
	assert_non_null(mkdtemp(dir));
	err[0] = 0;
	assert_int_equal(ops->model_load(dir, &m, err, sizeof err), HARK_ERR_MODEL);
	assert_null(m);
	assert_non_null(strstr(err, "acoustic model"));
	assert_int_equal(rmdir(dir), 0);

	/* A regular file where a directory is expected. */
	err[0] = 0;
	assert_int_equal(ops->model_load("/etc/hostname", &m, err, sizeof err), HARK_ERR_MODEL);
	assert_non_null(strstr(err, "not a directory"));
}

static void test_model_bad_files(void **state)
{
	/* Right layout, garbage content: ps_init fails -> HARK_ERR_MODEL. */
	char dir[] = "/tmp/hark-ps-test-XXXXXX";
	char p[600];
	void *m = NULL;
	char err[512] = "";
	const char *files[] = {"en-us/mdef", "en-us/means", "en-us/variances",
			       "en-us/transition_matrices", "en-us/feat.params", "en-us.lm.bin",
			       "x.dict"};
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof p, "%s/en-us", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		FILE *f;
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		f = fopen(p, "w");
		assert_non_null(f);
		fputs("this is not a model\n", f);
		fclose(f);
	}
	assert_int_equal(ops->model_load(dir, &m, err, sizeof err), HARK_ERR_MODEL);
	assert_null(m);
	assert_true(strlen(err) > 0);
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		unlink(p);
	}
	snprintf(p, sizeof p, "%s/en-us", dir);
	rmdir(p);
	rmdir(dir);
}

static void test_transcribe_jfk(void **state)
{
	struct hark_engine_run_params p;
	struct hark_transcript *t;
	double dur;
	int found_country = 0;
	(void)state;
	if (!have_data)
		skip();
	p = base_params();
	dur = p.total_s;
	assert_int_equal(run(&p, 16000, &t), HARK_OK);
	ref = t;
	assert_non_null(t->text);
	assert_true(strlen(t->text) > 10);
	assert_string_equal(t->language, "en");
	assert_true(t->n_segments >= 1);
	assert_true(t->n_words >= 5);
	for (size_t i = 0; i < t->n_words; i++) {
		const struct hark_word *w = &t->words[i];
		assert_true(w->start >= 0 && w->end <= dur + 0.05 && w->end >= w->start);
		assert_true(w->probability >= 0.0f && w->probability <= 1.0f);
		assert_null(strchr(w->word, '('));  /* "(2)" suffixes stripped */
		assert_int_not_equal(w->word[1], '<');  /* no <s>, </s>, <sil> */
		assert_int_not_equal(w->word[1], '[');  /* no [NOISE] */
		if (i > 0)
			assert_true(w->start >= t->words[i - 1].end - 1e-9);
		/* JFK says "country" twice, around 6 s and 10 s. */
		if (strcmp(w->word, " country") == 0 &&
		    ((w->start > 5.0 && w->start < 7.0) || (w->start > 9.5 && w->start < 11.0)))
			found_country++;
	}
	assert_true(found_country >= 1);
	for (size_t i = 0; i < t->n_segments; i++) {
		const struct hark_segment *s = &t->segments[i];
		assert_int_equal(s->id, (int)i);
		assert_true(s->n_words > 0);
		assert_true(s->start <= t->words[s->first_word].start + 1e-9);
		assert_true(s->end >= t->words[s->first_word + s->n_words - 1].end - 1e-9);
		assert_true(s->no_speech_prob >= 0 && s->no_speech_prob <= 1);
		assert_true(s->avg_logprob <= 0.0f);
		if (i > 0)
			assert_true(s->start >= t->segments[i - 1].end - 1e-9);
	}
}

static void test_chunking_invariant(void **state)
{
	struct hark_engine_run_params p;
	struct hark_transcript *b;
	(void)state;
	if (!have_data || !ref)
		skip();
	p = base_params();
	assert_int_equal(run(&p, 1, &b), HARK_OK);
	assert_same(ref, b);
	hark_transcript_free(b);
}

struct thread_arg {
	struct hark_transcript *t;
	int rc;
};

static void *thread_main(void *v)
{
	struct thread_arg *a = v;
	struct hark_engine_run_params p = base_params();
	a->rc = run(&p, 4000, &a->t);
	return NULL;
}

static void test_concurrent_states(void **state)
{
	struct hark_engine_run_params p;
	struct hark_transcript *seq = ref;
	struct thread_arg args[2];
	pthread_t th[2];
	(void)state;
	if (!have_data || !ref)
		skip();
	p = base_params();
	memset(args, 0, sizeof args);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(args[i].rc, HARK_OK);
		assert_same(seq, args[i].t);
		hark_transcript_free(args[i].t);
	}
	/* A pooled decoder reused after two runs still gives the same result. */
	{
		struct hark_transcript *again;
		assert_int_equal(run(&p, 4000, &again), HARK_OK);
		assert_same(seq, again);
		hark_transcript_free(again);
	}
}

static int cancel_after(void *user)
{
	int *calls = user;
	return ++*calls > 3;
}

struct prog {
	double last;
	int calls;
	int monotonic;
};

static void on_progress(double fraction, double done_s, void *user)
{
	struct prog *pr = user;
	if (fraction < pr->last || fraction < 0 || fraction > 1 || done_s < 0)
		pr->monotonic = 0;
	pr->last = fraction;
	pr->calls++;
}

static void test_cancel_and_progress(void **state)
{
	struct hark_engine_run_params p;
	struct hark_transcript *t;
	struct prog pr = {0, 0, 1};
	int calls = 0;
	(void)state;
	if (!have_data)
		skip();
	p = base_params();
	p.cancel = cancel_after;
	p.cancel_user_data = &calls;
	assert_int_equal(run(&p, 16000, &t), HARK_ERR_CANCELED);
	assert_null(t);
	assert_true(calls > 3);

	p = base_params();
	p.progress = on_progress;
	p.progress_user_data = &pr;
	assert_int_equal(run(&p, 16000, &t), HARK_OK);
	assert_true(pr.calls >= 5);
	assert_true(pr.monotonic);
	assert_true(pr.last > 0.85);
	if (ref)
		assert_same(ref, t);  /* callbacks do not change the result */
	hark_transcript_free(t);
}

static void test_silence_and_empty(void **state)
{
	struct hark_engine_run_params p = base_params();
	struct hark_transcript *t = NULL;
	void *st = NULL;
	char err[256];
	float *zeros = calloc(3 * HARK_SAMPLE_RATE, sizeof *zeros);
	(void)state;
	if (!have_data)
		skip();
	assert_non_null(zeros);
	/* No input at all. */
	assert_int_equal(ops->state_new(model, &p, &st, err, sizeof err), HARK_OK);
	assert_int_equal(hark_transcript_new(&t), HARK_OK);
	assert_int_equal(ops->finish(st, t, err, sizeof err), HARK_OK);
	assert_int_equal(t->n_words, 0);
	assert_string_equal(t->text ? t->text : "", "");
	hark_transcript_free(t);
	ops->state_free(st);
	/* Digital silence. */
	assert_int_equal(ops->state_new(model, &p, &st, err, sizeof err), HARK_OK);
	assert_int_equal(ops->feed(st, zeros, 3 * HARK_SAMPLE_RATE, err, sizeof err), HARK_OK);
	assert_int_equal(hark_transcript_new(&t), HARK_OK);
	assert_int_equal(ops->finish(st, t, err, sizeof err), HARK_OK);
	assert_int_equal(t->n_words, 0);
	hark_transcript_free(t);
	ops->state_free(st);
	free(zeros);
}

static int near_hit(const struct hark_kws_hit *h, size_t n, const char *kw, double t)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(h[i].keyword, kw) == 0 && fabs(h[i].start - t) <= 0.5)
			return 1;
	return 0;
}

static void test_kws(void **state)
{
	const char *kw[] = {"Americans", "country", "budget"};
	struct hark_kws_params kp = hark_kws_default_params();
	struct hark_kws_hit *h = NULL;
	size_t n = 0;
	char err[512] = "", path[4096];
	const char *shared = getenv("HARK_SHARED");
	int calls = 0;
	(void)state;
	if (!have_data)
		skip();
	assert_int_equal(hark_kws_spot_pcm(pcm, n_pcm, kw, 3, &kp, &h, &n, err, sizeof err),
			 HARK_OK);
	assert_true(near_hit(h, n, "americans", 1.7));
	assert_true(near_hit(h, n, "country", 6.0));
	assert_true(near_hit(h, n, "country", 10.2));
	for (size_t i = 0; i < n; i++) {
		assert_string_not_equal(h[i].keyword, "budget");
		assert_true(h[i].end >= h[i].start && h[i].score >= 0 && h[i].score <= 1);
		if (i > 0)
			assert_true(h[i].start >= h[i - 1].start);
	}
	hark_kws_hits_free(h, n);

	/* The file from 7 s on: only the second "country", on the file's clock. */
	snprintf(path, sizeof path, "%s/audio/jfk/jfk.wav", shared ? shared : "../shared");
	kp.offset_s = 7.0;
	assert_int_equal(hark_kws_spot_file(path, kw + 1, 1, &kp, &h, &n, err, sizeof err),
			 HARK_OK);
	assert_true(near_hit(h, n, "country", 10.2));
	assert_false(near_hit(h, n, "country", 6.0));
	hark_kws_hits_free(h, n);
	kp.offset_s = 0;

	/* Unknown word: named in the error. */
	{
		const char *bad[] = {"country", "budget zqxjkv"};
		h = NULL;
		assert_int_equal(hark_kws_spot_pcm(pcm, n_pcm, bad, 2, &kp, &h, &n, err, sizeof err),
				 HARK_ERR_INVALID_ARG);
		assert_non_null(strstr(err, "zqxjkv"));
		assert_null(h);
	}
	/* Bad thresholds and empty keywords. */
	{
		const char *empty[] = {"  "};
		assert_int_equal(hark_kws_spot_pcm(pcm, n_pcm, empty, 1, &kp, &h, &n, err, sizeof err),
				 HARK_ERR_INVALID_ARG);
		kp.threshold = 2.0;
		assert_int_equal(hark_kws_spot_pcm(pcm, n_pcm, kw, 1, &kp, &h, &n, err, sizeof err),
				 HARK_ERR_INVALID_ARG);
		kp.threshold = 1e-20;
	}
	/* Cancel. */
	kp.cancel = cancel_after;
	kp.cancel_user_data = &calls;
	assert_int_equal(hark_kws_spot_pcm(pcm, n_pcm, kw, 3, &kp, &h, &n, err, sizeof err),
			 HARK_ERR_CANCELED);
	assert_null(h);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_errors),
		cmocka_unit_test(test_model_bad_files),
		cmocka_unit_test(test_transcribe_jfk),
		cmocka_unit_test(test_chunking_invariant),
		cmocka_unit_test(test_concurrent_states),
		cmocka_unit_test(test_cancel_and_progress),
		cmocka_unit_test(test_silence_and_empty),
		cmocka_unit_test(test_kws),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
