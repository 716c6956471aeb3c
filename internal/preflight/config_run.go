package preflight

import (
	"context"
	"errors"
	"strings"

	"github.com/choria-broker/choria-broker/internal/runner"
)

// configRun: what `choria-broker run` refuses before it opens a file,
// judged by the very function run calls, so the two cannot drift.
type configRun struct{}

func (configRun) Name() string { return "config.run" }

func (configRun) Run(_ context.Context, env *Env) []Result {
	const wanted = "a configuration `choria-broker run` starts"
	c := env.Config
	err := runner.Validate(c)
	switch {
	case err == nil:
		var parts []string
		if c.BrokerNetwork {
			parts = append(parts, "the network broker")
		}
		if c.BrokerFederation {
			parts = append(parts, "the federation broker")
		}
		return []Result{{Status: Pass, Found: "run starts " + strings.Join(parts, " and "), Wanted: wanted}}
	case errors.Is(err, runner.ErrNothingToRun):
		return []Result{{Status: Fail, Found: err.Error(), Wanted: wanted,
			Fix: "set plugin.choria.broker_network = true on a broker that nodes and clients connect to, plugin.choria.broker_federation = true on a federation broker; the other checks assume the network broker"}}
	case c.Refused() != nil:
		return []Result{{Status: Fail, Found: err.Error(), Wanted: wanted,
			Fix: "remove the settings config.keys fails on, or keep go-choria's broker on the hosts that need them"}}
	}
	return []Result{{Status: Fail, Found: err.Error(), Wanted: wanted,
		Fix: "correct the setting the message names: run stops with this same message"}}
}
