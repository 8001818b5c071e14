/*
 * The `hark serve` JSON config file (docs/SERVER.md, "Config file") and the
 * listen-address syntax shared with the --listen flag. Loading applies the
 * file's fields onto a params struct (flags are applied afterwards by the
 * caller, so they win); unknown fields are rejected so typos do not pass
 * silently. The config handle owns the strings the params point to.
 */
#ifndef HARK_SERVER_CONFIG_H
#define HARK_SERVER_CONFIG_H

#include <stddef.h>

#include "server/server.h"

struct hark_server_config;

/*
 * Reads the JSON object in path and sets the fields it names in *p. On
 * success *out owns every string p now points to (keep it alive while p is
 * used; free with hark_server_config_free). Errors: HARK_ERR_NOT_FOUND /
 * HARK_ERR_IO (unreadable), HARK_ERR_FORMAT (not JSON), HARK_ERR_INVALID_ARG
 * (unknown field or bad value); err names the field.
 */
int hark_server_config_load(const char *path, struct hark_server_params *p,
			    struct hark_server_config **out, char *err, size_t errlen);

/* NULL is a no-op. */
void hark_server_config_free(struct hark_server_config *c);

/*
 * Parses "HOST:PORT", "[V6]:PORT", ":PORT" (all interfaces) or "PORT" into
 * host (hostlen bytes; "0.0.0.0" for all) and *port (0..65535).
 * HARK_ERR_INVALID_ARG if malformed.
 */
int hark_server_parse_listen(const char *s, char *host, size_t hostlen, int *port);

#endif /* HARK_SERVER_CONFIG_H */
