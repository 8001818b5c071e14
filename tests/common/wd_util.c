/*
 * Test helpers for the Whisper tests (see wd_util.h).
 */
#include "wd_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *wd_shared_dir(void)
{
	const char *s = getenv("HARK_SHARED");
	return s && *s ? s : "../shared";
}

int wd_read_file(const char *path, char **data, size_t *n)
{
	*data = NULL;
	*n = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0) {
		fclose(f);
		return -1;
	}
	long sz = ftell(f);
	if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return -1;
	}
	char *b = malloc((size_t)sz + 1);
	if (!b) {
		fclose(f);
		return -1;
	}
	if (fread(b, 1, (size_t)sz, f) != (size_t)sz) {
		free(b);
		fclose(f);
		return -1;
	}
	fclose(f);
	b[sz] = 0;
	*data = b;
	*n = (size_t)sz;
	return 0;
}

static uint32_t rd32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

int wd_read_wav16(const char *path, float **pcm, size_t *n)
{
	char *d;
	size_t len;
	*pcm = NULL;
	*n = 0;
	if (wd_read_file(path, &d, &len))
		return -1;
	const unsigned char *p = (const unsigned char *)d;
	int rc = -1, channels = 0, bits = 0;
	if (len < 12 || memcmp(p, "RIFF", 4) || memcmp(p + 8, "WAVE", 4))
		goto out;
	size_t pos = 12;
	while (pos + 8 <= len) {
		uint32_t csz = rd32(p + pos + 4);
		const unsigned char *c = p + pos + 8;
		if (pos + 8 + csz > len)
			csz = (uint32_t)(len - pos - 8);
		if (!memcmp(p + pos, "fmt ", 4) && csz >= 16) {
			channels = rd16(c + 2);
			bits = rd16(c + 14);
		} else if (!memcmp(p + pos, "data", 4)) {
			if (channels != 1 || bits != 16)
				goto out;
			size_t ns = csz / 2;
			float *o = malloc(sizeof(float) * (ns ? ns : 1));
			if (!o)
				goto out;
			for (size_t i = 0; i < ns; i++)
				o[i] = (float)(int16_t)rd16(c + 2 * i) * 0.000030517578125f;
			*pcm = o;
			*n = ns;
			rc = 0;
			goto out;
		}
		pos += 8 + csz + (csz & 1);
	}
out:
	free(d);
	return rc;
}

json_t *wd_json_load_lenient(const char *path)
{
	char *d;
	size_t n;
	if (wd_read_file(path, &d, &n))
		return NULL;
	char *o = malloc(n * 6 + 1);
	if (!o) {
		free(d);
		return NULL;
	}
	size_t k = 0;
	int in_str = 0, esc = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];
		if (in_str) {
			if (esc) {
				esc = 0;
			} else if (c == '\\') {
				esc = 1;
			} else if (c == '"') {
				in_str = 0;
			} else if (c < 0x20) {
				k += (size_t)sprintf(o + k, "\\u%04x", c);
				continue;
			}
		} else if (c == '"') {
			in_str = 1;
		}
		o[k++] = (char)c;
	}
	json_error_t je;
	json_t *j = json_loadb(o, k, 0, &je);
	if (!j)
		fprintf(stderr, "%s: JSON error line %d: %s\n", path, je.line, je.text);
	free(o);
	free(d);
	return j;
}

#include "audio/audio.h"

int wd_decode_audio(const char *path, float **pcm, size_t *n)
{
	char err[256];
	struct hark_audio_params p = hark_audio_default_params();
	return hark_audio_decode_all(path, &p, (size_t)16000 * 3600, pcm, n, err, sizeof(err));
}

char *wd_slurp(const char *path, size_t *len)
{
	char *d;
	size_t n;

	if (wd_read_file(path, &d, &n))
		return NULL;
	if (len)
		*len = n;
	return d;
}

float *wd_read_filters(const char *path, int *n_mel)
{
	char *d;
	size_t len;
	int32_t nm, nfft;
	float *f;

	if (wd_read_file(path, &d, &len))
		return NULL;
	if (len < 4 + 44 + 8) {
		free(d);
		return NULL;
	}
	memcpy(&nm, d + 48, 4);
	memcpy(&nfft, d + 52, 4);
	if (nfft != 201 || nm <= 0 || len < 56 + (size_t)nm * 201 * 4) {
		free(d);
		return NULL;
	}
	f = malloc(sizeof(float) * (size_t)nm * 201);
	if (f)
		memcpy(f, d + 56, sizeof(float) * (size_t)nm * 201);
	free(d);
	*n_mel = nm;
	return f;
}
