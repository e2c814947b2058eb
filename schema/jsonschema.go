package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// SchemaURL is where the published JSON Schema of tenant files lives; example files point
// their yaml-language-server comment at it, and `hermesctl schema > tenant.schema.json`
// writes a local copy.
const SchemaURL = "https://raw.githubusercontent.com/firemountain/hermes-gitops/main/docs/tenant.schema.json"

// JSONSchema generates the JSON Schema (draft 2020-12) of a file kind from the Go types,
// so that the schema and the loader can never disagree. Struct tags give the rest: doc,
// enum, pattern, keypattern, default, required.
func JSONSchema(kind string) ([]byte, error) {
	var t reflect.Type
	switch kind {
	case KindTenant:
		t = reflect.TypeFor[Tenant]()
	case KindApp:
		t = reflect.TypeFor[App]()
	case KindWorker:
		t = reflect.TypeFor[Worker]()
	default:
		return nil, fmt.Errorf("no schema for kind %q (Tenant, App or Worker)", kind)
	}
	s := typeSchema(t)
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["title"] = "hermes-gitops " + kind
	props := s["properties"].(map[string]any)
	props["kind"] = map[string]any{"const": kind, "description": "What the file describes."}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func typeSchema(t reflect.Type) map[string]any {
	if t == yamlNodeType {
		return map[string]any{"type": "object"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeSchema(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": typeSchema(t.Elem())}
	case reflect.Map:
		if t.Elem().Kind() == reflect.Interface {
			return map[string]any{"type": "object"}
		}
		return map[string]any{"type": "object", "additionalProperties": typeSchema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		fields := yamlFields(t)
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			f := fields[name].field
			fs := typeSchema(f.Type)
			if d := f.Tag.Get("doc"); d != "" {
				fs["description"] = d
			}
			if e := f.Tag.Get("enum"); e != "" {
				fs["enum"] = strings.Split(e, ",")
			}
			if p := f.Tag.Get("pattern"); p != "" {
				if fs["type"] == "array" {
					fs["items"].(map[string]any)["pattern"] = p
				} else {
					fs["pattern"] = p
				}
			}
			if p := f.Tag.Get("keypattern"); p != "" {
				fs["propertyNames"] = map[string]any{"pattern": p}
			}
			if d := f.Tag.Get("default"); d != "" {
				fs["default"] = defaultValue(d, fs["type"])
			}
			if fields[name].required {
				required = append(required, name)
			}
			props[name] = fs
		}
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	panic(fmt.Sprintf("schema: no JSON Schema for %s", t))
}

func defaultValue(d string, typ any) any {
	if typ == "boolean" {
		return d == "true"
	}
	return d
}
