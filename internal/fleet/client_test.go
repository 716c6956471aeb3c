package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// stallConn lets the first write (the ClientHello) through and blocks the
// rest until released, so the broker holds a handshake slot.
type stallConn struct {
	net.Conn
	once    sync.Once
	first   bool
	release chan struct{}
}

func (c *stallConn) Write(b []byte) (int, error) {
	if c.first {
		<-c.release
		return 0, errors.New("released")
	}
	c.first = true
	return c.Conn.Write(b)
}

// stallHandshake starts a TLS handshake with the broker that stops after
// its ClientHello; the returned function ends it and frees the slot.
func stallHandshake(t *testing.T, addr string) func() {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	sc := &stallConn{Conn: raw, release: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(sc, &tls.Config{InsecureSkipVerify: true}).Handshake()
	}()
	release := func() {
		sc.once.Do(func() {
			close(sc.release)
			raw.Close()
			<-done
		})
	}
	t.Cleanup(release)
	return release
}

// TestPingRetriesWhileBrokerSheds: a broker whose only handshake slot is
// taken refuses ping's ClientHello. ping keeps retrying within its
// connect budget and gets in once the slot frees; out of budget, its error
// says the broker is shedding handshakes.
func TestPingRetriesWhileBrokerSheds(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.StatsPort = 0
	cfg.Network.HandshakeLimit = 1
	// A ClientHello waits up to a quarter of this for a slot: less than
	// ping's 2 s connect timeout, so ping sees the refusal.
	cfg.Network.TLSTimeout = 6 * time.Second
	db := devbroker.StartConfig(t, env, cfg)
	addr := strings.TrimPrefix(db.URL(), "nats://")
	e := startFleet(t, env, 3, func(o *EmulatorOptions) { o.ConnectConcurrency = 1 })

	release := stallHandshake(t, addr)
	time.Sleep(200 * time.Millisecond) // the stalled ClientHello holds the slot
	c := credentials(t, env.ClientConf, false)
	base := PingOptions{Servers: c.Servers, Cert: c.Cert, CA: c.CA, Timeout: 5 * time.Second, Expect: 3}

	short := base
	short.ConnectTimeout = 2 * time.Second
	_, err = Ping(context.Background(), short)
	var ce *ConnectError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "sheds handshakes") || ce.Attempts < 2 {
		t.Fatalf("ping against a shedding broker: %v; want a ConnectError of several attempts saying the broker sheds handshakes", err)
	}

	go func() {
		time.Sleep(time.Second)
		release()
	}()
	long := base
	long.ConnectTimeout = 30 * time.Second
	res, err := Ping(context.Background(), long)
	if err != nil {
		t.Fatalf("ping with time to retry: %v", err)
	}
	if missing := res.Missing(e.Identities()); len(missing) > 0 {
		t.Fatalf("missing %v", missing)
	}
}

// TestConnectErrorsSayWhy: failures a retry cannot mend end at once, and
// each says what to check.
func TestConnectErrorsSayWhy(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	db := devbroker.Start(t, env)
	c := credentials(t, env.ClientConf, false)
	other := devbroker.Prepare(t) // another CA: the broker refuses its certificate
	oc := credentials(t, other.ClientConf, false)
	free := testutil.FreePort(t)
	for _, tc := range []struct {
		name     string
		o        PingOptions
		want     string
		onceOnly bool
	}{
		{"nothing listens", PingOptions{Servers: []string{"nats://127.0.0.1:" + strconv.Itoa(free)}, Cert: c.Cert, CA: c.CA, ConnectTimeout: 1500 * time.Millisecond}, "nothing listens there", false},
		// TLS 1.3 may report it as a close after the handshake: retried then.
		{"certificate of another CA", PingOptions{Servers: []string{db.URL()}, Cert: oc.Cert, CA: c.CA, ConnectTimeout: 3 * time.Second}, "refused this certificate", false},
		{"broker not trusted", PingOptions{Servers: []string{db.URL()}, Cert: c.Cert, CA: oc.CA, ConnectTimeout: 20 * time.Second}, "certificate is not trusted", true},
		{"name does not resolve", PingOptions{Servers: []string{"nats://no-such-host.invalid:4222"}, Cert: c.Cert, CA: c.CA, ConnectTimeout: 20 * time.Second}, "does not resolve", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Ping(context.Background(), tc.o)
			var ce *ConnectError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want a ConnectError saying %q", err, tc.want)
			}
			if tc.onceOnly && ce.Attempts != 1 {
				t.Fatalf("%d attempts; a retry cannot mend this: %v", ce.Attempts, err)
			}
			if !tc.onceOnly && ce.Attempts < 2 && !strings.Contains(err.Error(), "bad certificate") {
				t.Fatalf("%d attempt; want retries within the budget: %v", ce.Attempts, err)
			}
		})
	}
}
