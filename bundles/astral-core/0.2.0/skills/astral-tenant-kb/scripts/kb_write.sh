#!/bin/sh
# kb_write.sh - write one note into the Astral tenant knowledge base.
#
# usage: kb_write.sh [--replace | --append] RELATIVE_PATH < CONTENT
#   RELATIVE_PATH   raw/<name>.md, entities/people/<slug>.md or readings/<name>.md
#   (no flag)       create a new note; refuse (exit 5) if it already exists
#   --replace       replace an existing note (after reading and merging it)
#   --append        append to a note, creating it when missing
#
# The knowledge base root is ASTRAL_KB_ROOT from the process environment (the
# container's environment, set with docker run -e). There is deliberately no fallback:
# a note written anywhere else ends up in the container's writable layer and is lost,
# while the agent believes it was saved. Every write is logged to $ASTRAL_KB_ROOT/log.md.
#
# Exit codes: 0 saved (prints the absolute path), 2 usage, 3 knowledge base unavailable,
# 4 the write failed, 5 the note exists (use --replace after merging).
set -eu

die() {
	code=$1
	shift
	printf 'kb_write: %s\n' "$*" >&2
	exit "$code"
}

mode=create
case ${1:-} in
--replace) mode=replace && shift ;;
--append) mode=append && shift ;;
-*) die 2 "unknown flag '$1' (want --replace or --append)" ;;
esac
[ "$#" -eq 1 ] || die 2 "usage: kb_write.sh [--replace | --append] RELATIVE_PATH < CONTENT"
rel=$1

if [ -z "${ASTRAL_KB_ROOT:-}" ]; then
	die 3 "ASTRAL_KB_ROOT is not set in this process's environment: NOTHING WAS SAVED. The container must be recreated with -e ASTRAL_KB_ROOT=<mounted knowledge directory> (a line in .env or a restart is not enough). Do not tell the user the note was saved."
fi
root=${ASTRAL_KB_ROOT%/}
case $root in
*/astral-kb-prototype | */astral-kb-prototype/*)
	die 3 "ASTRAL_KB_ROOT=$root is Hermes' prototype fallback inside the container, not the tenant's volume: NOTHING WAS SAVED."
	;;
esac
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
if [ -e "$dest" ] && [ "$mode" = create ]; then
	die 5 "$rel already exists: read it, merge your changes, then write with --replace (or use --append)"
fi
if [ ! -e "$dest" ] && [ "$mode" = replace ]; then
	die 2 "$rel does not exist: nothing to replace (write it without --replace)"
fi
mkdir -p "$dir" || die 4 "cannot create $dir"
in=$dir/.$name.in.$$
tmp=$dir/.$name.tmp.$$
trap 'rm -f "$in" "$tmp"' EXIT
cat >"$in" || die 4 "cannot write $in"
[ -s "$in" ] || die 2 "refusing to write empty content (the content comes from standard input)"
if [ "$mode" = append ] && [ -e "$dest" ]; then
	cat "$dest" "$in" >"$tmp" || die 4 "cannot write $tmp"
else
	mv -f "$in" "$tmp" || die 4 "cannot write $tmp"
fi
mv -f "$tmp" "$dest" || die 4 "cannot move the note into place at $dest"
rm -f "$in"
trap - EXIT
bytes=$(wc -c <"$dest" | tr -d ' ')
printf -- '- %s %s %s (%s bytes)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$mode" "$rel" "$bytes" >>"$root/log.md" ||
	printf 'kb_write: warning: could not append to %s/log.md\n' "$root" >&2
printf 'saved %s (%s bytes)\n' "$dest" "$bytes"
