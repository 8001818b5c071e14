/*
 * Structured-output checking for LLM replies (see schema.h): compiles the
 * supported JSON Schema subset into a node graph (local $refs become edges,
 * so recursive schemas are cycles in the graph, compiled once), validates
 * jansson values against it with JSON-pointer error messages, pulls the
 * JSON value out of a model's reply text, and renders canonical JSON text
 * for hashing. Every walk is bounded: compilation at 64 schema levels,
 * validation at 64 instance levels (checked iteratively before the
 * recursive walk) and 256 schema applications deep, reply scanning in one
 * linear pass, and canonical rendering with an explicit heap stack.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hark/hark.h"
#include "llm/schema.h"
#include "util/errbuf.h"

#define SCH_MAX_DEPTH 64	/* schema nesting at compile; instance nesting */
#define SCH_MAX_APPLY_DEPTH 256 /* nested schema applications during validation */
#define SCH_MAX_NODES 20000	/* compiled nodes per schema */
#define SCH_PTR_MAX 512		/* JSON pointer text kept for messages */
#define CANON_MAX_BYTES (256u << 20)
#define CANON_MAX_DEPTH 1000000

enum {
	T_NULL = 1 << 0,
	T_BOOLEAN = 1 << 1,
	T_OBJECT = 1 << 2,
	T_ARRAY = 1 << 3,
	T_NUMBER = 1 << 4,
	T_INTEGER = 1 << 5,
	T_STRING = 1 << 6,
};

static const struct {
	const char *name;
	unsigned bit;
} type_names[] = {
	{"string", T_STRING}, {"number", T_NUMBER}, {"integer", T_INTEGER}, {"boolean", T_BOOLEAN},
	{"null", T_NULL},     {"object", T_OBJECT}, {"array", T_ARRAY},
};

/* One compiled (sub)schema. Strings and values are borrowed from the
 * schema document, which lives as long as the compiled schema. */
struct snode {
	const json_t *src; /* the schema object this node was compiled from */
	size_t index;	   /* position in hark_llm_schema.nodes */
	int is_false;	   /* the boolean schema `false`: nothing validates */
	unsigned types;	   /* T_* bits; 0 = any type */
	size_t n_props;
	const char **prop_names;
	struct snode **prop_nodes;
	size_t n_required;
	const char **required;
	int addl_mode; /* 0 = anything, 1 = forbidden, 2 = addl schema */
	struct snode *addl;
	struct snode *items;
	long long min_items, max_items; /* -1 = none */
	long long min_len, max_len;	/* code points; -1 = none */
	int has_min, has_max;
	double minimum, maximum;
	const json_t *enum_vals; /* array, or NULL */
	const json_t *const_val; /* or NULL (has_const tells a JSON null apart) */
	int has_const;
	size_t n_any;
	struct snode **any;
	struct snode *ref;
};

struct hark_llm_schema {
	json_t *root;
	struct snode *top;
	struct snode **nodes;
	size_t n_nodes, cap_nodes;
};

/* --------------------------------------------------------- pointers ---- */

/* A JSON pointer under construction (for messages). A segment that does
 * not fit is left out whole and counted, so the text stays well formed and
 * ends in "..." when printed. */
struct ptrbuf {
	char s[SCH_PTR_MAX];
	size_t len;
	size_t dropped;
};

/* Restore point: length and dropped count packed together. */
static size_t ptr_mark(const struct ptrbuf *p)
{
	return p->len | (p->dropped << 16);
}

static void ptr_restore(struct ptrbuf *p, size_t mark)
{
	p->len = mark & 0xffff;
	p->dropped = mark >> 16;
	p->s[p->len] = '\0';
}

static void ptr_push_key(struct ptrbuf *p, const char *key, size_t klen)
{
	size_t need = 1;

	for (size_t i = 0; i < klen; i++)
		need += key[i] == '~' || key[i] == '/' ? 2 : key[i] ? 1 : 6;
	if (p->dropped || p->len + need + 1 > sizeof(p->s)) {
		p->dropped++;
		return;
	}
	p->s[p->len++] = '/';
	for (size_t i = 0; i < klen; i++) {
		if (key[i] == '~') {
			memcpy(p->s + p->len, "~0", 2);
			p->len += 2;
		} else if (key[i] == '/') {
			memcpy(p->s + p->len, "~1", 2);
			p->len += 2;
		} else if (!key[i]) {
			memcpy(p->s + p->len, "\\u0000", 6);
			p->len += 6;
		} else {
			p->s[p->len++] = key[i];
		}
	}
	p->s[p->len] = '\0';
}

static void ptr_push_index(struct ptrbuf *p, size_t i)
{
	char num[32];

	snprintf(num, sizeof(num), "%zu", i);
	ptr_push_key(p, num, strlen(num));
}

static const char *ptr_text(const struct ptrbuf *p)
{
	return p->len ? p->s : "(root)";
}

static const char *ptr_more(const struct ptrbuf *p)
{
	return p->dropped ? "/..." : "";
}

/*
 * A finite double as JSON number text: an integral value below 2^53 in
 * magnitude as an integer (so 1.0 and 1 render alike, -0 as 0); any other
 * value in the shortest %g form that reads back to the same double, with
 * '.' as the decimal point whatever the locale. len >= 32.
 */
static void format_real(double d, char *num, size_t len)
{
	if (d == floor(d) && fabs(d) < 9007199254740992.0) {
		snprintf(num, len, "%.0f", d == 0 ? 0.0 : d);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(num, len, "%.*g", prec, d);
		if (strtod(num, NULL) == d)
			break;
	}
	for (char *p = num; *p; p++)
		if (*p == ',')
			*p = '.';
}

/* ------------------------------------------------ depth, equality ------ */

