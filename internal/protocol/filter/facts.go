package filter

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// A go-choria server decodes its fact files into map[string]any (so every
// number is a float64), encodes that as JSON, and looks facts up with
// gjson. We give the same answers without encoding every node's facts per
// request: dotted names are walked in the map directly, and only paths
// using other gjson syntax (#, *, ?, |, @, escapes...) pay for the JSON.

// factSource resolves fact paths for one Match call.
type factSource struct {
	facts   map[string]any
	raw     []byte // canonical JSON, built on first need
	rawDone bool
}

// json returns the facts as a go-choria server holds them: "{}" when there
// are none or they cannot be encoded.
func (s *factSource) json() []byte {
	if !s.rawDone {
		s.rawDone = true
		s.raw = canonicalJSON(s.facts)
	}
	return s.raw
}

func canonicalJSON(facts map[string]any) []byte {
	empty := []byte("{}")
	if len(facts) == 0 {
		return empty
	}
	b, err := json.Marshal(facts)
	if err != nil {
		return empty
	}
	// Decode and encode again so ints beyond 2^53 and float32s come out
	// as the float64s a server would have.
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return empty
	}
	if b, err = json.Marshal(m); err != nil {
		return empty
	}
	return b
}

// factPath is a fact name; parts is nil when it needs gjson itself.
type factPath struct {
	path  string
	parts []string
}

func newFactPath(path string) factPath {
	if !simplePath(path) {
		return factPath{path: path}
	}
	return factPath{path: path, parts: strings.Split(path, ".")}
}

// simplePath: dot-separated non-empty names made of characters gjson gives
// no meaning to, so that walking the map is exactly what gjson would do.
func simplePath(p string) bool {
	if p == "" || !utf8.ValidString(p) {
		return false
	}
	prevDot := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '-', c == ':', c == '/', c >= 0x80:
		default:
			return false
		}
		prevDot = false
	}
	return !prevDot
}

// lookup finds a fact as gjson would in the canonical JSON; ok is false
// when it does not exist.
func (s *factSource) lookup(p *factPath) (gjson.Result, bool) {
	if p.parts == nil {
		r := gjson.GetBytes(s.json(), p.path)
		return r, r.Exists()
	}
	v, ok := walk(s.facts, p.parts)
	if !ok {
		return gjson.Result{}, false
	}
	return toResult(v)
}

// value is what gjson's Result.Value() gives for the fact: canonical Go
// values (float64 numbers, map[string]any, []any), nil when missing.
func (s *factSource) value(p *factPath) any {
	if p.parts == nil {
		return gjson.GetBytes(s.json(), p.path).Value()
	}
	v, ok := walk(s.facts, p.parts)
	if !ok {
		return nil
	}
	v, _ = canonical(v)
	return v
}

// walk follows parts down maps (by key) and arrays (by decimal index).
func walk(facts map[string]any, parts []string) (any, bool) {
	var cur any = facts
	for _, part := range parts {
		next, ok := step(cur, part)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

func step(cur any, part string) (any, bool) {
	switch c := cur.(type) {
	case map[string]any:
		v, ok := c[part]
		return v, ok
	case []any:
		i, ok := arrayIndex(part)
		if !ok || i >= len(c) {
			return nil, false
		}
		return c[i], true
	case nil, bool, string, float64, int, int64:
		return nil, false
	default:
		cv, ok := canonical(c)
		if !ok {
			return nil, false
		}
		switch cv.(type) {
		case map[string]any, []any:
			return step(cv, part)
		}
		return nil, false
	}
}

// arrayIndex accepts what gjson does: only decimal digits, leading zeros allowed.
func arrayIndex(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' || n > (math.MaxInt32-9)/10 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(s) > 0
}

// toResult makes the gjson.Result a server would see for a fact value.
func toResult(v any) (gjson.Result, bool) {
	switch v := v.(type) {
	case nil:
		return gjson.Result{Type: gjson.Null, Raw: "null"}, true
	case bool:
		if v {
			return gjson.Result{Type: gjson.True, Raw: "true"}, true
		}
		return gjson.Result{Type: gjson.False, Raw: "false"}, true
	case string:
		if utf8.ValidString(v) {
			return gjson.Result{Type: gjson.String, Str: v}, true
		}
	case float64:
		return numResult(v)
	case int:
		return numResult(float64(v))
	case int64:
		return numResult(float64(v))
	case map[string]any:
		if v == nil {
			return gjson.Result{Type: gjson.Null, Raw: "null"}, true // JSON encodes a nil map as null
		}
		return gjson.Result{Type: gjson.JSON}, true
	case []any:
		if v == nil {
			return gjson.Result{Type: gjson.Null, Raw: "null"}, true
		}
		return gjson.Result{Type: gjson.JSON}, true
	}
	cv, ok := canonical(v)
	if !ok {
		return gjson.Result{}, false
	}
	return toResult(cv)
}

// maxSafe is 2^53-1: gjson reads Int() from Num up to it, else from Raw.
const maxSafe = 1<<53 - 1

func numResult(f float64) (gjson.Result, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return gjson.Result{}, false // JSON cannot carry it, so the server never sees it
	}
	r := gjson.Result{Type: gjson.Number, Num: f}
	if f > maxSafe || f < -maxSafe {
		b, _ := json.Marshal(f)
		r.Raw = string(b)
	}
	return r, true
}

// canonical converts v to what json.Unmarshal into any would give back
// after json.Marshal: the shape gjson's Value() returns.
func canonical(v any) (any, bool) {
	switch v := v.(type) {
	case nil, bool:
		return v, true
	case string:
		if utf8.ValidString(v) {
			return v, true
		}
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, false
		}
		return v, true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case map[string]any:
		if v == nil {
			return nil, true
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			ce, ok := canonical(e)
			if !ok {
				return nil, false
			}
			out[k] = ce
		}
		return out, true
	case []any:
		if v == nil {
			return nil, true
		}
		out := make([]any, len(v))
		for i, e := range v {
			ce, ok := canonical(e)
			if !ok {
				return nil, false
			}
			out[i] = ce
		}
		return out, true
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, false
	}
	return out, true
}

