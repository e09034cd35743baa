package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"trove/cli"

	"github.com/goccy/go-json"
)

// schemaConfig is testConfig with schema_mode "reject" for the demo app
// and "warn" for the other one.
var schemaConfig = strings.NewReplacer(
	`app_key = "`+demoApp+`"`, `app_key = "`+demoApp+`"`+"\nschema_mode = \"reject\"",
	`app_key = "`+otherApp+`"`, `app_key = "`+otherApp+`"`+"\nschema_mode = \"warn\"",
).Replace(testConfig)

// checkoutSchema requires a numeric revenue and a currency of three
// capital letters.
const checkoutSchema = `{"type":"object","required":["attributes"],"properties":{"attributes":{"type":"object",
 "required":["revenue","currency"],"properties":{"revenue":{"type":"number"},"currency":{"type":"string","pattern":"^[A-Z]{3}$"}}}}}`

func checkout(app, messageID, attrs string) string {
	return `{"type":"event","event":"Checkout Completed","userId":"u1","eventTime":"2026-11-20T10:00:00Z","appKey":"` + app + `","messageId":"` + messageID + `","attributes":` + attrs + `}`
}

const schemaPath = "/admin/apps/" + demoApp + "/schemas/Checkout%20Completed"

type schemaAnswer struct {
	Event   string          `json:"event"`
	Version uint64          `json:"version"`
	Schema  json.RawMessage `json:"schema"`
}

