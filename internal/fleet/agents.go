package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Agents every emulated node hosts, as a stock go-choria server does.
var standardAgents = []string{"discovery", "rpcutil"}

// rpcRequest is an mcorpc request payload.
type rpcRequest struct {
	Agent  string          `json:"agent"`
	Action string          `json:"action"`
	Data   json.RawMessage `json:"data"`
}

// rpcReply is an mcorpc reply body, key order as go-choria's.
type rpcReply struct {
	Action     string `json:"action"`
	StatusCode int    `json:"statuscode"`
	StatusMsg  string `json:"statusmsg"`
	Data       any    `json:"data"`
}

// mcorpc status codes.
const (
	rpcOK            = 0
	rpcUnknownAction = 2
	rpcInvalidData   = 4
)

// handle answers a request payload for agent; ok false means no reply at
// all, as servers stay silent for discovery errors and unknown agents.
func (n *node) handle(agent string, payload []byte, now time.Time) (body []byte, ok bool) {
	switch agent {
	case "discovery":
		// A real server answers anything that contains "ping".
		if bytes.Contains(payload, []byte("ping")) {
			return []byte("pong"), true
		}
		return nil, false
	case "rpcutil":
		return n.rpc(payload, rpcutil, now), true
	default:
		if n.hasAgent(agent) {
			return n.rpc(payload, emulatedAgent, now), true
		}
		return nil, false
	}
}

type action func(n *node, act string, data json.RawMessage, now time.Time) rpcReply

func (n *node) rpc(payload []byte, handler action, now time.Time) []byte {
	var req rpcRequest
	var reply rpcReply
	if err := json.Unmarshal(payload, &req); err != nil {
		reply = rpcReply{StatusCode: rpcInvalidData, StatusMsg: "Could not process request: " + err.Error(), Data: map[string]any{}}
	} else {
		reply = handler(n, req.Action, req.Data, now)
		reply.Action = req.Action
	}
	b, _ := json.Marshal(reply) // only maps, strings and numbers
	return b
}

func ok(data any) rpcReply { return rpcReply{StatusCode: rpcOK, StatusMsg: "OK", Data: data} }

func unknownAction(agent, act string) rpcReply {
	return rpcReply{StatusCode: rpcUnknownAction, StatusMsg: fmt.Sprintf("Unknown action %s for agent %s", act, agent), Data: map[string]any{}}
}

// rpcutil implements the rpcutil actions operators use to check a fleet.
func rpcutil(n *node, act string, data json.RawMessage, now time.Time) rpcReply {
	switch act {
	case "ping":
		return ok(map[string]any{"pong": now.Unix()})
	case "collective_info":
		return ok(map[string]any{"main_collective": n.collectives[0], "collectives": n.collectives})
	case "inventory":
		return ok(map[string]any{
			"agents": n.agents, "facts": n.facts, "classes": n.classes,
			"version": "emulated", "data_plugins": []string{},
			"main_collective": n.collectives[0], "collectives": n.collectives,
		})
	case "agent_inventory":
		var list []map[string]any
		for _, a := range n.agents {
			list = append(list, map[string]any{"agent": a, "name": a, "version": "emulated"})
		}
		return ok(map[string]any{"agents": list})
	case "get_fact":
		var in struct {
			Fact string `json:"fact"`
		}
		if err := json.Unmarshal(data, &in); err != nil || in.Fact == "" {
			return rpcReply{StatusCode: 3, StatusMsg: "Missing data: fact", Data: map[string]any{}}
		}
		return ok(map[string]any{"fact": in.Fact, "value": lookupFact(n.facts, in.Fact)})
	}
	return unknownAction("rpcutil", act)
}

// emulatedAgent is what extra --agents host, as choria-emulator's
// emulated agents did: generate answers {"size": n} with n digits.
func emulatedAgent(n *node, act string, data json.RawMessage, _ time.Time) rpcReply {
	if act != "generate" {
		return unknownAction("emulated", act)
	}
	var in struct {
		Size int `json:"size"`
	}
	if err := json.Unmarshal(data, &in); err != nil || in.Size < 0 || in.Size > 1<<20 {
		return rpcReply{StatusCode: rpcInvalidData, StatusMsg: "Invalid data: size must be 0 to 1048576", Data: map[string]any{}}
	}
	return ok(map[string]any{"message": strings.Repeat("0123456789", in.Size/10+1)[:in.Size]})
}

// lookupFact follows a dotted path into nested facts.
func lookupFact(facts map[string]any, path string) any {
	var cur any = facts
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}
