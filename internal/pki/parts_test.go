package pki

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCAValidity: an expired intermediate refuses what it issued; an
// expired root refuses everyone.
func TestCAValidity(t *testing.T) {
	t.Parallel()
	now := time.Now()
	root, err := NewCA("Root", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate("Old intermediate", now.Add(-2*time.Hour), now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	oldRoot, err := NewCA("Old root", now.Add(-2*time.Hour), now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name        string
		trust       *Trust
		invalid     int
		noValidRoot bool
	}{
		{"valid root", NewTrust(root.Chain(), nil), 0, false},
		{"expired intermediate", NewTrust(inter.Chain(), nil), 1, false},
		{"expired root", NewTrust(oldRoot.Chain(), nil), 1, true},
		{"expired and valid roots", NewTrust(append(oldRoot.Chain(), root.Cert), nil), 1, false},
	} {
		invalid, none := c.trust.CAValidity(now)
		if len(invalid) != c.invalid || none != c.noValidRoot {
			t.Errorf("%s: %d invalid, no valid root %v; want %d, %v", c.name, len(invalid), none, c.invalid, c.noValidRoot)
		}
	}
}

// TestReloadNamesTheFailingFile: each broken file is reported as its part,
// and a CRL that has gone fails a reload once a CRL is in force, while
// start-up without the optional Puppet crl.pem only warns.
func TestReloadNamesTheFailingFile(t *testing.T) {
	t.Parallel()
	ca := mustCA(t)
	dir := t.TempDir()
	kp, err := ca.Issue(IssueOptions{Name: "broker.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	f := Files{Certificate: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"), CA: filepath.Join(dir, "ca.pem"), CRL: filepath.Join(dir, "crl.pem"), CRLOptional: true}
	if err := kp.Save(f.Certificate, f.Key); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(f.CA, CertsPEM(ca.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	id, err := Load(f, "broker.example.net", now)
	if err != nil {
		t.Fatalf("start-up without the optional crl.pem: %v", err)
	}
	if id.Trust.CRL != nil || len(id.Warnings) == 0 || !strings.Contains(id.Warnings[0], "does not exist") {
		t.Fatalf("start-up without crl.pem: warnings %q", id.Warnings)
	}
	_, err = Reload(f, "broker.example.net", now, true)
	if got := FailedParts(err); len(got) != 1 || !strings.Contains(got[PartCRL], "does not exist") {
		t.Fatalf("reload without crl.pem while a CRL is in force: %v", got)
	}
	if _, _, err := ReloadTrust(f, now, true); !strings.Contains(FailedParts(err)[PartCRL], "stays in force") {
		t.Fatalf("trust reload without crl.pem while a CRL is in force: %v", err)
	}

	if err := os.WriteFile(f.Key, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.CRL, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Reload(f, "broker.example.net", now, true)
	got := FailedParts(err)
	if len(got) != 2 || got[PartKey] == "" || got[PartCRL] == "" {
		t.Fatalf("garbage key and CRL: %v", got)
	}
}
