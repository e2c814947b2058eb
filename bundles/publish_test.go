package bundles

import (
	"flag"
	"testing"
)

var publish = flag.Bool("publish", false, "record the digests of new built-in bundle versions in bundles.sum")

// TestPublishBuiltin is the publish step for the built-in catalogue:
//
//	go test ./bundles -run TestPublishBuiltin -publish
//
// It adds a bundles.sum line for every version that has none and refuses to touch a
// recorded one. Without -publish it does nothing.
func TestPublishBuiltin(t *testing.T) {
	if !*publish {
		return // run with -publish to record new built-in versions in bundles.sum
	}
	added, err := RecordSums(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(added) == 0 {
		t.Log("nothing to publish: every version is recorded")
	}
	for _, k := range added {
		t.Logf("published %s", k)
	}
}
