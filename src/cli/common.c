/*
 * Shared CLI plumbing: exit codes derived from hark_err, one-line error
 * reports (text on stderr, JSON objects for machine consumers), and the
 * progress bar drawn on stderr when it is a terminal.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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
