/*
 * `hark keys`: offline management of the job server's API keys in a data
 * directory's store: create a key (its secret token is printed once, only
 * its sha256 is stored), list keys (never the hash), revoke a key by id or
 * token prefix, and print the webhook signing secret (created on first use).
 * A running server notices changes through the store's keys version.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "store/store.h"
#include "util/errbuf.h"

#define DEFAULT_DATA "./hark-data"
#define NAME_MAX_LEN 200

static void keys_usage(FILE *f)
{
	fprintf(f,
		"usage: hark keys <command> [options]\n\n"
		"commands:\n"
		"  create --name NAME [--rps R] [--burst B] [--quota-seconds S] [--max-concurrent N]\n"
		"                        make a key; prints {\"id\",\"token\",...} once (the token\n"
		"                        is not stored and cannot be shown again)\n"
		"  list [--json]         all keys (active and revoked)\n"
		"  revoke ID|PREFIX      revoke a key by id (key_...) or token prefix\n"
		"  webhook-secret        print the webhook signing secret (created if absent)\n\n"
		"options:\n"
		"  --data DIR            data directory (default %s)\n"
		"defaults: --rps 10 --burst 20 --quota-seconds 0 (unlimited) --max-concurrent 4\n"
		"(0 = unlimited for every limit)\n",
		DEFAULT_DATA);
}

static int usage_error(const char *msg)
{
	hark_cli_error("keys", HARK_ERR_INVALID_ARG, msg);
	keys_usage(stderr);
	return HARK_EXIT_USAGE;
}

/* Parses a finite number >= 0 (integer if want_int). */
static int parse_num(const char *s, int want_int, double *out)
{
	char *end = NULL;
	double v;

	if (!s || !*s)
		return -1;
	v = strtod(s, &end);
	if (!end || *end || !isfinite(v) || v < 0)
		return -1;
	if (want_int && (v != floor(v) || v > 1e6))
		return -1;
	*out = v;
	return 0;
}

static int open_store(const char *dir, int must_exist, struct hark_store **st)
{
	char err[512], path[4096];
	struct stat sb;
	int rc;

	if (must_exist) {
		snprintf(path, sizeof(path), "%s/hark.db", dir);
		if (stat(path, &sb) != 0) {
			hark_errbuf_set(err, sizeof(err), "no store in %s (create a key or start hark serve)",
				 dir);
			hark_cli_error(dir, HARK_ERR_NOT_FOUND, err);
			return HARK_ERR_NOT_FOUND;
		}
	}
	rc = hark_store_open(dir, NULL, st, err, sizeof(err));
	if (rc != HARK_OK)
		hark_cli_error(dir, rc, err);
	return rc;
}

static json_t *time_json(double t)
{
	char buf[40];

	if (!(t > 0))
		return json_null();
	hark_store_rfc3339(t, buf, sizeof(buf));
	return json_string(buf);
}

static void print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (s) {
		printf("%s\n", s);
		free(s);
	}
}

static int cmd_create(const char *dir, const char *name, double rps, double burst,
		      double quota, int max_conc)
{
	struct hark_store *st = NULL;
	struct hark_key k;
	char token[64];
	json_t *o;
	int rc;

	memset(&k, 0, sizeof(k));
	rc = open_store(dir, 0, &st);
	if (rc != HARK_OK)
		return hark_cli_exit_code(rc);
	rc = hark_store_key_generate(&k, token, sizeof(token));
	if (rc == HARK_OK) {
		k.name = (char *)name;
		k.created_at = 0; /* store fills in now */
		k.rate_rps = rps;
		k.rate_burst = burst;
		k.daily_quota_s = quota;
		k.max_concurrent = max_conc;
		rc = hark_store_key_insert(st, &k);
	}
	if (rc != HARK_OK) {
		hark_cli_error(dir, rc, hark_store_errmsg(st));
		hark_store_close(st);
		return hark_cli_exit_code(rc);
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:i}", "id", k.id, "token", token,
		      "prefix", k.prefix, "name", name, "rps", rps, "burst", burst,
		      "quota_seconds", quota, "max_concurrent", max_conc);
	memset(token, 0, sizeof(token));
	hark_store_close(st);
	if (!o) {
		hark_cli_error(NULL, HARK_ERR_NOMEM, NULL);
		return hark_cli_exit_code(HARK_ERR_NOMEM);
	}
	print_json(o);
	json_decref(o);
	return fflush(stdout) == 0 ? 0 : hark_cli_exit_code(HARK_ERR_IO);
}

