/*
 * `hark diagram` and `hark video`: from audio, a hark transcript or plain
 * text to a diagram of what was explained. `diagram` writes the validated
 * spec (<name>.diagram.json), <name>.svg and <name>.png (long inputs: one set
 * per page, <name>.p2.*, ...). `video` renders an MP4 of the audio in which
 * the diagram's elements appear as they are spoken, the current one is
 * highlighted and captions follow the transcript. Audio input is
 * transcribed first; the type is detected unless --type names one; with an
 * LLM provider configured the spec is refined through the LLM layer and
 * validated, falling back to the offline spec.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "analyze/pipeline.h"
#include "analyze/visual.h"
#include "audio/audio.h"
#include "cli/cli.h"
#include "hark/transcribe.h"
#include "llm/config.h"
#include "llm/llm.h"
#include "render/scene.h"
#include "render/video.h"
#include "store/store.h"
#include "util/errbuf.h"

#define DEFAULT_DATA ".hark"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static int cancel_cb(void *ud)
{
	(void)ud;
	return g_stop != 0;
}

struct dopts {
	const char *cmd;
	const char *input;
	const char *transcript;  /* video: --transcript */
	const char *out;         /* diagram: directory; video: file */
	int type;                /* -1 = auto */
	int dark;
	int width, height, fps;
	const char *preset;      /* video: x264 preset */
	int crf;
	int png_w, png_h;
	size_t max_nodes, max_pages;
	const char *title, *date;
	const char *engine, *model, *language;
	int threads;
	const char *config, *data;
	int offline, no_cache, quiet, json;
	int captions;
};

static void help(FILE *f, int video)
{
	if (video)
		fprintf(f,
			"usage: hark video AUDIO [options]\n\n"
			"Renders an MP4 (H.264 + AAC) of AUDIO whose picture is a diagram of what is\n"
			"said: elements appear when they are spoken, the current one is highlighted\n"
			"and captions follow the transcript. The video lasts exactly as long as the audio.\n\n"
			"options:\n"
			"  --transcript FILE      reuse a hark transcript (JSON/SRT/VTT) instead of\n"
			"                         transcribing AUDIO\n"
			"  -o, --output FILE      the MP4 (default: <name>.mp4 in the current directory)\n"
			"  --size WxH             frame size (1280x720)\n"
			"  --fps N                frames per second (30; 1..60)\n"
			"  --preset NAME          x264 speed/size trade-off: ultrafast ... veryslow\n"
			"                         (ultrafast: fastest; veryfast: ~30%% smaller files)\n"
			"  --crf N                x264 quality, 0 (lossless) .. 51 (23)\n"
			"  --no-captions          no caption band\n");
	else
		fprintf(f,
			"usage: hark diagram INPUT [options]\n\n"
			"Turns a spoken explanation (audio/video, a hark transcript, SRT/VTT or plain\n"
			"text) into a diagram: <name>.diagram.json (the spec), <name>.svg and\n"
			"<name>.png. Long inputs are split into pages (<name>.p2.*, ...).\n\n"
			"options:\n"
			"  -o, --output-dir DIR   where the files go (default: current directory)\n"
			"  --png-size WxH         PNG size (1280x720)\n"
			"  --max-pages N          pages written at most (12)\n");
	fprintf(f,
		"  --type TYPE            auto, flowchart, timeline, mindmap, hierarchy, sequence\n"
		"                         (auto: detected from the content)\n"
		"  --dark                 dark theme\n"
		"  --title TEXT           diagram title (default: from the content)\n"
		"  --date YYYY-MM-DD      date the speech refers to (\"next Friday\" on timelines)\n"
		"  --max-nodes N          nodes per page (24; 4..60)\n"
		"  -e, --engine NAME      speech engine for audio input: auto, whisper, pocketsphinx\n"
		"  -m, --model PATH       speech model\n"
		"  -l, --language LANG    spoken language (en)\n"
		"  -t, --threads N        threads (all cores)\n"
		"  --config FILE          hark config with LLM providers (or $HARK_CONFIG); without\n"
		"                         one the offline structure analysis is used\n"
		"  --offline              never use an LLM\n"
		"  --no-cache             do not answer LLM requests from the cache\n"
		"  --data DIR             data directory for the LLM cache (" DEFAULT_DATA ")\n"
		"  --json                 print a JSON report on stdout\n"
		"  -q, --quiet            no progress bars or summary\n");
}

