package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// health is /healthz's status ("ok", "starting", "stalled") or "" when
// it does not answer.
func health(base string) (string, string) {
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		return "", err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body struct{ Status, Error string }
	_ = json.Unmarshal(b, &body)
	return body.Status, body.Error
}

// recon run on the embedded broker, SIGKILLed mid-upload again and again,
// always comes back ready (a kill leaves kfake's transactions without abort
// markers: the start repairs them, bus.RepairAfterCrash), or refuses
// with the documented "stalled" answer naming the fix; it never hangs.
func TestIntegrationRunKilledMidUpload(t *testing.T) {
	if os.Getenv("RECON_REQUIRE_SERVICES") != "1" && os.Getenv("RECON_KILL_LOOP") != "1" {
		t.Skip("integration tier (builds recon, kills it 20 times, ~40 s; no services needed): set RECON_REQUIRE_SERVICES=1 (make test-integration) or RECON_KILL_LOOP=1")
	}
	const kills, readyWithin, budget = 20, 60 * time.Second, 3 * time.Minute
	dir := t.TempDir()
	bin := filepath.Join(dir, "recon")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	httpPort, kafkaPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RECON_") {
			env = append(env, kv)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	deadline := time.Now().Add(budget)
	var slowest time.Duration
	uploaded, stalled := 0, 0
	for i := 0; i <= kills; i++ {
		cmd := exec.Command(bin, "run", "--data-dir", data, "--http", fmt.Sprintf("127.0.0.1:%d", httpPort), "--kafka-port", fmt.Sprint(kafkaPort))
		cmd.Env = env
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("run-%02d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		status, why := "", ""
		for time.Since(started) < readyWithin {
			if status, why = health(base); status == "ok" || status == "stalled" {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		took := time.Since(started)
		slowest = max(slowest, took)
		switch status {
		case "ok":
		case "stalled":
			stalled++ // refused, with what it waits for and the fix
			if !strings.Contains(why, "rebuild its data dir") {
				t.Errorf("start %d: stalled without the fix: %s", i, why)
			}
		default:
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			logf.Close()
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("start %d: not ready within %s (%q %s); log:\n%s", i, readyWithin, status, why, b)
		}
		if i == kills || time.Now().After(deadline) {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			logf.Close()
			if i < kills {
				t.Fatalf("only %d kills within %s (slowest start %s)", i, budget, slowest)
			}
			break
		}
		// uploads in flight, then the kill
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for j := 0; ctx.Err() == nil; j++ {
				refs := make([]string, 2000)
				for k := range refs {
					refs[k] = fmt.Sprintf("K%d-%d-%d", i, j, k)
				}
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/bank/files?name=k.xml", bytes.NewReader(camtFile(fmt.Sprintf("K%d-%d", i, j), refs...)))
				if resp, err := http.DefaultClient.Do(req); err == nil {
					if resp.StatusCode/100 == 2 {
						uploaded++
					}
					resp.Body.Close()
				}
			}
		}()
		time.Sleep(time.Duration(200+rng.IntN(1500)) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		stop()
		<-done
	}
	// the fault shown: kills that left transactions without a marker, repaired at the next start
	repaired, markers := 0, 0
	logs, _ := filepath.Glob(filepath.Join(dir, "run-*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if m := regexp.MustCompile(`transactions it left open are aborted" aborted=(\d+)`).FindSubmatch(b); m != nil {
			n, _ := strconv.Atoi(string(m[1]))
			markers += n
			if n > 0 {
				repaired++
			}
		}
	}
	t.Logf("%d kills mid-upload, %d files accepted; %d starts repaired %d transactions left without an abort marker; %d starts stalled; slowest start to ready %s",
		kills, uploaded, repaired, markers, stalled, slowest)
	if repaired == 0 {
		t.Errorf("no kill left a transaction open: the test did not show the fault it guards against")
	}
	if stalled > 0 {
		t.Errorf("%d starts stalled: the repair at start did not make them ready", stalled)
	}
}
