// Package relaygate is a small client for the relaygate HTTP API on net/http and
// encoding/json only: base URL and token from the environment, and an *APIError carrying our
// error code and message for every refusal.
package relaygate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"
)

// APIError is relaygate's error shape: {"ok": false, "error": {"code", "message", "details"}}.
type APIError struct {
	HTTPStatus int
	Code       string         `json:"code"`
	Message    string         `json:"message"`
	Details    map[string]any `json:"details"`
}

func (e *APIError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Client talks to one gateway with one token.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// FromEnv reads RELAYGATE_BASE_URL (default http://127.0.0.1:8080/api) and RELAYGATE_TOKEN.
func FromEnv() *Client {
	base := os.Getenv("RELAYGATE_BASE_URL")
	if base == "" {
		base = "http://127.0.0.1:8080/api"
	}
	return &Client{BaseURL: base, Token: os.Getenv("RELAYGATE_TOKEN"), HTTP: &http.Client{Timeout: 15 * time.Second}}
}

// Do sends body (JSON-encoded when not nil) and decodes a successful answer into out.
func (c *Client) Do(method, path string, body any, headers map[string]string, out any) error {
	var payload *bytes.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		payload = bytes.NewReader(raw)
	} else {
		payload = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, c.BaseURL+path, payload)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var envelope struct {
		OK    bool      `json:"ok"`
		Error *APIError `json:"error"`
	}
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return fmt.Errorf("HTTP %d: unreadable answer: %w", resp.StatusCode, err)
	}
	if err := json.Unmarshal(raw, &envelope); err != nil {
		return err
	}
	if !envelope.OK {
		if envelope.Error == nil {
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
		}
		envelope.Error.HTTPStatus = resp.StatusCode
		return envelope.Error
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// Exit prints err as "error <code>: <message>" (or "error: <err>") to stderr and exits 1.
func Exit(err error) {
	if apiErr, ok := err.(*APIError); ok {
		fmt.Fprintf(os.Stderr, "error %s: %s\n", apiErr.Code, apiErr.Message)
		if apiErr.Details != nil {
			details, _ := json.Marshal(apiErr.Details)
			fmt.Fprintln(os.Stderr, string(details))
		}
	} else {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
	}
	os.Exit(1)
}
