package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnectClient makes a client tool's connection as go-choria's client
// connector does: a refused or failed first connection is retried with the
// connect back-off until limit has passed or ctx ends. Failures that a
// retry cannot mend (a certificate the broker refuses or we do not trust,
// a name that does not resolve) end it at once. The error says in words
// what happened and what to do.
func ConnectClient(ctx context.Context, servers []string, limit time.Duration, opts []nats.Option) (*nats.Conn, error) {
	var dials atomic.Uint64
	failed := map[string]*atomic.Uint64{}
	for _, c := range dialCauses {
		failed[c] = new(atomic.Uint64)
	}
	// One socket at a time: nats.go leaves a refused handshake's socket open.
	dialer := &nodeDialer{d: net.Dialer{Timeout: ConnectTimeout}, dials: &dials, failed: failed}
	opts = append(opts, nats.SetCustomDialer(dialer))
	start := time.Now()
	deadline := start.Add(limit)
	attempts := 0
	var last error
	for {
		attempts++
		nc, err := nats.Connect(strings.Join(servers, ","), opts...)
		if err == nil {
			return nc, nil
		}
		last = err
		dialer.mu.Lock()
		if errors.Is(err, nats.ErrNoServers) && dialer.lastErr != nil {
			last = dialer.lastErr
		}
		dialer.lastErr = nil
		dialer.mu.Unlock()
		if permanentConnectError(last) {
			break
		}
		wait := min(backoff(connectSteps, attempts-1), time.Until(deadline))
		if wait <= 0 {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cannot connect to %s: %w", strings.Join(servers, ","), ctx.Err())
		case <-time.After(wait):
		}
	}
	return nil, &ConnectError{Servers: servers, Attempts: attempts, Elapsed: time.Since(start), Err: last}
}

// ConnectError is a client's failed first connection.
type ConnectError struct {
	Servers  []string
	Attempts int
	Elapsed  time.Duration
	Err      error // the last attempt's
}

func (e *ConnectError) Unwrap() error { return e.Err }

func (e *ConnectError) Error() string {
	where := strings.Join(e.Servers, ",")
	tried := fmt.Sprintf("%d attempt", e.Attempts)
	if e.Attempts != 1 {
		tried += "s"
	}
	tried += fmt.Sprintf(" in %s", e.Elapsed.Round(100*time.Millisecond))
	return fmt.Sprintf("cannot connect to %s (%s): %s", where, tried, explainConnect(e.Err))
}

// explainConnect turns a connection error into what an operator can act on.
func explainConnect(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	var dnsErr *net.DNSError
	var ne net.Error
	msg := err.Error()
	switch {
	case strings.Contains(msg, "remote error: tls: internal error"):
		return fmt.Sprintf("the broker refused the TLS handshake (%v). A choria-broker does this when it sheds handshakes it cannot finish in time, as in a reconnect storm after a restart; the fleet is reconnecting. Try again in a minute, or give a longer --timeout to keep retrying", err)
	case isCertificateAlert(msg):
		return fmt.Sprintf("the broker refused this certificate (%v): it must be signed by the broker's CA, valid now, have clientAuth usage, and not be revoked; the broker's log says which (search it for \"client connection refused\")", err)
	case strings.Contains(msg, "connection closed by remote after TLS handshake"):
		// TLS 1.3: the broker's verdict on our certificate can arrive
		// after the client has finished its side of the handshake.
		return fmt.Sprintf("the broker closed the connection right after the TLS handshake (%v): most often it refused this certificate (it must be signed by the broker's CA, valid now, have clientAuth usage, and not be revoked; the broker's log says which, search it for \"client connection refused\"), or it is at plugin.choria.network.max_connections", err)
	case errors.As(err, &unknownCA), errors.As(err, &certErr), errors.As(err, &hostErr):
		return fmt.Sprintf("the broker's certificate is not trusted (%v): check the CA file of the configuration (plugin.choria.ssldir or plugin.security.file.ca) and that the broker URL's host name is in the broker's certificate", err)
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Sprintf("the broker's name does not resolve (%v): check plugin.choria.middleware_hosts (plugin.choria.federation_middleware_hosts for a federated client) or --server", err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing listens there (%v): is the broker running, and is this its client port (plugin.choria.network.client_port)?", err)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no answer in time (%v): a firewall, a wrong address, or a broker too busy to answer", err)
	case errors.Is(err, nats.ErrAuthorization):
		return fmt.Sprintf("the broker refused this connection's authorization (%v)", err)
	default:
		return err.Error()
	}
}

// A retry cannot mend a certificate problem or an unknown name.
func permanentConnectError(err error) bool {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	var dnsErr *net.DNSError
	switch {
	case isCertificateAlert(err.Error()):
		return true
	case errors.As(err, &unknownCA), errors.As(err, &certErr), errors.As(err, &hostErr):
		return true
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return true
	}
	return false
}

// isCertificateAlert tells a TLS alert the broker sent about the client's
// certificate (RFC 8446 §6.2); Go reports a received alert only as text.
func isCertificateAlert(msg string) bool {
	for _, s := range []string{"bad certificate", "unsupported certificate", "revoked certificate", "expired certificate", "unknown certificate", "unknown certificate authority", "certificate required"} {
		if strings.Contains(msg, "remote error: tls: "+s) {
			return true
		}
	}
	return false
}
