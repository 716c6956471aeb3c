package broker

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats-server/v2/server/sysmem"

	"github.com/choria-broker/choria-broker/internal/authz"
	"github.com/choria-broker/choria-broker/internal/config"
)

// Choria Streams is the engine's JetStream, in the global account ($G)
// where every connection of this broker already lands, beside the
// engine's own system account ($SYS), which JetStream needs. go-choria
// uses accounts named choria and system instead; a `choria` account here
// would split the subject space from a stock nats-server cluster member
// (whose clients are in $G) for nothing a Choria client can see.

// inprocUser is the login of the broker's own in-process connection,
// which manages the standard streams with full rights.
const inprocUser = "choria-broker-streams"

// streamsState is what the broker knows of Choria Streams.
type streamsState struct {
	mu      sync.Mutex
	enabled bool              // JetStream is configured on
	err     string            // why Streams is off or failing, for health
	pending map[string]string // standard streams not yet in place -> why
	secret  string            // the in-process login's password
	// damaged streams -> what was found (jetstream_record.go), until restart
	damaged map[string]string
	// engineSaid is the engine's recovery error per stream, for the report
	engineSaid map[string]string
}

// StreamsStatus is what monitoring shows of Choria Streams.
type StreamsStatus struct {
	Configured bool              // plugin.choria.network.stream.store is set
	Enabled    bool              // JetStream is on in the engine
	Error      string            // why Streams is off or degraded, "" when fine
	Pending    map[string]string // managed streams not created or updated yet, and why
	Damaged    map[string]string // streams that came back damaged at start, and what was found
}

// StreamsStatus reports the state of Choria Streams.
func (b *Broker) StreamsStatus() StreamsStatus {
	s := &b.streams
	s.mu.Lock()
	defer s.mu.Unlock()
	st := StreamsStatus{Configured: b.cfg.Network.Stream.Store != "", Enabled: s.enabled, Error: s.err, Pending: map[string]string{}, Damaged: map[string]string{}}
	for k, v := range s.pending {
		st.Pending[k] = v
	}
	for k, v := range s.damaged {
		st.Damaged[k] = v
	}
	return st
}

func (b *Broker) setStreamsError(msg string) {
	b.streams.mu.Lock()
	b.streams.err = msg
	b.streams.mu.Unlock()
}

// streamsOptions turns JetStream on when stream.store is set and the
// store is usable. An unusable store leaves Streams off and the broker
// serving the fleet, with the reason in the log and in health.
func (b *Broker) streamsOptions(opts *server.Options) {
	sc := b.cfg.Network.Stream
	if sc.Store == "" {
		return
	}
	fail := func(setting, value string, err error) {
		msg := fmt.Sprintf("Choria Streams is OFF: plugin.choria.network.stream.%s = %s: %v", setting, value, err)
		b.log.Error(msg+"; core messaging continues; fix the setting and restart to turn Streams on", "setting", "plugin.choria.network.stream."+setting)
		b.setStreamsError(msg)
	}
	if err := checkStoreDir(sc.Store); err != nil {
		fail("store", sc.Store, err)
		return
	}
	if _, err := os.Stat(filepath.Join(sc.Store, "jetstream", "choria")); err == nil {
		b.log.Warn("the store holds a go-choria broker's streams (jetstream/choria); this broker keeps Streams in the engine's global account, jetstream/$G, and does not read them", "store", sc.Store)
	}
	mem, err := streamLimit(sc.MaxMemory, memoryBase())
	if err != nil {
		fail("max_memory", sc.MaxMemory, err)
		return
	}
	disk, err := streamLimit(sc.MaxStore, freeDisk(sc.Store))
	if err != nil {
		fail("max_store", sc.MaxStore, err)
		return
	}
	b.streams.enabled = true
	opts.JetStream = true
	opts.StoreDir = sc.Store // the engine keeps its data in <store>/jetstream, as go-choria's
	opts.JetStreamMaxMemory = mem
	opts.JetStreamMaxStore = disk
}

// checkStoreDir makes <store>/jetstream if needed and writes a file there,
// so that an unusable store is found before the engine, which would stop.
func checkStoreDir(store string) error {
	dir := filepath.Join(store, "jetstream")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("cannot create %s: %w", dir, errors.Unwrap(err))
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("cannot write in %s: %w", dir, errors.Unwrap(err))
	}
	name := f.Name()
	_, werr := f.Write([]byte("ok"))
	cerr := f.Close()
	os.Remove(name)
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("cannot write in %s: %w", dir, err)
	}
	return nil
}

// streamLimit turns a size setting into bytes; a percentage is of base.
func streamLimit(setting string, base int64) (int64, error) {
	n, pct, msg := config.ParseStreamSize(setting)
	if msg != "" {
		return 0, errors.New(msg)
	}
	if pct == 0 {
		return n, nil
	}
	if base <= 0 {
		return 0, fmt.Errorf("cannot tell the size %d%% is of; set a size such as 2G", pct)
	}
	return base / 100 * int64(pct), nil
}

// memoryBase is the RAM the broker may use: the machine's, or GOMEMLIMIT
// when lower, as the engine sizes itself.
func memoryBase() int64 {
	m := sysmem.Memory()
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 && (m <= 0 || l < m) {
		m = l
	}
	return m
}

// freeDisk is the space available to the broker at dir, 0 when unknown.
func freeDisk(dir string) int64 {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return 0
	}
	return int64(fs.Bavail) * int64(fs.Bsize)
}

// inprocAllowed admits the broker's own in-process connection: a pipe,
// which no remote connection can be, with the login made at start-up.
func (b *Broker) inprocAllowed(c server.ClientAuthentication) bool {
	addr := c.RemoteAddress()
	if addr == nil || addr.Network() != "pipe" || b.streams.secret == "" {
		return false
	}
	o := c.GetOpts()
	return o != nil && o.Username == inprocUser && subtle.ConstantTimeCompare([]byte(o.Password), []byte(b.streams.secret)) == 1
}

// ctxSleep waits d or until ctx ends; false when ctx ended.
func ctxSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// streamsRights is what Choria Streams adds to the roles of connections
// admitted now: nothing while JetStream is not running here, unless a
// leaf without Streams sends its clients' requests to its hub's.
func (b *Broker) streamsRights(p *authz.Policy) authz.Streams {
	on := b.leaf.forward || b.srv != nil && b.srv.JetStreamEnabled()
	return authz.Streams{On: on, PrivateReplies: p.PrivateReplies, Domains: b.leafDomains()}
}
