/*
 * `hark transcribe`: turns audio/video files (or folders of them) into
 * transcripts. Flags follow whisper.cpp's CLI where one exists there
 * (-m, -l, -t, -bs, -bo, -nf, -tr, -ot, -d, -otxt/-ojson/-osrt/-ovtt). Files
 * are processed in order with one loaded model; each failure is reported
 * with its file name and the exit code tells whether any failed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audio/audio.h"
#include "cli/cli.h"
#include "hark/transcribe.h"
#include "util/errbuf.h"

#define MAX_INPUTS 100000

struct input {
	char *path;
	int from_dir;  /* found by expanding a folder: non-media files are skipped */
};

struct opts {
	const char *out_dir;
	unsigned formats;  /* bit per enum hark_format */
	const char *engine;
	const char *model;
	const char *language;
	int threads;
	double offset_s, duration_s;
	int beam_size, best_of, no_fallback, translate;
	const char *prompt;
	int channel;
	int recursive;
	int quiet;
	struct input *inputs;
	size_t n_inputs, cap_inputs;
};

static void help(void)
{
	printf("usage: hark transcribe FILE|DIR... [options]\n\n"
	       "Transcribes audio or video (wav, mp3, m4a, mp4, mkv, webm, flac, ogg, opus, ...;\n"
	       "the type is detected from content). Text goes to stdout unless -o is given.\n\n"
	       "  -o, --output-dir DIR   write <name>.<ext> files into DIR\n"
	       "      --format LIST      txt, json, srt, vtt or all (comma-separated; default txt)\n"
	       "  -otxt -ojson -osrt -ovtt  add one output format (whisper.cpp style)\n"
	       "  -e, --engine NAME      pocketsphinx, whisper or auto (default auto)\n"
	       "  -m, --model PATH|NAME  model file/dir or Whisper model name (e.g. base.en)\n"
	       "  -l, --language LANG    spoken language, or 'auto' to detect (default en)\n"
	       "  -t, --threads N        compute threads (default: all cores)\n"
	       "      --offset TIME      start at TIME (seconds, or [hh:]mm:ss[.ms])\n"
	       "      --duration TIME    transcribe at most TIME\n"
	       "  -ot, --offset-t MS     start offset in milliseconds\n"
	       "  -d, --duration-ms MS   duration in milliseconds\n"
	       "  -bs, --beam-size N     Whisper beam size (default 5; 1 = greedy)\n"
	       "  -bo, --best-of N       Whisper candidates when sampling (default 5)\n"
	       "  -nf, --no-fallback     Whisper: no temperature fallback\n"
	       "      --prompt TEXT      Whisper: initial prompt\n"
	       "  -tr, --translate       Whisper: translate to English\n"
	       "      --channel N        transcribe only channel N (0-based) instead of a downmix\n"
	       "  -r, --recursive        descend into sub-folders of DIR arguments\n"
	       "  -q, --quiet            no progress bar\n"
	       "  -h, --help             this help\n\n"
	       "Exit status: 0 when every file succeeded, 2 for usage errors, otherwise\n"
	       "10 + the error number of the failure (see docs/CLI.md).\n");
}

/* Parses "90", "90.5", "1:30", "01:02:03.5", "1500ms", "2m", "1h". */
static int parse_time(const char *s, double *out)
{
	double parts[3] = {0, 0, 0}, v;
	int n = 0;
	char *end;
	const char *p = s;

	if (!s || !*s)
		return -1;
	for (;;) {
		v = strtod(p, &end);
		if (end == p || v < 0 || n >= 3)
			return -1;
		parts[n++] = v;
		if (*end != ':')
			break;
		p = end + 1;
	}
	if (n == 1) {
		if (!strcmp(end, "ms"))
			v /= 1000.0;
		else if (!strcmp(end, "m") || !strcmp(end, "min"))
			v *= 60.0;
		else if (!strcmp(end, "h"))
			v *= 3600.0;
		else if (*end && strcmp(end, "s") != 0)
			return -1;
		*out = v;
		return 0;
	}
	if (*end)
		return -1;
	*out = n == 2 ? parts[0] * 60 + parts[1] : parts[0] * 3600 + parts[1] * 60 + parts[2];
	return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_formats(const char *list, unsigned *mask)
{
	char buf[128], *tok, *save = NULL;

	size_t len = strlen(list);

	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, list, len + 1);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		enum hark_format f;

		if (!strcmp(tok, "all")) {
			*mask |= 0xf;
			continue;
		}
		if (hark_format_parse(tok, &f) != HARK_OK)
			return -1;
		*mask |= 1u << f;
	}
	return 0;
}

