package wizard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request signing. A client signs every /v1 request with a shared secret:
//
//	X-Hermes-Timestamp: <unix seconds>
//	X-Hermes-Signature: sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>
//
// The body of a GET is empty. Several secrets may be valid at once, so that a secret can
// be rotated without downtime.
const (
	HeaderTimestamp = "X-Hermes-Timestamp"
	HeaderSignature = "X-Hermes-Signature"
	signaturePrefix = "sha256="

	// MaxAge is how old a signed request may be; MaxSkew how far in the future its
	// timestamp may lie (clock skew between the control plane and this server).
	MaxAge  = 5 * time.Minute
	MaxSkew = time.Minute

	// MinSecretLen is the shortest shared secret accepted.
	MinSecretLen = 16
)

// ParseSecrets reads shared secrets, one per line (or comma-separated when sep is ","):
// blank lines and lines starting with # are ignored, surrounding space is trimmed.
// Errors name the line, never the secret.
func ParseSecrets(text, sep string) ([][]byte, error) {
	var out [][]byte
	for i, s := range strings.Split(text, sep) {
		s = strings.TrimSpace(s)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("secret %d is shorter than %d characters; generate one with 'openssl rand -hex 32'", i+1, MinSecretLen)
		}
		out = append(out, []byte(s))
	}
	if len(out) == 0 {
		return nil, errors.New("no shared secret")
	}
	return out, nil
}

// Sign returns the X-Hermes-Signature value of a body signed at a timestamp (unix
// seconds) with a secret. Clients in Go, and the tests, use it.
func Sign(secret []byte, timestamp string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// authError is a 401: the message says what is wrong without revealing anything about
// the secrets.
type authError struct{ msg string }

func (e authError) Error() string { return e.msg }

// verify checks a request's signature against every secret in constant time and its
// timestamp against the clock.
func verify(h http.Header, body []byte, secrets [][]byte, now time.Time) error {
	ts, sig := h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if ts == "" || sig == "" {
		return authError{"missing " + HeaderTimestamp + " or " + HeaderSignature + " header"}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(ts) > 12 {
		return authError{HeaderTimestamp + " must be unix seconds"}
	}
	at := time.Unix(sec, 0)
	switch {
	case now.Sub(at) > MaxAge:
		return authError{"request timestamp is more than 5 minutes old"}
	case at.Sub(now) > MaxSkew:
		return authError{"request timestamp is more than 1 minute in the future"}
	}
	hexSig, ok := strings.CutPrefix(sig, signaturePrefix)
	if !ok {
		return authError{HeaderSignature + " must be sha256=<hex>"}
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return authError{HeaderSignature + " must be sha256=<hex>"}
	}
	match := false
	for _, s := range secrets {
		// Check every secret, so the time taken does not say which one matched.
		if hmac.Equal(got, mac(s, ts, body)) {
			match = true
		}
	}
	if !match {
		return authError{"signature does not match"}
	}
	return nil
}
