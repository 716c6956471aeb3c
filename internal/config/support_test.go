package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// sampleValue is a valid, non-zero value of k; the string is one no
// message may show, since such keys hold passwords.
func sampleValue(k kind) string {
	switch k {
	case kPort, kPortOff:
		return "7422"
	case kInt:
		return "3"
	case kBool:
		return "true"
	case kDuration:
		return "1h"
	case kList:
		return "a, b"
	case kPath:
		return "/var/lib/s3cret"
	}
	return "s3cret"
}

// sampleKey is a key the entry matches: itself, or one of its family.
func sampleKey(name string) string {
	return strings.Replace(name, "*", "east.url", 1)
}

// Every key the table marks unsupported, set in a broker.conf: loading
// succeeds (fleet tools read client and server files with these keys),
// and the key is refused or warned about by file:line.
func TestUnsupportedEveryKey(t *testing.T) {
	keys := UnsupportedKeys()
	if len(keys) < 60 {
		t.Fatalf("only %d unsupported keys", len(keys))
	}
	for _, k := range keys {
		t.Run(k.Name, func(t *testing.T) {
			key := sampleKey(k.Name)
			c, err := Parse("broker.conf", []byte("identity = b.example.net\n# go-choria\n"+key+" = "+sampleValue(lookup(key).kind)+"\n"))
			if err != nil {
				t.Fatalf("load must not fail: %v", err)
			}
			if len(c.Warnings) != 0 || len(c.Unknown) != 0 {
				t.Errorf("also reported as unknown: %q %q", c.Warnings, c.Unknown)
			}
			at := "broker.conf:3: " + key + ": "
			refused := c.Refused()
			if k.Refuse {
				want := at + "not supported yet: " + k.About + "; remove the setting, or keep go-choria's broker where you need " + k.About
				if refused == nil || refused.Error() != want || len(c.Ignored()) != 0 {
					t.Errorf("got %v, %q\nwant %s", refused, c.Ignored(), want)
				}
			} else if refused != nil || !reflect.DeepEqual(c.Ignored(), []string{at + k.About}) {
				t.Errorf("got %v, %q\nwant warning %s", refused, c.Ignored(), at+k.About)
			}
			if refused != nil && strings.Contains(refused.Error(), "s3cret") || strings.Contains(strings.Join(c.Ignored(), ""), "s3cret") {
				t.Errorf("a message shows the value")
			}
		})
	}
}

// Keys the broker implements, or that its fleet tools read, are never
// reported.
func TestUnsupportedNotImplemented(t *testing.T) {
	var lines []string
	for i := range settings {
		s := &settings[i]
		if s.support != implemented || s.derive != nil || isFamily(s.name) || s.name == mappingNames {
			continue // families and mapping names need keys of their own: their own tests
		}
		v := s.def
		if v == "" {
			v = sampleValue(s.kind)
		}
		if _, msg := s.convert(v); msg != "" {
			continue // a sample its check rejects; other tests cover the key
		}
		lines = append(lines, s.name+" = "+v)
	}
	lines = append(lines, "plugin.choria.network.pprof_port = 6060", "plugin.choria.federation.collectives = eu, us",
		"plugin.choria.network.gateway_port = 7222", "plugin.choria.network.gateway_remote.a.urls = a:7222", "plugin.choria.network.gateway_remote.b.urls = b:7222")
	c, err := Parse("broker.conf", []byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) < 40 || len(c.Unsupported) != 0 {
		t.Errorf("%d keys; reported: %+v", len(lines), c.Unsupported)
	}
}

