#!/bin/sh
# kb_write.sh - write one note into the Astral tenant knowledge base.
#
# usage: kb_write.sh RELATIVE_PATH < CONTENT
#   RELATIVE_PATH: raw/<name>.md, entities/people/<slug>.md or readings/<name>.md
#
# The knowledge base root is ASTRAL_KB_ROOT from the process environment (the
# container's environment, set with docker run -e). There is deliberately no fallback:
# a note written anywhere else ends up in the container's writable layer and is lost,
# while the agent believes it was saved.
#
# Exit codes: 0 saved (prints the absolute path), 2 usage, 3 ASTRAL_KB_ROOT unset or
# not a directory, 4 the write failed.
set -eu

die() {
	code=$1
	shift
	printf 'kb_write: %s\n' "$*" >&2
	exit "$code"
}

[ "$#" -eq 1 ] || die 2 "usage: kb_write.sh RELATIVE_PATH < CONTENT"
rel=$1

if [ -z "${ASTRAL_KB_ROOT:-}" ]; then
	die 3 "ASTRAL_KB_ROOT is not set in this process's environment: NOTHING WAS SAVED. The container must be started with -e ASTRAL_KB_ROOT=<mounted knowledge directory> (a line in .env is not enough). Do not tell the user the note was saved."
fi
root=${ASTRAL_KB_ROOT%/}
[ -d "$root" ] || die 3 "ASTRAL_KB_ROOT=$root is not a directory: NOTHING WAS SAVED (is the knowledge volume mounted?)"

case $rel in
/* | *..* | *//* | */ | "") die 2 "path must be relative to the knowledge base and must not contain '..': '$rel'" ;;
esac
case $rel in
raw/*.md) name=${rel#raw/} ;;
entities/people/*.md) name=${rel#entities/people/} ;;
readings/*.md) name=${rel#readings/} ;;
*) die 2 "path must be raw/<name>.md, entities/people/<slug>.md or readings/<name>.md: '$rel'" ;;
esac
case $name in
*/* | .*) die 2 "no subdirectories or hidden files below raw/, entities/people/ and readings/: '$rel'" ;;
*[!a-z0-9._-]*) die 2 "file name may only contain a-z, 0-9, '.', '_' and '-': '$name'" ;;
esac

dest=$root/$rel
dir=${dest%/*}
mkdir -p "$dir" || die 4 "cannot create $dir"
tmp=$dir/.$name.tmp.$$
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" || die 4 "cannot write $tmp"
[ -s "$tmp" ] || die 2 "refusing to write an empty note (the content comes from standard input)"
mv -f "$tmp" "$dest" || die 4 "cannot move the note into place at $dest"
trap - EXIT
printf 'saved %s (%s bytes)\n' "$dest" "$(wc -c <"$dest" | tr -d ' ')"