static int usage(const char *cmd, const char *msg)
{
	fprintf(stderr, "hark %s: %s (see hark %s --help)\n", cmd, msg, cmd);
	return -1;
}

static int parse_wh(const char *s, int lo_w, int hi_w, int lo_h, int hi_h, int *w, int *h)
{
	char *e;
	long a, b;

	errno = 0;
	a = strtol(s, &e, 10);
	if (e == s || (*e != 'x' && *e != 'X'))
		return -1;
	s = e + 1;
	b = strtol(s, &e, 10);
	if (e == s || *e || errno || a < lo_w || a > hi_w || b < lo_h || b > hi_h)
		return -1;
	*w = (int)a;
	*h = (int)b;
	return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *e;
	long v;

	errno = 0;
	v = strtol(s, &e, 10);
	if (e == s || *e || errno || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int date_ok(const char *s)
{
	int y, m, d;
	char tail;

	return strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 && m >= 1 &&
	       m <= 12 && d >= 1 && d <= 31;
}

/* 0 ok, 1 help printed, -1 usage error. */
static int parse_args(int argc, char **argv, struct dopts *o, int video)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		long n;

#define NEED()                                                          \
	do {                                                            \
		if (!v)                                                 \
			return usage(o->cmd, "option needs a value");   \
		i++;                                                    \
	} while (0)
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			help(stdout, video);
			return 1;
		} else if (!strcmp(a, "-o") || !strcmp(a, "--output") ||
			   !strcmp(a, "--output-dir")) {
			NEED();
			o->out = v;
		} else if (!strcmp(a, "--type")) {
			NEED();
			if (!strcmp(v, "auto"))
				o->type = -1;
			else if (hark_diagram_type_parse(v, &o->type) != HARK_OK) {
				fprintf(stderr,
					"hark %s: unknown --type \"%s\": use auto, flowchart, timeline, "
					"mindmap, hierarchy or sequence\n",
					o->cmd, v);
				return -1;
			}
		} else if (!strcmp(a, "--dark")) {
			o->dark = 1;
		} else if (!strcmp(a, "--title")) {
			NEED();
			o->title = v;
		} else if (!strcmp(a, "--date")) {
			NEED();
			if (!date_ok(v))
				return usage(o->cmd, "--date wants YYYY-MM-DD");
			o->date = v;
		} else if (!strcmp(a, "--max-nodes")) {
			NEED();
			if (parse_long(v, 4, HARK_DIAGRAM_MAX_NODES, &n))
				return usage(o->cmd, "--max-nodes wants 4..60");
			o->max_nodes = (size_t)n;
		} else if (!video && !strcmp(a, "--max-pages")) {
			NEED();
			if (parse_long(v, 1, 64, &n))
				return usage(o->cmd, "--max-pages wants 1..64");
			o->max_pages = (size_t)n;
		} else if (!video && !strcmp(a, "--png-size")) {
			NEED();
			if (parse_wh(v, 64, 7680, 64, 4320, &o->png_w, &o->png_h))
				return usage(o->cmd, "--png-size wants WxH (64..7680 x 64..4320)");
		} else if (video && !strcmp(a, "--size")) {
			NEED();
			if (parse_wh(v, 64, 3840, 64, 2160, &o->width, &o->height) ||
			    (o->width | o->height) & 1)
				return usage(o->cmd, "--size wants even WxH within 64..3840 x 64..2160");
		} else if (video && !strcmp(a, "--fps")) {
			NEED();
			if (parse_long(v, 1, 60, &n))
				return usage(o->cmd, "--fps wants 1..60");
			o->fps = (int)n;
		} else if (video && !strcmp(a, "--transcript")) {
			NEED();
			o->transcript = v;
		} else if (video && !strcmp(a, "--preset")) {
			NEED();
			o->preset = v;
		} else if (video && !strcmp(a, "--crf")) {
			NEED();
			if (parse_long(v, 0, 51, &n))
				return usage(o->cmd, "--crf wants 0..51");
			o->crf = (int)n;
		} else if (video && !strcmp(a, "--no-captions")) {
			o->captions = 0;
		} else if (!strcmp(a, "-e") || !strcmp(a, "--engine")) {
			NEED();
			o->engine = v;
		} else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
			NEED();
			o->model = v;
		} else if (!strcmp(a, "-l") || !strcmp(a, "--language")) {
			NEED();
			o->language = v;
		} else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
			NEED();
			if (parse_long(v, 1, 256, &n))
				return usage(o->cmd, "--threads wants 1..256");
			o->threads = (int)n;
		} else if (!strcmp(a, "--config")) {
			NEED();
			o->config = v;
		} else if (!strcmp(a, "--data")) {
			NEED();
			o->data = v;
		} else if (!strcmp(a, "--offline")) {
			o->offline = 1;
		} else if (!strcmp(a, "--no-cache")) {
			o->no_cache = 1;
		} else if (!strcmp(a, "--json")) {
			o->json = 1;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			o->quiet = 1;
		} else if (a[0] == '-' && a[1]) {
			char msg[160];

			snprintf(msg, sizeof(msg), "unknown option %.100s", a);
			return usage(o->cmd, msg);
		} else if (!o->input) {
			o->input = a;
		} else {
			return usage(o->cmd, "one input at a time");
		}
