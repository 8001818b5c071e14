/*
 * Helpers for the audio decoder tests (see audio_testutil.h): scratch
 * directories, ffmpeg-CLI fixture generation, a Goertzel tone detector, a
 * 16-bit RIFF/WAVE reader and peak-RSS measurement.
 */
#include "audio_testutil.h"

#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int audio_tu_mkdtemp(char *dir, size_t n)
{
	const char *t = getenv("TMPDIR");

	if (!t || !*t)
		t = "/tmp";
	if ((size_t)snprintf(dir, n, "%s/hark-audio-XXXXXX", t) >= n)
		return -1;
	return mkdtemp(dir) ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void audio_tu_rmtree(const char *dir)
{
	if (dir && *dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int audio_tu_have_ffmpeg(void)
{
	return system("ffmpeg -hide_banner -version >/dev/null 2>&1") == 0;
}

int audio_tu_ffmpeg(const char *fmt, ...)
{
	char args[2048], cmd[2300];
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= sizeof(args))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "ffmpeg -nostdin -hide_banner -loglevel error -y %s </dev/null", args);
	r = system(cmd);
	if (r == -1 || !WIFEXITED(r))
		return -1;
	return WEXITSTATUS(r);
}

int audio_tu_write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(data, 1, n, f) == n;
	ok = (fclose(f) == 0) && ok;
	return ok ? 0 : -1;
}

int audio_tu_truncate_copy(const char *src, const char *dst, long n)
{
	FILE *f = fopen(src, "rb");
	char *buf;
	size_t got;
	int r;

	if (!f || n < 0)
		return f ? (fclose(f), -1) : -1;
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (!buf) {
		fclose(f);
		return -1;
	}
	got = fread(buf, 1, (size_t)n, f);
	fclose(f);
	r = got == (size_t)n ? audio_tu_write_file(dst, buf, got) : -1;
	free(buf);
	return r;
}

long audio_tu_file_size(const char *path)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0) {
		fclose(f);
		return -1;
	}
	n = ftell(f);
	fclose(f);
	return n;
}

double audio_tu_tone_power(const float *pcm, size_t n, double freq_hz, double rate)
{
	double w = 2.0 * M_PI * freq_hz / rate, c = 2.0 * cos(w);
	double s1 = 0.0, s2 = 0.0;

	if (n == 0)
		return 0.0;
	for (size_t i = 0; i < n; i++) {
		double s0 = pcm[i] + c * s1 - s2;

		s2 = s1;
		s1 = s0;
	}
	return (s1 * s1 + s2 * s2 - c * s1 * s2) / ((double)n * (double)n);
}

double audio_tu_rms(const float *pcm, size_t n)
{
	double acc = 0.0;

	for (size_t i = 0; i < n; i++)
		acc += (double)pcm[i] * pcm[i];
	return n ? sqrt(acc / (double)n) : 0.0;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

int audio_tu_read_wav_s16(const char *path, int16_t **samples, size_t *frames,
			  int *channels, int *rate)
{
	FILE *f = fopen(path, "rb");
	unsigned char hdr[12], ck[8], fmt[16];
	int have_fmt = 0, ret = -1;

	*samples = NULL;
	if (!f)
		return -1;
	if (fread(hdr, 1, 12, f) != 12 || memcmp(hdr, "RIFF", 4) ||
	    memcmp(hdr + 8, "WAVE", 4))
		goto out;
	while (fread(ck, 1, 8, f) == 8) {
		uint32_t len = le32(ck + 4);

		if (!memcmp(ck, "fmt ", 4) && len >= 16) {
			if (fread(fmt, 1, 16, f) != 16)
				goto out;
			if (fseek(f, (long)(len - 16 + (len & 1)), SEEK_CUR))
				goto out;
			/* PCM or WAVE_FORMAT_EXTENSIBLE, 16 bits per sample */
			if ((le16(fmt) != 1 && le16(fmt) != 0xfffe) || le16(fmt + 14) != 16)
				goto out;
			*channels = le16(fmt + 2);
			*rate = (int)le32(fmt + 4);
			have_fmt = *channels > 0;
		} else if (!memcmp(ck, "data", 4) && have_fmt) {
			size_t nsamp = len / 2, i;
			unsigned char *raw = malloc(len ? len : 1);
			int16_t *s = malloc((nsamp ? nsamp : 1) * sizeof(*s));

			if (!raw || !s || fread(raw, 1, len, f) != len) {
				free(raw);
				free(s);
				goto out;
			}
			for (i = 0; i < nsamp; i++)
				s[i] = (int16_t)le16(raw + 2 * i);
			free(raw);
			*samples = s;
			*frames = nsamp / (size_t)*channels;
			ret = 0;
			goto out;
		} else if (fseek(f, (long)(len + (len & 1)), SEEK_CUR)) {
			goto out;
		}
	}
out:
	fclose(f);
	return ret;
}

long audio_tu_peak_rss_kib(void)
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
