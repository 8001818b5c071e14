/*
 * Blob files on a real file system in a temporary directory: streamed
 * writes hash to OpenSSL's SHA-256 of the whole content, commit leaves the
 * file at DIR/blobs/<aa>/<sha> with the same bytes and no temporary file,
 * identical content is stored once, the size cap fails with
 * HARK_ERR_LIMIT, an abandoned writer leaves nothing, leftover temporary
 * files are cleaned, and malformed hashes are refused.
 */
#include <dirent.h>
#include <ftw.h>
#include <openssl/evp.h>
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

#include "store/blob.h"

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	char *dir = malloc(256);

	snprintf(dir, 256, "/tmp/hark-blob-test.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	strcat(dir, "/data"); /* created by the writer */
	*state = dir;
	return 0;
}

static int teardown(void **state)
{
	char *dir = *state;

	*strrchr(dir, '/') = '\0';
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
	return 0;
}

static void sha_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static size_t count_tmp(const char *dir)
{
	char path[512];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/blobs/tmp", dir);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static unsigned char *make_content(size_t n, unsigned seed)
{
	unsigned char *b = malloc(n);
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x = x * 1664525u + 1013904223u;
		b[i] = (unsigned char)(x >> 24);
	}
	return b;
}

static void write_blob(const char *dir, const unsigned char *b, size_t n, size_t piece,
		       char sha[HARK_SHA_HEX_LEN])
{
	struct hark_blob_writer *w = NULL;
	char err[256] = "";
	size_t off = 0, hn = 0;
	const unsigned char *head;

	assert_int_equal(hark_blob_writer_new(dir, 0, &w, err, sizeof(err)), HARK_OK);
	while (off < n) {
		size_t k = n - off < piece ? n - off : piece;

		assert_int_equal(hark_blob_writer_write(w, b + off, k), HARK_OK);
		off += k;
	}
	assert_int_equal(hark_blob_writer_size(w), (int64_t)n);
	head = hark_blob_writer_head(w, &hn);
	assert_int_equal(hn, n < 4096 ? n : 4096);
	if (hn)
		assert_memory_equal(head, b, hn);
	assert_int_equal(count_tmp(dir), 1);
	assert_int_equal(hark_blob_writer_commit(w, sha, err, sizeof(err)), HARK_OK);
	hark_blob_writer_free(w);
	assert_int_equal(count_tmp(dir), 0);
}

static void test_write_commit(void **state)
{
	const char *dir = *state;
	size_t n = 1000003;
	unsigned char *b = make_content(n, 1), *back;
	char sha[HARK_SHA_HEX_LEN], expect[65], path[512];
	struct stat sb;
	FILE *fp;

	write_blob(dir, b, n, 7777, sha);
	sha_hex(b, n, expect);
	assert_string_equal(sha, expect);
	assert_int_equal(hark_blob_path(dir, sha, path, sizeof(path)), HARK_OK);
	{
		char want[512];

		snprintf(want, sizeof(want), "%s/blobs/%.2s/%s", dir, sha, sha);
		assert_string_equal(path, want);
	}
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, (off_t)n);
	assert_int_equal(sb.st_mode & 0777, 0600);
	back = malloc(n);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(back, 1, n, fp), n);
	fclose(fp);
	assert_memory_equal(back, b, n);
	free(back);

	/* same content again, in other pieces: same name, one file */
	{
		char sha2[HARK_SHA_HEX_LEN];
		struct stat sb2;

		write_blob(dir, b, n, 65536, sha2);
		assert_string_equal(sha2, sha);
		assert_int_equal(stat(path, &sb2), 0);
		assert_int_equal(sb2.st_ino, sb.st_ino); /* the first file was kept */
	}
	/* the empty blob */
	{
		char sha3[HARK_SHA_HEX_LEN];

		write_blob(dir, b, 0, 1, sha3);
		assert_string_equal(sha3,
				    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	}
	/* remove; removing again is fine */
	assert_int_equal(hark_blob_remove(dir, sha), HARK_OK);
	assert_int_not_equal(stat(path, &sb), 0);
	assert_int_equal(hark_blob_remove(dir, sha), HARK_OK);
	free(b);
}

