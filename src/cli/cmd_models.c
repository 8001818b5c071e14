/*
 * `hark models`: list the known and the locally installed Whisper models,
 * pull (download, resume, verify) a model, print the resolved path of a
 * model, or synthesise a random-weight model of real dimensions for
 * benchmarks and tests.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/whisper/wkernels.h"
#include "asr/whisper/wmodel.h"
#include "asr/whisper/wmodels.h"
#include "cli/cli.h"

static void models_usage(FILE *f)
{
	fprintf(f,
		"usage: hark models <command> [options]\n\n"
		"commands:\n"
		"  list                      known models (download size) and local model files\n"
		"  pull NAME                 download ggml-NAME.bin into the models directory\n"
		"      --sha256 HEX          expected sha256 (required for names without a pinned digest)\n"
		"      --no-verify           skip the sha256 check\n"
		"      --dir DIR             destination (default: $HARK_MODELS or ~/.cache/hark/models)\n"
		"      -q, --quiet           no progress bar\n"
		"  path NAME|PATH            print the model file that NAME resolves to\n"
		"  synth --like SHAPE -o FILE [--seed N] [--ftype f16|f32|q8_0|q5_0|q5_1|q4_0|q4_1]\n"
		"                            write a random-weight model with real dimensions\n"
		"                            (SHAPE: tiny[.en], base[.en], small[.en], medium[.en],\n"
		"                            large-v1, large-v2, large-v3, large-v3-turbo, micro[.en])\n\n"
		"Search order for model names: $HARK_MODELS (':'-separated), ~/.cache/hark/models.\n"
		"$HARK_MODELS_URL overrides the download base URL.\n");
}

static void print_size(uint64_t b, char *out, size_t n)
{
	if (b >= (uint64_t)1 << 30)
		snprintf(out, n, "%.1f GiB", (double)b / (1 << 30));
	else
		snprintf(out, n, "%.0f MiB", (double)b / (1 << 20));
}

static int cmd_list(void)
{
	size_t n;
	const struct hark_wmodels_entry *cat = hark_wmodels_catalog(&n);
	char dir[1024];
	printf("Known models (hark models pull NAME):\n");
	for (size_t i = 0; i < n; i++) {
		char sz[32];
		print_size(cat[i].size, sz, sizeof(sz));
		printf("  %-22s %10s  %s\n", cat[i].name, sz, cat[i].sha256 ? "sha256 pinned" : "unpinned");
	}
	if (hark_wmodels_dir(dir, sizeof(dir)) == 0)
		printf("\nModels directory: %s\n", dir);
	struct hark_wmodels_local *loc = calloc(256, sizeof(*loc));
	if (!loc) {
		hark_cli_error(NULL, HARK_ERR_NOMEM, NULL);
		return hark_cli_exit_code(HARK_ERR_NOMEM);
	}
	size_t nl = 0;
	hark_wmodels_list_local(loc, 256, &nl);
	printf("\nLocal models:%s\n", nl ? "" : " none");
	for (size_t i = 0; i < nl; i++) {
		char sz[32], err[256];
		struct hark_wmodel *m = NULL;
		print_size(loc[i].size, sz, sizeof(sz));
		int rc = hark_wmodel_load(loc[i].path, &m, err, sizeof(err));
		if (rc) {
			printf("  %s  %s  INVALID: %s\n", loc[i].path, sz, err);
			continue;
		}
		int ft = m->hp.ftype % 1000;
		const char *ftn = ft == 0 ? "f32" : ft == 1 ? "f16" : ft == 2 ? "q4_0" : ft == 3 ? "q4_1" :
				  ft == 7 ? "q8_0" : ft == 8 ? "q5_0" : ft == 9 ? "q5_1" : "?";
		printf("  %s  %s  %s%s, %s, state %d, layers %d+%d, %d mels, n_vocab %d\n", loc[i].path, sz,
		       hark_wmodel_type_name(m), m->is_multilingual ? "" : " (English)", ftn, m->hp.n_audio_state,
		       m->hp.n_audio_layer, m->hp.n_text_layer, m->hp.n_mels, m->hp.n_vocab);
		hark_wmodel_free(m);
	}
	free(loc);
	return 0;
}

struct pull_ui {
	struct hark_progress *bar;
};

static void pull_progress(void *user, uint64_t done, uint64_t total)
{
	struct pull_ui *ui = user;
	if (total)
		hark_progress_update(ui->bar, (double)done / (double)total, (double)done / 1e6);
}

static int cmd_pull(int argc, char **argv)
{
	static const struct option opts[] = {
		{"sha256", required_argument, NULL, 's'}, {"no-verify", no_argument, NULL, 'n'},
		{"dir", required_argument, NULL, 'd'},    {"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	struct hark_wmodels_pull_params p = {0};
	int quiet = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case 's': p.sha256 = optarg; break;
		case 'n': p.no_verify = 1; break;
		case 'd': p.dir = optarg; break;
		case 'q': quiet = 1; break;
		case 'h': models_usage(stdout); return 0;
		default: models_usage(stderr); return HARK_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		hark_cli_error("models pull", HARK_ERR_INVALID_ARG, "expected exactly one model name");
		return HARK_EXIT_USAGE;
	}
	const char *name = argv[optind];
	struct pull_ui ui = {hark_progress_new(name, quiet)};
	p.progress = pull_progress;
	p.user = &ui;
	char path[1200], err[1024];
	int rc = hark_wmodels_pull(name, &p, path, sizeof(path), err, sizeof(err));
	hark_progress_free(ui.bar);
	if (rc) {
		hark_cli_error(name, rc, err[0] ? err : NULL);
		return hark_cli_exit_code(rc);
	}
	printf("%s\n", path);
	return 0;
}

static int cmd_path(int argc, char **argv)
{
	if (argc != 2) {
		hark_cli_error("models path", HARK_ERR_INVALID_ARG, "expected one model name or path");
		return HARK_EXIT_USAGE;
	}
	char path[1200];
	int rc = hark_wmodels_resolve(argv[1], path, sizeof(path));
	if (rc) {
		hark_cli_error(argv[1], rc, rc == HARK_ERR_NOT_FOUND ? "model not found (try 'hark models pull')" : NULL);
		return hark_cli_exit_code(rc);
	}
	printf("%s\n", path);
	return 0;
}

static void synth_progress(void *user, double fraction)
{
	hark_progress_update(user, fraction, 0);
}

static int cmd_synth(int argc, char **argv)
{
	static const struct option opts[] = {
		{"like", required_argument, NULL, 'l'}, {"seed", required_argument, NULL, 's'},
		{"ftype", required_argument, NULL, 'f'}, {"output", required_argument, NULL, 'o'},
		{"quiet", no_argument, NULL, 'q'},       {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct hark_wmodels_synth_params p = {0};
	const char *out = NULL;
	int quiet = 0, c;
	p.ftype = HARK_WT_F16;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'l': p.like = optarg; break;
		case 's': {
			char *end;
			p.seed = strtoull(optarg, &end, 0);
			if (*end || !*optarg) {
				hark_cli_error("--seed", HARK_ERR_INVALID_ARG, "not a number");
				return HARK_EXIT_USAGE;
			}
			break;
		}
		case 'f':
			p.ftype = hark_wmodels_ftype_from_name(optarg);
			if (p.ftype < 0) {
				hark_cli_error("--ftype", HARK_ERR_INVALID_ARG, "expected f32, f16, q8_0, q5_0, q5_1, q4_0 or q4_1");
				return HARK_EXIT_USAGE;
			}
			break;
		case 'o': out = optarg; break;
		case 'q': quiet = 1; break;
		case 'h': models_usage(stdout); return 0;
		default: models_usage(stderr); return HARK_EXIT_USAGE;
		}
	}
	if (!p.like || !out || optind != argc) {
		hark_cli_error("models synth", HARK_ERR_INVALID_ARG, "--like and -o are required");
		return HARK_EXIT_USAGE;
	}
	struct hark_progress *bar = hark_progress_new(out, quiet);
	p.progress = synth_progress;
	p.user = bar;
	char err[1024];
	int rc = hark_wmodels_synth(&p, out, err, sizeof(err));
	hark_progress_free(bar);
	if (rc) {
		hark_cli_error(out, rc, err[0] ? err : NULL);
		return rc == HARK_ERR_INVALID_ARG ? HARK_EXIT_USAGE : hark_cli_exit_code(rc);
	}
	return 0;
}

int hark_cli_models(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		models_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? HARK_EXIT_USAGE : 0;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "list"))
		return cmd_list();
	if (!strcmp(sub, "pull"))
		return cmd_pull(argc - 1, argv + 1);
	if (!strcmp(sub, "path"))
		return cmd_path(argc - 1, argv + 1);
	if (!strcmp(sub, "synth"))
		return cmd_synth(argc - 1, argv + 1);
	hark_cli_error("models", HARK_ERR_INVALID_ARG, "unknown subcommand (list, pull, path, synth)");
	return HARK_EXIT_USAGE;
}