#undef NEED
	}
	if (!o->input)
		return usage(o->cmd, video ? "no AUDIO given" : "no INPUT given");
	return 0;
}

/* The input's stem: file name without directory and extension(s) hark adds. */
static void stem_of(const char *path, char *out, size_t n)
{
	const char *b = strrchr(path, '/');
	char *dot;
	size_t l;

	snprintf(out, n, "%s", b ? b + 1 : path);
	l = strlen(out);
	if (l > 15 && !strcmp(out + l - 15, ".transcript.txt"))
		out[l - 15] = '\0';
	else if ((dot = strrchr(out, '.')) && dot != out)
		*dot = '\0';
	if (!out[0])
		snprintf(out, n, "diagram");
}

struct tprog {
	struct hark_progress *bar;
};

static void on_tprogress(double fraction, double audio_done_s, void *ud)
{
	struct tprog *t = ud;

	hark_progress_update(t->bar, fraction, audio_done_s);
}

static int on_tcancel(void *ud)
{
	(void)ud;
	return g_stop != 0;
}

/* Transcribes path into *t (progress bar on a terminal). */
static int transcribe(const struct dopts *o, const char *path, struct hark_transcript **t,
		      char *err, size_t errlen)
{
	struct hark_model_params mp = hark_model_default_params();
	struct hark_transcribe_params tp = hark_transcribe_default_params();
	struct hark_model *model = NULL;
	struct hark_ctx *ctx = NULL;
	struct tprog tpg = {0};
	int rc;

	mp.engine = o->engine;
	mp.model_path = o->model;
	if (o->language)
		mp.language = o->language;
	mp.n_threads = o->threads;
	rc = hark_model_load(&mp, &model, err, errlen);
	if (rc != HARK_OK)
		goto out;
	rc = hark_ctx_init(model, &ctx);
	if (rc != HARK_OK)
		goto out;
	tpg.bar = hark_progress_new("transcribe", o->quiet);
	tp.language = o->language;
	tp.n_threads = o->threads;
	tp.progress = on_tprogress;
	tp.progress_user_data = &tpg;
	tp.cancel = on_tcancel;
	rc = hark_transcribe_file(ctx, path, &tp, t);
	hark_progress_free(tpg.bar);
	if (rc != HARK_OK)
		hark_errbuf_set(err, errlen, "%s", hark_ctx_errmsg(ctx));
out:
	hark_ctx_free(ctx);
	hark_model_free(model);
	return rc;
}

/* Turns of the input: audio is transcribed, anything else read as a
 * transcript. *dur gets the audio length when known (else -1). */