static int add_input(struct opts *o, const char *path, int from_dir)
{
	if (o->n_inputs == o->cap_inputs) {
		size_t cap = o->cap_inputs ? o->cap_inputs * 2 : 16;
		struct input *n;

		if (cap > MAX_INPUTS)
			return HARK_ERR_LIMIT;
		n = realloc(o->inputs, cap * sizeof(*n));
		if (!n)
			return HARK_ERR_NOMEM;
		o->inputs = n;
		o->cap_inputs = cap;
	}
	o->inputs[o->n_inputs].path = strdup(path);
	if (!o->inputs[o->n_inputs].path)
		return HARK_ERR_NOMEM;
	o->inputs[o->n_inputs].from_dir = from_dir;
	o->n_inputs++;
	return HARK_OK;
}

static int add_from_dir(const char *path, void *ud)
{
	return add_input(ud, path, 1);
}

/* Adds the regular files in dir (sorted; sub-folders when recursive). */
static int expand_dir(struct opts *o, const char *dir)
{
	return hark_cli_expand_dir(dir, o->recursive, NULL, add_from_dir, o);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		char name[64];
		const char *eq;

#define IS(s) (!strcmp(name, s))
#define NEED_VAL()                                                                   \
	do {                                                                         \
		if (!val) {                                                          \
			if (i + 1 >= argc) {                                         \
				fprintf(stderr, "hark transcribe: %s needs a value\n", a); \
				return -1;                                           \
			}                                                            \
			val = argv[++i];                                             \
		}                                                                    \
	} while (0)

		if (a[0] != '-' || !a[1]) {
			if (add_input(o, a, 0) != HARK_OK)
				return -1;
			continue;
		}
		if (!strcmp(a, "--")) {
			for (i++; i < argc; i++)
				if (add_input(o, argv[i], 0) != HARK_OK)
					return -1;
			break;
		}
		eq = a[1] == '-' ? strchr(a, '=') : NULL;
		snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
		if (eq)
			val = eq + 1;

		if (IS("-h") || IS("--help")) {
			help();
			return 1;
		} else if (IS("-o") || IS("--output-dir")) {
			NEED_VAL();
			o->out_dir = val;
		} else if (IS("--format") || IS("-of") /* not a prefix here */) {
			NEED_VAL();
			if (parse_formats(val, &o->formats) != 0) {
				fprintf(stderr, "hark transcribe: unknown format '%s' (txt, json, srt, vtt, all)\n", val);
				return -1;
			}
		} else if (IS("-otxt") || IS("-ojson") || IS("-osrt") || IS("-ovtt")) {
			parse_formats(name + 2, &o->formats);
		} else if (IS("-f") || IS("--file")) {
			NEED_VAL();
			if (add_input(o, val, 0) != HARK_OK)
				return -1;
		} else if (IS("-e") || IS("--engine")) {
			NEED_VAL();
			o->engine = val;
		} else if (IS("-m") || IS("--model")) {
			NEED_VAL();
			o->model = val;
		} else if (IS("-l") || IS("--language")) {
			NEED_VAL();
			o->language = val;
		} else if (IS("-t") || IS("--threads")) {
			NEED_VAL();
			if (parse_int(val, 1, 1024, &o->threads)) {
				fprintf(stderr, "hark transcribe: bad thread count '%s'\n", val);
				return -1;
			}
		} else if (IS("--offset") || IS("--duration")) {
			double v;

			NEED_VAL();
			if (parse_time(val, &v)) {
				fprintf(stderr, "hark transcribe: bad time '%s' for %s\n", val, name);
				return -1;
			}
			if (IS("--offset"))
				o->offset_s = v;
			else
				o->duration_s = v;
		} else if (IS("-ot") || IS("--offset-t") || IS("-d") || IS("--duration-ms")) {
			int ms;

			NEED_VAL();
			if (parse_int(val, 0, 2000000000, &ms)) {
				fprintf(stderr, "hark transcribe: bad milliseconds '%s' for %s\n", val, name);
				return -1;
			}
			if (IS("-ot") || IS("--offset-t"))
				o->offset_s = ms / 1000.0;
			else
				o->duration_s = ms / 1000.0;
		} else if (IS("-bs") || IS("--beam-size")) {
			NEED_VAL();
			if (parse_int(val, 1, 16, &o->beam_size)) {
				fprintf(stderr, "hark transcribe: beam size must be 1..16\n");
				return -1;
			}
		} else if (IS("-bo") || IS("--best-of")) {
			NEED_VAL();
			if (parse_int(val, 1, 16, &o->best_of)) {
				fprintf(stderr, "hark transcribe: best-of must be 1..16\n");
				return -1;
			}
		} else if (IS("-nf") || IS("--no-fallback")) {
			o->no_fallback = 1;
		} else if (IS("-tr") || IS("--translate")) {
			o->translate = 1;
		} else if (IS("--prompt")) {
			NEED_VAL();
			o->prompt = val;
		} else if (IS("--channel")) {
			NEED_VAL();
			if (parse_int(val, 0, 63, &o->channel)) {
				fprintf(stderr, "hark transcribe: bad channel '%s'\n", val);
				return -1;
			}
		} else if (IS("-r") || IS("--recursive")) {
			o->recursive = 1;
		} else if (IS("-q") || IS("--quiet")) {
			o->quiet = 1;
		} else {
			fprintf(stderr, "hark transcribe: unknown option '%s' (see --help)\n", a);
			return -1;
		}
#undef IS
#undef NEED_VAL
	}
	return 0;
}

