#!/bin/sh
# save_note.sh - save one note into the tenant knowledge base, $HERMES_HOME/knowledge.
#
# usage: save_note.sh [--replace] RELATIVE_PATH < CONTENT
#   RELATIVE_PATH   sources/<name>.md, topics/<name>.md or raw/<name>.md
#   --replace       replace an existing note (after reading and merging it)
#
# The knowledge base must already exist (the reconciler creates its scaffold). The
# script never creates it and never falls back to another directory: a note saved
# outside the mounted volume is lost when the container is recreated.
#
# Exit codes: 0 saved (prints the path), 2 usage, 3 no knowledge base, 4 write failed,
# 5 note exists.
set -eu

die() {
	code=$1
	shift
	printf 'save_note: %s\n' "$*" >&2
	exit "$code"
}

replace=no
if [ "${1:-}" = --replace ]; then
	replace=yes
	shift
fi
[ "$#" -eq 1 ] || die 2 "usage: save_note.sh [--replace] RELATIVE_PATH < CONTENT"
rel=$1

[ -n "${HERMES_HOME:-}" ] || die 3 "HERMES_HOME is not set in this environment: NOTHING WAS SAVED. Ask the operator where the knowledge base is mounted; do not guess a path."
root=${HERMES_HOME%/}/knowledge
[ -d "$root" ] || die 3 "no knowledge base at $root: NOTHING WAS SAVED. The operator must create the knowledge scaffold for this tenant."

case $rel in
/* | *..* | *//* | */ | "") die 2 "path must be relative to the knowledge base, without '..': '$rel'" ;;
esac
case $rel in
sources/*.md) name=${rel#sources/} ;;
topics/*.md) name=${rel#topics/} ;;
raw/*.md) name=${rel#raw/} ;;
*) die 2 "path must be sources/<name>.md, topics/<name>.md or raw/<name>.md: '$rel'" ;;
esac
case $name in
*/* | .*) die 2 "no subdirectories or hidden files: '$rel'" ;;
*[!a-z0-9._-]*) die 2 "file name may only contain a-z, 0-9, '.', '_' and '-': '$name'" ;;
esac

dest=$root/$rel
if [ -e "$dest" ] && [ "$replace" = no ]; then
	die 5 "$rel already exists: read it, merge, then save with --replace"
fi
mkdir -p "${dest%/*}" || die 4 "cannot create ${dest%/*}"
tmp=${dest%/*}/.$name.tmp.$$
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" || die 4 "cannot write $tmp"
[ -s "$tmp" ] || die 2 "refusing to save an empty note (content comes from standard input)"
mv -f "$tmp" "$dest" || die 4 "cannot move the note into place at $dest"
trap - EXIT
printf 'saved %s (%s bytes)\n' "$dest" "$(wc -c <"$dest" | tr -d ' ')"
