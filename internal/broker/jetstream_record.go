package broker

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// The engine recovers a damaged stream directory quietly: two warnings,
// which an unclean stop also causes, and the stream back with fewer or no
// messages. So the broker writes what each stream held at a clean stop
// and, at the next start, reports a stream that came back with less than
// its max age explains.

// streamsRecordFile is in the store, beside the engine's jetstream/.
const streamsRecordFile = "choria-broker-streams.json"

// streamRecord is one stream at a clean stop.
type streamRecord struct {
	Name      string        `json:"name"`
	Messages  uint64        `json:"messages"`
	FirstSeq  uint64        `json:"first_seq"`
	LastSeq   uint64        `json:"last_seq"`
	FirstTime time.Time     `json:"first_ts"`
	LastTime  time.Time     `json:"last_ts"`
	MaxAge    time.Duration `json:"max_age"`
}

type streamsRecord struct {
	Written time.Time      `json:"written"`
	Streams []streamRecord `json:"streams"`
}

// streamDir is where the engine keeps a stream of the global account.
func streamDir(store, name string) string {
	return filepath.Join(store, "jetstream", server.DEFAULT_GLOBAL_ACCOUNT, "streams", name)
}

// localStreams are the streams of the global account this member holds
// alone (one replica): a replicated stream is repaired from its peers.
func localStreams(srv *server.Server) (map[string]server.StreamDetail, error) {
	jsz, err := srv.Jsz(&server.JSzOptions{Accounts: true, Streams: true, Config: true})
	if err != nil {
		return nil, err
	}
	out := map[string]server.StreamDetail{}
	for _, a := range jsz.AccountDetails {
		if a.Name != server.DEFAULT_GLOBAL_ACCOUNT {
			continue
		}
		for _, s := range a.Streams {
			if s.Config == nil || s.Config.Replicas > 1 || s.Config.Storage != server.FileStorage {
				continue
			}
			out[s.Name] = s
		}
	}
	return out, nil
}

// writeStreamsRecord records the local streams; called just before the
// engine stops. A failure is logged: the next start then checks nothing.
func (b *Broker) writeStreamsRecord(srv *server.Server) {
	if !b.opts.JetStream || srv.JetStreamIsClustered() || !srv.JetStreamEnabled() {
		return
	}
	streams, err := localStreams(srv)
	if err != nil {
		b.log.Warn("Choria Streams: cannot record the streams' state at stop; the next start cannot check them for lost data", "error", err)
		return
	}
	rec := streamsRecord{Written: time.Now().UTC()}
	for _, s := range streams {
		rec.Streams = append(rec.Streams, streamRecord{
			Name: s.Name, Messages: s.State.Msgs, FirstSeq: s.State.FirstSeq, LastSeq: s.State.LastSeq,
			FirstTime: s.State.FirstTime, LastTime: s.State.LastTime, MaxAge: s.Config.MaxAge,
		})
	}
	sort.Slice(rec.Streams, func(i, j int) bool { return rec.Streams[i].Name < rec.Streams[j].Name })
	data, _ := json.MarshalIndent(rec, "", "  ")
	file := filepath.Join(b.opts.StoreDir, streamsRecordFile)
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		b.log.Warn("Choria Streams: cannot record the streams' state at stop; the next start cannot check them for lost data", "file", file, "error", err)
		return
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		b.log.Warn("Choria Streams: cannot record the streams' state at stop; the next start cannot check them for lost data", "file", file, "error", err)
	}
}

// takeStreamsRecord reads and removes the record of the last clean stop,
// before the engine starts: after a crash there is none, and the streams
// changed since the last one, so nothing is compared.
func (b *Broker) takeStreamsRecord() *streamsRecord {
	file := filepath.Join(b.opts.StoreDir, streamsRecordFile)
	data, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err == nil {
		err = os.Remove(file)
	}
	var rec streamsRecord
	if err == nil {
		err = json.Unmarshal(data, &rec)
	}
	if err != nil {
		b.log.Warn("Choria Streams: cannot read or remove the record of the streams at the last stop; the streams are not checked for lost data", "file", file, "error", err)
		return nil
	}
	return &rec
}

// expiryMargin allows for the engine's expiry running a moment after the
// time we compare with.
const expiryMargin = 2 * time.Second

