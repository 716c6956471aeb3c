package config

import (
	"crypto/tls"
	"slices"
	"strings"
)

// go-choria's plugin.security.cipher_suites and ecc_curves name Go's
// crypto/tls constants (its tlssetup package); we accept the same names.

// cipherSuites maps upper-case names to suites: Go's secure list, TLS 1.3
// included, and the names go-choria knows them by.
var cipherSuites = func() map[string]*tls.CipherSuite {
	m := map[string]*tls.CipherSuite{}
	for _, cs := range tls.CipherSuites() {
		m[cs.Name] = cs
	}
	// go-choria's spelling of the CHACHA20 suites, Go's older constant names.
	m["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"] = m["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"]
	m["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"] = m["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"]
	return m
}()

// insecureSuites are suites Go still implements but lists as insecure
// (RC4, 3DES, CBC-SHA256, RSA key exchange): a hardening setting must
// not turn them on.
var insecureSuites = func() map[string]bool {
	m := map[string]bool{}
	for _, cs := range tls.InsecureCipherSuites() {
		m[cs.Name] = true
	}
	return m
}()

// curves maps upper-case names to key exchanges: go-choria's names
// (X25519, CurveP256...), Go's String() forms (P-256...) and the OpenSSL
// ones (secp256r1, prime256v1...).
var curves = map[string]tls.CurveID{
	"X25519":             tls.X25519,
	"CURVEP256":          tls.CurveP256,
	"P-256":              tls.CurveP256,
	"P256":               tls.CurveP256,
	"SECP256R1":          tls.CurveP256,
	"PRIME256V1":         tls.CurveP256,
	"CURVEP384":          tls.CurveP384,
	"P-384":              tls.CurveP384,
	"P384":               tls.CurveP384,
	"SECP384R1":          tls.CurveP384,
	"CURVEP521":          tls.CurveP521,
	"P-521":              tls.CurveP521,
	"P521":               tls.CurveP521,
	"SECP521R1":          tls.CurveP521,
	"X25519MLKEM768":     tls.X25519MLKEM768,
	"SECP256R1MLKEM768":  tls.SecP256r1MLKEM768,
	"SECP384R1MLKEM1024": tls.SecP384r1MLKEM1024,
}

// curveNames are the names shown in errors, go-choria's first.
var curveNames = []string{"X25519", "CurveP256", "CurveP384", "CurveP521", "X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024"}

func suiteNames() string {
	var names []string
	for _, cs := range tls.CipherSuites() {
		names = append(names, cs.Name)
	}
	return strings.Join(names, ", ")
}

// checkCipherSuites: an unknown name would silently leave a suite out.
func checkCipherSuites(v any) string {
	for _, n := range v.([]string) {
		u := strings.ToUpper(n)
		if insecureSuites[u] {
			return `"` + n + `" is insecure (Go's crypto/tls lists it so) and cannot be turned on; choose from ` + suiteNames()
		}
		if cipherSuites[u] == nil {
			return `"` + n + `" is not a cipher suite; choose from ` + suiteNames()
		}
	}
	return ""
}

// checkCurves: as checkCipherSuites, for key exchanges.
func checkCurves(v any) string {
	for _, n := range v.([]string) {
		if _, ok := curves[strings.ToUpper(n)]; !ok {
			return `"` + n + `" is not a curve; choose from ` + strings.Join(curveNames, ", ")
		}
	}
	return ""
}

// ApplyTLS sets plugin.security.cipher_suites and ecc_curves on a
// tls.Config; unset, Go's defaults stay. Go does not let TLS 1.3 suites be
// chosen, so they are always on; a list naming only TLS 1.3 suites
// therefore means TLS 1.3 only. Values were checked when read.
func (s *Security) ApplyTLS(tc *tls.Config) {
	if len(s.CipherSuites) > 0 {
		var ids []uint16
		for _, n := range s.CipherSuites {
			cs := cipherSuites[strings.ToUpper(n)]
			if cs != nil && slices.Contains(cs.SupportedVersions, tls.VersionTLS12) && !slices.Contains(ids, cs.ID) {
				ids = append(ids, cs.ID)
			}
		}
		tc.CipherSuites = ids
		if len(ids) == 0 {
			tc.MinVersion = tls.VersionTLS13
		}
	}
	if len(s.ECCCurves) > 0 {
		var ids []tls.CurveID
		for _, n := range s.ECCCurves {
			if id, ok := curves[strings.ToUpper(n)]; ok && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		tc.CurvePreferences = ids
	}
}
