package iso20022

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// scanner is a streaming XML tokenizer for what ISO 20022 files use, made
// to accept and refuse exactly what a strict encoding/xml Decoder.Token
// does (FuzzScanner checks this against encoding/xml), except that it
// refuses directives (<!DOCTYPE, <!ENTITY) outright and bounds every token.
//
// It yields start and end elements (a self-closing element yields both),
// character data (text runs and CDATA sections, entities and numeric
// character references decoded, \r\n normalised), comments and processing
// instructions; the bytes of a token stay valid until the next call. Names
// are interned, so element names cost no allocation. An XML declaration
// naming ISO-8859-1 or windows-1252 switches the rest of the input through
// the charset converter, as encoding/xml's CharsetReader does.
//
// Input is read into one buffer that holds at least one whole token: a
// token longer than maxTok (a text run, or a tag, comment, CDATA section or
// processing instruction up to its final '>') is refused with a
// *limitError, so memory is bounded by maxTok whatever the input.
type scanner struct {
	src    io.Reader
	buf    []byte
	r, w   int   // buf[r:w] is unread
	base   int64 // offset of buf[0] in the (decoded) input
	lines  int   // newlines before buf[0]
	eof    bool  // src returned rerr; buf[r:w] is all there is
	rerr   error
	maxTok int
	maxBuf int
	err    error // sticky
	utf16  bool  // the input was UTF-16 (with a byte-order mark), already decoded

	// the current token
	name    *qname // start or end element
	attrs   []attr // start element
	text    []byte // character data, comment, processing instruction data
	target  string // processing instruction
	endNext bool   // a self-closing element's end is next
	popNext bool   // the element just ended is popped on the next call

	stack  []open
	ns     []binding
	names  map[string]*qname
	recent [256]*qname // names by nameSlot, before the map
	values map[string]string
	tbuf   []byte // decoded text
	abuf   []byte // decoded attribute values
}

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokStart
	tokEnd
	tokText
	tokComment
	tokProcInst
)

// qname is an element or attribute name as written ("c:Amt") and split
// into prefix and local name as encoding/xml does.
type qname struct{ raw, prefix, local string }

type attr struct {
	name  *qname
	value []byte
}

type open struct {
	name *qname
	ns   int // len(scanner.ns) before the element's own declarations
}

// binding is a namespace declaration in scope: xmlns:prefix="uri", or
// xmlns="uri" with prefix "".
type binding struct{ prefix, uri string }

// syntaxError is malformed XML, with encoding/xml's wording.
type syntaxError struct {
	msg  string
	line int
}

func (e *syntaxError) Error() string { return "line " + strconv.Itoa(e.line) + ": " + e.msg }

// errDirective is a <!DOCTYPE ...>, <!ENTITY ...> or other directive.
var errDirective = errors.New("DOCTYPE, ENTITY and other directives are refused")

// errMore asks for more input: the token at buf[r:] is incomplete.
var errMore = errors.New("more input needed")

const (
	xmlURL      = "http://www.w3.org/XML/1998/namespace"
	minRead     = 4 << 10 // the buffer grows when less is free
	minFree     = 512     // reads go on until less is free (charset conversion needs 4)
	maxInterned = 4096
)

func newScanner(src io.Reader, maxTok int) *scanner {
	maxBuf := maxTok + 2*minRead
	return &scanner{
		src:    src,
		buf:    make([]byte, min(64<<10, maxBuf)),
		maxTok: maxTok,
		maxBuf: maxBuf,
		names:  make(map[string]*qname, 64),
		values: make(map[string]string, 16),
	}
}

// offset is the input offset after the last token, as xml.Decoder.InputOffset.
func (s *scanner) offset() int64 { return s.base + int64(s.r) }

// next reads the next token; tokEOF at a clean end of input.
func (s *scanner) next() (tokKind, error) {
	if s.err != nil {
		return tokEOF, s.err
	}
	if s.popNext {
		s.popNext = false
		top := s.stack[len(s.stack)-1]
		s.ns = s.ns[:top.ns]
		s.stack = s.stack[:len(s.stack)-1]
	}
	if s.endNext {
		s.endNext = false
		s.name = s.stack[len(s.stack)-1].name
		s.popNext = true
		return tokEnd, nil
	}
	for {
		k, n, err := s.scan()
		if err == errMore {
			if err = s.fill(); err == nil {
				continue
			}
		}
		if err != nil {
			s.err = err
			return tokEOF, err
		}
		s.r += n
		return k, nil
	}
}

