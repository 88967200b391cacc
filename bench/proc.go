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
	name  string
	cmd   *exec.Cmd
	ready chan struct{}
	loans atomic.Int64
	done  chan struct{}
	err   error
	log   string
}

func startChild(exe, workDir, name string, spec ChildSpec) (*child, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	c := &child{name: name, ready: make(chan struct{}), done: make(chan struct{}), log: filepath.Join(workDir, name+".log")}
	logf, err := os.Create(c.log)
	if err != nil {
		return nil, err
	}
	c.cmd = exec.Command(exe, "bench", "component", name, "--spec", string(b))
	c.cmd.Stderr = logf
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
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
				close(c.ready)
			case strings.HasPrefix(line, "loans "):
				if n, err := strconv.ParseInt(strings.TrimPrefix(line, "loans "), 10, 64); err == nil {
					c.loans.Store(n)
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
