package preflight

import (
	"context"
	"fmt"
)

// maxConnections: the engine refuses clients beyond it, whatever the
// system allows.
type maxConnections struct{}

func (maxConnections) Name() string { return "config.max_connections" }

func (maxConnections) Run(_ context.Context, env *Env) []Result {
	m := env.Config.Network.MaxConnections
	res := Result{Status: Pass,
		Found:  fmt.Sprintf("plugin.choria.network.max_connections = %d", m),
		Wanted: fmt.Sprintf("≥ %d nodes", env.Nodes)}
	if m < env.Nodes {
		res.Status = Fail
		res.Fix = fmt.Sprintf("set plugin.choria.network.max_connections = %d (or more: clients and federation brokers connect too)", env.Nodes+env.Nodes/10)
	}
	return []Result{res}
}
