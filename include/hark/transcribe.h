/*
 * hark public API: speech-to-text. A struct hark_model is an immutable,
 * thread-safe loaded speech model (PocketSphinx or Whisper); any number of
 * struct hark_ctx per-request states may run on it at once from different
 * threads. Results come back as a struct hark_transcript, plain data that the
 * caller owns and releases with hark_transcript_free(), and that can be
 * written as txt, json (OpenAI verbose_json), srt or vtt.
 */
#ifndef HARK_TRANSCRIBE_H
#define HARK_TRANSCRIBE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hark/hark.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- results (plain data, owned by the transcript) ---------------------- */

struct hark_word {
	char *word;         /* UTF-8, may start with a space as in the source engine */
	double start;       /* seconds from the start of the input */
	double end;         /* seconds, >= start */
	float probability;  /* 0..1 */
};

struct hark_segment {
	int id;                 /* 0-based, consecutive */
	double start;           /* seconds */
	double end;             /* seconds, >= start */
	char *text;             /* UTF-8 */
	int32_t *tokens;        /* engine token ids in sampling order (may be NULL) */
	size_t n_tokens;
	float avg_logprob;      /* mean log-probability of the text tokens */
	float no_speech_prob;   /* 0..1 */
	float temperature;      /* decoding temperature that produced it */
	float compression_ratio;
	size_t first_word;      /* index into hark_transcript.words */
	size_t n_words;         /* words belonging to this segment */
};

struct hark_transcript {
	char *text;             /* full text (segments joined) */
	char *language;         /* ISO 639-1 code, e.g. "en" */
	double duration;        /* seconds of audio transcribed */
	double offset;          /* seconds skipped at the start (--offset) */
	struct hark_segment *segments;
	size_t n_segments;
	struct hark_word *words;
	size_t n_words;
	char *engine_name;      /* "pocketsphinx", "whisper" */
	char *engine_model;     /* model name or path */
	char *engine_version;   /* engine/library version */
	char *source;           /* input file path, if any (may be NULL) */
};

/* Releases t and everything it owns. NULL is a no-op. */
void hark_transcript_free(struct hark_transcript *t);

/* ---- output formats ----------------------------------------------------- */

enum hark_format {
	HARK_FORMAT_TXT = 0,   /* one segment per line */
	HARK_FORMAT_JSON = 1,  /* OpenAI verbose_json + engine object */
	HARK_FORMAT_SRT = 2,
	HARK_FORMAT_VTT = 3,
};

/* Parses "txt", "json", "srt", "vtt" (case-insensitive) into *out.
 * Returns HARK_ERR_INVALID_ARG for anything else. */
int hark_format_parse(const char *name, enum hark_format *out);

/* File extension (without dot) for fmt; static storage. */
const char *hark_format_ext(enum hark_format fmt);

/* Renders t in fmt into a new NUL-terminated heap buffer *out (caller frees
 * with free()); *out_len receives its length without the NUL. */
int hark_transcript_render(const struct hark_transcript *t, enum hark_format fmt,
			   char **out, size_t *out_len);

/* Renders t in fmt and writes it to f. Returns HARK_ERR_IO on write error. */
int hark_transcript_write(const struct hark_transcript *t, enum hark_format fmt, FILE *f);

/* ---- models ------------------------------------------------------------- */

struct hark_model;  /* opaque; immutable after load, shareable across threads */
struct hark_ctx;    /* opaque; one per concurrent transcription */

struct hark_model_params {
	const char *engine;      /* "pocketsphinx", "whisper" or "auto" (default) */
	const char *model_path;  /* engine model file/dir; NULL = engine default or search */
	const char *language;    /* default language for contexts ("en"; "auto" for detection) */
	int n_threads;           /* compute threads per context; 0 = number of cores */
};

/* Defaults: engine "auto", no model path, language "en", n_threads 0. */
struct hark_model_params hark_model_default_params(void);

/*
 * Loads a model. On success *out owns it; release with hark_model_free().
 * On failure returns an error and, if err is non-NULL, writes a one-line
 * NUL-terminated message of at most errlen bytes into err.
 * "auto" picks Whisper when a Whisper model is found (model_path,
 * $HARK_MODELS, ~/.cache/hark/models), else PocketSphinx.
 */
int hark_model_load(const struct hark_model_params *params, struct hark_model **out,
		    char *err, size_t errlen);

/* Releases a model. All contexts created on it must be freed first. */
void hark_model_free(struct hark_model *m);

/* Name of the engine behind m ("pocketsphinx", "whisper"); static storage. */
const char *hark_model_engine(const struct hark_model *m);

/* ---- transcription ------------------------------------------------------ */

/* Progress: fraction 0..1 of the input's audio processed so far, and the
 * seconds of audio done. Called from the transcribing thread. */
typedef void (*hark_progress_fn)(double fraction, double audio_done_s, void *user_data);
/* Cancel: return non-zero to stop; the call then returns HARK_ERR_CANCELED.
 * Polled at least every ~0.5 s of work. */
typedef int (*hark_cancel_fn)(void *user_data);

struct hark_transcribe_params {
	const char *language;     /* NULL = model default; "auto" = detect */
	int n_threads;            /* 0 = model default */
	double offset_s;          /* skip this many seconds at the start */
	double duration_s;        /* transcribe at most this many seconds; 0 = all */
	int channel;              /* -1 = downmix all channels (default); k = channel k only */
	int translate;            /* Whisper: translate to English */
	int beam_size;            /* Whisper: <= 1 greedy; default 5 */
	int best_of;              /* Whisper: candidates when sampling; default 5 */
	int no_fallback;          /* Whisper: disable temperature fallback */
	const char *prompt;       /* Whisper: initial prompt text (may be NULL) */
	int word_timestamps;      /* produce per-word times (default 1) */
	hark_progress_fn progress;
	void *progress_user_data;
	hark_cancel_fn cancel;
	void *cancel_user_data;
};

struct hark_transcribe_params hark_transcribe_default_params(void);

/* Creates a per-request state on m. Release with hark_ctx_free(). */
int hark_ctx_init(struct hark_model *m, struct hark_ctx **out);
void hark_ctx_free(struct hark_ctx *ctx);

/* Detailed message of the last error on ctx ("" if none); valid until the
 * next call on ctx. */
const char *hark_ctx_errmsg(const struct hark_ctx *ctx);

/*
 * Decodes the media file at path (any container FFmpeg reads, detected from
 * content), streams it through the engine and returns a transcript in *out
 * (caller frees with hark_transcript_free()). Memory stays bounded however
 * long the input is.
 */
int hark_transcribe_file(struct hark_ctx *ctx, const char *path,
			 const struct hark_transcribe_params *params,
			 struct hark_transcript **out);

/*
 * Transcribes n samples of 16 kHz mono float PCM in [-1, 1]. pcm is only
 * read during the call.
 */
int hark_transcribe_pcm(struct hark_ctx *ctx, const float *pcm, size_t n,
			const struct hark_transcribe_params *params,
			struct hark_transcript **out);

#ifdef __cplusplus
}
#endif

#endif /* HARK_TRANSCRIBE_H */
