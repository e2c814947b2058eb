package schema

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/firemountain/hermes-gitops/bundles"
)

var update = flag.Bool("update", false, "rewrite the golden files of the schema tests")

// goldenTenantSchema is the published schema (the example tenants' yaml-language-server
// comment points at it); regenerate with -update or `hermesctl schema`.
const goldenTenantSchema = "../docs/tenant.schema.json"

func TestJSONSchemaGolden(t *testing.T) {
	got, err := JSONSchema(KindTenant)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(goldenTenantSchema, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenTenantSchema)
	if err != nil {
		t.Fatalf("%v (run go test ./schema -run TestJSONSchemaGolden -update)", err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Errorf("JSONSchema(Tenant) differs from %s; if the change is intended, run go test ./schema -run TestJSONSchemaGolden -update\n%s",
			goldenTenantSchema, firstDiff(string(want), string(got)+"\n"))
	}
	// The output is stable from call to call (map order must not leak into it).
	again, _ := JSONSchema(KindTenant)
	if !bytes.Equal(got, again) {
		t.Error("JSONSchema is not deterministic")
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n  golden: %s\n  now:    %s", i+1, x, y)
		}
	}
	return ""
}

// TestSchemaURLInExamples: SchemaURL serves docs/tenant.schema.json from the main
// branch (schemafile_test.go keeps that file current), and every example tenant file
// points its yaml-language-server comment at it.
func TestSchemaURLInExamples(t *testing.T) {
	if !strings.HasSuffix(SchemaURL, "/main/docs/tenant.schema.json") {
		t.Fatalf("SchemaURL = %s", SchemaURL)
	}
	files, _ := filepath.Glob(filepath.Join(exampleDir, "tenants", "*", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no example tenant files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if first, _, _ := strings.Cut(string(b), "\n"); first != "# yaml-language-server: $schema="+SchemaURL {
			t.Errorf("%s: first line %q does not point at SchemaURL", f, first)
		}
	}
}

func schemaOf(t *testing.T, kind string) map[string]any {
	t.Helper()
	b, err := JSONSchema(kind)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("JSONSchema(%s) is not JSON: %v", kind, err)
	}
	return s
}

// prop walks "properties" by a dotted path.
func prop(t *testing.T, s map[string]any, path string) map[string]any {
	t.Helper()
	cur := s
	for _, name := range strings.Split(path, ".") {
		props, _ := cur["properties"].(map[string]any)
		next, ok := props[name].(map[string]any)
		if !ok {
			t.Fatalf("no property %s (at %s)", path, name)
		}
		cur = next
	}
	return cur
}

func strList(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestJSONSchemaStructure(t *testing.T) {
	for _, kind := range []string{KindTenant, KindApp, KindWorker} {
		t.Run(kind, func(t *testing.T) {
			s := schemaOf(t, kind)
			if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" || s["title"] != "hermes-gitops "+kind {
				t.Errorf("$schema %v title %v", s["$schema"], s["title"])
			}
			if k := prop(t, s, "kind"); k["const"] != kind {
				t.Errorf("kind = %v, want const %s", k, kind)
			}
			if v := prop(t, s, "apiVersion"); !slices.Equal(strList(v["enum"]), []string{APIVersion}) {
				t.Errorf("apiVersion = %v", v)
			}
			if got := strList(s["required"]); !slices.Equal(got, []string{"apiVersion", "kind", "metadata", "spec"}) {
				t.Errorf("required = %q", got)
			}
			// Every object with properties is closed, as the loader is strict.
			var walk func(path string, n map[string]any)
			walk = func(path string, n map[string]any) {
				if props, ok := n["properties"].(map[string]any); ok {
					if n["additionalProperties"] != false {
						t.Errorf("%s: additionalProperties = %v, want false", path, n["additionalProperties"])
					}
					if n["type"] != "object" {
						t.Errorf("%s: type = %v", path, n["type"])
					}
					for name, p := range props {
						walk(path+"."+name, p.(map[string]any))
					}
				}
				if items, ok := n["items"].(map[string]any); ok {
					walk(path+"[]", items)
				}
				if ap, ok := n["additionalProperties"].(map[string]any); ok {
					walk(path+"{}", ap)
				}
			}
			walk(kind, s)
			// Every field of the Go type appears, with the required ones listed.
			var typ reflect.Type
			switch kind {
			case KindTenant:
				typ = reflect.TypeFor[Tenant]()
			case KindApp:
				typ = reflect.TypeFor[App]()
			case KindWorker:
				typ = reflect.TypeFor[Worker]()
			}
			checkFields(t, kind, typ, s)
		})
	}
	if _, err := JSONSchema("Bundle"); err == nil {
		t.Error("JSONSchema(Bundle) succeeded")
	}
}

