package iso20022

import (
	"fmt"
	"io"
)

// Limits bound everything a file can make the reader spend. Zero fields take
// the default.
type Limits struct {
	MaxFileBytes     int64 // raw bytes of one file
	MaxDepth         int   // element nesting, envelope included
	MaxElements      int   // elements in one file
	MaxTextBytes     int   // one text node, CDATA section, comment or tag
	MaxAmountDigits  int   // significant digits of one amount (ISO: totalDigits 18)
	MaxEntryElements int   // elements of one Ntry / TxInf / TxInfAndSts, which is held in memory whole
}

// MaxFractionDigits is ISO 20022's fractionDigits for amounts; more is rejected.
const MaxFractionDigits = 5

// DefaultLimits are generous for real bank files and still bound memory.
func DefaultLimits() Limits {
	return Limits{
		MaxFileBytes:     512 << 20,
		MaxDepth:         64,
		MaxElements:      50_000_000,
		MaxTextBytes:     64 << 10,
		MaxAmountDigits:  18,
		MaxEntryElements: 200_000,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxElements <= 0 {
		l.MaxElements = d.MaxElements
	}
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = d.MaxTextBytes
	}
	if l.MaxAmountDigits <= 0 {
		l.MaxAmountDigits = d.MaxAmountDigits
	}
	if l.MaxEntryElements <= 0 {
		l.MaxEntryElements = d.MaxEntryElements
	}
	return l
}

// limitError is returned by guard; Read turns it into an *Error wrapping ErrLimit.
type limitError struct{ reason string }

func (e *limitError) Error() string { return e.reason }

// guard sits between the file and encoding/xml. encoding/xml buffers a whole
// token (text, CDATA, comment, tag) before returning it, so a 400 MB text node
// would be held in memory; guard lexes the raw bytes just enough to refuse any
// token longer than MaxTextBytes before the decoder sees it, and refuses input
// beyond MaxFileBytes.
type guard struct {
	r        io.Reader
	maxFile  int64
	maxToken int
	n        int64
	err      error

	state int // lexer state, see below
	run   int // bytes in the current token
	match int // progress through an opener or terminator
}

const (
	gText    = iota
	gOpen    // just after '<'
	gBang    // after "<!"
	gTag     // in a tag or directive
	gComment // in <!-- ... -->
	gCDATA   // in <![CDATA[ ... ]]>
	gPI      // in <? ... ?>
)

func (g *guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	if g.n > g.maxFile {
		g.err = &limitError{fmt.Sprintf("file larger than MaxFileBytes (%d)", g.maxFile)}
		return 0, g.err
	}
	for _, c := range p[:n] {
		g.step(c)
		if g.run > g.maxToken {
			g.err = &limitError{fmt.Sprintf("text, tag, comment or CDATA longer than MaxTextBytes (%d)", g.maxToken)}
			return 0, g.err
		}
	}
	return n, err
}

func (g *guard) step(c byte) {
	g.run++
	switch g.state {
	case gText:
		if c == '<' {
			g.state, g.run = gOpen, 1
		}
	case gOpen:
		switch c {
		case '!':
			g.state, g.match = gBang, 0
		case '?':
			g.state, g.match = gPI, 0
		case '>':
			g.state, g.run = gText, 0
		default:
			g.state = gTag
		}
	case gBang:
		// "--" opens a comment, "[CDATA[" a CDATA section, anything else is a directive.
		switch {
		case g.match == 0 && c == '-':
			g.match = -1
		case g.match == -1 && c == '-':
			g.state, g.match = gComment, 0
		case g.match >= 0 && g.match < 7 && c == "[CDATA["[g.match]:
			g.match++
			if g.match == 7 {
				g.state, g.match = gCDATA, 0
			}
		default:
			g.state = gTag
			if c == '>' {
				g.state, g.run = gText, 0
			}
		}
	case gTag:
		if c == '>' {
			g.state, g.run = gText, 0
		}
	case gComment:
		g.state, g.match = g.term(c, "-->", gComment)
	case gCDATA:
		g.state, g.match = g.term(c, "]]>", gCDATA)
	case gPI:
		g.state, g.match = g.term(c, "?>", gPI)
	}
}

// term advances through a terminator such as "]]>"; on completion the lexer
// is back in text.
func (g *guard) term(c byte, t string, in int) (int, int) {
	m := g.match
	switch {
	case c == t[m]:
		m++
	case c == t[0]:
		// "]]]>" and "--->": stay on a partial match of the repeated first byte.
		if m > 0 && t[0] == t[1] {
			m = min(m, 2)
		} else {
			m = 1
		}
	default:
		m = 0
	}
	if m == len(t) {
		g.run = 0
		return gText, 0
	}
	return in, m
}
