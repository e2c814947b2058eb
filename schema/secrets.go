package schema

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/cmd/sops/common"
	"github.com/getsops/sops/v3/cmd/sops/formats"
	sopsconfig "github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/getsops/sops/v3/version"
	"google.golang.org/grpc"

	"github.com/firemountain/hermes-gitops/internal/atomicfile"
)

// Secret is a decrypted secret value. It prints, logs and marshals as "[secret]" so that a
// value cannot leak through fmt, a logger or an encoder by accident; Reveal is the one
// explicit way to the plaintext.
type Secret string

const redacted = "[secret]"

// Reveal returns the plaintext. Call it only where the value is written to its
// destination (the worker's .env).
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string                { return redacted }
func (s Secret) GoString() string              { return redacted }
func (s Secret) MarshalJSON() ([]byte, error)  { return []byte(`"` + redacted + `"`), nil }
func (s Secret) MarshalText() ([]byte, error)  { return []byte(redacted), nil }
func (s Secret) MarshalYAML() (any, error)     { return redacted, nil }
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }

// encryptedValueRE matches a value encrypted by sops.
var encryptedValueRE = regexp.MustCompile(`^ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:str\]$`)

// IsEncryptedValue reports whether a YAML value is sops ciphertext.
func IsEncryptedValue(v string) bool { return encryptedValueRE.MatchString(v) }

// Identities are the age private keys secrets are decrypted with.
type Identities struct {
	ids []age.Identity
	// From says where the keys came from, for error messages.
	From string
}

// ParseIdentities reads age identities in the format of an age key file ("AGE-SECRET-KEY-1…"
// lines, # comments).
func ParseIdentities(text, from string) (*Identities, error) {
	ids, err := age.ParseIdentities(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("age identities from %s: %w", from, err)
	}
	return &Identities{ids: ids, From: from}, nil
}

// IdentitiesFromEnv loads age identities the way the sops CLI does: SOPS_AGE_KEY (keys
// inline) and SOPS_AGE_KEY_FILE (a key file), then the user's sops/age/keys.txt. It
// returns nil and no error when none is configured.
func IdentitiesFromEnv() (*Identities, error) {
	var all []age.Identity
	var from []string
	if v := os.Getenv(sopsage.SopsAgeKeyEnv); v != "" {
		ids, err := ParseIdentities(v, sopsage.SopsAgeKeyEnv)
		if err != nil {
			return nil, err
		}
		all = append(all, ids.ids...)
		from = append(from, sopsage.SopsAgeKeyEnv)
	}
	file := os.Getenv(sopsage.SopsAgeKeyFileEnv)
	fileFrom := sopsage.SopsAgeKeyFileEnv
	if file == "" {
		if dir, err := os.UserConfigDir(); err == nil {
			file, fileFrom = filepath.Join(dir, "sops", "age", "keys.txt"), "~/.config/sops/age/keys.txt"
			if _, err := os.Stat(file); err != nil {
				file = ""
			}
		}
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read age keys (%s): %w", fileFrom, err)
		}
		ids, err := ParseIdentities(string(data), fileFrom)
		if err != nil {
			return nil, err
		}
		all = append(all, ids.ids...)
		from = append(from, fileFrom)
	}
	if len(all) == 0 {
		return nil, nil
	}
	return &Identities{ids: all, From: strings.Join(from, " and ")}, nil
}

// ErrNoIdentities means secrets cannot be decrypted because no age key is configured.
var ErrNoIdentities = errors.New("no age private key configured: set SOPS_AGE_KEY_FILE (a key file) or SOPS_AGE_KEY")

// DecryptSecrets decrypts the secrets of a sops-encrypted tenant file. It verifies the
// sops MAC, so a tampered file is refused. Errors never contain a secret value.
func DecryptSecrets(data []byte, ids *Identities) (map[string]Secret, error) {
	if ids == nil || len(ids.ids) == 0 {
		return nil, ErrNoIdentities
	}
	store := common.StoreForFormat(formats.Yaml, sopsconfig.NewStoresConfig())
	tree, err := store.LoadEncryptedFile(data)
	if err != nil {
		return nil, fmt.Errorf("read sops metadata: %w", err)
	}
	key, err := tree.Metadata.GetDataKeyWithKeyServices([]keyservice.KeyServiceClient{ageKeyService{ids: ids}}, nil)
	if err != nil {
		return nil, fmt.Errorf("no age key in %s can decrypt this file (it is encrypted for %s)", ids.From, recipients(tree.Metadata))
	}
	cipher := aes.NewCipher()
	mac, err := tree.Decrypt(key, cipher)
	if err != nil {
		// sops' error can quote the decrypted value (a tampered type: field makes it
		// parse the plaintext as a number), so it is never passed on.
		return nil, errors.New("a secret does not decrypt with the file's data key: it was edited without sops (re-create it with 'sops edit')")
	}
	stored, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, key, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil || stored != mac {
		return nil, errors.New("the file's sops MAC does not match its content: it was edited without sops (re-create the secrets with 'sops edit')")
	}
	out := map[string]Secret{}
	for _, item := range tree.Branches[0] {
		if item.Key != "secrets" {
			continue
		}
		branch, ok := item.Value.(sops.TreeBranch)
		if !ok {
			return nil, errors.New("secrets: expected a mapping")
		}
		for _, kv := range branch {
			k, ok := kv.Key.(string)
			if !ok {
				continue // a comment
			}
			v, ok := kv.Value.(string)
			if !ok {
				return nil, fmt.Errorf("secrets.%s: expected a string value", k)
			}
			out[k] = Secret(v)
		}
	}
	return out, nil
}