struct progress_ctx {
	struct hark_progress *bar;
};

static void on_progress(double fraction, double audio_done_s, void *user)
{
	struct progress_ctx *pc = user;

	hark_progress_update(pc->bar, fraction, audio_done_s);
}

/* "dir/name.ext" -> "name" (into buf). */
static void stem_of(const char *path, char *buf, size_t len)
{
	const char *base = strrchr(path, '/');
	char *dot;

	snprintf(buf, len, "%s", base ? base + 1 : path);
	dot = strrchr(buf, '.');
	if (dot && dot != buf)
		*dot = '\0';
}

/* Writes data to dir/stem.ext atomically. */
static int write_file(const char *dir, const char *stem, const char *ext, const char *data,
		      size_t len, char *err, size_t errlen)
{
	char name[1100];

	if (snprintf(name, sizeof(name), "%s.%s", stem, ext) >= (int)sizeof(name))
		return HARK_ERR_INVALID_ARG;
	return hark_cli_write_file(dir, name, data, len, err, errlen);
}

/* Emits every selected format of t to stdout or into o->out_dir. */
static int emit(const struct opts *o, const struct hark_transcript *t, const char *stem,
		int multi, char *err, size_t errlen)
{
	for (int f = HARK_FORMAT_TXT; f <= HARK_FORMAT_VTT; f++) {
		char *buf = NULL;
		size_t len = 0;
		int rc;

		if (!(o->formats & (1u << f)))
			continue;
		rc = hark_transcript_render(t, (enum hark_format)f, &buf, &len);
		if (rc != HARK_OK) {
			snprintf(err, errlen, "cannot render %s output", hark_format_ext((enum hark_format)f));
			return rc;
		}
		if (o->out_dir) {
			rc = write_file(o->out_dir, stem, hark_format_ext((enum hark_format)f), buf, len,
					err, errlen);
		} else {
			if (multi && f == HARK_FORMAT_TXT)
				printf("==> %s <==\n", t->source ? t->source : stem);
			if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0) {
				snprintf(err, errlen, "cannot write to stdout");
				rc = HARK_ERR_IO;
			}
		}
		free(buf);
		if (rc != HARK_OK)
			return rc;
	}
	return HARK_OK;
}

/* Picks a unique output stem: a second "a.wav" (from another folder) becomes "a-2". */
static void unique_stem(struct opts *o, size_t idx, char *stem, size_t len)
{
	char other[1024];
	int dup = 1;

	stem_of(o->inputs[idx].path, stem, len);
	for (size_t j = 0; j < idx; j++) {
		stem_of(o->inputs[j].path, other, sizeof(other));
		if (!strcmp(other, stem))
			dup++;
	}
	if (dup > 1) {
		size_t l = strlen(stem);
		snprintf(stem + l, len - l, "-%d", dup);
	}
}

static void free_opts(struct opts *o)
{
	for (size_t i = 0; i < o->n_inputs; i++)
		free(o->inputs[i].path);
	free(o->inputs);
}

