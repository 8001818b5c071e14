/*
 * whisper_full_with_state, re-implemented (see wdecode.h). Control flow,
 * filters, float/double arithmetic and tie-breaking follow whisper.cpp
 * f0d2bfb: logits filters and log-softmax in float with sequential sums,
 * greedy argmax over probabilities, beam search drawing beam_size samples per
 * decoder from std::discrete_distribution driven by std::mt19937 (emulated
 * bit-exactly: libstdc++'s generate_canonical<double, 53> and cumulative
 * lower_bound), candidates ranked by summed log-probability, decoder ranking
 * by average log-probability with the entropy check, and segment cutting at
 * timestamp tokens.
 */
#include "asr/whisper/wdecode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"

#define MAX_DECODERS 8
#define CHUNK_FRAMES 3000 /* 30 s in 10 ms frames */
#define DELTA_MIN 10

struct hark_wdecode_params hark_wdecode_default_params(void)
{
	struct hark_wdecode_params p;
	memset(&p, 0, sizeof(p));
	p.language = "en";
	p.beam_size = 5;
	p.best_of = 5;
	p.temperature = 0.0f;
	p.temperature_inc = 0.2f;
	p.entropy_thold = 2.4f;
	p.logprob_thold = -1.0f;
	p.no_speech_thold = 0.6f;
	p.max_initial_ts = 1.0f;
	p.length_penalty = -1.0f;
	p.suppress_blank = 1;
	p.n_max_text_ctx = 16384;
	return p;
}

static int n_decoders_max(const struct hark_wdecode_params *p)
{
	int n = p->beam_size > 1 ? (p->best_of > p->beam_size ? p->best_of : p->beam_size) : p->best_of;
	if (n < 1)
		n = 1;
	return n;
}

int hark_wdecode_slots(const struct hark_wdecode_params *p)
{
	int n;
	if (p->no_fallback || p->temperature_inc <= 0.0f)
		n = p->beam_size > 1 ? p->beam_size : 1;
	else
		n = n_decoders_max(p);
	if (p->temperature > 0.0f && p->best_of > n)
		n = p->best_of;
	if (n < 1)
		n = 1;
	if (n > MAX_DECODERS)
		n = MAX_DECODERS;
	return n;
}

void hark_wresult_clear(struct hark_wresult *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_segs; i++) {
		free(r->segs[i].text);
		free(r->segs[i].tokens);
	}
	free(r->segs);
	memset(r, 0, sizeof(*r));
}

/* -------------------------------------------------------------- mt19937 -- */

struct mt19937 {
	uint32_t mt[624];
	int idx;
};

static void mt_seed(struct mt19937 *g, uint32_t s)
{
	g->mt[0] = s;
	for (int i = 1; i < 624; i++)
		g->mt[i] = 1812433253u * (g->mt[i - 1] ^ (g->mt[i - 1] >> 30)) + (uint32_t)i;
	g->idx = 624;
}