// checkFields asserts that every YAML field of struct type typ is a property of schema s,
// that required:"true" fields are required, and recurses into struct-valued fields.
func checkFields(t *testing.T, path string, typ reflect.Type, s map[string]any) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	props, _ := s["properties"].(map[string]any)
	required := strList(s["required"])
	n := 0
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			checkFields(t, path, f.Type, s)
			n++
			continue
		}
		n++
		p, ok := props[name].(map[string]any)
		if !ok {
			t.Errorf("%s.%s (Go %s.%s) is missing from the schema", path, name, typ.Name(), f.Name)
			continue
		}
		if (f.Tag.Get("required") == "true") != slices.Contains(required, name) {
			t.Errorf("%s.%s: required tag %q, schema required %q", path, name, f.Tag.Get("required"), required)
		}
		if f.Tag.Get("doc") != "" && p["description"] != f.Tag.Get("doc") && name != "kind" {
			t.Errorf("%s.%s: description %v", path, name, p["description"])
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft == yamlNodeType.Elem():
			// sops metadata: free-form, its content belongs to sops.
		case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[Header]():
			checkFields(t, path+"."+name, ft, p)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			checkFields(t, path+"."+name+"[]", ft.Elem(), p["items"].(map[string]any))
		}
	}
	if len(props) < n-1 { // Header adds apiVersion and kind through one inline field
		t.Errorf("%s: %d properties for %d fields", path, len(props), n)
	}
}

func TestJSONSchemaTenantDetails(t *testing.T) {
	s := schemaOf(t, KindTenant)
	if got := strList(prop(t, s, "spec.provider.id")["enum"]); !slices.Equal(got, ProviderIDs()) {
		t.Errorf("provider enum %q, want the provider table %q", got, ProviderIDs())
	}
	if got := strList(prop(t, s, "spec.state")["enum"]); !slices.Equal(got, []string{StateActive, StateSuspended, StateDeleted}) {
		t.Errorf("state enum %q", got)
	}
	if d := prop(t, s, "spec.state")["default"]; d != StateActive {
		t.Errorf("state default %v", d)
	}
	var backends []string
	for b := range WebBackendKeys {
		backends = append(backends, b)
	}
	if got := strList(prop(t, s, "spec.web.backend")["enum"]); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(backends))) {
		t.Errorf("web backend enum %q, want %q", got, backends)
	}
	if term := prop(t, s, "spec.toolsets.terminal"); term["type"] != "boolean" || term["default"] != true {
		t.Errorf("toolsets.terminal = %v", term)
	}
	if got := strList(prop(t, s, "spec")["required"]); !slices.Equal(got, []string{"provider", "worker"}) {
		t.Errorf("spec required %q", got)
	}
	if got := strList(prop(t, s, "spec.provider")["required"]); !slices.Equal(got, []string{"id"}) {
		t.Errorf("provider required %q", got)
	}
	if got := strList(prop(t, s, "metadata")["required"]); !slices.Equal(got, []string{"app", "name"}) {
		t.Errorf("metadata required %q", got)
	}
	if got := strList(prop(t, s, "spec.storage.s3")["required"]); !slices.Equal(got, []string{"quota"}) {
		t.Errorf("s3 required %q", got)
	}
	// Patterns agree with the loader's regular expressions.
	for path, want := range map[string]string{
		"metadata.name":         tenantIDRE.String(),
		"spec.resources.memory": memoryRE.String(),
	} {
		if got := prop(t, s, path)["pattern"]; got != want {
			t.Errorf("%s pattern %v, want the loader's %s", path, got, want)
		}
	}
	bundlesItems := prop(t, s, "spec.bundles")["items"].(map[string]any)
	if bundlesItems["type"] != "string" || bundlesItems["pattern"] == nil {
		t.Errorf("bundles items = %v", bundlesItems)
	}
	if users := prop(t, s, "spec.telegram.allowedUsers"); users["type"] != "array" || users["items"].(map[string]any)["type"] != "integer" {
		t.Errorf("allowedUsers = %v", users)
	}
	secrets := prop(t, s, "secrets")
	if secrets["type"] != "object" || secrets["propertyNames"].(map[string]any)["pattern"] != envNameRE.String() ||
		secrets["additionalProperties"].(map[string]any)["type"] != "string" {
		t.Errorf("secrets = %v", secrets)
	}
	if hc := prop(t, s, "spec.hermesConfig"); hc["type"] != "object" || hc["additionalProperties"] != nil {
		t.Errorf("hermesConfig must be a free-form object: %v", hc)
	}
	if so := prop(t, s, "sops"); so["type"] != "object" || so["additionalProperties"] != nil {
		t.Errorf("sops must be a free-form object: %v", so)
	}

	w := schemaOf(t, KindWorker)
	if got := strList(prop(t, w, "spec.transport")["enum"]); !slices.Equal(got, []string{TransportSSH, TransportLocal}) {
		t.Errorf("transport enum %q", got)
	}
	a := schemaOf(t, KindApp)
	if got := strList(prop(t, a, "spec")["required"]); !slices.Equal(got, []string{"containerPrefix", "image", "providers", "tenantRoot"}) {
		t.Errorf("app spec required %q", got)
	}
}