// fill makes room and reads more input; the partial token moves to buf[0].
func (s *scanner) fill() error {
	if s.eof {
		panic("iso20022: scanner asked for input after its end")
	}
	if s.w-s.r > s.maxTok {
		return &limitError{fmt.Sprintf("text, tag, comment or CDATA longer than MaxTextBytes (%d)", s.maxTok)}
	}
	if s.r > 0 {
		s.lines += bytes.Count(s.buf[:s.r], []byte{'\n'})
		s.w = copy(s.buf, s.buf[s.r:s.w])
		s.base += int64(s.r)
		s.r = 0
	}
	if len(s.buf)-s.w < minRead && len(s.buf) < s.maxBuf {
		nb := make([]byte, min(2*len(s.buf), s.maxBuf))
		copy(nb, s.buf[:s.w])
		s.buf = nb
	}
	if len(s.buf)-s.w < minFree {
		panic("iso20022: scanner buffer has no room to read into")
	}
	for empty := 0; len(s.buf)-s.w >= minFree; {
		n, err := s.src.Read(s.buf[s.w:])
		s.w += n
		if err != nil {
			s.eof, s.rerr = true, err
			break
		}
		if n == 0 {
			if empty++; empty > 100 {
				s.eof, s.rerr = true, io.ErrNoProgress
				break
			}
		}
	}
	return nil
}

func (s *scanner) syntax(msg string, pos int) error {
	line := s.lines + 1 + bytes.Count(s.buf[:min(s.r+pos, s.w)], []byte{'\n'})
	return &syntaxError{msg: msg, line: line}
}

// short is the error for input that ends at pos inside a token.
func (s *scanner) short(pos int) error {
	if !s.eof {
		return errMore
	}
	if s.rerr != io.EOF {
		return s.rerr
	}
	return s.syntax("unexpected EOF", pos)
}

// long refuses a token whose final '>' is at end.
func (s *scanner) long(end int) error {
	if end > s.maxTok {
		return &limitError{fmt.Sprintf("text, tag, comment or CDATA longer than MaxTextBytes (%d)", s.maxTok)}
	}
	return nil
}

// scan reads one token at buf[r:]; n is its length in bytes.
func (s *scanner) scan() (k tokKind, n int, err error) {
	b := s.buf[s.r:s.w]
	if len(b) == 0 {
		switch {
		case !s.eof:
			return 0, 0, errMore
		case s.rerr != io.EOF:
			return 0, 0, s.rerr
		case len(s.stack) > 0:
			return 0, 0, s.syntax("unexpected EOF", 0)
		}
		return tokEOF, 0, nil
	}
	if b[0] != '<' {
		return s.scanText(b)
	}
	if len(b) < 2 {
		return 0, 0, s.short(1)
	}
	switch b[1] {
	case '/':
		return s.scanEnd(b)
	case '?':
		return s.scanPI(b)
	case '!':
		return s.scanBang(b)
	}
	return s.scanStart(b)
}

func (s *scanner) scanText(b []byte) (tokKind, int, error) {
	s.tbuf = s.tbuf[:0]
	end, data, err := s.chars(b, 0, modeText, &s.tbuf)
	if err != nil {
		return 0, 0, err
	}
	if end > s.maxTok {
		return 0, 0, s.long(end)
	}
	s.text = data
	return tokText, end, nil
}