// factTest is one fact filter prepared for matching many nodes.
type factTest struct {
	path  factPath
	op    string
	value string
	lower string // value lower-cased, for string ordering

	hasDot  bool    // go-choria compares numbers as floats only when the value has a dot
	f       float64 // value as a float, when hasDot
	fOK     bool
	i       int // value as an int, for ordering without a dot
	iOK     bool
	eqInt   int // value is exactly strconv.Itoa(eqInt), for == and != without a dot
	eqIntOK bool

	re *regexp.Regexp // =~, nil when it does not compile

	truthy      bool // strconv.ParseBool(value) is true
	truthyLower bool // the same for the lower-cased value
}

func newFactTest(ff FactFilter) factTest {
	t := factTest{
		path:   newFactPath(ff.Fact),
		op:     ff.Operator,
		value:  ff.Value,
		lower:  strings.ToLower(ff.Value),
		hasDot: strings.Contains(ff.Value, "."),
	}
	t.f, t.fOK = parseFloat(ff.Value)
	if n, err := strconv.Atoi(ff.Value); err == nil {
		t.i, t.iOK = n, true
		t.eqInt, t.eqIntOK = n, strconv.Itoa(n) == ff.Value
	}
	if t.op == "=~" {
		t.re, _ = compileFactRegexp(ff.Value)
	}
	t.truthy = truthy(ff.Value)
	t.truthyLower = truthy(t.lower)
	return t
}

func parseFloat(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// compileFactRegexp: every leading and trailing slash goes (TrimLeft, not
// TrimPrefix as for identities) and matching ignores case.
func compileFactRegexp(v string) (*regexp.Regexp, error) {
	return regexp.Compile("(?i)" + strings.TrimRight(strings.TrimLeft(v, "/"), "/"))
}

func truthy(s string) bool {
	b, err := strconv.ParseBool(s)
	return err == nil && b
}

// match applies go-choria's filter/facts/matchers.go. Where go-choria
// returns an error (unparsable value, bad regexp, ordering a boolean) the
// whole fact filter fails, which here is simply false.
func (t *factTest) match(src *factSource) bool {
	r, ok := src.lookup(&t.path)
	if !ok {
		return false
	}
	switch r.Type {
	case gjson.String:
		return t.matchString(r.Str)
	case gjson.Number:
		return t.matchNumber(r)
	case gjson.True:
		// The value is read with strconv.ParseBool ("1", "t", "T", "true",
		// "TRUE", "True"); == uses it as typed, != and =~ lower-case it first.
		switch t.op {
		case "==":
			return t.truthy
		case "!=":
			return !t.truthyLower
		case "=~":
			return t.truthyLower
		}
	case gjson.False:
		// Quirk: for a false fact != is the same test as ==, "does the value
		// not read as true" (go-choria's neMatch returns falsey(value) here
		// rather than its negation). So fbool!=false and fbool!=bob match,
		// fbool!=true does not.
		switch t.op {
		case "==":
			return !t.truthy
		case "!=", "=~":
			return !t.truthyLower
		}
	}
	// null, objects and arrays never match; nor do unknown operators.
	return false
}

// matchString: equality ignores case (Unicode folding), ordering compares
// the lower-cased strings byte-wise, =~ is a case-insensitive search.
func (t *factTest) matchString(s string) bool {
	switch t.op {
	case "==":
		return strings.EqualFold(s, t.value)
	case "!=":
		return !strings.EqualFold(s, t.value)
	case "=~":
		return t.re != nil && t.re.MatchString(s)
	case "<":
		return strings.ToLower(s) < t.lower
	case "<=":
		return strings.ToLower(s) <= t.lower
	case ">":
		return strings.ToLower(s) > t.lower
	case ">=":
		return strings.ToLower(s) >= t.lower
	}
	return false
}

// matchNumber: a value with a dot compares as float64; without one, the
// fact is truncated to an integer (gjson's Int()) and compared with the
// value as an integer (ordering) or as decimal text (== and !=, so "05"
// never equals 5).
func (t *factTest) matchNumber(r gjson.Result) bool {
	if t.hasDot {
		if t.op == "=~" {
			return t.re != nil && t.re.MatchString(strconv.FormatFloat(r.Float(), 'f', 4, 64))
		}
		if !t.fOK {
			return false
		}
		f := r.Float()
		switch t.op {
		case "==":
			return f == t.f
		case "!=":
			return f != t.f
		case "<":
			return f < t.f
		case "<=":
			return f <= t.f
		case ">":
			return f >= t.f // quirk: go-choria's gtMatch uses >= for float values
		case ">=":
			return f >= t.f
		}
		return false
	}
	n := int(r.Int())
	switch t.op {
	case "==":
		return t.eqIntOK && n == t.eqInt
	case "!=":
		return !(t.eqIntOK && n == t.eqInt)
	case "=~":
		return t.re != nil && t.re.MatchString(strconv.Itoa(n))
	}
	if !t.iOK {
		return false
	}
	switch t.op {
	case "<":
		return n < t.i
	case "<=":
		return n <= t.i
	case ">":
		return n > t.i
	case ">=":
		return n >= t.i
	}
	return false
}
