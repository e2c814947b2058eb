// Package bundles is the versioned skill-bundle catalogue: the skills hermes-gitops
// installs into a tenant's hermes-home, and the Go code that loads, checks and
// publishes them.
//
// # Layout
//
// A catalogue directory (this package's directory for the built-in one, a desired-state
// repository's bundles/ for its own) holds
//
//	<bundle>/<version>/bundle.yaml               name, version, description, category,
//	                                             skills, requires {toolsets, env}
//	<bundle>/<version>/skills/<skill>/SKILL.md   Hermes front matter + instructions
//	<bundle>/<version>/skills/<skill>/{references,templates,scripts}/...
//	skills/<skill>/<version>/SKILL.md (+ files)  à-la-carte skills (the name "skills" is
//	                                             therefore reserved)
//	bundles.sum                                  the immutability record
//
// A skill of a bundle carries the bundle's version and installs under the bundle's
// category: skills/<category>/<skill>/ in hermes-home (Skill.InstallDir). Files under
// scripts/ install 0755, every other file 0644.
//
// # Immutability
//
// A published version never changes. bundles.sum records the Digest of every published
// version; Verify recomputes them and reports any difference, and a test runs Verify on
// the built-in catalogue so a changed published file fails the build. To change a
// bundle, copy its directory to a new version, edit, then run the publish step, which
// records the new line and refuses to touch the old ones:
//
//	go test ./bundles -run TestPublishBuiltin -publish    # built-in catalogue
//
// (bundles.RecordSums(dir) for any other catalogue directory).
//
// # Digests
//
// A digest is "sha256:" + hex SHA-256 over the files sorted by path, each encoded as
// uint64 big-endian path length, path, uint64 big-endian content length, content (see
// Digest). A bundle's digest covers bundle.yaml and skills/<skill>/... of its version
// directory; a skill's digest covers its files relative to its install directory, so a
// worker can recompute it over skills/<category>/<skill>/ and compare.
package bundles
