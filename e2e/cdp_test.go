package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// browser is headless Chromium driven over the DevTools protocol through
// --remote-debugging-pipe (JSON messages separated by NUL on file
// descriptors 3 and 4): no port, no websocket, no dependency.
type browser struct {
	t       *testing.T
	cmd     *exec.Cmd
	w       *os.File
	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpReply
	session string
	stderr  *strings.Builder
	logMu   sync.Mutex
	console []string // page exceptions and console messages, for failure reports
	done    chan struct{}
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// chromiumPath finds Debian's chromium (deploy/local/chromium.sh installs
// it), skipping the test when it is missing unless services are required.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, c := range []string{os.Getenv("RECON_CHROMIUM"), "chromium", "chromium-browser"} {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("RECON_REQUIRE_SERVICES") == "1" {
		t.Fatal("RECON_REQUIRE_SERVICES=1 but chromium is not installed: run deploy/local/chromium.sh install")
	}
	t.Skip("chromium not installed (deploy/local/chromium.sh install)")
	return ""
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	toChrome, fromUs, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromChrome, toUs, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-default-apps", "--mute-audio", "--no-default-browser-check", "--remote-debugging-pipe",
		"--user-data-dir="+t.TempDir(), "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, toUs} // fd 3: chrome reads, fd 4: chrome writes
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b := &browser{t: t, cmd: cmd, w: fromUs, waiting: map[int]chan cdpReply{}, stderr: &strings.Builder{}, done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{b: b}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	toChrome.Close()
	toUs.Close()
	go b.read(fromChrome)
	t.Cleanup(func() {
		_, _ = b.call(context.Background(), "", "Browser.close", nil)
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the browser's own process group
		_ = cmd.Wait()
		fromUs.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var target struct{ TargetID string }
	b.must(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var att struct{ SessionID string }
	b.must(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	b.session = att.SessionID
	b.must(ctx, b.session, "Page.enable", nil, nil)
	b.must(ctx, b.session, "Runtime.enable", nil, nil)
	return b
}

type lockedWriter struct{ b *browser }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.b.logMu.Lock()
	defer w.b.logMu.Unlock()
	if w.b.stderr.Len() < 64<<10 {
		w.b.stderr.Write(p)
	}
	return len(p), nil
}

func (b *browser) read(r *os.File) {
	defer close(b.done)
	br := bufio.NewReader(r)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			cdpReply
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.waiting[m.ID]
			delete(b.waiting, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m.cdpReply
			}
			continue
		}
		switch m.Method {
		case "Runtime.exceptionThrown", "Runtime.consoleAPICalled", "Page.javascriptDialogOpening":
			b.logMu.Lock()
			if len(b.console) < 200 {
				b.console = append(b.console, m.Method+" "+string(m.Params))
			}
			b.logMu.Unlock()
		}
	}
}

func (b *browser) call(ctx context.Context, session, method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpReply, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, _ := json.Marshal(msg)
	if _, err := b.w.Write(append(raw, 0)); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return nil, fmt.Errorf("%s: %d %s", method, r.Error.Code, r.Error.Message)
		}
		return r.Result, nil
	case <-b.done:
		return nil, fmt.Errorf("%s: browser exited", method)
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

func (b *browser) must(ctx context.Context, session, method string, params, out any) {
	b.t.Helper()
	res, err := b.call(ctx, session, method, params)
	if err != nil {
		b.t.Fatalf("%v\n%s", err, b.diagnostics())
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			b.t.Fatalf("%s: %v", method, err)
		}
	}
}

func (b *browser) diagnostics() string {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	return "page messages:\n" + strings.Join(b.console, "\n") + "\nchromium stderr (tail):\n" + tail(b.stderr.String(), 2000)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// eval runs a JavaScript expression in the page and decodes its value.
func (b *browser) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := b.call(ctx, b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
	if err != nil {
		return err
	}
	var r struct {
		Result           struct{ Value json.RawMessage }
		ExceptionDetails *struct{ Text string }
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	if r.ExceptionDetails != nil {
		return fmt.Errorf("%s: %s", expr, r.ExceptionDetails.Text)
	}
	if out != nil && len(r.Result.Value) > 0 {
		return json.Unmarshal(r.Result.Value, out)
	}
	return nil
}

func (b *browser) navigate(url string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b.must(ctx, b.session, "Page.navigate", map[string]any{"url": url}, nil)
}

// waitFor polls a JavaScript condition until it is true (the page talks
// to recon asynchronously, so the test waits for what it can see).
func (b *browser) waitFor(what, cond string, limit time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(limit)
	var err error
	for time.Now().Before(deadline) {
		var ok bool
		if err = b.eval("!!("+cond+")", &ok); err == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	var body string
	_ = b.eval("document.body ? document.body.innerText : ''", &body)
	b.t.Fatalf("%s: not seen within %s (%v)\npage text:\n%s\n%s", what, limit, err, tail(body, 3000), b.diagnostics())
}

// click presses and releases the left mouse button in the middle of the
// element selector finds, as a person would.
func (b *browser) click(selector string) {
	b.t.Helper()
	var box struct{ X, Y float64 }
	expr := fmt.Sprintf(`((sel) => { const e = document.querySelector(sel); if (!e) throw new Error("no element " + sel);
		e.scrollIntoView({block: "center"}); const r = e.getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })(%q)`, selector)
	if err := b.eval(expr, &box); err != nil {
		b.t.Fatalf("click %s: %v\n%s", selector, err, b.diagnostics())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		b.must(ctx, b.session, "Input.dispatchMouseEvent", map[string]any{"type": typ, "x": box.X, "y": box.Y, "button": "left", "clickCount": 1}, nil)
	}
}

// typeInto clicks a field, selects what it holds and types text over it.
func (b *browser) typeInto(selector, text string) {
	b.t.Helper()
	b.click(selector)
	if err := b.eval(fmt.Sprintf(`document.querySelector(%q).select()`, selector), nil); err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b.must(ctx, b.session, "Input.insertText", map[string]any{"text": text}, nil)
}

func (b *browser) text(selector string) string {
	var s string
	_ = b.eval(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, selector), &s)
	return s
}
