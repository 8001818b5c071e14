/*
 * Keyword spotting: finds where given words or phrases are spoken in a media
 * file, using PocketSphinx's keyphrase search (phone-loop garbage model, one
 * detection threshold per phrase) over the same streaming audio path,
 * voice-activity utterance splitting and cepstral-mean seeding as the
 * PocketSphinx transcription engine. Overlapping detections of the same
 * phrase are merged into one hit.
 */
#ifndef HARK_ASR_KWS_H
#define HARK_ASR_KWS_H

#include <stddef.h>
#include <stdint.h>

#include "asr/engine.h"
#include "hark/transcribe.h"

/* Largest number of phrases and of hits per call (HARK_ERR_LIMIT beyond). */
#define HARK_KWS_MAX_KEYWORDS 256
#define HARK_KWS_MAX_HITS 100000
#define HARK_KWS_MAX_PHRASE 256   /* bytes per phrase */

struct hark_kws_hit {
	char *keyword;   /* the phrase as spotted (lowercase, single spaces) */
	double start;    /* seconds from the start of the file */
	double end;      /* seconds, >= start */
	float score;     /* detection score 0..1: exp of PocketSphinx's log ratio
			    of keyphrase vs phone-loop path; higher = surer */
};

struct hark_kws_params {
	const char *model_path;     /* PocketSphinx model dir; NULL = engine default */
	double threshold;           /* detection threshold for every phrase (> 0;
				       smaller = more hits); default 1e-20 */
	const double *thresholds;   /* optional: per-phrase thresholds (n entries;
				       a value <= 0 means use threshold) */
	double offset_s;            /* skip this much audio at the start */
	double duration_s;          /* spot in at most this much; 0 = all */
	int channel;                /* -1 = downmix (default); k = channel k */
	hark_progress_fn progress;  /* may be NULL; fraction of the file done */
	void *progress_user_data;
	hark_cancel_fn cancel;      /* may be NULL; HARK_ERR_CANCELED when it fires */
	void *cancel_user_data;
};

/* Defaults: default model, threshold 1e-20, whole file, downmix, no callbacks. */
struct hark_kws_params hark_kws_default_params(void);

/*
 * Spots keywords[0..n-1] (words or phrases, case-insensitive; each word must
 * be in the pronunciation dictionary, else HARK_ERR_INVALID_ARG naming the
 * word) in the media file at path. On success *hits is a new array of *n_hits
 * hits sorted by start time (caller frees with hark_kws_hits_free(); NULL when
 * there are none). Errors: those of hark_audio_open(), HARK_ERR_MODEL,
 * HARK_ERR_INVALID_ARG, HARK_ERR_LIMIT, HARK_ERR_CANCELED, HARK_ERR_ENGINE;
 * err (errlen bytes) receives a one-line message.
 */
int hark_kws_spot_file(const char *path, const char *const *keywords, size_t n,
		       const struct hark_kws_params *p, struct hark_kws_hit **hits,
		       size_t *n_hits, char *err, size_t errlen);

/*
 * Same on n_samples of 16 kHz mono float PCM (times from its first sample).
 * Offset/duration/channel in p are ignored.
 */
int hark_kws_spot_pcm(const float *pcm, size_t n_samples, const char *const *keywords,
		      size_t n, const struct hark_kws_params *p, struct hark_kws_hit **hits,
		      size_t *n_hits, char *err, size_t errlen);

/* Releases an array returned above. NULL is a no-op. */
void hark_kws_hits_free(struct hark_kws_hit *hits, size_t n);

/* ---- internal: implemented in engine_pocketsphinx.c, used by kws.c ------- */

/* Like hark_engine_pocketsphinx.model_load() (same errors and layout) but
 * loads no language-model decoder: for keyword spotting only. Free with
 * hark_engine_pocketsphinx.model_free(). */
int hark_kws_ps_model_load(const char *path, void **model, char *err, size_t errlen);

/*
 * Creates a PocketSphinx run state on model (loaded with
 * hark_kws_ps_model_load() or hark_engine_pocketsphinx.model_load()) that searches for the n phrases
 * (already lowercased, single-spaced) with the given thresholds (> 0).
 * Drive it with hark_engine_pocketsphinx.feed/finish/state_free; finish()
 * returns each detection as one transcript word (word = phrase with a
 * leading space, start/end, probability = score). Unknown words give
 * HARK_ERR_INVALID_ARG naming the word.
 */
int hark_kws_ps_state_new(void *model, const char *const *phrases, const double *thresholds,
			  size_t n, const struct hark_engine_run_params *p, void **state,
			  char *err, size_t errlen);

/* float sample in [-1, 1] -> int16 with clipping (NaN -> 0). */
int16_t hark_kws_pcm16(float x);

#endif /* HARK_ASR_KWS_H */
