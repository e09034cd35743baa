package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"trove/internal/testutil"
)

// mountSmallFS creates a 192 MiB ext4 image, loop-mounts it on a new
// directory and returns that directory; it is unmounted when the test ends.
// CI runs as root with e2fsprogs installed (.ci/run), so a machine that
// cannot do this fails the test, saying why, unless TROVE_TEST_LOOPMOUNT
// is "skip".
func mountSmallFS(t *testing.T) string {
	t.Helper()
	cannot := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("TROVE_TEST_LOOPMOUNT") == "skip" {
			t.Skip(msg + " (TROVE_TEST_LOOPMOUNT=skip)")
		}
		t.Fatal(msg + ": this test needs root, mkfs.ext4 (e2fsprogs) and loop devices; set TROVE_TEST_LOOPMOUNT=skip to skip it where they are missing")
	}
	if os.Geteuid() != 0 {
		cannot("not running as root, so cannot mount a file system")
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		cannot("mkfs.ext4 is not installed")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(192 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// -m 0: no blocks kept for root, so that what statfs calls available
	// is what the (root) server can really write.
	if out, err := exec.Command(mkfs, "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
		cannot("mkfs.ext4: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		cannot("mount -o loop: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// availBytes returns the bytes statfs says are available under dir.
func availBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// writeFiller writes n bytes of real data (not a sparse file) to path.
func writeFiller(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{0xa5}, 1<<20)
	for n > 0 {
		c := min(n, len(chunk))
		if _, err := f.Write(chunk[:c]); err != nil {
			t.Fatal(err)
		}
		n -= c
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFullLoopMount runs the built binary with its data directory on
// a 192 MiB file system, fills it with ingest until the disk guard refuses
// writes, and checks that the process lives on, says why on /readyz,
// serves exports, takes writes again once a filler file is deleted, and
// has kept every event it answered 202.
func TestDiskFullLoopMount(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary on a loop-mounted file system")
	}
	mnt := mountSmallFS(t)
	const minFree = 64 << 20 // the smallest floor config takes
	cfgPath := filepath.Join(t.TempDir(), "trove.toml")
	cfg := testConfig + "\n[storage]\nmin_free_disk = \"64MiB\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, cfgPath, filepath.Join(mnt, "data"))
	// With the store open (its first WAL file preallocated), a filler
	// leaves 16 MiB above the floor: the guard trips after some MiB of
	// ingest, and the floor is still free then, so Pebble never meets
	// ENOSPC.
	free := availBytes(t, mnt)
	if free < minFree+32<<20 {
		t.Fatalf("only %d MiB free on the new file system; want at least %d", free>>20, (minFree+32<<20)>>20)
	}
	filler := filepath.Join(mnt, "filler")
	writeFiller(t, filler, int(free-(minFree+16<<20)))
	t.Logf("%d MiB free with the store open, %d MiB after the filler; min_free_disk = 64 MiB", free>>20, availBytes(t, mnt)>>20)

	client := &http.Client{Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	post := func(body string) (int, http.Header, []byte) {
		t.Helper()
		resp, err := client.Post("http://"+c.addr+"/v1/events", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST /v1/events: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	// Random padding, so that what is stored compresses little.
	pad := func() string {
		b := make([]byte, 1024)
		for i := range b {
			b[i] = 'a' + byte(rand.IntN(26))
		}
		return string(b)
	}
	var acked []string
	batch := 0
	send := func() (int, http.Header, []byte) {
		t.Helper()
		var body strings.Builder
		body.WriteByte('[')
		var ids []string
		for i := range 50 {
			if i > 0 {
				body.WriteByte(',')
			}
			id := fmt.Sprintf("b%d-e%d", batch, i)
			ids = append(ids, id)
			fmt.Fprintf(&body, `{"type":"event","event":"fill","userId":"u1","eventTime":"2024-01-02T03:04:05Z","appKey":"%s","messageId":"%s","attributes":{"pad":"%s"}}`, demoApp, id, pad())
		}
		body.WriteByte(']')
		batch++
		status, h, b := post(body.String())
		if status == http.StatusAccepted {
			acked = append(acked, ids...)
		}
		return status, h, b
	}

	// Ingest until refused: well before 64 MiB have been sent.
	var status int
	var h http.Header
	var body []byte
	for status != http.StatusServiceUnavailable {
		if batch > 1500 {
			t.Fatalf("%d batches (%d MiB) accepted and no 503; want the guard to trip after about 16 MiB", batch, batch*50>>10)
		}
		status, h, body = send()
		if status != http.StatusAccepted && status != http.StatusServiceUnavailable {
			t.Fatalf("batch %d: status %d (%s); want 202 or 503", batch, status, body)
		}
	}
	t.Logf("refused after %d batches (%d events acknowledged), %d MiB free", batch, len(acked), availBytes(t, mnt)>>20)
	tripped := batch
	if ra := h.Get("Retry-After"); ra != "30" {
		t.Errorf("Retry-After %q; want \"30\"", ra)
	}
	var e struct{ Error, Message string }
	if err := json.Unmarshal(body, &e); err != nil || e.Error != "disk_full" || !strings.Contains(e.Message, "storage.min_free_disk") {
		t.Errorf("503 body %s; want error disk_full naming storage.min_free_disk", body)
	}
	select {
	case <-c.exited:
		t.Fatalf("trove exited (%v) when the disk filled", c.err)
	default:
	}
	r := request(t, "GET", "http://"+c.addr+"/readyz", nil)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "nearly full") {
		t.Errorf("/readyz: %d %q; want 503 saying the disk is nearly full", r.status, r.body)
	}
	admin := "Authorization: Bearer " + adminSecret
	exported := func() []string {
		t.Helper()
		ids := messageIDs(t, exportFrom(t, c.addr, "/v1/export/events", demoApp, "", admin).lines)
		slices.Sort(ids)
		return ids
	}
	slices.Sort(acked)
	if got := exported(); !slices.Equal(got, acked) {
		t.Errorf("export while writes are refused: %d events; want the %d acknowledged", len(got), len(acked))
	}
	// Still refused a moment later: the guard does not flap.
	if status, _, _ := send(); status != http.StatusServiceUnavailable {
		t.Errorf("second batch after the guard tripped: status %d; want 503", status)
	}

	// Space returns: writes resume by themselves.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitReady(t, c.addr, http.StatusOK, 15*time.Second)
	for i := range 5 {
		if status, _, body := send(); status != http.StatusAccepted {
			t.Fatalf("batch %d after space returned: status %d (%s); want 202", i, status, body)
		}
	}
	slices.Sort(acked)
	if got := exported(); !slices.Equal(got, acked) {
		t.Errorf("export after recovery: %d events; want the %d acknowledged", len(got), len(acked))
	}
	// The child's log lines reach its stderr in batches, within 100 ms.
	testutil.WaitFor(t, 5*time.Second, testutil.Until("the log says writes are accepted again", func() bool {
		return strings.Contains(c.logs.String(), "accepting writes again")
	}))
	logs := c.logs.String()
	if n := strings.Count(logs, "refusing writes"); n != 1 {
		t.Errorf("the log says \"refusing writes\" %d times; want once", n)
	}
	if n := strings.Count(logs, "accepting writes again"); n != 1 {
		t.Errorf("the log says \"accepting writes again\" %d times; want once", n)
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.waitExit(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM; want 0", code)
	}
	// What was acknowledged survives the restart.
	c = startChild(t, cfgPath, filepath.Join(mnt, "data"))
	got := exported()
	if !slices.Equal(got, acked) {
		t.Errorf("export after a restart: %d events; want the %d acknowledged", len(got), len(acked))
	}
	present := map[string]bool{}
	for _, id := range got {
		present[id] = true
	}
	lost := 0
	for _, id := range acked {
		if !present[id] {
			lost++
		}
	}
	summary := fmt.Sprintf("DISKFULL: fs_mib=192 min_free_disk_mib=64 batches_before_503=%d acked_events=%d lost=%d", tripped, len(acked), lost)
	t.Log(summary)
	fmt.Println(summary)
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.waitExit(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM; want 0", code)
	}
}
