/*
 * Mel-frame store: frames read back from any range equal what was appended,
 * whether they sit in memory, in the spill file or in the pending write
 * block (ranges spanning all three, reads interleaved with appends); the
 * running maximum; the frame cap (HARK_ERR_LIMIT); a full disk (simulated by
 * the store's file-size cap: HARK_ERR_IO with an ENOSPC message, earlier
 * frames still readable) and an unusable spill directory. Finally the mel of
 * jfk.wav computed with a store that spills after 3 s must give windows
 * bit-identical to the default (all in memory) mel.
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
#include "asr/whisper/wmelstore.h"
#include "hark/hark.h"
#include "wd_util.h"

/* Value j of frame t: distinct per (t, j), peak 1000.5 at frame 37 mel 1. */
static float val(size_t t, int j)
{
	if (t == 37 && j == 1)
		return 1000.5f;
	return (float)t * 3.0f + (float)j * 0.25f - 50.0f;
}

static void append_n(struct hark_wmelstore *s, int nm, size_t from, size_t to)
{
	float fr[8];
	for (size_t t = from; t < to; t++) {
		for (int j = 0; j < nm; j++)
			fr[j] = val(t, j);
		assert_int_equal(hark_wmelstore_append(s, fr), HARK_OK);
	}
}

static void check_range(struct hark_wmelstore *s, int nm, size_t t0, size_t t1)
{
	float buf[8 * 64];
	assert_true(t1 - t0 <= 64);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(hark_wmelstore_read(s, t0, t1, buf), HARK_OK);
	for (size_t t = t0; t < t1; t++)
		for (int j = 0; j < nm; j++)
			assert_true(buf[(t - t0) * (size_t)nm + (size_t)j] == val(t, j));
}

static void check_all_ranges(struct hark_wmelstore *s, int nm)
{
	const size_t n = hark_wmelstore_n_frames(s);
	for (size_t t0 = 0; t0 <= n; t0++)
		for (size_t t1 = t0; t1 <= n && t1 - t0 <= 64; t1++)
			check_range(s, nm, t0, t1);
}

static void test_spill_boundary(void **state)
{
	(void)state;
	const int nm = 3;
	struct hark_wmelstore_params p = hark_wmelstore_default_params();
	p.mem_frames = 10;
	p.block_frames = 4;
	struct hark_wmelstore *s;
	assert_int_equal(hark_wmelstore_open(nm, &p, &s), HARK_OK);
	assert_true(isinf(hark_wmelstore_max(s)) && hark_wmelstore_max(s) < 0);
	/* reads interleaved with appends: memory only, then memory + buffer,
	 * then memory + file + buffer */
	for (size_t n = 1; n <= 50; n++) {
		append_n(s, nm, n - 1, n);
		assert_int_equal(hark_wmelstore_n_frames(s), n);
		assert_int_equal(hark_wmelstore_n_spilled(s), n > 10 ? n - 10 : 0);
		check_range(s, nm, 0, n < 64 ? n : 64);
		check_range(s, nm, n > 7 ? n - 7 : 0, n);
		const float want = n > 37 ? 1000.5f : val(n - 1, nm - 1);
		assert_true(hark_wmelstore_max(s) == want);
	}
	check_all_ranges(s, nm);
	/* bad ranges */
	float b[3];
	assert_int_equal(hark_wmelstore_read(s, 5, 51, b), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_wmelstore_read(s, 6, 5, b), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_wmelstore_read(s, 50, 50, b), HARK_OK);
	hark_wmelstore_close(s);

	/* everything spilled, block of 1 (a write per frame) */
	p.mem_frames = 0;
	p.block_frames = 1;
	assert_int_equal(hark_wmelstore_open(nm, &p, &s), HARK_OK);
	append_n(s, nm, 0, 40);
	assert_int_equal(hark_wmelstore_n_spilled(s), 40);
	check_all_ranges(s, nm);
	assert_true(hark_wmelstore_max(s) == 1000.5f);
	hark_wmelstore_close(s);
	hark_wmelstore_close(NULL);
	assert_int_equal(hark_wmelstore_open(0, &p, &s), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_wmelstore_open(513, NULL, &s), HARK_ERR_INVALID_ARG);
}

static void test_limit(void **state)
{
	(void)state;
	const int nm = 2;
	struct hark_wmelstore_params p = hark_wmelstore_default_params();
	p.mem_frames = 5;
	p.block_frames = 3;
	p.max_frames = 20;
	struct hark_wmelstore *s;
	assert_int_equal(hark_wmelstore_open(nm, &p, &s), HARK_OK);
	append_n(s, nm, 0, 20);
	float fr[2] = {5000.0f, 5000.0f};
	assert_int_equal(hark_wmelstore_append(s, fr), HARK_ERR_LIMIT);
	assert_non_null(strstr(hark_wmelstore_error(s), "longer"));
	assert_int_equal(hark_wmelstore_n_frames(s), 20);
	assert_true(hark_wmelstore_max(s) == val(19, 1)); /* rejected frame not counted */
	check_all_ranges(s, nm);
	hark_wmelstore_close(s);
}

