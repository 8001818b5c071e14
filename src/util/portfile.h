/*
 * Small process helpers shared by hark's network programs (`hark serve` and
 * `hark-llm-sim`): announcing the port a server bound (so scripts and tests
 * can start it on port 0) and raising the open-file limit for many
 * connections.
 */
#ifndef HARK_UTIL_PORTFILE_H
#define HARK_UTIL_PORTFILE_H

/* Writes "PORT\n" to path atomically (a temporary file renamed into
 * place, so a reader never sees a partial number). 0 or -1 (errno set). */
int hark_portfile_write(const char *path, int port);

/* Raises the soft RLIMIT_NOFILE towards the hard limit, capped at cap
 * (event libraries size tables by it). Returns the resulting soft limit,
 * or 1024 if it cannot be read. */
unsigned hark_portfile_raise_nofile(unsigned cap);

#endif /* HARK_UTIL_PORTFILE_H */
