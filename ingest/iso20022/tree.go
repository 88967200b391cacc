package iso20022

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// tree holds one bounded unit of a file (an Ntry, a Bal, a TxInfAndSts) in
// an arena reused from unit to unit, so that memory follows the largest
// unit, not the file. Elements are matched by local name, so prefixes and
// namespaces inside the Document do not matter.
type tree struct {
	nodes []node
	depth int    // open elements of the reader above the unit: its path prefix
	index int    // the unit's index among its same-named siblings
	text  []byte // the unit's text while it is read, node after node
}

type node struct {
	name                      string
	text                      string
	ccy                       string // the Ccy attribute, where amounts carry it
	parent, first, last, next int32
	off                       int64
	from, to                  int32 // text in tree.text while the unit is read
	split                     bool  // text not contiguous in tree.text: kept in text as it comes
}

const none = int32(-1)

// subtree reads the element named name, just started, to its end, into r.t.
// Its text is gathered in one buffer and becomes one string when the unit
// is complete, each node's text a piece of it.
func (r *reader) subtree(name string) (int32, error) {
	idx := r.childIndex(name)
	t := &r.t
	t.nodes, t.text = t.nodes[:0], t.text[:0]
	t.depth, t.index = len(r.stack), idx
	t.add(name, r.sc.attrValue("Ccy"), none, r.sc.offset())
	cur, depth := int32(0), len(r.stack)+1
	r.inUnit, r.cur = true, 0
	defer func() { r.inUnit = false }()
	if depth > r.lim.MaxDepth {
		return none, r.limit(t.pathOf(r, cur), fmt.Sprintf("nesting deeper than MaxDepth (%d)", r.lim.MaxDepth))
	}
	for {
		tok, err := r.next()
		if err != nil {
			return none, err
		}
		switch tok {
		case tokStart:
			if len(t.nodes) >= r.lim.MaxEntryElements {
				return none, r.limit(t.pathOf(r, cur), fmt.Sprintf("%s has more than MaxEntryElements (%d) elements", name, r.lim.MaxEntryElements))
			}
			depth++
			if depth > r.lim.MaxDepth {
				return none, r.limit(t.pathOf(r, cur)+"/"+r.sc.name.local, fmt.Sprintf("nesting deeper than MaxDepth (%d)", r.lim.MaxDepth))
			}
			cur = t.add(r.sc.name.local, r.sc.attrValue("Ccy"), cur, r.sc.offset())
			r.cur = cur
		case tokText:
			v := r.sc.text
			n := &t.nodes[cur]
			have := len(n.text)
			if !n.split {
				have = int(n.to - n.from)
			}
			if have == 0 && blank(v) {
				continue
			}
			if have+len(v) > r.lim.MaxTextBytes {
				return none, r.limit(t.pathOf(r, cur), fmt.Sprintf("text longer than MaxTextBytes (%d)", r.lim.MaxTextBytes))
			}
			if len(t.text)+len(v) > math.MaxInt32 {
				return none, r.limit(t.pathOf(r, cur), name+" has more than 2 GiB of text")
			}
			switch {
			case n.split:
				n.text += string(v)
			case have == 0 || int(n.to) == len(t.text):
				if have == 0 {
					n.from = int32(len(t.text))
				}
				t.text = append(t.text, v...)
				n.to = int32(len(t.text))
			default: // text around a child element: rare, kept apart
				n.text, n.split = string(t.text[n.from:n.to])+string(v), true
			}
		case tokEnd:
			depth--
			if cur == 0 {
				t.seal()
				return 0, nil
			}
			cur = t.nodes[cur].parent
			r.cur = cur
		}
	}
}

// seal turns the unit's text into one string shared by its nodes.
func (t *tree) seal() {
	all := string(t.text)
	for i := range t.nodes {
		if n := &t.nodes[i]; !n.split {
			n.text = all[n.from:n.to]
		}
	}
}

func (t *tree) add(name, ccy string, parent int32, off int64) int32 {
	id := int32(len(t.nodes))
	t.nodes = append(t.nodes, node{name: name, ccy: ccy, parent: parent, first: none, last: none, next: none, off: off})
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
func (t *tree) pathOf(r *reader, n int32) string {
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
	b.WriteString(r.pathTo(t.depth))
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
