package pki

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// NamesBeside reads the certificates in the directory of the broker's,
// leaving out CAs and files that are not certificates.
func TestNamesBeside(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ca, err := NewCA("Test CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, o := range []IssueOptions{{Name: "broker.example.net"}, {Name: "node1.example.net", DNSNames: []string{"node1"}}} {
		kp, err := ca.Issue(IssueOptions{Name: o.Name, DNSNames: o.DNSNames, KeyType: "ec"})
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(filepath.Join(dir, o.Name+".pem"), CertsPEM(kp.Chain...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteFile(filepath.Join(dir, "ca.pem"), CertsPEM(ca.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := NamesBeside(filepath.Join(dir, "broker.example.net.pem"))
	if want := []string{"broker.example.net", "node1", "node1.example.net"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := NamesBeside(filepath.Join(dir, "missing", "x.pem")); got != nil {
		t.Fatalf("missing directory: %q", got)
	}
}
