package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// authed calls recon's API with a bearer token (empty: none) and returns
// the status and body.
func authed(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 256<<20)) // the shared broker may hold many suspense items
	return resp.StatusCode, b
}

func secret(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestIntegrationConsole runs recon with API tokens (on its embedded broker), parks a
// payment in suspense, and in headless Chromium signs in to the console,
// opens the item, is refused without a note, writes one, reviews,
// confirms — then checks through the API that the ledger booked it on the
// loan with the note and the console's actor, and that no token reached
// recon's log.
func TestIntegrationConsole(t *testing.T) {
	services(t)     // runs with the integration suite (make test-integration)
	chromiumPath(t) // skip or fail early, before starting recon
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	opsToken, feedToken := "ops-"+secret(t), "feed-"+secret(t)
	t.Setenv("RECON_API_TOKENS", "console-ops:read+write:"+opsToken+",feeder:ingest:"+feedToken)
	// recon's own embedded broker: the shared Kafka's consumer groups are
	// busy with other tests' backlogs, and this test is about the console,
	// the API and the ledger (TestIntegrationPipeline covers real Kafka).
	_, kafkaPort, _ := strings.Cut(freeAddr(t), ":")
	p := startRecon(t, "run", "--brokers=", "--kafka-port", kafkaPort, "--clickhouse=", "--data-dir", t.TempDir(), "--instance", "console-"+run)

	// access control on the real binary
	for _, tc := range []struct {
		method, path, token string
		code                int
	}{
		{"GET", "/v1/suspense", "", 401},
		{"GET", "/v1/suspense", feedToken, 403},
		{"GET", "/v1/suspense", opsToken, 200},
		{"POST", "/v1/loans", opsToken, 403},
		{"GET", "/console/", "", 200},
		{"GET", "/healthz", "", 200},
	} {
		if code, body := authed(t, tc.method, p.base+tc.path, tc.token, ""); code != tc.code {
			t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.code)
		}
	}

	acct := iban("FR", "30001007"+pad(run, 15))
	vLoan, vUnknown := iban("FR", "44444444"+pad(run, 15)), iban("FR", "55555555"+pad(run, 15))
	loan := "CONSOLE-" + run
	if code, body := authed(t, "POST", p.base+"/v1/loans", feedToken, fmt.Sprintf(
		`{"loan_id":%q,"virtual_iban":%q,"currency":"EUR","principal":"900.00"}`, loan, vLoan)); code != http.StatusAccepted {
		t.Fatalf("POST loan: %d %s", code, body)
	}
	txn := fmt.Sprintf(`{"id":"con-%[1]s","account_iban":%[2]q,"virtual_iban":%[3]q,"direction":"credit","amount":"321.45","currency":"EUR","booking_date":"2026-11-27","bank_reference":"CON-%[1]s","remittance_info":"instalment november"}`,
		run, acct, vUnknown)
	if code, body := authed(t, "POST", p.base+"/v1/bank/transactions", feedToken, txn); code/100 != 2 {
		t.Fatalf("POST transaction: %d %s", code, body)
	}
	var itemID string
	eventually(t, 60*time.Second, "the payment parked in suspense", func() (bool, string) {
		_, body := authed(t, "GET", p.base+"/v1/suspense", opsToken, "")
		var s struct {
			Items []struct {
				ID       string
				Amount   string
				Evidence struct {
					AccountIBAN string `json:"account_iban"`
				}
			}
		}
		if err := json.Unmarshal(body, &s); err != nil {
			return false, fmt.Sprintf("GET /v1/suspense: %v (%d bytes)", err, len(body))
		}
		for _, it := range s.Items {
			if it.Evidence.AccountIBAN == acct {
				itemID = it.ID
				return it.Amount == "321.45", "amount " + it.Amount
			}
		}
		return false, fmt.Sprintf("%d items in suspense, none on %s: %.300s\nrecon log:\n%s", len(s.Items), acct, body, tail(p.log.String(), 3000))
	})

	b := startBrowser(t)
	b.navigate(p.base + "/console/")
	b.waitFor("the sign-in form", `!document.getElementById("login").hidden`, 20*time.Second)
	b.typeInto("#token", opsToken)
	b.click("#login-submit")
	b.waitFor("signed in", `document.getElementById("who").textContent.includes("console-ops")`, 20*time.Second)
	row := fmt.Sprintf(`tr.suspense-item[data-item-id=%q]`, itemID)
	b.waitFor("the item in the suspense table", fmt.Sprintf(`document.querySelector(%q)`, row), 60*time.Second)
	if got := b.text(row); !strings.Contains(got, "321.45 EUR") || !strings.Contains(got, vUnknown) {
		t.Errorf("suspense row shows %q: want the amount and the evidence's virtual IBAN", got)
	}

	b.click(row + " button.assign")
	b.waitFor("the assign dialog", `document.getElementById("assign-dialog").open`, 10*time.Second)
	b.typeInto("#assign-loan", loan)
	b.click("#assign-review") // no note yet
	b.waitFor("a note is required", `document.getElementById("assign-error").textContent.includes("audit note is required")`, 10*time.Second)
	note := "borrower paid to an old virtual IBAN; confirmed by phone, ticket " + run
	b.typeInto("#assign-note", note)
	b.click("#assign-review")
	b.waitFor("the confirmation step", `!document.getElementById("assign-step-confirm").hidden`, 20*time.Second)
	if s := b.text("#assign-summary"); !strings.Contains(s, loan) || !strings.Contains(s, "321.45 EUR") || !strings.Contains(s, note) {
		t.Errorf("confirmation says %q: want loan, amount and note", s)
	}
	b.click("#assign-confirm")
	b.waitFor("booked", `document.getElementById("flash").textContent.startsWith("Booked")`, 90*time.Second)

	// the ledger, through the API
	var l struct{ Paid, Outstanding, Status string }
	_, body := authed(t, "GET", p.base+"/v1/loans/"+loan, opsToken, "")
	_ = json.Unmarshal(body, &l)
	if l.Paid != "321.45" || l.Outstanding != "578.55" || l.Status != "repaying" {
		t.Errorf("loan after assignment: %s", body)
	}
	_, body = authed(t, "GET", p.base+"/v1/loans/"+loan+"/entries", opsToken, "")
	var es struct {
		Entries []struct {
			Kind, Note, Actor string
			Allocated         map[string]string
		}
	}
	_ = json.Unmarshal(body, &es)
	found := false
	for _, e := range es.Entries {
		if e.Note == note && e.Actor == "token:console-ops (console:console-ops)" {
			found = true
		}
	}
	if !found {
		t.Errorf("no journal entry on %s with the console's note and actor: %s", loan, body)
	}
	_, body = authed(t, "GET", p.base+"/v1/accounts/suspense/balance", opsToken, "")
	if !strings.Contains(string(body), `"balances"`) {
		t.Errorf("suspense balance: %s", body)
	}
	_, body = authed(t, "GET", p.base+"/v1/suspense", opsToken, "")
	if strings.Contains(string(body), itemID) {
		t.Errorf("item %s still in suspense: %s", itemID, body)
	}

	// the loan page shows the payment
	var href string
	if err := b.eval(`document.getElementById("booked-loan-link").getAttribute("href")`, &href); err != nil || href != "#/loan/"+loan {
		t.Errorf("the booked message links to %q (%v)", href, err)
	}
	b.navigate(p.base + "/console/#/loan/" + loan) // a reload: the token stays in the tab's sessionStorage
	b.waitFor("the loan page", `(document.getElementById("loan-paid") || {}).textContent === "321.45 EUR"`, 20*time.Second)
	b.waitFor("the assignment among the loan's entries", fmt.Sprintf(`document.getElementById("loan-entries") && document.getElementById("loan-entries").textContent.includes(%q)`, note), 10*time.Second)
	b.navigate(p.base + "/console/#/breaks")
	b.waitFor("the breaks page", `document.getElementById("breaks-missing") || document.getElementById("breaks-none") || document.getElementById("breaks-table")`, 20*time.Second)

	p.stop(syscall.SIGTERM)
	for _, s := range []string{opsToken, feedToken} {
		if strings.Contains(p.log.String(), s) {
			t.Fatal("an API token reached recon's log")
		}
	}
}