// space skips XML white space from i.
func space(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// nameEnd is the end of the name at b[i:]: bytes that may be part of a
// name, as encoding/xml's readName takes them (every non-ASCII byte).
func nameEnd(b []byte, i int) int {
	for i < len(b) && nameByte[b[i]] {
		i++
	}
	return i
}

// lookupName interns the element or attribute name raw, checking it as
// encoding/xml's nsname does; bad is the message for a name with two colons.
func (s *scanner) lookupName(raw []byte, pos int, bad string) (*qname, error) {
	slot := &s.recent[nameSlot(raw)]
	if q := *slot; q != nil && q.raw == string(raw) {
		return q, nil
	}
	if q, ok := s.names[string(raw)]; ok {
		*slot = q
		return q, nil
	}
	if !validName(raw) {
		return nil, s.syntax("invalid XML name: "+string(raw), pos)
	}
	str := string(raw)
	q := &qname{raw: str, local: str}
	switch strings.Count(str, ":") {
	case 0:
	case 1:
		if p, l, _ := strings.Cut(str, ":"); p != "" && l != "" {
			q.prefix, q.local = p, l
		}
	default:
		return nil, s.syntax(bad, pos)
	}
	if len(s.names) < maxInterned {
		s.names[str] = q
	}
	*slot = q
	return q, nil
}

// nameSlot hashes a name cheaply for scanner.recent.
func nameSlot(b []byte) uint8 {
	n := len(b)
	return uint8(n*31) ^ b[0]*7 ^ b[n-1]*13 ^ b[n/2]
}

// validName is encoding/xml's isName: a letter, '_' or ':' and then name
// characters. Non-ASCII names, which ISO 20022 never uses, are asked of
// encoding/xml itself, so both agree on them too.
func validName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c >= utf8.RuneSelf {
			d := xml.NewDecoder(bytes.NewReader(append(append([]byte("<?"), b...), "?>"...)))
			_, err := d.RawToken()
			return err == nil
		}
	}
	c := b[0]
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == ':'
}

func (s *scanner) scanStart(b []byte) (tokKind, int, error) {
	i := nameEnd(b, 1)
	if i == len(b) {
		return 0, 0, s.short(i)
	}
	if i == 1 {
		return 0, 0, s.syntax("expected element name after <", 1)
	}
	name, err := s.lookupName(b[1:i], i, "expected element name after <")
	if err != nil {
		return 0, 0, err
	}
	s.attrs, s.abuf = s.attrs[:0], s.abuf[:0]
	empty := false
	for {
		i = space(b, i)
		if i == len(b) {
			return 0, 0, s.short(i)
		}
		if b[i] == '/' {
			if i+1 == len(b) {
				return 0, 0, s.short(i + 1)
			}
			if b[i+1] != '>' {
				return 0, 0, s.syntax("expected /> in element", i+1)
			}
			empty = true
			i++
			break
		}
		if b[i] == '>' {
			break
		}
		j := nameEnd(b, i)
		if j == len(b) {
			return 0, 0, s.short(j)
		}
		if j == i {
			return 0, 0, s.syntax("expected attribute name in element", i)
		}
		an, err := s.lookupName(b[i:j], j, "expected attribute name in element")
		if err != nil {
			return 0, 0, err
		}
		i = space(b, j)
		if i == len(b) {
			return 0, 0, s.short(i)
		}
		if b[i] != '=' {
			return 0, 0, s.syntax("attribute name without = in element", i)
		}
		i = space(b, i+1)
		if i == len(b) {
			return 0, 0, s.short(i)
		}
		q := b[i]
		if q != '"' && q != '\'' {
			return 0, 0, s.syntax("unquoted or missing attribute value in element", i)
		}
		mode := modeAttrQuot
		if q == '\'' {
			mode = modeAttrApos
		}
		end, v, err := s.chars(b, i+1, mode, &s.abuf)
		if err != nil {
			return 0, 0, err
		}
		s.attrs = append(s.attrs, attr{name: an, value: v})
		i = end + 1
	}
	if err := s.long(i); err != nil {
		return 0, 0, err
	}
	s.name = name
	depth := len(s.ns)
	for _, a := range s.attrs {
		switch {
		case a.name.prefix == "xmlns":
			s.ns = append(s.ns, binding{a.name.local, string(a.value)})
		case a.name.prefix == "" && a.name.local == "xmlns":
			s.ns = append(s.ns, binding{"", string(a.value)})
		}
	}
	s.stack = append(s.stack, open{name: name, ns: depth})
	s.endNext = empty
	return tokStart, i + 1, nil
}

