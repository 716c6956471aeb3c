package broker

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// member is the config of cluster member i: its own certificate, client
// and cluster ports, and the peers list every member shares.
func (p *testPKI) member(t testing.TB, i int, peers []string, peerPort int) *config.Config {
	t.Helper()
	name := fmt.Sprintf("broker%d.example.net", i)
	kp := p.issue(t, pki.IssueOptions{Name: name, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	p.write(t, name+".pem", pki.CertsPEM(kp.Chain...))
	p.writeKey(t, name+".key", kp)
	cfg := p.config()
	cfg.Identity = name
	cfg.Security.FileCertificate, cfg.Security.FileKey = p.path(name+".pem"), p.path(name+".key")
	cfg.Network.Peers = peers
	cfg.Network.PeerPort = peerPort
	cfg.Network.PeerUser, cfg.Network.PeerPassword = "routes", "Vrph54FBcIvdM"
	cfg.StatsPort = -1
	return cfg
}

// startCluster runs n members with the same peers list.
func startCluster(t *testing.T, p *testPKI, n int) ([]*Broker, []*syncBuffer) {
	t.Helper()
	ports := make([]int, n)
	var peers []string
	for i := range ports {
		ports[i] = testutil.FreePort(t)
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	var bs []*Broker
	var logs []*syncBuffer
	for i := range n {
		cfg := p.member(t, i+1, peers, ports[i])
		cfg.Network.PublicURL = "" // set after start, below
		b, l := startBroker(t, cfg)
		bs, logs = append(bs, b), append(logs, l)
	}
	waitRoutes(t, bs, n-1, logs)
	return bs, logs
}

func waitRoutes(t *testing.T, bs []*Broker, want int, logs []*syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, b := range bs {
		for b.Routes() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s has %d routes, want %d\n%s", b.cfg.Identity, b.Routes(), want, logs[0])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestClusterFullMesh(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d members", n), func(t *testing.T) {
			t.Parallel()
			p := newTestPKI(t)
			bs, _ := startCluster(t, p, n)
			client := p.issue(t, pki.IssueOptions{Name: "admin.privileged.mcollective"}) // any subject

			// Every member's monitoring shows every other member's route.
			for _, b := range bs {
				var rz struct {
					NumRoutes int `json:"num_routes"`
					Routes    []struct {
						RemoteName string `json:"remote_name"`
					} `json:"routes"`
				}
				getJSON(t, fmt.Sprintf("http://%s/routez", b.MonitorAddr()), &rz)
				if rz.NumRoutes != n-1 {
					t.Fatalf("%s /routez num_routes = %d, want %d", b.cfg.Identity, rz.NumRoutes, n-1)
				}
			}

			// A message published on any member reaches subscribers on every other.
			conns := make([]*nats.Conn, n)
			subs := make([]*nats.Subscription, n)
			for i, b := range bs {
				conns[i] = mustConnect(t, b.ClientURL(), clientTLS(p.ca.Cert, client))
				var err error
				subs[i], err = conns[i].SubscribeSync("mcollective.broadcast.agent.discovery")
				if err != nil {
					t.Fatal(err)
				}
				conns[i].Flush()
			}
			// Interest crosses routes asynchronously; retry the first publish.
			deadline := time.Now().Add(10 * time.Second)
			for i := range conns {
				msg := fmt.Sprintf("from %d", i)
				for j := range subs {
					for {
						conns[i].Publish("mcollective.broadcast.agent.discovery", []byte(msg))
						conns[i].Flush()
						m, err := subs[j].NextMsg(200 * time.Millisecond)
						if err == nil && string(m.Data) == msg {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("message from member %d never reached member %d", i, j)
						}
					}
					// Drain duplicates of the retries.
					for {
						if _, err := subs[j].NextMsg(20 * time.Millisecond); err != nil {
							break
						}
					}
				}
			}
		})
	}
}

// TestClusterRefusesBadPeers points peers with a foreign certificate, a
// revoked certificate and the wrong routes password at a 3-member cluster:
// each is refused with the reason in the log, and the cluster stays up.
func TestClusterRefusesBadPeers(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	bs, logs := startCluster(t, p, 3)
	target := []string{fmt.Sprintf("127.0.0.1:%d", bs[0].cfg.Network.PeerPort)}

	now := time.Now()
	foreign, _ := pki.NewCA("Foreign CA", now.Add(-time.Hour), now.Add(time.Hour))
	fkp, _ := foreign.Issue(pki.IssueOptions{Name: "broker9.example.net", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, KeyType: "ec"})
	fdir := t.TempDir()
	fp := &testPKI{dir: fdir, ca: foreign}
	fp.write(t, "broker.pem", pki.CertsPEM(fkp.Chain...))
	fp.writeKey(t, "broker.key", fkp)
	fp.write(t, "ca.pem", pki.CertsPEM(foreign.Cert, p.ca.Cert)) // trusts us, we do not trust it
	fp.writeCRL(t)
	foreignCfg := fp.config()
	foreignCfg.Identity = "broker9.example.net"
	foreignCfg.Network.Peers, foreignCfg.Network.PeerPort = target, testutil.FreePort(t)
	foreignCfg.Network.PeerUser, foreignCfg.Network.PeerPassword = "routes", "Vrph54FBcIvdM"

	revokedCfg := p.member(t, 7, target, testutil.FreePort(t))
	rkp, err := pki.ReadCertificates(revokedCfg.Security.FileCertificate)
	if err != nil {
		t.Fatal(err)
	}
	p.ca.Revoke(rkp[0])
	p.writeCRL(t)
	time.Sleep(1500 * time.Millisecond) // the CRL watcher's poll

	wrongPassword := p.member(t, 8, target, testutil.FreePort(t))
	wrongPassword.Network.PeerPassword = "wrong"

	cases := []struct {
		name string
		cfg  *config.Config
		log  []string
	}{
		{"foreign certificate", foreignCfg, []string{"cluster peer refused", attr("reason", string(pki.UnknownCA)), "broker9.example.net"}},
		{"revoked certificate", revokedCfg, []string{"cluster peer refused", attr("reason", string(pki.Revoked)), "broker7.example.net"}},
		{"wrong password", wrongPassword, []string{"wrong routes user or password"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			intruder, _ := startBroker(t, tc.cfg)
			deadline := time.Now().Add(15 * time.Second)
			for len(logs[0].lines(tc.log...)) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no log line with %q\n%s", tc.log, logs[0])
				}
				time.Sleep(50 * time.Millisecond)
			}
			if intruder.Routes() != 0 {
				t.Fatalf("intruder has %d routes", intruder.Routes())
			}
		})
	}
	// Each refusal logged above is counted for the metrics too.
	for _, r := range []string{string(pki.UnknownCA), string(pki.Revoked), routePassword} {
		if bs[0].PeersRefused(r) == 0 {
			t.Errorf("route refusals for %q not counted", r)
		}
	}
	waitRoutes(t, bs, 2, logs)
	for _, b := range bs {
		for _, name := range b.routeNames() {
			if !strings.HasPrefix(name, "broker") || strings.Contains(name, "7") || strings.Contains(name, "8") || strings.Contains(name, "9") {
				t.Fatalf("%s routes to %s", b.cfg.Identity, name)
			}
		}
	}
}

