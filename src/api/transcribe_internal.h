/*
 * Internal helpers of the transcription API shared with the CLI and the
 * server: engine/model resolution without loading anything.
 */
#ifndef HARK_API_TRANSCRIBE_INTERNAL_H
#define HARK_API_TRANSCRIBE_INTERNAL_H

#include <stddef.h>

#include "asr/engine.h"

/*
 * Resolves an engine name ("auto", "whisper", "pocketsphinx"; NULL = auto)
 * and an optional model path/name into the engine's ops (*ops) and the model
 * path to load (path_out, empty = engine default). "auto" picks Whisper when
 * model_path is a ggml file or a known model name, or when a default Whisper
 * model is found; PocketSphinx otherwise. Errors carry a message in err.
 */
int hark_api_resolve_engine(const char *engine, const char *model_path,
			    const struct hark_engine_ops **ops, char *path_out,
			    size_t path_len, char *err, size_t errlen);

#endif /* HARK_API_TRANSCRIBE_INTERNAL_H */
