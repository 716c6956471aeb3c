package federation

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/choria-broker/choria-broker/internal/protocol"
)

// Reason says why a message, or one target of it, was dropped. The values
// are the label of choria_federation_dropped_msgs.
type Reason string

// Reasons for a drop.
const (
	MalformedJSON   Reason = "malformed_json"   // not JSON
	UnknownProtocol Reason = "unknown_protocol" // not choria:transport:1
	SchemaViolation Reason = "schema_violation" // a transport without data
	NotFederated    Reason = "not_federated"    // no federation header, or no federation.req
	NoTargets       Reason = "no_targets"       // a request without federation.target
	NoReplyTo       Reason = "no_reply_to"      // a request without reply-to, a reply without federation.reply-to
	BadSubject      Reason = "bad_subject"      // a target that is not a subject one can publish to
	// Misdirected is a request to a subject that is not a request subject,
	// a request whose reply-to is not a reply subject, or a reply to a
	// subject that is not a reply subject: a way to replay a client's
	// signed request to the whole fleet, never something Choria sends.
	Misdirected   Reason = "misdirected"
	QueueFull     Reason = "queue_full"     // the egest side is slower than the ingest side
	SlowConsumer  Reason = "slow_consumer"  // the NATS client's own buffer overflowed
	PublishFailed Reason = "publish_failed" // the egest side is down, or the message too big
)

// Reasons lists every reason, so that every counter exists from the start.
var Reasons = []Reason{MalformedJSON, UnknownProtocol, SchemaViolation, NotFederated, NoTargets, NoReplyTo, BadSubject, Misdirected, QueueFull, SlowConsumer, PublishFailed}

// direction is one of the two pipelines: requests from the federation to
// the collective, replies back.
type direction struct {
	name        string // request or reply, the label of the drop counter
	transformer string // the worker's name in metrics and seen-by hops
	rewrite     func(t *protocol.Transport, cluster string) ([]string, Reason)
	// allowed is the kind of subject this direction may publish to.
	allowed func(subject string) bool
}

var (
	requests = direction{name: "request", transformer: "choria_request_transformer", rewrite: rewriteRequest, allowed: isRequestSubject}
	replies  = direction{name: "reply", transformer: "choria_reply_transformer", rewrite: rewriteReply, allowed: isReplySubject}
)

// rewriteRequest turns a federated request into what the collective's
// servers expect: replies come back to this cluster's collective subject,
// the client's own reply subject travels in the federation header, and
// the targets leave the header to become publish subjects.
func rewriteRequest(t *protocol.Transport, cluster string) ([]string, Reason) {
	f := t.Headers.Federation
	if len(f.Target) == 0 {
		return nil, NoTargets
	}
	if t.Headers.ReplyTo == "" {
		return nil, NoReplyTo
	}
	if !isReplySubject(t.Headers.ReplyTo) {
		return nil, Misdirected
	}
	targets := f.Target
	f.Target = nil
	f.ReplyTo = t.Headers.ReplyTo
	t.Headers.ReplyTo = protocol.FederationCollectiveSubject(cluster)
	return targets, ""
}

// rewriteReply sends a server's reply to the client's saved reply subject
// and removes every trace of federation but the hops.
func rewriteReply(t *protocol.Transport, _ string) ([]string, Reason) {
	to := t.Headers.Federation.ReplyTo
	if to == "" {
		return nil, NoReplyTo
	}

	t.Headers.Federation = nil
	return []string{to}, ""
}

// hop is the seen-by entry a federation broker adds: where the message came
// in, which workers handled it, where it went out.
type hop struct{ in, via, out string }

// via names the workers as go-choria does; i and k are the ingest and
// egest connections, j the transformer worker.
func via(identity, transformer string, i, j, k int) string {
	return identity + " (choria_nats_ingest:" + strconv.Itoa(i) + ", " + transformer + ":" + strconv.Itoa(j) + ", choria_nats_egest:" + strconv.Itoa(k) + ")"
}

// rewritten is the outcome of one message's trip through a direction.
type rewritten struct {
	payload []byte   // the transport to publish, data untouched
	targets []string // publishable subjects
	bad     int      // targets dropped as BadSubject, counted by the caller
}

