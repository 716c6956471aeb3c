package filter

import (
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"
)

// FuzzMatch feeds arbitrary filter and facts JSON to Match, which must
// never panic, and checks that walking the facts map finds exactly what
// gjson finds in the facts' JSON, as go-choria looks facts up.
func FuzzMatch(f *testing.F) {
	facts := `{"string":"hello world","inumber":1,"fnumber":1.2,"tbool":true,"fbool":false,"null":null,` +
		`"nested":{"a":{"b":[1,"x",{"c":2.5}]}},"big":1e20,"neg":-3.7,"list":["a",2],"ver":"1.2.3","":{"":1}}`
	for _, flt := range []string{
		emptyJSON,
		specExample,
		`{"fact":[{"fact":"string","operator":"==","value":"HELLO world"}]}`,
		`{"fact":[{"fact":"fnumber","operator":">","value":"1.2"}]}`,
		`{"fact":[{"fact":"inumber","operator":"!=","value":"01"}]}`,
		`{"fact":[{"fact":"fbool","operator":"!=","value":"false"}]}`,
		`{"fact":[{"fact":"nested.a.b.2.c","operator":"=~","value":"/2\\.5/"}]}`,
		`{"fact":[{"fact":"big","operator":"==","value":"100000000000000000000"}]}`,
		`{"fact":[{"fact":"nested.a.b.#","operator":">=","value":"3"}]}`,
		`{"fact":[{"fact":"list.01","operator":"<","value":"3"}]}`,
		`{"identity":["/a(/","x"],"agent":["/^r/"],"cf_class":["APACHE","/Mixed/"]}`,
		`{"compound":[[{"expr":"with('apache') && fact('inumber') == 1"}]]}`,
		`{"compound":[[{"expr":"true"}],[{"expr":"false"}],[{"expr":"true"}]]}`,
		`{"compound":[[{"expr":"include(fact('list'), 2) && semver(fact('ver'), '~1.2')"}]]}`,
		`{"compound":[[{"expr":"with('fnumber>=1') and len(facts) > 3"}]]}`,
		`{"compound":[[{"expr":"fact('nested.a.b')[7] == 1"}],[]]}`,
		`{"compound":[[{"expr":1}]]}`,
	} {
		f.Add(flt, facts)
	}
	f.Add(`{"fact":[{"fact":"a","operator":"<","value":"b"}]}`, `{"a":"B"}`)
	f.Add(`{"fact":[{"fact":"a.0","operator":"==","value":"1"}]}`, `{"a":{"0":1}}`)
	f.Fuzz(func(t *testing.T, filterJSON, factsJSON string) {
		var flt Filter
		if json.Unmarshal([]byte(filterJSON), &flt) != nil {
			return
		}
		var facts map[string]any
		if json.Unmarshal([]byte(factsJSON), &facts) != nil {
			return
		}
		n := &Node{Identity: "a(", Agents: []string{"rpcutil", "puppet"}, Classes: []string{"apache", "Mixed::Case"}, Facts: facts}
		first := flt.Match(n)
		if again := flt.Match(n); again != first {
			t.Fatalf("cached plan changed the answer: %v then %v", first, again)
		}
		raw := canonicalJSON(facts)
		for _, ff := range flt.Fact {
			ft := newFactTest(ff)
			src := factSource{facts: facts}
			got, gotOK := src.lookup(&ft.path)
			want := gjson.GetBytes(raw, ff.Fact)
			if gotOK != want.Exists() {
				t.Fatalf("fact %q in %s: exists %v, gjson says %v", ff.Fact, raw, gotOK, want.Exists())
			}
			if !gotOK {
				continue
			}
			if got.Type != want.Type || got.Str != want.Str || got.Num != want.Num || got.Int() != want.Int() {
				t.Fatalf("fact %q in %s: %#v, gjson says %#v", ff.Fact, raw, got, want)
			}
			ref := ft
			ref.path.parts = nil // force the gjson path
			if ft.match(&src) != ref.match(&factSource{facts: facts}) {
				t.Fatalf("fact filter %+v on %s: walking and gjson disagree", ff, raw)
			}
		}
	})
}
