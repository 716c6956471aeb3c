package authz

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// BenchmarkRoleMemory measures the engine heap a connection costs under
// each role's permissions: at connect, and after it has published more
// distinct reply subjects than the engine's per-connection publish cache
// holds (128), as a node does after answering that many requests.
//
//	go test ./internal/authz -run '^$' -bench RoleMemory -benchtime 1x
func BenchmarkRoleMemory(b *testing.B) {
	names := []string{"node1.example.net"}
	for _, tc := range []struct {
		name  string
		perms *server.Permissions
	}{
		{"unrestricted", Permissions(Unrestricted, names, Streams{})},
		{"node", Permissions(Node, names, Streams{})},
		{"node-subscribe-only", &server.Permissions{Subscribe: Permissions(Node, names, Streams{}).Subscribe}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				connect, after := roleMemory(b, tc.perms, 300, 200)
				b.ReportMetric(connect, "KiB/conn-connected")
				b.ReportMetric(after, "KiB/conn-after-replies")
			}
		})
	}
}

// roleMemory connects conns clients with perms, each subscribed as a node
// is, then has each publish replies distinct reply subjects; it returns
// the heap per connection (server and client sides, KiB) at both points.
func roleMemory(b *testing.B, perms *server.Permissions, conns, replies int) (connect, after float64) {
	b.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Users: []*server.User{{Username: "node", Password: "pw", Permissions: perms}}})
	if err != nil {
		b.Fatal(err)
	}
	go s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(10 * time.Second) {
		b.Fatal("engine did not start")
	}
	heap := func() float64 {
		runtime.GC()
		runtime.GC() // sync.Pool keeps its contents over one collection
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc) / 1024
	}
	base := heap()
	ncs := make([]*nats.Conn, 0, conns)
	defer func() {
		for _, nc := range ncs {
			nc.Close()
		}
	}()
	flush := func() {
		for _, nc := range ncs {
			if err := nc.FlushTimeout(10 * time.Second); err != nil {
				b.Fatal(err)
			}
		}
	}
	for range conns {
		nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("node", "pw"), nats.NoReconnect())
		if err != nil {
			b.Fatal(err)
		}
		ncs = append(ncs, nc)
		for _, sub := range []string{"mcollective.broadcast.agent.discovery", "mcollective.node.node1.example.net"} {
			if _, err := nc.Subscribe(sub, func(*nats.Msg) {}); err != nil {
				b.Fatal(err)
			}
		}
	}
	flush()
	connect = (heap() - base) / float64(conns)
	for r := range replies {
		for i, nc := range ncs {
			subject := fmt.Sprintf("mcollective.reply.37bdf08389145a56c13096c178802d3b.%032x", r*conns+i)
			if err := nc.Publish(subject, []byte("{}")); err != nil {
				b.Fatal(err)
			}
		}
	}
	flush()
	return connect, (heap() - base) / float64(conns)
}
