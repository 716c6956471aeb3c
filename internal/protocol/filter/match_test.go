package filter

import (
	"encoding/json"
	"fmt"
	"testing"
)

// factsJSON is go-choria's filter/facts/testdata/fact.yaml plus a few more
// shapes; decoded with encoding/json as a server decodes fact files.
const factsJSON = `{
  "string": "hello world", "inumber": 1, "fnumber": 1.2, "tbool": true, "fbool": false,
  "nested": {"string": "nested hello world", "inumber": 2, "fnumber": 2.2, "tbool": true, "fbool": false},
  "null": null, "list": ["a", 2, {"x": "y"}], "neg": -3.7, "zero": 0,
  "storage": [{"name": "sda", "size": 500}, {"name": "nvme0n1", "size": 64}],
  "country": "de", "version": "1.2.3", "unicode": "Straße"
}`

func testNode(t testing.TB) *Node {
	var facts map[string]any
	if err := json.Unmarshal([]byte(factsJSON), &facts); err != nil {
		t.Fatal(err)
	}
	return &Node{
		Identity: "web1.example.net",
		Agents:   []string{"discovery", "puppet", "rpcutil"},
		Classes:  []string{"Mixed::Case", "apache", "profile::base", "role::web"},
		Facts:    facts,
	}
}

