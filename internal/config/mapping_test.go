package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestMappingsRead(t *testing.T) {
	c, err := Parse("broker.conf", []byte(`plugin.choria.network.mapping.names = reg, legacy, reg
plugin.choria.network.mapping.reg.source = in.registration.*.>
plugin.choria.network.mapping.reg.destination = registration.{{partition(5,1)}}.{{wildcard(1)}}.>
plugin.choria.network.mapping.legacy.destination = mcollective.broadcast.agent.registration
plugin.choria.network.mapping.legacy.source = legacy.registration
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{
		{Name: "reg", Source: "in.registration.*.>", Destination: "registration.{{partition(5,1)}}.{{wildcard(1)}}.>"},
		{Name: "legacy", Source: "legacy.registration", Destination: "mcollective.broadcast.agent.registration"},
	}
	if !reflect.DeepEqual(c.Network.Mappings, want) {
		t.Errorf("mappings %+v", c.Network.Mappings)
	}
	if len(c.Unsupported) != 0 || len(c.Warnings) != 0 || len(c.Unknown) != 0 {
		t.Errorf("reported: %+v %q %q", c.Unsupported, c.Warnings, c.Unknown)
	}
}

// Unlike go-choria, which logs and skips them, a mapping missing a side
// and a key no mapping reads are errors with their file:line.
func TestMappingsErrors(t *testing.T) {
	for name, tc := range map[string]struct{ conf, want string }{
		"no source": {"plugin.choria.network.mapping.names = a\nplugin.choria.network.mapping.a.destination = x\n",
			`broker.conf:1: plugin.choria.network.mapping.a.source: mapping "a" is listed here but has no plugin.choria.network.mapping.a.source; set it, or take a off the list`},
		"no destination": {"identity = b.example.net\nplugin.choria.network.mapping.names = a\nplugin.choria.network.mapping.a.source = x\n",
			`broker.conf:2: plugin.choria.network.mapping.a.destination: mapping "a" is listed here but has no plugin.choria.network.mapping.a.destination; set it, or take a off the list`},
		"not listed": {"plugin.choria.network.mapping.names = a\nplugin.choria.network.mapping.a.source = x\nplugin.choria.network.mapping.a.destination = y\nplugin.choria.network.mapping.b.source = z\n",
			`broker.conf:4: plugin.choria.network.mapping.b.source: mapping "b" is not in plugin.choria.network.mapping.names, so this line would be ignored; add b to the list, or remove the line`},
		"no names at all": {"plugin.choria.network.mapping.b.destination = z\n",
			`broker.conf:1: plugin.choria.network.mapping.b.destination: mapping "b" is not in plugin.choria.network.mapping.names`},
		"unknown property": {"plugin.choria.network.mapping.names = a\nplugin.choria.network.mapping.a.source = x\nplugin.choria.network.mapping.a.destination = y\nplugin.choria.network.mapping.a.weight = 50\n",
			`broker.conf:4: plugin.choria.network.mapping.a.weight: unknown mapping setting "weight"; a mapping has plugin.choria.network.mapping.NAME.source and .destination`},
		"same source": {"plugin.choria.network.mapping.names = a, b\nplugin.choria.network.mapping.a.source = x.>\nplugin.choria.network.mapping.a.destination = y.>\nplugin.choria.network.mapping.b.source = x.>\nplugin.choria.network.mapping.b.destination = z.>\n",
			`broker.conf:4: plugin.choria.network.mapping.b.source: mapping "a" has the same source (broker.conf:2); the engine keeps one mapping per source: remove one of them`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("broker.conf", []byte(tc.conf))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

// A mapping in plugin.d/choria.cfg is named with the file's prefix and
// line, and completes one listed in the main file.
func TestMappingsPluginDir(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "broker.conf")
	os.WriteFile(main, []byte("identity = b.example.net\nplugin.choria.network.mapping.names = m1, m2\nplugin.choria.network.mapping.m2.source = a\nplugin.choria.network.mapping.m2.destination = b\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "plugin.d"), 0o755)
	plug := filepath.Join(dir, "plugin.d", "choria.cfg")
	os.WriteFile(plug, []byte("# a subject mapping\nnetwork.mapping.m1.source = in.>\nnetwork.mapping.m1.destinaton = out.>\n"), 0o644)
	_, err := Load(main)
	if err == nil || !strings.Contains(err.Error(), plug+`:3: plugin.choria.network.mapping.m1.destinaton: unknown mapping setting "destinaton"`) ||
		!strings.Contains(err.Error(), main+`:2: plugin.choria.network.mapping.m1.destination: mapping "m1" is listed here but has no`) {
		t.Fatalf("got %v", err)
	}
}