// transform parses a payload, checks and rewrites its headers, records the
// hop and serialises it again. The data field is copied as it came.
func (d direction) transform(payload []byte, cluster string, h hop) (rewritten, Reason) {
	t, data, r := parse(payload)
	if r != "" {
		return rewritten{}, r
	}
	if f := t.Headers.Federation; f == nil || f.RequestID == "" {
		return rewritten{}, NotFederated
	}
	targets, r := d.rewrite(t, cluster)
	if r != "" {
		return rewritten{}, r
	}
	out := rewritten{targets: targets}
	for i, s := range targets {
		if !publishable(s) {
			out.targets = append(targets[:i:i], good(targets[i:])...)
			out.bad = len(targets) - len(out.targets)
			break
		}
	}
	if len(out.targets) == 0 {
		return out, "" // nothing left to publish; the caller counts out.bad
	}
	for _, s := range out.targets {
		if !d.allowed(s) {
			return rewritten{}, Misdirected
		}
	}
	t.AddHop(h.in, h.via, h.out)
	headers, err := json.Marshal(&t.Headers)
	if err != nil {
		return out, SchemaViolation
	}
	// go-choria's field order, with data exactly as it came.
	const (
		head = `{"protocol":"` + protocol.TransportV1 + `","data":`
		mid  = `,"headers":`
	)
	out.payload = make([]byte, 0, len(head)+len(data)+len(mid)+len(headers)+1)
	out.payload = append(append(append(append(append(out.payload, head...), data...), mid...), headers...), '}')
	return out, ""
}

// wire is a transport whose data stays raw JSON: decoding and re-encoding
// a kilobyte of base64 per message was most of a worker's time.
type wire struct {
	Protocol string                    `json:"protocol"`
	Data     json.RawMessage           `json:"data"`
	Headers  protocol.TransportHeaders `json:"headers"`
}

// parse accepts and refuses exactly what protocol.ParseTransport does, for
// the same reasons, and returns data undecoded.
func parse(payload []byte) (*protocol.Transport, json.RawMessage, Reason) {
	var w wire
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, nil, MalformedJSON
	}
	null := len(w.Data) == 0 || string(w.Data) == "null"
	if !null && w.Data[0] != '"' {
		return nil, nil, MalformedJSON // a number, object or array where a string belongs
	}
	if w.Protocol != protocol.TransportV1 {
		return nil, nil, UnknownProtocol
	}
	if null || string(w.Data) == `""` {
		return nil, nil, SchemaViolation
	}
	return &protocol.Transport{Protocol: w.Protocol, Headers: w.Headers}, w.Data, ""
}

// good keeps the publishable subjects, in order.
func good(subjects []string) []string {
	var out []string
	for _, s := range subjects {
		if publishable(s) {
			out = append(out, s)
		}
	}
	return out
}

// reasonOf maps protocol's drop reasons to ours.
func reasonOf(err error) Reason {
	switch protocol.ReasonOf(err) {
	case protocol.MalformedJSON:
		return MalformedJSON
	case protocol.UnknownProtocol:
		return UnknownProtocol
	}
	return SchemaViolation
}

// isRequestSubject is where Choria sends requests:
// <collective>.broadcast.agent.<agent>, <collective>.broadcast.service.<name>
// or <collective>.node.<identity>.
func isRequestSubject(s string) bool {
	t := strings.SplitN(s, ".", 4)
	switch {
	case len(t) >= 3 && t[1] == "node":
		return t[0] != "" && t[2] != ""
	case len(t) == 4 && t[1] == "broadcast" && (t[2] == "agent" || t[2] == "service"):
		return t[0] != "" && t[3] != ""
	}
	return false
}

// isReplySubject is where Choria clients read replies:
// <collective>.reply.<caller hash>.<request id>.
func isReplySubject(s string) bool {
	t := strings.SplitN(s, ".", 3)
	return len(t) == 3 && t[0] != "" && t[1] == "reply" && t[2] != ""
}

// maxSubject keeps a PUB line well inside nats-server's 4 KiB control line
// limit: a longer one would make the server drop our connection.
const maxSubject = 1024

// publishable accepts a literal NATS subject: no wildcards, no empty
// tokens, nothing that would break the protocol line. Any other target
// would be a way to hurt the egest connection, not to reach a server.
func publishable(s string) bool {
	if s == "" || len(s) > maxSubject || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "*" || tok == ">" {
			return false
		}
	}
	return true
}
