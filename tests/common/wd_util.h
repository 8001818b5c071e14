/*
 * Helpers for the Whisper tests: locating $HARK_SHARED, reading whole files,
 * and a minimal 16-bit PCM WAV reader (samples as s16 / 32768, as
 * whisper.cpp's reader converts them) so that mel tests do not depend on the
 * FFmpeg decoder.
 */
#ifndef HARK_TESTS_WD_UTIL_H
#define HARK_TESTS_WD_UTIL_H

#include <stddef.h>

/* $HARK_SHARED or "../shared"; static storage. */
const char *wd_shared_dir(void);

/* Reads the whole file into a malloc'd buffer (NUL-terminated, *n bytes
 * without the NUL). Returns 0 on success. */
int wd_read_file(const char *path, char **data, size_t *n);

/* wd_read_file as an expression: the NUL-terminated contents (caller frees)
 * with their length in *len, or NULL. */
char *wd_slurp(const char *path, size_t *len);

/* The n_mel x 201 mel filter block read straight from a ggml model header
 * (malloc'd, caller frees), with the mel count in *n_mel; NULL on error. */
float *wd_read_filters(const char *path, int *n_mel);

/* Reads a mono 16-bit PCM WAV into malloc'd floats (x / 32768). 0 = ok. */
int wd_read_wav16(const char *path, float **pcm, size_t *n);



#include <jansson.h>

/* Loads a whisper-cli -ojf file leniently: raw control bytes inside JSON
 * strings (whisper-cli escapes only '"' and '\\') are escaped as \u00XX
 * before parsing. Returns NULL on failure. */
json_t *wd_json_load_lenient(const char *path);

/* Decodes any media file to 16 kHz mono float through hark's audio layer
 * (malloc'd, *n samples). 0 = ok. */
int wd_decode_audio(const char *path, float **pcm, size_t *n);
#endif
