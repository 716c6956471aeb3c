package preflight

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
)

// streamsStore: Choria Streams needs a store it can make and write, disk
// for what max_store promises, and peers for the replicas asked. The
// broker keeps core messaging up when the store fails, so this is where
// an operator hears of it before the fleet depends on Streams.
//
// It reads the real file system at the configured path (never creating
// anything), not System: the store is an absolute path of this host.
type streamsStore struct{}

func (streamsStore) Name() string { return "streams.store" }

// minStoreFree is the least free disk worth running Streams on: the
// standard streams and a few KV buckets of a small fleet.
const minStoreFree = 1 << 30

func (streamsStore) Run(ctx context.Context, env *Env) []Result {
	sc := env.Config.Network.Stream
	if sc.Store == "" {
		return []Result{{Status: Skip, Found: "plugin.choria.network.stream.store is not set: Choria Streams is off", Wanted: "a store directory when Streams is wanted"}}
	}
	dir := filepath.Join(sc.Store, "jetstream")
	res := []Result{storeDir(sc.Store, dir)}
	if res[0].Status == Fail {
		return res
	}
	res = append(res, storeDisk(sc, dir))
	return append(res, storeReplicas(ctx, env)...)
}

// storeDir: the store exists and is writable, or its nearest existing
// parent is a directory the broker can create it in.
func storeDir(store, dir string) Result {
	r := Result{Item: "directory", Status: Pass, Wanted: "a directory the broker can create and write"}
	at, made := nearestExisting(dir)
	fi, err := os.Stat(at)
	switch {
	case err != nil:
		r.Found = fmt.Sprintf("%s: %v", at, err)
	case !fi.IsDir():
		err = errors.New("not a directory")
		r.Found = fmt.Sprintf("%s is not a directory", at)
	default:
		if err = syscall.Access(at, 2|1); err != nil { // W_OK|X_OK
			r.Found = fmt.Sprintf("%s is not writable by this user: %v", at, err)
		}
	}
	if err != nil {
		r.Status = Fail
		r.Fix = fmt.Sprintf("plugin.choria.network.stream.store = %s: make the directory and give it to the user the broker runs as (Streams stays off and the broker serves the fleet without it until then)", store)
		return r
	}
	if made {
		r.Found = fmt.Sprintf("%s does not exist; the broker will create it in %s", dir, at)
	} else {
		r.Found = fmt.Sprintf("%s is writable", dir)
	}
	return r
}

// nearestExisting is p, or its nearest parent that exists; made is true
// when p itself does not.
func nearestExisting(p string) (at string, made bool) {
	for at = p; ; at = filepath.Dir(at) {
		_, err := os.Lstat(at)
		missing := errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) // a path through a file
		if !missing || at == filepath.Dir(at) {
			return at, at != p
		}
	}
}

// storeDisk: an absolute max_store must fit in the free disk, and the
// store needs room for the retentions it keeps.
func storeDisk(sc config.Stream, dir string) Result {
	at, _ := nearestExisting(dir)
	var fs syscall.Statfs_t
	longest := max(sc.EventRetention, sc.MachineRetention, sc.AdvisoryRetention, sc.ExecutorRetention)
	r := Result{Item: "disk", Status: Pass, Wanted: fmt.Sprintf("plugin.choria.network.stream.max_store (%s) within the free disk, and at least %s free", sc.MaxStore, human(minStoreFree))}
	if err := syscall.Statfs(at, &fs); err != nil {
		r.Status, r.Found = Warn, fmt.Sprintf("cannot read the free disk at %s: %v", at, err)
		r.Fix = "check the file system of plugin.choria.network.stream.store"
		return r
	}
	free := int64(fs.Bavail) * int64(fs.Bsize)
	r.Found = fmt.Sprintf("%s free at %s; max_store %s; events kept up to %s", human(free), at, sc.MaxStore, longest.Round(time.Hour))
	n, pct, msg := config.ParseStreamSize(sc.MaxStore)
	switch {
	case msg != "":
		r.Status, r.Fix = Fail, "plugin.choria.network.stream.max_store: "+msg
	case pct == 0 && n > free:
		r.Status = Fail
		r.Fix = fmt.Sprintf("plugin.choria.network.stream.max_store = %s is more than the %s free: the engine would fill the disk; set it below the free space, or a percentage such as 90%%", sc.MaxStore, human(free))
	case free < minStoreFree:
		r.Status = Warn
		r.Fix = fmt.Sprintf("give plugin.choria.network.stream.store a file system with at least %s free, or shorten the retentions (event_retention, machine_retention, advisory_retention, executor_retention)", human(minStoreFree))
	}
	return r
}

// storeReplicas: no stream can have more replicas than the cluster has
// members, nor more than the engine's 5.
func storeReplicas(ctx context.Context, env *Env) []Result {
	sc := env.Config.Network.Stream
	peers, source, err := clusterPeers(ctx, env, nil)
	members := max(len(peers), 1)
	r := Result{Item: "replicas", Status: Pass, Wanted: fmt.Sprintf("every *_replicas -1 or 1 to %d (the cluster's members, at most 5)", min(members, 5))}
	if err != nil {
		r.Status, r.Found, r.Fix = Warn, fmt.Sprintf("cannot count the cluster's members from %s: %v", source, err), "fix the peers list; the peers check says more"
		return []Result{r}
	}
	var bad []string
	for _, s := range []struct {
		key string
		n   int
	}{
		{"event_replicas", sc.EventReplicas}, {"machine_replicas", sc.MachineReplicas}, {"advisory_replicas", sc.AdvisoryReplicas},
		{"executor_replicas", sc.ExecutorReplicas}, {"leader_election_replicas", sc.LeaderElectionReplicas},
	} {
		if s.n > members || s.n > 5 {
			bad = append(bad, fmt.Sprintf("plugin.choria.network.stream.%s = %d", s.key, s.n))
		}
	}
	r.Found = fmt.Sprintf("%d cluster member(s)", members)
	if len(bad) > 0 {
		r.Status = Fail
		r.Found += "; " + fmt.Sprint(bad)
		r.Fix = fmt.Sprintf("set these to -1 (the cluster's size) or at most %d: the stream cannot be created with more replicas than JetStream servers, and the broker keeps retrying", min(members, 5))
	}
	return []Result{r}
}

// human is a byte count with a binary unit.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
