/*
 * Mel-frame store (see wmelstore.h). Frames [0, n_mem) sit in a growable
 * array capped at mem_frames; frame mem_frames + i is spilled frame i, at
 * byte offset i * n_mel * 4 of an unlinked temporary file. Spilled frames
 * collect in a block buffer and are written with pwrite a block at a time;
 * frames [n_flushed, n_spilled) are still in that buffer, so a read may span
 * memory, file and buffer.
 */
#include "asr/whisper/wmelstore.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hark/hark.h"

struct hark_wmelstore {
	int n_mel;
	struct hark_wmelstore_params p;
	char dir[512];
	float *mem;              /* [cap_mem][n_mel] */
	size_t n_mem, cap_mem;
	float *wbuf;             /* [block_frames][n_mel], spilled frames not yet written */
	size_t n_spilled, n_flushed;
	int fd;
	float vmax;
	char err[512];
};

struct hark_wmelstore_params hark_wmelstore_default_params(void)
{
	struct hark_wmelstore_params p;
	memset(&p, 0, sizeof(p));
	p.mem_frames = 10 * 60 * 100;
	p.block_frames = 4096;
	p.max_frames = 24L * 3600L * 100L;
	p.max_file_bytes = 0;
	p.dir = NULL;
	return p;
}

int hark_wmelstore_open(int n_mel, const struct hark_wmelstore_params *p, struct hark_wmelstore **out)
{
	*out = NULL;
	struct hark_wmelstore_params d = p ? *p : hark_wmelstore_default_params();
	if (n_mel <= 0 || n_mel > 512 || d.block_frames == 0 || d.block_frames > (1u << 20))
		return HARK_ERR_INVALID_ARG;
	struct hark_wmelstore *s = calloc(1, sizeof(*s));
	if (!s)
		return HARK_ERR_NOMEM;
	s->n_mel = n_mel;
	s->p = d;
	s->fd = -1;
	s->vmax = -INFINITY;
	const char *dir = d.dir;
	if (!dir || !*dir)
		dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	s->p.dir = s->dir;
	*out = s;
	return HARK_OK;
}

void hark_wmelstore_close(struct hark_wmelstore *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->wbuf);
	free(s->mem);
	free(s);
}

size_t hark_wmelstore_n_frames(const struct hark_wmelstore *s) { return s->n_mem + s->n_spilled; }
size_t hark_wmelstore_n_spilled(const struct hark_wmelstore *s) { return s->n_spilled; }
float hark_wmelstore_max(const struct hark_wmelstore *s) { return s->vmax; }
const char *hark_wmelstore_error(const struct hark_wmelstore *s) { return s->err; }

