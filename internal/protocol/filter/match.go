package filter

import (
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// Node is what a server knows about itself when it matches a filter.
type Node struct {
	Identity string
	Agents   []string       // loaded agents, e.g. discovery, rpcutil
	Classes  []string       // Puppet classes, as from classes.txt
	Facts    map[string]any // facts as parsed from JSON/YAML
}

// Match reports whether a go-choria server with n's identity, agents,
// classes and facts would act on a request carrying f. It is safe for
// concurrent use; the first call compiles the filter, later calls reuse it.
func (f *Filter) Match(n *Node) bool {
	if f.Empty() {
		return true
	}
	if n == nil {
		n = &Node{}
	}
	p := f.compiled()
	// go-choria's order (protocol/filter.go: MatchServerRequest); cheapest first anyway.
	if len(p.identity) > 0 && !p.matchIdentity(n.Identity) {
		return false
	}
	if len(p.agents) > 0 && !matchAll(p.agents, n.Agents) {
		return false
	}
	if len(p.classes) > 0 && !matchAll(p.classes, n.Classes) {
		return false
	}
	if len(p.facts) > 0 {
		src := factSource{facts: n.Facts}
		for i := range p.facts {
			if !p.facts[i].match(&src) {
				return false
			}
		}
	}
	if p.compound != nil && !p.compound.match(p, n) {
		return false
	}
	return true
}

// plan is a Filter compiled for matching; it never changes once built.
type plan struct {
	identity []needle
	agents   []needle
	classes  []needle
	facts    []factTest
	compound *compoundPlan

	withs    sync.Map     // with() argument -> *withTest
	paths    sync.Map     // fact() argument -> *factPath
	memoSize atomic.Int64 // entries in withs and paths, capped so a query building strings cannot grow them without bound
	ctxs     sync.Pool    // *evalCtx, reused across nodes
}

// compiled returns the plan, building it once under the lock so that
// 10 000 concurrent first matches do not all compile the same expressions.
func (f *Filter) compiled() *plan {
	if p := f.plan.Load(); p != nil {
		return p
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.plan.Load(); p != nil {
		return p
	}
	p := &plan{
		identity: needles(f.Identity, ""),
		agents:   needles(f.Agent, ""),
		classes:  classNeedles(f.Class),
		facts:    make([]factTest, len(f.Fact)),
	}
	for i, ff := range f.Fact {
		p.facts[i] = newFactTest(ff)
	}
	if len(f.Compound) > 0 {
		p.compound = newCompoundPlan(f.Compound)
	}
	f.plan.Store(p)
	return p
}

// needle is one identity, agent or class filter entry.
type needle struct {
	text string         // the entry (classes: lower-cased), or for /re/ what is between the slashes
	isRe bool           // written /re/
	re   *regexp.Regexp // nil when isRe and the expression does not compile
}

func needles(list []string, reFlags string) []needle {
	out := make([]needle, len(list))
	for i, s := range list {
		text, isRe := slashed(s)
		out[i] = needle{text: text, isRe: isRe}
		if isRe {
			// An invalid expression is not an error on a server, just no match.
			out[i].re, _ = regexp.Compile(reFlags + text)
		}
	}
	return out
}

// classNeedles: /re/ is case-insensitive and a name is lower-cased before
// the exact comparison; class lines themselves are compared as they are.
func classNeedles(list []string) []needle {
	out := needles(list, "(?i)")
	for i := range out {
		if !out[i].isRe {
			out[i].text = strings.ToLower(out[i].text)
		}
	}
	return out
}

// matchIdentity ORs the entries. A /re/ entry whose expression does not
// match (or compile) still gets go-choria's exact comparison, with the
// slashes already stripped: "/a(/" matches the identity "a(".
func (p *plan) matchIdentity(id string) bool {
	for _, n := range p.identity {
		if n.isRe && n.re != nil && n.re.MatchString(id) {
			return true
		}
		if id == n.text {
			return true
		}
	}
	return false
}

// matchAll ANDs agent or class entries against the node's list.
func matchAll(ns []needle, have []string) bool {
	for i := range ns {
		if !ns[i].matchAny(have) {
			return false
		}
	}
	return true
}

func (n *needle) matchAny(have []string) bool {
	for _, h := range have {
		if n.isRe {
			if n.re != nil && n.re.MatchString(h) {
				return true
			}
		} else if h == n.text {
			return true
		}
	}
	return false
}
