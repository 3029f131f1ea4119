// Command health calls GET /v1/health (no token). Usage: go run ./cmd/health
package main

import (
	"fmt"

	"example.com/relaygate-examples/relaygate"
)

func main() {
	var health struct {
		Status   string `json:"status"`
		Database string `json:"database"`
		Version  string `json:"version"`
	}
	if err := relaygate.FromEnv().Do("GET", "/v1/health", nil, nil, &health); err != nil {
		relaygate.Exit(err)
	}
	fmt.Printf("status=%s database=%s version=%s\n", health.Status, health.Database, health.Version)
}
