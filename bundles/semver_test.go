package bundles

import (
	"math/rand"
	"slices"
	"strings"
	"testing"
)

func TestValidVersion(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string // "" means valid
	}{
		{"0.1.0", ""},
		{"1.0.0", ""},
		{"10.20.30", ""},
		{"1.0.0-rc.1", ""},
		{"1.0.0-alpha-beta.0.x-y", ""},
		{"99999999999999999999.0.0", ""},
		{"", "empty"},
		{"1.0", "want MAJOR.MINOR.PATCH"},
		{"1.0.0.0", "want MAJOR.MINOR.PATCH"},
		{"v1.0.0", `drop the leading "v"`},
		{"01.0.0", `major "01" has a leading zero`},
		{"1.00.0", `minor "00" has a leading zero`},
		{"1.0.x", `patch "x" is not a number`},
		{"1..0", `minor "" is not a number`},
		{"1.0.0+build.1", "build metadata"},
		{"1.0.0-", "empty prerelease"},
		{"1.0.0-rc..1", "empty prerelease identifier"},
		{"1.0.0-01", `numeric prerelease identifier "01" has a leading zero`},
		{"1.0.0-rc_1", `prerelease identifier "rc_1" may only hold`},
		{" 1.0.0", "is not a number"},
	}
	for _, tt := range tests {
		err := ValidVersion(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidVersion(%q) = %v, want nil", tt.in, err)
		case tt.wantErr != "" && err == nil:
			t.Errorf("ValidVersion(%q) = nil, want error containing %q", tt.in, tt.wantErr)
		case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
			t.Errorf("ValidVersion(%q) = %q, want it to contain %q", tt.in, err, tt.wantErr)
		case tt.wantErr != "" && !strings.HasPrefix(err.Error(), "bad version "):
			t.Errorf("ValidVersion(%q) = %q, want it to start with \"bad version \"", tt.in, err)
		}
	}
}

func TestCompareVersionsOrder(t *testing.T) {
	// Strictly increasing, per semver.org §11 plus numeric (not lexical) comparison.
	ordered := []string{
		"0.0.1",
		"0.1.0",
		"0.2.0",
		"0.9.0",
		"0.10.0",
		"1.0.0-alpha",
		"1.0.0-alpha.1",
		"1.0.0-alpha.beta",
		"1.0.0-beta",
		"1.0.0-beta.2",
		"1.0.0-beta.11",
		"1.0.0-rc.1",
		"1.0.0",
		"1.0.1",
		"1.9.0",
		"1.10.0",
		"1.11.0",
		"2.0.0",
		"10.0.0",
		"99999999999999999999.0.0",
	}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := CompareVersions(ordered[i], ordered[j]); got != want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	shuffled := slices.Clone(ordered)
	rand.New(rand.NewSource(1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	slices.SortFunc(shuffled, CompareVersions)
	if !slices.Equal(shuffled, ordered) {
		t.Errorf("sorted = %v\nwant     %v", shuffled, ordered)
	}
}

func TestCompareVersionsInvalid(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"junk", "0.0.1", -1},
		{"0.0.1", "junk", 1},
		{"a", "b", -1},
		{"b", "b", 0},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestCompareKeys(t *testing.T) {
	keys := []string{"writing@0.1.0", "skills/daily-brief@1.0.0", "astral-core@0.10.0", "astral-core@0.2.0", "astral-hd@0.2.0", "research@0.1.0"}
	slices.SortFunc(keys, compareKeys)
	want := []string{"astral-core@0.2.0", "astral-core@0.10.0", "astral-hd@0.2.0", "research@0.1.0", "skills/daily-brief@1.0.0", "writing@0.1.0"}
	if !slices.Equal(keys, want) {
		t.Errorf("sorted keys = %v, want %v", keys, want)
	}
}
