package alerts

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names (https://www.standardwebhooks.com/).
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// DefaultTolerance is how far a webhook-timestamp may be from the
// receiver's clock.
const DefaultTolerance = 5 * time.Minute

// Errors Verify returns; a receiver answers 400/401 on any of them.
var (
	ErrMissingHeaders = errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	ErrTimestamp      = errors.New("webhook-timestamp outside tolerance")
	ErrSignature      = errors.New("no matching webhook signature")
)

// signature is "v1," + base64(HMAC-SHA256(key, id.timestamp.body)).
func signature(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Sign returns the webhook-signature header value for a message: one
// "v1,<base64>" per secret, space-separated, so a receiver holding either
// the old or the new secret accepts it during a rotation.
func Sign(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	keys := make([][]byte, 0, len(secrets))
	for i, s := range secrets {
		k, err := secretKey(s)
		if err != nil {
			return "", fmt.Errorf("secret %d: %w", i, err)
		}
		keys = append(keys, k)
	}
	return signKeys(keys, id, ts.Unix(), body), nil
}

func signKeys(keys [][]byte, id string, ts int64, body []byte) string {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		sigs[i] = signature(k, id, ts, body)
	}
	return strings.Join(sigs, " ")
}

// Verify checks a Standard Webhooks delivery: the headers are present, the
// timestamp is within tolerance of now (DefaultTolerance if zero), and one
// of the signatures matches one of the secrets (constant-time compare).
func Verify(secrets []string, headers http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id := headers.Get(HeaderWebhookID)
	tsText := headers.Get(HeaderWebhookTimestamp)
	sigs := headers.Get(HeaderWebhookSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not unix seconds", ErrTimestamp, tsText)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s off", ErrTimestamp, d)
	}
	for _, s := range secrets {
		k, err := secretKey(s)
		if err != nil {
			return err
		}
		want := []byte(signature(k, id, ts, body))
		for _, got := range strings.Fields(sigs) {
			if hmac.Equal([]byte(got), want) {
				return nil
			}
		}
	}
	return ErrSignature
}
