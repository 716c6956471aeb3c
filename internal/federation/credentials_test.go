package federation

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// certHashes are the SHA-256 of the client certificates connected to a
// collective's network broker.
func (w *world) certHashes(network string) map[string]int {
	w.t.Helper()
	cz, err := w.brokers[network].Engine().Connz(&server.ConnzOptions{Username: true, Limit: 1000})
	must(w.t, err)
	out := map[string]int{}
	for _, c := range cz.Conns {
		for _, pc := range c.TLSPeerCerts[:min(1, len(c.TLSPeerCerts))] {
			out[pc.CertSha256]++
		}
	}
	return out
}

func fileCertHash(t *testing.T, path string) string {
	t.Helper()
	certs, err := pki.ReadCertificates(path)
	must(t, err)
	return hashOf(certs[0].Raw)
}

// TestReloadCertificate: a renewed certificate is presented from the next
// connection on, without a restart; a bad key file leaves the current
// certificate in use.
func TestReloadCertificate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a")
	fa := w.federate("a", nil)
	old := fileCertHash(t, w.fedCert)
	if n := w.certHashes("a")[old]; n != fa.tune.conns {
		t.Fatalf("%d connections with the first certificate, want %d", n, fa.tune.conns)
	}

	expiry := func() time.Duration {
		return time.Duration(sum(t, fa.reg, "choria_federation_certificate_expiry_seconds", map[string]string{"cluster": "a"}) * float64(time.Second))
	}
	if d := expiry(); d < 700*24*time.Hour { // the development CA issues for two years
		t.Fatalf("certificate expiry metric %s before the reload", d)
	}

	// Renewed in place, as Puppet does; this one for 90 days.
	kp, err := w.envs["fed"].PKI.CA.Issue(pki.IssueOptions{Name: fedCertname, NotAfter: time.Now().Add(90 * 24 * time.Hour)})
	must(t, err)
	must(t, kp.Save(w.fedCert, w.fedKey))
	renewed := fileCertHash(t, w.fedCert)
	must(t, fa.Reload())
	if d := expiry(); d > 90*24*time.Hour || d < 89*24*time.Hour {
		t.Fatalf("certificate expiry metric %s after reloading a 90-day certificate", d)
	}
	if n := w.certHashes("a")[old]; n != fa.tune.conns {
		t.Fatalf("a reload dropped links: %d connections left with the first certificate", n)
	}
	before := sum(t, fa.reg, "choria_connector_reconnections", nil)
	w.brokers["a"].Stop()
	w.brokers["a"] = devbroker.Start(t, w.envs["a"])
	waitUntil(t, 60*time.Second, func() bool {
		return sum(t, fa.reg, "choria_connector_reconnections", nil) >= before+float64(fa.tune.conns)
	}, "federation broker reconnected")
	if got := w.certHashes("a"); got[renewed] != fa.tune.conns || got[old] != 0 {
		t.Fatalf("after the reconnect: %v, want %d with the renewed certificate %s", got, fa.tune.conns, renewed)
	}

	// A pair from another CA: the brokers would refuse it at every reconnect.
	foreign, err := pki.NewCA("Foreign CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	must(t, err)
	fkp, err := foreign.Issue(pki.IssueOptions{Name: fedCertname, KeyType: "ec"})
	must(t, err)
	must(t, fkp.Save(w.fedCert, w.fedKey))
	if err := fa.Reload(); err == nil || !strings.Contains(err.Error(), "does not chain to the CA bundle") {
		t.Fatalf("reload with a foreign certificate: %v", err)
	}

	must(t, os.WriteFile(w.fedKey, []byte("half a key"), 0o600))
	err = fa.Reload()
	if err == nil || !strings.Contains(err.Error(), w.fedKey) {
		t.Fatalf("reload with a bad key: %v, want an error naming %s", err, w.fedKey)
	}
	if cert, _ := fa.creds.config.GetClientCertificate(nil); hashOf(cert.Leaf.Raw) != renewed {
		t.Fatal("a failed reload replaced the certificate in use")
	}
}

func hashOf(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// TestCredentialsTLSPreferences: the federation broker dials both networks
// with plugin.security.cipher_suites and ecc_curves.
func TestCredentialsTLSPreferences(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	ca, err := pki.NewCA("Test CA", now.Add(-time.Hour), now.Add(time.Hour))
	must(t, err)
	kp, err := ca.Issue(pki.IssueOptions{Name: fedCertname, KeyType: "ec"})
	must(t, err)
	cfg := config.Default()
	cfg.Security.Provider = "file"
	cfg.Security.FileCertificate, cfg.Security.FileKey, cfg.Security.FileCA = filepath.Join(dir, "f.pem"), filepath.Join(dir, "f.key"), filepath.Join(dir, "ca.pem")
	must(t, kp.Save(cfg.Security.FileCertificate, cfg.Security.FileKey))
	must(t, pki.WriteFile(cfg.Security.FileCA, pki.CertsPEM(ca.Cert), 0o644))
	cfg.Security.ECCCurves = []string{"X25519"}
	cfg.Security.CipherSuites = []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}
	c, err := loadCredentials(cfg)
	must(t, err)
	if !slices.Equal(c.config.CurvePreferences, []tls.CurveID{tls.X25519}) || !slices.Equal(c.config.CipherSuites, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}) {
		t.Fatalf("curves %v suites %v", c.config.CurvePreferences, c.config.CipherSuites)
	}
}