func TestUnsupportedDetails(t *testing.T) {
	// A key set twice is reported once, where its value comes from.
	c, err := Parse("b.conf", []byte("plugin.choria.network.client_anon_tls = false\nidentity = x\nplugin.choria.network.client_anon_tls = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refused(); err == nil || !strings.HasPrefix(err.Error(), "b.conf:3: plugin.choria.network.client_anon_tls: not supported yet") || len(c.Unsupported) != 1 {
		t.Errorf("twice: %v, %+v", err, c.Unsupported)
	}

	// All refused keys are reported at once, in file order.
	c, err = Parse("b.conf", []byte("plugin.choria.network.provisioning.client_password = s3cret\nrpcaudit = true\nplugin.choria.network.client_anon_tls = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "b.conf:1: plugin.choria.network.provisioning.client_password: not supported yet: provisioning; remove the setting, or keep go-choria's broker where you need provisioning\n" +
		"b.conf:3: plugin.choria.network.client_anon_tls: not supported yet: JWT and anonymous TLS logins; remove the setting, or keep go-choria's broker where you need JWT and anonymous TLS logins"
	if err := c.Refused(); err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	if !reflect.DeepEqual(c.Ignored(), []string{"b.conf:2: rpcaudit: " + otherProgram}) {
		t.Errorf("ignored %q", c.Ignored())
	}

	// An unknown key that looks like no known one is listed for preflight.
	c, err = Parse("b.conf", []byte("identity = x\nfoo.bar = 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Unknown, []string{"b.conf:2: foo.bar: unknown setting, kept for plugins; this broker does not use it"}) || len(c.Warnings) != 0 {
		t.Errorf("unknown %q, warnings %q", c.Unknown, c.Warnings)
	}
}

// A provisioning key in plugin.d/choria.cfg is named with its prefix
// and that file's line.
func TestUnsupportedPluginDir(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "broker.conf")
	os.WriteFile(main, []byte("identity = b.example.net\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "plugin.d"), 0o755)
	plug := filepath.Join(dir, "plugin.d", "choria.cfg")
	os.WriteFile(plug, []byte("# provisioning\nnetwork.provisioning.client_password = s3cret\n"), 0o644)
	c, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refused(); err == nil || !strings.HasPrefix(err.Error(), plug+":2: plugin.choria.network.provisioning.client_password: not supported yet: provisioning") {
		t.Errorf("got %v", err)
	}
}

// README's "Not supported yet" table lists exactly the refused keys,
// grouped by feature.
func TestReadmeNotSupported(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Not supported yet\n")
	if !ok {
		t.Fatal(`README.md has no "## Not supported yet" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| ([^|`]+?) \\| (`.*`) \\|$")
	got := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		for _, k := range strings.Split(m[2], ", ") {
			got[m[1]] = append(got[m[1]], strings.Trim(k, "`"))
		}
	}
	want := map[string][]string{}
	var features []string // in table order
	for _, k := range UnsupportedKeys() {
		if k.Refuse {
			if want[k.About] == nil {
				features = append(features, k.About)
			}
			want[k.About] = append(want[k.About], k.Name)
		}
	}
	sorted := map[string][]string{}
	for f, keys := range want {
		sorted[f] = slices.Sorted(slices.Values(keys))
		slices.Sort(got[f])
	}
	if !reflect.DeepEqual(got, sorted) {
		var b strings.Builder
		for _, f := range features {
			b.WriteString("| " + f + " | `" + strings.Join(want[f], "`, `") + "` |\n")
		}
		t.Errorf("README table differs from the settings table; it should read:\n%s", b.String())
	}
}

// The support column is consistent: a key with a field is used, so it is
// implemented; every other class says why.
func TestSupportTable(t *testing.T) {
	for i := range settings {
		s := &settings[i]
		switch {
		case s.support == implemented && s.about != "":
			t.Errorf("%s: implemented, but about is %q", s.name, s.about)
		case s.support != implemented && (s.about == "" || s.field != nil || s.derive != nil):
			t.Errorf("%s: unsupported needs about and no field", s.name)
		case isFamily(s.name) && s.support == implemented && !checkedFamilies[s.name]:
			t.Errorf("%s: a family is only for keys we do not implement, or whose reader refuses unknown properties (checkedFamilies)", s.name)
		}
	}
}

// go-choria's obsolete account keys are warned about, saying go-choria
// ignores them too; they stop nothing.
func TestObsoleteAccountKeys(t *testing.T) {
	c, err := Parse("broker.conf", []byte("plugin.choria.network.system_account = SYSTEM\nplugin.choria.network.operator_account = OP\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"broker.conf:1: plugin.choria.network.system_account: obsolete: go-choria ignores it too (it stopped reading it in 2021); remove it",
		"broker.conf:2: plugin.choria.network.operator_account: obsolete: go-choria ignores it too (it stopped reading it in 2021); remove it",
	}
	if c.Refused() != nil || !reflect.DeepEqual(c.Ignored(), want) {
		t.Errorf("refused %v, warned %q", c.Refused(), c.Ignored())
	}
}
