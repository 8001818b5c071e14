/*
 * hark public API: common definitions shared by every part of the library —
 * the project-wide error enum, its human-readable and machine-readable names,
 * and version information. Include <hark/transcribe.h> for speech-to-text.
 */
#ifndef HARK_HARK_H
#define HARK_HARK_H

#ifdef __cplusplus
extern "C" {
#endif

#define HARK_VERSION_MAJOR 0
#define HARK_VERSION_MINOR 1
#define HARK_VERSION_PATCH 0
#define HARK_VERSION_STRING "0.1.0"

/*
 * Every fallible hark function returns one of these (0 = success).
 * The numeric values are stable: the CLI derives its exit codes from them
 * (see docs/CLI.md) and JSON error objects carry hark_err_code().
 */
enum hark_err {
	HARK_OK = 0,
	HARK_ERR_INVALID_ARG = 1,     /* bad parameter or option value */
	HARK_ERR_NOMEM = 2,           /* allocation failed */
	HARK_ERR_IO = 3,              /* read/write failure (disk full, EIO, ...) */
	HARK_ERR_NOT_FOUND = 4,       /* file or directory does not exist */
	HARK_ERR_IS_DIR = 5,          /* a directory where a file was expected */
	HARK_ERR_PERMISSION = 6,      /* not readable / writable */
	HARK_ERR_EMPTY = 7,           /* zero-length input */
	HARK_ERR_NOT_MEDIA = 8,       /* content is not a recognised audio/video container */
	HARK_ERR_NO_AUDIO = 9,        /* container has no audio stream */
	HARK_ERR_CORRUPT = 10,        /* truncated or undecodable media */
	HARK_ERR_UNSUPPORTED = 11,    /* recognised but unsupported (codec, sample format) */
	HARK_ERR_MODEL = 12,          /* model missing, unreadable, corrupt or incompatible */
	HARK_ERR_ENGINE = 13,         /* speech engine failed internally */
	HARK_ERR_CANCELED = 14,       /* a cancel callback asked to stop */
	HARK_ERR_LIMIT = 15,          /* a size or length cap was exceeded */
	HARK_ERR_FORMAT = 16,         /* malformed text input (JSON, subtitles, ...) */
	HARK_ERR_NETWORK = 17,        /* network failure (download, provider) */
	HARK_ERR_CHECKSUM = 18,       /* content hash mismatch */
	HARK_ERR_INTERNAL = 19,       /* a bug: please report */
	HARK_ERR__COUNT
};

/* Human-readable one-line description of err. Never NULL; static storage. */
const char *hark_strerror(int err);

/* Stable snake_case identifier of err for JSON error objects, e.g.
 * "no_audio_stream". Never NULL; static storage. */
const char *hark_err_code(int err);

/* Library version string ("MAJOR.MINOR.PATCH"); static storage. */
const char *hark_version(void);

#ifdef __cplusplus
}
#endif

#endif /* HARK_HARK_H */
