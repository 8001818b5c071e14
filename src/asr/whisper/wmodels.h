/*
 * Whisper model management: the catalogue of whisper.cpp's published ggml
 * files (name, size, pinned sha256 = Hugging Face LFS oid), locating model
 * files (explicit path or name, $HARK_MODELS, ~/.cache/hark/models), picking
 * a default model, downloading with resume + checksum verification (libcurl
 * + OpenSSL), and synthesising random-weight models of real dimensions in
 * whisper.cpp's file format for benchmarks and tests.
 */
#ifndef HARK_ASR_WHISPER_WMODELS_H
#define HARK_ASR_WHISPER_WMODELS_H

#include <stddef.h>
#include <stdint.h>

/* One published model file ggml-<name>.bin. */
struct hark_wmodels_entry {
	const char *name;     /* "tiny.en", "base-q5_1", "large-v3-turbo", ... */
	uint64_t size;        /* bytes */
	const char *sha256;   /* lowercase hex, or NULL when not pinned */
};

/* The catalogue (static storage), n entries in preference-free order. */
const struct hark_wmodels_entry *hark_wmodels_catalog(size_t *n);
/* Entry by name ("tiny.en", also "ggml-tiny.en.bin"), or NULL. */
const struct hark_wmodels_entry *hark_wmodels_lookup(const char *name);

/*
 * The directory models are pulled into: $HARK_MODELS when set and not empty
 * (first entry of a ':'-separated list), else $HOME/.cache/hark/models.
 * Returns 0, HARK_ERR_NOT_FOUND (no HOME), HARK_ERR_LIMIT (outlen too small).
 */
int hark_wmodels_dir(char *out, size_t outlen);

/*
 * Resolves a --model argument. A value that names an existing path (or that
 * contains a '/') is used as a path: it must be a regular file. Otherwise it
 * is a model name ("tiny.en", "base-q8_0", or a file name "ggml-x.bin")
 * looked up as ggml-<name>.bin in every $HARK_MODELS directory (':'-separated)
 * and then in ~/.cache/hark/models. Writes the path to out.
 * Returns 0, HARK_ERR_NOT_FOUND, HARK_ERR_IS_DIR, HARK_ERR_INVALID_ARG or
 * HARK_ERR_LIMIT.
 */
int hark_wmodels_resolve(const char *name_or_path, char *out, size_t outlen);

/*
 * Finds a model for `--engine auto`: searches the same directories for
 * ggml-*.bin files (ignoring *.part) and returns the most preferred one:
 *   base.en, small.en, tiny.en, base, small, tiny, medium.en, medium,
 *   large-v3-turbo, large-v3, large-v2, large-v1
 * each first as the f16 file and then its -q8_0, -q5_1, -q5_0 variants;
 * any other ggml-*.bin comes after those, in alphabetical order; an earlier
 * directory wins over a later one for the same rank. Returns 0 or
 * HARK_ERR_NOT_FOUND.
 */
int hark_wmodels_find_default(char *out, size_t outlen);

/* Local model file found in the search directories. */
struct hark_wmodels_local {
	char path[1024];
	uint64_t size;
};
/* Lists up to max ggml-*.bin files in the search directories (sorted by path
 * within each directory); *n receives the count stored. Returns 0. */
int hark_wmodels_list_local(struct hark_wmodels_local *out, size_t max, size_t *n);

/* ----------------------------------------------------------------- pull -- */

/* Default download location; $HARK_MODELS_URL overrides it. */
#define HARK_WMODELS_BASE_URL "https://huggingface.co/ggerganov/whisper.cpp/resolve/main"

struct hark_wmodels_pull_params {
	const char *dir;          /* destination directory; NULL = hark_wmodels_dir() */
	const char *base_url;     /* NULL = $HARK_MODELS_URL or HARK_WMODELS_BASE_URL */
	const char *sha256;       /* expected digest (overrides the catalogue's) */
	int no_verify;            /* skip the digest check (size still checked when known) */
	/* progress: done/total bytes (total 0 if unknown); may be NULL */
	void (*progress)(void *user, uint64_t done, uint64_t total);
	/* cancel: non-zero aborts with HARK_ERR_CANCELED; may be NULL */
	int (*cancel)(void *user);
	void *user;
};

/*
 * Downloads ggml-<name>.bin from <base_url>/ggml-<name>.bin into the models
 * directory. Data goes to ggml-<name>.bin.part, resuming an existing .part
 * with an HTTP Range request; once complete, the file's sha256 is checked
 * and the .part renamed atomically to ggml-<name>.bin, whose path is
 * written to out_path. A name without a pinned digest needs p->sha256 or
 * p->no_verify (else HARK_ERR_INVALID_ARG before any download).
 * Errors: HARK_ERR_NETWORK (connection/HTTP failure; the .part is kept for a
 * later resume), HARK_ERR_CHECKSUM (digest or size mismatch; the .part is
 * deleted), HARK_ERR_IO, HARK_ERR_CANCELED, HARK_ERR_INVALID_ARG,
 * HARK_ERR_LIMIT (server sent more than the known size). err gets a message.
 */
int hark_wmodels_pull(const char *name, const struct hark_wmodels_pull_params *p,
		      char *out_path, size_t outlen, char *err, size_t errlen);

/* sha256 of a file as lowercase hex (65 bytes incl. NUL). Returns 0,
 * HARK_ERR_NOT_FOUND or HARK_ERR_IO. */
int hark_wmodels_sha256_file(const char *path, char hex[65]);

/* ---------------------------------------------------------------- synth -- */

struct hark_wmodels_synth_params {
	const char *like;     /* tiny, tiny.en, base(.en), small(.en), medium(.en),
			       * large-v1, large-v2, large-v3, large-v3-turbo,
			       * or micro / micro.en (state 64, 2 heads, 2+2 layers) */
	uint64_t seed;
	int ftype;            /* HARK_WT_F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 */
	void (*progress)(void *user, double fraction);
	int (*cancel)(void *user);
	void *user;
};

/* Maps "f32", "f16", "q8_0", ... to a HARK_WT_* value; -1 if unknown. */
int hark_wmodels_ftype_from_name(const char *s);

/*
 * Writes a valid random-weight model with the real dimensions of p->like in
 * whisper.cpp's format to path (streamed; written to path.tmp and renamed).
 * Vocabulary: synthesised (256 byte tokens, generated words, and
 * "<|endoftext|>" last for .en / "" for multilingual, 50257 entries); mel
 * filters: Slaney-scale/Slaney-norm filters for 16 kHz, n_fft 400, fmax
 * 8 kHz (as librosa / OpenAI); weights per whisper/COMMANDS.md section 4
 * from a PRNG seeded by seed and the tensor name. Quantised ftypes use
 * ggml's reference quantisers (the linear weights and token embedding are
 * quantised; conv weights f16; biases, norms and positional embeddings f32).
 * Returns 0, HARK_ERR_INVALID_ARG, HARK_ERR_IO, HARK_ERR_NOMEM or
 * HARK_ERR_CANCELED.
 */
int hark_wmodels_synth(const struct hark_wmodels_synth_params *p, const char *path,
		       char *err, size_t errlen);

/* Slaney mel filterbank (librosa.filters.mel(sr, n_fft, n_mels, fmin=0,
 * fmax) with norm="slaney"), out[n_mels][n_fft/2+1] as float32. */
void hark_wmodels_mel_filters(int sr, int n_fft, int n_mels, double fmax, float *out);

#endif /* HARK_ASR_WHISPER_WMODELS_H */