func factF(fact, op, value string) *Filter {
	return &Filter{Fact: []FactFilter{{fact, op, value}}}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *Filter
		want bool
	}{
		// §4.5 empty filter and the AND across categories.
		{"empty filter matches", New(), true},
		{"zero filter matches", &Filter{}, true},
		{"all categories pass", &Filter{Identity: []string{"/web/"}, Agent: []string{"rpcutil"}, Class: []string{"apache"}, Fact: []FactFilter{{"country", "==", "de"}}, Compound: [][]map[string]any{{{"expr": "with('apache')"}}}}, true},
		{"one failing category fails the match", &Filter{Identity: []string{"/web/"}, Agent: []string{"nope"}, Class: []string{"apache"}}, false},

		// Identity: OR; /re/ is a Go regexp search; else exact.
		{"identity exact", &Filter{Identity: []string{"web1.example.net"}}, true},
		{"identity exact is case-sensitive", &Filter{Identity: []string{"WEB1.example.net"}}, false},
		{"identity exact does not search", &Filter{Identity: []string{"web1"}}, false},
		{"identity entries are ORed", &Filter{Identity: []string{"db1", "web1.example.net"}}, true},
		{"identity none of several", &Filter{Identity: []string{"db1", "db2"}}, false},
		{"identity /re/ searches unanchored", &Filter{Identity: []string{"/web\\d/"}}, true},
		{"identity /re/ is case-sensitive", &Filter{Identity: []string{"/WEB/"}}, false},
		{"identity /re/ anchored miss", &Filter{Identity: []string{"/^example/"}}, false},
		{"identity / alone is the empty re and matches all", &Filter{Identity: []string{"/"}}, true},

		// Agent: AND; /re/ any known agent; else exact.
		{"agent exact", &Filter{Agent: []string{"rpcutil"}}, true},
		{"agent missing", &Filter{Agent: []string{"package"}}, false},
		{"agent entries are ANDed", &Filter{Agent: []string{"rpcutil", "package"}}, false},
		{"agent all present", &Filter{Agent: []string{"rpcutil", "discovery"}}, true},
		{"agent exact is case-sensitive", &Filter{Agent: []string{"RPCUtil"}}, false},
		{"agent /re/ matches some agent", &Filter{Agent: []string{"/^pup/"}}, true},
		{"agent /re/ is case-sensitive", &Filter{Agent: []string{"/^PUP/"}}, false},
		{"agent bad /re/ never matches", &Filter{Agent: []string{"/pup(/"}}, false},

		// Class: AND; /re/ case-insensitive; else lower-cased needle equals a class.
		{"class exact", &Filter{Class: []string{"apache"}}, true},
		{"class needle is lower-cased", &Filter{Class: []string{"APACHE"}}, true},
		{"class lines are not lower-cased", &Filter{Class: []string{"Mixed::Case"}}, false},
		{"class entries are ANDed", &Filter{Class: []string{"apache", "mysql"}}, false},
		{"class /re/ ignores case", &Filter{Class: []string{"/^MIXED::/"}}, true},
		{"class /re/ searches unanchored", &Filter{Class: []string{"/web/"}}, true},
		{"class /re/ miss", &Filter{Class: []string{"/mysql/"}}, false},
		{"class bad /re/ never matches", &Filter{Class: []string{"/role(/"}}, false},

		// Fact: AND; missing fact is false.
		{"fact missing", factF("nosuch", "==", "x"), false},
		{"fact missing with !=", factF("nosuch", "!=", "x"), false},
		{"fact entries are ANDed", &Filter{Fact: []FactFilter{{"country", "==", "de"}, {"inumber", "==", "2"}}}, false},
		{"fact all pass", &Filter{Fact: []FactFilter{{"country", "==", "de"}, {"inumber", "==", "1"}}}, true},
		{"fact unknown operator", factF("country", "=", "de"), false},
		{"fact dots descend into maps", factF("nested.string", "==", "nested hello world"), true},
		{"fact numeric part indexes arrays", factF("list.0", "==", "a"), true},
		{"fact index past the end", factF("list.9", "==", "a"), false},
		{"fact path through a string", factF("string.x", "==", "a"), false},
		{"fact gjson query path", factF(`storage.#(name=="nvme0n1").size`, "==", "64"), true},
		{"fact gjson count path", factF("storage.#", "==", "2"), true},

		// == on strings: case-insensitive.
		{"string == equal", factF("string", "==", "hello world"), true},
		{"string == ignores case", factF("string", "==", "HeLlO WoRLD"), true},
		{"string == Unicode folding", factF("unicode", "==", "STRAßE"), true},
		{"string == differs", factF("string", "==", "helloworld"), false},
		// == on numbers.
		{"int == decimal text", factF("inumber", "==", "1"), true},
		{"int == other", factF("inumber", "==", "2"), false},
		{"int == compares text: 01 is not 1", factF("inumber", "==", "01"), false},
		{"int == non-number value", factF("inumber", "==", "one"), false},
		{"number == value with dot compares floats", factF("fnumber", "==", "1.2"), true},
		{"int == 1.0 compares floats", factF("inumber", "==", "1.0"), true},
		{"float == value without dot truncates the fact", factF("fnumber", "==", "1"), true},
		{"negative float == truncates toward zero", factF("neg", "==", "-3"), true},
		{"number == unparsable float value", factF("fnumber", "==", "1.2.3"), false},
		// == on booleans: value read by strconv.ParseBool.
		{"true == true", factF("tbool", "==", "true"), true},
		{"true == T", factF("tbool", "==", "T"), true},
		{"true == 1", factF("tbool", "==", "1"), true},
		{"true == t", factF("tbool", "==", "t"), true},
		{"true == false", factF("tbool", "==", "false"), false},
		{"true == yes (not a bool)", factF("tbool", "==", "yes"), false},
		{"false == false", factF("fbool", "==", "false"), true},
		{"false == F", factF("fbool", "==", "F"), true},
		{"false == 0", factF("fbool", "==", "0"), true},
		{"false == f", factF("fbool", "==", "f"), true},
		{"false == true", factF("fbool", "==", "true"), false},
		{"false == anything not true matches", factF("fbool", "==", "bob"), true},
		// null and objects never match.
		{"null == null", factF("null", "==", "null"), false},
		{"null != x", factF("null", "!=", "x"), false},
		{"object == x", factF("nested", "==", "x"), false},
		{"object != x", factF("nested", "!=", "x"), false},
		{"array =~ anything", factF("list", "=~", "/.*/"), false},

		// =~: slashes trimmed, case-insensitive, number rendering.
		{"string =~ /re/", factF("string", "=~", "/hello/"), true},
		{"string =~ ignores case", factF("string", "=~", "/HeLlO/"), true},
		{"string =~ without slashes", factF("string", "=~", "wor"), true},
		{"string =~ all slashes trimmed", factF("string", "=~", "//^hello//"), true},
		{"string =~ miss", factF("string", "=~", "/bye/"), false},
		{"string =~ bad regexp", factF("string", "=~", "/hel(/"), false},
		{"float =~ with dot renders %.4f", factF("fnumber", "=~", "/^1\\.2000$/"), true},
		{"float =~ regexp from the tests", factF("fnumber", "=~", "/1\\.\\d+/"), true},
		{"int =~ with dot renders %.4f", factF("inumber", "=~", "/^1\\.0000$/"), true},
		{"float =~ without dot renders the integer", factF("fnumber", "=~", "/^1$/"), true},
		{"true =~ reads the value as a bool", factF("tbool", "=~", "TRUE"), true},
		{"true =~ /true/ is not a bool", factF("tbool", "=~", "/true/"), false},
		{"false =~ anything not true", factF("fbool", "=~", "/x/"), true},

		// <, <=, >, >= on strings: lower-cased, byte-wise.
		{"string < h", factF("string", "<", "h"), false},
		{"string < H", factF("string", "<", "H"), false},
		{"string < i", factF("string", "<", "i"), true},
		{"string < I", factF("string", "<", "I"), true},
		{"string > h", factF("string", ">", "h"), true},
		{"string > H", factF("string", ">", "H"), true},
		{"string > i", factF("string", ">", "i"), false},
		{"string <= itself in capitals", factF("string", "<=", "HELLO WORLD"), true},
		{"string >= itself in capitals", factF("string", ">=", "HELLO WORLD"), true},
		{"string > numbers compare as text", factF("version", ">", "1.10"), true},
		// on numbers: int unless the value has a dot.
		{"int >= 1", factF("inumber", ">=", "1"), true},
		{"int > 1 is strict", factF("inumber", ">", "1"), false},
		{"int < 10", factF("inumber", "<", "10"), true},
		{"int <= 0", factF("inumber", "<=", "0"), false},
		{"int ordering against a non-number", factF("inumber", "<", "ten"), false},
		{"int ordering against 1e3 (no dot, not an int)", factF("inumber", "<", "1e3"), false},
		{"float <= 1.01", factF("fnumber", "<=", "1.01"), false},
		{"float >= 1 truncates the fact", factF("fnumber", ">=", "1"), true},
		{"float <= 1 truncates the fact", factF("fnumber", "<=", "1"), true},
		{"float > 1 truncates the fact", factF("fnumber", ">", "1"), false},
		{"float < 10", factF("fnumber", "<", "10"), true},
		{"float < 1.0", factF("fnumber", "<", "1.0"), false},
		{"float > 10", factF("fnumber", ">", "10"), false},
		{"float > 1.0", factF("fnumber", ">", "1.0"), true},
		{"quirk: > with a float value is >=", factF("fnumber", ">", "1.2"), true},
		{"> with an int value stays strict", factF("inumber", ">", "1"), false},
		{">= with a float value", factF("fnumber", ">=", "1.2"), true},
		{"< with a float value is strict", factF("fnumber", "<", "1.2"), false},
		{"ordering a boolean", factF("tbool", ">=", "0"), false},
		{"ordering null", factF("null", "<", "1"), false},
		{"ordering an object", factF("nested", "<", "1"), false},

		// !=: the negation of ==, except for false booleans.
		{"string != itself", factF("string", "!=", "hello world"), false},
		{"string != itself ignoring case", factF("string", "!=", "HeLlO WOrLd"), false},
		{"string != other", factF("string", "!=", "helloworld"), true},
		{"int != 1", factF("inumber", "!=", "1"), false},
		{"int != 2", factF("inumber", "!=", "2"), true},
		{"int != 01 (text comparison)", factF("inumber", "!=", "01"), true},
		{"float != 1.2", factF("fnumber", "!=", "1.2"), false},
		{"float != 1.3", factF("fnumber", "!=", "1.3"), true},
		{"float != unparsable value", factF("fnumber", "!=", "1.x"), false},
		{"true != bob", factF("tbool", "!=", "bob"), true},
		{"true != false", factF("tbool", "!=", "false"), true},
		{"true != T", factF("tbool", "!=", "T"), false},
		{"true != TRUE", factF("tbool", "!=", "TRUE"), false},
		{"quirk: false != bob", factF("fbool", "!=", "bob"), true},
		{"quirk: false != true", factF("fbool", "!=", "true"), false},
		{"quirk: false != false matches", factF("fbool", "!=", "false"), true},
		{"quirk: false != 0 matches", factF("fbool", "!=", "0"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Match(testNode(t)); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

// Identities with regexp metacharacters: a /re/ that does not compile (or
// match) is still compared exactly, without its slashes.
func TestMatchIdentityBadRegexp(t *testing.T) {
	f := &Filter{Identity: []string{"/a(/"}}
	if !f.Match(&Node{Identity: "a("}) {
		t.Error(`"/a(/" did not match identity "a("`)
	}
	if f.Match(&Node{Identity: "a"}) {
		t.Error(`"/a(/" matched identity "a"`)
	}
}

// Facts built in Go (the emulator) rather than decoded from JSON: ints,
// int64s, typed slices and maps behave as their JSON would.
func TestMatchGoFacts(t *testing.T) {
	n := &Node{Facts: map[string]any{
		"cpus":    4,
		"big":     int64(1) << 40,
		"f32":     float32(1.5),
		"tags":    []string{"a", "b"},
		"labels":  map[string]string{"role": "web"},
		"number":  json.Number("12"),
		"os":      map[string]any{"family": "Debian", "release": map[string]any{"major": "12"}},
		"nan":     nanValue(),
		"badutf8": "a\xffb",
		"nilmap":  map[string]any(nil),
		"nillist": []any(nil),
	}}
	for _, tc := range []struct {
		name string
		fact FactFilter
		want bool
	}{
		{"int", FactFilter{"cpus", "==", "4"}, true},
		{"int ordering", FactFilter{"cpus", ">=", "4"}, true},
		{"int64", FactFilter{"big", "==", "1099511627776"}, true},
		{"float32 as its JSON", FactFilter{"f32", "==", "1.5"}, true},
		{"[]string indexed", FactFilter{"tags.1", "==", "b"}, true},
		{"map[string]string", FactFilter{"labels.role", "==", "web"}, true},
		{"json.Number", FactFilter{"number", ">", "11"}, true},
		{"nested maps", FactFilter{"os.release.major", "==", "12"}, true},
		{"NaN cannot be JSON so is missing", FactFilter{"nan", "!=", "1"}, false},
		{"invalid UTF-8 reads as U+FFFD", FactFilter{"badutf8", "==", "a\uFFFDb"}, true},
		{"nil map is null", FactFilter{"nilmap", "!=", "x"}, false},
		{"nil slice is null", FactFilter{"nillist", "!=", "x"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &Filter{Fact: []FactFilter{tc.fact}}
			if got := f.Match(n); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func TestMatchNilNode(t *testing.T) {
	if !New().Match(nil) {
		t.Error("empty filter did not match a nil node")
	}
	if (&Filter{Agent: []string{"rpcutil"}}).Match(nil) {
		t.Error("agent filter matched a nil node")
	}
}

// The emulator matches one request's filter against every node at once.
func TestMatchConcurrent(t *testing.T) {
	nodes := benchNodes(400)
	f := New()
	for _, err := range []error{f.AddFact("cpus>=4"), f.AddClass("/role::r[12]/"), f.AddCompound("with('apache') && fact('os.release.major') == '12' && len(facts) > 0")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := make([]bool, len(nodes))
	for i, n := range nodes {
		want[i] = New().Match(n) && (&Filter{Fact: f.Fact, Class: f.Class, Compound: f.Compound}).Match(n)
	}
	done := make(chan error, len(nodes))
	for i, n := range nodes {
		go func() {
			if got := f.Match(n); got != want[i] {
				done <- fmt.Errorf("node %s: got %v want %v", n.Identity, got, want[i])
				return
			}
			done <- nil
		}()
	}
	matched := 0
	for range nodes {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	for _, w := range want {
		if w {
			matched++
		}
	}
	if matched == 0 || matched == len(nodes) {
		t.Errorf("%d of %d matched: the filter does not discriminate", matched, len(nodes))
	}
}
