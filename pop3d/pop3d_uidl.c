/* SPDX-License-Identifier: MIT */
/*
 * What pop3d reads from a maildir file name, and the UIDL it makes of
 * it. Names follow Dovecot's maildir conventions (and cr.yp.to's):
 * "SEC.UNIQUE.HOST[,S=<size>][,W=<wire size>][:2,FLAGS]" with an
 * "M<usec>" part in UNIQUE; Dovecot orders new messages by that time,
 * and keeps the base (before ':') when flags change, so the base is what
 * names a message across sessions. pop3_uidl_format is Dovecot's
 * var_expand syntax restricted to the variables of its pop3 (RFC 1939 7
 * UIDL, RFC 2449).
 */
#include <stdio.h>
#include <string.h>

#include "base/str.h"
#include "pop3d.h"

/* Digits of a time or a microsecond count worth reading. */
#define NAME_DIGITS_MAX    18
/* Longest %{name} of a variable. */
#define UIDL_LONG_KEY_MAX  32
/* Dovecot applies at most this many modifiers to one variable. */
#define UIDL_MODIFIERS_MAX 10
/* A number printed by X: 20 digits and a NUL are enough. */
#define UIDL_NUM_SIZE      24

#define MAILDIR_INFO_SEP ':'

int
pop3d_name_time(const char *name, long long *sec_r, long *usec_r)
{
	const char *p = name;
	long long sec = 0;
	long usec = 0;
	int n = 0;

	*usec_r = -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (++n > NAME_DIGITS_MAX)
			return -1;
		sec = sec * 10 + (*p - '0');
	}
	if (n == 0 || *p != '.')
		return -1;
	*sec_r = sec;
	/* The unique part runs to the next '.'; Dovecot looks for "M"
	 * followed by digits anywhere in it. */
	for (p++; *p != '\0' && *p != '.' && *p != MAILDIR_INFO_SEP; p++) {
		if (*p != 'M')
			continue;
		for (p++, n = 0; *p >= '0' && *p <= '9'; p++) {
			if (++n > NAME_DIGITS_MAX)
				return 0;
			usec = usec * 10 + (*p - '0');
		}
		*usec_r = usec;
		break;
	}
	return 0;
}

int
pop3d_name_field(const char *name, char key, uint64_t *value_r)
{
	const char *p, *end = strchr(name, MAILDIR_INFO_SEP);
	size_t n;

	if (end == NULL)
		end = name + strlen(name);
	for (p = name; p + 3 <= end; p++) {
		if (p[0] != ',' || p[1] != key || p[2] != '=')
			continue;
		p += 3;
		for (n = 0; p + n < end && p[n] >= '0' && p[n] <= '9'; n++)
			;
		if (n == 0 || (p + n < end && p[n] != ','))
			return -1;
		return str_to_u64_n(p, n, UINT64_MAX, value_r);
	}
	return -1;
}

/* Dovecot's maildir_filename_base_cmp: bytes up to ':' or the end. */
static int
base_cmp(const char *a, const char *b)
{
	while (*a == *b && *a != MAILDIR_INFO_SEP && *a != '\0') {
		a++;
		b++;
	}
	if ((*a == '\0' || *a == MAILDIR_INFO_SEP) &&
	    (*b == '\0' || *b == MAILDIR_INFO_SEP))
		return 0;
	return (unsigned char)*a - (unsigned char)*b;
}

int
pop3d_name_cmp(const char *a, const char *b)
{
	long long sa = 0, sb = 0;
	long ua, ub;
	int ta, tb;

	ta = pop3d_name_time(a, &sa, &ua);
	tb = pop3d_name_time(b, &sb, &ub);
	/* A name without a time sorts as time 0, as in Dovecot. */
	if (ta < 0) {
		sa = 0;
		ua = -1;
	}
	if (tb < 0) {
		sb = 0;
		ub = -1;
	}
	if (sa != sb)
		return sa < sb ? -1 : 1;
	if (ua >= 0 && ub >= 0 && ua != ub)
		return ua < ub ? -1 : 1;
	return base_cmp(a, b);
}

