package iso20022

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// event is one token as both tokenizers report it, with the input offset
// after it.
type event struct {
	kind         string // start, end, text, comment, pi
	space, local string
	attrs        []xml.Attr
	data         string // text, comment, PI target + " " + instruction
	off          int64
}

func (e event) String() string {
	return fmt.Sprintf("%s{%q %q %v %q @%d}", e.kind, e.space, e.local, e.attrs, e.data, e.off)
}

// xmlEvents are the tokens of a strict encoding/xml Decoder, with the
// reader's charset converter; a directive ends them with errDirective.
func xmlEvents(in []byte) ([]event, error) {
	d := xml.NewDecoder(bytes.NewReader(in))
	d.CharsetReader = charsetReader
	var evs []event
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		e := event{off: d.InputOffset()}
		switch v := tok.(type) {
		case nil:
			continue // encoding/xml's empty CDATA at the very start
		case xml.StartElement:
			e.kind, e.space, e.local = "start", v.Name.Space, v.Name.Local
			if len(v.Attr) > 0 {
				e.attrs = v.Attr
			}
		case xml.EndElement:
			e.kind, e.space, e.local = "end", v.Name.Space, v.Name.Local
		case xml.CharData:
			if len(v) == 0 {
				continue
			}
			e.kind, e.data = "text", string(v)
		case xml.Comment:
			e.kind, e.data = "comment", string(v)
		case xml.ProcInst:
			e.kind, e.data = "pi", v.Target+" "+string(v.Inst)
		case xml.Directive:
			return evs, errDirective
		}
		evs = append(evs, e)
	}
}

// scanEvents are the scanner's tokens in the same shape.
func scanEvents(in []byte, maxTok int) ([]event, error) {
	return scanEventsFrom(newScanner(bytes.NewReader(in), maxTok))
}

func scanEventsFrom(s *scanner) ([]event, error) {
	var evs []event
	for {
		k, err := s.next()
		if err != nil {
			return evs, err
		}
		e := event{off: s.offset()}
		switch k {
		case tokEOF:
			return evs, nil
		case tokStart:
			e.kind, e.space, e.local = "start", s.nsOf(s.name, true), s.name.local
			for _, a := range s.attrs {
				e.attrs = append(e.attrs, xml.Attr{Name: xml.Name{Space: s.nsOf(a.name, false), Local: a.name.local}, Value: string(a.value)})
			}
		case tokEnd:
			e.kind, e.space, e.local = "end", s.nsOf(s.name, true), s.name.local
		case tokText:
			if len(s.text) == 0 {
				continue
			}
			e.kind, e.data = "text", string(s.text)
		case tokComment:
			e.kind, e.data = "comment", string(s.text)
		case tokProcInst:
			e.kind, e.data = "pi", s.target+" "+string(s.text)
		}
		evs = append(evs, e)
	}
}

// sameTokens checks the scanner against encoding/xml on in: the same
// tokens with the same offsets, and an error exactly when encoding/xml has
// one (a directive, which encoding/xml returns as a token, is an error).
func sameTokens(t *testing.T, in []byte) {
	t.Helper()
	want, werr := xmlEvents(in)
	got, gerr := scanEvents(in, 1<<30)
	sameEvents(t, in, want, werr, got, gerr)
}

func sameEvents(t *testing.T, in []byte, want []event, werr error, got []event, gerr error) {
	t.Helper()
	if len(in) > 200 {
		in = append(in[:200:200], "…"...)
	}
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("encoding/xml error %v, scanner error %v\ninput %q", werr, gerr, in)
	}
	if errors.Is(werr, errDirective) && !errors.Is(gerr, errDirective) {
		t.Fatalf("directive: scanner error %v\ninput %q", gerr, in)
	}
	if len(got) != len(want) {
		t.Fatalf("%d tokens, encoding/xml %d (errors %v / %v)\ninput %q\ngot  %v\nwant %v", len(got), len(want), gerr, werr, in, got, want)
	}
	for i := range want {
		if got[i].String() != want[i].String() {
			t.Fatalf("token %d: got %v, encoding/xml %v (errors %v / %v)\ninput %q", i, got[i], want[i], gerr, werr, in)
		}
	}
}