// TestJSONSchemaAcceptsExample: every field the example files use is in the schema (a
// cheap structural validation, without a JSON Schema library).
func TestJSONSchemaAcceptsExample(t *testing.T) {
	r := loadExample(t)
	schemas := map[string]map[string]any{KindTenant: schemaOf(t, KindTenant), KindApp: schemaOf(t, KindApp), KindWorker: schemaOf(t, KindWorker)}
	check := func(kind string, src *Source) {
		for path := range src.pos {
			p := strings.Split(path, ".")
			cur := schemas[kind]
			for _, name := range p {
				name, _, _ = strings.Cut(name, "[")
				props, ok := cur["properties"].(map[string]any)
				if !ok {
					break // a map or free-form value
				}
				next, ok := props[name].(map[string]any)
				if !ok {
					t.Errorf("%s: %s is written but not in the %s schema", src.File, path, kind)
					break
				}
				if items, ok := next["items"].(map[string]any); ok && strings.Contains(path, name+"[") {
					next = items
				}
				cur = next
			}
		}
	}
	for _, tn := range r.Tenants {
		check(KindTenant, tn.Source)
	}
	for _, a := range r.Apps {
		check(KindApp, a.Source)
	}
	for _, w := range r.Workers {
		check(KindWorker, w.Source)
	}
}

// TestJSONSchemaPatternsAgreeWithLoader: a value the loader accepts must not be flagged
// by an editor using the schema.
func TestJSONSchemaPatternsAgreeWithLoader(t *testing.T) {
	s := schemaOf(t, KindTenant)
	pattern := regexp.MustCompile(prop(t, s, "spec.bundles")["items"].(map[string]any)["pattern"].(string))
	for _, ref := range []string{"astral-core@0.2.0", "writing@10.20.30"} {
		if !pattern.MatchString(ref) {
			t.Errorf("the schema rejects the bundle pin %q", ref)
		}
	}
	const pre = "astral-core@1.0.0-rc.1"
	if _, err := bundles.ParseRef(pre); err != nil {
		t.Fatalf("ParseRef(%q): %v", pre, err)
	}
	t.Run("prerelease", func(t *testing.T) {
		if !pattern.MatchString(pre) {
			t.Errorf("the schema rejects the bundle pin %q, which the loader accepts", pre)
		}
	})
}
