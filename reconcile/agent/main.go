package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Handle serves one request.
func Handle(ctx context.Context, req *Request) *Response {
	resp := &Response{Protocol: ProtocolVersion}
	if req.Protocol != ProtocolVersion {
		resp.Error = fmt.Sprintf("agent speaks protocol %d, request is %d: upgrade hermesctl or let it re-install the agent", ProtocolVersion, req.Protocol)
		return resp
	}
	if len(req.Steps) > 0 {
		resp.Steps = RunSteps(ctx, req.Steps)
	}
	if req.Observe != nil {
		w, key, err := Observe(ctx, req.Observe)
		if err != nil {
			resp.Error = "observe: " + err.Error()
			return resp
		}
		resp.Observed, resp.FingerprintKey = w, key
	}
	return resp
}

// Main is the agent program: `hermes-agent run` reads one JSON Request on stdin and writes
// one JSON Response on stdout. The exit status is 0 whenever a response was written
// (failures are inside it).
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "run" {
		fmt.Fprintln(stderr, "usage: hermes-agent run   (reads a JSON request on stdin; started by hermesctl)")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	var req Request
	if err := json.NewDecoder(stdin).Decode(&req); err != nil {
		fmt.Fprintf(stderr, "hermes-agent: read request: %v\n", err)
		return 3
	}
	if err := json.NewEncoder(stdout).Encode(Handle(ctx, &req)); err != nil {
		fmt.Fprintf(stderr, "hermes-agent: write response: %v\n", err)
		return 3
	}
	return 0
}
