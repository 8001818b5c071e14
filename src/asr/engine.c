/*
 * Engine registry: the one place that lists the speech engines compiled into
 * hark. Callers look engines up by name and drive them only through their
 * struct hark_engine_ops tables.
 */
#include <string.h>

#include "asr/engine.h"

/* TEMPORARY while engines land: weak references. */
extern const struct hark_engine_ops hark_engine_whisper __attribute__((weak));
extern const struct hark_engine_ops hark_engine_pocketsphinx __attribute__((weak));

static const struct hark_engine_ops *engines[3];

static void fill(void)
{
	size_t n = 0;
	if (&hark_engine_whisper)
		engines[n++] = &hark_engine_whisper;
	if (&hark_engine_pocketsphinx)
		engines[n++] = &hark_engine_pocketsphinx;
	engines[n] = NULL;
}

const struct hark_engine_ops *hark_engine_find(const char *name)
{
	fill();
	if (!name)
		return NULL;
	for (size_t i = 0; engines[i]; i++)
		if (strcmp(engines[i]->name, name) == 0)
			return engines[i];
	return NULL;
}

const struct hark_engine_ops *const *hark_engine_list(void)
{
	fill();
	return (const struct hark_engine_ops *const *)engines;
}
