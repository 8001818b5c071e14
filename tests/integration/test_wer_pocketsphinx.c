/*
 * Accuracy of the PocketSphinx engine on every row of
 * $HARK_SHARED/audio/REFERENCES.tsv: each row's clip (its start..end span
 * when given; for the stereo rows the named channel only) is decoded with
 * hark_audio and transcribed with the engine's ops directly (one state per
 * row, one shared model), both sides are normalised with hark_textnorm and
 * scored with hark_wer. Prints a per-row table and the corpus totals, and
 * asserts that overall and read-speech (LibriSpeech, LibriVox, LJSpeech) WER
 * are no worse than the measured `pocketsphinx_continuous -infile` baseline
 * (bench/ps_baseline.sh; docs/ENGINES.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "asr/engine.h"
#include "audio/audio.h"
#include "format/transcript.h"
#include "util/textnorm.h"
#include "util/wer.h"

/* pocketsphinx_continuous baseline on the same rows (docs/ENGINES.md) */
#define BASELINE_OVERALL 0.521
#define BASELINE_READ 0.319
#define MAX_ROWS 256

static int is_read_speech(const char *audio)
{
	return !strncmp(audio, "librispeech/", 12) || !strncmp(audio, "librivox/", 9) ||
	       !strncmp(audio, "ljspeech/", 9);
}

/* Splits a TSV line in place into at most n fields; returns the count. */
static int split_tab(char *line, char **f, int n)
{
	int k = 0;
	char *p = line;
	while (k < n) {
		char *t = strchr(p, '\t');
		f[k++] = p;
		if (!t)
			break;
		*t = 0;
		p = t + 1;
	}
	return k;
}

static char *transcribe(void *model, const char *path, double start, double end, int channel,
			double *secs)
{
	const struct hark_engine_ops *ops = &hark_engine_pocketsphinx;
	struct hark_audio_params ap = hark_audio_default_params();
	struct hark_engine_run_params rp;
	struct hark_transcript *t = NULL;
	float *pcm = NULL;
	size_t n = 0;
	void *st = NULL;
	char err[512] = "", *text = NULL;
	int rc;

	ap.offset_s = start;
	ap.duration_s = end > start ? end - start : 0;
	ap.channel = channel;
	rc = hark_audio_decode_all(path, &ap, (size_t)600 * HARK_AUDIO_RATE, &pcm, &n, err,
				   sizeof err);
	if (rc) {
		fprintf(stderr, "%s: %s\n", path, err);
		return NULL;
	}
	*secs = (double)n / HARK_AUDIO_RATE;
	memset(&rp, 0, sizeof rp);
	rp.language = "en";
	rp.n_threads = 1;
	rp.word_timestamps = 1;
	rp.total_s = *secs;
	rc = ops->state_new(model, &rp, &st, err, sizeof err);
	if (!rc)
		rc = ops->feed(st, pcm, n, err, sizeof err);
	if (!rc)
		rc = hark_transcript_new(&t);
	if (!rc)
		rc = ops->finish(st, t, err, sizeof err);
	if (rc)
		fprintf(stderr, "%s: %s\n", path, err);
	else
		text = strdup(t->text ? t->text : "");
	hark_transcript_free(t);
	if (st)
		ops->state_free(st);
	free(pcm);
	return text;
}

static void test_wer_references(void **state)
{
	const char *shared = getenv("HARK_SHARED");
	char tsv[4096], line[8192];
	FILE *f;
	void *model = NULL;
	char err[512];
	struct hark_wer_counts all = {0}, read = {0};
	int rows = 0, header = 1;
	double audio_s = 0;
	(void)state;

	snprintf(tsv, sizeof tsv, "%s/audio/REFERENCES.tsv", shared ? shared : "../shared");
	f = fopen(tsv, "r");
	if (!f)
		skip();
	assert_int_equal(hark_engine_pocketsphinx.model_load(NULL, &model, err, sizeof err),
			 HARK_OK);
	printf("%-44s %6s %5s %5s  %s\n", "clip", "secs", "words", "WER", "hypothesis");
	while (fgets(line, sizeof line, f)) {
		char *fld[8], path[4096], *hyp, *nref = NULL, *nhyp = NULL;
		int nf, channel = -1;
		double start = 0, end = 0, secs = 0;
		struct hark_wer_counts c;
		char label[80];

		line[strcspn(line, "\r\n")] = 0;
		if (header) {
			header = 0;
			continue;
		}
		if (!line[0])
			continue;
		nf = split_tab(line, fld, 7);
		assert_true(nf >= 5);
		assert_true(rows < MAX_ROWS);
		if (fld[1][0])
			start = strtod(fld[1], NULL);
		if (fld[2][0])
			end = strtod(fld[2], NULL);
		if (strstr(fld[3], "left channel"))
			channel = 0;
		else if (strstr(fld[3], "right channel"))
			channel = 1;
		snprintf(path, sizeof path, "%s/audio/%s", shared ? shared : "../shared", fld[0]);
		hyp = transcribe(model, path, start, end, channel, &secs);
		assert_non_null(hyp);
		assert_int_equal(hark_textnorm_normalize(fld[4], strlen(fld[4]), NULL, &nref, NULL),
				 HARK_OK);
		assert_int_equal(hark_textnorm_normalize(hyp, strlen(hyp), NULL, &nhyp, NULL),
				 HARK_OK);
		assert_int_equal(hark_wer_compute(nref, nhyp, 0, &c), HARK_OK);
		hark_wer_add(&all, &c);
		if (is_read_speech(fld[0]))
			hark_wer_add(&read, &c);
		snprintf(label, sizeof label, "%.40s%s%s",
			 strrchr(fld[0], '/') ? strrchr(fld[0], '/') + 1 : fld[0],
			 channel >= 0 ? " ch" : "",
			 channel == 0 ? "0" : channel == 1 ? "1" : "");
		if (fld[1][0])
			snprintf(label + strlen(label), sizeof label - strlen(label), " @%s", fld[1]);
		printf("%-44s %6.2f %5llu %4.0f%%  %.70s\n", label, secs,
		       (unsigned long long)c.ref_words, 100.0 * hark_wer_rate(&c), nhyp);
		audio_s += secs;
		rows++;
		free(nref);
		free(nhyp);
		free(hyp);
	}
	fclose(f);
	hark_engine_pocketsphinx.model_free(model);
	printf("rows %d, %.1f s of audio\n", rows, audio_s);
	printf("overall WER %.1f%% (S %llu D %llu I %llu / N %llu), baseline %.1f%%\n",
	       100.0 * hark_wer_rate(&all), (unsigned long long)all.sub,
	       (unsigned long long)all.del, (unsigned long long)all.ins,
	       (unsigned long long)all.ref_words, 100.0 * BASELINE_OVERALL);
	printf("read-speech WER %.1f%% (N %llu), baseline %.1f%%\n", 100.0 * hark_wer_rate(&read),
	       (unsigned long long)read.ref_words, 100.0 * BASELINE_READ);
	assert_int_equal(rows, 32);
	assert_true(hark_wer_rate(&all) <= BASELINE_OVERALL);
	assert_true(hark_wer_rate(&read) <= BASELINE_READ);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wer_references),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
