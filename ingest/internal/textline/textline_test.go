package textline

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		err      string
	}{
		{"LF", "a\nb\n", []string{"a", "b"}, ""},
		{"CRLF and no final ending", "a\r\nb", []string{"a", "b"}, ""},
		{"CR alone", "a\rb\r", []string{"a", "b"}, ""},
		{"mixed, blank kept", "a\r\n\nb\r", []string{"a", "", "b"}, ""},
		{"BOM", "\xEF\xBB\xBFa\n", []string{"a"}, ""},
		{"UTF-8", "Müller\n", []string{"Müller"}, ""},
		{"windows-1252", "M\xfcller \x80\n", []string{"Müller €"}, ""},
		{"envelope marks dropped", "\x01{1:}\x03\x1a\n", []string{"{1:}"}, ""},
		{"undefined byte", "a\x81\n", nil, "neither UTF-8 nor windows-1252"},
		{"NUL", "a\x00\n", nil, "control character"},
		{"long line", strings.Repeat("x", 11) + "\n", nil, "line longer than 10"},
		{"large file", strings.Repeat("x\n", 30), nil, "larger than MaxFileBytes (40)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maxFile := int64(1 << 20)
			if tc.name == "large file" {
				maxFile = 40
			}
			s := New(strings.NewReader(tc.in), maxFile, 10)
			var got []string
			var err error
			for {
				var l string
				if l, err = s.Next(); err != nil {
					break
				}
				got = append(got, l)
			}
			if tc.err == "" && err != io.EOF || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if strings.Contains(tc.err, "longer") || strings.Contains(tc.err, "larger") {
				if !errors.Is(err, ErrLimit) {
					t.Errorf("%v does not wrap ErrLimit", err)
				}
			}
			if tc.err == "" && strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("lines %q, want %q", got, tc.want)
			}
		})
	}
}
