package filter

import (
	"fmt"
	"testing"
)

// benchNodes is a fleet shaped like the emulator's: facts as Go values.
func benchNodes(n int) []*Node {
	countries := []string{"de", "uk", "us", "za", "nl"}
	nodes := make([]*Node, n)
	for i := range nodes {
		id := fmt.Sprintf("node%05d.example.net", i)
		classes := []string{"choria", "profile::base", fmt.Sprintf("role::r%d", i%4)}
		if i%2 == 0 {
			classes = append(classes, "apache")
		}
		nodes[i] = &Node{
			Identity: id,
			Agents:   []string{"choria_util", "discovery", "rpcutil", "scout"},
			Classes:  classes,
			Facts: map[string]any{
				"identity": id, "country": countries[i%len(countries)], "cpus": 2 << (i % 4),
				"load": float64(i%100) / 10, "virtual": i%2 == 0,
				"os": map[string]any{"family": "Debian", "release": map[string]any{"major": "12"}},
			},
		}
	}
	return nodes
}

// BenchmarkMatch reports the cost of matching one node; an emulator request
// to 10 000 nodes costs 10 000 times that, spread over the CPUs.
func BenchmarkMatch(b *testing.B) {
	nodes := benchNodes(10000)
	for _, bc := range []struct {
		name string
		f    func() *Filter
	}{
		{"empty", New},
		{"fact", func() *Filter {
			f := New()
			_ = f.AddFact("country=de")
			_ = f.AddFact("os.release.major>=12")
			return f
		}},
		{"class_agent_identity", func() *Filter {
			f := New()
			_ = f.AddIdentity("/^node0/")
			_ = f.AddAgent("rpcutil")
			_ = f.AddClass("apache")
			return f
		}},
		{"compound", func() *Filter {
			f := New()
			_ = f.AddCompound("with('apache') && fact('cpus') >= 4 && with('country=de')")
			return f
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := bc.f()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f.Match(nodes[i%len(nodes)])
				i++
			}
		})
		b.Run(bc.name+"_parallel", func(b *testing.B) {
			f := bc.f()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					f.Match(nodes[i%len(nodes)])
					i++
				}
			})
		})
	}
}
