package pki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxBeside bounds how many files NamesBeside reads: a Puppet CA's own
// ssldir may hold thousands, and a sample is enough to test patterns.
const maxBeside = 200

// NamesBeside lists the names of the non-CA certificates in the directory
// of certFile (a Puppet ssldir's certs/), for checking role patterns
// against real node names. Unreadable files are skipped: this is advice,
// and the broker's own files are checked elsewhere.
func NamesBeside(certFile string) []string {
	if certFile == "" {
		return nil
	}
	entries, err := os.ReadDir(filepath.Dir(certFile))
	if err != nil {
		return nil
	}
	var names []string
	read := 0
	for _, e := range entries {
		if read >= maxBeside {
			break
		}
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".pem") {
			continue
		}
		read++
		certs, err := ReadCertificates(filepath.Join(filepath.Dir(certFile), e.Name()))
		if err != nil || certs[0].IsCA {
			continue
		}
		names = append(names, RoleNames(certs[0])...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// RoleNames are the names roles are decided from: the CN and DNS SANs.
func RoleNames(c *x509.Certificate) []string {
	return append([]string{c.Subject.CommonName}, c.DNSNames...)
}
