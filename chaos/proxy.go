package chaos

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a TCP proxy on loopback in front of one service, with faults:
// a cut (connections stall and new ones hang, as across a dead link), added
// latency, and lost answers (the request reaches the server, the answer is
// dropped and the connection closed).
type Proxy struct {
	Addr   string // where clients connect
	target string
	ln     net.Listener

	mu    sync.Mutex
	conns map[net.Conn]bool
	mode  atomic.Int32
	delay atomic.Int64

	// evidence
	Cut      atomic.Int64 // connections torn down by a cut
	Held     atomic.Int64 // bytes held back while cut
	Lost     atomic.Int64 // answers dropped
	Accepted atomic.Int64
}

const (
	modePass int32 = iota
	modeCut
	modeLose
)

// NewProxy listens on addr ("127.0.0.1:0" for any port) and forwards to target.
func NewProxy(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]bool{}}
	go p.accept()
	return p, nil
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.Accepted.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	p.track(c, true)
	defer func() { p.track(c, false); c.Close() }()
	for p.mode.Load() == modeCut { // a dead link: the client's connect "works", nothing answers
		time.Sleep(50 * time.Millisecond)
		if !p.isTracked(c) {
			return
		}
	}
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	p.track(s, true)
	defer func() { p.track(s, false); s.Close() }()
	done := make(chan struct{}, 2)
	go func() { p.pipe(s, c, false); done <- struct{}{} }()
	go func() { p.pipe(c, s, true); done <- struct{}{} }()
	<-done
}

func (p *Proxy) isTracked(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns[c]
}

// pipe copies src to dst; answer says src is the server.
func (p *Proxy) pipe(dst, src net.Conn, answer bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			for p.mode.Load() == modeCut {
				p.Held.Add(int64(n))
				time.Sleep(50 * time.Millisecond)
				if !p.isTracked(src) {
					return
				}
			}
			if d := p.delay.Load(); d > 0 {
				time.Sleep(time.Duration(d))
			}
			if answer && p.mode.Load() == modeLose {
				p.Lost.Add(1)
				dst.Close()
				src.Close()
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

// CutLink stalls every connection and holds new ones until Heal.
func (p *Proxy) CutLink() { p.mode.Store(modeCut) }

// LoseAnswers drops every answer from now on (the request got through).
func (p *Proxy) LoseAnswers() { p.mode.Store(modeLose) }

// Slow adds d before every chunk forwarded.
func (p *Proxy) Slow(d time.Duration) { p.delay.Store(int64(d)) }

// Heal ends a cut (closing the connections it stalled, as TCP would after
// a long partition), lost answers and latency.
func (p *Proxy) Heal() {
	if p.mode.Swap(modePass) == modeCut {
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
			delete(p.conns, c)
			p.Cut.Add(1)
		}
		p.mu.Unlock()
	}
	p.delay.Store(0)
}

// Close stops the proxy and its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}
