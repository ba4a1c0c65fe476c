#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Fails when the C sources call a function the project bans (STYLE.md):
# they write past buffers (strcpy strcat sprintf vsprintf gets), keep hidden
# state (strtok) or cannot report bad input (atoi atol sscanf). Comments and
# string literals are ignored so that prose may name them; snprintf and
# vsnprintf are different words and never match.
#
# Usage: banned.sh [SOURCE_DIR]   (default: $top_srcdir, else the directory
# above this script). Prints one "file:line: banned function NAME" per hit
# and exits 1 if there is any.
set -eu

top=${1:-${top_srcdir:-$(dirname "$0")/..}}
if [ ! -d "$top/lib" ]; then
	echo "banned.sh: $top does not look like the tern source tree" >&2
	exit 2
fi

banned='strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|sscanf'

# Every .c/.h file, except build trees (in-tree or _build/) and git data;
# names relative to the top so that hits read lib/base/x.c:12.
cd "$top"
files=$(find . \( -name .git -o -name _build -o -name autom4te.cache \) \
	-prune -o -type f \( -name '*.c' -o -name '*.h' \) -print |
	sed 's|^\./||' | LC_ALL=C sort)
if [ -z "$files" ]; then
	echo "banned.sh: no C sources found under $top" >&2
	exit 2
fi

# shellcheck disable=SC2086
hits=$(LC_ALL=C awk -v banned="$banned" '
# Blanks out comments, string and character literals, keeping line
# numbers; state carries across lines for block comments.
FNR == 1 { in_comment = 0 }
{
	line = $0; out = ""; i = 1; n = length(line)
	while (i <= n) {
		c = substr(line, i, 1); c2 = substr(line, i, 2)
		if (in_comment) {
			if (c2 == "*/") { in_comment = 0; i += 2; out = out "  " }
			else { i++; out = out " " }
			continue
		}
		if (c2 == "/*") { in_comment = 1; i += 2; out = out "  "; continue }
		if (c2 == "//") break
		if (c == "\"" || c == "\047") {
			q = c; i++; out = out " "
			while (i <= n) {
				c = substr(line, i, 1)
				if (c == "\\") { i += 2; out = out "  "; continue }
				i++; out = out " "
				if (c == q) break
			}
			continue
		}
		out = out c; i++
	}
	rest = out
	while (match(rest, "(^|[^A-Za-z0-9_])(" banned ")([^A-Za-z0-9_]|$)")) {
		word = substr(rest, RSTART, RLENGTH)
		gsub(/[^A-Za-z0-9_]/, "", word)
		printf "%s:%d: banned function %s\n", FILENAME, FNR, word
		rest = substr(rest, RSTART + RLENGTH - 1)
		if (rest == "") break
	}
}' $files)

if [ -n "$hits" ]; then
	printf '%s\n' "$hits"
	echo "banned.sh: use snprintf/vsnprintf, the str_* helpers or xasprintf instead" >&2
	exit 1
fi
echo "banned.sh: no banned functions in $(printf '%s\n' "$files" | wc -l) files"
exit 0
