package fleet

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/protocol/filter"
)

// node is one emulated Choria server.
type node struct {
	identity    string
	collectives []string
	agents      []string // sorted, standard agents included
	classes     []string
	facts       map[string]any
	match       *filter.Node

	cert *pki.KeyPair
	nc   *nats.Conn
	up   atomic.Bool // counted as connected
}

func (n *node) hasAgent(a string) bool {
	_, found := slices.BinarySearch(n.agents, a)
	return found
}

func (n *node) hasCollective(c string) bool { return slices.Contains(n.collectives, c) }

// CheckIdentityPattern accepts an emulated node name pattern with exactly
// one %d (flags and width allowed, %% for a percent sign) whose names are
// valid NATS subject tokens, as node subjects need.
func CheckIdentityPattern(p string) error {
	verbs := 0
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			continue
		}
		j := i + 1
		for j < len(p) && strings.IndexByte("+-# 0123456789", p[j]) >= 0 {
			j++
		}
		switch {
		case j < len(p) && p[j] == '%' && j == i+1:
		case j < len(p) && p[j] == 'd':
			verbs++
		default:
			return fmt.Errorf("--identity %q: only %%d (the node number) and %%%% may follow %%; give one %%d, e.g. 'web-%%d.example.net'", p)
		}
		i = j
	}
	if verbs != 1 {
		return fmt.Errorf("--identity %q: needs exactly one %%d (the node number) so that every node gets its own name, e.g. 'web-%%d.example.net'; it has %d", p, verbs)
	}
	name := fmt.Sprintf(p, 0)
	if strings.ContainsAny(name, " \t\r\n*>") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
		return fmt.Errorf("--identity %q: names like %q cannot be NATS subject tokens (no spaces, '*', '>', empty parts)", p, name)
	}
	return nil
}

var (
	countries = []string{"de", "uk", "us", "za", "nl"}
	roles     = []string{"web", "db", "cache", "app"}
	families  = []struct{ family, major string }{{"Debian", "12"}, {"RedHat", "9"}}
)

// newNode makes node i with facts and classes varied enough that filters
// select subsets: country cycles through 5 values, role through 4, and so on.
func newNode(i int, identityPattern string, collectives, extraAgents []string) *node {
	id := fmt.Sprintf(identityPattern, i)
	role := roles[i%len(roles)]
	fam := families[i%len(families)]
	facts := map[string]any{
		"identity":   id,
		"fqdn":       id,
		"index":      i,
		"country":    countries[i%len(countries)],
		"role":       role,
		"datacenter": fmt.Sprintf("dc%d", i%3+1),
		"cpus":       2 << (i % 4),
		"memory_gb":  4 * (1 + i%8),
		"virtual":    i%2 == 0,
		"load":       float64(i%100) / 10,
		"emulated":   true,
		"os":         map[string]any{"family": fam.family, "release": map[string]any{"major": fam.major}},
	}
	classes := []string{"choria", "profile::base", "role::" + role}
	if i%2 == 0 {
		classes = append(classes, "apache")
	}
	if i%10 == 0 {
		classes = append(classes, "canary")
	}
	agents := append(append([]string{}, standardAgents...), extraAgents...)
	slices.Sort(agents)
	agents = slices.Compact(agents)
	n := &node{identity: id, collectives: collectives, agents: agents, classes: classes, facts: facts}
	n.match = &filter.Node{Identity: id, Agents: agents, Classes: classes, Facts: facts}
	return n
}

// subjects a go-choria server subscribes: per collective its node subject
// and the broadcast subject of every agent, none in a queue group.
func (n *node) subjects() []string {
	var out []string
	for _, c := range n.collectives {
		out = append(out, c+".node."+n.identity)
		for _, a := range n.agents {
			out = append(out, c+".broadcast.agent."+a)
		}
	}
	return out
}
