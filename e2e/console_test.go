package e2e

// The web console (web/console/) tested in a real browser: Debian's
// Chromium, headless, driven with chromedp against a real server on
// 127.0.0.1:0. Run with -screenshots to rewrite the screenshots in docs/
// that the README shows:
//
//	go test -run TestConsole -screenshots .

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/goccy/go-json"
	"github.com/klauspost/compress/gzip"

	"trove/internal/testutil"
)

var writeScreenshots = flag.Bool("screenshots", false, "TestConsole: write the console's screenshots to docs/")

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// xssMark is what every script payload below would set if it ran.
const xssMark = "window.__troveXSS"

// Payloads that run script if a page puts them in as HTML.
var xssPayloads = []string{
	`<img src=x onerror="window.__troveXSS=1">`,
	`<script>window.__troveXSS=1</script>`,
	`<svg onload="window.__troveXSS=1">`,
}

// console drives one tab of a headless Chromium.
type console struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // where screenshots go
}

func newConsole(t *testing.T, base string) *console {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no Chromium at %s (.ci/run installs it: apt-get install -y chromium)", chromiumPath)
	}
	// The flags that Chromium needs on a machine with no network beyond
	// loopback and no GPU, running as root.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	// Bounded: a stuck browser fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); cancel() })
	c := &console{t: t, ctx: bctx, base: base, shot: t.TempDir()}
	if *writeScreenshots {
		c.shot = filepath.Join(moduleRoot, "docs")
		if err := os.MkdirAll(c.shot, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.do(chromedp.EmulateViewport(1280, 800))
	return c
}

func (c *console) do(actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, actions...); err != nil {
		c.t.Fatalf("browser: %v\npage text: %s", err, c.pageText())
	}
}

// pageText is the page's visible text, for failure messages.
func (c *console) pageText() string {
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(cannot read it: " + err.Error() + ")"
	}
	return s
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitFor polls a JavaScript predicate until it is true.
func (c *console) waitFor(what, predicate string) {
	c.t.Helper()
	if _, err := chromedp.Run(c.ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		c.t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, predicate, err, c.pageText())
	}
}

// waitText waits until the element sel contains text.
func (c *console) waitText(sel, text string) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("%s to show %q", sel, text),
		fmt.Sprintf(`(document.querySelector(%s)?.textContent || "").includes(%s)`, js(sel), js(text)))
}

// eval returns the value of a JavaScript expression.
func (c *console) eval(expr string) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		c.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return s
}

