/*
 * PocketSphinx engine (Debian's pocketsphinx 0.8+5prealpha API: ps_decoder_t,
 * cmd_ln_t, ps_process_raw, ps_seg_*). Sharing: in this library version the
 * acoustic model, dictionary and language model belong to one ps_decoder_t
 * and the LM trie keeps mutable lookup caches, so decoders cannot share them.
 * A ps_init() costs about 0.65 s and 93 MB (measured on the en-us model), so
 * the model object holds the resolved and validated file paths plus a small
 * pool of ready decoders: model_load() builds one decoder (which proves the
 * files load), state_new() checks a decoder out of the pool (the pool mutex
 * guards only checkout/return, never decoding) or creates a fresh one when
 * the pool is empty, and state_free() resets it and returns it (up to
 * PS_POOL_MAX idle decoders). A returned decoder is fully reset (new stream,
 * cepstral mean re-initialised) so results never depend on reuse. Because
 * PocketSphinx exit()s on many corrupt-file errors, model_load() first loads
 * the directory in a forked child (so load costs about two ps_init()s).
 * Accepted model layout (path, $HARK_PS_MODEL, or HARK_PS_MODELDIR/en-us):
 * a directory holding one acoustic-model subdirectory (the one with an
 * `mdef` file, e.g. `en-us/`), a `*.lm.bin` language model (`<am>.lm.bin`
 * preferred; `*-phone.lm.bin` ignored) and a `*.dict` pronunciation
 * dictionary. Long audio is cut into utterances the way
 * pocketsphinx_continuous does it: the front end's voice-activity detector
 * (ps_get_in_speech) ends an utterance at silence, plus a hard 30 s cap.
 * Each utterance becomes one hark segment. Word times come from ps_seg_frames
 * (100 frames/s, absolute from the stream start). Scores: a word's
 * probability is its lattice posterior (logmath_exp of ps_seg_prob); a
 * segment's avg_logprob is the mean natural-log posterior of its words; its
 * no_speech_prob is the fraction of its frames aligned to silence/noise
 * fillers. Cepstral mean: instead of the model's fixed -cmninit guess, the
 * first PS_CMN_WARM_S seconds of audio are buffered, their speech frames'
 * mean cepstrum (same front end, VAD on) seeds the live CMN, then decoding
 * runs over the buffered and subsequent audio.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pocketsphinx.h>
#include <sphinxbase/ckd_alloc.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/err.h>
#include <sphinxbase/fe.h>
#include <sphinxbase/feat.h>

#include "asr/engine.h"
#include "asr/kws.h"
#include "format/transcript.h"

#ifndef HARK_PS_MODELDIR
#define HARK_PS_MODELDIR "/usr/share/pocketsphinx/model"
#endif

#define PS_POOL_MAX 4
#define PS_CHUNK 2048                  /* samples per ps_process_raw call */
#define PS_UTT_MAX_S 30.0              /* hard cap on one utterance */
#define PS_CMN_WARM_S 10.0             /* audio used to seed the cepstral mean */
#define PS_MAX_CEP 64
#define PS_MAX_WORD 256                /* bytes per word */

struct ps_model {
	char *dir;
	char *hmm;
	char *lm;
	char *dict;
	char name[64];
	pthread_mutex_t lock;           /* guards pool only */
	ps_decoder_t *pool[PS_POOL_MAX];
	int n_pool;
};

struct ps_state {
	struct ps_model *m;
	ps_decoder_t *ps;
	const struct hark_engine_run_params *p;
	int16_t chunk[PS_CHUNK];
	size_t n_chunk;
	int16_t *warm;                  /* CMN warm-up buffer (NULL once done) */
	size_t n_warm, cap_warm;
	uint64_t n_decoded;             /* samples given to ps_process_raw */
	int own_decoder;                /* free (not pool) the decoder: kws */
	float cmninit[PS_MAX_CEP];      /* model's default cepstral mean */
	int n_cep;
	double last_progress;
	int in_utt;                     /* ps_start_utt called */
	int utt_speech;                 /* VAD saw speech in this utterance */
	uint64_t utt_speech_at;         /* sample count when speech began */
	struct hark_transcript *acc;    /* segments and words so far */
	int failed;
};

