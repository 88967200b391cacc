package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/export"
)

// registerExports serves GET /v1/exports/{fec,gl.csv,trial-balance}.
func registerExports(mux *http.ServeMux, kc bus.Config) {
	export.Handler{Load: func(ctx context.Context) ([]recon.Entry, error) { return export.Load(ctx, kc) }}.Register(mux)
}

// exportCmd writes the FEC, the general-ledger CSV or the trial balance.
func exportCmd(ctx context.Context, args []string) int {
	usage := "usage: recon export fec|gl|trial-balance [flags]\n\n" +
		"  fec            the FEC (Fichier des Écritures Comptables): 18 tab-separated columns, one line per posting, --from/--to\n" +
		"  gl             the general-ledger CSV, one row per posting, --from/--to\n" +
		"  trial-balance  per account debits, credits and balance at the end of --at, with totals per currency\n\n" +
		"Reads the whole journal (recon.ledger-entries.v1). The account mapping to the French chart\nof accounts is in `go doc github.com/reconhq/recon/export`.\n"
	if len(args) == 0 || (args[0] != "fec" && args[0] != "gl" && args[0] != "trial-balance") {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	what := args[0]
	var s settings
	fs := newFlags("export "+what, &s)
	var from, to, at, out, format string
	fs.StringVar(&from, "from", "", "first accounting date included, YYYY-MM-DD (fec, gl)")
	fs.StringVar(&to, "to", "", "last accounting date included, YYYY-MM-DD (fec, gl)")
	fs.StringVar(&at, "at", "", "trial balance at the end of this date, YYYY-MM-DD (default: everything)")
	fs.StringVar(&out, "out", "", "write here instead of stdout (written whole, then renamed)")
	fs.StringVar(&format, "format", "csv", "trial-balance output: csv or json")
	if code := s.parse(fs, args[1:]); code != 0 {
		return code
	}
	kc, err := s.cluster("export")
	if err != nil {
		return fail("%v", err)
	}
	entries, err := export.Load(ctx, kc)
	if err != nil {
		return fail("%v", err)
	}
	var buf bytes.Buffer
	switch what {
	case "trial-balance":
		tb, err := export.Trial(entries, recon.Date(at))
		if err != nil {
			return fail("%v", err)
		}
		if format == "json" {
			err = json.NewEncoder(&buf).Encode(tb)
		} else {
			err = tb.WriteCSV(&buf)
		}
		if err != nil {
			return fail("%v", err)
		}
	default:
		lines, err := export.Lines(entries, export.Period{From: recon.Date(from), To: recon.Date(to)})
		if err != nil {
			return fail("%v", err)
		}
		if what == "fec" {
			err = export.WriteFEC(&buf, lines)
		} else {
			err = export.WriteGL(&buf, lines)
		}
		if err != nil {
			return fail("%v", err)
		}
	}
	if out == "" {
		_, err = io.Copy(os.Stdout, &buf)
	} else {
		err = writeAtomic(out, buf.Bytes())
	}
	if err != nil {
		return fail("%v", err)
	}
	return 0
}
