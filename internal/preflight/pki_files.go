package preflight

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// pkiFiles: the broker refuses to start without its certificate, the key
// that belongs to it, and a CA bundle it chains to. The verdict is
// pki.Load's, the call run makes; the fix depends on what is wrong with
// which file, found by looking at the file itself.
type pkiFiles struct{}

func (pkiFiles) Name() string { return "pki.files" }

func (pkiFiles) Run(_ context.Context, env *Env) []Result {
	m := loadMaterial(env)
	f := m.files
	_, loadErr := pki.Load(f, env.Config.Identity, env.Now)
	refused := partErrors(loadErr)

	cert := Result{Item: "certificate", Wanted: "a readable PEM certificate, valid now, naming the identity, that run loads", Status: Pass}
	switch {
	case m.certErr != nil:
		cert.Status, cert.Found = Fail, m.certErr.Error()
		cert.Fix = fileFix(env, f, pki.PartCertificate, f.Certificate, m)
	case len(refused[pki.PartCertificate]) > 0:
		cert.Status, cert.Found = Fail, joinTexts(refused[pki.PartCertificate])
		cert.Fix = certContentFix(env, f, m)
	default:
		cert.Found = fmt.Sprintf("%s: %s, %s", f.Certificate, m.leaf().Subject, keyKind(m.leaf().PublicKey))
	}

	key := Result{Item: "key", Wanted: "the unencrypted key of the certificate", Status: Pass}
	switch {
	case m.keyErr != nil:
		key.Status, key.Found = Fail, m.keyErr.Error()
		key.Fix = fileFix(env, f, pki.PartKey, f.Key, m)
	case m.pair == nil:
		key.Found = f.Key + ": readable; not compared, the certificate did not load"
		key.Status = Warn
		key.Fix = "fix the certificate first (see pki.files certificate); the key is compared with it then"
	default:
		key.Found = fmt.Sprintf("%s: %s, belongs to the certificate", f.Key, keyKind(m.pair.Key.Public()))
	}

	ca := Result{Item: "ca", Wanted: "a CA bundle the certificate chains to", Status: Pass}
	switch {
	case m.caErr != nil:
		ca.Status, ca.Found = Fail, m.caErr.Error()
		ca.Fix = fileFix(env, f, pki.PartCA, f.CA, m)
	case m.certErr != nil:
		ca.Found = fmt.Sprintf("%s: %s; chain not checked, the certificate did not load", f.CA, plural(len(m.cas), "CA certificate"))
	default:
		ca.Found = fmt.Sprintf("%s: %s, the certificate chains to it", f.CA, plural(len(m.cas), "CA certificate"))
		// Validity is pki.expiry's, revocation pki.crl's, usage the
		// certificate's (above).
		err := pki.NewTrust(m.cas, nil).VerifyServer(m.chain, env.Now)
		switch refusal(err) {
		case "", pki.Expired, pki.NotYetValid, pki.WrongUsage:
		default:
			ca.Status, ca.Found = Fail, fmt.Sprintf("%s does not chain to %s: %v", f.Certificate, f.CA, err)
			ca.Fix = fmt.Sprintf("%s, or get a certificate from this CA (choria-broker enroll --config %s)", pointAt(f, pki.PartCA, "the bundle of the CA that signed the certificate"), env.Config.File)
		}
	}
	return []Result{cert, key, ca}
}

// partErrors sorts pki.Load's errors by the file they concern.
func partErrors(err error) map[pki.Part][]error {
	out := map[pki.Part][]error{}
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var pe *pki.PartError
		if errors.As(err, &pe) {
			out[pe.Part] = append(out[pe.Part], pe.Err)
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

func joinTexts(errs []error) string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return strings.Join(s, "; ")
}

// fileState is what is wrong with a certificate, key or CA file as a file.
type fileState int

const (
	fileOK fileState = iota
	fileMissing
	fileUnreadable
	fileNotRegular
	fileEmpty
	fileNotPEM    // no PEM at all: garbage, an HTML error page, DER
	fileTruncated // a BEGIN line without its END: the copy was cut short
	fileDamaged   // a complete PEM block that does not decode
	fileEncrypted // a key with a passphrase
	fileWrongPEM  // PEM of another kind: a key where the certificate belongs
)

// inspect looks at path as a file of PEM blocks of type want
// ("CERTIFICATE", or "PRIVATE KEY" for any key type).
func inspect(path, want string) fileState {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fileMissing
	case err != nil:
		return fileUnreadable
	case !st.Mode().IsRegular():
		return fileNotRegular
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fileUnreadable
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fileEmpty
	}
	var matching, other int
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case strings.Contains(b.Type, "ENCRYPTED") || b.Headers["Proc-Type"] != "":
			return fileEncrypted
		case !strings.HasSuffix(b.Type, want):
			other++
		case want == "CERTIFICATE":
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return fileDamaged
			}
			matching++
		default:
			matching++ // pki.ReadPrivateKey says why the key does not parse
		}
	}
	switch {
	case bytes.Contains(rest, []byte("-----BEGIN ")):
		return fileTruncated
	case matching > 0:
		return fileOK
	case other > 0:
		return fileWrongPEM
	}
	return fileNotPEM
}

// pointAt says how to give the broker what for part p: the setting of the
// file provider, or the ssldir path the puppet provider reads.
func pointAt(f pki.Files, p pki.Part, what string) string {
	if f.Provider == "file" {
		return fmt.Sprintf("point plugin.security.file.%s at %s", p, what)
	}
	path := map[pki.Part]string{pki.PartCertificate: f.Certificate, pki.PartKey: f.Key, pki.PartCA: f.CA}[p]
	return fmt.Sprintf("put %s at %s", what, path)
}

