package bundles

import (
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		want    Ref
		wantErr string
	}{
		{in: "astral-core@0.2.0", want: Ref{"astral-core", "0.2.0"}},
		{in: "daily-brief@1.0.0", want: Ref{"daily-brief", "1.0.0"}},
		{in: "a@1.0.0-rc.1", want: Ref{"a", "1.0.0-rc.1"}},
		{in: "0x@0.0.1", want: Ref{"0x", "0.0.1"}},
		{in: "astral-core", wantErr: `reference "astral-core": missing "@version" (want name@version, e.g. astral-core@0.2.0)`},
		{in: "", wantErr: `reference "": missing "@version"`},
		{in: "@0.1.0", wantErr: `reference "@0.1.0": empty name`},
		{in: "Astral@0.1.0", wantErr: `reference "Astral@0.1.0": bad name "Astral": want lowercase letters, digits and "-", starting with a letter or digit`},
		{in: "-astral@0.1.0", wantErr: `bad name "-astral"`},
		{in: "astral_core@0.1.0", wantErr: `bad name "astral_core"`},
		{in: "skills/x@1.0.0", wantErr: `bad name "skills/x"`},
		{in: strings.Repeat("a", 65) + "@1.0.0", wantErr: "longer than 64 characters"},
		{in: "astral-core@0.2", wantErr: `reference "astral-core@0.2": bad version "0.2": want MAJOR.MINOR.PATCH`},
		{in: "astral-core@v0.2.0", wantErr: `bad version "v0.2.0": drop the leading "v"`},
		{in: "astral-core@", wantErr: `bad version "": empty`},
		{in: "astral-core@0.2.0@x", wantErr: `bad version "0.2.0@x"`},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRef(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRef(%q) error = %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("ParseRef(%q).String() = %q, want the input back", tt.in, got.String())
		}
	}
}
