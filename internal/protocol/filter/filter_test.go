package filter

import (
	"encoding/json"
	"reflect"
	"testing"
)

const emptyJSON = `{"fact":[],"cf_class":[],"agent":[],"identity":[],"compound":[]}`

// specExample is the filter of spec §2.8, compacted.
const specExample = `{"fact":[{"fact":"country","operator":"==","value":"de"}],"cf_class":["apache"],"agent":["rpcutil"],"identity":["/node/"],"compound":[[{"expr":"with('apache') \u0026\u0026 fact('cpus') \u003e= 4"}]]}`

func TestMarshalJSON(t *testing.T) {
	built := New()
	for _, err := range []error{
		built.AddFact("country=de"),
		built.AddClass("apache"),
		built.AddAgent("rpcutil"),
		built.AddIdentity("/node/"),
		built.AddCompound("with('apache') && fact('cpus') >= 4"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		f    *Filter
		want string
	}{
		{"New is all empty arrays", New(), emptyJSON},
		{"zero Filter emits [] not null", &Filter{}, emptyJSON},
		{"Add helpers build the spec example", built, specExample},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	spec := `{
  "fact":     [{"fact": "country", "operator": "==", "value": "de"}],
  "cf_class": ["apache"],
  "agent":    ["rpcutil"],
  "identity": ["/node/"],
  "compound": [[{"expr": "with('apache') && fact('cpus') >= 4"}]]
}`
	for _, tc := range []struct{ name, in, want string }{
		{"empty", emptyJSON, emptyJSON},
		{"spec §2.8 example", spec, specExample},
		{"missing agent key (the schema allows it) comes back as []", `{"fact":[],"cf_class":[],"identity":[],"compound":[]}`, emptyJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f Filter
			if err := json.Unmarshal([]byte(tc.in), &f); err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(&f)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			var again Filter
			if err := json.Unmarshal(got, &again); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again.Fact, f.Fact) || !reflect.DeepEqual(again.Compound, f.Compound) {
				t.Errorf("second round trip differs: %+v vs %+v", &again, &f)
			}
		})
	}
}

// A request envelope holds *Filter; the filter must still come out as above.
func TestMarshalInsideEnvelope(t *testing.T) {
	env := struct {
		Filter *Filter `json:"filter"`
	}{&Filter{}}
	got, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"filter":` + emptyJSON + `}`; string(got) != want {
		t.Errorf("got %s want %s", got, want)
	}
}

func TestUnmarshalDropsCache(t *testing.T) {
	f := New()
	n := &Node{Identity: "a"}
	if err := json.Unmarshal([]byte(`{"identity":["b"]}`), f); err != nil {
		t.Fatal(err)
	}
	if f.Match(n) {
		t.Fatal("identity b matched a")
	}
	if err := json.Unmarshal([]byte(`{"identity":["a"]}`), f); err != nil {
		t.Fatal(err)
	}
	if !f.Match(n) {
		t.Fatal("stale plan: identity a did not match a after re-decoding")
	}
}

func TestEmpty(t *testing.T) {
	var nilFilter *Filter
	for _, tc := range []struct {
		name string
		f    *Filter
		want bool
	}{
		{"nil", nilFilter, true},
		{"zero", &Filter{}, true},
		{"New", New(), true},
		{"agent only is not empty", &Filter{Agent: []string{"rpcutil"}}, false},
		{"compound only is not empty", &Filter{Compound: [][]map[string]any{{{"expr": "true"}}}}, false},
	} {
		if got := tc.f.Empty(); got != tc.want {
			t.Errorf("%s: Empty() = %v", tc.name, got)
		}
	}
}
