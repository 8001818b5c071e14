/*
 * Whisper engine: hark's own Whisper inference (wmodel loader, wmel log-mel,
 * wnet encoder/decoder, wdecode whisper_full) behind the engine vtable. The
 * model (mmap'd weights + tokenizer tables) is immutable and shared; every
 * run gets a state holding its thread pool, mel accumulator and network
 * buffers. Streaming: feed() turns PCM into log-mel frames immediately (the
 * PCM itself is not kept; 4 bytes per mel band per 10 ms are, the first 10
 * minutes in memory and the rest in an unlinked temporary file, so memory
 * stays flat however long the input), and finish()
 * applies whisper.cpp's global-max clamp and decodes every 30 s window; see
 * docs/WHISPER.md for why decoding waits for the end of the input (the clamp
 * and the end-of-audio rules need the whole spectrogram to be exact).
 * Segments carry whisper.cpp's token ids (opening timestamp dropped, closing
 * kept), its segment times (in no-timestamps mode the start is the window
 * start instead of whisper.cpp's garbage value) and its exact text bytes.
 * Words are tokens merged at spaces, timed by whisper.cpp's token-level
 * timestamp heuristic minus its PCM-energy step.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/engine.h"
#include "asr/whisper/wdecode.h"
#include "asr/whisper/wmel.h"
#include "asr/whisper/wmodel.h"
#include "asr/whisper/wmodels.h"
#include "asr/whisper/wnet.h"
#include "asr/whisper/wvocab.h"
#include "format/transcript.h"
#include "util/tpool.h"

/* Model search lives in wmodels.c; referenced weakly so that the engine
 * still loads explicit paths if that module is absent from a build. */
int hark_wmodels_resolve(const char *name_or_path, char *out, size_t outlen) __attribute__((weak));
int hark_wmodels_find_default(char *out, size_t outlen) __attribute__((weak));

struct wh_model {
	struct hark_wmodel *m;
	struct hark_wvocab *v;
	char name[256];
};

struct wh_state {
	struct wh_model *model;
	struct hark_engine_run_params p;
	struct hark_tpool *pool;
	struct hark_wmel *mel;
	struct hark_wnet *net;
	struct hark_wdecode_params dp;
	int32_t *prompt;
	int n_prompt;
	char lang[16];
	int failed;
	int64_t t_beg, t_last; /* token-time heuristic state (10 ms units) */
	int32_t tid_last;
};

static void model_free(void *model)
{
	struct wh_model *wm = model;
	if (!wm)
		return;
	hark_wvocab_free(wm->v);
	hark_wmodel_free(wm->m);
	free(wm);
}

static int model_load(const char *path, void **model, char *err, size_t errlen)
{
	char resolved[4096];
	int rc;
	*model = NULL;
	if (!path || !*path) {
		if (!hark_wmodels_find_default || hark_wmodels_find_default(resolved, sizeof(resolved)) != 0) {
			snprintf(err, errlen, "no Whisper model found (use --model or $HARK_MODELS)");
			return HARK_ERR_MODEL;
		}
	} else if (hark_wmodels_resolve) {
		rc = hark_wmodels_resolve(path, resolved, sizeof(resolved));
		if (rc) {
			snprintf(err, errlen, "Whisper model '%s' not found", path);
			return rc == HARK_ERR_IS_DIR ? HARK_ERR_IS_DIR : HARK_ERR_NOT_FOUND;
		}
	} else {
		if (strlen(path) >= sizeof(resolved)) {
			snprintf(err, errlen, "model path too long");
			return HARK_ERR_INVALID_ARG;
		}
		strcpy(resolved, path);
	}
	struct wh_model *wm = calloc(1, sizeof(*wm));
	if (!wm)
		return HARK_ERR_NOMEM;
	if ((rc = hark_wmodel_load(resolved, &wm->m, err, errlen)))
		goto fail;
	if ((rc = hark_wvocab_new(wm->m, &wm->v))) {
		snprintf(err, errlen, "cannot build the Whisper vocabulary");
		goto fail;
	}
	const char *base = strrchr(resolved, '/');
	base = base ? base + 1 : resolved;
	size_t bl = strlen(base);
	if (bl >= sizeof(wm->name))
		bl = sizeof(wm->name) - 1;
	memcpy(wm->name, base, bl);
	wm->name[bl] = 0;
	if (bl > 4 && strcmp(wm->name + bl - 4, ".bin") == 0)
		wm->name[bl - 4] = 0;
	*model = wm;
	return HARK_OK;
fail:
	model_free(wm);
	return rc;
}

