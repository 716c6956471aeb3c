package broker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxAutoReplicas caps replicas -1 (the cluster's size): R3 survives the
// loss of a member; R5 doubles the write fan-out and raft traffic of
// every event and election write for a second simultaneous loss, which
// these streams (hours of events, a 1m election TTL) do not need.
const maxAutoReplicas = 3

// managedStream is a standard stream and the fields we manage in it.
type managedStream struct {
	cfg             jetstream.StreamConfig
	setting         string // the retention setting, for messages
	replicasSetting string
	fields          []string // of cfg that the settings decide, set back on start
}

// commonFields are managed in every standard stream.
var commonFields = []string{"Subjects", "Retention", "Discard", "MaxAge", "Replicas"}

// standardStreams are go-choria's five standard streams
// (broker/network/network_streams.go), sized by the stream.* settings.
// A retention of 0 leaves the stream unmanaged (not created, not touched).
func (b *Broker) standardStreams() []managedStream {
	sc := b.cfg.Network.Stream
	size := b.expectedPeers + 1
	replicas := func(n int) int {
		if n == -1 {
			return max(1, min(size, maxAutoReplicas))
		}
		return n
	}
	base := func(name, subject string, age time.Duration, r int) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
			MaxMsgs: -1, MaxBytes: -1, MaxMsgSize: -1, MaxConsumers: -1, MaxMsgsPerSubject: -1,
			MaxAge: age, Replicas: replicas(r),
		}
	}
	var out []managedStream
	add := func(setting string, c jetstream.StreamConfig, extra ...string) {
		if c.MaxAge > 0 {
			rs := "plugin.choria.network.stream." + strings.Split(setting, "_")[0] + "_replicas"
			if c.Name == "KV_CHORIA_LEADER_ELECTION" {
				rs = "plugin.choria.network.stream.leader_election_replicas"
			}
			out = append(out, managedStream{cfg: c, setting: "plugin.choria.network.stream." + setting, replicasSetting: rs, fields: append(slices.Clone(commonFields), extra...)})
		}
	}
	add("event_retention", base("CHORIA_EVENTS", "choria.lifecycle.>", sc.EventRetention, sc.EventReplicas))
	add("machine_retention", base("CHORIA_MACHINE", "choria.machine.>", sc.MachineRetention, sc.MachineReplicas))
	add("advisory_retention", base("CHORIA_STREAM_ADVISORIES", "$JS.EVENT.ADVISORY.>", sc.AdvisoryRetention, sc.AdvisoryReplicas))
	exec := base("CHORIA_EXECUTOR", "choria.submission.in.choria.executor.>", sc.ExecutorRetention, sc.ExecutorReplicas)
	exec.Description = "Choria Executor Events"
	exec.AllowDirect = true
	exec.SubjectTransform = &jetstream.SubjectTransformConfig{Source: "choria.submission.in.choria.executor.>", Destination: "choria.executor.>"}
	add("executor_retention", exec, "SubjectTransform", "AllowDirect")
	le := base("KV_CHORIA_LEADER_ELECTION", "$KV.CHORIA_LEADER_ELECTION.>", sc.LeaderElectionTTL, sc.LeaderElectionReplicas)
	le.Description = "Choria Leader Election Bucket"
	le.Discard = jetstream.DiscardNew
	le.DenyDelete = true
	le.AllowRollup = true
	le.AllowDirect = true
	le.MaxMsgsPerSubject = 1
	le.MaxMsgSize = 1024
	// nats.go's KV relies on these fields
	add("leader_election_ttl", le, "MaxMsgsPerSubject", "MaxMsgSize", "DenyDelete", "AllowRollup", "AllowDirect")
	return out
}

// reconcile returns the existing config with the fields s manages set
// back, and each change as "Field: old → new". Other fields (max bytes or
// messages, description, placement, compression, ...) are the operator's.
func reconcile(have jetstream.StreamConfig, s managedStream) (jetstream.StreamConfig, []string) {
	out := have
	var changes []string
	ov, wv := reflect.ValueOf(&out).Elem(), reflect.ValueOf(s.cfg)
	for _, f := range s.fields {
		o, w := ov.FieldByName(f), wv.FieldByName(f)
		if reflect.DeepEqual(o.Interface(), w.Interface()) {
			continue
		}
		changes = append(changes, fmt.Sprintf("%s: %s → %s", f, showField(o.Interface()), showField(w.Interface())))
		o.Set(w)
	}
	return out, changes
}

func showField(v any) string {
	switch v := v.(type) {
	case *jetstream.SubjectTransformConfig:
		if v == nil {
			return "none"
		}
		return v.Source + " > " + v.Destination
	case []string:
		return strings.Join(v, ",")
	}
	return fmt.Sprint(v)
}