/*
 * 1 when v nests containers more than limit levels deep (a scalar is level
 * 0, the outermost container level 1), found without recursion. at (may be
 * NULL) then holds the pointer to the first container past the limit.
 */
static int value_too_deep(const json_t *v, int limit, struct ptrbuf *at)
{
	struct frame {
		const json_t *c;
		size_t i;
		void *it;
		size_t mark;
	} st[SCH_MAX_DEPTH + 1];
	struct ptrbuf scratch;
	int sp;

	if (!at) {
		memset(&scratch, 0, sizeof(scratch));
		at = &scratch;
	}
	if (limit > SCH_MAX_DEPTH)
		limit = SCH_MAX_DEPTH;
	if (!json_is_object(v) && !json_is_array(v))
		return 0;
	if (limit < 1)
		return 1;
	st[0].c = v;
	st[0].i = 0;
	st[0].it = json_is_object(v) ? json_object_iter((json_t *)v) : NULL;
	st[0].mark = ptr_mark(at);
	sp = 1;
	while (sp > 0) {
		struct frame *f = &st[sp - 1];
		const json_t *child = NULL;

		ptr_restore(at, f->mark);
		if (json_is_array(f->c)) {
			if (f->i < json_array_size(f->c)) {
				child = json_array_get(f->c, f->i);
				if (json_is_object(child) || json_is_array(child))
					ptr_push_index(at, f->i);
				f->i++;
			}
		} else if (f->it) {
			child = json_object_iter_value(f->it);
			if (json_is_object(child) || json_is_array(child))
				ptr_push_key(at, json_object_iter_key(f->it),
					     json_object_iter_key_len(f->it));
			f->it = json_object_iter_next((json_t *)f->c, f->it);
		}
		if (!child) {
			sp--;
			continue;
		}
		if (!json_is_object(child) && !json_is_array(child))
			continue;
		if (sp >= limit)
			return 1;
		st[sp].c = child;
		st[sp].i = 0;
		st[sp].it = json_is_object(child) ? json_object_iter((json_t *)child) : NULL;
		st[sp].mark = ptr_mark(at);
		sp++;
	}
	ptr_restore(at, st[0].mark);
	return 0;
}

/* JSON equality with numbers compared by value (1 == 1.0). Callers bound
 * the depth of both values beforehand. */
static int values_equal(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b)) {
		if (json_is_integer(a) && json_is_integer(b))
			return json_integer_value(a) == json_integer_value(b);
		return json_number_value(a) == json_number_value(b);
	}
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) ==
			       0;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!values_equal(json_array_get(a, i), json_array_get(b, i)))
				return 0;
		return 1;
	case JSON_OBJECT: {
		const char *k;
		size_t kl;
		json_t *va;

		if (json_object_size(a) != json_object_size(b))
			return 0;
		json_object_keylen_foreach((json_t *)a, k, kl, va) {
			json_t *vb = json_object_getn(b, k, kl);

			if (!vb || !values_equal(va, vb))
				return 0;
		}
		return 1;
	}
	default:
		return 1; /* true, false, null: same type is same value */
	}
}

/* ------------------------------------------------------------ compile --- */

struct cctx {
	struct hark_llm_schema *s;
	struct ptrbuf path;
	char *err;
	size_t errlen;
	int rc;
};

static void cerr(struct cctx *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void cerr(struct cctx *c, int rc, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hark_errbuf_set(c->err, c->errlen, "%s%s: %s", ptr_text(&c->path), ptr_more(&c->path), msg);
	c->rc = rc;
}

static void node_free(struct snode *n)
{
	if (!n)
		return;
	free(n->prop_names);
	free(n->prop_nodes);
	free(n->required);
	free(n->any);
	free(n);
}

void hark_llm_schema_free(struct hark_llm_schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_nodes; i++)
		node_free(s->nodes[i]);
	free(s->nodes);
	json_decref(s->root);
	free(s);
}

const json_t *hark_llm_schema_json(const struct hark_llm_schema *s)
{
	return s ? s->root : NULL;
}

static struct snode *new_node(struct cctx *c, const json_t *src)
{
	struct hark_llm_schema *s = c->s;
	struct snode *n;

	if (s->n_nodes >= SCH_MAX_NODES) {
		cerr(c, HARK_ERR_LIMIT, "schema has more than %d subschemas", SCH_MAX_NODES);
		return NULL;
	}
	if (s->n_nodes == s->cap_nodes) {
		size_t nc = s->cap_nodes ? s->cap_nodes * 2 : 16;
		struct snode **nn = realloc(s->nodes, nc * sizeof(*nn));

		if (!nn)
			goto nomem;
		s->nodes = nn;
		s->cap_nodes = nc;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		goto nomem;
	n->src = src;
	n->index = s->n_nodes;
	n->min_items = n->max_items = n->min_len = n->max_len = -1;
	s->nodes[s->n_nodes++] = n;
	return n;
nomem:
	cerr(c, HARK_ERR_NOMEM, "out of memory");
	return NULL;
}

static struct snode *find_node(const struct hark_llm_schema *s, const json_t *src)
{
	for (size_t i = 0; i < s->n_nodes; i++)
		if (s->nodes[i]->src == src)
			return s->nodes[i];
	return NULL;
}

static struct snode *compile_node(struct cctx *c, const json_t *js, int depth);

/* Compiles the subschema at member key of js (path extended meanwhile). */
static struct snode *compile_child(struct cctx *c, const json_t *js, const char *seg, size_t seglen,
				   int depth)
{
	size_t saved = ptr_mark(&c->path);
	struct snode *n;

	ptr_push_key(&c->path, seg, seglen);
	n = compile_node(c, js, depth);
	if (n)
		ptr_restore(&c->path, saved);
	return n;
}

static int nonneg_int(struct cctx *c, const json_t *v, const char *kw, long long *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		ptr_push_key(&c->path, kw, strlen(kw));
		cerr(c, HARK_ERR_INVALID_ARG, "must be a non-negative integer");
		return -1;
	}
	*out = (long long)json_integer_value(v);
	return 0;
}

