/*
 * Internal interface of the output formats (txt, json, srt, vtt) and their
 * readers. The public entry points (hark_format_parse, hark_format_ext,
 * hark_transcript_render, hark_transcript_write) are declared in
 * include/hark/transcribe.h; this header adds the readers used by
 * `hark analyze` and `hark video --transcript`, the subtitle rendering rules,
 * and a small capped string buffer shared by format.c and subtitle.c.
 *
 * Subtitle rules (SRT and WebVTT), applied to every render:
 *  - Segment text is sanitised (invalid UTF-8 -> U+FFFD, control characters
 *    and line breaks -> spaces), whitespace is collapsed and trimmed; segments
 *    left empty are skipped.
 *  - Text is word-wrapped at HARK_SUB_LINE_WIDTH code points per line
 *    (never splitting a UTF-8 character; a longer word is broken inside, not
 *    before a combining mark), at most HARK_SUB_MAX_LINES lines per cue. A segment needing more lines
 *    becomes several consecutive cues; its time span is divided between them
 *    by word timestamps when the segment's words spell out its text (ignoring
 *    whitespace), else in proportion to character counts. Lines are balanced:
 *    the narrowest width (not below the longest word) that needs no more
 *    lines than greedy wrapping at HARK_SUB_LINE_WIDTH (segments up to 8 KiB).
 *  - Times are integer milliseconds, negative times clamp to 0. Transcript
 *    order is kept (never re-sorted, so text reads in order). Timing rule,
 *    applied first to the spans of the non-empty segments and then again to
 *    the cues cut from them: each span starts no earlier than the previous
 *    span's end (start clamped forward); a span running past the next span's
 *    start is cut at that start when that leaves it a positive length; a span
 *    of zero (or negative) length gets HARK_SUB_MIN_CUE_MS, cut at the next
 *    span's start, and at least 1 ms (the next span is then pushed forward).
 *    So cues never overlap and always have end > start.
 *  - SRT: cues numbered from 1, "HH:MM:SS,mmm --> HH:MM:SS,mmm", a blank line
 *    after each cue; "-->" inside text is written as "->". WebVTT: "WEBVTT",
 *    blank line, then cues "HH:MM:SS.mmm --> HH:MM:SS.mmm" with & < >
 *    escaped as &amp; &lt; &gt;. Hours have at least two digits and grow as
 *    needed (100 h -> "100:00:00,000").
 *
 * JSON (OpenAI verbose_json superset), one line plus a newline:
 *   {"task": "transcribe", "language": "en"|null, "duration": s, "text": ...,
 *    ["offset": s,] "segments": [{"id", "seek", "start", "end", "text",
 *    "tokens": [ids], "temperature", "avg_logprob", "compression_ratio",
 *    "no_speech_prob"}], "words": [{"word", "start", "end", "probability"}],
 *    "engine": {"name", "model", "version"}, ["source": path]}
 * Times are seconds rounded to the millisecond, other reals to 1e-6, NaN and
 * infinities become 0. "seek" is the segment start in 10 ms frames (hark
 * does not expose Whisper's window offset). Strings are sanitised UTF-8.
 */
#ifndef HARK_FORMAT_FORMAT_H
#define HARK_FORMAT_FORMAT_H

#include <stddef.h>

#include "hark/transcribe.h"

#define HARK_SUB_LINE_WIDTH 42   /* code points per subtitle line */
#define HARK_SUB_MAX_LINES 2     /* lines per cue */
#define HARK_SUB_MIN_CUE_MS 500  /* length given to zero-length cues */

#define HARK_FORMAT_MAX_INPUT ((size_t)256 << 20) /* reader input cap, bytes */
#define HARK_FORMAT_MAX_OUTPUT ((size_t)2 << 30)  /* render output cap, bytes */

/*
 * Parses hark's own JSON (as written by hark_transcript_render with
 * HARK_FORMAT_JSON; also OpenAI verbose_json, {"text": ...}, openai-whisper's
 * Python result with words nested in segments, and whisper.cpp's -oj output
 * with "transcription"/"offsets", negative offsets clamped to 0) into a new
 * transcript *out (caller frees with hark_transcript_free()). Top-level
 * words are attached to segments by time: a word goes to the segment whose
 * span, split at the middle of the gap to the next segment, holds the word's
 * midpoint. Returns HARK_ERR_FORMAT with a message such as "line 3 column 5:
 * ..." or "segments[2].start: not a number" in err (errlen bytes, may be
 * NULL), HARK_ERR_EMPTY for zero bytes, HARK_ERR_LIMIT beyond
 * HARK_FORMAT_MAX_INPUT, HARK_ERR_NOMEM.
 */
int hark_transcript_from_json(const char *buf, size_t len, struct hark_transcript **out,
			      char *err, size_t errlen);

/*
 * Parses SRT or WebVTT (detected from a leading "WEBVTT"; tolerates a UTF-8
 * BOM, CRLF/CR line ends, VTT header, NOTE/STYLE/REGION blocks, cue ids and
 * settings, "MM:SS.mmm" without hours, ',' or '.' before milliseconds, and
 * SRT without cue numbers). Each cue becomes one segment whose text is its
 * lines joined by single spaces with markup removed (VTT tags and entities;
 * SRT <i>/<b>/<u>/<s>/<font> tags); invalid UTF-8 becomes U+FFFD. Times
 * are exact milliseconds. duration = last cue end. Returns HARK_ERR_FORMAT
 * with "line N: ..." in err on malformed input (bad timestamp, missing
 * timing line, end before start, NUL byte), HARK_ERR_EMPTY for zero bytes,
 * HARK_ERR_LIMIT beyond HARK_FORMAT_MAX_INPUT or the transcript caps,
 * HARK_ERR_NOMEM.
 */
int hark_subtitle_parse(const char *buf, size_t len, struct hark_transcript **out, char *err,
			size_t errlen);

/* Parses JSON when the first non-blank character (after an optional BOM) is
 * '{', else SRT/WebVTT; same contract as the two readers above. */
int hark_transcript_parse(const char *buf, size_t len, struct hark_transcript **out, char *err,
			  size_t errlen);

/*
 * Reads the file at path (at most HARK_FORMAT_MAX_INPUT bytes) and parses it
 * with hark_transcript_parse(). File errors map to HARK_ERR_NOT_FOUND,
 * HARK_ERR_PERMISSION, HARK_ERR_IS_DIR, HARK_ERR_IO; err names the file.
 */
int hark_transcript_load(const char *path, struct hark_transcript **out, char *err,
			 size_t errlen);

/* ---- shared internals ---------------------------------------------------- */

/* Growable NUL-terminated byte buffer; max 0 means HARK_FORMAT_MAX_OUTPUT. */
struct hark_format_buf {
	char *p;
	size_t len, cap, max;
};

/* Appends n bytes. Returns HARK_ERR_LIMIT past max, HARK_ERR_NOMEM. */
int hark_format_buf_put(struct hark_format_buf *b, const char *s, size_t n);

/* Appends printf-formatted text (same errors). */
int hark_format_buf_printf(struct hark_format_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Renders t as SRT (vtt == 0) or WebVTT (vtt != 0) into *out / *out_len
 * (heap, NUL-terminated, caller frees). */
int hark_format_render_subtitles(const struct hark_transcript *t, int vtt, char **out,
				 size_t *out_len);

#endif /* HARK_FORMAT_FORMAT_H */
