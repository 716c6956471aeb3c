package config

import (
	"reflect"
	"testing"
)

func TestMisspellingWarnings(t *testing.T) {
	c, err := Load("testdata/misspelt.conf")
	if err != nil {
		t.Fatal(err)
	}
	const f = "testdata/misspelt.conf"
	want := []string{
		f + `:2: unknown setting "plugin.choria.network.clientport"; did you mean "plugin.choria.network.client_port"?`,
		f + `:3: unknown setting "plugin.choria.stat_port"; did you mean "plugin.choria.stats_port"?`,
		f + `:4: unknown setting "plugin.choria.network.monitor_port" (a name from Choria's packaged broker.conf that Choria never reads); did you mean "plugin.choria.stats_port"?`,
		f + `:5: unknown setting "plugin.choria.use-srv"; did you mean "plugin.choria.use_srv"?`,
	}
	if !reflect.DeepEqual(c.Warnings, want) {
		t.Errorf("got  %q\nwant %q", c.Warnings, want)
	}
	// Misspelt keys do not take effect but stay in Raw like any unknown key.
	if c.Network.ClientPort != 4222 || !c.UseSRV || c.Raw["plugin.choria.network.clientport"] != "4223" {
		t.Errorf("misspelt keys changed settings: %+v", c)
	}
	if c.Raw["plugin.puppetdb.query_timeout"] != "10" || c.Raw["tls"] != "1" {
		t.Errorf("unknown keys not kept in Raw: %v", c.Raw)
	}
}

// Warnings are shown with errors too, since a misspelt key often
// explains a missing setting.
func TestWarningsAccompanyErrors(t *testing.T) {
	_, err := Parse("b.conf", []byte("identity = a.b.c\nplugin.security.provider = file\nplugin.security.file.certficate = /c.pem\nplugin.security.file.key = /k\nplugin.security.file.ca = /ca\n"))
	want := "b.conf: plugin.security.file.certificate: required when plugin.security.provider = file; set it, or use plugin.security.provider = puppet\n" +
		`b.conf:3: unknown setting "plugin.security.file.certficate"; did you mean "plugin.security.file.certificate"?`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestClosestKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plugin.choria.network.client_prot", "plugin.choria.network.client_port"}, // transposition
		{"plugin.choria.network.clientport", "plugin.choria.network.client_port"},
		{"plugin.choria.network.client_ports", "plugin.choria.network.client_port"},
		{"Plugin.Choria.Use_SRV", "plugin.choria.use_srv"},
		{"plugin-choria-network-listen-address", "plugin.choria.network.listen_address"},
		{"logfil", "logfile"},
		{"identty", "identity"},
		{"tls", ""}, // short keys only match up to case and separators
		{"TTL", "ttl"},
		{"plugin.puppetdb.query_timeout", ""},
		{"plugin.choria.network.leafnode_remote.hub.url", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := closestKey(tt.in); got != tt.want {
			t.Errorf("closestKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b  string
		limit int
		want  int
	}{
		{"abc", "abc", 2, 0},
		{"abc", "acb", 2, 1},
		{"abc", "", 2, 3},
		{"abcdef", "abdcfe", 2, 2},
		{"kitten", "sitting", 5, 3},
		{"kitten", "sitting", 2, 3},
		{"abcdefgh", "badcfehg", 9, 4},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b, tt.limit); got != tt.want {
			t.Errorf("editDistance(%q, %q, %d) = %d, want %d", tt.a, tt.b, tt.limit, got, tt.want)
		}
	}
}
