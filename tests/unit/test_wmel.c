/*
 * Whisper log-mel: hark's incremental mel of jfk.wav must equal whisper.cpp's
 * (reference/<model>/jfk.mel.f32, [n_mel][n_frames] including the 30 s pad)
 * bit for bit with the whisper.cpp-FFT path and within 1e-4 with the FFTW
 * path, for the 80-mel and 128-mel filter banks, whether the audio is fed at
 * once or in odd-sized chunks. The filters come from the model headers.
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

#include "asr/whisper/wmel.h"
#include "wd_util.h"

static void check_model(const char *model, const char *refdir, size_t chunk, int fftw)
{
	char path[1024];
	const char *sh = wd_shared_dir();
	snprintf(path, sizeof(path), "%s/whisper/models/%s.bin", sh, model);
	int n_mel = 0;
	float *filters = wd_read_filters(path, &n_mel);
	if (!filters)
		skip();
	snprintf(path, sizeof(path), "%s/audio/jfk/jfk.wav", sh);
	float *pcm;
	size_t n;
	assert_int_equal(wd_read_wav16(path, &pcm, &n), 0);
	assert_int_equal(n, 176000);
	snprintf(path, sizeof(path), "%s/whisper/reference/%s/jfk.mel.f32", sh, refdir);
	char *ref;
	size_t rlen;
	assert_int_equal(wd_read_file(path, &ref, &rlen), 0);
	const int n_frames = 4100;
	assert_int_equal(rlen, sizeof(float) * (size_t)n_mel * n_frames);

	struct hark_wmel *m;
	assert_int_equal(hark_wmel_new_ex(n_mel, filters, fftw, &m), 0);
	for (size_t i = 0; i < n; i += chunk)
		assert_int_equal(hark_wmel_feed(m, pcm + i, n - i < chunk ? n - i : chunk), 0);
	assert_int_equal(hark_wmel_finish(m), 0);
	assert_int_equal(hark_wmel_n_len(m), n_frames);
	assert_int_equal(hark_wmel_n_len_org(m), 1099);
	float *out = malloc(sizeof(float) * (size_t)n_mel * n_frames);
	hark_wmel_window(m, 0, n_frames, out);
	const float *r = (const float *)ref;
	double maxd = 0;
	for (size_t i = 0; i < (size_t)n_mel * n_frames; i++) {
		double dd = fabs((double)out[i] - r[i]);
		if (dd > maxd)
			maxd = dd;
	}
	printf("mel %s (%d mels, chunk %zu, %s FFT): max |diff| = %.3g\n", model, n_mel, chunk,
	       fftw ? "FFTW" : "whisper.cpp", maxd);
	assert_true(maxd < 1e-4);
	/* the whisper.cpp FFT path is meant to be bit-identical */
	if (!fftw)
		assert_true(maxd == 0.0);
	/* a window past the end reads zeros, as whisper.cpp's encoder input */
	hark_wmel_window(m, 3000, 3000, out);
	assert_true(out[1100] == 0.0f && out[1099] != 0.0f);
	assert_true(fabsf(out[0] - r[3000]) < 1e-4f);
	free(out);
	hark_wmel_free(m);
	free(ref);
	free(pcm);
	free(filters);
}

static void test_mel_80(void **state) { (void)state; check_model("micro-en", "micro-en", 176000, 0); }
static void test_mel_80_chunks(void **state) { (void)state; check_model("micro-en", "micro-en", 777, 0); }
static void test_mel_128(void **state) { (void)state; check_model("micro-ml128", "micro-ml128", 5000, 0); }
static void test_mel_80_fftw(void **state) { (void)state; check_model("micro-en", "micro-en", 16000, 1); }
static void test_mel_128_fftw(void **state) { (void)state; check_model("micro-ml128", "micro-ml128", 333, 1); }

static void test_short_input(void **state)
{
	(void)state;
	float filt[201 * 2];
	for (int i = 0; i < 402; i++)
		filt[i] = 0.01f;
	struct hark_wmel *m;
	assert_int_equal(hark_wmel_new(2, filt, &m), 0);
	float x[50];
	for (int i = 0; i < 50; i++)
		x[i] = sinf((float)i);
	assert_int_equal(hark_wmel_feed(m, x, 50), 0);
	assert_int_equal(hark_wmel_finish(m), 0);
	assert_int_equal(hark_wmel_n_len(m), (50 + 480000) / 160);
	assert_int_not_equal(hark_wmel_feed(m, x, 1), 0);
	hark_wmel_free(m);
	assert_int_not_equal(hark_wmel_new(0, filt, &m), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mel_80),
		cmocka_unit_test(test_mel_80_chunks),
		cmocka_unit_test(test_mel_128),
		cmocka_unit_test(test_mel_80_fftw),
		cmocka_unit_test(test_mel_128_fftw),
		cmocka_unit_test(test_short_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
