package protocol

import (
	"errors"
	"fmt"
)

// DropReason says why a received message was dropped without a reply.
// Servers count drops by reason.
type DropReason string

// Reasons a message is dropped.
const (
	MalformedJSON      DropReason = "malformed json"
	UnknownProtocol    DropReason = "unknown protocol"
	SchemaViolation    DropReason = "schema violation"
	InvalidRequestID   DropReason = "invalid request id"
	MissingFilterKey   DropReason = "missing filter key"
	BadSignature       DropReason = "bad signature"
	UntrustedCert      DropReason = "untrusted certificate"
	CertnameNotAllowed DropReason = "certname not allowed"
	TTLExpired         DropReason = "ttl expired"
	UnknownCollective  DropReason = "unknown collective"
	UnknownAgent       DropReason = "unknown agent"
	FilterMismatch     DropReason = "filter mismatch"
)

// DropReasons lists every reason, in a stable order for reports.
var DropReasons = []DropReason{MalformedJSON, UnknownProtocol, SchemaViolation, InvalidRequestID, MissingFilterKey, BadSignature, UntrustedCert, CertnameNotAllowed, TTLExpired, UnknownCollective, UnknownAgent, FilterMismatch}

// DropError is a message that must be dropped, and why.
type DropError struct {
	Reason DropReason
	Detail string
}

func (e *DropError) Error() string { return string(e.Reason) + ": " + e.Detail }

func dropf(r DropReason, format string, a ...any) error {
	return &DropError{Reason: r, Detail: fmt.Sprintf(format, a...)}
}

// ReasonOf returns the drop reason of err, SchemaViolation for other errors.
func ReasonOf(err error) DropReason {
	var de *DropError
	if errors.As(err, &de) {
		return de.Reason
	}
	return SchemaViolation
}
