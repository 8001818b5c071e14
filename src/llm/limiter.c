/*
 * The implementation-independent part of the LLM rate limiter (limiter.h):
 * releasing a limiter handle through its ops table, whichever backend
 * (in-process or store-backed) built it.
 */
#include "llm/limiter.h"

#include <stdlib.h>

void hark_llm_limiter_free(struct hark_llm_limiter *l)
{
	if (!l)
		return;
	if (l->ops && l->ops->destroy)
		l->ops->destroy(l->self);
	free(l);
}
