// Command verify_otp checks a code (POST /v1/otp/verify); exit status 0 only on "success".
// Usage: RELAYGATE_TOKEN=rgat_... go run ./cmd/verify_otp otp_01H... 123456
package main

import (
	"fmt"
	"os"

	"example.com/relaygate-examples/relaygate"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: verify_otp <otp_id> <code>")
		os.Exit(2)
	}
	var result struct {
		Status       string `json:"status"`
		AttemptsLeft int    `json:"attempts_left"`
		Reason       string `json:"reason"`
	}
	body := map[string]string{"otp_id": os.Args[1], "code": os.Args[2]}
	if err := relaygate.FromEnv().Do("POST", "/v1/otp/verify", body, nil, &result); err != nil {
		relaygate.Exit(err)
	}
	line := fmt.Sprintf("status=%s attempts_left=%d", result.Status, result.AttemptsLeft)
	if result.Reason != "" {
		line += " reason=" + result.Reason
	}
	fmt.Println(line)
	if result.Status != "success" {
		os.Exit(1)
	}
}
