package e2e

// Disk-space guard tests. This one injects the free space the store sees
// (Hooks.FreeSpace) and drives the real server in-process;
// diskfull_linux_test.go fills a real, loop-mounted file system.

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"trove/internal/testutil"
	"trove/server"

	"github.com/goccy/go-json"
)

// diskConfig is testConfig with a 100 MiB floor.
const diskConfig = testConfig + `
[storage]
min_free_disk = "100MiB"
`

// injectFreeSpace returns the option that makes a server's store see the
// free space of avail, or the error in fail when it is set.
func injectFreeSpace() (avail *atomic.Uint64, fail *atomic.Pointer[error], opt serverOption) {
	avail, fail = &atomic.Uint64{}, &atomic.Pointer[error]{}
	avail.Store(1 << 40)
	return avail, fail, withHooks(server.Hooks{FreeSpace: func(string) (uint64, error) {
		if err := fail.Load(); err != nil {
			return 0, *err
		}
		return avail.Load(), nil
	}})
}

// waitReady polls /readyz until it answers want, and returns its body.
func waitReady(t *testing.T, addr string, want int, timeout time.Duration) string {
	t.Helper()
	var r response
	testutil.WaitFor(t, timeout, func() error {
		if r = request(t, "GET", "http://"+addr+"/readyz", nil); r.status != want {
			return fmt.Errorf("/readyz answers %d (%s); want %d", r.status, r.body, want)
		}
		return nil
	})
	return string(r.body)
}

// checkDiskFull checks a write refused for lack of space: 503, Retry-After
// 30, and a JSON error saying what to do.
func checkDiskFull(t *testing.T, what string, r response, wantMsg string) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("%s: status %d (%s); want 503", what, r.status, r.body)
		return
	}
	if ra := r.header.Get("Retry-After"); ra != "30" {
		t.Errorf("%s: Retry-After %q; want \"30\"", what, ra)
	}
	var e struct{ Error, Message string }
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", what, r.body, err)
	}
	if e.Error != "disk_full" || !strings.Contains(e.Message, wantMsg) || !strings.Contains(e.Message, "reads and exports still work") {
		t.Errorf("%s: body %s; want error disk_full and a message with %q", what, r.body, wantMsg)
	}
}

// TestE2EDiskFullInjected lowers the free space the store sees below
// storage.min_free_disk, then makes it unreadable, then gives it back:
// writes get 503 and Retry-After, /readyz says why, reads keep working,
// and writes resume by themselves.
func TestE2EDiskFullInjected(t *testing.T) {
	avail, fail, freeSpace := injectFreeSpace()
	addr := startServer(t, diskConfig, freeSpace).addr
	decodeAnswer(t, postEvents(t, addr, event("before", "m1")), http.StatusAccepted)
	if r := postProfiles(t, addr, seedProfiles); r.status != http.StatusAccepted {
		t.Fatalf("profile update: status %d (%s); want 202", r.status, r.body)
	}
	admin := "Authorization: Bearer " + adminSecret

	refused := func(wantMsg string, stored ...string) {
		t.Helper()
		body := waitReady(t, addr, http.StatusServiceUnavailable, 10*time.Second)
		if !strings.Contains(body, wantMsg) {
			t.Errorf("/readyz body %q; want it to say %q", body, wantMsg)
		}
		checkDiskFull(t, "POST /v1/events", postEvents(t, addr, event("during", "m2")), wantMsg)
		checkDiskFull(t, "POST /v1/events (NDJSON)", postEvents(t, addr, event("during", "m3")+"\n", "Content-Type: application/x-ndjson"), wantMsg)
		checkDiskFull(t, "POST /users/profile", postProfiles(t, addr, seedProfiles), wantMsg)
		checkDiskFull(t, "POST /admin/apps", request(t, "POST", "http://"+addr+"/admin/apps", strings.NewReader(`{"name":"new"}`), jsonType, admin), wantMsg)
		checkDiskFull(t, "DELETE /v1/users/profile", request(t, "DELETE", "http://"+addr+"/v1/users/profile?appKey="+demoApp+"&userId=user123", nil, admin), wantMsg)
		// Reads go on.
		if got := messageIDs(t, exportEvents(t, addr, "").lines); !slices.Equal(got, stored) {
			t.Errorf("export while writes are refused: got %q; want %q", got, stored)
		}
		if status, _ := getProfile(t, addr, "userId=user123"); status != http.StatusOK {
			t.Errorf("profile read while writes are refused: status %d; want 200", status)
		}
		if r := request(t, "GET", "http://"+addr+"/healthz", nil); r.status != http.StatusOK {
			t.Errorf("/healthz while writes are refused: status %d; want 200", r.status)
		}
		if v := scrape(t, addr)["trove_storage_writes_refused"]; v != 1 {
			t.Errorf("trove_storage_writes_refused = %v while writes are refused; want 1", v)
		}
	}

	avail.Store(99 << 20)
	refused("nearly full: 99.0 MiB free, below storage.min_free_disk (100.0 MiB)", "m1")

	avail.Store(1 << 40)
	waitReady(t, addr, http.StatusOK, 10*time.Second)
	decodeAnswer(t, postEvents(t, addr, event("after", "m4")), http.StatusAccepted)
	if v := scrape(t, addr)["trove_storage_writes_refused"]; v != 0 {
		t.Errorf("trove_storage_writes_refused = %v after space came back; want 0", v)
	}

	// Free space that cannot be read is taken as none.
	readErr := errors.New("statfs: input/output error")
	fail.Store(&readErr)
	refused("cannot be read (statfs: input/output error)", "m1", "m4")
	fail.Store(nil)
	waitReady(t, addr, http.StatusOK, 10*time.Second)
	decodeAnswer(t, postEvents(t, addr, event("after", "m5")), http.StatusAccepted)

	if got := messageIDs(t, exportEvents(t, addr, "").lines); strings.Join(got, ",") != "m1,m4,m5" {
		t.Errorf("export after recovery: got %q; want [m1 m4 m5] (nothing of the refused requests)", got)
	}
}

// TestE2EDiskFullAtStart: a server started on a nearly full disk serves
// reads, refuses writes, and says so on /readyz from its first request.
func TestE2EDiskFullAtStart(t *testing.T) {
	t.Parallel()
	avail, _, freeSpace := injectFreeSpace()
	avail.Store(1 << 20)
	addr := startServer(t, diskConfig, freeSpace).addr
	if r := request(t, "GET", "http://"+addr+"/readyz", nil); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "nearly full") {
		t.Errorf("/readyz: %d %q; want 503 saying the disk is nearly full", r.status, r.body)
	}
	checkDiskFull(t, "POST /v1/events", postEvents(t, addr, event("e", "m1")), "1.0 MiB free")
	exportEvents(t, addr, "")
}