func (s *scanner) scanEnd(b []byte) (tokKind, int, error) {
	i := nameEnd(b, 2)
	if i == len(b) {
		return 0, 0, s.short(i)
	}
	if i == 2 {
		return 0, 0, s.syntax("expected element name after </", 2)
	}
	var name *qname
	if len(s.stack) > 0 && string(b[2:i]) == s.stack[len(s.stack)-1].name.raw {
		name = s.stack[len(s.stack)-1].name
	} else {
		var err error
		if name, err = s.lookupName(b[2:i], i, "expected element name after </"); err != nil {
			return 0, 0, err
		}
	}
	i = space(b, i)
	if i == len(b) {
		return 0, 0, s.short(i)
	}
	if b[i] != '>' {
		return 0, 0, s.syntax("invalid characters between </"+name.local+" and >", i)
	}
	if err := s.long(i); err != nil {
		return 0, 0, err
	}
	if len(s.stack) == 0 {
		return 0, 0, s.syntax("unexpected end element </"+name.local+">", i)
	}
	top := s.stack[len(s.stack)-1].name
	switch {
	case top.local != name.local:
		return 0, 0, s.syntax("element <"+top.local+"> closed by </"+name.local+">", i)
	case top.prefix != name.prefix:
		ns := name.prefix
		if ns == "" {
			ns = `""`
		}
		return 0, 0, s.syntax("element <"+top.local+"> in space "+top.prefix+" closed by </"+name.local+"> in space "+ns, i)
	}
	s.name = top
	s.popNext = true
	return tokEnd, i + 1, nil
}

func (s *scanner) scanPI(b []byte) (tokKind, int, error) {
	t := nameEnd(b, 2)
	if t == len(b) {
		return 0, 0, s.short(t)
	}
	if t == 2 {
		return 0, 0, s.syntax("expected target name after <?", 2)
	}
	if !validName(b[2:t]) {
		return 0, 0, s.syntax("invalid XML name: "+string(b[2:t]), t)
	}
	i := space(b, t)
	k := bytes.Index(b[i:], []byte("?>"))
	if k < 0 {
		return 0, 0, s.short(len(b))
	}
	end := i + k + 1 // the final '>'
	if err := s.long(end); err != nil {
		return 0, 0, err
	}
	target := string(b[2:t])
	s.target, s.text = target, b[i:i+k]
	if target == "xml" {
		if err := s.declaration(string(s.text), end+1); err != nil {
			return 0, 0, err
		}
	}
	return tokProcInst, end + 1, nil
}

