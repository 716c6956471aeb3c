package filter

import (
	"testing"
)

func compound(queries ...string) *Filter {
	f := &Filter{}
	for _, q := range queries {
		f.Compound = append(f.Compound, []map[string]any{{"expr": q}})
	}
	return f
}

func TestMatchCompound(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *Filter
		want bool
	}{
		{"true", compound("true"), true},
		{"false", compound("false"), false},

		// with(): fact filter if it parses, else class, else agent.
		{"with fact filter", compound("with('country=de')"), true},
		{"with fact filter that fails does not fall back", compound("with('country=uk')"), false},
		{"with fact operator quirks apply", compound("with('fnumber>1.2')"), true},
		{"with class", compound("with('apache')"), true},
		{"with class needle lower-cased", compound("with('APACHE')"), true},
		{"with class /re/", compound("with('/^role::/')"), true},
		{"with agent", compound("with('puppet')"), true},
		{"with agent /re/", compound("with('/^rpc/')"), true},
		{"with neither", compound("with('mysql')"), false},
		{"with combined", compound("with('apache') && with('country=de') && !with('mysql')"), true},

		// fact(): gjson path to a canonical value, nil when missing.
		{"fact string", compound("fact('country') == 'de'"), true},
		{"fact number is float64", compound("fact('inumber') == 1"), true},
		{"fact number ordering", compound("fact('fnumber') > 1.1"), true},
		{"fact nested", compound("fact('nested.inumber') == 2"), true},
		{"fact missing is nil", compound("fact('nosuch') == nil"), true},
		{"fact object", compound("fact('nested').string == 'nested hello world'"), true},
		{"fact gjson count", compound("fact('storage.#') == 2"), true},
		{"fact gjson query", compound(`fact('storage.#(name=="sda").size') == 500`), true},
		{"fact type error at run time", compound("fact('country') > 3"), false},

		// include(): int needles compare as float64, as facts' numbers are.
		{"include string", compound("include(fact('list'), 'a')"), true},
		{"include int needle", compound("include(fact('list'), 2)"), true},
		{"include object", compound("include(fact('list'), {'x': 'y'})"), true},
		{"include miss", compound("include(fact('list'), 'z')"), false},
		{"include on a missing fact", compound("include(fact('nosuch'), 'a')"), false},
		{"include needs []any: classes does not compile", compound("include(classes, 'apache')"), false},

		// semver()
		{"semver match", compound("semver(fact('version'), '>= 1.2.0')"), true},
		{"semver range", compound("semver(fact('version'), '~1.2')"), true},
		{"semver miss", compound("semver(fact('version'), '< 1.0.0')"), false},
		{"semver bad version is an error", compound("!semver('x.y', '> 1')"), false},

		// The variables.
		{"agents", compound("'rpcutil' in agents"), true},
		{"classes", compound("'apache' in classes && len(classes) == 4"), true},
		{"facts is JSON text", compound("len(facts) > 2 && !('country' in agents)"), true},
		{"undefined variable is nil", compound("nosuch == nil"), true},

		// Errors never match.
		{"does not compile", compound("with('a') &&"), false},
		{"not boolean", compound("1 + 1"), false},
		{"facts.x does not compile", compound("facts.country == 'de'"), false},
		{"data plugin function (absent here)", compound("scout('check').ok"), false},
		{"runtime error", compound("fact('list')[9] == 1"), false},
		{"entry with two maps", &Filter{Compound: [][]map[string]any{{{"expr": "true"}, {"expr": "true"}}}}, false},
		{"empty entry", &Filter{Compound: [][]map[string]any{{}}}, false},
		{"entry without expr", &Filter{Compound: [][]map[string]any{{{"query": "true"}}}}, false},
		{"expr not a string", &Filter{Compound: [][]map[string]any{{{"expr": true}}}}, false},

		// Several entries: go-choria sums +1 per true and -1 per false and
		// needs a positive sum with no errors.
		{"two true", compound("true", "with('apache')"), true},
		{"true and false", compound("true", "false"), false},
		{"false and true", compound("false", "true"), false},
		{"two true outvote one false", compound("true", "false", "true"), true},
		{"one true and two false", compound("true", "false", "false"), false},
		{"an error fails all", compound("true", "true", "nope("), false},
		{"same query twice", compound("with('apache')", "with('apache')"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Match(testNode(t)); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

// Choria's with() caches are per Filter and bounded.
func TestWithMemoBounded(t *testing.T) {
	f := compound("all(1..3000, { with(string(#)) == false })")
	if !f.Match(testNode(t)) {
		t.Fatal("no match")
	}
	if n := f.plan.Load().memoSize.Load(); n > maxMemo {
		t.Errorf("%d memo entries, cap %d", n, maxMemo)
	}
}

// fact() gives what gjson's Value() gives for the facts' JSON, whatever Go
// types the emulator built them from.
func TestCompoundGoFacts(t *testing.T) {
	n := &Node{Facts: map[string]any{
		"cpus":   4,
		"tags":   []string{"a", "b"},
		"nested": map[string]any{"n": int64(3), "l": []any{1, "x"}},
		"nilmap": map[string]any(nil),
	}}
	for _, q := range []string{
		"fact('cpus') == 4 && fact('cpus') / 3 > 1.3",
		"include(fact('tags'), 'b')",
		"include(fact('nested.l'), 1)",
		"fact('nested').n == 3",
		"fact('nilmap') == nil",
		"fact('tags.#') == 2",
	} {
		if !compound(q).Match(n) {
			t.Errorf("%s did not match", q)
		}
	}
}
