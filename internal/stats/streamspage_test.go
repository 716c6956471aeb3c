package stats

import (
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

func TestBytesIEC(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 25 << 20: "25.0 MiB",
		9 << 30: "9.0 GiB", 3 << 40: "3.0 TiB", 1 << 62: "4.0 EiB",
	} {
		if got := bytesIEC(n); got != want {
			t.Errorf("bytesIEC(%d) = %q, want %q", n, got, want)
		}
	}
	if got := percent(1, 0); got != "–" {
		t.Errorf("percent without a limit = %q", got)
	}
	if got := percent(1, 8); got != "12.5%" {
		t.Errorf("percent(1, 8) = %q", got)
	}
}

// In a three-member cluster with Streams on, every member's panel names
// the same meta leader, exactly one member says it is that leader, and
// the standard streams have three replicas.
func TestReadStreamsCluster(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	var bs []*devbroker.Broker
	for _, cfg := range devbroker.ClusterConfigs(t, env, 3) {
		cfg.Network.Stream.Store = t.TempDir()
		bs = append(bs, devbroker.StartConfig(t, env, cfg))
	}
	devbroker.WaitRoutes(t, bs, 2, 20*time.Second)
	var ps []*streamsPanel
	deadline := time.Now().Add(60 * time.Second)
	for {
		ps = ps[:0]
		ready := true
		for _, b := range bs {
			p := readStreams(b.Broker)
			ps = append(ps, p)
			// Every member puts the standard streams in place, followers
			// too (they once waited on peer counts only a leader knows).
			ready = ready && p.On && p.MetaLeader != "" && len(p.Rows) == 5 && len(p.Pending) == 0
			// A new stream elects its leader a moment after it exists.
			for _, r := range p.Rows {
				ready = ready && r.Leader != ""
			}
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no meta leader, five streams with leaders and none pending on every member within 60s: %+v %+v %+v", ps[0], ps[1], ps[2])
		}
		time.Sleep(200 * time.Millisecond)
	}
	leaders := 0
	for i, p := range ps {
		if !p.Clustered || p.MetaLeader != ps[0].MetaLeader {
			t.Errorf("%s: clustered %v, meta leader %q; want %q", bs[i].Config.Identity, p.Clustered, p.MetaLeader, ps[0].MetaLeader)
		}
		switch p.Role {
		case "meta leader":
			leaders++
			if p.MetaLeader != bs[i].Config.Identity {
				t.Errorf("%s says it leads, the meta leader is %q", bs[i].Config.Identity, p.MetaLeader)
			}
		case "follower":
		default:
			t.Errorf("%s: role %q", bs[i].Config.Identity, p.Role)
		}
		for _, r := range p.Rows {
			if r.Replicas != 3 || r.Leader == "" {
				t.Errorf("%s: stream %s has %d replicas, leader %q; want 3 and a leader", bs[i].Config.Identity, r.Name, r.Replicas, r.Leader)
			}
		}
	}
	if leaders != 1 {
		t.Errorf("%d members say they are the meta leader, want 1", leaders)
	}
}
