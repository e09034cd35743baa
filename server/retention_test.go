package server

import (
	"reflect"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"trove/config"
)

// TestRetentionPass checks the pass a node's config makes: the global
// retention for apps that set none, an app's own otherwise, none at all
// when everything is kept forever, and the same pass after the stream.
func TestRetentionPass(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	cfg := config.Default()
	if _, ok := retentionPassOf(&cfg, at); ok {
		t.Error("a config that keeps everything forever published a pass")
	}
	cfg.Apps = []config.App{{Name: "a", AppKey: "own", Retention: config.Duration(30 * 24 * time.Hour)}, {Name: "b", AppKey: "inherits"}}
	for _, global := range []time.Duration{0, 400 * 24 * time.Hour} {
		cfg.Retention = config.Duration(global)
		p, ok := retentionPassOf(&cfg, at)
		if !ok {
			t.Fatalf("global %v: no pass", global)
		}
		entry, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRetentionPass(entry)
		if err != nil {
			t.Fatalf("global %v: %v (%s)", global, err, entry)
		}
		for app, want := range map[string]time.Duration{"own": 30 * 24 * time.Hour, "inherits": global, "made-through-the-api": global} {
			if d := got.keep(app); d != want {
				t.Errorf("global %v: retention of %q = %v; want %v", global, app, d, want)
			}
		}
		if !got.At.Equal(at) {
			t.Errorf("the pass's time: %v; want %v", got.At, at)
		}
	}
	for _, bad := range []string{``, `{}`, `{"at":"2026-12-07T10:00:00Z","keep":-1}`, `{"at":"2026-12-07T10:00:00Z","apps":{"x":0}}`, `[1]`} {
		if _, err := decodeRetentionPass([]byte(bad)); err == nil {
			t.Errorf("decodeRetentionPass(%q) accepted it", bad)
		}
	}
}

// FuzzDecodeRetentionPass: a stream entry never panics the decoder, and a
// pass it accepts encodes and decodes to the same pass.
func FuzzDecodeRetentionPass(f *testing.F) {
	f.Add([]byte(`{"at":"2026-12-07T10:00:00Z","keep":86400000000000,"apps":{"a":3600000000000}}`))
	f.Add([]byte(`{"at":"2026-12-07T10:00:00Z","keep":0}`))
	f.Fuzz(func(t *testing.T, entry []byte) {
		p, err := decodeRetentionPass(entry)
		if err != nil {
			return
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := decodeRetentionPass(again)
		if err != nil {
			t.Fatalf("%s decoded, but not as %s: %v", entry, again, err)
		}
		if !q.At.Equal(p.At) || q.Keep != p.Keep || !reflect.DeepEqual(q.Apps, p.Apps) && len(q.Apps)+len(p.Apps) > 0 {
			t.Fatalf("%s: %+v, then %+v", entry, p, q)
		}
	})
}