// manageStreams creates or updates the standard streams as soon as
// JetStream answers and the cluster has the peers they need, retrying
// with back-off until each is in place or ctx ends. Unlike go-choria
// there is no random start-up delay: the meta leader orders concurrent
// creates from several members, and a create of an existing, equal
// stream is a no-op.
func (b *Broker) manageStreams(ctx context.Context) {
	b.streams.mu.Lock()
	b.streams.pending = map[string]string{}
	b.streams.mu.Unlock()
	var streams []managedStream
	size := b.expectedPeers + 1
	for _, s := range b.standardStreams() {
		// such a stream could never be placed, and waiting for it would hold up the others
		if s.cfg.Replicas > size {
			why := fmt.Sprintf("%s = %d is above the cluster's size, %d (this broker and its plugin.choria.network.peers); stream %s not created: set it to at most %d, or -1 for the cluster's size",
				s.replicasSetting, s.cfg.Replicas, size, s.cfg.Name, size)
			b.log.Error("Choria Streams: "+why, "stream", s.cfg.Name, "setting", s.replicasSetting)
			b.setPending(s.cfg.Name, why)
			continue
		}
		b.setPending(s.cfg.Name, "waiting for JetStream")
		streams = append(streams, s)
	}

	nc, err := nats.Connect("", nats.InProcessServer(b.srv), nats.UserInfo(inprocUser, b.streams.secret), nats.Name("choria-broker streams"), nats.MaxReconnects(-1))
	if err != nil {
		msg := fmt.Sprintf("Choria Streams: cannot connect in-process to manage the standard streams: %v", err)
		b.log.Error(msg)
		b.setStreamsError(msg)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.log.Error("Choria Streams: JetStream client", "error", err)
		return
	}
	need := 1
	for _, s := range streams {
		need = max(need, s.cfg.Replicas)
	}
	backoff, lastLog := 250*time.Millisecond, time.Now() // quiet for the first 10s
	for len(streams) > 0 {
		ready, why := b.jetstreamReady(ctx, js, need)
		if ready {
			var left []managedStream
			for _, s := range streams {
				if err := b.ensureStream(ctx, js, s); err != nil {
					left = append(left, s)
					b.setPending(s.cfg.Name, err.Error())
					if time.Since(lastLog) > 10*time.Second {
						b.log.Warn("Choria Streams: cannot create or update a standard stream yet; retrying", "stream", s.cfg.Name, "replicas", s.cfg.Replicas, "error", err)
					}
				} else {
					b.setPending(s.cfg.Name, "")
				}
			}
			streams = left
			if len(streams) == 0 {
				break
			}
		} else {
			for _, s := range streams {
				b.setPending(s.cfg.Name, why)
			}
			if time.Since(lastLog) > 10*time.Second {
				b.log.Warn("Choria Streams: waiting to create the standard streams", "reason", why, "replicas_needed", need)
			}
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
		}
		if !ctxSleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (b *Broker) setPending(name, why string) {
	b.streams.mu.Lock()
	defer b.streams.mu.Unlock()
	if why == "" {
		delete(b.streams.pending, name)
	} else {
		b.streams.pending[name] = why
	}
}

// jetstreamReady says whether JetStream answers and, in a cluster, has a
// meta leader and at least need current members; else why not.
func (b *Broker) jetstreamReady(ctx context.Context, js jetstream.JetStream, need int) (bool, string) {
	// The cluster's state is local; ask it first, since an API request
	// made before there is a meta leader goes unanswered until its timeout.
	if b.srv.JetStreamIsClustered() {
		jsz, err := b.srv.Jsz(&server.JSzOptions{})
		if err != nil || jsz.Meta == nil || jsz.Meta.Leader == "" {
			return false, "no JetStream meta leader elected yet"
		}
		// Only the meta leader knows which peers are current; a follower
		// asks, and the leader refuses a stream it cannot place yet.
		if jsz.Meta.Leader == b.srv.Name() {
			peers := 1 // this one
			for _, p := range jsz.Meta.Replicas {
				if p.Current && !p.Offline {
					peers++
				}
			}
			if peers < need {
				return false, fmt.Sprintf("%d of the %d JetStream peers the replicas need are up", peers, need)
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		return false, "JetStream not answering: " + err.Error()
	}
	return true, ""
}

// ensureStream creates s, or puts our managed fields back in the existing
// stream, logging each field changed back with its old and new value.
func (b *Broker) ensureStream(ctx context.Context, js jetstream.JetStream, s managedStream) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	str, err := js.Stream(ctx, s.cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, s.cfg); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return err
		} else if err == nil {
			b.log.Info("Choria Streams: created stream", "stream", s.cfg.Name, "replicas", s.cfg.Replicas, "max_age", s.cfg.MaxAge, "setting", s.setting)
			return nil
		}
		str, err = js.Stream(ctx, s.cfg.Name) // another member made it meanwhile
	}
	if err != nil {
		return err
	}
	have := str.CachedInfo().Config
	if have.Storage != s.cfg.Storage {
		b.log.Warn("Choria Streams: stream storage differs and cannot be changed in place; kept", "stream", s.cfg.Name, "storage", have.Storage.String(), "want", s.cfg.Storage.String())
	}
	merged, changes := reconcile(have, s)
	if len(changes) == 0 {
		return nil
	}
	if _, err := js.UpdateStream(ctx, merged); err != nil {
		return fmt.Errorf("update %s (%s): %w", s.cfg.Name, strings.Join(changes, "; "), err)
	}
	for _, c := range changes {
		b.log.Warn("Choria Streams: stream field set back to what the settings say (other operator changes are kept)", "stream", s.cfg.Name, "change", c, "setting", s.setting)
	}
	return nil
}

// manageStreamsIfAsked runs manageStreams when stream.manage_streams is on.
func (b *Broker) manageStreamsIfAsked(ctx context.Context) {
	if p := b.policy.Load(); p != nil && p.Enabled && !p.PrivateReplies {
		// The trade-off the operator made by turning Streams on: say it.
		b.log.Warn("Choria Streams is on with plugin.choria.network.stream.private_replies = false: node and client certificates may subscribe to the shared JetStream inbox <collective>.reply.*.*, so a stolen node certificate can read every client's replies; set it to true to keep replies private (node-side Streams is then off)")
	}
	if !b.cfg.Network.Stream.ManageStreams {
		b.log.Info("Choria Streams on; the standard streams are not managed (plugin.choria.network.stream.manage_streams = false)", "store", b.opts.StoreDir)
		return
	}
	b.log.Info("Choria Streams on", "store", filepath.Join(b.opts.StoreDir, "jetstream"), "max_memory", b.opts.JetStreamMaxMemory, "max_store", b.opts.JetStreamMaxStore)
	b.manageStreams(ctx)
}
