package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/auth"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ingest"
	"github.com/reconhq/recon/matcher"
)

// settings are every flag of the serving commands; environment variables
// give the defaults, flags win.
type settings struct {
	brokers    string
	kafkaPort  int
	partitions int
	replicas   int // replication factor of created topics (deploy: 3 on a three-broker cluster)
	httpAddr   string
	dataDir    string
	clickhouse string
	chDatabase string
	chFlush    time.Duration
	alertsFile string
	instance   string
	// fileTxnRecords caps the records of one Kafka transaction of a file
	// (0: ingest's default); a file larger goes in several.
	fileTxnRecords int
	demo           bool
	defaults       envDefaults // the environment's defaults of the flags above
}

func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// envDefaults reads typed flag defaults from the environment and keeps the
// malformed ones: a command stops naming them (parse) rather than run on a
// default the operator did not choose.
type envDefaults struct{ bad []error }

func (d *envDefaults) int(key string, def int) int {
	v, ok := os.LookupEnv(key)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		d.bad = append(d.bad, fmt.Errorf("environment %s=%q: not an integer", key, v))
		return def
	}
	return n
}

func (d *envDefaults) duration(key string, def time.Duration) time.Duration {
	v, ok := os.LookupEnv(key)
	if !ok || v == "" {
		return def
	}
	t, err := time.ParseDuration(v)
	if err != nil {
		d.bad = append(d.bad, fmt.Errorf("environment %s=%q: not a duration (250ms, 1m)", key, v))
		return def
	}
	return t
}

func (d *envDefaults) err() error { return errors.Join(d.bad...) }

// newFlags declares the serving commands' flags into s; parse them with
// s.parse, which also reports malformed environment defaults.
func newFlags(name string, s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("recon "+name, flag.ContinueOnError)
	fs.StringVar(&s.brokers, "brokers", env("RECON_KAFKA_BROKERS", ""), "Kafka bootstrap brokers, comma-separated (env RECON_KAFKA_BROKERS); empty starts an embedded broker (run only)")
	fs.IntVar(&s.kafkaPort, "kafka-port", s.defaults.int("RECON_EMBEDDED_KAFKA_PORT", 9092), "port of the embedded Kafka-protocol broker on 127.0.0.1")
	fs.IntVar(&s.partitions, "partitions", s.defaults.int("RECON_PARTITIONS", 3), "partitions of every recon topic (created at start; must match existing topics)")
	fs.IntVar(&s.replicas, "replication-factor", s.defaults.int("RECON_REPLICATION_FACTOR", 1), "replication factor of the topics recon creates (env RECON_REPLICATION_FACTOR; 3 on a production cluster)")
	fs.StringVar(&s.httpAddr, "http", env("RECON_HTTP_ADDR", "127.0.0.1:8080"), "HTTP listen address (API, /healthz, /metrics)")
	fs.StringVar(&s.dataDir, "data-dir", env("RECON_DATA_DIR", "./data"), "where recon keeps its state (embedded broker log, the matcher's state stores, dead-letter spool; an alerts-state.json of an earlier version is migrated to Kafka)")
	fs.StringVar(&s.clickhouse, "clickhouse", env("RECON_CLICKHOUSE_ADDR", ""), "ClickHouse native address host:port (env RECON_CLICKHOUSE_ADDR); empty: no analytics sink")
	fs.StringVar(&s.chDatabase, "clickhouse-database", env("RECON_CLICKHOUSE_DATABASE", "recon"), "ClickHouse database")
	fs.DurationVar(&s.chFlush, "clickhouse-flush", s.defaults.duration("RECON_CLICKHOUSE_FLUSH", 250*time.Millisecond), "longest a row waits before its batch is written to ClickHouse (env RECON_CLICKHOUSE_FLUSH; 1ms..1m): shorter is fresher data, longer is fewer, bigger inserts")
	fs.StringVar(&s.alertsFile, "alerts-config", env("RECON_ALERTS_CONFIG", ""), "alert rules YAML (env RECON_ALERTS_CONFIG), reloaded when it changes; empty: no alerts")
	fs.IntVar(&s.fileTxnRecords, "file-txn-records", s.defaults.int("RECON_INGEST_FILE_TXN_RECORDS", 0), "most records of a file published in one Kafka transaction (env RECON_INGEST_FILE_TXN_RECORDS; 0: 20,000); a larger file goes in several, complete only once the last committed")
	fs.StringVar(&s.instance, "instance", env("RECON_INSTANCE", "recon-0"), "stable, unique name of this instance (consumer group member and transactional id)")
	return fs
}