/* Resolves a local $ref ("#" or "#/a/b" with ~0 ~1 escapes) in root. */
static const json_t *resolve_ref(const json_t *root, const char *ref, const char **why)
{
	const json_t *cur = root;
	const char *p;

	*why = NULL;
	if (ref[0] != '#') {
		*why = "only local references (\"#/...\") are supported";
		return NULL;
	}
	p = ref + 1;
	if (*p && *p != '/') {
		*why = "only JSON-pointer references (\"#/...\") are supported";
		return NULL;
	}
	while (*p == '/') {
		char seg[256];
		size_t n = 0;

		p++;
		while (*p && *p != '/') {
			char ch = *p++;

			if (ch == '~') {
				if (*p == '0')
					ch = '~';
				else if (*p == '1')
					ch = '/';
				else {
					*why = "bad ~ escape in reference";
					return NULL;
				}
				p++;
			}
			if (n + 1 >= sizeof(seg)) {
				*why = "reference segment too long";
				return NULL;
			}
			seg[n++] = ch;
		}
		seg[n] = '\0';
		if (json_is_object(cur)) {
			cur = json_object_get(cur, seg);
		} else if (json_is_array(cur)) {
			char *end = NULL;
			unsigned long idx = strtoul(seg, &end, 10);

			cur = (n && isdigit((unsigned char)seg[0]) && !*end)
				      ? json_array_get(cur, idx)
				      : NULL;
		} else {
			cur = NULL;
		}
		if (!cur) {
			*why = "reference target does not exist";
			return NULL;
		}
	}
	if (!json_is_object(cur) && !json_is_boolean(cur)) {
		*why = "reference target is not a schema";
		return NULL;
	}
	return cur;
}

static int compile_type(struct cctx *c, struct snode *n, const json_t *v)
{
	size_t cnt = json_is_array(v) ? json_array_size(v) : 1;

	if (json_is_array(v) && cnt == 0)
		goto bad;
	for (size_t i = 0; i < cnt; i++) {
		const json_t *t = json_is_array(v) ? json_array_get(v, i) : v;
		const char *name = json_string_value(t);
		unsigned bit = 0;

		if (!name)
			goto bad;
		for (size_t k = 0; k < sizeof(type_names) / sizeof(type_names[0]); k++)
			if (strcmp(name, type_names[k].name) == 0)
				bit = type_names[k].bit;
		if (!bit)
			goto bad;
		n->types |= bit;
	}
	return 0;
bad:
	ptr_push_key(&c->path, "type", 4);
	cerr(c, HARK_ERR_INVALID_ARG,
	     "must be a type name (string, number, integer, boolean, null, object, array) "
	     "or a non-empty array of them");
	return -1;
}

static int compile_properties(struct cctx *c, struct snode *n, const json_t *v, int depth)
{
	size_t saved = ptr_mark(&c->path), i = 0, kl;
	const char *k;
	json_t *sub;

	if (!json_is_object(v)) {
		ptr_push_key(&c->path, "properties", 10);
		cerr(c, HARK_ERR_INVALID_ARG, "must be an object of schemas");
		return -1;
	}
	n->n_props = json_object_size(v);
	n->prop_names = calloc(n->n_props ? n->n_props : 1, sizeof(*n->prop_names));
	n->prop_nodes = calloc(n->n_props ? n->n_props : 1, sizeof(*n->prop_nodes));
	if (!n->prop_names || !n->prop_nodes) {
		cerr(c, HARK_ERR_NOMEM, "out of memory");
		return -1;
	}
	ptr_push_key(&c->path, "properties", 10);
	json_object_keylen_foreach((json_t *)v, k, kl, sub) {
		if (kl != strlen(k)) {
			cerr(c, HARK_ERR_INVALID_ARG, "property names must not contain NUL");
			return -1;
		}
		n->prop_names[i] = k;
		n->prop_nodes[i] = compile_child(c, sub, k, kl, depth + 1);
		if (!n->prop_nodes[i])
			return -1;
		i++;
	}
	ptr_restore(&c->path, saved);
	return 0;
}

static int compile_required(struct cctx *c, struct snode *n, const json_t *v)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		goto bad;
	n->n_required = json_array_size(v);
	n->required = calloc(n->n_required ? n->n_required : 1, sizeof(*n->required));
	if (!n->required) {
		cerr(c, HARK_ERR_NOMEM, "out of memory");
		return -1;
	}
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || json_string_length(e) != strlen(json_string_value(e)))
			goto bad;
		n->required[i] = json_string_value(e);
	}
	return 0;
bad:
	ptr_push_key(&c->path, "required", 8);
	cerr(c, HARK_ERR_INVALID_ARG, "must be an array of property names");
	return -1;
}

static int compile_any_of(struct cctx *c, struct snode *n, const json_t *v, int depth)
{
	size_t saved = ptr_mark(&c->path), i;
	json_t *e;

	ptr_push_key(&c->path, "anyOf", 5);
	if (!json_is_array(v) || json_array_size(v) == 0) {
		cerr(c, HARK_ERR_INVALID_ARG, "must be a non-empty array of schemas");
		return -1;
	}
	n->n_any = json_array_size(v);
	n->any = calloc(n->n_any, sizeof(*n->any));
	if (!n->any) {
		cerr(c, HARK_ERR_NOMEM, "out of memory");
		return -1;
	}
	json_array_foreach(v, i, e) {
		char num[24];

		snprintf(num, sizeof(num), "%zu", i);
		n->any[i] = compile_child(c, e, num, strlen(num), depth + 1);
		if (!n->any[i])
			return -1;
	}
	ptr_restore(&c->path, saved);
	return 0;
}