// declaration checks an XML declaration and, for an encoding other than
// UTF-8, sends the input after it (at end) through the charset converter.
func (s *scanner) declaration(content string, end int) error {
	if ver := procInst("version", content); ver != "" && ver != "1.0" {
		return fmt.Errorf("xml: unsupported version %q; only version 1.0 is supported", ver)
	}
	enc := procInst("encoding", content)
	if enc == "" || strings.EqualFold(enc, "utf-8") {
		return nil
	}
	if s.utf16 && (strings.EqualFold(enc, "utf-16") || strings.EqualFold(enc, "utf-16le") || strings.EqualFold(enc, "utf-16be")) {
		return nil // decoded from UTF-16 before scanning (unBOM)
	}
	rest := io.Reader(bytes.NewReader(bytes.Clone(s.buf[s.r+end : s.w])))
	switch {
	case !s.eof:
		rest = io.MultiReader(rest, s.src)
	case s.rerr != io.EOF:
		rest = io.MultiReader(rest, errReader{s.rerr})
	}
	conv, err := charsetReader(enc, rest)
	if err != nil {
		return fmt.Errorf("xml: opening charset %q: %w", enc, err)
	}
	// The PI itself is consumed by next; leave exactly its bytes in buf.
	s.w = s.r + end
	s.src, s.eof, s.rerr = conv, false, nil
	return nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// procInst is encoding/xml's: the value of param="..." or param='...' in s.
func procInst(param, s string) string {
	param = param + "="
	lenp := len(param)
	i := 0
	var sep byte
	for i < len(s) {
		sub := s[i:]
		k := strings.Index(sub, param)
		if k < 0 || lenp+k >= len(sub) {
			return ""
		}
		i += lenp + k + 1
		if c := sub[lenp+k]; c == '\'' || c == '"' {
			sep = c
			break
		}
	}
	if sep == 0 {
		return ""
	}
	j := strings.IndexByte(s[i:], sep)
	if j < 0 {
		return ""
	}
	return s[i : i+j]
}

// scanBang reads a comment or a CDATA section; a directive is refused.
func (s *scanner) scanBang(b []byte) (tokKind, int, error) {
	if len(b) < 3 {
		return 0, 0, s.short(2)
	}
	switch b[2] {
	case '-':
		if len(b) < 4 {
			return 0, 0, s.short(3)
		}
		if b[3] != '-' {
			return 0, 0, s.syntax("invalid sequence <!- not part of <!--", 3)
		}
		k := bytes.Index(b[4:], []byte("--"))
		if k < 0 {
			return 0, 0, s.short(len(b))
		}
		j := 4 + k + 2
		if j == len(b) {
			return 0, 0, s.short(j)
		}
		if b[j] != '>' {
			return 0, 0, s.syntax(`invalid sequence "--" not allowed in comments`, j)
		}
		if err := s.long(j); err != nil {
			return 0, 0, err
		}
		s.text = b[4 : j-2]
		return tokComment, j + 1, nil
	case '[':
		for i := 0; i < 6; i++ {
			if 3+i == len(b) {
				return 0, 0, s.short(3 + i)
			}
			if b[3+i] != "CDATA["[i] {
				return 0, 0, s.syntax("invalid <![ sequence", 3+i)
			}
		}
		s.tbuf = s.tbuf[:0]
		end, data, err := s.chars(b, 9, modeCDATA, &s.tbuf)
		if err != nil {
			return 0, 0, err
		}
		if err := s.long(end + 2); err != nil {
			return 0, 0, err
		}
		s.text = data
		return tokText, end + 3, nil
	}
	return 0, 0, errDirective
}

// Modes of chars.
const (
	modeText     = iota // up to '<' or the end of input
	modeAttrQuot        // up to '"'
	modeAttrApos        // up to '\''
	modeCDATA           // up to "]]>"
)

// plain[mode][c]: byte c needs no attention in that mode.
var plain [4][256]bool

// nameByte[c]: c may be part of a name (encoding/xml's readName).
var nameByte [256]bool

func init() {
	for c := 0; c < 256; c++ {
		ok := c >= 0x20 && c < 0x80 || c == '\t' || c == '\n'
		nameByte[c] = c >= 0x80 || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == ':' || c == '.' || c == '-'
		plain[modeText][c] = ok && c != '<' && c != '&' && c != ']'
		plain[modeAttrQuot][c] = ok && c != '<' && c != '&' && c != '"'
		plain[modeAttrApos][c] = ok && c != '<' && c != '&' && c != '\''
		plain[modeCDATA][c] = ok && c != ']'
	}
}

var entities = map[string]byte{"lt": '<', "gt": '>', "amp": '&', "apos": '\'', "quot": '"'}

// chars reads character data from b[start:] as encoding/xml's text does:
// entities and character references decoded (not in CDATA), \r and \r\n
// turned into \n, and every character checked to be UTF-8 and allowed in
// XML. end is the index of the terminator ('<', the quote, "]]>") or
// len(b) at the end of input in modeText. data is b[start:end] itself when
// nothing needed decoding, else appended to *out.
func (s *scanner) chars(b []byte, start, mode int, out *[]byte) (end int, data []byte, err error) {
	tbl := &plain[mode]
	i, mark := start, start
	decoded := false
	o0 := len(*out)
	flush := func(upTo int) {
		*out = append(*out, b[mark:upTo]...)
		decoded = true
	}
	for {
		for i < len(b) && tbl[b[i]] {
			i++
		}
		if i == len(b) {
			if mode == modeText && s.eof {
				break
			}
			if mode == modeCDATA {
				return 0, nil, s.cdataEOF(i)
			}
			return 0, nil, s.short(i)
		}
		c := b[i]
		switch {
		case c == '<' && mode != modeCDATA:
			if mode != modeText {
				return 0, nil, s.syntax("unescaped < inside quoted string", i)
			}
		case c == '"' && mode == modeAttrQuot, c == '\'' && mode == modeAttrApos:
		case c == ']':
			// "]]>" ends CDATA and may not appear in text.
			if i+2 >= len(b) && !s.eof {
				return 0, nil, errMore
			}
			if i+2 >= len(b) && mode == modeCDATA {
				return 0, nil, s.cdataEOF(len(b))
			}
			if i+2 < len(b) && b[i+1] == ']' && b[i+2] == '>' {
				if mode == modeText {
					return 0, nil, s.syntax("unescaped ]]> not in CDATA section", i+2)
				}
				break
			}
			i++
			continue
		case c == '&':
			r, j, err := s.entity(b, i)
			if err != nil {
				return 0, nil, err
			}
			flush(i)
			*out = utf8.AppendRune(*out, r)
			i, mark = j, j
			continue
		case c == '\r':
			flush(i)
			*out = append(*out, '\n')
			i++
			if i == len(b) && !s.eof {
				return 0, nil, errMore
			}
			if i < len(b) && b[i] == '\n' {
				i++
			}
			mark = i
			continue
		case c < 0x20:
			return 0, nil, s.syntax(fmt.Sprintf("illegal character code %U", rune(c)), i)
		default: // c >= 0x80
			if !utf8.FullRune(b[i:]) && !s.eof {
				return 0, nil, errMore
			}
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return 0, nil, s.syntax("invalid UTF-8", i)
			}
			if !inCharRange(r) {
				return 0, nil, s.syntax(fmt.Sprintf("illegal character code %U", r), i)
			}
			i += n
			continue
		}
		break
	}
	if !decoded {
		return i, b[start:i], nil
	}
	flush(i)
	return i, (*out)[o0:], nil
}

