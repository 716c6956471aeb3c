// Package preflight checks, before a broker is trusted with a fleet, what
// breaks large deployments: kernel queues, descriptor limits, memory, the
// certificates and CRL, ports, cluster peers and contradictory settings.
// Every check reads the system through System and changes nothing.
package preflight

import (
	"context"
	"fmt"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
)

// Status is a check's verdict.
type Status string

// Verdicts; only Fail makes preflight exit 1.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	// Skip: the check does not apply to this configuration.
	Skip Status = "skip"
)

// Result is one verdict with what was found, what is wanted and the fix.
type Result struct {
	Check  string `json:"check"`
	Item   string `json:"item,omitempty"` // what the check looked at, when it looks at several (a port, a peer)
	Status Status `json:"status"`
	Found  string `json:"found"`
	Wanted string `json:"wanted"`
	Fix    string `json:"fix,omitempty"`
	// Sysctl is the "key = value" line that fixes it, for --write-sysctl.
	Sysctl string `json:"sysctl,omitempty"`
}

// Check is one thing preflight verifies. Run may return several results
// (one per port or peer) and never changes the system.
type Check interface {
	Name() string
	Run(ctx context.Context, env *Env) []Result
}

// Env is what checks run against.
type Env struct {
	Config *config.Config
	Nodes  int // fleet size this broker must hold
	Sys    System
	Now    time.Time
	// Measure bounds how long the handshake check times signatures.
	Measure time.Duration

	srv *srvAnswer // the run's SRV lookup, made once
}

// Registry is the checks preflight runs, in order, by unique name.
type Registry struct {
	checks []Check
}

// NewRegistry registers checks in the order given; a name used twice is a
// programming error.
func NewRegistry(checks ...Check) *Registry {
	seen := map[string]bool{}
	for _, c := range checks {
		if seen[c.Name()] {
			panic("preflight: check registered twice: " + c.Name())
		}
		seen[c.Name()] = true
	}
	return &Registry{checks: checks}
}

// Default is every check, system first, then configuration, PKI and network.
func Default() *Registry {
	return NewRegistry(
		somaxconn(), synBacklog(), synCookies(), fileMax(), nrOpen(),
		processNoFile{}, unitNoFile{}, memory{},
		configKeys{}, configRun{}, configConflicts{}, maxConnections{}, streamsStore{},
		pkiFiles{}, pkiExpiry{}, pkiCRL{}, pkiNames{}, handshakes{},
		ports{}, websocket{}, srv{}, peers{}, gateways{}, leafnodes{}, federationRole{},
	)
}

// Names lists the registered checks.
func (r *Registry) Names() []string {
	var out []string
	for _, c := range r.checks {
		out = append(out, c.Name())
	}
	return out
}

// Run runs every check one after the other (the handshake check times
// CPU work, so nothing else may run beside it).
func (r *Registry) Run(ctx context.Context, env *Env) *Report {
	if env.Now.IsZero() {
		env.Now = time.Now()
	}
	if env.Measure == 0 {
		env.Measure = 200 * time.Millisecond
	}
	rep := &Report{Config: env.Config.File, Nodes: env.Nodes}
	for _, c := range r.checks {
		for _, res := range c.Run(ctx, env) {
			if res.Check == "" {
				res.Check = c.Name()
			}
			rep.add(res)
		}
	}
	return rep
}

// LoadFailed is the report for a configuration that does not load: no
// other check is meaningful on settings that are not what the file says.
func LoadFailed(path string, nodes int, err error) *Report {
	rep := &Report{Config: path, Nodes: nodes}
	rep.add(Result{Check: "config.load", Status: Fail, Found: err.Error(), Wanted: "a configuration the broker accepts",
		Fix: "correct the settings named above (file:line: key)"})
	return rep
}

// unreadable is the verdict when a system value cannot be read.
func unreadable(what string, err error) Result {
	return Result{Status: Warn, Found: fmt.Sprintf("cannot read %s: %v", what, err), Wanted: "a readable value",
		Fix: "run preflight on the broker's host, as the user that runs the broker or root"}
}