/* ---- logging ----------------------------------------------------------- */

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void log_setup(void)
{
	/* sphinxbase logs every step to stderr; keep it for debugging only. */
	if (!getenv("HARK_PS_DEBUG"))
		err_set_logfp(NULL);
}

/* ---- model paths --------------------------------------------------------- */

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_readable_file(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, R_OK) == 0;
}

static char *join(const char *a, const char *b)
{
	char *s = NULL;
	if (asprintf(&s, "%s/%s", a, b) < 0)
		return NULL;
	return s;
}

static int ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);
	return n >= k && strcmp(s + n - k, suf) == 0;
}

/* Finds the acoustic model subdir, LM and dictionary inside dir. */
static int resolve_layout(struct ps_model *m, char *err, size_t errlen)
{
	DIR *d = opendir(m->dir);
	struct dirent *e;
	char *lm_any = NULL;
	int rc = HARK_OK;

	if (!d) {
		snprintf(err, errlen, "cannot open PocketSphinx model directory %s: %s",
			 m->dir, strerror(errno));
		return HARK_ERR_MODEL;
	}
	while ((e = readdir(d)) != NULL) {
		char *full;
		if (e->d_name[0] == '.')
			continue;
		full = join(m->dir, e->d_name);
		if (!full) {
			rc = HARK_ERR_NOMEM;
			break;
		}
		if (is_dir(full)) {
			char *mdef = join(full, "mdef");
			if (mdef && is_readable_file(mdef) &&
			    (!m->hmm || strcmp(e->d_name, "en-us") == 0)) {
				free(m->hmm);
				m->hmm = full;
				full = NULL;
			}
			free(mdef);
		} else if (ends_with(e->d_name, ".lm.bin") &&
			   !ends_with(e->d_name, "-phone.lm.bin") && is_readable_file(full)) {
			if (!lm_any || strcmp(e->d_name, lm_any) < 0) {
				free(lm_any);
				lm_any = strdup(e->d_name);
			}
		} else if (ends_with(e->d_name, ".dict") && is_readable_file(full)) {
			if (!m->dict || strstr(e->d_name, "cmudict")) {
				free(m->dict);
				m->dict = full;
				full = NULL;
			}
		}
		free(full);
	}
	closedir(d);
	if (rc)
		goto out;
	if (!m->hmm) {
		snprintf(err, errlen, "no acoustic model (a subdirectory with an mdef file) in %s",
			 m->dir);
		rc = HARK_ERR_MODEL;
		goto out;
	}
	/* Prefer <am>.lm.bin next to the acoustic model directory. */
	{
		const char *am = strrchr(m->hmm, '/') + 1;
		char *pref = NULL;
		if (asprintf(&pref, "%s/%s.lm.bin", m->dir, am) < 0) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		if (is_readable_file(pref)) {
			m->lm = pref;
		} else {
			free(pref);
			if (lm_any)
				m->lm = join(m->dir, lm_any);
		}
		snprintf(m->name, sizeof m->name, "%s", am);
	}
	if (!m->lm) {
		snprintf(err, errlen, "no readable *.lm.bin language model in %s", m->dir);
		rc = HARK_ERR_MODEL;
		goto out;
	}
	if (!m->dict) {
		snprintf(err, errlen, "no readable *.dict pronunciation dictionary in %s", m->dir);
		rc = HARK_ERR_MODEL;
		goto out;
	}
out:
	free(lm_any);
	return rc;
}

/* Builds a decoder on m: with its language model, or (with_lm 0) with no
 * search selected, for keyword spotting. */
static int decoder_new(const struct ps_model *m, int with_lm, ps_decoder_t **out,
		       char *err, size_t errlen)
{
	cmd_ln_t *cfg;
	ps_decoder_t *ps;

	*out = NULL;
	if (with_lm)
		cfg = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", m->hmm, "-lm", m->lm,
				  "-dict", m->dict, NULL);
	else
		cfg = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", m->hmm, "-dict", m->dict, NULL);
	if (!cfg) {
		snprintf(err, errlen, "PocketSphinx rejected its configuration");
		return HARK_ERR_ENGINE;
	}
	ps = ps_init(cfg);
	cmd_ln_free_r(cfg);  /* the decoder keeps its own reference */
	if (!ps) {
		snprintf(err, errlen, "PocketSphinx could not load the model in %s "
			 "(acoustic model, dictionary or language model unreadable or corrupt)",
			 m->dir);
		return HARK_ERR_MODEL;
	}
	*out = ps;
	return HARK_OK;
}