static int compile_ref(struct cctx *c, struct snode *n, const json_t *v, int depth)
{
	const char *why = NULL, *ref = json_string_value(v);
	const json_t *target;
	struct ptrbuf saved;

	if (!ref) {
		ptr_push_key(&c->path, "$ref", 4);
		cerr(c, HARK_ERR_INVALID_ARG, "must be a string");
		return -1;
	}
	target = resolve_ref(c->s->root, ref, &why);
	if (!target) {
		ptr_push_key(&c->path, "$ref", 4);
		cerr(c, HARK_ERR_INVALID_ARG, "\"%.200s\": %s", ref, why);
		return -1;
	}
	n->ref = find_node(c->s, target);
	if (n->ref)
		return 0;
	/* first visit of the target: compile it under its own path */
	saved = c->path;
	ptr_restore(&c->path, 0);
	if (strlen(ref + 1) < sizeof(c->path.s)) {
		c->path.len = strlen(ref + 1);
		memcpy(c->path.s, ref + 1, c->path.len + 1);
	}
	n->ref = compile_node(c, target, depth + 1);
	if (!n->ref)
		return -1;
	c->path = saved;
	return 0;
}

static int is_annotation(const char *kw)
{
	static const char *const ann[] = {"title", "description", "$comment", "$schema",
					  "$id",   "default",	  "examples", NULL};

	for (size_t i = 0; ann[i]; i++)
		if (strcmp(kw, ann[i]) == 0)
			return 1;
	return 0;
}

static struct snode *compile_node(struct cctx *c, const json_t *js, int depth)
{
	struct snode *n;
	const char *kw;
	json_t *v;

	n = find_node(c->s, js);
	if (n)
		return n;
	if (depth > SCH_MAX_DEPTH) {
		cerr(c, HARK_ERR_LIMIT, "schema nested deeper than %d levels", SCH_MAX_DEPTH);
		return NULL;
	}
	if (!json_is_object(js) && !json_is_boolean(js)) {
		cerr(c, HARK_ERR_INVALID_ARG, "a schema must be an object or a boolean");
		return NULL;
	}
	n = new_node(c, js);
	if (!n)
		return NULL;
	if (json_is_boolean(js)) {
		n->is_false = json_is_false(js);
		return n;
	}
	/* definitions first, so references to them compile under their own path */
	for (int pass = 0; pass < 2; pass++) {
		json_object_foreach((json_t *)js, kw, v) {
			int defs = strcmp(kw, "$defs") == 0 || strcmp(kw, "definitions") == 0;
			size_t saved = ptr_mark(&c->path);
			int bad = 0;

			if (defs != (pass == 0))
				continue;
			if (defs) {
				const char *k;
				size_t kl;
				json_t *sub;

				if (!json_is_object(v)) {
					ptr_push_key(&c->path, kw, strlen(kw));
					cerr(c, HARK_ERR_INVALID_ARG,
					     "must be an object of schemas");
					return NULL;
				}
				ptr_push_key(&c->path, kw, strlen(kw));
				json_object_keylen_foreach(v, k, kl, sub) {
					if (!compile_child(c, sub, k, kl, depth + 1))
						return NULL;
				}
				ptr_restore(&c->path, saved);
			} else if (strcmp(kw, "type") == 0) {
				bad = compile_type(c, n, v);
			} else if (strcmp(kw, "properties") == 0) {
				bad = compile_properties(c, n, v, depth);
			} else if (strcmp(kw, "required") == 0) {
				bad = compile_required(c, n, v);
			} else if (strcmp(kw, "additionalProperties") == 0) {
				if (json_is_boolean(v)) {
					n->addl_mode = json_is_false(v) ? 1 : 0;
				} else {
					n->addl_mode = 2;
					n->addl = compile_child(c, v, kw, strlen(kw), depth + 1);
					bad = !n->addl;
				}
			} else if (strcmp(kw, "items") == 0) {
				if (json_is_array(v)) {
					ptr_push_key(&c->path, kw, strlen(kw));
					cerr(c, HARK_ERR_INVALID_ARG,
					     "must be a schema (the array form is not supported)");
					return NULL;
				}
				n->items = compile_child(c, v, kw, strlen(kw), depth + 1);
				bad = !n->items;
			} else if (strcmp(kw, "minItems") == 0) {
				bad = nonneg_int(c, v, kw, &n->min_items);
			} else if (strcmp(kw, "maxItems") == 0) {
				bad = nonneg_int(c, v, kw, &n->max_items);
			} else if (strcmp(kw, "minLength") == 0) {
				bad = nonneg_int(c, v, kw, &n->min_len);
			} else if (strcmp(kw, "maxLength") == 0) {
				bad = nonneg_int(c, v, kw, &n->max_len);
			} else if (strcmp(kw, "minimum") == 0 || strcmp(kw, "maximum") == 0) {
				int is_min = kw[1] == 'i';

				if (!json_is_number(v)) {
					ptr_push_key(&c->path, kw, strlen(kw));
					cerr(c, HARK_ERR_INVALID_ARG, "must be a number");
					return NULL;
				}
				if (is_min) {
					n->has_min = 1;
					n->minimum = json_number_value(v);
				} else {
					n->has_max = 1;
					n->maximum = json_number_value(v);
				}
			} else if (strcmp(kw, "enum") == 0) {
				if (!json_is_array(v) || json_array_size(v) == 0) {
					ptr_push_key(&c->path, kw, strlen(kw));
					cerr(c, HARK_ERR_INVALID_ARG, "must be a non-empty array");
					return NULL;
				}
				if (value_too_deep(v, SCH_MAX_DEPTH, NULL)) {
					ptr_push_key(&c->path, kw, strlen(kw));
					cerr(c, HARK_ERR_LIMIT,
					     "values nested deeper than %d levels",
					     SCH_MAX_DEPTH - 1);
					return NULL;
				}
				n->enum_vals = v;
			} else if (strcmp(kw, "const") == 0) {
				if (value_too_deep(v, SCH_MAX_DEPTH, NULL)) {
					ptr_push_key(&c->path, kw, strlen(kw));
					cerr(c, HARK_ERR_LIMIT,
					     "value nested deeper than %d levels", SCH_MAX_DEPTH);
					return NULL;
				}
				n->const_val = v;
				n->has_const = 1;
			} else if (strcmp(kw, "anyOf") == 0) {
				bad = compile_any_of(c, n, v, depth);
			} else if (strcmp(kw, "$ref") == 0) {
				bad = compile_ref(c, n, v, depth);
			} else if (!is_annotation(kw)) {
				ptr_push_key(&c->path, kw, strlen(kw));
				cerr(c, HARK_ERR_INVALID_ARG, "unsupported keyword \"%.64s\"", kw);
				return NULL;
			}
			if (bad)
				return NULL;
		}
	}
	if (n->min_items >= 0 && n->max_items >= 0 && n->min_items > n->max_items) {
		ptr_push_key(&c->path, "maxItems", 8);
		cerr(c, HARK_ERR_INVALID_ARG, "must be >= minItems");
		return NULL;
	}
	if (n->min_len >= 0 && n->max_len >= 0 && n->min_len > n->max_len) {
		ptr_push_key(&c->path, "maxLength", 9);
		cerr(c, HARK_ERR_INVALID_ARG, "must be >= minLength");
		return NULL;
	}
	return n;
}

