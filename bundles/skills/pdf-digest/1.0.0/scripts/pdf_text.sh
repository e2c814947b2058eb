#!/bin/sh
# pdf_text.sh - extract the text of a PDF page by page, for reading and citing.
#
# usage: pdf_text.sh FILE.pdf [FIRST_PAGE [LAST_PAGE]]
#
# Writes the text to standard output, each page preceded by a line "=== page N ===",
# so quotes can be cited by page. Uses pdftotext/pdfinfo (poppler-utils) when present,
# else Python's pypdf.
#
# Exit codes: 0 ok; 2 usage, unreadable file or not a PDF; 3 no extractor installed;
# 4 the pages hold no text (a scan: it needs OCR, which this script does not do).
set -eu

die() {
	code=$1
	shift
	printf 'pdf_text: %s\n' "$*" >&2
	exit "$code"
}

[ "$#" -ge 1 ] && [ "$#" -le 3 ] || die 2 "usage: pdf_text.sh FILE.pdf [FIRST_PAGE [LAST_PAGE]]"
file=$1
first=${2:-1}
last=${3:-}
[ -f "$file" ] && [ -r "$file" ] || die 2 "cannot read '$file'"
[ "$(head -c 5 "$file")" = "%PDF-" ] || die 2 "'$file' is not a PDF (it does not start with %PDF-)"
case $first$last in
*[!0-9]*) die 2 "page numbers must be positive integers" ;;
esac
[ "$first" -ge 1 ] || die 2 "FIRST_PAGE starts at 1"

out=$(mktemp)
trap 'rm -f "$out"' EXIT

if command -v pdftotext >/dev/null 2>&1 && command -v pdfinfo >/dev/null 2>&1; then
	pages=$(pdfinfo "$file" 2>/dev/null | awk '/^Pages:/ { print $2 }')
	[ -n "$pages" ] || die 2 "pdfinfo cannot read '$file' (damaged or encrypted PDF?)"
	[ -n "$last" ] && [ "$last" -lt "$pages" ] && pages=$last
	[ "$first" -le "$pages" ] || die 2 "FIRST_PAGE $first is past the last page ($pages)"
	p=$first
	while [ "$p" -le "$pages" ]; do
		printf '=== page %s ===\n' "$p" >>"$out"
		pdftotext -layout -enc UTF-8 -f "$p" -l "$p" "$file" - >>"$out" 2>/dev/null ||
			die 2 "pdftotext failed on page $p of '$file'"
		p=$((p + 1))
	done
elif command -v python3 >/dev/null 2>&1 && python3 -c 'import pypdf' 2>/dev/null; then
	python3 - "$file" "$first" "$last" >"$out" <<'PY' || die 2 "pypdf cannot read '$1'"
import sys
from pypdf import PdfReader

reader = PdfReader(sys.argv[1])
n = len(reader.pages)
first = int(sys.argv[2])
last = min(int(sys.argv[3]), n) if sys.argv[3] else n
if first > last:
    sys.exit(f"FIRST_PAGE {first} is past the last page ({n})")
for i in range(first - 1, last):
    print(f"=== page {i + 1} ===")
    print(reader.pages[i].extract_text() or "")
PY
else
	die 3 "no PDF text extractor: install poppler-utils (pdftotext) or the Python package pypdf, or ask the user to paste the text"
fi

# pdftotext ends every page with a form feed; drop them so each marker starts a line.
if ! tr -d '\f' <"$out" | grep -v '^=== page [0-9]* ===$' | grep -q '[[:alnum:]]'; then
	die 4 "no text found on the requested pages: the PDF is probably scanned images and needs OCR"
fi
tr -d '\f' <"$out"
