/*
 * The public transcription API (include/hark/transcribe.h): engine selection
 * and model loading, per-request contexts, and the streaming pipeline that
 * pulls 16 kHz PCM chunks from the media decoder and feeds them to the
 * engine. Times in results are shifted so they are relative to the start of
 * the input file even when --offset skipped its beginning.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/transcribe_internal.h"
#include "asr/engine.h"
#include "asr/whisper/wmodels.h"
#include "audio/audio.h"
#include "format/transcript.h"
#include "util/errbuf.h"

#define CHUNK_SAMPLES 16000 /* 1 s of audio per feed */

struct hark_model {
	const struct hark_engine_ops *ops;
	void *engine_model;
	char *language;
	int n_threads;
};

struct hark_ctx {
	struct hark_model *model;
	char errmsg[512];
};

static int default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > 64)
		n = 64;
	return (int)n;
}

struct hark_model_params hark_model_default_params(void)
{
	struct hark_model_params p = {
		.engine = "auto",
		.model_path = NULL,
		.language = "en",
		.n_threads = 0,
	};
	return p;
}

struct hark_transcribe_params hark_transcribe_default_params(void)
{
	struct hark_transcribe_params p = {
		.language = NULL,
		.n_threads = 0,
		.offset_s = 0.0,
		.duration_s = 0.0,
		.channel = -1,
		.translate = 0,
		.beam_size = 5,
		.best_of = 5,
		.no_fallback = 0,
		.prompt = NULL,
		.word_timestamps = 1,
	};
	return p;
}

/* Does path look like a whisper.cpp ggml model file (magic "ggml")? */
static int is_ggml_file(const char *path)
{
	unsigned char magic[4];
	FILE *f = fopen(path, "rb");
	int ok = 0;

	if (!f)
		return 0;
	if (fread(magic, 1, 4, f) == 4)
		ok = magic[0] == 0x6c && magic[1] == 0x6d && magic[2] == 0x67 && magic[3] == 0x67;
	fclose(f);
	return ok;
}

int hark_api_resolve_engine(const char *engine, const char *model_path,
			    const struct hark_engine_ops **ops, char *path_out,
			    size_t path_len, char *err, size_t errlen)
{
	struct stat st;

	path_out[0] = '\0';
	if (!engine || !*engine)
		engine = "auto";
	if (strcmp(engine, "auto") == 0) {
		if (model_path && *model_path) {
			if (stat(model_path, &st) == 0 && S_ISDIR(st.st_mode)) {
				engine = "pocketsphinx";
			} else if (is_ggml_file(model_path)) {
				engine = "whisper";
			} else if (hark_wmodels_resolve(model_path, path_out, path_len) == HARK_OK) {
				*ops = hark_engine_find("whisper");
				return *ops ? HARK_OK : HARK_ERR_MODEL;
			} else {
				hark_errbuf_set(err, errlen, "not a Whisper model file or PocketSphinx model directory");
				return HARK_ERR_MODEL;
			}
		} else if (hark_wmodels_find_default(path_out, path_len) == HARK_OK) {
			engine = "whisper";
			model_path = NULL;
		} else {
			engine = "pocketsphinx";
		}
	}
	*ops = hark_engine_find(engine);
	if (!*ops) {
		hark_errbuf_set(err, errlen, "unknown engine '%s' (expected pocketsphinx, whisper or auto)", engine);
		return HARK_ERR_INVALID_ARG;
	}
	if (model_path && *model_path && !path_out[0]) {
		if (strcmp(engine, "whisper") == 0) {
			int rc = hark_wmodels_resolve(model_path, path_out, path_len);
			if (rc != HARK_OK) {
				hark_errbuf_set(err, errlen, "Whisper model not found (looked at the path, "
					"$HARK_MODELS and ~/.cache/hark/models)");
				return HARK_ERR_MODEL;
			}
		} else {
			snprintf(path_out, path_len, "%s", model_path);
		}
	} else if (!path_out[0] && strcmp(engine, "whisper") == 0) {
		if (hark_wmodels_find_default(path_out, path_len) != HARK_OK) {
			hark_errbuf_set(err, errlen, "no Whisper model found: pass --model, set $HARK_MODELS, "
				"or run 'hark models pull base.en'");
			return HARK_ERR_MODEL;
		}
	}
	return HARK_OK;
}