/* Creates the unlinked spill file: O_TMPFILE, else mkostemp + unlink. */
static int open_file(struct hark_wmelstore *s)
{
	int fd = open(s->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		char path[600];
		snprintf(path, sizeof(path), "%s/hark-mel-XXXXXX", s->dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0) {
		snprintf(s->err, sizeof(s->err), "cannot create a spectrogram spill file in %.200s: %s", s->dir,
			 strerror(errno));
		return HARK_ERR_IO;
	}
	s->fd = fd;
	return HARK_OK;
}

/* Writes the buffered spilled frames at their place in the file. */
static int flush_block(struct hark_wmelstore *s)
{
	const size_t fb = sizeof(float) * (size_t)s->n_mel;
	const size_t n = s->n_spilled - s->n_flushed;
	const char *src = (const char *)s->wbuf;
	size_t len = n * fb;
	off_t off = (off_t)(s->n_flushed * fb);
	if (s->fd < 0) {
		int rc = open_file(s);
		if (rc)
			return rc;
	}
	while (len > 0) {
		ssize_t w;
		if (s->p.max_file_bytes && (unsigned long long)off + len > s->p.max_file_bytes) {
			/* test hook: behave as a full disk at max_file_bytes */
			size_t room = (unsigned long long)off < s->p.max_file_bytes
					      ? (size_t)(s->p.max_file_bytes - (unsigned long long)off)
					      : 0;
			if (room == 0) {
				errno = ENOSPC;
				w = -1;
			} else {
				w = pwrite(s->fd, src, room, off);
			}
		} else {
			w = pwrite(s->fd, src, len, off);
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = ENOSPC;
			snprintf(s->err, sizeof(s->err),
				 "cannot write the spectrogram spill file in %.200s (%zu bytes written): %s", s->dir,
				 (size_t)off, strerror(errno));
			return HARK_ERR_IO;
		}
		src += w;
		len -= (size_t)w;
		off += w;
	}
	s->n_flushed = s->n_spilled;
	return HARK_OK;
}

int hark_wmelstore_append(struct hark_wmelstore *s, const float *frame)
{
	const size_t nm = (size_t)s->n_mel;
	if (hark_wmelstore_n_frames(s) >= s->p.max_frames) {
		snprintf(s->err, sizeof(s->err), "spectrogram longer than %zu frames", s->p.max_frames);
		return HARK_ERR_LIMIT;
	}
	float *dst;
	if (s->n_mem < s->p.mem_frames) {
		if (s->n_mem == s->cap_mem) {
			size_t nc = s->cap_mem ? s->cap_mem * 2 : 4096;
			if (nc > s->p.mem_frames)
				nc = s->p.mem_frames;
			float *nf = realloc(s->mem, sizeof(float) * nc * nm);
			if (!nf) {
				snprintf(s->err, sizeof(s->err), "out of memory for the spectrogram");
				return HARK_ERR_NOMEM;
			}
			s->mem = nf;
			s->cap_mem = nc;
		}
		dst = s->mem + s->n_mem * nm;
	} else {
		if (!s->wbuf) {
			s->wbuf = malloc(sizeof(float) * s->p.block_frames * nm);
			if (!s->wbuf) {
				snprintf(s->err, sizeof(s->err), "out of memory for the spectrogram");
				return HARK_ERR_NOMEM;
			}
		}
		if (s->n_spilled - s->n_flushed == s->p.block_frames) {
			int rc = flush_block(s);
			if (rc)
				return rc;
		}
		dst = s->wbuf + (s->n_spilled - s->n_flushed) * nm;
	}
	memcpy(dst, frame, sizeof(float) * nm);
	for (size_t j = 0; j < nm; j++)
		if (frame[j] > s->vmax)
			s->vmax = frame[j];
	if (s->n_mem < s->p.mem_frames)
		s->n_mem++;
	else
		s->n_spilled++;
	return HARK_OK;
}

/* Reads spilled frames [a, b) (all < n_flushed) from the file. */
static int read_file_frames(struct hark_wmelstore *s, size_t a, size_t b, float *dst)
{
	const size_t fb = sizeof(float) * (size_t)s->n_mel;
	char *p = (char *)dst;
	size_t len = (b - a) * fb;
	off_t off = (off_t)(a * fb);
	while (len > 0) {
		ssize_t r = pread(s->fd, p, len, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(s->err, sizeof(s->err), "cannot read the spectrogram spill file: %s",
				 r == 0 ? "unexpected end of file" : strerror(errno));
			return HARK_ERR_IO;
		}
		p += r;
		len -= (size_t)r;
		off += r;
	}
	return HARK_OK;
}

int hark_wmelstore_read(struct hark_wmelstore *s, size_t t0, size_t t1, float *dst)
{
	const size_t nm = (size_t)s->n_mel;
	if (t0 > t1 || t1 > hark_wmelstore_n_frames(s))
		return HARK_ERR_INVALID_ARG;
	if (t0 < s->n_mem) {
		const size_t e = t1 < s->n_mem ? t1 : s->n_mem;
		memcpy(dst, s->mem + t0 * nm, sizeof(float) * (e - t0) * nm);
		dst += (e - t0) * nm;
		t0 = e;
	}
	if (t0 == t1)
		return HARK_OK;
	size_t a = t0 - s->n_mem, b = t1 - s->n_mem;
	if (a < s->n_flushed) {
		const size_t e = b < s->n_flushed ? b : s->n_flushed;
		int rc = read_file_frames(s, a, e, dst);
		if (rc)
			return rc;
		dst += (e - a) * nm;
		a = e;
	}
	if (a < b)
		memcpy(dst, s->wbuf + (a - s->n_flushed) * nm, sizeof(float) * (b - a) * nm);
	return HARK_OK;
}
