/*
 * `hark spot`: finds where keywords are spoken in audio/video files with
 * PocketSphinx keyword spotting (src/asr/kws.h) and prints one line per hit,
 * "HH:MM:SS.mmm  keyword  score", or JSON lines. Every file is processed;
 * a failure is reported with the file name and the exit code is that of the
 * first failure.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/kws.h"
#include "cli/cli.h"

#define SPOT_MAX_KEYWORD_ARG 65536

static void spot_help(void)
{
	printf("usage: hark spot FILE... --keywords \"word,phrase,...\" [options]\n\n"
	       "Finds where the given words or phrases are spoken (PocketSphinx keyword\n"
	       "spotting). Prints one line per hit: HH:MM:SS.mmm  keyword  score.\n\n"
	       "  -k, --keywords LIST    comma-separated words or phrases (required; each\n"
	       "                         word must be in the pronunciation dictionary)\n"
	       "      --threshold X      detection threshold in (0, 1], default 1e-20;\n"
	       "                         larger = fewer, surer hits (short words need larger)\n"
	       "      --format FMT       txt (default) or json (one JSON object per line)\n"
	       "  -m, --model DIR        PocketSphinx model directory (default: built-in en-us,\n"
	       "                         or $HARK_PS_MODEL)\n"
	       "      --channel N        listen to channel N (0-based) instead of a downmix\n"
	       "  -q, --quiet            no progress bar\n"
	       "  -h, --help             this help\n\n"
	       "Exit status: 0 when every file succeeded, 2 for usage errors, otherwise\n"
	       "10 + the error number of the first failure (see docs/CLI.md).\n");
}

static void progress_cb(double fraction, double audio_done_s, void *user)
{
	hark_progress_update(user, fraction, audio_done_s);
}

/* "12.5" -> "00:00:12.500" */
static void fmt_time(double t, char *buf, size_t cap)
{
	long long ms = (long long)(t * 1000.0 + 0.5);
	if (ms < 0)
		ms = 0;
	snprintf(buf, cap, "%02lld:%02lld:%02lld.%03lld", ms / 3600000, ms / 60000 % 60,
		 ms / 1000 % 60, ms % 1000);
}

/* Splits list on commas into words[] (pointers into list, trimmed). */
static size_t split_keywords(char *list, const char **words, size_t cap)
{
	size_t n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		while (*tok == ' ' || *tok == '\t')
			tok++;
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = 0;
		if (!*tok)
			continue;
		if (n == cap)
			return cap + 1;
		words[n++] = tok;
	}
	return n;
}

static int print_hits(const char *file, int multi, int json, const struct hark_kws_hit *h,
		      size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (json) {
			json_t *o = json_pack("{s:s, s:s, s:f, s:f, s:f}", "file", file, "keyword",
					      h[i].keyword, "start", h[i].start, "end", h[i].end,
					      "score", (double)h[i].score);
			char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
			json_decref(o);
			if (!s)
				return HARK_ERR_NOMEM;
			printf("%s\n", s);
			free(s);
		} else {
			char t[32];
			fmt_time(h[i].start, t, sizeof t);
			if (multi)
				printf("%s: ", file);
			printf("%s  %s  %.3f\n", t, h[i].keyword, (double)h[i].score);
		}
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		return HARK_ERR_IO;
	return HARK_OK;
}

