package pki

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// PuppetCA talks to a Puppet CA's HTTP API (/puppet-ca/v1), as Choria's
// enrolment does.
type PuppetCA struct {
	Base   string // https://host:port
	client *http.Client
}

// NewPuppetCA is a client for host:port. With roots it verifies the CA
// server against them; without, it trusts on first use, as a Puppet agent
// does on its first run (the caller shows the CA's fingerprint). cert, when
// given, is presented to the CA.
func NewPuppetCA(host string, port int, roots []*x509.Certificate, cert *tls.Certificate) *PuppetCA {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(roots) > 0 {
		pool := x509.NewCertPool()
		for _, c := range roots {
			pool.AddCert(c)
		}
		tc.RootCAs = pool
	} else {
		tc.InsecureSkipVerify = true // bootstrap: there is no CA certificate yet
	}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &PuppetCA{
		Base:   "https://" + net.JoinHostPort(host, strconv.Itoa(port)),
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}},
	}
}

// Close releases idle connections.
func (p *PuppetCA) Close() { p.client.CloseIdleConnections() }

// maxResponse bounds what we read from the CA; a CRL of a large estate is
// well under this.
const maxResponse = 32 << 20

func (p *PuppetCA) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	u := p.Base + "/puppet-ca/v1/" + path + "?environment=production"
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "text/plain")
	if body != nil {
		req.Header.Set("Content-Type", "text/plain")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("the Puppet CA at %s: %w", p.Base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	return resp.StatusCode, data, err
}

func (p *PuppetCA) get(ctx context.Context, path string) ([]byte, error) {
	code, data, err := p.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("the Puppet CA at %s: GET %s: %d %s", p.Base, path, code, bytes.TrimSpace(data))
	}
	return data, nil
}

// CACertificates is the CA chain, PEM.
func (p *PuppetCA) CACertificates(ctx context.Context) ([]byte, error) {
	return p.get(ctx, "certificate/ca")
}

// CRL is the CA's revocation lists, PEM.
func (p *PuppetCA) CRL(ctx context.Context) ([]byte, error) {
	return p.get(ctx, "certificate_revocation_list/ca")
}

// SubmitCSR sends a certificate request for name.
func (p *PuppetCA) SubmitCSR(ctx context.Context, name string, csrPEM []byte) error {
	code, data, err := p.do(ctx, http.MethodPut, "certificate_request/"+url.PathEscape(name), csrPEM)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("the Puppet CA at %s refused the certificate request for %s: %d %s", p.Base, name, code, bytes.TrimSpace(data))
	}
	return nil
}

// Certificate is name's signed certificate, or found false while unsigned.
func (p *PuppetCA) Certificate(ctx context.Context, name string) (cert []byte, found bool, err error) {
	code, data, err := p.do(ctx, http.MethodGet, "certificate/"+url.PathEscape(name), nil)
	if err != nil {
		return nil, false, err
	}
	switch code {
	case http.StatusOK:
		return data, true, nil
	case http.StatusNotFound:
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("the Puppet CA at %s: GET certificate/%s: %d %s", p.Base, name, code, bytes.TrimSpace(data))
}

// Renew asks the CA to renew the certificate presented to it (Puppet 7's
// certificate_renewal), returning the new certificate.
func (p *PuppetCA) Renew(ctx context.Context) ([]byte, error) {
	code, data, err := p.do(ctx, http.MethodPost, "certificate_renewal", []byte{})
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("the Puppet CA at %s: certificate renewal: %d %s", p.Base, code, bytes.TrimSpace(data))
	}
	return data, nil
}
