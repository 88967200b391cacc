package recon_test

import (
	"testing"

	"github.com/reconhq/recon"
)

// A statement's date is its to_date, else its closing balance's date; it
// starts at its from_date, else on that date.
func TestStatementDates(t *testing.T) {
	for _, tc := range []struct {
		st         recon.Statement
		date, from recon.Date
	}{
		{recon.Statement{FromDate: "2026-11-01", ToDate: "2026-11-30", ClosingDate: "2026-11-29"}, "2026-11-30", "2026-11-01"},
		{recon.Statement{ClosingDate: "2026-11-29"}, "2026-11-29", "2026-11-29"},
		{recon.Statement{FromDate: "2026-11-01", ClosingDate: "2026-11-29"}, "2026-11-29", "2026-11-01"},
		{recon.Statement{}, "", ""},
	} {
		if got := tc.st.Date(); got != tc.date {
			t.Errorf("%+v: Date %q, want %q", tc.st, got, tc.date)
		}
		if got := tc.st.From(); got != tc.from {
			t.Errorf("%+v: From %q, want %q", tc.st, got, tc.from)
		}
	}
}
