package federation

import (
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// path is one direction: ingest subscriptions on one side feed a bounded
// queue, a pool of workers rewrites and publishes on the other side.
type path struct {
	b              *Broker
	dir            direction
	in, out        *side
	subject, group string

	queue  chan job
	bytes  atomic.Int64 // payload bytes in queue
	active atomic.Int32 // ingest handlers running, for the shutdown

	ingest, workers, egest []stage
	drops                  map[Reason]prometheus.Counter
	via                    [][][]string // [ingest][worker][egest] seen-by names
}

// job is a received payload and where it came in.
type job struct {
	data   []byte
	ingest int
	in     string // broker URL of the ingest connection
}

func newPath(b *Broker, d direction, in, out *side, subject, group string) *path {
	p := &path{b: b, dir: d, in: in, out: out, subject: subject, group: group, queue: make(chan job, b.tune.queueMsgs), drops: b.metrics.drops(d)}
	in.ingest = p
	for i := range in.links {
		p.ingest = append(p.ingest, b.metrics.stage(ingestName, i, in.name))
		p.via = append(p.via, make([][]string, b.tune.workers))
		for j := 0; j < b.tune.workers; j++ {
			for k := range out.links {
				p.via[i][j] = append(p.via[i][j], via(b.identity, d.transformer, i, j, k))
			}
		}
	}
	for j := 0; j < b.tune.workers; j++ {
		p.workers = append(p.workers, b.metrics.stage(d.transformer, j, unconnected))
	}
	for k := range out.links {
		p.egest = append(p.egest, b.metrics.stage(egestName, k, out.name))
	}
	return p
}

func (p *path) drop(r Reason, n int) {
	p.drops[r].Add(float64(n))
	p.b.log.Debug("dropped", "direction", p.dir.name, "reason", string(r), "count", n)
}

// handler queues what ingest connection i receives; it never blocks, so a
// slow egest side costs dropped messages, counted, not memory.
func (p *path) handler(i int) nats.MsgHandler {
	st, l := p.ingest[i], p.in.links[i]
	limit := p.b.tune.queueBytes
	return func(m *nats.Msg) {
		p.active.Add(1)
		defer p.active.Add(-1)
		start := time.Now()
		st.received.Inc()
		n := int64(len(m.Data))
		if p.bytes.Add(n) > limit {
			p.bytes.Add(-n)
			st.errors.Inc()
			p.drop(QueueFull, 1)
			return
		}
		select {
		case p.queue <- job{data: m.Data, ingest: i, in: l.connectedURL()}:
		default:
			p.bytes.Add(-n)
			st.errors.Inc()
			p.drop(QueueFull, 1)
		}
		st.time.Observe(time.Since(start).Seconds())
	}
}

// work runs worker w until stop, then empties the queue.
func (p *path) work(w int, stop <-chan struct{}) {
	for {
		select {
		case j := <-p.queue:
			p.process(w, j)
		case <-stop:
			for {
				select {
				case j := <-p.queue:
					p.process(w, j)
				default:
					return
				}
			}
		}
	}
}

func (p *path) process(w int, j job) {
	defer p.bytes.Add(-int64(len(j.data)))
	ws := p.workers[w]
	ws.received.Inc()
	start := time.Now()
	k, nc := p.out.pick(w)
	res, r := p.dir.transform(j.data, p.b.cluster, hop{in: j.in, via: p.via[j.ingest][w][k], out: p.out.links[k].connectedURL()})
	ws.time.Observe(time.Since(start).Seconds())
	switch r {
	case "":
	case MalformedJSON, UnknownProtocol, SchemaViolation, NotFederated:
		p.ingest[j.ingest].errors.Inc() // go-choria's ingest rejects these
		p.drop(r, 1)
		return
	default:
		ws.errors.Inc()
		p.drop(r, 1)
		return
	}
	eg := p.egest[k]
	if res.bad > 0 {
		eg.errors.Add(float64(res.bad))
		p.drop(BadSubject, res.bad)
	}
	if len(res.targets) == 0 {
		return
	}
	eg.received.Inc()
	start = time.Now()
	failed := 0
	for _, s := range res.targets {
		if nc == nil || nc.Publish(s, res.payload) != nil {
			failed++
			continue
		}
		eg.published.Inc()
	}
	if failed > 0 {
		eg.errors.Add(float64(failed))
		p.drop(PublishFailed, failed)
	}
	eg.time.Observe(time.Since(start).Seconds())
}
