/*
 * Deterministic token estimate shared by the LLM client (rate-limit
 * reservations, context-window fit) and the provider simulator (usage).
 */
#include "llm/tokens.h"

static int is_word(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

size_t hark_llm_tokens_count(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0, n = 0;

	if (!text)
		return 0;
	while (i < len) {
		unsigned char c = s[i];

		if (is_space(c)) {
			i++;
		} else if (is_word(c)) {
			size_t run = 0;

			while (i < len && is_word(s[i])) {
				run++;
				i++;
			}
			n += 1 + (run - 1) / 6;
		} else if (c >= 0xC0 && c < 0xF8) {
			/* one multi-byte code point: skip its continuation bytes */
			i++;
			while (i < len && (s[i] & 0xC0) == 0x80)
				i++;
			n++;
		} else {
			i++;
			n++;
		}
	}
	return n;
}

static size_t slen(const char *s)
{
	size_t n = 0;

	while (s && s[n])
		n++;
	return n;
}

size_t hark_llm_tokens_chat(const char *const *roles, const char *const *contents, size_t n)
{
	size_t total = 3;

	for (size_t i = 0; i < n; i++) {
		const char *r = roles ? roles[i] : NULL;
		const char *c = contents ? contents[i] : NULL;

		total += 4 + hark_llm_tokens_count(r, slen(r)) + hark_llm_tokens_count(c, slen(c));
	}
	return total;
}