/*
 * Rejects cycles made only of $ref and anyOf edges (a schema that refers to
 * itself without descending into a property or an item would never consume
 * input). Kahn's algorithm over those edges, no recursion.
 */
static int check_ref_cycles(struct cctx *c)
{
	struct hark_llm_schema *s = c->s;
	size_t n = s->n_nodes, head = 0, tail = 0, done = 0;
	size_t *indeg = calloc(n ? n : 1, sizeof(*indeg));
	size_t *queue = calloc(n ? n : 1, sizeof(*queue));
	int rc = 0;

	if (!indeg || !queue) {
		cerr(c, HARK_ERR_NOMEM, "out of memory");
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct snode *x = s->nodes[i];

		if (x->ref)
			indeg[x->ref->index]++;
		for (size_t k = 0; k < x->n_any; k++)
			indeg[x->any[k]->index]++;
	}
	for (size_t i = 0; i < n; i++)
		if (!indeg[i])
			queue[tail++] = i;
	while (head < tail) {
		struct snode *x = s->nodes[queue[head++]];

		done++;
		if (x->ref && --indeg[x->ref->index] == 0)
			queue[tail++] = x->ref->index;
		for (size_t k = 0; k < x->n_any; k++)
			if (--indeg[x->any[k]->index] == 0)
				queue[tail++] = x->any[k]->index;
	}
	if (done < n) {
		ptr_restore(&c->path, 0);
		cerr(c, HARK_ERR_INVALID_ARG,
		     "$ref cycle: a schema refers back to itself (through $ref/anyOf) without "
		     "descending into a property or an item");
		rc = -1;
	}
out:
	free(indeg);
	free(queue);
	return rc;
}

int hark_llm_schema_compile(const char *schema_json, struct hark_llm_schema **out, char *err,
			    size_t errlen)
{
	struct hark_llm_schema *s = NULL;
	struct cctx c;
	json_error_t jerr;
	int rc;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (!schema_json) {
		hark_errbuf_set(err, errlen, "no schema text");
		return HARK_ERR_INVALID_ARG;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		hark_errbuf_set(err, errlen, "out of memory");
		return HARK_ERR_NOMEM;
	}
	s->root = json_loads(schema_json, JSON_REJECT_DUPLICATES, &jerr);
	if (!s->root) {
		hark_errbuf_set(err, errlen, "schema is not valid JSON: line %d column %d: %s",
				jerr.line, jerr.column, jerr.text);
		rc = HARK_ERR_FORMAT;
		goto out;
	}
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.err = err;
	c.errlen = errlen;
	c.rc = HARK_ERR_INVALID_ARG;
	if (!json_is_object(s->root)) {
		cerr(&c, HARK_ERR_INVALID_ARG, "a schema must be a JSON object");
		rc = c.rc;
		goto out;
	}
	s->top = compile_node(&c, s->root, 1);
	if (!s->top || check_ref_cycles(&c)) {
		rc = c.rc;
		goto out;
	}
	*out = s;
	return HARK_OK;
out:
	hark_llm_schema_free(s);
	return rc;
}

/* ----------------------------------------------------------- validate --- */

struct vctx {
	struct ptrbuf ptr;
	char *err;
	size_t errlen;
	size_t fail_len; /* pointer length at the recorded failure (anyOf scoring) */
	int depth;	 /* nested schema applications */
};

