package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// TestStreamsSurviveKill runs the real broker with Choria Streams, kills
// it with SIGKILL in the middle of acknowledged writes, and restarts it on
// the same store: every acknowledged write is there.
func TestStreamsSurviveKill(t *testing.T) {
	t.Parallel()
	env, err := devenv.Prepare(t.TempDir(), devenv.Options{ClientPort: testutil.FreePort(t), StatsPort: testutil.FreePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(t.TempDir(), "streams")
	f, err := os.OpenFile(env.BrokerConf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "plugin.choria.network.stream.store = %s\n", store)
	f.Close()
	start := func() (stop func(), out *testutil.Buffer) {
		cmd, out := command(t, "run", "--config", env.BrokerConf)
		stop = start(t, cmd).kill // SIGKILL: no flush, no clean shutdown
		waitFor(t, out, "broker ready")
		return stop, out
	}
	tc := devbroker.IssueTLS(t, env, "admin.privileged.mcollective")
	url := fmt.Sprintf("nats://127.0.0.1:%d", env.ClientPort)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	connect := func() jetstream.JetStream {
		nc, err := nats.Connect(url, nats.Secure(tc), nats.NoReconnect(), nats.Timeout(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		return js
	}

	kill, out := start()
	js := connect()
	for { // JetStream answers a moment after the listener opens
		if _, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ACKED", Subjects: []string{"acked.>"}, Storage: jetstream.FileStorage}); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("create stream: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var mu sync.Mutex
	acked := map[uint64]string{}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			body := fmt.Sprintf("write %d", i)
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			a, err := js.Publish(pctx, "acked.w", []byte(body))
			pcancel()
			if err != nil {
				return // the broker is gone
			}
			mu.Lock()
			acked[a.Sequence] = body
			mu.Unlock()
		}
	}()
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 500 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("only %d writes acknowledged", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	kill() // while the writer is still writing
	<-stopped

	_, out = start()
	js = connect()
	var s jetstream.Stream
	for {
		if s, err = js.Stream(ctx, "ACKED"); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("stream after restart: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for seq, body := range acked {
		m, err := s.GetMsg(ctx, seq)
		if err != nil || string(m.Data) != body {
			t.Fatalf("acknowledged write %d (%q) lost after SIGKILL: %v", seq, body, err)
		}
	}
	t.Logf("%d acknowledged writes survived SIGKILL", len(acked))
}