int hark_cli_transcribe(int argc, char **argv)
{
	struct opts o = {.beam_size = 5, .best_of = 5, .channel = -1};
	struct hark_model *model = NULL;
	struct hark_ctx *ctx = NULL;
	size_t n_ok = 0, n_failed = 0, n_skipped = 0, n_args;
	int first_err = HARK_OK, mixed = 0, rc, json_errors;
	char err[1024];

	rc = parse_args(argc, argv, &o);
	if (rc != 0) {
		free_opts(&o);
		return rc > 0 ? 0 : HARK_EXIT_USAGE;
	}
	if (!o.formats)
		o.formats = 1u << HARK_FORMAT_TXT;
	if (o.n_inputs == 0) {
		fprintf(stderr, "hark transcribe: no input files (see --help)\n");
		free_opts(&o);
		return HARK_EXIT_USAGE;
	}
	json_errors = !o.out_dir && (o.formats & (1u << HARK_FORMAT_JSON));

	/* Expand folder arguments in place, keeping argument order. */
	n_args = o.n_inputs;
	{
		struct input *args = o.inputs;
		o.inputs = NULL;
		o.n_inputs = o.cap_inputs = 0;
		for (size_t i = 0; i < n_args; i++) {
			struct stat st;
			size_t before = o.n_inputs;

			if (stat(args[i].path, &st) == 0 && S_ISDIR(st.st_mode)) {
				rc = expand_dir(&o, args[i].path);
				if (rc == HARK_OK && o.n_inputs == before)
					rc = add_input(&o, args[i].path, 0); /* reported below */
			} else {
				rc = add_input(&o, args[i].path, 0);
			}
			if (rc != HARK_OK) {
				hark_cli_error(args[i].path, rc, NULL);
				for (size_t j = 0; j < n_args; j++)
					free(args[j].path);
				free(args);
				free_opts(&o);
				return hark_cli_exit_code(rc);
			}
		}
		for (size_t j = 0; j < n_args; j++)
			free(args[j].path);
		free(args);
	}

	if (o.out_dir) {
		rc = hark_cli_mkdir_p(o.out_dir);
		if (rc != HARK_OK) {
			hark_cli_error(o.out_dir, rc, "cannot create output directory");
			free_opts(&o);
			return hark_cli_exit_code(rc);
		}
	}

	for (size_t i = 0; i < o.n_inputs; i++) {
		struct hark_transcribe_params tp = hark_transcribe_default_params();
		struct hark_transcript *t = NULL;
		struct progress_ctx pc = {0};
		const char *path = o.inputs[i].path;
		char stem[1024], label[1100];
		struct stat st;

		err[0] = '\0';
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			rc = HARK_ERR_IS_DIR;
			snprintf(err, sizeof(err), "is a directory with no audio or video files%s",
				 o.recursive ? "" : " (use -r to descend into sub-folders)");
			goto report;
		}
		if (!model) {
			struct hark_model_params mp = hark_model_default_params();

			mp.engine = o.engine;
			mp.model_path = o.model;
			if (o.language)
				mp.language = o.language;
			mp.n_threads = o.threads;
			rc = hark_model_load(&mp, &model, err, sizeof(err));
			if (rc != HARK_OK) {
				hark_cli_error(o.model ? o.model : "model", rc, err);
				if (json_errors)
					hark_cli_error_json(stdout, o.model, rc, err);
				free_opts(&o);
				return hark_cli_exit_code(rc);
			}
			rc = hark_ctx_init(model, &ctx);
			if (rc != HARK_OK) {
				hark_cli_error(NULL, rc, NULL);
				hark_model_free(model);
				free_opts(&o);
				return hark_cli_exit_code(rc);
			}
		}
		{
			const char *base = strrchr(path, '/');

			base = base ? base + 1 : path;
			if (o.n_inputs > 1)
				snprintf(label, sizeof(label), "[%zu/%zu] %s", i + 1, o.n_inputs, base);
			else
				snprintf(label, sizeof(label), "%s", base);
		}
		pc.bar = hark_progress_new(label, o.quiet);
		tp.language = o.language;
		tp.n_threads = o.threads;
		tp.offset_s = o.offset_s;
		tp.duration_s = o.duration_s;
		tp.beam_size = o.beam_size;
		tp.best_of = o.best_of;
		tp.no_fallback = o.no_fallback;
		tp.translate = o.translate;
		tp.prompt = o.prompt;
		tp.progress = on_progress;
		tp.progress_user_data = &pc;
		tp.channel = o.channel;
		rc = hark_transcribe_file(ctx, path, &tp, &t);
		hark_progress_free(pc.bar);
		if (rc != HARK_OK) {
			snprintf(err, sizeof(err), "%s", hark_ctx_errmsg(ctx));
			if (o.inputs[i].from_dir && rc == HARK_ERR_NOT_MEDIA) {
				n_skipped++;
				continue;
			}
			goto report;
		}
		unique_stem(&o, i, stem, sizeof(stem));
		rc = emit(&o, t, stem, o.n_inputs > 1, err, sizeof(err));
		hark_transcript_free(t);
report:
		if (rc == HARK_OK) {
			n_ok++;
			continue;
		}
		n_failed++;
		hark_cli_error(path, rc, err[0] ? err : NULL);
		if (json_errors)
			hark_cli_error_json(stdout, path, rc, err[0] ? err : NULL);
		if (first_err == HARK_OK)
			first_err = rc;
		else if (first_err != rc)
			mixed = 1;
	}
	if (o.n_inputs > 1 && !o.quiet)
		fprintf(stderr, "hark: %zu transcribed, %zu failed%s%zu non-media skipped\n", n_ok,
			n_failed, ", ", n_skipped);
	hark_ctx_free(ctx);
	hark_model_free(model);
	free_opts(&o);
	if (n_failed == 0)
		return 0;
	return mixed ? 1 : hark_cli_exit_code(first_err);
}
