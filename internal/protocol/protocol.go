// Package protocol speaks Choria's v1 wire protocol (x509 security): the
// transport, secure request/reply and request/reply envelopes, signing and
// the server-side verification of requests, and the NATS subjects they
// travel on. Real go-choria servers and clients read what it writes, so
// field names, key order and encodings follow the protocol to the byte.
package protocol

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
)

// Protocol identifiers of v1.
const (
	TransportV1     = "choria:transport:1"
	SecureRequestV1 = "choria:secure:request:1"
	SecureReplyV1   = "choria:secure:reply:1"
	RequestV1       = "choria:request:1"
	ReplyV1         = "choria:reply:1"
)

// MinTTL is the smallest request TTL real servers accept (the v1 schema's minimum).
const MinTTL = 30

// NewRequestID is a v1 request ID: a random UUIDv4 as 32 lowercase hex digits.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

// CallerID is the callerid of a certname: choria=<certname>.
func CallerID(certname string) string { return "choria=" + certname }

var callerRe = regexp.MustCompile(`^[a-z]+=([\w\.\-]+)`)

// CertnameFromCallerID extracts the certname as Choria servers do.
func CertnameFromCallerID(callerid string) (string, bool) {
	m := callerRe.FindStringSubmatch(callerid)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// BroadcastSubject is where a request to every server hosting agent goes.
func BroadcastSubject(collective, agent string) string {
	return collective + ".broadcast.agent." + agent
}

// ServiceSubject is where a load-balanced service request goes.
func ServiceSubject(collective, agent string) string {
	return collective + ".broadcast.service." + agent
}

// NodeSubject is where a request directed at one server goes.
func NodeSubject(collective, identity string) string {
	return collective + ".node." + identity
}

// ReplySubject is <collective>.reply.<md5hex(callerid)>.<requestid>.
func ReplySubject(collective, callerid, requestID string) string {
	sum := md5.Sum([]byte(callerid))
	return fmt.Sprintf("%s.reply.%s.%s", collective, hex.EncodeToString(sum[:]), requestID)
}

// FederationSubject is where federated clients publish for federation cluster.
func FederationSubject(cluster string) string {
	return "choria.federation." + cluster + ".federation"
}

// FederationCollectiveSubject is where servers in a federated collective
// reply and the federation broker listens.
func FederationCollectiveSubject(cluster string) string {
	return "choria.federation." + cluster + ".collective"
}
