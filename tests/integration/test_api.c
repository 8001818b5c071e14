/*
 * The public transcription API end to end on real audio: one model shared by
 * concurrent contexts in two threads gives the same result as a sequential
 * run; offsets shift times onto the input's timeline; progress is monotonic
 * and reaches 1; cancel stops with HARK_ERR_CANCELED; PCM and file input
 * agree; bad arguments are rejected.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "audio/audio.h"
#include "hark/transcribe.h"

static char clip[4096];
static struct hark_model *model;

static int setup(void **state)
{
	struct hark_model_params mp = hark_model_default_params();
	const char *shared = getenv("HARK_SHARED");
	char err[256];

	(void)state;
	snprintf(clip, sizeof(clip), "%s/audio/jfk/jfk.wav", shared ? shared : "../shared");
	mp.engine = "pocketsphinx";
	mp.n_threads = 1;
	return hark_model_load(&mp, &model, err, sizeof(err)) == HARK_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	hark_model_free(model);
	return 0;
}

static char *transcribe_text(const struct hark_transcribe_params *p, int *rc_out)
{
	struct hark_ctx *ctx = NULL;
	struct hark_transcript *t = NULL;
	char *text = NULL;
	int rc = hark_ctx_init(model, &ctx);

	if (rc == HARK_OK)
		rc = hark_transcribe_file(ctx, clip, p, &t);
	if (rc == HARK_OK)
		text = strdup(t->text ? t->text : "");
	hark_transcript_free(t);
	hark_ctx_free(ctx);
	if (rc_out)
		*rc_out = rc;
	return text;
}

static void *thread_main(void *arg)
{
	struct hark_transcribe_params p = hark_transcribe_default_params();

	(void)arg;
	return transcribe_text(&p, NULL);
}

static void test_concurrent_contexts(void **state)
{
	struct hark_transcribe_params p = hark_transcribe_default_params();
	pthread_t th[2];
	void *res[2];
	char *seq;
	int rc;

	(void)state;
	seq = transcribe_text(&p, &rc);
	assert_int_equal(rc, HARK_OK);
	assert_non_null(seq);
	assert_non_null(strstr(seq, "country"));
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, NULL), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(th[i], &res[i]), 0);
		assert_non_null(res[i]);
		assert_string_equal(res[i], seq);
		free(res[i]);
	}
	free(seq);
}

struct prog {
	double last;
	int calls;
	int monotonic;
};

static void on_progress(double f, double done_s, void *user)
{
	struct prog *p = user;

	(void)done_s;
	if (f < p->last)
		p->monotonic = 0;
	p->last = f;
	p->calls++;
}

static void test_offset_and_progress(void **state)
{
	struct hark_transcribe_params p = hark_transcribe_default_params();
	struct prog pr = {0, 0, 1};
	struct hark_ctx *ctx;
	struct hark_transcript *t = NULL;

	(void)state;
	p.offset_s = 4.0;
	p.duration_s = 5.0;
	p.progress = on_progress;
	p.progress_user_data = &pr;
	assert_int_equal(hark_ctx_init(model, &ctx), HARK_OK);
	assert_int_equal(hark_transcribe_file(ctx, clip, &p, &t), HARK_OK);
	assert_true(t->duration > 4.99 && t->duration < 5.01);
	assert_true(t->offset == 4.0);
	assert_true(t->n_segments > 0);
	for (size_t i = 0; i < t->n_segments; i++) {
		assert_true(t->segments[i].start >= 4.0);
		assert_true(t->segments[i].end <= 9.0 + 0.05);
	}
	for (size_t i = 0; i < t->n_words; i++)
		assert_true(t->words[i].start >= 4.0 && t->words[i].end <= 9.05);
	assert_true(pr.calls >= 2);
	assert_true(pr.monotonic);
	assert_true(pr.last == 1.0);
	assert_string_equal(t->engine_name, "pocketsphinx");
	assert_non_null(t->engine_version);
	assert_non_null(strstr(t->source, "jfk.wav"));
	hark_transcript_free(t);
	hark_ctx_free(ctx);
}

static int cancel_after(void *user)
{
	int *n = user;
	return ++*n > 3;
}

static void test_cancel(void **state)
{
	struct hark_transcribe_params p = hark_transcribe_default_params();
	struct hark_ctx *ctx;
	struct hark_transcript *t = NULL;
	int polls = 0;

	(void)state;
	p.cancel = cancel_after;
	p.cancel_user_data = &polls;
	assert_int_equal(hark_ctx_init(model, &ctx), HARK_OK);
	assert_int_equal(hark_transcribe_file(ctx, clip, &p, &t), HARK_ERR_CANCELED);
	assert_null(t);
	assert_string_not_equal(hark_ctx_errmsg(ctx), "");
	hark_ctx_free(ctx);
}

static void test_pcm_matches_file(void **state)
{
	struct hark_audio_params ap = hark_audio_default_params();
	struct hark_transcribe_params p = hark_transcribe_default_params();
	struct hark_ctx *ctx;
	struct hark_transcript *t = NULL;
	float *pcm = NULL;
	size_t n = 0;
	char err[256], *from_file;
	int rc;

	(void)state;
	assert_int_equal(hark_audio_decode_all(clip, &ap, 16000 * 60, &pcm, &n, err, sizeof(err)), HARK_OK);
	assert_int_equal(n, 176000);
	from_file = transcribe_text(&p, &rc);
	assert_int_equal(rc, HARK_OK);
	assert_int_equal(hark_ctx_init(model, &ctx), HARK_OK);
	assert_int_equal(hark_transcribe_pcm(ctx, pcm, n, &p, &t), HARK_OK);
	assert_string_equal(t->text, from_file);
	assert_true(t->duration == 11.0);
	hark_transcript_free(t);
	t = NULL;
	/* an offset past the end is an empty-input error, not a crash */
	p.offset_s = 20;
	assert_int_equal(hark_transcribe_pcm(ctx, pcm, n, &p, &t), HARK_ERR_EMPTY);
	p.offset_s = -1;
	assert_int_equal(hark_transcribe_pcm(ctx, pcm, n, &p, &t), HARK_ERR_INVALID_ARG);
	assert_null(t);
	hark_ctx_free(ctx);
	free(pcm);
	free(from_file);
}

static void test_bad_args(void **state)
{
	struct hark_model_params mp = hark_model_default_params();
	struct hark_model *m = NULL;
	char err[256] = "";

	(void)state;
	mp.engine = "nonsense";
	assert_int_equal(hark_model_load(&mp, &m, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	assert_null(m);
	assert_non_null(strstr(err, "nonsense"));
	mp.engine = "pocketsphinx";
	mp.model_path = "/nonexistent/model/dir";
	assert_int_equal(hark_model_load(&mp, &m, err, sizeof(err)), HARK_ERR_MODEL);
	assert_null(m);
	assert_int_equal(hark_model_load(NULL, NULL, NULL, 0), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_ctx_init(NULL, NULL), HARK_ERR_INVALID_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_contexts),
		cmocka_unit_test(test_offset_and_progress),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_pcm_matches_file),
		cmocka_unit_test(test_bad_args),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