static void test_disk_full(void **state)
{
	(void)state;
	const int nm = 3; /* 12 bytes per frame */
	struct hark_wmelstore_params p = hark_wmelstore_default_params();
	p.mem_frames = 2;
	p.block_frames = 4;
	p.max_file_bytes = 4 * 12 + 20; /* room for one block and a bit */
	struct hark_wmelstore *s;
	assert_int_equal(hark_wmelstore_open(nm, &p, &s), HARK_OK);
	/* 2 in memory, 4 buffered, the 5th spilled frame flushes block 1 (fits),
	 * 4 more buffered; the next one flushes block 2, which does not fit */
	append_n(s, nm, 0, 2 + 8);
	assert_string_equal(hark_wmelstore_error(s), "");
	float fr[3];
	for (int j = 0; j < nm; j++)
		fr[j] = val(10, j);
	assert_int_equal(hark_wmelstore_append(s, fr), HARK_ERR_IO);
	const char *msg = hark_wmelstore_error(s);
	print_message("disk full: %s\n", msg);
	assert_non_null(strstr(msg, "spill file"));
	assert_non_null(strstr(msg, strerror(28 /* ENOSPC */)));
	assert_int_equal(hark_wmelstore_n_frames(s), 10);
	check_all_ranges(s, nm); /* what was stored is intact */
	hark_wmelstore_close(s);

	/* a spill directory that does not exist */
	p = hark_wmelstore_default_params();
	p.mem_frames = 1;
	p.block_frames = 2;
	p.dir = "/nonexistent/hark-spill-test";
	assert_int_equal(hark_wmelstore_open(nm, &p, &s), HARK_OK);
	append_n(s, nm, 0, 3);
	assert_int_equal(hark_wmelstore_append(s, fr), HARK_ERR_IO);
	print_message("bad dir: %s\n", hark_wmelstore_error(s));
	assert_non_null(strstr(hark_wmelstore_error(s), "/nonexistent/hark-spill-test"));
	check_all_ranges(s, nm);
	hark_wmelstore_close(s);
}

static void test_mel_windows_identical(void **state)
{
	(void)state;
	char path[1024];
	snprintf(path, sizeof(path), "%s/whisper/models/micro-en.bin", wd_shared_dir());
	int n_mel = 0;
	float *filters = wd_read_filters(path, &n_mel);
	if (!filters)
		skip();
	snprintf(path, sizeof(path), "%s/audio/jfk/jfk.wav", wd_shared_dir());
	float *pcm;
	size_t n;
	assert_int_equal(wd_read_wav16(path, &pcm, &n), 0);
	struct hark_wmel *a, *b;
	assert_int_equal(hark_wmel_new(n_mel, filters, &a), 0);
	struct hark_wmelstore_params sp = hark_wmelstore_default_params();
	sp.mem_frames = 300; /* 3 s in memory, the rest (~8 s) spilled */
	sp.block_frames = 64;
	assert_int_equal(hark_wmel_new_store(n_mel, filters, 0, &sp, &b), 0);
	assert_int_equal(hark_wmel_feed(a, pcm, n), 0);
	for (size_t i = 0; i < n; i += 16000)
		assert_int_equal(hark_wmel_feed(b, pcm + i, n - i < 16000 ? n - i : 16000), 0);
	assert_int_equal(hark_wmel_finish(a), 0);
	assert_int_equal(hark_wmel_finish(b), 0);
	assert_int_equal(hark_wmel_n_len(a), hark_wmel_n_len(b));
	assert_int_equal(hark_wmel_n_len_org(a), hark_wmel_n_len_org(b));
	const int nf = 3000;
	float *wa = malloc(sizeof(float) * (size_t)n_mel * nf);
	float *wb = malloc(sizeof(float) * (size_t)n_mel * nf);
	assert_non_null(wa);
	assert_non_null(wb);
	const int offsets[] = {0, 1, 299, 300, 777, 1098, 1200, 2900, 3000};
	for (size_t k = 0; k < sizeof(offsets) / sizeof(offsets[0]); k++) {
		memset(wa, 0x55, sizeof(float) * (size_t)n_mel * nf);
		memset(wb, 0xaa, sizeof(float) * (size_t)n_mel * nf);
		assert_int_equal(hark_wmel_window(a, offsets[k], nf, wa), 0);
		assert_int_equal(hark_wmel_window(b, offsets[k], nf, wb), 0);
		assert_memory_equal(wa, wb, sizeof(float) * (size_t)n_mel * nf);
	}
	free(wa);
	free(wb);
	hark_wmel_free(a);
	hark_wmel_free(b);
	free(pcm);
	free(filters);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spill_boundary),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_mel_windows_identical),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
