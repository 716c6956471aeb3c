package filter

import (
	"strings"
	"testing"
)

func TestParseFactFilter(t *testing.T) {
	for _, tc := range []struct{ name, in, fact, op, value string }{
		{"= is ==", "foo=bar", "foo", "==", "bar"},
		{"= with spaces", "foo = bar", "foo", "==", "bar"},
		{"==", "foo==bar", "foo", "==", "bar"},
		{"== with spaces", "foo == bar", "foo", "==", "bar"},
		{"!=", "foo!=bar", "foo", "!=", "bar"},
		{"<", "cpus<5", "cpus", "<", "5"},
		{">", "cpus>5", "cpus", ">", "5"},
		{"<=", "cpus<=5", "cpus", "<=", "5"},
		{">=", "cpus>=5", "cpus", ">=", "5"},
		{"=< is <=", "foo=<bar", "foo", "<=", "bar"},
		{"=> is >=", "foo => bar", "foo", ">=", "bar"},
		{"=~", "foo=~bar", "foo", "=~", "bar"},
		{"=~ with spaces", "foo =~ bar", "foo", "=~", "bar"},
		{"=/re/ is =~", "foo=/bar/", "foo", "=~", "/bar/"},
		{"= /re/ with spaces", "foo = /bar/", "foo", "=~", "/bar/"},
		{"/re/ value makes any operator =~", "foo</bar/", "foo", "=~", "/bar/"},
		{"dotted fact", "os.family=Debian", "os.family", "==", "Debian"},
		{"rightmost operator splits: gjson query in the fact", `storage.#(name="nvme0n1").size==64`, `storage.#(name="nvme0n1").size`, "==", "64"},
		{"rightmost operator: single quotes", `storage.#(name='nvme0n1').size==64`, `storage.#(name='nvme0n1').size`, "==", "64"},
		{"rightmost operator: = after ==", `storage.#(name=="nvme0n1").size=64`, `storage.#(name=="nvme0n1").size`, "==", "64"},
		{"rightmost operator: spaces", `storage.#(name="nvme0n1").size == 64`, `storage.#(name="nvme0n1").size`, "==", "64"},
		{"rightmost operator: <= inside the fact", `storage.#(name<= "nvme0n1" ).size==64`, `storage.#(name<= "nvme0n1" ).size`, "==", "64"},
		{"rightmost operator: => with spaces in value", `storage.#(name="foo bar").size=>baz bar`, `storage.#(name="foo bar").size`, ">=", "baz bar"},
		{"rightmost operator wins even inside a value", "a=b=c", "a=b", "==", "c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFactFilter(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if want := (FactFilter{tc.fact, tc.op, tc.value}); got != want {
				t.Errorf("ParseFactFilter(%q) = %+v, want %+v", tc.in, got, want)
			}
		})
	}
}

func TestParseFactFilterErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, says string }{
		{"no operator", "foobarbaz", "no operator"},
		{"fact starts with =", "=foo(bar=baz)", "starts or ends with an operator"},
		{"no fact", "==bar", "no fact name"},
		{"no value", "foo=", "no value"},
		{"ends with an operator", "foo(bar=baz)>", "no value"},
		{"only operators", "=><==", "no value"},
		{"value ends in an operator", "foo==bar<", "no value"},
		{"fact starts with an operator", "<a == b", "starts or ends with an operator"},
		{"empty", "", "no operator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFactFilter(tc.in)
			if err == nil {
				t.Fatalf("ParseFactFilter(%q) did not fail", tc.in)
			}
			for _, want := range []string{tc.says, "==", "=~"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestAddErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  func(*Filter) error
		says string
	}{
		{"fact that does not parse", func(f *Filter) error { return f.AddFact("country") }, `"country"`},
		{"fact regexp that does not compile", func(f *Filter) error { return f.AddFact("country=~/(/") }, "not a valid regular expression"},
		{"empty class", func(f *Filter) error { return f.AddClass("") }, "class filter is empty"},
		{"class regexp", func(f *Filter) error { return f.AddClass("/a[/") }, `class filter "/a[/"`},
		{"empty agent", func(f *Filter) error { return f.AddAgent("") }, "agent filter is empty"},
		{"agent regexp", func(f *Filter) error { return f.AddAgent("/a(/") }, `agent filter "/a(/"`},
		{"empty identity", func(f *Filter) error { return f.AddIdentity("") }, "identity filter is empty"},
		{"identity regexp", func(f *Filter) error { return f.AddIdentity("/*/") }, "not a valid regular expression"},
		{"empty compound", func(f *Filter) error { return f.AddCompound(" ") }, "compound filter is empty"},
		{"compound syntax", func(f *Filter) error { return f.AddCompound("with('a') &&") }, `compound filter "with('a') &&"`},
		{"compound not boolean", func(f *Filter) error { return f.AddCompound("1 + 1") }, "boolean"},
		{"compound facts is JSON text, not a map", func(f *Filter) error { return f.AddCompound("facts.country == 'de'") }, "does not compile"},
		{"with word that is a bad class regexp", func(f *Filter) error { return f.AddWith("country=de /a(/") }, "class filter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			err := tc.add(f)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
		})
	}
}

func TestAdd(t *testing.T) {
	f := New()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.AddIdentity("a"))
	must(f.AddIdentity("a")) // duplicates are dropped, as go-choria does
	must(f.AddIdentity("/b/"))
	must(f.AddAgent("rpcutil"))
	must(f.AddClass("/APACHE/"))
	must(f.AddFact("cpus>=4"))
	must(f.AddWith("country=de  role::web /^x/"))
	must(f.AddCompound("semver('1.2.3', '>= 1.0')"))
	must(f.AddCompound("scout('x').ok")) // data plugins compile, as on servers
	if got := strings.Join(f.Identity, ","); got != "a,/b/" {
		t.Errorf("identity %s", got)
	}
	if got := strings.Join(f.Class, ","); got != "/APACHE/,role::web,/^x/" {
		t.Errorf("class %s", got)
	}
	if len(f.Fact) != 2 || f.Fact[1] != (FactFilter{"country", "==", "de"}) {
		t.Errorf("fact %+v", f.Fact)
	}
	if len(f.Compound) != 2 || f.Compound[0][0]["expr"] != "semver('1.2.3', '>= 1.0')" {
		t.Errorf("compound %+v", f.Compound)
	}
}

// Adding after a Match must not leave the old compiled plan in use.
func TestAddDropsCache(t *testing.T) {
	f := New()
	n := &Node{Identity: "a", Agents: []string{"rpcutil"}}
	if err := f.AddAgent("rpcutil"); err != nil {
		t.Fatal(err)
	}
	if !f.Match(n) {
		t.Fatal("agent rpcutil did not match")
	}
	if err := f.AddIdentity("b"); err != nil {
		t.Fatal(err)
	}
	if f.Match(n) {
		t.Fatal("stale plan: identity b matched a")
	}
}
