/*
 * Shared pieces of the `hark` command line: one entry point per subcommand
 * (each in its own cmd_*.c file), the mapping from hark_err to process exit
 * codes, uniform error reporting, and the terminal progress bar.
 */
#ifndef HARK_CLI_CLI_H
#define HARK_CLI_CLI_H

#include <stdio.h>

#include "hark/hark.h"

/* Subcommands: argv[0] is the subcommand name. Return a process exit code. */
int hark_cli_transcribe(int argc, char **argv);
int hark_cli_spot(int argc, char **argv);
int hark_cli_models(int argc, char **argv);
int hark_cli_serve(int argc, char **argv);
int hark_cli_keys(int argc, char **argv);
int hark_cli_llm(int argc, char **argv);
int hark_cli_analyze(int argc, char **argv);
int hark_cli_run(int argc, char **argv);
int hark_cli_search(int argc, char **argv);
int hark_cli_diagram(int argc, char **argv);
int hark_cli_video(int argc, char **argv);

/*
 * Exit codes: 0 success; 2 usage error (HARK_ERR_INVALID_ARG); otherwise
 * 10 + err, so every error kind has its own code (e.g. 19 = no audio stream).
 * See docs/CLI.md.
 */
#define HARK_EXIT_USAGE 2
int hark_cli_exit_code(int err);

/* Prints "hark: <subject>: <msg> [<code>]" to stderr, one line. subject may
 * be NULL; msg NULL means hark_strerror(err). */
void hark_cli_error(const char *subject, int err, const char *msg);

/* Writes {"error":{"code","message","file"}} plus a newline to f. */
void hark_cli_error_json(FILE *f, const char *subject, int err, const char *msg);

/* Creates dir and its parents (mode 0777 before umask); an existing
 * directory is fine. HARK_ERR_INVALID_ARG (empty or over 4095 bytes),
 * HARK_ERR_PERMISSION, HARK_ERR_IO. */
int hark_cli_mkdir_p(const char *dir);

/* Writes data[0..len) to dir/name atomically (a temporary file in dir, then
 * rename), so a reader never sees half a file and a failed write leaves any
 * previous file intact. err (errlen bytes) names the path and the reason.
 * HARK_ERR_INVALID_ARG (path too long), HARK_ERR_PERMISSION, HARK_ERR_IO
 * (including a full disk). */
int hark_cli_write_file(const char *dir, const char *name, const char *data, size_t len,
			char *err, size_t errlen);

/* Lists the regular, non-hidden files of dir in name order (sub-folders too
 * when recursive, at most 16 deep): accept(name, ud) (may be NULL = all)
 * filters by file name, add(path, ud) receives each path (return nonzero
 * to stop with that error). HARK_ERR_PERMISSION / HARK_ERR_IO for an
 * unreadable dir, HARK_ERR_LIMIT past 100,000 entries, HARK_ERR_NOMEM. */
int hark_cli_expand_dir(const char *dir, int recursive, int (*accept)(const char *name, void *ud),
			int (*add)(const char *path, void *ud), void *ud);

/* Terminal progress bar on stderr, drawn only when stderr is a TTY and not
 * quiet. Shows label (copied, truncated to 47 bytes), percent, speed as x
 * real time and ETA. */
struct hark_progress;
struct hark_progress *hark_progress_new(const char *label, int quiet);
/* fraction 0..1; audio_done_s = seconds of media processed so far. */
void hark_progress_update(struct hark_progress *p, double fraction, double audio_done_s);
/* Clears the bar line. NULL is a no-op. */
void hark_progress_free(struct hark_progress *p);

#endif /* HARK_CLI_CLI_H */
