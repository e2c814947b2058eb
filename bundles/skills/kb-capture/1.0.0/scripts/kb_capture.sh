#!/bin/sh
# kb_capture.sh - save one capture into the knowledge base inbox, $HERMES_HOME/knowledge/raw/.
#
# usage: kb_capture.sh --title TITLE [--source SOURCE] [--tags a,b,c] < CONTENT
#
# Writes raw/<YYYY-MM-DD-HHMM>-<title-slug>.md (UTC time) with a small header, never
# overwrites (adds -2, -3, ...), and prints "saved <path>". The knowledge base must
# already exist; there is no fallback directory, because a note saved outside the
# tenant's mounted volume is lost when the container is recreated.
#
# Exit codes: 0 saved, 2 usage or empty content, 3 no knowledge base, 4 write failed.
set -eu

die() {
	code=$1
	shift
	printf 'kb_capture: %s\n' "$*" >&2
	exit "$code"
}

title= source="user note" tags=
while [ "$#" -gt 0 ]; do
	case $1 in
	--title) [ "$#" -ge 2 ] || die 2 "--title needs a value"; title=$2; shift 2 ;;
	--source) [ "$#" -ge 2 ] || die 2 "--source needs a value"; source=$2; shift 2 ;;
	--tags) [ "$#" -ge 2 ] || die 2 "--tags needs a value"; tags=$2; shift 2 ;;
	*) die 2 "unknown argument '$1'; usage: kb_capture.sh --title TITLE [--source SOURCE] [--tags a,b] < CONTENT" ;;
	esac
done
[ -n "$title" ] || die 2 "--title is required"

[ -n "${HERMES_HOME:-}" ] || die 3 "HERMES_HOME is not set in this environment: NOTHING WAS SAVED. Ask the operator where the knowledge base is mounted; do not guess a path."
root=${HERMES_HOME%/}/knowledge
[ -d "$root" ] || die 3 "no knowledge base at $root: NOTHING WAS SAVED. The operator must create the knowledge scaffold for this tenant."
mkdir -p "$root/raw" || die 4 "cannot create $root/raw"

slug=$(printf '%s' "$title" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9' '-' | tr -s '-' | sed 's/^-//; s/-$//' | cut -c1-60)
slug=${slug%-}
[ -n "$slug" ] || slug=capture
stamp=$(date -u +%Y-%m-%d-%H%M)
base=$root/raw/$stamp-$slug
dest=$base.md
n=2
while [ -e "$dest" ]; do
	dest=$base-$n.md
	n=$((n + 1))
done

body=$root/raw/.capture.body.$$
tmp=$root/raw/.capture.tmp.$$
trap 'rm -f "$body" "$tmp"' EXIT
cat >"$body" || die 4 "cannot write $body"
grep -q '[^[:space:]]' "$body" || die 2 "refusing to save an empty capture (the content comes from standard input)"
{
	printf '# %s\n\n' "$title"
	printf -- '- Source: %s\n' "$source"
	[ -z "$tags" ] || printf -- '- Tags: %s\n' "$tags"
	printf -- '- Captured: %s\n\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	cat "$body"
} >"$tmp" || die 4 "cannot write $tmp"
mv "$tmp" "$dest" || die 4 "cannot move the capture into place at $dest"
rm -f "$body"
trap - EXIT
printf 'saved %s (%s bytes)\n' "$dest" "$(wc -c <"$dest" | tr -d ' ')"