int hark_cli_spot(int argc, char **argv)
{
	struct hark_kws_params p = hark_kws_default_params();
	const char **files = NULL;
	const char *words[HARK_KWS_MAX_KEYWORDS];
	char *kwlist = NULL;
	size_t n_files = 0, n_words = 0;
	int json = 0, quiet = 0, first_err = HARK_OK, rc = 0;

	files = calloc((size_t)argc + 1, sizeof *files);
	if (!files) {
		hark_cli_error(NULL, HARK_ERR_NOMEM, NULL);
		return hark_cli_exit_code(HARK_ERR_NOMEM);
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		int need = !strcmp(a, "-k") || !strcmp(a, "--keywords") ||
			   !strcmp(a, "--threshold") || !strcmp(a, "--format") ||
			   !strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--channel");
		if (need) {
			if (i + 1 >= argc) {
				hark_cli_error(NULL, HARK_ERR_INVALID_ARG, "option needs a value");
				rc = HARK_EXIT_USAGE;
				goto out;
			}
			val = argv[++i];
		} else if (!strncmp(a, "--keywords=", 11) || !strncmp(a, "--threshold=", 12) ||
			   !strncmp(a, "--format=", 9) || !strncmp(a, "--model=", 8) ||
			   !strncmp(a, "--channel=", 10)) {
			val = strchr(a, '=') + 1;
			need = 1;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			spot_help();
			goto out;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			quiet = 1;
		} else if (need && (!strncmp(a, "-k", 2) || !strncmp(a, "--keywords", 10))) {
			if (strlen(val) > SPOT_MAX_KEYWORD_ARG) {
				hark_cli_error(NULL, HARK_ERR_INVALID_ARG, "keyword list too long");
				rc = HARK_EXIT_USAGE;
				goto out;
			}
			free(kwlist);
			kwlist = strdup(val);
			if (!kwlist) {
				rc = hark_cli_exit_code(HARK_ERR_NOMEM);
				goto out;
			}
		} else if (need && !strncmp(a, "--threshold", 11)) {
			char *end;
			errno = 0;
			p.threshold = strtod(val, &end);
			if (errno || end == val || *end || !(p.threshold > 0) || p.threshold > 1) {
				hark_cli_error(NULL, HARK_ERR_INVALID_ARG,
					       "--threshold must be a number in (0, 1], e.g. 1e-20");
				rc = HARK_EXIT_USAGE;
				goto out;
			}
		} else if (need && !strncmp(a, "--format", 8)) {
			if (!strcmp(val, "json")) {
				json = 1;
			} else if (!strcmp(val, "txt")) {
				json = 0;
			} else {
				hark_cli_error(NULL, HARK_ERR_INVALID_ARG, "--format must be txt or json");
				rc = HARK_EXIT_USAGE;
				goto out;
			}
		} else if (need && (!strncmp(a, "-m", 2) || !strncmp(a, "--model", 7))) {
			p.model_path = val;
		} else if (need && !strncmp(a, "--channel", 9)) {
			char *end;
			long c = strtol(val, &end, 10);
			if (end == val || *end || c < 0 || c > 63) {
				hark_cli_error(NULL, HARK_ERR_INVALID_ARG, "--channel must be 0..63");
				rc = HARK_EXIT_USAGE;
				goto out;
			}
			p.channel = (int)c;
		} else if (a[0] == '-' && a[1] != 0) {
			char msg[300];
			snprintf(msg, sizeof msg, "unknown option '%.200s' (see hark spot --help)", a);
			hark_cli_error(NULL, HARK_ERR_INVALID_ARG, msg);
			rc = HARK_EXIT_USAGE;
			goto out;
		} else {
			files[n_files++] = a;
		}
	}
	if (!kwlist) {
		hark_cli_error(NULL, HARK_ERR_INVALID_ARG, "--keywords is required");
		rc = HARK_EXIT_USAGE;
		goto out;
	}
	n_words = split_keywords(kwlist, words, HARK_KWS_MAX_KEYWORDS);
	if (n_words == 0 || n_words > HARK_KWS_MAX_KEYWORDS) {
		hark_cli_error(NULL, HARK_ERR_INVALID_ARG,
			       n_words ? "too many keywords" : "--keywords lists no keyword");
		rc = HARK_EXIT_USAGE;
		goto out;
	}
	if (n_files == 0) {
		hark_cli_error(NULL, HARK_ERR_INVALID_ARG, "no input file (see hark spot --help)");
		rc = HARK_EXIT_USAGE;
		goto out;
	}
	for (size_t i = 0; i < n_files; i++) {
		struct hark_kws_hit *hits = NULL;
		size_t n_hits = 0;
		char err[512] = "";
		struct hark_progress *bar = hark_progress_new(files[i], quiet);
		int e;

		p.progress = bar ? progress_cb : NULL;
		p.progress_user_data = bar;
		e = hark_kws_spot_file(files[i], words, n_words, &p, &hits, &n_hits, err, sizeof err);
		hark_progress_free(bar);
		if (e == HARK_OK)
			e = print_hits(files[i], n_files > 1, json, hits, n_hits);
		hark_kws_hits_free(hits, n_hits);
		if (e != HARK_OK) {
			hark_cli_error(e == HARK_ERR_INVALID_ARG ? NULL : files[i], e, err[0] ? err : NULL);
			if (first_err == HARK_OK)
				first_err = e;
			/* the same keyword error would repeat for every file */
			if (e == HARK_ERR_INVALID_ARG || e == HARK_ERR_MODEL)
				break;
		}
	}
	rc = hark_cli_exit_code(first_err);
out:
	free(kwlist);
	free(files);
	return rc;
}
