package wizard

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/firemountain/hermes-gitops/internal/testenv"
)

// TestNodeSnippet runs the Node.js snippet of docs/wizard-api.md, as printed there,
// against a server: it must sign correctly and its example must be accepted.
func TestNodeSnippet(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/wizard-api.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- hermes-wizard.mjs -->\n```js\n")
	snippet, _, ok2 := strings.Cut(rest, "\n```\n")
	if !ok || !ok2 {
		t.Fatal("docs/wizard-api.md has no hermes-wizard.mjs snippet")
	}
	node := testenv.LookPath(t, "node") // Node.js 20 comes with the project's machines
	f := newFixture(t, nil)
	file := filepath.Join(t.TempDir(), "hermes-wizard.mjs")
	if err := os.WriteFile(file, []byte(snippet+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(key string) string {
		cmd := exec.Command(node, file)
		cmd.Env = append(os.Environ(), "HERMES_WIZARD_URL="+f.http.URL, "HERMES_WIZARD_SECRET="+rotatedSecret, "EXAMPLE_API_KEY="+key)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("node: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	key := canary("sk-node-")
	out := run(key)
	lines := strings.Split(out, "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `202 {"tenantId":"cody"`) || !strings.HasPrefix(lines[1], `200 {"tenantId":"cody","app":"spawn","stage":"committed"`) {
		t.Fatalf("the snippet printed:\n%s", out)
	}
	if !strings.Contains(f.decrypt(t, "main", "tenants/spawn/cody.yaml"), key) {
		t.Errorf("the key sent by the snippet does not decrypt")
	}
	// Again, with another key: "cody" is taken now and the example takes the suggestion.
	key2 := canary("sk-node-")
	if out := run(key2); !strings.HasPrefix(out, `202 {"tenantId":"cody-2"`) {
		t.Errorf("second run:\n%s", out)
	}
	f.assertNowhere(t, key, key2)
}

// TestOpenAPIMatchesTypes keeps docs/openapi.yaml in step with the Go types.
func TestOpenAPIMatchesTypes(t *testing.T) {
	data, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths      map[string]map[string]any `yaml:"paths"`
		Components struct {
			Schemas map[string]schemaDoc `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Components.Schemas
	for name, c := range map[string]struct {
		props map[string]schemaDoc
		typ   reflect.Type
	}{
		"Submission":          {s["Submission"].Properties, reflect.TypeFor[Submission]()},
		"Submission.owner":    {s["Submission"].Properties["owner"].Properties, reflect.TypeFor[Owner]()},
		"Submission.provider": {s["Submission"].Properties["provider"].Properties, reflect.TypeFor[Provider]()},
		"Submission.telegram": {s["Submission"].Properties["telegram"].Properties, reflect.TypeFor[Telegram]()},
		"Submission.storage":  {s["Submission"].Properties["storage"].Properties, reflect.TypeFor[Storage]()},
		"Accepted":            {s["Accepted"].Properties, reflect.TypeFor[accepted]()},
		"Error":               {s["Error"].Properties, reflect.TypeFor[errorBody]()},
		"FieldError":          {s["FieldError"].Properties, reflect.TypeFor[FieldError]()},
		"Status":              {s["Status"].Properties, reflect.TypeFor[statusResponse]()},
		"Health":              {s["Health"].Properties, reflect.TypeFor[health]()},
	} {
		var documented, fields []string
		for p := range c.props {
			documented = append(documented, p)
		}
		for i := range c.typ.NumField() {
			tag, _, _ := strings.Cut(c.typ.Field(i).Tag.Get("json"), ",")
			fields = append(fields, tag)
		}
		slices.Sort(documented)
		slices.Sort(fields)
		if !slices.Equal(documented, fields) {
			t.Errorf("openapi.yaml %s has %v, the Go type %v", name, documented, fields)
		}
	}
	for path, methods := range map[string][]string{
		"/v1/submissions":                   {http.MethodPost},
		"/v1/submissions/{tenantId}/status": {http.MethodGet},
		"/healthz":                          {http.MethodGet},
	} {
		for _, m := range methods {
			if _, ok := doc.Paths[path][strings.ToLower(m)]; !ok {
				t.Errorf("openapi.yaml does not describe %s %s", m, path)
			}
		}
	}
}

type schemaDoc struct {
	Properties map[string]schemaDoc `yaml:"properties"`
}