func (s *scanner) cdataEOF(pos int) error {
	if s.eof && s.rerr == io.EOF {
		return s.syntax("unexpected EOF in CDATA section", pos)
	}
	return s.short(pos)
}

// entity decodes the reference at b[i] ('&'): the rune and the index after ';'.
func (s *scanner) entity(b []byte, i int) (rune, int, error) {
	j := i + 1
	if j == len(b) {
		return 0, 0, s.short(j)
	}
	bad := func(j int, semi bool) error {
		ent := string(b[i:j])
		if !semi {
			ent += " (no semicolon)"
		}
		return s.syntax("invalid character entity "+ent, j)
	}
	if b[j] == '#' {
		j++
		if j == len(b) {
			return 0, 0, s.short(j)
		}
		base := 10
		if b[j] == 'x' {
			base = 16
			j++
		}
		d := j
		for ; j < len(b); j++ {
			c := b[j]
			if !('0' <= c && c <= '9' || base == 16 && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F')) {
				break
			}
		}
		if j == len(b) {
			return 0, 0, s.short(j)
		}
		if b[j] != ';' {
			return 0, 0, bad(j, false)
		}
		n, err := strconv.ParseUint(string(b[d:j]), base, 64)
		if err != nil || n > utf8.MaxRune {
			return 0, 0, bad(j+1, true)
		}
		r := rune(n)
		if !utf8.ValidRune(r) {
			r = utf8.RuneError // encoding/xml's string(rune(n))
		}
		if !inCharRange(r) {
			return 0, 0, s.syntax(fmt.Sprintf("illegal character code %U", r), j)
		}
		return r, j + 1, nil
	}
	j = nameEnd(b, j)
	if j == len(b) {
		return 0, 0, s.short(j)
	}
	if b[j] != ';' {
		return 0, 0, bad(j, false)
	}
	c, ok := entities[string(b[i+1:j])]
	if !ok {
		return 0, 0, bad(j+1, true)
	}
	return rune(c), j + 1, nil
}

// inCharRange is encoding/xml's isInCharacterRange: XML's Char production.
func inCharRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// attrValue is the value of the current start element's last attribute with
// local name local, interned when short; "" when absent.
func (s *scanner) attrValue(local string) string {
	for i := len(s.attrs) - 1; i >= 0; i-- {
		if s.attrs[i].name.local == local {
			return s.intern(s.attrs[i].value)
		}
	}
	return ""
}

// intern is string(b), shared for short repeated values such as currencies.
func (s *scanner) intern(b []byte) string {
	if len(b) > 8 {
		return string(b)
	}
	if v, ok := s.values[string(b)]; ok {
		return v
	}
	v := string(b)
	if len(s.values) < maxInterned {
		s.values[v] = v
	}
	return v
}

// nsOf is the namespace of a name of the current element (elem) or of one
// of its attributes, resolved as encoding/xml's Decoder.Token does: an
// unknown prefix stands for itself.
func (s *scanner) nsOf(n *qname, elem bool) string {
	p := n.prefix
	switch {
	case p == "xmlns":
		return p
	case p == "" && !elem:
		return ""
	case p == "xml":
		p = xmlURL
	case p == "" && n.local == "xmlns":
		return ""
	}
	for i := len(s.ns) - 1; i >= 0; i-- {
		if s.ns[i].prefix == p {
			return s.ns[i].uri
		}
	}
	return p
}
