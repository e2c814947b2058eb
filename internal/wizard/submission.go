package wizard

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/firemountain/hermes-gitops/schema"
)

// Submission is the body of POST /v1/submissions: what a control plane's sign-up wizard
// collected. Secret values are schema.Secret, so they print as "[secret]" wherever they
// end up by mistake.
type Submission struct {
	AgentName string        `json:"agentName"`
	TenantID  string        `json:"tenantId,omitempty"`
	App       string        `json:"app"`
	Owner     Owner         `json:"owner"`
	Provider  Provider      `json:"provider"`
	APIKey    schema.Secret `json:"apiKey,omitempty"`
	Bundles   *[]string     `json:"bundles,omitempty"`
	Skills    []string      `json:"skills,omitempty"`
	Telegram  *Telegram     `json:"telegram,omitempty"`
	Storage   *Storage      `json:"storage,omitempty"`
	Worker    string        `json:"worker,omitempty"`
}

// Owner is the person the tenant belongs to.
type Owner struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// Provider is the model provider and, optionally, the model.
type Provider struct {
	ID    string `json:"id"`
	Model string `json:"model,omitempty"`
}

// Telegram is the optional Telegram bot of the tenant. Allowed user ids are numbers; a
// string of digits is accepted too, because JavaScript cannot hold every int64.
type Telegram struct {
	BotToken     schema.Secret     `json:"botToken"`
	AllowedUsers []json.RawMessage `json:"allowedUsers"`
}

// Storage asks for a dedicated S3 bucket with a quota such as 5Gi.
type Storage struct {
	Quota string `json:"quota"`
}

// FieldError is one problem with one field of a submission. Field is the JSON path in
// the submission ("provider.id", "telegram.allowedUsers[1]"); empty when the problem is
// not about one field. Messages never contain a secret value.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Limits of a submission.
const (
	MaxBodyBytes    = 64 << 10
	maxAgentNameLen = 100
	maxListLen      = 50
	maxSecretLen    = 1024
)