// set sets a form control's value as a user would, firing its events.
func (c *console) set(sel, value string) {
	c.t.Helper()
	c.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.value = %s;
		e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); return "" })()`, js(sel), js(value)))
}

func (c *console) open(page string) {
	c.t.Helper()
	c.do(chromedp.Navigate(c.base + "/#/" + page))
	c.waitFor("the "+page+" page", `document.querySelector("#main")?.dataset.page === `+js(page))
}

// screenshot saves what the tab shows as docs/console-<name>.png (with
// -screenshots) or in a temporary directory.
func (c *console) screenshot(name string) {
	c.t.Helper()
	// No caret or hover state in the pictures.
	c.eval(`document.activeElement && document.activeElement.blur && document.activeElement.blur(), ""`)
	b, err := chromedp.Run(c.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(c.shot, "console-"+name+".png"), b, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// lines returns how many lines the text of each element matching sel
// takes, as the page lays it out: the distinct tops of its text's boxes.
func (c *console) lines(sel string) []int {
	c.t.Helper()
	var n []int
	s := c.eval(fmt.Sprintf(`JSON.stringify(Array.from(document.querySelectorAll(%s)).map((e) => {
		const r = document.createRange(); r.selectNodeContents(e);
		return new Set(Array.from(r.getClientRects()).filter((b) => b.width > 0).map((b) => Math.round(b.top))).size }))`, js(sel)))
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		c.t.Fatalf("lines of %s: %v (%s)", sel, err, s)
	}
	if len(n) == 0 {
		c.t.Fatalf("no %s in the page", sel)
	}
	return n
}

// oneLine fails unless the text of every element matching sel is on one
// line.
func (c *console) oneLine(sel string) {
	c.t.Helper()
	for i, n := range c.lines(sel) {
		if n != 1 {
			c.t.Errorf("%s #%d (%q) takes %d lines; want 1", sel, i, c.eval(fmt.Sprintf(`document.querySelectorAll(%s)[%d].textContent`, js(sel), i)), n)
		}
	}
}

// navReachable fails unless every link of the navigation lies inside the
// viewport, is not clipped by the navigation, and is what a tap at its
// centre hits.
func (c *console) navReachable(where string) {
	c.t.Helper()
	s := c.eval(`JSON.stringify((() => {
		const nav = document.querySelector("nav").getBoundingClientRect();
		return Array.from(document.querySelectorAll("nav a")).map((a) => {
			const r = a.getBoundingClientRect();
			const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
			return { text: a.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom,
				inView: r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight,
				inNav: r.left >= nav.left - 0.5 && r.right <= nav.right + 0.5 && r.top >= nav.top - 0.5 && r.bottom <= nav.bottom + 0.5,
				hit: hit === a || a.contains(hit) };
		}); })())`)
	var links []struct {
		Text                     string
		Left, Right, Top, Bottom float64
		InView, InNav, Hit       bool
	}
	if err := json.Unmarshal([]byte(s), &links); err != nil {
		c.t.Fatalf("nav links: %v (%s)", err, s)
	}
	if len(links) != 6 {
		c.t.Errorf("%s: %d nav links; want 6", where, len(links))
	}
	for _, l := range links {
		if !l.InView || !l.InNav || !l.Hit {
			c.t.Errorf("%s: nav link %q at [%.0f,%.0f]-[%.0f,%.0f] is not reachable (in viewport %v, inside the nav %v, a tap hits it %v)",
				where, l.Text, l.Left, l.Top, l.Right, l.Bottom, l.InView, l.InNav, l.Hit)
		}
	}
}

// noEmptyBlock fails if the form sel has a vertical gap wider than max px
// between consecutive controls: between its direct children, or above a
// control in one of its rows.
func (c *console) noEmptyBlock(sel string, max float64) {
	c.t.Helper()
	s := c.eval(fmt.Sprintf(`JSON.stringify((() => {
		const f = document.querySelector(%s), out = [];
		const kids = Array.from(f.children).filter((e) => e.getBoundingClientRect().height > 0);
		for (let i = 1; i < kids.length; i++)
			out.push({ what: kids[i - 1].tagName + " to " + kids[i].tagName + "." + kids[i].className,
				gap: kids[i].getBoundingClientRect().top - kids[i - 1].getBoundingClientRect().bottom });
		for (const row of f.querySelectorAll(".row")) {
			// A row may wrap: the gap above a control is from the lowest
			// control above it, or from the row's top.
			const kids = Array.from(row.children).map((k) => [k, k.getBoundingClientRect()]);
			for (const [k, r] of kids) {
				let above = row.getBoundingClientRect().top;
				for (const [, o] of kids) if (o.bottom <= r.top + 0.5) above = Math.max(above, o.bottom);
				out.push({ what: "above " + (k.id || k.className || k.tagName) + " in its row", gap: r.top - above });
			}
		}
		return out; })())`, js(sel)))
	var gaps []struct {
		What string
		Gap  float64
	}
	if err := json.Unmarshal([]byte(s), &gaps); err != nil || len(gaps) == 0 {
		c.t.Fatalf("gaps in %s: %v (%s)", sel, err, s)
	}
	for _, g := range gaps {
		if g.Gap > max {
			c.t.Errorf("%s: %.0f px empty %s; want at most %.0f", sel, g.Gap, g.What, max)
		}
	}
}

// noScriptRan fails if any payload ran.
func (c *console) noScriptRan(where string) {
	c.t.Helper()
	if got := c.eval(`String(` + xssMark + `)`); got != "undefined" {
		c.t.Errorf("%s: a payload ran (%s = %s)", where, xssMark, got)
	}
	if n := c.eval(`String(document.querySelectorAll("img[src=x], #main script, svg[onload]").length)`); n != "0" {
		c.t.Errorf("%s: %s payload elements are in the page", where, n)
	}
}

// longUserID is a userId with no place to break it: it must show whole.
const longUserID = "u7f3c9a1be24d4c0f9a8e6b5d3c2f1a09"

// stamp is an eventTime hours before now.
func stamp(hoursAgo float64) string {
	return time.Now().UTC().Add(-time.Duration(hoursAgo * float64(time.Hour))).Format(time.RFC3339Nano)
}

// ingestEvents posts events to the Events API and checks they are accepted.
func ingestEvents(t *testing.T, addr string, events []map[string]any) {
	t.Helper()
	body, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	r := postEvents(t, addr, string(body), "Content-Type: application/json")
	if r.status != 202 || !bytes.Contains(r.body, []byte(fmt.Sprintf(`"accepted":%d`, len(events)))) {
		t.Fatalf("ingest: %d %s", r.status, r.body)
	}
}

func ev(name, user string, hoursAgo float64, attrs map[string]any) map[string]any {
	return map[string]any{"type": "event", "event": name, "userId": user, "eventTime": stamp(hoursAgo), "appKey": demoApp, "attributes": attrs}
}

// seedConsole stores a week of events for the overview, a few rejected
// events, and a profile.
func seedConsole(t *testing.T, addr string) {
	t.Helper()
	names := []string{"app_open", "view_item", "add_to_cart", "purchase", "signup"}
	var batch []map[string]any
	for i := range 600 {
		// Busy afternoons, quiet nights: a shape worth a chart.
		h := float64(i%160) + float64(i%7)/10
		if int(h)%24 < 6 && i%3 != 0 {
			h += 8
		}
		batch = append(batch, ev(names[i%len(names)], fmt.Sprintf("user%03d", i%40), h, map[string]any{"plan": []string{"free", "pro"}[i%2], "n": i}))
		if len(batch) == 200 {
			ingestEvents(t, addr, batch)
			batch = nil
		}
	}
	other := `[{"type":"event","event":"login","userId":"o1","eventTime":"` + stamp(3) + `","appKey":"` + otherApp + `"}]`
	if r := postEvents(t, addr, other, "Content-Type: application/json", "Authorization: Bearer "+otherSecret); r.status != 202 {
		t.Fatalf("ingest to the other app: %d %s", r.status, r.body)
	}
	bad := `[{"type":"event","event":"checkout","userId":"user007","appKey":"` + demoApp + `"},` +
		`{"type":"event","event":"","userId":"user008","eventTime":"` + stamp(1) + `","appKey":"` + demoApp + `"},` +
		`{"type":"event","event":"ok","userId":"user009","eventTime":"` + stamp(1) + `","appKey":"` + demoApp + `"}]`
	if r := postEvents(t, addr, bad, "Content-Type: application/json"); r.status != 202 {
		t.Fatalf("ingest with rejects: %d %s", r.status, r.body)
	}
	profile := `{"appKey":"` + demoApp + `","user_profiles":[{"customer_id":"user007","user_alias":{"alias_label":"facebook","alias_id":"fb007"},
		"first_name":"Jane","last_name":"Doe","email_id":"jane.doe@example.com","city":"Oslo","gender":"F",
		"custom-ltv":35,"custom-plan":"pro","custom-tags":["whale","early-adopter"]}]}`
	if r := request(t, "POST", "http://"+addr+"/v1/users/profile", strings.NewReader(profile), "Content-Type: application/json", "Authorization: Bearer "+backendSecret); r.status != 202 {
		t.Fatalf("profile: %d %s", r.status, r.body)
	}
}

// TestConsole signs in (a wrong token first), watches events arrive in
// Live, looks up a profile, downloads an export and checks its lines, and
// creates and revokes a token; taking a screenshot of each page.
func TestConsole(t *testing.T) {
	addr := startServer(t, testConfig).addr
	base := "http://" + addr
	seedConsole(t, addr)
	c := newConsole(t, base)
	start := time.Now()

	// Sign-in: a wrong token is refused with a clear message; the right
	// one, typed and sent with Enter, opens the overview.
	c.do(chromedp.Navigate(base + "/"))
	c.do(chromedp.WaitVisible(chromedp.CSS("#token")), chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"+kb.Enter))
	c.waitText("#signin-error", "does not accept this token")
	c.screenshot("signin")
	c.set("#token", "")
	c.do(chromedp.SendKeys(chromedp.CSS("#token"), ingestSecret+kb.Enter))
	c.waitText("#signin-error", "no admin scope")
	c.set("#token", "")
	c.do(chromedp.SendKeys(chromedp.CSS("#token"), adminSecret+kb.Enter))
	c.waitFor("the overview", `document.querySelector("#card-total .value")?.textContent === "602"`)
	if got := c.eval(`sessionStorage.getItem("trove.adminToken") || ""`); got != adminSecret {
		t.Errorf("sessionStorage token = %q; want the admin token", got)
	}
	c.waitText("#card-rejected", "2")
	c.waitFor("the chart's bars", `document.querySelectorAll("#overview-chart rect.bar").length > 100`)
	c.waitText("#overview-apps", "demo")
	c.screenshot("overview")

	t.Run("live", func(t *testing.T) {
		c.t = t
		c.open("live")
		c.waitText("#live-status", "Streaming")
		ingestEvents(t, addr, []map[string]any{
			ev("live-check-1", "live-user-a", 0, map[string]any{"sku": "A-1"}),
			ev("live-check-2", "live-user-b", 0, map[string]any{"sku": "B-2"}),
		})
		c.waitText("#live-rows", "live-check-2")
		c.waitText("#live-rows", "live-user-a")
		// Timestamps and ids are not broken across lines.
		c.oneLine("#live-rows td.time")
		c.oneLine("#live-rows td.wrap")
		c.oneLine("#live-rows td.name")
		c.oneLine("#live-rejected td.time")
		// The detail view of one event.
		c.eval(`Array.from(document.querySelectorAll("#live-rows tr")).find(r => r.textContent.includes("live-check-2")).click(), ""`)
		c.waitText("#live-json", `"sku": "B-2"`)
		c.waitText("#live-json", `"messageId"`)
		// The filter, by userId.
		c.set("#live-filter", "live-user-a")
		c.waitFor("the filter", `!document.querySelector("#live-rows").textContent.includes("live-check-2") && document.querySelector("#live-rows").textContent.includes("live-check-1")`)
		c.set("#live-filter", "")
		// Paused: held, not shown; resumed: shown.
		c.do(chromedp.Click(chromedp.CSS("#live-pause")))
		ingestEvents(t, addr, []map[string]any{ev("live-check-3", "live-user-c", 0, nil)})
		c.waitText("#live-status", "Paused: 1 new")
		if strings.Contains(c.eval(`document.querySelector("#live-rows").textContent`), "live-check-3") {
			t.Errorf("an event shows while paused")
		}
		c.do(chromedp.Click(chromedp.CSS("#live-pause")))
		c.waitText("#live-rows", "live-check-3")
		// Rejected events, with their reason.
		c.waitText("#live-rejected", "eventTime")
		c.eval(`Array.from(document.querySelectorAll("#live-rows tr")).find(r => r.textContent.includes("live-check-2")).click(), ""`)
		c.screenshot("live")
		// A userId with nowhere to break it shows whole; the table
		// scrolls sideways in its box instead.
		ingestEvents(t, addr, []map[string]any{ev("live-check-long", longUserID, 0, map[string]any{"sku": "L-0"})})
		c.waitText("#live-rows", longUserID)
		c.oneLine("#live-rows td.wrap")
		if w := c.eval(`String(document.documentElement.scrollWidth)`); w != "1280" {
			t.Errorf("at 1280 px wide the live page is %s px wide; want no horizontal scrolling", w)
		}
	})

	t.Run("profiles", func(t *testing.T) {
		c.t = t
		c.open("profiles")
		c.do(chromedp.WaitVisible(chromedp.CSS("#pf-value")))
		c.set("#pf-value", "user007")
		c.do(chromedp.Click(chromedp.CSS("#pf-lookup")))
		c.waitText("#pf-profile", "Jane")
		c.waitText("#pf-profile", "custom-tags")
		c.waitText("#pf-profile", "fb007")
		c.waitFor("the user's events", `document.querySelectorAll("#pf-events tr").length === 15`)
		c.oneLine("#pf-events td.time")
		c.screenshot("profiles")
		// By alias, and by pyze_id.
		c.set("#pf-kind", "alias")
		c.set("#pf-alias-label", "facebook")
		c.set("#pf-value", "fb007")
		c.do(chromedp.Click(chromedp.CSS("#pf-lookup")))
		c.waitText("#pf-profile", "jane.doe@example.com")
		id := c.eval(`document.querySelector("#pf-profile dd").textContent`)
		c.set("#pf-kind", "pyze_id")
		c.set("#pf-value", id)
		c.do(chromedp.Click(chromedp.CSS("#pf-lookup")))
		c.waitText("#pf-profile", "Oslo")
		// An API error shows its message.
		c.set("#pf-value", "not-a-uuid")
		c.do(chromedp.Click(chromedp.CSS("#pf-lookup")))
		c.waitText("#profile-error", "pyze_id must be a UUID")
	})

	t.Run("export", func(t *testing.T) {
		c.t = t
		dir := t.TempDir()
		c.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
			})
			return err
		}))
		c.open("export")
		from := time.Now().UTC().Add(-48 * time.Hour).Format("2006-01-02")
		c.set("#ex-from", from)
		c.set("#ex-events", "purchase, signup")
		c.set("#ex-compression", "gzip")
		c.waitText("#ex-curl", "Accept-Encoding: gzip")
		c.waitText("#ex-cli", "trove export events --server "+base+" --app "+demoApp+" --from "+from+" --event purchase,signup -o demo-events.ndjson.gz")
		c.do(chromedp.Click(chromedp.CSS("#ex-download")))
		c.waitText("#ex-status", "Downloaded")
		path := filepath.Join(dir, "demo-events.ndjson.gz")
		waitForFile(t, path)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("the download is not gzip: %v", err)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		want := exportEvents(t, addr, "from="+from+"&event="+url.QueryEscape("purchase,signup"))
		if len(want.lines) == 0 || string(got) != strings.Join(want.lines, "\n")+"\n" {
			t.Errorf("the download has %d lines; want the %d of the same export by the API", bytes.Count(got, []byte("\n")), len(want.lines))
		}
		c.waitText("#ex-status", fmt.Sprintf("Downloaded %d events", len(want.lines)))
		c.screenshot("export")
	})

	t.Run("apps and tokens", func(t *testing.T) {
		c.t = t
		c.open("apps")
		c.waitText("#tokens-rows", "backend")
		c.noEmptyBlock("#tok-form", 16)
		c.set("#tok-name", "console-made")
		c.do(chromedp.Click(chromedp.CSS("#tok-all")), chromedp.Click(chromedp.CSS("#tok-create")))
		c.waitFor("the new secret", `(document.querySelector("#tok-secret")?.value || "").startsWith("trv_")`)
		secret := c.eval(`document.querySelector("#tok-secret").value`)
		c.waitText("#tokens-rows", "console-made")
		if r := request(t, "GET", base+"/v1/export/events?appKey="+otherApp+"&limit=1", nil, "Authorization: Bearer "+secret); r.status != 200 {
			t.Fatalf("the new token: %d %s; want 200", r.status, r.body)
		}
		c.screenshot("apps")
		// Revoke asks for a second click.
		id := c.eval(`Array.from(document.querySelectorAll("#tokens-rows tr")).find(r => r.textContent.includes("console-made")).dataset.id`)
		sel := chromedp.CSS(`button.revoke[data-id="` + id + `"]`)
		c.do(chromedp.Click(sel))
		c.waitText(`button.revoke[data-id="`+id+`"]`, "Confirm revoke")
		c.do(chromedp.Click(sel))
		c.waitFor("the token to go", `!document.querySelector("#tokens-rows").textContent.includes("console-made")`)
		if r := request(t, "GET", base+"/v1/export/events?appKey="+otherApp+"&limit=1", nil, "Authorization: Bearer "+secret); r.status != 401 {
			t.Errorf("the revoked token: %d; want 401", r.status)
		}
		// An API error shows its message: an app name already taken.
		c.set("#app-name", "demo")
		c.do(chromedp.Click(chromedp.CSS("#app-create")))
		c.waitText("#apps-error", `an app named "demo" already exists`)
	})

	t.Run("phone", func(t *testing.T) {
		c.t = t
		c.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
		defer c.do(chromedp.EmulateViewport(1280, 800))
		c.open("overview")
		c.waitFor("the overview", `document.querySelector("#card-total .value")?.textContent === "606"`)
		if w := c.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
			t.Errorf("at 390 px wide the page is %s px wide; want no horizontal scrolling", w)
		}
		c.navReachable("overview at 390×844")
		c.screenshot("phone")
		// Every link works by tapping it, and the tables keep timestamps
		// and ids on one line, scrolling sideways inside their box rather
		// than the page.
		c.do(chromedp.Click(chromedp.CSS("#nav-apps")))
		c.waitFor("the apps page", `document.querySelector("#main")?.dataset.page === "apps"`)
		c.navReachable("apps at 390×844")
		c.waitText("#tokens-rows", "backend")
		c.noEmptyBlock("#tok-form", 16)
		c.do(chromedp.Click(chromedp.CSS("#nav-live")))
		c.waitFor("the live page", `document.querySelector("#main")?.dataset.page === "live"`)
		c.waitText("#live-rows", longUserID)
		c.oneLine("#live-rows td.time")
		c.oneLine("#live-rows td.wrap")
		if w := c.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
			t.Errorf("at 390 px wide the live page is %s px wide; want no horizontal scrolling", w)
		}
	})

	t.Run("a token the server stops accepting signs out", func(t *testing.T) {
		c.t = t
		c.eval(`sessionStorage.setItem("trove.adminToken", "stale"), ""`)
		c.do(chromedp.Navigate(base + "/#/apps"))
		c.do(chromedp.Reload())
		c.waitText("#signin-error", "no longer accepts this token")
	})
	t.Logf("browser steps took %v", time.Since(start).Round(time.Millisecond))
}

// TestConsoleEscapes stores script payloads in event names, attribute
// values, userIds, profile fields and an app name, shows them on every page,
// and checks that none runs and that each shows as literal text.
func TestConsoleEscapes(t *testing.T) {
	addr := startServer(t, testConfig).addr
	base := "http://" + addr
	c := newConsole(t, base)

	p0, p1, p2 := xssPayloads[0], xssPayloads[1], xssPayloads[2]
	if r := request(t, "POST", base+"/admin/apps", strings.NewReader(`{"name":`+js(p2)+`}`), "Authorization: Bearer "+adminSecret); r.status != 201 {
		t.Fatalf("app: %d %s", r.status, r.body)
	}
	profile, _ := json.Marshal(map[string]any{"appKey": demoApp, "user_profiles": []map[string]any{{
		"userId": p1, "first_name": p0, "city": p2, "custom-note": p1, "custom-tags": []string{p0},
		"user_alias": map[string]string{"alias_label": p0, "alias_id": p2},
	}}})
	if r := request(t, "POST", base+"/v1/users/profile", bytes.NewReader(profile), "Content-Type: application/json", "Authorization: Bearer "+backendSecret); r.status != 202 {
		t.Fatalf("profile: %d %s", r.status, r.body)
	}

	c.do(chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")), chromedp.SendKeys(chromedp.CSS("#token"), adminSecret+kb.Enter))
	c.waitText("#overview-apps", p2)
	c.noScriptRan("overview")

	c.open("live")
	c.waitText("#live-status", "Streaming")
	ingestEvents(t, addr, []map[string]any{
		ev(p0, p1, 0, map[string]any{"html": p1, p2: p0}),
		ev("plain", p1, 0, map[string]any{"note": p2}),
	})
	// Rejected with the payload in the reason's event.
	bad := `{"type":"event","event":` + js(p1) + `,"userId":"u","appKey":"` + demoApp + `"}`
	if r := postEvents(t, addr, bad, "Content-Type: application/json"); r.status != 400 {
		t.Fatalf("bad event: %d %s", r.status, r.body)
	}
	c.waitText("#live-rows", p0)
	c.waitText("#live-rows", p1)
	c.eval(`document.querySelector("#live-rows tr:last-child").click(), ""`)
	c.waitText("#live-json", `<svg onload=`) // a JSON key: its quotes are escaped
	c.do(chromedp.Click(chromedp.CSS("#live-rejected-refresh")))
	c.waitText("#live-rejected", p1)
	c.noScriptRan("live")

	c.open("profiles")
	c.do(chromedp.WaitVisible(chromedp.CSS("#pf-value")))
	c.set("#pf-value", p1)
	c.do(chromedp.Click(chromedp.CSS("#pf-lookup")))
	for _, p := range xssPayloads {
		c.waitText("#pf-profile", p)
	}
	c.waitText("#pf-events", p0)
	c.noScriptRan("profiles")

	c.open("export")
	c.set("#ex-user", p1)
	c.waitText("#ex-curl", "userId=")
	c.waitText("#ex-cli", p1)
	c.open("apps")
	c.waitText("#apps-rows", p2)
	c.waitText("#tok-apps", p2)
	c.noScriptRan("apps")
}

// waitForFile waits until path exists: the browser writes a download
// under another name and renames it when complete.
func waitForFile(t *testing.T, path string) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if _, err := os.Stat(path); err != nil {
			entries, _ := os.ReadDir(filepath.Dir(path))
			return fmt.Errorf("no %s (the directory holds %v)", path, entries)
		}
		return nil
	})
}

// duBytes is what `du -s -B1` says dir takes on disk.
func duBytes(t *testing.T, dir string) float64 {
	t.Helper()
	out, err := exec.Command("du", "-s", "-B1", dir).Output()
	if err != nil {
		t.Fatalf("du -s -B1 %s: %v", dir, err)
	}
	n, err := strconv.ParseFloat(strings.Fields(string(out))[0], 64)
	if err != nil {
		t.Fatalf("du's answer %q: %v", out, err)
	}
	return n
}

// TestConsoleStorageSize writes some megabytes of events and checks that
// the overview's Storage card shows what the data directory takes on disk,
// as du walks it (the store's tables, WAL and manifest, admin.token), and
// that GET /admin/overview says the same in bytes.
func TestConsoleStorageSize(t *testing.T) {
	srv := startServer(t, testConfig)
	addr, dataDir := srv.addr, srv.dataDir
	base := "http://" + addr
	// Incompressible attributes, so the figure is megabytes whatever the
	// compression.
	rnd := rand.New(rand.NewPCG(1, 2))
	const batches, per = 10, 400 // 4,000 events
	for b := range batches {
		batch := make([]map[string]any, per)
		for i := range batch {
			pad := make([]byte, 768)
			for j := range pad {
				pad[j] = "abcdefghijklmnopqrstuvwxyz0123456789"[rnd.IntN(36)]
			}
			batch[i] = ev("size-check", fmt.Sprintf("user%04d", (b*per+i)%500), float64(i%48), map[string]any{"pad": string(pad)})
		}
		ingestEvents(t, addr, batch)
	}
	c := newConsole(t, base)
	c.do(chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")), chromedp.SendKeys(chromedp.CSS("#token"), adminSecret+kb.Enter))
	c.waitFor("the overview", `document.querySelector("#card-total .value")?.textContent === "4,000"`)

	units := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
	within := func(got, want float64) bool { return got >= want*0.9 && got <= want*1.1 }
	// The figure is at most 5 s old and the merger may rewrite groups
	// meanwhile: poll until the card and a walk taken then agree.
	var card string
	var walked float64
	testutil.WaitFor(t, 20*time.Second, func() error {
		card = c.eval(`document.querySelector("#card-storage .value")?.textContent || ""`)
		walked = duBytes(t, dataDir)
		f := strings.Fields(card)
		if len(f) == 2 {
			n, err := strconv.ParseFloat(f[0], 64)
			if u, ok := units[f[1]]; ok && err == nil && within(n*u, walked) {
				return nil
			}
		}
		return fmt.Errorf("the Storage card says %q; du says the data directory takes %.0f bytes (%.1f MiB)", card, walked, walked/(1<<20))
	})
	if walked < 2<<20 {
		t.Errorf("du says %.0f bytes after %d events of ~1 KB; want megabytes", walked, batches*per)
	}
	t.Logf("Storage card %q; du %.0f bytes", card, walked)

	r := request(t, "GET", base+"/admin/overview", nil, "Authorization: Bearer "+adminSecret)
	var ov struct {
		DiskUsageBytes float64 `json:"diskUsageBytes"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &ov) != nil {
		t.Fatalf("GET /admin/overview: %d %s", r.status, r.body)
	}
	if now := duBytes(t, dataDir); !within(ov.DiskUsageBytes, now) {
		t.Errorf("GET /admin/overview: diskUsageBytes %.0f; du says %.0f", ov.DiskUsageBytes, now)
	}
}
