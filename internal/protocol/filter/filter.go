// Package filter is Choria's request filter: the wire object (spec §2.8),
// the CLI syntax clients use to build it, and the server-side matching of a
// node against it (spec §4.5), quirks of go-choria included so that our
// emulated nodes answer exactly the requests real servers would.
package filter

import (
	"encoding/json"
	"sync"
	"sync/atomic"
)

// Filter is the "filter" object of a request envelope. The JSON field order
// and the always-present empty arrays are what go-choria emits.
//
// Match caches compiled regexps and expressions in the Filter. Change a
// Filter only through the Add methods or UnmarshalJSON (both drop the
// cache), never while it is being matched.
type Filter struct {
	Fact     []FactFilter       `json:"fact"`
	Class    []string           `json:"cf_class"`
	Agent    []string           `json:"agent"`
	Identity []string           `json:"identity"`
	Compound [][]map[string]any `json:"compound"`

	plan atomic.Pointer[plan] // compiled form of the fields, built by the first Match
	mu   sync.Mutex           // one goroutine builds the plan, the others wait for it
}

// FactFilter is one fact comparison: Fact is a gjson path, Operator one of
// ==, !=, <, <=, >, >=, =~.
type FactFilter struct {
	Fact     string `json:"fact"`
	Operator string `json:"operator"`
	Value    string `json:"value"`
}

// New returns an empty filter, which matches every node.
func New() *Filter {
	return &Filter{
		Fact:     []FactFilter{},
		Class:    []string{},
		Agent:    []string{},
		Identity: []string{},
		Compound: [][]map[string]any{},
	}
}

// Empty reports whether every category is empty; go-choria then matches
// without looking at the node.
func (f *Filter) Empty() bool {
	return f == nil || len(f.Fact) == 0 && len(f.Class) == 0 && len(f.Agent) == 0 && len(f.Identity) == 0 && len(f.Compound) == 0
}

// wire has the same fields without the cache, so encoding/json does the
// work and the field order stays that of the struct tags.
type wire struct {
	Fact     []FactFilter       `json:"fact"`
	Class    []string           `json:"cf_class"`
	Agent    []string           `json:"agent"`
	Identity []string           `json:"identity"`
	Compound [][]map[string]any `json:"compound"`
}

// MarshalJSON writes [] for nil categories: go-choria servers validate the
// filter against a schema that rejects null for fact, cf_class, identity
// and compound.
func (f *Filter) MarshalJSON() ([]byte, error) {
	w := wire{Fact: f.Fact, Class: f.Class, Agent: f.Agent, Identity: f.Identity, Compound: f.Compound}
	if w.Fact == nil {
		w.Fact = []FactFilter{}
	}
	if w.Class == nil {
		w.Class = []string{}
	}
	if w.Agent == nil {
		w.Agent = []string{}
	}
	if w.Identity == nil {
		w.Identity = []string{}
	}
	if w.Compound == nil {
		w.Compound = [][]map[string]any{}
	}
	return json.Marshal(w)
}

// UnmarshalJSON replaces the whole filter, as encoding/json would for a
// plain struct, and drops the match cache.
func (f *Filter) UnmarshalJSON(data []byte) error {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	f.Fact, f.Class, f.Agent, f.Identity, f.Compound = w.Fact, w.Class, w.Agent, w.Identity, w.Compound
	f.reset()
	return nil
}

// reset drops the compiled plan after the fields changed.
func (f *Filter) reset() { f.plan.Store(nil) }
