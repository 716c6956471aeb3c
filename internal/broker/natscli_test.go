package broker_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// The real `nats` CLI drives Choria Streams with a privileged certificate:
// a KV bucket is made, written and read, and the standard streams list.
func TestNatsCLIStreams(t *testing.T) {
	t.Parallel()
	bin := testutil.RequireProgram(t, "nats")
	env := devbroker.Prepare(t)
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.StatsPort = 0
	cfg.Network.Stream.Store = t.TempDir()
	b := devbroker.StartConfig(t, env, cfg)

	dir := t.TempDir()
	kp, err := env.PKI.CA.Issue(pki.IssueOptions{Name: "admin.privileged.mcollective", KeyType: "ec"})
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "admin.pem"), filepath.Join(dir, "admin.key")
	if err := kp.Save(cert, key); err != nil {
		t.Fatal(err)
	}
	nats := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args = append([]string{"--server", "tls://" + b.ClientAddr().String(), "--tlscert", cert, "--tlskey", key, "--tlsca", env.PKI.CAFile(), "--timeout", "5s", "--no-context"}, args...)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(cmd.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// JetStream takes a moment to answer after the broker is ready.
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := nats("kv", "add", "TEST")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kv add: %v\n%s", err, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if out, err := nats("kv", "put", "TEST", "k1", "v1"); err != nil {
		t.Fatalf("kv put: %v\n%s", err, out)
	}
	out, err := nats("kv", "get", "TEST", "k1", "--raw")
	if err != nil || strings.TrimSpace(out) != "v1" {
		t.Fatalf("kv get: %v\n%q", err, out)
	}
	// The standard streams come shortly after JetStream answers.
	for {
		out, err = nats("stream", "ls", "--names")
		if err == nil && strings.Contains(out, "CHORIA_EVENTS") && strings.Contains(out, "KV_TEST") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream ls: %v\n%s", err, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, s := range []string{"CHORIA_EVENTS", "CHORIA_MACHINE", "CHORIA_STREAM_ADVISORIES", "CHORIA_EXECUTOR", "KV_CHORIA_LEADER_ELECTION", "KV_TEST"} {
		if !strings.Contains(out, s) {
			t.Errorf("stream ls lacks %s:\n%s", s, out)
		}
	}
}