static const char *model_name(const void *model)
{
	const struct wh_model *wm = model;
	return wm ? wm->name : "whisper";
}

static const char *version(void)
{
	return "hark-whisper " HARK_VERSION_STRING " (whisper.cpp f0d2bfb compatible)";
}

static void state_free(void *state)
{
	struct wh_state *s = state;
	if (!s)
		return;
	hark_wnet_free(s->net);
	hark_wmel_free(s->mel);
	hark_tpool_free(s->pool);
	free(s->prompt);
	free(s);
}

static void decode_progress(double fraction, void *user)
{
	struct wh_state *s = user;
	if (!s->p.progress)
		return;
	const double dur = (double)hark_wmel_n_samples(s->mel) / HARK_SAMPLE_RATE;
	double done = fraction * dur;
	double f = s->p.total_s > 0 ? done / s->p.total_s : fraction;
	if (f > 1.0)
		f = 1.0;
	s->p.progress(f, done, s->p.progress_user_data);
}

static int state_new(void *model, const struct hark_engine_run_params *p, void **state, char *err,
		     size_t errlen)
{
	struct wh_model *wm = model;
	int rc;
	*state = NULL;
	struct wh_state *s = calloc(1, sizeof(*s));
	if (!s)
		return HARK_ERR_NOMEM;
	s->model = wm;
	s->p = *p;
	const char *lang = p->language && *p->language ? p->language : "en";
	if (strcmp(lang, "auto") != 0 && hark_wvocab_lang_id(lang) < 0) {
		snprintf(err, errlen, "unknown language '%s'", lang);
		rc = HARK_ERR_INVALID_ARG;
		goto fail;
	}
	if (strcmp(lang, "auto") != 0) {
		/* accept English names too; store the code */
		const char *code = hark_wvocab_lang_code(hark_wvocab_lang_id(lang));
		snprintf(s->lang, sizeof(s->lang), "%s", code ? code : lang);
	} else {
		snprintf(s->lang, sizeof(s->lang), "auto");
	}
	s->dp = hark_wdecode_default_params();
	s->dp.language = s->lang;
	s->dp.translate = p->translate;
	s->dp.beam_size = p->beam_size;
	s->dp.best_of = p->best_of > 0 ? p->best_of : 5;
	if (s->dp.best_of > 8)
		s->dp.best_of = 8;
	if (s->dp.beam_size > 8)
		s->dp.beam_size = 8;
	s->dp.no_fallback = p->no_fallback;
	s->dp.cancel = p->cancel;
	s->dp.cancel_user_data = p->cancel_user_data;
	s->dp.progress = decode_progress;
	s->dp.progress_user_data = s;
	if (p->prompt && *p->prompt) {
		const int cap = wm->m->hp.n_text_ctx;
		s->prompt = malloc(sizeof(int32_t) * (size_t)cap);
		if (!s->prompt) {
			rc = HARK_ERR_NOMEM;
			goto fail;
		}
		int n = 0;
		rc = hark_wvocab_encode(wm->v, p->prompt, s->prompt, cap, &n);
		if (rc && rc != HARK_ERR_LIMIT) {
			snprintf(err, errlen, "cannot tokenize the prompt");
			goto fail;
		}
		s->n_prompt = n < cap ? n : cap;
		s->dp.prompt_tokens = s->prompt;
		s->dp.n_prompt_tokens = s->n_prompt;
	}
	s->pool = hark_tpool_new(p->n_threads > 0 ? p->n_threads : 1);
	if (!s->pool) {
		rc = HARK_ERR_NOMEM;
		goto fail;
	}
	if ((rc = hark_wmel_new(wm->m->hp.n_mels, wm->m->filters, &s->mel))) {
		snprintf(err, errlen, "cannot create the mel state");
		goto fail;
	}
	if ((rc = hark_wnet_new(wm->m, hark_wdecode_slots(&s->dp), s->pool, &s->net, err, errlen)))
		goto fail;
	*state = s;
	return HARK_OK;
fail:
	state_free(s);
	return rc;
}

