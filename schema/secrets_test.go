package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"gopkg.in/yaml.v3"

	"github.com/firemountain/hermes-gitops/internal/testenv"
)

const telegramCanary = "CANARY-tg-7d3e1a9f0b2c"

func TestSecretNeverPrints(t *testing.T) {
	s := Secret(canary)
	if s.Reveal() != canary {
		t.Fatalf("Reveal = %q", s.Reveal())
	}
	type holder struct {
		Name   string
		Key    Secret
		Ptr    *Secret
		Values map[string]Secret
		List   []Secret
	}
	h := holder{Name: "ada", Key: s, Ptr: &s, Values: map[string]Secret{"K": s}, List: []Secret{s, s}}
	tn := &Tenant{Metadata: TenantMeta{Name: "ada"}, SecretValues: map[string]Secret{"ANTHROPIC_API_KEY": s}}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h), fmt.Sprintf(verb, *tn))
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(s, h), s.String(), s.GoString(), fmt.Sprint(tn.SecretValues))
	for _, v := range []any{s, h, &h, tn, map[string]Secret{"K": s}} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T): %v", v, err)
		}
		outs = append(outs, string(j))
		yb, err := yaml.Marshal(v)
		if err != nil {
			t.Fatalf("yaml.Marshal(%T): %v", v, err)
		}
		outs = append(outs, string(yb))
	}
	txt, _ := s.MarshalText()
	outs = append(outs, string(txt))
	for _, o := range outs {
		if strings.Contains(o, canary) || strings.Contains(o, "CANARY") {
			t.Errorf("a secret printed: %s", o)
		}
	}
	if got := fmt.Sprintf("%v|%s|%q", s, s, s); got != "[secret]|[secret]|[secret]" {
		t.Errorf("Secret prints as %q", got)
	}
	if j, _ := json.Marshal(h.Values); string(j) != `{"K":"[secret]"}` {
		t.Errorf("json = %s", j)
	}
	// A tenant marshals without its decrypted values at all.
	if j, _ := json.Marshal(tn); bytes.Contains(j, []byte("SecretValues")) || bytes.Contains(j, []byte("[secret]")) {
		t.Errorf("json of a tenant carries SecretValues: %s", j)
	}
}

func TestIsEncryptedValue(t *testing.T) {
	for v, want := range map[string]bool{
		fakeENC: true,
		"ENC[AES256_GCM,data:,iv:MTIz,tag:MTIz,type:str]":            true, // an empty secret
		"ENC[AES256_GCM,data:c2Vj,iv:MTIz,tag:MTIz,type:str] ":       false,
		" ENC[AES256_GCM,data:c2Vj,iv:MTIz,tag:MTIz,type:str]":       false,
		"ENC[AES256_GCM,data:c2Vj,iv:MTIz,tag:MTIz,type:str]\nextra": false,
		"ENC[AES256_GCM,data:" + canary + "]":                        false,
		"ENC[AES256_GCM,data:c2Vj,iv:,tag:MTIz,type:str]":            false,
		"ENC[PLAIN,data:c2Vj,iv:MTIz,tag:MTIz,type:str]":             false,
		canary: false,
		"":     false,
	} {
		if got := IsEncryptedValue(v); got != want {
			t.Errorf("IsEncryptedValue(%q) = %v, want %v", v, got, want)
		}
	}
}

// sopsRepo is a desired-state repository on disk with a .sops.yaml for a fresh age key.
type sopsRepo struct {
	dir     string
	id      *age.X25519Identity
	ids     *Identities
	keyFile string
}

