package pki

import (
	"crypto/x509"
	"errors"
	"time"
)

// Part is one of the files a broker's identity is loaded from, so that a
// failed reload can say which one to fix.
type Part string

// The parts, in the order they are reported.
const (
	PartCertificate Part = "certificate"
	PartKey         Part = "key"
	PartCA          Part = "ca"
	PartCRL         Part = "crl"
)

// Parts lists every Part.
var Parts = []Part{PartCertificate, PartKey, PartCA, PartCRL}

// PartError is a load error of one part; its text is the cause's.
type PartError struct {
	Part Part
	Err  error
}

func (e *PartError) Error() string { return e.Err.Error() }
func (e *PartError) Unwrap() error { return e.Err }

func partError(p Part, err error) error {
	if err == nil {
		return nil
	}
	return &PartError{Part: p, Err: err}
}

// FailedParts maps each part an error of Load, Reload or ReloadTrust
// concerns to its errors' text; empty for nil.
func FailedParts(err error) map[Part]string {
	out := map[Part]string{}
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		var pe *PartError
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if errors.As(err, &pe) {
			if out[pe.Part] != "" {
				out[pe.Part] += "; "
			}
			out[pe.Part] += pe.Err.Error()
		}
	}
	walk(err)
	return out
}

// CAValidity reports the bundle's CA certificates that are outside their
// validity at now, and whether no root is valid: then no certificate
// verifies and every client is refused.
func (t *Trust) CAValidity(now time.Time) (invalid []*x509.Certificate, noValidRoot bool) {
	roots, validRoots := 0, 0
	for _, c := range t.CAs {
		ok := !now.Before(c.NotBefore) && !now.After(c.NotAfter)
		if !ok {
			invalid = append(invalid, c)
		}
		if isSelfSigned(c) {
			roots++
			if ok {
				validRoots++
			}
		}
	}
	// A bundle without a root verifies nothing anyway; judge it by its
	// certificates alone.
	noValidRoot = (roots > 0 && validRoots == 0) || (len(t.CAs) > 0 && len(invalid) == len(t.CAs))
	return invalid, noValidRoot
}
