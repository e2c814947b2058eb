package render

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/firemountain/hermes-gitops/schema"
)

// ConfigYAML renders a tenant's Hermes config.yaml: model settings from the provider
// table, the toolsets per platform (terminal on unless the tenant turns it off), the web
// backend, and the tenant's hermesConfig passthrough merged in. Output is deterministic.
func ConfigYAML(t *schema.Tenant, source string) ([]byte, error) {
	s := t.Spec
	prov, ok := schema.LookupProvider(s.Provider.ID)
	if !ok {
		return nil, fmt.Errorf("unknown provider %q", s.Provider.ID)
	}
	model := node(yaml.MappingNode)
	put(model, "provider", str(prov.HermesProvider))
	put(model, "default", str(s.Provider.Model))
	if prov.BaseURL != "" {
		put(model, "base_url", str(prov.BaseURL))
	}
	if prov.APIMode != "" {
		put(model, "api_mode", str(prov.APIMode))
	}

	toolsets := Toolsets(s.Toolsets)
	platforms := node(yaml.MappingNode)
	put(platforms, "cli", strList(toolsets))
	if len(s.Telegram.AllowedUsers) > 0 {
		put(platforms, "telegram", strList(toolsets))
	}

	doc := node(yaml.MappingNode)
	put(doc, "model", model)
	put(doc, "platform_toolsets", platforms)
	if s.Web.Backend != "" {
		web := node(yaml.MappingNode)
		put(web, "backend", str(s.Web.Backend))
		put(doc, "web", web)
	}
	for _, k := range slices.Sorted(maps.Keys(s.HermesConfig)) {
		var v yaml.Node
		if err := v.Encode(s.HermesConfig[k]); err != nil {
			return nil, fmt.Errorf("hermesConfig.%s: %w", k, err)
		}
		put(doc, k, &v)
	}
	doc.HeadComment = "Managed by hermes-gitops from " + source + ".\nEdits here are reverted by the next apply: change the tenant file instead."

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	enc.Close()
	return buf.Bytes(), nil
}

// Toolsets is the tenant's enabled toolset list, in a fixed order: terminal (unless off),
// the defaults not disabled, then extra ones.
func Toolsets(ts schema.Toolsets) []string {
	var out []string
	if ts.TerminalEnabled() {
		out = append(out, "terminal")
	}
	for _, t := range schema.DefaultToolsets {
		if !slices.Contains(ts.Disable, t) {
			out = append(out, t)
		}
	}
	for _, t := range ts.Enable {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func node(kind yaml.Kind) *yaml.Node { return &yaml.Node{Kind: kind} }

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func strList(items []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, it := range items {
		n.Content = append(n.Content, str(it))
	}
	return n
}

func put(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, str(key), v)
}
