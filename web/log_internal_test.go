package web

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestRequestID(t *testing.T) {
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"uuid", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"trace style", "Root=1-67891233-abcdef012345678912345678", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"none", "", false},
		{"65 characters", strings.Repeat("a", 65), false},
		{"a space", "a b", false},
		{"a quote", `a"b`, false},
		{"a newline", "a\nb", false},
		{"not ASCII", "idé", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := requestID([]byte(tt.sent))
			if (got == tt.sent) != tt.kept {
				t.Errorf("requestID(%q) = %q; want kept %v", tt.sent, got, tt.kept)
			}
			if got == "" || len(got) > maxRequestIDLen {
				t.Errorf("requestID(%q) = %q; want a short token", tt.sent, got)
			}
		})
	}
	if a, b := newRequestID(), newRequestID(); a == b {
		t.Errorf("two made ids are both %q", a)
	}
}

func TestRedactQuery(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "appKey=k&since=5", "appKey=k&since=5"},
		{"token", "appKey=k&token=s3cret", "appKey=k&token=REDACTED"},
		{"names that suggest a secret", "access_token=a&client_secret=b&Password=c&api_key=d&sig=e", "access_token=REDACTED&client_secret=REDACTED&Password=REDACTED&api_key=REDACTED&sig=REDACTED"},
		{"encoded name", "%74oken=s3cret", "token=REDACTED"},
		{"values re-escaped", "event=a%26b", "event=a%26b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args fasthttp.Args
			args.Parse(tt.in)
			if got := redactQuery(&args); got != tt.want {
				t.Errorf("redactQuery(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMethodLabel(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "DELETE": "DELETE", "get": "other", "BREW": "other", "": "other"} {
		if got := methodLabel([]byte(in)); got != want {
			t.Errorf("methodLabel(%q) = %q; want %q", in, got, want)
		}
	}
}
