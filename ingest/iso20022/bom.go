package iso20022

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// unBOM looks at the first bytes of r for a byte-order mark: a UTF-8 one is
// dropped; a UTF-16 one (either byte order) is dropped and the rest decoded
// to UTF-8, which utf16 reports, so the declaration's encoding="UTF-16" is
// then accepted. Without a mark, r is read as is.
func unBOM(r io.Reader) (out io.Reader, utf16 bool) {
	br := bufio.NewReaderSize(r, 4096)
	head, _ := br.Peek(3)
	switch {
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		_, _ = br.Discard(3)
		return br, false
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}):
		_, _ = br.Discard(2)
		return &utf16Reader{r: br, little: true}, true
	case bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		_, _ = br.Discard(2)
		return &utf16Reader{r: br}, true
	}
	return br, false
}

// utf16Reader decodes UTF-16 to UTF-8; an unpaired surrogate or an odd
// byte at the end is an error.
type utf16Reader struct {
	r      *bufio.Reader
	little bool
	err    error
}

var errUTF16 = errors.New("invalid UTF-16: unpaired surrogate or odd number of bytes")

func (u *utf16Reader) unit() (uint16, error) {
	var b [2]byte
	n, err := io.ReadFull(u.r, b[:])
	switch {
	case err == io.EOF:
		return 0, io.EOF
	case n == 1 || err == io.ErrUnexpectedEOF:
		return 0, errUTF16
	case err != nil:
		return 0, err
	}
	if u.little {
		return uint16(b[0]) | uint16(b[1])<<8, nil
	}
	return uint16(b[0])<<8 | uint16(b[1]), nil
}

func (u *utf16Reader) Read(p []byte) (int, error) {
	n := 0
	for u.err == nil && n+utf8.UTFMax <= len(p) {
		c, err := u.unit()
		if err != nil {
			u.err = err
			break
		}
		r := rune(c)
		if utf16.IsSurrogate(r) {
			c2, err := u.unit()
			if err == io.EOF {
				err = errUTF16
			}
			if err != nil {
				u.err = err
				break
			}
			if r = utf16.DecodeRune(r, rune(c2)); r == utf8.RuneError {
				u.err = errUTF16
				break
			}
		}
		n += utf8.EncodeRune(p[n:], r)
	}
	if n > 0 {
		return n, nil
	}
	if u.err == nil {
		return 0, io.ErrShortBuffer
	}
	return 0, u.err
}
