/*
 * Built-in prompts and schemas (src/analyze/prompts.c): every file under
 * share/prompts and share/schemas is embedded byte for byte, the schemas
 * are valid JSON that the structured-output validator compiles, an override
 * directory (set at start-up or through $HARK_PROMPTS_DIR) wins file by
 * file, unknown and malformed names are refused, an oversize or unreadable
 * override is an error rather than a silent fall-back, and the LLM minutes
 * pipeline key follows the extract prompt. Also the evidence-quote matcher
 * of the LLM minutes path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "analyze/llm_minutes.h"
#include "analyze/prompts.h"
#include "schema_util.h"
#include "wd_util.h"
#include "hark/hark.h"
#include "llm/schema.h"

static const char *const mine[] = {
	"prompts/minutes_extract.md", "prompts/minutes_reduce.md", "schemas/minutes_extract.json",
	"schemas/minutes_reduce.json", "prompts/graph_extract.md", "schemas/graph_extract.json",
};

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void rm_rf(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int teardown(void **state)
{
	(void)state;
	hark_prompts_cleanup();
	unsetenv("HARK_PROMPTS_DIR");
	return 0;
}

/* Every embedded file equals its source under share/ (when the source tree
 * is known) and each schema compiles. */
static void test_builtins(void **state)
{
	const char *src = getenv("HARK_SOURCE_DIR");

	(void)state;
	unsetenv("HARK_PROMPTS_DIR");
	for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++) {
		const char *text = NULL;
		size_t len = 0;

		assert_int_equal(hark_prompts_get(mine[i], &text, &len), HARK_OK);
		assert_non_null(text);
		assert_true(len > 100);
		assert_int_equal(strlen(text), len); /* NUL right after, none inside */
		assert_true(hark_prompts_has_builtin(mine[i]));
		if (src) {
			char path[1024], rel[256];
			size_t flen = 0;
			char *file;

			snprintf(rel, sizeof(rel), "share/%s", mine[i]);
			file = wd_slurp(su_source_path(rel, path, sizeof(path)), &flen);
			assert_non_null(file);
			assert_int_equal(flen, len);
			assert_memory_equal(file, text, len);
			free(file);
		}
		if (strncmp(mine[i], "schemas/", 8) == 0) {
			json_error_t je;
			json_t *v = json_loadb(text, len, 0, &je);
			struct hark_llm_schema *s = NULL;
			char err[256] = "";

			assert_non_null(v);
			assert_true(json_is_object(v));
			json_decref(v);
			assert_int_equal(hark_llm_schema_compile(text, &s, err, sizeof(err)), HARK_OK);
			hark_llm_schema_free(s);
		}
	}
	/* the extraction prompt names the marker and the chunk member */
	{
		const char *t;

		assert_int_equal(hark_prompts_get("prompts/minutes_extract.md", &t, NULL), 0);
		assert_non_null(strstr(t, "[chunk ID]"));
		assert_non_null(strstr(t, "`chunk`"));
	}
}

static void test_not_found_and_bad_names(void **state)
{
	const char *t = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(hark_prompts_get("prompts/no_such_prompt.md", &t, &len),
			 HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_prompts_get("schemas/minutes_extract", &t, &len), HARK_ERR_NOT_FOUND);
	assert_false(hark_prompts_has_builtin("prompts/no_such_prompt.md"));
	assert_int_equal(hark_prompts_get("", &t, &len), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_prompts_get("/etc/passwd", &t, &len), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_prompts_get("prompts/../../x", &t, &len), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_prompts_get("prompts/a b.md", &t, &len), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_prompts_get(NULL, &t, &len), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_prompts_get("prompts/minutes_extract.md", NULL, &len),
			 HARK_ERR_INVALID_ARG);
}

/* Overrides: a file in the directory wins, others stay built in; a set
 * directory wins over the environment; texts are cached. */