// quarantineLines returns the demo app's quarantine, as the export lists it.
func quarantineLines(t *testing.T, addr, query string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range exportFrom(t, addr, "/v1/export/rejected", demoApp, query).lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("quarantine line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func replay(t *testing.T, addr, query string) (res struct{ Replayed, StillRejected, Duplicates int }) {
	t.Helper()
	adminCall(t, addr, adminSecret, "POST", "/admin/quarantine/replay?appKey="+demoApp+query, "", http.StatusOK, &res)
	return res
}

// TestSchemaContracts declares a contract, sends conforming and violating
// events in reject and warn modes, through the Events API and the Segment
// endpoint, changes the contract, replays the quarantine, and compares the
// exports and the quarantine with what each step must leave.
func TestSchemaContracts(t *testing.T) {
	addr := startServer(t, schemaConfig).addr
	before := scrape(t, addr)

	var s schemaAnswer
	adminCall(t, addr, adminSecret, "PUT", schemaPath, checkoutSchema, http.StatusOK, &s)
	if s.Event != "Checkout Completed" || s.Version != 1 {
		t.Fatalf("PUT: got %+v; want version 1 of Checkout Completed", s)
	}
	r := adminCall(t, addr, adminSecret, "PUT", schemaPath, `{"type":"objekt"}`, http.StatusBadRequest, nil)
	if a := decodeAnswer(t, r, http.StatusBadRequest); a.Field != "schema" || !strings.Contains(a.Message, "/type") {
		t.Errorf("a schema that does not compile: %s; want field schema and a message naming /type", r.body)
	}
	var list struct {
		SchemaMode string         `json:"schemaMode"`
		Schemas    []schemaAnswer `json:"schemas"`
	}
	adminCall(t, addr, adminSecret, "GET", "/admin/apps/"+demoApp+"/schemas", "", http.StatusOK, &list)
	if list.SchemaMode != "reject" || len(list.Schemas) != 1 || list.Schemas[0].Version != 1 {
		t.Errorf("GET schemas: %+v; want schema_mode reject and version 1 of one contract", list)
	}

	// reject: the violating event is named by the JSON pointer of its
	// first violation and quarantined; the other is stored.
	body := "[" + checkout(demoApp, "ok-1", `{"revenue":12.5,"currency":"EUR"}`) + "," +
		checkout(demoApp, "bad-1", `{"revenue":"12","currency":"eur"}`) + "]"
	if a := decodeAnswer(t, postEvents(t, addr, body), http.StatusAccepted); a.Accepted != 1 || a.Rejected != 1 ||
		len(a.Errors) != 1 || a.Errors[0].Field != "/attributes/revenue" || !strings.Contains(a.Errors[0].Message, "expected number, got string") {
		t.Errorf("reject mode: %+v; want 1 accepted, bad-1 rejected at /attributes/revenue, expected number", a)
	}
	// validate=1 applies the contract and stores nothing.
	r = request(t, "POST", "http://"+addr+"/v1/events?validate=1", strings.NewReader(checkout(demoApp, "bad-v", `{"revenue":1}`)), jsonType)
	if a := decodeAnswer(t, r, http.StatusBadRequest); a.Field != "/attributes/currency" || !strings.Contains(a.Message, "is required") {
		t.Errorf("validate=1 of a violating event: %s; want 400 naming /attributes/currency", r.body)
	}
	// The Segment endpoint feeds the same check.
	r = segmentPost(t, addr, "/v1/track", []byte(`{"userId":"u9","event":"Checkout Completed","messageId":"seg-1","timestamp":"2026-11-20T10:00:00Z","properties":{"revenue":3}}`))
	if !strings.Contains(string(r.body), "/attributes/currency") {
		t.Errorf("/v1/track with a violating event: %d %s; want its error at /attributes/currency", r.status, r.body)
	}
	// warn: stored as sent, with a warning.
	r = postEvents(t, addr, checkout(otherApp, "warn-1", `{"revenue":"x"}`), jsonType, "Authorization: Bearer "+otherSecret)
	var warned struct {
		Accepted int `json:"accepted"`
		Warnings []struct {
			Index *int   `json:"index"`
			Field string `json:"field"`
		} `json:"warnings"`
	}
	if json.Unmarshal(r.body, &warned); r.status != http.StatusAccepted || warned.Accepted != 1 || len(warned.Warnings) != 0 {
		t.Errorf("before the other app has a contract: %d %s; want 202 and no warning (schema_unknown allow)", r.status, r.body)
	}
	adminCall(t, addr, adminSecret, "PUT", "/admin/apps/"+otherApp+"/schemas/Checkout%20Completed", checkoutSchema, http.StatusOK, nil)
	r = postEvents(t, addr, checkout(otherApp, "warn-2", `{"revenue":"x","currency":"USD"}`), jsonType, "Authorization: Bearer "+otherSecret)
	if json.Unmarshal(r.body, &warned); r.status != http.StatusAccepted || warned.Accepted != 1 || len(warned.Warnings) != 1 || warned.Warnings[0].Field != "/attributes/revenue" {
		t.Errorf("warn mode: %d %s; want 202, stored, warned at /attributes/revenue", r.status, r.body)
	}
	if got := messageIDs(t, exportFrom(t, addr, "/v1/export/events", otherApp, "", "Authorization: Bearer "+otherSecret).lines); !slices.Equal(got, []string{"warn-1", "warn-2"}) {
		t.Errorf("the warn app's export: %v; want both events, stored as sent", got)
	}
	after := scrape(t, addr)
	key := `trove_schema_violations_total{app="` + demoApp + `",event="Checkout Completed",action="reject"}`
	if d := after[key] - before[key]; d != 2 {
		t.Errorf("%s grew by %v; want 2 (validate=1 not counted)", key, d)
	}
	key = `trove_schema_violations_total{app="` + otherApp + `",event="Checkout Completed",action="warn"}`
	if d := after[key] - before[key]; d != 1 {
		t.Errorf("%s grew by %v; want 1", key, d)
	}

	q := quarantineLines(t, addr, "reason=schema_violation&seq=1")
	if len(q) != 2 || q[0]["messageId"] != "bad-1" || q[0]["field"] != "/attributes/revenue" || q[1]["messageId"] != "seg-1" {
		t.Fatalf("the quarantine with reason=schema_violation: %v; want bad-1 and seg-1", q)
	}
	if q := quarantineLines(t, addr, "reason=invalid_event"); len(q) != 0 {
		t.Errorf("reason=invalid_event: %v; want none", q)
	}
	seq := uint64(q[0]["seq"].(float64))
	if q := quarantineLines(t, addr, "since="+strconv.FormatUint(seq, 10)); len(q) != 1 || q[0]["messageId"] != "seg-1" {
		t.Errorf("since=%d: %v; want seg-1 only", seq, q)
	}

	// Replay before the contract changes: nothing passes, nothing moves.
	if res := replay(t, addr, ""); res.Replayed != 0 || res.StillRejected != 2 {
		t.Errorf("replay under the same contract: %+v; want 0 replayed, 2 still rejected", res)
	}
	// The client fixes and resends bad-1 itself: the replay must then find
	// it stored (dedup applies) and not store it twice.
	decodeAnswer(t, postEvents(t, addr, checkout(demoApp, "bad-1", `{"revenue":12,"currency":"EUR"}`)), http.StatusAccepted)
	// A looser contract: currency may be missing or lowercase.
	adminCall(t, addr, adminSecret, "PUT", schemaPath, `{"properties":{"attributes":{"properties":{"currency":{"type":"string"}}}}}`, http.StatusOK, &s)
	if s.Version != 2 {
		t.Errorf("the second PUT: version %d; want 2", s.Version)
	}
	if res := replay(t, addr, "&reason=schema"); res.Replayed != 1 || res.Duplicates != 1 || res.StillRejected != 0 {
		t.Errorf("replay under the looser contract: %+v; want seg-1 replayed, bad-1 a duplicate", res)
	}
	if res := replay(t, addr, ""); res != (struct{ Replayed, StillRejected, Duplicates int }{}) {
		t.Errorf("a second replay: %+v; want nothing left to do", res)
	}
	if q := quarantineLines(t, addr, ""); len(q) != 0 {
		t.Errorf("the quarantine after the replay: %v; want empty", q)
	}
	got := messageIDs(t, exportEvents(t, addr, "").lines)
	if !slices.Equal(slices.Sorted(slices.Values(got)), []string{"bad-1", "ok-1", "seg-1"}) {
		t.Errorf("the export after the replay: %v; want ok-1, bad-1 (once) and seg-1", got)
	}

	adminCall(t, addr, adminSecret, "DELETE", schemaPath, "", http.StatusOK, nil)
	adminCall(t, addr, adminSecret, "DELETE", schemaPath, "", http.StatusNotFound, nil)
	adminCall(t, addr, adminSecret, "PUT", schemaPath, `{}`, http.StatusOK, &s)
	if s.Version != 3 {
		t.Errorf("PUT after DELETE: version %d; want 3 (versions are never reused)", s.Version)
	}
	adminCall(t, addr, backendSecret, "PUT", schemaPath, `{}`, http.StatusForbidden, nil)
}

// TestSchemaCLI drives `trove schemas` and `trove quarantine`.
func TestSchemaCLI(t *testing.T) {
	addr := startServer(t, schemaConfig).addr
	server := "http://" + addr
	t.Setenv("TROVE_ADMIN_TOKEN", adminSecret)
	file := filepath.Join(t.TempDir(), "checkout.json")
	if err := os.WriteFile(file, []byte(checkoutSchema), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, schemasCmd, "put", "Checkout Completed", file, "--app", demoApp, "--server", server)
	if code != 0 || out != "1\n" {
		t.Fatalf("schemas put: %d %q %q; want 0 and version 1", code, out, errOut)
	}
	code, out, _ = runCmd(t, schemasCmd, "list", "--app", demoApp, "--server", server)
	if code != 0 || !strings.Contains(out, "Checkout Completed  1") {
		t.Errorf("schemas list: %d %q; want the contract at version 1", code, out)
	}
	decodeAnswer(t, postEvents(t, addr, checkout(demoApp, "bad-cli", `{"revenue":1,"currency":"usd"}`)), http.StatusBadRequest)
	code, out, _ = runCmd(t, cli.Quarantine, "list", "--app", demoApp, "--reason", "schema", "--server", server)
	if code != 0 || !strings.Contains(out, "/attributes/currency") {
		t.Errorf("quarantine list: %d %q; want the entry at /attributes/currency", code, out)
	}
	code, out, errOut = runCmd(t, schemasCmd, "delete", "Checkout Completed", "--app", demoApp, "--server", server)
	if code != 0 {
		t.Fatalf("schemas delete: %d %q %q", code, out, errOut)
	}
	code, out, _ = runCmd(t, cli.Quarantine, "replay", "--app", demoApp, "--server", server)
	if code != 0 || out != "replayed 1, still rejected 0, already stored 0\n" {
		t.Errorf("quarantine replay: %d %q; want 1 replayed", code, out)
	}
	code, _, errOut = runCmd(t, schemasCmd, "put", "X", file, "--server", server)
	if code != 2 || !strings.Contains(errOut, "--app") {
		t.Errorf("schemas put without --app: %d %q; want 2 naming --app", code, errOut)
	}
	if got := messageIDs(t, exportEvents(t, addr, "").lines); !slices.Equal(got, []string{"bad-cli"}) {
		t.Errorf("the export after the replay: %v; want bad-cli", got)
	}
}
