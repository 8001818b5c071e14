/*
 * Corpus WER scorer for baseline scripts (bench/ps_baseline.sh): reads lines
 * "group<TAB>reference<TAB>hypothesis" on stdin, normalises both sides with
 * hark's scoring normaliser (src/util/textnorm.h) and aligns them with
 * src/util/wer.h, prints one line per row, then the corpus WER over all rows
 * and per group. Same normaliser and counting as the WER integration tests,
 * so numbers are directly comparable.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/wer.h"

#define MAX_GROUPS 16
#define MAX_LINE (1 << 20)

struct group {
	char name[64];
	struct hark_wer_counts c;
};

int main(void)
{
	struct group g[MAX_GROUPS];
	struct hark_wer_counts all = {0};
	size_t ng = 0;
	char *line = malloc(MAX_LINE);
	int rows = 0;

	if (!line)
		return 1;
	memset(g, 0, sizeof g);
	while (fgets(line, MAX_LINE, stdin)) {
		char *ref, *hyp;
		struct hark_wer_counts c;
		size_t k;
		int rc;

		line[strcspn(line, "\r\n")] = 0;
		ref = strchr(line, '\t');
		if (!ref)
			continue;
		*ref++ = 0;
		hyp = strchr(ref, '\t');
		if (hyp)
			*hyp++ = 0;
		else
			hyp = "";
		rc = hark_wer_compute(ref, hyp, 1, &c);
		if (rc) {
			fprintf(stderr, "wer_score: row %d: error %d\n", rows + 1, rc);
			free(line);
			return 1;
		}
		hark_wer_add(&all, &c);
		for (k = 0; k < ng && strcmp(g[k].name, line); k++)
			;
		if (k == ng && ng < MAX_GROUPS)
			snprintf(g[ng++].name, sizeof g[0].name, "%s", line);
		if (k < ng)
			hark_wer_add(&g[k].c, &c);
		rows++;
		printf("row %2d  %-12s N %3llu  WER %5.1f%%\n", rows, line,
		       (unsigned long long)c.ref_words, 100.0 * hark_wer_rate(&c));
	}
	free(line);
	printf("overall WER %.1f%% (S %llu D %llu I %llu / N %llu, %d rows)\n",
	       100.0 * hark_wer_rate(&all), (unsigned long long)all.sub,
	       (unsigned long long)all.del, (unsigned long long)all.ins,
	       (unsigned long long)all.ref_words, rows);
	for (size_t k = 0; k < ng; k++)
		printf("group %s WER %.1f%% (N %llu)\n", g[k].name, 100.0 * hark_wer_rate(&g[k].c),
		       (unsigned long long)g[k].c.ref_words);
	return 0;
}
