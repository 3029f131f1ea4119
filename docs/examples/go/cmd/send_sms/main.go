// Command send_sms queues one SMS (POST /v1/sms/send).
// Usage: RELAYGATE_TOKEN=rgat_... go run ./cmd/send_sms +998901234567 "Your order #42 shipped"
package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"

	"example.com/relaygate-examples/relaygate"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: send_sms <to> <message>")
		os.Exit(2)
	}
	key := make([]byte, 16)
	if _, err := rand.Read(key); err != nil {
		relaygate.Exit(err)
	}
	var answer struct {
		RequestID string `json:"request_id"`
		Status    string `json:"status"`
		QueuedAt  string `json:"queued_at"`
	}
	body := map[string]any{"to": os.Args[1], "message": os.Args[2]}
	// A retry with the same Idempotency-Key never sends a second SMS.
	headers := map[string]string{"Idempotency-Key": hex.EncodeToString(key)}
	if err := relaygate.FromEnv().Do("POST", "/v1/sms/send", body, headers, &answer); err != nil {
		relaygate.Exit(err)
	}
	fmt.Printf("%s request_id=%s\n", answer.Status, answer.RequestID)
}
