package broker

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/choria-broker/choria-broker/internal/authz"
)

// Websockets (plugin.choria.network.websocket_port): Choria clients and
// nodes behind proxies that pass only HTTPS. The listener is the
// engine's; it is wss:// only, since this broker has no plaintext mode,
// and a proxy in front must pass TLS through, as the broker checks the
// client certificate itself.
//
// Admission is the client port's: the certificate is checked against the
// CA bundle and CRL in the handshake (websocketTLS), and the engine hands
// every websocket connection to the same authenticator as a client
// connection (server.isClientAuthorized calls CustomClientAuthentication
// for every CLIENT, websocket or not), so it gets the same role and is
// tracked for CRL disconnects and lame duck like any client.
//
// The handshake gate does not cover this port: the engine gives its
// websocket listener our tls.Config as is (its GetConfigForClient returns
// it), so there is no per-connection hook to pair a slot's entry with its
// release. Websocket fleets sit behind proxies and are small next to the
// client port's.

// wsUpgradeTime is what the HTTP upgrade may take on top of tls_timeout;
// the engine bounds the handshake and the upgrade together.
const wsUpgradeTime = 2 * time.Second

// websocketOptions turns the engine's websocket listener on, with
// go-choria's settings: listen_address, compression on, auth_timeout. It
// runs after clusterOptions.
func (b *Broker) websocketOptions(opts *server.Options) {
	n := b.cfg.Network
	if n.WebsocketPort == 0 {
		return
	}
	adv := n.WebsocketAdvertise
	if adv == "" && len(opts.Routes) > 0 {
		// As for the client port (clusterOptions): members gossip this,
		// and the certificate names the identity, not the addresses of
		// the interfaces the engine would gossip instead.
		adv = net.JoinHostPort(b.cfg.Identity, strconv.Itoa(n.WebsocketPort))
	}
	opts.Websocket = server.WebsocketOpts{
		Host:             n.ListenAddress,
		Port:             n.WebsocketPort,
		Advertise:        adv,
		AuthTimeout:      n.AuthTimeout.Seconds(),
		Compression:      true,
		HandshakeTimeout: n.TLSTimeout + wsUpgradeTime,
		TLSConfig:        b.websocketTLS(),
	}
}

// websocketTLS is the websocket listener's TLS: the broker's certificate
// as in force now, and admit's verdict on the client's.
func (b *Broker) websocketTLS() *tls.Config {
	return b.hardenTLS(&tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if b.lameDuck.Load() {
				return nil, errLameDuck
			}
			return b.cert.Load(), nil
		},
		// Verified in VerifyConnection, as on the client port.
		ClientAuth: tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if re := b.verifyClient(cs); re != nil {
				// The peer's address is not known here: the engine's log
				// line about the failed handshake has it (explainWebsocket).
				return fmt.Errorf("%s: %w", admissionMarker, re)
			}
			return nil
		},
	})
}

// wsHandshakeError starts the engine's line about a websocket handshake
// that failed, the TLS handshake included.
const wsHandshakeError = "websocket: TLS handshake error from "

// explainWebsocket logs a refused websocket handshake as a refused client
// connection, with the peer, within the log limit; other failed
// handshakes and upgrades (a scanner, a client hanging up, a plain HTTPS
// request) are bounded by the limit on engine lines about single
// connections. It returns false when it handled the line.
func (b *Broker) explainWebsocket(msg string) bool {
	// After the TLS handshake: an HTTP request that is no websocket
	// upgrade, or for the leafnode path with leafnodes off.
	if strings.Contains(msg, " - websocket handshake error: ") || msg == "Not configured to accept leaf node connections" {
		if b.limiter.allow(limitEngine, "websocket upgrade") {
			b.log.Warn("websocket upgrade refused", "detail", msg)
		}
		return false
	}
	rest, ok := strings.CutPrefix(msg, wsHandshakeError)
	if !ok {
		return true
	}
	remote, why, _ := strings.Cut(strings.TrimSpace(rest), ": ")
	switch {
	case strings.Contains(why, errLameDuck.Error()):
		return false // expected while the fleet moves off
	case strings.Contains(why, admissionMarker):
		why = strings.TrimPrefix(why, admissionMarker+": ")
		reason := why
		if _, r, ok := strings.Cut(why, "refused: "); ok {
			reason, _, _ = strings.Cut(r, " (")
		}
		if b.limiter.allow(limitClients, reason) {
			b.log.Warn(limitClients, "remote", remote, "listener", "websocket", "reason", reason, "detail", why)
		}
	default:
		if b.limiter.allow(limitEngine, "websocket handshake") {
			b.log.Warn("websocket handshake failed", "remote", remote, "error", why)
		}
	}
	return false
}

// isWebsocket tells a websocket connection from a client port one by the
// engine's name for it, "<addr> - wid:<n>" (client.go initClient).
func isWebsocket(c server.ClientAuthentication) bool {
	s, ok := c.(fmt.Stringer)
	return ok && strings.Contains(s.String(), " - wid:")
}

// WebsocketURL is the websocket listener's wss:// URL, "" when it is off.
func (b *Broker) WebsocketURL() string {
	n := b.cfg.Network
	if n.WebsocketPort == 0 {
		return ""
	}
	host := n.ListenAddress
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "wss://" + net.JoinHostPort(host, strconv.Itoa(n.WebsocketPort))
}

// WebsocketByRole counts connected websocket clients by role; nil when
// the websocket listener is off.
func (b *Broker) WebsocketByRole() map[authz.Role]int {
	if b.cfg.Network.WebsocketPort == 0 {
		return nil
	}
	out := map[authz.Role]int{}
	if b.srv == nil {
		return out
	}
	b.conns.Range(func(k, v any) bool {
		if ci := v.(*connInfo); ci.websocket && b.srv.GetClient(k.(uint64)) != nil {
			out[ci.role]++
		}
		return true
	})
	return out
}
