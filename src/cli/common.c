/*
 * Shared CLI plumbing: exit codes derived from hark_err, one-line error
 * reports (text on stderr, JSON objects for machine consumers), the
 * progress bar drawn on stderr when it is a terminal, and the file helpers
 * the commands share (folder expansion, mkdir -p, atomic output files).
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

int hark_cli_exit_code(int err)
{
	if (err == HARK_OK)
		return 0;
	if (err == HARK_ERR_INVALID_ARG)
		return HARK_EXIT_USAGE;
	if (err < 0 || err >= HARK_ERR__COUNT)
		return 1;
	return 10 + err;
}

void hark_cli_error(const char *subject, int err, const char *msg)
{
	if (!msg || !*msg)
		msg = hark_strerror(err);
	if (subject)
		fprintf(stderr, "hark: %s: %s [%s]\n", subject, msg, hark_err_code(err));
	else
		fprintf(stderr, "hark: %s [%s]\n", msg, hark_err_code(err));
}

void hark_cli_error_json(FILE *f, const char *subject, int err, const char *msg)
{
	json_t *o;
	char *s;

	if (!msg || !*msg)
		msg = hark_strerror(err);
	o = json_pack("{s:{s:s, s:s, s:s?}}", "error", "code", hark_err_code(err),
		      "message", msg, "file", subject);
	if (!o)
		return;
	s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (s) {
		fprintf(f, "%s\n", s);
		free(s);
	}
	json_decref(o);
}

struct hark_progress {
	char label[48];
	struct timespec t0;
	double last_draw;
	int active;
	int drawn;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int term_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col;
	return 80;
}

struct hark_progress *hark_progress_new(const char *label, int quiet)
{
	struct hark_progress *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	snprintf(p->label, sizeof(p->label), "%s", label ? label : "");
	p->active = !quiet && isatty(STDERR_FILENO);
	p->last_draw = -1;
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	return p;
}

static void fmt_eta(char *buf, size_t len, double s)
{
	if (s < 0 || s > 359999) {
		snprintf(buf, len, "--:--");
		return;
	}
	int t = (int)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, len, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, len, "%d:%02d", t / 60, t % 60);
}

void hark_progress_update(struct hark_progress *p, double fraction, double audio_done_s)
{
	double t, elapsed, speed, eta;
	char bar[64], eta_s[16];
	int width, n, fill;

	if (!p || !p->active)
		return;
	t = now_s();
	if (fraction < 1.0 && p->last_draw >= 0 && t - p->last_draw < 0.1)
		return;
	p->last_draw = t;
	if (fraction < 0)
		fraction = 0;
	if (fraction > 1)
		fraction = 1;
	elapsed = t - ((double)p->t0.tv_sec + p->t0.tv_nsec / 1e9);
	speed = elapsed > 0 ? audio_done_s / elapsed : 0;
	eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : -1;
	fmt_eta(eta_s, sizeof(eta_s), eta);
	width = term_width() - (int)strlen(p->label) - 40;
	if (width > (int)sizeof(bar) - 1)
		width = (int)sizeof(bar) - 1;
	if (width < 10)
		width = 10;
	fill = (int)(fraction * width + 0.5);
	for (n = 0; n < width; n++)
		bar[n] = n < fill ? '#' : '.';
	bar[width] = '\0';
	fprintf(stderr, "\r\033[K%s [%s] %3d%% %6.1fx ETA %s", p->label, bar,
		(int)(fraction * 100 + 0.5), speed, eta_s);
	fflush(stderr);
	p->drawn = 1;
}

void hark_progress_free(struct hark_progress *p)
{
	if (!p)
		return;
	if (p->active && p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	free(p);
}

/* ---- files ------------------------------------------------------------------------------- */

#define EXPAND_MAX_ENTRIES 100000
#define EXPAND_MAX_DEPTH 16

int hark_cli_mkdir_p(const char *dir)
{
	char buf[4096];
	size_t len = dir ? strlen(dir) : 0;

	if (len == 0 || len >= sizeof(buf))
		return HARK_ERR_INVALID_ARG;
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0777) != 0 && errno != EEXIST)
			return errno == EACCES ? HARK_ERR_PERMISSION : HARK_ERR_IO;
		*p = '/';
	}
	if (mkdir(buf, 0777) != 0 && errno != EEXIST)
		return errno == EACCES ? HARK_ERR_PERMISSION : HARK_ERR_IO;
	return HARK_OK;
}

int hark_cli_write_file(const char *dir, const char *name, const char *data, size_t len,
			char *err, size_t errlen)
{
	char path[4096], tmp[4200];
	FILE *f;
	int e = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return HARK_ERR_INVALID_ARG;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	f = fopen(tmp, "wb");
	if (!f) {
		e = errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
		return e == EACCES ? HARK_ERR_PERMISSION : HARK_ERR_IO;
	}
	if (fwrite(data, 1, len, f) != len || fflush(f) != 0)
		e = errno ? errno : EIO;
	if (fclose(f) != 0 && !e)
		e = errno ? errno : EIO;
	if (!e && rename(tmp, path) != 0)
		e = errno ? errno : EIO;
	if (e) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
		unlink(tmp);
		return e == EACCES ? HARK_ERR_PERMISSION : HARK_ERR_IO;
	}
	return HARK_OK;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int expand(const char *dir, int recursive, int depth,
		  int (*accept)(const char *name, void *ud), int (*add)(const char *path, void *ud),
		  void *ud)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = HARK_OK;

	if (!d)
		return errno == EACCES ? HARK_ERR_PERMISSION : HARK_ERR_IO;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nn;

			cap = cap ? cap * 2 : 32;
			if (cap > EXPAND_MAX_ENTRIES) {
				rc = HARK_ERR_LIMIT;
				goto out;
			}
			nn = realloc(names, cap * sizeof(*nn));
			if (!nn) {
				rc = HARK_ERR_NOMEM;
				goto out;
			}
			names = nn;
		}
		names[n] = strdup(e->d_name);
		if (!names[n]) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n && rc == HARK_OK; i++) {
		char path[4096];
		struct stat st;

		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path))
			continue;
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (recursive && depth < EXPAND_MAX_DEPTH)
				rc = expand(path, recursive, depth + 1, accept, add, ud);
		} else if (S_ISREG(st.st_mode) && (!accept || accept(names[i], ud))) {
			rc = add(path, ud);
		}
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

int hark_cli_expand_dir(const char *dir, int recursive, int (*accept)(const char *name, void *ud),
			int (*add)(const char *path, void *ud), void *ud)
{
	if (!dir || !add)
		return HARK_ERR_INVALID_ARG;
	return expand(dir, recursive, 0, accept, add, ud);
}
