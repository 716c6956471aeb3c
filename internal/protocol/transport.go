package protocol

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Transport is the outer envelope on the wire. Only Data is signed or
// hashed; federation brokers rewrite the headers.
type Transport struct {
	Protocol string           `json:"protocol"`
	Data     string           `json:"data"`
	Headers  TransportHeaders `json:"headers"`
}

// TransportHeaders in go-choria's field order.
type TransportHeaders struct {
	ReplyTo    string             `json:"reply-to,omitempty"`
	Sender     string             `json:"mc_sender,omitempty"`
	SeenBy     [][3]string        `json:"seen-by,omitempty"`
	Federation *FederationHeaders `json:"federation,omitempty"`
}

// FederationHeaders mark a federated message; its presence is what
// "federated" means.
type FederationHeaders struct {
	RequestID string   `json:"req,omitempty"`
	ReplyTo   string   `json:"reply-to,omitempty"`
	Target    []string `json:"target,omitempty"`
}

// NewTransport wraps a secure message's JSON bytes.
func NewTransport(secure []byte, sender string) *Transport {
	return &Transport{
		Protocol: TransportV1,
		Data:     base64.StdEncoding.EncodeToString(secure),
		Headers:  TransportHeaders{Sender: sender},
	}
}

// ParseTransport decodes a NATS payload; anything but a v1 transport with
// a base64 body is an error.
func ParseTransport(payload []byte) (*Transport, error) {
	var t Transport
	if err := json.Unmarshal(payload, &t); err != nil {
		return nil, dropf(MalformedJSON, "transport: %v", err)
	}
	if t.Protocol != TransportV1 {
		return nil, dropf(UnknownProtocol, "transport protocol %q", t.Protocol)
	}
	if t.Data == "" {
		return nil, dropf(SchemaViolation, "transport has no data")
	}
	return &t, nil
}

// Body is the base64-decoded data: the secure request or reply JSON.
func (t *Transport) Body() ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(t.Data)
	if err != nil {
		return nil, dropf(MalformedJSON, "transport data is not base64: %v", err)
	}
	return b, nil
}

// Federated reports whether the message carries federation headers.
func (t *Transport) Federated() bool { return t.Headers.Federation != nil }

// AddHop records a network hop as every Choria publisher does:
// [connected broker URL, processor, connected broker URL].
func (t *Transport) AddHop(in, processor, out string) {
	t.Headers.SeenBy = append(t.Headers.SeenBy, [3]string{in, processor, out})
}

// Marshal is the JSON for the wire.
func (t *Transport) Marshal() ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	return b, nil
}
