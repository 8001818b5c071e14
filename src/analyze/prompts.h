/*
 * Built-in prompts and JSON schemas: every file under share/prompts and
 * share/schemas is compiled into the library (cmake/embed_share.cmake), so
 * an installed hark needs no data directory. A directory of overrides can
 * replace any of them at run time: $HARK_PROMPTS_DIR, or a directory given
 * to hark_prompts_set_dir at start-up, holding files under the same
 * relative names ("prompts/minutes_extract.md", "schemas/minutes_extract.json").
 * An override file is read once and cached for the life of the process.
 */
#ifndef HARK_ANALYZE_PROMPTS_H
#define HARK_ANALYZE_PROMPTS_H

#include <stddef.h>

/* Largest override file accepted (bytes). */
#define HARK_PROMPTS_MAX_BYTES ((size_t)1 << 20)

/*
 * Sets the override directory (copied; NULL or "" = none, which also stops
 * $HARK_PROMPTS_DIR from being used). Meant to be called once at start-up,
 * before any hark_prompts_get; it is thread-safe, and a later call makes
 * later lookups use the new directory (texts already handed out stay
 * valid). Returns HARK_ERR_NOMEM or 0.
 */
int hark_prompts_set_dir(const char *dir);

/*
 * The text of a prompt or schema by relative name (e.g.
 * "prompts/minutes_extract.md", "schemas/minutes_extract.json"). When the
 * override directory (hark_prompts_set_dir, else $HARK_PROMPTS_DIR) holds a
 * regular file of that name, its content wins; otherwise the built-in copy.
 * *text (NUL-terminated, *len bytes before the NUL; len may be NULL) is
 * owned by the library and valid until the process ends (or
 * hark_prompts_cleanup). Thread-safe.
 * Errors: HARK_ERR_INVALID_ARG (NULL arguments, a name that is empty,
 * absolute, contains "..", or a character outside [A-Za-z0-9_./-]),
 * HARK_ERR_NOT_FOUND (no override and no built-in of that name),
 * HARK_ERR_LIMIT (an override over HARK_PROMPTS_MAX_BYTES),
 * HARK_ERR_IS_DIR / HARK_ERR_PERMISSION / HARK_ERR_IO (an override that
 * exists but cannot be read: never a silent fall-back to the built-in),
 * HARK_ERR_NOMEM.
 */
int hark_prompts_get(const char *name, const char **text, size_t *len);

/* 1 when a built-in copy of name exists (overrides not considered). */
int hark_prompts_has_builtin(const char *name);

/*
 * Frees every cached override and forgets the directory set with
 * hark_prompts_set_dir. Every text returned before becomes invalid; for
 * tests and orderly shutdown only, when no other thread uses prompts.
 */
void hark_prompts_cleanup(void);

#endif /* HARK_ANALYZE_PROMPTS_H */
