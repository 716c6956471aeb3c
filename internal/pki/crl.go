package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"time"
)

// RevocationList is every CRL of a file, each checked against its issuer in
// the CA bundle. A Puppet CA's crl.pem holds one CRL per CA in the chain.
type RevocationList struct {
	File string
	// revoked maps an issuer's raw subject to the serials it revoked.
	revoked map[string]map[string]struct{}
	// NextUpdate is the earliest nextUpdate of the CRLs in the file.
	NextUpdate time.Time
	// ThisUpdate is the latest thisUpdate of the CRLs in the file.
	ThisUpdate time.Time
	Count      int // CRLs in the file
	Entries    int // revoked serials, all issuers
}

// ReadRevocationList reads a PEM (or single DER) CRL file and verifies every
// CRL in it against the CA certificates.
func ReadRevocationList(path string, cas []*x509.Certificate) (*RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	return ParseRevocationList(path, data, cas)
}

// ParseRevocationList is ReadRevocationList on data in memory; name is used in errors.
func ParseRevocationList(name string, data []byte, cas []*x509.Certificate) (*RevocationList, error) {
	var ders [][]byte
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "X509 CRL" {
			ders = append(ders, block.Bytes)
		}
	}
	if len(ders) == 0 {
		if len(bytes.TrimSpace(data)) == 0 || bytes.Contains(data, []byte("-----BEGIN")) {
			return nil, fmt.Errorf("%s: no CRL found; expected -----BEGIN X509 CRL----- blocks (a Puppet agent keeps its CA's CRL in <ssldir>/crl.pem)", name)
		}
		ders = [][]byte{data}
	}
	rl := &RevocationList{File: name, revoked: map[string]map[string]struct{}{}, Count: len(ders)}
	for i, der := range ders {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("%s: CRL %d cannot be parsed: %w", name, i+1, err)
		}
		issuer, err := crlIssuer(crl, cas)
		if err != nil {
			return nil, fmt.Errorf("%s: CRL %d (issuer %s): %w", name, i+1, crl.Issuer, err)
		}
		key := string(issuer.RawSubject)
		set := rl.revoked[key]
		if set == nil {
			set = map[string]struct{}{}
			rl.revoked[key] = set
		}
		for _, e := range crl.RevokedCertificateEntries {
			if _, dup := set[serialKey(e.SerialNumber)]; !dup {
				rl.Entries++
			}
			set[serialKey(e.SerialNumber)] = struct{}{}
		}
		if !crl.NextUpdate.IsZero() && (rl.NextUpdate.IsZero() || crl.NextUpdate.Before(rl.NextUpdate)) {
			rl.NextUpdate = crl.NextUpdate
		}
		if crl.ThisUpdate.After(rl.ThisUpdate) {
			rl.ThisUpdate = crl.ThisUpdate
		}
	}
	return rl, nil
}

func crlIssuer(crl *x509.RevocationList, cas []*x509.Certificate) (*x509.Certificate, error) {
	var lastErr error
	for _, ca := range cas {
		if !bytes.Equal(ca.RawSubject, crl.RawIssuer) {
			continue
		}
		if err := crl.CheckSignatureFrom(ca); err != nil {
			lastErr = err
			continue
		}
		return ca, nil
	}
	if lastErr != nil {
		return nil, fmt.Errorf("signature does not verify against the CA certificate of that name: %v; the CRL and ca.pem come from different CAs", lastErr)
	}
	return nil, fmt.Errorf("no certificate of that name in the CA bundle; the CRL belongs to another CA")
}

// Revoked reports whether issuer revoked cert.
func (rl *RevocationList) Revoked(cert, issuer *x509.Certificate) bool {
	if rl == nil {
		return false
	}
	_, ok := rl.revoked[string(issuer.RawSubject)][serialKey(cert.SerialNumber)]
	return ok
}

// Stale reports whether the CRL's nextUpdate has passed.
func (rl *RevocationList) Stale(now time.Time) bool {
	return rl != nil && !rl.NextUpdate.IsZero() && now.After(rl.NextUpdate)
}

func serialKey(n *big.Int) string { return string(n.Bytes()) }

func revokedEntry(key string) x509.RevocationListEntry {
	return x509.RevocationListEntry{SerialNumber: new(big.Int).SetBytes([]byte(key)), RevocationTime: time.Now()}
}