static uint32_t mt_next(struct mt19937 *g)
{
	if (g->idx >= 624) {
		for (int i = 0; i < 624; i++) {
			uint32_t y = (g->mt[i] & 0x80000000u) | (g->mt[(i + 1) % 624] & 0x7fffffffu);
			g->mt[i] = g->mt[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
		}
		g->idx = 0;
	}
	uint32_t y = g->mt[g->idx++];
	y ^= y >> 11;
	y ^= (y << 7) & 0x9d2c5680u;
	y ^= (y << 15) & 0xefc60000u;
	y ^= y >> 18;
	return y;
}

/* libstdc++ generate_canonical<double, 53>(mt19937): two draws. */
static double mt_canonical(struct mt19937 *g)
{
	const double r = 4294967296.0;
	double sum = (double)mt_next(g);
	sum += (double)mt_next(g) * r;
	double ret = sum / (r * r);
	if (ret >= 1.0)
		ret = nextafter(1.0, 0.0);
	return ret;
}

/* --------------------------------------------------------------- types -- */

struct seq {
	struct hark_wtoken *tok;
	int n, result_len;
	double sum_logprobs_all, sum_logprobs, avg_logprobs, entropy, score;
};

struct decoder {
	struct seq s;
	int seek_delta, failed, completed, has_ts;
	struct mt19937 rng;
	float *logits, *probs, *logprobs;
};

struct cand {
	int dec_idx, seek_delta, has_ts;
	struct seq s;
};

struct run {
	const struct hark_wmodel *m;
	const struct hark_wvocab *v;
	struct hark_wnet *net;
	const struct hark_wmel *mel;
	const struct hark_wdecode_params *p;
	int n_vocab, n_max, cap_tok;
	int no_timestamps;
	int32_t tok_space;
	struct decoder dec[MAX_DECODERS];
	struct cand *cands;
	int n_cands, cap_cands;
	struct hark_wtoken *cand_tok;
	double *cdf;
	float *scratch_lp;    /* [n_vocab] for no-speech */
	float *raw;           /* [n_vocab] raw logits */
	int32_t *prompt, *past, *tmp;
	int32_t *btok;
	int *bpos, *bseq;
	float *blogits;       /* [MAX_DECODERS][n_vocab] */
	int n_prompt, n_past;
	int entropy_ids[64];
};

static void seq_copy(struct seq *dst, const struct seq *src)
{
	struct hark_wtoken *keep = dst->tok;
	*dst = *src;
	dst->tok = keep;
	memcpy(dst->tok, src->tok, sizeof(*src->tok) * (size_t)src->n);
}

static int seq_equal(const struct seq *a, const struct seq *b)
{
	if (a->n != b->n)
		return 0;
	for (int i = a->n - 1; i >= 0; i--)
		if (a->tok[i].id != b->tok[i].id)
			return 0;
	return 1;
}

/* ------------------------------------------------------ logits handling -- */

/* whisper_compute_logprobs: float max, float sequential sum of expf. */
static void compute_logprobs(const float *logits, int n, float *logprobs)
{
	float mx = -INFINITY;
	for (int i = 0; i < n; i++)
		if (logits[i] > mx)
			mx = logits[i];
	float lse = 0.0f;
	for (int i = 0; i < n; i++)
		if (logits[i] > -INFINITY)
			lse += expf(logits[i] - mx);
	if (!(lse > 0.0f)) { /* every logit masked */
		for (int i = 0; i < n; i++)
			logprobs[i] = -INFINITY;
		return;
	}
	lse = logf(lse) + mx;
	for (int i = 0; i < n; i++)
		logprobs[i] = logits[i] > -INFINITY ? logits[i] - lse : -INFINITY;
}

static void compute_probs(const float *logits, int n, const float *logprobs, float *probs)
{
	for (int i = 0; i < n; i++)
		probs[i] = logits[i] == -INFINITY ? 0.0f : expf(logprobs[i]);
}

static const char *const nst_tokens[] = {
	"\"", "#", "(", ")", "*", "+", "/", ":", ";", "<", "=", ">", "@", "[", "\\", "]", "^",
	"_", "`", "{", "|", "}", "~", "\xe3\x80\x8c", "\xe3\x80\x8d", "\xe3\x80\x8e", "\xe3\x80\x8f",
	"<<", ">>", "<<<", ">>>", "--", "---", "-(", "-[", "('", "(\"", "((", "))", "(((", ")))",
	"[[", "]]", "{{", "}}", "\xe2\x99\xaa\xe2\x99\xaa", "\xe2\x99\xaa\xe2\x99\xaa\xe2\x99\xaa",
	"\xe2\x99\xa9", "\xe2\x99\xaa", "\xe2\x99\xab", "\xe2\x99\xac", "\xe2\x99\xad", "\xe2\x99\xae",
	"\xe2\x99\xaf",
};

/* token_to_id: the highest id whose bytes equal s (std::map assignment). */
static int32_t token_id_of(const struct hark_wmodel *m, const char *s, size_t len)
{
	int32_t found = -1;
	for (int32_t i = 0; i < m->n_tokens; i++)
		if (m->tok_len[i] == len && memcmp(m->tok_bytes[i], s, len) == 0)
			found = i;
	return found;
}

static void process_logits(struct run *R, struct decoder *d, const float *raw, float temperature, int seek)
{
	(void)seek;
	const struct hark_wspecial *sp = &R->m->sp;
	const int n = R->n_vocab;
	float *logits = d->logits, *logprobs = d->logprobs, *probs = d->probs;
	const int is_initial = d->s.n == 0;
	memcpy(logits, raw, sizeof(float) * (size_t)n);
	if (temperature > 0.0f)
		for (int i = 0; i < n; i++)
			logits[i] /= temperature;
	if (R->p->suppress_blank && is_initial) {
		logits[sp->eot] = -INFINITY;
		if (R->tok_space >= 0)
			logits[R->tok_space] = -INFINITY;
	}
	logits[sp->not_ts] = -INFINITY;
	if (R->no_timestamps)
		for (int i = sp->beg; i < n; i++)
			logits[i] = -INFINITY;
	logits[sp->sot] = -INFINITY;
	logits[sp->nosp] = -INFINITY;
	logits[sp->sot_lm] = -INFINITY;
	logits[sp->translate] = -INFINITY;
	logits[sp->transcribe] = -INFINITY;
	logits[sp->prev] = -INFINITY;
	for (int i = 0; i < HARK_WLANG_COUNT; i++) {
		const int id = sp->sot + 1 + i;
		if (id < n)
			logits[id] = -INFINITY;
	}
	if (R->p->suppress_nst) {
		char buf[32];
		for (size_t k = 0; k < sizeof(nst_tokens) / sizeof(nst_tokens[0]); k++) {
			const size_t l = strlen(nst_tokens[k]);
			int32_t id = token_id_of(R->m, nst_tokens[k], l);
			if (id >= 0)
				logits[id] = -INFINITY;
			buf[0] = ' ';
			memcpy(buf + 1, nst_tokens[k], l);
			id = token_id_of(R->m, buf, l + 1);
			if (id >= 0)
				logits[id] = -INFINITY;
		}
		int32_t id = token_id_of(R->m, " -", 2);
		if (id >= 0)
			logits[id] = -INFINITY;
		id = token_id_of(R->m, " '", 2);
		if (id >= 0)
			logits[id] = -INFINITY;
	}
	/* timestamps come in pairs, except directly before EOT */
	{
		const int nt = d->s.n;
		const int last_ts = nt > 0 && d->s.tok[nt - 1].id >= sp->beg;
		const int penult_ts = nt < 2 || d->s.tok[nt - 2].id >= sp->beg;
		if (last_ts) {
			if (penult_ts) {
				for (int i = sp->beg; i < n; i++)
					logits[i] = -INFINITY;
			} else {
				for (int i = 0; i < sp->eot; i++)
					logits[i] = -INFINITY;
			}
		}
	}
	if (is_initial && R->p->max_initial_ts > 0.0f) {
		const float precision = 30.0f / (float)R->m->hp.n_audio_ctx;
		const int tid0 = (int)roundf(R->p->max_initial_ts / precision);
		for (int i = sp->beg + tid0 + 1; i < n; i++)
			logits[i] = -INFINITY;
	}
	if (d->has_ts) {
		const int tid0 = d->seek_delta / 2;
		for (int i = sp->beg; i < sp->beg + tid0 && i < n; i++)
			logits[i] = -INFINITY;
	}
	compute_logprobs(logits, n, logprobs);
	{
		float ts_lp = -INFINITY;
		float lp_max = -INFINITY;
		for (int i = sp->beg; i < n; i++)
			if (logprobs[i] > lp_max)
				lp_max = logprobs[i];
		float lse = 0.0f;
		for (int i = sp->beg; i < n; i++)
			if (logprobs[i] > -INFINITY)
				lse += expf(logprobs[i] - lp_max);
		if (lse > 0.0f)
			ts_lp = logf(lse) + lp_max;
		float text_max = -INFINITY;
		for (int i = 0; i < sp->beg; i++)
			if (logprobs[i] > text_max)
				text_max = logprobs[i];
		if (ts_lp > text_max)
			for (int i = 0; i < sp->beg; i++) {
				logits[i] = -INFINITY;
				logprobs[i] = -INFINITY;
			}
	}
	compute_probs(logits, n, logprobs, probs);
}

/* Timestamp summary of whisper_sample_token(_topk): tid/pt/ptsum. */
static void ts_summary(const struct run *R, const float *probs, int32_t *tid, float *pt, float *ptsum)
{
	double sum_ts = 0.0, max_ts = 0.0;
	for (int i = R->m->sp.beg; i < R->n_vocab; i++) {
		sum_ts += probs[i];
		if (max_ts < probs[i]) {
			max_ts = probs[i];
			*tid = i;
		}
	}
	*pt = (float)(max_ts / (sum_ts + 1e-10));
	*ptsum = (float)sum_ts;
}

static void build_cdf(struct run *R, const float *probs)
{
	double sum = 0.0;
	for (int i = 0; i < R->n_vocab; i++)
		sum += (double)probs[i];
	double acc = 0.0;
	for (int i = 0; i < R->n_vocab; i++) {
		acc += (double)probs[i] / sum;
		R->cdf[i] = acc;
	}
	R->cdf[R->n_vocab - 1] = 1.0;
}

static int cdf_draw(struct run *R, struct mt19937 *g)
{
	const double u = mt_canonical(g);
	int lo = 0, hi = R->n_vocab;
	while (lo < hi) {
		const int mid = lo + (hi - lo) / 2;
		if (R->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < R->n_vocab ? lo : R->n_vocab - 1;
}

static struct hark_wtoken sample_token(struct run *R, struct decoder *d, int best)
{
	struct hark_wtoken t = {0, 0, 0.0f, 0.0f, 0.0f, 0.0f};
	ts_summary(R, d->probs, &t.tid, &t.pt, &t.ptsum);
	if (best) {
		for (int i = 0; i < R->n_vocab; i++)
			if (t.p < d->probs[i]) {
				t.id = i;
				t.p = d->probs[i];
				t.plog = d->logprobs[i];
			}
	} else {
		build_cdf(R, d->probs);
		t.id = cdf_draw(R, &d->rng);
		t.p = d->probs[t.id];
		t.plog = d->logprobs[t.id];
	}
	if (t.id >= R->m->sp.beg) {
		t.tid = t.id;
		t.pt = t.p;
	}
	return t;
}

/* whisper_sequence_score */
static void sequence_score(const struct run *R, struct seq *s)
{
	if (s->result_len == 0)
		return;
	double result = 0.0;
	for (int i = 0; i < s->result_len; i++)
		result += s->tok[i].plog;
	s->sum_logprobs = result;
	s->avg_logprobs = result / s->result_len;
	double penalty = s->result_len;
	if (R->p->length_penalty > 0.0f)
		penalty = pow((5.0 + penalty) / 6.0, R->p->length_penalty);
	s->score = result / penalty;
	/* entropy of the last 32 tokens, ids in ascending order (std::map) */
	int ids[32], cnt = 0;
	for (int i = s->result_len - 32 > 0 ? s->result_len - 32 : 0; i < s->result_len; i++)
		ids[cnt++] = s->tok[i].id;
	for (int i = 1; i < cnt; i++)
		for (int j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
			const int t = ids[j];
			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
	double entropy = 0.0;
	for (int i = 0; i < cnt;) {
		int j = i;
		while (j < cnt && ids[j] == ids[i])
			j++;
		const double pr = (j - i) / (double)cnt;
		entropy -= pr * log(pr);
		i = j;
	}
	s->entropy = entropy;
}

/* ------------------------------------------------------------ segments -- */

static int push_segment(struct hark_wresult *out, int64_t t0, int64_t t1, const char *text, size_t tlen,
			const struct hark_wtoken *tok, int ntok, float nsp, float temp, int64_t seek, int nots,
			int32_t eot)
{
	if (out->n_segs == out->cap_segs) {
		size_t nc = out->cap_segs ? out->cap_segs * 2 : 64;
		if (nc > 10000000)
			return HARK_ERR_LIMIT;
		struct hark_wsegment *ns = realloc(out->segs, sizeof(*ns) * nc);
		if (!ns)
			return HARK_ERR_NOMEM;
		out->segs = ns;
		out->cap_segs = nc;
	}
	struct hark_wsegment *s = &out->segs[out->n_segs];
	memset(s, 0, sizeof(*s));
	s->text = malloc(tlen + 1);
	s->tokens = malloc(sizeof(*tok) * (size_t)(ntok > 0 ? ntok : 1));
	if (!s->text || !s->tokens) {
		free(s->text);
		free(s->tokens);
		return HARK_ERR_NOMEM;
	}
	memcpy(s->text, text, tlen);
	s->text[tlen] = 0;
	s->text_len = tlen;
	memcpy(s->tokens, tok, sizeof(*tok) * (size_t)ntok);
	s->n_tokens = ntok;
	s->t0 = t0;
	s->t1 = t1;
	s->window_seek = seek;
	s->no_speech_prob = nsp;
	s->temperature = temp;
	s->no_timestamps = nots;
	double sum = 0.0;
	int cnt = 0;
	for (int i = 0; i < ntok; i++)
		if (tok[i].id < eot && tok[i].plog > -INFINITY) {
			sum += tok[i].plog;
			cnt++;
		}
	s->avg_logprob = cnt ? (float)(sum / cnt) : 0.0f;
	out->n_segs++;
	return HARK_OK;
}

/* Cuts the best sequence into segments (whisper_full's output block). */
static int emit_segments(struct run *R, struct hark_wresult *out, const struct seq *s, int seek, int seek_delta,
			 float nsp, float temp, char *text, size_t text_cap)
{
	const struct hark_wspecial *sp = &R->m->sp;
	const int n = s->n;
	if (n == 0)
		return HARK_OK;
	int i0 = 0;
	int64_t t0 = seek + 2 * (int64_t)(s->tok[0].tid - sp->beg);
	size_t tl = 0;
	int rc;
	for (int i = 0; i < n; i++) {
		const int32_t id = s->tok[i].id;
		if (id < sp->eot) {
			size_t l = 0;
			const char *b = hark_wvocab_token(R->v, id, &l);
			if (tl + l >= text_cap)
				return HARK_ERR_LIMIT;
			memcpy(text + tl, b, l);
			tl += l;
		}
		if (id > sp->beg) {
			const int64_t t1 = seek + 2 * (int64_t)(s->tok[i].tid - sp->beg);
			if (tl > 0) {
				rc = push_segment(out, t0, t1, text, tl, s->tok + i0, i - i0 + 1, nsp, temp, seek,
						  R->no_timestamps, sp->eot);
				if (rc)
					return rc;
			}
			tl = 0;
			while (i < n && s->tok[i].id > sp->beg)
				i++;
			i--;
			t0 = t1;
			i0 = i + 1;
		}
	}
	if (tl > 0) {
		const int64_t t1 = seek + seek_delta;
		rc = push_segment(out, t0, t1, text, tl, s->tok + i0, n - i0, nsp, temp, seek, R->no_timestamps,
				  sp->eot);
		if (rc)
			return rc;
	}
	return HARK_OK;
}

/* ---------------------------------------------------------------- main -- */

static int cand_cmp_gt(const struct cand *a, const struct cand *b)
{
	/* a before b? */
	if (a->s.sum_logprobs_all != b->s.sum_logprobs_all)
		return a->s.sum_logprobs_all > b->s.sum_logprobs_all;
	return a->dec_idx < b->dec_idx;
}

static void free_run(struct run *R)
{
	for (int j = 0; j < MAX_DECODERS; j++) {
		free(R->dec[j].s.tok);
		free(R->dec[j].logits);
		free(R->dec[j].probs);
		free(R->dec[j].logprobs);
	}
	free(R->cands);
	free(R->cand_tok);
	free(R->cdf);
	free(R->scratch_lp);
	free(R->raw);
	free(R->prompt);
	free(R->btok);
	free(R->bpos);
	free(R->bseq);
	free(R->blogits);
	free(R->past);
	free(R->tmp);
}

static int canceled(const struct hark_wdecode_params *p)
{
	return p->cancel && p->cancel(p->cancel_user_data);
}

static int detect_language(struct run *R, float *prob, char *err, size_t errlen)
{
	const struct hark_wmodel *m = R->m;
	int rc = hark_wmel_window(R->mel, 0, 2 * m->hp.n_audio_ctx, hark_wnet_mel_buffer(R->net));
	if (rc) {
		snprintf(err, errlen, "%s", hark_wmel_error(R->mel));
		return -HARK_ERR_IO;
	}
	rc = hark_wnet_encode(R->net);
	if (rc) {
		snprintf(err, errlen, "whisper encoder failed");
		return -1;
	}
	int32_t sot = m->sp.sot;
	const int pos0 = 0, seq0 = 0;
	rc = hark_wnet_decode(R->net, &sot, &pos0, &seq0, 1, R->raw, 0);
	if (rc) {
		snprintf(err, errlen, "whisper decoder failed");
		return -1;
	}
	/* g_lang is a std::map: languages in code order; std::sort by logit */
	int best = -1;
	const char *best_code = NULL;
	float best_l = -INFINITY;
	for (int i = 0; i < HARK_WLANG_COUNT; i++) {
		const int id = m->sp.sot + 1 + i;
		if (id >= R->n_vocab)
			continue;
		const float l = R->raw[id];
		const char *code = hark_wvocab_lang_code(i);
		if (best < 0 || l > best_l || (l == best_l && code && best_code && strcmp(code, best_code) < 0)) {
			best = i;
			best_l = l;
			best_code = code;
		}
	}
	double sum = 0.0;
	for (int i = 0; i < HARK_WLANG_COUNT; i++) {
		const int id = m->sp.sot + 1 + i;
		if (id < R->n_vocab)
			sum += exp((double)R->raw[id] - best_l);
	}
	*prob = (float)(1.0 / sum);
	return best;
}

int hark_wdecode_run(const struct hark_wmodel *m, const struct hark_wvocab *v, struct hark_wnet *net,
		     const struct hark_wmel *mel, const struct hark_wdecode_params *p,
		     struct hark_wresult *out, char *err, size_t errlen)
{
	struct run R;
	memset(&R, 0, sizeof(R));
	R.m = m;
	R.v = v;
	R.net = net;
	R.mel = mel;
	R.p = p;
	R.n_vocab = m->hp.n_vocab;
	R.n_max = m->hp.n_text_ctx / 2 - 4;
	R.cap_tok = R.n_max + 4;
	R.tok_space = token_id_of(m, " ", 1);
	const struct hark_wspecial *sp = &m->sp;
	const int n_text_ctx = m->hp.n_text_ctx;
	int rc = HARK_OK;
	char *text = NULL;
	const size_t text_cap = (size_t)R.cap_tok * 256 + 16;

	int n_dec_max = n_decoders_max(p);
	if (n_dec_max > MAX_DECODERS) {
		snprintf(err, errlen, "too many decoders (%d > %d)", n_dec_max, MAX_DECODERS);
		return HARK_ERR_INVALID_ARG;
	}
	if (R.n_max < 1) {
		snprintf(err, errlen, "whisper model text context too small");
		return HARK_ERR_MODEL;
	}
	R.cap_cands = MAX_DECODERS * (p->beam_size > 1 ? p->beam_size : 1);
	R.cands = calloc((size_t)R.cap_cands, sizeof(*R.cands));
	R.cand_tok = calloc((size_t)R.cap_cands * R.cap_tok, sizeof(*R.cand_tok));
	R.cdf = malloc(sizeof(double) * (size_t)R.n_vocab);
	R.scratch_lp = malloc(sizeof(float) * (size_t)R.n_vocab);
	R.raw = malloc(sizeof(float) * (size_t)R.n_vocab);
	R.prompt = malloc(sizeof(int32_t) * (size_t)(n_text_ctx + 8));
	R.past = malloc(sizeof(int32_t) * (size_t)(2 * n_text_ctx + R.cap_tok + p->n_prompt_tokens + 8));
	R.tmp = malloc(sizeof(int32_t) * (size_t)(2 * n_text_ctx + R.cap_tok + p->n_prompt_tokens + 8));
	text = malloc(text_cap);
	R.btok = malloc(sizeof(int32_t) * (size_t)(n_text_ctx + 8));
	R.bpos = malloc(sizeof(int) * (size_t)(n_text_ctx + 8));
	R.bseq = malloc(sizeof(int) * (size_t)(n_text_ctx + 8));
	R.blogits = malloc(sizeof(float) * (size_t)MAX_DECODERS * R.n_vocab);
	if (!R.cands || !R.cand_tok || !R.cdf || !R.scratch_lp || !R.raw || !R.prompt || !R.past || !R.tmp || !text || !R.btok ||
	    !R.bpos || !R.bseq || !R.blogits) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (int c = 0; c < R.cap_cands; c++)
		R.cands[c].s.tok = R.cand_tok + (size_t)c * R.cap_tok;
	for (int j = 0; j < n_dec_max; j++) {
		struct decoder *d = &R.dec[j];
		d->s.tok = malloc(sizeof(*d->s.tok) * (size_t)R.cap_tok);
		d->logits = malloc(sizeof(float) * (size_t)R.n_vocab);
		d->probs = malloc(sizeof(float) * (size_t)R.n_vocab);
		d->logprobs = malloc(sizeof(float) * (size_t)R.n_vocab);
		if (!d->s.tok || !d->logits || !d->probs || !d->logprobs) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		/* decoder 0: std::mt19937(0) at state creation; others (j) per run */
		mt_seed(&d->rng, (uint32_t)j);
	}

	/* language */
	const char *lang = p->language ? p->language : "en";
	out->lang_id = 0;
	if (!*lang || strcmp(lang, "auto") == 0) {
		float prob = 0.0f;
		int id = detect_language(&R, &prob, err, errlen);
		if (id < 0) {
			rc = id == -HARK_ERR_IO ? HARK_ERR_IO : HARK_ERR_ENGINE;
			goto out;
		}
		out->lang_id = id;
		out->lang_prob = prob;
	} else {
		int id = hark_wvocab_lang_id(lang);
		if (id < 0) {
			snprintf(err, errlen, "unknown language '%s'", lang);
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
		if (m->is_multilingual)
			out->lang_id = id;
	}

	const int seek_start = 0;
	const int seek_end = hark_wmel_n_len_org(mel);
	if (seek_end < seek_start + DELTA_MIN)
		goto out; /* shorter than 100 ms: nothing, as whisper.cpp */

	float temps[16];
	int n_temps = 0;
	if (!p->no_fallback && p->temperature_inc > 0.0f) {
		for (float t = p->temperature; t < 1.0f + 1e-6f && n_temps < 16; t += p->temperature_inc)
			temps[n_temps++] = t;
	} else {
		temps[n_temps++] = p->temperature;
	}

	/* initial prompt goes into the past text */
	R.n_past = 0;
	if (p->prompt_tokens && p->n_prompt_tokens > 0) {
		int np = p->n_prompt_tokens;
		if (np > 2 * n_text_ctx)
			np = 2 * n_text_ctx;
		memcpy(R.past, p->prompt_tokens, sizeof(int32_t) * (size_t)np);
		R.n_past = np;
	}

	int32_t init[4];
	int n_init = 0;
	init[n_init++] = sp->sot;
	if (m->is_multilingual) {
		init[n_init++] = sp->sot + 1 + out->lang_id;
		init[n_init++] = p->translate ? sp->translate : sp->transcribe;
	}
	R.no_timestamps = p->no_timestamps;
	/* whisper.cpp's "first release distilled models" rule */
	if (m->hp.n_text_layer == 2 && m->hp.n_vocab != 51866)
		R.no_timestamps = 1;
	if (R.no_timestamps)
		init[n_init++] = sp->not_ts;

	int seek = seek_start;
	float no_speech_prob = 0.0f;
	for (;;) {
		if (p->progress)
			p->progress((double)(seek - seek_start) / (double)(seek_end - seek_start), p->progress_user_data);
		if (seek + DELTA_MIN >= seek_end)
			break;
		if (canceled(p)) {
			rc = HARK_ERR_CANCELED;
			goto out;
		}
		if ((rc = hark_wmel_window(mel, seek, 2 * m->hp.n_audio_ctx, hark_wnet_mel_buffer(net)))) {
			snprintf(err, errlen, "%s", hark_wmel_error(mel));
			goto out;
		}
		if ((rc = hark_wnet_encode(net))) {
			snprintf(err, errlen, "whisper encoder failed");
			goto out;
		}
		out->n_windows++;
		if (seek > seek_start && seek + 500 >= seek_end)
			R.n_past = 0;

		int best_id = 0;
		float t_used = temps[0];
		for (int it = 0; it < n_temps; it++) {
			const float t_cur = temps[it];
			t_used = t_cur;
			int n_cur = 1;
			if (p->beam_size > 1)
				n_cur = t_cur > 0.0f ? p->best_of : p->beam_size;
			else if (t_cur > 0.0f)
				n_cur = p->best_of;
			if (n_cur < 1)
				n_cur = 1;
			if (n_cur > n_dec_max)
				n_cur = n_dec_max;
			for (int j = 0; j < n_cur; j++) {
				struct decoder *d = &R.dec[j];
				d->s.n = 0;
				d->s.result_len = 0;
				d->s.sum_logprobs_all = 0.0;
				d->s.sum_logprobs = -INFINITY;
				d->s.avg_logprobs = -INFINITY;
				d->s.entropy = 0.0;
				d->s.score = -INFINITY;
				d->seek_delta = 100 * 30;
				d->failed = d->completed = d->has_ts = 0;
			}
			/* prompt: [prev + past] + init */
			R.n_prompt = 0;
			if (R.n_past > 0 && t_cur < 0.5f && p->n_max_text_ctx > 0) {
				int n_take = p->n_max_text_ctx < n_text_ctx / 2 ? p->n_max_text_ctx : n_text_ctx / 2;
				if (n_take > R.n_past)
					n_take = R.n_past;
				R.prompt[R.n_prompt++] = sp->prev;
				memcpy(R.prompt + R.n_prompt, R.past + R.n_past - n_take, sizeof(int32_t) * (size_t)n_take);
				R.n_prompt += n_take;
			}
			memcpy(R.prompt + R.n_prompt, init, sizeof(int32_t) * (size_t)n_init);
			R.n_prompt += n_init;
			const int P = R.n_prompt;
			/* whisper.cpp decodes n_text_ctx/2 - 4 tokens after the prompt;
			 * with the longest prompts (multilingual, no timestamps) that
			 * could pass the positional table, so stop at its end */
			const int n_max_w = R.n_max < n_text_ctx - P ? R.n_max : n_text_ctx - P;
			hark_wnet_kv_clear(net);
			for (int k = 0; k < P; k++) {
				R.bpos[k] = k;
				R.bseq[k] = 0;
			}
			if ((rc = hark_wnet_decode(net, R.prompt, R.bpos, R.bseq, P, R.raw, 0))) {
				snprintf(err, errlen, "whisper decoder failed");
				goto out;
			}
			compute_logprobs(R.raw, R.n_vocab, R.scratch_lp);
			no_speech_prob = expf(R.scratch_lp[sp->nosp]);
			if (R.raw[sp->nosp] == -INFINITY)
				no_speech_prob = 0.0f;
			process_logits(&R, &R.dec[0], R.raw, t_cur, seek);
			if (n_cur > 1) {
				for (int j = 1; j < n_cur; j++) {
					hark_wnet_kv_seq_cp(net, 0, j);
					memcpy(R.dec[j].probs, R.dec[0].probs, sizeof(float) * (size_t)R.n_vocab);
					memcpy(R.dec[j].logits, R.dec[0].logits, sizeof(float) * (size_t)R.n_vocab);
					memcpy(R.dec[j].logprobs, R.dec[0].logprobs, sizeof(float) * (size_t)R.n_vocab);
				}
			}

			for (int i = 0; i < n_max_w; i++) {
				if (canceled(p)) {
					rc = HARK_ERR_CANCELED;
					goto out;
				}
				R.n_cands = 0;
				for (int j = 0; j < n_cur; j++) {
					struct decoder *d = &R.dec[j];
					if (d->completed || d->failed)
						continue;
					if (p->beam_size <= 1) {
						struct hark_wtoken t = sample_token(&R, d, t_cur < 1e-6f);
						d->s.tok[d->s.n++] = t;
						d->s.sum_logprobs_all += t.plog;
					} else {
						/* whisper_sample_token_topk: beam_size draws */
						struct hark_wtoken base = {0, sp->beg, 0, 0, 0, 0};
						ts_summary(&R, d->probs, &base.tid, &base.pt, &base.ptsum);
						build_cdf(&R, d->probs);
						for (int k = 0; k < p->beam_size; k++) {
							struct hark_wtoken t = base;
							t.id = cdf_draw(&R, &d->rng);
							t.p = d->probs[t.id];
							t.plog = d->logprobs[t.id];
							if (t.id >= sp->beg) {
								t.tid = t.id;
								t.pt = t.p;
							}
							struct cand *c = &R.cands[R.n_cands++];
							c->dec_idx = j;
							c->seek_delta = d->seek_delta;
							c->has_ts = d->has_ts;
							seq_copy(&c->s, &d->s);
							c->s.tok[c->s.n++] = t;
							c->s.sum_logprobs_all += t.plog;
						}
					}
				}
				if (p->beam_size > 1) {
					/* stable insertion sort: sum_logprobs_all desc, decoder asc */
					for (int a = 1; a < R.n_cands; a++) {
						struct cand tmpc = R.cands[a];
						int b = a;
						while (b > 0 && cand_cmp_gt(&tmpc, &R.cands[b - 1])) {
							R.cands[b] = R.cands[b - 1];
							b--;
						}
						R.cands[b] = tmpc;
					}
					int cur_c = 0;
					for (int j = 0; j < n_cur; j++) {
						struct decoder *d = &R.dec[j];
						if (d->completed || d->failed)
							continue;
						if (cur_c >= R.n_cands)
							cur_c = 0;
						const struct cand *c = &R.cands[cur_c++];
						while (R.n_cands > cur_c && seq_equal(&R.cands[cur_c].s, &c->s) && i > 0)
							cur_c++;
						d->seek_delta = c->seek_delta;
						d->has_ts = c->has_ts;
						seq_copy(&d->s, &c->s);
						hark_wnet_kv_seq_cp(net, c->dec_idx, MAX_DECODERS + j);
#ifdef WD_TRACE
						{
							size_t tl0 = 0;
							const char *tb = hark_wvocab_token(R.v, d->s.tok[d->s.n - 1].id, &tl0);
							fprintf(stderr, "beam search: decoder %d: from decoder %d: token = %10.*s, plog = %8.5f, sum_logprobs = %8.5f\n",
								j, c->dec_idx, (int)tl0, tb, d->s.tok[d->s.n - 1].plog, d->s.sum_logprobs_all);
						}
#endif
					}
					for (int j = 0; j < n_cur; j++) {
						if (R.dec[j].completed || R.dec[j].failed)
							continue;
						hark_wnet_kv_seq_rm(net, j);
						hark_wnet_kv_seq_cp(net, MAX_DECODERS + j, j);
						hark_wnet_kv_seq_rm(net, MAX_DECODERS + j);
					}
				}
				/* update decoders */
				for (int j = 0; j < n_cur; j++) {
					struct decoder *d = &R.dec[j];
					if (d->completed || d->failed)
						continue;
					const struct hark_wtoken *tk = &d->s.tok[d->s.n - 1];
					if (tk->id > sp->beg) {
						const int sd_new = 2 * (tk->id - sp->beg);
						if (d->has_ts && d->seek_delta > sd_new && d->s.result_len < i) {
							d->failed = 1;
							continue;
						}
						d->seek_delta = sd_new;
						d->s.result_len = i + 1;
						d->has_ts = 1;
					}
					if (tk->id == sp->eot || (d->has_ts && seek + d->seek_delta + DELTA_MIN >= seek_end)) {
						if (d->s.result_len == 0 && !R.no_timestamps) {
							if (seek + d->seek_delta + DELTA_MIN >= seek_end) {
								d->s.result_len = i + 1;
							} else {
								d->failed = 1;
								continue;
							}
						}
						if (R.no_timestamps) {
							d->s.result_len = i + 1;
							d->seek_delta = 100 * 30;
						}
						d->completed = 1;
						continue;
					}
					if (i == n_max_w - 1 && (d->s.result_len == 0 || d->seek_delta < 100 * 30 / 2)) {
						d->failed = 1;
						continue;
					}
				}
				int all_done = 1;
				for (int j = 0; j < n_cur; j++)
					if (!R.dec[j].completed && !R.dec[j].failed)
						all_done = 0;
				if (all_done)
					break;
				/* logits for the next token of every live decoder, one batch */
				int nb = 0, row_of[MAX_DECODERS];
				for (int j = 0; j < n_cur; j++) {
					struct decoder *d = &R.dec[j];
					if (d->completed || d->failed)
						continue;
					row_of[j] = nb;
					R.btok[nb] = d->s.tok[d->s.n - 1].id;
					R.bpos[nb] = P + i;
					R.bseq[nb] = j;
					nb++;
				}
				if ((rc = hark_wnet_decode(net, R.btok, R.bpos, R.bseq, nb, R.blogits, 1))) {
					snprintf(err, errlen, "whisper decoder failed");
					goto out;
				}
				for (int j = 0; j < n_cur; j++) {
					struct decoder *d = &R.dec[j];
					if (d->completed || d->failed)
						continue;
					process_logits(&R, d, R.blogits + (size_t)row_of[j] * R.n_vocab, t_cur, seek);
				}
			}

			/* rank */
			double best_score = -INFINITY;
			for (int j = 0; j < n_cur; j++) {
				struct decoder *d = &R.dec[j];
				if (d->failed)
					continue;
				d->s.n = d->s.result_len;
				sequence_score(&R, &d->s);
				if (d->s.result_len > 32 && d->s.entropy < p->entropy_thold) {
					d->failed = 1;
					out->n_fail_h++;
					continue;
				}
				if (best_score < d->s.score) {
					best_score = d->s.score;
					best_id = j;
				}
			}
			int success = 1;
			if (it != n_temps - 1) {
				const struct decoder *d = &R.dec[best_id];
				if (d->failed || (d->s.avg_logprobs < p->logprob_thold && no_speech_prob < p->no_speech_thold)) {
					success = 0;
					out->n_fail_p++;
				}
			}
			if (success)
				break;
		}

		/* output */
		{
			const struct decoder *bd = &R.dec[best_id];
			int seek_delta = bd->seek_delta;
			const int result_len = bd->s.result_len;
			const int is_no_speech = no_speech_prob > p->no_speech_thold &&
						 bd->s.avg_logprobs < p->logprob_thold;
			/* prompt_past = prompt[1 .. P - n_init) + result tokens */
			int np = 0;
			if (R.n_prompt > 0 && R.prompt[0] == sp->prev) {
				np = R.n_prompt - 1 - n_init;
				memcpy(R.tmp, R.prompt + 1, sizeof(int32_t) * (size_t)np);
			}
			for (int i = 0; i < result_len && !is_no_speech; i++)
				R.tmp[np++] = bd->s.tok[i].id;
			memcpy(R.past, R.tmp, sizeof(int32_t) * (size_t)np);
			R.n_past = np;
			if (bd->s.n > 0 && !is_no_speech) {
				rc = emit_segments(&R, out, &bd->s, seek, seek_delta, no_speech_prob, t_used, text,
						   text_cap);
				if (rc) {
					snprintf(err, errlen, "whisper segment output failed");
					goto out;
				}
			}
			const int n = bd->s.n;
			if (n > 1 && bd->s.tok[n - 2].id < sp->beg && bd->s.tok[n - 1].id > sp->beg) {
				seek_delta = seek_end - seek < CHUNK_FRAMES ? seek_end - seek : CHUNK_FRAMES;
			}
			seek += seek_delta;
		}
	}
	if (p->progress)
		p->progress(1.0, p->progress_user_data);
out:
	free(text);
	free_run(&R);
	return rc;
}
