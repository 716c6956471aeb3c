package preflight

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func storeEnv(t *testing.T, extra string) *Env {
	t.Helper()
	return hostEnv(t, "tuned", parse(t, "identity = broker.example.net\nplugin.choria.use_srv = false\n"+extra))
}

func TestStreamsStoreOff(t *testing.T) {
	t.Parallel()
	rs := run(t, streamsStore{}, storeEnv(t, ""))
	expect(t, rs[0], Skip, "Streams is off")
}

// A store that does not exist yet passes when it can be made; every
// result names what it found.
func TestStreamsStoreUsable(t *testing.T) {
	t.Parallel()
	store := filepath.Join(t.TempDir(), "new", "store")
	rs := run(t, streamsStore{}, storeEnv(t, "plugin.choria.network.stream.store = "+store+"\n"))
	if len(rs) != 3 {
		t.Fatalf("want directory, disk and replicas results, got %+v", rs)
	}
	expect(t, item(t, rs, "directory"), Pass, "does not exist; the broker will create it")
	if _, err := os.Stat(store); err == nil {
		t.Error("preflight created the store")
	}
	if r := item(t, rs, "disk"); r.Status == Fail {
		t.Errorf("disk: %+v", r)
	}
	expect(t, item(t, rs, "replicas"), Pass, "1 cluster member")
}

// A store under a file cannot be made: fail, naming the setting.
func TestStreamsStoreNotADirectory(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o644)
	rs := run(t, streamsStore{}, storeEnv(t, "plugin.choria.network.stream.store = "+filepath.Join(file, "store")+"\n"))
	r := item(t, rs, "directory")
	expect(t, r, Fail, file+" is not a directory")
	if !strings.Contains(r.Fix, "plugin.choria.network.stream.store = ") {
		t.Errorf("fix %q", r.Fix)
	}
}

func TestStreamsStoreUnwritable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root writes to any directory")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	rs := run(t, streamsStore{}, storeEnv(t, "plugin.choria.network.stream.store = "+filepath.Join(dir, "store")+"\n"))
	expect(t, item(t, rs, "directory"), Fail, "is not writable")
}

// max_store beyond the free disk, and replicas beyond the cluster, fail
// naming each setting.
func TestStreamsStoreLimits(t *testing.T) {
	t.Parallel()
	rs := run(t, streamsStore{}, storeEnv(t, "plugin.choria.network.stream.store = "+t.TempDir()+"\nplugin.choria.network.stream.max_store = 1000000T\n"+
		"plugin.choria.network.peers = nats://a.example.net:4223, nats://b.example.net:4223\nplugin.choria.network.stream.event_replicas = 3\nplugin.choria.network.stream.machine_replicas = 2\n"))
	r := item(t, rs, "disk")
	if r.Status != Fail || !strings.Contains(r.Fix, "plugin.choria.network.stream.max_store = 1000000T is more than the") {
		t.Errorf("disk: %+v", r)
	}
	r = item(t, rs, "replicas")
	expect(t, r, Fail, "2 cluster member(s); [plugin.choria.network.stream.event_replicas = 3]")
}