static int feed(void *state, const float *pcm, size_t n, char *err, size_t errlen)
{
	struct wh_state *s = state;
	if (s->failed) {
		snprintf(err, errlen, "feed after a failed call");
		return HARK_ERR_INVALID_ARG;
	}
	if (s->p.cancel && s->p.cancel(s->p.cancel_user_data))
		return HARK_ERR_CANCELED;
	int rc = hark_wmel_feed(s->mel, pcm, n);
	if (rc) {
		if (rc == HARK_ERR_LIMIT)
			snprintf(err, errlen, "audio longer than the Whisper engine's limit (24 h)");
		else if (*hark_wmel_error(s->mel))
			snprintf(err, errlen, "%s", hark_wmel_error(s->mel));
		else
			snprintf(err, errlen, "cannot compute the spectrogram");
		s->failed = 1;
	}
	return rc;
}

/* whisper.cpp's voice_length(): a rough pronunciation cost of token text. */
static float voice_length(const char *t, size_t n)
{
	float res = 0.0f;
	for (size_t i = 0; i < n; i++) {
		const char c = t[i];
		if (c == ' ')
			res += 0.01f;
		else if (c == ',')
			res += 2.00f;
		else if (c == '.' || c == '!' || c == '?' || (c >= '0' && c <= '9'))
			res += 3.00f;
		else
			res += 1.00f;
	}
	return res;
}

#define WH_MAX_TOK 512

/*
 * Token times (10 ms units) by whisper.cpp's whisper_exp_compute_token_level_
 * timestamps heuristic, without its final energy-based (VAD) adjustment,
 * which needs the PCM the engine does not keep: tokens whose timestamp
 * probability is confident anchor boundaries, the gaps are split in
 * proportion to voice_length(). t_beg/t_last/tid_last carry over between
 * segments as in whisper.cpp.
 */
static void token_times(struct wh_state *s, const struct hark_wsegment *sg, int64_t t0, int64_t t1, int64_t *a,
			int64_t *b)
{
	const struct hark_wspecial *sp = &s->model->m->sp;
	const int n = sg->n_tokens < WH_MAX_TOK ? sg->n_tokens : WH_MAX_TOK;
	float vlen[WH_MAX_TOK];
	if (n == 0)
		return;
	if (n == 1) {
		a[0] = t0;
		b[0] = t1;
		return;
	}
	for (int j = 0; j < n; j++)
		a[j] = b[j] = -1;
	for (int j = 0; j < n; j++) {
		const struct hark_wtoken *tk = &sg->tokens[j];
		if (j == 0) {
			if (tk->id == sp->beg) {
				a[0] = t0;
				b[0] = t0;
				a[1] = t0;
				s->t_beg = t0;
				s->t_last = t0;
				s->tid_last = sp->beg;
			} else {
				a[0] = s->t_last;
			}
		}
		const int64_t tt = s->t_beg + 2 * (int64_t)(tk->tid - sp->beg);
		size_t l = 0;
		const char *txt = hark_wvocab_token(s->model->v, tk->id, &l);
		vlen[j] = txt ? voice_length(txt, l) : 0.0f;
		if (tk->pt > 0.01f && tk->ptsum > 0.01f && tk->tid > s->tid_last && tt <= t1) {
			if (j > 0)
				b[j - 1] = tt;
			a[j] = tt;
			s->tid_last = tk->tid;
		}
	}
	b[n - 2] = t1;
	a[n - 1] = t1;
	b[n - 1] = t1;
	s->t_last = t1;
	int p0 = 0, p1 = 0;
	for (;;) {
		while (p1 < n && b[p1] < 0)
			p1++;
		if (p1 >= n)
			p1--;
		if (p1 > p0) {
			double psum = 0.0;
			for (int j = p0; j <= p1; j++)
				psum += vlen[j];
			const double dt = (double)(b[p1] - a[p0]);
			for (int j = p0 + 1; j <= p1; j++) {
				const double ct = (double)a[j - 1] + (psum > 0 ? dt * vlen[j - 1] / psum : 0.0);
				b[j - 1] = (int64_t)ct;
				a[j] = (int64_t)ct;
			}
		}
		p1++;
		p0 = p1;
		if (p1 >= n)
			break;
	}
	for (int j = 0; j < n - 1; j++) {
		if (b[j] < 0)
			a[j + 1] = b[j];
		if (j > 0 && b[j - 1] > a[j]) {
			a[j] = b[j - 1];
			if (b[j] < a[j])
				b[j] = a[j];
		}
	}
}

/* Words: text tokens merged at a leading space; a word spans its tokens'
 * times (token_times), clamped to the segment; probability = mean token p. */
