/*
 * Error-message buffers: the caller-supplied `char *err, size_t errlen` pair
 * that hark's internal functions fill with a one-line reason next to their
 * enum hark_err return code.
 */
#ifndef HARK_UTIL_ERRBUF_H
#define HARK_UTIL_ERRBUF_H

#include <stddef.h>

/* printf-formats into buf (len bytes, always NUL-terminated, truncated if
 * needed). buf NULL or len 0 is a no-op. */
void hark_errbuf_set(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* HARK_UTIL_ERRBUF_H */
