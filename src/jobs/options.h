/*
 * Job options: the client-supplied JSON object that says how to process a
 * job (engine, model, language, decoding knobs, result formats, priority,
 * webhook, and for meeting analysis the meeting's name and date, chunking,
 * LLM batching and the offline/force switches, and for diagram and video
 * jobs the diagram type, theme, title, node cap and the video's size, frame
 * rate and captions). Parsing validates every field (unknown fields are rejected so
 * typos do not silently change results), canonical serialisation gives a
 * stable text for storage, and the dedup key hashes the content together with
 * only the options that change the result (not priority, formats or webhook).
 */
#ifndef HARK_JOBS_OPTIONS_H
#define HARK_JOBS_OPTIONS_H

#include <stddef.h>

#include "store/store.h"

struct hark_job_options {
	char engine[16];      /* "auto" (default), "pocketsphinx", "whisper" */
	char model[128];      /* model name ("" = server default); never a path:
				 letters, digits, '.', '-', '_' only */
	char language[16];    /* "" = model default; "auto" = detect; else ISO 639-1 */
	char *prompt;         /* Whisper initial prompt (heap, may be NULL; <= 4096 bytes) */
	double temperature;   /* 0 (default) .. 1 */
	int translate;        /* 0/1 */
	int beam_size;        /* 0 = engine default, 1..16 */
	int word_timestamps;  /* 1 (default) */
	unsigned formats;     /* bit (1 << enum hark_format); default all four */
	int priority;         /* enum hark_job_priority; default normal */
	char *webhook;        /* http(s) URL (heap, may be NULL; <= 2048 bytes) */
	/* meeting analysis ("analyze" and "run" jobs) */
	char date[11];        /* "YYYY-MM-DD" or "" (= from the transcript's metadata) */
	char name[128];       /* meeting name or "" (= the file name, else the job id);
				 printable UTF-8 without '/', '\\' or a leading '.' */
	int batch;            /* chunks per LLM extraction request, 1..50; 0 = default */
	int chunk_tokens;     /* chunk size in tokens, 64..32000; 0 = default */
	int overlap_tokens;   /* overlap in tokens, 0..16000 (<= chunk_tokens / 2);
				 -1 = default */
	int offline;          /* 1: the offline analyzer even when an LLM is configured */
	int force;            /* 1: analyse again even when unchanged (no dedup) */
	/* diagrams ("diagram" and "video" jobs; date, offline and force apply too) */
	char diagram_type[16]; /* "" = auto (detected), else "flowchart", "timeline",
				  "mindmap", "hierarchy" or "sequence" */
	int dark;             /* 1: dark theme */
	char title[208];      /* diagram title or "" (= derived from the content);
				 printable UTF-8, at most 200 bytes */
	int max_nodes;        /* nodes per page, 4..60; 0 = default (24) */
	/* videos ("video" jobs only) */
	int width, height;    /* frame size, even, 64..3840 x 64..2160; 0 = 1280x720 */
	int fps;              /* frames per second, 1..60; 0 = default (30) */
	int captions;         /* 1 (default): caption band; 0: none */
};

/* Defaults as documented above. */
struct hark_job_options hark_job_options_default(void);
/* Frees heap members and resets to defaults. */
void hark_job_options_clear(struct hark_job_options *o);

/*
 * Parses a JSON object text (len bytes; NULL or empty = defaults) into *out
 * (which must be initialised with hark_job_options_default()). Errors:
 * HARK_ERR_FORMAT (not a JSON object), HARK_ERR_INVALID_ARG (bad field or
 * value; err names it, e.g. "options.priority: unknown priority \"urgent\"").
 */
int hark_job_options_parse(const char *json, size_t len, struct hark_job_options *out,
			   char *err, size_t errlen);

/* Sets one field from a string (multipart form fields of the OpenAI
 * endpoint use this): name is the option name, value its text. */
int hark_job_options_set(struct hark_job_options *o, const char *name, const char *value,
			 char *err, size_t errlen);

/* 1 when any meeting-analysis field differs from its default. */
int hark_job_options_has_analysis(const struct hark_job_options *o);

/* 1 when any diagram field (diagram_type, dark, title, max_nodes) or video
 * field differs from its default. */
int hark_job_options_has_visual(const struct hark_job_options *o);

/* 1 when any video-only field (size, fps, captions) differs from its default. */
int hark_job_options_has_video(const struct hark_job_options *o);

/* Canonical JSON text of all fields (sorted keys, no spaces; the analysis
 * fields only when set); heap, caller frees. */
char *hark_job_options_canonical(const struct hark_job_options *o);

/*
 * Dedup key: sha256 hex over the job type, the content hash (blob sha or
 * sha256 of the transcript text) and the result-affecting options (for
 * "analyze" and "run" jobs also name, date, batch, chunk_tokens,
 * overlap_tokens and offline; for "diagram" and "video" jobs date, offline
 * and the diagram fields, and for "video" jobs also size, fps and captions).
 */
void hark_job_options_dedup_key(const struct hark_job_options *o, const char *type,
				const char *content_sha, char key[HARK_SHA_HEX_LEN]);

#endif /* HARK_JOBS_OPTIONS_H */
