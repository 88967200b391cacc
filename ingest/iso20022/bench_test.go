package iso20022

import (
	"encoding/xml"
	"io"
	"runtime"
	"testing"
)

const benchEntry = `<Ntry><NtryRef>R</NtryRef><Amt Ccy="EUR">1234.56</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
<BookgDt><Dt>2024-05-01</Dt></BookgDt><ValDt><Dt>2024-05-01</Dt></ValDt><AcctSvcrRef>2024050100012345</AcctSvcrRef>
<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
<NtryDtls><TxDtls><Refs><EndToEndId>LOAN-000042-2024-05</EndToEndId><TxId>TX2024050100012345</TxId></Refs>
<AmtDtls><TxAmt><Amt Ccy="EUR">1234.56</Amt></TxAmt></AmtDtls>
<RltdPties><Dbtr><Nm>Erika Mustermann</Nm></Dbtr><DbtrAcct><Id><IBAN>DE02120300000000202051</IBAN></Id></DbtrAcct>
<CdtrAcct><Id><IBAN>DE75512108001245126199</IBAN></Id></CdtrAcct></RltdPties>
<RltdAgts><DbtrAgt><FinInstnId><BIC>BYLADEM1001</BIC></FinInstnId></DbtrAgt></RltdAgts>
<RmtInf><Ustrd>Loan 42 May instalment</Ustrd><Strd><CdtrRefInf><Ref>RF18539007547034</Ref></CdtrRefInf></Strd></RmtInf>
</TxDtls></NtryDtls></Ntry>
`

const benchHead = `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><GrpHdr><MsgId>BENCH</MsgId></GrpHdr>
<Stmt><Id>S</Id><Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>
`
const benchTail = `</Stmt></BkToCstmrStmt></Document>
`

// benchEntries makes a camt.053 of about 100 MB.
const benchEntries = 100 << 20 / len(benchEntry)

func benchFile() io.Reader { return repeat(benchHead, benchEntry, benchEntries, benchTail) }

var benchSize = int64(len(benchHead) + len(benchEntry)*benchEntries + len(benchTail))

// BenchmarkRead reads a ~100 MB camt.053 streamed from a generator; peak
// heap is sampled while it runs, to show memory does not follow file size.
func BenchmarkRead(b *testing.B) {
	b.SetBytes(benchSize)
	b.ReportAllocs()
	var peak uint64
	var ms runtime.MemStats
	for b.Loop() {
		n := 0
		_, err := Read(benchFile(), "bench", DefaultLimits(), func(any) error {
			if n++; n%20000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(benchSize)/(1<<20), "file-MB")
}

// BenchmarkTokenWalk is encoding/xml's bare token walk, the floor the reader
// stood on before it had its own scanner; kept to compare in the same run.
func BenchmarkTokenWalk(b *testing.B) {
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		d := xml.NewDecoder(benchFile())
		for {
			if _, err := d.Token(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}

// BenchmarkScanWalk is the reader's own scanner, tokens and nothing else:
// the floor BenchmarkRead now stands on.
func BenchmarkScanWalk(b *testing.B) {
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		s := newScanner(benchFile(), DefaultLimits().MaxTextBytes)
		for {
			k, err := s.next()
			if err != nil {
				b.Fatal(err)
			}
			if k == tokEOF {
				break
			}
		}
	}
}
