package preflight

import (
	"context"
	"fmt"
)

// processNoFile: every node holds a descriptor. The value that counts is
// what `choria-broker run` ends up with, since it raises its own limit.
type processNoFile struct{}

func (processNoFile) Name() string { return "process.nofile" }

func (processNoFile) Run(_ context.Context, env *Env) []Result {
	soft, hard, err := env.Sys.NoFile()
	if err != nil {
		return []Result{unreadable("the open-file limit", err)}
	}
	target := raiseTarget(env)
	got := brokerNoFile(soft, hard, env.Sys.Privileged(), target, nrOpenOr(env))
	want := fdWant(env.Nodes)
	res := Result{
		Status: atLeast(int64(got), fdNeed(env.Nodes), want),
		Found: fmt.Sprintf("soft %s, hard %s here; the broker starts with %s (it raises its limit to max_connections + %d = %s)",
			count(int64(soft)), count(int64(hard)), count(int64(got)), fdMargin, count(int64(target))),
		Wanted: fmt.Sprintf("≥ %s (2 × %s nodes + %d)", count(want), count(int64(env.Nodes)), fdMargin),
	}
	if res.Status != Pass {
		res.Fix = fmt.Sprintf("ulimit -Hn %d; ulimit -Sn %d in the shell or script that starts the broker, or LimitNOFILE=%d in its service unit", want, want, want)
	}
	return []Result{res}
}

// raiseTarget is what `run` raises the open-file limit to (limits.RaiseNoFile).
func raiseTarget(env *Env) uint64 {
	return uint64(env.Config.Network.MaxConnections) + fdMargin
}

// brokerNoFile is the limit after limits.RaiseNoFile(target): the soft
// limit when it suffices, else the target within the hard limit, or beyond
// it when privileged (root) up to fs.nr_open.
func brokerNoFile(soft, hard uint64, privileged bool, target, nrOpen uint64) uint64 {
	switch {
	case soft >= target:
		return soft
	case hard >= target:
		return target
	case privileged && target <= nrOpen:
		return target
	}
	return hard
}

// nrOpenOr is fs.nr_open, or the kernel's default when it cannot be read.
func nrOpenOr(env *Env) uint64 {
	if v, err := env.Sys.Sysctl("fs.nr_open"); err == nil && v > 0 {
		return uint64(v)
	}
	return 1 << 20
}