// streamLoss says what a stream lost since its record, "" when nothing
// its max age does not explain. cur is nil when the engine did not load it.
func streamLoss(rec streamRecord, cur *server.StreamState, now time.Time) string {
	if rec.Messages == 0 {
		return ""
	}
	// whether a message written at t is still within the max age
	alive := func(t time.Time) bool { return rec.MaxAge <= 0 || t.Add(rec.MaxAge).After(now.Add(expiryMargin)) }
	was := fmt.Sprintf("at the last stop it held %d messages, sequences %d to %d", rec.Messages, rec.FirstSeq, rec.LastSeq)
	if cur == nil {
		if !alive(rec.LastTime) {
			return "" // all aged out; the engine may have dropped an empty stream's data
		}
		return was + "; the engine did not load the stream"
	}
	now2 := fmt.Sprintf("now %d messages, sequences %d to %d", cur.Msgs, cur.FirstSeq, cur.LastSeq)
	switch {
	case alive(rec.LastTime) && (cur.Msgs == 0 || cur.LastSeq < rec.LastSeq):
		return fmt.Sprintf("%s, the last written %s ago (max age %s); %s", was, now.Sub(rec.LastTime).Round(time.Second), maxAgeText(rec.MaxAge), now2)
	case alive(rec.FirstTime) && (cur.Msgs < rec.Messages || cur.FirstSeq > rec.FirstSeq):
		return fmt.Sprintf("%s, none old enough to expire (max age %s); %s", was, maxAgeText(rec.MaxAge), now2)
	}
	return ""
}

func maxAgeText(d time.Duration) string {
	if d <= 0 {
		return "none"
	}
	return d.String()
}

// checkStreamsRecord compares the streams the engine loaded with the
// record of the last clean stop, and reports each that lost messages.
func (b *Broker) checkStreamsRecord(rec *streamsRecord) {
	if rec == nil || b.srv.JetStreamIsClustered() {
		return
	}
	cur, err := localStreams(b.srv)
	if err != nil {
		b.log.Warn("Choria Streams: cannot check the streams for lost data", "error", err)
		return
	}
	now := time.Now()
	for _, r := range rec.Streams {
		var st *server.StreamState
		if s, ok := cur[r.Name]; ok {
			st = &s.State
		}
		if loss := streamLoss(r, st, now); loss != "" {
			b.streamDamaged(r.Name, loss)
		}
	}
}

// streamDamaged reports a damaged stream once, with its directory, and
// keeps it for health and metrics until the broker restarts.
func (b *Broker) streamDamaged(name, what string) {
	dir := streamDir(b.opts.StoreDir, name)
	b.streams.mu.Lock()
	if b.streams.damaged == nil {
		b.streams.damaged = map[string]string{}
	}
	engine := b.streams.engineSaid[name]
	_, seen := b.streams.damaged[name]
	if !seen {
		b.streams.damaged[name] = fmt.Sprintf("stream %s (%s): %s", name, dir, what)
	}
	b.streams.mu.Unlock()
	if seen {
		return
	}
	args := []any{"stream", name, "path", dir}
	if engine != "" {
		args = append(args, "engine", engine)
	}
	b.log.Error(fmt.Sprintf("Choria Streams: stream %s is damaged: %s. Its directory %s was damaged or changed while the broker was down; core messaging continues. Restore the directory from a backup with the broker stopped, or accept the loss: the stream works from here on", name, what, dir), args...)
}

// Engine lines about a stream it could not read. An unclean stop also
// gives the first, so it is kept as a detail for a loss found later; the
// second means the stream is not loaded at all.
var (
	engineIndexErr   = regexp.MustCompile(`^Filestore \[([^\]]+)\] Recovering stream state from index errored: (.*)$`)
	engineRecreating = regexp.MustCompile(`Error recreating stream "([^"]+)": (.*)$`)
)

// noteStreamRecovery is a log filter: it notes the engine's stream
// recovery errors and lets every line through.
func (b *Broker) noteStreamRecovery(msg string) bool {
	if !strings.Contains(msg, "stream") {
		return true
	}
	if m := engineIndexErr.FindStringSubmatch(msg); m != nil {
		b.streams.mu.Lock()
		if b.streams.engineSaid == nil {
			b.streams.engineSaid = map[string]string{}
		}
		b.streams.engineSaid[m[1]] = "recovering stream state from index errored: " + m[2]
		b.streams.mu.Unlock()
	} else if m := engineRecreating.FindStringSubmatch(msg); m != nil {
		b.streamDamaged(m[1], "the engine cannot load it: "+m[2])
	}
	return true
}
