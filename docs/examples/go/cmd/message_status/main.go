// Command message_status shows where a message is (GET /v1/messages/status).
// Usage: RELAYGATE_TOKEN=rgat_... go run ./cmd/message_status req_01H...
package main

import (
	"fmt"
	"net/url"
	"os"

	"example.com/relaygate-examples/relaygate"
)

func orDash(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: message_status <request_id>")
		os.Exit(2)
	}
	var m struct {
		Status        string  `json:"status"`
		Attempts      int     `json:"attempts"`
		DeviceName    *string `json:"device_name"`
		FailureReason *string `json:"failure_reason"`
	}
	path := "/v1/messages/status?" + url.Values{"request_id": {os.Args[1]}}.Encode()
	if err := relaygate.FromEnv().Do("GET", path, nil, nil, &m); err != nil {
		relaygate.Exit(err)
	}
	fmt.Printf("status=%s attempts=%d device=%s failure_reason=%s\n",
		m.Status, m.Attempts, orDash(m.DeviceName), orDash(m.FailureReason))
}
