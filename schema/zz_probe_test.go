package schema

import (
	"fmt"
	"os"
	"testing"
	"testing/fstest"
)

func TestZZProbe(t *testing.T) {
	c := os.Getenv("PROBE")
	fsys := fstest.MapFS{"tenants/spawn/ada.yaml": {Data: []byte(c)}}
	r, err := LoadFS(fsys, "x", LoadOptions{})
	fmt.Println("==", err)
	for _, p := range r.Problems {
		fmt.Println("  ", p.String())
	}
}
