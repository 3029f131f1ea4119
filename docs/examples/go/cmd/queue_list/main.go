// Command queue_list queues a whole recipient list, every number its own message
// (POST /v1/recipient-lists/queue).
// Usage: RELAYGATE_TOKEN=rgat_... go run ./cmd/queue_list lst_01HV... "Hi {name}, our {city} shop is open"
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
		fmt.Fprintln(os.Stderr, "usage: queue_list <list_id> <message>")
		os.Exit(2)
	}
	key := make([]byte, 16)
	if _, err := rand.Read(key); err != nil {
		relaygate.Exit(err)
	}
	var answer struct {
		BatchID string `json:"batch_id"`
		Status  string `json:"status"`
		Queued  int    `json:"queued"`
		Skipped []struct {
			RecipientID string `json:"recipient_id"`
			Phone       string `json:"phone"`
			Reason      string `json:"reason"`
		} `json:"skipped"`
		SkippedTotal int    `json:"skipped_total"`
		QueuedAt     string `json:"queued_at"`
	}
	body := map[string]any{"list_id": os.Args[1], "message": os.Args[2]}
	// A retry with the same Idempotency-Key never queues the list twice.
	headers := map[string]string{"Idempotency-Key": hex.EncodeToString(key)}
	if err := relaygate.FromEnv().Do("POST", "/v1/recipient-lists/queue", body, headers, &answer); err != nil {
		relaygate.Exit(err)
	}
	fmt.Printf("%s batch_id=%s queued=%d skipped=%d\n", answer.Status, answer.BatchID, answer.Queued, answer.SkippedTotal)
	for _, s := range answer.Skipped {
		fmt.Printf("  skipped %s (%s)\n", s.Phone, s.Reason)
	}
}
