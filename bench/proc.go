package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// child is one component running as a child process of the recon binary.
type child struct {
	name    string // the component, or which instance of it ("matcher-2")
	cmd     *exec.Cmd
	started time.Time // just before the process was started
	readyAt time.Time // when it said "ready" (set before ready is closed)
	ready   chan struct{}
	loans   atomic.Int64
	held    atomic.Int64 // the matcher's held partitions: route<<32 | post
	done    chan struct{}
	err     error
	log     string
}

// startChild starts component as a child process named name (its log is
// workDir/name.log).
func startChild(exe, workDir, component, name string, spec ChildSpec) (*child, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	c := &child{name: name, ready: make(chan struct{}), done: make(chan struct{}), log: filepath.Join(workDir, name+".log")}
	logf, err := os.Create(c.log)
	if err != nil {
		return nil, err
	}
	c.cmd = exec.Command(exe, "bench", "component", component, "--spec", string(b))
	c.cmd.Stderr = logf
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	c.started = time.Now()
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		var once bool
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "ready" && !once:
				once = true
				c.readyAt = time.Now()
				close(c.ready)
			case strings.HasPrefix(line, "loans "):
				if n, err := strconv.ParseInt(strings.TrimPrefix(line, "loans "), 10, 64); err == nil {
					c.loans.Store(n)
				}
			case strings.HasPrefix(line, "held "):
				if route, post, ok := parseHeld(line); ok {
					c.held.Store(int64(route)<<32 | int64(post))
				}
			}
		}
		c.err = c.cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	return c, nil
}

// waitReady waits for the child's "ready" line.
func (c *child) waitReady(ctx context.Context, limit time.Duration) error {
	select {
	case <-c.ready:
		return nil
	case <-c.done:
		return fmt.Errorf("bench: %s exited before it was ready (%v); see %s", c.name, c.err, c.log)
	case <-time.After(limit):
		return fmt.Errorf("bench: %s not ready after %s; see %s", c.name, limit, c.log)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// alive reports an error when the child has exited.
func (c *child) alive() error {
	select {
	case <-c.done:
		return fmt.Errorf("bench: %s exited (%v); see %s", c.name, c.err, c.log)
	default:
		return nil
	}
}

// stop reads the child's peak RSS, then ends it (SIGTERM, SIGKILL after 15 s).
func (c *child) stop() float64 {
	peak, _ := PeakRSSMiB(c.cmd.Process.Pid)
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	return peak
}

// parseHeld reads a matcher's "held R P" line.
func parseHeld(line string) (route, post int, ok bool) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "held" {
		return 0, 0, false
	}
	r, err1 := strconv.Atoi(f[1])
	p, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || r < 0 || p < 0 {
		return 0, 0, false
	}
	return r, p, true
}

// heldParts is the partitions whose state the matcher's route and post
// stages hold, as it last said.
func (c *child) heldParts() (route, post int) {
	h := c.held.Load()
	return int(h >> 32), int(h & 0xffffffff)
}

// isReady reports whether the child said "ready".
func (c *child) isReady() bool { return closed(c.ready) }

// readyIn is the time from the process's start to its "ready" line.
func (c *child) readyIn() time.Duration { return c.readyAt.Sub(c.started) }

// rss reads the child's resident set now and its peak, in MiB.
func (c *child) rss() (now, peak float64) {
	now, _ = RSSMiB(c.cmd.Process.Pid)
	peak, _ = PeakRSSMiB(c.cmd.Process.Pid)
	return now, peak
}

// kill reads the child's peak RSS, then ends it with SIGKILL, as a crash
// would.
func (c *child) kill() float64 {
	peak, _ := PeakRSSMiB(c.cmd.Process.Pid)
	_ = c.cmd.Process.Kill()
	<-c.done
	return peak
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
