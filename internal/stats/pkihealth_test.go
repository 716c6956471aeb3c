package stats_test

import (
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// metric is the value of the series name{labels...} in a scrape, and
// whether it is there; labels are `key="value"` as the exposition writes them.
func metric(body, name string, labels ...string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		m := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`).FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(","+m[1]+",", ","+l+",")
		}
		if ok {
			v, err := strconv.ParseFloat(m[2], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// reloadFailing is choria_broker_pki_reload_failing{file} as scraped; -1 when absent.
func (f *fixture) reloadFailing(t *testing.T, file string) float64 {
	t.Helper()
	v, ok := metric(get(t, f.base+"/metrics"), "choria_broker_pki_reload_failing", fmt.Sprintf("file=%q", file))
	if !ok {
		return -1
	}
	return v
}

// health is the status page's level and its text.
func (f *fixture) health(t *testing.T) (string, string) {
	t.Helper()
	page := get(t, f.base+"/")
	return elementText(page, "health-level"), page
}

// TestMissingCRLKeepsRevocation removes crl.pem under a running broker (the
// Puppet provider, where crl.pem is optional at start-up): the CRL in force
// stays, the revoked certificate is still refused, the CRL's metric stays,
// and health and the reload metric say the file is failing until it is back.
func TestMissingCRLKeepsRevocation(t *testing.T) {
	t.Parallel()
	f := start(t)
	crl := f.env.PKI.CRLFile()
	f.refuse(t)
	if got := f.reloadFailing(t, "crl"); got != 0 {
		t.Fatalf("choria_broker_pki_reload_failing{file=crl} = %v at start, want 0", got)
	}

	if err := os.Rename(crl, crl+".bak"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the watcher to notice the missing CRL", func() bool { return f.reloadFailing(t, "crl") == 1 })
	f.refuse(t)
	m := get(t, f.base+"/metrics")
	if _, ok := metric(m, "choria_broker_crl_next_update_seconds"); !ok {
		t.Error("choria_broker_crl_next_update_seconds went with the CRL file; it must stay with the CRL in force")
	}
	for _, p := range []string{"certificate", "key", "ca"} {
		if v, ok := metric(m, "choria_broker_pki_reload_failing", fmt.Sprintf("file=%q", p)); !ok || v != 0 {
			t.Errorf("choria_broker_pki_reload_failing{file=%q} = %v (present %v), want 0", p, v, ok)
		}
	}
	level, page := f.health(t)
	if level != "amber" || !strings.Contains(page, "CRL failed to reload") || !strings.Contains(page, "does not exist") {
		t.Errorf("health with crl.pem gone: %q, want amber saying the CRL file does not exist\n%s", level, page)
	}

	if err := os.Rename(crl+".bak", crl); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the watcher to reload the restored CRL", func() bool { return f.reloadFailing(t, "crl") == 0 })
	if level, page := f.health(t); level != "green" {
		t.Errorf("health with crl.pem restored: %q, want green\n%s", level, page)
	}
	f.refuse(t)
}

// TestExpiredCABundleIsRed replaces ca.pem with the same CA (same name and
// key, so the CRL still verifies) whose validity has ended: every client is
// refused, so health is red and the CA expiry metric is negative.
func TestExpiredCABundleIsRed(t *testing.T) {
	t.Parallel()
	f := start(t)
	if level, page := f.health(t); level != "green" {
		t.Fatalf("health at start: %q\n%s", level, page)
	}
	ca := f.env.PKI.CA
	tmpl := *ca.Cert
	now := time.Now()
	tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(now.UnixNano()), now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, ca.Key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFile(f.env.PKI.CAFile(), pki.CertsPEM(expired), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the broker to load the expired CA", func() bool {
		return f.r.Network.TrustStatus().CANotAfter.Equal(expired.NotAfter)
	})
	level, page := f.health(t)
	if level != "red" || !strings.Contains(page, "no valid CA certificate") || !strings.Contains(page, "every client is refused") {
		t.Errorf("health with an expired CA bundle: %q, want red saying every client is refused\n%s", level, page)
	}
	if v, ok := metric(get(t, f.base+"/metrics"), "choria_broker_ca_expiry_seconds"); !ok || v >= 0 {
		t.Errorf("choria_broker_ca_expiry_seconds = %v (present %v), want negative", v, ok)
	}
}

// TestFailedReloadShows: a garbage key on reload (SIGHUP) and a garbage CRL
// on disk each keep what the broker had, turn health amber and set
// choria_broker_pki_reload_failing for the file; fixing the file and
// reloading turns both back.
func TestFailedReloadShows(t *testing.T) {
	t.Parallel()
	f := start(t)
	b := f.r.Network
	if _, ok := metric(get(t, f.base+"/metrics"), "choria_broker_pki_reload_timestamp_seconds"); !ok {
		t.Error("no choria_broker_pki_reload_timestamp_seconds after start-up")
	}

	keyFile := f.env.PKI.KeyFile(f.env.PKI.Broker)
	goodKey, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(); err == nil {
		t.Fatal("reload accepted a garbage key")
	}
	if got := f.reloadFailing(t, "key"); got != 1 {
		t.Errorf("choria_broker_pki_reload_failing{file=key} = %v after a failed reload, want 1", got)
	}
	if level, page := f.health(t); level != "amber" || !strings.Contains(page, "broker key failed to reload") {
		t.Errorf("health after a failed key reload: %q, want amber naming the key\n%s", level, page)
	}
	f.connect(t, f.env.PKI.Nodes[0]) // the old key pair still serves
	if err := pki.WriteFile(keyFile, goodKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(); err != nil {
		t.Fatalf("reload after fixing the key: %v", err)
	}
	if got := f.reloadFailing(t, "key"); got != 0 {
		t.Errorf("choria_broker_pki_reload_failing{file=key} = %v after a good reload, want 0", got)
	}
	if level, page := f.health(t); level != "green" {
		t.Errorf("health after a good reload: %q, want green\n%s", level, page)
	}

	crl := f.env.PKI.CRLFile()
	goodCRL, err := os.ReadFile(crl)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFile(crl, []byte("-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the watcher to refuse the garbage CRL", func() bool { return f.reloadFailing(t, "crl") == 1 })
	if level, page := f.health(t); level != "amber" || !strings.Contains(page, "CRL failed to reload") {
		t.Errorf("health after a garbage CRL: %q, want amber naming the CRL\n%s", level, page)
	}
	f.refuse(t)
	if err := pki.WriteFile(crl, goodCRL, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(); err != nil {
		t.Fatalf("reload after fixing the CRL: %v", err)
	}
	if got := f.reloadFailing(t, "crl"); got != 0 {
		t.Errorf("choria_broker_pki_reload_failing{file=crl} = %v after a good reload, want 0", got)
	}
	if level, page := f.health(t); level != "green" {
		t.Errorf("health after fixing the CRL: %q, want green\n%s", level, page)
	}
}
