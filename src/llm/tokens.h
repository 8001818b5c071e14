/*
 * Token estimation for the LLM layer: a fast, deterministic approximation of
 * BPE token counts, used to reserve rate-limit budget before a
 * call and to pick a model whose context window fits. The provider
 * simulator counts `usage` with the same function, so against it the
 * estimate is exact; against a real provider the reservation is corrected
 * from the response's usage.
 */
#ifndef HARK_LLM_TOKENS_H
#define HARK_LLM_TOKENS_H

#include <stddef.h>

/*
 * Number of tokens in text[0..len) (UTF-8; invalid bytes count one token
 * each). Rule: every maximal run of ASCII letters/digits costs
 * 1 + (run_len - 1) / 6 tokens; every other non-space character
 * (punctuation, each non-ASCII UTF-8 code point) costs 1; whitespace is
 * free. Deterministic, allocation-free, O(len).
 */
size_t hark_llm_tokens_count(const char *text, size_t len);

/*
 * Tokens of a chat request as providers count them: for each message
 * 4 + tokens(role) + tokens(content), plus 3 for the reply priming.
 * roles/contents: n parallel NUL-terminated strings (NULL content = "").
 */
size_t hark_llm_tokens_chat(const char *const *roles, const char *const *contents, size_t n);

#endif /* HARK_LLM_TOKENS_H */