static void fmt_limit(double v, char *out, size_t n)
{
	if (v > 0)
		snprintf(out, n, "%g", v);
	else
		snprintf(out, n, "-");
}

static int cmd_list(const char *dir, int as_json)
{
	struct hark_store *st = NULL;
	struct hark_key *keys = NULL;
	size_t n = 0;
	json_t *arr;
	int rc;

	rc = open_store(dir, 1, &st);
	if (rc != HARK_OK)
		return hark_cli_exit_code(rc);
	rc = hark_store_key_list(st, &keys, &n);
	if (rc != HARK_OK) {
		hark_cli_error(dir, rc, hark_store_errmsg(st));
		hark_store_close(st);
		return hark_cli_exit_code(rc);
	}
	hark_store_close(st);
	if (as_json) {
		arr = json_array();
		for (size_t i = 0; arr && i < n; i++) {
			json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:b, s:f, s:f, s:f, s:i}",
					      "id", keys[i].id, "name", keys[i].name ? keys[i].name : "",
					      "prefix", keys[i].prefix, "created_at",
					      time_json(keys[i].created_at), "revoked_at",
					      time_json(keys[i].revoked_at), "revoked",
					      keys[i].revoked_at > 0, "rps", keys[i].rate_rps, "burst",
					      keys[i].rate_burst, "quota_seconds", keys[i].daily_quota_s,
					      "max_concurrent", keys[i].max_concurrent);
			if (!o || json_array_append_new(arr, o) != 0) {
				json_decref(arr);
				arr = NULL;
			}
		}
		if (!arr) {
			hark_key_array_free(keys, n);
			hark_cli_error(NULL, HARK_ERR_NOMEM, NULL);
			return hark_cli_exit_code(HARK_ERR_NOMEM);
		}
		print_json(arr);
		json_decref(arr);
	} else {
		printf("%-20s  %-12s  %-8s  %-24s  %6s  %6s  %8s  %4s  %s\n", "ID", "PREFIX", "STATUS",
		       "CREATED", "RPS", "BURST", "QUOTA_S", "CONC", "NAME");
		for (size_t i = 0; i < n; i++) {
			char created[40], rps[24], burst[24], quota[24], conc[24];

			hark_store_rfc3339(keys[i].created_at, created, sizeof(created));
			fmt_limit(keys[i].rate_rps, rps, sizeof(rps));
			fmt_limit(keys[i].rate_burst, burst, sizeof(burst));
			fmt_limit(keys[i].daily_quota_s, quota, sizeof(quota));
			fmt_limit(keys[i].max_concurrent, conc, sizeof(conc));
			printf("%-20s  %-12s  %-8s  %-24s  %6s  %6s  %8s  %4s  %s\n", keys[i].id,
			       keys[i].prefix, keys[i].revoked_at > 0 ? "revoked" : "active", created,
			       rps, burst, quota, conc, keys[i].name ? keys[i].name : "");
		}
	}
	hark_key_array_free(keys, n);
	return fflush(stdout) == 0 ? 0 : hark_cli_exit_code(HARK_ERR_IO);
}

static int cmd_revoke(const char *dir, const char *which)
{
	struct hark_store *st = NULL;
	int rc;

	rc = open_store(dir, 1, &st);
	if (rc != HARK_OK)
		return hark_cli_exit_code(rc);
	rc = hark_store_key_revoke(st, which, 0);
	if (rc != HARK_OK)
		hark_cli_error(which, rc, hark_store_errmsg(st));
	else
		printf("revoked %s\n", which);
	hark_store_close(st);
	return hark_cli_exit_code(rc);
}

