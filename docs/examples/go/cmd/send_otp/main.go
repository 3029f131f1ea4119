// Command send_otp texts a one-time code (POST /v1/otp/send).
// Usage: RELAYGATE_TOKEN=rgat_... go run ./cmd/send_otp +998901234567 [purpose]
package main

import (
	"fmt"
	"os"

	"example.com/relaygate-examples/relaygate"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: send_otp <to> [purpose]")
		os.Exit(2)
	}
	purpose := "login"
	if len(os.Args) == 3 {
		purpose = os.Args[2]
	}
	var otp struct {
		OtpID            string `json:"otp_id"`
		Status           string `json:"status"`
		ExpiresInSeconds int    `json:"expires_in_seconds"`
	}
	body := map[string]any{"to": os.Args[1], "purpose": purpose, "expires_in_seconds": 300}
	if err := relaygate.FromEnv().Do("POST", "/v1/otp/send", body, nil, &otp); err != nil {
		relaygate.Exit(err)
	}
	fmt.Printf("otp_id=%s status=%s expires_in_seconds=%d\n", otp.OtpID, otp.Status, otp.ExpiresInSeconds)
}
