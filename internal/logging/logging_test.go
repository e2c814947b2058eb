package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "auto", "")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("reconciled", "tenants", 3)
	l.Debug("hidden")
	if !strings.HasPrefix(buf.String(), `{"time":`) || strings.Contains(buf.String(), "hidden") {
		t.Fatalf("a non-terminal gets JSON at info level: %q", buf.String())
	}
	buf.Reset()
	l, _ = New(&buf, "text", "debug")
	l.Debug("shown")
	if !strings.Contains(buf.String(), "level=DEBUG msg=shown") {
		t.Fatalf("text at debug: %q", buf.String())
	}
	for _, bad := range [][2]string{{"xml", "info"}, {"text", "loud"}} {
		if _, err := New(&buf, bad[0], bad[1]); err == nil {
			t.Errorf("New(%q, %q) accepted", bad[0], bad[1])
		}
	}
}
