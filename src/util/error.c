/*
 * The project-wide error enum's names: a one-line description for humans
 * (hark_strerror) and a stable snake_case code for JSON error objects
 * (hark_err_code), plus the library version.
 */
#include "hark/hark.h"

struct err_name {
	const char *code;
	const char *text;
};

static const struct err_name names[HARK_ERR__COUNT] = {
	[HARK_OK] = {"ok", "success"},
	[HARK_ERR_INVALID_ARG] = {"invalid_argument", "invalid argument"},
	[HARK_ERR_NOMEM] = {"out_of_memory", "out of memory"},
	[HARK_ERR_IO] = {"io_error", "input/output error"},
	[HARK_ERR_NOT_FOUND] = {"not_found", "no such file or directory"},
	[HARK_ERR_IS_DIR] = {"is_directory", "is a directory"},
	[HARK_ERR_PERMISSION] = {"permission_denied", "permission denied"},
	[HARK_ERR_EMPTY] = {"empty_input", "empty input"},
	[HARK_ERR_NOT_MEDIA] = {"not_media", "not an audio or video file"},
	[HARK_ERR_NO_AUDIO] = {"no_audio_stream", "no audio stream"},
	[HARK_ERR_CORRUPT] = {"corrupt_media", "corrupt or truncated media"},
	[HARK_ERR_UNSUPPORTED] = {"unsupported_format", "unsupported codec or sample format"},
	[HARK_ERR_MODEL] = {"model_error", "model cannot be loaded"},
	[HARK_ERR_ENGINE] = {"engine_error", "speech engine failure"},
	[HARK_ERR_CANCELED] = {"canceled", "canceled"},
	[HARK_ERR_LIMIT] = {"limit_exceeded", "size limit exceeded"},
	[HARK_ERR_FORMAT] = {"malformed_input", "malformed input"},
	[HARK_ERR_NETWORK] = {"network_error", "network error"},
	[HARK_ERR_CHECKSUM] = {"checksum_mismatch", "checksum mismatch"},
	[HARK_ERR_INTERNAL] = {"internal_error", "internal error"},
};

const char *hark_strerror(int err)
{
	if (err < 0 || err >= HARK_ERR__COUNT || !names[err].text)
		return "unknown error";
	return names[err].text;
}

const char *hark_err_code(int err)
{
	if (err < 0 || err >= HARK_ERR__COUNT || !names[err].code)
		return "unknown_error";
	return names[err].code;
}

const char *hark_version(void)
{
	return HARK_VERSION_STRING;
}
