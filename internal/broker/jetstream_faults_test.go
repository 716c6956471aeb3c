package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/choria-broker/choria-broker/internal/testutil"
)

// smallDisk mounts an 8 MiB tmpfs: a disk that really fills. It needs
// root; without it the test skips on a laptop and fails in CI.
func smallDisk(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput()
	if err != nil {
		if testutil.InCI() {
			t.Fatalf("mount a tmpfs (CI=true, so the test must run as root): %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// A store on a small disk: with the default max_store (90% of the free
// space) the engine refuses the write that does not fit with
// "insufficient resources" before the disk is full, the broker logs the
// store and setting, core messaging carries on, and every acknowledged
// write is there after a restart.
func TestStreamsFullDisk(t *testing.T) {
	t.Parallel()
	store := smallDisk(t)
	p := newTestPKI(t)
	cfg := streamsConfig(p, store)
	b, logs, stop := runBroker(t, cfg)
	tc := p.adminTLS(t)
	nc, js := streamsJS(t, b.ClientURL(), tc)
	waitStreams(t, js, standardNames, 20*time.Second, logs)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILL", Subjects: []string{"fill.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 64<<10)
	var acked []uint64
	var refused error
	for i := 0; i < 1000 && refused == nil; i++ { // 64 MiB: far more than fits
		body[0] = byte(i)
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		a, err := js.Publish(pctx, "fill.x", body)
		pcancel()
		if err != nil {
			refused = err
			break
		}
		acked = append(acked, a.Sequence)
	}
	var apiErr *jetstream.APIError
	if !errors.As(refused, &apiErr) || apiErr.ErrorCode != jetstream.ErrorCode(server.JSInsufficientResourcesErr) {
		t.Fatalf("after %d writes: want the engine's insufficient resources error, got %v", len(acked), refused)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(logs.lines("level=ERROR", "store full", "plugin.choria.network.stream.max_store", "store="+store)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no error naming the store and max_store\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// the fleet is still served
	roundTrip(t, mustConnect(t, b.ClientURL(), tc), mustConnect(t, b.ClientURL(), tc), "mcollective.broadcast.agent.rpcutil")

	nc.Close()
	stop()
	b, logs, _ = runBroker(t, cfg)
	_, js = streamsJS(t, b.ClientURL(), tc)
	var s jetstream.Stream
	for {
		var err error
		if s, err = js.Stream(ctx, "FILL"); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("FILL after restart: %v\n%s", err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, seq := range acked {
		m, err := s.GetMsg(ctx, seq)
		if err != nil || len(m.Data) != len(body) || m.Data[0] != byte(seq-1) {
			t.Fatalf("acknowledged write %d lost after the disk filled: %v", seq, err)
		}
	}
	t.Logf("%d writes of 64 KiB acknowledged, then %v", len(acked), strings.TrimSpace(refused.Error()))
}

// Replicas above the cluster's size: an error names the setting, that
// stream stays out and health says so, the other standard streams are made.
func TestStreamsReplicasAboveClusterSize(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := streamsConfig(p, t.TempDir())
	cfg.Network.Stream.EventReplicas = 5
	b, logs, _ := runBroker(t, cfg)
	_, js := streamsJS(t, b.ClientURL(), p.adminTLS(t))
	waitStreams(t, js, standardNames[1:], 20*time.Second, logs)
	if l := logs.lines("level=ERROR", "plugin.choria.network.stream.event_replicas = 5 is above the cluster's size, 1", "CHORIA_EVENTS"); len(l) != 1 {
		t.Errorf("want one error naming the setting:\n%s", logs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Stream(ctx, "CHORIA_EVENTS"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("CHORIA_EVENTS: want not created, got %v", err)
	}
	if st := b.StreamsStatus(); len(st.Pending) != 1 || !strings.Contains(st.Pending["CHORIA_EVENTS"], "event_replicas") {
		t.Errorf("status %+v", st)
	}
}

// Garbage in a stream's message block between runs: the engine alone
// warns twice and serves the stream empty. The broker names the stream
// and its directory in an error, reports it damaged, and the fleet is
// still served.
func TestStreamsCorruptBlock(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	store := t.TempDir()
	cfg := streamsConfig(p, store)
	cfg.Network.Stream.ManageStreams = false // only our stream in the store
	b, logs, stop := runBroker(t, cfg)
	tc := p.adminTLS(t)
	nc, js := streamsJS(t, b.ClientURL(), tc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	for { // JetStream answers a moment after the broker is ready
		if _, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage}); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("create ORDERS: %v\n%s", err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 10 {
		if _, err := js.Publish(ctx, "orders.new", []byte(fmt.Sprintf("order %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	stop()

	dir := filepath.Join(store, "jetstream", "$G", "streams", "ORDERS")
	blk := filepath.Join(dir, "msgs", "1.blk")
	st, err := os.Stat(blk)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blk, bytes.Repeat([]byte{0xa5}, int(st.Size())), 0o640); err != nil {
		t.Fatal(err)
	}

	b, logs, _ = runBroker(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for len(logs.lines("level=ERROR", "stream ORDERS is damaged", "held 10 messages", "path="+dir)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no error naming the stream and its directory\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Log(logs.lines("stream ORDERS is damaged"))
	if d := b.StreamsStatus().Damaged; len(d) != 1 || !strings.Contains(d["ORDERS"], dir) {
		t.Errorf("status damaged %v", d)
	}
	roundTrip(t, mustConnect(t, b.ClientURL(), tc), mustConnect(t, b.ClientURL(), tc), "mcollective.broadcast.agent.rpcutil")
	// the stream itself works on
	_, js = streamsJS(t, b.ClientURL(), tc)
	if _, err := js.Publish(ctx, "orders.new", []byte("after")); err != nil {
		t.Errorf("publish to ORDERS after the damage: %v", err)
	}
}

// A clean stop and start, and a stop after messages aged out: nothing is
// reported.
func TestStreamsRecordCleanRestart(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	store := t.TempDir()
	cfg := streamsConfig(p, store)
	b, logs, stop := runBroker(t, cfg)
	tc := p.adminTLS(t)
	nc, js := streamsJS(t, b.ClientURL(), tc)
	waitStreams(t, js, standardNames, 20*time.Second, logs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := js.Publish(ctx, "keep.x", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	stop()
	if _, err := os.Stat(filepath.Join(store, streamsRecordFile)); err != nil {
		t.Fatalf("no record at stop: %v", err)
	}
	b, logs, stop = runBroker(t, cfg)
	_, js = streamsJS(t, b.ClientURL(), tc)
	waitStreams(t, js, append([]string{"KEEP"}, standardNames...), 20*time.Second, logs)
	if _, err := os.Stat(filepath.Join(store, streamsRecordFile)); !os.IsNotExist(err) {
		t.Errorf("the record is still there after start: %v", err)
	}
	stop()
	if d := b.StreamsStatus().Damaged; len(d) != 0 || strings.Contains(logs.String(), "is damaged") {
		t.Errorf("damaged %v\n%s", d, logs)
	}
}
