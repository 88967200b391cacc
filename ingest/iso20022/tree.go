package iso20022

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// tree holds one bounded unit of a file (an Ntry, a Bal, a TxInfAndSts) in
// an arena reused from unit to unit, so that memory follows the largest
// unit, not the file. Elements are matched by local name, so prefixes and
// namespaces inside the Document do not matter.
type tree struct {
	nodes  []node
	prefix string // element path of the unit's parent
	index  int    // the unit's index among its same-named siblings
}

type node struct {
	name                      string
	text                      string
	ccy                       string // the Ccy attribute, where amounts carry it
	parent, first, last, next int32
	off                       int64
}

const none = int32(-1)

// subtree reads the element start has opened, to its end, into r.t.
func (r *reader) subtree(start xml.StartElement) (int32, error) {
	idx := r.childIndex(start.Name.Local)
	t := &r.t
	t.nodes = t.nodes[:0]
	t.prefix, t.index = r.path(), idx
	t.add(start, none, r.dec.InputOffset())
	cur, depth := int32(0), len(r.stack)+1
	r.cur = &cur
	defer func() { r.cur = nil }()
	if depth > r.lim.MaxDepth {
		return none, r.limit(t.pathOf(cur), fmt.Sprintf("nesting deeper than MaxDepth (%d)", r.lim.MaxDepth))
	}
	for {
		tok, err := r.next()
		if err != nil {
			return none, err
		}
		switch v := tok.(type) {
		case xml.StartElement:
			if len(t.nodes) >= r.lim.MaxEntryElements {
				return none, r.limit(t.pathOf(cur), fmt.Sprintf("%s has more than MaxEntryElements (%d) elements", start.Name.Local, r.lim.MaxEntryElements))
			}
			depth++
			if depth > r.lim.MaxDepth {
				return none, r.limit(t.pathOf(cur)+"/"+v.Name.Local, fmt.Sprintf("nesting deeper than MaxDepth (%d)", r.lim.MaxDepth))
			}
			cur = t.add(v, cur, r.dec.InputOffset())
		case xml.CharData:
			n := &t.nodes[cur]
			if n.text == "" && blank(v) {
				continue
			}
			if len(n.text)+len(v) > r.lim.MaxTextBytes {
				return none, r.limit(t.pathOf(cur), fmt.Sprintf("text longer than MaxTextBytes (%d)", r.lim.MaxTextBytes))
			}
			n.text += string(v)
		case xml.EndElement:
			depth--
			if cur == 0 {
				return 0, nil
			}
			cur = t.nodes[cur].parent
		}
	}
}

func (t *tree) add(se xml.StartElement, parent int32, off int64) int32 {
	n := node{name: se.Name.Local, parent: parent, first: none, last: none, next: none, off: off}
	for _, a := range se.Attr {
		if a.Name.Local == "Ccy" {
			n.ccy = a.Value
		}
	}
	id := int32(len(t.nodes))
	t.nodes = append(t.nodes, n)
	if parent != none {
		p := &t.nodes[parent]
		if p.last == none {
			p.first = id
		} else {
			t.nodes[p.last].next = id
		}
		p.last = id
	}
	return id
}

func blank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// child is n's first child named name, or none.
func (t *tree) child(n int32, name string) int32 {
	if n == none {
		return none
	}
	for c := t.nodes[n].first; c != none; c = t.nodes[c].next {
		if t.nodes[c].name == name {
			return c
		}
	}
	return none
}

// at follows a slash-separated path of first children.
func (t *tree) at(n int32, path string) int32 {
	for n != none && path != "" {
		var name string
		name, path, _ = strings.Cut(path, "/")
		n = t.child(n, name)
	}
	return n
}

// str is the trimmed text at path below n, "" when absent.
func (t *tree) str(n int32, path string) string {
	n = t.at(n, path)
	if n == none {
		return ""
	}
	return strings.TrimSpace(t.nodes[n].text)
}

// each calls fn for every child of n named name.
func (t *tree) each(n int32, name string, fn func(int32)) {
	if n == none {
		return
	}
	for c := t.nodes[n].first; c != none; c = t.nodes[c].next {
		if t.nodes[c].name == name {
			fn(c)
		}
	}
}

// count is the number of n's children named name.
func (t *tree) count(n int32, name string) int {
	k := 0
	t.each(n, name, func(int32) { k++ })
	return k
}

// pathOf is the element path of n, with sibling indices where an element
// repeats ("Ntry[17]") or is of a repeatable kind.
func (t *tree) pathOf(n int32) string {
	var parts []string
	for c := n; c != none; c = t.nodes[c].parent {
		nd := t.nodes[c]
		idx := t.index
		if nd.parent != none {
			idx = 0
			for s := t.nodes[nd.parent].first; s != none; s = t.nodes[s].next {
				if t.nodes[s].name == nd.name {
					idx++
				}
				if s == c {
					break
				}
			}
		}
		parts = append(parts, step(nd.name, idx))
	}
	var b strings.Builder
	b.WriteString(t.prefix)
	for i := len(parts) - 1; i >= 0; i-- {
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(parts[i])
	}
	return b.String()
}

var repeatable = map[string]bool{
	"Stmt": true, "Rpt": true, "Ntfctn": true, "Ntry": true, "NtryDtls": true, "TxDtls": true, "Bal": true,
	"TxInf": true, "TxInfAndSts": true, "OrgnlPmtInfAndSts": true, "OrgnlGrpInfAndSts": true, "Chrgs": true, "Rcrd": true,
}

func step(name string, idx int) string {
	if idx > 1 || (idx == 1 && repeatable[name]) {
		return name + "[" + strconv.Itoa(idx) + "]"
	}
	return name
}