static int read_turns(const struct dopts *o, const char *path, int audio_only,
		      struct hark_transcript **t, struct hark_chunk_turn **turns, size_t *n,
		      void **owner, char date[11], double *dur, char *err, size_t errlen)
{
	struct hark_pipeline_input in;
	struct hark_audio *a = NULL;
	int rc, is_audio;

	memset(&in, 0, sizeof(in));
	*dur = -1;
	date[0] = '\0';
	rc = hark_audio_open(path, NULL, &a, err, errlen);
	is_audio = rc == HARK_OK;
	if (is_audio) {
		*dur = hark_audio_info(a)->duration_s > 0 ? hark_audio_info(a)->duration_s : -1;
		hark_audio_close(a);
	} else if (audio_only || (rc != HARK_ERR_NOT_MEDIA && rc != HARK_ERR_EMPTY)) {
		return rc;
	}
	if (is_audio) {
		rc = transcribe(o, path, t, err, errlen);
		if (rc != HARK_OK)
			return rc;
		if ((*t)->duration > 0)
			*dur = (*t)->duration;
		in.transcript = *t;
		hark_audio_probe_date(path, date);
	} else {
		in.path = path;
	}
	{
		char meta[11] = "";

		rc = hark_pipeline_read(&in, (size_t)64 << 20, turns, n, owner, meta, err, errlen);
		if (!date[0])
			memcpy(date, meta, sizeof(meta));
	}
	return rc;
}

static int open_llm(const struct dopts *o, struct hark_llm_config **cfg, struct hark_store **st,
		    struct hark_llm **llm)
{
	struct hark_store_params sp = hark_store_default_params();
	char err[512] = "";
	int rc;

	if (o->offline)
		return HARK_OK;
	rc = hark_llm_config_load(o->config, cfg, err, sizeof(err));
	if (rc != HARK_OK) {
		hark_cli_error(o->config ? o->config : "config", rc, err);
		return rc;
	}
	if ((*cfg)->n_providers == 0)
		return HARK_OK;
	rc = hark_cli_mkdir_p(o->data);
	if (rc == HARK_OK)
		rc = hark_store_open(o->data, &sp, st, err, sizeof(err));
	if (rc != HARK_OK) {
		hark_cli_error(o->data, rc, err[0] ? err : "cannot open the data directory");
		return rc;
	}
	{
		struct hark_llm_params lp = hark_llm_default_params();

		lp.config = *cfg;
		lp.store = *st;
		lp.no_cache = o->no_cache;
		rc = hark_llm_init(&lp, llm, err, sizeof(err));
		if (rc != HARK_OK)
			hark_cli_error("llm", rc, err);
	}
	return rc;
}

static void report_json(const struct dopts *o, const char *stem,
			const struct hark_visual_result *vr, json_t *files,
			const struct hark_video_stats *vs)
{
	json_t *j = json_object(), *dec = hark_visual_result_to_json(vr);
	char *s;

	if (!j || !dec) {
		json_decref(j);
		json_decref(dec);
		hark_cli_error(NULL, HARK_ERR_NOMEM, NULL);
		return;
	}
	json_object_set_new(j, "input", json_string(o->input));
	json_object_set_new(j, "name", json_string(stem));
	json_object_update(j, dec);
	json_decref(dec);
	if (vs) {
		json_object_set_new(j, "duration", json_real(vs->duration_s));
		json_object_set_new(j, "frames", json_integer(vs->frames));
		json_object_set_new(j, "painted", json_integer(vs->painted));
		json_object_set_new(j, "render_seconds", json_real(vs->wall_s));
	}
	json_object_set_new(j, "files", json_incref(files));
	s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(j);
}

struct vprog {
	struct hark_progress *bar;
	double duration;
};

static void on_vprogress(double fraction, void *ud)
{
	struct vprog *v = ud;

	hark_progress_update(v->bar, fraction, fraction * v->duration);
}

