package preflight

import (
	"context"
	"fmt"
)

// sysctlMin checks a kernel setting that must be at least need and should
// be at least want for the fleet size; each kernel_*.go file makes one.
type sysctlMin struct {
	name   string
	key    string
	levels func(nodes int) (need, want int64)
	// why is said in the fix: what goes wrong when the value is low.
	why string
}

func (c sysctlMin) Name() string { return c.name }

func (c sysctlMin) Run(_ context.Context, env *Env) []Result {
	v, err := env.Sys.Sysctl(c.key)
	if err != nil {
		return []Result{unreadable(c.key, err)}
	}
	need, want := c.levels(env.Nodes)
	res := Result{
		Status: atLeast(v, need, want),
		Found:  fmt.Sprintf("%s = %s", c.key, count(v)),
		Wanted: fmt.Sprintf("≥ %s for %s nodes (at least %s)", count(want), count(int64(env.Nodes)), count(need)),
	}
	if res.Status != Pass {
		res.Sysctl = fmt.Sprintf("%s = %d", c.key, want)
		res.Fix = fmt.Sprintf("sysctl -w %s=%d, persisted in /etc/sysctl.d (preflight --write-sysctl FILE writes it); %s", c.key, want, c.why)
	}
	return []Result{res}
}

// minQueue is the smallest queue a kernel sets by itself (somaxconn before
// 5.4, the SYN backlog on small hosts): never ask for less.
const minQueue = 128

// queueLevels sizes a kernel connection queue for n nodes. After a broker
// restart the whole fleet reconnects within seconds, so the queue must
// hold the burst, at most n, up to seed (the Choria documentation's value
// for thousands of nodes), and should hold a share of a larger fleet, up
// to the kernel's ceiling. A fleet of 10 needs a queue of 10, not the seed.
func queueLevels(n int, seed, share, ceiling int64) (need, want int64) {
	burst := max(int64(n), 0)
	need = max(min(burst, seed), minQueue)
	want = max(need, min(burst/share, ceiling))
	return need, want
}