static void verr(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void verr(struct vctx *v, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hark_errbuf_set(v->err, v->errlen, "%s%s: %s", ptr_text(&v->ptr), ptr_more(&v->ptr), msg);
	v->fail_len = v->ptr.len;
}

static const char *type_of(const json_t *x)
{
	switch (json_typeof(x)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	default:
		return "null";
	}
}

static int type_matches(unsigned types, const json_t *x)
{
	switch (json_typeof(x)) {
	case JSON_OBJECT:
		return types & T_OBJECT;
	case JSON_ARRAY:
		return types & T_ARRAY;
	case JSON_STRING:
		return types & T_STRING;
	case JSON_INTEGER:
		return types & (T_INTEGER | T_NUMBER);
	case JSON_REAL: {
		double d = json_real_value(x);

		return (types & T_NUMBER) || ((types & T_INTEGER) && d == floor(d));
	}
	case JSON_TRUE:
	case JSON_FALSE:
		return types & T_BOOLEAN;
	default:
		return types & T_NULL;
	}
}

static void types_text(unsigned types, char *buf, size_t len)
{
	size_t cnt = 0, seen = 0, nt = sizeof(type_names) / sizeof(type_names[0]);

	buf[0] = '\0';
	for (size_t k = 0; k < nt; k++)
		cnt += (types & type_names[k].bit) != 0;
	for (size_t k = 0; k < nt; k++) {
		size_t used = strlen(buf);

		if (!(types & type_names[k].bit))
			continue;
		snprintf(buf + used, len - used, "%s%s",
			 seen == 0	   ? ""
			 : seen + 1 == cnt ? " or "
					   : ", ",
			 type_names[k].name);
		seen++;
	}
}

/* Unicode code points of a UTF-8 string. */
static size_t utf8_length(const char *s, size_t n)
{
	size_t cp = 0;

	for (size_t i = 0; i < n; i++)
		cp += ((unsigned char)s[i] & 0xC0) != 0x80;
	return cp;
}

static int validate_node(struct vctx *v, const struct snode *n, const json_t *x);

/* Validates x (a child of the current value, pointer segment pushed by the
 * caller) and restores the pointer afterwards unless it failed. */
static int validate_child(struct vctx *v, const struct snode *n, const json_t *x, size_t saved)
{
	int rc = validate_node(v, n, x);

	if (rc == 0)
		ptr_restore(&v->ptr, saved);
	return rc;
}

static int validate_object(struct vctx *v, const struct snode *n, const json_t *x)
{
	size_t saved = ptr_mark(&v->ptr);
	const char *k;
	size_t kl;
	json_t *val;

	for (size_t i = 0; i < n->n_required; i++) {
		if (!json_object_get(x, n->required[i])) {
			verr(v, "missing required property \"%.100s\"", n->required[i]);
			return -1;
		}
	}
	for (size_t i = 0; i < n->n_props; i++) {
		json_t *pv = json_object_get(x, n->prop_names[i]);

		if (!pv)
			continue;
		ptr_push_key(&v->ptr, n->prop_names[i], strlen(n->prop_names[i]));
		if (validate_child(v, n->prop_nodes[i], pv, saved))
			return -1;
	}
	if (n->addl_mode == 0)
		return 0;
	json_object_keylen_foreach((json_t *)x, k, kl, val) {
		int declared = 0;

		if (kl == strlen(k))
			for (size_t i = 0; i < n->n_props && !declared; i++)
				declared = strcmp(k, n->prop_names[i]) == 0;
		if (declared)
			continue;
		ptr_push_key(&v->ptr, k, kl);
		if (n->addl_mode == 1) {
			verr(v, "property not allowed (additionalProperties is false)");
			return -1;
		}
		if (validate_child(v, n->addl, val, saved))
			return -1;
	}
	return 0;
}

static int validate_any_of(struct vctx *v, const struct snode *n, const json_t *x)
{
	char *outer_err = v->err;
	size_t outer_len = v->errlen, saved = ptr_mark(&v->ptr), best_len = 0, best_i = 0;
	char *best = malloc(256), *tmp = malloc(256);
	int rc = -1;

	if (!best || !tmp) {
		verr(v, "out of memory");
		goto out;
	}
	best[0] = '\0';
	for (size_t i = 0; i < n->n_any; i++) {
		int r;

		tmp[0] = '\0';
		v->err = tmp;
		v->errlen = 256;
		v->fail_len = 0;
		r = validate_node(v, n->any[i], x);
		v->err = outer_err;
		v->errlen = outer_len;
		ptr_restore(&v->ptr, saved);
		if (r == 0) {
			rc = 0;
			goto out;
		}
		if (i == 0 || v->fail_len > best_len) {
			best_len = v->fail_len;
			best_i = i;
			memcpy(best, tmp, 256);
		}
	}
	verr(v, "matches no anyOf alternative (closest, #%zu: %s)", best_i, best);
	v->fail_len = best_len; /* how far the best alternative got, for enclosing anyOfs */
out:
	free(best);
	free(tmp);
	return rc;
}

static int validate_node(struct vctx *v, const struct snode *n, const json_t *x)
{
	int rc = -1;

	if (++v->depth > SCH_MAX_APPLY_DEPTH) {
		verr(v, "schema recursion deeper than %d levels", SCH_MAX_APPLY_DEPTH);
		goto out;
	}
	if (n->is_false) {
		verr(v, "no value is allowed here");
		goto out;
	}
	if (n->types && !type_matches(n->types, x)) {
		char want[96];

		types_text(n->types, want, sizeof(want));
		verr(v, "expected %s, got %s", want, type_of(x));
		goto out;
	}
	if (n->has_const && !values_equal(x, n->const_val)) {
		verr(v, "value does not equal the schema's const");
		goto out;
	}
	if (n->enum_vals) {
		int found = 0;

		for (size_t i = 0; i < json_array_size(n->enum_vals) && !found; i++)
			found = values_equal(x, json_array_get(n->enum_vals, i));
		if (!found) {
			if (json_is_string(x))
				verr(v, "\"%.60s\" is not one of the enum values",
				     json_string_value(x));
			else
				verr(v, "value is not one of the enum values");
			goto out;
		}
	}
	if (json_is_string(x) && (n->min_len >= 0 || n->max_len >= 0)) {
		size_t cp = utf8_length(json_string_value(x), json_string_length(x));

		if (n->min_len >= 0 && cp < (size_t)n->min_len) {
			verr(v, "string shorter than %lld characters (has %zu)", n->min_len, cp);
			goto out;
		}
		if (n->max_len >= 0 && cp > (size_t)n->max_len) {
			verr(v, "string longer than %lld characters (has %zu)", n->max_len, cp);
			goto out;
		}
	}
	if (json_is_number(x)) {
		double d = json_number_value(x);

		if (n->has_min && d < n->minimum) {
			char a[40], b[40];

			format_real(d, a, sizeof(a));
			format_real(n->minimum, b, sizeof(b));
			verr(v, "%s is less than the minimum %s", a, b);
			goto out;
		}
		if (n->has_max && d > n->maximum) {
			char a[40], b[40];

			format_real(d, a, sizeof(a));
			format_real(n->maximum, b, sizeof(b));
			verr(v, "%s is greater than the maximum %s", a, b);
			goto out;
		}
	}
	if (json_is_array(x)) {
		size_t cnt = json_array_size(x), saved = ptr_mark(&v->ptr);

		if (n->min_items >= 0 && cnt < (size_t)n->min_items) {
			verr(v, "expected at least %lld items, got %zu", n->min_items, cnt);
			goto out;
		}
		if (n->max_items >= 0 && cnt > (size_t)n->max_items) {
			verr(v, "expected at most %lld items, got %zu", n->max_items, cnt);
			goto out;
		}
		if (n->items) {
			for (size_t i = 0; i < cnt; i++) {
				ptr_push_index(&v->ptr, i);
				if (validate_child(v, n->items, json_array_get(x, i), saved))
					goto out;
			}
		}
	}
	if (json_is_object(x) && validate_object(v, n, x))
		goto out;
	if (n->n_any && validate_any_of(v, n, x))
		goto out;
	if (n->ref && validate_node(v, n->ref, x))
		goto out;
	rc = 0;
out:
	v->depth--;
	return rc;
}

int hark_llm_schema_validate(const struct hark_llm_schema *s, const json_t *v, char *err,
			     size_t errlen)
{
	struct vctx *ctx;
	int rc;

	if (!s || !v) {
		hark_errbuf_set(err, errlen, "no schema or no value");
		return HARK_ERR_INVALID_ARG;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		hark_errbuf_set(err, errlen, "out of memory");
		return HARK_ERR_NOMEM;
	}
	ctx->err = err;
	ctx->errlen = errlen;
	if (value_too_deep(v, SCH_MAX_DEPTH, &ctx->ptr)) {
		verr(ctx, "nesting deeper than %d levels", SCH_MAX_DEPTH);
		rc = HARK_ERR_FORMAT;
	} else {
		ptr_restore(&ctx->ptr, 0);
		rc = validate_node(ctx, s->top, v) ? HARK_ERR_FORMAT : HARK_OK;
	}
	free(ctx);
	return rc;
}

/* ------------------------------------------------------------ extract --- */

static int is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Parses exactly text[a, b) (surrounding whitespace allowed); an object or
 * array only. Returns NULL otherwise; jerr filled when it did not parse. */
static json_t *parse_span(const char *text, size_t a, size_t b, json_error_t *jerr)
{
	json_t *v;

	while (a < b && is_ws((unsigned char)text[a]))
		a++;
	while (b > a && is_ws((unsigned char)text[b - 1]))
		b--;
	if (a == b)
		return NULL;
	v = json_loadb(text + a, b - a, 0, jerr);
	if (v && !json_is_object(v) && !json_is_array(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* Finds "```" at or after from; returns its offset or len. */
static size_t find_fence(const char *t, size_t len, size_t from)
{
	for (size_t i = from; i + 3 <= len; i++)
		if (t[i] == '`' && t[i + 1] == '`' && t[i + 2] == '`')
			return i;
	return len;
}

int hark_llm_json_extract(const char *text, size_t len, json_t **out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *v;
	size_t pos;
	int truncated = 0, unterminated = 0, had_candidate = 0;
	char first_fail[200];

	if (!out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (!text && len) {
		hark_errbuf_set(err, errlen, "no reply text");
		return HARK_ERR_INVALID_ARG;
	}
	first_fail[0] = '\0';
	/* 1: the whole reply */
	v = parse_span(text, 0, len, &jerr);
	if (v)
		goto found;
	/* 2: the first ``` fence whose body parses */
	pos = find_fence(text, len, 0);
	while (pos < len) {
		size_t body = pos + 3, end;

		while (body < len && text[body] != '\n')
			body++; /* info string (e.g. "json") */
		if (body >= len)
			break;
		body++;
		end = find_fence(text, len, body);
		v = parse_span(text, body, end, &jerr);
		if (v)
			goto found;
		if (end >= len)
			break;
		pos = find_fence(text, len, end + 3);
	}
	/* 3: the first balanced {...} / [...] span that parses, one pass; a
	 * span that fails is skipped whole (an inner fragment of a broken value
	 * is not an answer), a span still open at the end means truncation */
	pos = 0;
	while (pos < len) {
		size_t start, i;
		long depth = 0;
		int in_str = 0, esc = 0;

		while (pos < len && text[pos] != '{' && text[pos] != '[')
			pos++;
		if (pos >= len)
			break;
		start = pos;
		for (i = start; i < len; i++) {
			char ch = text[i];

			if (in_str) {
				if (esc)
					esc = 0;
				else if (ch == '\\')
					esc = 1;
				else if (ch == '"')
					in_str = 0;
				continue;
			}
			if (ch == '"') {
				in_str = 1;
			} else if (ch == '{' || ch == '[') {
				depth++;
			} else if (ch == '}' || ch == ']') {
				if (--depth == 0)
					break;
			}
		}
		if (i >= len) {
			truncated = 1;
			unterminated = in_str;
			break;
		}
		had_candidate = 1;
		v = parse_span(text, start, i + 1, &jerr);
		if (v)
			goto found;
		if (!first_fail[0])
			snprintf(first_fail, sizeof(first_fail), "offset %zu: %s", start,
				 jerr.text);
		pos = i + 1;
	}
	if (truncated)
		hark_errbuf_set(err, errlen, "truncated: %s at end of reply",
				unterminated ? "unterminated string and unbalanced braces"
					     : "unbalanced braces");
	else if (had_candidate)
		hark_errbuf_set(err, errlen,
				"no JSON value in reply parses (first candidate at %s)",
				first_fail);
	else
		hark_errbuf_set(err, errlen, "no JSON object or array in reply");
	return HARK_ERR_FORMAT;
found:
	*out = v;
	return HARK_OK;
}

/* ---------------------------------------------------------- canonical --- */

struct sbuf {
	char *p;
	size_t len, cap;
	int failed;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 256;
		char *np;

		while (nc < b->len + n + 1)
			nc *= 2;
		if (nc > CANON_MAX_BYTES) {
			b->failed = 1;
			return;
		}
		np = realloc(b->p, nc);
		if (!np) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_string(struct sbuf *b, const char *s, size_t n)
{
	size_t run = 0;

	sb_put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sb_put(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"':
			sb_put(b, "\\\"", 2);
			break;
		case '\\':
			sb_put(b, "\\\\", 2);
			break;
		case '\b':
			sb_put(b, "\\b", 2);
			break;
		case '\f':
			sb_put(b, "\\f", 2);
			break;
		case '\n':
			sb_put(b, "\\n", 2);
			break;
		case '\r':
			sb_put(b, "\\r", 2);
			break;
		case '\t':
			sb_put(b, "\\t", 2);
			break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			sb_put(b, esc, 6);
		}
	}
	sb_put(b, s + run, n - run);
	sb_put(b, "\"", 1);
}

/* Numbers: integers in decimal, reals as format_real does. */
static void sb_number(struct sbuf *b, const json_t *v)
{
	char num[48];

	if (json_is_integer(v))
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else
		format_real(json_real_value(v), num, sizeof(num));
	sb_put(b, num, strlen(num));
}

struct ckey {
	const char *k;
	size_t kl;
	const json_t *v;
};

static int ckey_cmp(const void *a, const void *b)
{
	const struct ckey *x = a, *y = b;
	size_t n = x->kl < y->kl ? x->kl : y->kl;
	int r = memcmp(x->k, y->k, n);

	if (r)
		return r;
	return x->kl < y->kl ? -1 : x->kl > y->kl;
}

struct cframe {
	const json_t *c;
	size_t i, n;
	struct ckey *keys; /* objects: members sorted by key */
};

char *hark_llm_json_canonical(const json_t *root)
{
	struct sbuf b = {0};
	struct cframe *st = NULL;
	size_t sp = 0, cap = 0;
	const json_t *next = root;

	if (!root)
		return NULL;
	for (;;) {
		if (next) {
			const json_t *v = next;

			next = NULL;
			switch (json_typeof(v)) {
			case JSON_OBJECT:
			case JSON_ARRAY: {
				struct cframe *f;

				if (sp >= CANON_MAX_DEPTH) {
					b.failed = 1;
					break;
				}
				if (sp == cap) {
					size_t nc = cap ? cap * 2 : 16;
					struct cframe *ns = realloc(st, nc * sizeof(*ns));

					if (!ns) {
						b.failed = 1;
						break;
					}
					st = ns;
					cap = nc;
				}
				f = &st[sp];
				f->c = v;
				f->i = 0;
				f->keys = NULL;
				if (json_is_array(v)) {
					f->n = json_array_size(v);
					sb_put(&b, "[", 1);
				} else {
					const char *k;
					size_t kl, j = 0;
					json_t *mv;

					f->n = json_object_size(v);
					f->keys = malloc((f->n ? f->n : 1) * sizeof(*f->keys));
					if (!f->keys) {
						b.failed = 1;
						break;
					}
					json_object_keylen_foreach((json_t *)v, k, kl, mv) {
						if (j < f->n) {
							f->keys[j].k = k;
							f->keys[j].kl = kl;
							f->keys[j].v = mv;
							j++;
						}
					}
					f->n = j;
					qsort(f->keys, f->n, sizeof(*f->keys), ckey_cmp);
					sb_put(&b, "{", 1);
				}
				sp++;
				break;
			}
			case JSON_STRING:
				sb_string(&b, json_string_value(v), json_string_length(v));
				break;
			case JSON_INTEGER:
			case JSON_REAL:
				sb_number(&b, v);
				break;
			case JSON_TRUE:
				sb_put(&b, "true", 4);
				break;
			case JSON_FALSE:
				sb_put(&b, "false", 5);
				break;
			default:
				sb_put(&b, "null", 4);
			}
		}
		if (b.failed || sp == 0)
			break;
		{
			struct cframe *f = &st[sp - 1];

			if (f->i < f->n) {
				if (f->i > 0)
					sb_put(&b, ",", 1);
				if (f->keys) {
					sb_string(&b, f->keys[f->i].k, f->keys[f->i].kl);
					sb_put(&b, ":", 1);
					next = f->keys[f->i].v;
				} else {
					next = json_array_get(f->c, f->i);
				}
				f->i++;
			} else {
				sb_put(&b, json_is_object(f->c) ? "}" : "]", 1);
				free(f->keys);
				sp--;
			}
		}
	}
	while (sp > 0)
		free(st[--sp].keys);
	free(st);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
