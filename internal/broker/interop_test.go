package broker

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// TestClusterWithStockNATS joins a stock nats-server (same version as the
// embedded engine) to a cluster of ours with a cluster {} block, TLS and
// the routes password; messages cross it both ways.
func TestClusterWithStockNATS(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	ours := []int{testutil.FreePort(t), testutil.FreePort(t)}
	stockRoute, stockClient := testutil.FreePort(t), testutil.FreePort(t)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ours[0]), fmt.Sprintf("127.0.0.1:%d", ours[1]), fmt.Sprintf("127.0.0.1:%d", stockRoute)}

	stockKP := p.issue(t, pki.IssueOptions{Name: "stock.example.net", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, KeyType: "rsa"})
	p.write(t, "stock.pem", pki.CertsPEM(stockKP.Chain...))
	p.writeKey(t, "stock.key", stockKP)
	conf := fmt.Sprintf(`server_name: stock.example.net
listen: 127.0.0.1:%d
tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true, timeout: 2 }
cluster {
  name: CHORIA
  listen: 127.0.0.1:%d
  pool_size: -1
  authorization { user: routes, password: Vrph54FBcIvdM, timeout: 2 }
  tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true, timeout: 2 }
  routes: [ nats://routes:Vrph54FBcIvdM@127.0.0.1:%d, nats://routes:Vrph54FBcIvdM@127.0.0.1:%d ]
}
`, stockClient, p.path("stock.pem"), p.path("stock.key"), p.path("ca.pem"), stockRoute, p.path("stock.pem"), p.path("stock.key"), p.path("ca.pem"), ours[0], ours[1])
	stockLog := stockServer(t, p, "stock", conf)

	var bs []*Broker
	var logs []*syncBuffer
	for i, port := range ours {
		b, l := startBroker(t, p.member(t, i+1, peers, port))
		bs, logs = append(bs, b), append(logs, l)
	}
	deadline := time.Now().Add(30 * time.Second)
	for bs[0].Routes() != 2 || bs[1].Routes() != 2 {
		if time.Now().After(deadline) {
			stock, _ := os.ReadFile(stockLog)
			t.Fatalf("routes %d and %d, want 2 each; routes: %v\nstock log:\n%s\nours:\n%s", bs[0].Routes(), bs[1].Routes(), bs[0].routeNames(), stock, logs[0])
		}
		time.Sleep(100 * time.Millisecond)
	}
	if names := strings.Join(bs[0].routeNames(), ","); !strings.Contains(names, "stock.example.net") {
		t.Fatalf("routes %s", names)
	}

	client := p.issue(t, pki.IssueOptions{Name: "admin.privileged.mcollective"}) // any subject
	onStock := mustConnect(t, fmt.Sprintf("nats://127.0.0.1:%d", stockClient), clientTLS(p.ca.Cert, client))
	onOurs := mustConnect(t, bs[1].ClientURL(), clientTLS(p.ca.Cert, client))
	crossRoutes(t, onOurs, onStock, "ours.to.stock")
	crossRoutes(t, onStock, onOurs, "stock.to.ours")
}

// crossRoutes publishes until the subscriber's interest has crossed the
// routes and the message arrives.
func crossRoutes(t *testing.T, pub, sub *nats.Conn, subject string) {
	t.Helper()
	s, err := sub.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	sub.Flush()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pub.Publish(subject, []byte("hello"))
		pub.Flush()
		if m, err := s.NextMsg(200 * time.Millisecond); err == nil && string(m.Data) == "hello" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not cross the cluster", subject)
		}
	}
}
