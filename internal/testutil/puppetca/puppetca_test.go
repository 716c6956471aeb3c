package puppetca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestCA covers what the broker's tests rely on: the chain, leaf certs
// with SANs, and a CRL per CA after a revoke.
func TestCA(t *testing.T) {
	t.Parallel()
	ca := Start(t)

	ca.Generate(t, "broker.test", "localhost", "127.0.0.1")
	ca.Generate(t, "rip.mcollective")
	ca.Generate(t, "node1.test")
	ca.Generate(t, "node2.test")
	ca.Revoke(t, "node2.test")

	chain := readCerts(t, ca.CACertPath())
	if len(chain) != 2 {
		t.Fatalf("ca.pem holds %d certs, want 2 (intermediate, root)", len(chain))
	}
	var root, inter *x509.Certificate
	for _, c := range chain {
		if bytes.Equal(c.RawIssuer, c.RawSubject) {
			root = c
		} else {
			inter = c
		}
	}
	if root == nil || inter == nil {
		t.Fatalf("ca.pem: want a self-signed root and an intermediate")
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Fatalf("root not self-signed: %v", err)
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		t.Fatalf("intermediate not signed by root: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inters := x509.NewCertPool()
	inters.AddCert(inter)

	certs := map[string]*x509.Certificate{}
	for _, name := range []string{"broker.test", "rip.mcollective", "node1.test", "node2.test"} {
		c := readCerts(t, ca.CertPath(name))[0]
		certs[name] = c
		if _, err := c.Verify(x509.VerifyOptions{
			Roots:         roots,
			Intermediates: inters,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := tls.LoadX509KeyPair(ca.CertPath(name), ca.KeyPath(name)); err != nil {
			t.Errorf("%s: key does not match cert: %v", name, err)
		}
		t.Logf("%s: key %s, EKU %v, KU %b, SAN DNS %v IP %v, valid to %s",
			name, keyDesc(c), c.ExtKeyUsage, c.KeyUsage, c.DNSNames, c.IPAddresses, c.NotAfter.Format(time.DateOnly))
	}
	for _, h := range []string{"localhost", "127.0.0.1", "broker.test"} {
		if err := certs["broker.test"].VerifyHostname(h); err != nil {
			t.Errorf("broker cert: %v", err)
		}
	}

	crls, err := readCRLs(ca.CRLPath())
	if err != nil {
		t.Fatal(err)
	}
	if len(crls) != 2 {
		t.Fatalf("crl.pem holds %d CRLs, want 2", len(crls))
	}
	revoked := certs["node2.test"].SerialNumber
	for _, crl := range crls {
		var issuer *x509.Certificate
		for _, c := range chain {
			if bytes.Equal(crl.RawIssuer, c.RawSubject) {
				issuer = c
			}
		}
		if issuer == nil {
			t.Fatalf("CRL from %s: issuer not in ca.pem", crl.Issuer)
		}
		if err := crl.CheckSignatureFrom(issuer); err != nil {
			t.Errorf("CRL from %s: %v", crl.Issuer, err)
		}
		lists := map[string]bool{}
		for _, e := range crl.RevokedCertificateEntries {
			lists[e.SerialNumber.String()] = true
		}
		want := issuer == inter
		if lists[revoked.String()] != want {
			t.Errorf("CRL from %s lists node2 serial %s: %v, want %v", crl.Issuer, revoked, !want, want)
		}
		if lists[certs["node1.test"].SerialNumber.String()] {
			t.Errorf("CRL from %s lists node1", crl.Issuer)
		}
		t.Logf("CRL from %s: %d revoked, thisUpdate %s, nextUpdate %s",
			crl.Issuer, len(crl.RevokedCertificateEntries), crl.ThisUpdate.Format(time.RFC3339), crl.NextUpdate.Format(time.RFC3339))
	}
}

// TestSignCSR runs a second CA beside TestCA and signs a CSR sent over
// HTTP, as an agent would; its EC key shows the CA signs non-RSA keys.
func TestSignCSR(t *testing.T) {
	t.Parallel()
	ca := Start(t)

	const name = "csr.node.test"
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	client := caClient(t, ca)
	req, err := http.NewRequest(http.MethodPut, ca.URL()+"/puppet-ca/v1/certificate_request/"+name,
		bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	if body, code := do(t, client, req); code != http.StatusOK {
		t.Fatalf("submitting CSR: %d %s", code, body)
	}

	ca.Sign(t, name)

	req, err = http.NewRequest(http.MethodGet, ca.URL()+"/puppet-ca/v1/certificate/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, code := do(t, client, req)
	if code != http.StatusOK {
		t.Fatalf("fetching cert: %d %s", code, body)
	}
	blk, _ := pem.Decode(body)
	if blk == nil {
		t.Fatalf("fetching cert: no PEM in %q", body)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		t.Fatalf("signed cert has key %s, not the CSR's", keyDesc(cert))
	}
	onDisk := readCerts(t, ca.SignedCertPath(name))[0]
	if !onDisk.Equal(cert) {
		t.Fatalf("SignedCertPath differs from the served cert")
	}
	t.Logf("%s: key %s, EKU %v", name, keyDesc(cert), cert.ExtKeyUsage)
}

func caClient(t *testing.T, ca *CA) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	for _, c := range readCerts(t, ca.CACertPath()) {
		pool.AddCert(c)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func do(t *testing.T, c *http.Client, req *http.Request) ([]byte, int) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return body, resp.StatusCode
}

func readCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no certs", path)
	}
	return out
}

func keyDesc(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	default:
		return fmt.Sprintf("%T", k)
	}
}
