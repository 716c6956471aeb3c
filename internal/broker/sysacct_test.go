package broker_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

const (
	sysUser = "system"
	sysPass = "s3cret-system"
)

// sysConnect connects with tc and the user and password given ("" for none).
func sysConnect(url string, tc *tls.Config, user, pass string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Secure(tc), nats.Timeout(5 * time.Second), nats.MaxReconnects(0), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})}
	if user != "" {
		opts = append(opts, nats.UserInfo(user, pass))
	}
	return nats.Connect(url, opts...)
}

// The system user, over mTLS with its password, reaches the engine's
// system account; a wrong password or no client certificate is refused,
// and a certificate without the user sees nothing of that account.
func TestSystemAccount(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.StatsPort = 0
	cfg.Network.SystemUser, cfg.Network.SystemPassword = sysUser, sysPass
	b := devbroker.StartConfig(t, env, cfg)
	url := b.ClientURL()

	// Others listen first: a node and a privileged certificate, no user.
	var others []*nats.Subscription
	for _, tc := range []*tls.Config{devbroker.TLS(t, env, env.PKI.Nodes[0]), devbroker.IssueTLS(t, env, "admin.privileged.mcollective")} {
		nc, err := sysConnect(url, tc, "", "")
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		sub, err := nc.SubscribeSync("$SYS.>")
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		others = append(others, sub)
	}

	nc, err := sysConnect(url, devbroker.TLS(t, env, env.PKI.Client), sysUser, sysPass)
	if err != nil {
		t.Fatalf("system user refused: %v", err)
	}
	defer nc.Close()
	msg, err := nc.Request("$SYS.REQ.SERVER.PING", nil, 5*time.Second)
	if err != nil {
		t.Fatalf("$SYS.REQ.SERVER.PING: %v", err)
	}
	var reply struct {
		Server struct {
			Name string `json:"name"`
		} `json:"server"`
	}
	if err := json.Unmarshal(msg.Data, &reply); err != nil || reply.Server.Name != cfg.Identity {
		t.Fatalf("ping reply names %q (%v), want %q: %s", reply.Server.Name, err, cfg.Identity, msg.Data)
	}
	for i, sub := range others {
		if m, err := sub.NextMsg(500 * time.Millisecond); err == nil {
			t.Errorf("connection %d without the system user got %s", i, m.Subject)
		}
	}

	if nc, err := sysConnect(url, devbroker.TLS(t, env, env.PKI.Client), sysUser, "wrong"); err == nil {
		nc.Close()
		t.Error("wrong password admitted")
	}
	if b.SystemRefused() != 1 {
		t.Errorf("SystemRefused = %d, want 1", b.SystemRefused())
	}
	roots := x509.NewCertPool()
	roots.AddCert(env.PKI.CA.Cert)
	if nc, err := sysConnect(url, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, sysUser, sysPass); err == nil {
		nc.Close()
		t.Error("system user without a client certificate admitted")
	}
}

// Without system.user and password no name selects the system account.
func TestSystemAccountUnset(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	b := devbroker.Start(t, env)
	nc, err := sysConnect(b.ClientURL(), devbroker.IssueTLS(t, env, "admin.privileged.mcollective"), sysUser, "")
	if err != nil {
		t.Fatal(err) // the user name means nothing here: a privileged client
	}
	defer nc.Close()
	if _, err := nc.Request("$SYS.REQ.SERVER.PING", nil, time.Second); err == nil {
		t.Error("the system account answered with system.user unset")
	}
}

// In a cluster the system user hears every member, and the real nats CLI
// lists them all.
func TestSystemAccountCluster(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	var bs []*devbroker.Broker
	for _, cfg := range devbroker.ClusterConfigs(t, env, 3) {
		cfg.Network.SystemUser, cfg.Network.SystemPassword = sysUser, sysPass
		bs = append(bs, devbroker.StartConfig(t, env, cfg))
	}
	devbroker.WaitRoutes(t, bs, 2, 20*time.Second)

	nc, err := sysConnect(bs[0].ClientURL(), devbroker.TLS(t, env, env.PKI.Client), sysUser, sysPass)
	if err != nil {
		t.Fatalf("system user refused: %v", err)
	}
	defer nc.Close()
	// Interest in $SYS crosses the routes a moment after they are up.
	deadline := time.Now().Add(20 * time.Second)
	for {
		names := map[string]bool{}
		inbox := nats.NewInbox()
		sub, err := nc.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.PublishRequest("$SYS.REQ.SERVER.PING", inbox, nil); err != nil {
			t.Fatal(err)
		}
		for len(names) < 3 {
			m, err := sub.NextMsg(2 * time.Second)
			if err != nil {
				break
			}
			var reply struct {
				Server struct {
					Name string `json:"name"`
				} `json:"server"`
			}
			if json.Unmarshal(m.Data, &reply) == nil {
				names[reply.Server.Name] = true
			}
		}
		sub.Unsubscribe()
		if len(names) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping answered by %v, want the 3 members", names)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// report connections lists members with connections only.
	nc3, err := sysConnect(bs[2].ClientURL(), devbroker.TLS(t, env, env.PKI.Nodes[0]), "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer nc3.Close()
	bin := testutil.RequireProgram(t, "nats")
	dir := t.TempDir()
	kp := devbroker.KeyPair(t, env, env.PKI.Client)
	cert, key := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	if err := kp.Save(cert, key); err != nil {
		t.Fatal(err)
	}
	withCert := []string{"--tlscert", cert, "--tlskey", key}
	cli := func(certArgs []string, pass string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args = append(append(append([]string{"--server", "tls://" + bs[1].ClientAddr().String()}, certArgs...), "--tlsca", env.PKI.CAFile(),
			"--user", sysUser, "--password", pass, "--timeout", "5s", "--no-context"), args...)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(cmd.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, args := range [][]string{{"server", "list", "3"}, {"server", "report", "connections"}} {
		out, err := cli(withCert, sysPass, args...)
		if err != nil {
			t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		for _, b := range bs {
			// server list cuts the domain all the names share
			short, _, _ := strings.Cut(b.Config.Identity, ".")
			if !strings.Contains(out, "│ "+short) {
				t.Errorf("nats %s does not name %s:\n%s", strings.Join(args, " "), b.Config.Identity, out)
			}
		}
	}
	if out, err := cli(withCert, "wrong", "server", "list", "3"); err == nil {
		t.Errorf("nats server list with a wrong password worked:\n%s", out)
	}
	// The right password without a client certificate: refused at the
	// handshake, as every connection without one is.
	before := bs[1].Refused(pki.NoCertificate)
	if out, err := cli(nil, sysPass, "server", "list", "3"); err == nil {
		t.Errorf("nats server list without a client certificate worked:\n%s", out)
	}
	if bs[1].Refused(pki.NoCertificate) == before {
		t.Error("the attempt without a certificate was not refused by admission")
	}
	if bs[1].SystemRefused() == 0 {
		t.Error("the wrong password was not counted")
	}
}
