package authz

import (
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	def, err := NewPolicy(true, []string{`\.mcollective$`, `\.choria$`}, []string{`\.privileged.mcollective$`, `/\.privileged.choria$/`}, []string{`^fed\d+\.example\.net$`}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	limited, err := NewPolicy(true, []string{`\.mcollective$`}, nil, nil, []string{"192.0.2.7", "10.1.0.0/16", "2001:db8::/32"}, true)
	if err != nil {
		t.Fatal(err)
	}
	off, _ := NewPolicy(false, nil, nil, nil, nil, false)
	lo := net.ParseIP("127.0.0.1")
	cases := []struct {
		name   string
		policy *Policy
		names  []string
		ip     net.IP
		want   Role
	}{
		{"client by cn", def, []string{"rip.mcollective"}, lo, Client},
		{"client by choria suffix", def, []string{"rip.choria"}, lo, Client},
		{"client by san", def, []string{"somehost", "rip.mcollective"}, lo, Client},
		{"privileged before client", def, []string{"admin.privileged.mcollective"}, lo, Privileged},
		{"privileged slashes stripped", def, []string{"admin.privileged.choria"}, lo, Privileged},
		{"federation", def, []string{"fed1.example.net"}, lo, Federation},
		{"node", def, []string{"node1.example.net"}, lo, Node},
		{"suffix must end the name", def, []string{"rip.mcollective.example.net"}, lo, Node},
		{"client host exact", limited, []string{"rip.mcollective"}, net.ParseIP("192.0.2.7"), Client},
		{"client host cidr", limited, []string{"rip.mcollective"}, net.ParseIP("10.1.2.3"), Client},
		{"client host v6", limited, []string{"rip.mcollective"}, net.ParseIP("2001:db8::1"), Client},
		{"client outside client_hosts is a node, denied", limited, []string{"rip.mcollective"}, lo, Denied},
		{"node denied", limited, []string{"node1.example.net"}, net.ParseIP("10.1.2.3"), Denied},
		{"roles off", off, []string{"node1.example.net"}, lo, Unrestricted},
	}
	for _, tc := range cases {
		if got := tc.policy.Decide(tc.names, tc.ip); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestNewPolicyErrors(t *testing.T) {
	t.Parallel()
	if _, err := NewPolicy(true, []string{"("}, nil, nil, nil, false); err == nil {
		t.Fatal("bad pattern accepted")
	}
	_, err := NewPolicy(true, nil, nil, nil, []string{"10.0.0.0/40"}, false)
	if err == nil || err.Error() != `plugin.choria.network.client_hosts: "10.0.0.0/40" is not an address or CIDR such as 10.1.0.0/16` {
		t.Fatalf("got %v", err)
	}
}

func TestReplyPrefixes(t *testing.T) {
	t.Parallel()
	got := ReplyPrefixes("rip.mcollective")
	if got[0] != "*.reply.37bdf08389145a56c13096c178802d3b.>" || len(got[1]) != len("*.reply.")+64+2 {
		t.Fatalf("%v", got)
	}
}

// ExactPattern, put in federation_brokers, gives that name the federation
// role and no other name, dots included.
func TestExactPattern(t *testing.T) {
	t.Parallel()
	if got := ExactPattern("fed1.example.net"); got != `^fed1\.example\.net$` {
		t.Fatalf("pattern %q", got)
	}
	p, err := NewPolicy(true, nil, nil, []string{ExactPattern("fed1.example.net"), ExactPattern("a+b.example.net")}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	lo := net.ParseIP("127.0.0.1")
	for name, want := range map[string]Role{
		"fed1.example.net": Federation, "a+b.example.net": Federation,
		"fed1xexample.net": Node, "fed1.example.net.evil": Node, "xfed1.example.net": Node, "aab.example.net": Node,
	} {
		if got := p.Decide([]string{name}, lo); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

// With Streams off the roles are as without Streams; private replies
// leave a node as with Streams off and keep the shared inbox from all.
func TestStreamsPermissions(t *testing.T) {
	t.Parallel()
	names := []string{"node1.example.net"}
	has := func(list []string, s string) bool { return slices.Contains(list, s) }
	for _, role := range []Role{Client, Node, Federation, Denied} {
		off := Permissions(role, names, Streams{})
		for _, s := range append(slices.Clone(off.Publish.Allow), off.Subscribe.Allow...) {
			if strings.HasPrefix(s, "$") || strings.Contains(s, "governor") || strings.Contains(s, "submission") || has(SharedInbox, s) {
				t.Errorf("%s with Streams off: %s", role, s)
			}
		}
		// Off and off under private replies are the same.
		if !reflect.DeepEqual(off, Permissions(role, names, Streams{PrivateReplies: true})) {
			t.Errorf("%s: private_replies changes the role with Streams off", role)
		}
	}
	if !reflect.DeepEqual(Permissions(Node, names, Streams{}), Permissions(Node, names, Streams{On: true, PrivateReplies: true})) {
		t.Error("node under private replies is not the node without Streams")
	}
	for _, role := range []Role{Client, Node} {
		on := Permissions(role, names, Streams{On: true})
		private := Permissions(role, names, Streams{On: true, PrivateReplies: true})
		if !has(on.Subscribe.Allow, "*.reply.*.*") || has(private.Subscribe.Allow, "*.reply.*.*") || has(private.Subscribe.Allow, "*.reply.*") {
			t.Errorf("%s: shared inbox %v / %v", role, on.Subscribe.Allow, private.Subscribe.Allow)
		}
		for _, s := range on.Publish.Allow {
			if strings.Contains(s, "STREAM.CREATE") || strings.Contains(s, "STREAM.UPDATE") || strings.Contains(s, "STREAM.DELETE") || strings.Contains(s, "PURGE") || s == "$JS.>" || s == "$JS.API.>" {
				t.Errorf("%s may %s", role, s)
			}
		}
	}
	if n := Permissions(Node, names, Streams{On: true}); has(n.Publish.Allow, "$KV.>") || has(n.Subscribe.Allow, "*.reply.*") {
		t.Errorf("node: %v", n)
	}
}

// With domains each Streams right is also granted in its $JS.<domain>.API
// form, denies included, and nothing more.
func TestStreamsPermissionsDomains(t *testing.T) {
	t.Parallel()
	names := []string{"node1.example.net"}
	has := func(list []string, s string) bool { return slices.Contains(list, s) }
	c := Permissions(Client, names, Streams{On: true, Domains: true})
	for _, s := range []string{"$JS.*.API.INFO", "$JS.*.API.STREAM.INFO.*", "$JS.*.API.DIRECT.GET.*.>", "$JS.*.API.$KV.>", "$JS.API.INFO", "$KV.>"} {
		if !has(c.Publish.Allow, s) {
			t.Errorf("client with domains lacks %s", s)
		}
	}
	n := Permissions(Node, names, Streams{On: true, Domains: true})
	for _, s := range []string{"$JS.*.API.STREAM.INFO.*", "$JS.*.API.DIRECT.GET.*.$KV.>", "$JS.*.API.$KV.CHORIA_SERVICES.>"} {
		if !has(n.Publish.Allow, s) {
			t.Errorf("node with domains lacks %s", s)
		}
	}
	if !has(n.Publish.Deny, "$JS.*.API.STREAM.MSG.DELETE.CHORIA_EVENTS") || !has(n.Publish.Deny, "$JS.API.STREAM.MSG.DELETE.CHORIA_EVENTS") {
		t.Errorf("node deny %v", n.Publish.Deny)
	}
	plain := Permissions(Node, names, Streams{On: true})
	if len(n.Publish.Allow)-len(plain.Publish.Allow) != 4 || has(plain.Publish.Allow, "$JS.*.API.STREAM.INFO.*") {
		t.Errorf("domains add %d node rights: %v", len(n.Publish.Allow)-len(plain.Publish.Allow), n.Publish.Allow)
	}
	if !reflect.DeepEqual(Permissions(Node, names, Streams{}), Permissions(Node, names, Streams{Domains: true})) {
		t.Error("domains without Streams change the node role")
	}
}