/* PocketSphinx calls exit() (E_FATAL) on many corrupt-file errors, so the
 * first load of a model directory happens in a child process: only when it
 * loads there is it loaded in this process. */
static int validate_in_child(const struct ps_model *m, int with_lm, char *err, size_t errlen)
{
	int status = 0;
	pid_t pid = fork();

	if (pid < 0) {
		snprintf(err, errlen, "cannot check the PocketSphinx model: fork: %s",
			 strerror(errno));
		return HARK_ERR_MODEL;
	}
	if (pid == 0) {
		char e[8];
		ps_decoder_t *ps = NULL;
		int rc = decoder_new(m, with_lm, &ps, e, sizeof e);
		_exit(rc == HARK_OK ? 0 : 3);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(err, errlen, "cannot check the PocketSphinx model: waitpid: %s",
				 strerror(errno));
			return HARK_ERR_MODEL;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, errlen, "PocketSphinx could not load the model in %s (acoustic "
			 "model, dictionary or language model corrupt or incompatible)", m->dir);
		return HARK_ERR_MODEL;
	}
	return HARK_OK;
}

/* Parses the decoder's -cmninit ("41.00,-5.29,...", the model's fixed
 * guess from feat.params) into v; returns the count. */
static int read_cmninit(ps_decoder_t *ps, float *v)
{
	const char *s = cmd_ln_str_r(ps_get_config(ps), "-cmninit");
	char *end;
	int n = 0;

	while (s && *s && n < PS_MAX_CEP) {
		float x = strtof(s, &end);
		if (end == s)
			break;
		v[n++] = x;
		while (*end == ',' || *end == ' ')
			end++;
		s = end;
	}
	return n;
}

static void model_free(void *model)
{
	struct ps_model *m = model;
	if (!m)
		return;
	for (int i = 0; i < m->n_pool; i++)
		ps_free(m->pool[i]);
	pthread_mutex_destroy(&m->lock);
	free(m->dir);
	free(m->hmm);
	free(m->lm);
	free(m->dict);
	free(m);
}

/* Resolves and checks the model files; with_decoder also loads one decoder
 * into the pool (proving the files load). */
static int model_open(const char *path, int with_decoder, void **model, char *err,
		      size_t errlen)
{
	struct ps_model *m;
	ps_decoder_t *ps = NULL;
	int rc;

	*model = NULL;
	pthread_once(&log_once, log_setup);
	if (!path || !*path)
		path = getenv("HARK_PS_MODEL");
	m = calloc(1, sizeof *m);
	if (!m)
		return HARK_ERR_NOMEM;
	pthread_mutex_init(&m->lock, NULL);
	if (path && *path)
		m->dir = strdup(path);
	else
		m->dir = join(HARK_PS_MODELDIR, "en-us");
	if (!m->dir) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	if (!is_dir(m->dir)) {
		snprintf(err, errlen, "PocketSphinx model directory %s %s", m->dir,
			 access(m->dir, F_OK) == 0 ? "is not a directory" : "does not exist");
		rc = HARK_ERR_MODEL;
		goto out;
	}
	rc = resolve_layout(m, err, errlen);
	if (rc)
		goto out;
	rc = validate_in_child(m, with_decoder, err, errlen);
	if (rc)
		goto out;
	if (with_decoder) {
		rc = decoder_new(m, 1, &ps, err, errlen);
		if (rc)
			goto out;
		m->pool[m->n_pool++] = ps;
	}
	*model = m;
out:
	if (rc)
		model_free(m);
	return rc;
}

static int model_load(const char *path, void **model, char *err, size_t errlen)
{
	return model_open(path, 1, model, err, errlen);
}

int hark_kws_ps_model_load(const char *path, void **model, char *err, size_t errlen)
{
	return model_open(path, 0, model, err, errlen);
}

