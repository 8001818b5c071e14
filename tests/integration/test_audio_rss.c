/*
 * Streaming keeps memory flat: a 3-hour mp3 (60 s of pink noise at 16 kHz,
 * 24 kb/s, repeated 180 times by stream copy with the ffmpeg CLI; fixture
 * only) is decoded chunk by chunk while the process's peak RSS (VmHWM) is
 * watched. 3 h of float PCM would be 691 MB; the decoder must stay far
 * below (< 100 MB peak for the whole test process, < 400 MB under ASan,
 * whose allocator quarantine inflates RSS). Also checks the delivered length
 * against the container's duration and a cut deep inside the file (seek).
 * Prints the measured numbers.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "audio/audio.h"
#include "audio_testutil.h"
#include "hark/hark.h"

#if defined(__SANITIZE_ADDRESS__)
#define RSS_LIMIT_KIB (400L * 1024)
/* ASan keeps up to 256 MB of freed blocks (FFmpeg frees frames and packets
 * all the time) in quarantine by default; a smaller one keeps the RSS
 * figure about the decoder. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=32";
}
#else
#define RSS_LIMIT_KIB (100L * 1024)
#endif

#define COPIES 180            /* x 60 s = 3 h */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char dir[512];

static int teardown(void **state)
{
	(void)state;
	if (dir[0])
		audio_tu_rmtree(dir);   /* also after a failed assertion */
	return 0;
}

static void test_three_hours(void **state)
{
	char one[700], lng[700], err[256];
	struct hark_audio_params p = hark_audio_default_params();
	struct hark_audio *a = NULL;
	double t0, t_gen, t_dec, dur, delivered, rms0 = 0;
	long rss_before, rss_after;
	size_t total = 0, chunks = 0;

	(void)state;
	if (!audio_tu_have_ffmpeg() || audio_tu_mkdtemp(dir, sizeof(dir))) {
		dir[0] = '\0';
		skip();
	}
	snprintf(one, sizeof(one), "%s/one.mp3", dir);
	snprintf(lng, sizeof(lng), "%s/long.mp3", dir);
	t0 = now_s();
	assert_int_equal(audio_tu_ffmpeg("-f lavfi -i anoisesrc=d=60:r=16000:a=0.2:c=pink:"
					 "seed=1 -c:a libmp3lame -b:a 24k %s", one), 0);
	assert_int_equal(audio_tu_ffmpeg("-stream_loop %d -i %s -c copy %s",
					 COPIES - 1, one, lng), 0);
	t_gen = now_s() - t0;

	rss_before = audio_tu_peak_rss_kib();
	t0 = now_s();
	assert_int_equal(hark_audio_open(lng, &p, &a, err, sizeof(err)), HARK_OK);
	dur = hark_audio_info(a)->duration_s;
	for (;;) {
		const float *pcm;
		size_t n;

		assert_int_equal(hark_audio_read(a, &pcm, &n, err, sizeof(err)), HARK_OK);
		if (n == 0)
			break;
		assert_true(n <= p.chunk_samples);
		if (chunks == 10)
			rms0 = audio_tu_rms(pcm, n);
		total += n;
		chunks++;
	}
	delivered = hark_audio_position(a);
	hark_audio_close(a);
	t_dec = now_s() - t0;
	rss_after = audio_tu_peak_rss_kib();

	printf("audio_rss: generated %.0f s of mp3 in %.1f s; decoded %zu samples "
	       "(%.1f s, container says %.1f s) in %zu chunks in %.2f s = %.0fx real "
	       "time; peak RSS %ld KiB before, %ld KiB after (limit %ld KiB; 3 h of "
	       "float PCM = %zu KiB)\n",
	       COPIES * 60.0, t_gen, total, delivered, dur, chunks, t_dec,
	       delivered / t_dec, rss_before, rss_after, RSS_LIMIT_KIB,
	       total * sizeof(float) / 1024);

	assert_true(fabs(delivered - (double)total / HARK_AUDIO_RATE) < 1e-6);
	/* each stream-copied piece keeps its encoder padding: a little over 3 h */
	assert_true(delivered >= COPIES * 60.0 && delivered < COPIES * 60.0 + 30.0);
	assert_true(fabs(delivered - dur) < 1.0);
	assert_true(rms0 > 0.01);                       /* real signal, not silence */
	assert_true(rss_after > 0);
	assert_true(rss_after < RSS_LIMIT_KIB);
	assert_true((size_t)rss_after < total * sizeof(float) / 1024 / 4);

	/* a 10 s cut two and a half hours in */
	p.offset_s = 9000.0;
	p.duration_s = 10.0;
	t0 = now_s();
	{
		float *pcm = NULL;
		size_t n = 0;

		assert_int_equal(hark_audio_decode_all(lng, &p, 16000 * 20, &pcm, &n, err,
						       sizeof(err)), HARK_OK);
		assert_int_equal(n, 160000);
		assert_true(audio_tu_rms(pcm, n) > 0.01);
		free(pcm);
	}
	printf("audio_rss: 10 s cut at 2.5 h took %.3f s\n", now_s() - t0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_three_hours, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