func newSopsRepo(t *testing.T) *sopsRepo {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := writeRepo(t, map[string]string{".sops.yaml": y(
		"creation_rules:",
		"  - path_regex: ^tenants/",
		"    encrypted_regex: ^secrets$",
		"    mac_only_encrypted: true",
		"    age: "+id.Recipient().String(),
	)})
	keyFile := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keyFile, []byte("# test key\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := ParseIdentities(id.String(), "the test key")
	if err != nil {
		t.Fatal(err)
	}
	return &sopsRepo{dir: dir, id: id, ids: ids, keyFile: keyFile}
}

func (s *sopsRepo) path(rel string) string { return filepath.Join(s.dir, filepath.FromSlash(rel)) }

func (s *sopsRepo) write(t *testing.T, rel, content string, mode os.FileMode) {
	t.Helper()
	p := s.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func (s *sopsRepo) read(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(s.path(rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const schemaComment = "# yaml-language-server: $schema=" + SchemaURL

// plainTenant is a tenant file with plaintext secrets, as a person writes it before
// encrypting.
func plainTenant(id string) string {
	return y(
		schemaComment,
		"apiVersion: hermes-gitops/v1",
		"kind: Tenant",
		"metadata:",
		"  name: "+id,
		"  app: spawn",
		"spec:",
		"  worker: local",
		"  provider:",
		"    id: anthropic",
		"    model: claude-sonnet-4-5",
		"  bundles: [writing@0.1.0]",
		"  telegram:",
		"    allowedUsers: [111111111]",
		"secrets:",
		"  # the key of the demo account",
		"  ANTHROPIC_API_KEY: "+canary,
		"  TELEGRAM_BOT_TOKEN: "+telegramCanary,
	)
}

var encLine = regexp.MustCompile(`(?m)^ +(ANTHROPIC_API_KEY|TELEGRAM_BOT_TOKEN): (ENC\[[^\]]*\])$`)

func TestEncryptFileRoundTrip(t *testing.T) {
	s := newSopsRepo(t)
	const rel = "tenants/spawn/ada.yaml"
	s.write(t, rel, plainTenant("ada"), 0o640)
	if err := EncryptFile(s.path(rel), s.dir); err != nil {
		t.Fatalf("EncryptFile: %v", err)
	}
	enc := s.read(t, rel)
	text := string(enc)
	if strings.Contains(text, "CANARY") {
		t.Fatalf("the encrypted file still holds a plaintext secret:\n%s", text)
	}
	if !strings.HasPrefix(text, schemaComment+"\n") {
		t.Errorf("the leading yaml-language-server comment was not kept:\n%s", text)
	}
	// Everything but the secrets stays readable (sops re-emits the YAML in its own layout,
	// so compare values, not text).
	var doc struct {
		Metadata TenantMeta `yaml:"metadata"`
		Spec     TenantSpec `yaml:"spec"`
		Sops     struct {
			EncryptedRegex   string `yaml:"encrypted_regex"`
			MACOnlyEncrypted bool   `yaml:"mac_only_encrypted"`
			Age              []struct {
				Recipient string `yaml:"recipient"`
			} `yaml:"age"`
		} `yaml:"sops"`
	}
	if err := yaml.Unmarshal(enc, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Metadata.Name != "ada" || doc.Spec.Provider.ID != "anthropic" || doc.Spec.Provider.Model != "claude-sonnet-4-5" ||
		!slices.Equal(doc.Spec.Bundles, []string{"writing@0.1.0"}) || !slices.Equal(doc.Spec.Telegram.AllowedUsers, []int64{111111111}) {
		t.Errorf("plain fields changed: %+v %+v", doc.Metadata, doc.Spec)
	}
	if doc.Sops.EncryptedRegex != "^secrets$" || !doc.Sops.MACOnlyEncrypted || len(doc.Sops.Age) != 1 || doc.Sops.Age[0].Recipient != s.id.Recipient().String() {
		t.Errorf("sops metadata = %+v", doc.Sops)
	}
	if got := encLine.FindAllStringSubmatch(text, -1); len(got) != 2 {
		t.Errorf("want both secrets as ENC[...] values, got %q in:\n%s", got, text)
	} else {
		for _, m := range got {
			if !IsEncryptedValue(m[2]) {
				t.Errorf("secrets.%s = %s is not sops ciphertext", m[1], m[2])
			}
		}
	}
	if n := strings.Count(text, "ENC["); n != 4 { // two secrets, the MAC, and the comment
		t.Errorf("%d ENC[...] values, want 4 (2 secrets, their comment, the MAC):\n%s", n, text)
	}
	info, err := os.Stat(s.path(rel))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want the file's 0640 kept", info.Mode().Perm())
	}
	if leftovers, _ := filepath.Glob(s.path("tenants/spawn/.*")); len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %q", leftovers)
	}

	vals, err := DecryptSecrets(enc, s.ids)
	if err != nil {
		t.Fatalf("DecryptSecrets: %v", err)
	}
	if len(vals) != 2 || vals["ANTHROPIC_API_KEY"].Reveal() != canary || vals["TELEGRAM_BOT_TOKEN"].Reveal() != telegramCanary {
		t.Errorf("decrypted %d values, wrong ones", len(vals))
	}

	r, err := Load(s.dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.Decrypt(s.ids)
	if len(r.Problems) != 0 {
		t.Errorf("problems:\n%s", r.Problems)
	}
	tn := r.Tenant("ada")
	if tn.SecretValues["ANTHROPIC_API_KEY"].Reveal() != canary {
		t.Errorf("Repo.Decrypt: ANTHROPIC_API_KEY wrong")
	}

	// Encrypting again is refused and leaves the file alone.
	err = EncryptFile(s.path(rel), s.dir)
	if !errors.Is(err, ErrAlreadyEncrypted) {
		t.Errorf("second EncryptFile = %v, want ErrAlreadyEncrypted", err)
	}
	if !bytes.Equal(s.read(t, rel), enc) {
		t.Error("a refused EncryptFile changed the file")
	}
}

func TestEncryptFileWithoutSecrets(t *testing.T) {
	s := newSopsRepo(t)
	for name, content := range map[string]string{
		"none":  tenantFile("spawn", "none", codexSpec...),
		"empty": tenantFile("spawn", "empty", append(slices.Clone(codexSpec), "secrets: {}")...),
		"null":  tenantFile("spawn", "null", append(slices.Clone(codexSpec), "secrets:")...),
	} {
		rel := "tenants/spawn/" + name + ".yaml"
		s.write(t, rel, content, 0o644)
		err := EncryptFile(s.path(rel), s.dir)
		if !errors.Is(err, ErrNoSecrets) {
			t.Errorf("%s: EncryptFile = %v, want ErrNoSecrets", name, err)
		}
		if got := string(s.read(t, rel)); got != content {
			t.Errorf("%s: the file changed:\n%s", name, got)
		}
	}
}

func TestEncryptFileConfigErrors(t *testing.T) {
	s := newSopsRepo(t)
	// No creation rule matches a file outside tenants/.
	s.write(t, "other/ada.yaml", plainTenant("ada"), 0o644)
	if err := EncryptFile(s.path("other/ada.yaml"), s.dir); err == nil {
		t.Error("EncryptFile outside tenants/ succeeded")
	} else if strings.Contains(err.Error(), "CANARY") {
		t.Errorf("error leaks a secret: %v", err)
	}
	if got := string(s.read(t, "other/ada.yaml")); got != plainTenant("ada") {
		t.Error("a failed EncryptFile changed the file")
	}
	// The .sops.yaml is searched from the file up to the repository root, not beyond.
	if p, err := SopsConfigFile(s.path("tenants/spawn/ada.yaml"), s.dir); err != nil || p != s.path(".sops.yaml") {
		t.Errorf("SopsConfigFile = %q, %v", p, err)
	}
	inner := filepath.Join(s.dir, "tenants")
	if _, err := SopsConfigFile(s.path("tenants/spawn/ada.yaml"), inner); err == nil {
		t.Error("SopsConfigFile looked above stopAt")
	}
	bare := writeRepo(t, map[string]string{"tenants/spawn/ada.yaml": plainTenant("ada")})
	if err := EncryptFile(filepath.Join(bare, "tenants/spawn/ada.yaml"), bare); err == nil || !strings.Contains(err.Error(), "no .sops.yaml") {
		t.Errorf("EncryptFile without .sops.yaml = %v", err)
	}
}

// encryptTenant writes plainTenant(id) to tenants/spawn/<id>.yaml and encrypts it.
func (s *sopsRepo) encryptTenant(t *testing.T, id string) (rel string, enc []byte) {
	t.Helper()
	rel = "tenants/spawn/" + id + ".yaml"
	s.write(t, rel, plainTenant(id), 0o644)
	if err := EncryptFile(s.path(rel), s.dir); err != nil {
		t.Fatal(err)
	}
	return rel, s.read(t, rel)
}

func assertNoSecretIn(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, canary) || strings.Contains(s, telegramCanary) || strings.Contains(s, "CANARY") {
		t.Errorf("%s leaks a secret: %s", what, s)
	}
}

func TestMacOnlyEncrypted(t *testing.T) {
	s := newSopsRepo(t)
	_, enc := s.encryptTenant(t, "ada")

	t.Run("plain field edited", func(t *testing.T) {
		edited := bytes.Replace(enc, []byte("- writing@0.1.0"), []byte("- research@0.1.0"), 1)
		edited = bytes.Replace(edited, []byte("model: claude-sonnet-4-5"), []byte("model: claude-opus-4"), 1)
		if bytes.Equal(edited, enc) {
			t.Fatal("the edit did not apply")
		}
		vals, err := DecryptSecrets(edited, s.ids)
		if err != nil {
			t.Fatalf("a plain-field edit made the file undecryptable: %v", err)
		}
		if vals["ANTHROPIC_API_KEY"].Reveal() != canary {
			t.Error("wrong value")
		}
	})
	t.Run("ciphertext tampered", func(t *testing.T) {
		m := encLine.FindSubmatch(enc)
		if m == nil {
			t.Fatal("no ENC line")
		}
		value := m[2]
		i := bytes.Index(value, []byte("data:")) + len("data:")
		tampered := bytes.Clone(value)
		if tampered[i] == 'A' {
			tampered[i] = 'B'
		} else {
			tampered[i] = 'A'
		}
		_, err := DecryptSecrets(bytes.Replace(enc, value, tampered, 1), s.ids)
		if err == nil {
			t.Fatal("a tampered ciphertext decrypted")
		}
		assertNoSecretIn(t, "the error", err.Error())
	})
	t.Run("secret removed", func(t *testing.T) {
		lines := strings.Split(string(enc), "\n")
		lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "TELEGRAM_BOT_TOKEN: ENC[") })
		_, err := DecryptSecrets([]byte(strings.Join(lines, "\n")), s.ids)
		if err == nil || !strings.Contains(err.Error(), "MAC does not match") {
			t.Fatalf("removing a secret: err = %v, want a MAC mismatch", err)
		}
		assertNoSecretIn(t, "the error", err.Error())
	})
	t.Run("ciphertext type changed", func(t *testing.T) {
		for _, typ := range []string{"int", "float", "bool", "time"} {
			tampered := bytes.ReplaceAll(enc, []byte(",type:str]"), []byte(",type:"+typ+"]"))
			_, err := DecryptSecrets(tampered, s.ids)
			if err == nil {
				t.Errorf("type:%s: decrypted", typ)
				continue
			}
			assertNoSecretIn(t, "type:"+typ+": the error", err.Error())
		}
		// And through the loader, where it would land in a Problem.
		ts := newSopsRepo(t)
		rel, tenc := ts.encryptTenant(t, "ada")
		ts.write(t, rel, string(bytes.ReplaceAll(tenc, []byte(",type:str]"), []byte(",type:int]"))), 0o644)
		r, err := Load(ts.dir, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r.Decrypt(ts.ids)
		if !r.Held(r.Tenant("ada")) {
			t.Error("a tenant whose secrets do not decrypt is not held")
		}
		for _, p := range r.Problems {
			assertNoSecretIn(t, "a problem", p.String())
		}
	})
	t.Run("Repo.Decrypt holds a tampered tenant only", func(t *testing.T) {
		_, good := s.encryptTenant(t, "good")
		m := encLine.FindSubmatch(good)
		bad := bytes.Replace(good, m[2], bytes.Replace(m[2], []byte("data:"), []byte("data:AAAA"), 1), 1)
		bad = bytes.ReplaceAll(bad, []byte("name: good"), []byte("name: bad"))
		s.write(t, "tenants/spawn/bad.yaml", string(bad), 0o644)
		r, err := Load(s.dir, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Problems.HasErrors() {
			t.Fatalf("load: %s", r.Problems)
		}
		r.Decrypt(s.ids)
		for _, p := range r.Problems {
			assertNoSecretIn(t, "a problem", p.String())
		}
		if got := strs(r.Problems, true); len(got) != 1 || !strings.HasPrefix(got[0], "tenants/spawn/bad.yaml:17:1: secrets: cannot decrypt: ") {
			t.Errorf("problems = %q", got)
		}
		if !r.Held(r.Tenant("bad")) || r.Held(r.Tenant("good")) || r.Held(r.Tenant("ada")) {
			t.Error("only the tampered tenant must be held")
		}
		if r.Tenant("bad").SecretValues != nil || r.Tenant("good").SecretValues["ANTHROPIC_API_KEY"].Reveal() != canary {
			t.Error("SecretValues wrong")
		}
	})
}

func TestDecryptWrongKey(t *testing.T) {
	s := newSopsRepo(t)
	_, enc := s.encryptTenant(t, "ada")
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ParseIdentities(other.String(), "SOPS_AGE_KEY")
	if err != nil {
		t.Fatal(err)
	}
	_, err = DecryptSecrets(enc, ids)
	if err == nil {
		t.Fatal("decrypted with the wrong key")
	}
	msg := err.Error()
	assertNoSecretIn(t, "the error", msg)
	if !strings.Contains(msg, s.id.Recipient().String()) || !strings.Contains(msg, "SOPS_AGE_KEY") {
		t.Errorf("the error should name the file's recipients and where the keys came from: %s", msg)
	}
	if strings.Contains(msg, other.String()) || strings.Contains(msg, s.id.String()) {
		t.Errorf("the error names a private key: %s", msg)
	}
	if _, err := DecryptSecrets(enc, nil); !errors.Is(err, ErrNoIdentities) {
		t.Errorf("DecryptSecrets(nil ids) = %v, want ErrNoIdentities", err)
	}
	if _, err := DecryptSecrets([]byte(plainTenant("ada")), s.ids); err == nil {
		t.Error("DecryptSecrets of a plaintext file succeeded")
	} else {
		assertNoSecretIn(t, "the error", err.Error())
	}

	r, err := Load(s.dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.Decrypt(nil)
	want := "tenants/spawn/ada.yaml:17:1: secrets: cannot decrypt: " + ErrNoIdentities.Error()
	if got := strs(r.Problems, true); !slices.Equal(got, []string{want}) {
		t.Errorf("Decrypt without keys\n%s", diffLines([]string{want}, got))
	}
}

func TestParseIdentities(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	ids, err := ParseIdentities("# created: today\n# public key: "+id.Recipient().String()+"\n"+id.String()+"\n", "f")
	if err != nil || ids.From != "f" {
		t.Fatalf("ParseIdentities = %v, %v", ids, err)
	}
	bogus := "AGE-SECRET-KEY-1" + strings.Repeat("Q", 58)
	_, err = ParseIdentities(bogus, "SOPS_AGE_KEY")
	if err == nil {
		t.Fatal("a bogus key parsed")
	}
	if strings.Contains(err.Error(), bogus) || !strings.Contains(err.Error(), "SOPS_AGE_KEY") {
		t.Errorf("error = %v; want it to name the source and not quote the key", err)
	}
}

// sopsEnv is the environment the sops CLI runs in: no key but the given one, no user
// configuration.
func sopsEnv(t *testing.T, keyFile string) []string {
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "PATH=" + os.Getenv("PATH")}
	if keyFile != "" {
		env = append(env, "SOPS_AGE_KEY_FILE="+keyFile)
	}
	return env
}

func runSops(t *testing.T, dir, keyFile string, args ...string) (string, error) {
	t.Helper()
	sops := testenv.LookPath(t, "sops")
	cmd := exec.Command(sops, args...)
	cmd.Dir = dir
	cmd.Env = sopsEnv(t, keyFile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("sops %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), err
}

// TestSopsCLIDecryptsEncryptFile: a file EncryptFile wrote is a normal sops file.
func TestSopsCLIDecryptsEncryptFile(t *testing.T) {
	testenv.LookPath(t, "sops")
	s := newSopsRepo(t)
	rel, enc := s.encryptTenant(t, "ada")
	out, err := runSops(t, s.dir, s.keyFile, "-d", rel)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ANTHROPIC_API_KEY: " + canary, "TELEGRAM_BOT_TOKEN: " + telegramCanary, "# the key of the demo account", schemaComment, "- writing@0.1.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("sops -d output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "sops:") {
		t.Errorf("sops -d kept the metadata:\n%s", out)
	}
	// mac_only_encrypted as the CLI sees it: a plain edit keeps the file decryptable.
	edited := bytes.Replace(enc, []byte("- writing@0.1.0"), []byte("- research@0.1.0"), 1)
	s.write(t, rel, string(edited), 0o644)
	out, err = runSops(t, s.dir, s.keyFile, "-d", rel)
	if err != nil {
		t.Fatalf("sops -d after a plain edit: %v", err)
	}
	if !strings.Contains(out, "ANTHROPIC_API_KEY: "+canary) || !strings.Contains(out, "research@0.1.0") {
		t.Errorf("sops -d after a plain edit:\n%s", out)
	}
	// Without the key the CLI fails too (a sanity check of the environment above).
	if _, err := runSops(t, s.dir, "", "-d", rel); err == nil {
		t.Error("sops -d without a key succeeded: the test environment leaks a key")
	}
}

// TestLoadDecryptsSopsCLIFile: a file encrypted by `sops -e -i` loads and decrypts.
func TestLoadDecryptsSopsCLIFile(t *testing.T) {
	testenv.LookPath(t, "sops")
	s := newSopsRepo(t)
	const rel = "tenants/spawn/bob.yaml"
	s.write(t, rel, plainTenant("bob"), 0o644)
	if _, err := runSops(t, s.dir, "", "-e", "-i", rel); err != nil {
		t.Fatal(err)
	}
	enc := string(s.read(t, rel))
	if strings.Contains(enc, "CANARY") || !strings.Contains(enc, "mac_only_encrypted: true") || !strings.HasPrefix(enc, schemaComment) {
		t.Fatalf("unexpected sops output:\n%s", enc)
	}
	r, err := Load(s.dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 0 {
		t.Fatalf("load problems:\n%s", r.Problems)
	}
	keys, err := os.ReadFile(s.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ParseIdentities(string(keys), "key file")
	if err != nil {
		t.Fatal(err)
	}
	r.Decrypt(ids)
	if len(r.Problems) != 0 {
		t.Fatalf("decrypt problems:\n%s", r.Problems)
	}
	got := r.Tenant("bob").SecretValues
	if len(got) != 2 || got["ANTHROPIC_API_KEY"].Reveal() != canary || got["TELEGRAM_BOT_TOKEN"].Reveal() != telegramCanary {
		t.Errorf("SecretValues has %d entries, wrong values", len(got))
	}
	// And EncryptFile refuses a file sops already encrypted.
	if err := EncryptFile(s.path(rel), s.dir); !errors.Is(err, ErrAlreadyEncrypted) {
		t.Errorf("EncryptFile on a sops file = %v", err)
	}
}

func TestDecryptExample(t *testing.T) {
	key, err := os.ReadFile(filepath.Join(exampleDir, "demo.agekey"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ParseIdentities(string(key), "demo.agekey")
	if err != nil {
		t.Fatal(err)
	}
	r := loadExample(t)
	r.Decrypt(ids)
	if r.Problems.HasErrors() {
		t.Fatalf("decrypting the example:\n%s", r.Problems.Errors())
	}
	var plain []string
	for _, tn := range r.Tenants {
		if len(tn.SecretValues) != len(tn.Secrets) {
			t.Errorf("%s: %d of %d secrets decrypted", tn.Metadata.Name, len(tn.SecretValues), len(tn.Secrets))
		}
		for _, v := range tn.SecretValues {
			plain = append(plain, v.Reveal())
		}
	}
	if v := r.Tenant("mayaastral").SecretValues["ANTHROPIC_API_KEY"].Reveal(); !strings.HasPrefix(v, "sk-ant-demo-") {
		t.Errorf("mayaastral ANTHROPIC_API_KEY does not start with sk-ant-demo- (%d characters)", len(v))
	}
	for _, p := range r.Problems {
		for _, v := range plain {
			if strings.Contains(p.String(), v) {
				t.Errorf("a problem leaks a secret: %s", p)
			}
		}
	}
	if testing.Verbose() {
		t.Logf("%d example secrets decrypted", len(plain))
	}
}

func TestIdentitiesFromEnv(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("SOPS_AGE_KEY", "")
	t.Setenv("SOPS_AGE_KEY_FILE", "")

	s := newSopsRepo(t)
	_, enc := s.encryptTenant(t, "ada")
	decrypts := func(t *testing.T, ids *Identities) {
		t.Helper()
		vals, err := DecryptSecrets(enc, ids)
		if err != nil || vals["ANTHROPIC_API_KEY"].Reveal() != canary {
			t.Errorf("decrypt with identities from %s: %v", ids.From, err)
		}
	}

	ids, err := IdentitiesFromEnv()
	if ids != nil || err != nil {
		t.Fatalf("no key configured: IdentitiesFromEnv = %v, %v; want nil, nil", ids, err)
	}

	t.Setenv("SOPS_AGE_KEY", s.id.String())
	ids, err = IdentitiesFromEnv()
	if err != nil || ids == nil || ids.From != "SOPS_AGE_KEY" {
		t.Fatalf("SOPS_AGE_KEY: %+v, %v", ids, err)
	}
	decrypts(t, ids)

	t.Setenv("SOPS_AGE_KEY", "")
	t.Setenv("SOPS_AGE_KEY_FILE", s.keyFile)
	ids, err = IdentitiesFromEnv()
	if err != nil || ids == nil || ids.From != "SOPS_AGE_KEY_FILE" {
		t.Fatalf("SOPS_AGE_KEY_FILE: %+v, %v", ids, err)
	}
	decrypts(t, ids)

	other, _ := age.GenerateX25519Identity()
	t.Setenv("SOPS_AGE_KEY", other.String())
	ids, err = IdentitiesFromEnv()
	if err != nil || ids == nil || ids.From != "SOPS_AGE_KEY and SOPS_AGE_KEY_FILE" {
		t.Fatalf("both: %+v, %v", ids, err)
	}
	decrypts(t, ids) // the file's key is among them

	// The user's keys.txt, as sops finds it, when SOPS_AGE_KEY_FILE is not set.
	t.Setenv("SOPS_AGE_KEY", "")
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	configDir, err := os.UserConfigDir() // under home on every OS, after the Setenv above
	if err != nil {
		t.Fatal(err)
	}
	userKeys := filepath.Join(configDir, "sops", "age", "keys.txt")
	if err := os.MkdirAll(filepath.Dir(userKeys), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(userKeys, []byte(s.id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err = IdentitiesFromEnv()
	if err != nil || ids == nil || ids.From != "~/.config/sops/age/keys.txt" {
		t.Fatalf("keys.txt: %+v, %v", ids, err)
	}
	decrypts(t, ids)

	// Errors name where the bad key came from and never quote it.
	bogus := "AGE-SECRET-KEY-1" + strings.Repeat("Q", 58)
	t.Setenv("SOPS_AGE_KEY", bogus)
	if _, err := IdentitiesFromEnv(); err == nil || !strings.Contains(err.Error(), "SOPS_AGE_KEY") || strings.Contains(err.Error(), bogus) {
		t.Errorf("bad SOPS_AGE_KEY: %v", err)
	}
	t.Setenv("SOPS_AGE_KEY", "")
	t.Setenv("SOPS_AGE_KEY_FILE", filepath.Join(home, "missing.txt"))
	if _, err := IdentitiesFromEnv(); err == nil || !strings.Contains(err.Error(), "SOPS_AGE_KEY_FILE") {
		t.Errorf("missing SOPS_AGE_KEY_FILE: %v", err)
	}
}
