/*
 * Whisper log-mel spectrogram, computed incrementally. PCM (16 kHz mono
 * float) is fed in chunks; every 10 ms frame is transformed (Hann window,
 * 400-point FFT, power spectrum, mel filter bank, log10) as soon as
 * its samples are present, and only the pre-clamp log-mel values are kept
 * (n_mel floats per frame, in a wmelstore: the first 10 minutes in memory,
 * the rest in an unlinked temporary file), never the PCM. whisper.cpp clamps every value to
 * (global max - 8) and maps v -> (v + 4) / 4, where the max runs over the
 * whole padded spectrogram; hark_wmel_window() applies that clamp with the
 * final global max once hark_wmel_finish() has been called, so windows are
 * bit-for-bit what whisper.cpp's whisper_pcm_to_mel produces. The
 * arithmetic (float products, double accumulation in groups of four, double
 * log10 and clamp) follows whisper.cpp's log_mel_spectrogram.
 */
#ifndef HARK_ASR_WHISPER_WMEL_H
#define HARK_ASR_WHISPER_WMEL_H

#include <stddef.h>

#include "asr/whisper/wmelstore.h"

#define HARK_WMEL_N_FFT 400
#define HARK_WMEL_HOP 160
#define HARK_WMEL_N_BINS 201
/* Cap on stored frames: 24 hours of audio (100 frames per second). */
#define HARK_WMEL_MAX_FRAMES (24L * 3600L * 100L)

struct hark_wmel;

/*
 * Creates a mel state for n_mel filters of HARK_WMEL_N_BINS taps each
 * (filters: [n_mel][201], copied). The spectrum comes from a re-implementation
 * of whisper.cpp's own radix-2/DFT FFT, so the mel is bit-identical to
 * whisper.cpp's (decoding, beam search especially, is sensitive to 1e-5
 * input differences). Returns HARK_ERR_NOMEM or HARK_ERR_INVALID_ARG.
 */
int hark_wmel_new(int n_mel, const float *filters, struct hark_wmel **out);

/* Same, choosing the FFT: use_fftw = 1 uses FFTW (fftw3f, one plan per
 * state, plan creation serialised by a global mutex): faster, within 5e-5
 * of whisper.cpp's mel but not bit-identical. */
int hark_wmel_new_ex(int n_mel, const float *filters, int use_fftw, struct hark_wmel **out);

/* Same, with the frame store's parameters (sp copied; NULL = the defaults
 * with max_frames = HARK_WMEL_MAX_FRAMES): lets tests force spilling. */
int hark_wmel_new_store(int n_mel, const float *filters, int use_fftw,
			const struct hark_wmelstore_params *sp, struct hark_wmel **out);

void hark_wmel_free(struct hark_wmel *m);

/* Appends n samples. Returns HARK_ERR_LIMIT past HARK_WMEL_MAX_FRAMES,
 * HARK_ERR_NOMEM, HARK_ERR_IO when the frame spill file cannot be written
 * (disk full; see hark_wmel_error), HARK_ERR_INVALID_ARG after finish. */
int hark_wmel_feed(struct hark_wmel *m, const float *pcm, size_t n);

/* Ends the input: computes the trailing frames against the 30 s zero pad
 * and the global max. Afterwards n_len/n_len_org are valid. */
int hark_wmel_finish(struct hark_wmel *m);

/* Number of samples fed so far. */
size_t hark_wmel_n_samples(const struct hark_wmel *m);

/* After finish: whisper.cpp's mel.n_len ((n + 480000) / 160 frames, the
 * padded length) and n_len_org (1 + (n + 200 - 400) / 160, the unpadded). */
int hark_wmel_n_len(const struct hark_wmel *m);
int hark_wmel_n_len_org(const struct hark_wmel *m);

/*
 * After finish: writes the normalised log-mel of frames [offset, offset +
 * n_frames) into dst laid out [n_mel][n_frames] (row-major by mel), exactly
 * as whisper.cpp's encoder input: frames >= n_len are 0. Returns HARK_OK, or
 * HARK_ERR_IO when spilled frames cannot be read back (see hark_wmel_error).
 */
int hark_wmel_window(const struct hark_wmel *m, int offset, int n_frames, float *dst);

/* Message of the last frame-store failure ("" if none); owned by m. */
const char *hark_wmel_error(const struct hark_wmel *m);

#endif /* HARK_ASR_WHISPER_WMEL_H */
