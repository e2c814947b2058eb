#!/bin/sh
# kb_check.sh - check that the Astral knowledge base can be written, and is on the
# tenant's mounted volume rather than in the container's throw-away layer.
#
# usage: kb_check.sh
# Prints one line per check (ok / WARN / FAIL). Exit codes: 0 usable (read any WARN
# lines), 3 unavailable: nothing can be saved.
set -u

status=0
ok() { printf 'ok   %s\n' "$*"; }
warn() { printf 'WARN %s\n' "$*"; }
fail() {
	printf 'FAIL %s\n' "$*"
	status=3
}

if [ -z "${ASTRAL_KB_ROOT:-}" ]; then
	fail "ASTRAL_KB_ROOT is not set in the process environment; the container must be recreated with -e ASTRAL_KB_ROOT=<mounted knowledge directory>"
	exit 3
fi
root=${ASTRAL_KB_ROOT%/}
ok "ASTRAL_KB_ROOT=$root"
case $root in
*/astral-kb-prototype | */astral-kb-prototype/*) fail "$root is Hermes' prototype fallback path, not the tenant's volume" ;;
esac
if [ ! -d "$root" ]; then
	fail "$root is not a directory (is the knowledge volume mounted?)"
	exit 3
fi

probe=$root/.kb_check.$$
if (printf 'probe\n' >"$probe") 2>/dev/null && rm -f "$probe"; then
	ok "writable"
else
	fail "$root is not writable by $(id -un 2>/dev/null || id -u)"
fi

for d in raw entities/people readings; do
	if [ -d "$root/$d" ]; then
		ok "$d/ present"
	else
		warn "$d/ missing (kb_write.sh creates it on first write; an old tenant may lack the whole scaffold)"
	fi
done

if [ -r /proc/self/mountinfo ]; then
	mnt=$(awk -v r="$root" '{ mp = $5; if (mp != "/" && (r == mp || index(r, mp "/") == 1) && length(mp) > length(best)) best = mp } END { print best }' /proc/self/mountinfo)
	if [ -n "$mnt" ]; then
		ok "on the volume mounted at $mnt"
	else
		warn "$root is not on a mounted volume: in a container, notes written here are lost when it is recreated"
	fi
fi

people=$(find "$root/entities/people" -name '*.md' 2>/dev/null | wc -l | tr -d ' ')
ok "$people person notes"
exit "$status"
