package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// signIn opens the console and signs in with the admin token.
func (c *console) signIn() {
	c.t.Helper()
	c.do(chromedp.Navigate(c.base + "/"))
	c.do(chromedp.WaitVisible(chromedp.CSS("#token")), chromedp.SendKeys(chromedp.CSS("#token"), adminSecret+kb.Enter))
	c.waitFor("the overview", `document.querySelector("#main")?.dataset.page === "overview"`)
}

// TestConsoleContracts drives the Contracts page in Chromium: it shows the
// demo app's contract and its quarantine grouped by reason, refuses a
// schema that does not compile with the server's message, saves a looser
// version, replays the schema violations (which the export then holds,
// once each), and deletes the contract with a confirming second click.
func TestConsoleContracts(t *testing.T) {
	addr := startServer(t, schemaConfig).addr
	base := "http://" + addr
	adminCall(t, addr, adminSecret, "PUT", schemaPath, checkoutSchema, http.StatusOK, nil)
	body := "[" + checkout(demoApp, "ok-1", `{"revenue":12.5,"currency":"EUR"}`) + "," +
		checkout(demoApp, "bad-1", `{"revenue":"12","currency":"EUR"}`) + "," +
		checkout(demoApp, "bad-2", `{"revenue":9.99,"currency":"eur"}`) + "," +
		checkout(demoApp, "bad-3", `{"revenue":"7","currency":`+js(xssPayloads[0])+`}`) + "," +
		`{"type":"event","event":"login","userId":"u2","appKey":"` + demoApp + `","messageId":"no-time"}]`
	if a := decodeAnswer(t, postEvents(t, addr, body), http.StatusAccepted); a.Accepted != 1 || a.Rejected != 4 {
		t.Fatalf("seeding: %+v; want 1 accepted, 4 rejected", a)
	}

	c := newConsole(t, base)
	c.signIn()
	c.open("contracts")
	c.waitText("#ct-rows", "Checkout Completed")
	c.waitText("#ct-policy", `schema_mode = "reject"`)
	if v := c.eval(`document.querySelector('#ct-rows tr[data-event="Checkout Completed"] td.num').textContent`); v != "1" {
		t.Errorf("the contract's version shows %q; want 1", v)
	}
	// The quarantine by reason: three schema violations (two at revenue,
	// one at currency), one event without eventTime.
	c.waitFor("the quarantine", `document.querySelectorAll("#q-rows tr[data-reason]").length === 2`)
	c.waitText("#q-status", "4 quarantined events, 2 reasons")
	count := func(reason string) string {
		return c.eval(`document.querySelector('#q-rows tr[data-reason="` + reason + `"] td.num')?.textContent || ""`)
	}
	if n := count("schema_violation"); n != "3" {
		t.Errorf("schema_violation shows %q events; want 3", n)
	}
	if n := count("invalid_event"); n != "1" {
		t.Errorf("invalid_event shows %q events; want 1", n)
	}
	c.waitText(`#q-rows tr[data-reason="schema_violation"]`, "/attributes/revenue × 2")
	c.waitText(`#q-rows tr[data-reason="schema_violation"]`, "/attributes/currency × 1")
	c.waitText(`#q-rows tr[data-reason="invalid_event"]`, "eventTime")
	c.noScriptRan("the quarantine")
	c.oneLine("#q-rows td.name")

	// View shows the stored schema and fills the form with it.
	c.do(chromedp.Click(chromedp.CSS(`#ct-rows tr[data-event="Checkout Completed"] button.ct-view`)))
	c.waitText("#ct-view", `"pattern": "^[A-Z]{3}$"`)
	if got := c.eval(`document.querySelector("#ct-event").value`); got != "Checkout Completed" {
		t.Errorf("View put %q in the event name; want Checkout Completed", got)
	}
	// A schema that does not compile: the server's 400 names it.
	c.set("#ct-schema", `{"type":"objekt"}`)
	c.do(chromedp.Click(chromedp.CSS("#ct-put")))
	c.waitText("#ct-error", "field: schema")
	c.waitText("#ct-error", "/type")
	// Text that is not JSON is refused before it is sent.
	c.set("#ct-schema", `{"type":`)
	c.do(chromedp.Click(chromedp.CSS("#ct-put")))
	c.waitText("#ct-error", "The schema is not JSON")
	// A looser version: revenue may be a string, currency any string.
	c.set("#ct-schema", `{"properties":{"attributes":{"required":["revenue"],"properties":{"currency":{"type":"string"}}}}}`)
	c.do(chromedp.Click(chromedp.CSS("#ct-put")))
	c.waitText("#ct-status", "as version 2")
	c.waitFor("version 2 in the list", `document.querySelector('#ct-rows tr[data-event="Checkout Completed"] td.num')?.textContent === "2"`)
	var s schemaAnswer
	adminCall(t, addr, adminSecret, "GET", schemaPath, "", http.StatusOK, &s)
	if s.Version != 2 || !strings.Contains(string(s.Schema), `"required":["revenue"]`) {
		t.Errorf("the server holds %+v; want version 2, as pasted", s)
	}
	// The whole page in one picture: a taller window, from its top.
	c.do(chromedp.EmulateViewport(1280, 1200))
	c.eval(`window.scrollTo(0, 0), ""`)
	c.screenshot("contracts")
	c.do(chromedp.EmulateViewport(1280, 800))

	// Replay the schema violations: all three now pass.
	c.do(chromedp.Click(chromedp.CSS(`button.q-replay[data-reason="schema_violation"]`)))
	c.waitText("#q-result", "Replay of schema_violation: 3 stored, 0 still rejected")
	c.waitFor("the violations to leave the quarantine", `!document.querySelector('#q-rows tr[data-reason="schema_violation"]') && document.querySelectorAll("#q-rows tr[data-reason]").length === 1`)
	c.waitText("#q-status", "1 quarantined events, 1 reason")
	got := messageIDs(t, exportEvents(t, addr, "").lines)
	if !slices.Equal(slices.Sorted(slices.Values(got)), []string{"bad-1", "bad-2", "bad-3", "ok-1"}) {
		t.Errorf("the export after the replay: %v; want ok-1 and the three replayed, once each", got)
	}
	if q := quarantineLines(t, addr, ""); len(q) != 1 || q[0]["messageId"] != "no-time" {
		t.Errorf("the quarantine after the replay: %v; want only no-time", q)
	}
	// Replay all: the event without eventTime still fails, with its reason.
	c.do(chromedp.Click(chromedp.CSS("#q-replay-all")))
	c.waitText("#q-result", "Replay: 0 stored, 1 still rejected")
	c.waitText(`#q-rows tr[data-reason="invalid_event"]`, "1")
	c.noScriptRan("the quarantine after replays")

	// Delete asks for a second click.
	del := chromedp.CSS(`#ct-rows tr[data-event="Checkout Completed"] button.ct-delete`)
	c.do(chromedp.Click(del))
	c.waitText(`#ct-rows tr[data-event="Checkout Completed"] button.ct-delete`, "Confirm delete")
	c.do(chromedp.Click(del))
	c.waitText("#ct-rows", "No contracts for this app yet")
	c.waitText("#ct-status", "Deleted the contract of Checkout Completed (version 2)")
	adminCall(t, addr, adminSecret, "GET", schemaPath, "", http.StatusNotFound, nil)

	// At phone size the page does not scroll sideways.
	c.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	c.open("apps")
	c.open("contracts")
	c.waitFor("the quarantine", `document.querySelectorAll("#q-rows tr[data-reason]").length === 1`)
	if w := c.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
		t.Errorf("at 390 px wide the contracts page is %s px wide; want no horizontal scrolling", w)
	}
	c.navReachable("contracts at 390×844")
}
