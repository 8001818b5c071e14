/*
 * Engine registry: the one place that lists the speech engines compiled into
 * hark. Callers look engines up by name and drive them only through their
 * struct hark_engine_ops tables.
 */
#include <string.h>

#include "asr/engine.h"

static const struct hark_engine_ops *const engines[] = {
	&hark_engine_whisper,
	&hark_engine_pocketsphinx,
	NULL,
};

const struct hark_engine_ops *hark_engine_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; engines[i]; i++)
		if (strcmp(engines[i]->name, name) == 0)
			return engines[i];
	return NULL;
}

const struct hark_engine_ops *const *hark_engine_list(void)
{
	return engines;
}