// TestClusterSaysWhy checks the warnings for a peers list naming only this
// broker and for a cluster missing members.
func TestClusterSaysWhy(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	port := testutil.FreePort(t)
	alone := p.member(t, 1, []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("broker1.example.net:%d", port)}, port)
	b, logs := startBroker(t, alone)
	if b.ClusterAddr() != nil || len(logs.lines("names only this broker")) != 1 {
		t.Fatalf("a peers list of only itself: cluster %v\n%s", b.ClusterAddr(), logs)
	}

	// Listed nowhere: the members would refuse its routes, and it says so.
	port = testutil.FreePort(t)
	unlisted := p.member(t, 3, []string{fmt.Sprintf("127.0.0.2:%d", testutil.FreePort(t))}, port)
	_, logs = startBroker(t, unlisted)
	if len(logs.lines("not in plugin.choria.network.peers")) != 1 || len(logs.lines("will refuse this broker's routes", string(pki.NotPeer))) != 1 {
		t.Fatalf("an unlisted member: want both warnings\n%s", logs)
	}

	down := testutil.FreePort(t)
	port = testutil.FreePort(t)
	// Only loopback here: a name that does not resolve would ask a DNS server.
	missing := p.member(t, 2, []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", down)}, port)
	_, logs = startBroker(t, missing)
	deadline := time.Now().Add(20 * time.Second)
	for len(logs.lines("connection refused", fmt.Sprint(down))) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no route error for the down peer\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