static const char *model_name(const void *model)
{
	const struct ps_model *m = model;
	return m->name;
}

static const char *version(void)
{
	return "pocketsphinx 5prealpha";
}

/* float in [-1, 1] -> int16, clipped; NaN -> 0. */
int16_t hark_kws_pcm16(float x)
{
	float v = x * 32768.0f;
	if (!(v > -32768.0f))  /* also maps NaN */
		return v != v ? 0 : -32768;
	if (v > 32767.0f)
		return 32767;
	return (int16_t)lrintf(v);
}

/* ---- per-run state --------------------------------------------------------- */

/* Seeds the decoder's live cepstral mean with mean (or the model default). */
static void cmn_seed(ps_decoder_t *ps, const float *mean, int n)
{
	feat_t *feat = ps_get_feat(ps);
	cmn_t *c = feat ? feat->cmn_struct : NULL;
	if (!c)
		return;
	for (int i = 0; i < c->veclen; i++) {
		float v = i < n ? mean[i] : 0.0f;
		c->cmn_mean[i] = v;
		c->sum[i] = v * CMN_WIN;
	}
	c->nframe = CMN_WIN;
}

/* Mean cepstrum of the speech frames in pcm (a front end configured like
 * ps's, voice-activity detection on). Returns the number of frames averaged
 * (0: under 0.5 s of speech, too noisy an estimate; keep the default). */
static int cmn_estimate(ps_decoder_t *ps, const int16_t *pcm, size_t n, float *mean, int ncep)
{
	fe_t *fe = fe_init_auto_r(ps_get_config(ps));
	mfcc_t buf[64][PS_MAX_CEP];
	mfcc_t *rows[64];
	double sum[PS_MAX_CEP] = {0};
	long used = 0;
	const int16_t *p = pcm;
	size_t left = n;

	if (!fe)
		return 0;
	if (fe_get_output_size(fe) != ncep) {
		fe_free(fe);
		return 0;
	}
	for (int i = 0; i < 64; i++)
		rows[i] = buf[i];
	fe_start_utt(fe);
	for (int final = 0; final < 2; final++) {
		for (;;) {
			int32 nfr = 64;
			if (final) {
				nfr = 0;
				fe_end_utt(fe, rows[0], &nfr);
			} else {
				if (left == 0)
					break;
				if (fe_process_frames(fe, &p, &left, rows, &nfr, NULL) < 0)
					break;
			}
			for (int f = 0; f < nfr; f++) {
				if (rows[f][0] < 0)  /* zero-energy frame, as cmn_live */
					continue;
				for (int i = 0; i < ncep; i++)
					sum[i] += rows[f][i];
				used++;
			}
			if (final || (nfr == 0 && left == 0))
				break;
		}
	}
	fe_free(fe);
	if (used < 50)
		return 0;
	for (int i = 0; i < ncep; i++)
		mean[i] = (float)(sum[i] / used);
	return (int)used;
}

static int is_filler(const char *w)
{
	return w[0] == '<' || w[0] == '[' || strncmp(w, "++", 2) == 0;
}