var (
	nameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	modelRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$`)
	botTokenRE = regexp.MustCompile(`^[0-9]{3,20}:[A-Za-z0-9_-]{20,100}$`)
	userIDRE   = regexp.MustCompile(`^[1-9][0-9]{0,18}$`)
)

// decodeSubmission parses a body strictly: unknown fields, trailing data and wrong types
// are errors.
func decodeSubmission(body []byte) (*Submission, []FieldError) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var s Submission
	if err := dec.Decode(&s); err != nil {
		return nil, []FieldError{jsonError(err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, []FieldError{{Message: "the body must hold exactly one JSON object"}}
	}
	return &s, nil
}

// jsonError phrases a decoding error without quoting the input (it could be a secret).
func jsonError(err error) FieldError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return FieldError{Message: fmt.Sprintf("invalid JSON at byte %d", syn.Offset)}
	case errors.As(err, &typ):
		return FieldError{Field: typ.Field, Message: "expected " + jsonKind(typ.Type.Kind().String()) + ", got a JSON " + typ.Value}
	case errors.Is(err, io.EOF):
		return FieldError{Message: "empty body: expected a JSON object"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return FieldError{Message: "invalid JSON: unexpected end of the body"}
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ := strconv.Unquote(f)
		return FieldError{Field: name, Message: "unknown field"}
	}
	return FieldError{Message: "invalid JSON"}
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "a list"
	case "struct", "ptr":
		return "an object"
	}
	return k
}

// checked is a submission that passed the request-level checks, with its telegram ids
// parsed.
type checked struct {
	*Submission
	provider      schema.ProviderInfo
	telegramUsers []int64
}

// check validates what schema cannot see (the shape of the request, secret formats, the
// worker policy) and trims what people type. The schema package validates the tenant
// file built from it.
func check(s *Submission, defaultWorker string, allowedWorkers []string) (*checked, []FieldError) {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	s.AgentName = strings.TrimSpace(s.AgentName)
	s.TenantID = strings.TrimSpace(s.TenantID)
	s.Owner.Email = strings.TrimSpace(s.Owner.Email)
	s.Owner.Name = strings.TrimSpace(s.Owner.Name)
	s.APIKey = schema.Secret(strings.TrimSpace(s.APIKey.Reveal()))

	switch {
	case s.AgentName == "":
		add("agentName", "required: the agent's name (the tenant id is derived from it)")
	case utf8.RuneCountInString(s.AgentName) > maxAgentNameLen:
		add("agentName", "longer than %d characters", maxAgentNameLen)
	case !printable(s.AgentName):
		add("agentName", "must not contain control characters")
	}
	if s.TenantID != "" && !ValidTenantID(s.TenantID) {
		add("tenantId", "%q is not a tenant id: 3-40 lowercase letters, digits or dashes, starting and ending with a letter or digit (leave it out to derive one from agentName)", s.TenantID)
	}
	switch {
	case s.App == "":
		add("app", "required")
	case !nameRE.MatchString(s.App):
		add("app", "%q is not an app name", s.App)
	}
	switch {
	case s.Owner.Email == "":
		add("owner.email", "required")
	case len(s.Owner.Email) > 254 || !strings.Contains(s.Owner.Email, "@") || strings.ContainsFunc(s.Owner.Email, unicode.IsSpace) || !printable(s.Owner.Email):
		add("owner.email", "not an email address")
	}
	if utf8.RuneCountInString(s.Owner.Name) > maxAgentNameLen || !printable(s.Owner.Name) {
		add("owner.name", "at most %d printable characters", maxAgentNameLen)
	}

	c := &checked{Submission: s}
	prov, known := schema.LookupProvider(s.Provider.ID)
	switch {
	case s.Provider.ID == "":
		add("provider.id", "required; one of %s", strings.Join(schema.ProviderIDs(), ", "))
	case !known:
		add("provider.id", "unknown provider %q; known: %s", s.Provider.ID, strings.Join(schema.ProviderIDs(), ", "))
	}
	c.provider = prov
	if s.Provider.Model != "" && !modelRE.MatchString(s.Provider.Model) {
		add("provider.model", "%q is not a model name", s.Provider.Model)
	}
	switch {
	case !known:
	case prov.EnvKey == "" && s.APIKey != "":
		add("apiKey", "provider %s signs in with OAuth after the tenant is created; send no apiKey", prov.ID)
	case prov.EnvKey != "" && s.APIKey == "":
		add("apiKey", "provider %s needs an API key", prov.ID)
	case prov.EnvKey != "":
		if msg := secretProblem(s.APIKey.Reveal()); msg != "" {
			add("apiKey", "%s", msg)
		}
	}

	if s.Bundles != nil {
		if len(*s.Bundles) > maxListLen {
			add("bundles", "at most %d bundles", maxListLen)
		}
		for i, b := range *s.Bundles {
			if b == "" || len(b) > 200 || !printable(b) {
				add(fmt.Sprintf("bundles[%d]", i), "not a bundle reference (name@version)")
			}
		}
	}
	if len(s.Skills) > maxListLen {
		add("skills", "at most %d skills", maxListLen)
	}
	for i, sk := range s.Skills {
		if sk == "" || len(sk) > 200 || !printable(sk) {
			add(fmt.Sprintf("skills[%d]", i), "not a skill name (name or name@version)")
		}
	}

	if t := s.Telegram; t != nil {
		switch tok := t.BotToken.Reveal(); {
		case tok == "":
			add("telegram.botToken", "required with telegram")
		case !botTokenRE.MatchString(tok):
			add("telegram.botToken", "not a Telegram bot token (digits, a colon, then the secret part, as BotFather gives it)")
		}
		if len(t.AllowedUsers) == 0 {
			add("telegram.allowedUsers", "list at least one numeric Telegram user id: without it nobody may talk to the bot")
		}
		if len(t.AllowedUsers) > maxListLen {
			add("telegram.allowedUsers", "at most %d users", maxListLen)
		}
		for i, raw := range t.AllowedUsers {
			id, ok := telegramID(raw)
			if !ok {
				add(fmt.Sprintf("telegram.allowedUsers[%d]", i), "must be a numeric Telegram user id (a positive integer)")
				continue
			}
			c.telegramUsers = append(c.telegramUsers, id)
		}
	}
	if s.Storage != nil && s.Storage.Quota == "" {
		add("storage.quota", "required with storage, e.g. 5Gi")
	}

	switch {
	case s.Worker == "":
		s.Worker = defaultWorker
	case !nameRE.MatchString(s.Worker):
		add("worker", "%q is not a worker name", s.Worker)
	case s.Worker != defaultWorker && !contains(allowedWorkers, s.Worker):
		add("worker", "worker %q may not be chosen by a submission; leave worker out to use the default", s.Worker)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// secretProblem describes what is wrong with a secret value without quoting it.
func secretProblem(v string) string {
	switch {
	case len(v) > maxSecretLen:
		return fmt.Sprintf("longer than %d characters", maxSecretLen)
	case strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		return "must not contain spaces, line breaks or control characters"
	}
	return ""
}

func telegramID(raw json.RawMessage) (int64, bool) {
	s := string(raw)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false
		}
	}
	if !userIDRE.MatchString(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' })
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// fingerprint is a keyed hash of everything in the submission, secrets included, for
// recognising a retried submission. The key lives in memory only, so the hash cannot be
// used to guess a secret offline.
func (c *checked) fingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	enc := json.NewEncoder(m)
	_ = enc.Encode([]any{c.AgentName, c.TenantID, c.App, c.Owner, c.Provider, c.APIKey.Reveal(), c.Bundles, c.Skills,
		c.telegramUsers, c.Telegram != nil, c.Storage, c.Worker})
	if c.Telegram != nil {
		_ = enc.Encode(c.Telegram.BotToken.Reveal())
	}
	return hex.EncodeToString(m.Sum(nil))
}

// tenantFile is the layout of a tenant file the wizard writes.
type tenantFile struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   tenantMeta        `yaml:"metadata"`
	Spec       tenantSpec        `yaml:"spec"`
	Secrets    map[string]string `yaml:"secrets,omitempty"`
}

type tenantMeta struct {
	Name string `yaml:"name"`
	App  string `yaml:"app"`
}

type tenantSpec struct {
	Worker   string          `yaml:"worker"`
	Owner    Owner           `yaml:"owner"`
	Provider tenantProvider  `yaml:"provider"`
	Bundles  *[]string       `yaml:"bundles,omitempty"`
	Skills   []string        `yaml:"skills,omitempty"`
	Telegram *tenantTelegram `yaml:"telegram,omitempty"`
	Storage  *tenantStorage  `yaml:"storage,omitempty"`
	State    string          `yaml:"state"`
}

type tenantProvider struct {
	ID    string `yaml:"id"`
	Model string `yaml:"model,omitempty"`
}

type tenantTelegram struct {
	AllowedUsers []int64 `yaml:"allowedUsers,flow"`
}

type tenantStorage struct {
	S3 struct {
		Quota string `yaml:"quota"`
	} `yaml:"s3"`
}

// tenantYAML renders the plaintext tenant file, secrets included: it must only ever be
// passed to the encryption and then dropped.
func (c *checked) tenantYAML(id string) ([]byte, error) {
	f := tenantFile{
		APIVersion: schema.APIVersion,
		Kind:       schema.KindTenant,
		Metadata:   tenantMeta{Name: id, App: c.App},
		Spec: tenantSpec{
			Worker:   c.Worker,
			Owner:    c.Owner,
			Provider: tenantProvider{ID: c.Provider.ID, Model: c.Provider.Model},
			Bundles:  c.Bundles,
			Skills:   c.Skills,
			State:    schema.StateActive,
		},
		Secrets: map[string]string{},
	}
	if c.provider.EnvKey != "" && c.APIKey != "" {
		f.Secrets[c.provider.EnvKey] = c.APIKey.Reveal()
	}
	if c.Telegram != nil {
		f.Spec.Telegram = &tenantTelegram{AllowedUsers: c.telegramUsers}
		f.Secrets[schema.TelegramTokenKey] = c.Telegram.BotToken.Reveal()
	}
	if c.Storage != nil {
		f.Spec.Storage = &tenantStorage{}
		f.Spec.Storage.S3.Quota = c.Storage.Quota
	}
	var b bytes.Buffer
	b.WriteString("# yaml-language-server: $schema=https://raw.githubusercontent.com/firemountain/hermes-gitops/main/docs/tenant.schema.json\n")
	// strconv.Quote escapes every line break and control character: the name cannot
	// leave the comment.
	fmt.Fprintf(&b, "# Added by the sign-up wizard (hermesctl serve) for the agent %s.\n", strconv.Quote(c.AgentName))
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("render tenant %s: %w", id, err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// fieldFor maps a schema problem in the new tenant file to the submission field it is
// about, and rewrites messages that speak of the file's secrets: map in terms of the
// request.
func (c *checked) fieldFor(p schema.Problem) FieldError {
	f := p.Field
	msg := p.Message
	switch {
	case f == "metadata.name":
		return FieldError{Field: "tenantId", Message: msg}
	case f == "metadata.app":
		return FieldError{Field: "app", Message: msg}
	case f == "secrets" || strings.HasPrefix(f, "secrets."):
		switch {
		case c.provider.EnvKey != "" && strings.Contains(msg+f, c.provider.EnvKey):
			return FieldError{Field: "apiKey", Message: strings.ReplaceAll(msg, "secrets."+c.provider.EnvKey, "an apiKey")}
		case strings.Contains(msg+f, schema.TelegramTokenKey):
			return FieldError{Field: "telegram.botToken", Message: strings.ReplaceAll(msg, "secrets."+schema.TelegramTokenKey, "telegram.botToken")}
		}
		return FieldError{Field: "", Message: msg}
	case f == "spec.storage.s3.quota" || f == "spec.storage.s3" || f == "spec.storage":
		return FieldError{Field: "storage.quota", Message: msg}
	case strings.HasPrefix(f, "spec."):
		return FieldError{Field: strings.TrimPrefix(f, "spec."), Message: msg}
	}
	return FieldError{Field: f, Message: msg}
}
