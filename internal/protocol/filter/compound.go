package filter

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"

	"github.com/Masterminds/semver"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// Compound filters follow go-choria's filter/compound/compound.go. Its
// environment types are kept, so that what fails to compile there fails
// here: facts is the facts' JSON text (json.RawMessage), not a map, so
// "facts.x" does not compile; use fact("x").

// compileEnv is the environment expressions are type-checked against.
func compileEnv() map[string]any {
	return map[string]any{
		"agents":  []string{},
		"classes": []string{},
		"facts":   json.RawMessage{},
		"with":    func(string) bool { return false },
		"fact":    func(string) any { return nil },
		"include": func([]any, any) bool { return false },
		"semver":  func(string, string) (bool, error) { return false, nil },
	}
}

func compileCompound(q string) (*vm.Program, error) {
	return expr.Compile(q, expr.Env(compileEnv()), expr.AsBool(), expr.AllowUndefinedVariables())
}

// compoundPlan is the compound category compiled once per Filter.
type compoundPlan struct {
	progs     []*vm.Program
	broken    bool // some entry is malformed or does not compile: never matches
	usesFacts bool // some query mentions facts, so it needs the JSON text
}

func newCompoundPlan(entries [][]map[string]any) *compoundPlan {
	c := &compoundPlan{}
	seen := map[string]*vm.Program{}
	for _, e := range entries {
		// go-choria gives up on an entry that is not exactly [{"expr": "..."}];
		// a non-string expr does not even decode there.
		if len(e) != 1 {
			c.broken = true
			return c
		}
		q, ok := e[0]["expr"].(string)
		if !ok {
			c.broken = true
			return c
		}
		prog, ok := seen[q]
		if !ok {
			var err error
			if prog, err = compileCompound(q); err != nil {
				c.broken = true
				return c
			}
			seen[q] = prog
		}
		c.progs = append(c.progs, prog)
		c.usesFacts = c.usesFacts || strings.Contains(q, "facts")
	}
	return c
}

// match evaluates the entries the way go-choria counts them: any error
// fails, a true entry counts +1 and a false one -1, and the category
// passes when the sum is positive. With one or two entries that is "all
// true"; with three, two trues outvote a false.
func (c *compoundPlan) match(p *plan, n *Node) (ok bool) {
	if c.broken {
		return false
	}
	ctx := p.getCtx()
	defer p.putCtx(ctx)
	// expr recovers its own panics; this guards the functions we give it.
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	ctx.node, ctx.src = n, factSource{facts: n.Facts}
	ctx.env["agents"] = orEmpty(n.Agents)
	ctx.env["classes"] = orEmpty(n.Classes)
	if c.usesFacts {
		ctx.env["facts"] = json.RawMessage(ctx.src.json())
	}
	sum := 0
	for _, prog := range c.progs {
		res, err := ctx.machine.Run(prog, ctx.env)
		if err != nil {
			return false
		}
		b, isBool := res.(bool)
		if !isBool {
			return false
		}
		if b {
			sum++
		} else {
			sum--
		}
	}
	return sum > 0
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// evalCtx is one goroutine's environment; pooled per plan so that a
// 10 000-node match does not build 10 000 maps and closures.
type evalCtx struct {
	plan    *plan
	node    *Node
	src     factSource
	env     map[string]any
	machine vm.VM
}

func (p *plan) getCtx() *evalCtx {
	if c, ok := p.ctxs.Get().(*evalCtx); ok {
		return c
	}
	c := &evalCtx{plan: p}
	c.env = compileEnv()
	c.env["with"] = c.with
	c.env["fact"] = c.fact
	c.env["include"] = include
	c.env["semver"] = semverMatch
	return c
}

func (p *plan) putCtx(c *evalCtx) {
	c.node, c.src = nil, factSource{}
	c.env["agents"], c.env["classes"], c.env["facts"] = []string{}, []string{}, json.RawMessage{}
	p.ctxs.Put(c)
}

// maxMemo caps the with() and fact() argument caches of one Filter.
const maxMemo = 1024

// withTest is a with() argument parsed once: a fact filter when it parses
// as one, else a class name or /re/, else an agent name or /re/.
type withTest struct {
	isFact bool
	fact   factTest
	class  needle
	agent  needle
}

func (c *evalCtx) with(q string) bool {
	w := c.plan.withTest(q)
	if w.isFact {
		return w.fact.match(&c.src)
	}
	if w.class.matchAny(c.node.Classes) {
		return true
	}
	return w.agent.matchAny(c.node.Agents)
}

func (p *plan) withTest(q string) *withTest {
	if w, ok := p.withs.Load(q); ok {
		return w.(*withTest)
	}
	w := &withTest{}
	if ff, err := ParseFactFilter(q); err == nil {
		w.isFact, w.fact = true, newFactTest(ff)
	} else {
		w.class = classNeedles([]string{q})[0]
		w.agent = needles([]string{q}, "")[0]
	}
	p.memo(&p.withs, q, w)
	return w
}

func (c *evalCtx) fact(path string) any {
	fp, ok := c.plan.paths.Load(path)
	if !ok {
		np := newFactPath(path)
		fp = &np
		c.plan.memo(&c.plan.paths, path, fp)
	}
	return c.src.value(fp.(*factPath))
}

func (p *plan) memo(m *sync.Map, key string, v any) {
	if p.memoSize.Load() >= maxMemo {
		return
	}
	if _, loaded := m.LoadOrStore(key, v); !loaded {
		p.memoSize.Add(1)
	}
}

// include reports whether needle is in hay. Facts' numbers are float64,
// so an int needle (expr's integer literal) is compared as a float64.
func include(hay []any, needle any) bool {
	if i, ok := needle.(int); ok {
		needle = float64(i)
	}
	for _, h := range hay {
		if reflect.DeepEqual(h, needle) {
			return true
		}
	}
	return false
}

// semverMatch uses Masterminds/semver v1, the version go-choria pins, so
// pre-release and constraint corner cases agree with real servers.
func semverMatch(version, constraint string) (bool, error) {
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return false, err
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return false, err
	}
	return c.Check(v), nil
}