static int add_words(struct wh_state *s, struct hark_transcript *t, const struct hark_wsegment *sg, int64_t t0,
		     int64_t t1, double start, double end)
{
	const struct hark_wspecial *sp = &s->model->m->sp;
	int64_t ta[WH_MAX_TOK], tb[WH_MAX_TOK];
	const int n = sg->n_tokens < WH_MAX_TOK ? sg->n_tokens : WH_MAX_TOK;
	token_times(s, sg, t0, t1, ta, tb);
	char word[1024];
	size_t wl = 0;
	double wstart = start, wend = start, psum = 0;
	int pn = 0;
	for (int i = 0; i <= n; i++) {
		const char *b = NULL;
		size_t l = 0;
		const int is_text = i < n && sg->tokens[i].id < sp->eot;
		if (is_text)
			b = hark_wvocab_token(s->model->v, sg->tokens[i].id, &l);
		const int boundary = i == n || (is_text && l > 0 && b[0] == ' ');
		if (boundary && wl > 0) {
			word[wl] = 0;
			if (wstart < start)
				wstart = start;
			if (wend > end)
				wend = end;
			if (wend < wstart)
				wend = wstart;
			int rc = hark_transcript_add_word(t, word, wstart, wend, pn ? (float)(psum / pn) : 0.0f);
			if (rc)
				return rc;
			wl = 0;
			psum = 0;
			pn = 0;
		}
		if (!is_text)
			continue;
		if (wl == 0)
			wstart = (double)ta[i] * 0.01;
		wend = (double)tb[i] * 0.01;
		if (wl + l < sizeof(word)) {
			memcpy(word + wl, b, l);
			wl += l;
		}
		psum += sg->tokens[i].p;
		pn++;
	}
	return HARK_OK;
}

static int finish(void *state, struct hark_transcript *out, char *err, size_t errlen)
{
	struct wh_state *s = state;
	struct hark_wresult res;
	memset(&res, 0, sizeof(res));
	int32_t *ids = NULL;
	int rc;
	if (errlen)
		err[0] = 0;
	if (s->failed) {
		snprintf(err, errlen, "finish after a failed call");
		return HARK_ERR_INVALID_ARG;
	}
	if ((rc = hark_wmel_finish(s->mel))) {
		if (*hark_wmel_error(s->mel))
			snprintf(err, errlen, "%s", hark_wmel_error(s->mel));
		else
			snprintf(err, errlen, "cannot finish the spectrogram");
		goto out;
	}
	if ((rc = hark_wdecode_run(s->model->m, s->model->v, s->net, s->mel, &s->dp, &res, err, errlen)))
		goto out;
	for (size_t i = 0; i < res.n_segs; i++) {
		const struct hark_wsegment *sg = &res.segs[i];
		const int64_t t0 = sg->no_timestamps ? sg->window_seek : sg->t0;
		double start = (double)t0 * 0.01;
		double end = (double)sg->t1 * 0.01;
		if (start < 0)
			start = 0;
		if (end < start)
			end = start;
		free(ids);
		ids = malloc(sizeof(int32_t) * (size_t)(sg->n_tokens > 0 ? sg->n_tokens : 1));
		if (!ids) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		for (int k = 0; k < sg->n_tokens; k++)
			ids[k] = sg->tokens[k].id;
		rc = hark_transcript_add_segment(out, start, end, sg->text, ids, (size_t)sg->n_tokens, sg->avg_logprob,
						 sg->no_speech_prob, sg->temperature, 0.0f);
		if (rc)
			goto out;
		if (s->p.word_timestamps && (rc = add_words(s, out, sg, t0, sg->t1, start, end)))
			goto out;
	}
	const char *lang = hark_wvocab_lang_code(res.lang_id);
	if ((rc = hark_transcript_finalize_text(out)) ||
	    (rc = hark_transcript_set_str(&out->language, lang ? lang : "en")))
		goto out;
out:
	if (rc && rc != HARK_ERR_CANCELED && errlen && !err[0])
		snprintf(err, errlen, "whisper decoding failed: %s", hark_strerror(rc));
	if (rc)
		s->failed = 1;
	free(ids);
	hark_wresult_clear(&res);
	return rc;
}

const struct hark_engine_ops hark_engine_whisper = {
	.name = "whisper",
	.model_load = model_load,
	.model_free = model_free,
	.model_name = model_name,
	.version = version,
	.state_new = state_new,
	.feed = feed,
	.finish = finish,
	.state_free = state_free,
};
