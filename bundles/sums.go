package bundles

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/firemountain/hermes-gitops/internal/atomicfile"
)

// bundles.sum is the immutability record of a catalogue, like go.sum: one line per
// published version, sorted by name and then semver,
//
//	astral-core@0.1.0 sha256:<64 hex digits>
//	skills/daily-brief@1.0.0 sha256:<64 hex digits>
//
// a bundle version as name@version, an à-la-carte skill version as
// skills/<skill>@<version>, each with the Digest of its files. Publishing a version means
// recording its line (RecordSums); from then on its content must never change: a fix is
// a new version. Verify holds every version to its line.

// SumError is one disagreement between a catalogue and its bundles.sum.
type SumError struct {
	Key      string // "astral-core@0.1.0" or "skills/daily-brief@1.0.0"
	Recorded string // the digest bundles.sum records; "" when it has no line for Key
	Actual   string // the digest of the content; "" when the content is missing
}

func (e *SumError) Error() string {
	switch {
	case e.Recorded == "":
		return fmt.Sprintf("%s: not recorded in %s; run the publish step to record it (%s)", e.Key, SumFile, e.Actual)
	case e.Actual == "":
		return fmt.Sprintf("%s: recorded in %s (%s) but its content is missing; restore it (a published version is never removed) or, deliberately, delete the line", e.Key, SumFile, e.Recorded)
	default:
		return fmt.Sprintf("%s: content changed since it was published (recorded %s, now %s); publish a new version instead", e.Key, e.Recorded, e.Actual)
	}
}

// parseSums reads bundles.sum strictly.
func parseSums(data []byte) (map[string]string, []error) {
	sums := map[string]string{}
	var errs []error
	text := string(data)
	if text == "" {
		return sums, nil
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i, line := range lines {
		n := i + 1
		key, digest, ok := strings.Cut(line, " ")
		if !ok || !validDigest(digest) {
			errs = append(errs, fileErr(SumFile, n, "malformed line %q (want \"<name>@<version> sha256:<64 hex digits>\")", line))
			continue
		}
		if err := validSumKey(key); err != nil {
			errs = append(errs, fileErr(SumFile, n, "%v", err))
			continue
		}
		if _, dup := sums[key]; dup {
			errs = append(errs, fileErr(SumFile, n, "%s is recorded twice", key))
			continue
		}
		sums[key] = digest
	}
	return sums, errs
}

func validSumKey(key string) error {
	ref, isSkill := strings.CutPrefix(key, skillsDir+"/")
	r, err := ParseRef(ref)
	if err != nil {
		return err
	}
	if !isSkill && r.Name == skillsDir {
		return fmt.Errorf("reference %q: the name %q is reserved for à-la-carte skills (skills/<skill>@<version>)", key, skillsDir)
	}
	return nil
}

// sortedKeys returns the keys of entries and orphans in bundles.sum order.
func (c *Catalogue) sortedKeys() []string {
	keys := slices.Collect(maps.Keys(c.entries))
	keys = slices.AppendSeq(keys, maps.Keys(c.orphans))
	slices.SortFunc(keys, compareKeys)
	return keys
}

// Verify recomputes the digest of every bundle version and à-la-carte skill version and
// compares it with the line bundles.sum records for it. It returns one *SumError per
// problem, in bundles.sum order, and nil when the catalogue and its record agree:
//
//   - content changed: "astral-core@0.1.0: content changed since it was published
//     (recorded sha256:…, now sha256:…); publish a new version instead";
//   - a version without a line: it is not published yet; run the publish step
//     (RecordSums) to record it;
//   - a line without content: a published version was removed.
func (c *Catalogue) Verify() []error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, k := range c.sortedKeys() {
		if e, ok := c.entries[k]; ok {
			if e.recorded != e.digest {
				errs = append(errs, &SumError{Key: k, Recorded: e.recorded, Actual: e.digest})
			}
			continue
		}
		errs = append(errs, &SumError{Key: k, Recorded: c.orphans[k]})
	}
	return errs
}

// RecordSums is the publish step: it loads the catalogue directory dir and adds to
// dir/bundles.sum a line for every version that has none yet, returning their keys
// ("writing@0.2.0", "skills/daily-brief@1.1.0") in file order. It never rewrites an
// existing line: if a recorded version's content changed, or a recorded version's
// content is gone, it returns those problems and writes nothing. The file is replaced
// atomically, and left untouched when there is nothing to add.
func RecordSums(dir string) (added []string, err error) {
	c, err := Load(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	var problems []error
	lines := map[string]string{}
	for _, k := range c.sortedKeys() {
		e, ok := c.entries[k]
		switch {
		case !ok:
			problems = append(problems, &SumError{Key: k, Recorded: c.orphans[k]})
		case e.recorded == "":
			added = append(added, k)
			lines[k] = e.digest
		case e.recorded != e.digest:
			problems = append(problems, &SumError{Key: k, Recorded: e.recorded, Actual: e.digest})
		default:
			lines[k] = e.recorded
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: refusing to publish: %w", filepath.Join(dir, SumFile), errors.Join(problems...))
	}
	if len(added) == 0 {
		return nil, nil
	}
	var b strings.Builder
	keys := slices.SortedFunc(maps.Keys(lines), compareKeys)
	for _, k := range keys {
		b.WriteString(k + " " + lines[k] + "\n")
	}
	if err := atomicfile.Write(filepath.Join(dir, SumFile), []byte(b.String()), 0o644, -1, -1); err != nil {
		return nil, fmt.Errorf("%s: %w", SumFile, err)
	}
	return added, nil
}