static void test_override_dir(void **state)
{
	char dir[] = "/tmp/hark-prompts-XXXXXX", sub[256], path[320];
	const char *over = "Custom extraction prompt.\n", *t = NULL, *t2 = NULL, *builtin = NULL;
	char key_builtin[65], key_over[65];
	size_t len = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/prompts", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/minutes_extract.md", sub);
	write_file(path, over, strlen(over));

	assert_int_equal(hark_prompts_get("schemas/minutes_extract.json", &builtin, NULL), 0);
	assert_int_equal(hark_llm_minutes_pipeline_key(key_builtin), 0);
	assert_int_equal(strlen(key_builtin), 64);

	/* through the environment */
	assert_int_equal(setenv("HARK_PROMPTS_DIR", dir, 1), 0);
	assert_int_equal(hark_prompts_get("prompts/minutes_extract.md", &t, &len), HARK_OK);
	assert_string_equal(t, over);
	assert_int_equal(len, strlen(over));
	assert_int_equal(hark_prompts_get("schemas/minutes_extract.json", &t2, NULL), HARK_OK);
	assert_ptr_equal(t2, builtin); /* not overridden: the embedded copy */
	assert_int_equal(hark_llm_minutes_pipeline_key(key_over), 0);
	assert_string_not_equal(key_builtin, key_over);

	/* read once: a change on disk is not seen again */
	write_file(path, "changed\n", 8);
	assert_int_equal(hark_prompts_get("prompts/minutes_extract.md", &t2, NULL), HARK_OK);
	assert_ptr_equal(t2, t);
	assert_string_equal(t2, over);

	/* hark_prompts_set_dir(NULL) disables the environment's directory */
	assert_int_equal(hark_prompts_set_dir(NULL), 0);
	assert_int_equal(hark_prompts_get("prompts/minutes_extract.md", &t2, NULL), HARK_OK);
	assert_string_not_equal(t2, over);
	assert_non_null(strstr(t2, "[chunk ID]"));
	{
		char k[65];

		assert_int_equal(hark_llm_minutes_pipeline_key(k), 0);
		assert_string_equal(k, key_builtin);
	}

	/* a set directory: a new file there is read (the cache is per path) */
	{
		char dir2[] = "/tmp/hark-prompts-XXXXXX", sub2[256], path2[320];

		assert_non_null(mkdtemp(dir2));
		snprintf(sub2, sizeof(sub2), "%s/prompts", dir2);
		assert_int_equal(mkdir(sub2, 0700), 0);
		snprintf(path2, sizeof(path2), "%s/minutes_reduce.md", sub2);
		write_file(path2, "Reduce differently.", 19);
		assert_int_equal(hark_prompts_set_dir(dir2), 0);
		assert_int_equal(hark_prompts_get("prompts/minutes_reduce.md", &t2, &len), 0);
		assert_string_equal(t2, "Reduce differently.");
		assert_int_equal(len, 19);
		/* an override may add a file that has no built-in copy */
		snprintf(path2, sizeof(path2), "%s/extra.md", sub2);
		write_file(path2, "extra", 5);
		assert_int_equal(hark_prompts_get("prompts/extra.md", &t2, &len), 0);
		assert_string_equal(t2, "extra");
		rm_rf(dir2);
	}
	hark_prompts_cleanup();
	rm_rf(dir);
}

/* An override that exists but cannot be used is an error, not the
 * built-in. */
static void test_override_errors(void **state)
{
	char dir[] = "/tmp/hark-prompts-XXXXXX", sub[256], path[320];
	const char *t = NULL;
	size_t big = HARK_PROMPTS_MAX_BYTES + 1;
	char *data = malloc(big);

	(void)state;
	assert_non_null(data);
	memset(data, 'a', big);
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/prompts", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/minutes_extract.md", sub);
	write_file(path, data, big);
	assert_int_equal(hark_prompts_set_dir(dir), 0);
	assert_int_equal(hark_prompts_get("prompts/minutes_extract.md", &t, NULL), HARK_ERR_LIMIT);
	{
		char k[65];

		assert_int_equal(hark_llm_minutes_pipeline_key(k), HARK_ERR_LIMIT);
	}
	/* exactly the cap is fine */
	write_file(path, data, big - 1);
	assert_int_equal(hark_prompts_get("prompts/minutes_extract.md", &t, NULL), HARK_OK);
	assert_int_equal(strlen(t), big - 1);

	/* a directory where the file should be */
	snprintf(path, sizeof(path), "%s/minutes_reduce.md", sub);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(hark_prompts_get("prompts/minutes_reduce.md", &t, NULL), HARK_ERR_IS_DIR);

	/* a missing override directory: built-ins */
	assert_int_equal(hark_prompts_set_dir("/nonexistent/hark-prompts"), 0);
	assert_int_equal(hark_prompts_get("prompts/minutes_reduce.md", &t, NULL), HARK_OK);
	assert_non_null(strstr(t, "[chunk ID]"));
	hark_prompts_cleanup();
	rm_rf(dir);
	free(data);
}

static void test_quote_in(void **state)
{
	const char *turn = "Project Manager: So {vocalsound} we decided the remote, uh, "
			   "costs twenty-five Euros. <laugh> Right?";

	(void)state;
	assert_true(hark_llm_minutes_quote_in("we decided the remote, uh, costs", turn));
	assert_true(hark_llm_minutes_quote_in("THE REMOTE UH COSTS twenty five euros", turn));
	assert_true(hark_llm_minutes_quote_in("So we decided", turn)); /* marker removed */
	assert_true(hark_llm_minutes_quote_in("euros. Right?", turn));
	assert_false(hark_llm_minutes_quote_in("the remote costs", turn));
	assert_false(hark_llm_minutes_quote_in("twenty-five Euro", turn)); /* whole words */
	assert_false(hark_llm_minutes_quote_in("", turn));
	assert_false(hark_llm_minutes_quote_in("...", turn));
	assert_false(hark_llm_minutes_quote_in(NULL, turn));
	assert_true(hark_llm_minutes_quote_in("Grüße aus München", "Sie sagte: Grüße aus München!"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_builtins, teardown),
		cmocka_unit_test_teardown(test_not_found_and_bad_names, teardown),
		cmocka_unit_test_teardown(test_override_dir, teardown),
		cmocka_unit_test_teardown(test_override_errors, teardown),
		cmocka_unit_test_teardown(test_quote_in, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
