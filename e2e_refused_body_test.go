package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestE2ERefusedBodyAnswerArrives: a body refused as too large from its
// declared length, before it is read, must still let the client read the
// 413: the server reads the rest of a modest body first, since closing on
// unread bytes makes the kernel reset the connection, and the reset can
// destroy the answer before the client reads it.
func TestE2ERefusedBodyAnswerArrives(t *testing.T) {
	addr, _, _ := startServer(t, testConfig)
	body := `{"name":"` + strings.Repeat("a", 70<<10) + `"}`
	for i := range 200 {
		req, _ := http.NewRequest("POST", "http://"+addr+"/admin/apps", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminSecret)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v; want a 413", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("request %d: status %d; want 413", i, resp.StatusCode)
		}
	}
}
