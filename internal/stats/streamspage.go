package stats

import (
	"cmp"
	"maps"
	"slices"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/choria-broker/choria-broker/internal/broker"
)

// maxStreamRows bounds the streams table: an operator with hundreds of KV
// buckets should not get a page that long every 10 s; /jsz has them all.
const maxStreamRows = 20

// streamsPanel is the status page's Choria Streams panel.
type streamsPanel struct {
	On      bool
	Error   string   // why Streams is off, or what failed while on
	Pending []string // standard streams not in place yet, with why

	Streams, Consumers int
	Messages, Bytes    uint64
	FileUsed, FileMax  uint64
	MemUsed, MemMax    uint64

	Clustered  bool
	MetaLeader string // "" while the cluster elects one
	Role       string // this broker in the meta group

	Rows []streamRow
	More int // streams left out of Rows
}

type streamRow struct {
	Name, Leader    string
	Messages, Bytes uint64
	Replicas        int
}

// readStreams gathers the panel from the broker and the engine's Jsz, as
// streamsCollector does; nil when Streams is not configured.
func readStreams(b *broker.Broker) *streamsPanel {
	st := b.StreamsStatus()
	if !st.Configured {
		return nil
	}
	p := &streamsPanel{On: st.Enabled, Error: st.Error}
	for _, name := range slices.Sorted(maps.Keys(st.Pending)) {
		p.Pending = append(p.Pending, name+": "+st.Pending[name])
	}
	srv := b.Engine()
	if srv == nil || !srv.JetStreamEnabled() {
		p.On = false
		return p
	}
	jsz, err := srv.Jsz(&server.JSzOptions{Accounts: true, Streams: true, Config: true})
	if err != nil {
		if p.Error == "" {
			p.Error = "reading JetStream state: " + err.Error()
		}
		return p
	}
	p.Streams, p.Consumers, p.Messages, p.Bytes = jsz.Streams, jsz.Consumers, jsz.Messages, jsz.Bytes
	p.FileUsed, p.FileMax = jsz.Store, uint64(max(jsz.Config.MaxStore, 0))
	p.MemUsed, p.MemMax = jsz.Memory, uint64(max(jsz.Config.MaxMemory, 0))
	p.Role = "single broker"
	if jsz.Meta != nil {
		p.Clustered, p.MetaLeader, p.Role = true, jsz.Meta.Leader, "follower"
		if srv.JetStreamIsLeader() {
			p.Role = "meta leader"
		}
	}
	for _, a := range jsz.AccountDetails {
		for _, s := range a.Streams {
			r := streamRow{Name: s.Name, Messages: s.State.Msgs, Bytes: s.State.Bytes, Replicas: 1, Leader: srv.Name()}
			if s.Config != nil {
				r.Replicas = max(s.Config.Replicas, 1)
			}
			if s.Cluster != nil {
				r.Leader = s.Cluster.Leader
			}
			p.Rows = append(p.Rows, r)
		}
	}
	slices.SortFunc(p.Rows, func(a, b streamRow) int { return cmp.Compare(a.Name, b.Name) })
	if len(p.Rows) > maxStreamRows {
		p.More, p.Rows = len(p.Rows)-maxStreamRows, p.Rows[:maxStreamRows]
	}
	return p
}

// bytesIEC writes n in binary units, as nats CLI and JetStream limits do.
func bytesIEC(n uint64) string {
	const unit = 1024
	if n < unit {
		return itoa(int(n)) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmtFloat(float64(n)/float64(div), 1) + " " + string("KMGTPE"[exp]) + "iB"
}

// percent of used in limit, one decimal; "–" without a limit.
func percent(used, limit uint64) string {
	if limit == 0 {
		return "–"
	}
	return fmtFloat(100*float64(used)/float64(limit), 1) + "%"
}