func recipients(m sops.Metadata) string {
	var rs []string
	for _, g := range m.KeyGroups {
		for _, k := range g {
			rs = append(rs, k.ToString())
		}
	}
	if len(rs) == 0 {
		return "no recipient"
	}
	return strings.Join(rs, ", ")
}

// ageKeyService is a sops key service that decrypts data keys with explicit identities
// instead of reading the process environment, so that several repositories and tests can
// decrypt with different keys in one process. Encryption needs only public keys.
type ageKeyService struct{ ids *Identities }

func (s ageKeyService) Encrypt(ctx context.Context, in *keyservice.EncryptRequest, _ ...grpc.CallOption) (*keyservice.EncryptResponse, error) {
	ak := in.GetKey().GetAgeKey()
	if ak == nil {
		return nil, errors.New("only age keys are supported")
	}
	mk, err := sopsage.MasterKeyFromRecipient(ak.Recipient)
	if err != nil {
		return nil, err
	}
	if err := mk.Encrypt(in.Plaintext); err != nil {
		return nil, err
	}
	return &keyservice.EncryptResponse{Ciphertext: mk.EncryptedDataKey()}, nil
}

func (s ageKeyService) Decrypt(ctx context.Context, in *keyservice.DecryptRequest, _ ...grpc.CallOption) (*keyservice.DecryptResponse, error) {
	ak := in.GetKey().GetAgeKey()
	if ak == nil {
		return nil, errors.New("only age keys are supported")
	}
	mk := &sopsage.MasterKey{Recipient: ak.Recipient, EncryptedKey: string(in.Ciphertext)}
	if s.ids != nil {
		sopsage.ParsedIdentities(s.ids.ids).ApplyToMasterKey(mk)
	}
	pt, err := mk.Decrypt()
	if err != nil {
		return nil, err
	}
	return &keyservice.DecryptResponse{Plaintext: pt}, nil
}

// SopsConfigFile finds the .sops.yaml that governs a file, searching from its directory up
// to and including stopAt (the repository root).
func SopsConfigFile(file, stopAt string) (string, error) {
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return "", err
	}
	stop, err := filepath.Abs(stopAt)
	if err != nil {
		return "", err
	}
	for {
		for _, name := range []string{".sops.yaml", ".sops.yml"} {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		if dir == stop || dir == filepath.Dir(dir) {
			return "", fmt.Errorf("no .sops.yaml found between %s and %s", filepath.Dir(file), stopAt)
		}
		dir = filepath.Dir(dir)
	}
}

// EncryptYAML encrypts a tenant file's secrets with sops for the recipients of the
// creation rule in sopsConfig that matches path (the file's path; its content is data and
// never touches disk here). Everything else stays plain, comments included.
func EncryptYAML(data []byte, sopsConfig, path string) ([]byte, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	conf, err := sopsconfig.LoadCreationRuleForFile(sopsConfig, abs, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sopsConfig, err)
	}
	if conf == nil || len(conf.KeyGroups) == 0 {
		return nil, fmt.Errorf("%s: no creation rule with recipients matches %s", sopsConfig, path)
	}
	stores, err := sopsconfig.LoadStoresConfig(sopsConfig)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sopsConfig, err)
	}
	store := common.StoreForFormat(formats.Yaml, stores)
	branches, err := store.LoadPlainFile(data)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if len(branches) == 0 {
		return nil, errors.New("the file is empty")
	}
	if store.HasSopsTopLevelKey(branches[0]) {
		return nil, ErrAlreadyEncrypted
	}
	if !hasSecrets(branches[0]) {
		return nil, ErrNoSecrets
	}
	tree := sops.Tree{
		Branches: branches,
		Metadata: sops.Metadata{
			KeyGroups:               conf.KeyGroups,
			UnencryptedSuffix:       conf.UnencryptedSuffix,
			EncryptedSuffix:         conf.EncryptedSuffix,
			UnencryptedRegex:        conf.UnencryptedRegex,
			EncryptedRegex:          conf.EncryptedRegex,
			UnencryptedCommentRegex: conf.UnencryptedCommentRegex,
			EncryptedCommentRegex:   conf.EncryptedCommentRegex,
			MACOnlyEncrypted:        conf.MACOnlyEncrypted,
			Version:                 version.Version,
			ShamirThreshold:         conf.ShamirThreshold,
		},
		FilePath: abs,
	}
	dataKey, errs := tree.GenerateDataKeyWithKeyServices([]keyservice.KeyServiceClient{ageKeyService{}})
	if len(errs) > 0 {
		return nil, fmt.Errorf("encrypt the data key: %v", errors.Join(errs...))
	}
	if err := common.EncryptTree(common.EncryptTreeOpts{DataKey: dataKey, Tree: &tree, Cipher: aes.NewCipher()}); err != nil {
		return nil, err
	}
	return store.EmitEncryptedFile(tree)
}

// ErrNoSecrets means a file has no secrets to encrypt; it is left as it is.
var ErrNoSecrets = errors.New("no secrets: map to encrypt")

func hasSecrets(b sops.TreeBranch) bool {
	for _, item := range b {
		if item.Key == "secrets" {
			sub, ok := item.Value.(sops.TreeBranch)
			return ok && len(sub) > 0
		}
	}
	return false
}

// ErrAlreadyEncrypted means a file already carries sops metadata.
var ErrAlreadyEncrypted = errors.New("already encrypted by sops (to change its secrets use 'sops edit FILE')")

// EncryptFile encrypts a tenant file's secrets in place, atomically. repoRoot bounds the
// search for .sops.yaml.
func EncryptFile(path, repoRoot string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	conf, err := SopsConfigFile(path, repoRoot)
	if err != nil {
		return err
	}
	out, err := EncryptYAML(data, conf, path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, out, info.Mode().Perm(), -1, -1)
}
