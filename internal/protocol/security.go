package protocol

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/protocol/filter"
)

// Signer makes signed requests as a Choria client: RSA PKCS#1 v1.5 over
// SHA-256 of the exact request bytes, with its certificate attached.
type Signer struct {
	Certname string // from the certificate's CN
	Identity string // senderid and mc_sender
	key      *rsa.PrivateKey
	pubcert  string
}

// NewSigner uses a client key pair. Choria v1 signs with RSA only.
func NewSigner(kp *pki.KeyPair, identity string) (*Signer, error) {
	key, ok := kp.Key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: Choria v1 requests are signed with RSA keys, this key is %T", kp.KeyFile, kp.Key)
	}
	certname := kp.Leaf().Subject.CommonName
	if identity == "" {
		identity = certname
	}
	return &Signer{Certname: certname, Identity: identity, key: key, pubcert: string(pki.CertsPEM(kp.Chain...))}, nil
}

// CallerID is choria=<certname>.
func (s *Signer) CallerID() string { return CallerID(s.Certname) }

// RequestSpec describes a request to build.
type RequestSpec struct {
	Agent      string
	Collective string
	Payload    []byte // discovery pings send base64, RPC raw JSON; see Request.Payload
	Base64     bool   // encode Payload as base64 in the request message
	TTL        int    // default 60
	Filter     *filter.Filter
	RequestID  string // default a new one
	Time       time.Time
}

// NewRequest builds the signed transport of a request and returns it with
// the request it carries. Reply-to is the caller's reply subject.
func (s *Signer) NewRequest(spec RequestSpec) (*Transport, *Request, error) {
	if spec.TTL == 0 {
		spec.TTL = 60
	}
	if spec.RequestID == "" {
		spec.RequestID = NewRequestID()
	}
	if spec.Time.IsZero() {
		spec.Time = time.Now()
	}
	if spec.Filter == nil {
		spec.Filter = filter.New()
	}
	msg := string(spec.Payload)
	if spec.Base64 {
		msg = base64.StdEncoding.EncodeToString(spec.Payload)
	}
	req := &Request{Protocol: RequestV1, Message: msg, Envelope: RequestEnvelope{
		RequestID: spec.RequestID, SenderID: s.Identity, CallerID: s.CallerID(),
		Collective: spec.Collective, Agent: spec.Agent, TTL: spec.TTL, Time: spec.Time.Unix(), Filter: spec.Filter,
	}}
	reqJSON, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	sig, err := s.Sign(reqJSON)
	if err != nil {
		return nil, nil, err
	}
	secure, err := json.Marshal(&SecureRequest{Protocol: SecureRequestV1, Message: string(reqJSON), Signature: sig, PubCert: s.pubcert})
	if err != nil {
		return nil, nil, err
	}
	t := NewTransport(secure, s.Identity)
	t.Headers.ReplyTo = ReplySubject(spec.Collective, s.CallerID(), spec.RequestID)
	return t, req, nil
}

// Sign returns the base64 RSA PKCS#1 v1.5 SHA-256 signature of data.
func (s *Signer) Sign(data []byte) (string, error) {
	sum := sha256.Sum256(data)
	sig, err := rsa.SignPKCS1v15(nil, s.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verifier checks requests as a Choria server does (protocol §3.2), and
// also against the CRL, which go-choria servers do not.
type Verifier struct {
	Trust      func() *pki.Trust
	Allowed    []*regexp.Regexp // plugin.choria.security.certname_whitelist
	Privileged []*regexp.Regexp // plugin.choria.security.privileged_users
	Now        func() time.Time // default time.Now
}

// CompilePatterns compiles Choria certname patterns; /re/ has its slashes stripped.
func CompilePatterns(setting string, patterns []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if len(p) >= 2 && strings.HasPrefix(p, "/") && strings.HasSuffix(p, "/") {
			p = p[1 : len(p)-1]
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a regular expression: %v", setting, p, err)
		}
		out = append(out, re)
	}
	return out, nil
}

func matchAny(res []*regexp.Regexp, names ...string) bool {
	for _, re := range res {
		for _, n := range names {
			if re.MatchString(n) {
				return true
			}
		}
	}
	return false
}

// Verify parses the secure request in body, checks its certificate and
// signature, and returns the request. Errors are *DropError.
func (v *Verifier) Verify(body []byte) (*Request, error) {
	sr, err := ParseSecureRequest(body)
	if err != nil {
		return nil, err
	}
	req, err := ParseRequest([]byte(sr.Message))
	if err != nil {
		return nil, err
	}
	certname, ok := CertnameFromCallerID(req.Envelope.CallerID)
	if !ok {
		return nil, dropf(CertnameNotAllowed, "callerid %q has no certname", req.Envelope.CallerID)
	}
	certs, err := pki.ParseCertificates("pubcert", []byte(sr.PubCert))
	if err != nil {
		return nil, dropf(UntrustedCert, "%v", err)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	names := certNames(certs[0])
	if err := v.Trust().VerifyClient(certs, now); err != nil {
		var re *pki.RefusedError
		if errors.As(err, &re) {
			return nil, dropf(UntrustedCert, "%s", re.Error())
		}
		return nil, dropf(UntrustedCert, "%v", err)
	}
	if !matchAny(v.Privileged, names...) {
		if !contains(names, certname) {
			return nil, dropf(CertnameNotAllowed, "callerid certname %q is not a name of the certificate %v", certname, names)
		}
		if !matchAny(v.Allowed, certname) {
			return nil, dropf(CertnameNotAllowed, "certname %q does not match plugin.choria.security.certname_whitelist", certname)
		}
	}
	if err := verifySignature(certs[0], []byte(sr.Message), sr.Signature); err != nil {
		return nil, err
	}
	return req, nil
}

// certNames are the CN and DNS SANs, the names Choria matches a callerid against.
func certNames(c *x509.Certificate) []string {
	names := []string{}
	if c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	return append(names, c.DNSNames...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func verifySignature(cert *x509.Certificate, message []byte, signature string) error {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return dropf(BadSignature, "signer key is %T, Choria v1 signatures are RSA", cert.PublicKey)
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return dropf(BadSignature, "signature is not base64")
	}
	sum := sha256.Sum256(message)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return dropf(BadSignature, "signature does not verify with the certificate of %s", cert.Subject)
	}
	return nil
}
