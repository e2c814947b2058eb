//go:build !unix

package daemon

import "context"

// lockCacheDir is a no-op where flock does not exist; the workers' apply lock still
// keeps two daemons from applying at once.
func (d *Daemon) lockCacheDir(context.Context) (func(), error) { return func() {}, nil }
