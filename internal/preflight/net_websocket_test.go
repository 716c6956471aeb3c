package preflight

import (
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

func TestWebsocket(t *testing.T) {
	t.Parallel()
	expect(t, one(t, websocket{}, hostEnv(t, "tuned", nil)), Skip, "websocket_port is 0 (off)")

	dns := fakeDNS{hosts: map[string][]string{"ws.example.net": {"192.0.2.10"}}}
	port := testutil.FreePort(t)
	lines := func(adv string) []string {
		l := []string{"plugin.choria.network.listen_address = 127.0.0.1", fmt.Sprintf("plugin.choria.network.websocket_port = %d", port)}
		if adv != "" {
			l = append(l, "plugin.choria.network.websocket_advertise = "+adv)
		}
		return l
	}
	named := newSSL(t, sslOptions{issue: pki.IssueOptions{DNSNames: []string{"ws.example.net"}}})
	rs := run(t, websocket{}, realEnv(named.config(t, lines("ws.example.net:443")...), dns))
	expect(t, item(t, rs, fmt.Sprintf("websocket %d", port)), Pass, "is free")
	expect(t, item(t, rs, "certificate"), Pass, "CN=broker.example.net serves wss://")
	expect(t, item(t, rs, "advertise"), Pass, "ws.example.net resolves to 192.0.2.10, on the certificate")

	// Without advertise, nothing to resolve.
	if rs := run(t, websocket{}, realEnv(named.config(t, lines("")...), dns)); len(rs) != 2 {
		t.Errorf("want port and certificate only: %+v", rs)
	}

	plain := newSSL(t, sslOptions{})
	r := item(t, run(t, websocket{}, realEnv(plain.config(t, lines("ws.example.net:443")...), dns)), "advertise")
	expect(t, r, Fail, "do not include it")
	expect(t, item(t, run(t, websocket{}, realEnv(plain.config(t, lines("elsewhere.example.net:443")...), dns)), "advertise"), Fail, "elsewhere.example.net does not resolve")
	expect(t, item(t, run(t, websocket{}, realEnv(plain.config(t, lines("127.0.0.1:443")...), dns)), "advertise"), Fail, "127.0.0.1 is an address; certificate names")

	clientOnly := newSSL(t, sslOptions{issue: pki.IssueOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}})
	expect(t, item(t, run(t, websocket{}, realEnv(clientOnly.config(t, lines("")...), dns)), "certificate"), Fail, "wrong usage")

	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r = item(t, run(t, websocket{}, realEnv(plain.config(t, lines("")...), dns)), fmt.Sprintf("websocket %d", port))
	expect(t, r, Fail, "held by")
	if !strings.Contains(r.Fix, "plugin.choria.network.websocket_port") {
		t.Errorf("fix %q", r.Fix)
	}
}