char *
pop3d_name_add_flag(const char *name, char flag)
{
	const char *info = strchr(name, MAILDIR_INFO_SEP), *flags;
	size_t base_len, i, n;
	char *out;

	if (info == NULL || strncmp(info, ":2,", 3) != 0) {
		/* No flags yet, or another info version: a fresh ":2,". */
		base_len = info != NULL ? (size_t)(info - name) : strlen(name);
		out = xmalloc(base_len + 5);
		memcpy(out, name, base_len);
		memcpy(out + base_len, ":2,", 3);
		out[base_len + 3] = flag;
		out[base_len + 4] = '\0';
		return out;
	}
	flags = info + 3;
	if (strchr(flags, flag) != NULL)
		return NULL;
	n = strlen(name);
	out = xmalloc(n + 2);
	i = (size_t)(flags - name);
	memcpy(out, name, i);
	while (
	    name[i] != '\0' && (unsigned char)name[i] < (unsigned char)flag) {
		out[i] = name[i];
		i++;
	}
	out[i] = flag;
	memcpy(out + i + 1, name + i, n - i + 1);
	return out;
}

struct uidl_vars {
	const char *base;
	size_t base_len;
	uint32_t uid, uidvalidity;
};

/* The value of one variable into val (NUL-kept); -1 when tern lacks it. */
static int
uidl_var(const char *key, size_t len, const struct uidl_vars *v,
    struct buf *val, int *needs_uid_r, const char **error_r)
{
	static char err[96];
	enum {
		VAR_BASE,
		VAR_UID,
		VAR_UIDVALIDITY,
		VAR_PERCENT
	} which;

#define KEY_IS(s) (len == strlen(s) && memcmp(key, s, len) == 0)
	if (KEY_IS("f") || KEY_IS("filename") || KEY_IS("g") ||
	    KEY_IS("guid")) {
		which = VAR_BASE;
	} else if (KEY_IS("u") || KEY_IS("uid")) {
		which = VAR_UID;
	} else if (KEY_IS("v") || KEY_IS("uidvalidity")) {
		which = VAR_UIDVALIDITY;
	} else if (KEY_IS("%")) {
		which = VAR_PERCENT;
	} else if (KEY_IS("m") || KEY_IS("md5")) {
		/* Dovecot's pop3 too dies on it for a maildir. */
		*error_r = "%m (the MD5 of the header) exists for mbox "
		           "only, not for a maildir";
		return -1;
	} else {
		snprintf(err, sizeof(err), "unknown variable '%%%s%.*s%s'",
		    len > 1 ? "{" : "",
		    (int)(len > UIDL_LONG_KEY_MAX ? UIDL_LONG_KEY_MAX : len),
		    key, len > 1 ? "}" : "");
		*error_r = err;
		return -1;
	}
#undef KEY_IS
	if (which == VAR_UID || which == VAR_UIDVALIDITY)
		*needs_uid_r = 1;
	if (v == NULL)
		return 0;
	buf_reset(val);
	switch (which) {
	case VAR_BASE:
		return buf_append(val, v->base, v->base_len);
	case VAR_UID:
		return buf_printf(val, "%u", (unsigned)v->uid);
	case VAR_UIDVALIDITY:
		return buf_printf(val, "%u", (unsigned)v->uidvalidity);
	case VAR_PERCENT:
		return buf_putc(val, '%');
	}
	return -1;
}

/* Applies one modifier to val in place. */
static int
uidl_modify(char m, struct buf *val)
{
	char num[UIDL_NUM_SIZE], c;
	uint64_t u;
	size_t i, n;

	switch (m) {
	case 'L':
	case 'U':
		for (i = 0; i < val->len; i++) {
			c = val->data[i];
			if (m == 'L' && c >= 'A' && c <= 'Z')
				val->data[i] = (char)(c - 'A' + 'a');
			else if (m == 'U' && c >= 'a' && c <= 'z')
				val->data[i] = (char)(c - 'a' + 'A');
		}
		return 0;
	case 'X':
		/* Dovecot: a value that is not a number becomes 0. */
		if (str_to_u64(buf_cstr(val), UINT64_MAX, &u) < 0)
			u = 0;
		snprintf(num, sizeof(num), "%llx", (unsigned long long)u);
		buf_reset(val);
		return buf_puts(val, num);
	case 'R':
		for (i = 0, n = val->len; i < n / 2; i++) {
			c = val->data[i];
			val->data[i] = val->data[n - 1 - i];
			val->data[n - 1 - i] = c;
		}
		return 0;
	}
	return -1;
}

