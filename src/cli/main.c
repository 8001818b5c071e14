/*
 * `hark` entry point: picks the fastest OpenBLAS kernels for this CPU (the
 * library reads OPENBLAS_CORETYPE only when it loads, so we re-exec once with
 * it set), then dispatches to the subcommand implementations in cmd_*.c.
 */
#include <cpuid.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"transcribe", hark_cli_transcribe, "transcribe audio/video files to txt, json, srt, vtt"},
	{"analyze", hark_cli_analyze, "transcripts to minutes, action items and a knowledge graph"},
	{"run", hark_cli_run, "transcribe audio/video, then analyze it"},
	{"search", hark_cli_search, "search every analysed meeting (chunks and minutes items)"},
	{"diagram", hark_cli_diagram, "speech or text to a diagram (spec, SVG, PNG)"},
	{"video", hark_cli_video, "audio to an MP4 whose diagram follows what is said"},
	{"spot", hark_cli_spot, "find keywords in audio (PocketSphinx keyword spotting)"},
	{"models", hark_cli_models, "list, pull or synthesize Whisper models"},
	{"serve", hark_cli_serve, "run the HTTP job API (uploads, queue, SSE/WebSocket progress, results)"},
	{"keys", hark_cli_keys, "create, list or revoke API keys of a server data directory"},
	{"llm", hark_cli_llm, "LLM providers: check the config, chat, embed, usage and cost"},
};

static void usage(FILE *f)
{
	fprintf(f, "hark %s - meeting audio to transcripts and knowledge\n\n"
		   "usage: hark <command> [options]\n\ncommands:\n",
		hark_version());
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "  %-12s %s\n", "version", "print the version");
	fprintf(f, "\nRun 'hark <command> --help' for the options of a command.\n");
}

/* True when the CPU has the AVX-512 subset OpenBLAS' SkylakeX kernels use. */
static int cpu_has_avx512(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	/* avx512f (b16), avx512dq (b17), avx512bw (b30), avx512vl (b31) */
	return (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31));
}

static void select_blas_kernels(char **argv)
{
	if (getenv("OPENBLAS_CORETYPE") || getenv("HARK_NO_REEXEC") || !cpu_has_avx512())
		return;
	if (setenv("OPENBLAS_CORETYPE", "SkylakeX", 1) != 0)
		return;
	execv("/proc/self/exe", argv);
	/* exec failed: carry on with the default kernels */
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return HARK_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("hark %s\n", hark_version());
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			select_blas_kernels(argv);
			return commands[i].fn(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "hark: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return HARK_EXIT_USAGE;
}