// webhooks reads the bank webhook receiver's settings; secrets come from
// the environment only, never from flags (they would show in ps).
func (s settings) webhooks() ingest.WebhookConfig {
	list := func(key string) []string {
		var out []string
		for _, v := range strings.Split(os.Getenv(key), ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
		return out
	}
	return ingest.WebhookConfig{
		BearerTokens: list("RECON_WEBHOOK_BEARER_TOKENS"),
		Secrets:      list("RECON_WEBHOOK_SECRETS"),
		BankAPIBase:  os.Getenv("RECON_BANK_API_BASE"),
		BankAPIToken: os.Getenv("RECON_BANK_API_TOKEN"),
		AccountIBAN:  os.Getenv("RECON_WEBHOOK_ACCOUNT_IBAN"),
	}
}

// ---- API access control (package auth) ----

// apiTokens reads the HTTP API's tokens, "name:scope1+scope2:secret,...",
// from RECON_API_TOKENS and/or the file RECON_API_TOKENS_FILE (a mounted
// secret): environment only, never flags (ps would show them). None: access
// control is off.
func (s settings) apiTokens() (*auth.Tokens, error) {
	return auth.Load(os.Getenv("RECON_API_TOKENS"), os.Getenv("RECON_API_TOKENS_FILE"))
}

// ---- end API access control ----

// ownAccounts are the lender's own IBANs (RECON_OWN_ACCOUNTS, comma-separated):
// transfers between them are neutral, not repayments.
func ownAccounts() map[string]bool {
	own := map[string]bool{}
	for _, v := range strings.Split(os.Getenv("RECON_OWN_ACCOUNTS"), ",") {
		if v = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(v), " ", "")); v != "" {
			own[v] = true
		}
	}
	return own
}

// allocation is RECON_BORROWER_ALLOCATION, the policy for a payment to a
// borrower's virtual IBAN that names none of their loans.
func allocation() (string, error) {
	switch v := os.Getenv("RECON_BORROWER_ALLOCATION"); v {
	case "", matcher.AllocOldestDue:
		return matcher.AllocOldestDue, nil
	case matcher.AllocProRata:
		return v, nil
	default:
		return "", fmt.Errorf("RECON_BORROWER_ALLOCATION=%q: want %s (the default) or %s", v, matcher.AllocOldestDue, matcher.AllocProRata)
	}
}

// loanReference is RECON_LOAN_REFERENCE_FORMAT, the lender's loan
// reference format (a Go regexp, matched against a whole token of a
// remittance text), compiled anchored; nil when unset.
func loanReference() (*regexp.Regexp, error) {
	v := os.Getenv("RECON_LOAN_REFERENCE_FORMAT")
	if v == "" {
		return nil, nil
	}
	re, err := regexp.Compile(`^(?:` + v + `)$`)
	if err != nil {
		return nil, fmt.Errorf("RECON_LOAN_REFERENCE_FORMAT=%q is not a Go regular expression: %v", v, err)
	}
	if re.MatchString("") {
		return nil, fmt.Errorf("RECON_LOAN_REFERENCE_FORMAT=%q matches the empty text: a loan reference format names at least one character", v)
	}
	return re, nil
}

// parse parses the command line, then stops on a malformed environment
// default (RECON_PARTITIONS=abc) with a message naming the variable. A
// non-zero result is the exit code to stop with.
func (s *settings) parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := s.defaults.err(); err != nil {
		return fail("%v", err)
	}
	return 0
}

// cluster is the Kafka configuration of a command that needs a running
// cluster (only 'recon run' embeds a broker).
func (s settings) cluster(command string) (bus.Config, error) {
	kc, err := s.kafka()
	if err == nil && s.brokers == "" {
		err = fmt.Errorf("%s needs a Kafka cluster: set --brokers or RECON_KAFKA_BROKERS", command)
	}
	return kc, err
}

func (s settings) kafka() (bus.Config, error) {
	c := bus.DefaultConfig()
	if s.brokers != "" {
		c.Brokers = strings.Split(s.brokers, ",")
	}
	if s.partitions < 1 {
		return c, errors.New("--partitions must be at least 1")
	}
	c.Partitions = int32(s.partitions)
	if s.replicas < 1 || s.replicas > 16 {
		return c, errors.New("--replication-factor must be 1..16")
	}
	c.ReplicationFactor = int16(s.replicas)
	c.ClientID = "recon-" + s.instance
	return c, c.Validate()
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "recon: "+format+"\n", args...)
	return 1
}

// client opens a Kafka client for a one-shot command and makes sure
// recon's topics exist; the caller closes it.
func client(ctx context.Context, kc bus.Config) (*kgo.Client, error) {
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	if err := bus.EnsureTopics(ctx, cl, kc); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}
