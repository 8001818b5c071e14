/*
 * Whisper decoding: the equivalent of whisper.cpp's whisper_full_with_state
 * on a finished log-mel spectrogram. It walks the audio in 30 s windows
 * (seek advanced by the last timestamp token, or by a whole window), runs the
 * encoder on each window, decodes with greedy search or beam search
 * (whisper.cpp's sampled top-k beams, mt19937 seeded as whisper.cpp), applies
 * whisper.cpp's logit filters (blank / special / language token suppression,
 * timestamp pairing, max initial timestamp, monotonic timestamps, "timestamps
 * win when their total probability beats every text token"), temperature
 * fallback (entropy, average log-probability and no-speech thresholds),
 * conditioning on previous text, an initial prompt, language detection and
 * the translate task, and cuts the best sequence into segments exactly as
 * whisper.cpp does. Buffers are sized once per run; nothing is allocated per
 * token. Debug builds with -DWD_TRACE print whisper.cpp-style beam traces.
 */
#ifndef HARK_ASR_WHISPER_WDECODE_H
#define HARK_ASR_WHISPER_WDECODE_H

#include <stddef.h>
#include <stdint.h>

#include "asr/whisper/wmel.h"
#include "asr/whisper/wmodel.h"
#include "asr/whisper/wnet.h"
#include "asr/whisper/wvocab.h"
#include "hark/transcribe.h"

/* whisper_full_params subset (defaults: hark_wdecode_default_params()). */
struct hark_wdecode_params {
	const char *language;    /* "en", ..., or "auto" (detect on the first window) */
	int translate;
	int beam_size;           /* <= 1: greedy */
	int best_of;             /* decoders sampled at t > 0 */
	int no_fallback;         /* only temperature `temperature` */
	float temperature, temperature_inc;
	float entropy_thold, logprob_thold, no_speech_thold;
	float max_initial_ts, length_penalty;
	int suppress_blank, suppress_nst;
	int n_max_text_ctx;      /* past-text tokens kept (whisper-cli: 16384) */
	int no_timestamps;       /* forced on for "distil" models as whisper.cpp */
	const int32_t *prompt_tokens;  /* initial prompt (already tokenised), may be NULL */
	int n_prompt_tokens;
	hark_cancel_fn cancel;
	void *cancel_user_data;
	/* progress: fraction of the spectrogram processed */
	void (*progress)(double fraction, void *user_data);
	void *progress_user_data;
};

/* whisper-cli defaults: language "en", beam 5, best_of 5, fallback on,
 * thresholds 2.4 / -1.0 / 0.6, max_initial_ts 1.0, suppress_blank. */
struct hark_wdecode_params hark_wdecode_default_params(void);

struct hark_wtoken {
	int32_t id, tid;         /* token and its timestamp token (as whisper_token_data) */
	float p, plog, pt, ptsum;
};

struct hark_wsegment {
	int64_t t0, t1;          /* 10 ms units, as whisper.cpp (t0 may be whisper.cpp's garbage) */
	int64_t window_seek;     /* seek (10 ms units) of the window that produced it */
	char *text;              /* raw token bytes, NUL-terminated (may hold any byte) */
	size_t text_len;
	struct hark_wtoken *tokens;
	int n_tokens;
	float no_speech_prob, temperature, avg_logprob;
	int no_timestamps;       /* produced in no-timestamps mode */
};

struct hark_wresult {
	struct hark_wsegment *segs;
	size_t n_segs, cap_segs;
	int lang_id;             /* detected or requested language index */
	float lang_prob;         /* detection probability (0 if not detected) */
	int n_fail_p, n_fail_h;  /* whisper.cpp's fallback counters */
	int n_windows;
};

void hark_wresult_clear(struct hark_wresult *r);

/*
 * Decodes the whole spectrogram (hark_wmel_finish() called). net must have
 * been created for hark_wdecode_slots(p) decoders. Segments are appended to out (owned
 * by it; release with hark_wresult_clear). Returns 0, HARK_ERR_CANCELED,
 * HARK_ERR_INVALID_ARG (unknown language), HARK_ERR_NOMEM, HARK_ERR_LIMIT or
 * an engine error, with a message in err.
 */
int hark_wdecode_run(const struct hark_wmodel *m, const struct hark_wvocab *v, struct hark_wnet *net,
		     const struct hark_wmel *mel, const struct hark_wdecode_params *p,
		     struct hark_wresult *out, char *err, size_t errlen);

/* Number of parallel decoders a run with p uses (the n_decoders to give
 * hark_wnet_new, which sizes the KV cell cache like whisper.cpp). */
int hark_wdecode_slots(const struct hark_wdecode_params *p);

#endif /* HARK_ASR_WHISPER_WDECODE_H */
