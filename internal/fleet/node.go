package fleet

import (
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"

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

	nc *nats.Conn
}

func (n *node) hasAgent(a string) bool {
	_, found := slices.BinarySearch(n.agents, a)
	return found
}

func (n *node) hasCollective(c string) bool { return slices.Contains(n.collectives, c) }

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