// fileFix says how to mend a part whose file did not load, by what is
// wrong with the file: each kind has its own remedy.
func fileFix(env *Env, f pki.Files, p pki.Part, path string, m *material) string {
	want := map[pki.Part]string{pki.PartCertificate: "CERTIFICATE", pki.PartKey: "PRIVATE KEY", pki.PartCA: "CERTIFICATE"}[p]
	conf := env.Config.File
	enroll := "choria-broker enroll --config " + conf
	fetchCA := fmt.Sprintf("curl -fsS -k -o %s https://%s/puppet-ca/v1/certificate/ca, then compare openssl x509 -noout -fingerprint -sha256 -in %s with the fingerprint puppetserver ca prints on the CA", path, puppetCA(env), path)
	state := inspect(path, want)
	if p == pki.PartKey && state == fileOK {
		if _, err := pki.ReadPrivateKey(path); err != nil {
			state = fileDamaged
		}
	}
	if p == pki.PartKey && state == fileOK && m.certErr == nil {
		// The key parses on its own, so it belongs to another certificate.
		return fmt.Sprintf("%s is the key of another certificate: %s; if that key is lost, re-issue: puppetserver ca clean --certname %s on the CA, then %s", path, pointAt(f, pki.PartKey, "the key "+f.Certificate+" was issued for"), env.Config.Identity, enroll)
	}
	switch state {
	case fileMissing:
		switch p {
		case pki.PartCertificate:
			return certFix(env, f)
		case pki.PartKey:
			if f.Provider == "file" {
				return fmt.Sprintf("set plugin.security.file.key to the certificate's key, or run %s, which writes the key there with the certificate; a key is made where the certificate was requested: copy it from that host, or request a new certificate", enroll)
			}
			return fmt.Sprintf("the key belongs at %s (<ssldir>/private_keys/<identity>.pem): %s writes it there with the certificate; a key is made where the certificate was requested: copy it from that host, or request a new certificate", path, enroll)
		default:
			if f.Provider == "file" {
				return fmt.Sprintf("set plugin.security.file.ca to the CA bundle, or fetch it: %s", fetchCA)
			}
			return fmt.Sprintf("fetch the CA bundle to %s: %s (or run %s, which writes it)", path, fetchCA, enroll)
		}
	case fileUnreadable:
		if p == pki.PartKey {
			return fmt.Sprintf("let the broker's user read %s: chown it to that user, mode 0600", path)
		}
		return fmt.Sprintf("let the broker's user read %s (and its directories): it is public, mode 0644", path)
	case fileNotRegular:
		return fmt.Sprintf("%s is not a regular file: %s", path, pointAt(f, p, "the file itself"))
	case fileEncrypted:
		return fmt.Sprintf("the broker cannot ask for a passphrase: decrypt the key with openssl pkey -in %s -out <new file>, then %s", path, pointAt(f, p, "the new file"))
	case fileWrongPEM:
		if p == pki.PartKey {
			return fmt.Sprintf("%s holds no private key (a certificate?): %s", path, pointAt(f, p, "the certificate's key"))
		}
		return fmt.Sprintf("%s holds no certificate (a key?): %s", path, pointAt(f, p, "the certificate"))
	}
	// The content is bad: empty, not PEM, cut short or damaged.
	var what string
	switch state {
	case fileEmpty:
		what = path + " is empty: the copy or the enrollment did not finish"
	case fileTruncated:
		what = path + " is cut short (a -----BEGIN line without its -----END): the copy did not finish"
	case fileDamaged:
		what = path + " has a PEM block that does not decode: the file is corrupt"
	case fileOK:
		what = path + " did not load"
	default:
		what = path + " is not PEM (no -----BEGIN " + want + "-----: garbage, an HTML error page or DER)"
	}
	switch p {
	case pki.PartCertificate:
		return fmt.Sprintf("%s; copy the certificate again from the CA, or re-issue it with %s (a DER file converts with openssl x509 -inform der -in %s -out <new file>)", what, enroll, path)
	case pki.PartKey:
		return fmt.Sprintf("%s; copy the key again from the host that requested the certificate, or request a new certificate with %s (a DER key converts with openssl pkey -inform der -in %s -out <new file>)", what, enroll, path)
	}
	return fmt.Sprintf("%s; re-fetch the CA bundle from the Puppet CA: %s", what, fetchCA)
}

// certContentFix mends a certificate that loads but that run refuses.
func certContentFix(env *Env, f pki.Files, m *material) string {
	leaf, id := m.leaf(), env.Config.Identity
	switch {
	case env.Now.Before(leaf.NotBefore):
		return fmt.Sprintf("%s is valid only from %s: check this host's clock (timedatectl), or wait", f.Certificate, leaf.NotBefore.UTC().Format("2006-01-02 15:04 MST"))
	case env.Now.After(leaf.NotAfter):
		return fmt.Sprintf("renew %s: puppetserver ca clean --certname %s on the CA, then choria-broker enroll --config %s here; run refuses an expired certificate", f.Certificate, id, env.Config.File)
	case id != "" && !pki.CoversName(leaf, id):
		return fmt.Sprintf("set identity to one of %s, or issue a certificate for %s (choria-broker enroll --config %s)", strings.Join(slices.Compact(pki.Names(leaf)), ", "), id, env.Config.File)
	case m.caErr == nil && refusal(pki.NewTrust(m.cas, nil).VerifyServer(m.chain, env.Now)) == pki.WrongUsage:
		return "issue the broker a certificate with serverAuth and clientAuth usage, as the Puppet CA does"
	}
	return certFix(env, f)
}
