package pki

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustCA(t testing.TB) *CA {
	t.Helper()
	now := time.Now()
	ca, err := NewCA("Root", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestParsePrivateKeyFormats(t *testing.T) {
	t.Parallel()
	ca := mustCA(t)
	rsaKP, err := ca.Issue(IssueOptions{Name: "a", KeyType: "rsa"})
	if err != nil {
		t.Fatal(err)
	}
	ecKP, err := ca.Issue(IssueOptions{Name: "b", KeyType: "ec"})
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := rsaKP.Key.(*rsa.PrivateKey)
	ecKey := ecKP.Key.(*ecdsa.PrivateKey)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	cases := []struct {
		name string
		data []byte
		err  string
	}{
		{"rsa pkcs1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), ""},
		{"rsa pkcs8", pkcs8(rsaKey), ""},
		{"ec sec1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), ""},
		{"ec pkcs8", pkcs8(ecKey), ""},
		{"certificate first", append(CertsPEM(rsaKP.Leaf()), pkcs8(rsaKey)...), ""},
		{"encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted"},
		{"legacy encrypted", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}), "encrypted"},
		{"garbage", []byte("hello"), "no PEM private key"},
		{"bad der", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "cannot parse RSA PRIVATE KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePrivateKey("key.pem", tc.data)
			if tc.err == "" && err != nil {
				t.Fatal(err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "key.pem")) {
				t.Fatalf("want error naming key.pem with %q, got %v", tc.err, err)
			}
		})
	}
}

func TestKeyPairSaveLoads(t *testing.T) {
	t.Parallel()
	kp, err := mustCA(t).Issue(IssueOptions{Name: "saved", KeyType: "ec"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "certs", "saved.pem"), filepath.Join(dir, "private_keys", "saved.pem")
	if err := kp.Save(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	back, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Leaf().Equal(kp.Leaf()) || len(back.Chain) != len(kp.Chain) {
		t.Fatalf("loaded %s, saved %s", back.Leaf().Subject, kp.Leaf().Subject)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	if kp.CertFile != certFile || kp.KeyFile != keyFile {
		t.Fatalf("paths not recorded: %q %q", kp.CertFile, kp.KeyFile)
	}
}

// TestPuppetStyleChain builds what a Puppet 7 CA hands out: ca.pem with
// intermediate and root, crl.pem with both CRLs, certificates issued by the
// intermediate.
func TestPuppetStyleChain(t *testing.T) {
	t.Parallel()
	now := time.Now()
	root := mustCA(t)
	inter, err := root.NewIntermediate("Puppet CA: puppet", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := inter.Issue(IssueOptions{Name: "good.example.net", KeyType: "ec"})
	bad, _ := inter.Issue(IssueOptions{Name: "bad.example.net", KeyType: "ec"})
	inter.Revoke(bad.Leaf())
	crlPEM, err := inter.CRLChainPEM(now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cas := inter.Chain()
	rl, err := ParseRevocationList("crl.pem", crlPEM, cas)
	if err != nil {
		t.Fatal(err)
	}
	if rl.Count != 2 || rl.Entries != 1 {
		t.Fatalf("crls=%d entries=%d, want 2 and 1", rl.Count, rl.Entries)
	}
	trust := NewTrust(cas, rl)
	if err := trust.VerifyClient(good.Chain, now); err != nil {
		t.Fatalf("good refused: %v", err)
	}
	assertReason(t, trust.VerifyClient(bad.Chain, now), Revoked)

	// The root revoking the intermediate refuses everything it issued.
	root.Revoke(inter.Cert)
	crlPEM, _ = inter.CRLChainPEM(now.Add(-time.Minute), now.Add(time.Hour))
	rl, err = ParseRevocationList("crl.pem", crlPEM, cas)
	if err != nil {
		t.Fatal(err)
	}
	assertReason(t, NewTrust(cas, rl).VerifyClient(good.Chain, now), Revoked)

	// A single DER CRL is accepted too.
	der, _ := inter.CRL(now.Add(-time.Minute), now.Add(time.Hour))
	if _, err := ParseRevocationList("crl.der", der, cas); err != nil {
		t.Fatalf("DER CRL: %v", err)
	}
}

func assertReason(t *testing.T, err error, want Reason) {
	t.Helper()
	re, ok := err.(*RefusedError)
	if !ok || re.Reason != want {
		t.Fatalf("want refusal %q, got %v", want, err)
	}
}

func TestRevocationListErrors(t *testing.T) {
	t.Parallel()
	ca := mustCA(t)
	other := mustCA(t)
	now := time.Now()
	otherCRL, _ := other.CRL(now, now.Add(time.Hour))
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no CRL found"},
		{"certificate instead", CertsPEM(ca.Cert), "no CRL found"},
		{"not a crl", []byte("garbage"), "CRL 1 cannot be parsed"},
		{"foreign ca", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: otherCRL}), "different CAs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRevocationList("crl.pem", tc.data, []*x509.Certificate{ca.Cert})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "crl.pem") {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
}

func TestCoversName(t *testing.T) {
	t.Parallel()
	ca := mustCA(t)
	kp, _ := ca.Issue(IssueOptions{Name: "broker.example.net", DNSNames: []string{"*.brokers.example.net"}, KeyType: "ec"})
	for name, want := range map[string]bool{
		"broker.example.net": true, "BROKER.example.net": true, "nats1.brokers.example.net": true,
		"other.example.net": false, "127.0.0.1": false,
	} {
		if got := CoversName(kp.Leaf(), name); got != want {
			t.Errorf("CoversName(%q) = %v", name, got)
		}
	}
}

func FuzzParseRevocationList(f *testing.F) {
	ca := mustCA(f)
	now := time.Now()
	der, _ := ca.CRL(now, now.Add(time.Hour))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	f.Add(der)
	f.Add([]byte("-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n"))
	cas := []*x509.Certificate{ca.Cert}
	f.Fuzz(func(t *testing.T, data []byte) {
		rl, err := ParseRevocationList("crl.pem", data, cas)
		if err == nil && rl.Count == 0 {
			t.Fatal("accepted a file without CRLs")
		}
	})
}

func FuzzParsePEM(f *testing.F) {
	ca := mustCA(f)
	kp, _ := ca.Issue(IssueOptions{Name: "x", KeyType: "ec"})
	key, _ := KeyPEM(kp.Key)
	f.Add(CertsPEM(kp.Leaf()))
	f.Add(key)
	f.Fuzz(func(t *testing.T, data []byte) {
		if certs, err := ParseCertificates("c.pem", data); err == nil && len(certs) == 0 {
			t.Fatal("no certificates and no error")
		}
		if k, err := ParsePrivateKey("k.pem", data); err == nil && k == nil {
			t.Fatal("no key and no error")
		}
	})
}
