package iso20022

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// cp1252 maps bytes 0x80-0x9F of windows-1252 to Unicode; the rest of the
// range is ISO-8859-1, where a byte is its code point. Undefined bytes map
// to U+FFFD and are refused.
var cp1252 = [32]rune{
	0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
	0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
}

// charsetReader is the Decoder's CharsetReader: UTF-8 needs none, latin1 and
// windows-1252 are converted, anything else is refused by name.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1":
		return &singleByte{r: bufio.NewReader(in), win: false}, nil
	case "windows-1252", "cp1252":
		return &singleByte{r: bufio.NewReader(in), win: true}, nil
	}
	return nil, fmt.Errorf("encoding %q not supported (only UTF-8, ISO-8859-1, windows-1252)", label)
}

// singleByte converts a single-byte encoding to UTF-8.
type singleByte struct {
	r   *bufio.Reader
	win bool
	err error
}

func (s *singleByte) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n := 0
	for n+utf8.UTFMax <= len(p) {
		b, err := s.r.ReadByte()
		if err != nil {
			s.err = err
			break
		}
		r := rune(b)
		if s.win && b >= 0x80 && b < 0xA0 {
			r = cp1252[b-0x80]
			if r == utf8.RuneError {
				s.err = fmt.Errorf("byte 0x%02X undefined in windows-1252", b)
				break
			}
		}
		n += utf8.EncodeRune(p[n:], r)
	}
	if n > 0 {
		return n, nil
	}
	if s.err == nil && len(p) > 0 {
		// p shorter than one rune: convert byte by byte is impossible, ask for more room.
		return 0, io.ErrShortBuffer
	}
	return 0, s.err
}