/* Ends the current utterance and appends its segment and words to s->acc. */
static int utt_end(struct ps_state *s, char *err, size_t errlen)
{
	struct hark_transcript *t = s->acc;
	struct hark_segment *sg = NULL;
	ps_seg_t *it;
	logmath_t *lmath = ps_get_logmath(s->ps);
	int32 frate = cmd_ln_int32_r(ps_get_config(s->ps), "-frate");
	double lp_sum = 0;
	long filler_frames = 0, all_frames = 0;
	char *text = NULL;
	size_t text_len = 0;
	int rc = HARK_OK;

	if (!s->in_utt)
		return HARK_OK;
	s->in_utt = 0;
	if (ps_end_utt(s->ps) < 0) {
		snprintf(err, errlen, "PocketSphinx failed to end an utterance");
		return HARK_ERR_ENGINE;
	}
	if (!s->utt_speech)
		return HARK_OK;
	if (frate <= 0)
		frate = 100;
	for (it = ps_seg_iter(s->ps); it; it = ps_seg_next(it)) {
		const char *w = ps_seg_word(it);
		char word[PS_MAX_WORD + 2];
		int sf, ef;
		int32 post;
		size_t len;
		char *nt;

		ps_seg_frames(it, &sf, &ef);
		if (ef < sf)
			ef = sf;
		all_frames += ef - sf + 1;
		if (!w || is_filler(w)) {
			filler_frames += ef - sf + 1;
			continue;
		}
		len = strlen(w);
		/* Strip the "(2)" alternate-pronunciation suffix. */
		if (len > 2 && w[len - 1] == ')') {
			const char *lp = strrchr(w, '(');
			if (lp && lp > w)
				len = (size_t)(lp - w);
		}
		if (len > PS_MAX_WORD)
			len = PS_MAX_WORD;
		word[0] = ' ';
		memcpy(word + 1, w, len);
		word[len + 1] = 0;
		if (!sg) {
			rc = hark_transcript_add_segment(t, (double)sf / frate, (double)(ef + 1) / frate,
							 "", NULL, 0, 0.0f, 0.0f, 0.0f, 0.0f);
			if (rc)
				goto out;
			sg = &t->segments[t->n_segments - 1];
		}
		post = ps_seg_prob(it, NULL, NULL, NULL);
		rc = hark_transcript_add_word(t, word, (double)sf / frate, (double)(ef + 1) / frate,
					      (float)logmath_exp(lmath, post));
		if (rc)
			goto out;
		sg = &t->segments[t->n_segments - 1];
		sg->end = (double)(ef + 1) / frate;
		lp_sum += logmath_log_to_ln(lmath, post);
		nt = realloc(text, text_len + len + 2);
		if (!nt) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		text = nt;
		memcpy(text + text_len, text_len ? word : word + 1, text_len ? len + 1 : len);
		text_len += text_len ? len + 1 : len;
		text[text_len] = 0;
	}
	if (sg) {
		sg->avg_logprob = (float)(lp_sum / (double)sg->n_words);
		sg->no_speech_prob = all_frames > 0 ? (float)filler_frames / (float)all_frames : 0.0f;
		rc = hark_transcript_set_str(&sg->text, text);
	}
out:
	if (it)
		ps_seg_free(it);
	free(text);
	if (rc)
		snprintf(err, errlen, "cannot store the transcript: %s", hark_strerror(rc));
	return rc;
}

static int utt_begin(struct ps_state *s, char *err, size_t errlen)
{
	if (ps_start_utt(s->ps) < 0) {
		snprintf(err, errlen, "PocketSphinx failed to start an utterance");
		return HARK_ERR_ENGINE;
	}
	s->in_utt = 1;
	s->utt_speech = 0;
	return HARK_OK;
}

/* Decodes n samples (n <= PS_CHUNK) and applies VAD utterance splitting. */
static int decode_chunk(struct ps_state *s, const int16_t *pcm, size_t n, char *err,
			size_t errlen)
{
	int rc;
	uint8 in_speech;

	if (s->p && s->p->cancel && s->p->cancel(s->p->cancel_user_data))
		return HARK_ERR_CANCELED;
	if (!s->in_utt && (rc = utt_begin(s, err, errlen)))
		return rc;
	if (ps_process_raw(s->ps, pcm, n, FALSE, FALSE) < 0) {
		snprintf(err, errlen, "PocketSphinx failed to process audio");
		return HARK_ERR_ENGINE;
	}
	s->n_decoded += n;
	in_speech = ps_get_in_speech(s->ps);
	if (in_speech && !s->utt_speech) {
		s->utt_speech = 1;
		s->utt_speech_at = s->n_decoded;
	}
	if (s->utt_speech &&
	    (!in_speech ||
	     (double)(s->n_decoded - s->utt_speech_at) / HARK_SAMPLE_RATE >= PS_UTT_MAX_S)) {
		if ((rc = utt_end(s, err, errlen)))
			return rc;
	}
	if (s->p && s->p->progress) {
		double done = (double)s->n_decoded / HARK_SAMPLE_RATE;
		if (done - s->last_progress >= 0.5) {
			double frac = s->p->total_s > 0 ? done / s->p->total_s : 0.0;
			s->last_progress = done;
			s->p->progress(frac > 1.0 ? 1.0 : frac, done, s->p->progress_user_data);
		}
	}
	return HARK_OK;
}

