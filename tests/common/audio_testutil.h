/*
 * Helpers for the audio decoder tests: a scratch directory per test run,
 * fixture generation with the ffmpeg command-line tool (fixtures only: hark
 * itself decodes through the FFmpeg libraries), a tone detector (Goertzel
 * power at one frequency), a RIFF/WAVE reader for 16-bit PCM of any channel
 * count (to check the decoder's samples against the raw file), and peak RSS.
 */
#ifndef HARK_TESTS_AUDIO_TESTUTIL_H
#define HARK_TESTS_AUDIO_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh directory under $TMPDIR (or /tmp) into dir (n bytes).
 * Returns 0 on success. */
int audio_tu_mkdtemp(char *dir, size_t n);

/* Removes dir and everything below it. */
void audio_tu_rmtree(const char *dir);

/* 1 when an `ffmpeg` executable is on PATH. */
int audio_tu_have_ffmpeg(void);

/* Runs `ffmpeg -nostdin -hide_banner -loglevel error -y <args>` through the
 * shell (args printf-formatted). Returns the command's exit status (0 = ok). */
int audio_tu_ffmpeg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes n bytes to path (mode 0644). Returns 0 on success. */
int audio_tu_write_file(const char *path, const void *data, size_t n);

/* Copies the first n bytes of src to dst. Returns 0 on success. */
int audio_tu_truncate_copy(const char *src, const char *dst, long n);

/* Size of path in bytes, -1 on error. */
long audio_tu_file_size(const char *path);

/* Goertzel power of freq_hz in pcm (rate Hz), normalised by n^2. */
double audio_tu_tone_power(const float *pcm, size_t n, double freq_hz, double rate);

/* Root-mean-square of pcm. */
double audio_tu_rms(const float *pcm, size_t n);

/* Reads a 16-bit PCM RIFF/WAVE file: *samples (malloc'd, interleaved),
 * *frames per channel, *channels, *rate. Returns 0 on success. */
int audio_tu_read_wav_s16(const char *path, int16_t **samples, size_t *frames,
			  int *channels, int *rate);

/* Peak resident set size of this process in KiB (VmHWM). -1 if unknown. */
long audio_tu_peak_rss_kib(void);

#endif
