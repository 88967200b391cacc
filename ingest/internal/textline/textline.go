// Package textline reads a line-based bank file (SWIFT MT940/MT942, CFONB
// 120) one bounded line at a time: any line ending (LF, CRLF, CR alone), a
// UTF-8 byte-order mark skipped, each line UTF-8 when it is valid UTF-8 and
// windows-1252 otherwise (banks send both, and no header says which), the
// file size and the line length bounded. Control characters are refused,
// except the tab and the envelope marks SOH (0x01), ETX (0x03) and the DOS
// end-of-file mark SUB (0x1A), which are dropped.
package textline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// ErrLimit marks input beyond a bound (file size, line length).
var ErrLimit = errors.New("limit exceeded")

// Scanner yields the lines of a file.
type Scanner struct {
	sc      *bufio.Scanner
	src     *counter
	maxLine int
	line    int
	buf     []byte
	err     error
}

// New reads r, refusing more than maxFile bytes or a line longer than
// maxLine bytes.
func New(r io.Reader, maxFile int64, maxLine int) *Scanner {
	src := &counter{r: r, max: maxFile}
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 0, min(maxLine+2, 64<<10)), maxLine+2)
	sc.Split(splitLines)
	return &Scanner{sc: sc, src: src, maxLine: maxLine}
}

// Line is the number of the last line returned, 1-based.
func (s *Scanner) Line() int { return s.line }

// Bytes is how many bytes of the file were read.
func (s *Scanner) Bytes() int64 { return s.src.n }

// Next returns the next line, decoded, without its ending; io.EOF at the
// end. Any other error is the file's fault (too large, a line too long, a
// control character, a byte windows-1252 leaves undefined) and wraps
// ErrLimit when a bound was crossed.
func (s *Scanner) Next() (string, error) {
	if s.err != nil {
		return "", s.err
	}
	if !s.sc.Scan() {
		err := s.sc.Err()
		var le *limitError
		switch {
		case err == nil:
			s.err = io.EOF
		case errors.As(err, &le):
			s.err = fmt.Errorf("%s: %w", le.reason, ErrLimit)
		case errors.Is(err, bufio.ErrTooLong):
			s.line++
			s.err = fmt.Errorf("line longer than %d bytes: %w", s.maxLine, ErrLimit)
		default:
			s.err = err
		}
		return "", s.err
	}
	s.line++
	b := s.sc.Bytes()
	if s.line == 1 {
		b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	}
	if len(b) > s.maxLine {
		s.err = fmt.Errorf("line longer than %d bytes: %w", s.maxLine, ErrLimit)
		return "", s.err
	}
	line, err := s.decode(b)
	if err != nil {
		s.err = err
		return "", err
	}
	return line, nil
}

// decode checks the line's bytes and converts windows-1252 to UTF-8.
func (s *Scanner) decode(b []byte) (string, error) {
	ascii, drop := true, false
	for _, c := range b {
		switch {
		case c == 0x01 || c == 0x03 || c == 0x1A:
			drop = true
		case c < 0x20 && c != '\t', c == 0x7F:
			return "", fmt.Errorf("control character 0x%02X", c)
		case c >= 0x80:
			ascii = false
		}
	}
	if drop {
		b = bytes.Map(func(r rune) rune {
			if r == 0x01 || r == 0x03 || r == 0x1A {
				return -1
			}
			return r
		}, b)
	}
	if ascii || utf8.Valid(b) {
		return string(b), nil
	}
	s.buf = s.buf[:0]
	for _, c := range b {
		r := rune(c)
		if c >= 0x80 && c < 0xA0 {
			if r = cp1252[c-0x80]; r == utf8.RuneError {
				return "", fmt.Errorf("byte 0x%02X is neither UTF-8 nor windows-1252", c)
			}
		}
		s.buf = utf8.AppendRune(s.buf, r)
	}
	return string(s.buf), nil
}

// cp1252 maps bytes 0x80-0x9F of windows-1252 to Unicode; the rest of the
// high half is ISO-8859-1, where a byte is its code point. Undefined bytes
// map to U+FFFD and are refused.
var cp1252 = [32]rune{
	0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
	0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
}

// splitLines splits at LF, CRLF or a lone CR.
func splitLines(data []byte, atEOF bool) (int, []byte, error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		if data[i] == '\n' {
			return i + 1, data[:i], nil
		}
		if i+1 < len(data) {
			if data[i+1] == '\n' {
				return i + 2, data[:i], nil
			}
			return i + 1, data[:i], nil
		}
		if atEOF {
			return i + 1, data[:i], nil
		}
		return 0, nil, nil // a CR at the end of the buffer: is an LF next?
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}

type limitError struct{ reason string }

func (e *limitError) Error() string { return e.reason }

// counter refuses input beyond max bytes.
type counter struct {
	r   io.Reader
	max int64
	n   int64
	err error
}

func (c *counter) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		c.err = &limitError{fmt.Sprintf("file larger than MaxFileBytes (%d)", c.max)}
		return 0, c.err
	}
	return n, err
}
