package e2e

import (
	"strings"
	"testing"
)

// oaSegmentPaths are the Segment endpoints with a message each takes.
var oaSegmentPaths = map[string]string{
	"/v1/batch":    `{"batch":[{"type":"track","event":"e","userId":"u","messageId":"oa-b1"},{"type":"launch","userId":"u"}]}`,
	"/v1/track":    `{"event":"e","userId":"u","messageId":"oa-t1"}`,
	"/v1/identify": `{"userId":"u","traits":{"plan":"pro"},"messageId":"oa-i1"}`,
	"/v1/page":     `{"name":"Home","anonymousId":"a","messageId":"oa-p1"}`,
	"/v1/screen":   `{"name":"Main","userId":"u","messageId":"oa-s1"}`,
	"/v1/alias":    `{"userId":"u","previousId":"a","messageId":"oa-a1"}`,
	"/v1/group":    `{"groupId":"g","userId":"u","messageId":"oa-g1"}`,
}

// oaSegment drives every Segment route through each documented answer
// (part of TestOpenAPIE2E).
func oaSegment(t *testing.T, c *oaChecker, s *oaSession) {
	t.Helper()
	basic := func(key string) string { return "Authorization: Basic " + base64Std(key+":") }
	demo := basic(demoApp)
	for path, body := range oaSegmentPaths {
		s.want(200, "POST", path, []byte(body), oaJSON, demo)
		s.want(400, "POST", path, []byte(`{"batch":[`), oaJSON, demo)
		s.want(401, "POST", path, []byte(body), oaJSON)
		s.want(401, "POST", path, []byte(body), oaJSON, basic("no-such-key"))
		s.want(403, "POST", path, []byte(body), oaJSON, oaAdmin)
		big := `{"batch":[{"type":"track","event":"` + strings.Repeat("x", 600<<10) + `"}]}`
		s.want(413, "POST", path, oaGzip(t, []byte(big)), oaJSON, demo, "Content-Encoding: gzip")
		s.want(415, "POST", path, []byte(body), "Content-Type: text/xml", demo)
	}
	s.want(200, "POST", "/v1/batch", []byte(`{"writeKey":"`+demoApp+`","batch":[]}`), oaJSON)
	s.want(200, "GET", "/cluster-info", nil, demo)
	s.want(401, "GET", "/cluster-info", nil)
	s.want(403, "GET", "/cluster-info", nil, oaAdmin)

	// 429: an app limited to 2 messages, then one per 1,000 s.
	func() {
		s, stop := c.serverSession(t, oaRateConfig)
		defer stop()
		limited := basic("oa-limited-app")
		s.want(200, "POST", "/v1/batch", []byte(`{"batch":[{"type":"track","event":"e","userId":"u"},{"type":"track","event":"e","userId":"u"}]}`), oaJSON, limited)
		for path, body := range oaSegmentPaths {
			s.want(429, "POST", path, []byte(body), oaJSON, limited)
		}
	}()

	// 503: a disk that the store sees nearly full.
	func() {
		s, stop := c.serverSession(t, oaDiskConfig, oaFullDisk())
		defer stop()
		for path, body := range oaSegmentPaths {
			s.want(503, "POST", path, []byte(body), oaJSON, demo)
		}
	}()
}
