package schema

import (
	"os"
	"testing"
)

// TestPublishedSchemaIsCurrent keeps docs/tenant.schema.json (the file the example
// tenants' yaml-language-server comment points at) equal to what the Go types generate.
// Regenerate with: go run ./cmd/hermesctl schema > docs/tenant.schema.json
func TestPublishedSchemaIsCurrent(t *testing.T) {
	want, err := JSONSchema(KindTenant)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../docs/tenant.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want)+"\n" {
		t.Fatal("docs/tenant.schema.json is out of date: go run ./cmd/hermesctl schema > docs/tenant.schema.json")
	}
}