static void test_cap_and_abort(void **state)
{
	const char *dir = *state;
	struct hark_blob_writer *w = NULL;
	unsigned char *b = make_content(5000, 2);
	char err[256], sha[HARK_SHA_HEX_LEN];

	assert_int_equal(hark_blob_writer_new(dir, 4096, &w, err, sizeof(err)), HARK_OK);
	assert_int_equal(hark_blob_writer_write(w, b, 4000), HARK_OK);
	assert_int_equal(hark_blob_writer_write(w, b + 4000, 96), HARK_OK); /* exactly the cap */
	assert_int_equal(hark_blob_writer_write(w, b + 4096, 1), HARK_ERR_LIMIT);
	assert_non_null(strstr(hark_blob_writer_errmsg(w), "4096"));
	assert_int_equal(hark_blob_writer_size(w), 4096);
	assert_int_equal(count_tmp(dir), 1);
	hark_blob_writer_free(w); /* abandoned: temp removed, nothing committed */
	assert_int_equal(count_tmp(dir), 0);

	/* commit twice is refused */
	assert_int_equal(hark_blob_writer_new(dir, 0, &w, err, sizeof(err)), HARK_OK);
	assert_int_equal(hark_blob_writer_write(w, b, 10), HARK_OK);
	assert_int_equal(hark_blob_writer_commit(w, sha, err, sizeof(err)), HARK_OK);
	assert_int_equal(hark_blob_writer_commit(w, sha, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_blob_writer_write(w, b, 1), HARK_ERR_INVALID_ARG);
	hark_blob_writer_free(w);
	hark_blob_writer_free(NULL);
	free(b);
}

static void test_clean_tmp(void **state)
{
	const char *dir = *state;
	struct hark_blob_writer *w1 = NULL, *w2 = NULL;
	char err[256], path[512];
	FILE *fp;

	assert_int_equal(hark_blob_clean_tmp(dir), 0); /* nothing there yet */
	assert_int_equal(hark_blob_writer_new(dir, 0, &w1, err, sizeof(err)), HARK_OK);
	assert_int_equal(hark_blob_writer_new(dir, 0, &w2, err, sizeof(err)), HARK_OK);
	assert_int_equal(hark_blob_writer_write(w1, "abc", 3), HARK_OK);
	snprintf(path, sizeof(path), "%s/blobs/tmp/crashed.part", dir);
	fp = fopen(path, "w");
	fputs("left by a crash", fp);
	fclose(fp);
	assert_int_equal(count_tmp(dir), 3);
	assert_int_equal(hark_blob_clean_tmp(dir), 3);
	assert_int_equal(count_tmp(dir), 0);
	hark_blob_writer_free(w1);
	hark_blob_writer_free(w2);
}

static void test_paths(void **state)
{
	const char *dir = *state;
	const char *good = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char path[512], tiny[16];

	assert_int_equal(hark_blob_path(dir, good, path, sizeof(path)), HARK_OK);
	assert_int_equal(hark_blob_path(dir, "../../etc/passwd", path, sizeof(path)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_blob_path(dir, "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
					path, sizeof(path)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_blob_path(dir, "0123", path, sizeof(path)), HARK_ERR_INVALID_ARG);
	{
		char longer[80];

		snprintf(longer, sizeof(longer), "%s0", good);
		assert_int_equal(hark_blob_path(dir, longer, path, sizeof(path)), HARK_ERR_INVALID_ARG);
	}
	assert_int_equal(hark_blob_path(dir, NULL, path, sizeof(path)), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_blob_path(dir, good, tiny, sizeof(tiny)), HARK_ERR_LIMIT);
	assert_int_equal(hark_blob_remove(dir, "zz"), HARK_ERR_INVALID_ARG);
}

static void test_unwritable(void **state)
{
	const char *dir = *state;
	struct hark_blob_writer *w = NULL;
	char err[256] = "", file[400], sub[512];
	FILE *fp;

	/* data dir path runs through a regular file */
	snprintf(file, sizeof(file), "%s-file", dir);
	fp = fopen(file, "w");
	fclose(fp);
	snprintf(sub, sizeof(sub), "%s/x", file);
	assert_int_not_equal(hark_blob_writer_new(sub, 0, &w, err, sizeof(err)), HARK_OK);
	assert_null(w);
	assert_true(err[0] != '\0');
	unlink(file);
	if (geteuid() != 0) {
		/* a read-only data directory */
		mkdir(dir, 0500);
		assert_int_equal(hark_blob_writer_new(dir, 0, &w, err, sizeof(err)),
				 HARK_ERR_PERMISSION);
		chmod(dir, 0700);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap_and_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_tmp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