static int cmd_webhook_secret(const char *dir)
{
	struct hark_store *st = NULL;
	char *secret = NULL;
	int rc;

	rc = open_store(dir, 0, &st);
	if (rc != HARK_OK)
		return hark_cli_exit_code(rc);
	rc = hark_store_webhook_secret(st, &secret);
	if (rc != HARK_OK)
		hark_cli_error(dir, rc, hark_store_errmsg(st));
	else
		printf("%s\n", secret);
	free(secret);
	hark_store_close(st);
	return hark_cli_exit_code(rc);
}

int hark_cli_keys(int argc, char **argv)
{
	enum { O_DATA = 256, O_NAME, O_RPS, O_BURST, O_QUOTA, O_CONC, O_JSON };
	static const struct option opts[] = {
		{"data", required_argument, NULL, O_DATA},
		{"name", required_argument, NULL, O_NAME},
		{"rps", required_argument, NULL, O_RPS},
		{"burst", required_argument, NULL, O_BURST},
		{"quota-seconds", required_argument, NULL, O_QUOTA},
		{"max-concurrent", required_argument, NULL, O_CONC},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = DEFAULT_DATA, *name = NULL, *cmd;
	double rps = 10, burst = 20, quota = 0, conc = 4;
	int as_json = 0, create_opts = 0, c, sub_argc;
	char **sub_argv;

	if (argc < 2) {
		keys_usage(stderr);
		return HARK_EXIT_USAGE;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		keys_usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "create") && strcmp(cmd, "list") && strcmp(cmd, "revoke") &&
	    strcmp(cmd, "webhook-secret")) {
		char msg[128];

		snprintf(msg, sizeof(msg), "unknown keys command '%.60s'", cmd);
		return usage_error(msg);
	}
	sub_argc = argc - 1;
	sub_argv = argv + 1;
	optind = 0;
	opterr = 1;
	while ((c = getopt_long(sub_argc, sub_argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_DATA:
			dir = optarg;
			break;
		case O_NAME:
			create_opts = 1;
			name = optarg;
			break;
		case O_RPS:
			create_opts = 1;
			if (parse_num(optarg, 0, &rps))
				return usage_error("--rps takes a number >= 0");
			break;
		case O_BURST:
			create_opts = 1;
			if (parse_num(optarg, 0, &burst))
				return usage_error("--burst takes a number >= 0");
			break;
		case O_QUOTA:
			create_opts = 1;
			if (parse_num(optarg, 0, &quota))
				return usage_error("--quota-seconds takes a number >= 0");
			break;
		case O_CONC:
			create_opts = 1;
			if (parse_num(optarg, 1, &conc))
				return usage_error("--max-concurrent takes an integer >= 0");
			break;
		case O_JSON:
			as_json = 1;
			break;
		case 'h':
			keys_usage(stdout);
			return 0;
		default:
			keys_usage(stderr);
			return HARK_EXIT_USAGE;
		}
	}
	if (!*dir)
		return usage_error("--data needs a directory");
	if (create_opts && strcmp(cmd, "create"))
		return usage_error("--name and the limit options belong to 'keys create'");
	if (as_json && strcmp(cmd, "list"))
		return usage_error("--json belongs to 'keys list'");

	if (!strcmp(cmd, "create")) {
		if (optind != sub_argc)
			return usage_error("create takes no positional arguments");
		if (!name || !*name)
			return usage_error("create needs --name NAME");
		if (strlen(name) > NAME_MAX_LEN)
			return usage_error("--name is longer than 200 bytes");
		return cmd_create(dir, name, rps, burst, quota, (int)conc);
	}
	if (!strcmp(cmd, "list")) {
		if (optind != sub_argc)
			return usage_error("list takes no positional arguments");
		return cmd_list(dir, as_json);
	}
	if (!strcmp(cmd, "revoke")) {
		if (optind + 1 != sub_argc || !*sub_argv[optind])
			return usage_error("revoke needs exactly one key id or prefix");
		return cmd_revoke(dir, sub_argv[optind]);
	}
	if (optind != sub_argc)
		return usage_error("webhook-secret takes no positional arguments");
	return cmd_webhook_secret(dir);
}
