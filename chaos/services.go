package chaos

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Services are the Kafka broker and ClickHouse server of one chaos run,
// started by deploy/local's scripts under their own directory and ports so
// that killing and pausing them touches nothing else.
type Services struct {
	Repo         string // checkout root (where deploy/local lives)
	Dir          string // RECON_SERVICES_DIR
	KafkaPort    int
	KafkaCtrl    int
	CHPort       int
	CHHTTPPort   int
	CHInterPort  int
	ProxiedPort  int    // the broker's second listener, reached only through KafkaProxy
	KafkaProxy   *Proxy // in front of ProxiedPort; the broker advertises it there
	CHProxy      *Proxy // in front of ClickHouse's native port (the sink goes through it)
	Log          func(format string, args ...any)
	kafkaStarted bool
	chStarted    bool
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// NewServices picks a directory and free ports; nothing starts yet.
func NewServices(repo string, logf func(string, ...any)) (*Services, error) {
	s := &Services{Repo: repo, Dir: fmt.Sprintf("/tmp/recon-chaos-%d", os.Getpid()), Log: logf}
	for _, p := range []*int{&s.KafkaPort, &s.KafkaCtrl, &s.CHPort, &s.CHHTTPPort, &s.CHInterPort, &s.ProxiedPort} {
		var err error
		if *p, err = freePort(); err != nil {
			return nil, err
		}
	}
	var err error
	if s.KafkaProxy, err = NewProxy("127.0.0.1:0", "127.0.0.1:"+strconv.Itoa(s.ProxiedPort)); err != nil {
		return nil, err
	}
	if s.CHProxy, err = NewProxy("127.0.0.1:0", s.ClickHouse()); err != nil {
		s.KafkaProxy.Close()
		return nil, err
	}
	return s, nil
}

func (s *Services) env() []string {
	return append(os.Environ(),
		"RECON_SERVICES_DIR="+s.Dir,
		"RECON_KAFKA_PORT="+strconv.Itoa(s.KafkaPort),
		"RECON_KAFKA_CONTROLLER_PORT="+strconv.Itoa(s.KafkaCtrl),
		"RECON_CLICKHOUSE_PORT="+strconv.Itoa(s.CHPort),
		"RECON_CLICKHOUSE_HTTP_PORT="+strconv.Itoa(s.CHHTTPPort),
		"RECON_CLICKHOUSE_INTERSERVER_PORT="+strconv.Itoa(s.CHInterPort),
		"RECON_KAFKA_PROXIED_PORT="+strconv.Itoa(s.ProxiedPort),
		"RECON_KAFKA_PROXIED_ADVERTISED="+s.KafkaProxy.Addr,
	)
}

func (s *Services) script(name, verb string) error {
	cmd := exec.Command(filepath.Join(s.Repo, "deploy/local", name), verb)
	cmd.Env = s.env()
	out, err := cmd.CombinedOutput()
	if s.Log != nil {
		s.Log("%s %s: %s", name, verb, strings.TrimSpace(string(out)))
	}
	if err != nil {
		return fmt.Errorf("deploy/local/%s %s: %v\n%s", name, verb, err, out)
	}
	return nil
}

// Brokers is the Kafka bootstrap address.
func (s *Services) Brokers() string { return "127.0.0.1:" + strconv.Itoa(s.KafkaPort) }

// ClickHouse is the native address.
func (s *Services) ClickHouse() string { return "127.0.0.1:" + strconv.Itoa(s.CHPort) }

// CHHTTP is the HTTP interface's base URL (the checker reads through it).
func (s *Services) CHHTTP() string { return "http://127.0.0.1:" + strconv.Itoa(s.CHHTTPPort) }

// StartKafka starts (or restarts) the broker and waits until it answers.
func (s *Services) StartKafka() error {
	s.kafkaStarted = true
	return s.script("kafka.sh", "start")
}

// StopKafka stops the broker by its pid file.
func (s *Services) StopKafka() error { return s.script("kafka.sh", "stop") }

// StartClickHouse starts (or restarts) ClickHouse and waits until it answers.
func (s *Services) StartClickHouse() error {
	s.chStarted = true
	return s.script("clickhouse.sh", "start")
}

// StopClickHouse stops ClickHouse by its pid file.
func (s *Services) StopClickHouse() error { return s.script("clickhouse.sh", "stop") }

// KafkaPID is the broker's pid from the script's pid file.
func (s *Services) KafkaPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir, "kafka", "kafka.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// SignalKafka sends sig to the broker this run started (by its pid file).
func (s *Services) SignalKafka(sig syscall.Signal) (int, error) {
	pid, err := s.KafkaPID()
	if err != nil {
		return 0, err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return pid, err
	}
	if sig == syscall.SIGKILL {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return pid, nil
}

// Close stops both services and removes their data.
func (s *Services) Close() {
	s.KafkaProxy.Close()
	s.CHProxy.Close()
	if s.kafkaStarted {
		_, _ = s.SignalKafka(syscall.SIGCONT)
		_ = s.StopKafka()
	}
	if s.chStarted {
		_ = s.StopClickHouse()
	}
	if strings.HasPrefix(s.Dir, "/tmp/recon-chaos-") {
		_ = os.RemoveAll(s.Dir)
	}
}