static int
uidl_run(const char *format, const struct uidl_vars *v, struct buf *out,
    int *needs_uid_r, const char **error_r)
{
	static char err[64];
	const char *p = format, *key, *end, *s;
	char mods[UIDL_MODIFIERS_MAX];
	struct buf val;
	long width, offset, sign;
	int zero, nmods, i, ret = -1;
	size_t len, keylen;

	buf_init(&val, POP3D_UIDL_MAX);
	*needs_uid_r = 0;
	*error_r = "UIDL too long";
	for (; *p != '\0'; p++) {
		if (*p != '%') {
			if (v != NULL && buf_putc(out, *p) < 0)
				goto done;
			continue;
		}
		p++;
		/* [-][0]<width>[.[0][-]<width>] as Dovecot: a number before
		 * '.' is an offset, the one after it the width. */
		width = offset = 0;
		sign = 1;
		zero = 0;
		if (*p == '-') {
			sign = -1;
			p++;
		}
		if (*p == '0') {
			zero = 1;
			p++;
		}
		for (; *p >= '0' && *p <= '9' && width < POP3D_UIDL_MAX * 10;
		     p++)
			width = width * 10 + (*p - '0');
		if (*p == '.') {
			offset = sign * width;
			sign = 1;
			width = 0;
			zero = 0;
			p++;
			if (*p == '0') {
				zero = 1;
				p++;
			}
			if (*p == '-') {
				sign = -1;
				p++;
			}
			for (; *p >= '0' && *p <= '9' &&
			       width < POP3D_UIDL_MAX * 10;
			     p++)
				width = width * 10 + (*p - '0');
		}
		width *= sign;
		for (nmods = 0; *p != '\0' && strchr("LUXREHNMDT", *p) != NULL;
		     p++) {
			if (strchr("LUXR", *p) == NULL) {
				snprintf(err, sizeof(err),
				    "modifier '%c' is not supported", *p);
				*error_r = err;
				goto done;
			}
			if (nmods == UIDL_MODIFIERS_MAX) {
				*error_r = "too many modifiers";
				goto done;
			}
			mods[nmods++] = *p;
		}
		if (*p == '\0') {
			*error_r = "'%' at the end of the format";
			goto done;
		}
		if (*p == '{') {
			key = p + 1;
			end = strchr(key, '}');
			if (end == NULL) {
				*error_r = "'%{' without '}'";
				goto done;
			}
			keylen = (size_t)(end - key);
			p = end;
		} else {
			key = p;
			keylen = 1;
		}
		if (uidl_var(key, keylen, v, &val, needs_uid_r, error_r) < 0)
			goto done;
		if (v == NULL)
			continue;
		*error_r = "UIDL too long";
		for (i = 0; i < nmods; i++) {
			if (uidl_modify(mods[i], &val) < 0)
				goto done;
		}
		s = buf_cstr(&val);
		len = val.len;
		if (offset < 0) {
			if (len > (size_t)-offset) {
				s += len - (size_t)-offset;
				len = (size_t)-offset;
			}
		} else if ((size_t)offset >= len) {
			s += len;
			len = 0;
		} else {
			s += offset;
			len -= (size_t)offset;
		}
		if (width != 0 && !zero) {
			/* Dovecot cuts to the width; a negative one drops
			 * that many characters from the end. */
			if (width > 0 && (size_t)width < len)
				len = (size_t)width;
			else if (width < 0)
				len = (size_t)-width < len
				          ? len - (size_t)-width
				          : 0;
		} else if (width > 0 && zero) {
			while ((long)len < width--) {
				if (buf_putc(out, '0') < 0)
					goto done;
			}
		}
		if (buf_append(out, s, len) < 0)
			goto done;
	}
	ret = 0;
done:
	buf_free(&val);
	return ret;
}

int
pop3d_uidl_check(const char *format, int *needs_uid_r, const char **error_r)
{
	if (*format == '\0') {
		*error_r = "empty format";
		return -1;
	}
	return uidl_run(format, NULL, NULL, needs_uid_r, error_r);
}

int
pop3d_uidl_expand(const char *format, const char *base, size_t base_len,
    uint32_t uid, uint32_t uidvalidity, struct buf *out)
{
	struct uidl_vars v = {base, base_len, uid, uidvalidity};
	const char *err;
	int needs;

	return uidl_run(format, &v, out, &needs, &err);
}
