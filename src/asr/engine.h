/*
 * Speech-engine interface. Every engine (PocketSphinx, Whisper, ...) is one
 * file that exports a const struct hark_engine_ops table; nothing outside
 * src/asr/ knows which engine runs. A model is loaded once and is immutable
 * and shared read-only by any number of per-run states, each used by one
 * thread at a time, so a worker pool runs N transcriptions with no global
 * lock. PCM arrives in chunks (16 kHz mono float) through feed(); finish()
 * flushes and returns the transcript.
 */
#ifndef HARK_ASR_ENGINE_H
#define HARK_ASR_ENGINE_H

#include <stddef.h>

#include "hark/transcribe.h"

#define HARK_SAMPLE_RATE 16000

/* Options for one run, resolved from struct hark_transcribe_params. */
struct hark_engine_run_params {
	const char *language;   /* never NULL ("en", "auto", ...) */
	int n_threads;          /* >= 1 */
	int translate;
	int beam_size;
	int best_of;
	int no_fallback;
	const char *prompt;     /* may be NULL */
	int word_timestamps;
	double total_s;         /* expected seconds of audio, 0 if unknown (progress) */
	hark_progress_fn progress;  /* may be NULL; called by the engine with
				       fraction of total_s processed */
	void *progress_user_data;
	hark_cancel_fn cancel;      /* may be NULL; polled by the engine */
	void *cancel_user_data;
};

struct hark_engine_ops {
	const char *name;  /* "pocketsphinx", "whisper" */

	/* Loads a model from path (NULL = engine default). *model is opaque to
	 * callers and immutable afterwards. On error writes a one-line message
	 * into err (errlen bytes, NUL-terminated). */
	int (*model_load)(const char *path, void **model, char *err, size_t errlen);
	void (*model_free)(void *model);
	/* Short model name for transcripts ("en-us", "ggml-tiny.en"). */
	const char *(*model_name)(const void *model);
	/* Engine/library version; static storage. */
	const char *(*version)(void);

	/* Creates a per-run state on model. p is valid until state_free. */
	int (*state_new)(void *model, const struct hark_engine_run_params *p,
			 void **state, char *err, size_t errlen);
	/* Feeds n samples. The samples are only read during the call. May run
	 * decoding work; returns HARK_ERR_CANCELED when the cancel callback fires. */
	int (*feed)(void *state, const float *pcm, size_t n, char *err, size_t errlen);
	/* Ends the input and fills out (segments, words, text, language; the
	 * caller fills duration and engine fields). Times are seconds from the
	 * first fed sample. */
	int (*finish)(void *state, struct hark_transcript *out, char *err, size_t errlen);
	void (*state_free)(void *state);
};

/* Engine lookup by name; NULL if unknown. */
const struct hark_engine_ops *hark_engine_find(const char *name);

/* Every registered engine, NULL-terminated. */
const struct hark_engine_ops *const *hark_engine_list(void);

extern const struct hark_engine_ops hark_engine_pocketsphinx;
extern const struct hark_engine_ops hark_engine_whisper;

#endif /* HARK_ASR_ENGINE_H */
