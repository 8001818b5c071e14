/*
 * Decoder benchmark: streams each file given on the command line through
 * hark_audio (16 kHz mono float, default 1 s chunks) and prints one line per
 * file: audio seconds, wall seconds, speed as x real time, peak RSS in MiB
 * (VmHWM, reset before each file where the kernel allows), codec and
 * container. Exit status 1 if any file failed to decode.
 *
 *   bench_decode FILE...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audio/audio.h"
#include "hark/hark.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Resets the peak RSS counter (Linux >= 4.0); harmless if refused. */
static void reset_peak_rss(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");

	if (f) {
		fputs("5", f);
		fclose(f);
	}
}

static long peak_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Decodes one file; prints its line. Returns 0 on success. */
static int bench_one(const char *path)
{
	struct hark_audio *a = NULL;
	char err[256], codec[32] = "", container[32] = "";
	size_t total = 0;
	double t0, wall, audio_s;
	int ret;

	reset_peak_rss();
	t0 = now_s();
	ret = hark_audio_open(path, NULL, &a, err, sizeof(err));
	if (ret == HARK_OK) {
		snprintf(codec, sizeof(codec), "%s", hark_audio_info(a)->codec);
		snprintf(container, sizeof(container), "%s", hark_audio_info(a)->container);
		for (;;) {
			const float *pcm;
			size_t n;

			ret = hark_audio_read(a, &pcm, &n, err, sizeof(err));
			if (ret || n == 0)
				break;
			total += n;
		}
		hark_audio_close(a);
	}
	wall = now_s() - t0;
	if (ret) {
		printf("%s\terror\t%s: %s\n", path, hark_err_code(ret), err);
		return 1;
	}
	audio_s = (double)total / HARK_AUDIO_RATE;
	printf("%s\taudio_s=%.2f\twall_s=%.3f\tx_realtime=%.1f\tpeak_rss_mib=%.1f\t"
	       "codec=%s\tcontainer=%s\n", path, audio_s, wall,
	       wall > 0 ? audio_s / wall : 0.0, peak_rss_kib() / 1024.0, codec,
	       container);
	return 0;
}

int main(int argc, char **argv)
{
	int failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++)
		failed |= bench_one(argv[i]);
	fflush(stdout);
	return failed ? 1 : 0;
}
