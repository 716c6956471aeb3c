package config

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

// go-choria's names load, with Go's and OpenSSL's curve names besides.
func TestTLSPreferencesParse(t *testing.T) {
	t.Parallel()
	c, err := Parse("broker.conf", []byte(`plugin.security.cipher_suites = TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305, TLS_AES_128_GCM_SHA256
plugin.security.ecc_curves = X25519, CurveP256, secp384r1, P-521
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Unsupported) != 0 {
		t.Fatalf("cipher_suites and ecc_curves reported unsupported: %+v", c.Unsupported)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	c.Security.ApplyTLS(tc)
	// TLS 1.3 suites cannot be chosen in Go, so they are left out of the list.
	if want := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}; !slices.Equal(tc.CipherSuites, want) {
		t.Errorf("suites %v, want %v", tc.CipherSuites, want)
	}
	if want := []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}; !slices.Equal(tc.CurvePreferences, want) {
		t.Errorf("curves %v, want %v", tc.CurvePreferences, want)
	}
	if tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("min version %x", tc.MinVersion)
	}

	// Unset, Go's defaults stay.
	tc = &tls.Config{}
	Default().Security.ApplyTLS(tc)
	if tc.CipherSuites != nil || tc.CurvePreferences != nil {
		t.Errorf("defaults changed: %+v", tc)
	}

	// Only TLS 1.3 suites named: TLS 1.2 has none left, so TLS 1.3 only.
	c, err = Parse("broker.conf", []byte("plugin.security.cipher_suites = TLS_AES_256_GCM_SHA384\n"))
	if err != nil {
		t.Fatal(err)
	}
	tc = &tls.Config{MinVersion: tls.VersionTLS12}
	c.Security.ApplyTLS(tc)
	if tc.MinVersion != tls.VersionTLS13 {
		t.Errorf("only TLS 1.3 suites: min version %x, want TLS 1.3", tc.MinVersion)
	}
}

// Unknown and insecure names fail with file:line and the valid names.
func TestTLSPreferencesErrors(t *testing.T) {
	t.Parallel()
	_, err := Parse("broker.conf", []byte(`identity = b.example.net
plugin.security.cipher_suites = TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_BOGUS
plugin.security.ecc_curves = X25519, P-999
`))
	if err == nil {
		t.Fatal("bad names accepted")
	}
	for _, want := range []string{
		`broker.conf:2: plugin.security.cipher_suites`, `"TLS_BOGUS" is not a cipher suite; choose from TLS_AES_128_GCM_SHA256, `, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
		`broker.conf:3: plugin.security.ecc_curves`, `"P-999" is not a curve; choose from X25519, CurveP256, CurveP384, CurveP521`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}

	_, err = Parse("broker.conf", []byte("plugin.security.cipher_suites = TLS_RSA_WITH_RC4_128_SHA\n"))
	if err == nil || !strings.Contains(err.Error(), `broker.conf:1: plugin.security.cipher_suites`) || !strings.Contains(err.Error(), `"TLS_RSA_WITH_RC4_128_SHA" is insecure`) {
		t.Errorf("insecure suite: %v", err)
	}

	// Values set by code are checked too.
	c := Default()
	c.Security.ECCCurves = []string{"brainpool"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "plugin.security.ecc_curves") {
		t.Errorf("Validate: %v", err)
	}
}
