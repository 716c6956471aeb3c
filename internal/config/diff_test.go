package config

import (
	"reflect"
	"testing"
)

// TestDiff: every kind of change is listed once, with where the new value
// is, and passwords hidden.
func TestDiff(t *testing.T) {
	t.Parallel()
	old, err := Parse("a.conf", []byte("identity = b.example.net\nplugin.choria.network.client_port = 4222\nplugin.choria.network.peer_password = s3cret\nplugin.acme.colour = blue\nloglevel = info\n"))
	if err != nil {
		t.Fatal(err)
	}
	next, err := Parse("b.conf", []byte("identity = b.example.net\nplugin.choria.network.client_port = 4333\nplugin.choria.network.peer_password = other\nplugin.acme.colour = red\nplugin.choria.network.connect_timeout = 5s\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Key: "plugin.choria.network.client_port", Old: "4222", New: "4333", Where: "b.conf:2"},
		{Key: "plugin.choria.network.peer_password", Old: "(hidden)", New: "(hidden)", Where: "b.conf:3"},
		{Key: "plugin.acme.colour", Old: "blue", New: "red", Where: "b.conf:4"},
		{Key: "plugin.choria.network.connect_timeout", Old: "", New: "5s", Where: "b.conf:5"},
	}
	if got := Diff(old, next); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	// Removing a line brings the default back, and says where it was.
	next, err = Parse("b.conf", []byte("identity = b.example.net\nplugin.choria.network.peer_password = s3cret\nplugin.acme.colour = blue\nloglevel = info\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := Diff(old, next); len(got) != 0 {
		t.Errorf("the default 4222 in place of 4222 written is no change; got %+v", got)
	}
	old.Network.ClientPort = 4333
	got := Diff(old, next)
	if len(got) != 1 || got[0].Where != "removed from a.conf:2 (the default applies)" || got[0].New != "4222" {
		t.Errorf("got %+v", got)
	}
}

// TestAdopt: a clone takes one setting from another configuration and
// then no longer differs in it; the original is untouched.
func TestAdopt(t *testing.T) {
	t.Parallel()
	old, _ := Parse("a.conf", []byte("identity = b.example.net\nplugin.choria.security.certname_whitelist = x\n"))
	next, _ := Parse("b.conf", []byte("identity = b.example.net\nplugin.choria.security.certname_whitelist = y, z\nplugin.choria.network.client_port = 4333\n"))
	cur := old.Clone()
	cur.Adopt(next, "plugin.choria.security.certname_whitelist")
	got := Diff(cur, next)
	if len(got) != 1 || got[0].Key != "plugin.choria.network.client_port" {
		t.Errorf("after Adopt: %+v", got)
	}
	if cur.Where("plugin.choria.security.certname_whitelist") != "b.conf:2" {
		t.Errorf("Where = %q", cur.Where("plugin.choria.security.certname_whitelist"))
	}
	if !reflect.DeepEqual(old.Security.CertnameWhitelist, []string{"x"}) || old.Where("plugin.choria.security.certname_whitelist") != "a.conf:2" {
		t.Error("Adopt on a clone changed the original")
	}
}

// A leafnode url's password is not shown in the reload's warnings.
func TestDiffLeafURLPassword(t *testing.T) {
	old, err := Parse("b.conf", []byte("plugin.choria.network.leafnode_remotes = hub\nplugin.choria.network.leafnode_remote.hub.url = nats-leaf://leaf:s3cret@hub1:7422\n"))
	if err != nil {
		t.Fatal(err)
	}
	next, err := Parse("b.conf", []byte("plugin.choria.network.leafnode_remotes = hub\nplugin.choria.network.leafnode_remote.hub.url = nats-leaf://leaf:n3w@hub1:7422, hub2:7422\n"))
	if err != nil {
		t.Fatal(err)
	}
	ch := Diff(old, next)
	if len(ch) != 1 || ch[0].Old != "nats-leaf://leaf:xxxxx@hub1:7422" || ch[0].New != "nats-leaf://leaf:xxxxx@hub1:7422, hub2:7422" {
		t.Errorf("changes %+v", ch)
	}
}