/* Runs the CMN estimate on the warm-up buffer, then decodes it. */
static int warm_flush(struct ps_state *s, char *err, size_t errlen)
{
	float mean[PS_MAX_CEP];
	int ncep = s->n_cep;
	int rc = HARK_OK;

	if (!s->warm)
		return HARK_OK;
	if (!getenv("HARK_PS_NO_CMN_WARM") &&
	    cmn_estimate(s->ps, s->warm, s->n_warm, mean, ncep) > 0)
		cmn_seed(s->ps, mean, ncep);
	for (size_t off = 0; off < s->n_warm && !rc; off += PS_CHUNK) {
		size_t k = s->n_warm - off < PS_CHUNK ? s->n_warm - off : PS_CHUNK;
		if (k < PS_CHUNK) {
			/* keep chunk alignment: the tail goes to the chunk buffer */
			memcpy(s->chunk, s->warm + off, k * sizeof *s->chunk);
			s->n_chunk = k;
			break;
		}
		rc = decode_chunk(s, s->warm + off, k, err, errlen);
	}
	free(s->warm);
	s->warm = NULL;
	return rc;
}

static void state_free(void *state)
{
	struct ps_state *s = state;
	if (!s)
		return;
	if (s->ps) {
		int pooled = 0;
		if (s->in_utt)
			ps_end_utt(s->ps);
		pthread_mutex_lock(&s->m->lock);
		if (!s->own_decoder && s->m->n_pool < PS_POOL_MAX) {
			s->m->pool[s->m->n_pool++] = s->ps;
			pooled = 1;
		}
		pthread_mutex_unlock(&s->m->lock);
		if (!pooled)
			ps_free(s->ps);
	}
	hark_transcript_free(s->acc);
	free(s->warm);
	free(s);
}

/* Wraps decoder ps (NULL: check one out of m's pool or build one). */
static int state_create(struct ps_model *m, ps_decoder_t *ps, int own,
			const struct hark_engine_run_params *p, void **state, char *err,
			size_t errlen)
{
	struct ps_state *s;
	int rc = HARK_OK;

	*state = NULL;
	s = calloc(1, sizeof *s);
	if (!s) {
		if (ps && own)
			ps_free(ps);
		return HARK_ERR_NOMEM;
	}
	s->m = m;
	s->p = p;
	s->ps = ps;
	s->own_decoder = own;
	if (!s->ps) {
		pthread_mutex_lock(&m->lock);
		if (m->n_pool > 0)
			s->ps = m->pool[--m->n_pool];
		pthread_mutex_unlock(&m->lock);
	}
	if (!s->ps && (rc = decoder_new(m, 1, &s->ps, err, errlen)))
		goto out;
	if ((rc = hark_transcript_new(&s->acc)))
		goto out;
	/* Fresh stream: frame clock, noise statistics and cepstral mean. */
	ps_start_stream(s->ps);
	s->n_cep = read_cmninit(s->ps, s->cmninit);
	cmn_seed(s->ps, s->cmninit, s->n_cep);
	s->cap_warm = (size_t)(PS_CMN_WARM_S * HARK_SAMPLE_RATE);
	s->warm = malloc(s->cap_warm * sizeof *s->warm);
	if (!s->warm) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	*state = s;
out:
	if (rc)
		state_free(s);
	return rc;
}

static int state_new(void *model, const struct hark_engine_run_params *p, void **state,
		     char *err, size_t errlen)
{
	return state_create(model, NULL, 0, p, state, err, errlen);
}

