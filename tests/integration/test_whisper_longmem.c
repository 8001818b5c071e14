/*
 * Whisper engine memory on long recordings: three hours of quiet
 * deterministic noise plus a tone are fed in 1 s chunks through the
 * hark_engine_whisper ops (micro-en model); the peak resident set (VmHWM)
 * must stay far below what keeping the whole log-mel in memory costs
 * (80 mels x 4 bytes x 100 frames/s = 345 MB for 3 h). finish() is then
 * cancelled at its first poll (the decode of 1080 windows is not the point)
 * and must say so without raising the peak. A second case points TMPDIR at
 * a missing directory: feeding must fail with HARK_ERR_IO once the mel
 * store starts spilling (after 10 minutes), with a message naming the
 * directory. HARK_TEST_NOSAN: left out of the ASan run (shadow memory skews
 * RSS).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/engine.h"
#include "hark/hark.h"
#include "format/transcript.h"
#include "hark/transcribe.h"
#include "wd_util.h"

#define SR 16000
#define HOURS 3
#define PEAK_LIMIT_KB (120L * 1024L)

/* VmHWM or VmRSS of this process in kB (-1 if unavailable). */
static long proc_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	long v = -1;
	const size_t kl = strlen(key);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* One second of signal number sec: xorshift noise at about -50 dBFS plus a
 * 440 Hz tone whose level changes every minute. */
static void make_second(uint32_t *rng, long sec, float *x)
{
	const float amp = 0.002f + 0.001f * (float)((sec / 60) % 5);
	for (int i = 0; i < SR; i++) {
		uint32_t r = *rng;
		r ^= r << 13;
		r ^= r >> 17;
		r ^= r << 5;
		*rng = r;
		const float noise = ((float)(r >> 8) / 16777216.0f - 0.5f) * 0.006f;
		const double ph = 2.0 * M_PI * 440.0 * (double)(sec * SR + i) / SR;
		x[i] = noise + amp * (float)sin(ph);
	}
}

static int cancel_now;
static int on_cancel(void *ud)
{
	(void)ud;
	return cancel_now;
}

static int load_model(void **model)
{
	char mpath[1024], err[512] = "";
	snprintf(mpath, sizeof(mpath), "%s/whisper/models/micro-en.bin", wd_shared_dir());
	return hark_engine_whisper.model_load(mpath, model, err, sizeof(err));
}

static void run_params(struct hark_engine_run_params *rp)
{
	memset(rp, 0, sizeof(*rp));
	rp->language = "en";
	rp->n_threads = 1;
	rp->beam_size = 1;
	rp->best_of = 1;
	rp->no_fallback = 1;
	rp->cancel = on_cancel;
}

static void test_three_hours_flat(void **state)
{
	(void)state;
	const struct hark_engine_ops *ops = &hark_engine_whisper;
	void *model;
	if (load_model(&model))
		skip();
	char err[512] = "";
	struct hark_engine_run_params rp;
	run_params(&rp);
	cancel_now = 0;
	void *st;
	assert_int_equal(ops->state_new(model, &rp, &st, err, sizeof(err)), 0);
	float *x = malloc(sizeof(float) * SR);
	assert_non_null(x);
	const long rss0 = proc_kb("VmRSS"), hwm0 = proc_kb("VmHWM");
	if (hwm0 < 0) {
		free(x);
		ops->state_free(st);
		ops->model_free(model);
		skip(); /* no /proc */
	}
	uint32_t rng = 12345u;
	for (long sec = 0; sec < HOURS * 3600L; sec++) {
		make_second(&rng, sec, x);
		int rc = ops->feed(st, x, SR, err, sizeof(err));
		if (rc)
			print_message("feed failed at %ld s: %s\n", sec, err);
		assert_int_equal(rc, 0);
	}
	const long rss1 = proc_kb("VmRSS"), hwm1 = proc_kb("VmHWM");
	print_message("before feed: VmRSS %ld kB, VmHWM %ld kB\n", rss0, hwm0);
	print_message("after %d h fed: VmRSS %ld kB, VmHWM %ld kB (limit %ld kB; "
		      "the whole mel would be %ld kB)\n",
		      HOURS, rss1, hwm1, PEAK_LIMIT_KB, (long)HOURS * 3600L * 100L * 80L * 4L / 1024L);

	/* finish, cancelled at its first poll */
	cancel_now = 1;
	struct hark_transcript *t;
	assert_int_equal(hark_transcript_new(&t), 0);
	assert_int_equal(ops->finish(st, t, err, sizeof(err)), HARK_ERR_CANCELED);
	const long hwm2 = proc_kb("VmHWM");
	print_message("after cancelled finish: VmHWM %ld kB\n", hwm2);
	hark_transcript_free(t);
	ops->state_free(st);
	ops->model_free(model);
	free(x);
	assert_true(hwm1 < PEAK_LIMIT_KB);
	assert_true(hwm2 < PEAK_LIMIT_KB);
	/* the feed itself adds at most the in-memory 10 minutes (19 MB) plus
	 * a write block and allocator slack */
	assert_true(hwm1 - hwm0 < 48L * 1024L);
}

static void test_spill_dir_missing(void **state)
{
	(void)state;
	const struct hark_engine_ops *ops = &hark_engine_whisper;
	void *model;
	if (load_model(&model))
		skip();
	char err[512] = "";
	struct hark_engine_run_params rp;
	run_params(&rp);
	cancel_now = 0;
	const char *old = getenv("TMPDIR");
	char *saved = old ? strdup(old) : NULL;
	setenv("TMPDIR", "/nonexistent/hark-longmem-test", 1);
	void *st;
	int rc = ops->state_new(model, &rp, &st, err, sizeof(err));
	if (saved) {
		setenv("TMPDIR", saved, 1);
		free(saved);
	} else {
		unsetenv("TMPDIR");
	}
	assert_int_equal(rc, 0);
	float *x = malloc(sizeof(float) * SR);
	assert_non_null(x);
	uint32_t rng = 777u;
	long sec = 0;
	for (; sec < 3600; sec++) {
		make_second(&rng, sec, x);
		rc = ops->feed(st, x, SR, err, sizeof(err));
		if (rc)
			break;
	}
	print_message("feed failed after %ld s: rc %d, \"%s\"\n", sec, rc, err);
	assert_int_equal(rc, HARK_ERR_IO);
	assert_true(sec >= 600 && sec < 700); /* 10 minutes in memory, then a block */
	assert_non_null(strstr(err, "/nonexistent/hark-longmem-test"));
	/* the state refuses further use */
	assert_int_not_equal(ops->feed(st, x, SR, err, sizeof(err)), 0);
	ops->state_free(st);
	ops->model_free(model);
	free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_three_hours_flat),
		cmocka_unit_test(test_spill_dir_missing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
