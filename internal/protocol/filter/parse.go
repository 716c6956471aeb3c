package filter

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// operatorRE finds operators as go-choria's facts.ParseFactFilterString
// does; the alternation order matters ("=~" before "=", "=>" before ">").
var operatorRE = regexp.MustCompile(`<=|>=|=>|=<|<|>|!=|=~|={1,2}`)

const factSyntax = "want fact<op>value with op one of ==, =, !=, <, <=, =<, >, >=, =>, =~ (a value of /re/ means =~)"

// ParseFactFilter parses a fact filter as typed after -F/--wf or inside
// with(): "country=de", "cpus>=4", "os.family=~/deb/", "kernel=/linux/".
// It follows go-choria, quirks included: when the text holds several
// operators the rightmost one splits it; "=" means "=="; "=<" and "=>"
// mean "<=" and ">="; a value wrapped in slashes makes the operator "=~"
// whatever was typed.
func ParseFactFilter(s string) (FactFilter, error) {
	ops := operatorRE.FindAllStringIndex(s, -1)
	if len(ops) == 0 {
		return FactFilter{}, fmt.Errorf("fact filter %q has no operator: %s", s, factSyntax)
	}
	at := ops[len(ops)-1]
	op := s[at[0]:at[1]]
	fact := strings.TrimSpace(s[:at[0]])
	value := strings.TrimSpace(s[at[1]:])
	switch {
	case fact == "":
		return FactFilter{}, fmt.Errorf("fact filter %q has no fact name before %q: %s", s, op, factSyntax)
	case value == "":
		return FactFilter{}, fmt.Errorf("fact filter %q has no value after %q: %s", s, op, factSyntax)
	case strings.ContainsAny(fact[:1], "<>="), strings.ContainsAny(value[len(value)-1:], "<>="):
		return FactFilter{}, fmt.Errorf("fact filter %q starts or ends with an operator: %s", s, factSyntax)
	}
	switch op {
	case "=":
		op = "=="
	case "=<":
		op = "<="
	case "=>":
		op = ">="
	}
	if value[0] == '/' && value[len(value)-1] == '/' {
		op = "=~"
	}
	return FactFilter{Fact: fact, Operator: op, Value: value}, nil
}

// AddFact parses a CLI fact filter and appends it.
func (f *Filter) AddFact(s string) error {
	ff, err := ParseFactFilter(s)
	if err != nil {
		return err
	}
	if ff.Operator == "=~" {
		if _, err := compileFactRegexp(ff.Value); err != nil {
			return fmt.Errorf("fact filter %q: %q is not a valid regular expression: %v", s, ff.Value, err)
		}
	}
	f.Fact = append(f.Fact, ff)
	f.reset()
	return nil
}

// AddClass appends a class filter: a class name, or /re/ matched without
// regard to case.
func (f *Filter) AddClass(s string) error {
	if err := checkNeedle("class", s, "(?i)"); err != nil {
		return err
	}
	f.Class = addOnce(f.Class, s)
	f.reset()
	return nil
}

// AddAgent appends an agent filter: an agent name, or /re/.
func (f *Filter) AddAgent(s string) error {
	if err := checkNeedle("agent", s, ""); err != nil {
		return err
	}
	f.Agent = addOnce(f.Agent, s)
	f.reset()
	return nil
}

// AddIdentity appends an identity filter: an identity, or /re/.
func (f *Filter) AddIdentity(s string) error {
	if err := checkNeedle("identity", s, ""); err != nil {
		return err
	}
	f.Identity = addOnce(f.Identity, s)
	f.reset()
	return nil
}

// AddCompound appends an expr-language query (-S/--select), which must
// compile in the environment servers give it and yield a boolean.
// Data-plugin functions (e.g. scout()) compile, as on real servers, but
// never match on our nodes, which have no data plugins.
func (f *Filter) AddCompound(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return fmt.Errorf("compound filter is empty: want an expression such as with('apache') && fact('cpus') >= 4")
	}
	if _, err := compileCompound(expr); err != nil {
		return fmt.Errorf("compound filter %q does not compile to a boolean expression: %v", expr, err)
	}
	f.Compound = append(f.Compound, []map[string]any{{"expr": expr}})
	f.reset()
	return nil
}

// AddWith handles -W/--with: space-separated words, each a fact filter
// when it parses as one, else a class filter.
func (f *Filter) AddWith(s string) error {
	for _, word := range strings.Split(s, " ") {
		if word == "" {
			continue
		}
		if _, err := ParseFactFilter(word); err == nil {
			if err := f.AddFact(word); err != nil {
				return err
			}
			continue
		}
		if err := f.AddClass(word); err != nil {
			return err
		}
	}
	return nil
}

// checkNeedle rejects empty needles and /re/ needles that Go cannot compile
// (servers would silently never match them).
func checkNeedle(kind, s, reFlags string) error {
	if s == "" {
		return fmt.Errorf("%s filter is empty: want a name or a /regular expression/", kind)
	}
	if inner, ok := slashed(s); ok {
		if _, err := regexp.Compile(reFlags + inner); err != nil {
			return fmt.Errorf("%s filter %q: %q is not a valid regular expression: %v", kind, s, inner, err)
		}
	}
	return nil
}

// slashed reports whether s is written /re/ and returns re. Like go-choria
// it trims one slash each side, so "/" alone is the empty (match-all) re.
func slashed(s string) (string, bool) {
	if strings.HasPrefix(s, "/") && strings.HasSuffix(s, "/") {
		return strings.TrimSuffix(strings.TrimPrefix(s, "/"), "/"), true
	}
	return s, false
}

// addOnce appends s unless present, as go-choria's Add*Filter do.
func addOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
