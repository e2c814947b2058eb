package bundles

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
)

// DigestPrefix starts every digest.
const DigestPrefix = "sha256:"

// Digest returns the content digest of a set of files: "sha256:" followed by the
// lowercase hex SHA-256 of their canonical encoding, which is, for each file in order of
// Path (byte-wise), the concatenation of
//
//	uint64 big-endian len(Path) | Path | uint64 big-endian len(Content) | Content
//
// Paths are slash-separated and relative (a skill's files relative to its install
// directory; a bundle version's files relative to bundles/<name>/<version>/, so
// "bundle.yaml" and "skills/<skill>/SKILL.md"). The length prefixes make the encoding
// unambiguous: no two different file sets encode alike. Modes are not part of the
// digest; they follow from the path (scripts/ is 0755, the rest 0644). The order of
// files does not matter: Digest sorts a copy.
//
// A worker-side program recomputes the digest of an installed skill directory the same
// way to tell whether it still holds exactly what the catalogue installed.
func Digest(files []File) string {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	h := sha256.New()
	var n [8]byte
	for _, f := range sorted {
		binary.BigEndian.PutUint64(n[:], uint64(len(f.Path)))
		h.Write(n[:])
		h.Write([]byte(f.Path))
		binary.BigEndian.PutUint64(n[:], uint64(len(f.Content)))
		h.Write(n[:])
		h.Write(f.Content)
	}
	return DigestPrefix + hex.EncodeToString(h.Sum(nil))
}

// validDigest reports whether s is "sha256:" followed by 64 lowercase hex digits.
func validDigest(s string) bool {
	hexPart, ok := strings.CutPrefix(s, DigestPrefix)
	if !ok || len(hexPart) != 64 {
		return false
	}
	return strings.Trim(hexPart, "0123456789abcdef") == ""
}
