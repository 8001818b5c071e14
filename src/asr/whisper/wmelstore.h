/*
 * Mel-frame store: an append-only sequence of log-mel frames (n_mel floats
 * each, time-major: frame t is n_mel consecutive floats) with a running
 * maximum and random read-back of any frame range. The first mem_frames
 * frames live in memory; later frames go through a small write buffer into
 * an unlinked temporary file (O_TMPFILE in $TMPDIR or /tmp, else
 * mkostemp + unlink) with pwrite and come back with pread (no mmap), so the
 * resident memory of a store is bounded whatever the length of the audio.
 * Write failures (disk full) give HARK_ERR_IO, the frame cap HARK_ERR_LIMIT;
 * the message is kept on the handle (hark_wmelstore_error).
 */
#ifndef HARK_ASR_WHISPER_WMELSTORE_H
#define HARK_ASR_WHISPER_WMELSTORE_H

#include <stddef.h>

struct hark_wmelstore;

struct hark_wmelstore_params {
	size_t mem_frames;   /* frames kept in memory before spilling (default 10 min) */
	size_t block_frames; /* frames buffered per file write (default 4096) */
	size_t max_frames;   /* cap: appending more gives HARK_ERR_LIMIT (default 24 h) */
	unsigned long long max_file_bytes; /* 0 = none; a write past it fails as if
					    * the disk were full (ENOSPC; for tests) */
	const char *dir;     /* spill directory; NULL = $TMPDIR, else /tmp */
};

/* Defaults: 60000 frames (10 minutes at 100 frames/s) in memory, 4096-frame
 * write blocks, 24 hours (8 640 000 frames) cap, no file cap, $TMPDIR. */
struct hark_wmelstore_params hark_wmelstore_default_params(void);

/*
 * Creates an empty store for frames of n_mel floats (1..512). p NULL means
 * the defaults; p->dir is copied. No file is created until the first block
 * of frames past mem_frames is written (so errors about the spill directory
 * surface in append). Returns HARK_ERR_INVALID_ARG or HARK_ERR_NOMEM.
 */
int hark_wmelstore_open(int n_mel, const struct hark_wmelstore_params *p, struct hark_wmelstore **out);

/* Frees the store and closes (thereby deletes) its spill file. NULL is a no-op. */
void hark_wmelstore_close(struct hark_wmelstore *s);

/*
 * Appends one frame (n_mel floats, copied) and updates the running maximum.
 * Returns HARK_ERR_LIMIT past max_frames, HARK_ERR_NOMEM, or HARK_ERR_IO when
 * the spill file cannot be created or written (message on the handle); on
 * error the frame is not stored.
 */
int hark_wmelstore_append(struct hark_wmelstore *s, const float *frame);

/* Number of frames appended. */
size_t hark_wmelstore_n_frames(const struct hark_wmelstore *s);

/* Number of frames that went to the spill file (written or buffered). */
size_t hark_wmelstore_n_spilled(const struct hark_wmelstore *s);

/* Maximum value over all appended frames; -INFINITY when empty. */
float hark_wmelstore_max(const struct hark_wmelstore *s);

/*
 * Copies frames [t0, t1) (t0 <= t1 <= n_frames) into dst, laid out
 * [t1 - t0][n_mel] like the input. Returns HARK_ERR_INVALID_ARG for a bad
 * range or HARK_ERR_IO when the spill file cannot be read (message on the
 * handle).
 */
int hark_wmelstore_read(struct hark_wmelstore *s, size_t t0, size_t t1, float *dst);

/* Message of the last failure ("" if none); owned by the store. */
const char *hark_wmelstore_error(const struct hark_wmelstore *s);

#endif /* HARK_ASR_WHISPER_WMELSTORE_H */
