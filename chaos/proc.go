package chaos

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Proc is one running recon process, its output in a log file.
type Proc struct {
	Name string
	Base string // http://addr
	Log  string // path of its log
	cmd  *exec.Cmd
	done chan struct{}
	// ended: the harness ended it (SIGKILL, SIGTERM or Stop), as a fault
	// or a step; it did not exit by itself
	ended atomic.Bool
}

// Binary builds the recon binary from repo into dir.
func Binary(repo, dir string) (string, error) {
	bin := filepath.Join(dir, "recon")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/recon")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/recon: %v\n%s", err, out)
	}
	return bin, nil
}

var logSeq struct {
	sync.Mutex
	n int
}

// Start runs `bin args... --http <free port>` with extra environment,
// logging to logDir/name-N.log; it does not wait for health.
func Start(bin, logDir, name string, env []string, args ...string) (*Proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logSeq.Lock()
	logSeq.n++
	path := filepath.Join(logDir, fmt.Sprintf("%03d-%s.log", logSeq.n, name))
	logSeq.Unlock()
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append(args, "--http", addr)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &Proc{Name: name, Base: "http://" + addr, Log: path, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// PID of the process.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited says whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitedByItself says whether the process ended without the harness
// ending it: a crash, or a component that gave up.
func (p *Proc) ExitedByItself() bool { return p.Exited() && !p.ended.Load() }

// Healthy polls /healthz until 200, the process exits, or limit passes.
func (p *Proc) Healthy(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("%s exited before it was healthy (log %s):\n%s", p.Name, p.Log, p.Tail(20))
		}
		if resp, err := httpClient.Get(p.Base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not healthy after %s (log %s):\n%s", p.Name, limit, p.Log, p.Tail(20))
}

// Signal sends sig; for SIGKILL and SIGTERM it waits for the exit.
func (p *Proc) Signal(sig syscall.Signal) {
	if p.Exited() {
		return
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		p.ended.Store(true)
	}
	_ = p.cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Signal(syscall.SIGCONT)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// Stop ends the process (SIGCONT first, in case it is stopped).
func (p *Proc) Stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	p.Signal(syscall.SIGTERM)
}

// Tail is the last n lines of the log.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogCount counts the log lines containing any of the substrings.
func (p *Proc) LogCount(subs ...string) int {
	f, err := os.Open(p.Log)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		for _, s := range subs {
			if strings.Contains(sc.Text(), s) {
				n++
				break
			}
		}
	}
	return n
}

// LogFirst is the first log line containing any of the substrings, its
// msg and err fields only when it is a slog line.
func (p *Proc) LogFirst(subs ...string) string { return p.LogFirstSince(0, "", subs...) }

// LogSize is the log's current size, for LogFirstSince.
func (p *Proc) LogSize() int64 {
	st, err := os.Stat(p.Log)
	if err != nil {
		return 0
	}
	return st.Size()
}

// LogFirstSince is the first line logged after offset that contains
// within and one of subs (from its msg= on), or "".
func (p *Proc) LogFirstSince(offset int64, within string, subs ...string) string {
	b, _ := os.ReadFile(p.Log)
	if offset <= int64(len(b)) {
		b = b[offset:]
	}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, within) {
			continue
		}
		for _, s := range subs {
			if strings.Contains(l, s) {
				if i := strings.Index(l, "msg="); i >= 0 {
					l = l[i:]
				}
				return l
			}
		}
	}
	return ""
}

// Metric sums the samples of a Prometheus metric family on /metrics
// (-1 when unreachable).
func (p *Proc) Metric(name string) float64 {
	resp, err := httpClient.Get(p.Base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return sumMetric(b, name)
}

func sumMetric(b []byte, name string) float64 {
	sum := 0.0
	for _, line := range bytes.Split(b, []byte("\n")) {
		s := string(line)
		if !strings.HasPrefix(s, name) || len(s) == len(name) || (s[len(name)] != '{' && s[len(name)] != ' ') {
			continue
		}
		f := strings.Fields(s)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// RSSPeakKB is the process's peak resident set (VmHWM) in kB.
func (p *Proc) RSSPeakKB() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}

var httpClient = &http.Client{Timeout: 30 * time.Second}
