/*
 * Meeting minutes: the data model every analysis path fills (the offline
 * analyzer in analyze/offline.h and the LLM path in analyze/llm_minutes.h),
 * and its two renderings, <name>.minutes.json (schema in
 * share/schemas/minutes.json, documented in docs/MINUTES.md) and
 * <name>.minutes.md. Every item carries a struct hark_minutes_ref saying
 * where in the meeting it was said (time, turn index, speaker, verbatim
 * quote), so a reader can jump back to the recording or the transcript.
 * All strings are heap-owned UTF-8 and belong to the minutes; NULL means
 * "absent" unless a field says otherwise.
 */
#ifndef HARK_ANALYZE_MINUTES_H
#define HARK_ANALYZE_MINUTES_H

#include <stddef.h>

#include <jansson.h>

/* Where something was said. */
struct hark_minutes_ref {
	double start_s;   /* seconds from the meeting start; < 0 = unknown */
	double end_s;     /* seconds; < 0 = unknown */
	long turn;        /* index of the speaker turn in the analysed input; -1 = unknown */
	long last_turn;   /* last turn covered (ranges: topics); -1 = same as turn */
	char *speaker;    /* who said it; NULL = unknown */
	char *quote;      /* verbatim evidence (at most ~40 words); NULL = none */
};

/* One summary point (a sentence of the summary). */
struct hark_minutes_point {
	char *text;       /* never NULL */
	struct hark_minutes_ref ref;
};

/* A topic: a contiguous stretch of the meeting about one subject. */
struct hark_minutes_topic {
	char *title;      /* short label, never NULL */
	char **keywords;  /* n_keywords strings (may be 0) */
	size_t n_keywords;
	char *summary;    /* one or two sentences; NULL = none */
	struct hark_minutes_ref ref; /* start_s..end_s and turn..last_turn of the stretch */
};

/* A decision, action item or open question. */
struct hark_minutes_item {
	char *text;       /* the decision / the task / the question; never NULL */
	char *owner;      /* action items: who does it; NULL = unassigned */
	char *due;        /* action items: the deadline as spoken ("by next Friday"); NULL = none */
	char *due_iso;    /* "YYYY-MM-DD" when the deadline resolved; NULL = not resolved */
	double confidence; /* 0..1 */
	char *source;     /* how it was found: "cue:<rule>" (offline) or "llm" */
	struct hark_minutes_ref ref;
};

struct hark_minutes_participant {
	char *name;       /* speaker label or name; never NULL */
	size_t turns;     /* turns spoken */
	size_t words;     /* words spoken */
	double talk_s;    /* seconds spoken; < 0 = unknown */
	double first_s;   /* first time heard; < 0 = unknown */
};

struct hark_minutes {
	char *meeting;    /* meeting name (file name without extension); never NULL once filled */
	char *date;       /* "YYYY-MM-DD" or NULL */
	double duration_s; /* < 0 = unknown */
	char *method;     /* "offline" or "llm" */
	char *model;      /* "provider/model" for "llm", else NULL */
	char *summary;    /* the summary as one paragraph; never NULL once filled ("" if nothing) */
	struct hark_minutes_point *points;       size_t n_points;
	struct hark_minutes_topic *topics;       size_t n_topics;
	struct hark_minutes_item *decisions;     size_t n_decisions;
	struct hark_minutes_item *actions;       size_t n_actions;
	struct hark_minutes_item *questions;     size_t n_questions;
	struct hark_minutes_participant *participants; size_t n_participants;
	size_t turns;     /* input turns analysed */
	size_t chunks;    /* chunks analysed */
};

/* Frees everything m owns and zeroes it. NULL is a no-op. */
void hark_minutes_clear(struct hark_minutes *m);

/* Frees the strings of one ref / item / topic and zeroes it (helpers for
 * code that builds minutes). NULL is a no-op. */
void hark_minutes_ref_clear(struct hark_minutes_ref *r);
void hark_minutes_item_clear(struct hark_minutes_item *it);

/* A ref with every field unknown (start/end -1, turn/last_turn -1). */
struct hark_minutes_ref hark_minutes_ref_none(void);

/*
 * Appends a copy of *it (strings duplicated; it is left untouched) to the
 * array *arr of *n items. Returns HARK_ERR_NOMEM or HARK_ERR_LIMIT (over
 * 100,000 items), else 0.
 */
int hark_minutes_item_push(struct hark_minutes_item **arr, size_t *n,
			   const struct hark_minutes_item *it);

/*
 * The minutes as a JSON object (new reference; caller json_decref()s), the
 * documented schema: {"meeting", "date", "duration", "method", "model",
 * "summary", "summary_points": [{text, start, end, turn, speaker}],
 * "topics": [{title, keywords, summary, start, end, first_turn, last_turn}],
 * "decisions": [{text, confidence, source, start, end, turn, speaker,
 * evidence_quote}], "action_items": [{task, owner, due, due_date, confidence,
 * source, start, end, turn, speaker, evidence_quote}], "open_questions":
 * [same as decisions], "participants": [{name, turns, words, talk_time,
 * first_heard}], "stats": {turns, chunks}}. Unknown times, owners and dates
 * are JSON null (never omitted). NULL when out of memory.
 */
json_t *hark_minutes_to_json(const struct hark_minutes *m);

/*
 * Reads back what hark_minutes_to_json wrote into *out (caller clears).
 * Returns HARK_ERR_FORMAT (err says which member) or HARK_ERR_NOMEM.
 */
int hark_minutes_from_json(const json_t *j, struct hark_minutes *out, char *err,
			   size_t errlen);

/*
 * The minutes as Markdown (heap string, caller frees; NULL when out of
 * memory): a title with meeting name and date, Summary, Topics (with
 * [hh:mm:ss-hh:mm:ss] ranges), Decisions, Action items (a table: task,
 * owner, due, when, evidence), Open questions, Participants. Times are shown
 * as [hh:mm:ss] links back to the recording when known, else as "turn N".
 * Markdown special characters in transcript text are escaped.
 */
char *hark_minutes_to_markdown(const struct hark_minutes *m);

#endif /* HARK_ANALYZE_MINUTES_H */
