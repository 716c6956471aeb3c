package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/choria-broker/choria-broker/internal/protocol/filter"
)

// SecureRequest carries a request and its signature. Message is the
// request JSON exactly as signed.
type SecureRequest struct {
	Protocol  string `json:"protocol"`
	Message   string `json:"message"`
	Signature string `json:"signature"`
	PubCert   string `json:"pubcert"`
}

// Request in go-choria's key order.
type Request struct {
	Protocol string          `json:"protocol"`
	Message  string          `json:"message"`
	Envelope RequestEnvelope `json:"envelope"`
}

// RequestEnvelope says who asks what of whom.
type RequestEnvelope struct {
	RequestID  string         `json:"requestid"`
	SenderID   string         `json:"senderid"`
	CallerID   string         `json:"callerid"`
	Collective string         `json:"collective"`
	Agent      string         `json:"agent"`
	TTL        int            `json:"ttl"`
	Time       int64          `json:"time"`
	Filter     *filter.Filter `json:"filter"`
}

// SecureReply carries a reply and the SHA-256 of it; v1 replies are not signed.
type SecureReply struct {
	Protocol string `json:"protocol"`
	Message  string `json:"message"`
	Hash     string `json:"hash"`
}

// Reply in go-choria's key order.
type Reply struct {
	Protocol string        `json:"protocol"`
	Message  string        `json:"message"`
	Envelope ReplyEnvelope `json:"envelope"`
}

// ReplyEnvelope says who answered which request.
type ReplyEnvelope struct {
	RequestID string `json:"requestid"`
	SenderID  string `json:"senderid"`
	Agent     string `json:"agent"`
	Time      int64  `json:"time"`
}

// Payload decodes a request's message: base64 when it decodes, else the
// string as is, as Choria servers do (legacy Ruby clients send raw text).
func (r *Request) Payload() []byte {
	if b, err := base64.StdEncoding.DecodeString(r.Message); err == nil {
		return b
	}
	return []byte(r.Message)
}

// ParseSecureRequest decodes and checks the schema of a secure request.
func ParseSecureRequest(body []byte) (*SecureRequest, error) {
	var sr SecureRequest
	if err := json.Unmarshal(body, &sr); err != nil {
		return nil, dropf(MalformedJSON, "secure request: %v", err)
	}
	switch {
	case sr.Protocol != SecureRequestV1:
		return nil, dropf(UnknownProtocol, "secure request protocol %q", sr.Protocol)
	case sr.Message == "":
		return nil, dropf(SchemaViolation, "secure request has no message")
	case sr.Signature == "":
		return nil, dropf(SchemaViolation, "secure request has no signature")
	case sr.PubCert == "":
		return nil, dropf(SchemaViolation, "secure request has no pubcert")
	}
	return &sr, nil
}

// requiredFilterKeys are the filter keys the v1 schema requires (agent is optional).
var requiredFilterKeys = []string{"fact", "cf_class", "identity", "compound"}

var factOperators = map[string]bool{">=": true, "<=": true, "<": true, ">": true, "!=": true, "==": true, "=~": true}

// ParseRequest decodes a request and enforces the v1 schema constraints
// real servers enforce: 32-character request ID, TTL of at least 30,
// a filter object with its required keys, non-empty identity fields.
func ParseRequest(data []byte) (*Request, error) {
	var raw struct {
		Envelope struct {
			Filter json.RawMessage `json:"filter"`
		} `json:"envelope"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, dropf(MalformedJSON, "request: %v", err)
	}
	var keys map[string]json.RawMessage
	f := bytes.TrimSpace(raw.Envelope.Filter)
	if len(f) == 0 || f[0] != '{' {
		return nil, dropf(MissingFilterKey, "request filter is not an object")
	}
	if err := json.Unmarshal(f, &keys); err != nil {
		return nil, dropf(MalformedJSON, "request filter: %v", err)
	}
	for _, k := range requiredFilterKeys {
		if v, ok := keys[k]; !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return nil, dropf(MissingFilterKey, "request filter has no %q", k)
		}
	}
	var r Request
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, dropf(MalformedJSON, "request: %v", err)
	}
	e := &r.Envelope
	switch {
	case r.Protocol != RequestV1:
		return nil, dropf(UnknownProtocol, "request protocol %q", r.Protocol)
	case len(e.RequestID) != 32:
		return nil, dropf(InvalidRequestID, "request id %q has %d characters, want 32", e.RequestID, len(e.RequestID))
	case r.Message == "":
		return nil, dropf(SchemaViolation, "request has no message")
	case e.CallerID == "", e.Collective == "", e.Agent == "":
		return nil, dropf(SchemaViolation, "request envelope needs callerid, collective and agent")
	case e.TTL < MinTTL:
		return nil, dropf(SchemaViolation, "request ttl %d is below %d", e.TTL, MinTTL)
	}
	for _, ff := range e.Filter.Fact {
		if ff.Value == "" || !factOperators[ff.Operator] {
			return nil, dropf(SchemaViolation, "fact filter %q %q %q is not valid", ff.Fact, ff.Operator, ff.Value)
		}
	}
	return &r, nil
}

// WithinTTL is the server's TTL check: now-ttl < time < now+ttl, in seconds.
func (r *Request) WithinTTL(now time.Time) bool {
	n, ttl := now.Unix(), int64(r.Envelope.TTL)
	return n-ttl < r.Envelope.Time && r.Envelope.Time < n+ttl
}

// NewReply builds the secure reply JSON for a request, as a server does.
func NewReply(req *Request, sender string, body []byte, now time.Time) ([]byte, error) {
	reply, err := json.Marshal(&Reply{
		Protocol: ReplyV1,
		Message:  string(body),
		Envelope: ReplyEnvelope{RequestID: req.Envelope.RequestID, SenderID: sender, Agent: req.Envelope.Agent, Time: now.Unix()},
	})
	if err != nil {
		return nil, fmt.Errorf("reply: %w", err)
	}
	sum := sha256.Sum256(reply)
	return json.Marshal(&SecureReply{Protocol: SecureReplyV1, Message: string(reply), Hash: base64.StdEncoding.EncodeToString(sum[:])})
}

// ParseSecureReply decodes a secure reply and checks its hash.
func ParseSecureReply(body []byte) (*SecureReply, *Reply, error) {
	var sr SecureReply
	if err := json.Unmarshal(body, &sr); err != nil {
		return nil, nil, dropf(MalformedJSON, "secure reply: %v", err)
	}
	if sr.Protocol != SecureReplyV1 {
		return nil, nil, dropf(UnknownProtocol, "secure reply protocol %q", sr.Protocol)
	}
	sum := sha256.Sum256([]byte(sr.Message))
	if base64.StdEncoding.EncodeToString(sum[:]) != sr.Hash {
		return nil, nil, dropf(BadSignature, "secure reply hash does not match its message")
	}
	var r Reply
	if err := json.Unmarshal([]byte(sr.Message), &r); err != nil {
		return nil, nil, dropf(MalformedJSON, "reply: %v", err)
	}
	return &sr, &r, nil
}