int hark_model_load(const struct hark_model_params *params, struct hark_model **out,
		    char *err, size_t errlen)
{
	struct hark_model_params defaults = hark_model_default_params();
	struct hark_model *m = NULL;
	char path[4096];
	int rc;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (!params)
		params = &defaults;
	if (params->n_threads < 0) {
		hark_errbuf_set(err, errlen, "n_threads must be >= 0");
		return HARK_ERR_INVALID_ARG;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	rc = hark_api_resolve_engine(params->engine, params->model_path, &m->ops, path,
				     sizeof(path), err, errlen);
	if (rc != HARK_OK)
		goto out;
	rc = m->ops->model_load(path[0] ? path : NULL, &m->engine_model, err, errlen);
	if (rc != HARK_OK)
		goto out;
	m->language = strdup(params->language && *params->language ? params->language : "en");
	if (!m->language) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	m->n_threads = params->n_threads > 0 ? params->n_threads : default_threads();
	*out = m;
	m = NULL;
out:
	hark_model_free(m);
	return rc;
}

void hark_model_free(struct hark_model *m)
{
	if (!m)
		return;
	if (m->engine_model)
		m->ops->model_free(m->engine_model);
	free(m->language);
	free(m);
}

const char *hark_model_engine(const struct hark_model *m)
{
	return m && m->ops ? m->ops->name : "";
}

int hark_ctx_init(struct hark_model *m, struct hark_ctx **out)
{
	struct hark_ctx *ctx;

	if (!m || !out)
		return HARK_ERR_INVALID_ARG;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return HARK_ERR_NOMEM;
	ctx->model = m;
	*out = ctx;
	return HARK_OK;
}

void hark_ctx_free(struct hark_ctx *ctx)
{
	free(ctx);
}

const char *hark_ctx_errmsg(const struct hark_ctx *ctx)
{
	return ctx ? ctx->errmsg : "";
}

static void run_params(const struct hark_ctx *ctx, const struct hark_transcribe_params *p,
		       double total_s, struct hark_engine_run_params *rp)
{
	memset(rp, 0, sizeof(*rp));
	rp->language = p->language && *p->language ? p->language : ctx->model->language;
	rp->n_threads = p->n_threads > 0 ? p->n_threads : ctx->model->n_threads;
	rp->translate = p->translate;
	rp->beam_size = p->beam_size;
	rp->best_of = p->best_of;
	rp->no_fallback = p->no_fallback;
	rp->prompt = p->prompt;
	rp->word_timestamps = p->word_timestamps;
	rp->total_s = total_s;
	rp->progress = p->progress;
	rp->progress_user_data = p->progress_user_data;
	rp->cancel = p->cancel;
	rp->cancel_user_data = p->cancel_user_data;
}

static int check_params(struct hark_ctx *ctx, const struct hark_transcribe_params *p)
{
	if (p->offset_s < 0 || p->duration_s < 0 || p->offset_s != p->offset_s ||
	    p->duration_s != p->duration_s) {
		hark_errbuf_set(ctx->errmsg, sizeof(ctx->errmsg), "offset and duration must be >= 0");
		return HARK_ERR_INVALID_ARG;
	}
	if (p->channel < -1 || p->channel > 63) {
		hark_errbuf_set(ctx->errmsg, sizeof(ctx->errmsg), "channel must be -1 (downmix) or 0..63");
		return HARK_ERR_INVALID_ARG;
	}
	if (p->n_threads < 0 || p->n_threads > 1024) {
		hark_errbuf_set(ctx->errmsg, sizeof(ctx->errmsg), "thread count out of range");
		return HARK_ERR_INVALID_ARG;
	}
	return HARK_OK;
}

/* Shifts every time in t by off seconds and fills the engine fields. */
static int finish_transcript(struct hark_ctx *ctx, struct hark_transcript *t, double off,
			     double duration, const char *source)
{
	const struct hark_engine_ops *ops = ctx->model->ops;

	hark_transcript_shift(t, off);
	t->offset = off;
	t->duration = duration;
	if (hark_transcript_set_str(&t->engine_name, ops->name) != HARK_OK ||
	    hark_transcript_set_str(&t->engine_model, ops->model_name(ctx->model->engine_model)) != HARK_OK ||
	    hark_transcript_set_str(&t->engine_version, ops->version()) != HARK_OK ||
	    (source && hark_transcript_set_str(&t->source, source) != HARK_OK))
		return HARK_ERR_NOMEM;
	if (!t->language &&
	    hark_transcript_set_str(&t->language, ctx->model->language) != HARK_OK)
		return HARK_ERR_NOMEM;
	return HARK_OK;
}

/* A pull source of 16 kHz mono chunks: the media decoder or a PCM buffer. */
struct chunk_source {
	struct hark_audio *audio;   /* file input, or NULL */
	const float *pcm;           /* buffer input: samples [pos, end) remain */
	size_t pos, end;
};

static int source_next(struct chunk_source *src, const float **pcm, size_t *n, char *err,
		       size_t errlen)
{
	if (src->audio)
		return hark_audio_read(src->audio, pcm, n, err, errlen);
	*n = src->end - src->pos < CHUNK_SAMPLES ? src->end - src->pos : CHUNK_SAMPLES;
	*pcm = src->pcm + src->pos;
	src->pos += *n;
	return HARK_OK;
}

/*
 * The pipeline shared by file and PCM input: a fresh engine state is fed
 * every chunk of src (the cancel callback is polled between chunks), then
 * finished into a new transcript whose times are shifted onto the input's
 * timeline.
 */
static int run_pipeline(struct hark_ctx *ctx, const struct hark_transcribe_params *params,
			struct chunk_source *src, double total_s, const char *source,
			struct hark_transcript **out)
{
	const struct hark_engine_ops *ops = ctx->model->ops;
	struct hark_engine_run_params rp;
	struct hark_transcript *t = NULL;
	void *state = NULL;
	size_t fed = 0;
	int rc;

	run_params(ctx, params, total_s, &rp);
	rc = ops->state_new(ctx->model->engine_model, &rp, &state, ctx->errmsg, sizeof(ctx->errmsg));
	if (rc != HARK_OK)
		goto out;
	for (;;) {
		const float *pcm;
		size_t n;

		if (params->cancel && params->cancel(params->cancel_user_data)) {
			rc = HARK_ERR_CANCELED;
			hark_errbuf_set(ctx->errmsg, sizeof(ctx->errmsg), "canceled");
			goto out;
		}
		rc = source_next(src, &pcm, &n, ctx->errmsg, sizeof(ctx->errmsg));
		if (rc != HARK_OK)
			goto out;
		if (n == 0)
			break;
		rc = ops->feed(state, pcm, n, ctx->errmsg, sizeof(ctx->errmsg));
		if (rc != HARK_OK)
			goto out;
		fed += n;
	}
	if (fed == 0) {
		rc = HARK_ERR_EMPTY;
		hark_errbuf_set(ctx->errmsg, sizeof(ctx->errmsg), "no audio samples (%s)",
				params->offset_s > 0 ? "offset is past the end" : "stream is empty");
		goto out;
	}
	rc = hark_transcript_new(&t);
	if (rc != HARK_OK)
		goto out;
	rc = ops->finish(state, t, ctx->errmsg, sizeof(ctx->errmsg));
	if (rc != HARK_OK)
		goto out;
	rc = finish_transcript(ctx, t, params->offset_s, (double)fed / HARK_SAMPLE_RATE, source);
	if (rc != HARK_OK)
		goto out;
	if (params->progress)
		params->progress(1.0, (double)fed / HARK_SAMPLE_RATE, params->progress_user_data);
	*out = t;
	t = NULL;
out:
	hark_transcript_free(t);
	if (state)
		ops->state_free(state);
	return rc;
}

/* Common entry checks; returns the params to use in *p. */
static int begin_call(struct hark_ctx *ctx, const struct hark_transcribe_params *params,
		      const struct hark_transcribe_params *defaults,
		      const struct hark_transcribe_params **p, struct hark_transcript **out)
{
	if (!ctx || !out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	ctx->errmsg[0] = '\0';
	*p = params ? params : defaults;
	return check_params(ctx, *p);
}

int hark_transcribe_file(struct hark_ctx *ctx, const char *path,
			 const struct hark_transcribe_params *params,
			 struct hark_transcript **out)
{
	struct hark_transcribe_params defaults = hark_transcribe_default_params();
	struct hark_audio_params ap = hark_audio_default_params();
	struct chunk_source src = {0};
	double total_s;
	int rc;

	if (!path)
		return HARK_ERR_INVALID_ARG;
	rc = begin_call(ctx, params, &defaults, &params, out);
	if (rc != HARK_OK)
		return rc;
	ap.offset_s = params->offset_s;
	ap.duration_s = params->duration_s;
	ap.chunk_samples = CHUNK_SAMPLES;
	ap.channel = params->channel;
	rc = hark_audio_open(path, &ap, &src.audio, ctx->errmsg, sizeof(ctx->errmsg));
	if (rc != HARK_OK)
		goto out;
	total_s = hark_audio_info(src.audio)->duration_s - params->offset_s;
	if (params->duration_s > 0 && (total_s <= 0 || params->duration_s < total_s))
		total_s = params->duration_s;
	if (total_s < 0)
		total_s = 0;
	rc = run_pipeline(ctx, params, &src, total_s, path, out);
out:
	hark_audio_close(src.audio);
	if (rc != HARK_OK && !ctx->errmsg[0])
		hark_errbuf_set(ctx->errmsg, sizeof(ctx->errmsg), "%s", hark_strerror(rc));
	return rc;
}

int hark_transcribe_pcm(struct hark_ctx *ctx, const float *pcm, size_t n,
			const struct hark_transcribe_params *params,
			struct hark_transcript **out)
{
	struct hark_transcribe_params defaults = hark_transcribe_default_params();
	struct chunk_source src = {0};
	int rc;

	if (!pcm && n)
		return HARK_ERR_INVALID_ARG;
	rc = begin_call(ctx, params, &defaults, &params, out);
	if (rc != HARK_OK)
		return rc;
	src.pcm = pcm;
	src.pos = (size_t)(params->offset_s * HARK_SAMPLE_RATE + 0.5);
	src.end = n;
	if (params->duration_s > 0) {
		double end = (params->offset_s + params->duration_s) * HARK_SAMPLE_RATE + 0.5;
		if (end < (double)src.end)
			src.end = (size_t)end;
	}
	if (src.pos >= src.end) {
		hark_errbuf_set(ctx->errmsg, sizeof(ctx->errmsg), "no audio samples");
		return HARK_ERR_EMPTY;
	}
	rc = run_pipeline(ctx, params, &src, (double)(src.end - src.pos) / HARK_SAMPLE_RATE, NULL, out);
	if (rc != HARK_OK && !ctx->errmsg[0])
		hark_errbuf_set(ctx->errmsg, sizeof(ctx->errmsg), "%s", hark_strerror(rc));
	return rc;
}