static int run_cmd(int argc, char **argv, int video)
{
	struct dopts o;
	struct hark_transcript *t = NULL, *tt = NULL;
	struct hark_chunk_turn *turns = NULL;
	size_t n_turns = 0;
	void *owner = NULL;
	struct hark_llm_config *cfg = NULL;
	struct hark_store *st = NULL;
	struct hark_llm *llm = NULL;
	struct hark_visual_params vp = hark_visual_default_params();
	struct hark_visual_result vr;
	struct hark_scene_params scp = hark_scene_default_params();
	struct hark_scene *scene = NULL;
	struct hark_video_stats vs;
	struct sigaction sa, old_int, old_term;
	json_t *files = json_array();
	char err[1024] = "", stem[256], date[11] = "", path[4200];
	const char *subject;
	double dur = -1;
	int rc, exit_code = 0;

	memset(&o, 0, sizeof(o));
	memset(&vr, 0, sizeof(vr));
	memset(&vs, 0, sizeof(vs));
	o.cmd = video ? "video" : "diagram";
	o.type = -1;
	o.width = 1280;
	o.height = 720;
	o.fps = 30;
	o.max_nodes = 24;
	o.max_pages = 12;
	o.data = DEFAULT_DATA;
	o.captions = 1;
	o.crf = -1;
	rc = parse_args(argc, argv, &o, video);
	if (rc != 0) {
		json_decref(files);
		return rc == 1 ? 0 : HARK_EXIT_USAGE;
	}
	subject = o.input;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	g_stop = 0;
	stem_of(o.input, stem, sizeof(stem));

	if (video && o.transcript) {
		struct hark_audio *a = NULL;

		/* the audio must be real audio; the transcript gives the words */
		rc = hark_audio_open(o.input, NULL, &a, err, sizeof(err));
		if (rc != HARK_OK)
			goto fail;
		hark_audio_close(a);
		rc = read_turns(&o, o.transcript, 0, &tt, &turns, &n_turns, &owner, date, &dur, err,
				sizeof(err));
		subject = o.input;
		dur = -1;
	} else {
		rc = read_turns(&o, o.input, video, &t, &turns, &n_turns, &owner, date, &dur, err,
				sizeof(err));
	}
	if (rc != HARK_OK) {
		if (rc == HARK_ERR_EMPTY && t)
			hark_errbuf_set(err, sizeof(err), "no speech found");
		if (video && o.transcript)
			subject = o.transcript;
		goto fail;
	}
	rc = open_llm(&o, &cfg, &st, &llm);
	if (rc != HARK_OK) {
		exit_code = hark_cli_exit_code(rc);
		goto out;
	}
	vp.type = o.type;
	vp.max_nodes = o.max_nodes;
	vp.max_pages = video ? 64 : o.max_pages;
	vp.title = o.title;
	vp.meeting_date = o.date ? o.date : (date[0] ? date : NULL);
	vp.source = o.input;
	vp.duration_s = dur;
	vp.llm = llm;
	vp.cancel = cancel_cb;
	rc = hark_visual_build(turns, n_turns, &vp, &vr, err, sizeof(err));
	if (rc == HARK_ERR_EMPTY)
		hark_errbuf_set(err, sizeof(err), "no speech found: nothing to draw");
	if (rc != HARK_OK)
		goto fail;
	scp.dark = o.dark;
	scp.captions = o.captions;
	rc = hark_scene_init(vr.pages, vr.n_pages, turns, n_turns, &scp, &scene, err, sizeof(err));
	if (rc != HARK_OK)
		goto fail;

	if (!video) {
		const char *dir = o.out ? o.out : ".";

		rc = hark_cli_mkdir_p(dir);
		if (rc != HARK_OK) {
			hark_errbuf_set(err, sizeof(err), "cannot create the output directory %s", dir);
			subject = dir;
			goto fail;
		}
		for (size_t k = 0; k < vr.n_pages; k++) {
			char base[300], name[340];
			unsigned char *buf = NULL;
			size_t len = 0;
			json_t *spec = hark_diagram_to_json(&vr.pages[k]);
			char *txt = spec ? json_dumps(spec, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
					 : NULL;

			json_decref(spec);
			if (k == 0)
				snprintf(base, sizeof(base), "%s", stem);
			else
				snprintf(base, sizeof(base), "%s.p%zu", stem, k + 1);
			snprintf(name, sizeof(name), "%s.diagram.json", base);
			rc = txt ? hark_cli_write_file(dir, name, txt, strlen(txt), err, sizeof(err))
				 : HARK_ERR_NOMEM;
			free(txt);
			if (rc == HARK_OK) {
				json_array_append_new(files, json_sprintf("%s/%s", dir, name));
				rc = hark_scene_svg(scene, k, &buf, &len, err, sizeof(err));
			}
			if (rc == HARK_OK) {
				snprintf(name, sizeof(name), "%s.svg", base);
				rc = hark_cli_write_file(dir, name, (const char *)buf, len, err,
							 sizeof(err));
				free(buf);
				buf = NULL;
			}
			if (rc == HARK_OK) {
				json_array_append_new(files, json_sprintf("%s/%s", dir, name));
				rc = hark_scene_png(scene, k, o.png_w, o.png_h, &buf, &len, err,
						    sizeof(err));
			}
			if (rc == HARK_OK) {
				snprintf(name, sizeof(name), "%s.png", base);
				rc = hark_cli_write_file(dir, name, (const char *)buf, len, err,
							 sizeof(err));
				free(buf);
			}
			if (rc != HARK_OK) {
				subject = dir;
				goto fail;
			}
			json_array_append_new(files, json_sprintf("%s/%s", dir, name));
		}
	} else {
		struct hark_video_params p = hark_video_default_params();
		struct vprog vpg = {0};

		if (o.out)
			snprintf(path, sizeof(path), "%s", o.out);
		else
			snprintf(path, sizeof(path), "%s.mp4", stem);
		p.width = o.width;
		p.height = o.height;
		p.fps = o.fps;
		p.threads = o.threads;
		if (o.preset)
			p.preset = o.preset;
		if (o.crf >= 0)
			p.crf = o.crf;
		p.paint = hark_scene_paint;
		p.key = hark_scene_key;
		p.paint_user_data = scene;
		vpg.bar = hark_progress_new("render", o.quiet);
		vpg.duration = dur > 0 ? dur : 0;
		p.progress = on_vprogress;
		p.cancel = cancel_cb;
		p.cb_user_data = &vpg;
		rc = hark_video_encode(o.input, path, &p, &vs, err, sizeof(err));
		hark_progress_free(vpg.bar);
		if (rc != HARK_OK) {
			subject = path;
			goto fail;
		}
		json_array_append_new(files, json_string(path));
	}
	if (o.json)
		report_json(&o, stem, &vr, files, video ? &vs : NULL);
	if (!o.quiet) {
		const struct hark_diagram *d = &vr.pages[0];

		fprintf(stderr, "%s: %s (%s%s, %s), %zu nodes, %zu edges", stem,
			hark_diagram_type_name(d->type), o.type < 0 ? "detected" : "asked",
			o.type < 0 && vr.scores.confidence < 0.2 ? ", low confidence" : "",
			vr.used_llm ? "llm" : "offline", d->n_nodes, d->n_edges);
		if (vr.total_pages > 1)
			fprintf(stderr, ", %zu of %zu pages", vr.n_pages, vr.total_pages);
		if (video)
			fprintf(stderr, "; %.1f s video, %ld frames in %.2f s", vs.duration_s,
				vs.frames, vs.wall_s);
		fprintf(stderr, "\n");
		if (vr.note[0])
			fprintf(stderr, "note: %s\n", vr.note);
		for (size_t i = 0; i < json_array_size(files); i++)
			fprintf(stderr, "  %s\n", json_string_value(json_array_get(files, i)));
	}
	goto out;
fail:
	if (rc == HARK_ERR_CANCELED)
		hark_errbuf_set(err, sizeof(err), "canceled");
	hark_cli_error(subject, rc, err[0] ? err : NULL);
	if (o.json)
		hark_cli_error_json(stdout, subject, rc, err[0] ? err : NULL);
	exit_code = hark_cli_exit_code(rc);
out:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	hark_scene_free(scene);
	hark_visual_result_clear(&vr);
	hark_llm_free(llm);
	hark_store_close(st);
	hark_llm_config_free(cfg);
	free(owner); /* the turns live inside it */
	hark_transcript_free(tt);
	hark_transcript_free(t);
	json_decref(files);
	return exit_code;
}

int hark_cli_diagram(int argc, char **argv)
{
	return run_cmd(argc, argv, 0);
}

int hark_cli_video(int argc, char **argv)
{
	return run_cmd(argc, argv, 1);
}
