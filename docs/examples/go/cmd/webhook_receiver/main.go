// Command webhook_receiver is a tiny HTTP server that verifies relaygate's Standard Webhooks
// signatures: 204 for a genuine event, 401 for anything else.
// Usage: RELAYGATE_WEBHOOK_SECRET=whsec_... PORT=8000 go run ./cmd/webhook_receiver
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

const tolerance = 5 * time.Minute

// verify returns nil when one of the "v1,<sig>" signatures matches and the timestamp is fresh.
func verify(secret string, body []byte, msgID, timestamp, signatures string, now time.Time) error {
	if msgID == "" || timestamp == "" || signatures == "" {
		return errors.New("missing webhook headers")
	}
	unix, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return errors.New("timestamp too far from now")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("bad secret")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID + "." + timestamp + "."))
	mac.Write(body)
	expected := mac.Sum(nil)
	// During a secret rotation there are several signatures, separated by spaces.
	for _, candidate := range strings.Fields(signatures) {
		version, sig, found := strings.Cut(candidate, ",")
		if !found || version != "v1" {
			continue
		}
		given, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(given, expected) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

func main() {
	secret := os.Getenv("RELAYGATE_WEBHOOK_SECRET")
	if secret == "" {
		log.Fatal("set RELAYGATE_WEBHOOK_SECRET to the endpoint secret (whsec_...)")
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8000"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20)) // the raw bytes: verify before decoding
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		msgID := r.Header.Get("webhook-id")
		if err := verify(secret, body, msgID, r.Header.Get("webhook-timestamp"),
			r.Header.Get("webhook-signature"), time.Now()); err != nil {
			fmt.Printf("rejected: %v\n", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var event struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &event); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		fmt.Printf("verified %s id=%s\n", event.Type, msgID) // de-duplicate by msgID: retries reuse it
		w.WriteHeader(http.StatusNoContent)
	})
	listener, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", listener.Addr())
	log.Fatal(http.Serve(listener, nil))
}