int hark_kws_ps_state_new(void *model, const char *const *phrases, const double *thresholds,
			  size_t n, const struct hark_engine_run_params *p, void **state,
			  char *err, size_t errlen)
{
	struct ps_model *m = model;
	ps_decoder_t *ps = NULL;
	char path[] = "/tmp/hark-kws-XXXXXX";
	int fd = -1;
	FILE *f = NULL;
	int rc;

	*state = NULL;
	if (!m || !phrases || n == 0) {
		snprintf(err, errlen, "no keywords given");
		return HARK_ERR_INVALID_ARG;
	}
	if ((rc = decoder_new(m, 0, &ps, err, errlen)))
		return rc;
	/* Every word of every phrase must have a pronunciation. */
	for (size_t i = 0; i < n; i++) {
		char buf[512];
		char *save = NULL, *tok;
		snprintf(buf, sizeof buf, "%s", phrases[i]);
		for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			char *pron = ps_lookup_word(ps, tok);
			if (!pron) {
				if (strcmp(tok, phrases[i]) == 0)
					snprintf(err, errlen, "keyword \"%s\" is not in the "
						 "pronunciation dictionary", tok);
				else
					snprintf(err, errlen, "keyword \"%s\": \"%s\" is not in "
						 "the pronunciation dictionary", phrases[i], tok);
				rc = HARK_ERR_INVALID_ARG;
				goto out;
			}
			ckd_free(pron);
		}
	}
	fd = mkstemp(path);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		snprintf(err, errlen, "cannot write the keyword list: %s", strerror(errno));
		rc = HARK_ERR_IO;
		goto out;
	}
	fd = -1;
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s /%.6g/\n", phrases[i], thresholds[i]);
	if (fclose(f) != 0) {
		f = NULL;
		snprintf(err, errlen, "cannot write the keyword list");
		rc = HARK_ERR_IO;
		goto out;
	}
	f = NULL;
	if (ps_set_kws(ps, "kws", path) < 0 || ps_set_search(ps, "kws") < 0) {
		snprintf(err, errlen, "PocketSphinx rejected the keyword list");
		rc = HARK_ERR_ENGINE;
		goto out;
	}
	rc = state_create(m, ps, 1, p, state, err, errlen);
	ps = NULL;  /* owned by the state now (freed there on error) */
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	unlink(path);
	if (ps)
		ps_free(ps);
	return rc;
}

static int feed(void *state, const float *pcm, size_t n, char *err, size_t errlen)
{
	struct ps_state *s = state;
	int rc = HARK_OK;

	if (s->failed) {
		snprintf(err, errlen, "feed after a failed call");
		return HARK_ERR_INVALID_ARG;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		int16_t v = hark_kws_pcm16(pcm[i]);
		if (s->warm) {
			s->warm[s->n_warm++] = v;
			if (s->n_warm == s->cap_warm)
				rc = warm_flush(s, err, errlen);
			continue;
		}
		s->chunk[s->n_chunk++] = v;
		if (s->n_chunk == PS_CHUNK) {
			s->n_chunk = 0;
			rc = decode_chunk(s, s->chunk, PS_CHUNK, err, errlen);
		}
	}
	if (rc)
		s->failed = 1;
	return rc;
}

static int finish(void *state, struct hark_transcript *out, char *err, size_t errlen)
{
	struct ps_state *s = state;
	int rc;

	if (s->failed) {
		snprintf(err, errlen, "finish after a failed call");
		return HARK_ERR_INVALID_ARG;
	}
	if ((rc = warm_flush(s, err, errlen)))
		goto out;
	if (s->n_chunk > 0) {
		rc = decode_chunk(s, s->chunk, s->n_chunk, err, errlen);
		s->n_chunk = 0;
		if (rc)
			goto out;
	}
	if ((rc = utt_end(s, err, errlen)))
		goto out;
	if (s->p && s->p->progress) {
		double done = (double)s->n_decoded / HARK_SAMPLE_RATE;
		s->p->progress(s->p->total_s > 0 ? 1.0 : 0.0, done, s->p->progress_user_data);
	}
	if ((rc = hark_transcript_append(out, s->acc, 0.0)) ||
	    (rc = hark_transcript_finalize_text(out)) ||
	    (rc = hark_transcript_set_str(&out->language, "en")))
		snprintf(err, errlen, "cannot build the transcript: %s", hark_strerror(rc));
out:
	if (rc)
		s->failed = 1;
	return rc;
}

const struct hark_engine_ops hark_engine_pocketsphinx = {
	.name = "pocketsphinx",
	.model_load = model_load,
	.model_free = model_free,
	.model_name = model_name,
	.version = version,
	.state_new = state_new,
	.feed = feed,
	.finish = finish,
	.state_free = state_free,
};
