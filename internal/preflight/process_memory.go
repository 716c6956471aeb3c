package preflight

import (
	"context"
	"fmt"
)

// memory: a broker's resident memory grows with its connections (TLS
// state, buffers and two goroutines per node).
type memory struct{}

func (memory) Name() string { return "process.memory" }

func (memory) Run(_ context.Context, env *Env) []Result {
	avail, err := env.Sys.MemAvailable()
	if err != nil {
		return []Result{unreadable("/proc/meminfo", err)}
	}
	need := uint64(env.Nodes)*bytesPerNode + baseMemory
	want := need * 3 / 2 // headroom for broadcasts and the collector
	res := Result{
		Found:  fmt.Sprintf("%s available", mib(avail)),
		Wanted: fmt.Sprintf("≥ %s (%s nodes × 65 KiB measured, + 64 MiB, + 50%%)", mib(want), count(int64(env.Nodes))),
		Status: atLeast(int64(avail), int64(need), int64(want)),
	}
	if res.Status != Pass {
		res.Fix = fmt.Sprintf("give the host %s more memory, stop other services, or spread the fleet over a cluster", mib(want-min(avail, want)))
	}
	return []Result{res}
}
