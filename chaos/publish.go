package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Post sends body to base()+path until a 2xx answer, retrying transport
// errors, 5xx, 408 and 429 (the same body: every input has a stable
// identity, so a retry can never post twice) for up to limit. base is asked
// again on each attempt: the process behind it may have been restarted.
func Post(base func() string, path, contentType string, body []byte, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for {
		resp, err := httpClient.Post(base()+path, contentType, bytes.NewReader(body))
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, b)
			if resp.StatusCode/100 == 4 && resp.StatusCode != 408 && resp.StatusCode != 429 {
				return fmt.Errorf("POST %s: %s", path, last)
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("POST %s: no 2xx within %s: %s", path, limit, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Publish posts the workload's loans, then every sighting in order: API
// batches of up to 250 and camt.053 files of up to 50 entries.
func Publish(base func() string, w *Workload, limit time.Duration) error {
	return PublishPaced(base, w, limit, 0)
}

// PublishPaced is Publish spread over about spread, so that a fault
// schedule meets a steady stream rather than one burst.
func PublishPaced(base func() string, w *Workload, limit, spread time.Duration) error {
	pause := time.Duration(0)
	if n := len(w.Sightings)/250 + 1; spread > 0 {
		pause = spread / time.Duration(n)
	}
	loans, _ := json.Marshal(w.Loans)
	if err := Post(base, "/v1/loans", "application/json", loans, limit); err != nil {
		return err
	}
	var batch []any
	var file []CamtEntry
	files := 0
	flush := func() error {
		if len(batch) > 0 {
			b, _ := json.Marshal(batch)
			batch = batch[:0]
			if err := Post(base, "/v1/bank/transactions", "application/json", b, limit); err != nil {
				return err
			}
		}
		if len(file) > 0 {
			files++
			doc := Camt(fmt.Sprintf("%s-f%d", w.Run, files), w.Acct, false, file)
			file = file[:0]
			if err := Post(base, "/v1/bank/files?name=chaos.xml", "application/xml", []byte(doc), limit); err != nil {
				return err
			}
		}
		return nil
	}
	for _, s := range w.Sightings {
		if s.File {
			file = append(file, CamtEntry{Ref: s.T.BankReference, Amount: s.T.Amount.StringFixed(2), VIBAN: s.T.VirtualIBAN})
		} else {
			batch = append(batch, s.T)
		}
		if len(batch) >= 250 || len(file) >= 50 {
			if err := flush(); err != nil {
				return err
			}
			time.Sleep(pause)
		}
	}
	return flush()
}