// scanSeeds are small documents that exercise each part of the grammar.
var scanSeeds = []string{
	`<a/>`,
	`<?xml version="1.0" encoding="UTF-8"?><a x="1" y='2'>t</a>`,
	`<?xml version="1.1"?><a/>`,
	`<?xml version="1.0" encoding="ISO-8859-1"?><a>caf` + "\xe9" + `</a>`,
	`<?xml version="1.0" encoding="windows-1252"?><a b="` + "\x80" + `">` + "\x81" + `</a>`,
	`<?xml encoding="latin1"?><a>x</a><?xml encoding="UTF-8"?>`,
	`<?xml encoding="Shift_JIS"?><a/>`,
	`<p:a xmlns:p="urn:x" xmlns="urn:d"><b p:c="1" d="2"/><p:e xmlns:p="urn:y"/></p:a>`,
	`<a xmlns=""><xml:b xml:lang="de"/><xmlns/><c xmlns:q="u"><q:d/></c><q:d/></a>`,
	`<a>&lt;&gt;&amp;&apos;&quot;&#65;&#x42;&#x10FFFF;&#xD800;</a>`,
	`<a>&#0;</a>`, `<a>&#x110000;</a>`, `<a>&#;</a>`, `<a>&foo;</a>`, `<a>&lt</a>`, `<a>&</a>`, `<a>&#65</a>`,
	`<a b="&lt;&#x9;"/>`, `<a b="<"/>`, `<a b="]]>"/>`, `<a b=1/>`, `<a b/>`, `<a b="1"c="2"/>`, `<a b="1" b="2"/>`,
	"<a>x\r\ny\rz\r</a>", "<a b='x\r\ny'/>", "<![CDATA[\r\n]]><a/>",
	`<a><![CDATA[<&>]]]]></a>`, `<a><![CDATA[]]></a>`, `<![CDATA[]]>`, `<a><![CDATA[x`, `<a><![CDAT[x]]></a>`,
	`<a>]]></a>`, `<a>]]]></a>`, `<a>]] ></a>`,
	`<!-- c --><a><!----></a><!-- - -->`, `<a><!-- -- --></a>`, `<a><!-></a>`, `<!--->`,
	`<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>`, `<!DOCTYPE a>`, `<!x`,
	`<?pi data?><a><?pi?></a><?xml-stylesheet href="x"?>`, `<?xml?>`, `<? x?>`, `<?1x?>`,
	`<a></b>`, `<a></a:a>`, `<p:a xmlns:p="u"></q:a>`, `</a>`, `<a>`, `<a><b></a>`, `<a></a><b></b>`, `text<a/>text`,
	`<a:b:c/>`, `<:a/>`, `<a:/>`, `<1a/>`, `<-a/>`, `<a.b-c_d:e1/>`, "<\xc3\xa9l\xc3\xa8ve/>", "<a\xff/>", "<\xe2\x80\x8ba/>",
	"<a>\xff</a>", "<a>\xc3</a>", "<a>\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80</a>", "<a>\x01</a>", "<a>\x7f\xef\xbf\xbe</a>", "<a b='\xff'/>",
	"\xef\xbb\xbf<a/>", "<a>\t\n</a>", `<a / >`, `<a/ >`, `< a/>`, `<a  b = "1" />`, `</a  >`, `</a x>`, `<a></ a>`,
	`<a`, `<a b`, `<a b=`, `<a b="`, `<a b="1"`, `<a b="1"/`, `</`, `</a`, `<?`, `<?x`, `<?x y`, `<!`, `<!-`, `<!--`, `<!-- x -`, `<![`, `<`,
	`<a>x</a>tail`, "  \n<a/>\n\t ",
}

func TestScannerMatchesEncodingXML(t *testing.T) {
	for _, s := range scanSeeds {
		t.Run("", func(t *testing.T) { sameTokens(t, []byte(s)) })
	}
	files, _ := filepath.Glob("testdata/*.xml")
	corpus, _ := filepath.Glob(filepath.Join(corpusDir, "*", "*"))
	for _, f := range append(files, corpus...) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) { sameTokens(t, raw) })
	}
}

// The scanner keeps tokens whole across buffer refills, however the input
// is cut into reads: a file many times its buffer, streamed, gives the
// tokens encoding/xml gives.
func TestScannerRefills(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(benchHead)
	for i := 0; i < 500; i++ {
		b.WriteString(strings.Replace(benchEntry, "Loan 42", "Lo&amp;an\r\n<![CDATA[4\xc3\xa92]]><!-- c -->"+strings.Repeat(" ", i%97), 1))
	}
	b.WriteString(benchTail)
	in := b.Bytes()
	want, werr := xmlEvents(in)
	if werr != nil {
		t.Fatal(werr)
	}
	for _, size := range []int{1, 3, 7, 4096, 1 << 20} {
		s := newScanner(&chunked{r: bytes.NewReader(in), n: size}, 1<<20)
		s.buf = make([]byte, 600) // many refills, most of them mid-token
		got, gerr := scanEventsFrom(s)
		sameEvents(t, in, want, nil, got, gerr)
	}
}

type chunked struct {
	r io.Reader
	n int
}

func (c *chunked) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// A token longer than the limit is refused, also when it arrives whole.
func TestScannerTokenLimit(t *testing.T) {
	for _, in := range []string{
		`<a>` + strings.Repeat("x", 101) + `</a>`,
		`<a b="` + strings.Repeat("x", 101) + `"/>`,
		`<!--` + strings.Repeat("x", 101) + `-->`,
		`<a><![CDATA[` + strings.Repeat("x", 101) + `]]></a>`,
		`<?pi ` + strings.Repeat("x", 101) + `?>`,
	} {
		_, err := scanEvents([]byte(in), 100)
		var le *limitError
		if !errors.As(err, &le) {
			t.Errorf("%.20q: %v, want a limit error", in, err)
		}
	}
	if _, err := scanEvents([]byte(`<a>`+strings.Repeat("x", 100)+`</a>`), 100); err != nil {
		t.Errorf("100 bytes of text at MaxTextBytes 100: %v", err)
	}
}

// FuzzScanner is the differential test: on every input the scanner yields
// the tokens encoding/xml does, at the same offsets, or both refuse it.
func FuzzScanner(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob("testdata/*.xml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) { sameTokens(t, in) })
}
