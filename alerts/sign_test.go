package alerts

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSignatureVector computes a signature by hand from the spec formula
// and checks Sign against it and against the Standard Webhooks reference
// vector.
func TestSignatureVector(t *testing.T) {
	id, ts := "msg_p5jXN8AQM9LWM0D4loKWxJek", int64(1614265330)
	body := []byte(`{"test": 2432232314}`)
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secretA, "whsec_"))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + "1614265330" + "." + string(body)))
	byHand := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	const reference = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

	got, err := Sign([]string{secretA}, id, time.Unix(ts, 0), body)
	if err != nil {
		t.Fatal(err)
	}
	if got != byHand {
		t.Errorf("Sign = %q, by hand %q", got, byHand)
	}
	if got != reference {
		t.Errorf("Sign = %q, reference vector %q", got, reference)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"type":"alert.firing"}`)
	sig, err := Sign([]string{secretA, secretB}, "low-balance-abc-1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(sig)); n != 2 {
		t.Fatalf("rotation: %d signatures, want 2", n)
	}
	h := func(id, ts, sig string) http.Header {
		hd := http.Header{}
		hd.Set(HeaderWebhookID, id)
		hd.Set(HeaderWebhookTimestamp, ts)
		hd.Set(HeaderWebhookSignature, sig)
		return hd
	}
	good := h("low-balance-abc-1", "1800000000", sig)
	tests := []struct {
		name    string
		secrets []string
		hdr     http.Header
		body    []byte
		now     time.Time
		want    error
	}{
		{"old secret", []string{secretA}, good, body, now, nil},
		{"new secret", []string{secretB}, good, body, now, nil},
		{"within tolerance", []string{secretA}, good, body, now.Add(4 * time.Minute), nil},
		{"too late", []string{secretA}, good, body, now.Add(6 * time.Minute), ErrTimestamp},
		{"too early", []string{secretA}, good, body, now.Add(-6 * time.Minute), ErrTimestamp},
		{"altered body", []string{secretA}, good, []byte(`{"type":"alert.resolved"}`), now, ErrSignature},
		{"other id", []string{secretA}, h("x", "1800000000", sig), body, now, ErrSignature},
		{"other timestamp", []string{secretA}, h("low-balance-abc-1", "1800000001", sig), body, now, ErrSignature},
		{"unknown secret", []string{"whsec_" + base64.StdEncoding.EncodeToString([]byte("another-secret-of-24-bytes!"))}, good, body, now, ErrSignature},
		{"missing", []string{secretA}, http.Header{}, body, now, ErrMissingHeaders},
		{"bad timestamp", []string{secretA}, h("low-balance-abc-1", "soon", sig), body, now, ErrTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secrets, tt.hdr, tt.body, tt.now, 0)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}
